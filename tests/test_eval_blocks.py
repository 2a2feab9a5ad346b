"""predict, predict_proba, score and loss on a large host array work a block of rows at a
time: the same figures as the whole array at once, errors that name rows of the whole
array, and temporaries of one block's size."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from mlp_backends import MLP, InputError, data, nn, train


def _figures(model, X, y):
    return model.predict_proba(X), model.predict(X), model.score(X, y), model.loss(X, y)


def test_blocks_give_the_figures_of_the_whole_array(backend32, monkeypatch):
    X, y = data.synthetic(n=503, d=12, classes=3, seed=2)
    model = MLP(12, 16, 3, "relu", backend=backend32, seed=0, l2=0.01)  # the L2 term counts once
    whole = _figures(model, X, y.tolist())
    rows = []
    forward = nn.forward
    monkeypatch.setattr(nn, "forward", lambda xp, p, Xb, *a: rows.append(Xb.shape[0]) or forward(xp, p, Xb, *a))
    monkeypatch.setattr(train, "EVAL_BLOCK_BYTES", 100 * (12 + 3 * (16 + 3)) * 4)  # blocks of 100 rows
    blocked = _figures(model, X, y.tolist())
    assert rows[:6] == [100, 100, 100, 100, 100, 3] and max(rows) == 100
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(blocked[1], whole[1])
    assert blocked[2] == whole[2] == np.mean(whole[1] == y)  # exact: hits are counted, not averaged
    assert blocked[3] == pytest.approx(whole[3], rel=1e-6)


def test_errors_name_the_row_in_the_whole_array(monkeypatch):
    monkeypatch.setattr(train, "EVAL_BLOCK_BYTES", 64 * (5 + 3 * (4 + 2)) * 4)
    model = MLP(5, 4, 2, backend="numpy")
    X = np.ones((500, 5), np.float32)
    X[437, 3] = np.inf
    with pytest.raises(InputError, match=r"\(inf at row 437, column 3\)"):
        model.score(X, np.zeros(500, int))
    with pytest.raises(InputError, match=r"\(inf at row 437, column 3\)"):
        model.predict(X)
    X64 = np.ones((500, 5))
    X64[470, 1] = 1e300  # finite in float64, not once cast to the model's float32
    with pytest.raises(InputError, match="holds 1e\\+300 at row 470, column 1, beyond float32"):
        model.loss(X64, np.zeros(500, int))
    with pytest.raises(InputError, match="500"):  # the whole path's message for a y of another length
        model.score(np.ones((500, 5), np.float32), np.zeros(499, int))


def _traced_peak_mb(call) -> float:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_scoring_holds_one_block_of_activations(monkeypatch):
    """20000 rows into 512 hidden units: 40 MB of activations at once, a few MB in blocks."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 100), dtype=np.float32)
    y = rng.integers(0, 10, 20_000)
    model = MLP(100, 512, 10, backend="numpy")
    monkeypatch.setattr(train, "EVAL_BLOCK_BYTES", 1 << 40)
    whole = _traced_peak_mb(lambda: model.score(X, y))
    monkeypatch.setattr(train, "EVAL_BLOCK_BYTES", 4 << 20)
    blocked = _traced_peak_mb(lambda: (model.score(X, y), model.loss(X, y), model.predict(X)))
    assert whole > 40 and blocked < 12, f"scoring's temporaries: {whole:.1f} MB whole, {blocked:.1f} MB in blocks"


def test_blocks_apply_the_saved_standardization_and_classes(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(250, 4)) * [1.0, 10.0, 100.0, 0.1] + [0.0, 5.0, -50.0, 2.0]
    X_before = X.copy()
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, 250)]
    model = MLP(4, 8, 3, backend="numpy", dtype="float64", seed=0)
    model.extra = {"classes": ["a", "b", "c"],
                   "standardization": {"mean": X.mean(axis=0).tolist(), "scale": X.std(axis=0).tolist()}}
    whole = _figures(model, X, list(labels))
    monkeypatch.setattr(train, "EVAL_BLOCK_BYTES", 40 * (4 + 3 * (8 + 3)) * 8)  # blocks of 40 rows
    blocked = _figures(model, X, list(labels))
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-12)
    assert blocked[1].tolist() == whole[1].tolist() and set(whole[1]) <= {"a", "b", "c"}
    assert blocked[2] == whole[2] and blocked[3] == pytest.approx(whole[3], rel=1e-12)
    np.testing.assert_array_equal(X, X_before)  # the caller's rows are scaled in copies, never in place
