"""Data sources: built-ins, synthetic, and the user's own .npz, .csv and IDX files
(each test writes its small files itself)."""

from __future__ import annotations

import numpy as np
import pytest

from mlp_backends import InputError, data


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(12, 4, 3), dtype=np.uint8), np.arange(12, dtype=np.uint8) % 3


@pytest.mark.parametrize(("name", "n_features", "n_classes"), [
    ("digits", 64, 10), ("iris", 4, 3), ("wine", 13, 3), ("breast-cancer", 30, 2)])
def test_builtin_sets(name, n_features, n_classes):
    ds = data.read(name)
    assert ds.X.shape[1] == n_features and len(np.unique(ds.y)) == n_classes


def test_synthetic_any_size_and_class_count_is_reproducible():
    a = data.read("synthetic:n=500,d=7,classes=5,seed=3")
    b = data.read("synthetic:n=500,d=7,classes=5,seed=3")
    assert a.X.shape == (500, 7) and a.X.dtype == np.float32
    assert np.bincount(a.y).tolist() == [100] * 5  # balanced
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, data.read("synthetic:n=500,d=7,classes=5,seed=4").X)


def test_synthetic_is_learnable():
    from mlp_backends import MLP

    s = data.load("synthetic:n=1200,d=30,classes=4")
    model = MLP(30, 32, 4, "relu", backend="numpy")
    model.fit(s.X_train, s.y_train, epochs=15, batch_size=32, learning_rate=0.01)
    assert model.score(s.X_test, s.y_test) > 0.8  # chance is 0.25


def test_split_is_stratified_seeded_and_standardized_on_train_only():
    X, y = data.read("iris").X, data.read("iris").y
    s = data.split(X, y, test_size=0.2, seed=1, validation_size=0.25)
    assert np.bincount(s.y_test).tolist() == [10, 10, 10]
    assert np.bincount(s.y_val).tolist() == [10, 10, 10]
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0, atol=1e-12)  # fitted on train...
    assert np.abs(s.X_val.mean(axis=0)).max() > 1e-3                   # ...not on validation
    again = data.split(X, y, test_size=0.2, seed=1, validation_size=0.25)
    np.testing.assert_array_equal(s.X_test, again.X_test)


def test_npz_file(tmp_path):
    X, y = np.arange(40.0).reshape(10, 4), np.array([0, 1] * 5)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = data.read(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)


def test_csv_with_string_labels_keeps_them_as_classes(tmp_path):
    path = tmp_path / "flowers.csv"
    path.write_text("length,width,species\n1.0,2,setosa\n3,4.5,virginica\n5,6,setosa\n7,8,virginica\n")
    ds = data.read(str(path))
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4.5], [5, 6], [7, 8]])
    assert ds.y.tolist() == ["setosa", "virginica", "setosa", "virginica"]
    s = data.split(np.repeat(ds.X, 3, axis=0), np.repeat(ds.y, 3), test_size=0.5)
    assert s.classes == ["setosa", "virginica"]


def test_csv_target_column_anywhere_and_numeric_labels(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,label,b\n1,7,2\n3,9,4\n")
    ds = data.read(str(path), target="label")
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [7, 9]


def test_csv_without_labels_is_features_only_when_the_width_says_so(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    ds = data.read(str(path), n_features=2)
    assert ds.y is None and ds.X.shape == (2, 2)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_files_plain_and_gzipped(tmp_path, images, compress, write_idx):
    X, y = images
    gz = ".gz" if compress else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{gz}", X, compress=compress)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{gz}", y, compress=compress)
    ds = data.read(str(tmp_path / f"train-images-idx3-ubyte{gz}"))
    np.testing.assert_array_equal(ds.X, X.reshape(12, 12))
    np.testing.assert_array_equal(ds.y, y)


def test_idx_float_data_and_fashion_mnist_names(tmp_path, images, write_idx):
    X, y = images
    write_idx(tmp_path / "t10k-images-idx3-ubyte", X.astype(np.float32) / 255, code=0x0D)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", y)
    ds = data.read(str(tmp_path / "t10k-images-idx3-ubyte"))
    np.testing.assert_allclose(ds.X, X.reshape(12, 12) / 255, rtol=1e-6)


def _bad_files(tmp_path, images, write_idx):
    """(source, match) pairs: each bad input and the words its one-line error must hold."""
    X, y = images
    t = tmp_path
    (t / "empty.csv").write_text("")
    (t / "noheader.csv").write_text("1,2,3\n4,5,6\n")
    (t / "onlyheader.csv").write_text("a,b\n")
    (t / "ragged.csv").write_text("a,b,c\n1,2,3\n4,5\n")
    (t / "text.csv").write_text("a,b,c\n1,x,0\n")
    (t / "nan.csv").write_text("a,b,c\n1,nan,0\n")
    (t / "nolabel.csv").write_text("a,b,c\n1,2,\n")
    (t / "latin1.csv").write_bytes("a,b,c\n1,2,caf\xe9\n".encode("latin-1"))
    np.savez(t / "noy.npz", X=X.reshape(12, -1))
    np.savez(t / "mismatch.npz", X=X.reshape(12, -1), y=y[:5])
    np.savez(t / "strings.npz", X=np.array([["a", "b"]]), y=np.array([1]))
    (t / "cut.npz").write_bytes((t / "noy.npz").read_bytes()[:60])
    write_idx(t / "a-images-idx3-ubyte", X)
    write_idx(t / "a-labels-idx1-ubyte", y[:5])
    write_idx(t / "b-images-idx3-ubyte", X)
    (t / "c-images-idx3-ubyte").write_bytes(b"PK\x03\x04 not idx")
    full = (t / "a-images-idx3-ubyte").read_bytes()
    (t / "d-images-idx3-ubyte").write_bytes(full[:-7])
    (t / "e-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    return [
        ("nosuch", "unknown data set"),
        (str(t / "missing.csv"), "no file at"),
        (str(t / "empty.csv"), "is empty"),
        (str(t / "noheader.csv"), "looks like data, not a header"),
        (str(t / "onlyheader.csv"), "no data rows"),
        (str(t / "ragged.csv"), "line 3 has 2 fields"),
        (str(t / "text.csv"), "line 2, column 'b': 'x' is not a finite number"),
        (str(t / "nan.csv"), "'nan' is not a finite number"),
        (str(t / "nolabel.csv"), "label column 'c' is empty"),
        (str(t / "latin1.csv"), "not a UTF-8 text CSV"),
        (str(t / "noy.npz"), "needs 'X' (features) and 'y' (labels)"),
        (str(t / "mismatch.npz"), "X has 12 rows but y has 5"),
        (str(t / "strings.npz"), "X must be numeric"),
        (str(t / "cut.npz"), "truncated or corrupt"),
        (str(t / "a-images-idx3-ubyte"), "X has 12 rows but the labels file has 5"),
        (str(t / "b-images-idx3-ubyte"), "no labels file next to"),
        (str(t / "c-images-idx3-ubyte"), "bad magic number"),
        (str(t / "d-images-idx3-ubyte"), "is truncated"),
        (str(t / "e-images-idx3-ubyte.gz"), "not a readable IDX file"),
        (str(t / "a-labels-idx1-ubyte"), "pass the images file"),
        ("synthetic:n=ten", "must be a whole number"),
        ("synthetic:rows=5", "bad synthetic option"),
        ("synthetic:classes=1", "classes >= 2"),
    ]


def test_each_bad_input_is_a_clear_one_line_error(tmp_path, images, write_idx):
    for source, match in _bad_files(tmp_path, images, write_idx):
        with pytest.raises(InputError) as info:
            data.read(source)
        message = str(info.value)
        assert match in message, (source, message)
        assert "\n" not in message, source


def test_bad_target_and_split_sizes(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,0\n2,1\n")
    with pytest.raises(InputError, match="no column 'label'; its columns are: a, b"):
        data.read(str(path), target="label")
    with pytest.raises(InputError, match="--target names a CSV column"):
        data.read("digits", target="label")
    X, y = np.zeros((4, 2)), np.array([0, 0, 0, 1])
    with pytest.raises(InputError, match="cannot take a stratified test split"):
        data.split(X, y)
    with pytest.raises(InputError, match="test_size must be a fraction"):
        data.split(X, y, test_size=1.5)


def test_synthetic_class_means_lie_about_sep_sqrt2_apart_in_any_dimension():
    for d in (10, 784):
        ds = data.read(f"synthetic:n=4000,d={d},classes=8,sep=3")
        means = np.array([ds.X[ds.y == k].mean(axis=0) for k in range(8)])
        gaps = [np.linalg.norm(means[i] - means[j]) for i in range(8) for j in range(i)]
        assert np.mean(gaps) == pytest.approx(3 * np.sqrt(2), rel=0.25), d


# -- one copy of the data ------------------------------------------------------------------
def test_checks_and_statistics_in_blocks_find_the_last_bad_value(monkeypatch):
    from mlp_backends import chunks

    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64)  # blocks of two rows of eight float32
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((101, 8)) * 3 + 100).astype(np.float32)
    assert chunks.first_nonfinite(X) is None and chunks.all_finite(X)
    X[100, 6] = np.inf
    assert chunks.first_nonfinite(X) == (100, 6) and not chunks.all_finite(X)
    X[100, 6] = 0
    mean, std = chunks.mean_and_std(X)
    np.testing.assert_allclose(mean, X.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, X.astype(np.float64).std(axis=0), rtol=1e-10)


def test_a_nan_in_the_last_block_of_a_file_is_named(tmp_path, monkeypatch):
    from mlp_backends import chunks

    monkeypatch.setattr(chunks, "CHUNK_BYTES", 256)
    X = np.ones((300, 4))
    X[299, 2] = np.nan
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(300) % 2)
    with pytest.raises(InputError, match=r"NaN or infinite values \(the first in row 299, column 2"):
        data.read(str(tmp_path / "d.npz"))


def test_permute_rows_in_place_is_a_gather():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 3))
    order = rng.permutation(500)
    expected = X[order]
    out = data.permute_rows(X, order)
    assert out is X
    np.testing.assert_array_equal(X, expected)


def test_load_keeps_one_array_the_parts_are_views_of_it(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(400, 6), dtype=np.uint8)
    y = np.arange(400) % 4
    np.savez(tmp_path / "d.npz", X=X, y=y)
    s = data.load(str(tmp_path / "d.npz"), dtype="float32", validation_size=0.2, seed=3)
    base = s.X_train.base
    assert base.dtype == np.float32 and base.shape == (400, 6)
    assert all(np.shares_memory(part, base) for part in (s.X_train, s.X_val, s.X_test))
    # The same numbers as gathering each part, then scaling with the training part's statistics.
    from mlp_backends.stratify import stratified_indices

    i_tr, i_te = stratified_indices(y, 0.25, 3, "test split")
    tr, va = stratified_indices(y[i_tr], 0.2, 3, "validation split")
    i_tr, i_va = i_tr[tr], i_tr[va]
    mean, std = X[i_tr].mean(axis=0), X[i_tr].std(axis=0)
    for part, idx in ((s.X_train, i_tr), (s.X_val, i_va), (s.X_test, i_te)):
        np.testing.assert_allclose(part, (X[idx] - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(s.y_test, y[i_te])


def test_split_leaves_the_callers_array_alone_unless_told():
    X = np.arange(80.0).reshape(40, 2)
    y = np.arange(40) % 2
    before = X.copy()
    data.split(X, y)
    np.testing.assert_array_equal(X, before)
    s = data.split(X, y, copy=False, standardize=False)
    assert np.shares_memory(s.X_train, X) and not np.array_equal(X, before)


def test_a_constant_feature_is_not_divided_by_its_rounding_error():
    X = np.full((1000, 2), 0.1)
    X[:, 1] = np.arange(1000)
    scaler = data.Standardizer.fit(X)
    assert scaler.scale[0] == 1.0
    np.testing.assert_allclose(scaler.transform(X)[:, 0], 0, atol=1e-12)


def test_idx_bytes_are_read_once_into_the_final_array(tmp_path, write_idx, images):
    from mlp_backends import datafiles

    X, y = images
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", X, compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y, compress=True)
    got, _ = datafiles.read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert got.dtype == np.uint8 and got.flags.owndata is False and got.base.flags.owndata  # a reshape of the buffer
    write_idx(tmp_path / "x-images-idx3-ubyte", X)
    with open(tmp_path / "x-images-idx3-ubyte", "ab") as f:
        f.write(b"\0" * 5)
    with pytest.raises(InputError, match="truncated or padded: .* found more than 144"):
        datafiles.read_idx(tmp_path / "x-images-idx3-ubyte", labels_optional=True)


def test_a_constant_column_of_huge_values_is_centred_not_an_overflow():
    X = np.column_stack([np.full(50, 1e300), np.arange(50.0)])
    scaler = data.Standardizer.fit(X)
    assert scaler.constant == [0] and scaler.scale[0] == 1.0 and scaler.mean[0] == 1e300
