"""CSV reading: every parser gives the same arrays, and the same one-line error naming
the line, column and value of the first bad cell, wherever in the file it is."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from mlp_backends import InputError, csvfile

PARSERS = ["pyarrow", "loadtxt", "exact"]


@pytest.fixture(params=PARSERS)
def parser(request, monkeypatch):
    if request.param == "pyarrow":
        pytest.importorskip("pyarrow.csv", reason="pyarrow (the csv extra) is not installed")
    monkeypatch.setattr(csvfile, "BLOCK_BYTES", 1024)  # many blocks even in a small file
    return request.param


def _write_numbers(path, n=600, d=5, labels=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(-50, 300, size=(n, d)) / 4
    y = rng.integers(0, 3, size=n) if labels is None else labels
    lines = [",".join([f"f{j}" for j in range(d)] + ["label"])]
    lines += [",".join([*(f"{v:g}" for v in row), str(label)]) for row, label in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    return X, y, lines


def test_every_parser_reads_the_same_numbers_and_labels(tmp_path, parser):
    X, y, _ = _write_numbers(tmp_path / "d.csv")
    for dtype in (np.float32, np.float64):
        got, labels = csvfile.read_csv(tmp_path / "d.csv", dtype=dtype, parser=parser)
        assert got.dtype == dtype and got.shape == X.shape
        np.testing.assert_array_equal(got, X.astype(dtype))
        assert labels.dtype == np.int64 and labels.tolist() == y.tolist()


def test_word_labels_stay_words_and_features_only_files(tmp_path, parser):
    words = np.array(["cat", "dog", "bird"])[np.arange(600) % 3]
    X, _, _ = _write_numbers(tmp_path / "d.csv", labels=words)
    got, labels = csvfile.read_csv(tmp_path / "d.csv", parser=parser)
    np.testing.assert_array_equal(got, X)
    assert labels.tolist() == words.tolist()
    numbers, _, _ = _write_numbers(tmp_path / "n.csv")
    alone, none = csvfile.read_csv(tmp_path / "n.csv", n_features=6, parser=parser)
    assert none is None and alone.shape == (600, 6)
    np.testing.assert_array_equal(alone[:, :5], numbers)


def test_what_fast_parsers_reject_the_exact_reader_reads(tmp_path, parser):
    """Spaces around cells, rows of empty cells, quoted numbers, CRLF: read as the exact reader does."""
    path = tmp_path / "odd.csv"
    path.write_bytes(b"a, b ,label\r\n 1 ,2,x\r\n,,\r\n\r\n\"3\",4.5,  y\r\n")
    X, y = csvfile.read_csv(path, parser=parser)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4.5]])
    assert y.tolist() == ["x", "y"]


@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize(("cell", "shown"), [("x", "'x'"), ("nan", "'nan'"), ("-inf", "'-inf'"), ("", "''")])
def test_a_bad_cell_is_named_by_line_column_and_value(tmp_path, parser, where, cell, shown):
    _, _, lines = _write_numbers(tmp_path / "d.csv")
    row = 1 if where == "first" else len(lines) - 1
    fields = lines[row].split(",")
    fields[3] = cell
    lines[row] = ",".join(fields)
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        csvfile.read_csv(tmp_path / "d.csv", parser=parser)
    assert str(info.value) == (f"{tmp_path / 'd.csv'} line {row + 1}, column 'f3': {shown} is not a finite number; "
                               "features must be numeric (use --target to name the label column)")


def test_ragged_rows_empty_labels_and_bytes_that_are_not_utf8_late_in_the_file(tmp_path, parser):
    _, _, lines = _write_numbers(tmp_path / "d.csv")
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines[:-1] + ["1,2,3"]) + "\n")
    with pytest.raises(InputError, match=f"line {len(lines)} has 3 fields but the header has 6"):
        csvfile.read_csv(path, parser=parser)
    path.write_text("\n".join(lines[:-1] + ["1,2,3,4,5,"]) + "\n")
    with pytest.raises(InputError, match=f"line {len(lines)}: the label column 'label' is empty"):
        csvfile.read_csv(path, parser=parser)
    path.write_bytes(("\n".join(lines[:-1]) + "\n1,2,3,4,5,caf\xe9\n").encode("latin-1"))
    with pytest.raises(InputError, match="is not a UTF-8 text CSV"):
        csvfile.read_csv(path, parser=parser)


def test_without_pyarrow_auto_falls_back_to_loadtxt(tmp_path, monkeypatch):
    X, y, _ = _write_numbers(tmp_path / "d.csv", n=20)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    assert csvfile._fast_parser("auto") is csvfile._loadtxt
    got, labels = csvfile.read_csv(tmp_path / "d.csv")
    np.testing.assert_array_equal(got, X)
    assert labels.tolist() == y.tolist()
    with pytest.raises(InputError, match=r"pip install 'mlp-backends\[csv\]'"):
        csvfile.read_csv(tmp_path / "d.csv", parser="pyarrow")


def test_the_array_is_allocated_once_at_the_size_of_the_rows(tmp_path, parser):
    """Blank lines are counted when the array is sized; the result gives that room back."""
    path = tmp_path / "blank.csv"
    path.write_text("a,b\n1,0\n\n\n\n2,1\n")
    X, y = csvfile.read_csv(path, parser=parser)
    assert X.shape == (2, 1) and X.flags.owndata and y.tolist() == [0, 1]
