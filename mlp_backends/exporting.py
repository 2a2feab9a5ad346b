"""`mlp-backends data export`: any data source written as a file the readers take.

So that a new user can make a CSV, an NPZ or an MNIST-format IDX pair from a
bundled set (or from synthetic data) and try the file paths of `train`,
`predict` and `evaluate` on it; the README's examples start this way.
Built-in sets keep their feature and class names (iris's `setosa`, ...).
Every file is written atomically: it is whole or absent.
"""

from __future__ import annotations

import csv
import gzip
import re
import struct
from pathlib import Path

import numpy as np

from . import data
from .errors import InputError
from .io import atomic_write


def _names(source: str, X: np.ndarray, y: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Column names, and the labels as the classes' names where a built-in set has them."""
    if source.strip() in data.BUILTIN:
        bunch = data.builtin_bunch(source.strip())
        columns = [re.sub(r"\W+", "_", re.sub(r"\s*\(.*?\)", "", str(n))).strip("_").lower()
                   for n in bunch.feature_names]
        names = np.asarray(bunch.target_names)
        return columns, names[y] if names.dtype.kind in "US" else y
    return [f"x{i}" for i in range(X.shape[1])], y


def _write_csv(path: Path, X, y, columns, target: str) -> None:
    def write(f):
        out = csv.writer(f, lineterminator="\n")
        out.writerow([*columns, target])
        for row, label in zip(X.tolist(), y.tolist()):
            out.writerow([*(f"{v:.10g}" for v in row), label])
    atomic_write(path, write, mode="w")


def _idx_labels_path(path: Path) -> Path:
    return path.with_name(path.name.replace("idx3", "idx1").replace("images", "labels"))


def _write_idx(path: Path, X, y) -> list[Path]:
    """Images as unsigned bytes and labels next to them (`images` -> `labels`, `idx3` -> `idx1`),
    gzipped if the name ends in .gz."""
    if not (np.issubdtype(X.dtype, np.integer) or np.array_equal(X, np.round(X))) or X.min() < 0 or X.max() > 255:
        raise InputError(f"IDX files hold whole numbers 0 to 255; this data's features run from {X.min():g} "
                         f"to {X.max():g}; export it as .csv or .npz instead")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() > 255:
        raise InputError("IDX labels are whole numbers 0 to 255; export these labels as .csv or .npz instead")
    labels = _idx_labels_path(path)
    opener = gzip.compress if path.suffix == ".gz" else (lambda b: b)
    n, d = X.shape
    side = int(round(d ** 0.5))
    h, w = (side, side) if side * side == d else (1, d)  # square images where they can be (digits: 8 x 8)
    images = struct.pack(">HBBIII", 0, 0x08, 3, n, h, w) + X.astype(np.uint8).tobytes()
    atomic_write(path, lambda f: f.write(opener(images)))
    atomic_write(labels, lambda f: f.write(opener(struct.pack(">HBBI", 0, 0x08, 1, n) + y.astype(np.uint8).tobytes())))
    return [path, labels]


def export(source: str, path: str, target: str = "target") -> tuple[int, int, list[Path]]:
    """Write `source` (see mlp_backends.data) to `path` (.csv, .npz or *-idx3-ubyte[.gz]);
    returns rows, features and the files written."""
    out = Path(path).expanduser()
    lower = out.name.lower()
    kind = ".csv" if lower.endswith(".csv") else ".npz" if lower.endswith(".npz") else \
        "idx" if "idx3-ubyte" in lower else None
    if kind is None:
        raise InputError(f"cannot tell a format from {path!r}; name a .csv, .npz or *-images-idx3-ubyte[.gz] file")
    if not out.parent.is_dir():
        raise InputError(f"cannot write {path}: folder {out.parent} does not exist; create it first")
    ds = data.read(source)
    if ds.y is None:
        raise InputError(f"{source} has no labels to export")
    X, y = np.asarray(ds.X), np.asarray(ds.y)
    if kind == ".csv":
        columns, labels = _names(source, X, y)
        _write_csv(out, X, labels, columns, target)
        files = [out]
    elif kind == ".npz":
        atomic_write(out, lambda f: np.savez_compressed(f, X=X, y=y))
        files = [out]
    else:
        files = _write_idx(out, X, y)
    return X.shape[0], X.shape[1], files
