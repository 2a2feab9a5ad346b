"""What a saved model does to raw rows and labels around the network: the
standardization it was trained with, its class labels and its column names.

`mlp-backends train --save` records them in the model's `extra`; an `MLP`
holding them (`MLP.load` of such a file) applies them wherever rows and labels
come in or predictions go out, so that Python and the CLI give the same answers
on the same raw rows. A model without them (every `MLP` built in Python) is
untouched: `Preprocessing.from_extra({})` does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import validation
from .data import Standardizer
from .errors import InputError


@dataclass(frozen=True)
class Preprocessing:
    """A saved model's standardization, class labels, feature names and label column (each
    None when the model has none), applied where rows and labels come in and predictions
    go out."""

    scaler: Standardizer | None = None
    classes: np.ndarray | None = None  # None: labels are the output indices 0..k-1 themselves
    feature_names: tuple[str, ...] | None = None

    @classmethod
    def from_extra(cls, extra: dict, sizes) -> "Preprocessing":
        """From a model's `extra`, checked against the network's sizes first."""
        validation.check_extra(extra, sizes)
        scaling = extra.get("standardization")
        classes = extra.get("classes")
        if classes is not None and classes == list(range(len(classes))):
            classes = None  # the indices are the labels: predictions keep the input's array type
        names = extra.get("feature_names")
        return cls(Standardizer.from_dict(scaling) if scaling else None,
                   None if classes is None else np.asarray(classes),
                   tuple(names) if names else None)

    # -- rows in ---------------------------------------------------------------------
    def columns(self, X):
        """A DataFrame's feature columns by name, in the order the model was trained on."""
        if self.feature_names is None or not hasattr(X, "columns") or not hasattr(X, "loc"):
            return X
        have = set(map(str, X.columns))
        missing = [c for c in self.feature_names if c not in have]
        if missing:
            shown = ", ".join(map(repr, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise InputError(f"X lacks the model's feature columns {shown}; it was trained on "
                             f"{len(self.feature_names)} named columns (model.extra['feature_names'])")
        return X.loc[:, list(self.feature_names)]

    def scale_host(self, X: np.ndarray, owned: bool) -> np.ndarray:
        """Standardized host rows: in place when the array is ours (a cast copy), else a copy."""
        if self.scaler is None:
            return X
        return self.scaler.transform_inplace(X) if owned and X.flags.writeable else self.scaler.transform(X)

    def scale_array(self, X, asarray=None):
        """Standardized rows of another array library, in X's dtype: the same two operations
        as the host path, so the same numbers. asarray: host array -> X's library and device
        (`backend.asarray`); None keeps NumPy operands, which a lazy Dask array takes."""
        if self.scaler is None:
            return X
        dtype = np.dtype(str(X.dtype).rsplit(".", 1)[-1])  # "torch.float32" -> float32
        mean, scale = self.scaler.mean.astype(dtype), self.scaler.scale.astype(dtype)
        if asarray is not None:
            mean, scale = asarray(mean), asarray(scale)
        return (X - mean) / scale

    # -- labels in and out -------------------------------------------------------------
    def indices(self, y):
        """Labels as given -> output indices, where the model has saved classes; one-hot rows,
        and every label of a model without classes, pass as they are. Lazily for Dask."""
        if self.classes is None or np.ndim(y) != 1:
            return y
        if hasattr(y, "map_blocks"):
            return y.map_blocks(label_indices, classes=self.classes, dtype=np.int64)
        return label_indices(y, self.classes)

    def labels(self, indices) -> np.ndarray:
        """Output indices (host) -> the class labels they stand for."""
        return self.classes[np.asarray(indices)]


def label_indices(y, classes: np.ndarray, what: str = "y") -> np.ndarray:
    """Class labels (names, or numbers such as 3, 5, 7) -> their indices in `classes`; labels
    not among them are an InputError naming them (`what` names the labels' source)."""
    index = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
    values = np.asarray(y).tolist()
    unknown = sorted({str(v) for v in values if v not in index})
    if unknown:
        raise InputError(f"{what} has labels the model does not know: {', '.join(unknown[:5])}; "
                         f"its classes are {', '.join(map(str, classes[:20]))}")
    return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
