"""How an `MLP` takes its inputs: features checked and placed on the model's device (or
read from disk a block at a time), labels as one-hot targets, and results handed back
in the input's kind of array. `MLP` inherits these from `ModelInputs`; the rules
themselves are validation.py's."""

from __future__ import annotations

import numpy as np
from array_api_compat import device, to_device

from . import chunks, outofcore, train, validation
from .errors import InputError, InputTypeError


class ModelInputs:
    """The input side of `MLP` (it needs the model's backend, sizes, dtype and saved
    preprocessing): each method turns what a caller passed into what the math takes."""

    def device_input(self, X):
        """X as a 2-D array of the model's dtype on its device, finite in that dtype, and
        how to give results back (validation.features holds the rules).

        For device arrays the finiteness check is one reduction, read once; only a
        failure reads the data back, to name the bad row.
        """
        b = self.backend
        X = self.preprocessing.columns(X)
        if b.owns(X) and not isinstance(X, np.ndarray):  # NumPy input takes the checked host path
            def back(r):
                return r
            source = _device_or_none(X)
            if source is not None and source != b.device:  # e.g. strict's device1: compute here, answer there
                X = to_device(X, b.device)
                def back(r, source=source):
                    return to_device(r, source)
            validation.check_shape(X.shape, self.sizes[0])
            if not b.xp.isdtype(X.dtype, ("real floating", "integral")):
                raise InputTypeError(f"X must be numeric, got dtype {X.dtype}")
            cast = X if X.dtype == b.dtype(self.dtype) else b.xp.astype(X, b.dtype(self.dtype))
            if not bool(b.xp.all(b.xp.isfinite(cast))):
                validation.check_finite(b.to_numpy(X), self.dtype)
            return self.preprocessing.scale_array(cast, lambda a: b.asarray(a, self.dtype)), back
        host = validation.features(X, self.dtype, n_features=self.sizes[0])
        owned = not (isinstance(X, np.ndarray) and np.shares_memory(host, X))
        return b.asarray(self.preprocessing.scale_host(host, owned), self.dtype), b.to_numpy

    def disk_rows(self, X) -> outofcore.RowSource:
        """Host rows read from disk a buffer at a time (a memory map): checked block by
        block, never moved whole."""
        source = outofcore.as_source(X)
        self.check_shape(source.shape)
        if source.dtype.kind not in "biuf":
            raise InputTypeError(f"X must be numeric, got dtype {source.dtype}")
        bad = chunks.first_nonfinite(source, "checking X")
        if bad is not None:
            value = source[bad[0]:bad[0] + 1][0, bad[1]].item()
            raise InputError(f"X contains NaN or infinity ({value} at row {bad[0]}, column {bad[1]}); "
                             "remove or impute those values first")
        return source if self.preprocessing.scaler is None else source.with_transform(self.preprocessing.scaler)

    def device_rows(self, X):
        """X checked (validation.features holds the rules) and placed as the model computes on
        it: a 2-D array of the model's dtype on its backend's device."""
        return self.device_input(X)[0]

    def disk_blocks(self, X, y=None):
        """(rows, labels) of host data read from disk, about 32 MB of rows at a time."""
        source = outofcore.as_source(X)
        self.check_shape(source.shape)
        blocks = chunks.row_blocks(len(source), source.shape[1] * 4, train.EVAL_BLOCK_BYTES)
        for lo, hi in blocks if len(source) else [(0, 0)]:
            yield source.read(np.arange(lo, hi), np.dtype(self.dtype)), (None if y is None else y[lo:hi])

    def host_blocks(self, X, y=None):
        """Row ranges of a large in-memory NumPy X, or None to take X whole.

        Scoring every row at once builds each layer's activations (and BLAS's
        work buffers) for all of them, which on MNIST-sized data outgrows the
        data itself; blocks whose rows and activations take about
        `train.EVAL_BLOCK_BYTES` bound that. X is checked whole first (a block
        at a time), so an error names the row in X rather than in a block; a y
        of another length takes the whole path, which names the mismatch.
        """
        if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == self.sizes[0]):
            return None
        # A row's share: its input, and the three arrays each later layer makes (z, z + b, activation).
        row_bytes = (self.sizes[0] + 3 * sum(self.sizes[1:])) * np.dtype(self.dtype).itemsize
        blocks = list(chunks.row_blocks(len(X), row_bytes, train.EVAL_BLOCK_BYTES))
        if len(blocks) < 2 or (y is not None and (np.ndim(y) == 0 or len(y) != len(X))):
            return None
        validation.check_finite(X, self.dtype)
        return blocks

    def sliceable(self, y):
        """y as something sliced by position: pandas and lists become NumPy."""
        return y if isinstance(y, np.ndarray) or self.backend.owns(y) else np.asarray(y)

    def check_shape(self, shape) -> None:
        """Refuse a shape that is not (rows, the model's input size)."""
        validation.check_shape(shape, self.sizes[0])

    def device_targets(self, y, n: int, training: bool = False):
        """Integer labels or one-hot -> device one-hot of the model's dtype (validation.targets).
        A model with saved classes takes its labels as saved (names, or numbers like 3, 5, 7)."""
        host = self.backend.to_numpy(y) if self.backend.owns(y) else y
        if self.preprocessing.classes is not None and np.ndim(host) == 1:
            y = host = self.preprocessing.indices(host)
        validation.targets(host, n, self.sizes[-1], training=training)
        return train.one_hot_targets(self.backend, y, self.sizes[-1], self.dtype)


def _device_or_none(x):
    """x's device, or None for a library whose arrays carry none (MLX: work runs on its default device)."""
    try:
        return device(x)
    except AttributeError:
        return None
