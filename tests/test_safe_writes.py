"""No write destroys what the user had: outputs never equal inputs, failed runs keep the
old model, checkpoint folders are held by one run, closed pipes still save, temporaries
of killed writes are cleaned, and JSON stays JSON."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from mlp_backends import MLP, InputError, TrainingInterrupted, cli, io
from mlp_backends.callbacks import JsonLog
from mlp_backends.checkpoint import Checkpoint

X = np.random.default_rng(0).normal(size=(40, 3))
Y = np.arange(40) % 2
TRAIN = ["train", "--backend", "numpy", "--epochs", "2", "--quiet"]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A working folder with a data file and a saved model in it."""
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "data.npz", X=X, y=Y)
    MLP(3, 4, 2, backend="numpy").save(tmp_path / "model.npz")
    return tmp_path


def _contents(d) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def _main(argv, capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (TRAIN + ["--data", "data.npz", "--save", "data.npz"], "--save {d}/data.npz is also the --data being read"),
    (TRAIN + ["--data", "data.npz", "--log-json", "./data.npz"], "--log-json {d}/data.npz is also the --data"),
    (TRAIN + ["--data", "data.npz", "--plot", "link.npz"], "--plot {d}/data.npz is also the --data"),  # a symlink
    (TRAIN + ["--data", "data.npz", "--save", "m.npz", "--log-json", "m.npz"], "--save and --log-json both name"),
    (TRAIN + ["--data", "data.npz", "--checkpoint", ".", "--save", "checkpoint.npz"], "both name"),
    (["predict", "model.npz", "data.npz", "--out", "model.npz"], "--out {d}/model.npz is also the MODEL being read"),
    (["predict", "model.npz", "data.npz", "--out", "data.npz"], "--out {d}/data.npz is also the DATA being read"),
])
def test_an_output_that_is_an_input_is_refused_before_any_work(folder, capsys, argv, message):
    (folder / "link.npz").symlink_to(folder / "data.npz")
    before = _contents(folder)
    code, err = _main(argv, capsys)
    assert code == 2 and message.format(d=folder) in err, err
    assert _contents(folder) == before
    assert "backend:" not in capsys.readouterr().out  # refused before choosing a backend or reading data


def test_an_unwritable_folder_is_refused_before_training(folder, capsys, monkeypatch):
    """As on a read-only file system (root ignores permission bits, so the refusal is simulated)."""
    (folder / "ro").mkdir()
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.samefile(dir, folder / "ro"):
            raise PermissionError(30, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    code, err = _main(TRAIN + ["--data", "data.npz", "--save", "ro/m.npz"], capsys)
    assert code == 2
    assert f"cannot write --save ro/m.npz: folder {folder}/ro is not writable (Read-only file system)" in err
    assert "backend:" not in capsys.readouterr().out


def test_a_diverged_run_keeps_the_existing_model_file(folder, capsys):
    before = (folder / "model.npz").read_bytes()
    code, err = _main(["train", "--backend", "numpy", "--quiet", "--data", "data.npz", "--epochs", "3",
                       "--optimizer", "sgd", "--lr", "1e12", "--activation", "relu", "--save", "model.npz"], capsys)
    assert code == 1 and "training diverged" in err
    assert "kept model.npz as it was: this run diverged, so its model was not saved over it" in err
    assert (folder / "model.npz").read_bytes() == before


def test_an_interrupted_run_says_the_model_was_not_saved(folder, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise TrainingInterrupted("interrupted in epoch 1, after step 3; the model holds the parameters of that step")

    monkeypatch.setattr(MLP, "fit", interrupted)
    before = (folder / "model.npz").read_bytes()
    code, err = _main(TRAIN + ["--data", "data.npz", "--save", "model.npz"], capsys)
    assert code == 130
    assert "the model was not saved to model.npz (the file already there is kept)" in err
    assert (folder / "model.npz").read_bytes() == before


def test_another_runs_checkpoint_is_refused_without_resume(folder, capsys):
    assert cli.main(TRAIN + ["--data", "data.npz", "--checkpoint", "ck"]) == 0
    saved = (folder / "ck" / "checkpoint.npz").read_bytes()
    code, err = _main(TRAIN + ["--data", "data.npz", "--checkpoint", "ck"], capsys)
    assert code == 2
    assert "ck already holds a checkpoint of an earlier run; to continue it, resume (--resume ck" in err
    assert "to start over, delete ck/checkpoint.npz or choose another folder" in err
    assert (folder / "ck" / "checkpoint.npz").read_bytes() == saved
    with pytest.raises(InputError, match="already holds a checkpoint"):
        MLP(3, 4, 2, backend="numpy").fit(X, Y, epochs=1, checkpoint=folder / "ck")
    assert cli.main(TRAIN + ["--data", "data.npz", "--resume", "ck"]) == 0  # resuming is how to continue


def test_two_runs_never_write_one_checkpoint_folder(folder, capsys):
    """flock locks belong to an open file, so a second open in this process stands in for
    a second process (tests/test_fault_injection.py runs real processes)."""
    with Checkpoint(folder / "ck").writing(resume=False):
        with pytest.raises(InputError, match="another process is training with checkpoints in .*ck right now"):
            MLP(3, 4, 2, backend="numpy").fit(X, Y, epochs=1, checkpoint=folder / "ck")
        code, err = _main(TRAIN + ["--data", "data.npz", "--checkpoint", "ck"], capsys)
        assert code == 2 and "another process is training with checkpoints" in err
    assert not (folder / "ck" / "checkpoint.npz").exists()
    MLP(3, 4, 2, backend="numpy").fit(X, Y, epochs=1, checkpoint=folder / "ck")  # free again
    assert (folder / "ck" / "checkpoint.npz").exists()


def test_a_closed_pipe_still_saves_the_model(folder):
    """`mlp-backends train --save m.npz | head -1`: the reader leaves after one line."""
    proc = subprocess.Popen([sys.executable, "-m", "mlp_backends.cli", "train", "--backend", "numpy",
                             "--data", "data.npz", "--epochs", "200", "--save", "m.npz"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder)
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert MLP.load(folder / "m.npz").sizes == (3, 64, 2)


def test_temporaries_of_killed_writes_are_cleaned_on_the_next_write(tmp_path):
    stale = tmp_path / ".m.npz.k1ll3d.tmp"
    stale.write_bytes(b"half a model")
    busy = tmp_path / ".m.npz.wr1t1ng.tmp"  # another process is writing this one right now
    busy.write_bytes(b"being written")
    other = tmp_path / ".other.npz.x.tmp"  # a temporary of another file: not ours to judge
    other.write_bytes(b"")
    fd = os.open(busy, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        MLP(3, 4, 2, backend="numpy").save(tmp_path / "m.npz")
    finally:
        os.close(fd)
    assert not stale.exists() and busy.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.npz.wr1t1ng.tmp", ".other.npz.x.tmp", "m.npz"]


def test_non_finite_numbers_are_written_as_strict_json(tmp_path):
    log = JsonLog(str(tmp_path / "log.jsonl"))
    log.on_epoch_end(None, {"epoch": 1, "loss": 0.5, "val_loss": float("inf"), "val_accuracy": float("nan")})
    log.on_train_end(None, None)

    def refuse(name):
        raise AssertionError(f"invalid JSON constant {name}")

    line = json.loads((tmp_path / "log.jsonl").read_text(), parse_constant=refuse)
    assert line == {"epoch": 1, "loss": 0.5, "val_loss": None, "val_accuracy": None}
    io.atomic_savez(tmp_path / "m.npz", {"a": np.zeros(2)}, {"loss": float("nan"), "best": [float("-inf")]})
    with np.load(tmp_path / "m.npz") as z:
        meta = json.loads(z["__meta__"].tobytes(), parse_constant=refuse)
    assert meta == {"loss": "nan", "best": ["-inf"]}
