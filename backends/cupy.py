"""CuPy on a CUDA GPU.

CuPy imports on a machine with no GPU (or a too-old driver) and fails at first
use, so the probe allocates and reduces on the device and reports the CUDA
error as the reason.

`compile(step)` is the fast path, in two layers over the same math:
1. fused kernels: the step is rebuilt with `nn.kernels(cupy, ..., wrap=fuse)`,
   so the activation, its derivative and softmax-minus-one-hot each run as
   one kernel made by `cupy.fuse` from the very functions every backend's
   tests check (a function fuse cannot take runs unfused, with a warning);
2. CUDA-graph capture: `StaticStep` (mlp_backends/static_step.py, tested on
   the CPU) copies each batch into static buffers and replays one recorded
   graph per step instead of launching some sixty kernels from Python.
Only `_fuse` and `_cuda_graph_capture` below need a GPU.
"""

from __future__ import annotations

import logging

from mlp_backends.backend import Backend, Probe

log = logging.getLogger(__name__)


def _fuse(fn):
    """`cupy.fuse(fn)`, falling back to `fn` itself if fusing fails on the first call."""
    import cupy

    fused, chosen = cupy.fuse(fn), []

    def call(*args):
        if not chosen:
            try:
                out = fused(*args)
                chosen.append(fused)
                return out
            except Exception as exc:  # noqa: BLE001 - fusion rejects some functions, each its own way
                log.warning("cupy.fuse could not fuse a step kernel (%s: %s); it runs unfused",
                            type(exc).__name__, exc)
                chosen.append(fn)
        return chosen[0](*args)

    return call


def _fusable_cupy():
    """CuPy's own namespace for the fused kernels, with `astype` as the method:
    `cupy.astype` refuses the traced arrays that `cupy.fuse` passes."""
    import types

    import cupy

    ns = types.SimpleNamespace(**{k: getattr(cupy, k) for k in dir(cupy) if not k.startswith("__")})
    ns.astype = lambda x, dtype, /, *, copy=True, device=None: x.astype(dtype)
    return ns


def _cuda_graph_capture(fn):
    """Record fn() as a CUDA graph; return a replay that relaunches it on the current stream.

    The recording gets a private memory pool: memory that the step frees
    while being recorded returns there, never to arrays outside the graph,
    which a replay would otherwise overwrite.
    """
    import cupy

    pool = cupy.cuda.MemoryPool()
    stream = cupy.cuda.Stream(non_blocking=True)
    cupy.cuda.get_current_stream().synchronize()  # the static buffers are filled
    with cupy.cuda.using_allocator(pool.malloc), stream:
        fn()  # compile and load every kernel before recording
        stream.synchronize()
        try:
            stream.begin_capture()
            try:
                outs = fn()
            finally:
                graph = stream.end_capture()
        except Exception as exc:  # noqa: BLE001 - a library call that cannot be captured
            log.warning("CUDA graph capture of the step failed (%s: %s); it runs without a graph",
                        type(exc).__name__, exc)
            return fn  # still correct: fn reads the static buffers and returns new arrays
    stream.synchronize()

    def replay():
        graph.launch()  # the current stream: ordered after the copies into the buffers
        return outs

    replay.keep = (pool, stream, graph)
    return replay


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

    def memory_stats(self):
        import cupy

        pool = cupy.get_default_memory_pool()
        return {"in_use_bytes": pool.used_bytes(), "peak_bytes": pool.total_bytes()}

    def compile(self, step):
        import cupy

        from mlp_backends import nn
        from mlp_backends.static_step import StaticStep

        rebuild = getattr(step, "rebuild", None)
        if rebuild is None:
            return step
        fused = rebuild(kern=nn.kernels(_fusable_cupy(), step.config["activation"], wrap=_fuse))
        return StaticStep(fused, self.xp, copy=cupy.copyto, clone=lambda x: x.copy(),
                          capture=_cuda_graph_capture)
