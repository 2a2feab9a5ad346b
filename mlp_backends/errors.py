"""Every error the library raises on purpose: each message says what is wrong and what to do.

The caller's mistakes subclass `UsageError` and ValueError, TypeError or
MemoryError, so callers that catch the builtin still catch them, and the CLI
turns every `UsageError` into exit code 2. The rest report what happened while
training: a diverged loss, Ctrl-C, a lost cluster, a fast path that may not fall back.
"""


def one_line(exc: BaseException) -> str:
    """"TypeName: first line of the message", for errors that quote another one."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class UsageError(Exception):
    """Base of the errors caused by the caller's input, not by a bug."""


class InputError(UsageError, ValueError):
    """A value the caller passed is unusable (data, options, files)."""


class InputTypeError(UsageError, TypeError):
    """An argument has the wrong type (object dtype, strings, ...)."""


class BackendError(UsageError, ValueError):
    """A backend was named that is unknown or not usable here."""


class ModelFileError(UsageError, ValueError):
    """A model file is truncated, corrupt, foreign or from a newer format."""


class DeviceMemoryError(UsageError, MemoryError):
    """A request does not fit in memory (the device's, or the host's for CPU backends):
    refused before allocating where the size is known, or caught when the device runs
    out; the message gives the sizes and what to try."""


class ClusterError(RuntimeError):
    """A cluster lost what training needs (every worker, the scheduler) or stopped answering;
    the message names what was lost and what the model holds now."""


class DivergedError(ArithmeticError):
    """The training loss became NaN or infinite (raised with on_divergence="raise")."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after a step; the message says where and how to resume."""


class FastPathError(RuntimeError):
    """A backend's fast path fell back while $MLP_BACKENDS_STRICT_FAST=1 forbids it
    (mlp_backends/fastpath.py)."""
