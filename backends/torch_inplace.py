"""optim.py's updates applied in place on PyTorch tensors, on any device.

The pure update returns new parameters and moments while the old ones are
alive, so a step holds two sets of them with each expression's temporaries.
This performs the same operations in place (backends/inplace_formulas.py,
shared with NumPy: bit-identical numbers, tests/test_inplace.py), so
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

from backends.inplace_formulas import InPlaceOptimizer


class _Coefficients(InPlaceOptimizer):
    def coefficients(self, t):
        # Under a CUDA graph `t` is a float64 device tensor holding (step, eps), computed on the
        # host for each replay (backends/torch_graph.py): the numbers of the eager step.
        if isinstance(t, torch.Tensor):
            return t[0], t[1]
        return super().coefficients(t)


class TorchInPlaceUpdate:
    """`update(params, grads, state, t, loss) -> (params, state, loss)` for `train.make_step`,
    writing into `params`, `state` and `grads`."""

    mutates_params = True
    supports = staticmethod(InPlaceOptimizer.supports)

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self._in_place = _Coefficients(
            optimizer, torch, lambda n, like: torch.empty(n, dtype=like.dtype, device=like.device))

    def __call__(self, params, grads, state, t, loss):
        self._in_place.scale_gradients(grads)
        ok = torch.isfinite(loss)
        for g in grads:
            ok = ok & torch.isfinite(g.sum())
        bad = ~ok
        for g in grads:
            g.masked_fill_(bad, 0.0)
        like = params[0]

        def pick(value, neutral):  # `value` on a good batch, `neutral` on a bad one: a 0-d tensor
            if not isinstance(value, torch.Tensor):  # (under a CUDA graph, Adam's step is a device tensor)
                value = torch.full((), value, dtype=like.dtype, device=like.device)
            return torch.where(ok, value.to(like.dtype), neutral)

        self._in_place.apply(params, grads, state, t, pick)
        return params, state, torch.where(ok, loss, torch.nan)
