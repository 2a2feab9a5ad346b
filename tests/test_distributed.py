"""Training on a Dask cluster: two single-threaded worker processes on this machine.

One LocalCluster serves the whole module (starting one costs seconds). The
full-batch map-reduce must give the one-machine NumPy numbers; mini-batch
(local SGD with averaging) must learn digits; a worker killed mid-epoch must
not change the result; only parameter-sized results may reach the driver.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import dask  # noqa: E402
import dask.system  # noqa: E402

from mlp_backends import MLP, BackendError, DivergedError, EarlyStopping, InputError, get_backend, list_backends  # noqa: E402

# Not registered: e.g. a venv installed before the entry point (reinstall: pip install -e '.[dask]').
pytestmark = [pytest.mark.timeout(300), pytest.mark.requires_backend("dask")]

F64 = {"rtol": 1e-10, "atol": 1e-12}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def spec(cluster):
    spec = f"dask:{cluster.scheduler_address}"
    yield spec
    get_backend(spec).close()  # its client, before the cluster goes


def _dask_backend(cluster, workers):
    from backends.dask import DaskBackend

    return DaskBackend(cluster.scheduler_address, workers=workers)


def test_dask_is_listed_usable_and_kept_out_of_the_array_suite():
    from conftest import backend_params

    info = {i.name: i for i in list_backends()}["dask"]
    assert info.usable and info.distributed, info
    ids = [p.id for p in backend_params(("float64",))]
    assert "numpy-float64" in ids and not any(i.startswith("dask") for i in ids)


@pytest.mark.parametrize("kind", ["host", "dask-uneven-blocks"])
@pytest.mark.parametrize("how", ["article-train", "adam-l2"])
def test_full_batch_equals_the_one_machine_numpy_run(spec, digits, kind, how):
    X, y = digits.X_train, digits.y_train
    if kind != "host":  # 7 blocks of unequal size, labels chunked differently from X
        X, y = da.from_array(X, chunks=(200, 32)), da.from_array(y, chunks=300)
    l2 = 1e-3 if how == "adam-l2" else 0.0
    models = [MLP(64, 16, 10, backend=b, dtype="float64", seed=3, l2=l2) for b in ("numpy", spec)]
    for model, data in zip(models, [(digits.X_train, digits.y_train), (X, y)]):
        if how == "article-train":
            model.train(*data, epochs=15, learning_rate=0.5)
        else:
            model.fit(*data, epochs=15, batch_size=None, learning_rate=0.01, optimizer="adam")
    reference, on_cluster = models
    for got, want in zip(on_cluster.get_params(), reference.get_params()):
        np.testing.assert_allclose(got, want, **F64)
    np.testing.assert_allclose(on_cluster.history.loss, reference.history.loss, **F64)
    assert on_cluster.history.accuracy == reference.history.accuracy
    assert on_cluster.history.loss[-1] < on_cluster.history.loss[0]


def test_only_parameter_sized_results_travel(cluster, spec):
    """Data held by the workers, 4x apart in size: the driver receives the same bytes each
    epoch, and Dask's own transfer counters show parameter-sized traffic between workers.
    (Dask's work stealing may still move a block to an idle worker in some epoch, when
    that looks faster: the fewest bytes an epoch moved is what the design promises.)"""
    from mlp_backends.distributed import transfer_bytes

    model = MLP(20, 8, 3, backend=spec, dtype="float64", seed=0)
    params_bytes = sum(p.nbytes for p in model.get_params())
    received, traffic = [], []
    # The current client: the backend computes with it, so the persisted blocks are its own.
    with distributed.Client(cluster.scheduler_address) as client:
        for n in (4_000, 16_000):
            X = da.random.default_rng(1).standard_normal((n, 20), chunks=(n // 4, 20))  # 4 blocks
            X = client.persist(X)  # held by the workers, as a data set that fits is
            y = (X[:, 0] > 0).astype(np.int64)
            sent = []

            class Count:
                def on_train_begin(self, model):
                    sent.append(transfer_bytes(client))  # noqa: B023 - called within this iteration

                def on_epoch_end(self, model, logs):
                    sent.append(transfer_bytes(client))  # noqa: B023 - called within this iteration

            history = model.fit(X, y, epochs=4, batch_size=None, optimizer="sgd", learning_rate=0.1,
                                callbacks=[Count()])
            traffic.append(min(np.diff(sent)[1:]))  # the first epoch also places the labels
            received.append(history["bytes_to_driver"])
    assert received[0] == received[1] == [params_bytes] * 4
    # At most: the parameters to the other worker, a few parts to the reduction, the sum to
    # the driver, with serialization's headers; never a block of rows (1000 x 20 x 8 bytes).
    assert all(0 < t < 8 * params_bytes + 2_000 for t in traffic), (traffic, params_bytes)


def test_mini_batch_mixes_label_sorted_blocks_and_converges_like_one_machine(spec, digits):
    order = np.argsort(digits.y_train, kind="stable")
    X, y = digits.X_train[order], digits.y_train[order]  # 5 blocks, each of 2-3 labels
    Xd, yd = da.from_array(X, chunks=(300, 64)), da.from_array(y, chunks=300)
    assert max(len(np.unique(b)) for b in np.array_split(y, range(300, len(y), 300))) <= 3
    scores = []
    for backend, data in (("numpy", (X, y)), (spec, (Xd, yd))):
        model = MLP(64, 64, 10, "relu", backend=backend, seed=0)
        model.fit(*data, epochs=15, batch_size=32, learning_rate=0.003)
        scores.append(model.score(digits.X_test, digits.y_test))
    assert scores[0] > 0.95 and abs(scores[1] - scores[0]) <= 0.02, scores


@pytest.mark.parametrize("batch_size", [None, 32])
def test_checkpoint_and_resume_on_the_cluster_equal_an_uninterrupted_run(spec, digits, tmp_path, batch_size):
    X, y = digits.X_train, digits.y_train

    def model():
        return MLP(64, 16, 10, "relu", backend=spec, dtype="float64", seed=2)

    def fit(m, epochs, folder, resume=False):
        return m.fit(X, y, epochs=epochs, batch_size=batch_size, optimizer="adam", learning_rate=0.01,
                     checkpoint=str(tmp_path / folder), resume=resume, validation_data=(X[:200], y[:200]))

    whole = model()
    fit(whole, 4, "whole")
    fit(model(), 2, "halves")  # a run that stopped after 2 epochs
    resumed = model()
    history = fit(resumed, 4, "halves", resume=True)
    assert len(history) == 4 and history.loss == whole.history.loss
    assert history["val_accuracy"] == whole.history["val_accuracy"]
    for a, b in zip(resumed.get_params(), whole.get_params()):
        np.testing.assert_array_equal(a, b)
    resumed_state, whole_state = resumed.optimizer_state, whole.optimizer_state
    assert resumed_state.step == whole_state.step and all(
        np.array_equal(a, b) for g, h in zip(resumed_state.moments, whole_state.moments) for a, b in zip(g, h))


def test_mini_batch_local_sgd_learns_digits_and_repeats_exactly(spec, digits):
    def trained():
        model = MLP(64, 64, 10, "relu", backend=spec, seed=0)
        model.fit(digits.X_train, digits.y_train, epochs=12, batch_size=32, learning_rate=0.003)
        return model

    first, second = trained(), trained()
    assert first.score(digits.X_test, digits.y_test) >= 0.95
    assert first.history.loss[-1] < 0.1 * first.history.loss[0]
    for a, b in zip(first.get_params(), second.get_params()):
        np.testing.assert_array_equal(a, b)  # seeded block shuffles, fixed reduction order


def test_dask_arrays_in_give_dask_arrays_out_computed_on_the_cluster(spec, digits):
    model = MLP(64, 16, 10, "relu", backend=spec, dtype="float64", seed=3)
    model.fit(digits.X_train, digits.y_train, epochs=10, batch_size=None, learning_rate=0.03)
    X, y = da.from_array(digits.X_test, chunks=(100, 64)), da.from_array(digits.y_test, chunks=100)
    proba, labels = model.predict_proba(X), model.predict(X)
    assert isinstance(proba, da.Array) and isinstance(labels, da.Array)
    np.testing.assert_allclose(proba.compute(), model.predict_proba(digits.X_test), **F64)
    np.testing.assert_array_equal(labels.compute(), model.predict(digits.X_test))
    assert model.score(X, y) == pytest.approx(model.score(digits.X_test, digits.y_test), abs=1e-12)
    assert 0.5 < model.score(X, y) < 1.0


def test_workers_pick_their_own_backend_through_the_registry(cluster, digits):
    X, y = digits.X_train[:300], digits.y_train[:300]
    reference = MLP(64, 8, 10, backend="numpy", dtype="float64", seed=1)
    reference.train(X, y, epochs=3, learning_rate=0.5)
    for workers, expected in [("auto", "numpy"), ("array_api_strict", "array_api_strict")]:
        backend = _dask_backend(cluster, workers)
        model = MLP(64, 8, 10, backend=backend, dtype="float64", seed=1)
        model.train(X, y, epochs=3, learning_rate=0.5)
        assert backend.worker_backends == {expected}
        for got, want in zip(model.get_params(), reference.get_params()):
            np.testing.assert_allclose(got, want, **F64)


def _die_once_when_armed(block, folder):
    """Kill this worker process the first time it runs after the test arms it."""
    try:
        os.rename(os.path.join(folder, "armed"), os.path.join(folder, "fired"))  # one task wins
    except FileNotFoundError:
        return block
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_epoch_is_survived_with_the_same_result(cluster, spec, digits, tmp_path):
    X = da.from_array(digits.X_train, chunks=(300, 64)).map_blocks(
        _die_once_when_armed, str(tmp_path), dtype=digits.X_train.dtype)

    class ArmAfterEpoch:
        def __init__(self, epoch):
            self.epoch = epoch

        def on_epoch_end(self, model, logs):
            if logs["epoch"] == self.epoch:
                (tmp_path / "armed").touch()

    def trained(callbacks):
        model = MLP(64, 16, 10, backend=spec, dtype="float64", seed=5)
        model.fit(X, digits.y_train, epochs=5, batch_size=None, optimizer="momentum",
                  learning_rate=0.1, callbacks=callbacks)
        return model

    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        pids_before = set(client.run(os.getpid).values())
        undisturbed = trained([])
        survived = trained([ArmAfterEpoch(2)])
        client.wait_for_workers(2, timeout=60)
        pids_after = set(client.run(os.getpid).values())
    assert (tmp_path / "fired").exists() and not (tmp_path / "armed").exists()
    assert pids_before - pids_after, "no worker process died"
    assert len(survived.history) == 5
    for a, b in zip(survived.get_params(), undisturbed.get_params()):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_on_the_cluster_restores_its_best_parameters(spec, blobs):
    from mlp_backends import EarlyStopping

    X, y = blobs
    stopper = EarlyStopping(patience=2, monitor="loss", min_delta=10.0)  # nothing improves by 10: stop early
    model = MLP(5, 8, 3, backend=spec, dtype="float64", seed=1)
    history = model.fit(X, y, epochs=20, batch_size=None, optimizer="sgd", learning_rate=0.1,
                        callbacks=[stopper])
    assert len(history) == 3 and stopper.best_epoch == 1
    assert history.stopped_early.startswith("early stopping after epoch 3")
    assert history.stopped_early.endswith("restored its parameters")
    assert all(np.array_equal(a, b) for a, b in zip(model.params, stopper.best_params))


def test_divergence_stops_with_the_last_finite_parameters(spec, blobs):
    X, y = blobs
    model = MLP(5, 16, 3, "relu", backend=spec, init="standard_normal")  # float32 overflows soon
    history = model.fit(X * 1e3, y, epochs=20, batch_size=None, optimizer="sgd", learning_rate=1e6)
    assert "training diverged in epoch" in history.stopped_early and len(history) < 20
    assert all(np.isfinite(p).all() for p in model.get_params())
    with pytest.raises(DivergedError, match="diverged in epoch"):
        model.fit(X * 1e3, y, epochs=20, batch_size=None, optimizer="sgd", learning_rate=1e6,
                  on_divergence="raise")


def test_an_unreachable_scheduler_is_a_clear_backend_error(blobs):
    X, y = blobs
    model = MLP(5, 4, 3, backend="dask:tcp://127.0.0.1:9")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(BackendError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9") as err:
            model.fit(X, y, epochs=1)
    assert "\n" not in str(err.value)


def test_bad_data_are_input_errors(spec, blobs, tmp_path):
    X, y = blobs
    model = MLP(5, 4, 3, backend=spec)
    with pytest.raises(InputError, match=r"X must have shape \(n_samples, 5\)"):
        model.fit(da.from_array(X[:, :4]), y, epochs=1)
    with pytest.raises(InputError, match="y must be 60 labels"):
        model.fit(da.from_array(X), y[:50], epochs=1)
    with pytest.raises(InputError, match=r"labels must be whole numbers in \[0, 2\]"):  # found on a worker
        model.fit(da.from_array(X, chunks=20), da.from_array(y + 1, chunks=20), epochs=1)
    with pytest.raises(InputError, match="validation_data must be a pair"):
        model.fit(X, y, epochs=1, validation_data=X)


def test_without_a_client_one_threads_only_cluster_serves_the_whole_run(blobs, monkeypatch):
    from backends.dask import DaskBackend

    X, y = blobs
    monkeypatch.delenv("MLP_BACKEND", raising=False)
    children = len(multiprocessing.active_children())  # the module's cluster has some
    seen = []

    class SeeClient:
        def on_epoch_end(self, model, logs):
            client = model.backend.trainer().client()
            seen.append((id(client), len(multiprocessing.active_children()), client.nthreads()))

    backend = DaskBackend()
    model = MLP(5, 4, 3, backend=backend, dtype="float64", seed=0)
    model.fit(X, y, epochs=2, batch_size=None, optimizer="sgd", learning_rate=1.0, callbacks=[SeeClient()])
    model.fit(X, y, epochs=1, batch_size=None, optimizer="sgd", learning_rate=1.0, callbacks=[SeeClient()])
    assert model.score(da.from_array(X, chunks=20), y) == pytest.approx(model.score(X, y), abs=1e-12)
    assert len({s[0] for s in seen}) == 1, "one cluster for every fit and score of the backend"
    assert all(s[1] == children for s in seen), "no worker process is started"
    (threads,) = seen[0][2].values()  # one in-process worker, a thread per core as Dask counts them
    assert threads == dask.system.CPU_COUNT
    client = backend.trainer().client()
    backend.close()
    assert client.status == "closed"
    assert model.history.loss == pytest.approx(model.history.loss)  # still readable after close


def test_with_a_current_client_it_is_used_and_left_open(cluster, blobs):
    X, y = blobs
    from backends.dask import DaskBackend

    with distributed.Client(cluster.scheduler_address) as client:  # the default client
        backend = DaskBackend()
        MLP(5, 4, 3, backend=backend, seed=0).fit(X, y, epochs=1, batch_size=None)
        assert backend.trainer().client() is client
        assert backend.worker_backends == {"numpy"}
        backend.close()
        assert client.status == "running"


def test_an_unguarded_plain_script_trains_on_dask(tmp_path):
    """No `if __name__ == "__main__":` guard: nothing may re-import the script."""
    script = tmp_path / "plain.py"
    script.write_text(
        "import numpy as np\n"
        "from mlp_backends import MLP\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.standard_normal((300, 4)); y = (X[:, 0] > 0).astype(int)\n"
        "model = MLP(4, 8, 2, backend='dask', dtype='float64')\n"
        "model.fit(X, y, epochs=20, batch_size=None, optimizer='adam', learning_rate=0.05)\n"
        "import sys\n"
        "print(sorted(m for m in ('torch', 'jax', 'array_api_strict') if m in sys.modules))\n"
        "print('RAN', model.backend.worker_backends, model.score(X, y))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "MLP_BACKEND"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("RAN") == 1 and float(out.stdout.split()[-1]) > 0.9
    assert out.stderr == "", out.stderr
    # The worker (a thread of this process) chose NumPy without probing the other backends.
    # (CuPy is left out of the check: dask.array itself imports it when it is installed.)
    from mlp_backends.distributed import _nvidia_driver

    assert "{'numpy'}" in out.stdout
    if not _nvidia_driver():
        assert out.stdout.splitlines()[0] == "[]"


def test_each_worker_runs_blas_on_one_thread_per_task_thread(cluster, spec, blobs):
    from threadpoolctl import threadpool_info

    X, y = blobs
    MLP(5, 4, 3, backend=spec, seed=0).fit(X, y, epochs=1, batch_size=None)
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        per_worker = client.run(lambda: sorted({i["num_threads"] for i in threadpool_info()}))
    assert per_worker and all(counts == [1] for counts in per_worker.values()), per_worker


def test_the_scaling_benchmark_runs_at_a_tiny_size():
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "dask_scaling.py")
    out = subprocess.run([sys.executable, script, "--rows", "4000", "--chunk", "1000", "--features", "8",
                          "--hidden", "8", "--workers", "2", "--epochs", "2", "--repeats", "1",
                          "--memory-limit", "300MiB"], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split() for line in out.stdout.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert [r[0] for r in rows] == ["2"], out.stdout
    assert "same losses on every cluster size (rtol 1e-5, float32): True" in out.stdout


@pytest.mark.parametrize("address", ["http://host:8786", "host:8786", "tcp://"])
def test_an_address_with_an_unknown_scheme_is_a_backend_error(address):
    from mlp_backends import get_backend

    with pytest.raises(BackendError, match="is not a scheduler address; use SCHEME://HOST:PORT"):
        get_backend(f"dask:{address}")


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mlp_backends.cli", *args], capture_output=True,
                          text=True, timeout=240, env={**os.environ, **(env or {})})


def test_cli_trains_on_a_scheduler_with_one_extra_option(cluster):
    out = _cli("train", "--backend", "dask", "--scheduler", cluster.scheduler_address, "--epochs", "20")
    assert out.returncode == 0, out.stderr
    assert f"backend: dask:{cluster.scheduler_address}" in out.stdout
    assert float(re.search(r"test accuracy: (\d\.\d+)", out.stdout).group(1)) >= 0.95


def test_cli_unreachable_scheduler_exits_2_with_one_line():
    out = _cli("train", "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9", "--epochs", "1",
               env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    assert out.returncode == 2, out.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_cli_unknown_address_scheme_exits_2_with_one_line():
    out = _cli("train", "--backend", "dask", "--scheduler", "http://127.0.0.1:8786", "--epochs", "1")
    assert out.returncode == 2, out.stderr
    assert "is not a scheduler address; use SCHEME://HOST:PORT" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


@pytest.mark.timeout(120)
def test_cli_ctrl_c_on_dask_is_one_line_and_exit_130(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "mlp_backends.cli", "train", "--backend", "dask",
                             "--epochs", "100000", "--checkpoint", str(tmp_path / "ck")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if k != "MLP_BACKEND"})
    for line in proc.stdout:  # training on the threads cluster has begun
        if line.startswith("epoch    3/"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("mlp-backends: interrupted"), err
    assert (tmp_path / "ck" / "checkpoint.npz").exists()


def test_cli_debug_shows_what_distributed_logs_and_without_it_nothing():
    args = ("train", "--backend", "dask", "--epochs", "2", "--quiet")
    quiet, loud = _cli(*args), _cli(*args, "--debug")
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert quiet.stderr == ""
    assert "distributed." in loud.stderr


def test_the_bench_dask_row_trains_on_a_threads_cluster_through_fit(tmp_path, monkeypatch):
    import json
    import math

    from mlp_backends import cli

    monkeypatch.delenv("MLP_BACKEND", raising=False)
    out = tmp_path / "r.json"
    assert cli.main(["bench", "--workload", "tiny", "--backends", "dask", "--references", "none",
                     "--repeats", "2", "--epochs", "4", "--json", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    name = f"dask (local threads cluster, 1 worker, {dask.system.CPU_COUNT} threads)"
    assert set(rows) == {name, "numpy GEMM floor"}
    assert rows[name]["floor"] == "numpy GEMM floor" and rows[name]["epoch_s"] > 0
    assert rows[name]["final_loss"] < math.log(4)  # it trained: below the loss of guessing


def test_importing_the_package_does_not_import_dask():
    code = "import sys, mlp_backends; print([m for m in ('dask', 'distributed') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_block_epoch_trains_copies_and_leaves_the_shared_inputs_alone(digits):
    """Every block on a worker gets the same params and state objects; NumPy's compiled step
    updates in place, so a block that trained them directly would move the next block's start
    (a run then depends on which blocks share a worker). Called here without a cluster."""
    from mlp_backends import distributed as dist
    from mlp_backends import optim

    rng = np.random.default_rng(0)
    params = [rng.standard_normal((64, 16)).astype("float32") * 0.1, np.zeros(16, "float32"),
              rng.standard_normal((16, 10)).astype("float32") * 0.1, np.zeros(10, "float32")]
    opt = optim.Adam(0.01)
    state = tuple([np.zeros_like(p) for p in params] for _ in range(2))
    kept = [p.copy() for p in params]
    X, y = digits.X_train[:200].astype("float32"), digits.y_train[:200]
    run = lambda: dist.block_epoch(params, state, [(X, y)], optimizer=opt, t0=0, batch=32, shuffle=True,  # noqa: E731
                                   seed=1, k=10, activation="relu", l2=0.0, dtype="float32", n=200, spec="numpy")
    first, second = run(), run()
    for p, k in zip(params, kept):
        np.testing.assert_array_equal(p, k)
    assert all(not a.any() for group in state for a in group), "the moments must stay zero"
    for a, b in zip(first.arrays, second.arrays):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.arrays[0], kept[0]), "the block must have trained"


def test_a_model_with_saved_preprocessing_applies_it_where_the_rows_are(spec, digits):
    """A model that carries its standardization and class names (as `train --save` writes
    it) takes raw Dask rows and labels as it takes them in memory."""
    names = np.array([f"digit {i}" for i in range(10)])
    raw, labels = digits.X_test * 3.0 + 1.0, names[digits.y_test]  # rows before the saved scaling
    extra = {"classes": names.tolist(), "standardization": {"mean": [1.0] * 64, "scale": [3.0] * 64}}
    local = MLP(64, 16, 10, "relu", dtype="float64", seed=3)
    local.fit(digits.X_train, digits.y_train, epochs=5, batch_size=None, learning_rate=0.03)
    local.extra = extra
    remote = MLP(64, 16, 10, "relu", backend=spec, dtype="float64", seed=3)
    remote.set_params(local.get_params())
    remote.extra = extra
    X, y = da.from_array(raw, chunks=(100, 64)), da.from_array(labels, chunks=100)
    assert remote.predict(X).compute().tolist() == local.predict(raw).tolist()
    assert remote.score(X, y) == pytest.approx(local.score(raw, labels), abs=1e-12)
    assert local.score(raw, labels) > 0.5  # the raw rows were scaled back: far above chance


def test_resume_on_the_cluster_keeps_early_stopping_and_refuses_other_data(spec, digits, tmp_path):
    """Early stopping's best value, counter and best parameters survive a resume bit for bit;
    a checkpoint made with other data is refused, the same data cut into other blocks is not."""
    X, y = digits.X_train, digits.y_train

    def run(epochs, folder, resume=False, rows=X, chunks=None):
        m = MLP(64, 16, 10, "relu", backend=spec, dtype="float64", seed=2)
        data = rows if chunks is None else da.from_array(rows, chunks=(chunks, 64))
        m.fit(data, y, epochs=epochs, batch_size=None, optimizer="adam", learning_rate=0.05,
              checkpoint=str(tmp_path / folder), resume=resume, validation_data=(X[:200], y[:200]),
              callbacks=[EarlyStopping(patience=2, monitor="val_loss", min_delta=0.5)])
        return m

    whole = run(12, "whole")
    assert len(whole.history) == 6  # the large min_delta stops it after epoch 6, restoring epoch 4
    run(5, "parts")  # after the best epoch (4) and one that did not improve: the state decides
    resumed = run(12, "parts", resume=True)
    assert resumed.history.loss == whole.history.loss and resumed.history.stopped_early == whole.history.stopped_early
    for a, b in zip(resumed.get_params(), whole.get_params()):
        np.testing.assert_array_equal(a, b)
    run(3, "blocks")
    with pytest.warns(RuntimeWarning, match="equals an uninterrupted one to rounding, not bit for bit"):
        reblocked = run(12, "blocks", resume=True, chunks=250)  # the same rows, cut otherwise
    np.testing.assert_allclose(reblocked.history.loss, whole.history.loss, rtol=1e-12)
    other = X.copy()
    other[5, 7] += 1.0
    with pytest.raises(InputError, match="the data differ from those the checkpoint"):
        run(12, "parts", resume=True, rows=other)


def test_workers_that_cannot_import_the_library_are_refused_in_one_line(blobs, tmp_path):
    """Asked before any task is sent: otherwise Dask reports a deserialization error."""
    hide = tmp_path / "hide_mlp_backends.py"  # a worker environment without the package
    hide.write_text("import sys\nsys.modules['mlp_backends'] = None\n")
    X, y = blobs
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=":0",
                                  preload=[str(hide)]) as cluster:
        spec = f"dask:{cluster.scheduler_address}"
        try:
            model = MLP(X.shape[1], 8, int(y.max()) + 1, backend=spec, seed=0)
            with pytest.raises(BackendError, match=r"1 of 1 Dask workers cannot import mlp_backends \(tcp://.*"
                                                   r"ModuleNotFoundError.*\); install mlp-backends"):
                model.fit(X, y, epochs=1)
        finally:
            get_backend(spec).close()
