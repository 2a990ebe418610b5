"""Model selection on the validation split, within a time budget.

Every method named to :func:`~medfeat.evaluate.evaluate` has a small search space here
(:data:`CLASSICAL_SPACES`, :data:`DEEP_SPACES`). Candidates are scored by their ROC AUC on the
validation split (never on test), and one rule picks the winner for every method:

*The default unless the evidence says otherwise* -- the one-standard-error rule of Breiman et al.
(Classification and Regression Trees, 1984; Hastie, Tibshirani and Friedman, The Elements of
Statistical Learning, 2nd ed., section 7.10) anchored at the method's default: a candidate
replaces the default only when its validation AUC is higher by more than one standard error of
that AUC (Hanley and McNeil, Radiology 1982). On a validation split of a few dozen images the
AUC of a handful of candidates differs mostly by noise, and the maximum of noisy scores is an
optimistic, unstable choice; on a large one the standard error is small and the best candidate
wins.

The classical road searches exhaustively (its trials take milliseconds on cached features): first
the feature families, dropping one family at a time at the default settings, then the
classifier's settings on the families kept. The deep road runs a seeded random search
(Bergstra and Bengio, JMLR 2012): the default first, then random candidates, as many as the
budget allows by a cost model fixed before any training, so that the same data, seed and
budget give the same trials on any machine and at any load. The wall clock stops the search only
past :data:`WALL_CLOCK_VALVE` times the budget (a machine far slower or busier than the model
assumes), and the log says so.

Deep defaults adapt to the training split: the batch is about a twentieth of it (a power of
two between 16 and 128) so that small datasets still take enough optimiser steps per epoch,
and the epochs grow until an epoch budget of about :data:`TARGET_STEPS` steps is reached.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

__all__ = ["CLASSICAL_SPACES", "DEEP_SPACES", "DEFAULT_BUDGET", "Budget", "Trial", "auc_se",
           "choose", "deep_base", "deep_candidates", "estimate_seconds"]

#: Minutes of the whole evaluation (search, final fits, scoring) when not told: sized so that
#: about 1,000 images of 28 x 28 finish in under 10 minutes on two CPU cores.
DEFAULT_BUDGET = 9.0

#: Classifier settings searched per classical kind (a grid; the kind's default is always in it).
CLASSICAL_SPACES = {
    "knn": {"n_neighbors": [5, 9, 15, 25, 41], "weights": ["uniform", "distance"]},
    "tree": {"max_depth": [3, 4, 6, 8], "min_samples_leaf": [5, 10, 20]},
    "nb": {"n_components": [10, 20, 40, 60]},
    "logreg": {"C": [0.03, 0.1, 0.3, 1.0]},
    "forest": {"n_estimators": [150, 300], "min_samples_leaf": [1, 2, 5],
               "max_features": ["sqrt", 0.3]},
    "gboost": {"max_iter": [150, 300], "learning_rate": [0.05, 0.1],
               "max_leaf_nodes": [15, 31]},
}

#: ``DeepClassifier`` settings searched per deep kind (random candidates drawn from these;
#: ``model_options`` keys are prefixed ``model.``). ``tta`` is not trained: every trial is
#: scored on validation with and without flips.
DEEP_SPACES = {
    "cnn": {"model.width": [16, 32, 48], "model.dropout": [0.0, 0.3, 0.5],
            "model.pool": ["flatten", "avg", "max"], "lr": [5e-4, 1e-3, 2e-3, 4e-3],
            "lr_schedule": ["cosine", "constant"], "augment": [None, "light", "default"],
            "epochs_factor": [1, 2]},
    "resnet18": {"model.width": [16, 24], "model.dropout": [0.0, 0.2],
                 "lr": [5e-4, 1e-3, 2e-3], "lr_schedule": ["cosine", "constant"],
                 "augment": [None, "light", "default"], "epochs_factor": [1, 2]},
}

#: The same for volumes ``(n, D, H, W)``, where ``"cnn"`` and ``"resnet18"`` build their 3-D
#: twins: narrower, since every layer costs a depth's worth more.
VOLUME_SPACES = {
    "cnn": {"model.width": [8, 16, 24], "model.dropout": [0.0, 0.3],
            "model.pool": ["avg", "max"], "lr": [5e-4, 1e-3, 2e-3],
            "lr_schedule": ["cosine", "constant"], "augment": [None, "light", "default"],
            "epochs_factor": [1, 2]},
    "resnet18": {"model.width": [8, 16], "model.dropout": [0.0, 0.2], "lr": [5e-4, 1e-3, 2e-3],
                 "lr_schedule": ["cosine", "constant"], "augment": [None, "light", "default"],
                 "epochs_factor": [1, 2]},
}

#: The wall clock stops starting deep trials past this many times the budget (the cost model
#: keeps runs on a two-core machine within it; a busy machine runs slower, and stopping by the
#: clock would change the trials, and so the numbers, with the load).
WALL_CLOCK_VALVE = 2.0

#: Most trials per deep method (the default included).
MAX_DEEP_TRIALS = 8
#: Epochs of the 3-D twins by default: on AdrenalMNIST3D (1,188 volumes of 28^3) the 3-D CNN's
#: validation AUC had levelled off by then (benchmarks/results/volumes-2026-12-03.md).
VOLUME_EPOCHS = 10
#: Optimiser steps the adapted default epochs aim at (15 epochs of 128 on PneumoniaMNIST's
#: 3,882 training images is about 450).
TARGET_STEPS = 450
#: Milliseconds per training image and epoch at 28 x 28, batch 128, the kind's default width, on
#: a two-core x86-64 CPU (TensorFlow 2.21); smaller batches cost more per image (below).
_MS_PER_IMAGE_EPOCH = {"cnn": 2.5, "resnet18": 4.0}
_MS_DEFAULT = 6.0
#: Seconds of every training beyond its epochs (building, tracing, the first epoch's graph).
_OVERHEAD_SECONDS = 8.0
#: The widths the constants above were measured at (2-D; the 3-D twins default to 16).
_BASE_WIDTH = {"cnn": 32, "resnet18": 16}
_BASE_WIDTH_3D = {"cnn": 16, "resnet18": 16}
#: Milliseconds per training volume of 28^3 and epoch, batch 128, the 3-D default widths.
_MS_PER_VOLUME_EPOCH = {"cnn": 30.0, "resnet18": 35.0}
#: How a 2-D training's cost grows with the pixels beyond 28 x 28 (measured at 28, 64 and 128 px:
#: benchmarks/results/shapes-2026-12-03.md). The cnn keeps every pixel through its first block and
#: grows a little faster than the pixels: cost ~ (pixels / 784) ** exponent.
_PIXEL_EXPONENT = {"cnn": 1.3}
#: resnet18 switches to the ImageNet stem (7 x 7 stride 2 and max pooling, medfeat.deep.models)
#: from this side on: its stages see a sixteenth of the pixels, and the full-resolution stem
#: costs about as much again as the stages (the factor).
_RESNET_STEM_FROM, _RESNET_STEM_FACTOR = 64, 1.8


@dataclasses.dataclass
class Trial:
    """One candidate: its settings, validation AUC, seconds, and anything to say about it."""

    settings: dict
    val_auc: float
    seconds: float
    note: str = ""

    def to_dict(self):
        return {"settings": self.settings, "val_auc": self.val_auc,
                "seconds": round(self.seconds, 3), **({"note": self.note} if self.note else {})}


class Budget:
    """Wall-clock minutes for a whole evaluation (None: unlimited).

    Examples
    --------
    >>> b = Budget(1.0)
    >>> b.seconds, b.left() <= 60.0
    (60.0, True)
    >>> Budget(None).left()
    inf
    """

    def __init__(self, minutes):
        if minutes is None:
            self.seconds = math.inf
        else:
            if isinstance(minutes, bool) or not isinstance(minutes, (int, float, np.integer,
                                                                     np.floating)) \
                    or not minutes > 0 or not math.isfinite(float(minutes)):
                raise ValueError(f"budget must be None or a positive number of minutes, got "
                                 f"{minutes!r}")
            self.seconds = float(minutes) * 60.0
        self.start = time.perf_counter()

    def elapsed(self):
        return time.perf_counter() - self.start

    def left(self):
        return self.seconds - self.elapsed()


def auc_se(y, proba):
    """Standard error of a ROC AUC (Hanley and McNeil, Radiology 143:29, 1982).

    Binary: of ``proba[:, 1]``. More classes: of the one-vs-rest macro mean, taking the
    per-class AUCs as independent (``sqrt(sum se_c^2) / n_classes``); multi-label (``y`` a 0/1
    matrix ``(n, L)``): the same over the per-label AUCs. NaN where undefined.

    Examples
    --------
    >>> round(auc_se([0, 0, 0, 1, 1, 1], [[.9, .1], [.8, .2], [.4, .6], [.3, .7], [.2, .8],
    ...                                   [.6, .4]]), 3)
    0.153
    """
    from .metrics import check_scores, roc_auc

    y, p = check_scores(y, proba)

    def one(positive, score):
        n1, n0 = int(positive.sum()), int((~positive).sum())
        if n1 == 0 or n0 == 0:
            return math.nan
        a = roc_auc(positive.astype(int), np.column_stack([1 - score, score]))
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
        return math.sqrt(max(var, 0.0))

    if y.ndim == 2:          # multi-label: of the mean over the labels with both values
        ses = [one(y[:, k] == 1, p[:, k]) for k in range(y.shape[1])
               if 0 < y[:, k].sum() < y.shape[0]]
        return math.sqrt(sum(s * s for s in ses)) / len(ses) if ses else math.nan
    if p.shape[1] == 2:
        return one(y == 1, p[:, 1])
    ses = [one(y == c, p[:, c]) for c in range(p.shape[1])]
    if any(not math.isfinite(s) for s in ses):
        return math.nan
    return math.sqrt(sum(s * s for s in ses)) / len(ses)


def choose(trials, se):
    """Index of the winner: the first trial (the default) unless the best validation AUC beats
    it by more than ``se``; then the best (the earliest among equals).

    Examples
    --------
    >>> t = [Trial({}, 0.80, 1.0), Trial({"k": 5}, 0.82, 1.0), Trial({"k": 9}, 0.90, 1.0)]
    >>> choose(t, se=0.05), choose(t, se=0.2)
    (2, 0)
    """
    scores = np.array([t.val_auc if t.val_auc is not None and math.isfinite(t.val_auc)
                       else -np.inf for t in trials])
    if not np.isfinite(scores).any():
        return 0
    best = int(np.argmax(scores))
    if not np.isfinite(scores[0]):
        return best
    margin = se if se is not None and math.isfinite(se) else 0.0
    return best if scores[best] > scores[0] + margin else 0


def classical_grid(kind, defaults):
    """The settings of :data:`CLASSICAL_SPACES` for ``kind`` as a list of dicts, the kind's
    ``defaults`` (its values for the searched keys) first."""
    import itertools

    space = CLASSICAL_SPACES.get(kind)
    if not space:
        return [{}]
    keys = list(space)
    base = {k: defaults.get(k) for k in keys}
    out = [base]
    for values in itertools.product(*(space[k] for k in keys)):
        cand = dict(zip(keys, values))
        if cand != base:
            out.append(cand)
    return out


def deep_base(kind, n_train, *, epochs=None, volumes=False):
    """The adapted default ``DeepClassifier`` settings of a deep kind for ``n_train`` images
    (volumes: :data:`VOLUME_EPOCHS` epochs, each costing a depth's worth of 2-D ones).

    Examples
    --------
    >>> deep_base("cnn", 3882)["batch_size"], deep_base("cnn", 546)["batch_size"]
    (128, 32)
    >>> deep_base("cnn", 546)["epochs"] > deep_base("cnn", 3882)["epochs"]
    True
    """
    from ..deep.training import KIND_DEFAULTS

    batch = int(2 ** round(math.log2(max(n_train / 20.0, 1.0))))
    batch = int(min(128, max(16, batch)))
    base_epochs = KIND_DEFAULTS.get(kind, {}).get("epochs", 15)
    steps = max(1, math.ceil(n_train / batch))
    if epochs is None and volumes:
        epochs = VOLUME_EPOCHS
    elif epochs is None:
        epochs = int(min(4 * base_epochs, max(base_epochs, math.ceil(TARGET_STEPS / steps))))
    patience = int(max(5, epochs // 4))
    return {"batch_size": batch, "epochs": int(epochs), "patience": patience}


def _apply(base, sample):
    """DeepClassifier keyword arguments of ``base`` updated by a drawn ``sample``."""
    params = dict(base)
    options = dict(params.pop("model_options", None) or {})
    for key, value in sample.items():
        if key.startswith("model."):
            options[key[len("model."):]] = value
        elif key == "epochs_factor":
            params["epochs"] = int(base["epochs"] * value)
            params["patience"] = int(max(base.get("patience", 5), params["epochs"] // 4))
        else:
            params[key] = value
    if options:
        params["model_options"] = options
    return params


def deep_candidates(kind, base, *, seed, n, fixed_epochs=False, volumes=False):
    """``n`` distinct candidate settings for a deep kind, ``base`` first, then seeded random
    draws from :data:`DEEP_SPACES` (:data:`VOLUME_SPACES` for volumes; ``epochs_factor`` left
    out when epochs are fixed).

    Examples
    --------
    >>> c = deep_candidates("cnn", {"batch_size": 32, "epochs": 20, "patience": 5}, seed=0, n=4)
    >>> len(c), c[0]
    (4, {'batch_size': 32, 'epochs': 20, 'patience': 5})
    >>> c == deep_candidates("cnn", {"batch_size": 32, "epochs": 20, "patience": 5}, seed=0, n=4)
    True
    """
    space = dict((VOLUME_SPACES if volumes else DEEP_SPACES).get(kind, {}))
    if fixed_epochs:
        space.pop("epochs_factor", None)
    out, seen = [dict(base)], {repr(sorted(base.items()))}
    if not space:
        return out
    rng = np.random.default_rng([int(seed), 7919])
    keys = sorted(space)
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        sample = {k: space[k][int(rng.integers(len(space[k])))] for k in keys}
        cand = _apply(base, sample)
        key = repr(sorted((k, repr(v)) for k, v in cand.items()))
        if key not in seen:
            seen.add(key)
            out.append(cand)
    return out


def estimate_seconds(kind, params, n_train, n_val, image_shape, *, volumes=False):
    """Upper estimate of one training's seconds on a two-core CPU: every epoch runs (early
    stopping usually ends sooner), cost proportional to voxels, to the pixels the network's
    stages see (the cnn's to the power ``_PIXEL_EXPONENT``; resnet18's a sixteenth of them, times
    the stem's ``_RESNET_STEM_FACTOR``, from ``_RESNET_STEM_FROM`` px on, where its ImageNet
    stem downsamples) and to the width to the power 1.5 (measured between widths 16 and 64).

    Examples
    --------
    >>> small = estimate_seconds("cnn", {"epochs": 10}, 1000, 200, (28, 28))
    >>> wide = estimate_seconds("cnn", {"epochs": 10, "model_options": {"width": 64}}, 1000,
    ...                         200, (28, 28))
    >>> bool(wide > small > 0), estimate_seconds("cnn", {"epochs": 10}, 1000, 200,
    ...                                          (56, 56)) > 3 * small
    (True, True)
    >>> p = {"epochs": 10, "batch_size": 128}
    >>> [round(estimate_seconds("resnet18", p, 1000, 0, (s, s))) for s in (28, 64, 128)]
    [48, 32, 102]
    """
    if volumes:
        ms = _MS_PER_VOLUME_EPOCH.get(kind, 10 * _MS_DEFAULT)
        base_width = _BASE_WIDTH_3D.get(kind)
        pixels = float(np.prod(image_shape[:3])) / 28.0   # per 28^3 volume, in 28^2 units
    else:
        ms = _MS_PER_IMAGE_EPOCH.get(kind, _MS_DEFAULT)
        base_width = _BASE_WIDTH.get(kind)
        pixels = float(np.prod(image_shape[:2]))
        if kind == "resnet18" and min(image_shape[:2]) >= _RESNET_STEM_FROM:
            pixels = pixels / 16.0 * _RESNET_STEM_FACTOR
        elif kind in _PIXEL_EXPONENT:
            pixels = 784.0 * (pixels / 784.0) ** _PIXEL_EXPONENT[kind]
    width = (params.get("model_options") or {}).get("width", base_width)
    scale = (width / base_width) ** 1.5 if width and base_width else 1.0
    batch = params.get("batch_size", 128)
    batch_cost = 1.0 + 32.0 / max(batch, 1)    # per-step overhead weighs on small batches
    per_epoch = (n_train + 0.5 * n_val) * ms * scale * (pixels / 784.0) * batch_cost / 1.25
    return params.get("epochs", 15) * per_epoch / 1000.0 + _OVERHEAD_SECONDS
