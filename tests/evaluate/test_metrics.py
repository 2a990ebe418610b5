"""medfeat.evaluate.metrics against scikit-learn, and the behaviour of the bootstrap interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from medfeat.evaluate import METRICS, bootstrap_auc, confusion, roc_auc, score


def _binary(n, seed, *, signal=1.0, round_to=None, p_pos=0.4):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < p_pos).astype(np.int64)
    p1 = 1.0 / (1.0 + np.exp(-(signal * (2 * y - 1) + rng.standard_normal(n))))
    if round_to is not None:                      # ties, and values exactly at 0.5
        p1 = np.round(p1, round_to)
    return y, np.column_stack([1.0 - p1, p1])


def _multiclass(n, k, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = 1.5 * np.eye(k)[y] + rng.standard_normal((n, k))
    e = np.exp(logits)
    return y, e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("round_to", [None, 1])
def test_binary_matches_sklearn(seed, round_to):
    y, proba = _binary(300, seed, round_to=round_to)
    s = score(y, proba, n_boot=0)
    pred = (proba[:, 1] > 0.5).astype(int)        # MedMNIST's evaluator: strictly above 0.5
    assert s["acc"] == pytest.approx(skm.accuracy_score(y, pred))
    assert s["auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert s["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert s["sensitivity"] == pytest.approx(skm.recall_score(y, pred, pos_label=1))
    assert s["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert s["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert tuple(k for k in s if k != "auc_ci95") == METRICS


def test_binary_threshold_is_strictly_above_half():
    y = np.array([0, 1, 1, 0])
    p1 = np.array([0.5, 0.5, 0.51, 0.2])
    s = score(y, p1, n_boot=0)                    # 1-D: positive-class probability
    assert s["acc"] == pytest.approx(0.75)        # both 0.5s are predicted negative
    assert confusion(y, p1).tolist() == [[2, 0], [1, 1]]


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("seed", range(4))
def test_multiclass_matches_sklearn(k, seed):
    y, proba = _multiclass(400, k, seed)
    s = score(y, proba, n_boot=0)
    pred = proba.argmax(axis=1)
    labels = list(range(k))
    assert s["acc"] == pytest.approx(skm.accuracy_score(y, pred))
    assert s["auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr",
                                                       average="macro", labels=labels))
    assert s["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", labels=labels))
    assert s["sensitivity"] == pytest.approx(skm.recall_score(y, pred, average="macro",
                                                              labels=labels))
    assert s["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    # specificity of class c = recall of "not c" in the one-vs-rest problem
    spec = np.mean([skm.recall_score(y != c, pred != c) for c in labels])
    assert s["specificity"] == pytest.approx(spec)


def test_multiclass_undefined_classes_are_left_out_like_sklearn_nan_division():
    # class 2 never occurs and is never predicted: its F1 and recall are undefined
    y = np.array([0, 0, 1, 1, 1, 0])
    proba = np.array([[.7, .2, .1], [.3, .6, .1], [.2, .7, .1], [.1, .8, .1], [.6, .3, .1],
                      [.8, .1, .1]])
    s = score(y, proba, n_boot=0)
    pred = proba.argmax(axis=1)
    assert s["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", labels=[0, 1, 2],
                                                 zero_division=np.nan))
    assert s["sensitivity"] == pytest.approx(skm.recall_score(
        y, pred, average="macro", labels=[0, 1, 2], zero_division=np.nan))
    assert math.isnan(s["auc"])                  # one-vs-rest AUC of class 2 is undefined
    assert s["auc_ci95"][0] != s["auc_ci95"][0]  # NaN


def test_confusion_matches_sklearn():
    y, proba = _multiclass(200, 4, 1)
    assert np.array_equal(confusion(y, proba),
                          skm.confusion_matrix(y, proba.argmax(axis=1), labels=range(4)))
    y, proba = _binary(150, 2)
    assert np.array_equal(confusion(y, proba),
                          skm.confusion_matrix(y, (proba[:, 1] > 0.5).astype(int)))


def test_roc_auc_with_weights_of_ties_and_perfect_separation():
    assert roc_auc([0, 1], [[1, 0], [0, 1]]) == 1.0
    assert roc_auc([0, 1], [[0, 1], [1, 0]]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5


def test_undefined_binary_metrics_are_nan():
    s = score([1, 1, 1], [0.9, 0.2, 0.7], n_boot=100)
    assert math.isnan(s["auc"]) and math.isnan(s["specificity"])
    assert s["sensitivity"] == pytest.approx(2 / 3)
    assert all(math.isnan(v) for v in s["auc_ci95"])


# ---- the bootstrap interval


def test_ci_covers_auc_and_is_reproducible():
    y, proba = _binary(300, 0)
    s = score(y, proba, n_boot=500, seed=3)
    lo, hi = s["auc_ci95"]
    assert lo < s["auc"] < hi
    assert score(y, proba, n_boot=500, seed=3)["auc_ci95"] == [lo, hi]
    assert score(y, proba, n_boot=500, seed=4)["auc_ci95"] != [lo, hi]


def test_ci_narrows_with_n():
    widths = []
    for n in (100, 400, 1600):          # a weak signal (AUC ~0.7) keeps clear of the ceiling
        y, proba = _binary(n, 7, signal=0.4)
        lo, hi = bootstrap_auc(y, proba, n_boot=400, seed=0)
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # the width shrinks roughly like 1 / sqrt(n): a factor 2 per 4x more samples
    assert 1.4 < widths[0] / widths[1] < 2.8
    assert 1.4 < widths[1] / widths[2] < 2.8


def test_ci_matches_a_plain_resampling_loop():
    """The weighted O(B n) replicate AUCs equal sklearn's AUC on explicitly resampled data."""
    y, proba = _binary(120, 5, round_to=2)
    n_boot = 200
    lo, hi = bootstrap_auc(y, proba, n_boot=n_boot, seed=11)
    # same stratified draws, done by hand: rng.multinomial per class in class order
    rng = np.random.default_rng(11)
    counts = np.zeros((n_boot, y.size), dtype=int)
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        counts[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1 / idx.size), size=n_boot)
    aucs = [skm.roc_auc_score(np.repeat(y, w), np.repeat(proba[:, 1], w)) for w in counts]
    assert [lo, hi] == pytest.approx(list(np.quantile(aucs, [0.025, 0.975])))


def test_ci_multiclass_covers_auc():
    y, proba = _multiclass(300, 3, 2)
    s = score(y, proba, n_boot=300)
    assert s["auc_ci95"][0] < s["auc"] < s["auc_ci95"][1]


def test_bootstrap_keeps_class_counts_so_small_sets_work():
    lo, hi = bootstrap_auc([0, 1, 0, 1, 1], [0.1, 0.9, 0.4, 0.3, 0.8], n_boot=200)
    assert 0.0 <= lo <= hi <= 1.0


# ---- input checks


@pytest.mark.parametrize("y, proba, match", [
    ([0, 1, 2], [[.5, .5], [.5, .5], [.5, .5]], "y_true"),           # label out of range
    ([0, -1], [[.5, .5], [.5, .5]], "y_true"),
    ([0, 1], [[.5, .5], [.5, .5], [.5, .5]], "proba"),                # length mismatch
    ([0, 1], [[.5, np.nan], [.5, .5]], "proba"),
    ([0, 1], [[1.5, -.5], [.5, .5]], "proba"),                        # not in [0, 1]
    ([0, 1], [[.9, .9], [.5, .5]], "proba"),                          # rows do not sum to 1
    ([0, 1], [[1.0], [1.0]], "proba"),                                # one column
    ([0, 1], np.zeros((2, 2, 2)), "proba"),
    ([0.5, 1], [[.5, .5], [.5, .5]], "y_true"),                       # fractional labels
    ([[0, 1], [1, 2]], [[.5, .5], [.5, .5]], "y_true"),               # 2-D, not 0/1
    ([[0, 1], [1, 0]], [[.5, .5, .1], [.5, .5, .1]], "proba"),        # multi-label, wrong width
    ([[[0]], [[1]]], [[.5, .5], [.5, .5]], "y_true"),                 # 3-D
    ([], np.zeros((0, 2)), "y_true"),
    (["a", "b"], [[.5, .5], [.5, .5]], "y_true"),
    ([0, 1], [["a", "b"], ["c", "d"]], "proba"),
])
def test_bad_input_names_the_argument(y, proba, match):
    with pytest.raises(ValueError, match=match):
        score(y, proba, n_boot=0)


def test_bad_n_boot():
    with pytest.raises(ValueError, match="n_boot"):
        score([0, 1], [0.2, 0.8], n_boot=-1)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_auc([0, 1], [0.2, 0.8], n_boot=0)


def test_inputs_are_not_modified():
    y, proba = _binary(50, 0)
    y0, p0 = y.copy(), proba.copy()
    score(y, proba, n_boot=50)
    assert np.array_equal(y, y0) and np.array_equal(proba, p0)


def test_float32_softmax_rows_are_accepted():
    y, proba = _multiclass(100, 4, 0)
    s32 = score(y, proba.astype(np.float32), n_boot=0)
    s64 = score(y, proba, n_boot=0)
    assert s32["auc"] == pytest.approx(s64["auc"], abs=1e-6)
