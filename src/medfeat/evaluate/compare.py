"""Paired comparison of two methods scored on the same test samples.

:func:`delong` is the DeLong test for two correlated ROC AUCs (DeLong, DeLong & Clarke-Pearson,
"Comparing the areas under two or more correlated receiver operating characteristic curves: a
nonparametric approach", Biometrics 44:837-845, 1988), computed with the mid-rank algorithm of
Sun & Xu ("Fast implementation of DeLong's algorithm for comparing the areas under correlated
receiver operating characteristic curves", IEEE Signal Processing Letters 21:1389-1393, 2014).
:func:`paired_bootstrap` resamples the test set once for both methods; it handles multi-class
(one-vs-rest macro) AUCs, where DeLong's binary test does not apply.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, rankdata

from .metrics import _auc_rows, _stratified_counts, check_scores

__all__ = ["delong", "paired_bootstrap"]


def _binary_scores(y_true, score, name):
    """A finite 1-D score per sample: ``score`` itself, or column 1 of a two-column array."""
    s = np.asarray(score)
    if s.dtype.kind not in "iufb":
        raise ValueError(f"{name} must be a real numeric array, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1]
    elif s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim != 1:
        raise ValueError(f"{name} must be one score per sample, shape (n,) or (n, 2), "
                         f"got {np.shape(score)}")
    if s.shape[0] != y_true.shape[0]:
        raise ValueError(f"{name} has {s.shape[0]} scores but y_true has {y_true.shape[0]} "
                         "labels")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name} contains NaN or infinity")
    return s


def _binary_labels(y_true):
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array of 0/1 labels, got shape "
                         f"{y.shape}")
    if y.dtype.kind not in "iubf" or not np.all(np.isin(y, (0, 1))):
        raise ValueError("y_true must hold binary labels 0 and 1 (use paired_bootstrap for "
                         "more classes)")
    y = y.astype(np.int64)
    if y.min() == y.max():
        raise ValueError(f"y_true holds only class {y[0]}: the AUC needs both classes")
    return y


def _test(difference, variance, level):
    """z, two-sided p and the normal interval of ``difference`` with ``variance``."""
    q = float(norm.ppf(0.5 + level / 2.0))
    if variance > 0:
        se = math.sqrt(variance)
        z = difference / se
        p = math.erfc(abs(z) / math.sqrt(2.0))
    else:                       # identical rankings: no variance of the difference
        se = 0.0
        z = 0.0 if difference == 0 else math.copysign(math.inf, difference)
        p = 1.0 if difference == 0 else 0.0
    return z, min(1.0, p), [difference - q * se, difference + q * se], se


def delong(y_true, score_a, score_b, *, level=0.95):
    """DeLong's paired test of two ROC AUCs measured on the same samples.

    Parameters
    ----------
    y_true : array_like, shape (n,)
        Binary labels, 1 the positive class; both classes must occur.
    score_a, score_b : array_like, shape (n,) or (n, 2)
        Scores of the two methods for the positive class (any real values; a two-column
        probability array gives its column 1).
    level : float, optional
        Coverage of the confidence interval of the difference.

    Returns
    -------
    dict
        ``"auc_a"``, ``"auc_b"``, ``"difference"`` (``auc_a - auc_b``), ``"se"`` (its standard
        error), ``"z"``, ``"p_value"`` (two-sided, normal approximation) and ``"ci95"``
        (``[lo, hi]``, the normal interval of the difference at ``level``).

    Notes
    -----
    Each AUC is the Mann-Whitney statistic (ties count one half). Its structural components
    (the fraction of negatives a positive outranks and of positives that outrank a negative)
    come from mid-ranks (Sun & Xu, 2014); their covariances across positives and across
    negatives give the covariance matrix ``S`` of the two AUCs (DeLong et al., 1988), and
    ``z = (auc_a - auc_b) / sqrt(S_aa + S_bb - 2 S_ab)``. Identical rankings give
    ``difference = 0``, ``p_value = 1``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 100)
    >>> good = y + rng.normal(0, 0.7, 200)
    >>> poor = y + rng.normal(0, 2.0, 200)
    >>> res = delong(y, good, poor)
    >>> bool(res["auc_a"] > res["auc_b"]), bool(res["p_value"] < 0.05)
    (True, True)
    """
    y = _binary_labels(y_true)
    a = _binary_scores(y, score_a, "score_a")
    b = _binary_scores(y, score_b, "score_b")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    scores = np.stack([a, b])                                        # (2, N)
    x, z_neg = scores[:, pos], scores[:, neg]
    tx = rankdata(x, axis=1)                                        # mid-ranks within positives
    ty = rankdata(z_neg, axis=1)                                    # ... within negatives
    tz = rankdata(np.concatenate([x, z_neg], axis=1), axis=1)       # ... in the pooled sample
    auc = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2.0) / n
    v10 = (tz[:, :m] - tx) / n              # per positive: share of negatives it outranks
    v01 = 1.0 - (tz[:, m:] - ty) / m        # per negative: share of positives outranking it
    s10 = np.cov(v10) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(v01) if n > 1 else np.zeros((2, 2))
    cov = s10 / m + s01 / n
    diff = float(auc[0] - auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    var = max(var, 0.0) if abs(var) > 1e-15 else 0.0
    z, p, ci, se = _test(diff, var, level)
    return {"auc_a": float(auc[0]), "auc_b": float(auc[1]), "difference": diff, "se": se,
            "z": z, "p_value": p, "ci95": ci}


def paired_bootstrap(y_true, proba_a, proba_b, *, n_boot=2000, seed=0, level=0.95):
    """Paired bootstrap comparison of two AUCs (binary, one-vs-rest macro, or the mean of the
    per-label AUCs of a multi-label task: ``y_true`` a 0/1 matrix ``(n, L)``).

    The test set is resampled (stratified by class) ``n_boot`` times; both methods are scored
    on each same resample, so the correlation between them is kept.

    Parameters
    ----------
    y_true : array_like, shape (n,)
        Integer labels in ``range(n_classes)``.
    proba_a, proba_b : array_like, shape (n, n_classes)
        Class probabilities of the two methods (``(n,)`` positive-class probabilities for a
        binary task).
    n_boot : int, optional
    seed : int, optional
    level : float, optional
        Coverage of the percentile interval of the difference.

    Returns
    -------
    dict
        ``"auc_a"``, ``"auc_b"``, ``"difference"`` (``auc_a - auc_b``), ``"se"`` (standard
        deviation of the bootstrap differences), ``"z"`` (difference / se), ``"p_value"``
        (two-sided, normal approximation), ``"ci95"`` (percentile interval) and ``"n_boot"``
        (replicates used).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 60)
    >>> def proba(noise):
    ...     logits = np.eye(3)[y] * 2 + rng.normal(0, noise, (180, 3))
    ...     e = np.exp(logits)
    ...     return e / e.sum(axis=1, keepdims=True)
    >>> res = paired_bootstrap(y, proba(0.5), proba(3.0), n_boot=500)
    >>> bool(res["difference"] > 0), bool(res["ci95"][0] > 0)
    (True, True)
    """
    y, pa = check_scores(y_true, proba_a, name="proba_a")
    _, pb = check_scores(y, proba_b, n_classes=pa.shape[1], name="proba_b")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    ones = np.ones((1, y.shape[0]))
    auc_a, auc_b = float(_auc_rows(y, pa, ones)[0]), float(_auc_rows(y, pb, ones)[0])
    if not (math.isfinite(auc_a) and math.isfinite(auc_b)):
        raise ValueError("y_true must contain every class of the probability columns: the AUC "
                         "is undefined otherwise")
    rng = np.random.default_rng(seed)
    diffs = []
    chunk = max(1, min(int(n_boot), 2_000_000 // y.size))   # y.size: rows x labels
    done = 0
    while done < n_boot:
        w = _stratified_counts(y, pa.shape[1], min(chunk, n_boot - done), rng)
        diffs.append(_auc_rows(y, pa, w) - _auc_rows(y, pb, w))
        done += w.shape[0]
    diffs = np.concatenate(diffs)
    diffs = diffs[np.isfinite(diffs)]
    diff = auc_a - auc_b
    se = float(np.std(diffs, ddof=1))
    z, p, _, se = _test(diff, se * se if se > 1e-15 else 0.0, level)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])
    return {"auc_a": auc_a, "auc_b": auc_b, "difference": diff, "se": se, "z": z,
            "p_value": p, "ci95": [float(lo), float(hi)], "n_boot": int(diffs.size)}
