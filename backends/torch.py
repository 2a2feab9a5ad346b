"""PyTorch through array-api-compat: on the CPU, or on CUDA when there is a GPU.

`compile(step)` applies the optimizer in place on a GPU (backends/torch_inplace.py:
the same numbers, one set of parameters and moments held in training, bad
batches dropped on the device) and, on CUDA, captures that whole step once per
batch shape as a CUDA graph and replays it (backends/torch_graph.py;
`cuda_graphs`), or is `torch.compile` of the functional step when
$MLP_BACKENDS_TORCH_COMPILE names a torch.compile backend ("inductor",
"eager", ...; "1" means inductor): compiling costs seconds to a minute up
front, which only long runs win back, so it is opt-in.
"""

from __future__ import annotations

import os

from mlp_backends.backend import Backend, Probe
from mlp_backends.fastpath import fall_back

COMPILE_ENV = "MLP_BACKENDS_TORCH_COMPILE"


class TorchBackend(Backend):
    """PyTorch on the CPU or a CUDA device (torch:cuda, torch:cuda:1)."""

    name = "torch"
    priority = 50  # after CuPy among GPU backends
    gpu_drivers = ("nvidia", "rocm")  # torch.cuda covers both

    @classmethod
    def probe(cls) -> Probe:
        try:
            import torch
        except ImportError as exc:
            return Probe(False, f"not installed ({exc}); pip install 'mlp-backends[torch]'")
        devices = ["cpu"]
        if torch.cuda.is_available():
            devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        device = devices[-1] if len(devices) > 1 else "cpu"
        x = torch.arange(4.0, device=device)
        if float((x * x).sum()) != 14.0:
            return Probe(False, f"torch on {device} computed 0+1+4+9 wrongly")
        return Probe(True, devices=tuple(devices), version=torch.__version__, is_gpu=len(devices) > 1)

    def _setup(self, device):
        import array_api_compat.torch as xp
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        # Allocating fails now on a missing device, and names it fully ("cuda" -> cuda:0).
        return xp, torch.empty(1, device=device).device

    @property
    def is_gpu(self) -> bool:
        """Whether the device is a CUDA device."""
        return self.device.type == "cuda"

    def device_context(self):
        """On CUDA, `torch.cuda.device`: streams and CUDA graphs made without a device (the graph
        capture's side stream, say) then belong to this backend's GPU, not to GPU 0."""
        import contextlib

        import torch

        return torch.cuda.device(self.device) if self.is_gpu else contextlib.nullcontext()

    def asarray(self, host, dtype=None):
        import numpy as np
        import torch

        host = np.asarray(host)
        if dtype is not None:
            host = host.astype(dtype, copy=False)
        return torch.as_tensor(host, device=self.device)

    def to_numpy(self, x):
        return x.detach().cpu().numpy()

    def synchronize(self) -> None:
        import torch

        if self.is_gpu:
            torch.cuda.synchronize(self.device)

    def thread_knob(self):
        """torch's intra-op pool on the CPU (its BLAS and OpenMP loops); None on a GPU."""
        if self.is_gpu:
            return None
        from mlp_backends.threads import TorchKnob

        return TorchKnob()

    def memory_stats(self):
        if not self.is_gpu:
            return None
        import torch

        free, total = torch.cuda.mem_get_info(self.device)  # the device's own: contexts, cuBLAS, graphs' pools
        return {"in_use_bytes": torch.cuda.memory_allocated(self.device),
                "peak_bytes": torch.cuda.max_memory_allocated(self.device),
                "device_used_bytes": total - free, "device_total_bytes": total}

    def is_out_of_memory(self, exc: BaseException) -> bool:
        """CUDA's OutOfMemoryError (the default's), and the CPU allocator's, which is a
        plain RuntimeError ("DefaultCPUAllocator: can't allocate memory")."""
        return super().is_out_of_memory(exc) or (
            isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)[:300])

    # The in-place update in compile: None means on a GPU only. There it saves device
    # memory (one set of parameters and moments instead of two); on the CPU its on-device
    # check of each batch costs more than the allocations it saves (mnist: -2% to +7% a
    # step, `small`: +23 to +38%; benchmarks/memory_savers.py).
    in_place: bool | None = None
    # CUDA graphs of the in-place step on CUDA devices (None: on there; False: eager launches).
    cuda_graphs: bool | None = None

    def compile(self, step):
        """`torch.compile` of any step when $MLP_BACKENDS_TORCH_COMPILE asks for it; otherwise
        `compile_step` for a step make_step made, and any other step as it is."""
        choice = os.environ.get(COMPILE_ENV, "").strip()
        if choice in ("", "0"):
            return super().compile(step)
        import torch

        return torch.compile(step, backend="inductor" if choice == "1" else choice)

    def compile_step(self, step):
        """The step with optim.py's update applied in place where `in_place` says so
        (backends/torch_inplace.py), replayed as CUDA graphs on CUDA devices."""
        in_place = self.is_gpu if self.in_place is None else self.in_place
        if not in_place or step.config.get("update") is not None:
            return step
        from backends.torch_inplace import TorchInPlaceUpdate

        if not TorchInPlaceUpdate.supports(step.config["optimizer"]):
            if self.is_gpu:
                fall_back(f"the in-place update and CUDA graphs for {type(step.config['optimizer']).__name__}")
            return step
        fast = step.rebuild(update=TorchInPlaceUpdate(step.config["optimizer"]))
        if self.is_gpu and self.cuda_graphs is not False:
            return self._graphed(fast)
        return fast

    def _graphed(self, step):
        """GraphedStep(step), kept per optimizer, activation, L2 and thread: a later fit or
        partial_fit on the same parameters replays the graphs already recorded."""
        import threading

        from backends.torch_graph import GraphedStep

        config = step.config
        from mlp_backends.step import step_key

        key = (*step_key(config), threading.get_ident())
        try:
            hash(key)
        except TypeError:  # an optimizer that is not a frozen dataclass: no reuse
            return GraphedStep(step)
        kept = self.__dict__.setdefault("_graphed_steps", {})
        if key not in kept:
            if len(kept) >= 8:
                kept.clear()
            kept[key] = GraphedStep(step)
        return kept[key]
