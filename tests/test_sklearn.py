"""The scikit-learn estimator: scikit-learn's own checks, its numbers, every backend,
Pipeline, GridSearchCV, partial_fit, sparse and DataFrame input, pickling.

scikit-learn's own test file for its MLPClassifier runs against ours in
tests/test_sklearn_upstream.py; the tests here cover what that file reaches
through scikit-learn's private methods, and what is ours (backends, dtypes).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse
import sklearn.neural_network
from conftest import usable_or_strict
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlp_backends import data, get_backend, nn
from mlp_backends.sklearn import MLPClassifier

# Checks that cannot apply, each with its reason (scikit-learn marks them xfail).
# None today: every check passes on the NumPy backend. scikit-learn itself
# skips two when their prerequisites are missing (visible with -rs): the
# pandas checks without pandas, and the array-API checks without
# SCIPY_ARRAY_API=1, which must be set before SciPy is imported:
# test_array_api_dispatch runs those in a subprocess that sets it.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


def _expected_failed(estimator):
    return EXPECTED_FAILED_CHECKS


# Small and quick for the checks; max_iter is enough for check_classifiers_train's 83%.
@parametrize_with_checks([MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=40,
                                        backend="numpy")],
                         expected_failed_checks=_expected_failed)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.fixture(scope="module")
def iris():
    ds = data.read("iris")
    names = np.array(["setosa", "versicolor", "virginica"])
    return StandardScaler().fit_transform(ds.X), names[ds.y]


@pytest.fixture(scope="module")
def digits_binary():
    X, y = load_digits(n_class=2, return_X_y=True)
    return MinMaxScaler().fit_transform(X[:120]), y[:120]


def _quiet_fit(est, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kwargs)


# -- the same numbers as scikit-learn's own MLPClassifier ------------------------------
# Same random_state: the same initial weights (its Glorot draw); no shuffling, so the
# same batches; then every step's math must agree: outputs, loss, L2 scaling, momentum
# and Nesterov, the learning-rate schedules, Adam, L-BFGS.
SAME_AS_SKLEARN = {
    "sgd-nesterov-invscaling": dict(solver="sgd", learning_rate="invscaling", power_t=0.3,
                                    learning_rate_init=0.3, batch_size=32),
    "sgd-heavy-ball": dict(solver="sgd", nesterovs_momentum=False, learning_rate_init=0.1, batch_size=50),
    "sgd-plain-logistic": dict(solver="sgd", momentum=0.0, activation="logistic", learning_rate_init=0.5),
    "adam-tanh": dict(solver="adam", activation="tanh", learning_rate_init=0.01, batch_size=40),
    "adam-identity": dict(solver="adam", activation="identity", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs", max_iter=15),
}


@pytest.mark.parametrize("problem", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("settings", list(SAME_AS_SKLEARN), ids=list(SAME_AS_SKLEARN))
def test_same_numbers_as_scikit_learn(settings, problem):
    X, y = _problem(problem)
    params = dict(hidden_layer_sizes=(7, 5), alpha=0.01, max_iter=6, shuffle=False, random_state=3, tol=0)
    params.update(SAME_AS_SKLEARN[settings])
    theirs = _quiet_fit(sklearn.neural_network.MLPClassifier(**params), X, y)
    ours = _quiet_fit(MLPClassifier(backend="numpy", **params), X, y)
    assert ours.out_activation_ == theirs.out_activation_ and ours.n_outputs_ == theirs.n_outputs_
    assert ours.n_iter_ == theirs.n_iter_
    # L-BFGS's line search magnifies last-bit differences over its iterations: scikit-learn
    # takes log(1 - p) of rounded probabilities, nn.py the same loss from the logits.
    tol = {"rtol": 1e-3, "atol": 1e-4} if params["solver"] == "lbfgs" else {"rtol": 1e-7, "atol": 1e-9}
    for got, want in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(got, want, **tol)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=tol["rtol"])
    if params["solver"] != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-7)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), **tol)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def _problem(kind):
    if kind == "multilabel":
        X, Y = make_multilabel_classification(n_samples=90, n_features=6, n_classes=4, random_state=0)
        return StandardScaler().fit_transform(X), Y
    X, y = load_digits(n_class=2 if kind == "binary" else 4, return_X_y=True)
    return MinMaxScaler().fit_transform(X[:90]), y[:90]


def test_same_numbers_as_scikit_learn_with_sample_weight_and_early_stopping():
    X, y = _problem("multiclass")
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    params = dict(hidden_layer_sizes=(6,), alpha=0.1, max_iter=5, random_state=4, solver="sgd",
                  learning_rate_init=0.2, early_stopping=True, validation_fraction=0.2, shuffle=False)
    theirs = _quiet_fit(sklearn.neural_network.MLPClassifier(**params), X, y, sample_weight=w)
    ours = _quiet_fit(MLPClassifier(backend="numpy", **params), X, y, sample_weight=w)
    for got, want in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    assert ours.best_validation_score_ == theirs.best_validation_score_ and ours.best_loss_ is None


# -- every backend agrees with NumPy float64 ---------------------------------------
@pytest.mark.parametrize("problem", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_backends_agree_with_numpy_float64(backend, solver, problem):
    be, dtype = backend
    X, y = _problem(problem)
    params = dict(hidden_layer_sizes=(8,), activation="tanh", solver=solver, max_iter=3, random_state=0,
                  batch_size=32, learning_rate_init=0.05, shuffle=solver != "lbfgs", tol=0)
    reference = _quiet_fit(MLPClassifier(backend="numpy", dtype="float64", **params), X, y)
    ours = _quiet_fit(MLPClassifier(backend=be.spec, dtype=dtype, **params), X, y)
    # float32: Adam's step m / sqrt(v) magnifies rounding where v is tiny
    tol = {"rtol": 1e-8, "atol": 1e-10} if dtype == "float64" else {"rtol": 5e-3, "atol": 2e-3}
    for got, want in zip(ours.coefs_ + ours.intercepts_, reference.coefs_ + reference.intercepts_):
        assert got.dtype == np.dtype(dtype) and type(got) is np.ndarray
        np.testing.assert_allclose(got, want, **tol)
    proba = ours.predict_proba(X)
    assert type(proba) is np.ndarray and proba.dtype == np.dtype(dtype)


# -- what upstream's test_gradient checks through a private method ---------------------------
@pytest.mark.parametrize("output", nn.OUTPUTS)
@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
def test_gradient_matches_finite_differences(output, activation):
    """nn.loss_and_grads as the estimator calls it (its output layer, alpha per sample,
    sample weights) against central differences of its own loss, in float64."""
    rng = np.random.default_rng(42)
    xp = get_backend("numpy").xp
    k = 3
    sizes = (5, 6, k)
    params = [rng.standard_normal(s) * 0.5 for a, b in zip(sizes[:-1], sizes[1:]) for s in ((a, b), (b,))]
    X = rng.random((7, sizes[0]))
    Y = (np.eye(k)[rng.integers(0, k, 7)] if output == "softmax"
         else rng.integers(0, 2, (7, k)).astype(float))
    w = rng.uniform(0.5, 2.0, 7)

    def loss_grads(p):
        return nn.loss_and_grads(xp, p, X, Y, activation, 0.3, output=output, weights=w, l2_per_sample=True)

    _, grads, _ = loss_grads(params)
    eps = 1e-6
    for i, p in enumerate(params):
        numeric = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            values = []
            for sign in (1, -1):
                trial = [q.copy() for q in params]
                trial[i][idx] += sign * eps
                values.append(float(loss_grads(trial)[0]))
            numeric[idx] = (values[0] - values[1]) / (2 * eps)
        np.testing.assert_allclose(grads[i], numeric, rtol=1e-6, atol=1e-8)


def test_lbfgs_loss_is_the_loss_at_the_fitted_parameters(digits_binary):
    """loss_ from L-BFGS is the model's loss (alpha/(2n) |W|^2 included) at coefs_."""
    X, y = digits_binary
    clf = _quiet_fit(MLPClassifier(solver="lbfgs", hidden_layer_sizes=(5,), alpha=0.5, max_iter=20,
                                   random_state=0, backend="numpy"), X, y)
    p = clf.predict_proba(X)[np.arange(len(y)), np.searchsorted(clf.classes_, y)]
    penalty = 0.5 * 0.5 * sum((c ** 2).sum() for c in clf.coefs_) / len(y)
    np.testing.assert_allclose(clf.loss_, -np.log(p).mean() + penalty, rtol=1e-8)


def test_lbfgs_honours_max_fun_with_one_round_trip_per_evaluation(digits_binary, monkeypatch):
    X, y = digits_binary
    clf = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(5,), max_fun=7, max_iter=100, random_state=0,
                        backend="numpy")
    counts = {"reads": 0, "evaluations": 0, "inside": False}
    numpy_backend = type(get_backend("numpy"))
    to_numpy, minimize = numpy_backend.to_numpy, scipy.optimize.minimize

    def counted_read(self, x):
        counts["reads"] += counts["inside"]
        return to_numpy(self, x)

    def counted_minimize(fun, x0, **kwargs):
        def evaluate(x):
            counts["evaluations"] += 1
            return fun(x)

        counts["inside"] = True
        try:
            return minimize(evaluate, x0, **kwargs)
        finally:
            counts["inside"] = False

    monkeypatch.setattr(numpy_backend, "to_numpy", counted_read)
    monkeypatch.setattr(scipy.optimize, "minimize", counted_minimize)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        clf.fit(X, y)
    assert counts["reads"] == counts["evaluations"]  # one device-to-host read per evaluation
    assert 7 <= counts["evaluations"] <= 9  # scipy may finish the line search it is in past max_fun


# -- scikit-learn conventions ----------------------------------------------------------
def test_fitted_attributes_and_string_labels(iris):
    X, y = iris
    clf = MLPClassifier(max_iter=30, learning_rate_init=0.01, random_state=0, backend="numpy")
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(30\)"):
        clf.fit(X, y)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert clf.n_features_in_ == 4 and clf.n_iter_ == 30 and len(clf.loss_curve_) == 30
    assert clf.n_layers_ == 3 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    assert clf.t_ == 30 * len(y) and clf.loss_ == clf.loss_curve_[-1] and clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    assert [c.shape for c in clf.coefs_] == [(4, 100), (100, 3)]
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 2
    assert clf.score(X, y) > 0.9


def test_in_a_pipeline_with_grid_search(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=60, random_state=0, backend="numpy"))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (32,)],
                               "mlpclassifier__learning_rate_init": [0.0001, 0.01]}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, y)
    assert grid.best_params_["mlpclassifier__learning_rate_init"] == 0.01  # 60 epochs at 1e-4 barely move
    assert grid.best_score_ > 0.9


def test_partial_fit_keeps_the_optimizer_state(iris):
    """Two partial_fit calls equal fit's two epochs, Adam moments and step count included."""
    X, y = iris
    common = dict(batch_size=50, shuffle=False, random_state=0, tol=0, backend="numpy")
    whole = _quiet_fit(MLPClassifier(max_iter=2, **common), X, y)
    parts = MLPClassifier(**common)
    parts.partial_fit(X, y, classes=np.unique(y))
    parts.partial_fit(X, y)
    for a, b in zip(whole.coefs_ + whole.intercepts_, parts.coefs_ + parts.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert parts.t_ == 2 * len(y) and parts.loss_curve_ == whole.loss_curve_


def test_parameters_set_by_hand_are_used(digits_binary):
    """scikit-learn lets users set coefs_; predict and a warm-started fit use them."""
    X, y = digits_binary
    clf = _quiet_fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0, backend="numpy"), X, y)
    clf.intercepts_ = [clf.intercepts_[0], clf.intercepts_[1] + 50.0]  # every row now says class 1
    assert (clf.predict(X) == clf.classes_[1]).all()


def test_sparse_input_gives_the_dense_result(digits_binary):
    X, y = digits_binary
    params = dict(hidden_layer_sizes=(6,), max_iter=4, random_state=0, backend="numpy", shuffle=False)
    dense = _quiet_fit(MLPClassifier(**params), X, y)
    sparse = _quiet_fit(MLPClassifier(**params), scipy.sparse.csr_matrix(X), y)
    for a, b in zip(dense.coefs_, sparse.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(sparse.predict_proba(scipy.sparse.csc_matrix(X)), dense.predict_proba(X))


def test_dataframe_feature_names(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = _quiet_fit(MLPClassifier(max_iter=3, random_state=0, backend="numpy"), frame, y)
    assert clf.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    with pytest.warns(UserWarning, match="was fitted with feature names"):
        clf.predict(X)


def test_errors_are_scikit_learns():
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = np.eye(4), [0, 1, 0, 1]
    with pytest.raises(InvalidParameterError, match="'solver' parameter"):
        MLPClassifier(solver="momentum").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'activation' parameter"):
        MLPClassifier(activation="sigmoid").fit(X, y)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)


def test_pickles_without_backend_objects_and_predicts_the_same(iris):
    X, y = iris
    clf = _quiet_fit(MLPClassifier(max_iter=5, random_state=0, backend=usable_or_strict("torch")), X, y)
    blob = pickle.dumps(clf)
    assert b"_rebuild_tensor" not in blob and b"array_api_compat" not in blob  # host arrays only
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    again.partial_fit(X, y)  # a fresh optimizer, from the pickled parameters
    assert again.n_iter_ == 1


def test_divergence_is_a_convergence_warning_not_silence(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="diverged"), np.errstate(all="ignore"):
        clf = MLPClassifier(solver="sgd", learning_rate_init=1e30, max_iter=20, tol=0, random_state=0,
                            backend="numpy").fit(X * 1e10, y)
    assert all(np.isfinite(p).all() for p in clf.coefs_)  # the last finite parameters


ARRAY_API_SCRIPT = textwrap.dedent("""
    import warnings
    import sklearn
    import torch
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.estimator_checks import (
        check_array_api_input, check_array_api_input_and_values, check_array_api_same_namespace)
    from mlp_backends.sklearn import MLPClassifier

    warnings.simplefilter("ignore", ConvergenceWarning)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    for namespace, device in [("array_api_strict", None), ("torch", "cpu")]:
        for dtype in ("float32", "float64"):
            check_array_api_input("MLPClassifier", est, namespace, device, dtype)
        check_array_api_input_and_values("MLPClassifier", est, namespace, device)
        check_array_api_same_namespace("MLPClassifier", est, namespace, device)

    # backend=None trains on the library of X; results come back as its arrays
    X = torch.rand(40, 3, dtype=torch.float64)
    y = (X[:, 0] > 0.5).to(torch.int64)
    with sklearn.config_context(array_api_dispatch=True):
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(X, y)
        proba = clf.predict_proba(X)
        assert clf._mlp.backend.name == "torch", clf._mlp.backend
        assert isinstance(proba, torch.Tensor) and proba.dtype == torch.float64, type(proba)
        assert isinstance(clf.predict(X), torch.Tensor) and isinstance(clf.coefs_[0], torch.Tensor)
        try:
            clf.predict(X.numpy())
        except ValueError as exc:
            assert "must use the same namespace" in str(exc), exc
        else:
            raise AssertionError("NumPy input after a torch fit was not refused")
    print("array API checks passed")
""")


@pytest.mark.requires_backend("torch")
def test_array_api_dispatch():
    """scikit-learn's array-API checks on array_api_strict and PyTorch (CPU), and
    arrays of the input's library out. SCIPY_ARRAY_API=1 must be set before SciPy is
    imported, which this process did long ago: so a subprocess."""
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    proc = subprocess.run([sys.executable, "-c", ARRAY_API_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "array API checks passed" in proc.stdout
