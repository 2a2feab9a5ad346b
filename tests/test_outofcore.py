"""Training from .npy files on disk: the same parameters as in memory, reads a buffer at a
time, bounded memory, and the converter that writes such folders."""

from __future__ import annotations

import numpy as np
import pytest

from mlp_backends import MLP, InputError, cli, data, outofcore
from mlp_backends.convert import convert


@pytest.fixture
def blobs_on_disk(tmp_path):
    X, y = data.synthetic(n=600, d=12, classes=3, seed=1)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    return X, y, tmp_path


def _fit(X, y, **kw):
    model = MLP(12, 16, 3, "relu", backend="numpy", seed=0)
    model.fit(X, y, epochs=3, batch_size=32, learning_rate=0.01, **kw)
    return model


@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_on_a_memory_map_gives_the_parameters_of_fit_in_memory(blobs_on_disk, shuffle):
    X, y, folder = blobs_on_disk
    mapped = np.load(folder / "X.npy", mmap_mode="r")
    on_disk, in_memory = _fit(mapped, y, shuffle=shuffle), _fit(X, y, shuffle=shuffle)
    for a, b in zip(on_disk.get_params(), in_memory.get_params()):
        np.testing.assert_array_equal(a, b)
    assert on_disk.history.loss == in_memory.history.loss
    np.testing.assert_array_equal(on_disk.predict_proba(mapped), in_memory.predict_proba(X))
    assert on_disk.score(mapped, y) == pytest.approx(in_memory.score(X, y), abs=1e-12)
    assert on_disk.loss(mapped, y) == pytest.approx(in_memory.loss(X, y), rel=1e-6)


def test_shards_read_as_one_array_with_validation_from_disk(blobs_on_disk, tmp_path):
    X, y, _ = blobs_on_disk
    shards = tmp_path / "shards"
    shards.mkdir()
    for i, (lo, hi) in enumerate([(0, 250), (250, 251), (251, 600)]):
        np.save(shards / f"X-{i:05d}.npy", X[lo:hi])
        np.save(shards / f"y-{i:05d}.npy", y[lo:hi])
    source, labels = outofcore.open_folder(shards)
    assert source.shape == (600, 12) and labels.tolist() == y.tolist()
    np.testing.assert_array_equal(source.read(np.array([599, 0, 250, 251])), X[[599, 0, 250, 251]])
    val = source.subset(np.arange(500, 600))
    on_disk = _fit(source.subset(np.arange(500)), y[:500], validation_data=(val, y[500:]))
    in_memory = _fit(X[:500], y[:500], validation_data=(X[500:], y[500:]))
    assert on_disk.history["val_loss"] == pytest.approx(in_memory.history["val_loss"], rel=1e-6)
    for a, b in zip(on_disk.get_params(), in_memory.get_params()):
        np.testing.assert_array_equal(a, b)


def test_the_shuffle_reads_long_runs_and_sees_every_row_once(monkeypatch):
    monkeypatch.setattr(outofcore, "CHUNK_BYTES", 10 * 8 * 4)     # chunks of 10 rows of 8 float32
    monkeypatch.setattr(outofcore, "BUFFER_BYTES", 100 * 8 * 4)   # buffers of 10 chunks
    source = outofcore.RowSource([np.zeros((1005, 8), np.float32)])
    rng = np.random.default_rng(0)
    first, second = source.order(rng, True, 5), source.order(rng, True, 5)
    assert sorted(first.tolist()) == list(range(1005)) and not np.array_equal(first, second)
    for lo in range(0, 1005, 100):  # each buffer: at most its 10 runs of consecutive rows
        rows = np.sort(first[lo:lo + 100])
        assert 1 + np.count_nonzero(np.diff(rows) != 1) <= 10
    assert np.array_equal(source.order(rng, False, 5), np.arange(1005))
    batches = list(source.batches(first, 5))
    assert len(batches) == 201 and np.array_equal(np.concatenate([p for _, p in batches]), first)
    resumed = list(source.batches(first, 5, first=57))  # a mid-epoch resume starts at batch 57
    assert all(np.array_equal(p, q) for (_, p), (_, q) in zip(resumed, batches[57:]))
    assert len(resumed) == len(batches) - 57


def test_a_small_buffer_still_trains_well(blobs_on_disk, monkeypatch):
    X, y, folder = blobs_on_disk
    monkeypatch.setattr(outofcore, "CHUNK_BYTES", 20 * 12 * 4)
    monkeypatch.setattr(outofcore, "BUFFER_BYTES", 100 * 12 * 4)
    model = _fit(np.load(folder / "X.npy", mmap_mode="r"), y)
    assert model.score(X, y) > 0.9 and model.score(X, y) > _fit(X, y).score(X, y) - 0.05


def test_a_nan_in_the_last_block_of_a_map_is_found_and_named(tmp_path, monkeypatch):
    from mlp_backends import chunks

    monkeypatch.setattr(chunks, "CHUNK_BYTES", 1024)
    X = np.ones((400, 12), np.float32)
    X[399, 7] = np.nan
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(InputError, match=r"NaN or infinity \(nan at row 399, column 7\)"):
        _fit(np.load(tmp_path / "X.npy", mmap_mode="r"), np.arange(400) % 3)


def _anon_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status here")


def test_fit_on_a_map_does_not_copy_the_data(tmp_path, monkeypatch):
    """40 MB of features on disk; training keeps its anonymous memory within a few buffers."""
    monkeypatch.setattr(outofcore, "BUFFER_BYTES", 2 << 20)
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(200_000, 50))
    for lo in range(0, 200_000, 20_000):
        X[lo:lo + 20_000] = rng.standard_normal((20_000, 50), dtype=np.float32)
    X.flush()
    del X
    y = rng.integers(0, 2, 200_000)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    model = MLP(50, 4, 2, backend="numpy")
    before = _anon_mb()
    model.fit(mapped, y, epochs=1, batch_size=1024)
    grown = _anon_mb() - before
    # Buffers, batches and allocator slack: well under the 40 MB a whole copy would add.
    assert grown < 28, f"anonymous memory grew by {grown:.0f} MB for 40 MB of data on disk"


def test_an_epoch_holds_one_buffer_at_a_time(tmp_path, monkeypatch):
    """Reading a buffer makes no copy of the rows besides the buffer, and a consumer that keeps
    the last batch (as the training loop does) does not keep the previous buffer alive."""
    import tracemalloc

    monkeypatch.setattr(outofcore, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(outofcore, "BUFFER_BYTES", 1 << 20)
    X = np.random.default_rng(0).standard_normal((20_000, 50), dtype=np.float32)  # 4 MB: 4 buffers
    np.save(tmp_path / "X.npy", X)
    source = outofcore.as_source(np.load(tmp_path / "X.npy", mmap_mode="r"))
    order = source.order(np.random.default_rng(1), True, 32)
    seen, last = [], None
    next(source.batches(order, 32))  # imports NumPy makes on first use are not the buffers'
    tracemalloc.start()
    try:
        for Xb, positions in source.batches(order, 32):
            last = Xb  # noqa: F841 - held while the next batch is made, as a training step does
            seen.append(positions[[0, -1]])
            if len(seen) % 97 == 0:  # spot-check rows against the array
                np.testing.assert_array_equal(Xb, X[positions])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(seen) == -(-20_000 // 32)
    assert peak < 1.5 * (1 << 20), f"{peak / 2**20:.2f} MB held for 1 MB buffers"


# -- the converter ----------------------------------------------------------------------
def test_convert_a_csv_then_train_and_predict_from_the_folder(tmp_path, capsys):
    rows = ["a,b,c,label"] + [f"{i % 7},{i % 5 * 0.5},{i % 3},{['x', 'y'][i % 2]}" for i in range(200)]
    (tmp_path / "d.csv").write_text("\n".join(rows[:50]) + "\n\n\n" + "\n".join(rows[50:]) + "\n")
    assert cli.main(["data", "convert", str(tmp_path / "d.csv"), str(tmp_path / "d")]) == 0
    assert "wrote 200 rows x 3 features (float32)" in capsys.readouterr().out
    X = np.load(tmp_path / "d" / "X.npy")  # the header was rewritten for the rows found
    ds = data.read(str(tmp_path / "d.csv"))
    expected, labels = ds.X, ds.y
    np.testing.assert_array_equal(X, expected.astype(np.float32))
    assert np.load(tmp_path / "d" / "y.npy").tolist() == labels.tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "d.csv"]
    assert cli.main(["train", "--data", str(tmp_path / "d"), "--epochs", "2", "--backend", "numpy", "--quiet",
                     "--save", str(tmp_path / "m.npz")]) == 0
    assert "train accuracy" in capsys.readouterr().out
    assert cli.main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "d")]) == 0
    assert set(capsys.readouterr().out.split()[1:]) <= {"x", "y"}


def test_convert_npz_and_idx_keep_their_stored_dtype(tmp_path, write_idx):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(30, 4, 5), dtype=np.uint8)
    y = np.arange(30) % 3
    np.savez_compressed(tmp_path / "d.npz", X=X, y=y)
    assert convert(str(tmp_path / "d.npz"), tmp_path / "from_npz") == (30, 20, np.uint8)
    np.testing.assert_array_equal(np.load(tmp_path / "from_npz" / "X.npy"), X.reshape(30, 20))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", X, compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y.astype(np.uint8), compress=True)
    convert(str(tmp_path / "train-images-idx3-ubyte.gz"), tmp_path / "from_idx")
    np.testing.assert_array_equal(np.load(tmp_path / "from_idx" / "X.npy"), X.reshape(30, 20))
    np.testing.assert_array_equal(np.load(tmp_path / "from_idx" / "y.npy"), y)


def test_a_failed_conversion_leaves_nothing_behind(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(InputError, match="line 3, column 'b': 'oops' is not a finite number"):
        convert(str(tmp_path / "bad.csv"), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    with pytest.raises(InputError, match="already exists; convert into a new folder"):
        convert("iris", tmp_path / "taken")
    assert cli.main(["data", "convert", str(tmp_path / "missing.csv"), str(tmp_path / "x")]) == 2


def test_every_backend_trains_from_a_map_as_from_the_array(blobs_on_disk, backend32):
    X, y, folder = blobs_on_disk
    mapped = np.load(folder / "X.npy", mmap_mode="r")
    models = []
    for data_ in (mapped, X):
        model = MLP(12, 16, 3, "relu", backend=backend32, seed=0)
        model.fit(data_, y, epochs=2, batch_size=50, learning_rate=0.01)
        models.append(model)
    for a, b in zip(*(m.get_params() for m in models)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
