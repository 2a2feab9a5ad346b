"""The Backend contract: what a plugin implements to run the MLP on an array library.

A plugin is a `Backend` subclass in its own module, registered under the
entry-point group `mlp_backends.backends` (see README, "Writing a backend
plugin"). `mlp_backends.testing.check_backend(MyBackend)` checks every
promise below; the check that enforces each is named in brackets.

The class
- `name`: a lower-case identifier, what users type (`--backend NAME[:DEVICE]`);
  `priority`: an int, auto takes the usable GPU backend with the highest;
  `distributed`: True for a backend whose `xp` is not where the data live (a
  cluster; see "Where it runs") [check_attributes].
- Importing the module imports no array library: import it inside `probe()`
  and `_setup()`, so `import mlp_backends` stays light and a broken library
  cannot break discovery [check_import_is_light].
- `probe()` (a classmethod) never raises and returns a `Probe(usable, reason,
  devices, version, is_gpu)`: a one-line reason when unusable, devices as the
  strings users put after ':'. It does real work on the device (an allocation
  and a reduction), because a library can import and still fail at first use
  (CuPy with no GPU) [check_probe].
- `_setup(device)` imports the library and returns (array-API namespace,
  device object); it works wherever `probe()` says usable. The namespace has
  the standard's functions the math calls (`mlp_backends.testing.NAMESPACE`)
  and computes them like NumPy does, to the dtype's tolerance
  [check_namespace, check_loss_and_gradients_agree, check_plain_steps_agree].

Moving arrays (defaults below use `xp.asarray(..., device=)` and `np.asarray`)
- `asarray(host, dtype)`: a host array of any layout (views, 0-d, empty,
  integers) -> an array of exactly `dtype` and the same shape, on
  `self.device`. It may alias the host array [check_asarray].
- `to_numpy(x)`: -> a NumPy array with x's values, shape and dtype, for
  device-made views and 0-d results too; it may be x itself (NumPy), so
  callers copy before keeping it [check_to_numpy].
- `owns(x)`: True for this backend's arrays, False for anything else (lists,
  scalars, other libraries' arrays); the model keeps the arrays it owns on the
  device and answers in kind [check_owns].
- `stage_batches(batches, dtype)`: host (array, tag) pairs -> (device array,
  tag), every one, in order, with its values; training from a file on disk
  moves its mini-batches through it, done with each before it asks for the
  next. Copies each when asked for by default; CuPy copies the next from
  pinned memory while the current one computes [check_stage_batches].
- `dtype(name)`: the namespace's dtype for "float32" / "float64". float32 is
  required; float64 where the device has it (a backend without it is checked
  in float32 only) [check_asarray].

The device
- `synchronize()`: waits for queued work and returns None; clocks need it
  [check_synchronize].
- `memory_stats()`: None for host memory, else {"in_use_bytes": int,
  "peak_bytes": int} with peak >= in use [check_memory_stats].
- `is_out_of_memory(exc)`: True for MemoryError and for the library's own
  out-of-memory error (recognised by type, or by message where the library
  has no type: PyTorch's CPU allocator), False for every other error; the
  model then reports sizes and what to try [check_out_of_memory].
- `device_context()`: a re-entrant context manager in which arrays made
  without an explicit device land on this backend's device, for a library
  that places them by a per-thread current device (CuPy); the model and the
  training loop run inside it. Nothing to do by default [check_device_context].
- `is_gpu`: whether arrays live on a GPU; `spec`: the string `get_backend`
  turns back into this backend.

The speed hook
- `compile(step)` returns a callable with the step's signature,
  `(params, state, Xb, Yb, t) -> (params, state, loss, hits)`, giving the same
  numbers as the plain step to the dtype's tolerance, for every optimizer, on
  a short last batch and back [check_compiled_steps_agree]. Identity by
  default. `Backend.compile` hands a `Step` (step.py: what `make_step` makes)
  to `compile_step` and any other callable to `compile_other`: a plugin
  overrides those two, and `compile` itself only to change that choice. It may:
  - wrap it (`jax.jit`, `torch.compile`, CUDA-graph replay);
  - rebuild it from the same math with `step.rebuild(**changes)` (keys of
    `step.config`: `xp`, `optimizer`, `activation`, `l2`, `kern`, `update`):
    another namespace, a kernel set (`nn.Kernels`) or an in-place `update`;
  - give the step `gather(X, Y, idx) -> (Xb, Yb)`, which the training loop
    then uses to take each shuffled batch (into buffers the step keeps);
  - give the step `tally(batch, n)`, returning an object with the same update
    as `step(params, state, Xb, Yb, t) -> (params, state, None, None)` that
    keeps each batch's figures, `sums() -> [loss_sum, correct]` of the rows
    since `reset()`, and `gather`: the training loop then counts loss and
    hits once per block of batches instead of every step (NumPy's,
    backends/numpy_tally.py);
  - update in place or donate its inputs, only if the returned step has
    `mutates_params = True`: the training loop then keeps no copy from before
    an epoch, so the step must itself skip a batch whose loss or update is
    not finite (report its loss as NaN). A step that writes into its inputs
    without saying so is caught [check_compiled_steps_agree].
  A kernel set's functions may overwrite their array arguments (`z` in
  `activate(z, b)`, `g` in `activation_grad(a, g)`, `log_p` in
  `softmax_delta(log_p, Y, n)`), never `b`, `a`, `Y` or anything else: nn.py
  hands them only arrays it made for the step and reads them no more.
- The whole user path, `MLP.fit` with shuffled mini-batches and the article's
  `train`, agrees with the NumPy float64 reference, and outputs follow the
  inputs (NumPy in, NumPy out; the backend's arrays in, its arrays out)
  [check_fit_agrees].

Where it runs
- `trainer()`: None (the default) lets `MLP` convert the data to this
  backend's arrays and run the array loop of `mlp_backends.train` on
  `self.device`. A backend that computes elsewhere (a cluster) returns an
  object with the methods of `mlp_backends.train.Trainer` (`fit`, `holds`,
  `predict_proba`, `predict`, `score`): `MLP.fit` hands it the data as the
  user gave them (with the validated settings, the optimizer and the
  checkpoint folder), and inference goes to it for the inputs it `holds`.
  It returns the same object on every call (it may hold a connection, such
  as a cluster client, for the backend's life) with a `close()` if it holds
  one. The Dask plugin's is `mlp_backends.distributed.ClusterTrainer`; the
  model module never names a backend. Such a backend sets `distributed =
  True` when its `xp` is not where the data live; the array-level checks
  then pass it through NumPy and `check_fit_agrees` leaves its `fit` to the
  trainer's own tests [check_attributes].
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
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
        """The row as a JSON-able dict (what `mlp-backends backends --json` prints)."""
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
    #: The GPU drivers this backend's GPU path needs ("nvidia", "rocm", "tpu",
    #: "metal"; see mlp_backends/drivers.py). When none of them is on the
    #: machine, auto knows without probing (importing the library) that this
    #: backend offers no GPU here. None: only a probe can tell.
    gpu_drivers: ClassVar[tuple[str, ...] | None] = None

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
        """Whether this backend's arrays live on a GPU (False unless a subclass says otherwise)."""
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

    def stage_batches(self, batches: Iterable[tuple[np.ndarray, Any]], dtype: str) -> Iterator[tuple[Any, Any]]:
        """(device array, tag) for each host (array, tag) of `batches`, in order: how training
        from a file on disk moves its mini-batches. By default each is copied when asked
        for. A GPU backend may instead copy the next batch while the current one computes
        (CuPy: from pinned memory on a second stream); the consumer is done with a batch
        when it asks for the next, and must not keep it longer."""
        for host, tag in batches:
            yield self.asarray(host, dtype), tag

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

    def thread_knob(self):
        """The CPU thread setting that `fit` may choose (a `mlp_backends.threads.Knob`), or
        None where the library decides alone (GPUs; JAX fixes its pool at start-up).
        By default: the BLAS libraries loaded in the process, through threadpoolctl."""
        if self.is_gpu:
            return None
        from .threads import BlasKnob

        return BlasKnob() if BlasKnob.available() else None

    def compile(self, step: Callable) -> Callable:
        """Speed hook: return a faster function with the same numbers. A step that
        `make_step` made (a `Step`: it can be rebuilt from its config) goes to
        `compile_step`, any other callable to `compile_other`; plugins override those."""
        from .step import Step

        return self.compile_step(step) if isinstance(step, Step) else self.compile_other(step)

    def compile_step(self, step):
        """A faster form of a `Step` (see "The speed hook" above); by default the step itself."""
        return step

    def compile_other(self, fn: Callable) -> Callable:
        """A faster form of a step that `make_step` did not make (it cannot be rebuilt, only
        wrapped); by default the callable itself."""
        return fn

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
