"""The Backend contract: what a plugin implements to run the MLP on an array library.

Requirements a plugin must meet:
- importing its module imports no array library; the library is imported
  inside `probe()` and `__init__`, so `import mlp_backends` stays light;
- `probe()` does real work on the device (an allocation and a reduction),
  because a library can import fine and still fail at first use (CuPy with
  no GPU);
- `xp` is an array-API namespace (usually from `array_api_compat`), and every
  array the backend creates lives on `self.device`; where the library places
  new arrays by a per-thread current device (CuPy), `device_context()` makes
  it this backend's, and the model and the training loop run inside it.

Where training and inference run is the backend's choice too, through one
hook, `trainer()`:
- `None` (the default): `MLP` converts the data to this backend's arrays and
  runs the array loop of `mlp_backends.train` on `self.device`;
- an object with the methods of `mlp_backends.train.Trainer` (`fit`,
  `holds`, `predict_proba`, `predict`, `score`): `MLP.fit` hands it the data
  as the user gave them (with the validated settings, the optimizer and the
  checkpoint folder), and inference goes to it for the inputs it `holds`
  (say, arrays that live on a cluster). The Dask plugin's trainer is
  `mlp_backends.distributed.ClusterTrainer`; a Ray or Spark plugin would
  bring its own the same way. The model module never names a backend.
Return the same object on every call (it may hold a connection, such as a
cluster client, for the life of the backend) and give it a `close()` if it
holds one.

A plugin is a subclass registered under the entry-point group
`mlp_backends.backends` (see README, "Writing a backend plugin").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np


@dataclass(frozen=True)
class Probe:
    """What a backend found when asked whether it can run here."""

    usable: bool
    reason: str = ""
    devices: tuple[str, ...] = ()
    version: str = ""
    is_gpu: bool = False


@dataclass(frozen=True)
class BackendInfo:
    """One row of `list_backends()`."""

    name: str
    usable: bool
    reason: str = ""
    devices: tuple[str, ...] = ()
    version: str = ""
    is_gpu: bool = False
    priority: int = 0
    source: str = field(default="", compare=False)
    distributed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "usable": self.usable,
            "reason": self.reason,
            "devices": list(self.devices),
            "version": self.version,
            "is_gpu": self.is_gpu,
            "priority": self.priority,
            "source": self.source,
            "distributed": self.distributed,
        }


class Backend:
    """An array library bound to one device.

    Subclasses set `name`, implement `probe`, `_setup` and, where the default
    does not fit, `asarray`, `to_numpy`, `synchronize` and `compile`.
    """

    name: ClassVar[str] = ""
    #: Auto selection takes the usable GPU backend with the highest priority.
    priority: ClassVar[int] = 0
    #: True for a backend whose `xp` is not where the data live (a cluster: row
    #: blocks on workers, parameters on the driver as host arrays). Listed by
    #: `list_backends()`; the array-level test suite leaves such backends out.
    #: Where it trains is said by `trainer()`, not by this flag.
    distributed: ClassVar[bool] = False

    def __init__(self, device: str | None = None):
        self.device_spec = device
        self.xp, self.device = self._setup(device)

    # -- to implement ---------------------------------------------------
    @classmethod
    def probe(cls) -> Probe:
        """Say whether this backend can run here; never raise."""
        raise NotImplementedError

    def _setup(self, device: str | None) -> tuple[Any, Any]:
        """Import the library; return (array-API namespace, device object)."""
        raise NotImplementedError

    # -- defaults ---------------------------------------------------------
    @property
    def is_gpu(self) -> bool:
        return False

    def dtype(self, name: str):
        """The namespace's dtype object for "float32" / "float64"."""
        return getattr(self.xp, name)

    def supports(self, dtype: str) -> bool:
        """Whether this device holds arrays of dtype ("float32"/"float64"), asked of the
        namespace's inspection API (array_api_strict's `no_float64` device has no float64);
        True for a namespace without one, which then answers at first use."""
        try:
            return dtype in self.xp.__array_namespace_info__().dtypes(device=self.device, kind="real floating")
        except Exception:  # noqa: BLE001 - no inspection API, or one that cannot say
            return True

    def asarray(self, host, dtype: str | None = None):
        """Host (NumPy) array -> array on this backend's device."""
        host = np.asarray(host)
        kwargs = {"device": self.device}
        if dtype is not None:
            kwargs["dtype"] = self.dtype(dtype)
        return self.xp.asarray(host, **kwargs)

    def to_numpy(self, x) -> np.ndarray:
        """Array on this backend -> host NumPy array (a copy when it must be)."""
        return np.asarray(x)

    def synchronize(self) -> None:
        """Wait until queued device work is done (clocks need it)."""

    def device_context(self):
        """A context in which arrays made without an explicit device land on this backend's
        (CuPy's current device is per thread, and array-api-compat passes `device=` on
        to few of its functions); re-entrant. Nothing to do by default."""
        return contextlib.nullcontext()

    def memory_stats(self) -> dict | None:
        """Device memory, as {"in_use_bytes": ..., "peak_bytes": ...}; None on the host.
        A backend may add the device's own figures ("device_used_bytes", "device_total_bytes")."""
        return None

    def compile(self, step: Callable) -> Callable:
        """Speed hook: return a faster function with the same numbers."""
        return step

    def trainer(self):
        """Where `fit`, `predict`, `predict_proba` and `score` run (see the module docstring).

        None: the array loop of train.py on this backend's device. A backend
        that computes elsewhere returns its `mlp_backends.train.Trainer`.
        """
        return None

    def is_out_of_memory(self, exc: BaseException) -> bool:
        """Whether exc is this library's out-of-memory error (CuPy's and PyTorch's are
        both called OutOfMemoryError; JAX says RESOURCE_EXHAUSTED)."""
        return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
                or "RESOURCE_EXHAUSTED" in str(exc)[:200])

    def owns(self, x) -> bool:
        """Whether x is an array of this backend's namespace."""
        from array_api_compat import array_namespace

        try:
            return array_namespace(x) is self.xp
        except TypeError:
            return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}:{self.device}>"

    @property
    def spec(self) -> str:
        """The string that `get_backend` turns back into this backend."""
        return self.name if self.device_spec is None else f"{self.name}:{self.device_spec}"
