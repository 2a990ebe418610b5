"""Scores of class probabilities: ACC, ROC AUC, F1, sensitivity, specificity, balanced accuracy,
and a stratified bootstrap confidence interval of the AUC.

Binary tasks follow the MedMNIST v2 evaluator (Yang et al., Scientific Data 10:41, 2023): the
prediction is "positive" when the positive-class probability ``proba[:, 1]`` is above 0.5, and the
AUC is that of ``proba[:, 1]``. Multi-class tasks predict the arg-max and average one-vs-rest
scores over the classes (macro).

All functions check their input first and raise ``ValueError`` naming the argument at fault.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["score", "confusion", "roc_auc", "bootstrap_auc", "check_scores"]

#: Slack allowed on probabilities (rows of float32 softmax outputs sum to 1 only within ~1e-7).
_PROBA_TOL = 1e-4


def check_scores(y_true, proba, *, n_classes=None, name="proba"):
    """Validated ``(labels, probabilities)``: int64 ``(n,)`` and float64 ``(n, n_classes)``.

    Parameters
    ----------
    y_true : array_like, shape (n,) or (n, 1)
        Integer class labels in ``range(n_classes)``.
    proba : array_like, shape (n, n_classes) or (n,)
        Class probabilities, rows summing to 1; a 1-D array is read as the positive-class
        probability of a binary task.
    n_classes : int, optional
        Expected number of columns (default: as many as ``proba`` has).
    name : str, optional
        The name of ``proba`` in error messages.

    Returns
    -------
    y_true : ndarray of int64, shape (n,)
    proba : ndarray of float64, shape (n, n_classes)

    Raises
    ------
    ValueError
        Naming ``y_true`` or ``proba``: empty input, wrong shapes or lengths, non-numeric or
        non-finite values, non-integer or out-of-range labels, values outside [0, 1] or rows
        that do not sum to 1.

    Examples
    --------
    >>> y, p = check_scores([0, 1, 1], [0.2, 0.7, 0.9])
    >>> y.tolist(), p.shape
    ([0, 1, 1], (3, 2))
    """
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y_true must be a 1-D array of class labels, got shape {y.shape}")
    if y.size == 0:
        raise ValueError("y_true is empty")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError("y_true contains NaN or infinity")
        if not np.all(y == np.round(y)):
            raise ValueError("y_true must hold integer class labels, got fractional values")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"y_true must hold integer class labels, got dtype {y.dtype}")
    y = y.astype(np.int64)

    p = np.asarray(proba)
    if p.dtype.kind not in "iufb":
        raise ValueError(f"{name} must be a real numeric array, got dtype {p.dtype}")
    p = p.astype(np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n_samples, n_classes) with n_classes >= 2 "
                         f"(or (n_samples,) for a binary task), got {np.shape(proba)}")
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"{name} has {p.shape[0]} rows but y_true has {y.shape[0]} labels")
    if n_classes is not None and p.shape[1] != n_classes:
        raise ValueError(f"{name} must have {n_classes} columns, got {p.shape[1]}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains NaN or infinity")
    if p.min() < -_PROBA_TOL or p.max() > 1 + _PROBA_TOL:
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values in "
                         f"[{p.min():.4g}, {p.max():.4g}]")
    sums = p.sum(axis=1)
    worst = np.max(np.abs(sums - 1.0))
    if worst > _PROBA_TOL * p.shape[1]:
        raise ValueError(f"{name} rows must sum to 1 (class probabilities), one sums to "
                         f"{sums[np.argmax(np.abs(sums - 1.0))]:.6g}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"y_true must hold labels in range({p.shape[1]}) to match the columns "
                         f"of {name}, got labels from {y.min()} to {y.max()}")
    return y, p


def _predict(proba):
    """Predicted labels: ``proba[:, 1] > 0.5`` for two classes (MedMNIST), arg-max otherwise."""
    if proba.shape[1] == 2:
        return (proba[:, 1] > 0.5).astype(np.int64)
    return np.argmax(proba, axis=1).astype(np.int64)


def _confusion(y, pred, n_classes):
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes)


def confusion(y_true, proba):
    """Confusion matrix of the predictions the metrics use.

    Parameters
    ----------
    y_true : array_like, shape (n,)
        Integer labels in ``range(n_classes)``.
    proba : array_like, shape (n, n_classes)
        Class probabilities; binary predictions are ``proba[:, 1] > 0.5``, others the arg-max.

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
        Counts, rows the true class, columns the predicted class.

    Examples
    --------
    >>> confusion([0, 0, 1, 1], [[0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.9, 0.1]]).tolist()
    [[1, 1], [1, 1]]
    """
    y, p = check_scores(y_true, proba)
    return _confusion(y, _predict(p), p.shape[1])


def _weighted_auc(score, positive, weights):
    """ROC AUC of ``score`` for ``positive`` vs the rest, under sample ``weights`` (B, n).

    The Mann-Whitney form with ties counted one half: ``sum_{i pos, j neg} w_i w_j
    [s_i > s_j] + 0.5 [s_i == s_j]`` over ``(sum w_pos)(sum w_neg)``. One sort of the scores
    serves every row of weights, so B bootstrap replicates cost O(B n). NaN where a row of
    weights leaves no positive or no negative.
    """
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])         # first index of each tie group
    w = weights[:, order]
    pos = positive[order]
    wp = np.add.reduceat(np.where(pos, w, 0.0), starts, axis=1)   # (B, groups)
    wn = np.add.reduceat(np.where(pos, 0.0, w), starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn                             # negatives strictly below
    num = np.sum(wp * (below + 0.5 * wn), axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _auc_rows(y, p, weights):
    """AUC for each row of ``weights``: binary on ``p[:, 1]``, else one-vs-rest macro."""
    n_classes = p.shape[1]
    if n_classes == 2:
        return _weighted_auc(p[:, 1], y == 1, weights)
    per_class = np.stack([_weighted_auc(p[:, c], y == c, weights) for c in range(n_classes)])
    # a class absent from y_true leaves its one-vs-rest AUC undefined, and so the macro average
    return per_class.mean(axis=0)


def roc_auc(y_true, proba):
    """ROC AUC: of ``proba[:, 1]`` for two classes, one-vs-rest macro average otherwise.

    Parameters
    ----------
    y_true : array_like, shape (n,)
    proba : array_like, shape (n, n_classes)

    Returns
    -------
    float
        NaN when a class is absent from ``y_true`` (the AUC is undefined then).

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    0.75
    """
    y, p = check_scores(y_true, proba)
    return float(_auc_rows(y, p, np.ones((1, y.size)))[0])


def _stratified_counts(y, n_classes, n_boot, rng):
    """Bootstrap multiplicities ``(n_boot, n)``: each class resampled within itself, so every
    replicate keeps the class counts of ``y``."""
    counts = np.zeros((n_boot, y.size))
    for c in range(n_classes):
        idx = np.flatnonzero(y == c)
        if idx.size:
            counts[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size),
                                             size=n_boot)
    return counts


def bootstrap_auc(y_true, proba, *, n_boot=1000, seed=0, level=0.95):
    """Percentile bootstrap confidence interval of the ROC AUC.

    Resampling is stratified (each class is drawn with replacement from itself, keeping the
    class counts), so every replicate has an AUC; a replicate whose AUC is undefined anyway
    (a class absent from ``y_true``) is skipped.

    Parameters
    ----------
    y_true : array_like, shape (n,)
    proba : array_like, shape (n, n_classes)
    n_boot : int, optional
        Number of bootstrap replicates (at least 1).
    seed : int, optional
        Seed of the resampling.
    level : float, optional
        Coverage of the interval, in (0, 1).

    Returns
    -------
    list of float
        ``[lo, hi]``; ``[nan, nan]`` when no replicate has an AUC.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 100)
    >>> p1 = np.clip(0.5 + 0.3 * (y - 0.5) + 0.2 * rng.standard_normal(200), 0, 1)
    >>> lo, hi = bootstrap_auc(y, p1, n_boot=500)
    >>> bool(lo < roc_auc(y, p1) < hi)
    True
    """
    y, p = check_scores(y_true, proba)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not (isinstance(level, (float, int)) and 0 < level < 1):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    rng = np.random.default_rng(seed)
    aucs = []
    chunk = max(1, min(int(n_boot), 2_000_000 // max(y.size, 1)))   # bounded memory
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        aucs.append(_auc_rows(y, p, _stratified_counts(y, p.shape[1], b, rng)))
        done += b
    aucs = np.concatenate(aucs)
    aucs = aucs[np.isfinite(aucs)]
    if aucs.size == 0:
        return [math.nan, math.nan]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(aucs, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def _ratio(num, den):
    return num / den if den > 0 else math.nan


def score(y_true, proba, *, n_boot=1000, seed=0):
    """Every metric of :data:`~medfeat.evaluate.METRICS` and the bootstrap CI of the AUC.

    Parameters
    ----------
    y_true : array_like, shape (n,) or (n, 1)
        Integer labels in ``range(n_classes)``.
    proba : array_like, shape (n, n_classes)
        Class probabilities (rows summing to 1); for a binary task also ``(n,)``, the
        positive-class probability.
    n_boot : int, optional
        Bootstrap replicates for ``"auc_ci95"``; 0 skips the interval (``[nan, nan]``).
    seed : int, optional
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``"acc"``, ``"auc"``, ``"f1"``, ``"sensitivity"``, ``"specificity"``,
        ``"balanced_accuracy"`` (floats) and ``"auc_ci95"`` (``[lo, hi]``).

    Notes
    -----
    Two classes (class 1 is the positive one): predictions are ``proba[:, 1] > 0.5`` as in the
    MedMNIST evaluator; ACC is their accuracy, AUC that of ``proba[:, 1]``, F1 and sensitivity
    are those of class 1 (its recall), specificity is the recall of class 0, balanced accuracy
    the mean of both recalls.

    More classes: predictions are the arg-max; AUC is the one-vs-rest macro average, F1,
    sensitivity (recall) and specificity (one-vs-rest true-negative rate) are macro averages
    over the classes where they are defined (scikit-learn's ``zero_division=np.nan``), and
    balanced accuracy is the mean recall of the classes present in ``y_true``
    (scikit-learn's ``balanced_accuracy_score``).

    A metric that is undefined for the data is NaN: AUC when a class is absent from
    ``y_true``, sensitivity without positives, specificity without negatives, F1 without
    positives either true or predicted.

    The interval is a percentile bootstrap with stratified resampling
    (:func:`bootstrap_auc`).

    Examples
    --------
    >>> s = score([0, 0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]], n_boot=0)
    >>> s["acc"], s["auc"], s["sensitivity"], s["specificity"]
    (0.75, 0.75, 0.5, 1.0)
    """
    y, p = check_scores(y_true, proba)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    n_classes = p.shape[1]
    pred = _predict(p)
    cm = _confusion(y, pred, n_classes).astype(np.float64)
    tp = np.diag(cm)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    tn = cm.sum() - tp - fn - fp
    recall = np.array([_ratio(tp[c], tp[c] + fn[c]) for c in range(n_classes)])
    tnr = np.array([_ratio(tn[c], tn[c] + fp[c]) for c in range(n_classes)])
    f1 = np.array([_ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c]) for c in range(n_classes)])

    def _mean(v):
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else math.nan

    out = {"acc": float(tp.sum() / cm.sum()),
           "auc": float(_auc_rows(y, p, np.ones((1, y.size)))[0])}
    if n_classes == 2:
        out["f1"] = float(f1[1])
        out["sensitivity"] = float(recall[1])
        out["specificity"] = float(recall[0])
    else:
        out["f1"] = _mean(f1)
        out["sensitivity"] = _mean(recall)
        out["specificity"] = _mean(tnr)
    out["balanced_accuracy"] = _mean(recall)
    if n_boot and math.isfinite(out["auc"]):
        out["auc_ci95"] = bootstrap_auc(y, p, n_boot=n_boot, seed=seed)
    else:
        out["auc_ci95"] = [math.nan, math.nan]
    return out
