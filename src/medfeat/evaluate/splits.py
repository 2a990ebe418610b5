"""Cross-validation splits of a training set: stratified, shuffled, seeded.

The train/validation/test split of a dataset is :func:`medfeat.io.stratified_split`'s job; this
module only cuts the training split into folds.
"""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_kfold", "check_cv"]


def _labels(labels):
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    if y.dtype.kind == "f" and not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        raise ValueError("labels must be integer class labels")
    if y.dtype.kind not in "iubf":
        raise ValueError(f"labels must be integer class labels, got dtype {y.dtype}")
    return y.astype(np.int64)


def check_cv(cv, labels):
    """The number of folds ``cv`` asks for on ``labels``: 0 for none, else an int ``k >= 2``.

    Parameters
    ----------
    cv : int or None
        ``None`` or 0 means no cross-validation.
    labels : array_like, shape (n,)

    Returns
    -------
    int

    Raises
    ------
    ValueError
        ``cv`` is not an integer, is 1 or negative, or exceeds the size of the smallest class
        (a fold would miss that class).

    Examples
    --------
    >>> check_cv(3, [0, 0, 0, 1, 1, 1]), check_cv(None, [0, 1])
    (3, 0)
    """
    if cv is None or (isinstance(cv, (int, np.integer)) and not isinstance(cv, bool)
                      and cv == 0):
        return 0
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv must be None, 0 (no cross-validation) or an integer >= 2 "
                         f"(folds), got {cv!r}")
    y = _labels(labels)
    counts = np.bincount(y)
    smallest = int(counts[counts > 0].min())
    if cv > smallest:
        raise ValueError(f"cv={cv} folds, but the smallest class of the training split has only "
                         f"{smallest} sample(s): every fold must hold every class")
    return int(cv)


def stratified_kfold(labels, k=5, *, seed=0):
    """Stratified, shuffled k-fold cross-validation indices.

    Each class is shuffled with ``seed``; the classes are laid end to end and dealt to the
    folds in turn, so each fold holds ``n_c / k`` (rounded) samples of every class ``c`` and
    the fold sizes differ by at most one. Shuffling matters: a training split ordered by class
    (as PneumoniaMNIST's copy in ``../shared/data``) would otherwise give folds of one class.

    Parameters
    ----------
    labels : array_like, shape (n,) or (n, 1)
        Integer class labels.
    k : int, optional
        Number of folds, ``2 <= k <=`` the size of the smallest class.
    seed : int, optional
        Seed of the shuffle: same seed, same folds.

    Returns
    -------
    list of (ndarray, ndarray)
        ``k`` pairs ``(train_idx, test_idx)`` of sorted int64 indices; the test parts are
        disjoint and cover ``range(n)``.

    Raises
    ------
    ValueError
        Bad ``labels`` or ``k`` (see :func:`check_cv`).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0] * 6 + [1] * 9)
    >>> folds = stratified_kfold(y, 3, seed=0)
    >>> [np.bincount(y[test]).tolist() for _, test in folds]
    [[2, 3], [2, 3], [2, 3]]
    """
    y = _labels(labels)
    if check_cv(k, y) == 0:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)])
    fold = np.empty(y.size, dtype=np.int64)
    fold[order] = np.arange(y.size) % k
    folds = []
    for i in range(k):
        test = np.flatnonzero(fold == i)
        train = np.flatnonzero(fold != i)
        folds.append((train, test))
    return folds
