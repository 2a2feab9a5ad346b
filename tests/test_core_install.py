"""The core install (only the declared dependencies) trains on the user's own data.

A fresh virtual environment without the system's packages gets the package
and what pyproject.toml declares, nothing else: no scikit-learn, no torch,
no matplotlib. Slow (pip builds and installs), so marked; CI runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, env=None, timeout=240):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_a_bare_install_trains_saves_predicts_and_evaluates_on_a_csv_and_on_synthetic_data(tmp_path):
    source = tmp_path / "src"
    for package in ("mlp_backends", "backends"):  # a copy, so the build leaves the checkout alone
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = str(bindir / "python")
    installed = _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
                     cwd=tmp_path, timeout=420)
    if installed.returncode and "Could not find a version" in installed.stderr + installed.stdout:
        pytest.skip(f"no package index reachable: {installed.stderr.strip().splitlines()[-1]}")
    assert installed.returncode == 0, installed.stderr[-2000:]
    frozen = _run([python, "-m", "pip", "list", "--format=freeze"], cwd=tmp_path).stdout.lower()
    for extra in ("scikit-learn", "torch", "jax", "matplotlib", "dask", "array-api-strict"):
        assert f"{extra}==" not in frozen, f"{extra} came with the core install"

    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3)) + np.repeat(np.eye(3) * 3, 50, axis=0)
    names = np.repeat(["red", "green", "blue"], 50)
    rows = "\n".join(",".join([*map(str, x), c]) for x, c in zip(X, names))
    (tmp_path / "own.csv").write_text("a,b,c,colour\n" + rows + "\n")
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "MLP_BACKEND": "numpy"}
    env.pop("PYTHONPATH", None)
    cli = str(bindir / "mlp-backends")

    steps = [
        [cli, "train", "--data", "own.csv", "--epochs", "5", "--quiet", "--save", "own.npz"],
        [cli, "predict", "own.npz", "own.csv", "--out", "labels.csv"],
        [cli, "evaluate", "own.npz", "own.csv"],
        [cli, "train", "--data", "synthetic:n=400,d=6,classes=3", "--epochs", "3", "--quiet"],
    ]
    for cmd in steps:
        out = _run(cmd, cwd=tmp_path, env=env)
        assert out.returncode == 0, (cmd[1:], out.stdout, out.stderr)
    assert (tmp_path / "labels.csv").read_text().splitlines()[0] == "label"
    assert float(out.stdout.split("test accuracy: ")[1].split()[0]) > 0.6  # chance: 0.33

    # The bundled sets are the one part that needs scikit-learn: one line that names the extra.
    out = _run([cli, "train", "--data", "iris", "--epochs", "1"], cwd=tmp_path, env=env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert 'pip install "mlp-backends[sklearn]"' in out.stderr and "Traceback" not in out.stderr


def test_the_cli_data_path_imports_no_scikit_learn(tmp_path):
    """Quick check of the same rule in this environment: scikit-learn made unimportable."""
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(1).normal(size=(60, 4)), y=np.arange(60) % 2)
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from mlp_backends.cli import main\n"
            "for data in ('d.npz', 'synthetic:n=90,d=5,classes=3'):\n"
            "    assert main(['train', '--data', data, '--epochs', '1', '--quiet', '--backend', 'numpy']) == 0\n"
            "assert main(['train', '--data', 'digits', '--epochs', '1', '--backend', 'numpy']) == 2\n")
    out = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "mlp-backends[sklearn]" in out.stderr
