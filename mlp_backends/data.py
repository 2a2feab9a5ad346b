"""Data sets on the host: loading, a stratified split, and standardization.

Everything here is NumPy on the host; the model moves arrays to its backend.
The standardization is fitted on the training part only and travels with the
model, so that prediction applies the same transform.

A data source is a string (what `--data` takes):
- a built-in set from scikit-learn, no download: digits, iris, wine, breast-cancer;
- `synthetic` or `synthetic:n=60000,d=784,classes=10,seed=0,sep=3`: Gaussian
  classes around random means, any size, learnable;
- a file: `.npz` (arrays X and y), `.csv` (a header line; the label column is
  `target`, default the last), or MNIST-format IDX (`*-idx3-ubyte[.gz]` with
  its `*-idx1-ubyte[.gz]` labels next to it);
- a folder of `.npy` files (`X.npy` and `y.npy`, or shards `X-00000.npy`,
  `y-00000.npy`, ...): memory-mapped and read a buffer at a time, for data
  larger than memory (outofcore.py); `mlp-backends data convert` writes one.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import chunks, datafiles, outofcore, validation
from .defaults import DEFAULTS
from .errors import InputError
from .stratify import stratified_indices

BUILTIN = ("digits", "iris", "wine", "breast-cancer")
SYNTHETIC_DEFAULTS = {"n": 1000, "d": 20, "classes": 3, "seed": 0, "sep": 3.0}


@dataclass
class Standardizer:
    """x -> (x - mean) / scale, with scale 1 where a feature is constant.

    Statistics are float64, computed a block of rows at a time; transforms
    run in the data's float dtype, a block at a time, so neither ever holds a
    temporary of the data's size. `constant` lists the columns left unscaled
    (their spread is zero), so that a caller can say so.
    """

    mean: np.ndarray
    scale: np.ndarray
    constant: list = field(default_factory=list)

    @classmethod
    def fit(cls, X: np.ndarray) -> "Standardizer":
        """Statistics in float64 whatever X's dtype: float32 sums of squares overflow early."""
        with np.errstate(over="ignore", invalid="ignore"):  # safe_scale names the column
            mean, std = chunks.mean_and_std(X)
        if not np.isfinite(mean).all():
            validation.check_finite(X, "float64")  # names a NaN's row and column
        constant = np.flatnonzero(validation.constant_columns(std, mean)).tolist()
        return cls(mean, validation.safe_scale(std, mean), constant)

    def note(self) -> str:
        """One line about the constant columns, or "" when there are none."""
        if not self.constant:
            return ""
        shown = ", ".join(map(str, self.constant[:10])) + (", ..." if len(self.constant) > 10 else "")
        return (f"note: {len(self.constant)} of {self.mean.shape[0]} features are constant in the training "
                f"part (columns {shown}); they are centred and left unscaled")

    def _check(self, X) -> None:
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise InputError(f"the data has shape {X.shape} but the model's standardization expects "
                             f"{self.mean.shape[0]} features per row; "
                             "pass data with the columns the model was trained on")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled copy of X; float32 stays float32 (a 60000 x 784 set is big enough already)."""
        X = np.asarray(X)
        self._check(X)
        out = np.empty(X.shape, dtype=X.dtype if X.dtype.kind == "f" else np.float64)
        out[...] = X  # the one copy (and cast); the scaling then runs in place
        return self.transform_inplace(out)

    def transform_inplace(self, X: np.ndarray) -> np.ndarray:
        """Scale a float array in place, a block of rows at a time; returns X."""
        self._check(X)
        mean, scale = self.mean.astype(X.dtype), self.scale.astype(X.dtype)
        for lo, hi in chunks.row_blocks(X.shape[0], X.shape[1] * X.itemsize):
            block = X[lo:hi]
            block -= mean
            block /= scale
        return X

    def as_dict(self) -> dict:
        """The statistics as JSON-able lists, as a saved model keeps them."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        """The standardizer `as_dict` wrote."""
        return cls(np.asarray(d["mean"], dtype=float), np.asarray(d["scale"], dtype=float))


@dataclass
class Split:
    """A train/test split, standardized with the training part's statistics."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list = field(default_factory=list)
    standardizer: Standardizer | None = None
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    feature_names: list[str] | None = None  # a CSV's feature and label column names
    target: str | None = None

    @property
    def n_features(self) -> int:
        """Columns of each row."""
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        """How many classes the labels hold."""
        return len(self.classes)


def _no_sklearn(name: str) -> InputError:
    return InputError(f"the built-in data set {name!r} comes from scikit-learn, which is not installed; "
                      'pip install "mlp-backends[sklearn]", or use your own .csv/.npz/IDX file or synthetic:...')


def builtin_bunch(name: str):
    """scikit-learn's Bunch for a bundled set (data, target, feature_names, target_names):
    the one part of data loading that needs the `[sklearn]` extra."""
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise _no_sklearn(name) from exc
    loaders = {"digits": datasets.load_digits, "iris": datasets.load_iris,
               "wine": datasets.load_wine, "breast-cancer": datasets.load_breast_cancer}
    if name not in loaders:
        raise InputError(f"unknown data set {name!r}; built in: {', '.join(BUILTIN)}")
    return loaders[name]()


def load_builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    """One of scikit-learn's bundled data sets (no download), as float64 X and int64 y."""
    bunch = builtin_bunch(name)
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


def _stratified(X, y, size: float, seed: int, what: str):
    train, test = stratified_indices(y, size, seed, what)
    return X[train], X[test], y[train], y[test]


def permute_rows(X: np.ndarray, order: np.ndarray) -> np.ndarray:
    """X[:] = X[order] in place, moving one row at a time along the permutation's
    cycles: no second copy of X, only one row of scratch."""
    done = np.zeros(len(order), dtype=bool)
    row = np.empty(X.shape[1:], dtype=X.dtype)
    for start in np.flatnonzero(order != np.arange(len(order))).tolist():
        if done[start]:
            continue
        row[...] = X[start]
        i = start
        while (j := int(order[i])) != start:
            X[i] = X[j]
            done[i] = True
            i = j
        X[i] = row
        done[i] = True
    return X


def _rows_in_order(X: np.ndarray, order: np.ndarray, dtype, copy: bool) -> np.ndarray:
    """X[order] as `dtype`: in place when allowed and X already has that dtype, else
    gathered (and cast) a block of rows at a time into the one new array."""
    if not copy and X.dtype == dtype and X.flags.writeable and X.flags.c_contiguous:
        return permute_rows(X, order)
    out = np.empty((len(order), *X.shape[1:]), dtype=dtype)
    row_bytes = max(X.itemsize, out.itemsize) * int(np.prod(X.shape[1:], dtype=np.int64))
    for lo, hi in chunks.row_blocks(len(order), row_bytes):
        out[lo:hi] = X[order[lo:hi]]
    return out


def split(X: np.ndarray, y: np.ndarray, *, test_size: float = DEFAULTS["test_size"],
          seed: int = DEFAULTS["seed"], standardize: bool = True, name: str = "data",
          validation_size: float = DEFAULTS["validation_split"], dtype=None,
          copy: bool = True) -> Split:
    """Stratified train/test split with a seed, then standardization fitted on train.

    y holds any labels (ints, strings); the split's y are indices into
    `classes` (the sorted distinct labels). validation_size > 0 takes that
    fraction of the training part as a stratified validation set, before the
    standardization is fitted, so the scaler sees the training rows only.

    The split is made on row indices; the rows are then arranged train,
    validation, test in one array of `dtype` (default: X's float dtype, else
    float64) and the parts are views of it, standardized in place. That array
    is the only copy of the data: with copy=False and X already of `dtype`, it
    is X itself, rearranged (what `load` does with the array it just read).
    """
    test_size, validation_size, seed = validation.check_params(
        test_size=test_size, validation_size=validation_size, seed=seed).values()
    if not isinstance(X, outofcore.RowSource):  # rows on disk stay there
        X = validation.to_host(X)
    validation.check_shape(X.shape, None)
    y = validation.class_labels(y)
    if y.shape[0] != X.shape[0]:
        raise InputError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; pass one label per sample")
    classes, y_index = np.unique(y, return_inverse=True)
    i_tr, i_te, y_tr, y_te = _stratified(np.arange(len(y_index)), y_index, test_size, seed, "test split")
    i_va = y_va = None
    if validation_size:
        i_tr, i_va, y_tr, y_va = _stratified(i_tr, y_tr, validation_size, seed, "validation split")
    if isinstance(X, outofcore.RowSource):
        return _split_rows(X, name, classes, y_index, [i_tr, i_va, i_te], standardize)
    parts = [i_tr] + ([] if i_va is None else [i_va]) + [i_te]
    dtype = np.dtype(dtype if dtype is not None else (X.dtype if X.dtype.kind == "f" else np.float64))
    arranged = _rows_in_order(np.asarray(X), np.concatenate(parts), dtype, copy)
    ends = np.cumsum([len(p) for p in parts])
    X_tr, X_te = arranged[:ends[0]], arranged[ends[-2]:]
    X_va = None if i_va is None else arranged[ends[0]:ends[1]]
    scaler = Standardizer.fit(X_tr) if standardize else None
    if scaler is not None:
        scaler.transform_inplace(arranged)
    return Split(name, X_tr, y_tr, X_te, y_te, classes.tolist(), scaler, X_va, y_va)


def _split_rows(X: outofcore.RowSource, name, classes, y_index, parts, standardize: bool) -> Split:
    """The split of data read from disk: each part a subset of the rows, in file order
    (reads stay sequential), standardized as it is read."""
    parts = [None if p is None else np.sort(p) for p in parts]
    subsets = [None if p is None else X.subset(p) for p in parts]
    scaler = Standardizer.fit(subsets[0]) if standardize else None
    (X_tr, X_va, X_te) = [None if p is None else p.with_transform(scaler) for p in subsets]
    (y_tr, y_va, y_te) = [None if p is None else y_index[p] for p in parts]
    return Split(name, X_tr, y_tr, X_te, y_te, classes.tolist(), scaler, X_va, y_va)


def synthetic(n: int = 1000, d: int = 20, classes: int = 3, seed: int = 0, sep: float = 3.0):
    """Gaussian classes in float32: X = mean[y] + N(0, 1) noise, balanced labels.

    Means are drawn with per-coordinate scale sep / sqrt(d), so two class
    means lie about sep * sqrt(2) apart whatever d is: learnable, not trivial.
    """
    if n < 1 or d < 1 or classes < 2 or not sep >= 0 or seed < 0:
        raise InputError(f"synthetic needs n >= 1, d >= 1, classes >= 2, sep >= 0 and seed >= 0; "
                         f"got n={n}, d={d}, classes={classes}, sep={sep}, seed={seed}")
    # X (float32), y and its permutation (int64), then the split's one copy: refuse before drawing.
    validation.check_memory(n * d * 4 * 2 + n * 8 * 3, f"synthetic data of {n:,} x {d:,}",
                            "ask for fewer rows (n=) or features (d=)")
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=sep / np.sqrt(d), size=(classes, d)).astype(np.float32)
    y = rng.permutation(np.arange(n) % classes)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X += means[y]
    return X, y.astype(np.int64)


def _parse_synthetic(source: str) -> dict:
    _, _, spec = source.partition(":")
    options = dict(SYNTHETIC_DEFAULTS)
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if key not in options or not eq:
            raise InputError(f"bad synthetic option {item!r}; write key=value with keys "
                             f"{', '.join(SYNTHETIC_DEFAULTS)}, e.g. synthetic:n=60000,d=784,classes=10")
        kind = type(SYNTHETIC_DEFAULTS[key])
        try:
            options[key] = kind(value) if kind is float else int(value.replace("_", ""))
        except ValueError:
            raise InputError(f"synthetic option {key} must be a {'number' if kind is float else 'whole number'}, "
                             f"got {value!r}") from None
    return options


@dataclass
class Dataset:
    """Features and labels as read, before any split: y holds the labels as
    stored (ints or strings), or None for a features-only file."""

    name: str
    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str] | None = None  # a CSV's header: what a saved model remembers
    target: str | None = None


def read(source: str, *, target: str | None = None, n_features: int | None = None, dtype=None,
         features: list[str] | None = None, saved_target: str | None = None) -> Dataset:
    """Read a data source (see the module docstring) into host arrays.

    target names a CSV's label column. n_features, when given, allows a
    features-only file with that many columns (no labels: y is None), which is
    how `predict` reads new data. dtype: the features' float dtype (default:
    floats as stored, anything else as float64). features and saved_target: the
    column names a model was trained on; a CSV that has them is read by name
    (csvfile.read_csv).
    """
    ds = _read(source, target, n_features, dtype, features, saved_target)
    if isinstance(ds.X, outofcore.RowSource):
        return ds  # read from disk a block at a time, cast then
    if dtype is not None or ds.X.dtype.kind != "f":
        ds.X = ds.X.astype(dtype or np.float64, copy=False)
    return ds


def _read(source, target, n_features, dtype, features=None, saved_target=None) -> Dataset:
    """`read`, except that with dtype None file features come as stored (bytes stay bytes)."""
    kind = check_source(source, target)
    source = source.strip()
    if kind == "builtin":
        return Dataset(source, *load_builtin(source))
    if kind == "synthetic":
        return Dataset(source, *synthetic(**_parse_synthetic(source)))
    path = Path(source).expanduser()
    optional = n_features is not None
    if kind == "folder":
        return Dataset(source, *outofcore.open_folder(path, labels_optional=optional))
    readers = {".npz": lambda: datafiles.read_npz(path, labels_optional=optional, dtype=dtype),
               ".csv": lambda: datafiles.read_csv(path, target, n_features, dtype=dtype or np.float64,
                                                  features=features, saved_target=saved_target, names=names),
               "idx": lambda: datafiles.read_idx(path, labels_optional=optional, dtype=dtype)}
    names = {}
    X, y = readers[kind]()
    return Dataset(source, X, y, names.get("feature_names"), names.get("target"))


def check_source(source: str, target: str | None = None) -> str:
    """The kind of a data source ("builtin", "synthetic", "folder", ".npz", ".csv" or "idx"), or an
    InputError saying why it cannot be read; nothing is read, so the CLI asks this first."""
    if not isinstance(source, str) or not source.strip():
        raise InputError("no data given; name a built-in set (digits, ...), synthetic:..., or a file")
    source = source.strip()
    if target is not None and not source.lower().endswith(".csv"):
        raise InputError(f"--target names a CSV column, but {source!r} is not a .csv file")
    if source in BUILTIN:
        if importlib.util.find_spec("sklearn") is None:
            raise _no_sklearn(source)
        return "builtin"
    if source == "synthetic" or source.startswith("synthetic:"):
        _parse_synthetic(source)
        return "synthetic"
    path = Path(source).expanduser()
    if outofcore.is_folder(path):
        return "folder"
    lower = path.name.lower()
    kind = path.suffix.lower() if path.suffix.lower() in (".npz", ".csv") else "idx" if "idx3-ubyte" in lower else None
    if kind is None:
        if "idx1-ubyte" in lower:
            raise InputError(f"{source} is an IDX labels file; pass the images file (*-idx3-ubyte) instead")
        raise InputError(f"unknown data set {source!r}; use one of {', '.join(BUILTIN)}, "
                         "synthetic:n=...,d=...,classes=..., a .npz, .csv or *-idx3-ubyte[.gz] file, "
                         "or a folder of .npy files (X.npy, y.npy)")
    if not path.is_file():
        raise InputError(f"no file at {source}; check the path")
    return kind


def load(name: str = "digits", *, test_size: float = DEFAULTS["test_size"], seed: int = DEFAULTS["seed"],
         target: str | None = None, validation_size: float = DEFAULTS["validation_split"],
         dtype=None) -> Split:
    """A data source (built-in, synthetic or file), split and standardized.

    dtype: the float dtype to train in (default: the data's float dtype, else
    float64). The data are cast once, while they are put in split order; a
    CSV is parsed straight into that dtype; that array is all the copy there is.
    """
    ds = _read(name, target, None, np.dtype(dtype) if dtype is not None and name.lower().endswith(".csv") else None)
    if ds.y is None:
        raise InputError(f"{name} has no labels; training needs them")
    parts = split(ds.X, ds.y, test_size=test_size, seed=seed, name=ds.name, validation_size=validation_size,
                  dtype=dtype, copy=False)
    parts.feature_names, parts.target = ds.feature_names, ds.target
    return parts
