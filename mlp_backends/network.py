"""The network's shape before any training: layer sizes, initial weights, and whether
its parameters fit in memory (checked before they are drawn)."""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

from . import validation
from .validation import check_param


def init_params(sizes: Sequence[int], init: str, activation: str, seed: int | None) -> list[np.ndarray]:
    """Host float64 weights from default_rng(seed): the same numbers on every backend.

    "standard_normal" is the article's randn; "auto" is He for relu and
    Glorot (fan-in + fan-out) for sigmoid and tanh, which train much better.
    """
    init = check_param("init", init)
    if init == "auto":
        init = "he" if activation == "relu" else "glorot"
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        if init == "standard_normal":
            W = rng.standard_normal((fan_in, fan_out))
        elif init == "he":
            W = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-limit, limit, (fan_in, fan_out))
        params += [W, np.zeros(fan_out)]
    return params


def check_network_fits(sizes: Sequence[int], dtype: str, on_host: bool = True, what: str | None = None) -> None:
    """Refuse, before drawing them, parameters that cannot fit in host memory: they are
    drawn as float64 on the host (plus one layer's temporary), then copied to the device
    (the host itself when `on_host`). The CLI asks this with the smallest input and
    output before it reads any data, so that a huge --hidden costs nothing."""
    count = validation.parameter_count(sizes)
    largest = max(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    device = count * np.dtype(dtype).itemsize if on_host else 0
    what = what or f"a network of sizes {list(sizes)}"
    validation.check_memory(8 * (count + largest) + device, f"{what} ({count:,} parameters)", "use smaller layers")


def hidden_sizes(hidden_size) -> tuple[int, ...]:
    """hidden_size as a tuple of layer widths: one whole number, or a sequence of them."""
    if isinstance(hidden_size, (numbers.Integral, str, bytes)) or not hasattr(hidden_size, "__iter__"):
        hidden_size = (hidden_size,)
    return tuple(check_param("hidden_size", h) for h in hidden_size)
