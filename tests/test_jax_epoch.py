"""JAX's whole-epoch program (one lax.scan over the batches) gives the per-step loop's numbers,
compiles once per shape, and is reused across fit and partial_fit calls."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tolerance

from mlp_backends import MLP, get_backend, optim, train

pytestmark = pytest.mark.requires_backend("jax")

OPTIMIZERS = {"sgd": optim.SGD(0.1), "momentum": optim.Momentum(0.05, nesterov=True), "adam": optim.Adam(0.01)}


def _data(be, n=45, d=6, k=3, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    return be.asarray(X, dtype), train.one_hot_targets(be, y, k, dtype)


def _model(dtype):
    return MLP(6, 5, 3, "tanh", backend="jax", dtype=dtype, seed=0)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("shuffle", [True, False])
def test_compiled_epoch_agrees_with_the_per_step_loop(opt, shuffle):
    """45 rows in batches of 16: two full batches and a short one of 13, three epochs."""
    import jax

    be = get_backend("jax")
    X, Y = _data(be)
    per_step, whole = _model("float64"), _model("float64")
    plain = jax.jit(train.make_step(be.xp, OPTIMIZERS[opt], "tanh", 0.0))  # no .epoch: one call per batch
    assert not hasattr(plain, "epoch") and hasattr(be.compile(train.make_step(be.xp, OPTIMIZERS[opt], "tanh", 0.0)),
                                                   "epoch")
    kw = dict(optimizer=OPTIMIZERS[opt], epochs=3, batch_size=16, shuffle=shuffle, seed=3)
    want = train.run(per_step, X, Y, step=plain, **kw)
    got = train.run(whole, X, Y, **kw)
    for g, w in zip(whole.get_params(), per_step.get_params()):
        np.testing.assert_allclose(g, w, **tolerance("float64"))
    np.testing.assert_allclose(got.loss, want.loss, **tolerance("float64"))
    assert got.accuracy == want.accuracy
    assert whole.optimizer_state.step == per_step.optimizer_state.step == 9


def test_one_program_per_shape_reused_across_fit_and_partial_fit():
    be = get_backend("jax")
    X, Y = _data(be, dtype="float32")
    opt = optim.Adam(0.01)
    step = be.compile(train.make_step(be.xp, opt, "tanh", 0.0))
    assert be.compile(train.make_step(be.xp, opt, "tanh", 0.0)) is step  # the same settings: the same program
    compiled_before = step.epoch._cache_size()
    model = _model("float32")
    train.run(model, X, Y, optimizer=opt, epochs=2, batch_size=16, shuffle=True, seed=0)
    # partial_fit's way: one epoch at a time, carrying the optimizer on.
    for _ in range(2):
        train.run(model, X, Y, optimizer=opt, epochs=1, batch_size=16, shuffle=True, seed=1,
                  state=model.optimizer_state.moments, start_step=model.optimizer_state.step)
    assert step.epoch._cache_size() == compiled_before + 1  # 45 rows, batch 16: once, short batch included
    train.run(model, X[:32], Y[:32], optimizer=opt, epochs=1, batch_size=16, shuffle=True, seed=0)
    assert step.epoch._cache_size() == compiled_before + 2  # a new shape, a new program


def test_fit_through_the_compiled_epoch_learns_and_matches_numpy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 6))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    histories = {}
    for name in ("jax", "numpy"):
        model = MLP(6, 8, 3, "relu", backend=name, dtype="float64", seed=0)
        histories[name] = model.fit(X, y, epochs=5, batch_size=16, learning_rate=0.05, optimizer="momentum")
    np.testing.assert_allclose(histories["jax"].loss, histories["numpy"].loss, rtol=1e-9)
    assert histories["jax"].loss[-1] < histories["jax"].loss[0]
