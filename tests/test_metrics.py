"""The metrics `mlp-backends evaluate` prints, on labels small enough to count by hand."""

from __future__ import annotations

import numpy as np

from mlp_backends.metrics import class_table, confusion_matrix, precision_recall


def test_confusion_matrix_counts_true_class_by_predicted_class():
    y, pred = np.array([0, 0, 1, 1, 1, 2]), np.array([0, 1, 1, 1, 0, 1])
    np.testing.assert_array_equal(confusion_matrix(y, pred, 3), [[1, 1, 0], [1, 2, 0], [0, 1, 0]])


def test_precision_and_recall_per_class_and_none_where_undefined():
    confusion = confusion_matrix(np.array([0, 0, 1, 1, 1, 2]), np.array([0, 1, 1, 1, 0, 1]), 3)
    (p0, r0, n0), (p1, r1, n1), (p2, r2, n2) = precision_recall(confusion)
    assert (p0, r0, n0) == (0.5, 0.5, 2)
    assert (p1, r1, n1) == (0.5, 2 / 3, 3)
    assert p2 is None and r2 == 0.0 and n2 == 1  # class 2 was never predicted


def test_the_table_shows_dashes_for_undefined_figures_and_the_matrix_under_its_names():
    confusion = confusion_matrix(np.array([0, 1]), np.array([0, 0]), 2)
    lines = class_table(confusion, ["cat", "dog"])
    assert lines[0].split() == ["class", "precision", "recall", "support"]
    assert lines[1].split() == ["cat", "0.5000", "1.0000", "1"]
    assert lines[2].split() == ["dog", "-", "0.0000", "1"]
    assert lines[-3:] == ["       cat dog", "cat      1   0", "dog      1   0"]
