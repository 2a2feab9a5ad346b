"""Epoch time of full-batch training on a Dask cluster against the number of workers.

The data are larger than the memory limit each worker is given: they are
generated block by block on the workers (a seeded `dask.array` random
generator; labels from a fixed random linear "teacher"), never held whole
anywhere and never sent to the driver. Each epoch regenerates them, which is
how a data set that fits no single worker trains (a persisted X would skip
that cost where the cluster's memory allows).

For each worker count: a fresh LocalCluster of single-threaded worker
processes with `--memory-limit` each, `--epochs` epochs of the article's
full-batch gradient descent, the first dropped as warm-up. `--repeats` passes
over the worker counts, alternating; reported: the median of all kept epochs,
the cluster's peak process memory (dask's MemorySampler), the bytes the
workers sent per epoch (Dask's own counter `transfer_outgoing_bytes_total`,
to each other and to the driver; the median over the kept epochs), whether
a worker died. Ratios are taken within the run.

    python benchmarks/dask_scaling.py                 # 0.72 GiB of float32, 400 MiB per worker
    python benchmarks/dask_scaling.py --workers 1 2 4 --rows 8000000
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np


def make_data(rows: int, features: int, classes: int, chunk: int, seed: int):
    import dask.array as da

    X = da.random.default_rng(seed).standard_normal((rows, features), chunks=(chunk, features),
                                                   dtype=np.float32)
    teacher = np.random.default_rng(seed + 1).standard_normal((features, classes)).astype(np.float32)
    y = X.map_blocks(lambda b: np.argmax(b @ teacher, axis=1), drop_axis=1, dtype=np.int64)
    return X, y


def _cpu_seconds() -> float:
    import psutil  # a dependency of distributed

    t = psutil.Process().cpu_times()
    return t.user + t.system


def one_setting(workers: int, args) -> dict:
    from distributed import Client, LocalCluster
    from distributed.diagnostics import MemorySampler

    from mlp_backends import MLP
    from mlp_backends.distributed import transfer_bytes

    sent = []

    class CountTraffic:  # Dask's own transfer counters, read at every epoch's end
        def on_train_begin(self, model):
            sent.append(transfer_bytes(client))

        def on_epoch_end(self, model, logs):
            sent.append(transfer_bytes(client))

    X, y = make_data(args.rows, args.features, args.classes, args.chunk, args.seed)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      memory_limit=args.memory_limit, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        model = MLP(args.features, args.hidden, args.classes, "relu", backend="dask", seed=0)
        sampler = MemorySampler()
        cpu_before = sum(client.run(_cpu_seconds).values())
        with sampler.sample("train", interval=0.2):
            history = model.fit(X, y, epochs=args.epochs, batch_size=None, optimizer="sgd",
                                learning_rate=0.5, callbacks=[CountTraffic()])
        # CPU the workers got per second of training: on a shared machine, the cores really had.
        cpu = sum(client.run(_cpu_seconds).values()) - cpu_before
        cores = cpu / sum(history.time)
        peak = max(nbytes for _, nbytes in sampler.samples["train"])  # process memory, all workers
        died = pids != set(client.run(os.getpid).values())
    times = history.time[1:]
    traffic = list(np.diff(sent)[1:])  # the first epoch is warm-up here too
    return {"workers": workers, "median": statistics.median(times), "times": times, "cores": cores,
            "traffic": traffic,
            "cpu_per_epoch": cpu / len(history.time),
            "loss": history.loss, "accuracy": history.accuracy[-1], "peak": peak, "died": died}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=100_000, help="rows per block")
    parser.add_argument("--memory-limit", default="400MiB", help="per worker")
    parser.add_argument("--epochs", type=int, default=3, help="the first is warm-up")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the worker counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data_bytes = args.rows * args.features * 4
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print(f"data: {args.rows} x {args.features} float32 = {data_bytes / 2**30:.2f} GiB in blocks of "
          f"{args.chunk} rows, generated on the workers each epoch; memory limit {args.memory_limit} "
          f"per worker; model {args.features}-{args.hidden}-{args.classes} relu, full-batch GD")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    # Alternate the settings so that drift in a shared machine's load hits both alike.
    runs = [one_setting(w, args) for _ in range(args.repeats) for w in args.workers]
    results = []
    for w in args.workers:
        mine = [r for r in runs if r["workers"] == w]
        times = [t for r in mine for t in r["times"]]
        results.append({**mine[0], "times": times, "median": statistics.median(times),
                        "peak": max(r["peak"] for r in mine), "died": any(r["died"] for r in mine),
                        "cores": statistics.mean(r["cores"] for r in mine),
                        "traffic": [b for r in mine for b in r["traffic"]],
                        "cpu_per_epoch": statistics.mean(r["cpu_per_epoch"] for r in mine)})
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    base = results[0]["median"]
    print(f"{'workers':>7}  {'epoch s (median)':>16}  {'speedup':>7}  {'rows/s':>10}  {'cores used':>10}  "
          f"{'CPU s/epoch':>11}  "
          f"{'peak cluster MiB':>16}  {'KB sent/epoch':>13}  worker died  loss first -> last")
    for r in results:
        print(f"{r['workers']:>7}  {r['median']:>16.2f}  {base / r['median']:>7.2f}  "
              f"{args.rows / r['median']:>10.3g}  {r['cores']:>10.2f}  {r['cpu_per_epoch']:>11.2f}  "
              f"{r['peak'] / 2**20:>16.0f}  "
              f"{statistics.median(r['traffic']) / 1e3:>13.1f}  {str(r['died']):>11}  "
              f"{r['loss'][0]:.4f} -> {r['loss'][-1]:.4f}")
        print(f"         epochs (s): {', '.join(f'{t:.2f}' for t in r['times'])}")
    same = all(np.allclose(r["loss"], results[0]["loss"], rtol=1e-5) for r in results)
    print(f"same losses on every cluster size (rtol 1e-5, float32): {same}")


if __name__ == "__main__":
    main()
