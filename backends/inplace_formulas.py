"""optim.py's updates written as in-place operations, shared by NumPy and PyTorch.

`m` is the array module: NumPy, or torch, which has the same names
(`multiply`, `add`, `subtract`, `divide`, `sqrt`) and the same `out=`. Each
function performs the pure update's operations (its comment) one by one, in
the same order and on the same operands, writing into the parameter, moment
and gradient arrays it is given, so the numbers are bit-identical to
optim.py's (tests/test_inplace.py, for both).
Multiplication and addition commute exactly in IEEE arithmetic, so
`multiply(g, lr)` is `lr * g`. A coefficient may be a Python float or a 0-d
array of the parameters' dtype (PyTorch's step makes the update a no-op on a
bad batch by choosing neutral ones on the device).

`InPlaceOptimizer` holds what both backends' updates share: which optimizers
it covers, the order of the update (SGD's `lr * g` first, so that a backend
can judge the batch with it, then the rest) and the scratch blocks. Nesterov
and Adam need one scratch array shaped like the part they update:
`block_plan` cuts each parameter into blocks of rows of about BLOCK elements,
each with a view of one shared scratch buffer, so the scratch stays small
whatever the layer's size.
"""

from __future__ import annotations

import math

from mlp_backends import optim

BLOCK = 1 << 15  # elements per block: the scratch block, and blocks of p, g and moments fit in L2


class InPlaceOptimizer:
    """optim.py's SGD, Momentum and Adam, applied in place through the array module `m`.

    A backend's update calls `scale_gradients`, judges the batch, then `apply`.
    `empty(n, like)` makes the scratch buffer: n elements like the array `like`;
    `constant(value, like)` turns a Python number into the operand the update
    uses (NumPy's: a 0-d array of `like`'s dtype, the same number, a faster loop).
    """

    def __init__(self, optimizer, m, empty, constant=lambda value, like: value):
        self.optimizer, self.m, self.empty, self.constant = optimizer, m, empty, constant
        self._last = self._plan_of_last = None

    @staticmethod
    def supports(optimizer) -> bool:
        """Whether `APPLY` holds this optimizer's in-place update. Exact types: a subclass
        may change the formulas these repeat."""
        return type(optimizer) in APPLY

    def scale_gradients(self, grads) -> None:
        """SGD's `lr * g`, into the gradients: done first, so that a rate which
        overflows it counts in the judgement of the batch, before any write."""
        opt = self.optimizer
        if type(opt) is optim.SGD:
            lr = self.constant(opt.learning_rate, grads[0])
            for g in grads:
                self.m.multiply(g, lr, out=g)

    def apply(self, params, grads, state, t, pick=lambda value, neutral: value) -> None:
        """The rest of the update, into params, state and grads. `pick(value, neutral)`
        gives each coefficient; a backend that judges the batch on the device passes
        one that picks the neutral value (decay 1, rate 0) on a bad batch."""
        APPLY[type(self.optimizer)](self, params, grads, state, t, pick)

    def coefficients(self, t):
        """Adam's (step, eps) of step t (a backend may hand them over already computed)."""
        return self.optimizer.coefficients(t)

    def _plan(self, params):
        """block_plan, made once for the list train.run hands back each step."""
        if params is not self._last:
            self._plan_of_last = block_plan(params, lambda n: self.empty(n, params[0]))
            self._last = params
        return self._plan_of_last


# -- each optimizer's update in place, next to the pure one it repeats (optim.py) -----------
def _apply_sgd(u: InPlaceOptimizer, params, grads, state, t, pick) -> None:
    """optim.SGD.update: p - lr g, where scale_gradients already made g into lr g."""
    for p, g in zip(params, grads):
        u.m.subtract(p, g, out=p)


def _apply_momentum(u: InPlaceOptimizer, params, grads, state, t, pick) -> None:
    """optim.Momentum.update: v = mu v + g, then p - lr v, or p - lr (g + mu v) (Nesterov)."""
    opt, m, like = u.optimizer, u.m, params[0]
    lr, mu = u.constant(pick(opt.learning_rate, 0.0), like), u.constant(pick(opt.momentum, 1.0), like)
    if not opt.nesterov:
        for p, g, v in zip(params, grads, state[0]):
            momentum(m, p, g, v, lr, mu)
    else:
        for p, g, v, blocks in zip(params, grads, state[0], u._plan(params)):
            for c, s in blocks:
                nesterov(m, p[c], g[c], v[c], s, lr, mu)


def _apply_adam(u: InPlaceOptimizer, params, grads, state, t, pick) -> None:
    """optim.Adam.update: the moments, then p - step m / (sqrt(v) + eps), step and eps from
    the optimizer's own `coefficients(t)`."""
    opt, like = u.optimizer, params[0]
    step, eps = u.coefficients(t)
    b1, b2 = opt.beta1, opt.beta2
    coefficients = [u.constant(c, like) for c in (pick(b1, 1.0), pick(1 - b1, 0.0), pick(b2, 1.0),
                                                  pick(1 - b2, 0.0), pick(step, 0.0), eps)]
    for p, g, mean, var, blocks in zip(params, grads, state[0], state[1], u._plan(params)):
        for c, s in blocks:
            adam(u.m, p[c], g[c], mean[c], var[c], s, *coefficients)


#: optim.py's optimizers that have an in-place update, and that update.
APPLY = {optim.SGD: _apply_sgd, optim.Momentum: _apply_momentum, optim.Adam: _apply_adam}


def block_plan(params, empty):
    """Per array: [(rows, scratch)], `rows` a slice of about BLOCK elements' worth of
    rows and `scratch` a view of one buffer from `empty(n)`, shaped like those rows."""
    width = [math.prod(p.shape[1:]) for p in params]
    rows = [max(1, BLOCK // w) for w in width]
    scratch = empty(max(min(r, p.shape[0]) * w for r, w, p in zip(rows, width, params)))
    plan = []
    for p, r, w in zip(params, rows, width):
        plan.append([(slice(lo, lo + n), scratch[:n * w].reshape((n,) + tuple(p.shape[1:])))
                     for lo in range(0, p.shape[0], r) for n in [min(r, p.shape[0] - lo)]])
    return plan


def sgd(m, p, g, lr):
    # p - lr * g (InPlaceOptimizer splits these two, to judge the batch on lr * g in between)
    """p - lr g, in place (InPlaceOptimizer splits the two, to judge the batch on lr g in between)."""
    m.multiply(g, lr, out=g)
    m.subtract(p, g, out=p)


def momentum(m, p, g, v, lr, mu):
    # v = mu * v + g
    """Heavy-ball momentum in place: v = mu v + g, then p - lr v."""
    m.multiply(v, mu, out=v)
    m.add(v, g, out=v)
    # p - lr * v
    m.multiply(v, lr, out=g)
    m.subtract(p, g, out=p)


def nesterov(m, p, g, v, s, lr, mu):
    # v = mu * v + g
    """Nesterov momentum in place: v = mu v + g, then p - lr (g + mu v), with `s` as scratch."""
    m.multiply(v, mu, out=v)
    m.add(v, g, out=v)
    # p - lr * (g + mu * v)
    m.multiply(v, mu, out=s)
    m.add(g, s, out=g)
    m.multiply(g, lr, out=g)
    m.subtract(p, g, out=p)


def adam(m, p, g, mean, var, s, b1, one_minus_b1, b2, one_minus_b2, step, eps):
    # mean = b1 * mean + (1 - b1) * g; the complements come computed as optim.py computes them
    """Adam in place: both moments, then p - step m / (sqrt(v) + eps), with `s` as scratch."""
    m.multiply(g, one_minus_b1, out=s)
    m.multiply(mean, b1, out=mean)
    m.add(mean, s, out=mean)
    # var = b2 * var + (1 - b2) * (g * g)
    m.multiply(g, g, out=g)
    m.multiply(g, one_minus_b2, out=g)
    m.multiply(var, b2, out=var)
    m.add(var, g, out=var)
    # p - step * mean / (sqrt(var) + eps)
    m.sqrt(var, out=s)
    m.add(s, eps, out=s)
    m.multiply(mean, step, out=g)
    m.divide(g, s, out=g)
    m.subtract(p, g, out=p)
