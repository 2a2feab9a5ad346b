"""Where a two-thread `mnist` step goes beyond its matrix products: the one-core passes.

    python benchmarks/mnist_passes.py [--repeats 30]

On `mnist` (784-512-10 relu, batch 256, SGD) at two BLAS threads, times per
step (median of rounds, wall clock, rounds alternating):

- the GEMM floor: the step's matrix products alone (forward, both weight
  gradients, the hidden layer's input gradient), as bench.py's floor;
- each elementwise pass of that step alone: the batch gather, the bias add and
  ReLU, the ReLU mask, the bias gradient's sum, and the SGD update of W1 (the
  only parameter big enough to matter); NumPy runs each on one core.

Printed: each figure in microseconds and over the floor, and the passes
together: what a perfect split over two cores could take off a step is half
of that. The library's step itself: `bench.py --workload mnist` (its "x GEMM
floor" column).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_backends import MLP, get_backend  # noqa: E402
from mlp_backends.bench import WORKLOADS, make_data  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(args.threads)  # noqa: F841 - for the whole run
    w = WORKLOADS["mnist"]
    X, y = make_data(w, "float32")
    be = get_backend("numpy")
    model = MLP(*w.sizes, w.activation, backend=be, seed=0)
    W1, b1, W2, _ = model.params
    rng = np.random.default_rng(0)
    idx = rng.permutation(w.n)[:w.batch]
    Xb = X.take(idx, axis=0)
    h = np.maximum(Xb @ W1, 0)
    g1, delta = np.ones_like(W1), rng.standard_normal((w.batch, 10), dtype=np.float32)
    z, zero = h.copy(), np.zeros(512, np.float32)

    def floor():
        Xb @ W1
        h @ W2
        h.T @ delta
        delta @ W2.T
        Xb.T @ h

    entries = {
        "GEMM floor (the step's products)": floor,
        "pass: gather 256 rows of X": lambda: X.take(idx, axis=0),
        "pass: bias add and ReLU": lambda: (np.add(z, b1, z), np.maximum(z, zero, out=z)),
        "pass: ReLU mask on the gradient": lambda: np.multiply(z, np.greater(z, 0), z),
        "pass: bias gradient (sum over rows)": lambda: np.add.reduce(z, axis=0),
        # (the tallied SGD step folds the rate into its gradients: one pass, p - lr * g)
        "pass: SGD update of W1": lambda: np.subtract(W1, g1, W1),
    }
    times: dict[str, list[float]] = {k: [] for k in entries}
    for r in range(-1, args.repeats):
        for k, fn in entries.items():
            start = time.perf_counter()
            for _ in range(5):
                fn()
            if r >= 0:
                times[k].append((time.perf_counter() - start) / 5 * 1e6)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["GEMM floor (the step's products)"]
    passes = sum(v for k, v in med.items() if k.startswith("pass:"))
    print(f"mnist step, {args.threads} BLAS threads, wall clock, median of {args.repeats} rounds\n")
    print("| entry | us/step | x GEMM floor |\n|---|---:|---:|")
    for k, v in med.items():
        print(f"| {k} | {v:.0f} | {v / base:.3f} |")
    print(f"| one-core passes together | {passes:.0f} | {passes / base:.3f} |")
    print(f"| half of them (what two cores could save at best) | {passes / 2:.0f} | {passes / 2 / base:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
