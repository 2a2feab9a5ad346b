"""Readers for the user's own data files: `.npz`, `.csv` and MNIST-format IDX.

Each returns host NumPy arrays `(X, y)`: X (n, d) of the dtype asked for, or
as stored when none is (bytes stay bytes until the one cast), y the labels as
stored (integers, or strings for a CSV whose label column is not numeric),
or None when the file holds features only and that is allowed. Every
failure is an `InputError` whose one line names the file, what is wrong
and what to do.
"""

from __future__ import annotations

import gzip
import struct
import zipfile
from pathlib import Path

import numpy as np

from . import chunks, validation
from .csvfile import read_csv  # noqa: F401 - one place to import every reader from
from .errors import InputError

# IDX type codes (from the format's definition) -> big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _features(X, path, dtype=None) -> np.ndarray:
    """X as rows of numbers, checked finite a block at a time; cast to `dtype` if
    given, else kept as stored (one copy fewer for integer pixels)."""
    if X.dtype == object or X.dtype.kind not in "biuf":
        raise InputError(f"{path}: X must be numeric, got dtype {X.dtype}; convert it before saving")
    if X.ndim < 2 or X.shape[0] == 0:
        raise InputError(f"{path}: X must have shape (n_samples, n_features) with at least one row, "
                         f"got {X.shape}")
    X = X.reshape(X.shape[0], -1)  # images (n, h, w) become rows of pixels
    bad = chunks.first_nonfinite(X, f"checking {Path(path).name}")
    if bad is not None:
        raise InputError(f"{path}: X holds NaN or infinite values (the first in row {bad[0]}, column {bad[1]}, "
                         "counting from 0); fill or drop them first")
    if dtype is not None:
        return X.astype(dtype, copy=False)
    return X if X.dtype.isnative else X.astype(X.dtype.newbyteorder("="))


def _labels_match(X, y, path, what="y") -> None:
    if y.ndim != 1:
        raise InputError(f"{path}: {what} must be 1-D labels, got shape {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise InputError(f"{path}: X has {X.shape[0]} rows but {what} has {y.shape[0]}; "
                         "they must have one label per sample")


def read_npz(path, labels_optional: bool = False, dtype=None):
    """Arrays `X` (n, d) and `y` (n,) from an .npz (y may be absent if labels_optional).

    Its headers are checked first (validation.npz_contents): no pickles, sizes that
    agree, bounded inflation; only X and y are read. X comes as `dtype`, or as stored
    when dtype is None."""
    validation.npz_contents(path, InputError, ".npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("X", "y") if k in z.files}
            names = sorted(z.files)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InputError(f"{path} is not a readable .npz file (truncated or corrupt: {exc})") from exc
    except ValueError as exc:  # object arrays need pickle, which we never load
        raise InputError(f"{path} holds object arrays, which are not loaded (no pickle); "
                         "save numeric arrays X and y") from exc
    if "X" not in arrays or ("y" not in arrays and not labels_optional):
        raise InputError(f"{path} has arrays {names}; it needs 'X' (features) and 'y' (labels): "
                         "np.savez(path, X=X, y=y)")
    X = _features(arrays.pop("X"), path, dtype)
    y = arrays.get("y")
    if y is not None:
        if y.dtype == object:
            raise InputError(f"{path}: y has dtype object; save numeric or string labels")
        _labels_match(X, y, path)
        validation.class_labels(y, f"{path}: y")
    return X, y


def _read_idx_array(path, allocate=np.empty) -> np.ndarray:
    """The array of an IDX file, read straight into its final buffer (no second copy
    of the data, compressed or not); images (n, h, w) come as rows (n, h * w).
    allocate: (shape, dtype) -> that buffer (a memory map on disk when converting)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES or magic[3] == 0:
                raise InputError(f"{path} is not an IDX file (bad magic number); "
                                 "expected MNIST-format files like train-images-idx3-ubyte")
            ndim = magic[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise InputError(f"{path} is truncated (its header is cut short); download it again")
            shape = struct.unpack(f">{ndim}I", dims)
            rows = shape if ndim < 2 else (shape[0], int(np.prod(shape[1:], dtype=np.int64)))
            declared = int(np.prod(shape, dtype=np.int64)) * np.dtype(_IDX_DTYPES[magic[2]]).itemsize
            limit = validation.inflation_limit(Path(path).stat().st_size)
            if declared > limit:  # checked before allocating: a forged header must not cost gigabytes
                raise InputError(f"{path} declares shape {shape} ({validation.size_text(declared)}), more than "
                                 f"its {Path(path).stat().st_size} bytes can hold (limit "
                                 f"{validation.size_text(limit)}); refused as a decompression bomb or a bad header")
            array = allocate(rows, np.dtype(_IDX_DTYPES[magic[2]]))
            found = f.readinto(memoryview(array.reshape(-1)).cast("B")) if array.size else 0
            found += len(f.read(1 << 16))  # anything after the declared data means a wrong header
    except (OSError, EOFError) as exc:  # gzip: bad magic or cut short
        raise InputError(f"{path} is not a readable IDX file ({exc}); download it again") from exc
    if found != array.nbytes:
        size = f"{found}" if found < array.nbytes else f"more than {array.nbytes}"
        raise InputError(f"{path} is truncated or padded: shape {shape} needs {array.nbytes} bytes of data, "
                         f"found {size}; download it again")
    return array


def idx_labels_path(images: Path) -> Path | None:
    """The labels file that goes with an IDX images file, if it exists.

    MNIST and Fashion-MNIST name them train-images-idx3-ubyte /
    train-labels-idx1-ubyte (and t10k-...), with or without .gz.
    """
    name = images.name.replace("idx3", "idx1")
    candidates = [name.replace("images", "labels"), name]
    for c in list(candidates):
        candidates.append(c[:-3] if c.endswith(".gz") else c + ".gz")
    for c in candidates:
        if (images.parent / c).is_file():
            return images.parent / c
    return None


def read_idx(path, labels_optional: bool = False, dtype=None, allocate=np.empty):
    """Images from an `*-idx3-ubyte[.gz]` file and labels from its `*-idx1-ubyte[.gz]` partner.

    X comes as `dtype`, or as stored (bytes for MNIST) when dtype is None;
    allocate makes the images' buffer (see _read_idx_array)."""
    path = Path(path)
    X = _features(_read_idx_array(path, allocate), path, dtype)
    labels = idx_labels_path(path)
    if labels is None:
        if labels_optional:
            return X, None
        raise InputError(f"no labels file next to {path}; expected "
                         f"{path.name.replace('idx3', 'idx1').replace('images', 'labels')} in the same folder")
    y = _read_idx_array(labels)
    _labels_match(X, y, labels, what="the labels file")
    return X, y.astype(np.int64)
