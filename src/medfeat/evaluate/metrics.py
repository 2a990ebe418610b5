"""Scores of class probabilities: ACC, ROC AUC, F1, sensitivity, specificity, balanced accuracy,
and a stratified bootstrap confidence interval of the AUC.

Binary tasks follow the MedMNIST v2 evaluator (Yang et al., Scientific Data 10:41, 2023): the
prediction is "positive" when the positive-class probability ``proba[:, 1]`` is above 0.5, and the
AUC is that of ``proba[:, 1]``. Multi-class tasks predict the arg-max and average one-vs-rest
scores over the classes (macro).

Multi-label tasks (several independent 0/1 findings per image, as ChestMNIST's 14) take labels
``(n, L)`` of 0/1 with ``L >= 2`` and probabilities ``(n, L)``, one independent probability per
label (rows need not sum to 1). They are scored as the MedMNIST evaluator does: AUC is the mean of
the per-label AUCs, ACC the mean per-label accuracy at threshold 0.5 (:func:`score`,
:func:`per_label_scores`). A ``(n, 1)`` label column stays a single-label task.

All functions check their input first and raise ``ValueError`` naming the argument at fault.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["score", "confusion", "roc_auc", "bootstrap_auc", "check_scores", "is_multilabel",
           "per_label_scores"]

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
    if y.ndim == 2 and y.shape[1] >= 2:
        return _check_multilabel(y, proba, n_classes, name)
    if y.ndim != 1:
        raise ValueError(f"y_true must be a 1-D array of class labels or a 0/1 matrix (n, "
                         f"n_labels) of a multi-label task, got shape {y.shape}")
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


def is_multilabel(y_true):
    """True when ``y_true`` is a multi-label target: a 2-D array with at least two columns.

    Examples
    --------
    >>> is_multilabel([[0, 1], [1, 1]]), is_multilabel([[0], [1]]), is_multilabel([0, 1])
    (True, False, False)
    """
    shape = np.shape(y_true)
    return len(shape) == 2 and shape[1] >= 2


def _check_multilabel(y, proba, n_labels, name):
    """:func:`check_scores` of a multi-label task: int64 0/1 ``(n, L)`` and float64 ``(n, L)``
    probabilities in [0, 1], one independent probability per label."""
    if y.shape[0] == 0:
        raise ValueError("y_true is empty")
    if y.dtype.kind not in "iubf":
        raise ValueError(f"y_true must hold 0/1 labels, got dtype {y.dtype}")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("y_true of a multi-label task (shape (n, n_labels)) must hold 0 and 1 "
                         "only")
    y = y.astype(np.int64)
    p = np.asarray(proba)
    if p.dtype.kind not in "iufb":
        raise ValueError(f"{name} must be a real numeric array, got dtype {p.dtype}")
    p = p.astype(np.float64)
    if p.shape != y.shape:
        raise ValueError(f"{name} must have shape {y.shape} (one probability per label) to "
                         f"match the multi-label y_true, got {np.shape(proba)}")
    if n_labels is not None and p.shape[1] != n_labels:
        raise ValueError(f"{name} must have {n_labels} columns, got {p.shape[1]}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains NaN or infinity")
    if p.min() < -_PROBA_TOL or p.max() > 1 + _PROBA_TOL:
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values in "
                         f"[{p.min():.4g}, {p.max():.4g}]")
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
        Counts, rows the true class, columns the predicted class; for a multi-label task
        (``y_true`` ``(n, L)``) one such 2 x 2 matrix per label, ``(L, 2, 2)``.

    Examples
    --------
    >>> confusion([0, 0, 1, 1], [[0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.9, 0.1]]).tolist()
    [[1, 1], [1, 1]]
    """
    y, p = check_scores(y_true, proba)
    return _confusion_of(y, p)


def _confusion_of(y, p):
    """The confusion matrix of checked scores; multi-label: one 2 x 2 matrix per label
    ``(n_labels, 2, 2)`` (``proba[:, k] > 0.5``)."""
    if y.ndim == 2:
        pred = (p > 0.5).astype(np.int64)
        return np.stack([_confusion(y[:, k], pred[:, k], 2) for k in range(y.shape[1])])
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
    if y.ndim == 2:
        # multi-label: the mean over the labels with both values in y_true (a fixed set, so
        # that bootstrap replicates average the same labels; NaN where one of them is lost)
        keep = [k for k in range(y.shape[1]) if 0 < y[:, k].sum() < y.shape[0]]
        if not keep:
            return np.full(weights.shape[0], np.nan)
        return np.stack([_weighted_auc(p[:, k], y[:, k] == 1, weights)
                         for k in keep]).mean(axis=0)
    n_classes = p.shape[1]
    if n_classes == 2:
        return _weighted_auc(p[:, 1], y == 1, weights)
    per_class = np.stack([_weighted_auc(p[:, c], y == c, weights) for c in range(n_classes)])
    # a class absent from y_true leaves its one-vs-rest AUC undefined, and so the macro average
    return per_class.mean(axis=0)


def roc_auc(y_true, proba):
    """ROC AUC: of ``proba[:, 1]`` for two classes, one-vs-rest macro average otherwise, and
    the mean of the per-label AUCs for a multi-label task (``y_true`` a 0/1 matrix ``(n, L)``,
    ``proba`` ``(n, L)``; the labels with both values in ``y_true``).

    Parameters
    ----------
    y_true : array_like, shape (n,) or (n, n_labels)
    proba : array_like, shape (n, n_classes) or (n, n_labels)

    Returns
    -------
    float
        NaN when a class is absent from ``y_true`` (the AUC is undefined then).

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    0.75
    >>> roc_auc([[0, 1], [1, 1], [0, 0], [1, 0]], [[.2, .9], [.7, .4], [.4, .3], [.6, .8]])
    0.875
    """
    y, p = check_scores(y_true, proba)
    return float(_auc_rows(y, p, np.ones((1, y.shape[0])))[0])


def _stratified_counts(y, n_classes, n_boot, rng):
    """Bootstrap multiplicities ``(n_boot, n)``: each class resampled within itself, so every
    replicate keeps the class counts of ``y``. Multi-label ``y`` is stratified by each row's
    rarest positive label (:func:`medfeat.io.label_strata`), so that the labels keep positives."""
    if y.ndim == 2:
        from ..io.datasets import label_strata

        y = label_strata(y, min_count=1)
        n_classes = int(y.max()) + 1
    counts = np.zeros((n_boot, y.shape[0]))
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
    (a class absent from ``y_true``) is skipped. A multi-label task's rows are stratified by
    their rarest positive label (:func:`medfeat.io.label_strata`), and the interval is that of
    the mean per-label AUC; a replicate that loses every positive (or negative) of a label is
    skipped.

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
    chunk = max(1, min(int(n_boot), 2_000_000 // max(y.size, 1)))   # bounded memory (y.size:
    # the rows times the labels of a multi-label task, whose replicates cost a pass per label)
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
        ``"balanced_accuracy"`` (floats) and ``"auc_ci95"`` (``[lo, hi]``); multi-label tasks
        also ``"per_label"`` (a list of dicts, :func:`per_label_scores`).

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

    Multi-label (``y_true`` a 0/1 matrix ``(n, L)``, ``L >= 2``, ``proba`` ``(n, L)``), as the
    MedMNIST evaluator scores ChestMNIST: each label is a binary task predicted positive at
    ``proba[:, k] > 0.5``; ACC is the mean per-label accuracy, AUC the mean of the per-label
    AUCs (over the labels that have both values in ``y_true``; the MedMNIST evaluator's
    mean over all labels when every label has both), F1, sensitivity, specificity and balanced
    accuracy the means of the per-label ones. ``"auc_ci95"`` is the bootstrap interval of that
    mean (rows resampled, stratified by each row's rarest positive label), and
    ``"per_label"`` lists every label's scores with its own AUC interval
    (:func:`per_label_scores`).

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
    >>> m = score([[0, 1], [1, 1], [0, 0], [1, 0]],
    ...           [[0.2, 0.9], [0.7, 0.4], [0.4, 0.3], [0.6, 0.8]], n_boot=0)
    >>> m["auc"], m["acc"], [r["auc"] for r in m["per_label"]]
    (0.875, 0.75, [1.0, 0.75])
    """
    y, p = check_scores(y_true, proba)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    if y.ndim == 2:
        return _score_multilabel(y, p, n_boot, seed)
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
           "auc": float(_auc_rows(y, p, np.ones((1, y.shape[0])))[0])}
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


def _binary_counts(y, pred):
    """``(tp, fn, fp, tn)`` of one label's 0/1 truth and prediction."""
    tp = float(np.sum((y == 1) & (pred == 1)))
    fn = float(np.sum((y == 1) & (pred == 0)))
    fp = float(np.sum((y == 0) & (pred == 1)))
    tn = float(np.sum((y == 0) & (pred == 0)))
    return tp, fn, fp, tn


def per_label_scores(y_true, proba, *, n_boot=1000, seed=0, names=None):
    """Scores of each label of a multi-label task, as binary tasks.

    Parameters
    ----------
    y_true : array_like, shape (n, n_labels)
        0/1 findings, ``n_labels >= 2``.
    proba : array_like, shape (n, n_labels)
        Independent probability of each finding.
    n_boot : int, optional
        Bootstrap replicates of each label's AUC interval (stratified by that label, as
        :func:`bootstrap_auc`); 0 skips the intervals (``[nan, nan]``).
    seed : int, optional
    names : sequence of str, optional
        Label names (default ``"0"``, ``"1"``, ...).

    Returns
    -------
    list of dict
        One per label, in column order: ``"label"`` (name), ``"n_positive"``, ``"acc"``
        (accuracy of ``proba > 0.5``), ``"auc"`` (NaN when the label has one value only),
        ``"auc_ci95"``, ``"f1"``, ``"sensitivity"``, ``"specificity"``.

    Examples
    --------
    >>> y = [[0, 1], [1, 1], [0, 0], [1, 0]]
    >>> p = [[0.2, 0.9], [0.7, 0.4], [0.4, 0.3], [0.6, 0.8]]
    >>> rows = per_label_scores(y, p, n_boot=0, names=["a", "b"])
    >>> [(r["label"], r["auc"], r["acc"]) for r in rows]
    [('a', 1.0, 1.0), ('b', 0.75, 0.5)]
    """
    y, p = check_scores(y_true, proba)
    if y.ndim != 2:
        raise ValueError(f"y_true must be a 0/1 matrix (n, n_labels) with n_labels >= 2 for "
                         f"per-label scores, got shape {np.shape(y_true)}")
    n_labels = y.shape[1]
    if names is None:
        names = [str(k) for k in range(n_labels)]
    names = [str(n) for n in names]
    if len(names) != n_labels:
        raise ValueError(f"names must give one name per label ({n_labels}), got {len(names)}")
    rows = []
    for k in range(n_labels):
        yk = y[:, k]
        pk = np.column_stack([1.0 - p[:, k], p[:, k]])
        s = score(yk, pk, n_boot=n_boot, seed=seed)
        rows.append({"label": names[k], "n_positive": int(yk.sum()), "acc": s["acc"],
                     "auc": s["auc"], "auc_ci95": s["auc_ci95"], "f1": s["f1"],
                     "sensitivity": s["sensitivity"], "specificity": s["specificity"]})
    return rows


def _score_multilabel(y, p, n_boot, seed):
    """:func:`score` of a multi-label task (already checked)."""
    pred = (p > 0.5).astype(np.int64)
    accs, f1s, sens, specs, bals = [], [], [], [], []
    for k in range(y.shape[1]):
        tp, fn, fp, tn = _binary_counts(y[:, k], pred[:, k])
        accs.append((tp + tn) / y.shape[0])
        f1s.append(_ratio(2 * tp, 2 * tp + fp + fn))
        sens.append(_ratio(tp, tp + fn))
        specs.append(_ratio(tn, tn + fp))
        recalls = [r for r in (sens[-1], specs[-1]) if math.isfinite(r)]
        bals.append(float(np.mean(recalls)) if recalls else math.nan)

    def _mean(v):
        v = np.asarray(v, dtype=np.float64)
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else math.nan

    out = {"acc": float(np.mean(accs)),
           "auc": float(_auc_rows(y, p, np.ones((1, y.shape[0])))[0]),
           "f1": _mean(f1s), "sensitivity": _mean(sens), "specificity": _mean(specs),
           "balanced_accuracy": _mean(bals)}
    if n_boot and math.isfinite(out["auc"]):
        out["auc_ci95"] = bootstrap_auc(y, p, n_boot=n_boot, seed=seed)
    else:
        out["auc_ci95"] = [math.nan, math.nan]
    out["per_label"] = per_label_scores(y, p, n_boot=n_boot, seed=seed)
    return out
