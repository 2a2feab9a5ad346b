"""Run a training step over fixed buffers, so that recorded device work can be replayed.

A CUDA graph records kernel launches with their pointers: each replay reads
the same input memory and writes the same output memory. `StaticStep` owns
those static inputs, copies each call's arrays into them, replays, and hands
back copies of the outputs, so an array the caller keeps (the parameters
from before an epoch, say) is never overwritten by a later replay.

Assumptions: the step is pure and reads nothing back to the host; `t` enters
only arithmetic (it is passed as a 0-d array of the parameters' dtype, since a
Python number would be frozen into the recording); a call whose batch has
another shape (the short last batch) runs the step as it is. The backend
supplies three functions:

- `copy(dst, src)`: write `src` (an array or a Python number) into `dst` in place;
- `clone(x)`: a new array holding x's values;
- `capture(fn)`: record `fn()` once and return `replay`, a callable that
  re-runs the recorded work and returns the arrays `fn` returned then, now
  holding the new values.

Nothing here is specific to a GPU: the tests run it on NumPy with a `capture`
that calls `fn` again and writes into the same output arrays, which is what
a graph replay does.
"""

from __future__ import annotations

from typing import Callable

from array_api_compat import device


def _flatten(params, state):
    return list(params) + [a for group in state for a in group]


def _unflatten(flat, params, state):
    n = len(params)
    out_state, i = [], n
    for group in state:
        out_state.append(list(flat[i:i + len(group)]))
        i += len(group)
    return list(flat[:n]), tuple(out_state)


class StaticStep:
    """`step` made replayable: same signature, same numbers, recorded once per batch shape."""

    def __init__(self, step: Callable, xp, *, copy: Callable, clone: Callable, capture: Callable):
        self.step, self.xp = step, xp
        self.copy, self.clone, self.capture = copy, clone, capture
        self.replay = None
        self.shape = None
        self.replays = 0  # how many calls took the recorded path (tests read it)

    def _record(self, params, state, Xb, Yb, t):
        clone = self.clone
        self.shape = (tuple(Xb.shape), tuple(Yb.shape))
        self.params, self.state = [clone(p) for p in params], tuple([clone(a) for a in g] for g in state)
        self.X, self.Y = clone(Xb), clone(Yb)
        like = params[0]
        self.t = self.xp.zeros((), dtype=like.dtype, device=device(like))
        self.copy(self.t, t)
        step, sp, ss, X, Y, tb = self.step, self.params, self.state, self.X, self.Y, self.t
        self.replay = self.capture(lambda: step(sp, ss, X, Y, tb))

    def __call__(self, params, state, Xb, Yb, t):
        if self.replay is None:
            self._record(params, state, Xb, Yb, t)
        elif (tuple(Xb.shape), tuple(Yb.shape)) != self.shape:
            return self.step(params, state, Xb, Yb, t)
        else:
            for dst, src in zip(_flatten(self.params, self.state), _flatten(params, state)):
                if dst is not src:
                    self.copy(dst, src)
            self.copy(self.X, Xb)
            self.copy(self.Y, Yb)
            self.copy(self.t, t)
        new_params, new_state, loss, hits = self.replay()
        self.replays += 1
        flat = [self.clone(a) for a in _flatten(new_params, new_state)]
        out_params, out_state = _unflatten(flat, new_params, new_state)
        return out_params, out_state, self.clone(loss), self.clone(hits)
