"""Accuracy of the classical road on PneumoniaMNIST (a script, not a test).

Usage: ``python -m benchmarks.accuracy_classical [path/to/pneumoniamnist.npz]`` (default
``../shared/data/pneumoniamnist.npz``). For every classifier of :func:`medfeat.classical.
make_classifier`: first its defaults (and the previous defaults, for comparison), then fit on the
training split, choose the hyper-parameters on the validation split (ROC AUC; ties keep the first
of the grid), report test ACC (threshold 0.5 on the pneumonia probability, as MedMNIST's evaluator)
and test AUC. Then kNN (its default pipeline) in 3-fold stratified, shuffled cross-validation on the
training split (which is ordered by class, hence the shuffle).

The FeatureExtractor learns nothing from the data (``fit`` records the image shape only), so the
features are computed once per split and the rest of each Pipeline (scaler, classifier) is fitted on
them: the result is the same as refitting the whole Pipeline each time, minus the repeated work.

Note: this copy's training split is more imbalanced than the official one (388 normal / 3,494
pneumonia instead of 1,214 / 3,494; see ../shared/data/README.md), so the numbers compare only
loosely with the MedMNIST v2 paper (Yang et al., Sci. Data 10:41, 2023; data from Kermany et al.,
Cell 2018).
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from medfeat.classical import make_classifier
from medfeat.features import FeatureExtractor
from medfeat.io import load_npz

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "pneumoniamnist.npz"

GRIDS = {
    "knn": {"n_neighbors": [5, 15, 31, 51, 101], "weights": ["uniform", "distance"],
            "scaler": ["standard", "quantile"], "class_weight": ["balanced", None]},
    "tree": {"max_depth": [4, 6, 8, 12], "min_samples_leaf": [5, 10, 20, 40]},
    "nb": {"n_components": [10, 20, 40, None], "priors": ["balanced", None],
           "var_smoothing": [1e-9, 1e-3], "scaler": ["standard", "quantile"]},
    "forest": {"min_samples_leaf": [1, 2, 5], "max_features": ["sqrt", 0.3]},
    "logreg": {"C": [0.01, 0.1, 1.0, 10.0]},
    "gboost": {"learning_rate": [0.05, 0.1], "max_leaf_nodes": [15, 31]},
}


#: make_classifier's heads (scaler + classifier) before 2026-11-27, for the before/after table
#: in the same run: kNN with z-scores and plain votes, a tree of depth 6, plain GaussianNB.
PREVIOUS = {
    "knn": lambda: _head("knn", scaler="standard", class_weight=None),
    "tree": lambda: _head("tree", scaler="standard", max_depth=6),
    "nb": lambda: Pipeline([("scale", StandardScaler()), ("clf", GaussianNB())]),
}


def _head(kind, random_state=0, **params):
    """The scaler + classifier part of make_classifier's Pipeline."""
    pipe = make_classifier(kind, random_state=random_state, n_jobs=2, **params)
    return Pipeline(pipe.steps[1:])


def main(path=DEFAULT):
    ds = load_npz(path)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = [(s.images, s.labels.ravel())
                                          for s in (ds.train, ds.val, ds.test)]
    print(f"{ds.name}: train {len(ytr)} ({np.bincount(ytr).tolist()}), val {len(yva)} "
          f"({np.bincount(yva).tolist()}), test {len(yte)} ({np.bincount(yte).tolist()}); "
          f"load average {os.getloadavg()}")
    fx = FeatureExtractor(n_jobs=2).fit(Xtr)
    t0 = time.perf_counter()
    Ftr, Fva, Fte = fx.transform(Xtr), fx.transform(Xva), fx.transform(Xte)
    dt = time.perf_counter() - t0
    n_img = len(Xtr) + len(Xva) + len(Xte)
    print(f"features: {Ftr.shape[1]} per image, {n_img} images in {dt:.1f} s "
          f"({n_img / dt:.0f} images/s at 28x28)")

    def test_scores(model):
        p = model.predict_proba(Fte)[:, 1]
        return accuracy_score(yte, (p >= 0.5).astype(int)), roc_auc_score(yte, p)

    defaults = []
    for kind in GRIDS:
        current = functools.partial(_head, kind)
        for label, make in (("previous", PREVIOUS.get(kind)), ("current", current)):
            if make is None:
                continue
            model = make().fit(Ftr, ytr)
            vp = model.predict_proba(Fva)[:, 1]
            defaults.append((kind, label, roc_auc_score(yva, vp),
                             accuracy_score(yva, (vp >= 0.5).astype(int)), *test_scores(model)))
    print("\n| classifier | defaults | val AUC | val ACC | test ACC | test AUC |")
    print("|---|---|---|---|---|---|")
    for kind, label, vauc, vacc, acc, auc in defaults:
        print(f"| {kind} | {label} | {vauc:.3f} | {vacc:.3f} | {acc:.3f} | {auc:.3f} |")

    rows = []
    for kind, grid in GRIDS.items():
        best = (-np.inf, None)
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            params = dict(zip(keys, values))
            model = _head(kind, **params).fit(Ftr, ytr)
            auc = roc_auc_score(yva, model.predict_proba(Fva)[:, 1])
            if auc > best[0]:
                best = (auc, params)
        model = _head(kind, **best[1]).fit(Ftr, ytr)
        rows.append((kind, best[1], best[0], *test_scores(model)))

    print("\n| classifier | chosen on val | val AUC | test ACC | test AUC |")
    print("|---|---|---|---|---|")
    for kind, params, vauc, acc, auc in rows:
        ptxt = ", ".join(f"{k}={v}" for k, v in params.items())
        print(f"| {kind} | {ptxt} | {vauc:.3f} | {acc:.3f} | {auc:.3f} |")

    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    knn = _head("knn")
    scores = cross_val_score(clone(knn), Ftr, ytr, cv=cv, scoring="roc_auc")
    print(f"\nkNN (defaults: {knn.named_steps['clf'].n_neighbors} neighbours, distance-weighted, "
          f"balanced votes, quantile scaling) 3-fold stratified shuffled CV on train: AUC "
          f"{scores.mean():.3f} +- {scores.std():.3f} (folds {np.round(scores, 3).tolist()}); "
          f"target >= 0.90: {'met' if scores.mean() >= 0.90 else 'NOT met'}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT)
