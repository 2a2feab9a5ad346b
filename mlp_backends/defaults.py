"""The one table of defaults, read by `MLP`, `MLP.fit` and `mlp-backends train`.

Chosen to train well out of the box (ReLU, Adam, small batches: about 0.97
test accuracy on digits in under a second). The article's own setup
(sigmoid, full-batch gradient descent) is the named recipe `article`.
README.md shows this table; tests/test_defaults.py keeps the two equal.
"""

from __future__ import annotations

from typing import Any

#: name -> (default, what it is). Names are `MLP`/`fit` keywords; the CLI
#: spells them with dashes (`learning_rate` -> `--learning-rate`).
TABLE: dict[str, tuple[Any, str]] = {
    "hidden_size": (64, "hidden layer sizes (the CLI's `--hidden`; `MLP` takes it as its 2nd argument)"),
    "activation": ("relu", "hidden activation: relu, sigmoid or tanh"),
    "init": ("auto", "initial weights: He for relu, Glorot otherwise; standard_normal is the article's randn"),
    "dtype": ("float32", "float32 or float64"),
    "seed": (0, "initial weights, the split and the shuffles"),
    "l2": (0.0, "weight penalty"),
    "optimizer": ("adam", "sgd, momentum or adam"),
    "learning_rate": (0.003, "step size on the mean loss over a batch"),
    "momentum": (0.9, "for momentum (and nesterov)"),
    "batch_size": (32, "rows per step; full (or None in Python): all rows, full-batch gradient descent"),
    "epochs": (30, "passes over the training data; fit takes 0 (no training), the CLI at least 1"),
    "test_size": (0.25, "stratified fraction held out for the test (data.load, CLI)"),
    "validation_split": (0.0, "stratified fraction of the training part held out for validation"),
}

DEFAULTS: dict[str, Any] = {name: value for name, (value, _) in TABLE.items()}

#: The article's learning rate is per sample on a summed loss; ours is on the mean, so
#: the article's eta on N training rows is eta * N here (DESIGN.md, numerics).
ARTICLE_ETA = 0.005

#: Named recipes: settings that replace the defaults (options given explicitly still win).
#: The article's: its 64-32-10 sigmoid net with randn weights, trained by full-batch
#: gradient descent; `learning_rate` None means the article's eta scaled to the data.
RECIPES: dict[str, dict[str, Any]] = {
    "article": {"hidden_size": 32, "activation": "sigmoid", "init": "standard_normal",
                "optimizer": "sgd", "batch_size": "full", "epochs": 500, "learning_rate": None},
}


def article_learning_rate(n_train: int) -> float:
    """The article's eta (per sample, on a summed loss) as a rate on our mean loss over n_train rows."""
    return ARTICLE_ETA * n_train


def settings(recipe: str | None = None, **given: Any) -> dict[str, Any]:
    """The defaults, then the recipe's settings, then what was given (None = not given)."""
    chosen = dict(DEFAULTS)
    if recipe is not None:
        chosen.update(RECIPES[recipe])
    chosen.update({k: v for k, v in given.items() if v is not None})
    return chosen


def batch_rows(batch_size: int | str | None) -> int | None:
    """"full" (the CLI's spelling) and None (Python's) mean full-batch: None; a number stays as it is."""
    if batch_size is None or (isinstance(batch_size, str) and batch_size.strip().lower() == "full"):
        return None
    return batch_size
