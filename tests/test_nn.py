"""The math in nn.py: stable softmax, log-softmax loss, and backprop checked by finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import finite_difference_grads, tolerance

from mlp_backends import MLP, nn

WIDE_ROWS = np.array([[0.0, 1.0, 2.0], [3000.0, 3001.0, 3002.0], [-4000.0, -3999.0, -4005.0]])


def article_softmax(x):
    """The article's softmax: it subtracts the whole batch's max, not each row's."""
    e = np.exp(x - np.max(x))
    return e / e.sum(axis=1, keepdims=True)


def test_article_softmax_fails_on_rows_thousands_apart():
    with np.errstate(all="ignore"):
        assert np.isnan(article_softmax(WIDE_ROWS)).any()


def test_softmax_is_finite_and_exact_on_rows_thousands_apart(backend):
    be, dtype = backend
    xp = be.xp
    p = be.to_numpy(nn.softmax(xp, be.asarray(WIDE_ROWS, dtype)))
    shifted = WIDE_ROWS - WIDE_ROWS.max(axis=1, keepdims=True)
    expected = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, expected, **tolerance(dtype))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, **tolerance(dtype))


def test_cross_entropy_comes_from_log_softmax(backend):
    """A confidently wrong row has loss ~ the logit gap; log(softmax) would give inf."""
    be, dtype = backend
    logits = be.asarray(np.array([[0.0, 200.0]]), dtype)
    Y = be.asarray(np.array([[1.0, 0.0]]), dtype)
    loss = float(be.to_numpy(nn.cross_entropy_sum(be.xp, logits, Y)))
    assert loss == pytest.approx(200.0, rel=1e-6)


@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
def test_activation_gradient_matches_its_derivative(activation):
    import array_api_compat.numpy as xp

    z = np.linspace(-3, 3, 13)
    eps = 1e-6
    numeric = (nn.activate(xp, activation, z + eps) - nn.activate(xp, activation, z - eps)) / (2 * eps)
    analytic = nn.activation_grad(xp, activation, nn.activate(xp, activation, z), np.ones_like(z))
    mask = np.abs(z) > 1e-3  # relu has no derivative at 0
    np.testing.assert_allclose(analytic[mask], numeric[mask], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
@pytest.mark.parametrize("hidden", [(4,), (4, 3), (4, 3, 3)], ids=["1-hidden", "2-hidden", "3-hidden"])
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_backprop_matches_central_finite_differences(activation, hidden, l2):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(6, 5))
    y = rng.integers(0, 3, size=6)
    model = MLP(5, hidden, 3, activation, backend="numpy", dtype="float64", seed=3, l2=l2)
    _, analytic = model.loss_and_gradients(X, y)
    numeric = finite_difference_grads(model, X, y)
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-8)
