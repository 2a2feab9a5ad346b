"""Dask: train on a cluster whose workers hold the data; the parameters stay on the driver.

This backend is not an array library for the model's parameters: those are
small and live on the driver as NumPy arrays (so `predict`, `score`, `save`
and the rest work as on the numpy backend). What it adds is where training
runs, through the placement hook `trainer()`: the training data are Dask
arrays chunked by rows, each worker computes on its row blocks with the
array-API math on its own backend (CuPy on a worker with an NVIDIA GPU,
NumPy otherwise), and only parameters and gradients travel (see
`mlp_backends.distributed`).

Device specs (one cluster connection per backend object, kept across `fit`,
`score` and `predict` calls and closed at exit or by `close()`):
- `dask` (or `dask:local`): the current `distributed.Client` if the caller
  made one, else a threads-only LocalCluster in this process (one worker,
  one thread per core as Dask counts them). It starts no process, so it
  works from any script, guarded by `if __name__ == "__main__":` or not;
- `dask:processes`: a LocalCluster of single-threaded worker processes, one
  per core. Worker processes re-import the main script: guard it;
- `dask:SCHEME://HOST:PORT` (e.g. `dask:tcp://10.0.0.5:8786`): that
  scheduler. The connect timeout is Dask's own setting,
  `distributed.comm.timeouts.connect` (env `DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT`).

Requires `dask[distributed]` (the `dask` extra) on the driver and on every
worker, and `mlp-backends` installed on the workers.
"""

from __future__ import annotations

from mlp_backends.backend import Backend, Probe

#: Address schemes Dask's comm layer knows.
SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


class DaskBackend(Backend):
    """Training on a Dask cluster whose workers hold the data; the parameters stay on the driver."""

    name = "dask"
    priority = -20  # never auto's choice: a cluster is asked for by name
    distributed = True  # the data live on workers; see trainer()

    def __init__(self, device: str | None = None, *, workers: str = "auto", wait_timeout: float = 60.0):
        #: The backend spec each worker resolves ("auto": CuPy where an NVIDIA driver is, else NumPy).
        self.workers = workers
        #: Seconds training waits with no worker (all lost, none started) before it fails.
        self.wait_timeout = float(wait_timeout)
        #: Names of the backends the workers computed with in the last epoch.
        self.worker_backends: set[str] = set()
        self._trainer = None
        super().__init__(device)

    @classmethod
    def probe(cls) -> Probe:
        try:
            import dask
            import dask.array as da
            import distributed  # noqa: F401 - training needs it, not just dask
        except ImportError as exc:
            return Probe(False, f"not installed ({exc}); pip install 'mlp-backends[dask]'")
        # Real work on the in-process scheduler; a cluster is only started by training.
        if int(da.arange(4, chunks=2).dot(da.arange(4, chunks=2)).compute(scheduler="sync")) != 14:
            return Probe(False, "dask computed 0+1+4+9 wrongly")
        return Probe(True, devices=("local", "processes", "SCHEME://HOST:PORT"), version=dask.__version__)

    def _setup(self, device):
        import array_api_compat.numpy as xp
        import distributed  # noqa: F401 - fail here when only dask (no distributed) is installed

        if device not in (None, "local", "processes"):
            scheme, sep, rest = device.partition("://")
            if not sep or scheme not in SCHEMES or not rest:
                raise ValueError(f"{device!r} is not a scheduler address; use SCHEME://HOST:PORT "
                                 f"(SCHEME one of {', '.join(SCHEMES)}), e.g. tcp://10.0.0.5:8786, "
                                 "or 'local' or 'processes'")
        #: The scheduler's address, or None for a local cluster.
        self.address = None if device in (None, "local", "processes") else device
        #: Whether a local cluster (when one is started) has worker processes.
        self.processes = device == "processes"
        return xp, "cpu"

    def trainer(self):
        """The cluster loop (`mlp_backends.distributed.ClusterTrainer`), one per backend object."""
        if self._trainer is None:
            from mlp_backends.distributed import ClusterTrainer

            self._trainer = ClusterTrainer(self)
        return self._trainer

    def close(self) -> None:
        """Close the cluster or connection this backend started (a caller's client stays open)."""
        if self._trainer is not None:
            self._trainer.close()
