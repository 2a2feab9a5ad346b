"""CuPy's training step, written for any module with NumPy's names (tested on NumPy itself).

`compile_step(step, m, fuse)` rebuilds train.make_step's step from the same
math, in few kernels and no new device memory after its first call:

- the elementwise kernels: nn.kernels (the bias with the activation, its
  derivative, softmax minus the target, the mean cross-entropy), each handed
  to `fuse` (on a GPU `cupy.fuse(kernel_name=fn.__name__)`, one kernel each);
- the update: inplace_formulas' SGD, momentum, Nesterov and Adam written
  into the parameters and moments, one fused kernel per parameter array.
  The batch is judged on the device, with nothing read back: `ok` is true
  when the loss and every gradient's (scaled) sum are finite; on a bad
  batch each kernel uses zero gradients and neutral coefficients (decay 1,
  rate 0), so nothing changes, and the loss comes back NaN;
- `gather(X, Y, idx)`: the shuffled batch taken into buffers kept per batch
  shape (`take(..., out=)`); a short last batch gets its own pair and takes
  nothing from the full batches'.

Scalars: every number a kernel receives is a NumPy scalar of its arrays'
dtype (`typed`): CuPy 13's fusion makes a Python int argument an int64
parameter, and NumPy 2 then promotes float32 arrays to float64. Values that
change with the batch (its row count) or the step (Adam's coefficients) are
arguments, never constants in a function: fusion caches a kernel by its
arguments' dtypes and dimensions only. Adam's step counter stays on the host.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from backends import inplace_formulas as formulas
from mlp_backends import nn, optim
from mlp_backends.fastpath import fall_back


def typed(fn):
    """fn, with each number passed as a NumPy scalar of its first floating argument's dtype
    (a boolean, such as the batch's `ok`, is passed as it is)."""
    def call(*args):
        kind = next(a.dtype for a in args if hasattr(a, "dtype") and a.dtype.kind == "f").type
        return fn(*(kind(a) if isinstance(a, (numbers.Number, np.generic)) and not isinstance(a, (bool, np.bool_))
                    else a for a in args))

    call.__name__ = getattr(fn, "__name__", "kernel")
    call.fused = fn
    return call


@functools.lru_cache(maxsize=32)
def step_kernels(m, activation: str, fuse) -> nn.Kernels:
    """nn.kernels for `activation`, each fused once per (module, fuse) and kept for later fits."""
    return nn.kernels(m, activation, wrap=lambda fn: typed(fuse(fn)))


@functools.lru_cache(maxsize=8)
def update_kernels(m, fuse) -> dict:
    """The judge and the per-parameter updates, fused; `ok` is a 0-d boolean array."""

    def scaled_sum(g, c):
        return m.sum(g * c)

    def judge(loss, nan, *sums):
        ok = m.isfinite(loss)
        for s in sums:
            ok = ok & m.isfinite(s)
        return ok, m.where(ok, loss, nan)

    def sgd(p, g, ok, lr):
        formulas.sgd(m, p, m.where(ok, g, 0.0), lr)

    def momentum(p, g, v, ok, lr, mu):
        formulas.momentum(m, p, m.where(ok, g, 0.0), v, m.where(ok, lr, 0.0), m.where(ok, mu, 1.0))

    def nesterov(p, g, v, ok, lr, mu):
        g = m.where(ok, g, 0.0)
        scratch = m.add(g, 0.0)  # any array shaped like g: nesterov writes it before reading it
        formulas.nesterov(m, p, g, v, scratch, m.where(ok, lr, 0.0), m.where(ok, mu, 1.0))

    def adam(p, g, mean, var, ok, b1, one_minus_b1, b2, one_minus_b2, step, eps):
        g = m.where(ok, g, 0.0)
        scratch = m.add(g, 0.0)
        formulas.adam(m, p, g, mean, var, scratch, m.where(ok, b1, 1.0), m.where(ok, one_minus_b1, 0.0),
                      m.where(ok, b2, 1.0), m.where(ok, one_minus_b2, 0.0), m.where(ok, step, 0.0), eps)

    kernels = {}
    for fn in (scaled_sum, judge, sgd, momentum, nesterov, adam):
        fn.__name__ = fn.__qualname__ = f"mlp_{fn.__name__}"
        kernels[fn.__name__.removeprefix("mlp_")] = typed(fuse(fn))
    return kernels


class FusedUpdate:
    """`update(params, grads, state, t, loss) -> (params, state, loss)` for train.make_step:
    optim.py's SGD, Momentum and Adam written into `params` and `state`, skipping a bad batch."""

    mutates_params = True

    @staticmethod
    def supports(optimizer) -> bool:
        """Whether these fused kernels implement `optimizer` (the optimizers the in-place formulas cover)."""
        return formulas.InPlaceOptimizer.supports(optimizer)

    def __init__(self, optimizer, kernels: dict):
        self.optimizer, self.k = optimizer, kernels

    def __call__(self, params, grads, state, t, loss):
        opt, k = self.optimizer, self.k
        sgd = type(opt) is optim.SGD
        scale = opt.learning_rate if sgd else 1.0  # SGD's lr * g must not overflow either
        ok, loss = k["judge"](loss, float("nan"), *(k["scaled_sum"](g, scale) for g in grads))
        if sgd:
            for p, g in zip(params, grads):
                k["sgd"](p, g, ok, opt.learning_rate)
        elif type(opt) is optim.Momentum:
            kernel = k["nesterov"] if opt.nesterov else k["momentum"]
            for p, g, v in zip(params, grads, state[0]):
                kernel(p, g, v, ok, opt.learning_rate, opt.momentum)
        else:
            step, eps = opt.coefficients(t)  # t is the host's step counter: no device scalar
            b1, b2 = opt.beta1, opt.beta2
            for p, g, mean, var in zip(params, grads, state[0], state[1]):
                k["adam"](p, g, mean, var, ok, b1, 1 - b1, b2, 1 - b2, step, eps)
        return params, state, loss


class Gather:
    """`gather(X, Y, idx) -> (Xb, Yb)`: rows `idx` of X and Y, taken into buffers made once per
    batch shape. The step reads a batch before the next gather writes (one stream, in order)."""

    def __init__(self, m):
        self.m, self.buffers = m, {}

    def __call__(self, X, Y, idx):
        m = self.m
        key = (idx.shape[0], tuple(X.shape[1:]), X.dtype, tuple(Y.shape[1:]), Y.dtype)
        if key not in self.buffers:
            if len(self.buffers) >= 4:  # other data sets: keep the memory bounded
                self.buffers.clear()
            rows = idx.shape[0]
            self.buffers[key] = (m.empty((rows, *X.shape[1:]), dtype=X.dtype),
                                 m.empty((rows, *Y.shape[1:]), dtype=Y.dtype))
        Xb, Yb = self.buffers[key]
        m.take(X, idx, axis=0, out=Xb)
        m.take(Y, idx, axis=0, out=Yb)
        return Xb, Yb


def compile_step(step, m, fuse):
    """The fused, in-place step (with `gather`) for train.make_step's `step`, on module `m`."""
    config = step.config
    kern = step_kernels(m, config["activation"], fuse)
    if config.get("update") is not None:  # another in-place update asked for: keep it
        fast = step.rebuild(kern=kern)
    elif FusedUpdate.supports(config["optimizer"]):
        fast = step.rebuild(kern=kern, update=FusedUpdate(config["optimizer"], update_kernels(m, fuse)))
    else:
        fall_back(f"the fused in-place update for {type(config['optimizer']).__name__}")
        fast = step.rebuild(kern=kern)
    fast.gather = Gather(m)
    return fast
