"""mlp_backends: one array-API MLP, trained on whichever backend plugin fits the machine.

    from mlp_backends import MLP, list_backends, get_backend, use_backend

Importing this package imports NumPy and array-api-compat only; backend
libraries (CuPy, PyTorch, JAX, ...) load when a backend is first asked for.
"""

from .backend import Backend, BackendInfo, Probe
from .callbacks import EarlyStopping, History
from .errors import (
    BackendError,
    ClusterError,
    DeviceMemoryError,
    DivergedError,
    FastPathError,
    InputError,
    InputTypeError,
    ModelFileError,
    TrainingInterrupted,
    UsageError,
)
from .model import MLP
from .registry import get_backend, list_backends, use_backend

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "Backend",
    "BackendError",
    "BackendInfo",
    "ClusterError",
    "DeviceMemoryError",
    "DivergedError",
    "EarlyStopping",
    "FastPathError",
    "History",
    "InputError",
    "InputTypeError",
    "ModelFileError",
    "Probe",
    "TrainingInterrupted",
    "UsageError",
    "get_backend",
    "list_backends",
    "use_backend",
    "__version__",
]
