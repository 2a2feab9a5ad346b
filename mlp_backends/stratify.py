"""A seeded, stratified train/test split of row indices, on NumPy alone.

Written here rather than taken from scikit-learn so that the core install
(NumPy, array-api-compat, tqdm) trains on the user's own files and on
synthetic data; scikit-learn stays an extra for its bundled data sets.

Rule: the test part has ceil(test_size * n) rows, shared among the classes
in proportion to their counts (largest remainders first, ties broken by the
seed), and every class keeps at least one row on each side.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError


def _test_counts(counts: np.ndarray, n_test: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of each class that go to the test part: proportional, summing to n_test where possible."""
    exact = counts * (n_test / counts.sum())
    taken = np.floor(exact).astype(np.int64)
    short = n_test - int(taken.sum())
    if short > 0:
        # Largest fractional part first; a random key breaks ties so no class is always favoured.
        order = np.lexsort((rng.random(len(counts)), -(exact - taken)))
        taken[order[:short]] += 1
    return np.clip(taken, 1, counts - 1)


def stratified_indices(y: np.ndarray, test_size: float, seed: int | None,
                       what: str = "test split") -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) row indices for integer class labels y in [0, k).

    Raises InputError, in one line, when a class has a single row or a part
    would be smaller than the number of classes.
    """
    y = np.asarray(y)
    n = len(y)
    counts = np.bincount(y)
    present = counts[counts > 0]
    n_test = math.ceil(test_size * n)
    problem = None
    if n == 0:
        problem = "there are no rows"
    elif present.min() < 2:
        problem = "a class has a single sample, which cannot be on both sides"
    elif n_test < len(present) or n - n_test < len(present):
        problem = f"a part of {min(n_test, n - n_test)} rows cannot hold all {len(present)} classes"
    if problem:
        raise InputError(f"cannot take a stratified {what} of {test_size:g} from {n} samples "
                         f"({problem}); use more data or a different size")
    rng = np.random.default_rng(seed)
    by_class = np.argsort(y, kind="stable")
    starts = np.concatenate(([0], np.cumsum(present)[:-1]))
    test = []
    for start, count, k in zip(starts, present, _test_counts(present, n_test, rng)):
        rows = by_class[start:start + count]
        test.append(rng.choice(rows, size=k, replace=False))
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(n), test, assume_unique=True)
    return train, test
