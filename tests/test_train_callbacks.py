"""Validation data and early stopping live in the training floor, so the API has them too."""

from __future__ import annotations

import numpy as np
import pytest

from mlp_backends import MLP, EarlyStopping, InputError


def test_validation_data_adds_val_figures_that_match_the_model(blobs):
    X, y = blobs
    model = MLP(5, 8, 3, "relu", backend="numpy", dtype="float64")
    history = model.fit(X[:40], y[:40], epochs=5, batch_size=8, validation_data=(X[40:], y[40:]))
    assert len(history["val_loss"]) == len(history["val_accuracy"]) == 5
    # The last epoch's validation figures are those of the final parameters.
    assert history["val_loss"][-1] == pytest.approx(model.loss(X[40:], y[40:]), rel=1e-12)
    assert history["val_accuracy"][-1] == pytest.approx(model.score(X[40:], y[40:]))


def test_validation_figures_agree_across_backends(backend32, blobs):
    X, y = blobs
    ref = MLP(5, 8, 3, backend="numpy", dtype="float64").fit(
        X[:40], y[:40], epochs=3, batch_size=8, validation_data=(X[40:], y[40:]))
    got = MLP(5, 8, 3, backend=backend32).fit(
        X[:40], y[:40], epochs=3, batch_size=8, validation_data=(X[40:], y[40:]))
    np.testing.assert_allclose(got["val_loss"], ref["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(got["val_accuracy"], ref["val_accuracy"])


def test_early_stopping_stops_and_restores_the_best_parameters():
    # Random labels: the network can only memorize, so the validation loss rises.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 6)), rng.integers(0, 3, size=120)
    model = MLP(6, 64, 3, "relu", backend="numpy", dtype="float64")
    stopper = EarlyStopping(patience=3)
    history = model.fit(X[:80], y[:80], epochs=300, batch_size=16, learning_rate=0.01,
                        validation_data=(X[80:], y[80:]), callbacks=[stopper])
    assert len(history) < 300
    assert "early stopping" in history.stopped_early and "restored" in history.stopped_early
    best = int(np.argmin(history["val_loss"]))
    assert len(history) == best + 1 + 3  # patience epochs after the best one
    assert model.loss(X[80:], y[80:]) == pytest.approx(history["val_loss"][best], rel=1e-12)


def test_early_stopping_without_validation_watches_the_training_loss(blobs):
    X, y = blobs
    stopper = EarlyStopping(patience=2, min_delta=10.0)  # nothing improves by 10
    history = MLP(5, 8, 3, backend="numpy").fit(X, y, epochs=50, callbacks=[stopper])
    assert stopper.monitored == "loss"
    assert len(history) == 3


def test_early_stopping_on_accuracy_wants_it_to_rise():
    class Model:
        params = None

    stopper = EarlyStopping(patience=2, monitor="val_accuracy", restore_best=False)
    stops = [stopper.on_epoch_end(Model(), {"epoch": e, "loss": 1.0, "val_accuracy": a})
             for e, a in enumerate([0.5, 0.7, 0.6, 0.7], start=1)]
    assert stops == [False, False, False, True]
    assert stopper.best_epoch == 2


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(patience=0), "patience"),
    (dict(monitor="f1"), "monitor"),
    (dict(min_delta=-1), "min_delta"),
])
def test_bad_early_stopping_options(kwargs, match):
    with pytest.raises(InputError, match=match):
        EarlyStopping(**kwargs)


def test_bad_validation_data_is_refused(blobs):
    X, y = blobs
    model = MLP(5, 8, 3, backend="numpy")
    with pytest.raises(InputError, match="pair"):
        model.fit(X, y, validation_data=X)
    with pytest.raises(InputError, match="X has 2 features but the model takes 5"):
        model.fit(X, y, validation_data=(X[:, :2], y))
