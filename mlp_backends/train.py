"""The epoch loop: mini-batches, shuffling, loss kept on the device, callbacks.

Inside an epoch nothing is read back to the host: the loss and the count of
correct predictions are summed on the device and read once, together, when
the epoch ends. Shuffle orders come from a host NumPy generator, so every
backend sees the same batches.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from . import nn
from .checkpoint import Checkpoint, Progress


class Callback(Protocol):
    def on_epoch_end(self, model, logs: dict[str, Any]) -> bool | None:
        """Called once per epoch with its figures; return True to stop training."""


@dataclass
class History:
    """What `fit` measured: one entry per finished epoch in each list."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: str = ""

    def append(self, logs: dict[str, Any]) -> None:
        for key, value in logs.items():
            if key in ("loss", "accuracy", "time"):
                getattr(self, key).append(value)
            elif key != "epoch":
                self.extra.setdefault(key, []).append(value)

    def as_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "accuracy": self.accuracy, "time": self.time,
                "extra": self.extra, "stopped_early": self.stopped_early}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(**{k: (list(v) if isinstance(v, list) else v) for k, v in d.items()})

    def __len__(self) -> int:
        return len(self.loss)

    def __getitem__(self, key: str) -> list[float]:
        if key in ("loss", "accuracy", "time"):
            return getattr(self, key)
        return self.extra[key]


def make_step(xp, optimizer, activation: str, l2: float) -> Callable:
    """One optimizer step as a pure function of arrays (what `compile` may jit).

    Returns new params, new optimizer state, the batch's mean loss (at the
    old params) and its count of correct predictions, both device scalars.
    """

    def step(params, state, Xb, Yb, t):
        loss, grads, logits = nn.loss_and_grads(xp, params, Xb, Yb, activation, l2)
        params, state = optimizer.update(xp, params, grads, state, t)
        hits = xp.argmax(logits, axis=1) == xp.argmax(Yb, axis=1)
        return params, state, loss, xp.sum(xp.astype(hits, Xb.dtype))

    return step


class DivergedError(ArithmeticError):
    """The training loss became NaN or infinite (raised with on_divergence="raise")."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after a step; the message says where and how to resume."""


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
    checkpoint: Checkpoint | None = None,
    resume: bool = False,
) -> History:
    """Train `model` in place on device arrays X (n, d) and Y (n, k).

    With `checkpoint`, progress is saved every `checkpoint.every` epochs and
    when Ctrl-C stops the run; with `resume`, the run continues from it.
    """
    backend = model.backend
    xp = backend.xp
    n = X.shape[0]
    batch = n if batch_size is None else min(batch_size, n)
    step = backend.compile(make_step(xp, optimizer, model.activation, model.l2))
    rng = np.random.default_rng(seed)
    at = Progress(opt_state=optimizer.init(xp, model.params))
    if resume and checkpoint is not None and checkpoint.exists():
        at = checkpoint.load(model)
        rng.bit_generator.state = at.rng_state
    history = History.from_dict(at.history)
    whole = batch == n and not shuffle  # the article's full batch: no gathering at all
    state, t = at.opt_state, at.step

    with _StopOnSigint() as sigint:
        for epoch in range(at.epoch, epochs):
            started = time.perf_counter()
            before = model.params
            rng_state = rng.bit_generator.state  # what a mid-epoch checkpoint replays from
            order = backend.asarray(rng.permutation(n) if shuffle else np.arange(n))
            first = at.batch if epoch == at.epoch else 0
            # Device scalars from the start, so that the epoch's sums never leave the device.
            loss_sum = backend.asarray(np.asarray(at.loss_sum if first else 0.0), model.dtype)
            correct = backend.asarray(np.asarray(at.correct if first else 0.0), model.dtype)
            for b, lo in enumerate(range(first * batch, n, batch), start=first):
                if whole:
                    Xb, Yb = X, Y
                else:
                    idx = order[lo:min(lo + batch, n)]  # the standard forbids out-of-range stops
                    Xb, Yb = xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)
                t += 1
                model.params, state, loss, hits = step(model.params, state, Xb, Yb, t)
                loss_sum = loss_sum + loss * Xb.shape[0]
                correct = correct + hits
                if sigint.requested:
                    _interrupted(model, checkpoint, Progress(
                        epoch, b + 1, t, rng_state, *_read(backend, loss_sum, correct),
                        history.as_dict(), state))
            # The one host read of the epoch.
            loss_total, correct_total = _read(backend, loss_sum, correct)
            logs = {"epoch": epoch + 1, "loss": loss_total / n, "accuracy": correct_total / n,
                    "time": time.perf_counter() - started}
            if not math.isfinite(logs["loss"]):
                model.params = before
                message = (f"training diverged in epoch {epoch + 1}: the loss became {logs['loss']}; "
                           "kept the parameters from before that epoch; try a lower learning rate")
                if on_divergence == "raise":
                    raise DivergedError(message)
                history.stopped_early = message
                break
            model._opt_state, model._step = state, t
            stop = False
            for callback in callbacks:
                stop = bool(callback.on_epoch_end(model, logs)) or stop
            history.append(logs)
            if checkpoint is not None and ((epoch + 1) % checkpoint.every == 0 or epoch + 1 == epochs or stop):
                checkpoint.save(model, Progress(epoch + 1, 0, t, rng.bit_generator.state,
                                                history=history.as_dict(), opt_state=state))
            if stop:
                break
    return history


def _read(backend, loss_sum, correct) -> tuple[float, float]:
    """Both device sums in one transfer."""
    values = backend.to_numpy(backend.xp.stack([loss_sum, correct]))
    return float(values[0]), float(values[1])


def _interrupted(model, checkpoint, progress: Progress):
    where = f"epoch {progress.epoch + 1}, after step {progress.step}"
    if checkpoint is None:
        raise TrainingInterrupted(f"interrupted in {where}; the model holds the parameters of that step "
                                  "(set a checkpoint folder to be able to resume)")
    checkpoint.save(model, progress)
    raise TrainingInterrupted(f"interrupted in {where}; checkpoint saved in {checkpoint.directory}; "
                              "run the same command with --resume to continue")


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
