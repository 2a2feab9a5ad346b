"""The MLP's public API on every backend: namespaces, devices, parameters, files, accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace, device
from conftest import tolerance

from mlp_backends import MLP, InputError, InputTypeError


def test_numpy_in_numpy_out(backend, blobs):
    be, dtype = backend
    X, y = blobs
    model = MLP(5, 8, 3, backend=be, dtype=dtype)
    proba = model.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.dtype == np.dtype(dtype)
    assert isinstance(model.predict(X), np.ndarray)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, **tolerance(dtype))


def test_backend_arrays_in_backend_arrays_out_on_the_same_device(backend, blobs):
    be, dtype = backend
    X, y = blobs
    model = MLP(5, (8, 4), 3, "tanh", backend=be, dtype=dtype)
    Xd, yd = be.asarray(X, dtype), be.asarray(y, "int64")
    model.fit(Xd, yd, epochs=2, batch_size=16)
    for out in (model.forward(Xd), model.predict_proba(Xd), model.predict(Xd)):
        assert array_namespace(out) is be.xp
        assert device(out) == be.device
    for p in model.params:  # everything the model made lives on the backend's device
        assert array_namespace(p) is be.xp and device(p) == be.device
    assert 0.0 <= model.score(Xd, yd) <= 1.0


def test_strict_input_on_second_device_gets_answers_there(blobs):
    xp = pytest.importorskip("array_api_strict")
    X, _ = blobs
    model = MLP(5, 8, 3, backend="array_api_strict", dtype="float64")
    X1 = xp.asarray(X, device=xp.Device("device1"))
    proba = model.predict_proba(X1)
    assert proba.device == xp.Device("device1")
    np.testing.assert_allclose(np.asarray(proba.to_device(xp.Device("CPU_DEVICE"))), model.predict_proba(X))


def test_integer_labels_and_one_hot_train_identically(backend, blobs):
    be, dtype = backend
    X, y = blobs
    a = MLP(5, 8, 3, backend=be, dtype=dtype)
    b = MLP(5, 8, 3, backend=be, dtype=dtype)
    a.fit(X, y, epochs=2, batch_size=20)
    b.fit(X, np.eye(3)[y], epochs=2, batch_size=20)
    for pa, pb in zip(a.get_params(), b.get_params()):
        np.testing.assert_array_equal(pa, pb)


def test_training_lowers_the_loss_with_every_optimizer(backend32, blobs):
    X, y = blobs
    for optimizer, lr in (("sgd", 0.5), ("momentum", 0.1), ("adam", 0.01)):
        model = MLP(5, 16, 3, backend=backend32)
        history = model.fit(X, y, epochs=15, batch_size=16, learning_rate=lr, optimizer=optimizer)
        assert len(history) == 15
        assert history.loss[-1] < 0.5 * history.loss[0], optimizer


def test_digits_accuracy_at_least_95_percent(backend32, digits):
    model = MLP(digits.n_features, 64, digits.n_classes, "relu", backend=backend32, seed=0)
    model.fit(digits.X_train, digits.y_train, epochs=30, batch_size=32, learning_rate=0.003)
    assert model.score(digits.X_test, digits.y_test) >= 0.95  # 0.96 to 0.98 over split seeds 0-3


def test_article_signature_and_train_call(blobs):
    X, y = blobs
    model = MLP(5, 16, 3, backend="numpy")
    assert model.activation == "relu" and model.sizes == (5, 16, 3)  # the defaults table's activation
    history = model.train(X, np.eye(3)[y], epochs=200, learning_rate=1.0)
    assert history.loss[-1] < history.loss[0]
    assert model.score(X, y) > 0.9


def test_standard_normal_init_is_the_articles_randn():
    model = MLP(4, 3, 2, backend="numpy", dtype="float64", seed=5, init="standard_normal")
    rng = np.random.default_rng(5)
    W1, b1, W2, b2 = model.get_params()
    np.testing.assert_array_equal(W1, rng.standard_normal((4, 3)))
    np.testing.assert_array_equal(W2, rng.standard_normal((3, 2)))
    assert not b1.any() and not b2.any()


def test_default_init_is_scaled_by_fan_in_and_out():
    W = MLP(400, 300, 10, "sigmoid", backend="numpy", dtype="float64").get_params()[0]  # Glorot
    assert np.abs(W).max() <= np.sqrt(6 / 700)
    assert W.std() == pytest.approx(np.sqrt(2 / 700), rel=0.05)


def test_params_round_trip_with_documented_shapes(backend):
    be, dtype = backend
    model = MLP(6, (5, 4), 3, backend=be, dtype=dtype)
    params = model.get_params()
    assert [p.shape for p in params] == [(6, 5), (5,), (5, 4), (4,), (4, 3), (3,)]
    assert all(isinstance(p, np.ndarray) for p in params)
    new = [np.full(p.shape, 0.25) for p in params]
    model.set_params(new)
    for p in model.get_params():
        np.testing.assert_allclose(p, 0.25)
    with pytest.raises(InputError, match="set_params needs arrays shaped"):
        model.set_params(new[:-1])


def test_loss_and_gradients_are_host_numpy(backend, blobs):
    be, dtype = backend
    X, y = blobs
    loss, grads = MLP(5, 8, 3, backend=be, dtype=dtype).loss_and_gradients(X, y)
    ref_loss, ref_grads = MLP(5, 8, 3, backend="numpy", dtype="float64").loss_and_gradients(X, y)
    assert isinstance(loss, float) and loss == pytest.approx(ref_loss, rel=1e-5)
    for g, r in zip(grads, ref_grads):
        assert isinstance(g, np.ndarray)
        np.testing.assert_allclose(g, r, **tolerance(dtype))


def test_save_on_any_backend_load_on_numpy(backend, blobs, tmp_path):
    be, dtype = backend
    X, y = blobs
    model = MLP(5, (8, 4), 3, "relu", backend=be, dtype=dtype)
    model.fit(X, y, epochs=2, batch_size=16)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = MLP.load(path, backend="numpy")
    assert loaded.backend.name == "numpy"
    assert loaded.sizes == model.sizes and loaded.activation == "relu" and loaded.dtype == dtype
    for a, b in zip(loaded.get_params(), model.get_params()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(epochs=-1), InputError, "epochs"),
        (dict(batch_size=0), InputError, "batch_size"),
        (dict(learning_rate=0.0), InputError, "learning_rate"),
        (dict(optimizer="lbfgs"), InputError, "unknown optimizer"),
    ],
)
def test_bad_training_options_are_refused_before_work(blobs, kwargs, error, match):
    X, y = blobs
    model = MLP(5, 8, 3, backend="numpy")
    before = model.get_params()
    with pytest.raises(error, match=match):
        model.fit(X, y, **kwargs)
    for a, b in zip(model.get_params(), before):
        np.testing.assert_array_equal(a, b)


def test_bad_data_is_refused(blobs):
    X, y = blobs
    model = MLP(5, 8, 3, backend="numpy")
    with pytest.raises(InputError, match="X has 4 features but the model takes 5"):
        model.fit(X[:, :4], y)
    with pytest.raises(InputError, match="rows"):
        model.fit(X, y[:-1])
    with pytest.raises(InputError, match="labels must be whole numbers"):
        model.fit(X, y + 5)
    with pytest.raises(InputTypeError, match="numeric"):
        model.predict(np.array([["a"] * 5]))
    with pytest.raises(InputError, match="hidden_size"):
        MLP(5, 0, 3)


def test_score_is_the_exact_fraction_as_a_python_float(backend32):
    X = np.random.default_rng(4).normal(size=(200, 5))
    model = MLP(5, 8, 3, backend=backend32, seed=1)
    predicted = np.asarray(backend32.to_numpy(model.predict(backend32.asarray(X, "float32"))))
    y = predicted.copy()
    y[:81] = (y[:81] + 1) % 3  # 119 of 200 right: 0.595, which float32 cannot hold
    score = model.score(X, y)
    assert type(score) is float and score == 119 / 200
