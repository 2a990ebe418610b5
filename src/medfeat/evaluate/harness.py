"""The harness: every method, classical or deep, through the same splits and the same scores."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import numpy as np

from . import search as _search
from ._result import METRICS, Evaluation, MethodResult
from .calibration import Calibrator
from .compare import delong, paired_bootstrap
from .metrics import _confusion_of, check_scores, roc_auc, score
from .splits import check_cv, stratified_kfold
from ..io.datasets import label_strata

__all__ = ["evaluate", "method_names"]

#: Replicates of the paired bootstrap (multi-class comparison).
_COMPARE_BOOT = 2000
#: The method that mixes the best classical and the best deep method (weights chosen on val).
ENSEMBLE = "ensemble"
#: Share of the validation split carved from the training split when a dataset has none.
_CARVED_VAL = 0.15
#: A method named "<kind>+gan" is <kind> trained on the training split expanded by a
#: class-conditional GAN (medfeat.deep.gan.expand_split with these settings: every class doubled).
GAN_SUFFIX = "+gan"
_GAN_EXPANSION = {"factor": 1.0, "classes": "all"}
#: How a multi-label task (labels a 0/1 matrix (n, L)) is run: ``settings["multilabel"]``.
_MULTILABEL_NOTES = {
    "scores": "MedMNIST evaluator: AUC = mean of the per-label AUCs, ACC = mean per-label "
              "accuracy at 0.5; test['per_label'] has each label's AUC with its bootstrap CI",
    "selection": "validation AUC = mean per-label AUC; its standard error from the per-label "
                 "ones taken as independent",
    "calibration": "one binary calibration per label (a monotone map of that label's "
                   "probability: every per-label AUC unchanged)",
    "comparison": "paired bootstrap of the mean per-label AUC (rows resampled, stratified by "
                  "their rarest finding); per-label DeLong tests beside it",
    "splits": "folds and a carved validation split stratified by each row's rarest positive "
              "finding",
    "models": "classical: knn, tree, forest fit all labels at once, nb, logreg, gboost one "
              "binary classifier per label; deep: the 'diagnostic' sigmoid head on the kind's "
              "backbone, binary cross-entropy balanced per label",
}


def _classical_kinds():
    from ..classical import CLASSIFIERS

    return tuple(CLASSIFIERS)


def _deep_kinds():
    """The model kinds of :mod:`medfeat.deep`, or None when the deep road cannot load here."""
    try:
        from ..deep import MODELS
    except ImportError:
        return None
    return tuple(MODELS)


def method_names():
    """Names :func:`evaluate` accepts: ``{"classical": (...), "deep": (...)}``.

    Examples
    --------
    >>> "knn" in method_names()["classical"]
    True
    """
    return {"classical": _classical_kinds(), "deep": _deep_kinds() or (),
            "ensemble": (ENSEMBLE,)}


# --------------------------------------------------------------------------------------------
# method resolution


@dataclasses.dataclass
class _Method:
    name: str
    family: str                   # "classical" | "deep" | "ensemble"
    make: Callable[[], Any]       # a fresh, unfitted estimator
    params: dict
    kind: str | None = None       # the kind name when the method was named (then searchable)
    gan: bool = False             # named "<kind>+gan": trained on the GAN-expanded split


def _is_deep_classifier(obj):
    """A deep model (medfeat.deep.DeepClassifier or anything declaring the same road)."""
    return getattr(type(obj), "medfeat_road", None) == "deep"


def _clone_deep(obj):
    """A fresh DeepClassifier with ``obj``'s parameters (never its trained model)."""
    if hasattr(obj, "get_params"):
        params = obj.get_params(deep=False)
    else:
        import inspect

        names = [p for p in inspect.signature(type(obj)).parameters if p != "self"]
        params = {p: getattr(obj, p) for p in names if hasattr(obj, p)}
    return type(obj)(**params)


def _deep_factory(kind, epochs, seed, verbose):
    """A maker of fresh DeepClassifiers for a model kind or a Keras builder function."""
    def make():
        from ..deep import DeepClassifier

        kwargs = {"seed": seed, "verbose": verbose}
        if epochs is not None:
            kwargs["epochs"] = epochs
        return DeepClassifier(kind, **kwargs)
    return make


def _describe(obj):
    if hasattr(obj, "get_params"):
        try:
            return {k: repr(v) if not isinstance(v, (int, float, str, bool, type(None))) else v
                    for k, v in obj.get_params(deep=False).items()}
        except Exception:  # a third-party estimator with odd get_params
            pass
    return {"object": repr(obj)}


#: Colour channels a stack's last axis may hold (RGB, RGBA).
_COLOUR_CHANNELS = (3, 4)
#: How many times longer than the channel axis each side of a colour image must be.
_COLOUR_SIDE_RATIO = 4


def _colour_images(images):
    """True when ``images`` is a stack of 2-D colour images ``(n, H, W, C)``.

    The rule: four axes, the last of length 3 or 4 (RGB, RGBA), and both sides at least
    :data:`_COLOUR_SIDE_RATIO` times the number of channels (a 28 x 28 x 3 MedMNIST image is
    colour; a volume of 28 slices of 28 x 3 pixels is not a plausible scan). Grey volumes
    ``(n, D, H, W)`` whose last side is 3 or 4 would be read as colour too: pass a Pipeline
    explicitly (a dict method) for such data.
    """
    shape = np.shape(images)
    return (len(shape) == 4 and shape[-1] in _COLOUR_CHANNELS and
            min(shape[1], shape[2]) >= _COLOUR_SIDE_RATIO * shape[-1])


def _resolve(methods, *, seed, epochs, backend, n_jobs, progress, verbose, channel_axis=None,
             scheduler=None, multilabel=False):
    """The methods to run, checked before any work starts; classical methods given by name get
    ``channel_axis`` in their feature step (colour images)."""
    from sklearn.base import clone

    from ..classical import make_classifier

    if isinstance(methods, str):
        methods = (methods,)
    if isinstance(methods, dict):
        items = list(methods.items())
    else:
        try:
            items = [(m, m) for m in methods]
        except TypeError:
            raise ValueError(f"methods must be a sequence of names or a dict name -> estimator, "
                             f"got {type(methods).__name__}") from None
    if not items:
        raise ValueError("methods is empty: name at least one method")
    classical = _classical_kinds()
    deep = None                     # looked up only when a name is not classical (imports Keras)
    out, seen = [], set()
    for name, obj in items:
        if not isinstance(name, str) or not name:
            raise ValueError(f"methods: names must be non-empty strings, got {name!r}")
        if name in seen:
            raise ValueError(f"methods: {name!r} is named twice")
        seen.add(name)
        if isinstance(obj, str):
            kind = obj
            gan = kind.endswith(GAN_SUFFIX) and kind != GAN_SUFFIX
            if gan:
                kind = kind[:-len(GAN_SUFFIX)]
                if kind == ENSEMBLE:
                    raise ValueError(f"methods: {obj!r}: the ensemble mixes other methods; "
                                     f"name their '{GAN_SUFFIX}' variants instead")
            if kind == ENSEMBLE:
                out.append(_Method(name, "ensemble", None, {"kind": ENSEMBLE}, kind=ENSEMBLE))
                continue
            if kind in classical:
                features = {"backend": backend, "progress": progress}
                if scheduler is not None:
                    features["scheduler"] = scheduler
                params = {"kind": kind, "seed": seed}
                if channel_axis is not None:
                    features["channel_axis"] = params["channel_axis"] = channel_axis

                def make(families=None, kind=kind, features=features, **settings):
                    fx = dict(features)
                    if families is not None:
                        fx["families"] = list(families)
                    return make_classifier(kind, random_state=seed, n_jobs=n_jobs, features=fx,
                                           multilabel=multilabel, **settings)
                out.append(_Method(name, "classical", make, params, kind=kind, gan=gan))
                continue
            if deep is None:
                deep = _deep_kinds()
            if deep is not None and kind in deep:
                out.append(_Method(name, "deep", _deep_factory(kind, epochs, seed, verbose),
                                   {"kind": kind, "epochs": epochs, "seed": seed}, kind=kind,
                                   gan=gan))
                continue
            hint = "" if deep is not None else \
                " (the deep models are unavailable: install the 'deep' extra for Keras)"
            raise ValueError(f"methods: unknown method {kind!r}; valid names are classical "
                             f"{list(classical)}, deep {list(deep or ())} and "
                             f"{ENSEMBLE!r}{hint}")
        if _is_deep_classifier(obj):
            out.append(_Method(name, "deep", lambda obj=obj: _clone_deep(obj), _describe(obj)))
        elif hasattr(obj, "fit") and hasattr(obj, "predict_proba"):
            if not hasattr(obj, "get_params"):
                raise ValueError(f"methods[{name!r}]: a scikit-learn estimator needs get_params "
                                 "(it is cloned for every fit)")
            out.append(_Method(name, "classical", lambda obj=obj: clone(obj), _describe(obj)))
        elif hasattr(obj, "fit"):
            raise ValueError(f"methods[{name!r}]: {type(obj).__name__} has fit but no "
                             "predict_proba; pass a scikit-learn classifier, a DeepClassifier or "
                             "a function (input_shape, n_classes) -> keras.Model, not a built "
                             "model")
        elif callable(obj):
            out.append(_Method(name, "deep", _deep_factory(obj, epochs, seed, verbose),
                               {"kind": getattr(obj, "__name__", repr(obj)), "epochs": epochs,
                                "seed": seed}))
        else:
            raise ValueError(f"methods[{name!r}]: expected a method name, a scikit-learn "
                             f"classifier, a DeepClassifier or a Keras model builder, got "
                             f"{type(obj).__name__}")
    return out


# --------------------------------------------------------------------------------------------
# classical: features once per split


def _feature_step(estimator):
    """``(extractor, rest)`` when ``estimator`` is a Pipeline starting with a FeatureExtractor
    (``rest``: the remaining steps as a Pipeline), else ``(None, estimator)``."""
    from sklearn.pipeline import Pipeline

    from ..features import FeatureExtractor

    if isinstance(estimator, Pipeline) and len(estimator.steps) >= 2 and \
            isinstance(estimator.steps[0][1], FeatureExtractor):
        return estimator.steps[0][1], Pipeline(estimator.steps[1:])
    return None, estimator


def _extractor_key(fx):
    """What decides the extractor's output (n_jobs, progress and where it runs do not)."""
    params = fx.get_params(deep=False)
    for name in ("n_jobs", "progress", "scheduler"):
        params.pop(name, None)
    return (type(fx).__qualname__, repr(sorted(params.items())))


def _accepts_stacks(estimator):
    from sklearn.pipeline import Pipeline
    from sklearn.utils import get_tags

    first = estimator.steps[0][1] if isinstance(estimator, Pipeline) else estimator
    try:
        return bool(get_tags(first).input_tags.three_d_array)
    except Exception:  # estimators that predate scikit-learn's tags
        return False


class _FeatureCache:
    """Feature matrices per (extractor settings, split): the extractor learns nothing from the
    data (its ``fit`` records the image shape), so one pass per split serves every classical
    method and every fold."""

    def __init__(self, splits, log):
        self._splits = splits
        self._log = log
        self._store = {}
        self._names = {}
        self.seconds = {}

    def get(self, fx, part):
        """``(features, seconds)`` of split ``part``. An extractor of a subset of the feature
        families gets its columns of the all-families matrix (same values: every family is
        computed independently), so a family search costs one extraction."""
        from sklearn.base import clone

        if not _all_families(fx):
            full = _with_all_families(fx)
            feats, dt = self.get(full, part)
            wanted = clone(fx).fit(self._splits[part][0][:1]).get_feature_names_out()
            index = {n: i for i, n in enumerate(self._names[_extractor_key(full)])}
            return feats[:, [index[n] for n in wanted]], dt
        key = (_extractor_key(fx), part)
        if key not in self._store:
            images = self._splits[part][0]
            t0 = time.perf_counter()
            fitted = fx.fit(images)
            feats = fitted.transform(images)
            dt = time.perf_counter() - t0
            self._store[key] = (feats, dt)
            self._names[_extractor_key(fx)] = list(fitted.get_feature_names_out())
            self.seconds[f"features_{part}"] = self.seconds.get(f"features_{part}", 0.0) + dt
            self._log(f"features [{part}]: {images.shape[0]} images -> {feats.shape[1]} "
                      f"features in {dt:.1f} s")
        return self._store[key]

    def names(self, fx):
        """Column names of the all-families matrix of ``fx``'s settings (after a ``get``)."""
        return self._names[_extractor_key(_with_all_families(fx))]


def _all_families(fx):
    from ..features import FAMILIES

    fams = fx.get_params(deep=False).get("families")
    return fams is not None and not isinstance(fams, str) and set(fams) == set(FAMILIES)


def _with_all_families(fx):
    """A copy of extractor ``fx`` computing every family (the cache's matrix)."""
    from sklearn.base import clone

    from ..features import FAMILIES

    return clone(fx).set_params(families=list(FAMILIES))


def _full_proba(estimator, proba, n_classes, where):
    """Probabilities with one column per dataset class, whatever subset the model saw."""
    classes = getattr(estimator, "classes_", None)
    if isinstance(proba, list) or isinstance(classes, list):
        return _multilabel_proba(estimator, proba, n_classes, where)
    proba = np.asarray(proba, dtype=np.float64)
    if classes is None:
        classes = np.arange(proba.shape[1])
    classes = np.asarray(classes)
    if proba.ndim != 2 or proba.shape[1] != classes.size:
        raise ValueError(f"{where}: predict_proba returned shape {proba.shape} for "
                         f"{classes.size} classes")
    if classes.size == n_classes and np.array_equal(classes, np.arange(n_classes)):
        return proba
    if classes.dtype.kind not in "iu" or classes.min() < 0 or classes.max() >= n_classes:
        raise ValueError(f"{where}: the model's classes {classes.tolist()} are not labels in "
                         f"range({n_classes})")
    out = np.zeros((proba.shape[0], n_classes))
    out[:, classes] = proba
    return out


def _multilabel_proba(estimator, proba, n_labels, where):
    """One probability per label ``(n, n_labels)`` from a multi-label model: an array of them
    (:class:`~medfeat.classical.MultiLabelClassifier`, a multi-label ``DeepClassifier``) or
    scikit-learn's multi-output list of ``(n, 2)`` class probabilities."""
    if isinstance(proba, list):
        classes = getattr(estimator, "classes_", None) or [np.array([0, 1])] * len(proba)
        cols = []
        for p, cls in zip(proba, classes):
            p, cls = np.asarray(p, dtype=np.float64), np.asarray(cls)
            cols.append(p[:, np.flatnonzero(cls == 1)[0]] if np.any(cls == 1)
                        else np.zeros(p.shape[0]))
        proba = np.column_stack(cols)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != n_labels:
        raise ValueError(f"{where}: predict_proba returned shape {proba.shape} for "
                         f"{n_labels} labels")
    return proba


# --------------------------------------------------------------------------------------------
# the harness


def _fmt(scores):
    return " ".join(f"{m} {scores[m]:.3f}" for m in ("acc", "auc", "f1") if m in scores)


def _cv_summary(k, folds):
    mean = {m: float(np.nanmean([f[m] for f in folds])) if any(
        math.isfinite(f[m]) for f in folds) else math.nan for m in METRICS}
    std = {m: float(np.nanstd([f[m] for f in folds], ddof=1)) if sum(
        math.isfinite(f[m]) for f in folds) > 1 else math.nan for m in METRICS}
    return {"k": k, "folds": folds, "mean": mean, "std": std}


def _cross_validate(name, folds, fold_probas, y, seconds, say, *, digits):
    """Score each fold's held-out probabilities, log one line per fold; the CV summary ({}
    without folds), its seconds into ``seconds["cv"]``. ``fold_probas`` yields ``(proba,
    seconds)`` per fold in fold order (lazily: a fold runs when its result is asked for)."""
    if not folds:
        return {}
    fold_scores = []
    t_cv = time.perf_counter()
    for i, ((_, te), (proba, dt)) in enumerate(zip(folds, fold_probas), 1):
        fold_scores.append(_fold_scores(y[te], proba))
        say(f"{name} fold {i}/{len(folds)}: {_fmt(fold_scores[-1])} ({dt:.{digits}f} s)")
    seconds["cv"] = time.perf_counter() - t_cv
    return _cv_summary(len(folds), fold_scores)


def _local_folds(folds, fit_fold, X, n_classes, name):
    """``(proba, seconds)`` per fold, fitted here by ``fit_fold(train_index)`` (deep models)."""
    for i, (tr, te) in enumerate(folds, 1):
        t0 = time.perf_counter()
        model = fit_fold(tr)
        proba = _full_proba(model, model.predict_proba(X[te]), n_classes, f"{name} fold {i}")
        yield proba, time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# classical: where the folds and the search trials run


def _fold_task(head, F, y, train, test, n_classes, where):
    """One fold: a clone of ``head`` fitted on rows ``train`` of ``F``; ``(proba, seconds)`` of
    rows ``test``. Runs here or as a cluster task; the same code, so the same numbers."""
    from sklearn.base import clone

    t0 = time.perf_counter()
    model = clone(head).fit(F[train], y[train])
    proba = _full_proba(model, model.predict_proba(F[test]), n_classes, where)
    return proba, time.perf_counter() - t0


def _trial_task(head, F_train, y_train, F_val, cols, n_classes, where):
    """One search trial: a clone of ``head`` fitted on columns ``cols`` of the training
    features; ``(val_proba or None, note, seconds)``, a failed fit (e.g. more components than
    rows) noted instead of raised."""
    from sklearn.base import clone

    t0 = time.perf_counter()
    try:
        model = clone(head).fit(F_train[:, cols], y_train)
        pv = _full_proba(model, model.predict_proba(F_val[:, cols]), n_classes, where)
        note = ""
    except (ValueError, np.linalg.LinAlgError) as exc:
        pv, note = None, f"failed: {exc}"
    return pv, note, time.perf_counter() - t0


class _InProcess:
    """Runs the classical road's folds and trials in this process, one after the other."""

    def map(self, func, shared, each):
        """``func(**shared, **kw)`` for each ``kw`` of ``each``, lazily, in order."""
        for kw in each:
            yield func(**shared, **kw)


class _OnCluster:
    """Runs them as dask.distributed tasks through ``client`` (futures, ``Client.submit``).

    The arrays of ``shared`` (the feature matrices, the labels) are scattered to the cluster
    once per :meth:`map`, so a task carries only its estimator and row or column indices; the
    results come back in submission order. Tasks are pure (the estimators are seeded), so a
    task run again after a worker is lost gives the same result.
    """

    #: Times a task is run again when the worker running it is lost.
    RETRIES = 2

    def __init__(self, client):
        self.client = client

    def map(self, func, shared, each):
        """The same as :meth:`_InProcess.map`; every task is submitted when the first result
        is asked for, and all of them are gathered then."""
        each = list(each)
        if not each:
            return
        data = {k: self.client.scatter(v, hash=False) if isinstance(v, np.ndarray) else v
                for k, v in shared.items()}
        futures = [self.client.submit(func, **data, **kw, pure=False, retries=self.RETRIES)
                   for kw in each]
        try:
            results = self.client.gather(futures)
        except BaseException:
            self.client.cancel(futures)
            raise
        yield from results


def _fold_scores(y, proba):
    s = score(y, proba, n_boot=0)
    return {m: s[m] for m in METRICS}


def _check_dataset(dataset):
    for part in ("train", "val", "test"):
        split = getattr(dataset, part, None)
        if split is None or not hasattr(split, "images") or not hasattr(split, "labels"):
            raise ValueError("dataset must be a medfeat.io.Dataset (train, val and test splits "
                             f"of images and labels); got {type(dataset).__name__}")
    if len(dataset.train.labels) == 0:
        raise ValueError("dataset: the training split is empty")
    if len(dataset.test.labels) == 0:
        raise ValueError("dataset: the test split is empty")
    n_classes = len(dataset.classes)
    labels = np.asarray(dataset.train.labels)
    if labels.ndim == 2 and labels.shape[1] >= 2:
        one = [dataset.classes[k] for k in range(labels.shape[1])
               if not 0 < labels[:, k].sum() < labels.shape[0]]
        if one:
            raise ValueError(f"dataset: the training split holds a single value of the "
                             f"multi-label finding(s) {one}: every finding needs positive and "
                             f"negative training images")
    elif np.unique(labels).size < 2:
        raise ValueError("dataset: the training split holds a single class")
    return n_classes


def _targets(labels):
    """Labels as the harness scores them: ``(n,)`` classes, or a 0/1 ``(n, L)`` matrix of a
    multi-label task (``L >= 2``)."""
    y = np.asarray(labels)
    return y if y.ndim == 2 and y.shape[1] >= 2 else y.ravel()


def _check_backend(backend):
    from ..kernels import available_backends

    if backend in ("auto", "cpu"):
        return
    if backend in ("cython", "numba"):
        raise ValueError(f"backend {backend!r} implements only some kernel families (each has "
                         f"one CPU backend: medfeat.kernels.FAMILY_BACKENDS); give 'cpu' for "
                         f"the CPU one of every family, 'cuda' or 'auto'")
    if backend != "cuda":
        raise ValueError(f"backend must be 'auto', 'cpu' or 'cuda', got {backend!r}")
    if backend not in available_backends():
        raise ValueError(f"backend {backend!r} does not work on this machine; available: "
                         f"{list(available_backends())}")


def evaluate(dataset, methods, *, cv=5, seed=0, epochs=None, backend="auto", progress=True,
             log=print, n_jobs=None, deep_cv=False, n_boot=1000, keep_estimators=True,
             select=True, calibrate=True, budget=_search.DEFAULT_BUDGET,
             max_trials=_search.MAX_DEEP_TRIALS, scheduler=None):
    """Run every method through the same splits and score it with the same code.

    For each method, in order: model selection on the validation split (methods given by name,
    see :mod:`medfeat.evaluate.search`), stratified k-fold cross-validation of the chosen
    settings on the training split (scores per fold, mean and standard deviation), the final
    model fitted on the training split, its probabilities calibrated on the validation split
    (:class:`~medfeat.evaluate.calibration.Calibrator`), and the scores of its test-split
    probabilities (:func:`~medfeat.evaluate.score`, with the bootstrap interval of the AUC),
    with the confusion matrix and the fit and predict seconds. ``"ensemble"`` mixes the best
    classical and the best deep method by validation AUC. Then the best classical and the best
    deep method by test AUC are compared on the test split by a paired test
    (:func:`~medfeat.evaluate.delong` for binary tasks, :func:`~medfeat.evaluate.
    paired_bootstrap` otherwise). The test split is used for nothing but these final scores.

    Parameters
    ----------
    dataset : medfeat.io.Dataset
        Train, validation and test splits.
    methods : sequence of str, or dict of str to object
        Names of classical kinds (:data:`medfeat.classical.CLASSIFIERS`: ``"knn"``, ``"tree"``,
        ``"nb"``, ``"forest"``, ``"logreg"``, ``"gboost"``) or deep kinds
        (:data:`medfeat.deep.MODELS`: ``"cnn"``, ``"resnet18"``, ...); or a dict from the name to
        show to a kind name, a scikit-learn classifier (cloned for every fit), a
        ``medfeat.deep.DeepClassifier`` (cloned from its parameters, which it keeps: ``epochs``
        and ``seed`` below do not override them) or a function ``(input_shape, n_classes) ->
        keras.Model`` (wrapped in a ``DeepClassifier``).
    cv : int or None, optional
        Folds of the cross-validation on the training split; ``None`` or 0 skips it.
    seed : int, optional
        Seeds the folds, every random classifier (``random_state``), the deep models' training
        and the bootstrap: the same seed gives the same numbers (classical methods exactly;
        deep ones as far as the Keras backend is deterministic).
    epochs : int, optional
        Training epochs of deep methods built here (default: ``DeepClassifier``'s own).
    backend : str, optional
        Kernel backend of the feature extraction (``"auto"``, ``"cython"``, ``"numba"``,
        ``"cuda"``).
    progress : bool, optional
        Progress bars for feature extraction; one line per training epoch of the deep methods
        built here (``DeepClassifier(verbose=1)``, unless ``log`` is None).
    log : callable or None, optional
        Receives one line per fold and per method (scores and seconds); None is silent.
    n_jobs : int, optional
        Threads for feature extraction and for the random forest (None: 1).
    deep_cv : bool, optional
        Also cross-validate deep methods (k more trainings each, with the same ``epochs``, the
        validation split used for early stopping in every fold). Off by default: see Notes.
    n_boot : int, optional
        Bootstrap replicates of the test AUC interval.
    keep_estimators : bool, optional
        Keep each method's final fitted model in ``MethodResult.estimator``.
    select : bool, optional
        Search each named method's settings on the validation split
        (:data:`~medfeat.evaluate.search.CLASSICAL_SPACES`,
        :data:`~medfeat.evaluate.search.DEEP_SPACES`); the trials, their validation AUC and
        the chosen settings go to ``MethodResult.params["search"]``. False runs the kinds'
        fixed defaults (and a deep kind's batch and epochs are not adapted to the data).
        Methods given as estimators are never searched.
    calibrate : bool, optional
        Fit each method's probabilities back to the class balance on the validation split
        (``params["calibration"]``; the uncalibrated test ACC and AUC in
        ``params["uncalibrated_test"]``).
    budget : float or None, optional
        Minutes for the whole evaluation: deep candidates beyond the defaults run only while
        their estimated cost fits in 85 % of it (the skipped ones are listed in the search
        record and the log). None: no limit but ``max_trials``.
    max_trials : int, optional
        Most trials per deep method (its default included).
    scheduler : dask.distributed.Client, str or int, optional
        Run the classical road on a dask.distributed cluster: a ``Client`` (left open), a
        scheduler address (``"tcp://host:8786"``) or a number of local worker processes (a
        ``LocalCluster`` started here and closed at the end). The feature extraction of the
        classical methods named here runs on its workers
        (:class:`~medfeat.features.FeatureExtractor` ``scheduler=``), and so do every
        classical method's cross-validation folds and search trials: one future per fold or
        trial (``Client.submit``; the feature matrices scattered once, each task carrying its
        unfitted estimator and its row or column indices), gathered in order. The tasks run
        the same code as without a cluster, so the numbers are the same. The final fits,
        calibration, scoring and all deep training stay in this process.

    Returns
    -------
    Evaluation
        ``methods`` in the order given; ``comparison`` filled when both roads ran;
        ``settings`` holds the arguments and ``"seconds"``: the shared feature extraction per
        split (``features_train``, ``features_test``), the wall time of each method after it
        (``methods``: cross-validation, fit, predict, scoring) and the ``total``.

    Raises
    ------
    ValueError
        Before any work: unknown method names (the message lists the valid ones), bad
        ``cv`` (e.g. more folds than the smallest class has samples), ``epochs``, ``backend``
        or ``dataset``.

    Notes
    -----
    *Features once.* A classical method given by name (or any Pipeline whose first step is a
    :class:`~medfeat.features.FeatureExtractor`) has its features computed once per split and
    extractor setting; the rest of the Pipeline (scaler, classifier) is fitted on the cached
    matrix, in every fold and in the final fit. The extractor learns nothing from the data, so
    the result is the one of refitting the whole Pipeline, minus repeated work.
    ``fit_seconds`` and ``predict_seconds`` of such a method are what one standalone fit/predict
    costs: the feature extraction of the training (test) split plus the rest of the Pipeline;
    ``MethodResult.params["seconds"]`` splits them (``features_train``, ``features_test``,
    ``fit``, ``predict``, and ``cv`` for the whole cross-validation). The shared extraction
    happens once, so these do not add up to the wall time: ``Evaluation.settings["seconds"]``
    has the extraction per split and the total. Other scikit-learn estimators receive the
    images as flattened rows ``(n, pixels)``, or as the stack itself when their first step
    declares the ``three_d_array`` input tag.

    *Training data.* Every model is fitted on the training split; the validation split scores
    the candidates of the search, stops deep training early, chooses test-time flips and the
    ensemble's weight and fits the calibration. A dataset without a validation split gets one
    carved from its training split (15 % of each class, seeded; ``settings
    ["val_carved_from_train"]``). No method ever sees the test split before it is scored.

    *Calibration.* The classifiers train with balanced class weights (equal priors), which
    moves the MedMNIST evaluator's 0.5 threshold (and a multi-class arg-max) away from where
    the data's class balance puts it. Bias-corrected temperature scaling fitted on the
    validation split (Alexandari et al., ICML 2020) moves it back: for two classes a strictly
    increasing map of ``proba[:, 1]`` (the AUC is unchanged), for more classes kept only when
    it leaves the validation AUC in place.

    *Colour images.* A training split of shape ``(n, H, W, C)`` with ``C`` 3 or 4 (RGB, RGBA)
    and ``H`` and ``W`` at least four times ``C`` (e.g. MedMNIST's BloodMNIST, 28 x 28 x 3) is
    taken as colour: the classical methods given by name then extract their features per
    channel (``FeatureExtractor(channel_axis=-1)``, also ``MethodResult.params["channel_axis"]``
    and ``settings["colour"]``), and ``log`` gets one line saying so. A scikit-learn estimator
    given in a dict is used as given (a Pipeline of ``FeatureExtractor()`` without
    ``channel_axis`` reads such a stack as volumes). Deep models take the channels as input
    channels.

    *Multi-label findings.* Labels that are 0/1 matrices ``(n, L)``, ``L >= 2`` (several
    independent findings per image, ChestMNIST's 14; ``Dataset.multilabel``), run through
    the same road: classical methods named by kind fit every label
    (:class:`~medfeat.classical.MultiLabelClassifier`: knn, tree and forest natively, nb,
    logreg and gboost one binary classifier per label), deep kinds build the ``"diagnostic"``
    sigmoid head on their backbone with binary cross-entropy balanced per label, and the
    ensemble mixes the per-label probabilities. Scores follow the MedMNIST evaluator (AUC the
    mean of the per-label AUCs, ACC the mean per-label accuracy at 0.5; ``test["per_label"]``
    has each label's AUC with its bootstrap interval); the search scores candidates by the
    mean per-label validation AUC; calibration is one binary map per label (monotone, so
    every per-label AUC is unchanged); the paired comparison is a paired bootstrap of the
    mean per-label AUC (per-label DeLong tests beside it, ``comparison["per_label"]``);
    folds and a carved validation split are stratified by each row's rarest finding
    (:func:`medfeat.io.label_strata`). ``settings["multilabel"]`` records all this. The
    GAN methods (``"+gan"``) do not apply and are refused.

    *Deep cross-validation* costs k trainings per deep method (on two CPU cores, minutes
    each), so it runs only with ``deep_cv=True``; otherwise a deep method's ``cv`` is empty and
    ``settings["deep_cv"]`` is False. The test-split scores with their bootstrap interval are
    the figures that compare the two roads.

    *GAN expansion.* A name ``"<kind>+gan"`` (e.g. ``"cnn+gan"``, ``"knn+gan"``) runs ``<kind>``
    on the training split with every class doubled by a class-conditional GAN
    (:func:`medfeat.deep.gan.expand_split`, ``factor=1``, ``classes="all"``), trained once per
    call on the real training images; validation and test stay real. Such methods get no
    cross-validation (the GAN has seen every training image) and ``params["gan"]`` records the
    counts and the GAN's seconds.

    Examples
    --------
    >>> from medfeat.io import make_phantoms
    >>> ds = make_phantoms(n=60, size=32, seed=0)
    >>> ev = evaluate(ds, ["nb", "tree", "ensemble"], cv=3, progress=False, log=None)
    >>> list(ev.methods), ev.methods["nb"].family, len(ev.methods["tree"].cv["folds"])
    (['nb', 'tree', 'ensemble'], 'classical', 3)
    >>> 0.0 <= ev.methods["nb"].test["auc"] <= 1.0
    True
    >>> len(ev.methods["tree"].params["search"]["trials"]) > 1
    True
    """
    options = dict(cv=cv, seed=seed, epochs=epochs, backend=backend, progress=progress, log=log,
                   n_jobs=n_jobs, deep_cv=deep_cv, n_boot=n_boot,
                   keep_estimators=keep_estimators, select=select, calibrate=calibrate,
                   budget=budget, max_trials=max_trials)
    if scheduler is None:
        return _evaluate(dataset, methods, scheduler=None, tasks=_InProcess(), **options)
    from ..features._distributed import check_scheduler, client_for

    with client_for(check_scheduler(scheduler)) as client:
        # the extractors are cloned (deep-copied) per split: they get the address
        return _evaluate(dataset, methods, scheduler=client.scheduler.address,
                         tasks=_OnCluster(client), **options)


def _evaluate(dataset, methods, *, cv, seed, epochs, backend, progress, log, n_jobs, deep_cv,
              n_boot, keep_estimators, select, calibrate, budget, max_trials, scheduler, tasks):
    """:func:`evaluate` with its scheduler resolved: an address (or None) for the extractors and
    where the classical folds and trials run (``tasks``: :class:`_InProcess` or
    :class:`_OnCluster`)."""
    t_start = time.perf_counter()
    n_classes = _check_dataset(dataset)
    if epochs is not None and (isinstance(epochs, bool) or
                               not isinstance(epochs, (int, np.integer)) or epochs < 1):
        raise ValueError(f"epochs must be None or a positive integer, got {epochs!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))
                               or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer, got {n_jobs!r}")
    if log is not None and not callable(log):
        raise ValueError(f"log must be callable or None, got {type(log).__name__}")
    if isinstance(max_trials, bool) or not isinstance(max_trials, (int, np.integer)) or \
            max_trials < 1:
        raise ValueError(f"max_trials must be a positive integer, got {max_trials!r}")
    clock = _search.Budget(budget)
    _check_backend(backend)
    say = log if log is not None else (lambda *_: None)
    X_train, y_train = dataset.train.images, _targets(dataset.train.labels)
    X_val, y_val = dataset.val.images, _targets(dataset.val.labels)
    y_test = _targets(dataset.test.labels)
    multilabel = y_train.ndim == 2
    colour = _colour_images(X_train)
    resolved = _resolve(methods, seed=int(seed), epochs=epochs, backend=backend,
                        n_jobs=n_jobs, progress=bool(progress),
                        verbose=int(bool(progress) and log is not None),
                        channel_axis=-1 if colour else None, scheduler=scheduler,
                        multilabel=multilabel)
    if multilabel and any(m.gan for m in resolved):
        bad = [m.name for m in resolved if m.gan]
        raise ValueError(f"methods: {bad}: the class-conditional GAN expands single-label "
                         f"classes; it does not apply to multi-label findings")
    others = [m for m in resolved if m.family != "ensemble"]
    if any(m.family == "ensemble" for m in resolved) and len(others) < 2:
        raise ValueError(f"methods: {ENSEMBLE!r} mixes the best classical and the best deep "
                         f"method; name at least two other methods")
    carved = 0
    if len(y_val) == 0 and (select or calibrate or len(others) < len(resolved)):
        train_idx, val_idx = _carve_validation(label_strata(y_train), seed,
                                               getattr(dataset, "synthetic", None))
        X_val, y_val = X_train[val_idx], y_train[val_idx]
        X_train, y_train = X_train[train_idx], y_train[train_idx]
        carved = int(val_idx.size)
        say(f"no validation split: {carved} training images (stratified, seed {seed}) held out "
            f"for model selection and calibration")
    strata = label_strata(y_train)       # the labels, or multi-label rows' rarest finding
    k = check_cv(cv, strata)
    if colour and any(m.family == "classical" for m in resolved):
        shape = tuple(np.shape(X_train)[1:])
        say(f"colour images {shape}: classical methods named here compute their features per "
            f"channel (FeatureExtractor(channel_axis=-1)); estimators given in a dict are used "
            f"as given")

    splits = {"train": (X_train, y_train), "val": (X_val, y_val),
              "test": (dataset.test.images, y_test)}
    folds = stratified_kfold(strata, k, seed=seed) if k else []
    cache = _FeatureCache(splits, say)
    ctx = _Context(splits=splits, folds=folds, n_classes=n_classes, n_boot=n_boot, seed=int(seed),
                   say=say, select=bool(select), calibrate=bool(calibrate), clock=clock,
                   epochs=epochs, max_trials=int(max_trials),
                   verbose=int(bool(progress) and log is not None),
                   labels=list(dataset.classes) if multilabel else None, tasks=tasks)
    results, walls, val_proba = {}, {}, {}

    def finish(method, res, pv, wall):
        if not keep_estimators:
            res.estimator = None
        for row, name in zip(res.test.get("per_label", ()), dataset.classes):
            row["label"] = name
        if pv is not None and "val_auc" not in res.params:
            # what the ensemble and a user choose by (never test); a calibrated method's is
            # its AUC before calibration, set in _calibrated
            res.params["val_auc"] = _val_auc(splits["val"][1], pv)
        results[method.name], walls[method.name], val_proba[method.name] = res, round(wall, 3), pv
        t = res.test
        say(f"{method.name}: test {_fmt(t)} auc95 [{t['auc_ci95'][0]:.3f}, "
            f"{t['auc_ci95'][1]:.3f}] | fit {res.fit_seconds:.1f} s, predict "
            f"{res.predict_seconds:.1f} s, method total {wall:.1f} s")

    gan_ctx, gan_cache, gan_record = _gan_context(resolved, ctx)
    for method in resolved:
        if method.family == "classical":
            t_method = time.perf_counter()
            if method.gan:
                res, pv = _run_classical(method, gan_ctx, gan_cache)
                res.params["gan"] = _without_model(gan_record)
            else:
                res, pv = _run_classical(method, ctx, cache)
            finish(method, res, pv, time.perf_counter() - t_method)
    for gan, run_ctx in ((False, ctx), (True, gan_ctx)):
        deep = [m for m in resolved if m.family == "deep" and m.gan == gan]
        if deep:
            for method, res, pv, wall in _run_deep_methods(deep, run_ctx, deep_cv=deep_cv):
                if gan:
                    res.params["gan"] = _without_model(gan_record)
                finish(method, res, pv, wall)
    for method in resolved:
        if method.family == "ensemble":
            t_method = time.perf_counter()
            res, pv = _run_ensemble(method, results, val_proba, ctx)
            finish(method, res, pv, time.perf_counter() - t_method)
    results = {m.name: results[m.name] for m in resolved}

    evaluation = Evaluation(
        dataset={"name": dataset.name, "n_train": int(y_train.shape[0]),
                 "n_val": int(y_val.shape[0]), "n_test": int(y_test.shape[0]),
                 "classes": list(dataset.classes),
                 **({"multilabel": True} if multilabel else {})},
        methods=results, seed=int(seed),
        settings={"cv": k, "epochs": epochs, "backend": backend, "n_jobs": n_jobs,
                  "deep_cv": bool(deep_cv), "n_boot": n_boot, "colour": bool(colour),
                  "select": bool(select), "calibrate": bool(calibrate),
                  "budget_minutes": None if budget is None else float(budget),
                  "max_trials": int(max_trials), "val_carved_from_train": carved,
                  **({"multilabel": _MULTILABEL_NOTES} if multilabel else {})},
        test_images=dataset.test.images,
        gan=None if gan_record is None else gan_record["model"])
    evaluation.comparison = _compare(evaluation, y_test, seed, say)
    evaluation.settings["seconds"] = {**{k_: round(v, 3) for k_, v in cache.seconds.items()},
                                      "methods": walls,
                                      "total": round(time.perf_counter() - t_start, 3)}
    return evaluation


def _gan_context(resolved, ctx):
    """``(context, feature cache, record)`` of the "+gan" methods: the training split expanded
    once by a GAN trained on it (seeded by the harness's seed), no cross-validation folds (the
    GAN has seen every real training image, so no fold would be held out from it); all None
    when no method is named so."""
    if not any(m.gan for m in resolved):
        return None, None, None
    from ..deep.gan import class_agreement, expand_split

    X, y = ctx.splits["train"]
    t0 = time.perf_counter()
    Xe, ye, syn, gan = expand_split(X, y, seed=ctx.seed, **_GAN_EXPANSION,
                                    gan_options={"verbose": ctx.verbose, "log": ctx.say})
    dt = time.perf_counter() - t0
    record = {**_GAN_EXPANSION, "n_real": int(y.size), "n_synthetic": int(syn.sum()),
              "seconds": round(dt, 3), **_gan_quality(ctx.splits["val"][0], Xe[syn], ctx.seed),
              "class_agreement": class_agreement(X, y, Xe[syn], ye[syn], seed=ctx.seed)}
    ctx.say(f"{GAN_SUFFIX} methods: {record['n_synthetic']} synthetic training images from a "
            f"class-conditional GAN trained on the {y.size} real ones ({dt:.0f} s); no "
            f"cross-validation for them")
    if record.get("two_sample_auc") is not None:
        halves = record["two_sample_auc_real_halves"]
        halves = "" if halves is None else f"; two halves of the real ones: {halves:.3f}"
        ctx.say(f"{GAN_SUFFIX}: two-sample AUC {record['two_sample_auc']:.3f} (real validation "
                f"images vs generated{halves}; 0.5 is indistinguishable)")
    ctx.say(f"{GAN_SUFFIX}: {record['class_agreement']:.1%} of the generated images are assigned "
            f"to their requested class by logistic regression trained on the real ones")
    splits = {**ctx.splits, "train": (Xe, ye)}
    return dataclasses.replace(ctx, splits=splits, folds=[]), _FeatureCache(splits, ctx.say), \
        {**record, "model": gan}


def _gan_quality(real, fake, seed, cv=5):
    """The classifier two-sample test of the generated images against real ones the GAN never
    saw (the validation split), beside the same test between two halves of those real images
    (the value "indistinguishable" takes at this sample size): ``{"two_sample_auc",
    "two_sample_auc_real_halves", "two_sample"}``, None values when validation is too small."""
    from ..deep.gan import two_sample_auc

    how = (f"{cv}-fold logistic regression on standardised pixels (Lopez-Paz and Oquab, ICLR "
           f"2017); real = the validation split")
    if len(real) < cv or len(fake) < cv:
        return {"two_sample_auc": None, "two_sample_auc_real_halves": None,
                "two_sample": how + f" (not run: fewer than {cv} validation images)"}
    halves = None
    if len(real) >= 2 * cv:
        order = np.random.default_rng([int(seed), 31]).permutation(len(real))
        half = len(real) // 2
        halves = two_sample_auc(real[order[:half]], real[order[half:2 * half]], seed=seed,
                                cv=cv)
    return {"two_sample_auc": two_sample_auc(real, fake, seed=seed, cv=cv),
            "two_sample_auc_real_halves": halves, "two_sample": how}


def _without_model(record):
    return {k: v for k, v in record.items() if k != "model"}


def _carve_validation(y, seed, synthetic=None):
    """``(train_index, val_index)``: :data:`_CARVED_VAL` of each class (at least one of every
    class with two or more samples) held out, seeded; rows marked ``synthetic`` (generated
    images) always stay in training."""
    rng = np.random.default_rng([int(seed), 4099])
    real = np.ones(y.size, bool) if synthetic is None else ~np.asarray(synthetic, bool)
    val = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero((y == c) & real))
        n = int(round(_CARVED_VAL * idx.size))
        if idx.size >= 2:
            n = min(max(n, 1), idx.size - 1)
        else:
            n = 0
        val.append(idx[:n])
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, np.intp)
    train = np.setdiff1d(np.arange(y.size), val)
    return train, val


@dataclasses.dataclass
class _Context:
    """What every method's run shares."""

    splits: dict
    folds: list
    n_classes: int
    n_boot: int
    seed: int
    say: Callable
    select: bool
    calibrate: bool
    clock: Any
    epochs: Any
    max_trials: int
    verbose: int
    labels: list = None           # the finding names of a multi-label task
    tasks: Any = dataclasses.field(default_factory=_InProcess)   # where classical fits run


def _has_val(ctx):
    y_val = ctx.splits["val"][1]
    return len(y_val) > 0 and np.unique(y_val).size >= 2


def _val_auc(y, proba):
    try:
        a = roc_auc(y, proba)
    except ValueError:
        return math.nan
    return a


def _calibrated(name, val_pair, test_proba, ctx, params):
    """``(test_proba, val_proba)`` after the validation-fitted :class:`Calibrator` (unchanged
    when calibration is off or the map is not kept); the record goes to ``params``."""
    y_val, pv = val_pair
    if not ctx.calibrate or pv is None or not len(y_val):
        return test_proba, pv
    if np.ndim(y_val) == 2:
        return _calibrated_per_label(name, (y_val, pv), test_proba, ctx, params)
    cal = Calibrator().fit(pv, y_val)
    params["calibration"] = cal.record_
    # the validation AUC methods are ranked by: before the map, which was fitted on these images
    params["val_auc"] = _val_auc(y_val, pv)
    if cal.applied_:
        y_test = ctx.splits["test"][1]
        raw = score(y_test, test_proba, n_boot=0)
        params["uncalibrated_test"] = {"acc": raw["acc"], "auc": raw["auc"]}
        ctx.say(f"{name}: probabilities calibrated on validation (temperature "
                f"{1 / cal.slope_:.3g}, bias {np.round(cal.bias_, 3).tolist()})")
        return cal.transform(test_proba), cal.transform(pv)
    return test_proba, pv


def _calibrated_per_label(name, val_pair, test_proba, ctx, params):
    """Multi-label :func:`_calibrated`: one binary :class:`Calibrator` per label on that label's
    probability (a strictly increasing map when applied, so every per-label AUC stays as it
    is); labels whose map is not kept stay as they are. ``params["calibration"]`` holds
    ``{"per_label": [record, ...], "applied": [label, ...]}``."""
    y_val, pv = val_pair
    test_out, val_out = np.array(test_proba, dtype=np.float64), np.array(pv, dtype=np.float64)
    records, applied = [], []
    labels = ctx.labels or [str(k) for k in range(pv.shape[1])]
    for k in range(pv.shape[1]):
        cal = Calibrator().fit(np.column_stack([1.0 - pv[:, k], pv[:, k]]), y_val[:, k])
        records.append({"label": labels[k], **cal.record_})
        if cal.applied_:
            applied.append(labels[k])
            test_out[:, k] = cal.transform(np.column_stack([1.0 - test_out[:, k],
                                                            test_out[:, k]]))[:, 1]
            val_out[:, k] = cal.transform(np.column_stack([1.0 - val_out[:, k],
                                                           val_out[:, k]]))[:, 1]
    params["calibration"] = {"kind": "per label, binary", "applied": applied,
                             "per_label": records}
    if applied:
        raw = score(ctx.splits["test"][1], test_proba, n_boot=0)
        params["uncalibrated_test"] = {"acc": raw["acc"], "auc": raw["auc"]}
        ctx.say(f"{name}: probabilities calibrated on validation for {len(applied)} of "
                f"{pv.shape[1]} labels")
    return test_out, val_out


def _classical_features(estimator, ctx, cache, parts):
    """The feature matrices of ``parts`` for a classical estimator: ``(fx, head, mats,
    seconds)``."""
    fx, head = _feature_step(estimator)
    mats, seconds = {}, {}
    for part in parts:
        X = ctx.splits[part][0]
        if fx is not None:
            mats[part], seconds[f"features_{part}"] = cache.get(fx, part)
        else:
            head = estimator
            mats[part] = X if _accepts_stacks(estimator) else X.reshape(X.shape[0], -1)
    return fx, head, mats, seconds


def _search_classical(method, ctx, cache):
    """The winner of the classical search (an unfitted Pipeline) and the search record."""
    from ..classical import CLASSIFIERS
    from ..features import DEFAULT_FAMILIES, FAMILIES

    kind = method.kind
    y_train, y_val = ctx.splits["train"][1], ctx.splits["val"][1]
    full = method.make()
    fx = _feature_step(full)[0]
    every = _with_all_families(fx)      # the columns of every family, cached once
    mats = {part: cache.get(every, part)[0] for part in ("train", "val")}
    names = cache.names(fx)
    asked = fx.get_params(deep=False).get("families")
    asked = DEFAULT_FAMILIES if asked is None else [asked] if isinstance(asked, str) else asked
    present = [f for f in FAMILIES if f in asked]
    optional = [f for f in FAMILIES if f not in present]
    defaults = dict(CLASSIFIERS[kind][1])
    trials, probas = [], []

    def run(candidates, stage):
        """Trials of ``candidates`` (``(families, settings)`` pairs, independent of each
        other: one batch of tasks); their indices in ``trials``."""
        each = []
        for families, settings in candidates:
            est = method.make(families=None if families == present else families, **settings)
            each.append({"head": _feature_step(est)[1], "where": method.name,
                         "cols": [i for i, n in enumerate(names)
                                  if n.split("__", 1)[0] in families]})
        shared = {"F_train": mats["train"], "y_train": y_train, "F_val": mats["val"],
                  "n_classes": ctx.n_classes}
        out = []
        for (families, settings), (pv, note, dt) in zip(
                candidates, ctx.tasks.map(_trial_task, shared, each)):
            auc = _val_auc(y_val, pv) if pv is not None else math.nan
            record = {"stage": stage, "families": list(families), **settings}
            trials.append(_search.Trial(record, auc, dt, note))
            probas.append(pv)
            out.append(len(trials) - 1)
        return out

    def pick(indices):
        sub = [trials[i] for i in indices]
        best = max(range(len(sub)), key=lambda j: (np.nan_to_num(sub[j].val_auc, nan=-1), -j))
        pv = probas[indices[best]]
        se = _search.auc_se(y_val, pv) if pv is not None else math.nan
        return indices[_search.choose(sub, se)]

    base = {k: defaults[k] for k in _search.CLASSICAL_SPACES.get(kind, {}) if k in defaults}
    candidates = [(present, base)]
    if len(present) > 1:
        candidates += [([g for g in present if g != f], base) for f in present]
    # families outside the default (zones) are tried added
    candidates += [([g for g in FAMILIES if g in present or g == f], base) for f in optional]
    stage1 = run(candidates, "families")
    families = trials[pick(stage1)].settings["families"]
    grid = _search.classical_grid(kind, defaults)
    stage2 = [stage1[0] if families == present else
              next(i for i in stage1 if trials[i].settings["families"] == families)]
    stage2 += run([(families, settings) for settings in grid[1:]], "settings")
    chosen = trials[pick(stage2)]
    settings = {k: v for k, v in chosen.settings.items() if k not in ("stage", "families")}
    winner = method.make(families=None if families == present else families, **settings)
    dropped = [f for f in present if f not in families]
    added = [f for f in families if f not in present]
    ctx.say(f"{method.name}: {len(trials)} trials on validation; chosen "
            f"{settings or 'defaults'}{', without ' + ', '.join(dropped) if dropped else ''}"
            f"{', with ' + ', '.join(added) if added else ''} "
            f"(val AUC {chosen.val_auc:.3f}, default {trials[0].val_auc:.3f})")
    record = {"score": "val_auc", "rule": "one standard error over the default",
              "trials": [t.to_dict() for t in trials],
              "chosen": {"families": families, **settings},
              "chosen_val_auc": chosen.val_auc, "default_val_auc": trials[0].val_auc,
              "skipped": []}
    return winner, record


def _run_classical(method, ctx, cache):
    from sklearn.base import clone

    (X_train, y_train), y_test = ctx.splits["train"], ctx.splits["test"][1]
    y_val = ctx.splits["val"][1]
    estimator = method.make()
    search = None
    if ctx.select and method.kind is not None and _has_val(ctx) and \
            _feature_step(estimator)[0] is not None:
        estimator, search = _search_classical(method, ctx, cache)
    parts = ("train", "test", "val") if len(y_val) else ("train", "test")
    fx, head, mats, seconds = _classical_features(estimator, ctx, cache, parts)
    F_train, F_test = mats["train"], mats["test"]

    fold_probas = ctx.tasks.map(
        _fold_task, {"head": head, "F": F_train, "y": y_train, "n_classes": ctx.n_classes},
        [{"train": tr, "test": te, "where": f"{method.name} fold {i}"}
         for i, (tr, te) in enumerate(ctx.folds, 1)])
    cv = _cross_validate(method.name, ctx.folds, fold_probas, y_train, seconds, ctx.say,
                         digits=2)

    t0 = time.perf_counter()
    model = clone(head).fit(F_train, y_train)
    seconds["fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba = _full_proba(model, model.predict_proba(F_test), ctx.n_classes, method.name)
    seconds["predict"] = time.perf_counter() - t0
    pv = None
    if "val" in mats:
        pv = _full_proba(model, model.predict_proba(mats["val"]), ctx.n_classes, method.name)
    if fx is not None:
        from sklearn.pipeline import Pipeline

        local = clone(fx)
        if "scheduler" in local.get_params(deep=False):   # the cluster may be gone later
            local.set_params(scheduler=None)
        fitted = Pipeline([(estimator.steps[0][0], local.fit(X_train[:1])), *model.steps])
    else:
        fitted = model
    params = dict(method.params)
    if search is not None:
        params["search"] = search
    proba, pv = _calibrated(method.name, (y_val, pv), proba, ctx, params)
    test = score(y_test, proba, n_boot=ctx.n_boot, seed=ctx.seed)
    params["seconds"] = {k: round(v, 4) for k, v in seconds.items()}
    res = MethodResult(
        name=method.name, family="classical", test=test, cv=cv,
        fit_seconds=seconds.get("features_train", 0.0) + seconds["fit"],
        predict_seconds=seconds.get("features_test", 0.0) + seconds["predict"],
        y_true=y_test, proba=proba, confusion=_confusion_of(*check_scores(y_test, proba)),
        estimator=fitted, params=params)
    return res, pv


# --------------------------------------------------------------------------------------------
# deep: every method's default first, then random candidates while the budget lasts


@dataclasses.dataclass
class _DeepState:
    method: _Method
    candidates: list
    trials: list = dataclasses.field(default_factory=list)
    models: dict = dataclasses.field(default_factory=dict)     # trial index -> (model, val p)
    skipped: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    next: int = 0


def _deep_trial(state, params, ctx):
    """Train one candidate; score validation with and without test-time flips."""
    from ..deep import DeepClassifier

    (X_train, y_train), (X_val, y_val) = ctx.splits["train"], ctx.splits["val"]
    method = state.method
    i = len(state.trials) + 1
    ctx.say(f"{method.name} trial {i}: {_short(params)}")
    t0 = time.perf_counter()
    model = DeepClassifier(method.kind, seed=ctx.seed, verbose=ctx.verbose, **params)
    model.fit(X_train, y_train, validation=(X_val, y_val))
    pv = _full_proba(model, model.predict_proba(X_val), ctx.n_classes, method.name)
    auc, tta = _val_auc(y_val, pv), False
    model.set_params(tta=True)
    pv_tta = _full_proba(model, model.predict_proba(X_val), ctx.n_classes, method.name)
    auc_tta = _val_auc(y_val, pv_tta)
    if math.isfinite(auc_tta) and (not math.isfinite(auc) or auc_tta > auc):
        auc, pv, tta = auc_tta, pv_tta, True
    else:
        model.set_params(tta=False)
    dt = time.perf_counter() - t0
    state.seconds += dt
    state.trials.append(_search.Trial({**params, "tta": tta}, auc, dt))
    ctx.say(f"{method.name} trial {i}: val AUC {auc:.3f} (tta {'on' if tta else 'off'}) "
            f"in {dt:.0f} s")
    # keep the default and the best so far: the only two the rule can pick
    best = max(range(len(state.trials)),
               key=lambda j: (np.nan_to_num(state.trials[j].val_auc, nan=-1), -j))
    state.models[len(state.trials) - 1] = (model, pv)
    state.models = {j: v for j, v in state.models.items() if j in (0, best)}


#: Sides of the square input the deep methods named by kind may train at on 2-D images larger
#: than the smallest (MedMNIST's 28 and MedMNIST+'s 64, 128 and 224 among them).
DEEP_SIDES = (28, 32, 48, 64, 96, 128, 224)
#: Images whose shorter side is at most this train as they are (MedMNIST's 28, the embedded
#: phantoms' 48); larger ones at a side of DEEP_SIDES chosen by the budget.
DEEP_RESIZE_ABOVE = 48
#: Fewest epochs a default training is cut to when even the smallest side does not fit.
_MIN_BUDGET_EPOCHS = 3


def _deep_input_side(states, shape, n_train, n_val, allowance, ctx):
    """The side the deep methods named by kind train at on 2-D images larger than
    :data:`DEEP_RESIZE_ABOVE`: the largest of :data:`DEEP_SIDES` not above the images'
    shorter side at which every default training fits ``allowance`` by the cost model (:func:`~medfeat.evaluate.search.estimate_seconds`). Larger images are
    resized to it inside the ``DeepClassifier`` (``input_size``, anti-aliased), so the test
    images keep their size. When even the smallest side does not fit and the epochs are not
    fixed, the defaults' epochs are cut in proportion (at least :data:`_MIN_BUDGET_EPOCHS`).
    Sets ``input_size`` in every candidate (and in the unsearched makers); returns ``(side,
    the shape the cost model sees)``."""
    named = [st for st in states if st.method.kind is not None]
    if not named or len(shape) not in (2, 3):
        return None, shape
    low = min(shape[:2])
    if low <= DEEP_RESIZE_ABOVE:
        return None, shape
    sides = [s for s in DEEP_SIDES if s <= low]
    channels = tuple(shape[2:])

    def cost(side):
        total = 0.0
        for st in named:
            params = st.candidates[0] if st.candidates else \
                _search.deep_base(st.method.kind, n_train, epochs=ctx.epochs)
            total += _search.estimate_seconds(st.method.kind, params, n_train, n_val,
                                              (side, side) + channels)
        return total

    fitting = [s for s in sides if cost(s) <= allowance]
    side = fitting[-1] if fitting else sides[0]
    note = {"input_size": side, "stored": list(shape[:2]),
            "rule": "largest of DEEP_SIDES not above the images whose default trainings fit "
                    "85 % of the budget by the cost model",
            "estimate_seconds": round(cost(side), 1)}
    cut = None
    if not fitting and ctx.epochs is None and math.isfinite(allowance):
        # the epochs' share of the cost shrinks to what the allowance leaves beyond the
        # trainings' fixed overhead
        fixed = _search._OVERHEAD_SECONDS * len(named)
        cut = max(0.0, allowance - fixed) / max(cost(side) - fixed, 1e-9)
    for st in named:
        if st.candidates:
            for params in st.candidates:
                params["input_size"] = side
            if cut is not None:
                base = st.candidates[0]
                epochs = max(_MIN_BUDGET_EPOCHS, int(base["epochs"] * cut))
                if epochs < base["epochs"]:
                    note.setdefault("epochs_cut", {})[st.method.name] = [base["epochs"], epochs]
                    base["epochs"] = epochs
                    base["patience"] = int(max(2, min(base.get("patience", 5), epochs)))
        else:
            make = st.method.make
            st.method = dataclasses.replace(
                st.method, make=lambda make=make, side=side: make().set_params(input_size=side))
        st.method.params["input_size"] = dict(note)
    ctx.say(f"deep methods: images {shape[0]}x{shape[1]} train at {side}x{side} (resized inside "
            f"the networks; the largest side whose default trainings fit the budget by the cost "
            f"model: about {note['estimate_seconds']:.0f} s)"
            + (f"; default epochs cut to fit: {note['epochs_cut']}" if note.get("epochs_cut")
               else ""))
    return side, (side, side) + channels


def _short(params):
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _run_deep_methods(methods, ctx, *, deep_cv):
    """Run the deep methods; yields ``(method, result, val_proba, seconds)`` in order."""
    X_train, y_train = ctx.splits["train"]
    X_val, y_val = ctx.splits["val"]
    searched = ctx.select and _has_val(ctx)
    # a stack of 4 axes that is not colour images, or of 5, holds volumes: the deep kinds
    # build their 3-D twins there (DeepClassifier's rule), with their own search space
    volumes = np.ndim(X_train) == 5 or (np.ndim(X_train) == 4 and not _colour_images(X_train)
                                        and np.shape(X_train)[-1] > 4)
    states = []
    for m in methods:
        if searched and m.kind is not None:
            base = _search.deep_base(m.kind, len(y_train), epochs=ctx.epochs, volumes=volumes)
            cands = _search.deep_candidates(m.kind, base, seed=ctx.seed, n=ctx.max_trials,
                                            fixed_epochs=ctx.epochs is not None,
                                            volumes=volumes)
        else:
            cands = None
        states.append(_DeepState(m, cands))
    shape = tuple(np.shape(X_train)[1:])
    planned = 0.0
    allowance = 0.85 * ctx.clock.seconds           # the rest: features, final scoring, report
    if not volumes:
        side, shape = _deep_input_side(states, shape, len(y_train), len(y_val), allowance, ctx)

    def estimate(state, params):
        return _search.estimate_seconds(state.method.kind, params, len(y_train), len(y_val),
                                        shape, volumes=volumes)

    for st in states:                                 # every default, whatever the budget
        if st.candidates is not None:
            planned += estimate(st, st.candidates[0])
            _deep_trial(st, st.candidates[0], ctx)
            st.next = 1
    for rnd in range(1, ctx.max_trials):
        for st in states:
            if st.candidates is None or rnd >= len(st.candidates):
                continue
            params = st.candidates[rnd]
            cost = estimate(st, params)
            if planned + cost > allowance:
                st.skipped.append({"settings": params, "estimate_seconds": round(cost, 1),
                                   "why": "budget (planned)"})
                continue
            over = ctx.clock.elapsed() - _search.WALL_CLOCK_VALVE * ctx.clock.seconds
            if over > 0:                 # a machine far slower or busier than the cost model
                st.skipped.append({"settings": params, "estimate_seconds": round(cost, 1),
                                   "why": "budget (wall clock)"})
                ctx.say(f"{st.method.name}: skipped a trial, the wall clock is past "
                        f"{_search.WALL_CLOCK_VALVE:g} x the budget")
                continue
            planned += cost
            _deep_trial(st, params, ctx)
    for st in states:
        if st.skipped:
            ctx.say(f"{st.method.name}: {len(st.skipped)} candidate(s) skipped for the budget "
                    f"({ctx.clock.seconds / 60:.3g} min)")
        t0 = time.perf_counter()
        res, pv = _finish_deep(st, ctx, deep_cv)
        yield st.method, res, pv, st.seconds + time.perf_counter() - t0


def _finish_deep(state, ctx, deep_cv):
    method = state.method
    (X_train, y_train), (X_val, y_val) = ctx.splits["train"], ctx.splits["val"]
    X_test, y_test = ctx.splits["test"]
    validation = (X_val, y_val) if len(y_val) else None
    seconds, params = {}, dict(method.params)
    if state.candidates is not None:
        best = max(range(len(state.trials)),
                   key=lambda j: (np.nan_to_num(state.trials[j].val_auc, nan=-1), -j))
        se = _search.auc_se(y_val, state.models[best][1])
        index = _search.choose(state.trials, se)
        model, pv = state.models[index]
        chosen = state.trials[index]
        fit_seconds = chosen.seconds
        params["search"] = {"score": "val_auc", "rule": "one standard error over the default",
                            "trials": [t.to_dict() for t in state.trials],
                            "chosen": chosen.settings, "chosen_val_auc": chosen.val_auc,
                            "default_val_auc": state.trials[0].val_auc,
                            "skipped": state.skipped}
        ctx.say(f"{method.name}: chosen trial {index + 1} of {len(state.trials)} "
                f"(val AUC {chosen.val_auc:.3f}, default {state.trials[0].val_auc:.3f})")
        settings = {k: v for k, v in chosen.settings.items()}

        def fresh():
            from ..deep import DeepClassifier

            return DeepClassifier(method.kind, seed=ctx.seed, verbose=ctx.verbose, **settings)
    else:
        fresh = method.make
        model = fresh()
        t0 = time.perf_counter()
        model.fit(X_train, y_train, validation=validation)
        fit_seconds = time.perf_counter() - t0      # in the caller's wall time already
        pv = None
        if len(y_val):
            pv = _full_proba(model, model.predict_proba(X_val), ctx.n_classes, method.name)

    def fit_fold(tr):
        m = fresh()
        m.fit(X_train[tr], y_train[tr], validation=validation)
        return m

    folds = ctx.folds if deep_cv else []
    cv = _cross_validate(method.name, folds,
                         _local_folds(folds, fit_fold, X_train, ctx.n_classes, method.name),
                         y_train, seconds, ctx.say, digits=1)
    t0 = time.perf_counter()
    proba = _full_proba(model, model.predict_proba(X_test), ctx.n_classes, method.name)
    predict_seconds = time.perf_counter() - t0
    proba, pv = _calibrated(method.name, (y_val, pv), proba, ctx, params)
    test = score(y_test, proba, n_boot=ctx.n_boot, seed=ctx.seed)
    seconds.update(fit=fit_seconds, predict=predict_seconds)
    params["seconds"] = {k: round(v, 4) for k, v in seconds.items()}
    for attr in ("epochs", "batch_size", "tta"):
        if getattr(model, attr, None) is not None:
            params[attr] = getattr(model, attr)
    history = getattr(model, "history_", None)
    if isinstance(history, dict):
        params["epochs_run"] = max((len(v) for k, v in history.items()
                                    if isinstance(v, (list, tuple)) and k != "attempts"),
                                   default=None)
        if len(history.get("attempts") or ()) > 1:  # restarted: each attempt's validation AUC
            params["attempts_val_auc"] = history["attempts"]
    res = MethodResult(
        name=method.name, family="deep", test=test, cv=cv, fit_seconds=fit_seconds,
        predict_seconds=predict_seconds, y_true=y_test, proba=proba,
        confusion=_confusion_of(*check_scores(y_test, proba)), estimator=model,
        params=params)
    return res, pv


# --------------------------------------------------------------------------------------------
# the ensemble: best classical and best deep by validation AUC, mixed with a weight chosen there

#: Weights of the deep member tried on validation (the classical member gets 1 - w).
_ENSEMBLE_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


def _run_ensemble(method, results, val_proba, ctx):
    y_val, y_test = ctx.splits["val"][1], ctx.splits["test"][1]
    usable = {n: r for n, r in results.items()
              if r.family in ("classical", "deep") and val_proba.get(n) is not None}
    scores = {n: r.params.get("val_auc", math.nan) for n, r in usable.items()}

    def best_of(names):
        names = [n for n in names if math.isfinite(scores.get(n, math.nan))]
        return max(names, key=lambda n: scores[n]) if names else None

    first = best_of([n for n, r in usable.items() if r.family == "classical"])
    second = best_of([n for n, r in usable.items() if r.family == "deep"])
    if first is None or second is None:             # one road only: its two best methods
        ranked = sorted((n for n in usable if math.isfinite(scores[n])),
                        key=lambda n: -scores[n])
        if len(ranked) < 2:
            raise ValueError(f"{method.name}: needs two methods with validation "
                             f"probabilities; got {ranked}")
        first, second = ranked[1], ranked[0]
    pa, pb = val_proba[first], val_proba[second]
    order = sorted(range(len(_ENSEMBLE_WEIGHTS)), key=lambda i: abs(_ENSEMBLE_WEIGHTS[i] - 0.5))
    trials, mixes = [], []
    for i in order:                                   # the even mix first: the anchor
        w = float(_ENSEMBLE_WEIGHTS[i])
        mix = (1 - w) * pa + w * pb
        trials.append(_search.Trial({"weight_" + second: w, "weight_" + first: round(1 - w, 2)},
                                    _val_auc(y_val, mix), 0.0))
        mixes.append(mix)
    best = max(range(len(trials)), key=lambda j: (np.nan_to_num(trials[j].val_auc, nan=-1), -j))
    index = _search.choose(trials, _search.auc_se(y_val, mixes[best]))
    w = float(_ENSEMBLE_WEIGHTS[order[index]])
    ra, rb = results[first], results[second]
    proba = (1 - w) * ra.proba + w * rb.proba
    pv = mixes[index]
    params = {"kind": ENSEMBLE, "members": [first, second], "weights": [round(1 - w, 2), w],
              "search": {"score": "val_auc", "rule": "one standard error over the even mix",
                         "trials": [t.to_dict() for t in trials],
                         "chosen": trials[index].settings,
                         "chosen_val_auc": trials[index].val_auc,
                         "default_val_auc": trials[0].val_auc, "skipped": []}}
    ctx.say(f"{method.name}: {1 - w:.1f} x {first} + {w:.1f} x {second} (val AUC "
            f"{trials[index].val_auc:.3f}; {first} {scores[first]:.3f}, {second} "
            f"{scores[second]:.3f})")
    proba, pv = _calibrated(method.name, (y_val, pv), proba, ctx, params)
    test = score(y_test, proba, n_boot=ctx.n_boot, seed=ctx.seed)
    res = MethodResult(
        name=method.name, family="ensemble", test=test, cv={},
        fit_seconds=ra.fit_seconds + rb.fit_seconds,
        predict_seconds=ra.predict_seconds + rb.predict_seconds, y_true=y_test, proba=proba,
        confusion=_confusion_of(*check_scores(y_test, proba)), estimator=None,
        params=params)
    return res, pv


def _compare(evaluation, y_test, seed, say):
    best_c = evaluation.best("classical")
    best_d = evaluation.best("deep")
    if best_c is None or best_d is None:
        return None
    pc = evaluation.methods[best_c].proba
    pd = evaluation.methods[best_d].proba
    if np.ndim(y_test) == 2:
        return _compare_multilabel(evaluation, best_c, best_d, y_test, pc, pd, seed, say)
    if pc.shape[1] == 2:
        res = delong(y_test, pd[:, 1], pc[:, 1])
        test = "delong"
    else:
        res = paired_bootstrap(y_test, pd, pc, n_boot=_COMPARE_BOOT, seed=seed)
        test = "paired_bootstrap"
    out = {"classical": best_c, "deep": best_d, "test": test,
           "auc_classical": res["auc_b"], "auc_deep": res["auc_a"],
           "auc_difference": res["difference"], "se": res["se"], "z": res["z"],
           "ci95": res["ci95"], "p_value": res["p_value"]}
    say(f"comparison ({test}): {best_d} - {best_c} AUC = {out['auc_difference']:+.4f} "
        f"[{out['ci95'][0]:+.4f}, {out['ci95'][1]:+.4f}], p = {out['p_value']:.3g}")
    return out


def _compare_multilabel(evaluation, best_c, best_d, y_test, pc, pd, seed, say):
    """The comparison of a multi-label task: on the mean per-label AUC (the figure the methods
    are ranked by), a paired bootstrap of the test rows; and per label, DeLong's test of that
    label's two AUCs (no correction for the multiple labels: read them as a profile)."""
    res = paired_bootstrap(y_test, pd, pc, n_boot=_COMPARE_BOOT, seed=seed)
    names = evaluation.dataset.get("classes") or [str(k) for k in range(y_test.shape[1])]
    per_label = []
    for k in range(y_test.shape[1]):
        row = {"label": names[k]}
        if 0 < y_test[:, k].sum() < y_test.shape[0]:
            d = delong(y_test[:, k], pd[:, k], pc[:, k])
            row.update(auc_classical=d["auc_b"], auc_deep=d["auc_a"],
                       auc_difference=d["difference"], ci95=d["ci95"], p_value=d["p_value"])
        per_label.append(row)
    out = {"classical": best_c, "deep": best_d, "test": "paired_bootstrap",
           "on": "mean per-label AUC", "auc_classical": res["auc_b"], "auc_deep": res["auc_a"],
           "auc_difference": res["difference"], "se": res["se"], "z": res["z"],
           "ci95": res["ci95"], "p_value": res["p_value"],
           "per_label": {"test": "delong", "labels": per_label}}
    say(f"comparison (paired bootstrap, mean per-label AUC): {best_d} - {best_c} AUC = "
        f"{out['auc_difference']:+.4f} [{out['ci95'][0]:+.4f}, {out['ci95'][1]:+.4f}], "
        f"p = {out['p_value']:.3g}")
    return out
