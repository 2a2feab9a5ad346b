"""NumPy's tallied step (backends/numpy_tally.py): the training loop's figures per block of batches.

- Training through it gives the compiled step's parameters and the same
  per-epoch loss and accuracy, for every optimizer and activation, both dtypes,
  shuffled, in order, whole-batch, and with buffers that fill many times an epoch.
- A batch that overflows is skipped and the epoch reported as diverged, as
  the compiled step does.
- Only the steps it computes exactly get it (softmax, no weights, no L2).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tolerance

from backends import numpy_tally
from mlp_backends import MLP, get_backend, nn, optim, train

OPTIMIZERS = {"sgd": optim.SGD(0.1), "momentum": optim.Momentum(0.05, nesterov=True), "adam": optim.Adam(0.01)}


def _fit(X, y, opt, activation, dtype, tallied, monkeypatch, **kwargs):
    """A fresh model trained by train.run with the NumPy backend's default compiled step,
    or (tallied=False) the same step without its tally: per-step figures as before."""
    with monkeypatch.context() as m:
        if not tallied:
            m.setattr(numpy_tally, "supports", lambda config: False)
        model = MLP(5, 8, 3, activation, backend="numpy", dtype=dtype, seed=3)
        be = model.backend
        step = be.compile(train.make_step(be.xp, opt, activation, 0.0))
        assert hasattr(step, "tally") == tallied
        Y = train.one_hot_targets(be, y, 3, dtype)
        history = train.run(model, be.asarray(X, dtype), Y, optimizer=opt, step=step, seed=0, threads=1,
                            **{"epochs": 3, "batch_size": 16, "shuffle": True, **kwargs})
    return model, history


def _agree(got, want, dtype):
    (model, history), (ref, ref_history) = got, want
    for g, w in zip(model.get_params(), ref.get_params()):
        np.testing.assert_allclose(g, w, **tolerance(dtype))
    np.testing.assert_allclose(history.loss, ref_history.loss, **tolerance(dtype))
    # float32 rounding may move a prediction that sits on a tie; float64 gives the same counts
    np.testing.assert_allclose(history.accuracy, ref_history.accuracy, atol=0 if dtype == "float64" else 1 / 60)
    assert len(history) == len(ref_history) == 3 and not history.stopped_early


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tallied_training_agrees_with_the_compiled_step(blobs, opt, activation, dtype, monkeypatch):
    X, y = blobs
    args = (X, y, OPTIMIZERS[opt], activation, dtype)
    _agree(_fit(*args, True, monkeypatch), _fit(*args, False, monkeypatch), dtype)


# a block per batch, per three batches (40 rows, rounded up to batches), one an epoch: float64, 3 classes,
# so 48 bytes a row of logits and targets
@pytest.mark.parametrize("rows", [16, 40, 1 << 20])
@pytest.mark.parametrize("batching", [{"shuffle": True}, {"shuffle": False}, {"batch_size": None, "shuffle": False}])
def test_tallied_figures_do_not_depend_on_how_often_the_buffer_fills(blobs, rows, batching, monkeypatch):
    monkeypatch.setattr(numpy_tally, "BYTES", rows * 48)
    X, y = blobs
    args = (X, y, optim.SGD(0.1), "tanh", "float64")
    _agree(_fit(*args, True, monkeypatch, **batching), _fit(*args, False, monkeypatch, **batching), "float64")


def test_tally_counts_loss_and_hits_of_its_rows():
    """sums() of two batches: the summed cross-entropy and the count of right argmaxes
    at the parameters each batch saw, computed here from nn.py directly."""
    be = get_backend("numpy")
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((4, 6)), np.zeros(6), rng.standard_normal((6, 3)), np.zeros(3)]
    X, Y = rng.standard_normal((10, 4)), np.eye(3)[rng.integers(0, 3, 10)]
    step = be.compile(train.make_step(be.xp, optim.SGD(0.0), "relu", 0.0))  # rate 0: the same params twice
    tally = step.tally(5)
    with step.watch():
        for lo in (0, 5):
            assert tally.step(params, (), X[lo:lo + 5], Y[lo:lo + 5], 1)[2:] == (None, None)
        loss, hits = tally.sums()
    logits, _ = nn.forward(np, params, X, "relu")
    assert float(loss) == pytest.approx(float(nn.cross_entropy_sum(np, logits, Y)), rel=1e-12)
    assert float(hits) == np.sum(logits.argmax(1) == Y.argmax(1))
    tally.reset()
    assert [float(v) for v in tally.sums()] == [0.0, 0.0]


def test_a_batch_that_overflows_is_skipped_and_the_epoch_diverges(blobs, monkeypatch):
    X, y = blobs
    X = np.array(X)
    X[16:32] = 3e38  # the second batch of each epoch overflows its first product
    args = (X, y, optim.SGD(0.1), "tanh", "float32")
    for tallied in (True, False):
        model, history = _fit(*args, tallied, monkeypatch, shuffle=False)
        assert history.diverged and len(history) == 0
        assert "kept the parameters of the last step whose loss and update were finite" in history.stopped_early
        assert all(np.isfinite(p).all() for p in model.get_params())
        if tallied:
            got = model.get_params()
    for g, w in zip(got, model.get_params()):  # the other two batches were taken, as without the tally
        np.testing.assert_allclose(g, w, **tolerance("float32"))


@pytest.mark.parametrize("settings", [{"l2": 0.01}, {"output": "logistic"}, {"weighted": True}])
def test_only_plain_softmax_steps_are_tallied(settings):
    be = get_backend("numpy")
    assert hasattr(be.compile(train.make_step(be.xp, optim.SGD(0.1), "relu", 0.0)), "tally")
    settings = {"l2": 0.0, **settings}
    assert not hasattr(be.compile(train.make_step(be.xp, optim.SGD(0.1), "relu", **settings)), "tally")
