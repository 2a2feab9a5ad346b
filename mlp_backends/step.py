"""One optimizer step as a pure function of arrays, and what compile hooks build on it.

`make_step` writes the step once against the array API: forward, loss,
backward (nn.py), then the optimizer's update (optim.py) or a backend's
in-place version of it. A backend's `compile` hook rebuilds the same step
with its own namespace, kernels or update (`step.rebuild(**changes)`), and
keys what it keeps by `step_key`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import nn


@dataclass(eq=False)
class Step:
    """A training step: `step(params, state, Xb, Yb, t) -> (params, state, loss, hits)`.

    `fn` computes it; `config` holds `make_step`'s arguments, so that
    `rebuild(**changes)` makes the same step with some of them changed (another
    namespace, fused kernels, an in-place update); `mutates_params` says that it
    writes into (or gives away) the parameter and state arrays it is given, so
    train.run keeps no copy from before the epoch. A compile hook may give the
    step it returns optional hooks that train.run looks for: `watch()` (a context
    the loop runs in), `gather(X, Y, idx)`, `tally(batch, n)` and `epoch` (a whole
    epoch as one program); see backend.py.
    """

    fn: Callable
    config: dict
    mutates_params: bool = False

    def __call__(self, params, state, Xb, Yb, t):
        return self.fn(params, state, Xb, Yb, t)

    def rebuild(self, **changes) -> "Step":
        """The same step made again by `make_step` with some of its arguments changed."""
        return make_step(**{**self.config, **changes})

    def wrapping(self, fn: Callable, mutates_params: bool | None = None) -> "Step":
        """A step that runs `fn` (which calls this one, or a compiled form of it) and keeps
        this one's config, so that it can still be rebuilt."""
        return Step(fn, self.config, self.mutates_params if mutates_params is None else mutates_params)


def make_step(xp, optimizer, activation: str, l2: float, kern: nn.Kernels | None = None,
              update: Callable | None = None, *, output: str = "softmax", l2_per_sample: bool = False,
              weighted: bool = False) -> Step:
    """One optimizer step as a pure function of arrays (what `compile` may jit), as a `Step`.

    Returns new params, new optimizer state, the batch's mean loss (at the
    old params) and its count of correct predictions, both device scalars.
    `step.rebuild(**changes)` makes the same step with some arguments changed
    (another namespace, fused kernels): how compile hooks reuse this math.
    update: `update(params, grads, state, t, loss) -> (params, state, loss)` in
    place of `optimizer.update` (a compile hook's in-place version of the same
    formulas, which may skip a bad batch and report its loss as NaN); one with
    `mutates_params = True` makes the step write into the arrays it is given,
    and `step.mutates_params` says so to train.run.
    output, l2_per_sample: as in `nn.loss_and_grads`. weighted: the last
    column of Yb holds each row's sample weight (so batches of weights are
    gathered, shuffled and replayed with the targets); the loss is then the
    batch's weighted mean, and the count of correct predictions unweighted.
    """

    def step(params, state, Xb, Yb, t):
        weights = None
        if weighted:
            Yb, weights = Yb[:, :-1], Yb[:, -1]
        loss, grads, logits = nn.loss_and_grads(xp, params, Xb, Yb, activation, l2, kern=kern, output=output,
                                                weights=weights, l2_per_sample=l2_per_sample)
        if update is None:
            params, state = optimizer.update(xp, params, grads, state, t)
        else:
            params, state, loss = update(params, grads, state, t, loss)
        hits = nn.correct(xp, logits, Yb, output)
        return params, state, loss, xp.sum(xp.astype(hits, Xb.dtype))

    config = dict(xp=xp, optimizer=optimizer, activation=activation, l2=l2, kern=kern, update=update,
                  output=output, l2_per_sample=l2_per_sample, weighted=weighted)
    return Step(step, config, bool(getattr(update, "mutates_params", False)))


def step_key(config: dict) -> tuple:
    """What makes two steps from `make_step` compute the same thing, as a dict key: a
    backend that caches compiled steps keys them by this (and by what it adds itself)."""
    return tuple(config[k] for k in ("optimizer", "activation", "l2", "output", "l2_per_sample", "weighted"))


class SkipNonFinite:
    """`optimizer.update` as an `update` for make_step that drops a bad batch on the
    device: if the loss or any new parameter or moment is not finite, the step
    returns the arrays it was given and the loss NaN (train.run then counts the
    epoch as diverged). `xp.where` decides, so nothing is read back to the host.

    This is what lets a compile hook give the step's input arrays away (JAX's
    buffer donation): train.run keeps no parameters from before the epoch for
    such a step (`mutates_params`), so the step itself must not take a bad one.
    """

    mutates_params = True

    def __init__(self, xp, optimizer):
        self.xp, self.optimizer = xp, optimizer

    def __call__(self, params, grads, state, t, loss):
        xp = self.xp
        new_params, new_state = self.optimizer.update(xp, params, grads, state, t)
        ok = xp.isfinite(loss)
        for a in [*new_params, *(a for group in new_state for a in group)]:
            ok = ok & xp.all(xp.isfinite(a))
        params = [xp.where(ok, new, old) for new, old in zip(new_params, params)]
        state = tuple([xp.where(ok, new, old) for new, old in zip(new_group, old_group)]
                      for new_group, old_group in zip(new_state, state))
        return params, state, xp.where(ok, loss, xp.nan)
