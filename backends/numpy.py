"""NumPy on the CPU: the reference backend, always usable.

`compile(step)` rebuilds the step on `lean_numpy(xp)`, the same namespace with the
reductions a step calls bound straight to their ufuncs, with the elementwise
kernels and the optimizer applied in place (backends/numpy_inplace.py):
identical numbers, fewer batch-sized temporaries, and no second copy of the
parameters and moments during an update.
"""

from __future__ import annotations

from mlp_backends.backend import Backend, Probe


def lean_numpy(xp):
    """array_api_compat.numpy `xp`, except `sum`, `max`, `argmax` and `astype`.

    `np.sum(x)` is `np.add.reduce(x)` behind Python layers (array-api-compat's,
    then NumPy's own dispatch) that cost a microsecond or two per call; a small
    network's step makes dozens of such calls, the article's hand-written step
    fewer. These call the ufunc or method underneath directly (for `sum` and
    `max`, on floating arrays only); everything else is the compat namespace's.
    The result is a plain namespace object: attribute look-ups stay as cheap
    as a module's.
    """
    import types

    import numpy as np

    add_reduce, max_reduce = np.add.reduce, np.maximum.reduce

    def sum(x, /, *, axis=None, dtype=None, keepdims=False):
        if dtype is not None or x.dtype.kind != "f":
            return xp.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)
        return add_reduce(x, axis=axis, keepdims=keepdims)

    def max(x, /, *, axis=None, keepdims=False):
        if x.dtype.kind != "f":
            return xp.max(x, axis=axis, keepdims=keepdims)
        return max_reduce(x, axis=axis, keepdims=keepdims)

    def argmax(x, /, *, axis=None, keepdims=False):
        return x.argmax(axis=axis, keepdims=keepdims)

    def astype(x, dtype, /, *, copy=True, device=None):
        if device not in (None, "cpu"):
            return xp.astype(x, dtype, copy=copy, device=device)
        return x.astype(dtype, copy=copy)

    names = {k: getattr(xp, k) for k in dir(xp) if not k.startswith("__")}
    return types.SimpleNamespace(**{**names, "sum": sum, "max": max, "argmax": argmax, "astype": astype,
                                    "__name__": "lean_numpy"})


class NumPyBackend(Backend):
    """NumPy on the CPU: the reference every other backend is checked against."""

    name = "numpy"
    priority = 0

    @classmethod
    def probe(cls) -> Probe:
        import numpy as np

        x = np.arange(4.0)
        if float(x @ x) != 14.0:
            return Probe(False, "numpy computed 0+1+4+9 wrongly", version=np.__version__)
        return Probe(True, devices=("cpu",), version=np.__version__)

    def _setup(self, device):
        import array_api_compat.numpy as xp

        if device not in (None, "cpu"):
            raise ValueError(f"numpy runs on 'cpu' only, not {device!r}")
        return xp, "cpu"

    def _lean(self):
        if not hasattr(self, "_lean_xp"):
            self._lean_xp = lean_numpy(self.xp)
        return self._lean_xp

    def compile_step(self, step):
        """The step on `lean_numpy`, with in-place kernels, and with the optimizer applied
        in place when it is one of optim.py's (backends/numpy_inplace.py): same numbers.
        Such a step also has `tally(batch, n)`, the same update with its loss and hits
        counted per block of batches (backends/numpy_tally.py), which train.run uses."""
        from backends import numpy_tally
        from backends.numpy_inplace import InPlaceUpdate, kernels

        rebuild = step.rebuild
        changes = {"xp": self._lean()}
        if step.config.get("kern") is None:  # a caller's own kernels stay
            changes["kern"] = kernels(step.config["activation"])
        if step.config.get("update") is not None or not InPlaceUpdate.supports(step.config["optimizer"]):
            return rebuild(**changes)
        update = InPlaceUpdate(step.config["optimizer"])
        fast = update.guard(rebuild(**changes, update=update))
        if numpy_tally.supports(fast.config):
            # The training loop's version: loss and hits counted per block of batches.
            fast.tally = lambda batch, n=None: numpy_tally.Tally(fast.config, update, batch, n)
        return fast
