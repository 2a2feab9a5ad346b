"""`MLP`: parameters, a backend and a config. The math lives in nn.py and optim.py,
the epoch loop in train.py, files in io.py; this class only wires them.

Outputs follow the inputs: NumPy (or lists) in, NumPy out; the backend's
arrays in, the backend's arrays out, on the input's device.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from array_api_compat import device, to_device

from . import nn, optim, train
from .backend import Backend
from .checkpoint import Checkpoint
from .errors import DeviceMemoryError, InputError, InputTypeError
from .registry import get_backend

DTYPES = ("float32", "float64")
INITS = ("auto", "glorot", "he", "standard_normal")


def init_params(sizes: Sequence[int], init: str, activation: str, seed: int | None) -> list[np.ndarray]:
    """Host float64 weights from default_rng(seed): the same numbers on every backend.

    "standard_normal" is the article's randn; "auto" is He for relu and
    Glorot (fan-in + fan-out) for sigmoid and tanh, which train much better.
    """
    if init not in INITS:
        raise InputError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    if init == "auto":
        init = "he" if activation == "relu" else "glorot"
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        if init == "standard_normal":
            W = rng.standard_normal((fan_in, fan_out))
        elif init == "he":
            W = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-limit, limit, (fan_in, fan_out))
        params += [W, np.zeros(fan_out)]
    return params


def check_labels(host: np.ndarray, k: int) -> None:
    """Integer labels (host, 1-D) must be whole numbers in [0, k)."""
    if host.size and (host.min() < 0 or host.max() >= k or np.any(host != np.round(host))):
        raise InputError(f"labels must be whole numbers in [0, {k - 1}] for output_size={k}")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


class MLP:
    """A multi-layer perceptron with softmax output and cross-entropy loss.

    MLP(64, 32, 10) is the article's network: one sigmoid hidden layer of 32.
    hidden_size may be a sequence for deeper nets, e.g. (128, 64).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int | Sequence[int],
        output_size: int,
        activation: str = "sigmoid",
        *,
        backend: str | Backend | None = None,
        dtype: str = "float32",
        seed: int | None = 0,
        init: str = "auto",
        l2: float = 0.0,
    ):
        hidden = (hidden_size,) if isinstance(hidden_size, (int, np.integer)) else tuple(hidden_size)
        self.sizes = (
            _positive_int("input_size", input_size),
            *(_positive_int("hidden_size", h) for h in hidden),
            _positive_int("output_size", output_size),
        )
        if activation not in nn.ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}; choose one of {', '.join(nn.ACTIVATIONS)}")
        if dtype not in DTYPES:
            raise InputError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        if not l2 >= 0:
            raise InputError(f"l2 must be 0 or more, got {l2!r}")
        self.activation, self.dtype, self.seed, self.init, self.l2 = activation, dtype, seed, init, float(l2)
        self.backend = get_backend(backend)
        host = init_params(self.sizes, init, activation, seed)
        try:
            self.params = [self.backend.asarray(p, dtype) for p in host]
        except Exception as exc:
            if not self.backend.is_out_of_memory(exc):
                raise
            size = sum(p.size for p in host) * (4 if dtype == "float32" else 8) / 2**20
            raise DeviceMemoryError(f"out of memory on {self.backend.spec} creating the parameters "
                                    f"({size:.1f} MB, {type(exc).__name__}); try a smaller model") from exc
        self.history: train.History | None = None
        self.extra: dict = {}  # JSON-able facts saved with the model (classes, scaling, ...)
        self._opt_state, self._step = None, 0

    # -- moving arrays in and out ------------------------------------------
    def _input(self, X):
        """X as a 2-D, finite array of the model's dtype on its device, and how to give results back.

        Checks run before any work: shape, dtype and finiteness (one reduction,
        read once, for device arrays).
        """
        b = self.backend
        if b.owns(X) and not isinstance(X, np.ndarray):  # NumPy input takes the checked host path
            back = (lambda r: r)
            source = device(X)
            if source != b.device:  # e.g. array_api_strict's device1: compute here, answer there
                X = to_device(X, b.device)
                back = (lambda r: to_device(r, source))
            self._check_shape(X.shape)
            if not b.xp.isdtype(X.dtype, ("real floating", "integral")):
                raise InputTypeError(f"X must be numeric, got dtype {X.dtype}")
            if X.dtype != b.dtype(self.dtype):
                X = b.xp.astype(X, b.dtype(self.dtype))
            finite = bool(b.xp.all(b.xp.isfinite(X)))
        else:
            host = host_features(X)
            self._check_shape(host.shape)
            finite = bool(np.isfinite(host).all())
            X = b.asarray(host, self.dtype)
            back = b.to_numpy
        if not finite:
            raise InputError("X contains NaN or infinity; remove or impute those values first")
        return X, back

    def _check_shape(self, shape) -> None:
        if len(shape) != 2:
            raise InputError(
                f"X must be 2-dimensional (n_samples, n_features), got shape {tuple(shape)}; "
                "reshape it, e.g. X.reshape(1, -1) for a single sample"
            )
        if shape[1] != self.sizes[0]:
            raise InputError(
                f"X has {shape[1]} features but the model takes {self.sizes[0]}; "
                f"pass data with {self.sizes[0]} columns (the ones it was trained on)"
            )

    def _targets(self, y, n: int, training: bool = False):
        """Integer labels or one-hot -> device one-hot of the model's dtype (validated once)."""
        k = self.sizes[-1]
        host = self.backend.to_numpy(y) if self.backend.owns(y) else np.asarray(y)
        if host.dtype == object or host.dtype.kind in "USV":
            raise InputTypeError(f"y must be numeric labels or one-hot rows, got dtype {host.dtype}")
        if host.shape[0] != n:
            raise InputError(f"y has {host.shape[0]} rows but X has {n}; pass one label per sample")
        if host.ndim == 2:
            if host.shape[1] != k:
                raise InputError(f"one-hot y must have {k} columns (output_size), got {host.shape[1]}")
        elif host.ndim == 1:
            check_labels(host, k)
        else:
            raise InputError(f"y must be 1-D labels or 2-D one-hot, got {host.ndim} dimensions")
        if training and host.size:
            labels = host.argmax(axis=1) if host.ndim == 2 else host
            if np.unique(labels).size < 2:
                raise InputError(f"y holds one class ({labels[0].item()!r}); a classifier needs at least two")
        return train.one_hot_targets(self.backend, y, k, self.dtype)

    # -- inference ----------------------------------------------------------
    def forward(self, X):
        """Softmax probabilities (the article's forward)."""
        return self.predict_proba(X)

    def _placed(self, X):
        """The backend's own trainer when it holds X (say, arrays on its cluster), else None."""
        trainer = self.backend.trainer()
        return trainer if trainer is not None and trainer.holds(X) else None

    def predict_proba(self, X):
        if placed := self._placed(X):
            return placed.predict_proba(self, X)
        X, back = self._input(X)
        logits, _ = nn.forward(self.backend.xp, self.params, X, self.activation)
        return back(nn.softmax(self.backend.xp, logits))

    def predict(self, X):
        if placed := self._placed(X):
            return placed.predict(self, X)
        X, back = self._input(X)
        logits, _ = nn.forward(self.backend.xp, self.params, X, self.activation)
        return back(self.backend.xp.argmax(logits, axis=1))

    def score(self, X, y) -> float:
        """Accuracy on (X, y); y as labels or one-hot."""
        if placed := self._placed(X):
            return placed.score(self, X, y)
        Xd, _ = self._input(X)
        Y = self._targets(y, Xd.shape[0])
        xp = self.backend.xp
        logits, _ = nn.forward(xp, self.params, Xd, self.activation)
        hits = xp.argmax(logits, axis=1) == xp.argmax(Y, axis=1)
        return float(xp.mean(xp.astype(hits, Xd.dtype)))

    def loss(self, X, y) -> float:
        """Mean cross-entropy (+ L2, as in training) on (X, y); y as labels or one-hot."""
        Xd, _ = self._input(X)
        loss, _ = train.evaluate(self.backend.xp, self, Xd, self._targets(y, Xd.shape[0]))
        return float(loss)

    def loss_and_gradients(self, X, y):
        """Mean cross-entropy (+ L2) and its gradients as host NumPy arrays."""
        Xd, _ = self._input(X)
        Y = self._targets(y, Xd.shape[0])
        loss, grads, _ = nn.loss_and_grads(self.backend.xp, self.params, Xd, Y, self.activation, self.l2)
        return float(loss), [self.backend.to_numpy(g) for g in grads]

    # -- training -----------------------------------------------------------
    def fit(
        self,
        X,
        y,
        epochs: int = 100,
        batch_size: int | None = 64,
        learning_rate: float = 0.001,
        optimizer: str = "adam",
        *,
        momentum: float = 0.9,
        nesterov: bool = False,
        shuffle: bool = True,
        seed: int | None = None,
        callbacks: Sequence = (),
        on_divergence: str = "stop",
        checkpoint: str | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        validation_data=None,
    ) -> train.History:
        """Train; y is integer labels or one-hot. batch_size=None is full-batch.

        seed fixes the shuffle order (default: the model's seed).
        validation_data=(X_val, y_val) adds val_loss and val_accuracy to
        every epoch's logs and to the history (`history["val_loss"]`). With
        `checkpoint` (a folder), progress is saved atomically every
        `checkpoint_every` epochs and on Ctrl-C; `resume=True` continues from
        the checkpoint there, bit for bit, if there is one. A loss that turns
        NaN or infinite stops training with the parameters from before that
        epoch (on NumPy, which updates in place: of the last finite step;
        `on_divergence="raise"` raises DivergedError instead).
        """
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise InputError(f"epochs must be a whole number of 0 or more, got {epochs!r}")
        if batch_size is not None:
            batch_size = _positive_int("batch_size", batch_size)
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
                or not 0 < learning_rate < float("inf"):
            raise InputError(f"learning_rate must be a number above 0, got {learning_rate!r}")
        if on_divergence not in ("stop", "raise"):
            raise InputError(f"on_divergence must be 'stop' or 'raise', not {on_divergence!r}")
        if optimizer not in optim.OPTIMIZERS:
            raise InputError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(optim.OPTIMIZERS)}")
        opt = optim.make_optimizer(optimizer, float(learning_rate), momentum, nesterov)
        seed = self.seed if seed is None else seed
        saver = None
        if checkpoint is not None:
            settings = {"optimizer": optimizer, "learning_rate": float(learning_rate),
                        "momentum": momentum, "nesterov": nesterov, "batch_size": batch_size,
                        "shuffle": shuffle, "seed": seed}
            saver = Checkpoint(checkpoint, checkpoint_every, settings)
        if resume and saver is None:
            raise InputError("resume=True needs checkpoint= (the folder to resume from)")
        trainer = self.backend.trainer()
        if trainer is not None:  # the backend trains elsewhere (a cluster): it gets the data as given
            self.history = trainer.fit(
                self, X, y, optimizer=opt, epochs=int(epochs), batch_size=batch_size, shuffle=shuffle,
                seed=seed, callbacks=list(callbacks), on_divergence=on_divergence,
                validation_data=validation_data, checkpoint=saver, resume=resume)
            return self.history
        try:
            Xd, _ = self._input(X)
            if Xd.shape[0] == 0:
                raise InputError("X has no rows; training needs at least one sample")
            Y = self._targets(y, Xd.shape[0], training=True)
            validation = None
            if validation_data is not None:
                if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                    raise InputError("validation_data must be a pair (X_val, y_val)")
                Xv, _ = self._input(validation_data[0])
                if Xv.shape[0] == 0:
                    raise InputError("validation_data has no rows; pass at least one sample or None")
                validation = (Xv, self._targets(validation_data[1], Xv.shape[0]))
            self.history = train.run(
                self, Xd, Y, optimizer=opt, epochs=int(epochs), batch_size=batch_size,
                shuffle=shuffle, seed=seed, callbacks=list(callbacks),
                on_divergence=on_divergence, validation=validation,
                checkpoint=saver, resume=resume,
            )
        except Exception as exc:
            if not self.backend.is_out_of_memory(exc):
                raise
            raise DeviceMemoryError(self._memory_message(X, batch_size, exc)) from exc
        return self.history

    def _memory_message(self, X, batch_size, exc) -> str:
        """Sizes of what training holds, for an out-of-memory report."""
        itemsize = 4 if self.dtype == "float32" else 8
        n, d = (tuple(X.shape) + (0, 0))[:2] if hasattr(X, "shape") else (len(X), self.sizes[0])
        mb = lambda count: f"{count * itemsize / 2**20:.1f} MB"  # noqa: E731
        n_params = sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        batch = n if batch_size is None else min(batch_size, n)
        return (
            f"out of memory on {self.backend.spec} while training ({type(exc).__name__}): "
            f"data {n}x{d} = {mb(n * d)}, parameters {mb(n_params)} (up to 4 copies with Adam), "
            f"activations of one batch of {batch} about {mb(3 * batch * sum(self.sizes))}; "
            "try a smaller --batch-size, float32, a smaller model or a device with more memory"
        )

    def train(self, X, y, epochs: int, learning_rate: float) -> train.History:
        """The article's call: full-batch gradient descent, no shuffling.

        The loss is the mean over samples, so the article's learning rate
        eta (on a summed loss over N samples) is eta * N here.
        """
        return self.fit(X, y, epochs=epochs, batch_size=None, learning_rate=learning_rate,
                        optimizer="sgd", shuffle=False)

    # -- parameters and files -----------------------------------------------
    def get_params(self) -> list[np.ndarray]:
        """Host NumPy copies: [W1, b1, W2, b2, ...], W (fan_in, fan_out), b (fan_out,).

        Copies even on NumPy, where `to_numpy` is the array itself: further
        training may update the parameters in place."""
        return [np.array(self.backend.to_numpy(p)) for p in self.params]

    def set_params(self, params: Sequence) -> None:
        expected = [s for a, b in zip(self.sizes[:-1], self.sizes[1:]) for s in ((a, b), (b,))]
        params = [np.array(p) for p in params]  # a copy: training may write into the model's arrays
        got = [p.shape for p in params]
        if got != expected:
            raise InputError(f"set_params needs arrays shaped {expected}, got {got}")
        self.params = [self.backend.asarray(p, self.dtype) for p in params]
        self._opt_state, self._step = None, 0

    def config(self) -> dict:
        """What it takes to rebuild this network (saved with the model)."""
        return {"sizes": list(self.sizes), "activation": self.activation, "dtype": self.dtype,
                "seed": self.seed, "init": self.init, "l2": self.l2}

    @classmethod
    def from_config(cls, cfg: dict, backend: str | Backend | None = None) -> "MLP":
        """The network `config()` describes (fresh weights from its seed), on `backend`."""
        sizes = cfg["sizes"]
        return cls(sizes[0], sizes[1:-1], sizes[-1], cfg["activation"], backend=backend,
                   dtype=cfg["dtype"], seed=cfg.get("seed"), init=cfg.get("init", "auto"),
                   l2=cfg.get("l2", 0.0))

    def save(self, path) -> None:
        from . import io

        io.save(self, path)

    @classmethod
    def load(cls, path, backend: str | Backend | None = None) -> "MLP":
        from . import io

        return io.load(path, backend=backend, build=cls.from_config)

    def __repr__(self) -> str:
        hidden = self.sizes[1:-1]
        return (f"MLP({self.sizes[0]}, {hidden[0] if len(hidden) == 1 else hidden}, {self.sizes[-1]}, "
                f"activation={self.activation!r}, backend={self.backend.spec!r}, dtype={self.dtype!r})")


def host_features(X) -> np.ndarray:
    """Anything array-like that is not a backend's own array -> numeric host array (no copy
    when it already is one); InputTypeError when it cannot be read as numbers."""
    try:
        host = np.asarray(X)
    except Exception as exc:  # noqa: BLE001 - e.g. a tensor on another device
        raise InputTypeError(f"cannot read X as an array ({exc}); pass a NumPy array") from exc
    if host.dtype == object or host.dtype.kind not in "biuf":
        raise InputTypeError(f"X must be numeric, got dtype {host.dtype}; convert it with X.astype(float)")
    return host
