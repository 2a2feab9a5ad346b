"""Training data larger than memory: rows read from `.npy` memory maps, a buffer at a time.

A data folder holds `X.npy` (n, d) and `y.npy` (n,), or shards
`X-00000.npy`, `y-00000.npy`, ... whose rows follow one another (what
`mlp-backends data convert` writes). `RowSource` reads them memory-mapped:
nothing of the data's size is allocated, the operating system's page cache
holds what was read, and it can drop it again.

Shuffling without random reads. A full permutation of a file on disk reads
one row here, the next far away. `RowSource.order` instead permutes chunks of
about CHUNK_BYTES of consecutive rows (whole batches; the short last chunk
ends the epoch), groups them in that order into buffers of about
BUFFER_BYTES, and permutes the rows within each buffer; `batches` reads a
buffer (a few long runs of rows), then gathers mini-batches from it in
memory. Every row is seen once per epoch, in a new order each epoch. Effect on
convergence: a batch mixes rows from one buffer (BUFFER_BYTES / CHUNK_BYTES
chunks from all over the file) rather than from the whole file, so batches are
slightly less independent; on data in no particular order this trains like a
full shuffle. On data sorted by label, a buffer holds few classes and
training zigzags: shuffle such a file once first. Data that fit in one buffer
get exactly the in-memory order (`rng.permutation(n)`), so `fit` on a small
map gives the same parameters as on the same array in memory.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import InputError

BUFFER_BYTES = 64 << 20
CHUNK_BYTES = 1 << 20
_SHARD = re.compile(r"^([Xy])(?:-(\d+))?\.npy$")


class RowSource:
    """Rows of a 2-D array on the host, read on demand: memory maps (one, or shards
    stacked by rows), optionally a subset of their rows (a split part) and a
    transform applied to what is read (a `Standardizer`).

    It has `shape`, `dtype`, `ndim`, `itemsize` and row slicing (`X[lo:hi]`), so
    the block-wise checks in `chunks` and `Standardizer.fit` take it as they
    take an array.
    """

    def __init__(self, maps, rows: np.ndarray | None = None, transform=None):
        self.maps = list(maps)
        widths = {m.shape[1:] for m in self.maps}
        if len(widths) != 1 or any(m.ndim != 2 for m in self.maps):
            raise InputError(f"the shards' features must be 2-D with one width, got shapes "
                             f"{sorted({m.shape for m in self.maps})}")
        self.offsets = np.cumsum([0] + [m.shape[0] for m in self.maps])
        self.rows = rows
        self.transform = transform
        self.dtype = np.result_type(*(m.dtype for m in self.maps))
        if transform is not None and self.dtype.kind != "f":
            self.dtype = np.dtype(np.float64)
        n = int(self.offsets[-1]) if rows is None else len(rows)
        self.shape = (n, self.maps[0].shape[1])

    ndim = 2

    @property
    def itemsize(self) -> int:
        """Bytes per value of the rows as read."""
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of all the rows as read."""
        return self.shape[0] * self.shape[1] * self.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def subset(self, positions: np.ndarray, transform=None) -> "RowSource":
        """The rows at `positions` (of this source), in that order."""
        positions = np.asarray(positions, dtype=np.int64)
        rows = positions if self.rows is None else self.rows[positions]
        return RowSource(self.maps, rows, transform if transform is not None else self.transform)

    def with_transform(self, transform) -> "RowSource":
        """The same rows, passed through `transform` (e.g. a Standardizer) as they are read."""
        return RowSource(self.maps, self.rows, transform)

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a RowSource takes row slices X[lo:hi]; use read(positions) for others")
        lo, hi, _ = key.indices(self.shape[0])
        return self.read(np.arange(lo, max(lo, hi)))

    def read(self, positions: np.ndarray, dtype=None) -> np.ndarray:
        """A new array of the rows at `positions`, transformed; reads go in file order."""
        positions = np.asarray(positions, dtype=np.int64)
        rows = positions if self.rows is None else self.rows[positions]
        out = np.empty((len(rows), self.shape[1]), dtype=dtype or self.dtype)
        ascending = np.argsort(rows, kind="stable")
        sorted_rows = rows[ascending]
        shard = np.searchsorted(self.offsets, sorted_rows, side="right") - 1
        for s in np.unique(shard).tolist():
            take = np.flatnonzero(shard == s)
            local = sorted_rows[take] - self.offsets[s]
            # Each run of consecutive rows is copied from a slice of the map straight into `out`:
            # a fancy read of the map would first make a copy of all the rows it reads.
            starts = np.flatnonzero(np.diff(local) != 1) + 1
            for a, b in zip([0, *starts.tolist()], [*starts.tolist(), len(local)]):
                out[ascending[take[a:b]]] = self.maps[s][local[a]:local[b - 1] + 1]
        if self.transform is not None:
            self.transform.transform_inplace(out)
        return out

    # -- the epoch's order and its batches -------------------------------------------
    def _rows_per(self, nbytes: int) -> int:
        return max(1, nbytes // max(1, self.shape[1] * self.itemsize))

    def _plan(self, batch: int) -> tuple[int, int]:
        """Rows per chunk and per buffer, whole batches each: no batch spans two buffers."""
        chunk = max(batch, self._rows_per(CHUNK_BYTES) // batch * batch)
        return chunk, max(chunk, self._rows_per(BUFFER_BYTES) // chunk * chunk)

    def order(self, rng: np.random.Generator, shuffle: bool, batch: int) -> np.ndarray:
        """Positions 0..n-1 in this epoch's order (see the module docstring)."""
        n = self.shape[0]
        if not shuffle:
            return np.arange(n)
        chunk, buffer = self._plan(batch)
        if n <= buffer:
            return rng.permutation(n)  # one buffer: exactly what an in-memory array gets
        whole = n // chunk  # whole chunks are shuffled; the short tail ends the epoch
        runs = [np.arange(s, s + chunk) for s in (rng.permutation(whole) * chunk).tolist()]
        runs.append(np.arange(whole * chunk, n))
        group = buffer // chunk
        parts = []
        for g in range(0, len(runs), group):
            part = np.concatenate(runs[g:g + group])
            rng.shuffle(part)
            parts.append(part)
        return np.concatenate(parts)

    def batches(self, order: np.ndarray, batch: int, first: int = 0, dtype=None):
        """(Xb, positions) for each mini-batch of `order` from batch `first` on: one
        buffer's rows are read at a time (a few long runs, in file order), then its
        batches are gathered from it in memory."""
        _, per_buffer = self._plan(batch)
        start = first * batch // per_buffer * per_buffer
        for lo in range(start, len(order), per_buffer):
            window = order[lo:lo + per_buffer]
            data = self.read(window, dtype)  # row i of data is position window[i]
            offsets = range(max(first * batch - lo, 0), len(window), batch)
            for b in offsets:
                # The buffer's last batch goes out as a copy: a view would keep the whole buffer
                # alive while the next one is read, two buffers at once.
                rows = data[b:b + batch]
                yield (rows.copy() if b == offsets[-1] else rows), window[b:b + batch]
            data = rows = None


def wants_stream(X) -> bool:
    """True for inputs read a buffer at a time rather than moved to the device whole."""
    return isinstance(X, (RowSource, np.memmap))


def as_source(X) -> RowSource:
    """`X` as a RowSource: itself if it is one, else a source over the one array."""
    return X if isinstance(X, RowSource) else RowSource([X])


# -- data folders ------------------------------------------------------------------------
def is_folder(path: Path) -> bool:
    """A folder of .npy data (X.npy and y.npy, or their shards)."""
    return path.is_dir() and any(_SHARD.match(p.name) for p in path.iterdir())


def _open(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path} is not a readable .npy file ({exc}); write it with numpy.save "
                         "or mlp-backends data convert") from exc


def open_folder(path, labels_optional: bool = False) -> tuple[RowSource, np.ndarray | None]:
    """Features (memory-mapped) and labels (read: one number per row) of a data folder."""
    path = Path(path)
    files = {}
    for p in sorted(path.iterdir()):
        if m := _SHARD.match(p.name):
            files.setdefault(m.group(1), []).append(p)
    xs, ys = files.get("X", []), files.get("y", [])
    if not xs:
        raise InputError(f"{path} holds no X.npy (or X-00000.npy shards); "
                         "write one with numpy.save or mlp-backends data convert")
    if ys and [p.name[1:] for p in xs] != [p.name[1:] for p in ys]:
        raise InputError(f"{path}: the X and y files do not pair up ({', '.join(p.name for p in xs + ys)}); "
                         "every X-NNNNN.npy needs its y-NNNNN.npy")
    maps = [_open(p) for p in xs]
    for p, m in zip(xs, maps):
        if m.dtype.kind not in "biuf" or m.ndim != 2:
            raise InputError(f"{p}: features must be a 2-D numeric array, got {m.dtype} {m.shape}")
    source = RowSource(maps)
    if not ys:
        if labels_optional:
            return source, None
        raise InputError(f"{path} holds features but no y.npy (labels); training needs them")
    labels = [np.asarray(_open(p)) for p in ys]
    for p, m, y in zip(ys, maps, labels):
        if y.ndim != 1 or y.shape[0] != m.shape[0]:
            raise InputError(f"{p} has shape {y.shape} but its features have {m.shape[0]} rows; "
                             "they must have one label per sample")
    return source, np.concatenate(labels)
