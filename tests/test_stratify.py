"""The NumPy stratified split: proportions, seeds, and refusals in one line."""

from __future__ import annotations

import numpy as np
import pytest

from mlp_backends import InputError
from mlp_backends.stratify import stratified_indices


def test_parts_cover_every_row_once_and_keep_the_class_proportions():
    y = np.repeat([0, 1, 2], [60, 30, 10])
    train, test = stratified_indices(y, 0.2, seed=0)
    assert len(test) == 20 and len(train) == 80
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(100))
    assert np.bincount(y[test]).tolist() == [12, 6, 2]
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)  # sorted: file order within a part


def test_same_seed_same_split_other_seed_other_split():
    y = np.arange(200) % 4
    a, b = stratified_indices(y, 0.25, seed=3), stratified_indices(y, 0.25, seed=3)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], stratified_indices(y, 0.25, seed=4)[1])


def test_rounding_gives_the_test_part_ceil_of_its_share_and_each_class_a_row_on_both_sides():
    y = np.repeat([0, 1, 2], [7, 7, 3])
    for size in (0.2, 0.3, 0.5, 0.8):
        train, test = stratified_indices(y, size, seed=1)
        assert set(y[test]) == set(y[train]) == {0, 1, 2}, size
        assert abs(len(test) - np.ceil(size * len(y))) <= 2, size


@pytest.mark.parametrize(("y", "size", "why"), [
    (np.array([0, 0, 0, 1]), 0.25, "a class has a single sample"),
    (np.arange(10) % 5, 0.1, "cannot hold all 5 classes"),
])
def test_impossible_splits_are_refused_in_one_line(y, size, why):
    with pytest.raises(InputError, match=why) as info:
        stratified_indices(y, size, seed=0)
    assert "\n" not in str(info.value) and "use more data" in str(info.value)
