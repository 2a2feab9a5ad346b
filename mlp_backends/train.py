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
import time
from typing import Callable, Protocol

import numpy as np

from . import chunks, nn
from . import threads as cpu_threads
from .callbacks import (
    Callback,
    EarlyStopping,
    History,
    begin_training,
    callback_states,
    end_epoch,
    end_training,
    restore_callbacks,
)
from .checkpoint import Checkpoint, Progress
from .errors import DivergedError
from .interrupt import StopOnSigint, interrupted
from .optim import OptimizerState
from .outofcore import RowSource
from .step import SkipNonFinite, make_step, step_key

# The loop's names, and those the distributed loop, the plugins and users import from here
# (the step, the callbacks and Ctrl-C live in modules of their own).
__all__ = ["EVAL_BLOCK_BYTES", "Callback", "EarlyStopping", "History", "SkipNonFinite", "Trainer", "begin_training",
           "callback_states", "end_epoch", "end_training", "evaluate", "fingerprint", "handle_divergence",
           "interrupted", "make_step", "on_device", "one_hot_targets", "read_scalars", "restore_callbacks", "run",
           "step_key"]

EVAL_BLOCK_BYTES = 32 << 20  # rows scored at a time from a file on disk or a large host array


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


def on_device(method):
    """`method(model, ...)` run inside `model.backend.device_context()`, where arrays made
    without an explicit device land on the backend's (CuPy's current device is per thread)."""

    @functools.wraps(method)
    def run_on_device(model, *args, **kwargs):
        with model.backend.device_context():
            return method(model, *args, **kwargs)

    return run_on_device


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
    with cpu, StopOnSigint() as sigint, watch():
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


def fingerprint(backend, *arrays) -> str:
    """A short hash of arrays' shapes, dtypes and values (the data a checkpoint was made with)."""
    h = hashlib.sha256()
    for a in arrays:
        host = np.ascontiguousarray(backend.to_numpy(a))
        h.update(f"{host.shape}{host.dtype.str}".encode())
        h.update(host.data)
    return h.hexdigest()[:16]


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
