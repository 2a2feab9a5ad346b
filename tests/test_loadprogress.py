"""Long reads show a progress bar on a terminal and nothing anywhere else."""

from __future__ import annotations

import io

import numpy as np
import pytest

from mlp_backends import csvfile, loadprogress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "shown"), [(Terminal(), True), (io.StringIO(), False)])
def test_a_bar_only_on_a_terminal(stream, shown):
    pytest.importorskip("tqdm")
    with loadprogress.bar(loadprogress.MIN_TOTAL, "reading x.csv", stream=stream) as progress:
        progress.update(loadprogress.MIN_TOTAL)
    assert ("reading x.csv" in stream.getvalue()) == shown


def test_small_work_shows_no_bar_even_on_a_terminal():
    stream = Terminal()
    with loadprogress.bar(1000, "reading x.csv", stream=stream) as progress:
        progress.update(1000)
    assert stream.getvalue() == ""


def test_reading_a_csv_reports_its_bytes(tmp_path, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(loadprogress, "MIN_TOTAL", 0)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    (tmp_path / "d.csv").write_text("a,b\n" + "".join(f"{i},{i % 2}\n" for i in range(500)))
    X, y = csvfile.read_csv(tmp_path / "d.csv", parser="loadtxt")
    assert X.shape == (500, 1) and np.array_equal(y, np.arange(500) % 2)
    assert "reading d.csv" in terminal.getvalue()
