"""`MLPClassifier`: the MLP as a scikit-learn estimator (fit, partial_fit,
predict, predict_proba, score), usable in `Pipeline` and `GridSearchCV`.

Requires scikit-learn >= 1.6 (`pip install 'mlp-backends[sklearn]'`).
Inputs are validated the scikit-learn way (`validate_data`), labels may be
anything `numpy.unique` sorts, and results are host NumPy arrays whatever
backend trains. The estimator does not scale its input: put a
`StandardScaler` in front of it in a `Pipeline`, as for scikit-learn's own MLP.

Pickling (which GridSearchCV uses to ship estimators to workers) stores the
fitted parameters as host arrays and rebuilds the model on the estimator's
`backend` when unpickled; the optimizer's moments are not kept, so a
`partial_fit` after unpickling restarts them.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import optim, train
from .model import MLP


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multi-layer perceptron classifier on any mlp_backends backend.

    Parameters take scikit-learn's names where its MLPClassifier has the same
    idea (hidden_layer_sizes, activation, batch_size, max_iter, shuffle,
    random_state, early_stopping, validation_fraction, n_iter_no_change, tol)
    and this library's names for the rest:

    optimizer : "sgd", "momentum" or "adam"; learning_rate : its step size;
    momentum, nesterov : for "momentum"; l2 : weight penalty (0.5 * l2 * |W|^2);
    dtype : "float32" or "float64"; backend : None (the registry's choice:
    use_backend(...), $MLP_BACKEND, else auto), a name like "torch", or
    "name:device".

    Training stops after max_iter epochs, or earlier when the monitored loss
    has not improved by more than tol for n_iter_no_change epochs: the
    validation loss with early_stopping=True (a stratified validation_fraction
    of the data is held out, and the best parameters are kept), else the
    training loss (tol=0 turns that off).

    Attributes: classes_, n_features_in_ (feature_names_in_ for DataFrames),
    loss_curve_ (training loss per epoch), validation_scores_ (validation
    accuracy per epoch, with early_stopping), n_iter_ (epochs run), model_
    (the fitted `MLP`).
    """

    def __init__(self, hidden_layer_sizes=(64,), activation="relu", *, optimizer="adam",
                 learning_rate=0.001, batch_size=64, max_iter=100, l2=0.0, momentum=0.9,
                 nesterov=False, shuffle=True, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, random_state=None, dtype="float32", backend=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.l2 = l2
        self.momentum = momentum
        self.nesterov = nesterov
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.dtype = dtype
        self.backend = backend

    # -- helpers -----------------------------------------------------------
    def _seed(self) -> int | None:
        if self.random_state is None:
            return None
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _new_model(self, n_features: int) -> MLP:
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if np.isscalar(hidden) else tuple(hidden)
        return MLP(n_features, hidden, len(self.classes_), self.activation, backend=self.backend,
                   dtype=self.dtype, seed=self._seed_, l2=self.l2)

    def _validate_y(self, y) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return y

    def _encode(self, y) -> np.ndarray:
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, len(self.classes_) - 1)
        unknown = self.classes_[index] != y
        if np.any(unknown):
            raise ValueError(f"y holds labels not in classes_ {self.classes_.tolist()}: "
                             f"{np.unique(y[unknown]).tolist()[:5]}")
        return index

    def _after_training(self, history) -> None:
        if history.diverged:
            warnings.warn(history.stopped_early, ConvergenceWarning, stacklevel=3)

    # -- scikit-learn API ----------------------------------------------------
    def fit(self, X, y):
        """Train from scratch for up to max_iter epochs. Returns self."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        y = self._validate_y(y)
        self.classes_ = np.unique(y)
        self._seed_ = self._seed()
        y_index = self._encode(y)
        validation, callbacks = None, []
        if self.early_stopping:
            from sklearn.model_selection import train_test_split

            stratify = y_index if np.bincount(y_index).min() >= 2 else None
            X, X_val, y_index, y_val = train_test_split(
                X, y_index, test_size=self.validation_fraction, stratify=stratify, random_state=self._seed_)
            validation = (X_val, y_val)
            callbacks.append(train.EarlyStopping(self.n_iter_no_change, "val_loss", self.tol))
        elif self.tol > 0:
            callbacks.append(train.EarlyStopping(self.n_iter_no_change, "loss", self.tol, restore_best=False))
        self.model_ = self._new_model(X.shape[1])
        history = self.model_.fit(
            X, y_index, epochs=self.max_iter, batch_size=self.batch_size, learning_rate=self.learning_rate,
            optimizer=self.optimizer, momentum=self.momentum, nesterov=self.nesterov, shuffle=self.shuffle,
            callbacks=callbacks, validation_data=validation)
        self.loss_curve_ = list(history.loss)
        self.n_iter_ = len(history)
        if validation is not None:
            self.validation_scores_ = list(history["val_accuracy"])
        self._after_training(history)
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current parameters and
        optimizer state. The first call needs `classes` (every label to expect)."""
        first = not hasattr(self, "classes_")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(every label the estimator will see)")
            self.classes_ = np.unique(self._validate_y(classes))
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={np.unique(classes).tolist()} differs from the first call's "
                             f"{self.classes_.tolist()}; pass the same classes, or call fit to start over")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=first)
        y = self._validate_y(y)
        if first:
            self._seed_ = self._seed()
            self.model_ = self._new_model(X.shape[1])
            self.loss_curve_, self.n_iter_ = [], 0
        model = self.model_
        opt = optim.make_optimizer(self.optimizer, float(self.learning_rate), self.momentum, self.nesterov)
        Xd, _ = model._input(X)
        Y = model._targets(self._encode(y), Xd.shape[0])
        # A new shuffle order each call, still reproducible from random_state.
        seed = None if self._seed_ is None else [self._seed_, self.n_iter_]
        history = train.run(model, Xd, Y, optimizer=opt, epochs=1, batch_size=self.batch_size,
                            shuffle=self.shuffle, seed=seed, state=model._opt_state, start_step=model._step)
        self.loss_curve_ += history.loss
        self.n_iter_ += len(history)
        self._after_training(history)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of classes_."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.model_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.classes_[self.model_.predict(X)]

    # -- pickling (no backend arrays or modules in the pickle) -------------------
    def __getstate__(self):
        state = dict(super().__getstate__())  # object.__getstate__ returns the live __dict__
        model = state.pop("model_", None)
        if model is not None:
            state["_model_state"] = {"config": model.config(), "params": model.get_params()}
        return state

    def __setstate__(self, state):
        saved = state.pop("_model_state", None)
        super().__setstate__(state)
        if saved is not None:
            self.model_ = MLP.from_config(saved["config"], backend=self.backend)
            self.model_.set_params(saved["params"])
