"""Readers for the user's own data files: `.npz`, `.csv` and MNIST-format IDX.

Each returns host NumPy arrays `(X, y)`: X float (n, d), y the labels as
stored (integers, or strings for a CSV whose label column is not numeric),
or None when the file holds features only and that is allowed. Every
failure is an `InputError` whose one line names the file, what is wrong
and what to do.
"""

from __future__ import annotations

import csv
import gzip
import struct
import zipfile
from pathlib import Path

import numpy as np

from . import validation
from .errors import InputError

# IDX type codes (from the format's definition) -> big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _features(X, path) -> np.ndarray:
    if X.dtype == object or X.dtype.kind not in "biuf":
        raise InputError(f"{path}: X must be numeric, got dtype {X.dtype}; convert it before saving")
    if X.ndim < 2 or X.shape[0] == 0:
        raise InputError(f"{path}: X must have shape (n_samples, n_features) with at least one row, "
                         f"got {X.shape}")
    X = X.reshape(X.shape[0], -1)  # images (n, h, w) become rows of pixels
    if not np.all(np.isfinite(X)):
        raise InputError(f"{path}: X holds NaN or infinite values; fill or drop them first")
    return X if X.dtype.kind == "f" else X.astype(np.float64)


def _labels_match(X, y, path, what="y") -> None:
    if y.ndim != 1:
        raise InputError(f"{path}: {what} must be 1-D labels, got shape {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise InputError(f"{path}: X has {X.shape[0]} rows but {what} has {y.shape[0]}; "
                         "they must have one label per sample")


def read_npz(path, labels_optional: bool = False):
    """Arrays `X` (n, d) and `y` (n,) from an .npz (y may be absent if labels_optional).

    Its headers are checked first (validation.npz_contents): no pickles, sizes that
    agree, bounded inflation; only X and y are read."""
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
    X = _features(arrays["X"], path)
    y = arrays.get("y")
    if y is not None:
        if y.dtype == object:
            raise InputError(f"{path}: y has dtype object; save numeric or string labels")
        _labels_match(X, y, path)
        validation.class_labels(y, f"{path}: y")
    return X, y


def _number_column(values: np.ndarray):
    """Floats if every cell of a str column parses as a number, else None."""
    try:
        return values.astype(np.float64)
    except ValueError:
        return None


def read_csv(path, target: str | None = None, n_features: int | None = None):
    """A CSV with a header line; the label column is `target` (default: the last).

    If `n_features` is given, no `target` was named, and the file has exactly
    that many columns, it is read as features only (y is None): that is how
    `predict` reads files without labels.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not a UTF-8 text CSV ({exc.reason}); export it as CSV (UTF-8)") from exc
    rows = [r for r in rows if r and any(c.strip() for c in r)]  # blank lines carry nothing
    if not rows:
        raise InputError(f"{path} is empty; a CSV needs a header line and data rows")
    header, body = [c.strip() for c in rows[0]], rows[1:]
    if _number_column(np.array(header)) is not None:
        raise InputError(f"{path}: the first line looks like data, not a header; add a header line with column names")
    if not body:
        raise InputError(f"{path} has a header but no data rows")
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise InputError(f"{path} line {line} has {len(row)} fields but the header has {len(header)}; "
                             "every row needs one value per column")
    cells = np.array(body, dtype=str)
    cells = np.char.strip(cells)
    features_only = target is None and n_features is not None and len(header) == n_features
    if features_only:
        t = None
    elif target is None:
        t = len(header) - 1
    elif target in header:
        t = header.index(target)
    else:
        raise InputError(f"{path} has no column {target!r}; its columns are: {', '.join(header)}")
    if not features_only and len(header) < 2:
        raise InputError(f"{path} has only one column; it needs feature columns and a label column")
    feature_cols = [j for j in range(len(header)) if j != t]
    X = _number_column(cells[:, feature_cols])
    if X is None or not np.all(np.isfinite(X)):
        for j in feature_cols:
            for i, cell in enumerate(cells[:, j]):
                try:
                    ok = np.isfinite(float(cell))
                except ValueError:
                    ok = False
                if not ok:
                    raise InputError(f"{path} line {i + 2}, column {header[j]!r}: {str(cell)!r} is not a finite number; "
                                     "features must be numeric (use --target to name the label column)")
    y = None
    if t is not None:
        raw = cells[:, t]
        if np.any(raw == ""):
            line = int(np.argmax(raw == "")) + 2
            raise InputError(f"{path} line {line}: the label column {header[t]!r} is empty; every row needs a label")
        numbers = _number_column(raw)
        if numbers is not None and np.all(np.isfinite(numbers) & (numbers == np.round(numbers))):
            y = numbers.astype(np.int64)
        else:
            y = numbers if numbers is not None else raw  # non-numeric labels stay as they are
            validation.class_labels(y, f"{path}: the label column {header[t]!r}", first_row=2, row="line")
    return X, y


def _read_idx_array(path) -> np.ndarray:
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = validation.read_bounded(f, validation.inflation_limit(Path(path).stat().st_size), str(path))
    except (OSError, EOFError) as exc:  # gzip: bad magic or cut short
        raise InputError(f"{path} is not a readable IDX file ({exc}); download it again") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise InputError(f"{path} is not an IDX file (bad magic number); "
                         "expected MNIST-format files like train-images-idx3-ubyte")
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise InputError(f"{path} is truncated (its header is cut short); download it again")
    shape = struct.unpack(f">{ndim}I", raw[4:head])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - head != expected:
        raise InputError(f"{path} is truncated or padded: shape {shape} needs {expected} bytes of data, "
                         f"found {len(raw) - head}; download it again")
    return np.frombuffer(raw, dtype=dtype, offset=head).reshape(shape)


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


def read_idx(path, labels_optional: bool = False):
    """Images from an `*-idx3-ubyte[.gz]` file and labels from its `*-idx1-ubyte[.gz]` partner."""
    path = Path(path)
    X = _features(_read_idx_array(path), path)
    labels = idx_labels_path(path)
    if labels is None:
        if labels_optional:
            return X, None
        raise InputError(f"no labels file next to {path}; expected "
                         f"{path.name.replace('idx3', 'idx1').replace('images', 'labels')} in the same folder")
    y = _read_idx_array(labels)
    _labels_match(X, y, labels, what="the labels file")
    return X, y.astype(np.int64)
