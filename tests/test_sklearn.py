"""The scikit-learn estimator: scikit-learn's own checks, Pipeline, GridSearchCV, partial_fit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlp_backends import data
from mlp_backends.sklearn import MLPClassifier
from conftest import usable_or_strict

# Checks that cannot apply, each with its reason (scikit-learn marks them xfail).
# None today: every check passes on the NumPy backend. scikit-learn itself
# skips two when their prerequisites are missing (visible with -rs): the
# pandas checks without pandas, and the array-API input check without
# SCIPY_ARRAY_API=1.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


def _expected_failed(estimator):
    return EXPECTED_FAILED_CHECKS


# Small and quick for the checks; max_iter is enough for check_classifiers_train's 83%.
@parametrize_with_checks([MLPClassifier(hidden_layer_sizes=(16,), learning_rate=0.01, max_iter=40,
                                        backend="numpy")],
                         expected_failed_checks=_expected_failed)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    ds = data.read("iris")
    names = np.array(["setosa", "versicolor", "virginica"])
    return ds.X, names[ds.y]


def test_fitted_attributes_and_string_labels(iris):
    X, y = iris
    clf = MLPClassifier(max_iter=50, learning_rate=0.01, random_state=0, tol=0, backend="numpy").fit(
        StandardScaler().fit_transform(X), y)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert clf.n_features_in_ == 4 and clf.n_iter_ == 50 and len(clf.loss_curve_) == 50
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 5
    assert set(clf.predict(StandardScaler().fit_transform(X))) <= set(clf.classes_)


def test_in_a_pipeline_with_grid_search(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=60, random_state=0, backend="numpy"))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (32,)],
                               "mlpclassifier__learning_rate": [0.0001, 0.01]}, cv=3)
    grid.fit(X, y)
    assert grid.best_params_["mlpclassifier__learning_rate"] == 0.01  # 60 epochs at 1e-4 barely move
    assert grid.best_score_ > 0.9
    assert grid.score(X, y) > 0.9


def test_partial_fit_continues_where_it_left_off(iris):
    X, y = iris
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(learning_rate=0.01, random_state=0, backend="numpy")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    for _ in range(20):
        clf.partial_fit(X[:100], y[:100], classes=np.unique(y))
        clf.partial_fit(X[100:], y[100:])
    assert clf.n_iter_ == 40 and len(clf.loss_curve_) == 40
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="differs from the first call"):
        clf.partial_fit(X, y, classes=["setosa", "versicolor"])


def test_partial_fit_keeps_the_optimizer_state(iris):
    """Two half-epochs of partial_fit with one batch each equal fit's two steps, Adam moments and all."""
    X, y = iris
    X = StandardScaler().fit_transform(X)
    common = dict(batch_size=None, shuffle=False, random_state=0, dtype="float64", tol=0, backend="numpy")
    whole = MLPClassifier(max_iter=2, **common).fit(X, y)
    parts = MLPClassifier(**common)
    parts.partial_fit(X, y, classes=np.unique(y))
    parts.partial_fit(X, y)
    for a, b in zip(whole.model_.get_params(), parts.model_.get_params()):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_early_stopping_holds_out_validation_data(iris):
    X, y = iris
    clf = MLPClassifier(max_iter=500, early_stopping=True, n_iter_no_change=5, learning_rate=0.01,
                        random_state=0, backend="numpy").fit(StandardScaler().fit_transform(X), y)
    assert clf.n_iter_ < 500 and len(clf.validation_scores_) == clf.n_iter_


def test_backend_is_a_parameter_and_results_are_numpy(iris, backend32):
    X, y = iris
    X = StandardScaler().fit_transform(X)
    kwargs = dict(max_iter=5, random_state=0, tol=0)
    ref = MLPClassifier(backend="numpy", dtype="float64", **kwargs).fit(X, y)
    clf = MLPClassifier(backend=backend32.spec, **kwargs).fit(X, y)
    proba = clf.predict_proba(X)
    assert type(proba) is np.ndarray and type(clf.predict(X)) is np.ndarray
    np.testing.assert_allclose(proba, ref.predict_proba(X), rtol=1e-3, atol=1e-4)


def test_pickles_without_backend_objects_and_predicts_the_same(iris):
    X, y = iris
    clf = MLPClassifier(max_iter=5, random_state=0, backend=usable_or_strict("torch")).fit(X, y)
    blob = pickle.dumps(clf)
    assert b"_rebuild_tensor" not in blob and b"array_api_compat" not in blob  # host arrays only
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_divergence_is_a_convergence_warning_not_silence(iris):
    from sklearn.exceptions import ConvergenceWarning

    X, y = iris
    with pytest.warns(ConvergenceWarning, match="diverged"), np.errstate(all="ignore"):
        clf = MLPClassifier(optimizer="sgd", learning_rate=1e30, max_iter=20, tol=0, random_state=0,
                            backend="numpy").fit(X * 1e10, y)
    assert all(np.isfinite(p).all() for p in clf.model_.get_params())  # the last finite parameters
