"""Model files: portable across backends, atomic, and clear about every broken file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlp_backends import MLP, ModelFileError, io


@pytest.fixture
def saved(tmp_path, blobs):
    X, y = blobs
    model = MLP(5, (8, 4), 3, "tanh", backend="numpy", dtype="float64", seed=3)
    model.fit(X, y, epochs=2, batch_size=16)
    model.extra = {"classes": ["a", "b", "c"], "standardization": {"mean": [0.0] * 5, "scale": [1.0] * 5},
                   "training": {"epochs": 2, "batch_size": 16}}
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path


def test_metadata_says_what_the_model_is(saved):
    _, path = saved
    arrays, meta = io.read_saved_npz(path)
    assert sorted(arrays) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert meta["format"] == "mlp_backends.model" and meta["format_version"] == io.FORMAT_VERSION
    assert meta["library_version"]
    assert meta["config"]["sizes"] == [5, 8, 4, 3] and meta["config"]["activation"] == "tanh"
    assert meta["config"]["dtype"] == "float64"
    assert meta["extra"]["classes"] == ["a", "b", "c"]
    assert meta["extra"]["training"] == {"epochs": 2, "batch_size": 16}


def test_saved_on_numpy_loads_on_every_backend(saved, backend, blobs):
    model, path = saved
    be, _ = backend
    loaded = MLP.load(path, backend=be)
    assert loaded.backend is be and loaded.extra == model.extra
    np.testing.assert_allclose(loaded.predict_proba(blobs[0]), model.predict_proba(blobs[0]), rtol=1e-10)


def test_no_pickle_inside(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as z:  # would raise on any object array
        assert all(z[k].dtype != object for k in z.files)


def test_an_interrupted_save_leaves_the_old_file_whole(saved, monkeypatch, blobs):
    model, path = saved
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the user pressed ^C in the middle of writing

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["model.npz"]  # no temporary left behind


def test_saving_into_a_missing_folder_is_a_clear_error(saved, tmp_path):
    model, _ = saved
    with pytest.raises(ModelFileError, match="does not exist; create it first"):
        model.save(tmp_path / "nope" / "model.npz")


def _rewrite_meta(path, change):
    arrays, meta = io.read_saved_npz(path)
    change(meta)
    io.atomic_savez(path, arrays, meta)


@pytest.mark.parametrize(("damage", "match"), [
    ("truncate", "truncated or corrupt"),
    ("flip", "truncated or corrupt"),
    ("text", "truncated or corrupt"),
    ("foreign", "without mlp_backends metadata"),
    ("bad_json", "corrupt metadata"),
    ("other_format", "not an mlp_backends model"),
    ("newer", "newer than this mlp_backends reads"),
    ("missing_array", "is corrupt: array .W2. is missing"),
    ("wrong_shape", r"is corrupt: array .W1. is float64 \(5, 8\), expected a float array of shape \(5, 9\)"),
    ("missing", "no model file at"),
])
def test_broken_model_files_give_clear_errors(saved, damage, match):
    _, path = saved
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":  # a bit error inside the first array's data: the CRC catches it
        middle = raw.index(b"W1.npy") + 200
        path.write_bytes(raw[:middle] + bytes([raw[middle] ^ 0xFF]) + raw[middle + 1:])
    elif damage == "text":
        path.write_text("hello")
    elif damage == "foreign":
        np.savez(path, weights=np.ones(3))
    elif damage == "bad_json":
        arrays, _ = io.read_saved_npz(path)
        np.savez(path, **arrays, **{io.META_KEY: np.frombuffer(b"{not json", dtype=np.uint8)})
    elif damage == "other_format":
        _rewrite_meta(path, lambda m: m.update(format="someone.else"))
    elif damage == "newer":
        _rewrite_meta(path, lambda m: m.update(format_version=io.FORMAT_VERSION + 1))
    elif damage == "missing_array":
        arrays, meta = io.read_saved_npz(path)
        del arrays["W2"]
        io.atomic_savez(path, arrays, meta)
    elif damage == "wrong_shape":
        _rewrite_meta(path, lambda m: m["config"].update(sizes=[5, 9, 4, 3]))
    elif damage == "missing":
        path.unlink()
    with pytest.raises(ModelFileError, match=match) as info:
        MLP.load(path, backend="numpy")
    assert "\n" not in str(info.value)


def test_the_metadata_is_plain_json(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z[io.META_KEY].tobytes().decode())
    assert meta["backend"] == "numpy"


def test_saved_files_get_the_usual_permissions(saved):
    """The temporary file is private (0600); the saved model must not stay that way."""
    import os

    _, path = saved
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
