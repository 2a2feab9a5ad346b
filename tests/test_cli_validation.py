"""Usage errors come before any work: one line on stderr, exit 2, no `backend:` or
`data:` line, and neither the data nor (for option errors) the backend touched.
--debug adds the traceback and keeps the exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlp_backends import cli, data, registry

DATA = "synthetic:n=60,d=3,classes=2"


@pytest.fixture
def untouched(monkeypatch):
    """Loading data or choosing a backend fails the test."""
    def forbidden(*args, **kwargs):
        raise AssertionError("work began before the usage error")

    monkeypatch.setattr(data, "load", forbidden)
    monkeypatch.setattr(data, "read", forbidden)
    monkeypatch.setattr(registry, "get_backend", forbidden)


def _one_line_usage_error(capsys, argv, expect):
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own errors (a bad type, an unknown choice)
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert err.count("\n") == 1 and err.startswith("mlp-backends"), err
    assert expect in err, err
    assert "backend:" not in out and "data:" not in out, out


@pytest.mark.parametrize(("extra", "expect"), [
    (["--batch-size", "0"], "--batch-size: batch_size must be a whole number of at least 1, got 0"),
    (["--batch-size", "half"], "'half' is neither a whole number nor full"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--lr", "-1"], "--learning-rate: learning_rate must be a number above 0"),
    (["--lr", "inf"], "--learning-rate: learning_rate must be a number above 0"),
    (["--l2", "-0.1"], "--l2: l2 must be a number of 0 or more"),
    (["--hidden", "8", "0"], "--hidden: hidden_size must be a whole number of at least 1"),
    (["--test-size", "1.5"], "--test-size: test_size must be a fraction in (0, 1)"),
    (["--validation-split", "1"], "--validation-split: validation_size must be a fraction in [0, 1)"),
    (["--checkpoint-every", "0"], "--checkpoint-every: checkpoint_every must be a whole number of at least 1"),
    (["--early-stopping", "-2"], "--early-stopping: patience must be a whole number of 0 or more"),
    (["--seed", "-1"], "--seed: seed must be a whole number of 0 or more"),
    (["--recipe", "paper"], "invalid choice: 'paper'"),
    (["--save", "no/such/folder/m.npz"], "folder"),
    (["--log-json", "no/such/folder/log.jsonl"], "folder"),
    (["--resume", "no-checkpoint-here"], "no checkpoint in no-checkpoint-here"),
    (["--scheduler", "tcp://127.0.0.1:1", "--backend", "numpy"], "use it with --backend dask"),
    (["--target", "label"], "--target names a CSV column"),
])
def test_option_errors_stop_before_the_backend_and_the_data(untouched, capsys, tmp_path, monkeypatch, extra, expect):
    monkeypatch.chdir(tmp_path)
    _one_line_usage_error(capsys, ["train", "--data", DATA, *extra], expect)


@pytest.mark.parametrize(("source", "expect"), [
    ("nosuch", "unknown data set 'nosuch'"),
    ("missing.csv", "no file at missing.csv"),
    ("train-labels-idx1-ubyte.gz", "an IDX labels file"),
    ("synthetic:n=ten", "synthetic option n must be a whole number"),
])
def test_data_sources_that_cannot_be_read_stop_before_the_backend(untouched, capsys, tmp_path, monkeypatch,
                                                                   source, expect):
    monkeypatch.chdir(tmp_path)
    _one_line_usage_error(capsys, ["train", "--data", source], expect)


def test_a_dtype_the_device_cannot_hold_stops_before_the_data(capsys, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("data loaded before the dtype was checked")

    monkeypatch.setattr(data, "load", forbidden)
    _one_line_usage_error(capsys, ["train", "--data", DATA, "--backend", "array_api_strict:no_float64",
                                   "--dtype", "float64"], "has no float64 on its device")


def test_predict_checks_its_output_and_data_before_reading_the_model(untouched, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _one_line_usage_error(capsys, ["predict", "m.npz", DATA, "--out", "no/such/p.csv"], "folder")
    _one_line_usage_error(capsys, ["evaluate", "m.npz", "nosuch"], "unknown data set 'nosuch'")


def test_debug_adds_the_traceback_and_keeps_exit_code_2(capsys):
    code = cli.main(["--debug", "train", "--batch-size", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("Traceback (most recent call last):") and "InputError" in err
    assert err.splitlines()[-1] == ("mlp-backends: error: --batch-size: "
                                    "batch_size must be a whole number of at least 1, got 0")


def test_debug_shows_this_librarys_logs_and_not_jaxs():
    """JAX logs about a hundred lines at debug level; --debug alone must not show them."""
    code = ("import logging, sys; from mlp_backends import cli\n"
            "rc = cli.main(['--debug', 'train', '--epochs', '0'])\n"
            "logging.getLogger('jax._src.xla_bridge').debug('jax chatter')\n"
            "logging.getLogger('mlp_backends.registry').debug('ours')\n"
            "sys.exit(rc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "ours" in out.stderr and "jax chatter" not in out.stderr
    asked = code.replace("'--debug', 'train'", "'--debug-loggers', 'jax', 'train'")
    out = subprocess.run([sys.executable, "-c", asked], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "jax chatter" in out.stderr
