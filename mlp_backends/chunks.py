"""Whole-array checks and statistics done a block of rows at a time.

A finiteness check or a mean over an array of many gigabytes (often a memory
map) must not allocate anything of the array's size: `np.isfinite(X).all()`
makes a boolean copy of it. Everything here reads `X[lo:hi]` for blocks of
about `CHUNK_BYTES`, keeps float64 running figures, and holds at most one
block's temporaries at a time. X is any 2-D NumPy array or memory map.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from . import loadprogress

CHUNK_BYTES = 8 << 20  # float64 temporaries of a block stay in the tens of MB


def row_blocks(n_rows: int, row_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, int]]:
    """(lo, hi) row ranges covering 0..n_rows, each about `chunk_bytes` long."""
    step = max(1, chunk_bytes // max(1, row_bytes))
    for lo in range(0, n_rows, step):
        yield lo, min(lo + step, n_rows)


def _blocks(X, what: str):
    row_bytes = X.itemsize * int(np.prod(X.shape[1:], dtype=np.int64))
    with loadprogress.bar(X.shape[0] * row_bytes, what) as progress:
        for lo, hi in row_blocks(X.shape[0], row_bytes):
            yield lo, X[lo:hi]
            progress.update((hi - lo) * row_bytes)


def first_nonfinite(X, what: str = "checking") -> tuple[int, ...] | None:
    """Index (row, col, ...) of the first NaN or infinity in X, or None if all are finite."""
    if X.dtype.kind not in "fc":  # integers are always finite
        return None
    for lo, block in _blocks(X, what):
        bad = ~np.isfinite(block)
        if bad.any():
            where = np.unravel_index(int(np.argmax(bad)), bad.shape)
            return (lo + int(where[0]), *map(int, where[1:]))
    return None


def all_finite(X) -> bool:
    """True if X holds no NaN or infinity (one block at a time)."""
    return first_nonfinite(X) is None


def mean_and_std(X, what: str = "computing statistics") -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and (population) standard deviation of a 2-D X, in float64.

    Blocks are merged with Chan et al.'s pairwise update of (count, mean, sum
    of squared deviations), which stays accurate where a running sum of squares
    would cancel.
    """
    count, mean, m2 = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    # Figures of X - X[0]: a constant column comes out exactly constant (no rounding
    # spread), and a large offset costs no precision.
    shift = np.asarray(X[0:1], dtype=np.float64)[0] if X.shape[0] else np.zeros(X.shape[1])
    for _, block in _blocks(X, what):
        block = block.astype(np.float64)  # a copy to work in: one block-sized temporary in all
        block -= shift
        k = block.shape[0]
        block_mean = block.mean(axis=0)
        block -= block_mean
        np.square(block, out=block)
        block_m2 = block.sum(axis=0)
        delta = block_mean - mean
        total = count + k
        mean = mean + delta * (k / total)
        m2 = m2 + block_m2 + delta**2 * (count * k / total)
        count = total
    return mean + shift, np.sqrt(m2 / max(count, 1))
