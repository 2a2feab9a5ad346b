"""`MLP`: parameters, a backend and a config. The math lives in nn.py and optim.py,
the epoch loop in train.py, files in io.py, the initial weights in network.py and
the checking and placing of inputs in inputs.py; this class only wires them.

Outputs follow the inputs: NumPy (or lists) in, NumPy out; the backend's
arrays in, the backend's arrays out, on the input's device.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np

from . import nn, optim, outofcore, train, validation
from . import threads as cpu_threads
from .backend import Backend
from .checkpoint import Checkpoint
from .defaults import DEFAULTS, batch_rows
from .errors import DeviceMemoryError, InputError
from .inputs import ModelInputs
from .network import check_network_fits, hidden_sizes, init_params
from .preprocessing import Preprocessing
from .registry import get_backend
from .validation import check_param, check_params

DTYPES = validation.DTYPES
INITS = validation.PARAMETERS["init"].choices


class MLP(ModelInputs):
    """A multi-layer perceptron with softmax output and cross-entropy loss.

    MLP(64, 32, 10) is the article's network shape: one hidden layer of 32
    (ReLU by default; `activation="sigmoid"` is the article's). hidden_size may
    be a sequence for deeper nets, e.g. (128, 64). Defaults: mlp_backends.defaults.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int | Sequence[int],
        output_size: int,
        activation: str = DEFAULTS["activation"],
        *,
        backend: str | Backend | None = None,
        dtype: str = DEFAULTS["dtype"],
        seed: int | None = DEFAULTS["seed"],
        init: str = DEFAULTS["init"],
        l2: float = DEFAULTS["l2"],
    ):
        self.sizes = (check_param("input_size", input_size), *hidden_sizes(hidden_size),
                      check_param("output_size", output_size))
        p = check_params(activation=activation, dtype=dtype, seed=seed, init=init, l2=l2)
        self.activation, self.dtype, self.seed, self.init, self.l2 = (
            p["activation"], p["dtype"], p["seed"], p["init"], p["l2"])
        self.backend = get_backend(backend)
        if not self.backend.supports(self.dtype):
            raise InputError(f"backend {self.backend.spec} has no {self.dtype} on its device; "
                             "use dtype float32 or another backend or device")
        self._check_fits()
        host = init_params(self.sizes, self.init, self.activation, self.seed)
        try:
            self.params = [self.backend.asarray(p, dtype) for p in host]
        except Exception as exc:
            if not self.backend.is_out_of_memory(exc):
                raise
            size = sum(p.size for p in host) * (4 if dtype == "float32" else 8) / 2**20
            raise DeviceMemoryError(f"out of memory on {self.backend.spec} creating the parameters "
                                    f"({size:.1f} MB, {type(exc).__name__}); try a smaller model") from exc
        self.history: train.History | None = None
        self.extra = {}
        self.optimizer_state = optim.OptimizerState()  # where the last training left the optimizer

    @property
    def extra(self) -> dict:
        """JSON-able facts saved with the model. `train --save` records `classes`,
        `standardization`, `feature_names` and `target` here; a model holding them applies
        them to raw rows and labels (preprocessing.py). Assign a new dict to change them."""
        return self._extra

    @extra.setter
    def extra(self, value: dict) -> None:
        # What the model applies to raw rows and labels (preprocessing.py); checked before it is kept.
        self.preprocessing = Preprocessing.from_extra(value, self.sizes)
        self._extra = value

    @property
    def classes(self) -> np.ndarray | None:
        """The class label of each output, when the model was saved with named or numbered
        classes other than 0..k-1 (predict returns these); else None."""
        return self.preprocessing.classes

    def _check_fits(self) -> None:
        check_network_fits(self.sizes, self.dtype, on_host=not self.backend.is_gpu)

    # -- inference ----------------------------------------------------------
    def forward(self, X):
        """Softmax probabilities (the article's forward)."""
        return self.predict_proba(X)

    def _placed(self, X):
        """The backend's own trainer when it holds X (say, arrays on its cluster), else None."""
        trainer = self.backend.trainer()
        return trainer if trainer is not None and trainer.holds(X) else None

    @train.on_device
    def predict_proba(self, X):
        """Softmax probabilities, one row per sample and one column per class."""
        if placed := self._placed(X):
            return placed.predict_proba(self, self.preprocessing.scale_array(X))
        if outofcore.wants_stream(X):
            return np.concatenate([self.predict_proba(Xb) for Xb, _ in self.disk_blocks(X)])
        if blocks := self.host_blocks(X):
            return np.concatenate([self.predict_proba(X[lo:hi]) for lo, hi in blocks])
        X, back = self.device_input(X)
        logits, _ = nn.forward(self.backend.xp, self.params, X, self.activation)
        return back(nn.softmax(self.backend.xp, logits))

    @train.on_device
    def predict(self, X):
        """The most probable class of each row: its index, or its label when the model was
        saved with classes (`model.classes`; then a NumPy array)."""
        if placed := self._placed(X):
            indices = placed.predict(self, self.preprocessing.scale_array(X))
            if self.preprocessing.classes is None:
                return indices
            return indices.map_blocks(self.preprocessing.labels, dtype=self.preprocessing.classes.dtype)
        if outofcore.wants_stream(X):
            return np.concatenate([self.predict(Xb) for Xb, _ in self.disk_blocks(X)])
        if blocks := self.host_blocks(X):
            return np.concatenate([self.predict(X[lo:hi]) for lo, hi in blocks])
        X, back = self.device_input(X)
        logits, _ = nn.forward(self.backend.xp, self.params, X, self.activation)
        indices = back(self.backend.xp.argmax(logits, axis=1))
        if self.preprocessing.classes is None:
            return indices
        return self.preprocessing.labels(indices if isinstance(indices, np.ndarray) else self.backend.to_numpy(indices))

    @train.on_device
    def score(self, X, y) -> float:
        """Accuracy on (X, y); y as labels or one-hot."""
        if placed := self._placed(X):
            return placed.score(self, self.preprocessing.scale_array(X), self.preprocessing.indices(y))
        if outofcore.wants_stream(X):
            return sum(self.score(Xb, yb) * len(Xb) for Xb, yb in self.disk_blocks(X, y)) / max(len(X), 1)
        if blocks := self.host_blocks(X, y):  # hits counted exactly, as whole numbers
            y = self.sliceable(y)
            return sum(round(self.score(X[lo:hi], y[lo:hi]) * (hi - lo)) for lo, hi in blocks) / len(X)
        Xd, _ = self.device_input(X)
        Y = self.device_targets(y, Xd.shape[0])
        xp = self.backend.xp
        logits, _ = nn.forward(xp, self.params, Xd, self.activation)
        hits = xp.count_nonzero(xp.argmax(logits, axis=1) == xp.argmax(Y, axis=1))
        return int(hits) / Xd.shape[0]  # exact: a mean in float32 would give 0.5950000286102295 for 0.595

    @train.on_device
    def loss(self, X, y) -> float:
        """Mean cross-entropy (+ L2, as in training) on (X, y); y as labels or one-hot."""
        if outofcore.wants_stream(X):
            return sum(self.loss(Xb, yb) * len(Xb) for Xb, yb in self.disk_blocks(X, y)) / max(len(X), 1)
        if blocks := self.host_blocks(X, y):  # each block's mean carries the L2 term once: so does their mean
            y = self.sliceable(y)
            return sum(self.loss(X[lo:hi], y[lo:hi]) * (hi - lo) for lo, hi in blocks) / len(X)
        Xd, _ = self.device_input(X)
        loss, _ = train.evaluate(self.backend.xp, self, Xd, self.device_targets(y, Xd.shape[0]))
        return float(loss)

    @train.on_device
    def loss_and_gradients(self, X, y):
        """Mean cross-entropy (+ L2) and its gradients as host NumPy arrays."""
        Xd, _ = self.device_input(X)
        Y = self.device_targets(y, Xd.shape[0])
        loss, grads, _ = nn.loss_and_grads(self.backend.xp, self.params, Xd, Y, self.activation, self.l2)
        return float(loss), [self.backend.to_numpy(g) for g in grads]

    # -- training -----------------------------------------------------------
    @train.on_device
    def fit(
        self,
        X,
        y,
        epochs: int = DEFAULTS["epochs"],
        batch_size: int | str | None = DEFAULTS["batch_size"],
        learning_rate: float = DEFAULTS["learning_rate"],
        optimizer: str = DEFAULTS["optimizer"],
        *,
        momentum: float = DEFAULTS["momentum"],
        nesterov: bool = False,
        shuffle: bool = True,
        seed: int | None = None,
        callbacks: Sequence = (),
        on_divergence: str = "stop",
        checkpoint: str | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        validation_data=None,
        threads: int | str | None = None,
    ) -> train.History:
        """Train; y is integer labels or one-hot. batch_size=None (or "full") is full-batch.

        seed fixes the shuffle order (default: the model's seed).
        validation_data=(X_val, y_val) adds val_loss and val_accuracy to
        every epoch's logs and to the history (`history["val_loss"]`). With
        `checkpoint` (a folder), progress is saved atomically every
        `checkpoint_every` epochs and on Ctrl-C; `resume=True` continues from
        the checkpoint there, bit for bit, if there is one. A loss that turns
        NaN or infinite stops training with the parameters from before that
        epoch (on NumPy, which updates in place: of the last finite step;
        `on_divergence="raise"` raises DivergedError instead).
        threads: CPU threads for training (BLAS, torch); default "auto" (or
        $MLP_BACKENDS_THREADS): one thread for small products, else the faster
        of one and all, measured as training runs; `history.threads` says which.
        """
        p = check_params(epochs=epochs, batch_size=batch_rows(batch_size), learning_rate=learning_rate,
                         optimizer=optimizer, momentum=momentum, nesterov=nesterov, shuffle=shuffle,
                         seed=seed, on_divergence=on_divergence, checkpoint_every=checkpoint_every,
                         resume=resume)
        epochs, batch_size, learning_rate, momentum, seed = (
            p["epochs"], p["batch_size"], p["learning_rate"], p["momentum"], p["seed"])
        opt = optim.make_optimizer(optimizer, learning_rate, momentum, p["nesterov"])
        threads = cpu_threads.requested(threads)
        seed = self.seed if seed is None else seed
        saver = None
        if checkpoint is not None:
            settings = {"optimizer": optimizer, "learning_rate": learning_rate,
                        "momentum": momentum, "nesterov": p["nesterov"], "batch_size": batch_size,
                        "shuffle": p["shuffle"], "seed": seed}
            saver = Checkpoint(checkpoint, checkpoint_every, settings)
        if resume and saver is None:
            raise InputError("resume=True needs checkpoint= (the folder to resume from)")
        if saver is not None:
            saver.refuse_another_run(resume)  # before any work; writing() below holds the folder
        hold = saver.writing(resume) if saver is not None else contextlib.nullcontext()
        trainer = self.backend.trainer()
        if trainer is not None:  # the backend trains elsewhere (a cluster): it gets the data as given
            prep = self.preprocessing  # applied lazily, where the rows are (nothing for a model without it)
            X, y = prep.scale_array(prep.columns(X)), prep.indices(y)
            if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
                validation_data = (prep.scale_array(prep.columns(validation_data[0])), prep.indices(validation_data[1]))
            with hold:
                self.history = trainer.fit(
                    self, X, y, optimizer=opt, epochs=int(epochs), batch_size=batch_size, shuffle=shuffle,
                    seed=seed, callbacks=list(callbacks), on_divergence=on_divergence,
                    validation_data=validation_data, checkpoint=saver, resume=resume)
            return self.history
        try:  # a memory map stays on the host and is read a buffer at a time (outofcore.py)
            Xd = self.disk_rows(X) if outofcore.wants_stream(X) else self.device_input(X)[0]
            if Xd.shape[0] == 0:
                raise InputError("X has no rows; training needs at least one sample")
            Y = self.device_targets(y, Xd.shape[0], training=True)
            validation = None
            if validation_data is not None:
                if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                    raise InputError("validation_data must be a pair (X_val, y_val)")
                Xv = validation_data[0]
                Xv = self.disk_rows(Xv) if outofcore.wants_stream(Xv) else self.device_input(Xv)[0]
                if Xv.shape[0] == 0:
                    raise InputError("validation_data has no rows; pass at least one sample or None")
                validation = (Xv, self.device_targets(validation_data[1], Xv.shape[0]))
            if saver is not None:  # resuming refuses other data, or another validation split
                saver.settings["data"] = train.fingerprint(self.backend, Xd, Y, *(validation or ()))
            with hold:
                self.history = train.run(
                    self, Xd, Y, optimizer=opt, epochs=int(epochs), batch_size=batch_size,
                    shuffle=shuffle, seed=seed, callbacks=list(callbacks),
                    on_divergence=on_divergence, validation=validation,
                    checkpoint=saver, resume=resume, threads=threads,
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
        """Replace the parameters with copies of `params` (shaped as `get_params` returns
        them) on the model's device; the optimizer's state starts over."""
        expected = [s for a, b in zip(self.sizes[:-1], self.sizes[1:]) for s in ((a, b), (b,))]
        params = [np.array(p) for p in params]  # a copy: training may write into the model's arrays
        got = [p.shape for p in params]
        if got != expected:
            raise InputError(f"set_params needs arrays shaped {expected}, got {got}")
        self.params = [self.backend.asarray(p, self.dtype) for p in params]
        self.optimizer_state = optim.OptimizerState()

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
        """Write the model to `path` (.npz; see `io.save`): parameters, config and extras; `MLP.load` reads it back."""
        from . import io

        io.save(self, path)

    def export_onnx(self, path):
        """Write the forward pass, with the saved standardization, as an ONNX file taking raw
        rows (outputs `probabilities` and `label`); needs the `onnx` extra. Returns the path."""
        from .export import export_onnx

        return export_onnx(self, path)

    @classmethod
    def load(cls, path, backend: str | Backend | None = None) -> "MLP":
        """The model saved in `path` (by `save` or `train --save`), on `backend` (default: the automatic choice)."""
        from . import io

        return io.load(path, backend=backend, build=cls.from_config)

    def __repr__(self) -> str:
        hidden = self.sizes[1:-1]
        return (f"MLP({self.sizes[0]}, {hidden[0] if len(hidden) == 1 else hidden}, {self.sizes[-1]}, "
                f"activation={self.activation!r}, backend={self.backend.spec!r}, dtype={self.dtype!r})")
