"""Workers that die: a real `dask scheduler` and `dask worker --no-nanny` processes on
127.0.0.1, killed with SIGKILL at an epoch's end, while a task runs, and while the
driver waits for an epoch. Full-batch float64 training must end with the parameters
of the undisturbed run; losing every worker must fail clearly and soon, never hang.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from mlp_backends import MLP, ClusterError  # noqa: E402

pytestmark = pytest.mark.requires_backend("dask")

EPOCHS = 4
F64 = {"rtol": 1e-12, "atol": 1e-14}
STARTUP = 60  # seconds a scheduler or worker may take to start on a loaded machine


def _dask(*args, log: Path) -> subprocess.Popen:
    # The tests' folder on the path: workers unpickle the helper tasks defined here.
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-m", "distributed.cli." + args[0], *args[1:]],
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"), start_new_session=True,
                            env={**os.environ, "PYTHONPATH": path})


class Cluster:
    """A scheduler and the worker processes this test started (and will kill)."""

    def __init__(self, folder: Path):
        self.folder, self.log = folder, folder / "dask.log"
        file = folder / "scheduler.json"
        self.scheduler = _dask("dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(file), log=self.log)
        deadline = time.monotonic() + STARTUP
        while not file.exists() or not file.read_text().strip():
            assert time.monotonic() < deadline and self.scheduler.poll() is None, self.log.read_text()
            time.sleep(0.1)
        time.sleep(0.1)  # the file is written in one go, but give it a moment to be complete
        self.address = json.loads(file.read_text())["address"]
        self.workers: list[subprocess.Popen] = []
        self.client = distributed.Client(self.address, set_as_default=False, timeout=STARTUP)

    def start_worker(self, wait: bool = True) -> None:
        self.workers.append(_dask("dask_worker", self.address, "--no-nanny", "--nthreads", "1",
                                  "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0",
                                  log=self.log))
        if wait:
            self.client.wait_for_workers(len(self.alive()), timeout=STARTUP)

    def alive(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def kill(self, pid: int | None = None, replace: bool = True) -> None:
        """SIGKILL one worker (this pid, else the oldest alive); start another unless told not to."""
        victim = next(w for w in self.alive() if pid in (None, w.pid))
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        if replace:
            self.start_worker(wait=False)

    def close(self) -> None:
        self.client.close()
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.kill()
                p.wait(10)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start_worker()
        c.start_worker()
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def undisturbed(digits):
    """The one-machine float64 run every disturbed cluster run must reproduce."""
    model = MLP(64, 16, 10, backend="numpy", dtype="float64", seed=5)
    model.fit(digits.X_train, digits.y_train, epochs=EPOCHS, batch_size=None, optimizer="momentum",
              learning_rate=0.1)
    return model


def _train(cluster, X, y, callbacks=(), wait_timeout=60.0):
    from backends.dask import DaskBackend

    backend = DaskBackend(cluster.address, wait_timeout=wait_timeout)
    model = MLP(64, 16, 10, backend=backend, dtype="float64", seed=5)
    try:
        model.fit(X, y, epochs=EPOCHS, batch_size=None, optimizer="momentum", learning_rate=0.1,
                  callbacks=list(callbacks))
    finally:
        backend.close()
    return model


def _assert_same(model, reference):
    assert len(model.history) == EPOCHS
    for got, want in zip(model.get_params(), reference.get_params()):
        np.testing.assert_allclose(got, want, **F64)


class At:
    """A callback that runs `action` at the end of the given epochs."""

    def __init__(self, epochs, action):
        self.epochs, self.action = set(epochs), action

    def on_epoch_end(self, model, logs):
        if logs["epoch"] in self.epochs:
            self.action()


@pytest.mark.timeout(180)
def test_workers_killed_at_epoch_ends_change_nothing(cluster, digits, undisturbed):
    """Host data: the killed worker held row blocks sent from the driver; they come back."""
    model = _train(cluster, digits.X_train, digits.y_train, [At({1, 2}, cluster.kill)])
    assert len(cluster.workers) == 4 and len(cluster.alive()) >= 2
    _assert_same(model, undisturbed)


def _started_here(block, folder):
    """Tell the test which worker runs this block (then give it time to be killed)."""
    (Path(folder) / f"{os.getpid()}.{time.monotonic_ns()}").touch()
    time.sleep(0.2)
    return block


@pytest.mark.timeout(180)
def test_workers_killed_while_a_task_runs_change_nothing(cluster, digits, undisturbed, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    X = da.from_array(digits.X_train, chunks=(450, 64)).map_blocks(_started_here, str(marks),
                                                                   dtype=digits.X_train.dtype)
    killed = []

    def kill_the_next_worker_to_start_a_task():
        for old in marks.iterdir():
            old.unlink()
        deadline = time.monotonic() + STARTUP
        while not any(marks.iterdir()):  # the next epoch is submitted once this callback returns
            assert time.monotonic() < deadline
            time.sleep(0.01)
        pid = int(next(marks.iterdir()).name.split(".")[0])
        cluster.kill(pid)
        killed.append(pid)

    import threading

    def arm():
        threading.Thread(target=kill_the_next_worker_to_start_a_task, daemon=True).start()

    model = _train(cluster, X, digits.y_train, [At({1, 2}, arm)])
    assert len(killed) == 2
    _assert_same(model, undisturbed)


@pytest.mark.timeout(180)
def test_workers_killed_while_the_driver_waits_change_nothing(cluster, digits, undisturbed, monkeypatch):
    from mlp_backends.distributed import ClusterTrainer

    real_wait, waits = ClusterTrainer.wait, []

    def wait_after_a_kill(self, client, future, doing):
        waits.append(doing)
        if doing in ("epoch 2", "epoch 4"):  # submitted, not yet done
            cluster.kill()
        return real_wait(self, client, future, doing)

    monkeypatch.setattr(ClusterTrainer, "wait", wait_after_a_kill)
    model = _train(cluster, digits.X_train, digits.y_train)
    assert waits == [f"epoch {e}" for e in range(1, EPOCHS + 1)]
    _assert_same(model, undisturbed)


@pytest.mark.timeout(120)
def test_losing_every_worker_fails_clearly_and_soon(cluster, digits):
    def kill_all():
        for _ in list(cluster.alive()):
            cluster.kill(replace=False)

    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"epoch 3: every worker was lost \(tcp://127\.0\.0\.1:\d+, "
                                           r"tcp://127\.0\.0\.1:\d+\) for 3 s; start workers") as err:
        _train(cluster, digits.X_train, digits.y_train, [At({2}, kill_all)], wait_timeout=3)
    assert time.monotonic() - started < 60
    assert "\n" not in str(err.value)
