"""The optimizers of mlp_backends/optim.py and the step's elementwise kernels,
applied in place on NumPy arrays.

The pure updates make new parameters and moments every step, so while one
runs, the old and the new copies are alive together, with each expression's
temporaries. These do the same operations, in the same order and on the
same operands (backends/inplace_formulas.py, shared with PyTorch; the numbers
are bit-identical, tests/test_inplace.py checks every optimizer), writing
into the existing parameter and moment buffers. Training then holds the parameters, the moments and the step's
fresh gradients (reused as scratch once read), plus one small scratch block
for Nesterov and Adam, which update each array in blocks of about `BLOCK`
elements so that the scratch stays small whatever the layer's size.

A bad batch changes nothing: the step runs under `np.errstate(call=...)`,
which notes any overflow, invalid operation or division by zero that NumPy
meets in the forward pass, the backward pass or the step `lr * g`; if one
was met or the loss is not finite, the update is skipped and the step
reports its loss as NaN, so that the epoch counts as diverged. Deciding
this in Python costs nothing here: NumPy's arrays and floating-point flags
are on the host, there is no device to wait for (a GPU backend would mask
the writes on the device instead). Not caught before it is written: an
overflow inside momentum's or Adam's own update (the gradients, the loss
and the rest being finite); it still makes the loss NaN.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import numpy as np

from backends.inplace_formulas import InPlaceOptimizer
from mlp_backends import nn


class InPlaceUpdate:
    """`update(params, grads, state, t, loss) -> (params, state, loss)` for `train.make_step`,
    writing into `params` and `state`; `grads` are overwritten too (they are the step's own).
    Use the step through `guard(step)`, which watches NumPy's floating-point errors."""

    mutates_params = True

    supports = staticmethod(InPlaceOptimizer.supports)

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.formulas = InPlaceOptimizer(optimizer, np, lambda n, like: np.empty(n, like.dtype),
                                          lambda value, like: _number(value, like.dtype))
        self.errors: list[str] = []  # floating-point errors met in the current step
        # in_step: inside a step, where a floating-point error is noted, not warned about
        # (numpy_tally's step sets it around its own arithmetic too).
        self._watching = self.in_step = False

    def guard(self, step):
        """`step`, with NumPy's floating-point errors noted in `self.errors` while it runs.

        The guarded step has `watch()`, a context in which to call it many times
        (train.run enters it once): entering np.errstate costs about as much as
        the rest of the small network's update, so once per step is too often.
        """
        def guarded(params, state, Xb, Yb, t):
            if not self._watching:
                with self.watch():
                    return guarded(params, state, Xb, Yb, t)
            self.errors.clear()
            self.in_step = True
            out = step(params, state, Xb, Yb, t)
            self.in_step = False  # (after an exception, leaving watch() resets it)
            return out

        guarded_step = step.wrapping(guarded, mutates_params=True)
        guarded_step.watch = self.watch
        return guarded_step

    @contextlib.contextmanager
    def watch(self):
        """np.errstate that sends overflow, invalid and divide errors to `_note`."""
        if self._watching:
            yield
            return
        with np.errstate(over="call", invalid="call", divide="call", call=self._note):
            self._watching = True
            try:
                yield
            finally:
                self._watching = self.in_step = False
                self.errors.clear()

    def _note(self, kind, flag):
        if self.in_step:
            self.errors.append(kind)
        else:  # between steps (a callback, say): what NumPy does by default
            warnings.warn(f"{kind} encountered in a NumPy operation", RuntimeWarning, stacklevel=2)

    def __call__(self, params, grads, state, t, loss):
        self.formulas.scale_gradients(grads)  # an absurd rate overflows here, before any write
        if self.errors or not np.isfinite(loss):
            return params, state, loss + np.nan  # the batch is skipped
        self.formulas.apply(params, grads, state, t)
        if self.errors:  # the update itself overflowed: too late to skip, not too late to say
            return params, state, loss + np.nan
        return params, state, loss


# The kernels (nn.Kernels) evaluate nn.py's expressions operation by operation,
# in the same order (so the numbers are bit-identical), writing into the array
# that nn hands over as the step's own temporary: no batch-sized allocation
# per call, and one batch-sized array alive where the pure functions hold two.

def kernels(activation: str) -> nn.Kernels:
    """nn.kernels(xp, activation) for NumPy, computed in place."""
    if activation not in nn.ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(nn.ACTIVATIONS)}")
    return nn.Kernels(activate=_ACTIVATE[activation], activation_grad=_ACTIVATION_GRAD[activation],
                      softmax_delta=_softmax_delta)


@functools.lru_cache(maxsize=256)
def constant(value, dtype) -> np.ndarray:
    """A Python number as a read-only 0-d array of `dtype`. The same number in the same
    arithmetic (NumPy casts a Python operand to the array's dtype), but NumPy resolves a
    Python operand's type on every call: about 2 us against under 1 on a 32 x 32 array."""
    c = np.asarray(value, dtype)
    c.flags.writeable = False
    return c


def _number(value, dtype):
    # a count or rate may arrive as a 0-d array (a weighted batch's n): that one as it is
    return constant(value, dtype) if isinstance(value, (int, float)) else value


@functools.lru_cache(maxsize=64)
def _zeros(width: int, dtype) -> np.ndarray:
    row = np.zeros(width, dtype)
    row.flags.writeable = False
    return row


def _relu(z, b):
    # maximum(z + b, 0.0): NumPy 2.4 has no SIMD loop for a scalar operand (three
    # times slower than the contiguous loop it takes for a broadcast row of zeros).
    np.add(z, b, z)
    return np.maximum(z, _zeros(z.shape[-1], z.dtype), out=z)


def _sigmoid(z, b):
    # 0.5 * tanh(0.5 * (z + b)) + 0.5
    half = constant(0.5, z.dtype)
    np.add(z, b, z)
    np.multiply(z, half, z)
    np.tanh(z, z)
    np.multiply(z, half, z)
    return np.add(z, half, z)


def _tanh(z, b):
    np.add(z, b, z)
    return np.tanh(z, z)


def _identity(z, b):
    return np.add(z, b, z)


def _identity_grad(a, g):
    return g  # nn.backward skips it (f' = 1); here for completeness


def _relu_grad(a, g):
    # g * astype(a > 0): multiplying by the boolean mask casts it in the loop, without a float copy
    return np.multiply(g, np.greater(a, 0), g)


def _sigmoid_grad(a, g):
    # g * a * (1 - a)
    s = np.subtract(constant(1, a.dtype), a)
    np.multiply(g, a, g)
    return np.multiply(g, s, g)


def _tanh_grad(a, g):
    # g * (1 - a * a)
    s = np.multiply(a, a)
    np.subtract(constant(1, s.dtype), s, s)
    return np.multiply(g, s, g)


def _softmax_delta(log_p, Y, n):
    # (exp(log_p) - Y) / n
    np.exp(log_p, log_p)
    np.subtract(log_p, Y, log_p)
    return np.divide(log_p, _number(n, log_p.dtype), log_p)


_ACTIVATE = {"relu": _relu, "sigmoid": _sigmoid, "tanh": _tanh, "identity": _identity}
_ACTIVATION_GRAD = {"relu": _relu_grad, "sigmoid": _sigmoid_grad, "tanh": _tanh_grad, "identity": _identity_grad}
