"""The epoch loop: mini-batches, shuffling, loss kept on the device, callbacks.

Inside an epoch nothing is read back to the host: the loss and the count of
correct predictions are summed on the device and read once, together, when
the epoch ends. Shuffle orders come from a host NumPy generator, so every
backend sees the same batches.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from . import chunks, nn
from . import threads as cpu_threads
from .checkpoint import Checkpoint, Progress
from .errors import DivergedError, InputError, TrainingInterrupted
from .optim import OptimizerState
from .outofcore import RowSource
from .validation import check_params

EVAL_BLOCK_BYTES = 32 << 20  # rows scored at a time from a file on disk or a large host array


class Callback(Protocol):
    """Any object with `on_epoch_end`; `on_train_begin(model)` and
    `on_train_end(model, history)` are called too when a callback has them."""

    def on_epoch_end(self, model, logs: dict[str, Any]) -> bool | None:
        """Called once per epoch with its figures; return True to stop training.

        logs holds epoch, loss, accuracy, time, and val_loss, val_accuracy
        when fit was given validation data. A callback that stops may set
        `stop_reason` (a sentence) for `History.stopped_early`.
        """


class Trainer(Protocol):
    """Where a backend trains and infers when it is not the array loop below
    (`Backend.trainer()`; the Dask plugin's is `distributed.ClusterTrainer`).

    `MLP` checks the hyper-parameters, builds the optimizer and the checkpoint,
    then calls these with the data exactly as the user gave them.
    """

    def fit(self, model, X, y, *, optimizer, epochs: int, batch_size: int | None, shuffle: bool,
            seed: int | None, callbacks: list, on_divergence: str, validation_data,
            checkpoint: Checkpoint | None, resume: bool) -> "History":
        """Train `model` in place with the same contract as `run`; return the History."""

    def holds(self, X) -> bool:
        """Whether inference on X runs here; otherwise the model computes in memory."""

    def predict_proba(self, model, X):
        """Probabilities for X (which `holds` accepted), in X's kind of array."""

    def predict(self, model, X):
        """Class indices for X, in X's kind of array."""

    def score(self, model, X, y) -> float:
        """Accuracy on (X, y)."""


@dataclass
class History:
    """What `fit` measured: one entry per finished epoch in each list."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: str = ""
    #: The CPU threads of the last run: {"mode": "auto"|"fixed"|"library", "threads": n, "why": ...}.
    threads: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.stopped_early.startswith("training diverged")

    def append(self, logs: dict[str, Any]) -> None:
        for key, value in logs.items():
            if key in ("loss", "accuracy", "time"):
                getattr(self, key).append(value)
            elif key != "epoch":
                self.extra.setdefault(key, []).append(value)

    def as_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "accuracy": self.accuracy, "time": self.time,
                "extra": self.extra, "stopped_early": self.stopped_early, "threads": self.threads}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(**{k: (list(v) if isinstance(v, list) else v) for k, v in d.items()})

    def __len__(self) -> int:
        return len(self.loss)

    def __getitem__(self, key: str) -> list[float]:
        if key in ("loss", "accuracy", "time"):
            return getattr(self, key)
        return self.extra[key]


def make_step(xp, optimizer, activation: str, l2: float, kern: nn.Kernels | None = None,
              update: Callable | None = None, *, output: str = "softmax", l2_per_sample: bool = False,
              weighted: bool = False) -> Callable:
    """One optimizer step as a pure function of arrays (what `compile` may jit).

    Returns new params, new optimizer state, the batch's mean loss (at the
    old params) and its count of correct predictions, both device scalars.
    `step.rebuild(**changes)` makes the same step with some arguments changed
    (another namespace, fused kernels): how compile hooks reuse this math.
    update: `update(params, grads, state, t, loss) -> (params, state, loss)` in
    place of `optimizer.update` (a compile hook's in-place version of the same
    formulas, which may skip a bad batch and report its loss as NaN); one with
    `mutates_params = True` makes the step write into the arrays it is given,
    and `step.mutates_params` says so to train.run.
    output, l2_per_sample: as in `nn.loss_and_grads`. weighted: the last
    column of Yb holds each row's sample weight (so batches of weights are
    gathered, shuffled and replayed with the targets); the loss is then the
    batch's weighted mean, and the count of correct predictions unweighted.
    """

    def step(params, state, Xb, Yb, t):
        weights = None
        if weighted:
            Yb, weights = Yb[:, :-1], Yb[:, -1]
        loss, grads, logits = nn.loss_and_grads(xp, params, Xb, Yb, activation, l2, kern=kern, output=output,
                                                weights=weights, l2_per_sample=l2_per_sample)
        if update is None:
            params, state = optimizer.update(xp, params, grads, state, t)
        else:
            params, state, loss = update(params, grads, state, t, loss)
        hits = nn.correct(xp, logits, Yb, output)
        return params, state, loss, xp.sum(xp.astype(hits, Xb.dtype))

    step.config = dict(xp=xp, optimizer=optimizer, activation=activation, l2=l2, kern=kern, update=update,
                       output=output, l2_per_sample=l2_per_sample, weighted=weighted)
    step.rebuild = lambda **changes: make_step(**{**step.config, **changes})
    step.mutates_params = bool(getattr(update, "mutates_params", False))
    return step


def step_key(config: dict) -> tuple:
    """What makes two steps from `make_step` compute the same thing, as a dict key: a
    backend that caches compiled steps keys them by this (and by what it adds itself)."""
    return tuple(config[k] for k in ("optimizer", "activation", "l2", "output", "l2_per_sample", "weighted"))


class SkipNonFinite:
    """`optimizer.update` as an `update` for make_step that drops a bad batch on the
    device: if the loss or any new parameter or moment is not finite, the step
    returns the arrays it was given and the loss NaN (train.run then counts the
    epoch as diverged). `xp.where` decides, so nothing is read back to the host.

    This is what lets a compile hook give the step's input arrays away (JAX's
    buffer donation): train.run keeps no parameters from before the epoch for
    such a step (`mutates_params`), so the step itself must not take a bad one.
    """

    mutates_params = True

    def __init__(self, xp, optimizer):
        self.xp, self.optimizer = xp, optimizer

    def __call__(self, params, grads, state, t, loss):
        xp = self.xp
        new_params, new_state = self.optimizer.update(xp, params, grads, state, t)
        ok = xp.isfinite(loss)
        for a in [*new_params, *(a for group in new_state for a in group)]:
            ok = ok & xp.all(xp.isfinite(a))
        params = [xp.where(ok, new, old) for new, old in zip(new_params, params)]
        state = tuple([xp.where(ok, new, old) for new, old in zip(new_group, old_group)]
                      for new_group, old_group in zip(new_state, state))
        return params, state, xp.where(ok, loss, xp.nan)


def on_device(method):
    """`method(model, ...)` run inside `model.backend.device_context()`, where arrays made
    without an explicit device land on the backend's (CuPy's current device is per thread)."""

    @functools.wraps(method)
    def run_on_device(model, *args, **kwargs):
        with model.backend.device_context():
            return method(model, *args, **kwargs)

    return run_on_device


class _StopOnSigint:
    """While active (main thread only), the first Ctrl-C asks the loop to stop after
    its current step; a second one interrupts at once, as usual."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@on_device
def run(
    model,
    X,
    Y,
    *,
    optimizer,
    epochs: int,
    batch_size: int | None,
    shuffle: bool,
    seed: int | None,
    callbacks: list = (),
    on_divergence: str = "stop",
    validation=None,
    checkpoint: Checkpoint | None = None,
    resume: bool = False,
    state=None,
    start_step: int = 0,
    step: Callable | None = None,
    threads: int | str | None = None,
) -> History:
    """Train `model` in place on device arrays X (n, d) and Y (n, k).

    validation: optional device arrays (X_val, Y_val), scored after every
    epoch (val_loss, val_accuracy) and read back with the epoch's own figures.
    With `checkpoint`, progress is saved every `checkpoint.every` epochs and
    when Ctrl-C stops the run; with `resume`, the run continues from it.
    `state` and `start_step` carry an optimizer on across calls (partial_fit).
    step: a step already made by `make_step` and compiled (the benchmark
    reuses one across calls, so JAX does not trace it again).
    threads: CPU threads for the steps: a count, or None/"auto" to let
    mlp_backends.threads choose by measuring ($MLP_BACKENDS_THREADS first).
    """
    backend = model.backend
    xp = backend.xp
    n = X.shape[0]
    stream = X if isinstance(X, RowSource) else None  # host rows, read a buffer at a time
    batch = n if batch_size is None else min(batch_size, n)
    if step is None:
        step = backend.compile(make_step(xp, optimizer, model.activation, model.l2))
    # An in-place step overwrites the parameters, and a donating one (JAX) gives them away,
    # so `before` would be live or deleted arrays; such a step skips a bad batch instead.
    mutates = getattr(step, "mutates_params", False)
    gather = getattr(step, "gather", None)  # gather(X, Y, idx) -> (Xb, Yb), into buffers it keeps
    whole_epoch = getattr(step, "epoch", None)  # a compiled epoch (JAX: lax.scan over the batches)
    # A step that counts its loss and hits per block of batches rather than per step (NumPy's).
    tally = step.tally(batch, n) if hasattr(step, "tally") else None
    # A compiled step may come with a context to run in (NumPy's watches floating-point errors).
    watch = getattr(step, "watch", contextlib.nullcontext)
    if tally is not None:
        step, gather = tally.step, tally.gather
    rng = np.random.default_rng(seed)
    at = Progress(step=start_step, opt_state=optimizer.init(xp, model.params) if state is None else state)
    resumed = resume and checkpoint is not None and checkpoint.exists()
    if resumed:
        at = checkpoint.load(model)
        rng.bit_generator.state = at.rng_state
    history = History.from_dict(at.history)
    whole = batch == n and not shuffle  # the article's full batch: no gathering at all
    state, t = at.opt_state, at.step

    begin_training(model, callbacks)
    if resumed:
        restore_callbacks(model, callbacks, at.callbacks)
    # A run that a callback stopped is over, also when resumed from its last checkpoint.
    last = at.epoch if history.stopped_early else epochs
    cpu = _thread_session(model, batch, threads)
    zero = None
    with cpu, _StopOnSigint() as sigint, watch():
        for epoch in range(at.epoch, last):
            started = time.perf_counter()
            before = None if mutates else model.params
            rng_state = rng.bit_generator.state  # what a mid-epoch checkpoint replays from
            first = at.batch if epoch == at.epoch else 0
            if stream is not None:
                batches = _from_host(backend, model.dtype, stream, Y, stream.order(rng, shuffle, batch), batch, first)
            else:
                order = backend.asarray(rng.permutation(n)) if shuffle else None
                batches = _on_device(xp, X, Y, order, batch, first, whole, gather)
            # Device scalars from the start, so that the epoch's sums never leave the device.
            if first:
                loss_sum = backend.asarray(np.asarray(at.loss_sum), model.dtype)
                correct = backend.asarray(np.asarray(at.correct), model.dtype)
            else:  # one device zero for every epoch (the sums below make new arrays)
                zero = backend.asarray(np.asarray(0.0), model.dtype) if zero is None else zero
                loss_sum = correct = zero
            if tally is not None:
                tally.reset()
            if whole_epoch is not None and stream is None and first == 0 and not whole:
                # The backend runs the epoch as one program: gathers, steps and sums on the device.
                model.params, state, loss_sum, correct = whole_epoch(
                    model.params, state, X, Y, backend.asarray(np.arange(n)) if order is None else order, t, batch)
                t, batches = t + -(-n // batch), ()
            for b, Xb, Yb in batches:
                t += 1
                if cpu.pace is not None:  # measuring thread counts, or counting steps until it does
                    cpu.step_begins()
                    model.params, state, loss, hits = step(model.params, state, Xb, Yb, t)
                    cpu.step_ends()
                else:
                    model.params, state, loss, hits = step(model.params, state, Xb, Yb, t)
                if tally is None:
                    loss_sum = loss_sum + loss * Xb.shape[0]
                    correct = correct + hits
                if sigint.requested:
                    interrupted(model, checkpoint, Progress(
                        epoch, b + 1, t, rng_state, *read_scalars(backend, _sums(loss_sum, correct, tally)),
                        history.as_dict(), state, callback_states(model, callbacks)))
            loss_sum, correct = _sums(loss_sum, correct, tally)
            figures = [loss_sum / n, correct / n]
            if validation is not None:
                figures += evaluate(xp, model, *validation)
            host = read_scalars(backend, figures)  # the one host read of the epoch
            logs = {"epoch": epoch + 1, "loss": host[0], "accuracy": host[1],
                    "time": time.perf_counter() - started}
            if cpu.choice.threads is not None:
                logs["threads"] = cpu.choice.threads
            history.threads = cpu.choice.as_dict()
            if validation is not None:
                logs["val_loss"], logs["val_accuracy"] = host[2], host[3]
            if handle_divergence(model, before, logs, on_divergence, history):
                break
            model.optimizer_state = OptimizerState(state, t)
            stop = end_epoch(model, logs, callbacks, history)
            if checkpoint is not None and ((epoch + 1) % checkpoint.every == 0 or epoch + 1 == epochs or stop):
                checkpoint.save(model, Progress(epoch + 1, 0, t, rng.bit_generator.state,
                                                history=history.as_dict(), opt_state=state,
                                                callbacks=callback_states(model, callbacks)))
            if stop:
                break
            if sigint.requested:  # a compiled epoch cannot stop half-way: it stops at its end
                interrupted(model, checkpoint, Progress(epoch + 1, 0, t, rng.bit_generator.state,
                                                        history=history.as_dict(), opt_state=state,
                                                        callbacks=callback_states(model, callbacks)))
    end_training(model, callbacks, history)
    return history


def _sums(loss_sum, correct, tally) -> list:
    """The epoch's running [loss_sum, correct], with what a tallying step has counted."""
    if tally is None:
        return [loss_sum, correct]
    loss, hits = tally.sums()
    return [loss_sum + loss, correct + hits]


def _on_device(xp, X, Y, order, batch: int, first: int, whole: bool, gather=None):
    """(index, Xb, Yb) of each mini-batch from batch `first` on, gathered on the device."""
    n = X.shape[0]
    for b, lo in enumerate(range(first * batch, n, batch), start=first):
        hi = min(lo + batch, n)  # the standard forbids out-of-range stops
        if whole:
            yield b, X, Y
        elif order is None:  # in order: slices are views, no copy
            yield b, X[lo:hi, ...], Y[lo:hi, ...]
        elif gather is not None:  # the step's own buffers (CuPy's compiled step)
            yield b, *gather(X, Y, order[lo:hi])
        else:
            idx = order[lo:hi]
            yield b, xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)


def _from_host(backend, dtype: str, source: RowSource, Y, order, batch: int, first: int):
    """(index, Xb, Yb) of each mini-batch read from host rows (see outofcore), moved to
    the device one batch at a time (`Backend.stage_batches`); the targets are gathered
    on the device."""
    host = source.batches(order, batch, first, np.dtype(dtype))
    for b, (Xb, positions) in enumerate(backend.stage_batches(host, dtype), start=first):
        yield b, Xb, backend.xp.take(Y, backend.asarray(positions), axis=0)


def _thread_session(model, batch: int, threads) -> "cpu_threads.Session":
    """The CPU thread settings of one run (mlp_backends/threads.py): fixed, or measured per
    shape of step, since a step's matrix products decide whether threads pay."""
    backend = model.backend
    shapes = tuple(tuple(W.shape) for W in model.params[::2])
    macs = batch * sum(a * b for a, b in shapes)
    key = (backend.spec, shapes, batch, model.dtype)
    return cpu_threads.Session(backend.thread_knob(), cpu_threads.requested(threads), key, macs)


# -- the epoch's edges, shared with the distributed loop ---------------------------
def begin_training(model, callbacks) -> None:
    for callback in callbacks:
        if hasattr(callback, "on_train_begin"):
            callback.on_train_begin(model)


def callback_states(model, callbacks) -> dict:
    """state_key -> (JSON-able state, host arrays) of each callback that can save its state
    (`state_key`, `get_state(model)`, `set_state(model, state, arrays)`): what a checkpoint
    keeps so that a resumed run's callbacks go on exactly where they were."""
    return {c.state_key: c.get_state(model) for c in callbacks if hasattr(c, "get_state")}


def restore_callbacks(model, callbacks, saved: dict) -> None:
    """Give each callback its checkpointed state. A state marked "required" (early stopping:
    its decisions depend on it) must find its callback, and the callback its state."""
    present = {c.state_key for c in callbacks if hasattr(c, "set_state")}
    for key, (state, _) in saved.items():
        if state.get("required") and key not in present:
            raise InputError(f"the checkpointed run used {key.replace('_', ' ')}; resume with the same options "
                             "(the run cannot continue bit for bit without it), or use a new checkpoint folder")
    for c in callbacks:
        if not hasattr(c, "set_state"):
            continue
        if c.state_key in saved:
            c.set_state(model, *saved[c.state_key])
        elif getattr(c, "state_required", False):
            raise InputError(f"the checkpointed run had no {c.state_key.replace('_', ' ')}; resume with the same "
                             "options, or use a new checkpoint folder")


def fingerprint(backend, *arrays) -> str:
    """A short hash of arrays' shapes, dtypes and values (the data a checkpoint was made with)."""
    h = hashlib.sha256()
    for a in arrays:
        host = np.ascontiguousarray(backend.to_numpy(a))
        h.update(f"{host.shape}{host.dtype.str}".encode())
        h.update(host.data)
    return h.hexdigest()[:16]


def end_epoch(model, logs: dict, callbacks, history: History) -> bool:
    """Hand the epoch's figures to every callback and record them; True to stop."""
    stop = False
    for callback in callbacks:
        stop = bool(callback.on_epoch_end(model, logs)) or stop
    history.append(logs)
    if stop:
        reasons = [getattr(c, "stop_reason", "") for c in callbacks]
        history.stopped_early = (" ".join(r for r in reasons if r)
                                 or f"a callback stopped training after epoch {logs['epoch']}")
    return stop


def end_training(model, callbacks, history: History) -> None:
    for callback in callbacks:
        if hasattr(callback, "on_train_end"):
            callback.on_train_end(model, history)


def handle_divergence(model, before, logs: dict, on_divergence: str, history: History) -> bool:
    """If the epoch's loss is NaN or infinite: give the model back `before` (the
    parameters that started the epoch), then raise or record why. True if it did.

    before=None means an in-place or donating step, which left parameters and
    optimizer state untouched on every batch whose loss or update was not
    finite: the model keeps the parameters of its last finite step."""
    if math.isfinite(logs["loss"]):
        return False
    if before is not None:
        model.params = before
        kept = "kept the parameters from before that epoch"
    else:
        kept = "kept the parameters of the last step whose loss and update were finite"
    message = (f"training diverged in epoch {logs['epoch']}: the loss became {logs['loss']}; "
               f"{kept}; try a lower learning rate")
    if on_divergence == "raise":
        raise DivergedError(message)
    history.stopped_early = message
    return True


def read_scalars(backend, scalars) -> list[float]:
    """Device scalars -> host floats, in one transfer."""
    return [float(v) for v in backend.to_numpy(backend.xp.stack(scalars))]


def interrupted(model, checkpoint, progress: Progress):
    """Ctrl-C: save `progress` (when there is a checkpoint) and raise TrainingInterrupted
    saying where training stopped and how to go on."""
    where = f"epoch {progress.epoch + 1}, after step {progress.step}"
    if checkpoint is None:
        raise TrainingInterrupted(f"interrupted in {where}; the model holds the parameters of that step "
                                  "(set a checkpoint folder to be able to resume)")
    checkpoint.save(model, progress)
    raise TrainingInterrupted(f"interrupted in {where}; checkpoint saved in {checkpoint.directory}; to continue, "
                              f"run the same command with --resume {checkpoint.directory} "
                              "(in Python: fit(..., checkpoint=that folder, resume=True))")


def evaluate(xp, model, X, Y) -> list:
    """Mean cross-entropy (+ L2, as in training) and accuracy of `model` on device arrays
    (or on host rows read a block at a time: a `RowSource`); device scalars."""
    if isinstance(X, RowSource):
        return _evaluate_blocks(xp, model, X, Y)
    logits, _ = nn.forward(xp, model.params, X, model.activation)
    loss = nn.cross_entropy_sum(xp, logits, Y) / X.shape[0]
    if model.l2:
        loss = loss + nn.l2_penalty(xp, model.params, model.l2)
    hits = xp.argmax(logits, axis=1) == xp.argmax(Y, axis=1)
    return [loss, xp.mean(xp.astype(hits, X.dtype))]


def _evaluate_blocks(xp, model, source: RowSource, Y) -> list:
    n, sums = source.shape[0], None
    for lo, hi in chunks.row_blocks(n, source.shape[1] * 4, EVAL_BLOCK_BYTES):
        Xb = model.backend.asarray(source.read(np.arange(lo, hi), np.dtype(model.dtype)), model.dtype)
        Yb = Y[lo:hi, ...]
        logits, _ = nn.forward(xp, model.params, Xb, model.activation)
        hits = xp.sum(xp.astype(xp.argmax(logits, axis=1) == xp.argmax(Yb, axis=1), Xb.dtype))
        block = [nn.cross_entropy_sum(xp, logits, Yb), hits]
        sums = block if sums is None else [a + b for a, b in zip(sums, block)]
    loss = sums[0] / n
    if model.l2:
        loss = loss + nn.l2_penalty(xp, model.params, model.l2)
    return [loss, sums[1] / n]


class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for
    `patience` epochs in a row, and give the model back its best parameters.

    monitor: "val_loss" (the default; it falls back to "loss" when fit has no
    validation data), "loss", "val_accuracy" or "accuracy". Losses must go
    down, accuracies up. The best parameters are copied when they appear
    (a backend's compiled step may update the live arrays in place).
    """

    def __init__(self, patience: int = 10, monitor: str = "val_loss", min_delta: float = 0.0,
                 restore_best: bool = True):
        patience, monitor, min_delta = check_params(patience=patience, monitor=monitor,
                                                    min_delta=min_delta).values()
        self.patience, self.monitor, self.min_delta, self.restore_best = patience, monitor, min_delta, restore_best
        self.on_train_begin(None)

    state_key = "early_stopping"
    state_required = True  # its stop decision and restored parameters depend on its state

    def _settings(self) -> list:
        return [self.patience, self.monitor, self.min_delta, self.restore_best]

    def get_state(self, model) -> tuple[dict, list]:
        """Everything it has seen (for checkpoints); the best parameters as host arrays."""
        state = {"settings": self._settings(), "best": self.best, "best_epoch": self.best_epoch,
                 "wait": self.wait, "monitored": self.monitored, "stop_reason": self.stop_reason,
                 "last_epoch": self.last_epoch, "required": True}
        best = [] if self.best_params is None else [np.array(model.backend.to_numpy(p)) for p in self.best_params]
        return state, best

    def set_state(self, model, state: dict, arrays: list) -> None:
        if list(state.get("settings", [])) != self._settings():
            raise InputError(f"the checkpointed run used early stopping with patience, monitor, min_delta, "
                             f"restore_best = {state.get('settings')} (now {self._settings()}); resume with the "
                             "same settings, or use a new checkpoint folder")
        if arrays and [a.shape for a in arrays] != [tuple(p.shape) for p in model.params]:
            raise InputError("the checkpoint's early-stopping parameters do not fit the model")
        self.best, self.best_epoch, self.wait = float(state["best"]), int(state["best_epoch"]), int(state["wait"])
        self.monitored, self.stop_reason = str(state["monitored"]), str(state["stop_reason"])
        self.last_epoch = int(state["last_epoch"])
        self.best_params = [model.backend.asarray(a, model.dtype) for a in arrays] or None

    def on_train_begin(self, model) -> None:
        self.best = math.inf
        self.best_epoch = 0
        self.best_params = None
        self.wait = 0
        self.monitored = self.monitor
        self.stop_reason = ""
        self.last_epoch = 0

    def on_epoch_end(self, model, logs) -> bool:
        key = self.monitor if self.monitor in logs else self.monitor.removeprefix("val_")
        self.monitored, self.last_epoch = key, logs["epoch"]
        sign = -1.0 if key.endswith("accuracy") else 1.0  # compare as "smaller is better"
        value = sign * logs[key]
        if value < self.best - self.min_delta:
            best = [model.backend.xp.asarray(p, copy=True) for p in model.params] if self.restore_best else None
            self.best, self.best_epoch, self.best_params, self.wait = value, logs["epoch"], best, 0
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        self.stop_reason = (f"early stopping after epoch {logs['epoch']}: {key} has not improved for "
                            f"{self.patience} epochs; best {key} {sign * self.best:.4f} in epoch {self.best_epoch}")
        return True

    def on_train_end(self, model, history) -> None:
        if self.restore_best and self.best_params is not None and self.best_epoch < self.last_epoch:
            model.params = self.best_params
            if self.stop_reason:
                self.stop_reason += "; restored its parameters"
                history.stopped_early = self.stop_reason


def one_hot_targets(backend, y, num_classes: int, dtype: str):
    """Integer labels (n,) or one-hot (n, k), host or device -> device one-hot (n, k)."""
    xp = backend.xp
    if backend.owns(y):
        if y.ndim == 2:
            return xp.astype(y, backend.dtype(dtype))
        return nn.one_hot(xp, xp.astype(y, xp.int64), num_classes, backend.dtype(dtype))
    y = np.asarray(y)
    if y.ndim == 2:
        return backend.asarray(y, dtype)
    return backend.asarray(np.eye(num_classes, dtype=dtype)[y.astype(np.int64)], dtype)
