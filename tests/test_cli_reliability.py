"""The command line when runs go wrong: checkpoints and --resume, Ctrl-C, divergence, out of memory."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import numpy as np
from test_reliability import OOM_PLUGIN

from mlp_backends import MLP, cli

BASE = ["train", "--backend", "numpy", "--data", "iris", "--quiet", "--batch-size", "8", "--seed", "3"]


def test_checkpoint_then_resume_gives_the_uninterrupted_model(tmp_path):
    assert cli.main([*BASE, "--epochs", "6", "--save", str(tmp_path / "whole.npz")]) == 0
    assert cli.main([*BASE, "--epochs", "2", "--checkpoint", str(tmp_path / "ck")]) == 0
    assert cli.main([*BASE, "--epochs", "6", "--resume", str(tmp_path / "ck"),
                     "--save", str(tmp_path / "resumed.npz")]) == 0
    for a, b in zip(MLP.load(tmp_path / "whole.npz").get_params(), MLP.load(tmp_path / "resumed.npz").get_params()):
        np.testing.assert_array_equal(a, b)


def test_resume_from_an_empty_folder_says_how_to_start(tmp_path, capsys):
    assert cli.main([*BASE, "--resume", str(tmp_path)]) == 2
    assert f"no checkpoint in {tmp_path}; start a run with --checkpoint" in capsys.readouterr().err


def test_ctrl_c_stops_saves_and_says_how_to_resume(tmp_path):
    ck = tmp_path / "ck"
    argv = [sys.executable, "-m", "mlp_backends.cli", "train", "--backend", "numpy",
            "--data", "synthetic:n=4000,d=20,classes=3", "--batch-size", "4", "--epochs", "500",
            "--checkpoint", str(ck), "--checkpoint-every", "1000"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # plain lines: stdout is not a terminal
        if line.startswith("epoch"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err
    stopped = re.search(r"interrupted in epoch (\d+), after step \d+; checkpoint saved in (\S+); "
                        r"to continue, run the same command with --resume (\S+)", err)
    assert stopped, err
    assert stopped.group(2) == str(ck) and (ck / "checkpoint.npz").is_file()
    # Finishing the interrupted epoch from the checkpoint works.
    epoch = stopped.group(1)
    done = subprocess.run([*argv[:argv.index("--epochs")], "--epochs", epoch, "--resume", str(ck), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout


def test_divergence_is_reported_and_the_exit_code_is_1(tmp_path, capsys):
    code = cli.main(["train", "--backend", "numpy", "--quiet", "--optimizer", "sgd", "--lr", "1e12",
                     "--epochs", "20", "--save", str(tmp_path / "m.npz")])
    out = capsys.readouterr()
    assert code == 1
    assert re.search(r"mlp-backends: training diverged in epoch \d+: .*try a lower learning rate", out.err)
    assert all(np.isfinite(p).all() for p in MLP.load(tmp_path / "m.npz").get_params())


def test_out_of_memory_exits_2_with_sizes(plugin_dir, capsys):
    plugin_dir("oomplug", OOM_PLUGIN, "tinydevice = oomplug:TinyDevice\n")
    assert cli.main(["train", "--backend", "tinydevice", "--quiet", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlp-backends: error: out of memory on tinydevice") and "smaller --batch-size" in err
    assert len(err.strip().splitlines()) == 1
