"""Convert any data source once into a folder of `.npy` files, for training from disk.

    mlp-backends data convert big.csv big/

The folder gets `X.npy` (the features: float32 for a CSV, the stored dtype
for NPZ and IDX, so MNIST's bytes stay bytes) and `y.npy` (the labels as
read). Features are written a block at a time into the memory-mapped output,
so a conversion holds a few blocks of memory whatever the file's size. The
folder is written under a temporary name and renamed when complete: an
interrupted or failed conversion leaves nothing behind.
"""

from __future__ import annotations

import ast
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import chunks, csvfile, data, datafiles, loadprogress
from .errors import InputError


def _npy(folder: Path):
    """A function (shape, dtype) -> writable memory map of folder/X.npy."""
    return lambda shape, dtype: np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=dtype, shape=shape)


def _shrink_npy(path: Path, rows: int) -> None:
    """Rewrite an .npy header for fewer rows (padded to the same length) and cut the file."""
    with open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(version, np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        start = f.tell()
        prefix = 10 if version == (1, 0) else 12
        header = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran,
                       "shape": (rows, *shape[1:])})
        room = start - prefix
        f.seek(prefix)
        f.write(header.encode("latin1").ljust(room - 1) + b"\n")
        f.truncate(start + rows * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)
    assert ast.literal_eval(header)["shape"][0] == rows


def _npz_features(path: Path, folder: Path) -> None:
    """Copy the npz's X into folder/X.npy a block at a time (any size, compressed or not)."""
    try:
        with zipfile.ZipFile(path) as z, z.open("X.npy") as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
                version, np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            if fortran or dtype.hasobject or len(shape) < 2 or dtype.kind not in "biuf":
                raise InputError(f"{path}: X must be a numeric array of rows (C order), got {dtype} {shape}; "
                                 "save it with numpy.savez(path, X=X, y=y)")
            out = _npy(folder)((shape[0], int(np.prod(shape[1:]))), dtype)
            flat = memoryview(out.reshape(-1)).cast("B")
            step = chunks.CHUNK_BYTES
            with loadprogress.bar(out.nbytes, f"converting {path.name}") as progress:
                for lo in range(0, out.nbytes, step):
                    got = f.readinto(flat[lo:lo + step])
                    if got < min(step, out.nbytes - lo):
                        raise InputError(f"{path} is truncated: X.npy ends early; save it again")
                    progress.update(got)
            out.flush()
    except KeyError:
        raise InputError(f"{path} has no array 'X'; it needs 'X' (features) and 'y' (labels): "
                         "np.savez(path, X=X, y=y)") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable .npz file (truncated or corrupt: {exc})") from exc


def _write(source: str, folder: Path, target: str | None) -> None:
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".csv" and path.is_file():
        X, y = csvfile.read_csv(path, target, dtype=np.float32, allocate=_npy(folder))
        n = X.shape[0]
        del X
        if n < np.load(folder / "X.npy", mmap_mode="r").shape[0]:
            _shrink_npy(folder / "X.npy", n)
    elif suffix == ".npz" and path.is_file():
        _npz_features(path, folder)
        with np.load(path, allow_pickle=False) as z:
            if "y" not in z.files:
                raise InputError(f"{path} has arrays {sorted(z.files)}; it needs 'X' (features) and 'y' (labels): "
                                 "np.savez(path, X=X, y=y)")
            y = z["y"]
    elif "idx3-ubyte" in path.name.lower() and path.is_file():
        X, y = datafiles.read_idx(path, allocate=_npy(folder))
        del X
    else:  # built-in, synthetic, a folder: read whole (they fit), then saved as they are
        ds = data.read(source, target=target)
        if ds.y is None:
            raise InputError(f"{source} has no labels; a training folder needs them")
        X = ds.X if isinstance(ds.X, np.ndarray) else ds.X.read(np.arange(len(ds.X)))
        np.save(folder / "X.npy", X)
        y = ds.y
    X = np.load(folder / "X.npy", mmap_mode="r")
    bad = chunks.first_nonfinite(X, "checking")
    if bad is not None:
        raise InputError(f"{source}: X holds NaN or infinite values (the first in row {bad[0]}, column {bad[1]}, "
                         "counting from 0); fill or drop them first")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise InputError(f"{source}: X has {X.shape[0]} rows but y has {y.shape[0]}; "
                         "they must have one label per sample")
    np.save(folder / "y.npy", y)


def convert(source: str, folder, target: str | None = None) -> tuple[int, int, np.dtype]:
    """Write `source` (anything `data.read` takes) to `folder` as X.npy and y.npy.

    Returns (rows, features, dtype of X). The folder must not exist yet (or be
    empty); it appears only once complete.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder} already exists; convert into a new folder")
    if not folder.parent.is_dir():
        raise InputError(f"cannot write to {folder}: folder {folder.parent} does not exist; create it first")
    if target is not None and not source.lower().endswith(".csv"):
        raise InputError(f"--target names a CSV column, but {source!r} is not a .csv file")
    path = Path(source).expanduser()
    if (path.suffix.lower() in (".csv", ".npz") or "idx3-ubyte" in path.name.lower()) and not path.is_file():
        raise InputError(f"no file at {source}; check the path")
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        _write(source, work, target)
        X = np.load(work / "X.npy", mmap_mode="r")
        shape, dtype = X.shape, X.dtype
        del X
        if folder.exists():
            folder.rmdir()
        work.rename(folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return shape[0], shape[1], dtype
