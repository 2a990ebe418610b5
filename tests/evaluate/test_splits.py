"""Stratified k-fold splits: a partition, stratified, shuffled, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from medfeat.evaluate import stratified_kfold
from medfeat.evaluate.splits import check_cv


@pytest.mark.parametrize("k", [2, 3, 5])
def test_partition_and_stratification(k):
    y = np.array([1] * 97 + [0] * 23 + [2] * 11)     # ordered by class, like PneumoniaMNIST
    folds = stratified_kfold(y, k, seed=0)
    assert len(folds) == k
    tests = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(tests), np.arange(y.size))          # disjoint and covering
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0
        assert train.size + test.size == y.size
        for c in (0, 1, 2):                  # each fold holds n_c / k of each class, +-1
            assert abs((y[test] == c).sum() - (y == c).sum() / k) < 1
    sizes = [te.size for _, te in folds]
    assert max(sizes) - min(sizes) <= 1


def test_shuffled_and_seeded():
    y = np.array([1] * 60 + [0] * 40)
    a = stratified_kfold(y, 4, seed=0)
    b = stratified_kfold(y, 4, seed=0)
    c = stratified_kfold(y, 4, seed=1)
    assert all(np.array_equal(x[1], z[1]) for x, z in zip(a, b))
    assert not all(np.array_equal(x[1], z[1]) for x, z in zip(a, c))
    # not contiguous blocks of the ordered input
    assert any(np.ptp(test) > y.size // 2 for _, test in a)


def test_column_labels_accepted():
    y = (np.arange(30) % 2).reshape(-1, 1)
    assert len(stratified_kfold(y, 3)) == 3


@pytest.mark.parametrize("k", [1, -2, 2.5, True, "3"])
def test_bad_k(k):
    with pytest.raises(ValueError, match="cv|k"):
        stratified_kfold(np.arange(20) % 2, k)


def test_more_folds_than_the_smallest_class():
    y = np.array([0] * 3 + [1] * 20)
    with pytest.raises(ValueError, match="smallest class"):
        stratified_kfold(y, 4)
    assert check_cv(3, y) == 3
    assert check_cv(0, y) == 0 and check_cv(None, y) == 0
