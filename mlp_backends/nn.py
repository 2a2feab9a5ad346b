"""The MLP's math as pure array-API functions: no NumPy, no state, no I/O.

Every function takes the namespace `xp` of its arrays and returns new arrays
(no in-place updates: JAX arrays are immutable). Arrays keep the dtype and
device of their inputs; nothing here reads a value back to the host.

Shapes: X (n, d); W_l (fan_in, fan_out); b_l (fan_out,); params is the flat
list [W1, b1, W2, b2, ...]; Y (n, k) one-hot (or any rows that sum to 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

#: The output layer and its loss: "softmax" with cross-entropy (one class per
#: row), or "logistic" with binary cross-entropy per output unit (one unit for
#: a binary problem, one per label for multilabel targets). Both are canonical
#: pairs, so dloss/dlogits is (probabilities - Y) / n for either.
OUTPUTS = ("softmax", "logistic")


def sigmoid(xp, z):
    """1 / (1 + exp(-z)), in the tanh form, which never overflows (the other does for z << 0)."""
    return 0.5 * xp.tanh(0.5 * z) + 0.5


def sigmoid_grad(xp, a, g):
    """g * sigmoid'(z) = g * a (1 - a), with a = sigmoid(z)."""
    return g * a * (1 - a)


def relu(xp, z):
    """max(z, 0); a Python scalar operand (standard since 2024.12) allocates no array of zeros."""
    return xp.maximum(z, 0.0)


def relu_grad(xp, a, g):
    """g where a > 0, else 0, with a = relu(z)."""
    # A 0/1 mask product: xp.where(a > 0, g, 0) takes ten times as long on NumPy
    # (it branches per element), and NumPy's sign is not vectorized either.
    return g * xp.astype(a > 0, g.dtype)


def tanh(xp, z):
    """tanh(z)."""
    return xp.tanh(z)


def tanh_grad(xp, a, g):
    """g * tanh'(z) = g (1 - a^2), with a = tanh(z)."""
    return g * (1 - a * a)


def identity(xp, z):
    """z itself (scikit-learn's "identity": a linear hidden layer)."""
    return z


def identity_grad(xp, a, g):
    """g: the identity's derivative is 1."""
    return g


@dataclass(frozen=True)
class Activation:
    """A hidden layer's activation and its derivative, side by side. The derivative is
    written with the activation's output a = f(z), which all of them allow, so backprop
    keeps only the layers' outputs. Backends with in-place kernels key them by `name`
    (backends/numpy_inplace.py), and tests hold those to these functions."""

    name: str
    function: Callable  # (xp, z) -> f(z)
    derivative: Callable  # (xp, a, g) -> g * f'(z), with a = f(z)


#: Every activation, by the name MLP, fit, the CLI and the model files use.
ACTIVATION_TABLE = {a.name: a for a in (
    Activation("sigmoid", sigmoid, sigmoid_grad),
    Activation("relu", relu, relu_grad),
    Activation("tanh", tanh, tanh_grad),
    Activation("identity", identity, identity_grad),
)}
ACTIVATIONS = tuple(ACTIVATION_TABLE)


def lookup_activation(name: str) -> Activation:
    """The table's entry for `name`; an unknown name is a ValueError listing the choices."""
    try:
        return ACTIVATION_TABLE[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


def activate(xp, name: str, z):
    """f(z) for the activation called `name`."""
    return lookup_activation(name).function(xp, z)


def activation_grad(xp, name: str, a, g):
    """g * f'(z) for the activation called `name`, written with its output a = f(z)."""
    return lookup_activation(name).derivative(xp, a, g)


def log_softmax(xp, logits):
    """Row-wise log-softmax; the max of each row is subtracted so exp never overflows."""
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def softmax(xp, logits):
    """Row-wise softmax. The article subtracts the whole batch's max, which turns
    a row far below that max into 0/0; each row's own max cannot."""
    e = xp.exp(logits - xp.max(logits, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def softplus(xp, z):
    """log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))."""
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


def binary_cross_entropy(xp, logits, Y):
    """Per element -(Y log s(z) + (1 - Y) log(1 - s(z))) with s the sigmoid, from the
    logits z: softplus(z) - Y z, which never takes the log of a rounded 0."""
    return softplus(xp, logits) - Y * logits


def probabilities(xp, logits, output: str):
    """The output layer's probabilities: softmax rows, or a sigmoid per unit."""
    if output == "logistic":
        return sigmoid(xp, logits)
    return softmax(xp, logits)


def correct(xp, logits, Y, output: str):
    """Per row, whether the prediction is right: argmax for softmax; for logistic
    outputs every unit on the right side of 0.5 (subset accuracy for multilabel)."""
    if output == "logistic":
        return xp.all((logits > 0) == (Y > 0.5), axis=1)
    return xp.argmax(logits, axis=1) == xp.argmax(Y, axis=1)


def softmax_delta(xp, log_p, Y, n):
    """dloss/dlogits of the mean cross-entropy: (softmax - Y) / n, from log-softmax."""
    return (xp.exp(log_p) - Y) / n


def log_likelihood(xp, log_p, Y):
    """sum(Y * log_p): the batch's log-likelihood, from log-softmax; -1/n of it is the mean cross-entropy."""
    return xp.sum(Y * log_p)


@dataclass(frozen=True)
class Kernels:
    """The elementwise pieces of a training step, each a function of arrays only.

    A backend may turn each into one fused kernel (CuPy's `fuse`); the math is
    always the functions above, so every backend's tests check it. A kernel
    may write its result into its array argument `z`, `g` or `log_p`: this
    module passes only arrays it made for the step and reads them no more.
    """

    activate: Callable  # (z, b) -> f(z + b): the bias add and the activation in one pass
    activation_grad: Callable  # (a, g) -> g * f'(z), with a = f(z)
    softmax_delta: Callable  # (log_p, Y, n) -> (softmax - Y) / n
    log_likelihood: Callable | None = None  # (log_p, Y) -> sum(Y * log_p); None: computed as written


def kernels(xp, activation: str, wrap: Callable | None = None) -> Kernels:
    """Kernels for one activation; `wrap` (default: none) is applied to each function.

    Each function's `__name__` is a C identifier naming what it computes
    ("mlp_relu_bias", ...): CuPy's fuse names its kernel after the function,
    and refuses a lambda's "<lambda>". backward never calls `activation_grad`
    for "identity" (f' = 1).
    """
    entry = lookup_activation(activation)

    def bias(z, b):
        return entry.function(xp, z + b)

    def grad(a, g):
        return entry.derivative(xp, a, g)

    def softmax_minus_target(log_p, Y, n):
        return softmax_delta(xp, log_p, Y, n)

    def likelihood(log_p, Y):
        return log_likelihood(xp, log_p, Y)

    for fn, name in ((bias, f"mlp_{activation}_bias"), (grad, f"mlp_{activation}_grad"),
                     (softmax_minus_target, "mlp_softmax_minus_target"), (likelihood, "mlp_log_likelihood")):
        fn.__name__ = fn.__qualname__ = name
    wrap = wrap or (lambda f: f)
    return Kernels(activate=wrap(bias), activation_grad=wrap(grad), softmax_delta=wrap(softmax_minus_target),
                   log_likelihood=wrap(likelihood))


def one_hot(xp, labels, num_classes: int, dtype):
    """Integer labels (n,) -> one-hot (n, num_classes) on the labels' device."""
    classes = xp.arange(num_classes, dtype=labels.dtype, device=labels.device)
    return xp.astype(labels[:, None] == classes[None, :], dtype)


def forward(xp, params, X, activation: str, kern: Kernels | None = None):
    """Logits, and the input of every dense layer (X, h1, h2, ...) for backprop.

    kern, when given, supplies the elementwise functions (see `kernels`)."""
    inputs = [X]
    h = X
    n_layers = len(params) // 2
    for i in range(n_layers):
        z = h @ params[2 * i]
        if i == n_layers - 1:
            return z + params[2 * i + 1], inputs
        h = kern.activate(z, params[2 * i + 1]) if kern else activate(xp, activation, z + params[2 * i + 1])
        inputs.append(h)
    raise ValueError("params must hold at least one (W, b) pair")


def cross_entropy_sum(xp, logits, Y):
    """Sum over rows of -sum(Y * log_softmax(logits)); divide by n for the mean."""
    return -xp.sum(Y * log_softmax(xp, logits))


def l2_penalty(xp, params, l2: float):
    """0.5 * l2 * sum of squared weights (biases are not penalized)."""
    return 0.5 * l2 * sum(xp.sum(W * W) for W in params[0::2])


def backward(xp, params, inputs, delta, activation: str, kern: Kernels | None = None):
    """Gradients of sum(loss) w.r.t. params, given delta = dloss/dlogits (n, k).

    `inputs` is forward's list; this empties it, last layer first, so that on an
    eager backend each activation is freed once its layer is done with it.
    """
    grads = [None] * len(params)
    for i in range(len(params) // 2 - 1, -1, -1):
        h = inputs.pop()
        grads[2 * i] = h.T @ delta
        grads[2 * i + 1] = xp.sum(delta, axis=0)
        if i > 0:
            g = delta @ params[2 * i].T
            if activation == "identity":
                delta = g
            else:
                delta = kern.activation_grad(h, g) if kern else activation_grad(xp, activation, h, g)
    return grads


def loss_and_grads(xp, params, X, Y, activation: str, l2: float = 0.0, n=None,
                   kern: Kernels | None = None, *, output: str = "softmax", weights=None,
                   l2_per_sample: bool = False):
    """Mean loss plus L2 penalty, and its gradients.

    n is the count the loss is averaged over (default: the rows of X, or the
    sum of `weights`). A caller that splits a batch into parts passes the
    whole batch's n to each part and adds the parts' results, then adds the
    penalty once. kern, when given, supplies the elementwise functions (see
    `kernels`). output: "softmax" (cross-entropy) or "logistic" (binary
    cross-entropy per unit), see OUTPUTS. weights: one per row (n,), each
    row's loss counts that many times. The penalty is 0.5 * l2 * |W|^2, or
    with `l2_per_sample` 0.5 * l2 * |W|^2 / n (scikit-learn's alpha: the same
    per sample whatever the batch size).
    """
    if n is None:
        n = X.shape[0] if weights is None else xp.sum(weights)
    logits, inputs = forward(xp, params, X, activation, kern)
    w = None if weights is None else weights[:, None]
    if output == "logistic":
        terms = binary_cross_entropy(xp, logits, Y)
        loss = xp.sum(terms if w is None else w * terms) / n
        delta = (sigmoid(xp, logits) - Y) / n
    else:
        log_p = log_softmax(xp, logits)
        if w is None:
            total = kern.log_likelihood(log_p, Y) if kern and kern.log_likelihood else log_likelihood(xp, log_p, Y)
        else:
            total = xp.sum(w * (Y * log_p))
        loss = total / -n  # the same number as -(total / n), one 0-d operation fewer
        delta = kern.softmax_delta(log_p, Y, n) if kern else softmax_delta(xp, log_p, Y, n)
    if w is not None:
        delta = delta * w
    grads = backward(xp, params, inputs, delta, activation, kern)
    if l2:
        l2 = l2 / n if l2_per_sample else l2
        loss = loss + l2_penalty(xp, params, l2)
        grads = [g + l2 * p if i % 2 == 0 else g for i, (g, p) in enumerate(zip(grads, params))]
    return loss, grads, logits
