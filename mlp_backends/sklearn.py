"""`MLPClassifier`: scikit-learn's MLPClassifier, trained on any mlp_backends backend.

Replace `from sklearn.neural_network import MLPClassifier` with
`from mlp_backends.sklearn import MLPClassifier`: the same constructor, fitted
attributes, warnings and errors as scikit-learn's (of the installed version),
plus `backend` (where to train: None is the registry's choice, i.e.
`use_backend(...)`, `$MLP_BACKEND`, else auto; or a name like "torch", or
"name:device") and `dtype` (None: float32 for float32 input, else float64,
as scikit-learn does; or "float32"/"float64").

The model is scikit-learn's: softmax for multiclass targets, one logistic unit
for binary ones, a logistic unit per label (binary cross-entropy) for
multilabel indicator targets; its Glorot initialisation drawn from
`random_state` the way scikit-learn draws it; its L2 penalty
(alpha * |W|^2 / 2 divided by the batch's sample count or weight); its SGD
(momentum, Nesterov, constant/invscaling/adaptive rates) and Adam; L-BFGS
through `scipy.optimize.minimize`, with the loss and gradient computed on the
backend (one transfer each way per evaluation). The math is mlp_backends.nn's
and .optim's, so every backend computes the same thing.

Under `sklearn.config_context(array_api_dispatch=True)` (which needs
SCIPY_ARRAY_API=1), X of any array-API library is taken as scikit-learn's
array-API estimators take it: with backend=None the model trains on the
backend of X's library (PyTorch tensors on torch, ...), and predict,
predict_proba and predict_log_proba answer in X's namespace on X's device,
refusing X from another namespace or device than fit's (scikit-learn's
message). coefs_ and intercepts_ are then arrays of that namespace too.

Requires scikit-learn >= 1.6 and SciPy (`pip install 'mlp-backends[sklearn]'`).
`coefs_` and `intercepts_` are host NumPy arrays; setting them (as scikit-learn
allows) is honoured by the next fit with warm_start, partial_fit and predict.
Pickles hold the host arrays only; the optimizer's state is not kept, so a
`partial_fit` after unpickling starts a fresh optimizer.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse
from array_api_compat import array_namespace, device, is_numpy_namespace, to_device
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from . import nn, optim, train
from .model import MLP
from .registry import get_backend, list_backends

_STOCHASTIC_SOLVERS = ("sgd", "adam")
# scikit-learn's names for the hidden activations -> nn.py's
_ACTIVATION = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SPARSE_ROWS = 4096  # rows densified at a time when a sparse X moves to the device


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier, scikit-learn's, on any mlp_backends backend.

    Parameters and attributes are those of `sklearn.neural_network.MLPClassifier`
    (see its documentation), plus:

    backend : None, str or Backend, default=None
        Where to train and predict: None takes the registry's choice
        (`use_backend(...)`, `$MLP_BACKEND`, else a GPU when there is one, else
        NumPy); "numpy", "torch", "jax", "cupy", ... or "name:device".
    dtype : None, "float32" or "float64", default=None
        The parameters' dtype; None follows X (float32 stays float32, anything
        else is float64), as scikit-learn does. float32 is much faster on GPUs.
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATION))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "backend": "no_validation",  # checked by the registry, with its own message
        "dtype": [None, StrOptions({"float32", "float64"})],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend=None, dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype

    # -- scikit-learn API ----------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and y (labels, or a label indicator matrix for
        multilabel problems). Returns self."""
        X, y, sample_weight = self._from_namespace(X, y, sample_weight, reset=True)
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One iteration (epoch) over (X, y), continuing from the current parameters
        and optimizer state. The first call needs `classes` (every label to expect)."""
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to partial_fit, "
                             f"was: {self.classes_!r}")
        X, y, sample_weight = self._from_namespace(X, y, sample_weight, reset=not hasattr(self, "coefs_"))
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted labels (an indicator matrix for multilabel problems)."""
        check_is_fitted(self)
        namespace = self._check_namespace(X, "predict")
        labels = self._label_binarizer.inverse_transform(self._probabilities(X, namespace))
        return self._to_namespace(labels, namespace)

    def predict_proba(self, X):
        """Class probabilities, columns in the order of classes_."""
        check_is_fitted(self)
        namespace = self._check_namespace(X, "predict_proba")
        p = self._probabilities(X, namespace)
        return self._to_namespace(np.hstack([1 - p, p]) if p.shape[1] == 1 else p, namespace)

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        check_is_fitted(self)
        namespace = self._check_namespace(X, "predict_log_proba")
        p = self._probabilities(X, namespace)
        p = np.hstack([1 - p, p]) if p.shape[1] == 1 else p
        return self._to_namespace(np.log(p, out=p), namespace)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy (subset accuracy for multilabel), as a Python float computed
        on the host in float64, whatever namespace X and y come in."""
        from sklearn.metrics import accuracy_score

        weights = None if sample_weight is None else _host(sample_weight)
        return float(accuracy_score(_host(y), _host(self.predict(X)), sample_weight=weights))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        tags.array_api_support = True
        return tags

    # -- array-API inputs (scikit-learn's array_api_dispatch) ---------------------
    @staticmethod
    def _namespace_of(X):
        """(xp, device) of X when array-API dispatch is on and X is not NumPy, else None."""
        if not get_config()["array_api_dispatch"] or scipy.sparse.issparse(X) or isinstance(X, np.ndarray):
            return None
        try:
            xp = array_namespace(X)
        except TypeError:  # lists, DataFrames: scikit-learn's usual path
            return None
        return None if is_numpy_namespace(xp) else (xp, device(X))

    def _from_namespace(self, X, y, sample_weight, reset):
        """Host copies of array-API inputs for validation, remembering X's namespace and
        device (and, with backend=None, the backend of that library) for fit's outputs."""
        namespace = self._namespace_of(X)
        if reset:
            self._namespace = namespace
            self._backend_choice = self.backend
            if namespace is not None and self.backend is None:
                self._backend_choice = _backend_owning(X)
        if namespace is None:
            return X, y, sample_weight
        return _host(X), _host(y), None if sample_weight is None else _host(sample_weight)

    def _check_namespace(self, X, method):
        """X's (xp, device) under dispatch; refuses X from another namespace or device than fit's."""
        namespace = self._namespace_of(X)
        fitted = self.__dict__.get("_namespace")
        if not get_config()["array_api_dispatch"] or namespace == fitted:
            return namespace
        if fitted is None and namespace is None:
            return None
        name = lambda ns: "numpy" if ns is None else ns[0].__name__  # noqa: E731
        where = lambda ns: "cpu" if ns is None else ns[1]  # noqa: E731
        detail = (f"Array namespaces used during fit ({name(fitted)}) and {method} ({name(namespace)}) differ."
                  if name(fitted) != name(namespace) else
                  f"Devices used during fit ({where(fitted)}) and {method} ({where(namespace)}) differ.")
        raise ValueError(f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and "
                         f"the same device as those passed to fit(). {detail}")

    @staticmethod
    def _to_namespace(result: np.ndarray, namespace):
        """A host result in X's namespace, on X's device (as it is when there is none)."""
        if namespace is None or result.dtype.kind not in "biuf":
            return result
        xp, where = namespace
        return xp.asarray(result, device=where)

    # -- validation and initialisation (scikit-learn's rules) ------------------
    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def _initialize(self, Y, sizes, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(sizes)
        self.out_activation_ = "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"
        # Glorot's uniform bound, with scikit-learn's factor 2 for logistic units, for
        # weights and biases alike, drawn in its order: the same numbers as its MLP.
        factor = 2.0 if self.activation == "logistic" else 6.0
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            self.coefs_.append(self._random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
            self.intercepts_.append(self._random_state.uniform(-bound, bound, fan_out).astype(dtype))
        self.__dict__.pop("_optimizer", None)
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
            else:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf

    # -- the network on the backend ----------------------------------------------
    def _model(self) -> MLP:
        """The MLP holding coefs_ and intercepts_ on the backend; rebuilt when they
        were replaced since it last wrote them (scikit-learn lets users set them)."""
        host = [*self.coefs_, *self.intercepts_]
        mlp = self.__dict__.get("_mlp")
        source = self.__dict__.get("_mlp_source", [])
        if mlp is None or len(source) != len(host) or any(a is not b for a, b in zip(source, host)):
            params = [_host(a) for pair in zip(self.coefs_, self.intercepts_) for a in pair]
            sizes = [params[0].shape[0], *(W.shape[1] for W in params[0::2])]
            dtype = self.dtype or ("float32" if params[0].dtype == np.float32 else "float64")
            backend = get_backend(self.__dict__.get("_backend_choice", self.backend))
            if backend.trainer() is not None:
                raise ValueError(f"backend {backend.spec!r} trains through its own trainer (a cluster); "
                                 "MLPClassifier trains on array backends: pass backend='numpy', 'torch', ...")
            mlp = MLP(sizes[0], sizes[1:-1], sizes[-1], _ACTIVATION[self.activation],
                      backend=backend, dtype=dtype, seed=0)
            mlp.set_params(params)
            self._mlp, self._mlp_source = mlp, host
        return mlp

    def _store(self, mlp: MLP) -> None:
        """coefs_ and intercepts_ from the backend: host copies, or arrays of the
        namespace fit was given under array-API dispatch."""
        params = mlp.get_params()
        if not all(np.isfinite(p).all() for p in params):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain "
                             "large values and need to be preprocessed.")
        params = [self._to_namespace(p, self.__dict__.get("_namespace")) for p in params]
        self.coefs_, self.intercepts_ = params[0::2], params[1::2]
        self._mlp, self._mlp_source = mlp, [*self.coefs_, *self.intercepts_]

    def _device_X(self, mlp: MLP, X):
        """X on the backend in the model's dtype; a sparse X is densified a block of rows at a time."""
        if not scipy.sparse.issparse(X):
            return mlp.device_rows(X)
        X = X.tocsr()
        blocks = [mlp.device_rows(X[lo:lo + _SPARSE_ROWS].toarray()) for lo in range(0, X.shape[0], _SPARSE_ROWS)]
        return blocks[0] if len(blocks) == 1 else mlp.backend.xp.concat(blocks, axis=0)

    def _device_targets(self, mlp: MLP, Y, sample_weight):
        """Targets (n, k) on the backend, with the sample weights as one more column if any."""
        host = Y.astype(np.float64)
        if sample_weight is not None:
            host = np.hstack([host, np.asarray(sample_weight, np.float64)[:, None]])
        return mlp.backend.asarray(host, mlp.dtype)

    def _probabilities(self, X, namespace=None) -> np.ndarray:
        """The output layer's probabilities on the host, (n, n_outputs_)."""
        check_is_fitted(self)
        mlp = self._model()
        if namespace is not None and mlp.backend.owns(X):
            validate_data(self, X[:1, ...], reset=False)  # the feature count, on one row
        else:
            X = validate_data(self, _host(X) if namespace is not None else X,
                              accept_sparse=["csr", "csc"], reset=False)
        xp = mlp.backend.xp
        logits, _ = nn.forward(xp, mlp.params, self._device_X(mlp, X), mlp.activation)
        host = mlp.backend.to_numpy(nn.probabilities(xp, logits, self.out_activation_))
        return host if host.flags.writeable else host.copy()  # JAX's host view is read-only

    def _output(self) -> str:
        return "softmax" if self.out_activation_ == "softmax" else "logistic"

    # -- training ---------------------------------------------------------------
    def _fit(self, X, y, sample_weight, incremental):
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if np.any(np.array(hidden) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            dtype = self.dtype or ("float32" if X.dtype == np.float32 else "float64")
            self._initialize(Y, [X.shape[1], *hidden, Y.shape[1]], dtype)
        mlp = self._model()
        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(mlp, X, Y, sample_weight, incremental)
        else:
            self._fit_lbfgs(mlp, X, Y, sample_weight)
        return self

    def _fit_lbfgs(self, mlp: MLP, X, Y, sample_weight):
        """L-BFGS-B from SciPy on the host; each evaluation sends the packed parameters
        to the backend and reads the loss and the packed gradient back, once each."""
        backend, xp = mlp.backend, mlp.backend.xp
        Xd, Yd = self._device_X(mlp, X), self._device_targets(mlp, Y, sample_weight)
        start = mlp.get_params()
        start = [*start[0::2], *start[1::2]]  # scikit-learn's packing order: weights, then biases
        shapes = [p.shape for p in start]
        ends = np.cumsum([int(np.prod(s)) for s in shapes]).tolist()
        starts = [0, *ends[:-1]]
        n_layers = len(start) // 2
        act, output, alpha, weighted = mlp.activation, self._output(), float(self.alpha), sample_weight is not None

        def loss_and_packed_grad(flat, Xd, Yd):
            parts = [xp.reshape(flat[a:b], s) for a, b, s in zip(starts, ends, shapes)]
            params = [p for pair in zip(parts[:n_layers], parts[n_layers:]) for p in pair]
            weights = None
            if weighted:
                Yd, weights = Yd[:, :-1], Yd[:, -1]
            loss, grads, _ = nn.loss_and_grads(xp, params, Xd, Yd, act, alpha, output=output,
                                               weights=weights, l2_per_sample=True)
            ordered = [*grads[0::2], *grads[1::2]]
            return xp.concat([xp.reshape(loss, (1,)), *[xp.reshape(g, (-1,)) for g in ordered]])

        evaluate = backend.compile(loss_and_packed_grad)

        def fun(x):
            out = backend.to_numpy(evaluate(backend.asarray(x, mlp.dtype), Xd, Yd)).astype(np.float64)
            return out[0], out[1:]

        x0 = np.concatenate([p.ravel() for p in start]).astype(np.float64)
        result = scipy.optimize.minimize(fun, x0, method="L-BFGS-B", jac=True,
                                         options={"maxfun": self.max_fun, "maxiter": self.max_iter,
                                                  "gtol": self.tol})
        self.n_iter_ = min(result.nit, self.max_iter)
        if result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                          f"(status={result.status}):\n{result.message}\n\nIncrease the number of "
                          f"iterations (max_iter={self.max_iter}) or of function evaluations "
                          f"(max_fun={self.max_fun}), or scale the data (e.g. StandardScaler).",
                          ConvergenceWarning, stacklevel=4)
        self.loss_ = float(result.fun)
        parts = [result.x[a:b].reshape(s) for a, b, s in zip(starts, ends, shapes)]
        mlp.set_params([p for pair in zip(parts[:n_layers], parts[n_layers:]) for p in pair])
        self._store(mlp)

    def _fit_stochastic(self, mlp: MLP, X, Y, sample_weight, incremental):
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _Solver(self)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        solver = self._optimizer
        validation = None
        if self.early_stopping:
            stratify = Y if self.n_outputs_ == 1 else None  # multilabel: no stratification
            arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
            split = train_test_split(*arrays, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X, X_val, Y, Y_val = split[:4]
            sample_weight, w_val = (None, None) if sample_weight is None else split[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            validation = (self._device_X(mlp, X_val), self._device_targets(mlp, Y_val, w_val))
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped", stacklevel=4)
            batch_size = int(np.clip(self.batch_size, 1, n))
        Xd, Yd = self._device_X(mlp, X), self._device_targets(mlp, Y, sample_weight)
        step = solver.step(mlp, weighted=sample_weight is not None)
        self.n_iter_ = 0
        self._best_params = None
        try:
            for _ in range(self.max_iter):
                seed = int(self._random_state.randint(np.iinfo(np.int32).max)) if self.shuffle else None
                history = train.run(mlp, Xd, Yd, optimizer=solver.optimizer, epochs=1, batch_size=batch_size,
                                    shuffle=self.shuffle, seed=seed, state=solver.state, start_step=solver.t,
                                    step=step)
                if history.diverged:  # the parameters from before the epoch are kept
                    warnings.warn(history.stopped_early, ConvergenceWarning, stacklevel=4)
                    self.loss_ = float("nan")
                    break
                solver.state, solver.t = mlp.optimizer_state.moments, mlp.optimizer_state.step
                self.n_iter_ += 1
                self.loss_ = history.loss[-1]
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._update_no_improvement_count(mlp, validation)
                solver.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if validation is not None else "Training loss"
                    msg = (f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} "
                           "consecutive epochs.")
                    if solver.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                                  "the optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if validation is not None and self._best_params is not None:
            mlp.params = self._best_params
        self._best_params = None
        self._store(mlp)

    def _update_no_improvement_count(self, mlp: MLP, validation) -> None:
        if validation is None:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
            return
        score = self._validation_score(mlp, *validation)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            # Copies: a compiled step may update the live arrays in place.
            self._best_params = [mlp.backend.xp.asarray(p, copy=True) for p in mlp.params]

    def _validation_score(self, mlp: MLP, Xv, Yv) -> float:
        """Accuracy (weighted, with sample weights) on the held-out rows, one host read."""
        xp = mlp.backend.xp
        weights = None
        if Yv.shape[1] > self.n_outputs_:
            Yv, weights = Yv[:, :-1], Yv[:, -1]
        logits, _ = nn.forward(xp, mlp.params, Xv, mlp.activation)
        hits = xp.astype(nn.correct(xp, logits, Yv, self._output()), Xv.dtype)
        score = xp.mean(hits) if weights is None else xp.sum(hits * weights) / xp.sum(weights)
        return float(train.read_scalars(mlp.backend, [score])[0])

    # -- pickling: host arrays only (no backend arrays, modules or compiled steps) ---------
    def __getstate__(self):
        state = dict(super().__getstate__())  # object.__getstate__ returns the live __dict__
        for key in ("_mlp", "_mlp_source", "_optimizer", "_best_params", "_namespace"):
            state.pop(key, None)
        if self.__dict__.get("_namespace") is not None:  # weights as host arrays; predictions in NumPy
            state["coefs_"] = [_host(a) for a in self.coefs_]
            state["intercepts_"] = [_host(a) for a in self.intercepts_]
        return state


def _host(a) -> np.ndarray:
    """Any array (NumPy, array-API library, on any device) or array-like -> host NumPy."""
    if isinstance(a, np.ndarray) or scipy.sparse.issparse(a):
        return a
    try:
        return np.asarray(a)
    except Exception:  # noqa: BLE001 - device arrays refuse: move them to the host first
        return np.asarray(a.get() if hasattr(a, "get") else to_device(a, "cpu"))


def _backend_owning(X) -> str | None:
    """The name of the usable array backend whose namespace X belongs to (None: the registry's choice)."""
    for info in list_backends():
        if info.usable and not info.distributed and get_backend(info.name).owns(X):
            return info.name
    return None


class _Solver:
    """The stochastic optimizer of one fit: optim.py's update, its state on the
    backend, the current learning rate (`learning_rate`, as scikit-learn's
    optimizer exposes it) and the schedule that changes it between epochs."""

    def __init__(self, est: MLPClassifier):
        self.est = est
        self.learning_rate = float(est.learning_rate_init)
        if est.solver == "sgd":
            self.optimizer = optim.ScheduledSGD(self.learning_rate, float(est.momentum), bool(est.nesterovs_momentum))
        else:
            self.optimizer = optim.Adam(self.learning_rate, est.beta_1, est.beta_2, est.epsilon, raw_eps=True)
        self.state, self.t = None, 0
        self._steps = {}

    def step(self, mlp: MLP, weighted: bool):
        """The compiled training step (one per backend, dtype and weighting)."""
        key = (id(mlp), weighted)
        if key not in self._steps:
            step = train.make_step(mlp.backend.xp, self.optimizer, mlp.activation, float(self.est.alpha),
                                   output=self.est._output(), l2_per_sample=True, weighted=weighted)
            self._steps = {key: mlp.backend.compile(step)}
        return self._steps[key]

    def _set_rate(self, rate: float) -> None:
        self.learning_rate = rate
        if self.state is not None and isinstance(self.optimizer, optim.ScheduledSGD):
            xp = self.est._mlp.backend.xp
            self.state = optim.ScheduledSGD.with_learning_rate(xp, self.state, rate)

    def iteration_ends(self, time_step: int) -> None:
        """invscaling: learning_rate_init / (samples seen + 1) ** power_t."""
        if self.est.solver == "sgd" and self.est.learning_rate == "invscaling":
            self._set_rate(float(self.est.learning_rate_init) / (time_step + 1) ** self.est.power_t)

    def trigger_stopping(self, msg: str, verbose) -> bool:
        """True to stop; "adaptive" SGD divides the rate by 5 instead, down to 1e-6."""
        if self.est.solver != "sgd" or self.est.learning_rate != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._set_rate(self.learning_rate / 5.0)
        if verbose:
            print(msg + f" Setting learning rate to {self.learning_rate:f}")
        return False
