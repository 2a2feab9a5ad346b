"""The command line, run the way a person runs it: in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


def run(*args, env=None):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MLP_BACKEND", None) if env is None or "MLP_BACKEND" not in env else None
    return subprocess.run([sys.executable, "-m", "mlp_backends.cli", *args],
                          capture_output=True, text=True, env=full_env, timeout=300)


def test_default_train_run_reports_backend_loss_and_accuracy():
    out = run("train")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^backend: \w+ \(", out.stdout, re.M)
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", out.stdout)]
    assert len(losses) == 30 and losses[-1] < losses[0]
    accuracy = float(re.search(r"test accuracy: (\d\.\d+)", out.stdout).group(1))
    assert accuracy >= 0.95  # chance: 0.1; 0.96 to 0.98 over split seeds 0-3


def test_backends_table_lists_every_backend():
    out = run("backends")
    assert out.returncode == 0
    for name in ("numpy", "cupy", "torch", "jax", "array_api_strict"):
        assert re.search(rf"^{name}\s+(yes|no)\s", out.stdout, re.M), name


@pytest.mark.parametrize(("args", "env", "message"), [
    (["train", "--backend", "nosuch"], None, "unknown backend 'nosuch'"),
    (["train"], {"MLP_BACKEND": "nosuch"}, "unknown backend 'nosuch'"),
    (["train", "--data", "nosuch"], None, "unknown data set 'nosuch'"),
])
def test_bad_input_exits_2_with_one_line_and_no_traceback(args, env, message):
    out = run(*args, env=env)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
