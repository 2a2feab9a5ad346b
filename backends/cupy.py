"""CuPy on a CUDA GPU.

CuPy imports on a machine with no GPU (or a too-old driver) and fails at first
use, so the probe allocates and reduces on the device and reports the CUDA
error as the reason.
"""

from __future__ import annotations

from mlp_backends.backend import Backend, Probe


class CuPyBackend(Backend):
    name = "cupy"
    priority = 100  # first choice of auto when it works

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
        except Exception as exc:  # noqa: BLE001 - CUDARuntimeError and friends
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return Probe(False, f"installed, but no usable CUDA device ({type(exc).__name__}: {first})",
                         version=version)
        if total != 14.0:
            return Probe(False, "cupy computed 0+1+4+9 wrongly", version=version)
        return Probe(True, devices=tuple(f"cuda:{i}" for i in range(count)), version=version, is_gpu=True)

    def _setup(self, device):
        import array_api_compat.cupy as xp
        import cupy

        index = int(str(device).removeprefix("cuda:")) if device is not None else 0
        dev = cupy.cuda.Device(index)
        dev.use()
        with dev:
            cupy.empty(1)  # fail now on a bad device id
        return xp, dev

    @property
    def is_gpu(self) -> bool:
        return True

    def asarray(self, host, dtype=None):
        import cupy
        import numpy as np

        host = np.asarray(host)
        if dtype is not None:
            host = host.astype(dtype, copy=False)
        with self.device:
            return cupy.asarray(host)

    def to_numpy(self, x):
        return x.get()

    def synchronize(self) -> None:
        self.device.synchronize()
