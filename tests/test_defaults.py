"""One table of defaults (mlp_backends/defaults.py) for the API, the CLI and the README,
and the article's recipe one option away."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import numpy as np

from mlp_backends import MLP, data
from mlp_backends.cli import build_parser, main
from mlp_backends.defaults import DEFAULTS, TABLE

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_table() -> dict:
    text = README.read_text()
    section = text.split("\n## Defaults\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| [^|]* \| `([^`]*)` \| [^|]* \|$", section, re.M)
    return {name: ast.literal_eval(value) for name, value in rows}


def test_the_readme_shows_exactly_the_table_in_code():
    assert _readme_table() == DEFAULTS
    assert list(_readme_table()) == list(TABLE)


def test_mlp_and_fit_take_their_defaults_from_the_table():
    for function in (MLP.__init__, MLP.fit, data.load):
        for name, parameter in inspect.signature(function).parameters.items():
            key = {"validation_size": "validation_split"}.get(name, name)
            if function is MLP.fit and name == "seed":  # None: the model's seed, itself from the table
                continue
            if function is data.load and name == "dtype":  # None: the data's own float dtype, cast once
                continue
            if key in DEFAULTS and parameter.default is not inspect.Parameter.empty:
                assert parameter.default == DEFAULTS[key], (function.__qualname__, name)


def test_the_cli_trains_with_the_same_defaults(tmp_path):
    path = tmp_path / "m.npz"
    assert main(["train", "--data", "synthetic:n=200,d=4,classes=3", "--quiet", "--backend", "numpy",
                 "--save", str(path)]) == 0
    model = MLP.load(path)
    run = model.extra["training"]
    assert model.sizes[1:-1] == (DEFAULTS["hidden_size"],)
    for key in ("activation", "dtype", "init", "l2", "seed"):
        assert model.config()[key] == DEFAULTS[key], key
    for key in ("epochs", "batch_size", "learning_rate", "optimizer", "seed", "test_size", "validation_split"):
        assert run[key] == DEFAULTS[key], key
    assert run["epochs_run"] == DEFAULTS["epochs"]


def test_help_shows_the_tables_values():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for option, key in (("--epochs", "epochs"), ("--batch-size", "batch_size"), ("--learning-rate", "learning_rate")):
        assert re.search(rf"{option}.*?\(default: {DEFAULTS[key]}\)", text, re.S), option


def test_full_batch_in_python_and_on_the_command_line_is_one_step_per_epoch(tmp_path):
    s = data.load("synthetic:n=120,d=4,classes=3")
    runs = []
    for batch in (None, "full", len(s.y_train)):
        model = MLP(4, 8, 3, backend="numpy", dtype="float64")
        model.fit(s.X_train, s.y_train, epochs=3, batch_size=batch, optimizer="sgd", learning_rate=0.5,
                  shuffle=False)
        runs.append(model.get_params())
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)
    path = tmp_path / "m.npz"
    assert main(["train", "--data", "synthetic:n=120,d=4,classes=3", "--batch-size", "full", "--epochs", "2",
                 "--quiet", "--backend", "numpy", "--save", str(path)]) == 0
    assert MLP.load(path).extra["training"]["batch_size"] is None


def test_the_article_recipe_reaches_the_accuracy_the_readme_states(tmp_path, capsys):
    stated = float(re.search(r"It reaches about (0\.\d+) test accuracy on digits", README.read_text()).group(1))
    path = tmp_path / "article.npz"
    assert main(["train", "--recipe", "article", "--quiet", "--backend", "numpy", "--save", str(path)]) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"test accuracy: (\d\.\d+)", out).group(1))
    assert accuracy >= stated - 0.01, out
    assert "learning rate 0.005 per sample x 1347 samples = 6.735 on the mean loss" in out
    model = MLP.load(path)
    assert (model.activation, model.init, model.sizes) == ("sigmoid", "standard_normal", (64, 32, 10))
    run = model.extra["training"]
    assert (run["optimizer"], run["batch_size"], run["epochs_run"]) == ("sgd", None, 500)


def test_options_given_explicitly_win_over_the_recipe(tmp_path):
    path = tmp_path / "m.npz"
    assert main(["train", "--recipe", "article", "--data", "synthetic:n=150,d=4,classes=3", "--epochs", "3",
                 "--lr", "0.5", "--hidden", "5", "--quiet", "--backend", "numpy", "--save", str(path)]) == 0
    model = MLP.load(path)
    run = model.extra["training"]
    assert (run["epochs_run"], run["learning_rate"], model.sizes[1]) == (3, 0.5, 5)
    assert model.activation == "sigmoid" and run["batch_size"] is None


def test_the_articles_signature_and_call_still_work():
    s = data.load("iris")
    model = MLP(4, 16, 3)
    history = model.train(s.X_train, np.eye(3)[s.y_train], 50, 0.5)
    assert len(history) == 50 and history.loss[-1] < history.loss[0]
