"""Small things a user meets: logs without carriage returns, help with examples,
install hints that name the extra, a divergence report that does not contradict itself."""

from __future__ import annotations

import sys

import pytest

from mlp_backends import cli


def test_bench_progress_writes_lines_without_carriage_returns_when_stderr_is_not_a_terminal(capsys):
    assert cli.main(["bench", "--workload", "tiny", "--backends", "numpy", "--references", "none",
                     "--repeats", "2"]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out
    progress = [line for line in captured.err.splitlines() if line.startswith("bench: [")]
    assert len(progress) == 6 and progress[-1].endswith("numpy GEMM floor: round 2/2")  # 2 entries x 3 rounds


def test_bench_help_has_examples(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["bench", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:\n  mlp-backends bench" in text and "--workload tiny" in text.split("examples:")[1]


def test_the_array_api_strict_hint_names_the_extra(monkeypatch):
    from backends.array_api_strict import StrictBackend

    monkeypatch.setitem(sys.modules, "array_api_strict", None)  # as if not installed
    probe = StrictBackend.probe()
    assert not probe.usable and probe.reason.endswith('pip install "mlp-backends[strict]"')


def test_a_divergence_report_explains_a_nan_loss_of_the_kept_finite_parameters(capsys):
    code = cli.main(["train", "--data", "synthetic:n=200,d=8,classes=3", "--optimizer", "sgd", "--lr", "1e12",
                     "--epochs", "5", "--quiet", "--backend", "numpy"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1 and "training diverged in epoch 1" in err and "kept the parameters" in err
    losses = [line for line in out.splitlines() if " loss: " in line]
    assert losses and all(line.endswith("(the kept parameters are finite, but too large for a finite loss)")
                          or "nan" not in line for line in losses)
    assert "(0 epochs finished, diverged in epoch 1)" in out.splitlines()[-1]
