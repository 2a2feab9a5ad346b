"""Every kind of bad input, at the API and at the command line: one table.

Each row names a case, what the API call does with it, what the CLI is given,
and a fragment of the one-line message both must say. The API raises one of
our own ValueError/TypeError subclasses before any work starts; the CLI exits
2 with that one line and no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from mlp_backends import MLP, BackendError, InputError, InputTypeError, ModelFileError, UsageError, cli, data, list_backends


@dataclass
class Case:
    api: Callable  # called with the files fixture; must raise
    error: type
    cli: Callable  # files -> argv
    message: str  # in the API's message and the CLI's line (CLI may say it with its option name)
    cli_message: str | None = None


def _fit(X, y, **kwargs):
    X = np.asarray(X, dtype=float) if not isinstance(X, np.ndarray) else X
    width = X.shape[1] if X.ndim == 2 else 3
    return MLP(width, 4, 2, backend="numpy").fit(X, y, epochs=1, **kwargs)


def _train(path, *extra):
    return ["train", "--backend", "numpy", "--epochs", "1", "--quiet", "--data", str(path), *extra]


TWO_CLASS = np.array([0, 1] * 10)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    f = {}

    def npz(name, **arrays):
        f[name] = d / f"{name}.npz"
        np.savez(f[name], **arrays)

    npz("nan", X=np.where(np.arange(60).reshape(20, 3) == 7, np.nan, X), y=TWO_CLASS)
    npz("inf", X=np.where(np.arange(60).reshape(20, 3) == 7, np.inf, X), y=TWO_CLASS)
    npz("flat", X=X.ravel()[:20], y=TWO_CLASS)
    npz("short_y", X=X, y=TWO_CLASS[:-1])
    npz("one_class", X=X, y=np.zeros(20, dtype=int))
    npz("strings", X=np.array([["a", "b", "c"]] * 20), y=TWO_CLASS)
    npz("good", X=X, y=TWO_CLASS)
    npz("wide", X=rng.normal(size=(5, 4)), y=np.array([0, 1, 0, 1, 0]))
    for name, text in {
        "empty": "a,b,c,label\n",
        "word_cell": "a,b,c,label\n1,2,3,x\n4,five,6,y\n",
        "ragged": "a,b,c,label\n1,2,3,x\n4,5,y\n",
    }.items():
        f[name] = d / f"{name}.csv"
        f[name].write_text(text)
    # An IDX images file whose header promises 10 images of 4x4 but holds 9.
    f["idx"] = d / "bad-images-idx3-ubyte"
    f["idx"].write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + (4).to_bytes(4, "big")
                         + (4).to_bytes(4, "big") + bytes(9 * 16))
    (d / "bad-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(10))
    # Model files: a good one, then the four broken kinds.
    model = MLP(3, 4, 2, backend="numpy")
    model.fit(X, TWO_CLASS, epochs=1)
    f["model"] = d / "model.npz"
    model.save(f["model"])
    good = f["model"].read_bytes()
    f["truncated"] = d / "truncated.npz"
    f["truncated"].write_bytes(good[: len(good) // 2])
    f["corrupt"] = d / "corrupt.npz"
    f["corrupt"].write_bytes(b"this is not a model file at all")
    f["foreign"] = f["good"]  # an .npz of someone else's: arrays, no metadata of ours
    with np.load(f["model"]) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    meta["format_version"] = 99
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    f["newer"] = d / "newer.npz"
    np.savez(f["newer"], **arrays)
    return f


CASES = {
    "nan in X": Case(lambda f: _fit(np.full((20, 3), np.nan), TWO_CLASS), InputError,
                     lambda f: _train(f["nan"]), "NaN or infinit"),
    "infinity in X": Case(lambda f: _fit(np.full((20, 3), np.inf), TWO_CLASS), InputError,
                          lambda f: _train(f["inf"]), "NaN or infinit"),
    "X not 2-D": Case(lambda f: _fit(np.zeros(20), TWO_CLASS), InputError,
                      lambda f: _train(f["flat"]), "(n_samples, n_features)"),
    "y length differs": Case(lambda f: _fit(np.zeros((20, 3)), TWO_CLASS[:-1]), InputError,
                             lambda f: _train(f["short_y"]), "rows but"),
    "single class": Case(lambda f: _fit(np.ones((20, 3)), np.zeros(20, int)), InputError,
                         lambda f: _train(f["one_class"]), "one class"),
    "empty data": Case(lambda f: _fit(np.zeros((0, 3)), np.zeros(0, int)), InputError,
                       lambda f: _train(f["empty"]), "no rows", "no data rows"),
    "CSV word in a feature cell": Case(lambda f: data.read(str(f["word_cell"])), InputError,
                                       lambda f: _train(f["word_cell"]), "'five' is not a finite number"),
    "CSV ragged rows": Case(lambda f: data.read(str(f["ragged"])), InputError,
                            lambda f: _train(f["ragged"]), "line 3 has 3 fields but the header has 4"),
    "IDX header does not match size": Case(lambda f: data.read(str(f["idx"])), InputError,
                                           lambda f: _train(f["idx"]), "is truncated or padded"),
    "wrong feature count at predict": Case(
        lambda f: MLP.load(f["model"]).predict(np.zeros((5, 4))), InputError,
        lambda f: ["predict", str(f["model"]), str(f["wide"])], "4 features", "has 4 features"),
    "string dtype": Case(lambda f: _fit(np.array([["a", "b", "c"]] * 20), TWO_CLASS), InputTypeError,
                         lambda f: _train(f["strings"]), "numeric"),
    "object dtype": Case(lambda f: MLP(2, 2, 2, backend="numpy").predict(np.array([[1, None]], dtype=object)),
                         InputTypeError, lambda f: _train(f["strings"]), "numeric"),
    "model file truncated": Case(lambda f: MLP.load(f["truncated"]), ModelFileError,
                                 lambda f: ["predict", str(f["truncated"]), str(f["good"])], "truncated or corrupt"),
    "model file corrupt": Case(lambda f: MLP.load(f["corrupt"]), ModelFileError,
                               lambda f: ["evaluate", str(f["corrupt"]), str(f["good"])], "truncated or corrupt"),
    "model file foreign": Case(lambda f: MLP.load(f["foreign"]), ModelFileError,
                               lambda f: ["predict", str(f["foreign"]), str(f["good"])], "without mlp_backends metadata"),
    "model file newer format": Case(lambda f: MLP.load(f["newer"]), ModelFileError,
                                    lambda f: ["predict", str(f["newer"]), str(f["good"])], "upgrade mlp-backends"),
    "unknown backend": Case(lambda f: MLP(3, 4, 2, backend="nosuch"), BackendError,
                            lambda f: ["train", "--backend", "nosuch"], "unknown backend 'nosuch'"),
    "batch size 0": Case(lambda f: _fit(np.ones((20, 3)), TWO_CLASS, batch_size=0), InputError,
                         lambda f: _train(f["good"], "--batch-size", "0"), "batch_size must be"),
    "negative batch size": Case(lambda f: _fit(np.ones((20, 3)), TWO_CLASS, batch_size=-4), InputError,
                                lambda f: _train(f["good"], "--batch-size", "-4"), "batch_size must be"),
    "epochs below 0": Case(lambda f: MLP(3, 4, 2, backend="numpy").fit(np.ones((20, 3)), TWO_CLASS, epochs=-1),
                           InputError,
                           lambda f: _train(f["good"]) + ["--epochs", "-1"], "epochs", "--epochs must be at least 1"),
    "learning rate 0": Case(lambda f: _fit(np.ones((20, 3)), TWO_CLASS, learning_rate=0.0), InputError,
                            lambda f: _train(f["good"], "--lr", "0"), "learning_rate must be a number above 0"),
    "negative learning rate": Case(lambda f: _fit(np.ones((20, 3)), TWO_CLASS, learning_rate=-0.1), InputError,
                                   lambda f: _train(f["good"], "--lr", "-0.1"), "learning_rate must be a number above 0"),
    "hidden size 0": Case(lambda f: MLP(3, 0, 2), InputError,
                          lambda f: _train(f["good"], "--hidden", "0"), "hidden_size must be a whole number"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_api_raises_our_error_with_the_message(case, files):
    with pytest.raises(case.error) as info:
        case.api(files)
    assert isinstance(info.value, UsageError) and isinstance(info.value, (ValueError, TypeError))
    assert case.message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_cli_exits_2_with_one_line(case, files, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = cli.main(case.cli(files))
    out = capsys.readouterr()
    assert code == 2, out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlp-backends: error: ")
    assert (case.cli_message or case.message) in lines[0]
    assert "Traceback" not in out.err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_an_unusable_backend_named_is_refused_at_api_and_cli(capsys):
    unusable = [i for i in list_backends() if not i.usable]
    if not unusable:
        pytest.skip("every registered backend is usable here")
    name = unusable[0].name
    with pytest.raises(BackendError, match=f"'{name}' is not usable here"):
        MLP(3, 4, 2, backend=name)
    assert cli.main(["train", "--backend", name]) == 2
    assert f"'{name}' is not usable here" in capsys.readouterr().err


def test_the_real_process_prints_no_traceback(files):
    """One row through a real subprocess: what a person sees in a terminal."""
    out = subprocess.run([sys.executable, "-m", "mlp_backends.cli", *CASES["CSV ragged rows"].cli(files)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
