"""Threads as users get them: the public `fit` with threads="auto" against each fixed count.

    python benchmarks/threads.py --workload small --workload net128 --workload mnist [--busy] [--repeats 3]

Each round trains a fresh model with `fit` (adam, the workload's net and
batch) once per setting, round-robin (each setting opens a round in turn),
so a load that drifts slows every setting alike; "auto" forgets what it measured before each fit, so its trial
steps are paid every time, as in a fresh process. Reported: the median
seconds of a fit per setting and auto / the best fixed count (of the medians,
and the median of each round's own ratio). With --busy, a
background process spins on one core for the whole run (mlp_backends.bench.busy).

By default each fit lasts about a second at one thread on an idle 2-core
machine (EPOCHS below, all the workload's rows): a shorter fit measures the
trial more than the choice, and its ratios drown in the machine's noise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_backends import MLP, threads  # noqa: E402
from mlp_backends.bench import WORKLOADS, make_data  # noqa: E402
from mlp_backends.bench.busy import busy_core  # noqa: E402

#: Epochs per fit by default: about a second at one thread on an idle 2-core x86-64 machine.
EPOCHS = {"tiny": 100, "small": 400, "net128": 12, "mnist": 1, "wide": 1}


def fit_seconds(w, X, y, backend: str, setting, epochs: int) -> tuple[float, dict]:
    model = MLP(w.sizes[0], w.sizes[1:-1], w.sizes[-1], w.activation, backend=backend, seed=0)
    if setting == "auto":
        threads.forget()
    start = time.perf_counter()
    history = model.fit(X, y, epochs=epochs, batch_size=w.batch, learning_rate=1e-3, threads=setting)
    return time.perf_counter() - start, history.threads


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", action="append", choices=sorted(WORKLOADS), default=None)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--samples", type=int, default=None, help="use the first N rows (default: the workload's)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per fit (default: about a second's worth per workload, see EPOCHS)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--busy", action="store_true", help="keep one core busy with a spinning process meanwhile")
    args = p.parse_args(argv)
    counts = sorted({1, threads.usable_cores()})
    settings: list = [*counts, "auto"]
    head = " | ".join(f"{s} thread{'s' * (s != 1)}" if s != "auto" else "auto" for s in settings)
    print(f"{args.backend}, {'busy' if args.busy else 'idle'}, median of {args.repeats} fits (s)\n\n"
          f"| workload (rows, epochs) | {head} | auto / best fixed | per round | auto chose |\n"
          f"|---|{'---:|' * len(settings)}---:|---:|---|")
    with busy_core(args.busy):
        for name in args.workload or ["small", "net128", "mnist"]:
            w = WORKLOADS[name]
            X, y = make_data(w, "float32")
            if args.samples:
                X, y = X[:args.samples], y[:args.samples]
            epochs = args.epochs or EPOCHS[name]
            times: dict = {s: [] for s in settings}
            chose = {}
            fit_seconds(w, X[:w.batch * 4], y[:w.batch * 4], args.backend, 1, 1)  # imports, caches
            for r in range(args.repeats):
                for s in settings[r % len(settings):] + settings[:r % len(settings)]:  # each goes first in turn
                    seconds, chose = fit_seconds(w, X, y, args.backend, s, epochs) if s == "auto" else (
                        fit_seconds(w, X, y, args.backend, s, epochs)[0], chose)
                    times[s].append(seconds)
            med = {s: statistics.median(v) for s, v in times.items()}
            fastest = min(counts, key=lambda s: med[s])
            best = med[fastest]
            # each round's auto against that round's fit at the best count: they ran back to back
            per_round = statistics.median(a / b for a, b in zip(times["auto"], times[fastest]))
            cells = " | ".join(f"{med[s]:.3f}" for s in settings)
            label = f"{name} ({len(y)}, {epochs})"
            print(f"| {label} | {cells} | **{med['auto'] / best:.2f}** | {per_round:.2f} | "
                  f"{chose.get('threads')}: {chose.get('why')} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
