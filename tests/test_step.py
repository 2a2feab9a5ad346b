"""A training step is a `Step`: a callable with its config, rebuilt from the same math by
compile hooks; `Backend.compile` sends such a step to `compile_step` and anything else
to `compile_other`."""

from __future__ import annotations

import array_api_compat.numpy as xp
import numpy as np
from conftest import step_problem

from mlp_backends import get_backend, optim
from mlp_backends.backend import Backend
from mlp_backends.step import SkipNonFinite, Step, make_step


def test_make_step_gives_a_step_that_rebuilds_with_changes():
    step = make_step(xp, optim.SGD(0.1), "tanh", 0.0)
    assert isinstance(step, Step) and step.config["activation"] == "tanh" and not step.mutates_params
    other = step.rebuild(activation="relu", update=SkipNonFinite(xp, optim.SGD(0.1)))
    assert isinstance(other, Step) and other.config["activation"] == "relu"
    assert other.mutates_params  # its update says it writes into (or gives away) the parameters
    assert step.config["activation"] == "tanh"  # the original is untouched


def test_a_step_computes_what_its_function_computes_and_wrapping_keeps_the_config():
    be = get_backend("numpy")
    params, X, Y = step_problem(be, "float64")
    step = make_step(xp, optim.Adam(0.01), "relu", 0.01)
    state = optim.Adam(0.01).init(xp, params)
    got, want = step(params, state, X, Y, 1), step.fn(params, state, X, Y, 1)
    for a, b in zip([*got[0], got[2], got[3]], [*want[0], want[2], want[3]]):
        np.testing.assert_array_equal(a, b)
    calls = []
    wrapped = step.wrapping(lambda *args: calls.append(1) or step(*args), mutates_params=True)
    wrapped(params, state, X, Y, 1)
    assert calls == [1] and wrapped.config is step.config and wrapped.mutates_params


class _Recording(Backend):
    name = "recording"

    def _setup(self, device):
        self.seen = []
        return xp, "cpu"

    def compile_step(self, step):
        self.seen.append("step")
        return step

    def compile_other(self, fn):
        self.seen.append("other")
        return fn


def test_the_base_class_sends_steps_and_other_callables_to_their_own_hooks():
    b = _Recording()
    step = make_step(xp, optim.SGD(0.1), "tanh", 0.0)
    assert b.compile(step) is step

    def plain(params, state, Xb, Yb, t):
        return params, state, None, None

    assert b.compile(plain) is plain
    assert b.seen == ["step", "other"]


def test_numpys_compiled_step_is_a_step_that_says_it_writes_in_place():
    fast = get_backend("numpy").compile(make_step(xp, optim.Adam(0.01), "relu", 0.0))
    assert isinstance(fast, Step) and fast.mutates_params and callable(fast.watch)
