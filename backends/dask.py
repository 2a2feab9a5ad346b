"""Dask: train on a cluster whose workers hold the data; the parameters stay on the driver.

This backend is not an array library for the model's parameters: those are
small and live on the driver as NumPy arrays (so `predict`, `score`, `save`
and the rest work as on the numpy backend). What it adds is where `fit`
runs: the training data are Dask arrays chunked by rows, each worker computes
on its row blocks with the array-API math on its own backend (chosen by the
worker's registry: CuPy on a GPU worker, NumPy otherwise), and only
parameters and gradients travel (see `mlp_backends.distributed`).

Device specs:
- `dask` uses the current `distributed.Client` if the caller made one, else
  starts a LocalCluster (one single-threaded worker process per core) for
  the duration of each `fit` and closes it after;
- `dask:ADDRESS` (e.g. `dask:tcp://10.0.0.5:8786`) connects to that
  scheduler for each `fit`. The connect timeout is Dask's own setting,
  `distributed.comm.timeouts.connect` (env `DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT`).

Requires `dask[distributed]` (the `dask` extra) on the driver and on every
worker, and `mlp-backends` installed on the workers.
"""

from __future__ import annotations

from mlp_backends.backend import Backend, Probe


class DaskBackend(Backend):
    name = "dask"
    priority = -20  # never auto's choice: a cluster is asked for by name
    distributed = True  # the model hands `fit` to mlp_backends.distributed

    def __init__(self, device: str | None = None, *, workers: str = "auto"):
        #: The backend spec each worker resolves through its own registry.
        self.workers = workers
        #: Names of the backends the workers computed with in the last epoch.
        self.worker_backends: set[str] = set()
        super().__init__(device)

    @classmethod
    def probe(cls) -> Probe:
        try:
            import dask
            import dask.array as da
            import distributed  # noqa: F401 - training needs it, not just dask
        except ImportError as exc:
            return Probe(False, f"not installed ({exc}); pip install 'mlp-backends[dask]'")
        # Real work on the in-process scheduler; a cluster is only started by `fit`.
        if int(da.arange(4, chunks=2).dot(da.arange(4, chunks=2)).compute(scheduler="sync")) != 14:
            return Probe(False, "dask computed 0+1+4+9 wrongly")
        return Probe(True, devices=("local", "SCHEDULER_ADDRESS"),
                     version=dask.__version__)

    def _setup(self, device):
        import array_api_compat.numpy as xp
        import distributed  # noqa: F401 - fail here when only dask (no distributed) is installed

        if device is not None and device != "local" and ":" not in device:
            raise ValueError(f"{device!r} is not a scheduler address; use e.g. tcp://HOST:8786")
        self.address = None if device in (None, "local") else device
        return xp, "cpu"
