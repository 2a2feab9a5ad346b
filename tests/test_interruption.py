"""Checkpoints: a run killed (SIGKILL) or stopped (Ctrl-C) resumes to bit-identical parameters."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mlp_backends import MLP, InputError, ModelFileError

EPOCHS = 8

# A run slow enough to be interrupted: every epoch waits a little in a callback
# and says where it is, so the test knows when to strike.
SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from mlp_backends import MLP, TrainingInterrupted

    class Announce:
        def on_epoch_end(self, model, logs):
            print("epoch", logs["epoch"], flush=True)
            time.sleep(0.4)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = MLP(8, (16, 8), 2, "tanh", backend="numpy", dtype="float64", seed=1)
    try:
        model.fit(X, y, epochs=%d, batch_size=10, learning_rate=0.01, optimizer="adam",
                  checkpoint=sys.argv[1], checkpoint_every=int(sys.argv[2]), resume=True,
                  callbacks=[Announce()])
    except TrainingInterrupted as exc:
        print("STOPPED:", exc, flush=True)
        sys.exit(130)
    np.save(sys.argv[3], np.concatenate([p.ravel() for p in model.get_params()]))
    print("done", flush=True)
""" % EPOCHS)


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def _uninterrupted():
    X, y = _data()
    model = MLP(8, (16, 8), 2, "tanh", backend="numpy", dtype="float64", seed=1)
    model.fit(X, y, epochs=EPOCHS, batch_size=10, learning_rate=0.01, optimizer="adam")
    return np.concatenate([p.ravel() for p in model.get_params()])


def _start(tmp_path, every=1):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "ckpt"), str(every), str(tmp_path / "final.npy")],
        stdout=subprocess.PIPE, text=True,
    )


def _wait_for(proc, text):
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(text):
            return lines
    raise AssertionError(f"never saw {text!r}: {lines}")


def _finish(tmp_path, every=1):
    proc = _start(tmp_path, every)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return np.load(tmp_path / "final.npy"), out


def test_sigkill_mid_run_then_resume_is_bit_identical(tmp_path):
    proc = _start(tmp_path, every=2)
    _wait_for(proc, "epoch 3")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert (tmp_path / "ckpt" / "checkpoint.npz").is_file()
    # no temporary debris; the run's lock file stays (it is free once the process is gone)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [".lock", "checkpoint.npz"]
    resumed, out = _finish(tmp_path, every=2)
    assert "epoch 1\n" not in out and "epoch 3\n" in out  # it continued from epoch 2's checkpoint
    np.testing.assert_array_equal(resumed, _uninterrupted())


def test_ctrl_c_saves_mid_epoch_and_resume_is_bit_identical(tmp_path):
    proc = _start(tmp_path, every=100)  # only Ctrl-C writes a checkpoint here
    _wait_for(proc, "epoch 2")
    proc.send_signal(signal.SIGINT)  # lands in the callback's sleep: stop after the next step
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "STOPPED: interrupted in epoch 3, after step" in out and "--resume" in out
    resumed, out = _finish(tmp_path, every=100)
    assert out.splitlines()[0] == "epoch 3"
    np.testing.assert_array_equal(resumed, _uninterrupted())


def test_resume_refuses_a_checkpoint_made_with_other_settings(tmp_path):
    X, y = _data()
    model = MLP(8, 4, 2, backend="numpy")
    model.fit(X, y, epochs=1, batch_size=10, checkpoint=tmp_path)
    with pytest.raises(InputError, match=r"batch_size=10 \(now 20\)"):
        MLP(8, 4, 2, backend="numpy").fit(X, y, epochs=2, batch_size=20, checkpoint=tmp_path, resume=True)
    with pytest.raises(InputError, match="sizes"):
        MLP(8, 5, 2, backend="numpy").fit(X, y, epochs=2, batch_size=10, checkpoint=tmp_path, resume=True)


def test_a_corrupt_checkpoint_is_a_clear_error(tmp_path):
    X, y = _data()
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelFileError, match="not a readable checkpoint file"):
        MLP(8, 4, 2, backend="numpy").fit(X, y, epochs=1, checkpoint=tmp_path, resume=True)


def test_resume_without_a_checkpoint_folder_is_refused():
    X, y = _data()
    with pytest.raises(InputError, match="resume=True needs checkpoint="):
        MLP(8, 4, 2, backend="numpy").fit(X, y, epochs=1, resume=True)
