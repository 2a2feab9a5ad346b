"""CuPy on a CUDA GPU.

CuPy imports on a machine with no GPU (or a too-old driver) and fails at first
use, so the probe allocates, reduces and multiplies two small matrices on the
device (the product loads cuBLAS, which a broken CUDA install lacks) and
reports the CUDA error as the reason.

CuPy makes new arrays on the thread's current device, whatever `device=` says
through array-api-compat, so the model and the training loop run inside
`device_context()` (the `cupy.cuda.Device` of this backend): `cupy:1` then
trains on device 1 from any thread.

`compile(step)` is the fast path (backends/cupy_step.py, tested on NumPy):
nn.py's elementwise functions, and inplace_formulas' optimizer updates with
the batch judged on the device, each become one kernel by
`cupy.fuse(kernel_name=...)`; shuffled batches are gathered into buffers.
Kernels and buffers are kept on the backend, so later `fit` calls reuse them.
There is no CUDA-graph capture: CuPy's cuBLAS wrappers refuse to run while a
stream is capturing (`cublas.setStream` raises NotImplementedError), so a
graph of the step could not hold its matrix products.
"""

from __future__ import annotations

import functools
import logging
import threading

from mlp_backends.backend import Backend, Probe
from mlp_backends.fastpath import fall_back

log = logging.getLogger(__name__)


def _fuse(fn):
    """`cupy.fuse(kernel_name=fn.__name__)(fn)`, checked on its first call: if CuPy's fusion
    cannot trace `fn` (it then quietly tries its experimental compiler) or the kernel fails to
    build, that is a fallback (fastpath.fall_back); `fn` then runs unfused, op by op."""
    import cupy

    fused = cupy.fuse(kernel_name=fn.__name__)(fn)
    chosen = []

    def call(*args):
        if chosen:
            return chosen[0](*args)
        try:
            out = fused(*args)
            if fused.new_fusion is not None:
                raise RuntimeError("cupy.fuse could not trace it and fell back to its experimental compiler")
        except Exception as exc:  # noqa: BLE001 - fusion fails in many ways, each its own type
            fall_back(f"cupy.fuse of the kernel {fn.__name__}", exc, log)
            chosen.append(fn)
            return fn(*args)
        chosen.append(fused)
        return out

    call.__name__, call.fusion = fn.__name__, fused
    call.is_fused = lambda: bool(chosen) and chosen[0] is fused
    return call


@functools.lru_cache(maxsize=1)
def _fusable_cupy():
    """CuPy's namespace for traced functions, with `astype` as the method (`cupy.astype`
    refuses the variables that fusion passes); a module, so that kernels cache by it."""
    import types

    import cupy

    ns = types.ModuleType("cupy_for_fusion")
    ns.__dict__.update({k: getattr(cupy, k) for k in dir(cupy) if not k.startswith("__")})
    ns.astype = lambda x, dtype, /, *, copy=True, device=None: x.astype(dtype)
    return ns


class CuPyBackend(Backend):
    """CuPy on a CUDA device ("cupy", or "cupy:1" / "cupy:cuda:1" for another); steps run fused
    elementwise kernels."""

    name = "cupy"
    priority = 100  # first choice of auto when it works
    gpu_drivers = ("nvidia", "rocm")

    @classmethod
    def probe(cls) -> Probe:
        try:
            import cupy
        except ImportError as exc:
            return Probe(False, f"not installed ({exc}); pip install 'mlp-backends[cuda12]' or '[cuda13]'")
        except Exception as exc:  # noqa: BLE001 - a broken CUDA install fails oddly
            return Probe(False, f"cupy failed to import: {type(exc).__name__}: {exc}")
        version = cupy.__version__
        try:
            count = cupy.cuda.runtime.getDeviceCount()
            x = cupy.arange(4, dtype=cupy.float32)
            total = float((x * x).sum())
            a = cupy.ones((2, 2), dtype=cupy.float32)
            product = float((a @ a).sum())  # cuBLAS: a missing or mismatched libcublas fails here
        except Exception as exc:  # noqa: BLE001 - CUDARuntimeError, CUBLASError and friends
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return Probe(False, f"installed, but no usable CUDA device ({type(exc).__name__}: {first})",
                         version=version)
        if total != 14.0 or product != 8.0:
            return Probe(False, "cupy computed a small sum or matrix product wrongly", version=version)
        return Probe(True, devices=tuple(f"cuda:{i}" for i in range(count)), version=version, is_gpu=True)

    def _setup(self, device):
        import array_api_compat.cupy as xp
        import cupy

        index = int(str(device).removeprefix("cuda:")) if device is not None else 0
        dev = cupy.cuda.Device(index)
        with dev:
            cupy.empty(1)  # fail now on a bad device id
        self._compiled = {}
        return xp, dev

    @property
    def is_gpu(self) -> bool:
        """Always True: CuPy's arrays live on the GPU."""
        return True

    def device_context(self):
        return self.device  # a cupy.cuda.Device: entering it makes it current, leaving restores

    def asarray(self, host, dtype=None):
        import cupy
        import numpy as np

        host = np.asarray(host)
        if dtype is not None:
            host = host.astype(dtype, copy=False)
        with self.device:
            return cupy.asarray(host)

    def to_numpy(self, x):
        with self.device:
            return x.get()

    def stage_batches(self, batches, dtype):
        """The next batch copied from pinned host memory on a second stream while the current
        one computes (backends/cupy_staging.py)."""
        import cupy

        from backends.cupy_staging import staged

        return staged(cupy, batches, dtype)

    def synchronize(self) -> None:
        self.device.synchronize()

    def memory_stats(self):
        """The default pool's figures and the device's own: the pool misses the cuBLAS
        workspace, CUDA contexts, other pools and other processes."""
        import cupy

        with self.device:
            pool = cupy.get_default_memory_pool()
            free, total = self.device.mem_info
            return {"in_use_bytes": pool.used_bytes(), "peak_bytes": pool.total_bytes(),
                    "device_used_bytes": total - free, "device_total_bytes": total}

    def compile_step(self, step):
        """The fused, in-place step with its batch buffers (backends/cupy_step.py), made once per
        optimizer, activation and L2 and kept: later fits reuse kernels and buffers."""
        from backends.cupy_step import compile_step

        config = step.config
        # Per thread too: two threads training at once must not share batch buffers.
        from mlp_backends.step import step_key

        key = (*step_key(config), config["update"], threading.get_ident())
        try:
            hash(key)
        except TypeError:  # an optimizer that is not a frozen dataclass: no reuse
            key = None
        if key is not None and key in self._compiled:
            return self._compiled[key]
        with self.device:
            fast = compile_step(step, _fusable_cupy(), _fuse)
        if key is not None:
            if len(self._compiled) >= 8:
                self._compiled.clear()
            self._compiled[key] = fast
        return fast
