"""The benchmark harness runs end to end on a tiny workload (a smoke test, never a timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import skip_unless_usable

from mlp_backends import bench, cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    skip_unless_usable("torch")  # the smoke run compares numpy with torch and its eager loop
    out = tmp_path_factory.mktemp("bench")
    argv = ["bench", "--workload", "tiny", "--backends", "numpy,torch", "--plain", "--repeats", "2",
            "--epochs", "2", "--json", str(out / "r.json"), "--plot", str(out / "r.png")]
    return out, argv


def test_bench_writes_table_json_and_plot(tiny_run, capsys):
    out, argv = tiny_run
    assert cli.main(argv) == 0
    table = capsys.readouterr().out
    data = json.loads((out / "r.json").read_text())
    rows = {r["name"]: r for r in data["rows"]}
    expected = {"numpy", "numpy (plain)", "torch", "torch (plain)", "sklearn MLPClassifier",
                "torch eager loop", "numpy hand-written", "numpy GEMM floor", "torch GEMM floor"}
    assert set(rows) == expected
    for name in expected:
        assert f"| {name} |" in table
    w = bench.WORKLOADS["tiny"]
    for r in rows.values():
        assert r["epoch_s"] > 0 and len(r["rounds_s"]) == 2
        assert r["gflops"] == pytest.approx(w.flops_per_epoch / r["epoch_s"] / 1e9)
        assert r["x_floor"] == pytest.approx(r["epoch_s"] / rows[r["floor"]]["epoch_s"])
        assert len(r["rss_mb_per_epoch"]) == 4 and r["peak_host_mb"] > 0
    assert rows["numpy"]["x_numpy"] == 1.0
    assert rows["torch eager loop"]["floor"] == "torch GEMM floor"
    assert rows["sklearn MLPClassifier"]["floor"] == "numpy GEMM floor"
    assert rows["numpy"]["final_loss"] < 1.39  # trained below log(4), the loss of guessing
    assert data["meta"]["workload"]["sizes"] == [16, 8, 4]
    png = (out / "r.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_training_memory_does_not_grow_from_epoch_to_epoch():
    w = bench.WORKLOADS["tiny"]
    X, y = bench.make_data(w, "float32")
    from mlp_backends import get_backend

    entry = bench.LibraryEntry(get_backend("numpy"), w, X, y, "float32", plain=False)
    entry.epoch()  # warm-up
    rss = []
    for _ in range(20):
        entry.epoch()
        rss.append(bench.rss_mb())
    # Arrays kept per epoch (or per step) would add up over 20 epochs; allocator noise does not.
    assert rss[-1] - rss[0] < 2.0, rss


@pytest.mark.parametrize(("args", "says"), [
    (["--backends", "nosuch"], "unknown backend"),
    (["--references", "bogus"], "unknown reference"),
    (["--repeats", "0"], "at least 1"),
    (["--json", "/nonexistent-folder/r.json"], "folder does not exist"),
])
def test_bench_bad_input_is_one_line_and_exit_2(args, says, capsys):
    base = ["bench", "--workload", "tiny", "--backends", "numpy", "--references", "none", "--repeats", "1"]
    assert cli.main(base + args) == 2  # a later option overrides the base's
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err and "Traceback" not in err


def test_benchmarks_script_is_the_same_command():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "--workload" in result.stdout and "mnist" in result.stdout


@pytest.mark.parametrize(("script", "args", "says"), [
    ("memory_copies.py", [], ["adam      in place", "adam      plain"]),
    pytest.param("memory_savers.py", ["--workload", "tiny", "--optimizers", "sgd", "--rounds", "1"],
                 ["donate", "in_place", "on/off"], marks=pytest.mark.requires_backend("jax", "torch")),
    ("gpu_memory.py", ["--backends", "numpy", "--workload", "tiny", "--fits", "2", "--epochs", "1"],
     ['"backend": "numpy"', '"fits": 2', '"in_use_growth_mb": null']),
])
def test_side_scripts_run_end_to_end(script, args, says):
    """The benchmarks behind figures quoted in code and RESULTS.md still run (not timed here)."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert all(s in result.stdout for s in says), result.stdout


def test_the_backends_chart_script_draws_a_png_on_a_tiny_run(tmp_path):
    """benchmarks/backends_chart.py (behind docs/backends.png) keeps running; not timed here."""
    import importlib.util

    pytest.importorskip("matplotlib")
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "backends_chart.py"
    spec = importlib.util.spec_from_file_location("backends_chart", path)
    chart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chart)
    out, rows = tmp_path / "b.png", tmp_path / "b.json"
    assert chart.main(["--workloads", "tiny", "--backends", "numpy", "--references", "numpy-handwritten",
                       "--repeats", "1", "--out", str(out), "--json", str(rows)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    names = [r["name"] for r in json.loads(rows.read_text())["results"]["tiny"]]
    assert "numpy" in names and "numpy hand-written" in names and "numpy GEMM floor" in names
