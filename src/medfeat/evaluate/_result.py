"""What the harness returns: one :class:`MethodResult` per method inside an :class:`Evaluation`.

These two classes are the contract between :mod:`medfeat.evaluate` (which fills them),
:mod:`medfeat.report` (which draws them) and :mod:`medfeat.pipeline` (which tabulates them).
``Evaluation.to_dict()`` is the ``metrics.json`` document (its schema is in the project's
ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["MethodResult", "Evaluation", "METRICS", "jsonable"]

#: Scalar metrics every method gets on the test split (and per CV fold), in table order.
METRICS = ("acc", "auc", "f1", "sensitivity", "specificity", "balanced_accuracy")


def jsonable(value):
    """Plain JSON types: NumPy scalars and arrays to Python, NaN/inf to None (recursively).

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"auc": np.float32(0.5), "ci": np.array([0.4, np.nan]), 3: (np.int64(2),)})
    {'auc': 0.5, 'ci': [0.4, None], '3': [2]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


@dataclasses.dataclass
class MethodResult:
    """Scores of one method, fitted on the training split and scored on the test split.

    Attributes
    ----------
    name : str
        The method's name in tables and plots ("knn", "cnn", ...).
    family : {"classical", "deep"}
    test : dict
        :data:`METRICS` on the test split, plus ``"auc_ci95": [lo, hi]`` (bootstrap).
    cv : dict
        Cross-validation on the training split: ``{"k": K, "folds": [{metric: value}, ...],
        "mean": {metric: value}, "std": {metric: value}}``; empty when not run.
    fit_seconds, predict_seconds : float
        Wall time of the final fit (on train, with val for model selection) and of predicting
        the test split.
    y_true : ndarray, shape (n_test,) or (n_test, n_labels)
        Test labels (a 0/1 matrix for a multi-label task).
    proba : ndarray, shape (n_test, n_classes) or (n_test, n_labels)
        Test class probabilities (the positive-class column is ``proba[:, 1]`` for binary tasks;
        one independent probability per finding for a multi-label task).
    confusion : ndarray, shape (n_classes, n_classes) or (n_labels, 2, 2)
        Counts, rows true class, columns predicted class (multi-label: one 2 x 2 matrix per
        finding at threshold 0.5).
    estimator : object, optional
        The fitted model (a scikit-learn Pipeline or a ``medfeat.deep.DeepClassifier``).
    params : dict
        The settings the method ran with (for the report).
    """

    name: str
    family: str
    test: dict
    cv: dict
    fit_seconds: float
    predict_seconds: float
    y_true: np.ndarray
    proba: np.ndarray
    confusion: np.ndarray
    estimator: Any = None
    params: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        """This method's entry of ``metrics.json``."""
        return jsonable({"family": self.family, "test": self.test, "cv": self.cv,
                          "fit_seconds": self.fit_seconds,
                          "predict_seconds": self.predict_seconds,
                          "confusion": self.confusion, "params": self.params})


@dataclasses.dataclass
class Evaluation:
    """Every method's scores on one dataset, and the paired test of the best of each road.

    Attributes
    ----------
    dataset : dict
        ``{"name", "n_train", "n_val", "n_test", "classes"}``.
    methods : dict of str to MethodResult
        In the order they ran.
    comparison : dict or None
        Paired test of the best classical against the best deep method by test AUC:
        ``{"classical": name, "deep": name, "test": "delong" | "paired_bootstrap",
        "auc_difference": deep - classical, "ci95": [lo, hi], "p_value": p}``; None when one
        road is missing.
    seed : int
    settings : dict
        What the run was asked for (cv, epochs, backend, ...).
    test_images : ndarray, optional
        The test split's images (for attribution heat maps in the report).
    gan : medfeat.deep.gan.ConditionalGAN, optional
        The fitted GAN of the ``"<kind>+gan"`` methods (for the report's grid of generated
        images beside real ones); not part of ``metrics.json``.
    """

    dataset: dict
    methods: dict
    comparison: dict | None = None
    seed: int = 0
    settings: dict = dataclasses.field(default_factory=dict)
    test_images: np.ndarray | None = None
    gan: Any = None

    def best(self, family=None, metric="auc"):
        """Name of the method with the highest test ``metric`` (ties: first that ran), optionally
        within one ``family``; None when there is no such method."""
        names = [n for n, r in self.methods.items() if family is None or r.family == family]
        scores = {n: self.methods[n].test.get(metric) for n in names}
        scores = {n: s for n, s in scores.items() if s is not None and math.isfinite(s)}
        return max(scores, key=scores.get) if scores else None

    def to_dict(self):
        """The ``metrics.json`` document (schema in ARCHITECTURE.md)."""
        return jsonable({"dataset": self.dataset,
                          "methods": {n: r.to_dict() for n, r in self.methods.items()},
                          "comparison": self.comparison, "best": self.best(),
                          "seed": self.seed, "settings": self.settings})
