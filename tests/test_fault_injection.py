"""Fault injection: training processes are killed (SIGKILL) at random moments, including in
the middle of checkpoint and model writes, and resumed until they finish. With early
stopping, a validation split and a JSON log on, the end result must be bit-identical to
an uninterrupted run, and no kill may ever leave a broken checkpoint or model file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mlp_backends import MLP, io

SCRIPT = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from mlp_backends import MLP, EarlyStopping, io
    from mlp_backends.callbacks import JsonLog

    real_write = io.atomic_write

    def paused_write(path, write, mode="wb"):
        # Every file write pauses once its bytes are out but before the rename: a kill then
        # lands inside the write. "writing" tells the test when.
        def slowly(f):
            write(f)
            f.flush()
            print("writing", path.name if hasattr(path, "name") else path, flush=True)
            time.sleep(0.15)
        real_write(path, slowly, mode)

    io.atomic_write = paused_write

    class Announce:
        def on_epoch_end(self, model, logs):
            print("epoch", logs["epoch"], flush=True)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 6))
    y = ((X[:, 0] + X[:, 1] + rng.normal(scale=1.5, size=240)) > 0).astype(int)  # noisy: it overfits
    folder, out, log = sys.argv[1:4]
    model = MLP(6, 48, 2, "relu", backend="numpy", dtype="float64", seed=1)
    history = model.fit(X[:180], y[:180], epochs=25, batch_size=12, learning_rate=0.02, optimizer="adam",
                        validation_data=(X[180:], y[180:]), checkpoint=folder, resume=True,
                        callbacks=[Announce(), EarlyStopping(patience=3), JsonLog(log, append=True)])
    model.save(out)
    print("done", history.stopped_early, flush=True)
""")


def _start(d):
    return subprocess.Popen([sys.executable, str(d / "train.py"), str(d / "ckpt"), str(d / "model.npz"),
                             str(d / "log.jsonl")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _log_without_times(path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in path.read_text().splitlines()]


def _files_are_whole(d, previous: bytes) -> None:
    """After a kill: the model file is the user's previous one or the finished one, and the
    checkpoint (if any) reads back; no temporary file is left but the one being written."""
    model = (d / "model.npz").read_bytes()
    if model != previous:
        MLP.load(d / "model.npz")
    if (d / "ckpt" / "checkpoint.npz").exists():
        io.read_saved_npz(d / "ckpt" / "checkpoint.npz", "checkpoint")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference")
    (d / "train.py").write_text(SCRIPT)
    out, err = _start(d).communicate(timeout=120)
    assert "done early stopping after epoch" in out, (out, err)  # the run exercises early stopping
    return MLP.load(d / "model.npz").get_params(), _log_without_times(d / "log.jsonl"), out.splitlines()[-1]


def test_killed_at_random_moments_resumes_bit_identical(reference, tmp_path):
    """Up to three kills, each on a random epoch or write (seeded: a failure reproduces)."""
    params, log, last_line = reference
    rng = np.random.default_rng(7)
    (tmp_path / "train.py").write_text(SCRIPT)
    previous = b"the user's earlier model, which no kill may damage"
    (tmp_path / "model.npz").write_bytes(previous)
    kills = 0
    started = time.monotonic()
    while True:
        proc = _start(tmp_path)
        # Strike on the k-th "writing" line (inside a checkpoint or model write), or after the k-th epoch.
        inside_write = bool(rng.integers(2))
        k = int(rng.integers(1, 6))
        seen, done = 0, False
        for line in proc.stdout:
            if line.startswith("done"):
                done = True
                break
            if line.startswith("writing" if inside_write else "epoch"):
                seen += 1
                if seen == k and kills < 3:
                    time.sleep(float(rng.uniform(0, 0.05)))
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                    break
        proc.wait(timeout=60)
        if done:
            assert proc.returncode == 0, proc.stderr.read()
            assert line.strip() == last_line  # stopped early at the same epoch, saying the same
            break
        proc.stdout.close()
        proc.stderr.close()
        _files_are_whole(tmp_path, previous)
        assert time.monotonic() - started < 300
    assert kills >= 1
    for got, want in zip(MLP.load(tmp_path / "model.npz").get_params(), params):
        np.testing.assert_array_equal(got, want)
    assert _log_without_times(tmp_path / "log.jsonl") == log  # appended across runs, no line twice or lost
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [".lock", "checkpoint.npz"]


def test_resume_refuses_other_data(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 2
    MLP(4, 5, 2, backend="numpy").fit(X, y, epochs=1, checkpoint=tmp_path)
    with pytest.raises(ValueError, match="the data differ from those the checkpoint in .* was made with"):
        MLP(4, 5, 2, backend="numpy").fit(X + 1e-9, y, epochs=2, checkpoint=tmp_path, resume=True)
    with pytest.raises(ValueError, match="the data differ"):  # another validation split is other data too
        MLP(4, 5, 2, backend="numpy").fit(X, y, epochs=2, checkpoint=tmp_path, resume=True,
                                           validation_data=(X[:5], y[:5]))
    MLP(4, 5, 2, backend="numpy").fit(X, y, epochs=2, checkpoint=tmp_path, resume=True)


def test_resume_refuses_to_drop_or_change_early_stopping(tmp_path):
    from mlp_backends import EarlyStopping

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 2
    MLP(4, 5, 2, backend="numpy").fit(X, y, epochs=1, checkpoint=tmp_path, callbacks=[EarlyStopping(3)])
    with pytest.raises(ValueError, match="the checkpointed run used early stopping; resume with the same options"):
        MLP(4, 5, 2, backend="numpy").fit(X, y, epochs=2, checkpoint=tmp_path, resume=True)
    with pytest.raises(ValueError, match=r"patience, monitor, min_delta, restore_best = \[3, "):
        MLP(4, 5, 2, backend="numpy").fit(X, y, epochs=2, checkpoint=tmp_path, resume=True,
                                           callbacks=[EarlyStopping(4)])
