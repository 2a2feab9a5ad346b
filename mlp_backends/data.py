"""Data sets on the host: loading, a stratified split, and standardization.

Everything here is NumPy on the host; the model moves arrays to its backend.
The standardization is fitted on the training part only and travels with the
model, so that prediction applies the same transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

BUILTIN = ("digits", "iris", "wine", "breast-cancer")


@dataclass
class Standardizer:
    """x -> (x - mean) / scale, with scale 1 where a feature is constant."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> "Standardizer":
        scale = X.std(axis=0)
        return cls(X.mean(axis=0), np.where(scale > 0, scale, 1.0))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.scale

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

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def load_builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    """One of scikit-learn's bundled data sets (no download)."""
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise InputError(
            "the built-in data sets come from scikit-learn, which is not installed; "
            "pip install 'mlp-backends[sklearn]'"
        ) from exc
    loaders = {"digits": datasets.load_digits, "iris": datasets.load_iris,
               "wine": datasets.load_wine, "breast-cancer": datasets.load_breast_cancer}
    if name not in loaders:
        raise InputError(f"unknown data set {name!r}; built in: {', '.join(BUILTIN)}")
    X, y = loaders[name](return_X_y=True)
    return X.astype(np.float64), y.astype(np.int64)


def split(X: np.ndarray, y: np.ndarray, *, test_size: float = 0.25, seed: int = 0,
          standardize: bool = True, name: str = "data") -> Split:
    """Stratified train/test split with a seed, then standardization fitted on train."""
    from sklearn.model_selection import train_test_split

    classes, y_index = np.unique(y, return_inverse=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y_index, test_size=test_size, stratify=y_index, random_state=seed
    )
    scaler = Standardizer.fit(X_tr) if standardize else None
    if scaler is not None:
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    return Split(name, X_tr, y_tr, X_te, y_te, classes.tolist(), scaler)


def load(name: str = "digits", *, test_size: float = 0.25, seed: int = 0) -> Split:
    """A built-in data set, split and standardized."""
    X, y = load_builtin(name)
    return split(X, y, test_size=test_size, seed=seed, name=name)
