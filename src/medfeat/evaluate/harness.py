"""The harness: every method, classical or deep, through the same splits and the same scores."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import numpy as np

from ._result import METRICS, Evaluation, MethodResult
from .compare import delong, paired_bootstrap
from .metrics import _confusion, _predict, score
from .splits import check_cv, stratified_kfold

__all__ = ["evaluate", "method_names"]

#: Replicates of the paired bootstrap (multi-class comparison).
_COMPARE_BOOT = 2000


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
    return {"classical": _classical_kinds(), "deep": _deep_kinds() or ()}


# --------------------------------------------------------------------------------------------
# method resolution


@dataclasses.dataclass
class _Method:
    name: str
    family: str                   # "classical" | "deep"
    make: Callable[[], Any]       # a fresh, unfitted estimator
    params: dict


def _is_deep_classifier(obj):
    return any(c.__name__ == "DeepClassifier" and c.__module__.startswith("medfeat.deep")
               for c in type(obj).__mro__)


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


def _resolve(methods, *, seed, epochs, backend, n_jobs, progress, verbose, channel_axis=None):
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
            if kind in classical:
                features = {"backend": backend, "progress": progress}
                params = {"kind": kind, "seed": seed}
                if channel_axis is not None:
                    features["channel_axis"] = params["channel_axis"] = channel_axis

                def make(kind=kind, features=features):
                    return make_classifier(kind, random_state=seed, n_jobs=n_jobs,
                                           features=dict(features))
                out.append(_Method(name, "classical", make, params))
                continue
            if deep is None:
                deep = _deep_kinds()
            if deep is not None and kind in deep:
                out.append(_Method(name, "deep", _deep_factory(kind, epochs, seed, verbose),
                                   {"kind": kind, "epochs": epochs, "seed": seed}))
                continue
            hint = "" if deep is not None else \
                " (the deep models are unavailable: install the 'deep' extra for Keras)"
            raise ValueError(f"methods: unknown method {kind!r}; valid names are classical "
                             f"{list(classical)} and deep {list(deep or ())}{hint}")
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
    """What decides the extractor's output (n_jobs and progress do not)."""
    params = fx.get_params(deep=False)
    params.pop("n_jobs", None)
    params.pop("progress", None)
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
        self.seconds = {}

    def get(self, fx, part):
        key = (_extractor_key(fx), part)
        if key not in self._store:
            images = self._splits[part][0]
            t0 = time.perf_counter()
            fitted = fx.fit(images)
            feats = fitted.transform(images)
            dt = time.perf_counter() - t0
            self._store[key] = (feats, dt)
            self.seconds[f"features_{part}"] = self.seconds.get(f"features_{part}", 0.0) + dt
            self._log(f"features [{part}]: {images.shape[0]} images -> {feats.shape[1]} "
                      f"features in {dt:.1f} s")
        return self._store[key]


def _full_proba(estimator, proba, n_classes, where):
    """Probabilities with one column per dataset class, whatever subset the model saw."""
    proba = np.asarray(proba, dtype=np.float64)
    classes = getattr(estimator, "classes_", None)
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


def _cross_validate(name, folds, fit_fold, X, y, n_classes, seconds, say, *, digits):
    """Fit ``fit_fold(train_index)`` per fold, score it on the held-out rows of ``X``, log one
    line per fold; the CV summary ({} without folds), its seconds into ``seconds["cv"]``."""
    if not folds:
        return {}
    fold_scores = []
    t_cv = time.perf_counter()
    for i, (tr, te) in enumerate(folds, 1):
        t0 = time.perf_counter()
        model = fit_fold(tr)
        proba = _full_proba(model, model.predict_proba(X[te]), n_classes, f"{name} fold {i}")
        fold_scores.append(_fold_scores(y[te], proba))
        say(f"{name} fold {i}/{len(folds)}: {_fmt(fold_scores[-1])} "
            f"({time.perf_counter() - t0:.{digits}f} s)")
    seconds["cv"] = time.perf_counter() - t_cv
    return _cv_summary(len(folds), fold_scores)


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
    if np.unique(dataset.train.labels).size < 2:
        raise ValueError("dataset: the training split holds a single class")
    return n_classes


def _check_backend(backend):
    from ..kernels import available_backends

    if backend == "auto":
        return
    if backend not in ("cython", "numba", "cuda"):
        raise ValueError(f"backend must be 'auto', 'cython', 'numba' or 'cuda', got {backend!r}")
    if backend not in available_backends():
        raise ValueError(f"backend {backend!r} does not work on this machine; available: "
                         f"{list(available_backends())}")


def evaluate(dataset, methods, *, cv=5, seed=0, epochs=None, backend="auto", progress=True,
             log=print, n_jobs=None, deep_cv=False, n_boot=1000, keep_estimators=True):
    """Run every method through the same splits and score it with the same code.

    For each method, in order: stratified k-fold cross-validation on the training split (scores
    per fold, mean and standard deviation), a final fit on the training split, and the scores of
    its test-split probabilities (:func:`~medfeat.evaluate.score`, with the bootstrap interval of
    the AUC), with the confusion matrix and the fit and predict seconds. Then the best classical
    and the best deep method by test AUC are compared on the test split by a paired test
    (:func:`~medfeat.evaluate.delong` for binary tasks, :func:`~medfeat.evaluate.
    paired_bootstrap` otherwise).

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

    *Training data.* Classical methods are fitted on the training split only (their
    hyper-parameters are fixed defaults, nothing is selected on the validation split); deep
    methods also receive the validation split for early stopping and model selection. Neither
    ever sees the test split before it is scored.

    *Colour images.* A training split of shape ``(n, H, W, C)`` with ``C`` 3 or 4 (RGB, RGBA)
    and ``H`` and ``W`` at least four times ``C`` (e.g. MedMNIST's BloodMNIST, 28 x 28 x 3) is
    taken as colour: the classical methods given by name then extract their features per
    channel (``FeatureExtractor(channel_axis=-1)``, also ``MethodResult.params["channel_axis"]``
    and ``settings["colour"]``), and ``log`` gets one line saying so. A scikit-learn estimator
    given in a dict is used as given (a Pipeline of ``FeatureExtractor()`` without
    ``channel_axis`` reads such a stack as volumes). Deep models take the channels as input
    channels.

    *Deep cross-validation* costs k trainings per deep method (on two CPU cores, minutes
    each), so it runs only with ``deep_cv=True``; otherwise a deep method's ``cv`` is empty and
    ``settings["deep_cv"]`` is False. The test-split scores with their bootstrap interval are
    the figures that compare the two roads.

    Examples
    --------
    >>> from medfeat.io import make_phantoms
    >>> ds = make_phantoms(n=60, size=32, seed=0)
    >>> ev = evaluate(ds, ["nb", "tree"], cv=3, progress=False, log=None)
    >>> list(ev.methods), ev.methods["nb"].family, len(ev.methods["tree"].cv["folds"])
    (['nb', 'tree'], 'classical', 3)
    >>> 0.0 <= ev.methods["nb"].test["auc"] <= 1.0
    True
    """
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
    _check_backend(backend)
    y_train = np.asarray(dataset.train.labels).ravel()
    y_val = np.asarray(dataset.val.labels).ravel()
    y_test = np.asarray(dataset.test.labels).ravel()
    k = check_cv(cv, y_train)
    colour = _colour_images(dataset.train.images)
    resolved = _resolve(methods, seed=int(seed), epochs=epochs, backend=backend,
                        n_jobs=n_jobs, progress=bool(progress),
                        verbose=int(bool(progress) and log is not None),
                        channel_axis=-1 if colour else None)
    say = log if log is not None else (lambda *_: None)
    if colour and any(m.family == "classical" for m in resolved):
        shape = tuple(np.shape(dataset.train.images)[1:])
        say(f"colour images {shape}: classical methods named here compute their features per "
            f"channel (FeatureExtractor(channel_axis=-1)); estimators given in a dict are used "
            f"as given")

    splits = {"train": (dataset.train.images, y_train), "val": (dataset.val.images, y_val),
              "test": (dataset.test.images, y_test)}
    folds = stratified_kfold(y_train, k, seed=seed) if k else []
    cache = _FeatureCache(splits, say)
    results, walls = {}, {}
    for method in resolved:
        t_method = time.perf_counter()
        if method.family == "classical":
            res = _run_classical(method, splits, folds, cache, n_classes, n_boot, seed, say)
        else:
            res = _run_deep(method, splits, folds if deep_cv else [], n_classes, n_boot, seed,
                            say)
        if not keep_estimators:
            res.estimator = None
        results[method.name] = res
        walls[method.name] = round(time.perf_counter() - t_method, 3)
        t = res.test
        say(f"{method.name}: test {_fmt(t)} auc95 [{t['auc_ci95'][0]:.3f}, "
            f"{t['auc_ci95'][1]:.3f}] | fit {res.fit_seconds:.1f} s, predict "
            f"{res.predict_seconds:.1f} s, method total {time.perf_counter() - t_method:.1f} s")

    evaluation = Evaluation(
        dataset={"name": dataset.name, "n_train": int(y_train.size), "n_val": int(y_val.size),
                 "n_test": int(y_test.size), "classes": list(dataset.classes)},
        methods=results, seed=int(seed),
        settings={"cv": k, "epochs": epochs, "backend": backend, "n_jobs": n_jobs,
                  "deep_cv": bool(deep_cv), "n_boot": n_boot, "colour": bool(colour)},
        test_images=dataset.test.images)
    evaluation.comparison = _compare(evaluation, y_test, seed, say)
    evaluation.settings["seconds"] = {**{k_: round(v, 3) for k_, v in cache.seconds.items()},
                                      "methods": walls,
                                      "total": round(time.perf_counter() - t_start, 3)}
    return evaluation


def _run_classical(method, splits, folds, cache, n_classes, n_boot, seed, say):
    (X_train, y_train), (X_test, y_test) = splits["train"], splits["test"]
    estimator = method.make()
    fx, head = _feature_step(estimator)
    seconds = {}
    if fx is not None:
        F_train, seconds["features_train"] = cache.get(fx, "train")
        F_test, seconds["features_test"] = cache.get(fx, "test")
    else:
        head = estimator
        if _accepts_stacks(estimator):
            F_train, F_test = X_train, X_test
        else:
            F_train = X_train.reshape(X_train.shape[0], -1)
            F_test = X_test.reshape(X_test.shape[0], -1)
    from sklearn.base import clone

    def fit_fold(tr):
        return clone(head).fit(F_train[tr], y_train[tr])

    cv = _cross_validate(method.name, folds, fit_fold, F_train, y_train, n_classes, seconds,
                         say, digits=2)

    t0 = time.perf_counter()
    model = clone(head).fit(F_train, y_train)
    seconds["fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba = _full_proba(model, model.predict_proba(F_test), n_classes, method.name)
    seconds["predict"] = time.perf_counter() - t0
    if fx is not None:
        from sklearn.pipeline import Pipeline

        fitted = Pipeline([(estimator.steps[0][0], clone(fx).fit(X_train[:1])), *model.steps])
    else:
        fitted = model
    test = score(y_test, proba, n_boot=n_boot, seed=seed)
    params = dict(method.params)
    params["seconds"] = {k: round(v, 4) for k, v in seconds.items()}
    return MethodResult(
        name=method.name, family="classical", test=test, cv=cv,
        fit_seconds=seconds.get("features_train", 0.0) + seconds["fit"],
        predict_seconds=seconds.get("features_test", 0.0) + seconds["predict"],
        y_true=y_test, proba=proba, confusion=_confusion(y_test, _predict(proba), n_classes),
        estimator=fitted, params=params)


def _run_deep(method, splits, folds, n_classes, n_boot, seed, say):
    (X_train, y_train), val, (X_test, y_test) = splits["train"], splits["val"], splits["test"]
    validation = val if len(val[1]) else None
    seconds = {}

    def fit_fold(tr):
        model = method.make()
        model.fit(X_train[tr], y_train[tr], validation=validation)
        return model

    cv = _cross_validate(method.name, folds, fit_fold, X_train, y_train, n_classes, seconds,
                         say, digits=1)

    model = method.make()
    t0 = time.perf_counter()
    model.fit(X_train, y_train, validation=validation)
    fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba = _full_proba(model, model.predict_proba(X_test), n_classes, method.name)
    predict_seconds = time.perf_counter() - t0
    test = score(y_test, proba, n_boot=n_boot, seed=seed)
    seconds.update(fit=fit_seconds, predict=predict_seconds)
    params = dict(method.params)
    params["seconds"] = {k: round(v, 4) for k, v in seconds.items()}
    for attr in ("epochs", "batch_size"):
        if getattr(model, attr, None) is not None:
            params[attr] = getattr(model, attr)
    history = getattr(model, "history_", None)
    if isinstance(history, dict):
        params["epochs_run"] = max((len(v) for v in history.values()
                                    if isinstance(v, (list, tuple))), default=None)
    return MethodResult(
        name=method.name, family="deep", test=test, cv=cv, fit_seconds=fit_seconds,
        predict_seconds=predict_seconds, y_true=y_test, proba=proba,
        confusion=_confusion(y_test, _predict(proba), n_classes), estimator=model,
        params=params)


def _compare(evaluation, y_test, seed, say):
    best_c = evaluation.best("classical")
    best_d = evaluation.best("deep")
    if best_c is None or best_d is None:
        return None
    pc = evaluation.methods[best_c].proba
    pd = evaluation.methods[best_d].proba
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
