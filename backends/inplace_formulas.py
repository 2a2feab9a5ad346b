"""optim.py's updates written as in-place operations, shared by NumPy and PyTorch.

`m` is the array module: NumPy, or torch, which has the same names
(`multiply`, `add`, `subtract`, `divide`, `sqrt`) and the same `out=`. Each
function performs the pure update's operations (its comment) one by one, in
the same order and on the same operands, writing into the parameter, moment
and gradient arrays it is given, so the numbers are bit-identical to
optim.py's (tests/test_inplace.py, tests/test_torch_inplace.py).
Multiplication and addition commute exactly in IEEE arithmetic, so
`multiply(g, lr)` is `lr * g`. A coefficient may be a Python float or a 0-d
array of the parameters' dtype (PyTorch's step makes the update a no-op on a
bad batch by choosing neutral ones on the device).

Nesterov and Adam need one scratch array shaped like the part they update:
`block_plan` cuts each parameter into blocks of rows of about BLOCK elements,
each with a view of one shared scratch buffer, so the scratch stays small
whatever the layer's size.
"""

from __future__ import annotations

import math

BLOCK = 1 << 15  # elements per block: the scratch block, and blocks of p, g and moments fit in L2


def block_plan(params, empty, block: int = BLOCK):
    """Per array: [(rows, scratch)], `rows` a slice of about `block` elements' worth of
    rows and `scratch` a view of one buffer from `empty(n)`, shaped like those rows."""
    width = [math.prod(p.shape[1:]) for p in params]
    rows = [max(1, block // w) for w in width]
    scratch = empty(max(min(r, p.shape[0]) * w for r, w, p in zip(rows, width, params)))
    plan = []
    for p, r, w in zip(params, rows, width):
        plan.append([(slice(lo, lo + n), scratch[:n * w].reshape((n,) + tuple(p.shape[1:])))
                     for lo in range(0, p.shape[0], r) for n in [min(r, p.shape[0] - lo)]])
    return plan


def momentum(m, p, g, v, lr, mu):
    # v = mu * v + g
    m.multiply(v, mu, out=v)
    m.add(v, g, out=v)
    # p - lr * v
    m.multiply(v, lr, out=g)
    m.subtract(p, g, out=p)


def nesterov(m, p, g, v, s, lr, mu):
    # v = mu * v + g
    m.multiply(v, mu, out=v)
    m.add(v, g, out=v)
    # p - lr * (g + mu * v)
    m.multiply(v, mu, out=s)
    m.add(g, s, out=g)
    m.multiply(g, lr, out=g)
    m.subtract(p, g, out=p)


def adam(m, p, g, mean, var, s, b1, one_minus_b1, b2, one_minus_b2, step, eps):
    # mean = b1 * mean + (1 - b1) * g; the complements come computed as optim.py computes them
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
