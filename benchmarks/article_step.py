"""The article's network through the public `fit`, against the article's own NumPy step.

    python benchmarks/article_step.py [--backends numpy,jax,torch] [--epochs 10] [--repeats 7] [--busy]

The article's step (64-32-10 sigmoid, plain SGD, batch 32, on the digits
shape): np.dot forward, hand-derived backward, in-place `-=` updates, and no
loss or accuracy at all. Each library entry is a fresh `MLP` trained by
`fit(epochs=E)` with default settings for threads and compiling, so its time
includes everything a user pays per call (input checks, the copy to the
device, the per-epoch loss and accuracy); compiled programs are reused across
fits as they are in a user's process (the first, untimed round compiles).
Entries take turns, round-robin, each opening a round in turn; reported: microseconds per step (median and
best of the rounds), the ratio to the article's step, both medians, and the
median of each round's own ratio (entries of one round run back to back, so
the machine's swings cancel better there); and the
same in CPU time of the process (every thread's, so JAX's and PyTorch's pools
count), which other work on a shared machine disturbs far less than the clock.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_backends import MLP  # noqa: E402
from mlp_backends.bench import WORKLOADS, make_data  # noqa: E402
from mlp_backends.bench.busy import busy_core  # noqa: E402


def article_epochs(X, Y, epochs: int, batch: int, lr: float, rng) -> None:
    """The article's training loop on shuffled mini-batches, no loss computed."""
    sizes = (X.shape[1], 32, Y.shape[1])
    W = [(rng.standard_normal((a, b)) * np.sqrt(1.0 / a)).astype(X.dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    b = [np.zeros((1, k), X.dtype) for k in sizes[1:]]
    n = X.shape[0]
    for _ in range(epochs):
        order = rng.permutation(n)
        for lo in range(0, n, batch):
            idx = order[lo:lo + batch]
            Xb, Yb = X[idx], Y[idx]
            h = 1 / (1 + np.exp(-(np.dot(Xb, W[0]) + b[0])))
            z = np.dot(h, W[1]) + b[1]
            e = np.exp(z - np.max(z, axis=1, keepdims=True))
            err = e / np.sum(e, axis=1, keepdims=True) - Yb
            step = lr / Xb.shape[0]
            back = np.dot(err, W[1].T)
            W[1] -= step * np.dot(h.T, err)
            b[1] -= step * np.sum(err, axis=0, keepdims=True)
            err = back * h * (1 - h)
            W[0] -= step * np.dot(Xb.T, err)
            b[0] -= step * np.sum(err, axis=0, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="numpy,jax,torch")
    p.add_argument("--epochs", type=int, default=10, help="epochs per fit (default: 10)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--busy", action="store_true", help="keep one core busy with a spinning process meanwhile")
    args = p.parse_args(argv)
    w = WORKLOADS["small"]
    X, y = make_data(w, "float32")
    Y = np.eye(w.sizes[-1], dtype=np.float32)[y]
    steps = args.epochs * -(-w.n // w.batch)
    rng = np.random.default_rng(0)
    entries = {"article's NumPy step": lambda: article_epochs(X, Y, args.epochs, w.batch, w.learning_rate, rng)}
    for name in [b.strip() for b in args.backends.split(",") if b.strip()]:
        def fit(name=name):
            MLP(*w.sizes, w.activation, backend=name, seed=0).fit(
                X, y, epochs=args.epochs, batch_size=w.batch, learning_rate=w.learning_rate, optimizer="sgd")
        entries[f"{name} fit"] = fit
    times: dict[str, list[float]] = {k: [] for k in entries}
    cpu: dict[str, list[float]] = {k: [] for k in entries}
    with busy_core(args.busy):
        names = list(entries)
        for r in range(-1, args.repeats):
            for k in names[r % len(names):] + names[:r % len(names)]:  # each entry opens a round in turn
                run = entries[k]
                start, start_cpu = time.perf_counter(), time.process_time()
                run()
                if r >= 0:
                    times[k].append((time.perf_counter() - start) / steps * 1e6)
                    cpu[k].append((time.process_time() - start_cpu) / steps * 1e6)
    base = statistics.median(times["article's NumPy step"])
    base_cpu = statistics.median(cpu["article's NumPy step"])
    print(f"{w.name}: {'-'.join(map(str, w.sizes))} {w.activation}, batch {w.batch}, SGD; {args.epochs} epochs "
          f"({steps} steps) per fit; {'busy' if args.busy else 'idle'}; {args.repeats} rounds\n")
    print("| entry | us/step (median) | us/step (best) | x article step | x article, per round | CPU us/step "
          "(median) | x article (CPU) |\n|---|---:|---:|---:|---:|---:|---:|")
    article = times["article's NumPy step"]
    for k, v in times.items():
        c = statistics.median(cpu[k])
        per_round = statistics.median(a / b for a, b in zip(v, article))
        print(f"| {k} | {statistics.median(v):.1f} | {min(v):.1f} | {statistics.median(v) / base:.2f} | "
              f"{per_round:.2f} | {c:.1f} | {c / base_cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
