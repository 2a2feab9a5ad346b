"""What a backend's fast path does when it cannot run: fall back and say so, or raise.

A compile hook (fused kernels, a CUDA graph, an in-place update) that cannot
apply hands back a slower step with the same numbers. That keeps training
right, and would let a GPU check pass while measuring the slow path. With
$MLP_BACKENDS_STRICT_FAST=1 every such fallback raises `FastPathError`
instead of logging a warning: the GPU test run and the GPU benchmark set it.
"""

from __future__ import annotations

import logging
import os

from .errors import FastPathError, one_line

STRICT_ENV = "MLP_BACKENDS_STRICT_FAST"

log = logging.getLogger(__name__)


def strict() -> bool:
    """Whether $MLP_BACKENDS_STRICT_FAST asks for fallbacks to raise (read on each call)."""
    return os.environ.get(STRICT_ENV, "").strip().lower() not in ("", "0", "false", "no")


def fall_back(what: str, exc: BaseException | None = None, logger: logging.Logger = log) -> None:
    """Report that `what` (a fast path, e.g. "CUDA graph capture of the step") cannot run:
    raise FastPathError under the strict switch, else log a warning and return."""
    reason = f" ({one_line(exc)})" if exc is not None else ""
    if strict():
        raise FastPathError(f"{what} failed{reason}, and {STRICT_ENV}=1 forbids the slower fallback; "
                            f"unset {STRICT_ENV} to train without it") from exc
    logger.warning("%s failed%s; training runs without it (same numbers, slower)", what, reason)
