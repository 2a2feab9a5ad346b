"""ONNX export runs nn.forward on ndonnx; onnxruntime must give predict_proba's numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import needs, tolerance

from mlp_backends import MLP, data
from mlp_backends.cli import main

ort = needs("onnxruntime")
needs("ndonnx")
onnx = needs("onnx")


def _raw_blobs(blobs):
    X, y = blobs
    return X * np.array([10.0, 0.5, 3.0, 100.0, 1.0]) + 7.0, y  # rows far from standardized


def _run(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities", "label"], {"X": X})


def _trained(backend, dtype, raw, y, activation="relu"):
    scaler = data.Standardizer.fit(raw)
    model = MLP(5, (8, 6), 3, activation, backend=backend, dtype=dtype, seed=3)
    model.fit(scaler.transform(raw), y, epochs=3, batch_size=16, learning_rate=0.05)
    model.extra["standardization"] = scaler.as_dict()
    return model, scaler


def test_onnx_matches_predict_proba_for_models_trained_on_every_backend(backend, blobs, tmp_path):
    be, dtype = backend
    raw, y = _raw_blobs(blobs)
    model, scaler = _trained(be, dtype, raw, y)
    path = model.export_onnx(tmp_path / "model.onnx")
    rows = raw.astype(dtype)
    proba, label = _run(path, rows)
    want = model.predict_proba(scaler.transform(rows))
    assert proba.dtype == np.dtype(dtype) and proba.shape == (60, 3)
    np.testing.assert_allclose(proba, want, **tolerance(dtype))
    np.testing.assert_array_equal(label, model.predict(scaler.transform(rows)))


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_activation_and_depth_exports(blobs, tmp_path, activation, dtype):
    raw, y = _raw_blobs(blobs)
    model, scaler = _trained("numpy", dtype, raw, y, activation)
    proba, _ = _run(model.export_onnx(tmp_path / "m.onnx"), raw.astype(dtype))
    np.testing.assert_allclose(proba, model.predict_proba(scaler.transform(raw.astype(dtype))), **tolerance(dtype))


def test_a_model_without_saved_standardization_takes_rows_as_trained(blobs, tmp_path):
    X, y = blobs
    model = MLP(5, 4, 3, backend="numpy", dtype="float64", seed=0)
    model.fit(X, y, epochs=2)
    proba, _ = _run(model.export_onnx(tmp_path / "m.onnx"), X)
    np.testing.assert_allclose(proba, model.predict_proba(X), **tolerance("float64"))
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert meta["standardized"] == "false" and "classes" not in meta


def test_cli_export_takes_raw_rows_like_predict(tmp_path, capsys):
    model_path, out = tmp_path / "model.npz", tmp_path / "model.onnx"
    assert main(["train", "--data", "iris", "--epochs", "3", "--quiet", "--save", str(model_path)]) == 0
    capsys.readouterr()
    assert main(["export", str(model_path), str(out)]) == 0
    assert "raw rows" in capsys.readouterr().out
    raw = data.read("iris").X.astype(np.float32)
    assert main(["predict", str(model_path), "iris", "--proba"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    cli_proba = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    proba, label = _run(out, raw)
    np.testing.assert_allclose(proba, cli_proba, rtol=1e-4, atol=2e-6)  # the CSV keeps 6 digits
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert [str(c) for c in json.loads(meta["classes"])] == lines[0].split(",")
    assert meta["standardized"] == "true"


def test_cli_export_refuses_to_overwrite_its_model_and_says_what_is_missing(tmp_path, capsys, monkeypatch):
    model_path = tmp_path / "model.npz"
    MLP(4, 3, 3, backend="numpy").save(model_path)
    assert main(["export", str(model_path), str(model_path)]) == 2
    assert "would overwrite the model" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "ndonnx", None)
    assert main(["export", str(model_path), str(tmp_path / "m.onnx")]) == 2
    assert "pip install 'mlp-backends[onnx]'" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
