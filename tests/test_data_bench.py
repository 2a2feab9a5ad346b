"""The data benchmark runs end to end at a tiny size (its figures are not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_data_bench_runs_and_reports_ratios(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "data_bench.py"), "--rows", "50", "--repeats", "1",
         "--dir", str(tmp_path / "files"), "--json", str(tmp_path / "r.json"),
         "--only", "numpy.loadtxt", "mlp_backends csv", "train: npz"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert {"numpy.loadtxt", "mlp_backends csv (loadtxt)", "train: npz"} <= set(results)
    assert results["numpy.loadtxt"]["x_loadtxt"] == 1.0
    assert all(r["seconds"] > 0 and r["x_float32"] is not None for r in results.values())
    assert "x loadtxt" in out.stdout
