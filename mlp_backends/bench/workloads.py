"""The benchmark workloads and their synthetic data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    """A benchmark problem: rows, layer sizes, batch, hidden activation and learning rate, and what it stands for."""

    name: str
    n: int
    sizes: tuple[int, ...]
    batch: int
    activation: str
    learning_rate: float
    note: str

    @property
    def flops_per_epoch(self) -> float:
        """6 x N x sum(fan_in x fan_out): forward, and backward's two products."""
        return 6.0 * self.n * sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))


WORKLOADS = {
    w.name: w
    for w in [
        Workload("tiny", 512, (16, 8, 4), 64, "relu", 0.1, "a smoke test, not a timing"),
        Workload("small", 1797, (64, 32, 10), 32, "sigmoid", 0.1, "the digits shape and the article's net"),
        Workload("net128", 16384, (128, 256, 10), 32, "relu", 0.05, "mid-size products: where threads start to cost"),
        Workload("mnist", 60000, (784, 512, 10), 256, "relu", 0.05, "synthetic, MNIST-shaped"),
        Workload("wide", 16384, (1024, 4096, 4096, 10), 1024, "relu", 0.01, "for GPUs"),
    ]
}


def make_data(w: Workload, dtype: str, seed: int = 0):
    """Gaussian features; labels from a random linear teacher, so the task is learnable."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((w.n, w.sizes[0]), dtype=np.float32).astype(dtype, copy=False)
    teacher = rng.standard_normal((w.sizes[0], w.sizes[-1]), dtype=np.float32)
    y = np.argmax(X.astype(np.float32, copy=False) @ teacher, axis=1)
    return X, y
