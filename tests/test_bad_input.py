"""Every kind of bad input, at the API and at the command line: one table.

Each row names a case, what the API call does with it, what the CLI is given,
and a fragment of the one-line message both must say. The API raises one of
our own ValueError/TypeError subclasses before any work starts; the CLI exits
2 with that one line and no traceback.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from mlp_backends import (
    MLP,
    BackendError,
    DeviceMemoryError,
    InputError,
    InputTypeError,
    ModelFileError,
    UsageError,
    cli,
    data,
    list_backends,
)


@dataclass
class Case:
    api: Callable | None  # called with the files fixture; must raise (None: a CLI-only row)
    error: type
    cli: Callable | None  # files -> argv (None: an API-only row)
    message: str  # in the API's message and the CLI's line (CLI may say it with its option name)
    cli_message: str | None = None


def _fit(X, y, **kwargs):
    X = np.asarray(X, dtype=float) if isinstance(X, list) else X
    width = X.shape[1] if len(X.shape) == 2 else 3
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
    npz("nan_label", X=X, y=np.where(np.arange(20) == 5, np.nan, TWO_CLASS))
    # Column 1 holds +-1e300: finite, but its spread overflows (a constant 1e300 would be centred).
    cells = np.arange(60).reshape(20, 3)
    npz("huge", X=np.where(cells % 3 == 1, np.where(cells % 2 == 0, 1e300, -1e300), X), y=TWO_CLASS)
    rows = "".join(f"{a:.3f},{b:.3f},{c:.3f},{t}\n" for (a, b, c), t in zip(X, TWO_CLASS))
    for name, text in {
        "empty": "a,b,c,label\n",
        "word_cell": "a,b,c,label\n1,2,3,x\n4,five,6,y\n",
        "ragged": "a,b,c,label\n1,2,3,x\n4,5,y\n",
        "nan_label_csv": "a,b,c,label\n" + rows + "1,2,3,nan\n",
        "inf_label_csv": "a,b,c,label\n" + rows.replace(",1\n", ",inf\n", 1),
    }.items():
        f[name] = d / f"{name.removesuffix('_csv')}.csv"
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
    # A model file whose metadata claims a layer of a billion units over its small arrays.
    meta["format_version"], meta["config"]["sizes"] = 1, [3, 10**9, 2]
    f["huge_layer"] = d / "huge_layer.npz"
    np.savez(f["huge_layer"], **{**arrays, "__meta__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)})
    meta["config"]["sizes"] = [3, 4, 2]
    f["nan_weights"] = d / "nan_weights.npz"
    np.savez(f["nan_weights"], **{**arrays, "W1": np.full((3, 4), np.nan),
                                  "__meta__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)})
    f["pickled"] = d / "pickled.npz"
    np.savez(f["pickled"], X=np.array([[1, None, 3]] * 20, dtype=object), y=TWO_CLASS)  # savez pickles objects
    f["bomb"] = d / "bomb.npz"
    _zip_bomb(f["bomb"])
    f["gz_bomb"] = d / "bomb-images-idx3-ubyte.gz"
    with gzip.open(f["gz_bomb"], "wb", compresslevel=1) as g:  # 70 MB of zeros in about 300 KB
        g.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 70 * 2**10 * 4, 16, 16))
        for _ in range(70):
            g.write(bytes(2**20))
    return f


def _zip_bomb(path, megabytes: int = 70) -> None:
    """An .npz of about 100 KB whose X inflates to `megabytes` MB of zeros, written in chunks."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (megabytes * 2**17 // 10, 10)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("X.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, header)
            for _ in range(megabytes):
                f.write(bytes(2**20))
        with z.open("y.npy", "w") as f:
            np.lib.format.write_array(f, TWO_CLASS)


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
                               lambda f: ["predict", str(f["foreign"]), str(f["good"])],
                               "without mlp_backends metadata"),
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
                                   lambda f: _train(f["good"], "--lr", "-0.1"),
                                   "learning_rate must be a number above 0"),
    "hidden size 0": Case(lambda f: MLP(3, 0, 2), InputError,
                          lambda f: _train(f["good"], "--hidden", "0"), "hidden_size must be a whole number"),
    # -- labels: only finite values become classes ------------------------------------
    "NaN label": Case(lambda f: _fit(np.ones((20, 3)), np.where(np.arange(20) == 5, np.nan, TWO_CLASS)),
                      InputError, None, "row 5 holds nan"),
    "NaN label in a file": Case(lambda f: data.read(str(f["nan_label"])), InputError,
                                lambda f: _train(f["nan_label"]), "y row 5 holds the label nan"),
    "NaN label in a CSV": Case(lambda f: data.read(str(f["nan_label_csv"])), InputError,
                               lambda f: _train(f["nan_label_csv"]), "line 22 holds the label nan"),
    "infinite label in a CSV": Case(lambda f: data.read(str(f["inf_label_csv"])), InputError,
                                    lambda f: _train(f["inf_label_csv"]), "line 3 holds the label inf"),
    "label out of range": Case(lambda f: MLP(3, 4, 2, backend="numpy").score(np.ones((3, 3)), [0, 1, 5]),
                               InputError, None, "row 2 holds 5"),
    "fractional label": Case(lambda f: MLP(3, 4, 2, backend="numpy").score(np.ones((3, 3)), [0, 1.5, 1]),
                             InputError, None, "row 1 holds 1.5"),
    "one-hot with NaN": Case(lambda f: _fit(np.ones((2, 3)), [[1.0, 0.0], [np.nan, 1.0]]), InputError, None,
                             "row 1, column 0 holds nan"),
    "one-hot negative": Case(lambda f: _fit(np.ones((2, 3)), [[1.5, -0.5], [0.0, 1.0]]), InputError, None,
                             "finite values of 0 or more; row 0, column 1 holds -0.5"),
    "one-hot rows not summing to 1": Case(lambda f: _fit(np.ones((2, 3)), [[1.0, 1.0], [0.0, 1.0]]), InputError,
                                          None, "row 0 sums to 2"),
    # -- features: checked in the dtype the model computes in -------------------------
    "float32 overflow": Case(lambda f: _fit(np.where(np.eye(20, 3) > 0, 1e39, 1.0), TWO_CLASS), InputError, None,
                             "1e+39 at row 0, column 0, beyond float32's largest value"),
    "NaN located": Case(lambda f: MLP(3, 4, 2, backend="numpy").predict(np.where(np.eye(4, 3)[::-1] > 0, np.nan, 0)),
                        InputError, None, "nan at row 1, column 2"),
    "too large to standardize": Case(lambda f: data.load(str(f["huge"])), InputError,
                                     lambda f: _train(f["huge"], "--dtype", "float64"),
                                     "feature column 1 is too large to standardize"),
    # -- types ----------------------------------------------------------------------------
    "complex X": Case(lambda f: _fit(np.ones((20, 3)) * 1j, TWO_CLASS), InputTypeError, None, "complex numbers"),
    "sparse X": Case(lambda f: _fit(__import__("scipy.sparse").sparse.csr_matrix(np.eye(20, 3)), TWO_CLASS),
                     InputTypeError, None, "X is a sparse matrix (20x3, 3 stored values)"),
    "DataFrame with a text column": Case(
        lambda f: _fit(__import__("pandas").DataFrame({"a": [1.0] * 20, "b": ["x"] * 20, "c": [2.0] * 20}),
                       TWO_CLASS), InputTypeError, None, "non-numeric columns 'b' ("),
    "hidden 2.5": Case(lambda f: MLP(3, 2.5, 2), InputTypeError, lambda f: _train(f["good"], "--hidden", "2.5"),
                       "hidden_size must be a whole number of at least 1, got 2.5",
                       "argument --hidden: invalid int value: '2.5'"),
    "l2 as a string": Case(lambda f: MLP(3, 4, 2, l2="0.1"), InputTypeError, None,
                           "l2 must be a number of 0 or more, got '0.1'"),
    "momentum 1": Case(lambda f: _fit(np.ones((20, 3)), TWO_CLASS, optimizer="momentum", momentum=1.0), InputError,
                       None, "momentum must be a fraction in [0, 1), got 1.0"),
    "negative seed": Case(lambda f: MLP(3, 4, 2, seed=-1), InputError, lambda f: _train(f["good"], "--seed", "-1"),
                          "seed must be a whole number of 0 or more or None, got -1"),
    "unknown activation": Case(lambda f: MLP(3, 4, 2, "softplus"), InputError, None,
                               "unknown activation 'softplus'; activation must be one of sigmoid, relu, tanh"),
    # -- files are untrusted ----------------------------------------------------------------
    "model file with a huge layer": Case(lambda f: MLP.load(f["huge_layer"]), ModelFileError,
                                         lambda f: ["predict", str(f["huge_layer"]), str(f["good"])],
                                         "expected a float array of shape (3, 1000000000)"),
    "model file with NaN weights": Case(lambda f: MLP.load(f["nan_weights"]), ModelFileError,
                                        lambda f: ["evaluate", str(f["nan_weights"]), str(f["good"])],
                                        "array 'W1' holds NaN or infinity"),
    "data file with pickled objects": Case(lambda f: data.read(str(f["pickled"])), InputError,
                                           lambda f: _train(f["pickled"]),
                                           "holds Python objects, which are never loaded"),
    "npz decompression bomb": Case(lambda f: data.read(str(f["bomb"])), InputError,
                                   lambda f: _train(f["bomb"]), "refused as a decompression bomb"),
    "gzip decompression bomb": Case(lambda f: data.read(str(f["gz_bomb"])), InputError,
                                    lambda f: _train(f["gz_bomb"]), "refused as a decompression bomb"),
    # -- memory: refused with the sizes before allocating ----------------------------------
    "huge hidden layer": Case(lambda f: MLP(3, 10**12, 2, backend="numpy"), DeviceMemoryError,
                              lambda f: _train(f["good"], "--hidden", str(10**12)), "of memory available"),
    # Refused before the data are read: a bad data file would be the error otherwise.
    "huge hidden layer before the data": Case(None, None, lambda f: _train(f["bomb"], "--hidden", str(10**12)),
                                              "--hidden 1000000000000 alone (4,000,000,000,002 parameters) needs"),
    "synthetic beyond memory": Case(lambda f: data.read("synthetic:n=1000000000000"), DeviceMemoryError,
                                    lambda f: _train("synthetic:n=1000000000000"), "synthetic data of"),
}


API_CASES = {k: c for k, c in CASES.items() if c.api is not None}
CLI_CASES = {k: c for k, c in CASES.items() if c.cli is not None}


@pytest.mark.parametrize("case", list(API_CASES.values()), ids=list(API_CASES))
def test_api_raises_our_error_with_the_message(case, files):
    with pytest.raises(case.error) as info:
        case.api(files)
    assert isinstance(info.value, UsageError) and isinstance(info.value, (ValueError, TypeError, MemoryError))
    assert case.message in str(info.value)
    assert "\n" not in str(info.value)
    assert "allow_pickle=True" not in str(info.value)


@pytest.mark.parametrize("case", list(CLI_CASES.values()), ids=list(CLI_CASES))
def test_cli_exits_2_with_one_line(case, files, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = cli.main(case.cli(files))
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out = capsys.readouterr()
    assert code == 2, out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlp-backends") and ": error: " in lines[0]
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


# -- what the rules accept: the same checks must not refuse good input -----------------------
def test_numpy_scalars_are_valid_hyper_parameters(blobs):
    X, y = blobs
    model = MLP(np.int64(5), [np.int32(8)], np.int16(3), backend="numpy", seed=np.uint8(2), l2=np.float32(1e-4))
    history = model.fit(X, y, epochs=np.int64(2), batch_size=np.int32(16), learning_rate=np.float32(0.01),
                        optimizer="momentum", momentum=np.float64(0.5), nesterov=np.bool_(True))
    assert len(history) == 2 and model.sizes == (5, 8, 3)
    assert type(model.l2) is float and type(model.seed) is int  # plain values go into model files' JSON


def test_a_numeric_dataframe_trains_like_its_array(blobs):
    pandas = pytest.importorskip("pandas")
    X, y = blobs
    frame = pandas.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    a = MLP(5, 4, 3, backend="numpy").fit(frame, y, epochs=2)
    b = MLP(5, 4, 3, backend="numpy").fit(X, y, epochs=2)
    assert a.loss == b.loss


def test_soft_one_hot_rows_that_sum_to_1_are_accepted():
    Y = np.array([[0.25, 0.75], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=np.float32)
    MLP(3, 4, 2, backend="numpy").fit(np.eye(4, 3), Y, epochs=1)


def test_values_finite_in_float64_train_in_float64(blobs):
    X, y = blobs
    MLP(5, 4, 3, backend="numpy", dtype="float64").fit(X * 1e39, y, epochs=1)


def test_constant_columns_get_scale_1_and_a_note(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    X[:, 1] = 7.0
    X[:, 3] = 0.1  # a float whose mean differs from it by rounding: still constant
    split = data.split(X, np.arange(40) % 2)
    assert split.standardizer.constant == [1, 3]
    np.testing.assert_array_equal(split.standardizer.scale[[1, 3]], [1.0, 1.0])
    assert np.isfinite(split.X_train).all() and np.abs(split.X_train[:, [1, 3]]).max() < 1e-12
    np.savez(tmp_path / "c.npz", X=X, y=np.arange(40) % 2)
    assert cli.main(_train(tmp_path / "c.npz")) == 0
    assert "note: 2 of 4 features are constant in the training part (columns 1, 3)" in capsys.readouterr().out


def test_check_finite_reads_a_memory_map_block_by_block(tmp_path):
    """The check bigger-than-memory data take: a NaN in a later block is found and located."""
    from mlp_backends import validation

    X = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=(1000, 3))
    X[:] = 1.0
    validation.check_finite(X, "float32", rows_per_block=64)
    X[777, 2] = 3e38 * 10
    with pytest.raises(InputError, match="at row 777, column 2, beyond float32"):
        validation.check_finite(X, "float32", rows_per_block=64)
    validation.check_finite(X, "float64", rows_per_block=64)
    X[900, 0] = np.nan
    with pytest.raises(InputError, match=r"NaN or infinity \(nan at row 900, column 0\)"):
        validation.check_finite(X, "float64", rows_per_block=64)


def test_every_parameter_rule_names_the_parameter_and_what_is_allowed():
    from mlp_backends import validation

    for name in validation.PARAMETERS:
        with pytest.raises(UsageError) as info:
            validation.check_param(name, object())
        message = str(info.value)
        assert name in message and ("must be" in message) and "\n" not in message
