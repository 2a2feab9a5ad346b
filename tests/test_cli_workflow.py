"""What a person does with the command, run through subprocesses: train on their
own CSV and IDX files, save, load on another backend, predict, evaluate, plot."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import usable_or_strict

from mlp_backends import MLP, data
from mlp_backends import io as model_io
from mlp_backends.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, env_extra=None, pythonpath_first=None):
    env = {k: v for k, v in os.environ.items() if k != "MLP_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath_first, ROOT, env.get("PYTHONPATH")) if p)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "mlp_backends.cli", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def flowers(tmp_path_factory):
    """Iris as a user's CSV: the label column named 'species', in the middle, as words."""
    folder = tmp_path_factory.mktemp("flowers")
    ds = data.read("iris")
    names = np.array(["setosa", "versicolor", "virginica"])[ds.y]
    path = folder / "flowers.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sepal_length", "sepal_width", "species", "petal_length", "petal_width"])
        for x, name in zip(ds.X, names):
            w.writerow([x[0], x[1], name, x[2], x[3]])
    new = folder / "new.csv"  # features only, as prediction data arrives
    with open(new, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width"])
        w.writerows(ds.X[::10])
    return path, new, ds.X[::10], names[::10]


@pytest.fixture(scope="module")
def trained(flowers):
    path, *_ = flowers
    folder = path.parent
    # The README's example (there with the automatic backend).
    out = cli("train", "--data", str(path), "--target", "species", "--backend", "numpy",
              "--hidden", "16", "8", "--epochs", "300", "--validation-split", "0.2", "--early-stopping", "10",
              "--seed", "1", "--save", str(folder / "m.npz"), "--plot", str(folder / "c.png"),
              "--log-json", str(folder / "log.jsonl"))
    return out, folder


def test_train_on_a_csv_saves_model_plot_and_log(trained):
    out, folder = trained
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "backend: numpy (named with --backend)"
    assert "89 train / 23 validation / 38 test samples, 4 features, 3 classes" in lines[1]
    assert "MLP(4, (16, 8), 3" in lines[1]
    for part in ("train", "validation", "test"):
        assert any(line.startswith(f"{part} accuracy: ") for line in lines)
        assert any(line.startswith(f"{part} loss: ") for line in lines)
    # chance: 0.33; 36 or 37 of 38 here
    assert float(next(line for line in lines if line.startswith("test accuracy")).split()[-1]) >= 0.92
    assert lines[-3].startswith("wall time: ") and lines[-2:] == [f"saved model: {folder / 'm.npz'}",
                                                                 f"saved plot: {folder / 'c.png'}"]
    log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    epochs = [line for line in lines if line.startswith("epoch ")]  # stdout is a pipe: plain lines
    assert len(log) == len(epochs) and [e["epoch"] for e in log] == list(range(1, len(log) + 1))
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "time"} <= set(log[0])
    assert f"({len(log)} epochs)" in lines[-3]
    assert any(line.startswith("early stopping after epoch") and line.endswith("restored its parameters")
               for line in lines)
    assert (folder / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_saved_model_knows_its_classes_scaling_and_settings(trained):
    _, folder = trained
    _, meta = model_io.read_saved_npz(folder / "m.npz")
    extra = meta["extra"]
    assert extra["classes"] == ["setosa", "versicolor", "virginica"]
    assert len(extra["standardization"]["mean"]) == 4
    assert extra["training"]["target"] == "species" and extra["training"]["learning_rate"] == 0.003
    assert extra["training"]["early_stopping"] == 10 and extra["training"]["epochs_run"] < 300
    assert meta["config"]["sizes"] == [4, 16, 8, 3]


def test_predict_on_another_backend_maps_back_to_the_words(trained, flowers):
    _, folder = trained
    _, new, X_new, truth = flowers
    out = cli("predict", str(folder / "m.npz"), str(new), "--backend", "array_api_strict")
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0] == ["label"] and len(rows) == 1 + len(X_new)
    predicted = [r[0] for r in rows[1:]]
    # The same answer as the library gives on the same raw rows: the loaded model applies
    # its saved standardization and names its classes itself.
    model = MLP.load(folder / "m.npz", backend="numpy")
    assert predicted == model.predict(X_new).tolist()
    scaled = data.Standardizer.from_dict(model.extra["standardization"]).transform(X_new)
    plain = MLP.from_config(model.config())  # the bare network, fed rows scaled by hand
    plain.set_params(model.get_params())
    assert predicted == [model.extra["classes"][i] for i in plain.predict(scaled)]
    assert np.mean(np.array(predicted) == truth) >= 0.9


def test_predict_probabilities_to_a_file(trained, flowers):
    _, folder = trained
    _, new, X_new, _ = flowers
    out = cli("predict", str(folder / "m.npz"), str(new), "--proba", "--out", str(folder / "p.csv"),
              "--backend", usable_or_strict("torch"))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and f"wrote {len(X_new)} predictions" in out.stderr
    rows = list(csv.reader(open(folder / "p.csv")))
    assert rows[0] == ["setosa", "versicolor", "virginica"]
    proba = np.array(rows[1:], dtype=float)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)


def test_evaluate_reports_accuracy_per_class_figures_and_confusion(trained, flowers):
    path, *_ = flowers
    _, folder = trained
    out = cli("evaluate", str(folder / "m.npz"), str(path), "--target", "species", "--backend", usable_or_strict("jax"))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    accuracy = float(text.split("accuracy: ")[1].split()[0])
    assert 0.95 <= accuracy <= 1
    table = text.split("confusion matrix (rows: true class, columns: predicted class):\n")[1].splitlines()
    assert table[0].split() == ["setosa", "versicolor", "virginica"]
    confusion = np.array([row.split()[1:] for row in table[1:]], dtype=int)
    assert confusion.sum(axis=1).tolist() == [50, 50, 50]
    assert np.trace(confusion) / 150 == pytest.approx(accuracy, abs=1e-4)
    for name in ("setosa", "versicolor", "virginica"):
        assert any(line.startswith(name) and line.split()[-1] == "50" for line in text.splitlines())


@pytest.mark.parametrize("spec", ["numpy", "array_api_strict", "torch", "jax"])
def test_a_loaded_model_answers_raw_rows_exactly_as_the_cli_does(trained, flowers, spec):
    """Python and the command line agree: MLP.load's model on raw rows gives the CLI's labels,
    probabilities, accuracy and loss, on every backend."""
    path, new, X_new, _ = flowers
    _, folder = trained
    spec = usable_or_strict(spec)
    model = MLP.load(folder / "m.npz", backend=spec)
    labels = list(csv.reader(io.StringIO(cli("predict", str(folder / "m.npz"), str(new)).stdout)))[1:]
    assert model.predict(X_new).tolist() == [r[0] for r in labels]
    proba = np.array(list(csv.reader(io.StringIO(
        cli("predict", str(folder / "m.npz"), str(new), "--proba").stdout)))[1:], dtype=float)
    np.testing.assert_allclose(np.asarray(model.predict_proba(X_new)), proba, rtol=2e-5, atol=1e-6)
    table = cli("evaluate", str(folder / "m.npz"), str(path), "--target", "species").stdout
    rows = list(csv.DictReader(open(path)))
    X = np.array([[r["sepal_length"], r["sepal_width"], r["petal_length"], r["petal_width"]] for r in rows], float)
    y = [r["species"] for r in rows]
    assert f"accuracy: {model.score(X, y):.4f}" in table
    assert f"loss: {model.loss(X, y):.4f}" in table
    assert model.score(X, y) > 0.9  # the raw rows are standardized, else this would be far lower


def test_predict_takes_the_model_s_columns_by_name_wherever_they_stand(trained, flowers, tmp_path):
    path, new, X_new, _ = flowers
    _, folder = trained
    expected = cli("predict", str(folder / "m.npz"), str(new)).stdout
    rows = list(csv.DictReader(open(path)))
    shuffled = tmp_path / "shuffled.csv"  # label first, features reversed, one column the model never saw
    with open(shuffled, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["species", "petal_width", "id", "petal_length", "sepal_width", "sepal_length"])
        for i, r in enumerate(rows[::10]):
            w.writerow([r["species"], r["petal_width"], i, r["petal_length"], r["sepal_width"], r["sepal_length"]])
    out = cli("predict", str(folder / "m.npz"), str(shuffled))
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
    scored = cli("evaluate", str(folder / "m.npz"), str(shuffled))  # the saved label column, found by name
    assert scored.returncode == 0 and "15 samples" in scored.stdout, scored.stderr
    # In Python, a DataFrame's columns are taken by name too.
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(shuffled)
    model = MLP.load(folder / "m.npz")
    assert model.predict(frame.drop(columns=["species", "id"])).tolist() == model.predict(X_new).tolist()
    with pytest.raises(InputError, match="lacks the model's feature columns 'petal_width'"):
        model.predict(frame.drop(columns=["petal_width"]))
    partial = tmp_path / "partial.csv"
    partial.write_text("sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n")
    out = cli("predict", str(folder / "m.npz"), str(partial))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "lacks 1 of the model's feature columns ('petal_width')" in out.stderr


def test_train_on_mnist_format_idx_files_quietly(tmp_path, write_idx):
    X, y = data.read("digits").X, data.read("digits").y
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", X.reshape(-1, 8, 8).astype(np.uint8), compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y.astype(np.uint8), compress=True)
    out = cli("train", "--data", str(tmp_path / "train-images-idx3-ubyte.gz"), "--backend", "numpy",
              "--epochs", "10", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "epoch " not in out.stdout
    assert "1347 train / 450 test samples, 64 features, 10 classes" in out.stdout
    assert float(out.stdout.split("test accuracy: ")[1].split()[0]) > 0.9


def test_backends_json_for_scripts():
    out = cli("backends", "--json")
    assert out.returncode == 0
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert {"numpy", "cupy", "torch", "jax", "array_api_strict"} <= set(rows)
    assert rows["numpy"]["usable"] is True and rows["numpy"]["devices"] == ["cpu"]
    assert all(r["usable"] or r["reason"] for r in rows.values())


def test_plot_without_matplotlib_says_how_to_install_it_before_training(tmp_path):
    shadow = tmp_path / "shadow"
    (shadow / "matplotlib").mkdir(parents=True)
    (shadow / "matplotlib" / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    out = cli("train", "--backend", "numpy", "--plot", str(tmp_path / "c.png"), pythonpath_first=str(shadow))
    assert out.returncode == 2
    assert out.stderr.strip() == ("mlp-backends: error: plotting needs matplotlib, which is not installed; "
                                  "pip install 'mlp-backends[plot]' (or pip install matplotlib)")
    assert "epoch" not in out.stdout and not (tmp_path / "c.png").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
    (["predict", "nosuch.npz", "iris"], "no model file at nosuch.npz"),
])
def test_bad_usage_is_one_line_and_exit_2(args, message):
    out = cli(*args)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n2,y\nz,3\n")
    out = cli("train", "--data", str(bad), "--backend", "numpy", "--debug")
    assert out.returncode == 2 and "Traceback" in out.stderr and "InputError" in out.stderr  # exit code kept
