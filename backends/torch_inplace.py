"""optim.py's updates applied in place on PyTorch tensors, on any device.

The pure update returns new parameters and moments while the old ones are
alive, so a step holds two sets of them with each expression's temporaries.
This performs the same operations in place (backends/inplace_formulas.py,
shared with NumPy: bit-identical numbers, tests/test_torch_inplace.py), so
training holds the parameters, the moments and the step's gradients once.

A bad batch changes nothing, and nothing is read back to the host to decide
it (on a GPU that would stall every step): `ok` is a 0-d boolean on the
device, true when the loss and the sum of every gradient are finite (SGD's
gradients are scaled by the learning rate first, so that an absurd rate
counts too; a sum overflows only for gradients near 1e33, garbage anyway).
On a bad batch the gradients become zeros and each coefficient its neutral
value (decay 1, rate 0), so the update leaves every array as it was, and
the loss is reported as NaN. As on NumPy, not caught before it is written:
an overflow inside momentum's or Adam's own update with finite gradients.
"""

from __future__ import annotations

import torch

from backends import inplace_formulas as formulas
from mlp_backends import optim


class TorchInPlaceUpdate:
    """`update(params, grads, state, t, loss) -> (params, state, loss)` for `train.make_step`,
    writing into `params`, `state` and `grads`."""

    mutates_params = True

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self._last = self._plan_of_last = None

    @staticmethod
    def supports(optimizer) -> bool:
        # Exact types: a subclass may change the formulas this repeats.
        return type(optimizer) in (optim.SGD, optim.Momentum, optim.Adam)

    def _plan(self, params):
        if params is not self._last:  # train.run hands back the list this returned
            like = params[0]
            self._plan_of_last = formulas.block_plan(
                params, lambda n: torch.empty(n, dtype=like.dtype, device=like.device), formulas.BLOCK)
            self._last = params
        return self._plan_of_last

    def __call__(self, params, grads, state, t, loss):
        opt = self.optimizer
        if type(opt) is optim.SGD:
            for g in grads:
                torch.multiply(g, opt.learning_rate, out=g)  # lr * g
        ok = torch.isfinite(loss)
        for g in grads:
            ok = ok & torch.isfinite(g.sum())
        bad = ~ok
        for g in grads:
            g.masked_fill_(bad, 0.0)
        like = params[0]

        def pick(value, neutral):  # `value` on a good batch, `neutral` on a bad one: a 0-d tensor
            return torch.where(ok, torch.full((), value, dtype=like.dtype, device=like.device), neutral)

        if type(opt) is optim.SGD:
            for p, g in zip(params, grads):
                torch.subtract(p, g, out=p)  # p - lr * g
        elif type(opt) is optim.Momentum:
            lr, mu = pick(opt.learning_rate, 0.0), pick(opt.momentum, 1.0)
            if not opt.nesterov:
                for p, g, v in zip(params, grads, state[0]):
                    formulas.momentum(torch, p, g, v, lr, mu)
            else:
                for p, g, v, blocks in zip(params, grads, state[0], self._plan(params)):
                    for c, s in blocks:
                        formulas.nesterov(torch, p[c], g[c], v[c], s, lr, mu)
        else:
            step, eps = opt.coefficients(t)
            b1, b2 = opt.beta1, opt.beta2
            coefficients = (pick(b1, 1.0), pick(1 - b1, 0.0), pick(b2, 1.0), pick(1 - b2, 0.0), pick(step, 0.0))
            for p, g, m, v, blocks in zip(params, grads, state[0], state[1], self._plan(params)):
                for c, s in blocks:
                    formulas.adam(torch, p[c], g[c], m[c], v[c], s, *coefficients, eps)
        return params, state, torch.where(ok, loss, torch.nan)
