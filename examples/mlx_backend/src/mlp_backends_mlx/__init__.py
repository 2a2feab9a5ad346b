"""MLX (Apple's array library) as an mlp_backends backend: Metal on Apple silicon, the CPU elsewhere.

What MLX needed beyond the defaults of `mlp_backends.Backend`:
- `asarray`: `mx.array` has no `device=` and turns float64 into float32
  unless told the dtype, so the dtype is always passed;
- the device: MLX arrays do not carry one (work runs on the default device),
  so `_setup` makes the chosen device the default;
- float64 is refused: MLX 0.32's float64 `exp` is only float32-accurate
  (relative error about 6e-7 where NumPy's is 1e-16), which the conformance
  kit's float64 tolerance (1e-10) caught;
- `compile`: MLX is lazy, so each step's results are evaluated
  asynchronously; otherwise a whole epoch would build one ever-growing graph;
- `synchronize`, `memory_stats` and `is_out_of_memory` in MLX's words.
"""

from __future__ import annotations

import numpy as np

from mlp_backends import Backend, Probe


class MLXBackend(Backend):
    name = "mlx"
    priority = 30  # after CuPy, PyTorch and JAX among GPU backends

    @classmethod
    def probe(cls) -> Probe:
        try:
            import mlx.core as mx
        except ImportError as exc:
            return Probe(False, f"not installed ({exc}); pip install 'mlx[cpu]' (Linux) or mlx (macOS)")
        try:
            x = mx.arange(4.0)
            total = (x * x).sum().item()
            gpu = mx.metal.is_available()
        except Exception as exc:  # noqa: BLE001 - a broken install fails its own way
            return Probe(False, f"mlx failed on a tiny sum: {type(exc).__name__}: {exc}")
        if total != 14.0:
            return Probe(False, "mlx computed 0+1+4+9 wrongly")
        return Probe(True, devices=("cpu", "gpu") if gpu else ("cpu",), version=mx.__version__, is_gpu=gpu)

    def _setup(self, device):
        import mlx.core as mx

        kind = device or ("gpu" if mx.metal.is_available() else "cpu")
        if kind not in ("cpu", "gpu"):
            raise ValueError(f"mlx devices are 'cpu' and 'gpu', not {kind!r}")
        dev = mx.Device(mx.gpu if kind == "gpu" else mx.cpu)
        mx.set_default_device(dev)  # MLX arrays carry no device: the default is where work runs
        return mx, dev

    @property
    def is_gpu(self) -> bool:
        return self.device == self.xp.Device(self.xp.gpu)

    def dtype(self, name):
        if name == "float64":
            raise ValueError("mlx computes float64 exp to float32 accuracy only; use dtype='float32'")
        return getattr(self.xp, name)

    def asarray(self, host, dtype=None):
        host = np.asarray(host)
        return self.xp.array(host) if dtype is None else self.xp.array(host, dtype=self.dtype(dtype))

    def to_numpy(self, x):
        return np.array(x)

    def synchronize(self) -> None:
        self.xp.synchronize()

    def memory_stats(self):
        return {"in_use_bytes": self.xp.get_active_memory(), "peak_bytes": self.xp.get_peak_memory()}

    def is_out_of_memory(self, exc):
        # Metal's allocator raises RuntimeError("[metal::malloc] Attempting to allocate ...").
        return super().is_out_of_memory(exc) or (isinstance(exc, RuntimeError) and "malloc" in str(exc)[:200])

    def compile(self, step):
        def evaluated(params, state, Xb, Yb, t):
            out = step(params, state, Xb, Yb, t)
            self.xp.async_eval(out)  # start computing now; the next step queues behind it
            return out

        return evaluated
