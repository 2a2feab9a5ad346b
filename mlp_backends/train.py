"""The epoch loop: mini-batches, shuffling, loss kept on the device, callbacks.

Inside an epoch nothing is read back to the host: the loss and the count of
correct predictions are summed on the device and read once, together, when
the epoch ends. Shuffle orders come from a host NumPy generator, so every
backend sees the same batches.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from . import nn


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

    def __len__(self) -> int:
        return len(self.loss)

    def __getitem__(self, key: str) -> list[float]:
        if key in ("loss", "accuracy", "time"):
            return getattr(self, key)
        return self.extra[key]


def make_step(xp, optimizer, activation: str, l2: float, kern: nn.Kernels | None = None) -> Callable:
    """One optimizer step as a pure function of arrays (what `compile` may jit).

    Returns new params, new optimizer state, the batch's mean loss (at the
    old params) and its count of correct predictions, both device scalars.
    `step.rebuild(**changes)` makes the same step with some arguments changed
    (another namespace, fused kernels): how compile hooks reuse this math.
    """

    def step(params, state, Xb, Yb, t):
        loss, grads, logits = nn.loss_and_grads(xp, params, Xb, Yb, activation, l2, kern=kern)
        params, state = optimizer.update(xp, params, grads, state, t)
        hits = xp.argmax(logits, axis=1) == xp.argmax(Yb, axis=1)
        return params, state, loss, xp.sum(xp.astype(hits, Xb.dtype))

    step.config = dict(xp=xp, optimizer=optimizer, activation=activation, l2=l2, kern=kern)
    step.rebuild = lambda **changes: make_step(**{**step.config, **changes})
    return step


class DivergedError(ArithmeticError):
    """The training loss became NaN or infinite (raised with on_divergence="raise")."""


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
    state=None,
    start_step: int = 0,
    start_epoch: int = 0,
    history: History | None = None,
    step: Callable | None = None,
) -> History:
    """Train `model` in place on device arrays X (n, d) and Y (n, k).

    step: a step already made by `make_step` and compiled (the benchmark
    reuses one across calls, so JAX does not trace it again)."""
    backend = model.backend
    xp = backend.xp
    n = X.shape[0]
    batch = n if batch_size is None else min(batch_size, n)
    if step is None:
        step = backend.compile(make_step(xp, optimizer, model.activation, model.l2))
    state = optimizer.init(xp, model.params) if state is None else state
    rng = np.random.default_rng(seed)
    history = History() if history is None else history
    t = start_step
    whole = batch == n and not shuffle  # the article's full batch: no gathering at all

    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        before = model.params
        order = backend.asarray(rng.permutation(n)) if shuffle else None
        loss_sum = correct = 0.0
        for lo in range(0, n, batch):
            hi = min(lo + batch, n)  # the standard forbids out-of-range stops
            if whole:
                Xb, Yb = X, Y
            elif order is None:  # in order: slices are views, no copy
                Xb, Yb = X[lo:hi, ...], Y[lo:hi, ...]
            else:
                idx = order[lo:hi]
                Xb, Yb = xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)
            t += 1
            model.params, state, loss, hits = step(model.params, state, Xb, Yb, t)
            loss_sum = loss_sum + loss * Xb.shape[0]
            correct = correct + hits
        # The one host read of the epoch.
        loss_host, correct_host = (float(v) for v in backend.to_numpy(xp.stack([loss_sum, correct])))
        logs = {"epoch": epoch + 1, "loss": loss_host / n, "accuracy": correct_host / n,
                "time": time.perf_counter() - started}
        if not math.isfinite(logs["loss"]):
            model.params = before
            message = (f"training diverged in epoch {epoch + 1}: the loss became {logs['loss']}; "
                       f"kept the parameters from before that epoch; try a lower learning rate")
            if on_divergence == "raise":
                raise DivergedError(message)
            history.stopped_early = message
            break
        model._opt_state, model._step = state, t
        stop = False
        for callback in callbacks:
            stop = bool(callback.on_epoch_end(model, logs)) or stop
        history.append(logs)
        if stop:
            break
    return history


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
