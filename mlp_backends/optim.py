"""Optimizers as pure functions: `init(xp, params) -> state` and
`update(xp, params, grads, state, t) -> (params, state)`.

No in-place updates (JAX arrays are immutable) and no host reads. `t` is the
1-based step number; it may be a Python int or a traced scalar (under
`jax.jit`), so it is only used in arithmetic, never in a Python `if`.
State is a tuple of lists of arrays shaped like params, so a checkpoint can
save it and a compiled step can carry it. NumPy's compile hook applies these
same formulas in place (backends/numpy_inplace.py); tests/test_inplace.py
holds the two to the same bits, so a change here must be made there too.
"""

from __future__ import annotations

from dataclasses import dataclass

OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass(frozen=True)
class SGD:
    """Plain gradient descent: the article's update (on the mean loss)."""

    learning_rate: float = 0.1

    def init(self, xp, params):
        return ()

    def update(self, xp, params, grads, state, t):
        lr = self.learning_rate
        return [p - lr * g for p, g in zip(params, grads)], state


@dataclass(frozen=True)
class Momentum:
    """SGD with (heavy-ball or Nesterov) momentum: v = mu v + g; p -= lr (g + mu v | v)."""

    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False

    def init(self, xp, params):
        return ([xp.zeros_like(p) for p in params],)

    def update(self, xp, params, grads, state, t):
        lr, mu = self.learning_rate, self.momentum
        velocity = [mu * v + g for v, g in zip(state[0], grads)]
        if self.nesterov:
            steps = [g + mu * v for g, v in zip(grads, velocity)]
        else:
            steps = velocity
        return [p - lr * s for p, s in zip(params, steps)], (velocity,)


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction."""

    learning_rate: float = 0.001
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def init(self, xp, params):
        return ([xp.zeros_like(p) for p in params], [xp.zeros_like(p) for p in params])

    def coefficients(self, t):
        """(step, eps) of step t: both bias corrections folded into the step size,
        which saves two passes (shared with in-place updates, for the same numbers)."""
        b1, b2 = self.beta1, self.beta2
        return self.learning_rate * (1 - b2**t) ** 0.5 / (1 - b1**t), self.eps * (1 - b2**t) ** 0.5

    def update(self, xp, params, grads, state, t):
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
