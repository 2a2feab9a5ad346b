"""A model that carries saved preprocessing (standardization, class labels, column names)
applies it wherever rows and labels come in and predictions go out; one without it is
the bare network."""

from __future__ import annotations

import numpy as np
import pytest

from mlp_backends import MLP
from mlp_backends.errors import InputError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 4)) * [1.0, 10.0, 100.0, 0.1] + [0.0, 5.0, -50.0, 2.0]
Y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 5)  # 0, 1 or 2
MEAN, SCALE = X.mean(axis=0), X.std(axis=0)
EXTRA = {"classes": [3, 5, 7], "standardization": {"mean": MEAN.tolist(), "scale": SCALE.tolist()}}


def pair(backend="numpy", dtype="float64"):
    """(a model with EXTRA, the same network without it) after a short fit on scaled rows."""
    bare = MLP(4, 8, 3, backend=backend, dtype=dtype, seed=0)
    bare.fit((X - MEAN) / SCALE, Y, epochs=20, batch_size=None, learning_rate=0.5)
    saved = MLP(4, 8, 3, backend=backend, dtype=dtype, seed=0)
    saved.set_params(bare.get_params())
    saved.extra = EXTRA
    return saved, bare


def test_numbered_classes_come_out_of_predict_and_go_into_score():
    saved, bare = pair()
    labels = np.array([3, 5, 7])[Y]
    np.testing.assert_array_equal(saved.predict(X), np.array([3, 5, 7])[bare.predict((X - MEAN) / SCALE)])
    assert saved.score(X, labels) == bare.score((X - MEAN) / SCALE, Y) > 0.6
    assert saved.loss(X, labels) == pytest.approx(bare.loss((X - MEAN) / SCALE, Y), rel=1e-12)
    np.testing.assert_allclose(saved.predict_proba(X), bare.predict_proba((X - MEAN) / SCALE), rtol=1e-12)
    np.testing.assert_array_equal(saved.classes, [3, 5, 7])
    with pytest.raises(InputError, match=r"labels the model does not know: 4; its classes are 3, 5, 7"):
        saved.score(X, np.full(len(X), 4))


def test_fit_on_a_model_with_saved_preprocessing_takes_raw_rows_and_labels():
    saved, bare = pair()
    saved.fit(X, np.array([3, 5, 7])[Y], epochs=3, batch_size=None, learning_rate=0.5)
    bare.fit((X - MEAN) / SCALE, Y, epochs=3, batch_size=None, learning_rate=0.5)
    for a, b in zip(saved.get_params(), bare.get_params()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_a_plain_model_keeps_index_labels_and_its_input_s_array_type():
    model = MLP(4, 8, 3, seed=0)
    assert model.classes is None and model.predict(X).dtype.kind == "i"
    model.extra = {"classes": [0, 1, 2]}  # the indices themselves: nothing to map
    assert model.classes is None


def test_extra_is_checked_before_it_is_kept():
    model = MLP(4, 8, 3, seed=0)
    with pytest.raises(InputError, match="classes must be a list of 3 labels"):
        model.extra = {"classes": [1, 2]}
    with pytest.raises(InputError, match="standardization scale must be above 0"):
        model.extra = {"standardization": {"mean": [0.0] * 4, "scale": [1.0, 0.0, 1.0, 1.0]}}
    assert model.extra == {} and model.classes is None


def test_backend_arrays_are_standardized_on_their_device_as_on_the_host(backend32):
    saved, bare = pair(backend32.spec, "float32")
    rows = backend32.asarray(X, "float32")
    got = saved.predict_proba(rows)
    assert type(got) is type(rows)  # outputs follow the inputs
    np.testing.assert_allclose(backend32.to_numpy(got), bare.predict_proba(((X - MEAN) / SCALE).astype(np.float32)),
                               rtol=1e-5, atol=1e-6)
    assert saved.predict(rows).tolist() == np.array([3, 5, 7])[backend32.to_numpy(bare.predict(
        backend32.asarray((X - MEAN) / SCALE, "float32")))].tolist()


def test_a_data_frame_s_columns_are_taken_by_the_saved_names():
    pandas = pytest.importorskip("pandas")
    saved, _ = pair()
    saved.extra = {**EXTRA, "feature_names": ["a", "b", "c", "d"], "target": "y"}
    frame = pandas.DataFrame(X, columns=["a", "b", "c", "d"])
    expected = saved.predict(X)
    np.testing.assert_array_equal(saved.predict(frame[["d", "c", "b", "a"]]), expected)
    with pytest.raises(InputError, match="lacks the model's feature columns 'c'"):
        saved.predict(frame[["a", "b", "d"]])
