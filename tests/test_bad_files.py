"""Files are untrusted input: whatever a file holds, the CLI answers exit 2 with one line
(or succeeds), never "internal error", and changes no file it was not asked to write.

A fixed corpus covers the known kinds of damage; hypothesis then generates
malformed CSV, NPZ and model files and checks the same promises on each.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlp_backends import MLP, ModelFileError, cli

X = np.random.default_rng(0).normal(size=(20, 3))
Y = np.array([0, 1] * 10)


def _model_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        model = MLP(3, 4, 2, backend="numpy")
        model.extra = {"classes": ["a", "b"], "standardization": {"mean": [0.0] * 3, "scale": [1.0] * 3}}
        model.save(Path(d) / "m.npz")
        return (Path(d) / "m.npz").read_bytes()


GOOD_MODEL = _model_bytes()


def _with_meta(change) -> dict:
    """The good model's arrays and metadata, with `change(meta)` applied to the metadata."""
    import io

    with np.load(io.BytesIO(GOOD_MODEL)) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    meta = change(meta) or meta
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return arrays


def _set(path: str, value):
    """A change that sets meta[a][b]... (path "a.b") to value."""

    def change(meta):
        keys = path.split(".")
        target = meta
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return change


# Metadata of every wrong shape: each must be ModelFileError, never AttributeError or KeyError.
BAD_META = {
    "a list": lambda m: [1, 2],
    "a number": lambda m: 7,
    "no config": lambda m: {k: v for k, v in m.items() if k != "config"},
    "config a string": _set("config", "sizes=3,4,2"),
    "sizes a number": _set("config.sizes", 3),
    "sizes of strings": _set("config.sizes", ["3", "4", "2"]),
    "sizes with 0": _set("config.sizes", [3, 0, 2]),
    "sizes with a float": _set("config.sizes", [3, 4.5, 2]),
    "sizes of one layer": _set("config.sizes", [3]),
    "unknown activation": _set("config.activation", "swish"),
    "dtype a list": _set("config.dtype", ["float32"]),
    "negative l2": _set("config.l2", -1),
    "seed a string": _set("config.seed", "zero"),
    "format_version a string": _set("format_version", "1"),
    "format missing": lambda m: {k: v for k, v in m.items() if k != "format"},
    "extra a list": _set("extra", [1]),
    "classes too few": _set("extra.classes", ["a"]),
    "classes repeated": _set("extra.classes", ["a", "a"]),
    "classes of lists": _set("extra.classes", [[1], [2]]),
    "standardization a string": _set("extra.standardization", "yes"),
    "standardization mean short": _set("extra.standardization.mean", [0.0]),
    "standardization scale 0": _set("extra.standardization.scale", [1.0, 0.0, 1.0]),
    "standardization scale NaN": _set("extra.standardization.scale", [1.0, "nan", 1.0]),
    "feature names of numbers": _set("extra.feature_names", [1, 2, 3]),
}


@pytest.mark.parametrize("change", list(BAD_META.values()), ids=list(BAD_META))
def test_corrupt_metadata_of_any_shape_is_a_model_file_error(change, tmp_path, capsys):
    path = tmp_path / "model.npz"
    np.savez(path, **_with_meta(change))
    with pytest.raises(ModelFileError) as info:
        MLP.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    np.savez(tmp_path / "data.npz", X=X, y=Y)
    assert cli.main(["predict", str(path), str(tmp_path / "data.npz")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# -- the CLI corpus: malformed files and arguments, each exit 2 and one line ------------------
def _corpus(d: Path) -> dict[str, list[str]]:
    """name -> argv, with the files each needs written into d."""
    def write(name, content):
        p = d / name
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        return str(p)

    good_data = d / "good.npz"
    np.savez(good_data, X=X, y=Y)
    model = write("model.npz", GOOD_MODEL)
    train = ["train", "--backend", "numpy", "--epochs", "1", "--quiet", "--data"]
    return {
        "empty file as data": train + [write("empty.npz", b"")],
        "binary as CSV": train + [write("bin.csv", bytes(range(256)))],
        "CSV with only a header": train + [write("h.csv", "a,b\n")],
        "CSV with a NUL byte": train + [write("nul.csv", "a,b\n1,\x002\n3,4\n")],
        "CSV with 1e400": train + [write("big.csv", "a,b,label\n1,1e400,0\n2,3,1\n")],
        "npz with X 1-D": train + [write_npz(d / "flat.npz", X=np.arange(20.0), y=Y)],
        "npz with complex X": train + [write_npz(d / "c.npz", X=X * 1j, y=Y)],
        "npz with 2-D y": train + [write_npz(d / "y2.npz", X=X, y=np.eye(20, 2))],
        "npz with y strings and NaN X": train + [write_npz(d / "s.npz", X=X * np.nan, y=Y.astype(str))],
        "npz with no arrays": train + [write_npz(d / "none.npz")],
        "model is a CSV": ["predict", write("m.csv", "a,b\n1,2\n"), str(good_data)],
        "model truncated to its header": ["predict", write("t.npz", GOOD_MODEL[:40]), str(good_data)],
        "model with one byte changed": ["predict", write("flip.npz", _flip(GOOD_MODEL)), str(good_data)],
        "model is a folder": ["predict", str(d), str(good_data)],
        "data is a folder": ["predict", model, str(d) + "/"],
        "predict on a 1-column CSV": ["predict", model, write("one.csv", "a\n1\n")],
        "synthetic with a negative seed": train + ["synthetic:seed=-1"],
        "synthetic with n=0": train + ["synthetic:n=0"],
        "synthetic with an unknown key": train + ["synthetic:rows=5"],
        "hidden layer of 0": train + [str(good_data), "--hidden", "0"],
        "negative l2": train + [str(good_data), "--l2", "-1"],
        "NaN learning rate": train + [str(good_data), "--lr", "nan"],
        "infinite learning rate": train + [str(good_data), "--lr", "inf"],
        "checkpoint every 0": train + [str(good_data), "--checkpoint", str(d / "ck"), "--checkpoint-every", "0"],
        "resume from an empty folder": train + [str(good_data), "--resume", str(d)],
        "test size 1": train + [str(good_data), "--test-size", "1"],
        "validation split NaN": train + [str(good_data), "--validation-split", "nan"],
        "target that is not a column": train + [str(good_data), "--target", "label"],
        "save into a missing folder": train + [str(good_data), "--save", str(d / "no" / "m.npz")],
    }


def write_npz(path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def _flip(data: bytes) -> bytes:
    """The bytes with one byte in the middle of the first array's data changed."""
    i = len(data) // 3
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]


def _folder_hash(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def _run(argv, capsys) -> tuple[int, list[str]]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    return code, capsys.readouterr().err.strip().splitlines()


def test_every_malformed_input_in_the_corpus_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = _corpus(tmp_path)
    before = _folder_hash(tmp_path)
    failures = []
    for name, argv in corpus.items():
        code, lines = _run(argv, capsys)
        if code != 2 or len(lines) != 1 or ": error: " not in lines[0] or "internal error" in lines[0]:
            failures.append(f"{name}: exit {code}, {lines}")
    assert not failures, "\n".join(failures)
    assert _folder_hash(tmp_path) == before  # nothing written, nothing changed


# -- generated files: hypothesis ----------------------------------------------------------
CELLS = st.sampled_from(["0", "1", "2.5", "-3", "nan", "inf", "-inf", "1e400", "", " ", "x", "é", "\"", "1,2",
                         "0x10", "1_000", "True", "\x00"])
GENERATED = settings(max_examples=25, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _check_cli_on(files: dict[str, bytes], argv_for, capsys, outputs=()) -> int:
    """Write the files in a fresh folder, run the CLI, check the promises; return the exit code."""
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for name, content in files.items():
            (d / name).write_bytes(content)
        before = _folder_hash(d)
        code, lines = _run(argv_for(d), capsys)
        after = {k: v for k, v in _folder_hash(d).items() if k not in outputs}
    assert code in (0, 2), lines
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("mlp-backends: error: "), lines
    assert after == before
    return code


@GENERATED
@given(header=st.lists(st.sampled_from(["a", "b", "label", "", "a"]), min_size=1, max_size=4),
       rows=st.lists(st.lists(CELLS, min_size=0, max_size=5), min_size=0, max_size=8))
def test_generated_csv_files(header, rows, capsys):
    text = "\n".join(",".join(r) for r in [header, *rows]) + "\n"
    _check_cli_on({"d.csv": text.encode()}, lambda d: ["train", "--backend", "numpy", "--epochs", "1", "--quiet",
                                                        "--data", str(d / "d.csv")], capsys)


ARRAYS = st.builds(
    lambda shape, dtype, fill: np.full(shape, fill).astype(dtype) if dtype != "U3" else np.full(shape, "ab"),
    st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple),
    st.sampled_from(["float64", "float32", "int64", "uint8", "bool", "complex64", "U3"]),
    st.sampled_from([0.0, 1.0, np.nan, np.inf, 1e39, -2.0]))


@GENERATED
@given(arrays=st.dictionaries(st.sampled_from(["X", "y", "Z"]), ARRAYS, max_size=3),
       cut=st.one_of(st.none(), st.integers(0, 2000)))
def test_generated_npz_files(arrays, cut, capsys):
    import io

    buffer = io.BytesIO()
    with np.errstate(invalid="ignore", over="ignore"):
        np.savez(buffer, **arrays)
    content = buffer.getvalue()[:cut] if cut is not None else buffer.getvalue()
    _check_cli_on({"d.npz": content}, lambda d: ["train", "--backend", "numpy", "--epochs", "1", "--quiet",
                                                  "--data", str(d / "d.npz")], capsys)


SCALARS = st.none() | st.booleans() | st.integers(-5, 10**10) | st.floats(allow_nan=False) | st.text(max_size=5)
JSON = st.recursive(SCALARS,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)
KEYS = st.sampled_from(["format", "format_version", "config", "config.sizes", "config.activation", "config.dtype",
                        "config.seed", "config.l2", "config.init", "extra", "extra.classes",
                        "extra.standardization", "extra.standardization.mean", "extra.feature_names"])


@GENERATED
@given(changes=st.lists(st.tuples(KEYS, JSON), min_size=1, max_size=3),
       damage=st.one_of(st.none(), st.integers(0, len(GOOD_MODEL) - 1)))
def test_generated_model_files(changes, damage, capsys):
    import io

    def change(meta):
        for key, value in changes:
            try:
                _set(key, value)(meta)
            except (TypeError, KeyError, IndexError):
                pass  # a parent was already replaced by something without that key

    buffer = io.BytesIO()
    np.savez(buffer, **_with_meta(change))
    content = buffer.getvalue()
    if damage is not None:
        content = _flip(content[:damage] + content[damage:])
    data = io.BytesIO()
    np.savez(data, X=X, y=Y)
    _check_cli_on({"m.npz": content, "d.npz": data.getvalue()},
                  lambda d: ["evaluate", str(d / "m.npz"), str(d / "d.npz")], capsys)
