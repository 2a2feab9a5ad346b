"""Every input is checked here, once: parameters, features, labels, sizes.

Rules are declared once (`PARAMETERS`, a table of constraints in the spirit of
scikit-learn's `_parameter_constraints`) and checked by one function each
(`check_param`, `features`, `targets`, `class_labels`, `check_memory`), so a
reader finds every rule the library enforces in this module.

Errors are the documented `UsageError` subclasses: `InputTypeError` (a
TypeError) when a value has the wrong kind, `InputError` (a ValueError) when it
has the right kind and a wrong value, `DeviceMemoryError` when a request cannot
fit. Each message is one line: the name of what is wrong, what is allowed, and
the value that was given (with its row and column for data).

Features are checked in the dtype the model computes in, after the cast: a
float64 value of 1e39 is finite, its float32 cast is not. `check_finite` works
block by block on any NumPy array, memory-mapped ones included, so it never
needs a second full-size copy of the data.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import chunks, nn, optim
from .errors import DeviceMemoryError, InputError, InputTypeError, one_line

DTYPES = ("float32", "float64")


# -- parameter rules ------------------------------------------------------------------
@dataclass(frozen=True)
class Whole:
    """A whole number (Python or NumPy integer, never a bool) of at least `low`."""

    low: int = 0
    none: bool = False  # None is allowed too

    def describe(self) -> str:
        """The rule in words, as messages quote it ("a whole number of at least 1")."""
        text = f"a whole number of at least {self.low}" if self.low else "a whole number of 0 or more"
        return text + (" or None" if self.none else "")

    def check(self, name: str, value):
        """`value` as a Python int, or an InputTypeError / InputError naming `name` and the rule."""
        if value is None and self.none:
            return None
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise InputTypeError(f"{name} must be {self.describe()}, got {_shown(value)}")
        if value < self.low:
            raise InputError(f"{name} must be {self.describe()}, got {int(value)}")
        return int(value)


@dataclass(frozen=True)
class Number:
    """A finite real number (Python or NumPy, never a bool or a string) in a range.

    `low`/`high` None means unbounded; `closed` says which ends are allowed."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right", "neither"

    def describe(self) -> str:
        """The rule in words, as messages quote it ("a number above 0", "a fraction in [0, 1)")."""
        lo_in, hi_in = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is None and self.high is None:
            return "a finite number"
        if self.high is None:
            return "a number " + (f"of {self.low:g} or more" if lo_in else f"above {self.low:g}")
        if self.low is None:
            return "a number " + (f"of {self.high:g} or less" if hi_in else f"below {self.high:g}")
        kind = "a fraction" if (self.low, self.high) == (0, 1) else "a number"
        return f"{kind} in {'[' if lo_in else '('}{self.low:g}, {self.high:g}{']' if hi_in else ')'}"

    def check(self, name: str, value):
        """`value` as a Python float, or an InputTypeError / InputError naming `name` and the rule."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise InputTypeError(f"{name} must be {self.describe()}, got {_shown(value)}")
        v = float(value)
        lo_in, hi_in = self.closed in ("both", "left"), self.closed in ("both", "right")
        ok = math.isfinite(v)
        if ok and self.low is not None:
            ok = v >= self.low if lo_in else v > self.low
        if ok and self.high is not None:
            ok = v <= self.high if hi_in else v < self.high
        if not ok:  # a NumPy scalar is shown as the number it holds
            shown = value.item() if isinstance(value, np.generic) else value
            raise InputError(f"{name} must be {self.describe()}, got {shown!r}")
        return v


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of strings."""

    choices: tuple

    def check(self, name: str, value):
        """`value` itself, or an InputError naming `name` and every choice."""
        if not isinstance(value, str) or value not in self.choices:
            raise InputError(f"unknown {name} {_shown(value)}; {name} must be one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True)
class Flag:
    """True or False (NumPy's bool too)."""

    def check(self, name: str, value):
        """`value` as a Python bool, or an InputTypeError naming `name`."""
        if not isinstance(value, (bool, np.bool_)):
            raise InputTypeError(f"{name} must be True or False, got {_shown(value)}")
        return bool(value)


def _shown(value) -> str:
    """A value in a message, with its type when the type is the problem."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text if isinstance(value, (int, float, np.number, str)) else f"{text} ({type(value).__name__})"


# The one table of parameter rules (the MLP's, fit's, the split's, the callbacks').
PARAMETERS: dict[str, Any] = {
    "input_size": Whole(1),
    "hidden_size": Whole(1),
    "output_size": Whole(1),
    "activation": OneOf(nn.ACTIVATIONS),
    "dtype": OneOf(DTYPES),
    "seed": Whole(0, none=True),
    "init": OneOf(("auto", "glorot", "he", "standard_normal")),
    "l2": Number(0, None, "left"),
    "epochs": Whole(0),
    "batch_size": Whole(1, none=True),
    "learning_rate": Number(0, None, "neither"),
    "optimizer": OneOf(optim.OPTIMIZERS),
    "momentum": Number(0, 1, "left"),
    "nesterov": Flag(),
    "shuffle": Flag(),
    "resume": Flag(),
    "on_divergence": OneOf(("stop", "raise")),
    "checkpoint_every": Whole(1),
    "patience": Whole(1),
    "min_delta": Number(0, None, "left"),
    "monitor": OneOf(("val_loss", "loss", "val_accuracy", "accuracy")),
    "test_size": Number(0, 1, "neither"),
    "validation_size": Number(0, 1, "left"),
}


def check_param(name: str, value, rule=None):
    """`value` checked against the rule for `name` (or `rule`), as a plain Python value."""
    return (rule or PARAMETERS[name]).check(name, value)


def check_params(**values) -> dict:
    """Each keyword checked against `PARAMETERS`; the plain values, in a dict."""
    return {name: check_param(name, value) for name, value in values.items()}


# -- features -----------------------------------------------------------------------
def _is_sparse(X) -> bool:
    return type(X).__module__.startswith("scipy.sparse")


def _is_dataframe(X) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "to_numpy")


def feature_names(X) -> list[str] | None:
    """A DataFrame's column names as strings (None for arrays)."""
    return [str(c) for c in X.columns] if _is_dataframe(X) else None


def to_host(X, name: str = "X") -> np.ndarray:
    """Any array-like -> a numeric host NumPy array (no copy where none is needed), or a
    one-line error naming what kind of input it is and what to pass instead."""
    if _is_sparse(X):
        n, d = X.shape
        raise InputTypeError(
            f"{name} is a sparse matrix ({n}x{d}, {X.nnz} stored values); the MLP takes dense arrays: "
            f"pass {name}.toarray() ({n * d * 8 / 2**20:.1f} MB as float64) if that fits in memory")
    if _is_dataframe(X):
        bad = [f"{c!r} ({t})" for c, t in zip(X.columns, X.dtypes) if getattr(t, "kind", "O") not in "biuf"]
        if bad:
            raise InputTypeError(f"{name} has non-numeric columns {', '.join(bad[:5])}; encode them as numbers "
                                 "(e.g. pandas.get_dummies) or drop them")
        try:  # nullable integer columns hold pandas.NA: make them NaN, which the finiteness check names
            X = X.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            X = X.to_numpy()
    try:
        host = np.asarray(X)
    except Exception as exc:  # noqa: BLE001 - e.g. a tensor on another device, ragged lists
        raise InputTypeError(f"cannot read {name} as an array ({exc}); pass a NumPy array") from exc
    if host.dtype.kind == "c":
        raise InputTypeError(f"{name} holds complex numbers; the MLP takes real features: "
                             f"pass {name}.real, abs({name}), or both as separate columns")
    if host.dtype == object or host.dtype.kind not in "biuf":
        raise InputTypeError(f"{name} must be numeric, got dtype {host.dtype}; convert it with {name}.astype(float)")
    return host


def features(X, dtype: str, *, n_features: int | None = None, name: str = "X") -> np.ndarray:
    """X checked and cast: a 2-D host array of `dtype` whose every value is finite in `dtype`.

    n_features: the width the model takes, if it is fixed. No copy when X is
    already a NumPy array of that dtype.
    """
    host = to_host(X, name)
    check_shape(host.shape, n_features, name)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is found and named just below
        cast = host.astype(dtype, copy=False)
    if not chunks.all_finite(cast):  # a block at a time: no boolean array of X's size
        check_finite(host, dtype, name)
    return cast


def check_shape(shape, n_features: int | None, name: str = "X") -> None:
    """2-D (n_samples, n_features), with the model's width when it is given."""
    if len(shape) != 2:
        raise InputError(
            f"{name} must be 2-dimensional (n_samples, n_features), got shape {tuple(shape)}; "
            f"reshape it, e.g. {name}.reshape(1, -1) for a single sample")
    if n_features is not None and shape[1] != n_features:
        raise InputError(
            f"{name} has {shape[1]} features but the model takes {n_features}; "
            f"pass data with {n_features} columns (the ones it was trained on)")


def check_finite(X, dtype: str, name: str = "X", rows_per_block: int | None = None) -> None:
    """Raise unless every value of X (2-D) is finite once cast to `dtype`.

    Reads X block by block (a memory-mapped array stays on disk but for one
    block), so the check never holds a full cast copy. The message names the
    first bad row and column, and says when the cast, not the data, made the
    value infinite.
    """
    X2 = X.reshape(X.shape[0], -1) if X.ndim != 2 else X
    if rows_per_block is None:  # blocks of chunks.CHUNK_BYTES as float64, whatever the width
        rows_per_block = max(1, chunks.CHUNK_BYTES // (8 * max(1, X2.shape[1])))
    for lo in range(0, X2.shape[0], rows_per_block):
        block = np.asarray(X2[lo:lo + rows_per_block])
        with np.errstate(over="ignore", invalid="ignore"):
            bad = ~np.isfinite(block.astype(dtype, copy=False))
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raw = block[i, j].item()
            where = f"row {lo + i}, column {j}"
            if math.isfinite(raw):
                limit = float(np.finfo(dtype).max)
                raise InputError(
                    f"{name} holds {raw:g} at {where}, beyond {dtype}'s largest value ({limit:.3g}); "
                    "compute in float64 (dtype='float64', --dtype float64) or rescale the data")
            raise InputError(f"{name} contains NaN or infinity ({raw} at {where}); remove or impute those values first")


def constant_columns(std: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Columns whose spread is zero, or rounding noise of their mean: dividing by it would
    blow them up, so the standardization leaves them unscaled (a scale of 1)."""
    return std <= 16 * np.finfo(np.float64).eps * np.abs(mean)


def safe_scale(std: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Standard deviations as a scale that cannot divide by zero, or a clear error."""
    bad = ~(np.isfinite(std) & np.isfinite(mean))
    if bad.any():
        j = int(np.argmax(bad))
        raise InputError(f"feature column {j} is too large to standardize (mean {mean[j]:g}, spread {std[j]:g}); "
                         "rescale the data")
    return np.where(constant_columns(std, mean), 1.0, std)


# -- labels -------------------------------------------------------------------------
def targets(y, n: int, k: int, *, training: bool = False) -> np.ndarray:
    """Host labels (n,) whole numbers in [0, k) or one-hot rows (n, k), checked.

    One-hot rows (soft labels too) must be finite, 0 or more, and sum to 1.
    training: at least two classes must be present.
    """
    try:
        host = np.asarray(y)
    except Exception as exc:  # noqa: BLE001
        raise InputTypeError(f"cannot read y as an array ({exc}); pass a NumPy array of labels") from exc
    if host.dtype == object or host.dtype.kind not in "biuf":
        raise InputTypeError(f"y must be numeric labels or one-hot rows, got dtype {host.dtype}")
    if host.ndim == 0 or host.shape[0] != n:
        rows = host.shape[0] if host.ndim else "no"
        raise InputError(f"y has {rows} rows but X has {n}; pass one label per sample")
    if host.ndim == 2:
        if host.shape[1] != k:
            raise InputError(f"one-hot y must have {k} columns (output_size), got {host.shape[1]}")
        _check_one_hot(host)
    elif host.ndim == 1:
        check_labels(host, k)
    else:
        raise InputError(f"y must be 1-D labels or 2-D one-hot, got {host.ndim} dimensions")
    if training and host.size:
        labels = host.argmax(axis=1) if host.ndim == 2 else host
        if np.unique(labels).size < 2:
            raise InputError(f"y holds one class ({labels[0].item()!r}); a classifier needs at least two")
    return host


def check_labels(host: np.ndarray, k: int) -> None:
    """Integer labels (host, 1-D) must be finite whole numbers in [0, k); the first
    bad one is named with its row."""
    if not host.size:
        return
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(host) | (host < 0) | (host >= k) | (host != np.round(host))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"labels must be whole numbers in [0, {k - 1}] for output_size={k}; "
                         f"row {i} holds {host[i].item()!r}")


def _check_one_hot(host: np.ndarray) -> None:
    rows = host.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):
        bad_cell = ~np.isfinite(rows) | (rows < 0)
    if bad_cell.any():
        i, j = (int(v) for v in np.argwhere(bad_cell)[0])
        raise InputError(f"one-hot y must hold finite values of 0 or more; "
                         f"row {i}, column {j} holds {rows[i, j].item()!r}")
    sums = rows.sum(axis=1)
    off = np.abs(sums - 1) > 1e-5 * max(1, rows.shape[1] ** 0.5)
    if off.any():
        i = int(np.argmax(off))
        raise InputError("one-hot y rows must sum to 1 (one class each, or probabilities); "
                         f"row {i} sums to {sums[i]:g}")


def class_labels(y, where: str = "y", first_row: int = 0, row: str = "row") -> np.ndarray:
    """Labels as stored (numbers or strings) that may become classes: 1-D, and only finite
    numbers. Messages call the first label `row` `first_row` (a CSV's "line 2")."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise InputError(f"{where} must be 1-D labels, one per sample, got shape {y.shape}")
    if y.dtype.kind == "c":
        raise InputTypeError(f"{where} holds complex numbers; labels must be whole numbers or names")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{where} {row} {i + first_row} holds the label {y[i].item()!r}; only finite numbers "
                             "or names can be classes: drop or fill those rows")
    elif y.dtype == object:
        kinds = {type(v).__name__ for v in y.tolist()}
        for i, v in enumerate(y.tolist()):
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                raise InputError(f"{where} {row} {i + first_row} holds the label {v!r}; only finite numbers "
                                 "or names can be classes: drop or fill those rows")
        if len(kinds) > 1:
            raise InputTypeError(f"{where} mixes label types ({', '.join(sorted(kinds))}); "
                                 "use all numbers or all strings")
    elif y.dtype.kind not in "biuUS":
        raise InputTypeError(f"{where} has dtype {y.dtype}; labels must be whole numbers or names")
    return y


# -- memory -------------------------------------------------------------------------
def available_memory() -> int | None:
    """Bytes of host memory available now (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def size_text(nbytes: float) -> str:
    """A byte count for people: "512 bytes", "1.5 MB", "2.0 GB"."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if nbytes < 1024 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError  # unreachable


def check_memory(nbytes: float, what: str, advice: str) -> None:
    """Refuse, before allocating, a request for more host memory than is available."""
    free = available_memory()
    if free is not None and nbytes > free:
        raise DeviceMemoryError(f"{what} needs {size_text(nbytes)} but this machine has {size_text(free)} "
                                f"of memory available; {advice}")


def parameter_count(sizes) -> int:
    """Weights and biases of a network with these layer sizes."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# -- files: untrusted until their headers are read ------------------------------------------
EXPANSION = 100  # compressed data may inflate at most this many times (real data: 2-10x)...
EXPANSION_FLOOR = 64 << 20  # ...or to this size, whichever is larger


def inflation_limit(stored_bytes: int) -> int:
    """The most bytes a compressed file of `stored_bytes` may inflate to before it is refused."""
    return max(EXPANSION_FLOOR, EXPANSION * stored_bytes)


def read_bounded(f, limit: int, what: str, error=InputError) -> bytes:
    """All of a (decompressing) stream, refused once it passes `limit` bytes."""
    chunks, total = [], 0
    while chunk := f.read(1 << 20):
        total += len(chunk)
        if total > limit:
            raise error(f"{what} inflates to more than {size_text(limit)}; refused as a decompression bomb "
                        "(or data far larger than its file suggests)")
        chunks.append(chunk)
    return b"".join(chunks)


def npz_contents(path, error=InputError, what: str = "file") -> dict[str, tuple[tuple, np.dtype]]:
    """name -> (shape, dtype) of every array in an .npz, from the headers alone.

    Nothing is allocated from the file here: each member's size, as stored,
    as inflated and as its header promises, must agree, Python objects
    (pickles) are refused, and the total must fit in memory. Only then may
    np.load read it.
    """
    import zipfile

    path = str(path)
    unreadable = f"{path} is not a readable {what} (truncated or corrupt"
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise error(f"{unreadable}: {exc})") from exc
    with zf:
        infos = zf.infolist()
        stored = os.path.getsize(path)
        total = sum(i.file_size for i in infos)
        if total > inflation_limit(stored):
            raise error(f"{path} ({size_text(stored)}) would inflate to {size_text(total)}; refused as a "
                        f"decompression bomb (limit {size_text(inflation_limit(stored))})")
        check_memory(total, f"{path}", "use a machine with more memory")
        contents = {}
        for info in infos:
            name = info.filename.removesuffix(".npy")
            try:
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = reader(f)
                    header = f.tell()
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as exc:
                raise error(f"{unreadable}: member {name!r}: {one_line(exc)})") from exc
            if dtype.hasobject:
                raise error(f"{path}: array {name!r} holds Python objects, which are never loaded (they could run "
                            "code); save numeric arrays")
            if math.prod(shape) * dtype.itemsize != info.file_size - header:
                raise error(f"{unreadable}: array {name!r} of shape {shape} needs "
                            f"{math.prod(shape) * dtype.itemsize} bytes, the file holds {info.file_size - header})")
            contents[name] = (tuple(shape), dtype)
    return contents


# -- what model and checkpoint files say about themselves -----------------------------------
def check_config(cfg) -> dict:
    """A saved network description (`MLP.config()`), every field checked by the table."""
    if not isinstance(cfg, dict):
        raise InputTypeError(f"config must be a mapping, got {_shown(cfg)}")
    sizes = cfg.get("sizes")
    if not isinstance(sizes, list) or len(sizes) < 2:
        raise InputError(f"sizes must be a list of 2 or more layer widths, got {_shown(sizes)}")
    out = {"sizes": [check_param(f"sizes[{i}]", s, Whole(1)) for i, s in enumerate(sizes)]}
    out.update(check_params(activation=cfg.get("activation"), dtype=cfg.get("dtype"), seed=cfg.get("seed"),
                            init=cfg.get("init", "auto"), l2=cfg.get("l2", 0.0)))
    return out


def _finite_numbers(name: str, values, n: int) -> list[float]:
    if not isinstance(values, list) or len(values) != n:
        raise InputError(f"{name} must be a list of {n} numbers, got {_shown(values)}")
    return [check_param(f"{name}[{i}]", v, Number()) for i, v in enumerate(values)]


def check_extra(extra, sizes) -> dict:
    """What a model file carries besides weights: class labels, the standardization, the
    feature and label column names (all optional; each must fit the network's sizes)."""
    if not isinstance(extra, dict):
        raise InputTypeError(f"extra must be a mapping, got {_shown(extra)}")
    d, k = sizes[0], sizes[-1]
    classes = extra.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or len(classes) != k:
            raise InputError(f"classes must be a list of {k} labels (one per output), got {_shown(classes)}")
        for i, c in enumerate(classes):
            bad_float = isinstance(c, float) and not math.isfinite(c)
            if isinstance(c, bool) or not isinstance(c, (str, int, float)) or bad_float:
                raise InputError(f"classes[{i}] must be a finite number or a name, got {_shown(c)}")
        if len(set(classes)) != k:
            raise InputError("classes must be distinct")
    scaling = extra.get("standardization")
    if scaling is not None:
        if not isinstance(scaling, dict):
            raise InputTypeError(f"standardization must be a mapping, got {_shown(scaling)}")
        _finite_numbers("standardization mean", scaling.get("mean"), d)
        scale = _finite_numbers("standardization scale", scaling.get("scale"), d)
        if min(scale) <= 0:
            raise InputError("standardization scale must be above 0 in every column")
    names = extra.get("feature_names")
    if names is not None and (not isinstance(names, list) or len(names) != d
                              or not all(isinstance(c, str) for c in names)):
        raise InputError(f"feature_names must be a list of {d} column names, got {_shown(names)}")
    target = extra.get("target")
    if target is not None and not isinstance(target, str):
        raise InputTypeError(f"target must be a column name, got {_shown(target)}")
    if not isinstance(extra.get("training", {}), dict):
        raise InputTypeError(f"training must be a mapping, got {_shown(extra['training'])}")
    return extra


def layer_shapes(sizes) -> list[tuple]:
    """[(fan_in, fan_out), (fan_out,), ...]: the parameter arrays of a network with these sizes."""
    return [s for a, b in zip(sizes[:-1], sizes[1:]) for s in ((a, b), (b,))]


def check_arrays(contents: dict, wanted: dict[str, tuple]) -> None:
    """Each wanted array is present with its shape and a real floating dtype."""
    for name, shape in wanted.items():
        if name not in contents:
            raise InputError(f"array {name!r} is missing")
        have, dtype = contents[name]
        if have != tuple(shape) or dtype.kind != "f":
            raise InputError(f"array {name!r} is {dtype} {have}, expected a float array of shape {tuple(shape)}")


def jsonable(obj, nonfinite=str):
    """obj with every NaN or infinite float replaced by nonfinite(value) (str gives "nan",
    "inf", which float() reads back; None gives JSON null): strict JSON, always."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return nonfinite(obj) if nonfinite is not None else None
    if isinstance(obj, dict):
        return {k: jsonable(v, nonfinite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, nonfinite) for v in obj]
    if isinstance(obj, np.generic):
        return jsonable(obj.item(), nonfinite)
    return obj
