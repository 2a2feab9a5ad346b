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
  its `*-idx1-ubyte[.gz]` labels next to it).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import datafiles, validation
from .defaults import DEFAULTS
from .errors import InputError
from .stratify import stratified_indices

BUILTIN = ("digits", "iris", "wine", "breast-cancer")
SYNTHETIC_DEFAULTS = {"n": 1000, "d": 20, "classes": 3, "seed": 0, "sep": 3.0}


@dataclass
class Standardizer:
    """x -> (x - mean) / scale, with scale 1 where a feature is constant.

    `constant` lists the columns left unscaled (their spread is zero), so
    that a caller can say so."""

    mean: np.ndarray
    scale: np.ndarray
    constant: list = field(default_factory=list)

    @classmethod
    def fit(cls, X: np.ndarray) -> "Standardizer":
        """Statistics in float64 whatever X's dtype: float32 sums of squares overflow early."""
        mean = X.mean(axis=0, dtype=np.float64)
        if not np.isfinite(mean).all():
            validation.check_finite(X, "float64")  # names a NaN's row and column
        with np.errstate(over="ignore", invalid="ignore"):  # safe_scale names the column
            std = X.std(axis=0, dtype=np.float64)
        constant = np.flatnonzero(validation.constant_columns(std, mean)).tolist()
        return cls(mean, validation.safe_scale(std, mean), constant)

    def note(self) -> str:
        """One line about the constant columns, or "" when there are none."""
        if not self.constant:
            return ""
        shown = ", ".join(map(str, self.constant[:10])) + (", ..." if len(self.constant) > 10 else "")
        return (f"note: {len(self.constant)} of {self.mean.shape[0]} features are constant in the training "
                f"part (columns {shown}); they are centred and left unscaled")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled X; float32 stays float32 (a 60000 x 784 set is big enough already)."""
        X = np.asarray(X)
        dtype = X.dtype if X.dtype.kind == "f" else np.float64
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise InputError(f"the data has shape {X.shape} but the model's standardization expects "
                             f"{self.mean.shape[0]} features per row; pass data with the columns the model was trained on")
        return ((X - self.mean.astype(dtype)) / self.scale.astype(dtype)).astype(dtype, copy=False)

    def as_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
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

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
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


def split(X: np.ndarray, y: np.ndarray, *, test_size: float = DEFAULTS["test_size"], seed: int = DEFAULTS["seed"],
          standardize: bool = True, name: str = "data",
          validation_size: float = DEFAULTS["validation_split"]) -> Split:
    """Stratified train/test split with a seed, then standardization fitted on train.

    y holds any labels (ints, strings); the split's y are indices into
    `classes` (the sorted distinct labels). validation_size > 0 takes that
    fraction of the training part as a stratified validation set, before the
    standardization is fitted, so the scaler sees the training rows only.
    """
    test_size, validation_size, seed = validation.check_params(
        test_size=test_size, validation_size=validation_size, seed=seed).values()
    X = validation.to_host(X)
    validation.check_shape(X.shape, None)
    y = validation.class_labels(y)
    if y.shape[0] != X.shape[0]:
        raise InputError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; pass one label per sample")
    classes, y_index = np.unique(y, return_inverse=True)
    X_tr, X_te, y_tr, y_te = _stratified(X, y_index, test_size, seed, "test split")
    X_va = y_va = None
    if validation_size:
        X_tr, X_va, y_tr, y_va = _stratified(X_tr, y_tr, validation_size, seed, "validation split")
    scaler = Standardizer.fit(X_tr) if standardize else None
    if scaler is not None:
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
        X_va = None if X_va is None else scaler.transform(X_va)
    return Split(name, X_tr, y_tr, X_te, y_te, classes.tolist(), scaler, X_va, y_va)


def synthetic(n: int = 1000, d: int = 20, classes: int = 3, seed: int = 0, sep: float = 3.0):
    """Gaussian classes in float32: X = mean[y] + N(0, 1) noise, balanced labels.

    Means are drawn with per-coordinate scale sep / sqrt(d), so two class
    means lie about sep * sqrt(2) apart whatever d is: learnable, not trivial.
    """
    if n < 1 or d < 1 or classes < 2 or not sep >= 0 or seed < 0:
        raise InputError(f"synthetic needs n >= 1, d >= 1, classes >= 2, sep >= 0 and seed >= 0; "
                         f"got n={n}, d={d}, classes={classes}, sep={sep}, seed={seed}")
    # X (float32), y and its permutation (int64), then the split's copies: refuse before drawing.
    validation.check_memory(n * d * 4 * 3 + n * 8 * 3, f"synthetic data of {n:,} x {d:,}",
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


def read(source: str, *, target: str | None = None, n_features: int | None = None) -> Dataset:
    """Read a data source (see the module docstring) into host arrays.

    target names a CSV's label column. n_features, when given, allows a
    features-only file with that many columns (no labels: y is None), which is
    how `predict` reads new data.
    """
    kind = check_source(source, target)
    source = source.strip()
    if kind == "builtin":
        return Dataset(source, *load_builtin(source))
    if kind == "synthetic":
        return Dataset(source, *synthetic(**_parse_synthetic(source)))
    path = Path(source).expanduser()
    readers = {".npz": lambda: datafiles.read_npz(path, labels_optional=n_features is not None),
               ".csv": lambda: datafiles.read_csv(path, target, n_features),
               "idx": lambda: datafiles.read_idx(path, labels_optional=n_features is not None)}
    return Dataset(source, *readers[kind]())


def check_source(source: str, target: str | None = None) -> str:
    """The kind of a data source ("builtin", "synthetic", ".npz", ".csv" or "idx"), or an
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
    lower = path.name.lower()
    kind = path.suffix.lower() if path.suffix.lower() in (".npz", ".csv") else "idx" if "idx3-ubyte" in lower else None
    if kind is None:
        if "idx1-ubyte" in lower:
            raise InputError(f"{source} is an IDX labels file; pass the images file (*-idx3-ubyte) instead")
        raise InputError(f"unknown data set {source!r}; use one of {', '.join(BUILTIN)}, "
                         "synthetic:n=...,d=...,classes=..., or a .npz, .csv or *-idx3-ubyte[.gz] file")
    if not path.is_file():
        raise InputError(f"no file at {source}; check the path")
    return kind


def load(name: str = "digits", *, test_size: float = DEFAULTS["test_size"], seed: int = DEFAULTS["seed"],
         target: str | None = None, validation_size: float = DEFAULTS["validation_split"]) -> Split:
    """A data source (built-in, synthetic or file), split and standardized."""
    ds = read(name, target=target)
    if ds.y is None:
        raise InputError(f"{name} has no labels; training needs them")
    return split(ds.X, ds.y, test_size=test_size, seed=seed, name=ds.name, validation_size=validation_size)
