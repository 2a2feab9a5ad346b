"""CSV files with a header line: a fast parser for the numbers, an exact one for the errors.

The numbers are parsed by the fastest parser installed: pyarrow's streaming
CSV reader (the `csv` extra; several times faster than `numpy.loadtxt` on
MNIST-sized files), else `numpy.loadtxt`. Either fills, one block of rows at
a time, a float array allocated once for the whole file, so a read peaks at
that array plus a few blocks, never at a Python object per cell.

When a fast parser rejects a block (a word among numbers, a ragged row, a
quoted line break), or the numbers hold NaN or infinity, or a label is
empty, the exact reader (Python's csv module, row by row) reads on from that
block: it names the line, column and value of the first bad cell, or reads
what the fast parsers would not (cells padded with spaces, rows of empty
cells), with the same results.
"""

from __future__ import annotations

import csv
import itertools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import chunks, loadprogress, validation
from .errors import InputError

PARSERS = ("auto", "pyarrow", "loadtxt", "exact")
BLOCK_BYTES = 4 << 20  # pyarrow's block: big enough to amortize, small next to the data


class _Rejected(Exception):
    """A fast parser gave up at row `at` (rows before it are in X already)."""

    def __init__(self, at: int):
        self.at = at


@dataclass
class _Layout:
    path: Path
    header: list[str]
    target: int | None  # the label column, or None for features only
    on_first_line: bool  # the fast parsers skip exactly one line before the data
    chosen: list[int] | None = None  # feature columns picked by name, in the model's order

    @property
    def width(self) -> int:
        return len(self.header)

    @property
    def features(self) -> list[int]:
        if self.chosen is not None:
            return self.chosen
        return [j for j in range(self.width) if j != self.target]

    @property
    def feature_names(self) -> list[str]:
        return [self.header[j] for j in self.features]

    @property
    def target_name(self) -> str | None:
        return None if self.target is None else self.header[self.target]


def _is_blank(row: list[str]) -> bool:
    return not row or not any(c.strip() for c in row)  # blank lines carry nothing


def _not_utf8(path, exc: UnicodeDecodeError) -> InputError:
    return InputError(f"{path} is not a UTF-8 text CSV ({exc.reason}); export it as CSV (UTF-8)")


def _layout(path: Path, target: str | None, n_features: int | None, features=None,
            saved_target: str | None = None) -> _Layout:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            row = next((r for r in reader if not _is_blank(r)), None)
            line = reader.line_num
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from exc
    if row is None:
        raise InputError(f"{path} is empty; a CSV needs a header line and data rows")
    header = [c.strip() for c in row]
    if _floats(np.array(header)) is not None:
        raise InputError(f"{path}: the first line looks like data, not a header; add a header line with column names")
    known = [c for c in features or () if c in header]
    if known and len(known) < len(features):
        missing = [c for c in features if c not in header]
        raise InputError(f"{path} lacks {len(missing)} of the model's feature columns "
                         f"({', '.join(map(repr, missing[:5]))}{', ...' if len(missing) > 5 else ''}); "
                         "pass a file with every column the model was trained on")
    if known and len(set(header)) == len(header):
        # Columns by the names the model was trained on, wherever they stand; the label
        # column is the one named, else the model's own if the file has it.
        target = target if target is not None else saved_target if saved_target in header else None
        if target is not None and target not in header:
            raise InputError(f"{path} has no column {target!r}; its columns are: {', '.join(header)}")
        return _Layout(path, header, None if target is None else header.index(target), line == 1,
                       [header.index(c) for c in features])
    if target is None and n_features is not None and len(header) == n_features:
        t = None  # features only: how predict reads files without labels
    elif target is None:
        t = len(header) - 1
    elif target in header:
        t = header.index(target)
    else:
        raise InputError(f"{path} has no column {target!r}; its columns are: {', '.join(header)}")
    if t is not None and len(header) < 2:
        raise InputError(f"{path} has only one column; it needs feature columns and a label column")
    return _Layout(path, header, t, line == 1)


def _floats(values: np.ndarray):
    """Floats if every cell of a str column parses as a number, else None."""
    try:
        return values.astype(np.float64)
    except ValueError:
        return None


def _count_lines(path: Path) -> tuple[int, int]:
    """(lines, bytes) of the file: an upper bound on its rows, found without parsing."""
    lines = size = 0
    last = b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(16 << 20), b""):
            lines += block.count(b"\n")
            size += len(block)
            last = block[-1:]
    return lines + (last != b"\n"), size


# -- the parsers: each fills X[0:rows] and returns (rows, labels as read) ----------------
def _pyarrow(layout: _Layout, X: np.ndarray, progress, bytes_per_row: float):
    import pyarrow as pa
    import pyarrow.csv as pc

    names = [f"c{j}" for j in range(layout.width)]  # the header was read already, stripped
    number = pa.float32() if X.dtype == np.float32 else pa.float64()
    types = {name: number for name in names}
    if layout.target is not None:
        types[names[layout.target]] = pa.string()
    features = layout.features
    labels, rows = [], 0
    try:
        reader = pc.open_csv(
            layout.path, read_options=pc.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_BYTES),
            convert_options=pc.ConvertOptions(column_types=types, null_values=[], strings_can_be_null=False))
        for batch in reader:
            end = rows + batch.num_rows
            if end > X.shape[0]:
                raise _Rejected(rows)  # more rows than lines: only a parser's misreading gives that
            out = X[rows:end]
            for k, j in enumerate(features):
                out[:, k] = batch.column(j).to_numpy()
            if layout.target is not None:
                labels.append(batch.column(layout.target).to_numpy(zero_copy_only=False).astype(str))
            rows = end
            progress.update(int(batch.num_rows * bytes_per_row))
    except (pa.ArrowException, ValueError) as exc:  # ArrowInvalid: a cell, a row or a byte it cannot read
        raise _Rejected(rows) from exc
    return rows, (np.concatenate(labels) if labels else np.array([], dtype=str))


def _loadtxt(layout: _Layout, X: np.ndarray, progress, bytes_per_row: float, block_rows: int = 2048):
    features, t = layout.features, layout.target
    labels, rows, numeric_labels = [], 0, None
    read = lambda lines, **kw: np.loadtxt(lines, delimiter=",", quotechar='"', ndmin=2, **kw)  # noqa: E731
    try:
        with open(layout.path, encoding="utf-8-sig") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a block of blank lines: "input contained no data"
            next(f)
            while lines := list(itertools.islice(f, block_rows)):
                if t is None:
                    block, label = read(lines, dtype=X.dtype, usecols=features), None
                elif numeric_labels is not False:  # one pass when the labels are numbers too
                    try:
                        both = read(lines, dtype=np.float64)
                        block, label, numeric_labels = both[:, features], both[:, t], True
                    except ValueError:
                        if numeric_labels:
                            raise  # numbers, then words: the exact reader decides
                        numeric_labels = False
                if numeric_labels is False:
                    block = read(lines, dtype=X.dtype, usecols=features)
                    label = read(lines, dtype=str, usecols=[t])[:, 0]
                end = rows + block.shape[0]
                if block.shape[1] != len(features) or end > X.shape[0]:
                    raise _Rejected(rows)
                X[rows:end] = block
                if label is not None:
                    labels.append(label)
                rows = end
                progress.update(int(len(lines) * bytes_per_row))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Rejected(rows) from exc
    if not labels:
        return rows, np.array([], dtype=str)
    return rows, np.concatenate(labels)


def _exact(layout: _Layout, X: np.ndarray, start: int, known_labels=None):
    """Read every row with Python's csv module; parse numbers from row `start` on (the
    rows before it are in X already). Raises the precise error of the first bad cell."""
    path, header, t, features = layout.path, layout.header, layout.target, layout.features
    labels, rows, seen_header = [], 0, False
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for row in reader:
                if _is_blank(row):
                    continue
                if not seen_header:
                    seen_header = True
                    continue
                line = reader.line_num
                if len(row) != len(header):
                    raise InputError(f"{path} line {line} has {len(row)} fields but the header has {len(header)}; "
                                     "every row needs one value per column")
                if rows >= start:
                    for k, j in enumerate(features):
                        cell = row[j].strip()
                        try:
                            value = float(cell)
                        except ValueError:
                            value = math.nan
                        if not math.isfinite(value):
                            raise InputError(f"{path} line {line}, column {header[j]!r}: {cell!r} is not a finite "
                                             "number; features must be numeric (use --target to name the label column)")
                        X[rows, k] = value
                if t is not None:
                    label = row[t].strip()
                    if not label:
                        raise InputError(f"{path} line {line}: the label column {header[t]!r} is empty; "
                                         "every row needs a label")
                    labels.append(label)
                rows += 1
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from exc
    return rows, np.array(labels, dtype=str)


def _fast_parser(parser: str):
    if parser in ("auto", "pyarrow"):
        try:
            import pyarrow.csv  # noqa: F401
        except ImportError:
            if parser == "pyarrow":
                raise InputError("the pyarrow CSV parser is not installed; pip install 'mlp-backends[csv]'") from None
            return _loadtxt
        return _pyarrow
    return {"loadtxt": _loadtxt, "exact": None}[parser]


def _labels(raw: np.ndarray, layout: _Layout):
    """Labels as read -> integers when they are whole numbers, floats, or the strings themselves."""
    numbers = raw if raw.dtype.kind == "f" else _floats(raw)
    with np.errstate(invalid="ignore"):
        if numbers is not None and np.all(np.isfinite(numbers) & (numbers == np.round(numbers))):
            return numbers.astype(np.int64)
    y = numbers if numbers is not None else raw  # non-numeric labels stay as they are
    return validation.class_labels(y, f"{layout.path}: the label column {layout.header[layout.target]!r}",
                                   first_row=2, row="line")


def read_csv(path, target: str | None = None, n_features: int | None = None, *, dtype=np.float64,
             parser: str = "auto", allocate=np.empty, features=None, saved_target: str | None = None,
             names: dict | None = None):
    """Features X (n, d) of `dtype` and labels y (n,) from a CSV with a header line.

    The label column is `target` (default: the last). If `n_features` is given,
    no `target` was named, and the file has exactly that many columns, it is
    read as features only (y is None): that is how `predict` reads new data.
    parser: "auto" (pyarrow if installed, else loadtxt), "pyarrow", "loadtxt"
    or "exact" (Python's csv module only; slow, for checking). allocate:
    (shape, dtype) -> the array to fill, for an upper bound on the rows (a
    memory map on disk when converting); X is then its first rows.
    features: the feature column names a model was trained on; when the file has
    them all, they are read by name in that order, wherever they stand (and the
    label column is `target`, else `saved_target` if present, else none). Without
    all of them, columns are taken by position as above. names: a dict that gets
    the chosen "feature_names" and "target" column names.
    """
    if parser not in PARSERS:
        raise InputError(f"unknown CSV parser {parser!r}; choose one of {', '.join(PARSERS)}")
    path = Path(path)
    layout = _layout(path, target, n_features, features, saved_target)
    if names is not None:
        names.update(feature_names=layout.feature_names, target=layout.target_name)
    lines, size = _count_lines(path)
    X = allocate((max(lines - 1, 0), len(layout.features)), dtype)
    fast = _fast_parser(parser) if layout.on_first_line else None
    start, raw = 0, None
    with loadprogress.bar(size, f"reading {path.name}") as progress:
        if fast is not None:
            try:
                rows, raw = fast(layout, X, progress, size / max(lines, 1))
                start = rows
                bad = chunks.first_nonfinite(X[:rows])
                empty = raw.dtype.kind in "US" and raw.size and not np.char.str_len(np.char.strip(raw)).all()
                if bad is not None or empty:
                    start = bad[0] if bad is not None else 0
                    raw = None
            except _Rejected as rejected:
                start, raw = rejected.at, None
        if raw is None:  # the exact reader raises the precise error, or reads what the parsers would not
            rows, raw = _exact(layout, X, start)
    if rows == 0:
        raise InputError(f"{path} has a header but no data rows")
    if rows < X.shape[0] and allocate is np.empty:
        X.resize((rows, X.shape[1]), refcheck=False)  # blank lines counted: give their room back
    elif rows < X.shape[0]:
        X = X[:rows]
    if layout.target is None:
        return X, None
    if raw.dtype.kind in "US":
        raw = np.char.strip(raw)
    return X, _labels(raw, layout)
