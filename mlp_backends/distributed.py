"""Training on a Dask cluster: the data stay on the workers in row blocks, the
parameters stay on the driver, and one map-reduce per epoch joins them.

Assumptions: the model's backend is distributed (backends/dask.py): its
parameters are host NumPy arrays and its namespace is NumPy's. X is a Dask
array (n, d) (any row chunks; column chunks are merged) or a host array; y is
integer labels (n,) or one-hot (n, k), Dask or host. Host data are sent to
the workers once per `fit` and kept there; a Dask X is used as given, so a
lazy X (one that does not fit in memory) is recomputed from its source each
epoch and never held whole: `X.persist()` it first when it fits.

Each row block is one task. A task resolves its worker's own backend through
the worker's registry (`DaskBackend.workers`, "auto" by default: CuPy on a GPU
worker, NumPy otherwise), computes with the same array-API math as one
machine, and sends back host arrays the size of the parameters. Parts are
summed in a fixed tree, so the result does not depend on which worker ran
what, nor on a worker dying and its task being retried elsewhere.

- Full batch (batch_size None or >= n): every epoch each block returns the
  gradient of its share of the mean loss (`nn.loss_and_grads(..., n=n)`);
  the sum is the whole data's gradient and the driver takes one optimizer
  step, adding the L2 term once. This is the one-machine algorithm; results
  agree with it to float rounding (the sum is split in blocks).
- Mini-batch: local SGD with parameter averaging per epoch. Every block starts
  the epoch from the same parameters and optimizer state, runs mini-batch
  steps over its own rows (shuffled with a seed of (seed, epoch, block)), and
  the driver averages the blocks' parameters and optimizer states, weighted
  by their rows. One round trip per epoch instead of one per step, but the
  numbers differ from one machine: an epoch makes ceil(rows/batch) steps per
  block, not ceil(n/batch), and batches never mix rows of two blocks, so it
  needs more epochs, more so the more blocks there are (use few, large blocks).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import time
import warnings
import weakref
from typing import NamedTuple

import numpy as np

from . import nn, train
from .checkpoint import Progress
from .errors import BackendError, ClusterError, InputError, InputTypeError, one_line
from .optim import OptimizerState
from .validation import check_labels, to_host


class Part(NamedTuple):
    """What one block (or a sum of blocks) sends back to the driver."""

    loss: float  # its share of the epoch's mean loss (already divided by n)
    hits: float  # its count of correct predictions
    arrays: list  # gradients, or row-weighted parameters + optimizer state
    backends: frozenset  # names of the worker backends that computed it


# -- on the workers ------------------------------------------------------------
def _worker_backend(spec: str):
    """The worker's own backend for `spec`. "auto" imports no GPU-capable library on a
    worker without an NVIDIA driver: it is NumPy there, found without probing the rest."""
    from .registry import get_backend

    backend = get_backend(spec if spec != "auto" or _nvidia_driver() else "numpy")
    if backend.distributed:
        raise BackendError(f"workers cannot compute on the distributed backend {backend.name!r}; "
                           "give them an array backend such as 'auto', 'numpy' or 'cupy'")
    return backend


@functools.cache
def _nvidia_driver() -> bool:
    """Whether this machine has an NVIDIA driver (the one way a GPU backend could run)."""
    if os.path.exists("/proc/driver/nvidia/version"):
        return True
    import ctypes.util

    return any(ctypes.util.find_library(lib) for lib in ("cuda", "nvcuda"))


def _features(backend, xb, dtype: str):
    if backend.owns(xb) and not isinstance(xb, np.ndarray):  # e.g. CuPy chunks on a CuPy worker
        return backend.xp.astype(xb, backend.dtype(dtype))
    return backend.asarray(xb, dtype)


def _targets(backend, yb, k: int, dtype: str):
    """A block of labels or one-hot rows -> device one-hot, checked as `MLP.fit` checks."""
    host = backend.to_numpy(yb) if backend.owns(yb) and not isinstance(yb, np.ndarray) else np.asarray(yb)
    if host.ndim == 1:
        check_labels(host, k)
    return train.one_hot_targets(backend, host, k, dtype)


def block_gradients(params, xb, yb, *, k, activation, dtype, n, spec) -> Part:
    """This block's share of the mean loss and its gradient (no L2: the driver adds it once)."""
    backend = _worker_backend(spec)
    xp = backend.xp
    X, Y = _features(backend, xb, dtype), _targets(backend, yb, k, dtype)
    P = [backend.asarray(p, dtype) for p in params]
    loss, grads, logits = nn.loss_and_grads(xp, P, X, Y, activation, 0.0, n)
    hits = xp.sum(xp.astype(xp.argmax(logits, axis=1) == xp.argmax(Y, axis=1), X.dtype))
    loss_h, hits_h = train.read_scalars(backend, [loss, hits])
    return Part(loss_h, hits_h, [backend.to_numpy(g) for g in grads], frozenset([backend.name]))


def _piece(xb, yb, *, seed, parts: int, part: int):
    """Rows of one block in the `part`-th of `parts` random parts (seeded): what one
    mini-batch task takes from this block in an epoch. Cut where the block lives."""
    rows = np.random.default_rng(seed).permutation(xb.shape[0])[part::parts]
    return xb[rows], yb[rows]


def block_epoch(params, state, pieces, *, optimizer, t0, batch, shuffle, seed, k, activation, l2,
                dtype, n, spec) -> Part:
    """One epoch of mini-batch steps on this task's rows alone (`pieces`: (X, y) row sets,
    joined here); returns the parameters and optimizer state weighted by its share of rows."""
    backend = _worker_backend(spec)
    xp = backend.xp
    X = xp.concat([_features(backend, xb, dtype) for xb, _ in pieces], axis=0)
    Y = xp.concat([_targets(backend, yb, k, dtype) for _, yb in pieces], axis=0)
    # The compiled step may write into P and S (NumPy's in-place update), and `params` and
    # `state` are one object shared by every block on this worker: train copies of them.
    P = [backend.asarray(np.array(p, dtype=dtype), dtype) for p in params]
    S = tuple([backend.asarray(np.array(a, dtype=dtype), dtype) for a in group] for group in state)
    step = backend.compile(train.make_step(xp, optimizer, activation, l2))
    rows = X.shape[0]
    order = backend.asarray(np.random.default_rng(seed).permutation(rows) if shuffle else np.arange(rows))
    loss_sum = correct = 0.0
    t = t0
    for lo in range(0, rows, batch):
        idx = order[lo:min(lo + batch, rows)]
        Xb, Yb = xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)
        t += 1
        P, S, loss, hits = step(P, S, Xb, Yb, t)
        loss_sum = loss_sum + loss * Xb.shape[0]
        correct = correct + hits
    loss_h, hits_h = train.read_scalars(backend, [loss_sum, correct])
    weight = rows / n
    arrays = [backend.to_numpy(a) * weight for a in [*P, *(a for group in S for a in group)]]
    return Part(loss_h / n, hits_h, arrays, frozenset([backend.name]))


def block_logits(xb, params, *, activation, float_dtype, spec):
    """Logits of one row block, as a host array (for predictions on Dask arrays)."""
    backend = _worker_backend(spec)
    P = [backend.asarray(p, float_dtype) for p in params]
    logits, _ = nn.forward(backend.xp, P, _features(backend, xb, float_dtype), activation)
    return backend.to_numpy(logits)


def _softmax(logits):
    import array_api_compat.numpy as xp

    return nn.softmax(xp, logits)


def add_parts(*parts: Part) -> Part:
    """Elementwise sum, left to right (a fixed order: the same numbers on any cluster)."""
    first, *rest = parts
    loss, hits, arrays, names = first.loss, first.hits, list(first.arrays), set(first.backends)
    for p in rest:
        loss, hits = loss + p.loss, hits + p.hits
        arrays = [a + b for a, b in zip(arrays, p.arrays)]
        names |= p.backends
    return Part(loss, hits, arrays, frozenset(names))


# -- on the driver ---------------------------------------------------------------
POLL = 1.0  # seconds between looks at the cluster while an epoch runs


class ClusterTrainer:
    """The Dask backend's placement (`Backend.trainer()`): training and inference on a cluster.

    It keeps one client for its life: the caller's current client (for `dask`
    with no address, or one connected to the same scheduler), else one it
    opens to the address, or a LocalCluster it starts (threads only, unless
    the backend asked for processes). What it started is closed by `close()`
    or at exit.
    """

    def __init__(self, backend):
        self.backend = backend
        self._own = None  # (client, cluster or None) that this object started
        self._finalizer = None
        self.workers_seen: set[str] = set()  # addresses, to name the lost ones

    # -- the cluster ------------------------------------------------------------
    def client(self):
        """The Client to compute with (see the class docstring)."""
        from distributed import Client

        b = self.backend
        try:
            current = Client.current()
        except ValueError:
            current = None
        if current is not None and current.status == "running" and \
                (b.address is None or current.scheduler.address == b.address):
            return current
        if self._own is not None and self._own[0].status == "running":
            return self._own[0]
        cluster = None
        if b.address is None:
            cluster = _local_cluster(b.processes)
            address = cluster
        else:
            address = b.address
        try:
            client = Client(address, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise BackendError(
                f"cannot reach the Dask scheduler at {b.address} ({one_line(exc)}); "
                "check the address and that a scheduler runs there (`dask scheduler`)"
            ) from None
        self._own = (client, cluster)
        self._finalizer = weakref.finalize(self, _close, client, cluster)
        return client

    def describe(self) -> str:
        """Which cluster, in words: "local threads cluster, 1 worker, 2 threads"."""
        client = self.client()
        threads = _threads(client)
        if self._own is None or client is not self._own[0]:
            kind = f"the current client's cluster at {client.scheduler.address}"
        elif self._own[1] is None:
            kind = f"scheduler {self.backend.address}"
        else:
            kind = "local process cluster" if self.backend.processes else "local threads cluster"
        return (f"{kind}, {len(threads)} worker{'s' * (len(threads) != 1)}, "
                f"{sum(threads.values())} threads")

    def hold(self, X, y):
        """Host X and y as Dask arrays persisted on the cluster, one row block per worker
        thread (as `fit` cuts host data): many fits on them send the data once."""
        import dask.array as da

        client = self.client()
        host, labels = to_host(X), np.asarray(y)
        rows = max(1, math.ceil(host.shape[0] / (sum(_threads(client).values()) or 1)))
        return tuple(client.persist([da.from_array(host, chunks=(rows, -1)), da.from_array(labels, chunks=rows)]))

    def close(self) -> None:
        """Close the client and the local cluster this object started, if any."""
        if self._finalizer is not None:
            self._finalizer()
        self._own = self._finalizer = None

    # -- the Trainer methods ------------------------------------------------------
    def holds(self, X) -> bool:
        """Dask arrays stay on the cluster; anything else is computed in memory on the driver."""
        da = sys.modules.get("dask.array")
        return da is not None and isinstance(X, da.Array)

    def fit(self, model, X, y, *, optimizer, epochs, batch_size, shuffle, seed, callbacks=(),
            on_divergence="stop", validation_data=None, checkpoint=None, resume=False) -> train.History:
        """Train `model` in place on the cluster; the same contract as `train.run`."""
        client = self.client()
        self.workers_seen |= set(_threads(client))
        _check_workers(client)
        _pin_worker_blas(client)
        return _Run(self, client, model, optimizer, callbacks, on_divergence).train(
            X, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
            validation_data=validation_data, checkpoint=checkpoint, resume=resume)

    def predict_proba(self, model, X):
        """Lazy Dask array of softmax probabilities, computed block by block where X lives."""
        return _logits(model, X).map_blocks(_softmax, dtype=np.dtype(model.dtype))

    def predict(self, model, X):
        """Lazy Dask array of predicted class indices."""
        return _logits(model, X).argmax(axis=1)

    def score(self, model, X, y) -> float:
        """Accuracy, computed on the cluster; only the count of hits reaches the driver."""
        import dask.array as da

        labels = y.argmax(axis=1) if getattr(y, "ndim", 1) == 2 else y
        labels = labels if isinstance(labels, da.Array) else da.from_array(np.asarray(labels))
        if labels.shape[0] != X.shape[0]:
            raise InputError(f"y has {labels.shape[0]} rows but X has {X.shape[0]}; pass one label per sample")
        hits = (self.predict(model, X) == labels.rechunk({0: X.chunks[0]})).mean()
        client = self.client()
        return float(self.wait(client, client.compute(hits), "computing the score"))

    # -- waiting ----------------------------------------------------------------------
    def wait(self, client, future, doing: str):
        """future.result(), watching the cluster: no worker (all lost, or none started) for
        `backend.wait_timeout` seconds, a task that kept killing workers, or a scheduler
        that stopped answering is a ClusterError naming what was lost; Ctrl-C cancels."""
        import distributed

        limit = self.backend.wait_timeout
        seen = self.workers_seen
        since = None  # when the cluster was last seen with no worker (or not answering)
        try:
            while True:
                try:
                    return future.result(timeout=POLL)
                except distributed.TimeoutError:
                    pass
                except distributed.KilledWorker as exc:
                    raise ClusterError(
                        f"{doing}: a task was on workers that died {_allowed_failures()} times "
                        f"({one_line(exc)}); the workers are running out of memory or crashing: "
                        "give them more memory or use smaller blocks") from None
                except distributed.CancelledError:
                    raise ClusterError(f"{doing}: the cluster cancelled the work (the scheduler at "
                                       f"{client.scheduler.address} restarted or was lost)") from None
                try:
                    workers = set(_threads(client))
                    gone = None
                except ClusterError as exc:
                    workers, gone = set(), str(exc)
                seen |= workers
                if workers:
                    since = None
                    continue
                since = since or time.monotonic()
                if time.monotonic() - since < limit:
                    continue
                future.cancel()
                if gone is not None:
                    what = f"the scheduler stopped answering ({gone})"
                elif seen:
                    what = f"every worker was lost ({', '.join(sorted(seen))})"
                else:
                    what = f"the scheduler at {client.scheduler.address} has no workers"
                raise ClusterError(f"{doing}: {what} for {limit:g} s; start workers "
                                   f"(`dask worker {client.scheduler.address}`) and train again")
        except KeyboardInterrupt:
            future.cancel()
            raise


def transfer_bytes(client) -> int:
    """Bytes the cluster's workers have sent so far, to each other and to clients (Dask's own
    counter, `Worker.transfer_outgoing_bytes_total`, summed over the live workers). The
    difference across epochs is the training's traffic; data sent inside task graphs
    (such as the parameters, driver -> scheduler -> one worker) is not in it."""
    return int(sum(client.run(_sent_bytes).values()))


def _sent_bytes(dask_worker) -> int:
    return dask_worker.transfer_outgoing_bytes_total


def _threads(client) -> dict[str, int]:
    """{worker address: threads}. A scheduler that went away fails within Dask's comm
    timeouts (`distributed.comm.timeouts.connect`), as a ClusterError. (Not with
    `callback_timeout`: under heavy load its cancellation can surface as an
    UnboundLocalError from inside distributed.)"""
    try:
        return client.nthreads()
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"the Dask scheduler at {client.scheduler.address} does not answer "
                           f"({one_line(exc)}); check that it runs") from None


def _close(client, cluster) -> None:
    # Closing logs at INFO (workers retired, comms closed): nothing the user asked about.
    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(max(level, logging.ERROR) if level > logging.DEBUG else level)
    try:
        client.close()
        if cluster is not None:
            cluster.close()
    finally:
        log.setLevel(level)


def _local_cluster(processes: bool):
    """Threads in this process (no process to spawn: any script works), or one
    single-threaded worker process per core when asked for."""
    import dask.system
    from distributed import LocalCluster

    cores = dask.system.CPU_COUNT  # Dask's count honours CPU affinity and cgroup limits
    # A cluster the user did not start says nothing unless it fails (the driver reports
    # lost work itself), unless Dask's logs were asked for at DEBUG (the CLI's --debug).
    debug = logging.getLogger("distributed").getEffectiveLevel() <= logging.DEBUG
    # No dashboard, and its HTTP server (health, metrics) on a free port, not 8787.
    quiet = dict(dashboard_address=":0", scheduler_kwargs={"dashboard": False},
                 silence_logs=False if debug else logging.ERROR)
    if processes:
        return LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, **quiet)
    return LocalCluster(n_workers=1, threads_per_worker=cores, processes=False, **quiet)


def _allowed_failures() -> int:
    import dask

    return int(dask.config.get("distributed.scheduler.allowed-failures"))


class _PinBlas:
    """Worker plugin: one BLAS thread per task thread, so that a worker's threads (and
    the workers on one machine) do not oversubscribe the cores. Undone at teardown."""

    name = "mlp_backends-pin-blas"
    idempotent = True  # registered by every fit; kept, not replaced, where it already is

    def setup(self, worker):
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(1)

    def teardown(self, worker):
        self._limits.restore_original_limits()


def _check_workers(client) -> None:
    """Refuse, in one line, a cluster whose workers cannot import mlp_backends: their tasks
    would otherwise fail to unpickle, which Dask reports as a deserialization error."""
    import cloudpickle

    from . import workerprobe

    cloudpickle.register_pickle_by_value(workerprobe)
    try:
        answers = client.run(workerprobe.missing_mlp_backends)
    finally:
        cloudpickle.unregister_pickle_by_value(workerprobe)
    missing = {w: why for w, why in answers.items() if why}
    if missing:
        worker, why = next(iter(missing.items()))
        raise BackendError(f"{len(missing)} of {len(answers)} Dask workers cannot import mlp_backends "
                           f"({worker}: {why}); install mlp-backends in the workers' environment, the same "
                           "version as here")


def _pin_worker_blas(client) -> None:
    from distributed import WorkerPlugin

    plugin = type("PinBlas", (_PinBlas, WorkerPlugin), {})()
    client.register_plugin(plugin, name=_PinBlas.name)


class _Run:
    """One `fit` on the cluster: the epoch loop on the driver."""

    def __init__(self, trainer, client, model, optimizer, callbacks, on_divergence):
        self.trainer, self.client, self.model, self.optimizer = trainer, client, model, optimizer
        self.callbacks, self.on_divergence = list(callbacks), on_divergence

    def train(self, X, y, *, epochs, batch_size, shuffle, seed, validation_data=None, checkpoint=None,
              resume=False) -> train.History:
        model, client, optimizer = self.model, self.client, self.optimizer
        xp = model.backend.xp
        X, y, xs, ys, rows = _row_blocks(client, model, X, y)
        validation = self._validation(validation_data)
        n = sum(rows)
        full = batch_size is None or batch_size >= n
        # Block shuffles are seeded by (seed, epoch, block): the same on any cluster.
        block_seed = seed if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        at = Progress(opt_state=optimizer.init(xp, model.params), rng_state={"block_seed": block_seed})
        if checkpoint is not None:  # resuming refuses other data, or another validation split
            checkpoint.settings["data"] = self._fingerprint(xs, ys, rows, validation)
        resumed = resume and checkpoint is not None and checkpoint.exists()
        if resumed:
            at = checkpoint.load(model)  # the parameters, the optimizer state, where to go on
        state, t, block_seed = at.opt_state, at.step, at.rng_state["block_seed"]
        if resumed and at.rng_state.get("blocks", rows) != rows:
            warnings.warn(f"the rows are cut into {len(rows)} blocks, the checkpointed run's into "
                          f"{len(at.rng_state['blocks'])} (other block sizes or workers): sums add up in "
                          "another order, so the resumed run equals an uninterrupted one to rounding, "
                          "not bit for bit", RuntimeWarning, stacklevel=2)
        place = {"block_seed": block_seed, "blocks": rows}  # what a resume must match
        history = train.History.from_dict(at.history)
        train.begin_training(model, self.callbacks)
        if resumed:  # early stopping's best value, counter and best parameters go on as they were
            train.restore_callbacks(model, self.callbacks, at.callbacks)
        # A run that a callback stopped is over, also when resumed from its last checkpoint.
        for epoch in range(at.epoch, at.epoch if history.stopped_early else epochs):
            started = time.perf_counter()
            before = model.params
            try:
                if full:
                    total = self._full_batch(xs, ys, n, f"epoch {epoch + 1}")
                else:
                    total, steps = self._local_sgd(xs, ys, rows, n, state, t, batch_size, shuffle,
                                                   [block_seed, epoch], f"epoch {epoch + 1}")
            except KeyboardInterrupt:  # Ctrl-C while the cluster computes: the epoch is dropped
                train.interrupted(model, checkpoint, Progress(
                    epoch, 0, t, place, history=history.as_dict(), opt_state=state,
                    callbacks=train.callback_states(model, self.callbacks)))
            loss = total.loss
            if full:
                grads = total.arrays
                if model.l2:
                    loss += float(nn.l2_penalty(xp, model.params, model.l2))
                    grads = [g + model.l2 * p if i % 2 == 0 else g
                             for i, (g, p) in enumerate(zip(grads, model.params))]
                t += 1
                model.params, state = optimizer.update(xp, model.params, grads, state, t)
            else:
                L = len(model.params)
                model.params = total.arrays[:L]
                rest = total.arrays[L:]
                state = tuple(rest[i:i + L] for i in range(0, len(rest), L))
                t += steps
            model.backend.worker_backends = set(total.backends)
            logs = {"epoch": epoch + 1, "loss": loss, "accuracy": total.hits / n,
                    "time": time.perf_counter() - started,
                    "bytes_to_driver": float(sum(a.nbytes for a in total.arrays))}
            if validation is not None:
                logs["val_loss"], logs["val_accuracy"] = model.loss(*validation), model.score(*validation)
            if train.handle_divergence(model, before, logs, self.on_divergence, history):
                break
            model.optimizer_state = OptimizerState(state, t)
            stop = train.end_epoch(model, logs, self.callbacks, history)
            if checkpoint is not None and ((epoch + 1) % checkpoint.every == 0 or epoch + 1 == epochs or stop):
                checkpoint.save(model, Progress(epoch + 1, 0, t, place,
                                                history=history.as_dict(), opt_state=state,
                                                callbacks=train.callback_states(model, self.callbacks)))
            if stop:
                break
        train.end_training(model, self.callbacks, history)
        return history

    def _validation(self, data):
        """Validation data on the driver (scored there after every epoch, in memory)."""
        if data is None:
            return None
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise InputError("validation_data must be a pair (X_val, y_val)")
        return tuple(self.trainer.wait(self.client, self.client.compute(a), "reading validation_data")
                     if self.trainer.holds(a) else a for a in data)

    def _fingerprint(self, xs, ys, rows, validation) -> str:
        """The data's fingerprint, computed where the blocks are (only a number per block
        travels) and independent of how the rows are cut into blocks; the validation
        data, on the driver, are hashed there."""
        import dask

        starts = np.cumsum([0, *rows[:-1]]).tolist()
        parts = [dask.delayed(_block_digest, pure=True)(xb, yb, lo) for xb, yb, lo in zip(xs, ys, starts)]
        total = self.trainer.wait(self.client, self.client.compute(dask.delayed(_sum_digests)(parts)),
                                  "fingerprinting the data")
        host = train.fingerprint(self.model.backend, *validation) if validation is not None else ""
        return f"{sum(rows)}x{self.model.sizes[0]}:{total:016x}{host}"

    def _full_batch(self, xs, ys, n, doing) -> Part:
        import dask

        m = self.model
        # The parameters go inside the task graph (one key, the same for every block), not
        # scattered: if the worker holding them dies, the scheduler sends them again.
        params = dask.delayed(list(m.params), traverse=False)
        parts = [dask.delayed(block_gradients, pure=False)(params, xb, yb, n=n, **self._common())
                 for xb, yb in zip(xs, ys)]
        return self.trainer.wait(self.client, self.client.compute(_tree(parts)), doing)

    def _local_sgd(self, xs, ys, rows, n, state, t, batch, shuffle, seed, doing) -> tuple[Part, int]:
        """Each task trains on 1/B of every block's rows, drawn afresh each epoch (with shuffle)."""
        import dask

        m = self.model
        start = dask.delayed((list(m.params), state), traverse=False)
        B = len(xs)
        if shuffle and B > 1:
            # pieces[j][i]: the i-th of B random parts of block j, cut where block j lives.
            pieces = [[dask.delayed(_piece, pure=False)(xb, yb, seed=[*seed, j], parts=B, part=i)
                       for i in range(B)] for j, (xb, yb) in enumerate(zip(xs, ys))]
            groups = [[pieces[j][i] for j in range(B)] for i in range(B)]
            sizes = [sum(len(range(i, r, B)) for r in rows) for i in range(B)]
        else:
            groups = [[(xb, yb)] for xb, yb in zip(xs, ys)]
            sizes = rows
        parts = [dask.delayed(block_epoch, pure=False)(
            start[0], start[1], group, optimizer=self.optimizer, t0=t, batch=batch, shuffle=shuffle,
            seed=[*seed, i], l2=m.l2, n=n, **self._common()) for i, group in enumerate(groups)]
        total = self.trainer.wait(self.client, self.client.compute(_tree(parts)), doing)
        return total, max(math.ceil(r / batch) for r in sizes)

    def _common(self) -> dict:
        m = self.model
        return dict(k=m.sizes[-1], activation=m.activation, dtype=m.dtype, spec=m.backend.workers)


def _row_blocks(client, model, X, y):
    """X and y as Dask arrays with the same row chunks; host data sent to the workers once."""
    import dask.array as da

    d, k = model.sizes[0], model.sizes[-1]
    if isinstance(X, da.Array):
        if X.dtype.kind not in "biuf":
            raise InputTypeError(f"X must be numeric, got dtype {X.dtype}; convert it with X.astype(float)")
        from_host = False
    else:
        host = to_host(X)
        workers = sum(_threads(client).values()) or 1
        X = da.from_array(host, chunks=(max(1, math.ceil(host.shape[0] / workers)), *host.shape[1:]))
        from_host = True
    if X.ndim != 2 or X.shape[1] != d:
        raise InputError(f"X must have shape (n_samples, {d}), got {tuple(X.shape)}; "
                         "reshape it or build the model for this many features")
    if any(math.isnan(c) for c in X.chunks[0]):
        raise InputError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    if X.shape[0] == 0:
        raise InputError("X has no rows; training needs at least one sample")
    X = X.rechunk({1: -1})
    if not isinstance(y, da.Array):
        y = np.asarray(y)
        if y.dtype == object or y.dtype.kind in "USV":
            raise InputTypeError(f"y must be numeric labels or one-hot rows, got dtype {y.dtype}")
        y = da.from_array(y, chunks=-1)
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0] or (y.ndim == 2 and y.shape[1] != k):
        raise InputError(f"y must be {X.shape[0]} labels or one-hot rows of {k} columns "
                         f"(one per sample of X), got shape {tuple(y.shape)}")
    y = y.rechunk({0: X.chunks[0], **({1: -1} if y.ndim == 2 else {})})
    if from_host:
        X = client.persist(X)
    xs = X.to_delayed().ravel().tolist()
    # Each block's labels are kept on the worker of its rows (moved there once), so that
    # an epoch's tasks read both where they are.
    import dask

    ys = client.persist([dask.delayed(_beside, pure=True)(xb, yb)
                         for xb, yb in zip(xs, y.to_delayed().ravel().tolist())])
    # The caller holds X and ys: persisted blocks live only as long as their references.
    return X, ys, xs, ys, list(X.chunks[0])


def _block_digest(xb, yb, lo: int) -> int:
    """sum over the block's rows i of h(row i) * P**(lo + i), mod 2**64, where h hashes a
    row's bit patterns (and its label's) by powers of Q: blocks' digests add up to the same
    number however the rows are cut into blocks, and any changed value or order changes it."""
    P, Q, M = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 2**64
    with np.errstate(over="ignore"):
        x, y = np.ascontiguousarray(xb), np.ascontiguousarray(yb)
        cols = np.concatenate([x.reshape(len(x), -1).view(f"u{x.itemsize}").astype(np.uint64),
                               y.reshape(len(y), -1).view(f"u{y.itemsize}").astype(np.uint64)], axis=1)
        qs = np.cumprod(np.full(cols.shape[1], Q, dtype=np.uint64))
        h = (cols * qs).sum(axis=1, dtype=np.uint64) + np.uint64(cols.shape[1])
        ps = np.cumprod(np.full(len(h), P, dtype=np.uint64)) * np.uint64(pow(P, lo, M))
        return int((h * ps).sum(dtype=np.uint64))


def _sum_digests(digests) -> int:
    return sum(digests) % 2**64


def _beside(xb, yb):
    """yb, computed where xb is (the scheduler runs a task next to its largest input)."""
    return yb


def _tree(parts: list, split_every: int = 8):
    import dask

    while len(parts) > 1:
        parts = [dask.delayed(add_parts)(*parts[i:i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


# -- predictions on Dask arrays --------------------------------------------------------
def _logits(model, X):
    d, k = model.sizes[0], model.sizes[-1]
    if X.ndim != 2 or X.shape[1] != d:
        raise InputError(f"X must have shape (n_samples, {d}), got {tuple(X.shape)}; "
                         "reshape it or build the model for this many features")
    X = X.rechunk({1: -1})
    return X.map_blocks(block_logits, [np.asarray(p) for p in model.params], activation=model.activation,
                        float_dtype=model.dtype, spec=model.backend.workers, dtype=np.dtype(model.dtype),
                        chunks=(X.chunks[0], (k,)))
