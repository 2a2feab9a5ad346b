"""The plugin in examples/mlx_backend, installed from outside the package, keeps the contract.

It is skipped where it is not installed (`pip install ./examples/mlx_backend`);
CI installs it and requires it ($MLP_BACKENDS_REQUIRE names mlx).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs

from mlp_backends import MLP, get_backend, list_backends

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mlx_backend"


@pytest.fixture(scope="module")
def plugin():
    return needs("mlp_backends_mlx")


def test_it_is_registered_from_its_own_distribution(plugin):
    info = {i.name: i for i in list_backends()}["mlx"]
    assert info.usable, info.reason
    assert info.source == "mlp_backends_mlx:MLXBackend (mlp-backends-mlx)"
    assert not Path(plugin.__file__).resolve().is_relative_to(Path(__file__).resolve().parent.parent / "mlp_backends")


def test_its_own_one_line_suite_passes_every_check(plugin):
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                         capture_output=True, text=True, cwd=EXAMPLE, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
    assert " failed" not in out.stdout and "passed" in out.stdout
    assert "4 skipped" in out.stdout  # float64, which it refuses, for each numerical check


def test_it_trains_and_refuses_float64_with_the_reason(plugin, blobs):
    X, y = blobs
    model = MLP(5, 8, 3, backend="mlx", seed=0)
    model.fit(X, y, epochs=20, batch_size=16, learning_rate=0.05)
    assert model.score(X, y) > 0.9 and get_backend("mlx").name == "mlx"
    with pytest.raises(ValueError, match="float64 exp to float32 accuracy only"):
        MLP(5, 8, 3, backend="mlx", dtype="float64")
