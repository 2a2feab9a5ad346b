"""A whole epoch as one XLA program: `lax.scan` of the training step over the batches.

Dispatching one jitted step per batch from Python costs tens of microseconds
a step, more than the article's small network computes. Here the batches'
gathers (`order` is the epoch's permutation, on the device), the steps and the
sums of loss and hits are one program, compiled once per shape (rows,
features, batch size) and reused by every epoch, fit and partial_fit with
that shape. When the batch size does not divide the rows, the short last
batch is one more step inside the same program: its size is fixed by the
shape, so it never causes a recompile.
"""

from __future__ import annotations


def epoch_program(step, donate: bool = False):
    """`epoch(params, state, X, Y, order, t, batch) -> (params, state, loss_sum, hits)`, jitted.

    The same step function as the per-batch path runs inside, so the numbers
    agree with it; `t` is the step count before the epoch (a Python int, so
    that its type stays weak as in the per-step path).
    """
    import jax
    import jax.numpy as jnp

    def epoch(params, state, X, Y, order, t, batch):
        n = X.shape[0]
        full, rest = divmod(n, batch)

        def one(carry, idx):
            params, state, t, loss_sum, hits_sum = carry
            Xb, Yb = jnp.take(X, idx, axis=0), jnp.take(Y, idx, axis=0)
            t = t + 1
            params, state, loss, hits = step(params, state, Xb, Yb, t)
            return params, state, t, loss_sum + loss * idx.shape[0], hits_sum + hits

        zero = jnp.zeros((), X.dtype)
        carry = (params, state, t, zero, zero)
        if full:
            carry, _ = jax.lax.scan(lambda c, idx: (one(c, idx), None), carry,
                                    order[:full * batch].reshape(full, batch))
        if rest:
            carry = one(carry, order[full * batch:])
        params, state, _, loss_sum, hits_sum = carry
        return params, state, loss_sum, hits_sum

    return jax.jit(epoch, static_argnames="batch", donate_argnums=(0, 1) if donate else ())
