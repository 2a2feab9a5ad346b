"""Every backend trains to the same numbers as the NumPy float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from mlp_backends import MLP
from conftest import tolerance

OPTIMIZERS = {
    "sgd": dict(optimizer="sgd", learning_rate=0.1),
    "momentum": dict(optimizer="momentum", learning_rate=0.05),
    "nesterov": dict(optimizer="momentum", learning_rate=0.05, nesterov=True),
    "adam": dict(optimizer="adam", learning_rate=0.01),
}


def _train(spec, dtype, X, y, activation, settings, hidden=(8, 6)):
    model = MLP(X.shape[1], hidden, 3, activation, backend=spec, dtype=dtype, seed=11)
    # 60 rows in batches of 16: four steps per epoch, two epochs, a short last batch.
    model.fit(X, y, epochs=2, batch_size=16, seed=5, **settings)
    return model


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
def test_parameters_match_numpy_float64_after_k_steps(backend, blobs, opt, activation):
    be, dtype = backend
    X, y = blobs
    reference = _train("numpy", "float64", X, y, activation, OPTIMIZERS[opt])
    model = _train(be, dtype, X, y, activation, OPTIMIZERS[opt])
    start = MLP(X.shape[1], (8, 6), 3, activation, backend="numpy", dtype="float64", seed=11).get_params()
    for got, want, init in zip(model.get_params(), reference.get_params(), start):
        assert got.dtype == np.dtype(dtype)
        assert not np.allclose(want, init), "the reference did not move: the test would prove nothing"
        np.testing.assert_allclose(got, want, **tolerance(dtype))
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


def test_article_train_call_agrees_across_backends(backend, blobs):
    be, dtype = backend
    X, y = blobs
    Y = np.eye(3)[y]
    reference = MLP(5, 8, 3, backend="numpy", dtype="float64", seed=2)
    reference.train(X, Y, epochs=5, learning_rate=0.5)
    model = MLP(5, 8, 3, backend=be, dtype=dtype, seed=2)
    model.train(X, Y, epochs=5, learning_rate=0.5)
    for got, want in zip(model.get_params(), reference.get_params()):
        np.testing.assert_allclose(got, want, **tolerance(dtype))
