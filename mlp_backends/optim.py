"""Optimizers as pure functions: `init(xp, params) -> state` and
`update(xp, params, grads, state, t) -> (params, state)`.

No in-place updates (JAX arrays are immutable) and no host reads. `t` is the
1-based step number; it may be a Python int or a traced scalar (under
`jax.jit`), so it is only used in arithmetic, never in a Python `if`.
State is a tuple of lists of arrays shaped like params, so a checkpoint can
save it and a compiled step can carry it. NumPy's and PyTorch's compile hooks
apply these same formulas in place: backends/inplace_formulas.py holds each
optimizer's in-place update in its table `APPLY`, next to the others, and
tests/test_inplace.py holds the two to the same bits, so a change here must
be made there too.
"""

from __future__ import annotations

from dataclasses import dataclass

from array_api_compat import device

OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass
class OptimizerState:
    """Where training left an optimizer: its state (`init`'s tuple of lists of arrays, or
    None before the first step) and the number of steps taken, which Adam's bias correction
    counts. A model keeps one so that further training (`fit(..., warm_start)`, scikit-learn's
    `partial_fit`, a benchmark's next epoch) continues where the last left off."""

    moments: tuple | None = None
    step: int = 0


@dataclass(frozen=True)
class SGD:
    """Plain gradient descent: the article's update (on the mean loss)."""

    learning_rate: float = 0.1

    def init(self, xp, params):
        """No state: plain SGD keeps nothing between steps."""
        return ()

    def update(self, xp, params, grads, state, t):
        """p - lr g for each parameter; the state passes through."""
        lr = self.learning_rate
        return [p - lr * g for p, g in zip(params, grads)], state


@dataclass(frozen=True)
class Momentum:
    """SGD with (heavy-ball or Nesterov) momentum: v = mu v + g; p -= lr (g + mu v | v)."""

    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False

    def init(self, xp, params):
        """One velocity per parameter, zero."""
        return ([xp.zeros_like(p) for p in params],)

    def update(self, xp, params, grads, state, t):
        """v = mu v + g, then p - lr v (heavy ball) or p - lr (g + mu v) (Nesterov)."""
        lr, mu = self.learning_rate, self.momentum
        velocity = [mu * v + g for v, g in zip(state[0], grads)]
        if self.nesterov:
            steps = [g + mu * v for g, v in zip(grads, velocity)]
        else:
            steps = velocity
        return [p - lr * s for p, s in zip(params, steps)], (velocity,)


@dataclass(frozen=True)
class ScheduledSGD:
    """SGD with momentum as scikit-learn's MLP writes it, for learning-rate schedules.

    The velocity holds the step itself: v = mu v - lr g, then p + v, or with
    Nesterov p + (mu v - lr g). With a constant rate this is `Momentum`; with
    a rate that changes, a velocity built at the old rate keeps its size.
    The rate lives in the state (a 0-d array, `state[1][0]`), so a schedule
    changes it between steps (`with_learning_rate`) without a new, or newly
    compiled, step. momentum=0 is plain SGD.
    """

    learning_rate: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True

    def init(self, xp, params):
        """One velocity per parameter, zero, and the rate as a 0-d array on the parameters' device."""
        rate = xp.asarray(self.learning_rate, dtype=params[0].dtype, device=device(params[0]))
        return ([xp.zeros_like(p) for p in params], [rate])

    @staticmethod
    def with_learning_rate(xp, state, learning_rate: float):
        """`state` with the rate replaced (same dtype and device)."""
        old = state[1][0]
        return (state[0], [xp.asarray(learning_rate, dtype=old.dtype, device=device(old))])

    def update(self, xp, params, grads, state, t):
        """v = mu v - lr g, then p + v, or p + (mu v - lr g) with Nesterov; lr from the state."""
        lr, mu = state[1][0], self.momentum
        velocity = [mu * v - lr * g for v, g in zip(state[0], grads)]
        steps = [mu * v - lr * g for v, g in zip(velocity, grads)] if self.nesterov else velocity
        return [p + s for p, s in zip(params, steps)], (velocity, state[1])


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction.

    raw_eps=False adds eps to the bias-corrected sqrt(v), as the paper does;
    raw_eps=True adds it to sqrt(v) before the correction, as scikit-learn's
    MLP does (the two differ only while v is tiny).
    """

    learning_rate: float = 0.001
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    raw_eps: bool = False

    def init(self, xp, params):
        """The first and second moments of each parameter's gradient, zero."""
        return ([xp.zeros_like(p) for p in params], [xp.zeros_like(p) for p in params])

    def coefficients(self, t):
        """(step, eps) of step t: both bias corrections folded into the step size,
        which saves two passes (shared with in-place updates, for the same numbers)."""
        b1, b2 = self.beta1, self.beta2
        eps = self.eps if self.raw_eps else self.eps * (1 - b2**t) ** 0.5
        return self.learning_rate * (1 - b2**t) ** 0.5 / (1 - b1**t), eps

    def update(self, xp, params, grads, state, t):
        """Adam's moment updates, then p - step m / (sqrt(v) + eps) with `coefficients(t)`."""
        b1, b2 = self.beta1, self.beta2
        m = [b1 * m_ + (1 - b1) * g for m_, g in zip(state[0], grads)]
        v = [b2 * v_ + (1 - b2) * (g * g) for v_, g in zip(state[1], grads)]
        step, eps = self.coefficients(t)
        new = [p - step * m_ / (xp.sqrt(v_) + eps) for p, m_, v_ in zip(params, m, v)]
        return new, (m, v)


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.9, nesterov: bool = False):
    """The optimizer called `name`, with its usual defaults for the rest."""
    if name == "sgd":
        return SGD(learning_rate)
    if name == "momentum":
        return Momentum(learning_rate, momentum, nesterov)
    if name == "adam":
        return Adam(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
