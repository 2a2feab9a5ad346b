"""NumPy's training step with its loss and hits counted per block of batches, not per step.

On a small network every NumPy call costs about a microsecond whatever its
size, and the step's own loss (a product, a sum, a division) and hits (two
argmaxes, a comparison, a cast, a sum) are about ten calls on arrays of 32 x
10: a fifth of the article's step. So in the training loop the step writes
its logits and targets into two buffers of `BYTES` in all as it goes (the final
bias add writes straight into the buffer: no extra call), and the loss and
hits of all those rows are computed at once, in the same few calls, when the
buffer is full and when the epoch ends. The epoch's figures are the same
numbers summed in another order (equal to rounding).

The update is the compiled step's, in place (backends/numpy_inplace.py),
with the same kernels; the output delta comes from the softmax rather than
from exp(log-softmax), and plain SGD's rate is folded into it, so the
parameters agree with the compiled step's to rounding. A bad batch still changes nothing: it is judged by
NumPy's floating-point errors during the step (as the compiled step does),
and by whether the output layer's bias gradient is finite (one call, where the
compiled step reads its loss: NaN in any logit reaches it), and the block's
loss becomes NaN, so the epoch counts as diverged.

Used for the softmax output with one-hot targets, no sample weights and no
L2 penalty (the defaults); other steps count per step as before.
"""

from __future__ import annotations

import math

import numpy as np

from backends.numpy_inplace import constant
from mlp_backends import nn, optim

#: Bytes of logits and targets kept before their loss and hits are summed: 819 rows at 10
#: float32 classes (5% of one `mnist` batch's rows and activations), or the epoch's rows if fewer.
BYTES = 64 << 10


def supports(config: dict) -> bool:
    """Whether a step made by train.make_step with `config` can be tallied."""
    return (config["output"] == "softmax" and not config["weighted"] and not config["l2"]
            and config["kern"] is not None)


class Tally:
    """`step(params, state, Xb, Yb, t) -> (params, state, None, None)`: the compiled step's
    update, its figures kept; `sums()` -> [loss_sum, correct] (0-d arrays) of every row
    since `reset()`. `gather(X, Y, idx)` takes a shuffled batch, its targets straight
    into the buffer. One Tally serves one training loop at a time."""

    def __init__(self, config: dict, update, batch: int, n: int | None = None):
        self.xp, self.kern, self.activation = config["xp"], config["kern"], config["activation"]
        self.update = update  # numpy_inplace.InPlaceUpdate: its error notes and in-place optimizer
        # Plain SGD: the rate goes into the output delta (m / rate in place of m), so that every
        # gradient comes out as lr * g and the step skips a pass over each parameter.
        opt = config["optimizer"]
        self.sgd_rate = opt.learning_rate if type(opt) is optim.SGD and opt.learning_rate > 0 else None
        self.batch, self.n = batch, n  # n: the rows of an epoch
        self.rows = batch  # set with the buffers, from the targets' width and dtype
        self._logits = self._targets = None
        self._gathered = None
        self.reset()

    def reset(self) -> None:
        """Start counting afresh: no rows kept, no bad batch, no sums."""
        self.filled = 0
        self.bad = False
        self.loss = self.correct = None

    def _buffers(self, like):
        width, dtype = like.shape[1], like.dtype
        if self._logits is None or self._logits.dtype != dtype or self._logits.shape[1] != width:
            limit = max(1, BYTES // (2 * width * dtype.itemsize))
            limit = limit if self.n is None else min(limit, self.n)
            self.rows = max(self.batch, -(-limit // self.batch) * self.batch)
            self._logits = np.empty((self.rows, width), dtype)
            self._targets = np.empty((self.rows, width), dtype)

    def _room(self, m: int, like) -> int:
        """Where the next m rows go: flushes a full buffer first."""
        self._buffers(like)
        if self.filled + m > self.rows:
            self._flush()
        return self.filled

    def gather(self, X, Y, idx):
        """The batch of rows `idx` of X and Y; Y's rows are taken straight into the target buffer."""
        m = idx.shape[0]
        lo = self._room(m, Y)
        Yb = Y.take(idx, axis=0, out=self._targets[lo:lo + m])
        self._gathered = Yb
        return X.take(idx, axis=0), Yb

    def step(self, params, state, Xb, Yb, t):
        """The compiled step's update on one batch, its logits and targets kept for `sums()`;
        a batch whose gradients are not finite is skipped and marks its block's loss NaN."""
        update = self.update
        update.errors.clear()
        update.in_step = True
        m = Xb.shape[0]
        if Yb is not self._gathered:
            lo = self._room(m, Yb)
            np.copyto(self._targets[lo:lo + m], Yb)
        lo = self.filled
        self._gathered = None
        inputs = [Xb]  # only this list holds the activations: backward lets each go once used
        for i in range(0, len(params) - 2, 2):
            inputs.append(self.kern.activate(inputs[-1] @ params[i], params[i + 1]))
        logits = np.matmul(inputs[-1], params[-2], out=self._logits[lo:lo + m])
        np.add(logits, params[-1], out=logits)
        self.filled = lo + m
        rate = self.sgd_rate
        delta = _softmax_delta(logits, Yb, m if rate is None else m / rate)
        grads = nn.backward(self.xp, params, inputs, delta, self.activation, self.kern)
        optimizer = update.formulas
        if rate is None:
            optimizer.scale_gradients(grads)
        if update.errors or not math.isfinite(np.add.reduce(grads[-1])):
            self.bad = True  # the batch is skipped; its block's loss becomes NaN
        else:
            optimizer.apply(params, grads, state, t)
            if update.errors:
                self.bad = True
        update.in_step = False
        return params, state, None, None

    def _flush(self) -> None:
        if not self.filled:
            return
        L, T = self._logits[:self.filled], self._targets[:self.filled]
        update = self.update
        update.in_step = True  # a bad block's logits may overflow here: noted, not warned about
        loss = -np.add.reduce((T * nn.log_softmax(self.xp, L)).ravel())
        hits = np.count_nonzero(L.argmax(axis=1) == T.argmax(axis=1))
        update.in_step = False
        update.errors.clear()
        if self.bad:
            loss = loss + np.nan
        dtype = L.dtype.type
        self.loss = dtype(loss) if self.loss is None else self.loss + dtype(loss)
        self.correct = dtype(hits) if self.correct is None else self.correct + dtype(hits)
        self.filled, self.bad = 0, False

    def sums(self) -> list:
        """[loss_sum, correct] of the rows since `reset()`, as 0-d arrays (0 when none)."""
        self._flush()
        zero = 0.0 if self._logits is None else self._logits.dtype.type(0)
        return [np.asarray(zero if self.loss is None else self.loss),
                np.asarray(zero if self.correct is None else self.correct)]


def _softmax_delta(logits, Y, m):
    """(softmax(logits) - Y) / m, as nn.softmax and nn.softmax_delta compute it, in a new array:
    no log-softmax here, where the loss is not needed. m may be any positive number."""
    e = np.subtract(logits, np.maximum.reduce(logits, axis=1, keepdims=True))
    np.exp(e, out=e)
    np.divide(e, np.add.reduce(e, axis=1, keepdims=True), out=e)
    np.subtract(e, Y, out=e)
    return np.divide(e, constant(m, e.dtype), out=e)
