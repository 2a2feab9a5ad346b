"""Classification metrics on host labels, and the tables `mlp-backends evaluate` prints."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Counts (k, k): row i, column j holds the rows of true class i predicted as class j."""
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    return confusion


def precision_recall(confusion: np.ndarray) -> list[tuple[float | None, float | None, int]]:
    """(precision, recall, support) of each class; None where a class was never predicted
    (precision) or never present (recall)."""
    rows = []
    for i in range(confusion.shape[0]):
        predicted, actual = int(confusion[:, i].sum()), int(confusion[i, :].sum())
        rows.append((confusion[i, i] / predicted if predicted else None,
                     confusion[i, i] / actual if actual else None, actual))
    return rows


def class_table(confusion: np.ndarray, names: list[str]) -> list[str]:
    """Per-class precision, recall and support, then the confusion matrix, as text lines."""
    w = max(5, *map(len, names))
    lines = [f"{'class':<{w}}  precision  recall  support"]
    for name, (precision, recall, support) in zip(names, precision_recall(confusion)):
        p = "-" if precision is None else f"{precision:.4f}"
        r = "-" if recall is None else f"{recall:.4f}"
        lines.append(f"{name:<{w}}  {p:>9}  {r:>6}  {support:>7}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted class):"]
    cw = max(len(str(confusion.max())), *map(len, names))
    lines.append(" " * w + "  " + " ".join(f"{n:>{cw}}" for n in names))
    lines += [f"{name:<{w}}  " + " ".join(f"{v:>{cw}}" for v in row) for name, row in zip(names, confusion)]
    return lines
