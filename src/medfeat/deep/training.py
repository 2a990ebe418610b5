"""The deep road's estimator, :class:`DeepClassifier` (what the evaluation harness runs), and
:func:`save` / :func:`load` of models and estimators; :func:`train` and :func:`predict` are
re-exported from the modules that hold them.
"""

import numbers
import os
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ._files import _FORMAT, read_archive, write_archive
from ._inputs import (_check_images, _check_positive_int, _is_multilabel, _is_volume_stack,
                      _resize_images)
from ._keras import check_seed, import_keras, set_seed
from ._loop import (_compile, _label_weights, _resolve_strategy, _scope, auc_lower_bound,
                    best_val_auc, train)
from ._predict import predict


__all__ = ["train", "predict", "save", "load", "DeepClassifier", "KIND_DEFAULTS"]


def save(obj, path):
    """Save a ``keras.Model`` or a fitted :class:`DeepClassifier` to one ``.keras`` file.

    The file is written atomically (temporary file in the same folder, then renamed). For a
    ``DeepClassifier`` its parameters, classes and preprocessing are stored inside the same
    archive as ``medfeat.json``; Keras ignores that entry.

    Examples
    --------
    >>> import os, tempfile
    >>> from medfeat.deep import build_model
    >>> model = build_model("cnn", (16, 16), 2, width=4, dense=8)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> save(model, path)
    >>> load(path).output_shape
    (None, 2)
    """
    keras = import_keras()
    if isinstance(obj, DeepClassifier):
        obj._check_fitted()
        model, meta = obj.model_, obj._metadata()
    elif isinstance(obj, keras.Model):
        model, meta = obj, None
    else:
        raise ValueError(f"obj must be a keras.Model or a fitted DeepClassifier, got "
                         f"{type(obj).__name__}")
    write_archive(model, meta, path)


def load(path):
    """Load what :func:`save` wrote: a :class:`DeepClassifier` if it was one, else a model.

    Models are loaded with ``safe_mode=True`` (no arbitrary code from the file).

    Examples
    --------
    >>> import os, tempfile
    >>> from medfeat.deep import build_model
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> save(build_model("cnn", (16, 16), 3, width=4, dense=8), path)
    >>> load(path).output_shape
    (None, 3)
    """
    model, meta = read_archive(path)
    return model if meta is None else DeepClassifier._from_metadata(meta, model)


#: DeepClassifier's defaults per kind, measured on PneumoniaMNIST (28 px) on a 2-core CPU
#: (benchmarks/accuracy_deep.py): a few minutes of training each, AUC > 0.96 on its test split.
def _check_restarts(restarts):
    if isinstance(restarts, bool) or not isinstance(restarts, numbers.Integral) or restarts < 0:
        raise ValueError(f"restarts must be a non-negative integer, got {restarts!r}")
    return int(restarts)


def _attempt_seed(seed, attempt):
    """The seed of training attempt ``attempt`` (0: ``seed`` itself), a fixed function of both,
    so that a run with the same seed restarts the same way."""
    return (int(seed) + 1_000_003 * attempt) % 2**31


KIND_DEFAULTS = {
    "cnn": {"epochs": 15},
    "resnet18": {"epochs": 10, "model_options": {"width": 16}},
    "resnet50": {"epochs": 10},
    "diagnostic": {"epochs": 15, "model_options": {"width": 16}},
    "cnn3d": {"epochs": 15},
    "resnet18_3d": {"epochs": 10},
}


#: ``"diagnostic"`` options of each kind's backbone when :class:`DeepClassifier` is fitted on
#: multi-label targets (the kind's own width and head size; its ``pool`` does not apply, the
#: diagnostic head pools globally).
_MULTILABEL_BACKBONES = {
    "cnn": {"backbone": "cnn", "width": 32, "dense": 128},
    "resnet18": {"backbone": "resnet18", "width": 16},
    "resnet50": {"backbone": "resnet50"},
    "diagnostic": {"width": 16},
}


_DIAGNOSTIC_KEYS = ("backbone", "width", "dense", "dropout", "weight_decay", "weights")


#: The 3-D kind a 2-D kind becomes when :class:`DeepClassifier` is fitted on volumes.
_VOLUME_TWINS = {"cnn": "cnn3d", "resnet18": "resnet18_3d"}


class DeepClassifier(ClassifierMixin, BaseEstimator):
    """A Keras image classifier with the scikit-learn face the evaluation harness expects.

    It records and applies its own preprocessing: images are scaled to [0, 1] (uint8 and bool by
    their dtype range, other dtypes by the training data's minimum and maximum) and given a
    channel axis when they have none.

    Volumes: fitted on a stack of volumes ``(n, D, H, W)`` (grey) or ``(n, D, H, W, C)``, the
    kinds ``"cnn"`` and ``"resnet18"`` build their 3-D twins ``"cnn3d"`` and ``"resnet18_3d"``
    with the volume as a 5-D input ``(n, D, H, W, C)`` (not the slices as channels), a preset
    ``augment`` name picks the volume preset of that name (:func:`medfeat.augment.preset` with
    ``volumes=True``), and ``tta=True`` averages the 8 flips of the volume. A 4-D stack counts
    as 2-D images ``(n, H, W, C)`` only when its last axis has 1 to 4 channels and both sides
    are at least four times that. The kind built is kept in ``model_kind_``. A kind that does
    not fit the data's rank (``"cnn3d"`` on 2-D images, ``"resnet50"`` on volumes) raises
    ``ValueError``.

    Multi-label: fitted on a 0/1 matrix ``y`` ``(n, n_labels)`` (several independent findings
    per image), the kinds ``"cnn"``, ``"resnet18"`` and ``"resnet50"`` become the
    ``"diagnostic"`` model with that backbone (:func:`build_model`: global pooling, a dense
    head and one sigmoid per label; ``model_options`` other than ``width``, ``dense``,
    ``dropout``, ``weight_decay`` and ``weights`` are ignored), trained with binary
    cross-entropy balanced per label (``class_weight="balanced"``: each label's positives
    weigh ``n / (2 n_pos)``, its negatives ``n / (2 n_neg)``). ``predict_proba`` then gives
    each label's probability ``(n, n_labels)`` (rows need not sum to 1), ``predict`` the
    labels above 0.5, ``classes_`` is ``[array([0, 1])] * n_labels`` (scikit-learn's
    multi-output convention) and ``multilabel_`` is True. 2-D images only.

    Parameters
    ----------
    kind : str or callable
        A :func:`build_model` kind or ``f(input_shape, n_classes) -> keras.Model`` (softmax;
        ``input_shape`` has the channel axis, ``(D, H, W, C)`` for volumes).
    epochs : int or None
        Maximum epochs (early stopping on validation AUC when ``fit`` gets ``validation``).
        None: the kind's default, sized for a 2-core CPU on 28 px images (``"cnn"`` 15,
        ``"resnet18"`` 10, ``"resnet50"`` 10, ``"diagnostic"`` 15, a callable 15).
    batch_size : int
    seed : int
    augment : None, str or callable
        Training-time augmentation, see :func:`train` (``"default"``: flips, small
        shift-scale-rotate, intensity jitter).
    tta : bool or str
        Test-time augmentation in :meth:`predict_proba`, see :func:`predict`.
    class_weight : "balanced", dict or None
        A dict maps class labels (values of ``y``) to weights.
    model_options : dict, optional
        Options for :func:`build_model` (``width``, ``dropout``, ...), merged over this class's
        defaults per kind: ``{"width": 16}`` for ``"resnet18"`` and ``"diagnostic"`` (a quarter
        of :func:`build_model`'s 64, so that training fits a few minutes on a CPU).
    strategy : None, "mirrored" or a strategy object
    verbose : int
    lr, lr_schedule, patience, warmup
        See :func:`train`.
    restarts : int
        Trainings from another initialisation (seeds derived from ``seed``) allowed when the
        best validation AUC of the last one is not credibly above chance: the lower end of its
        95% interval (Hanley & McNeil 1982) at or below 0.5. The attempt with the best
        validation AUC is kept. Needs ``validation`` in :meth:`fit`; single-label targets
        only. A training that never leaves chance is rare but not seed-proof: Adam with batch
        normalisation on a small, subtle finding can sit at chance until the learning rate has
        decayed.
    input_size : int or None
        Side of the network's square input for 2-D images: images of another size are resized
        to ``input_size`` x ``input_size`` after scaling (bilinear, with scikit-image's
        Gaussian anti-aliasing when shrinking), in :meth:`fit`, :meth:`predict_proba` and
        :meth:`explain` alike, so the classifier takes images at their stored size. None (the
        default): the network takes the images as they are (every kind adapts to any size;
        the cost grows with the pixels).

    Attributes
    ----------
    model_ : keras.Model
    model_kind_ : str or callable
        The kind built: ``kind``, or its 3-D twin on volumes.
    epochs_ : int
        The epochs limit used (``epochs`` or the kind's default).
    history_ : dict
        :func:`train`'s history of the kept attempt, with ``"attempts"``: the best validation
        AUC of each attempt (one entry without restarts).
    seed_ : int
        The seed of the kept attempt (``seed`` unless a restart won).
    classes_ : ndarray
    fit_seconds_ : float
    preprocessing_ : dict
        ``{"low", "high", "add_channel", "image_shape", "volume", "model_kind"}``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 50, (40, 16, 16)).astype(np.uint8)
    >>> y = np.arange(40) % 2
    >>> X[y == 1, 4:10, 4:10] = 255
    >>> clf = DeepClassifier("cnn", epochs=1, batch_size=8, verbose=0,
    ...                      model_options={"width": 4, "dense": 8}).fit(X, y)
    >>> clf.predict_proba(X).shape, clf.classes_
    ((40, 2), array([0, 1]))
    >>> Y = np.column_stack([y, X[:, 12:, 12:].mean(axis=(1, 2)) > 25])   # two findings
    >>> ml = DeepClassifier("cnn", epochs=1, batch_size=8, verbose=0,
    ...                     model_options={"width": 4, "dense": 8}).fit(X, Y)
    >>> ml.predict_proba(X).shape, ml.model_kind_, ml.multilabel_
    ((40, 2), 'diagnostic', True)
    """

    #: The road of this estimator: the evaluation harness runs objects with ``medfeat_road ==
    #: "deep"`` as deep models (one process, no feature cache), whatever their class is called.
    medfeat_road = "deep"

    def __init__(self, kind="cnn", *, epochs=None, batch_size=128, seed=0, augment="default",
                 tta=False, class_weight="balanced", model_options=None, strategy=None, verbose=1,
                 lr=2e-3, lr_schedule="cosine", patience=5, warmup=0, restarts=0,
                 input_size=None):
        self.kind = kind
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.tta = tta
        self.class_weight = class_weight
        self.model_options = model_options
        self.strategy = strategy
        self.verbose = verbose
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.patience = patience
        self.warmup = warmup
        self.restarts = restarts
        self.input_size = input_size

    # ---- model kind and preprocessing
    def _select_kind(self, X):
        """``(model kind, volume)`` for training data ``X``; refuses a kind of the wrong rank."""
        from .models import VOLUME_MODELS

        if callable(self.kind):
            return self.kind, _is_volume_stack(X)
        if self.kind in VOLUME_MODELS:
            if X.ndim == 3:
                raise ValueError(f"kind {self.kind!r} takes volumes (n, depth, height, width[, "
                                 f"channels]), got 2-D images of shape {X.shape}; use "
                                 "kind='cnn' or 'resnet18' for images")
            return self.kind, True
        if not _is_volume_stack(X):
            return self.kind, False
        if self.kind in _VOLUME_TWINS:
            return _VOLUME_TWINS[self.kind], True
        if isinstance(self.kind, str) and self.kind in KIND_DEFAULTS:
            raise ValueError(f"kind {self.kind!r} takes 2-D images (n, height, width[, "
                             f"channels]), got volumes of shape {X.shape}; use kind='cnn' or "
                             "'resnet18' (3-D on volumes), 'cnn3d' or 'resnet18_3d'")
        return self.kind, True  # an unknown kind: build_model names the valid ones

    def _validation_pair(self, validation):
        """``(preprocessed X_val, y_val as given)`` of a ``validation`` pair."""
        try:
            Xv, yv = validation
        except (TypeError, ValueError) as exc:
            raise ValueError("validation must be a pair (X_val, y_val)") from exc
        return self._preprocess(Xv, "validation X"), yv

    def _fit_preprocessing(self, X):
        if X.dtype == np.uint8:
            low, high = 0.0, 255.0
        elif X.dtype == np.bool_:
            low, high = 0.0, 1.0
        else:
            low, high = float(X.min()), float(X.max())
            if high <= low:
                high = low + 1.0
        self.model_kind_, volume = self._select_kind(X)
        size = self.input_size
        if size is not None:
            size = _check_positive_int(size, "input_size")
            if volume:
                raise ValueError(f"input_size resizes 2-D images; got volumes of shape "
                                 f"{X.shape} (resample them first, e.g. "
                                 f"medfeat.io.load_series_folder(shape=...))")
        self.preprocessing_ = {"low": low, "high": high, "input_size": size,
                               "add_channel": X.ndim == (4 if volume else 3),
                               "image_shape": list(X.shape[1:]), "volume": bool(volume),
                               "model_kind": self.model_kind_ if isinstance(self.model_kind_, str)
                               else None}

    def _preprocess(self, X, name="X"):
        X = _check_images(X, name)
        expected = tuple(self.preprocessing_["image_shape"])
        if X.shape[1:] != expected:
            raise ValueError(f"{name}: images of shape {X.shape[1:]}, but the classifier was "
                             f"fitted on {expected}")
        low, high = self.preprocessing_["low"], self.preprocessing_["high"]
        out = (X.astype(np.float32) - np.float32(low)) / np.float32(high - low)
        size = self.preprocessing_.get("input_size")
        if size is not None and tuple(out.shape[1:3]) != (size, size):
            out = _resize_images(out, (size, size))
        return out[..., None] if self.preprocessing_["add_channel"] else out

    def _encode(self, y, n, name):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or len(y) != n:
            raise ValueError(f"{name} must have shape ({n},) to match the images, got {y.shape}")
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, len(self.classes_) - 1)
        if not np.all(self.classes_[index] == y):
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            raise ValueError(f"{name} holds labels {unknown.tolist()} not seen in training "
                             f"(classes {self.classes_.tolist()})")
        return index

    def _build(self, input_shape, n_classes, seed=None):
        seed = check_seed(self.seed if seed is None else seed)
        kind = getattr(self, "model_kind_", self.kind)
        defaults = {} if callable(kind) else KIND_DEFAULTS.get(kind, {})
        options = {**defaults.get("model_options", {}), **(self.model_options or {})}
        if callable(self.kind):
            set_seed(seed)
            model = self.kind(input_shape, n_classes)
            if not isinstance(model, import_keras().Model):
                raise ValueError("kind, when callable, must return a keras.Model, got "
                                 f"{type(model).__name__}")
            return model
        from .models import build_model

        return build_model(kind, input_shape, n_classes, seed=seed, **options)

    # ---- scikit-learn face
    def fit(self, X, y, validation=None):
        """Build the model and train it; returns ``self``.

        Parameters
        ----------
        X : ndarray
            ``(n, H, W)`` or ``(n, H, W, C)`` images, or ``(n, D, H, W)`` or ``(n, D, H, W, C)``
            volumes (see the class docstring), any real dtype.
        y : array-like
            ``(n,)`` class labels (any sortable values).
        validation : (X_val, y_val), optional
            For early stopping and best-epoch selection.
        """
        t0 = time.perf_counter()
        X = _check_images(X)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] >= 2:
            return self._fit_multilabel(X, y, validation, t0)
        self.multilabel_ = False
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must have shape ({len(X)},) to match X, got {y.shape}")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"y must hold at least two classes, got {self.classes_.tolist()}")
        yi = self._encode(y, len(X), "y")
        class_weight = self.class_weight
        if isinstance(class_weight, dict):  # keys are class labels here, indices in train()
            unknown = [k for k in class_weight if k not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(f"class_weight has labels {unknown} that are not classes "
                                 f"{self.classes_.tolist()}")
            class_weight = {int(np.searchsorted(self.classes_, k)): w
                            for k, w in class_weight.items()}
        self._fit_preprocessing(X)
        Xp = self._preprocess(X)
        val = None
        if validation is not None:
            Xv, yv = self._validation_pair(validation)
            val = (Xv, self._encode(yv, len(Xv), "validation y"))
        strategy = _resolve_strategy(self.strategy)
        restarts = _check_restarts(self.restarts)
        self.epochs_ = self._epochs()
        attempts = []
        for attempt in range(restarts + 1):
            seed = _attempt_seed(self.seed, attempt)
            with _scope(strategy):
                model = self._build(Xp.shape[1:], len(self.classes_), seed)
                _compile(model, float(self.lr), _is_multilabel(model))
            if model.output_shape[-1] != len(self.classes_):
                raise ValueError(f"the model has {model.output_shape[-1]} outputs for "
                                 f"{len(self.classes_)} classes")
            history = train(model, Xp, yi, validation=val, epochs=self.epochs_,
                            batch_size=self.batch_size, seed=seed, class_weight=class_weight,
                            augment=self.augment, lr=self.lr, lr_schedule=self.lr_schedule,
                            patience=self.patience, warmup=self.warmup, strategy=strategy,
                            verbose=self.verbose)
            auc = best_val_auc(history)
            attempts.append((auc, seed, model, history))
            if attempt == restarts or val is None or auc is None:
                break
            low = auc_lower_bound(auc, val[1])
            if low > 0.5:
                break
            if self.verbose:
                print(f"restart: best validation AUC {auc:.3f} (95% lower bound {low:.3f}) is "
                      f"not above chance; training again from another initialisation (seed "
                      f"{_attempt_seed(self.seed, attempt + 1)})")
        # the attempt with the best validation AUC (the first among equals)
        best = max(range(len(attempts)), key=lambda k: (attempts[k][0], -k))
        _, self.seed_, self.model_, self.history_ = attempts[best]
        self.history_["attempts"] = [a[0] for a in attempts]
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _fit_multilabel(self, X, y, validation, t0):
        """:meth:`fit` on a 0/1 matrix ``y`` ``(n, n_labels)``: the diagnostic sigmoid head."""
        if len(y) != len(X) or not np.all(np.isin(y, (0, 1))):
            raise ValueError(f"y of a multi-label task must be a 0/1 matrix ({len(X)}, "
                             f"n_labels), got shape {y.shape} with values "
                             f"{np.unique(y)[:5].tolist()}")
        Y = y.astype(np.float32)
        if isinstance(self.class_weight, dict):
            raise ValueError("class_weight must be 'balanced' or None for multi-label targets, "
                             "got a dict")
        weights = _label_weights(Y, self.class_weight)
        self.classes_ = [np.array([0, 1]) for _ in range(Y.shape[1])]
        self.multilabel_ = True
        self._fit_preprocessing(X)
        if self.preprocessing_["volume"]:
            raise ValueError(f"multi-label targets take 2-D images (n, height, width[, "
                             f"channels]), got volumes of shape {X.shape}")
        kind = self.model_kind_
        if not callable(kind):
            if kind not in _MULTILABEL_BACKBONES:
                raise ValueError(f"kind {kind!r} has no multi-label form; use 'cnn', "
                                 f"'resnet18', 'resnet50' or 'diagnostic'")
            self.model_kind_ = "diagnostic"
            self.preprocessing_["model_kind"] = "diagnostic"
        Xp = self._preprocess(X)
        val = None
        if validation is not None:
            Xv, yv = self._validation_pair(validation)
            yv = np.asarray(yv)
            if yv.shape != (len(Xv), Y.shape[1]) or not np.all(np.isin(yv, (0, 1))):
                raise ValueError(f"validation y must be a 0/1 matrix ({len(Xv)}, {Y.shape[1]}), "
                                 f"got shape {yv.shape}")
            val = (Xv, yv.astype(np.float32))
        strategy = _resolve_strategy(self.strategy)
        with _scope(strategy):
            if callable(kind):
                model = self._build(Xp.shape[1:], Y.shape[1])
                if not _is_multilabel(model):
                    raise ValueError("kind, when callable, must end in a sigmoid layer for "
                                     "multi-label targets")
            else:
                from .models import build_model

                options = {**_MULTILABEL_BACKBONES[kind], **(self.model_options or {})}
                options = {k: v for k, v in options.items() if k in _DIAGNOSTIC_KEYS}
                model = build_model("diagnostic", Xp.shape[1:], Y.shape[1],
                                    seed=check_seed(self.seed), **options)
            _compile(model, float(self.lr), True, weights)
        if model.output_shape[-1] != Y.shape[1]:
            raise ValueError(f"the model has {model.output_shape[-1]} outputs for "
                             f"{Y.shape[1]} labels")
        self.model_ = model
        self.epochs_ = self._epochs()
        self.history_ = train(model, Xp, Y, validation=val, epochs=self.epochs_,
                              batch_size=self.batch_size, seed=self.seed, class_weight=None,
                              augment=self.augment, lr=self.lr, lr_schedule=self.lr_schedule,
                              patience=self.patience, warmup=self.warmup, strategy=strategy,
                              verbose=self.verbose)
        self.seed_ = check_seed(self.seed)
        self.history_["attempts"] = [best_val_auc(self.history_)]
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _epochs(self):
        if self.epochs is not None:
            return _check_positive_int(self.epochs, "epochs")
        kind = getattr(self, "model_kind_", self.kind)
        if callable(kind):
            return 15
        if getattr(self, "multilabel_", False) and not callable(self.kind):
            kind = self.kind                 # the backbone kind's epochs
        return KIND_DEFAULTS.get(kind, {}).get("epochs", 15)

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this DeepClassifier is not fitted yet; call fit first")

    def predict_proba(self, X):
        """Class probabilities ``(n, n_classes)`` float64, columns in the order of ``classes_``."""
        self._check_fitted()
        p = predict(self.model_, self._preprocess(X), tta=self.tta,
                    batch_size=max(256, int(self.batch_size)))
        if getattr(self, "multilabel_", False):   # one probability per finding
            return p
        if _is_multilabel(self.model_):  # independent sigmoids: normalise to a distribution
            p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
        return p

    def predict(self, X):
        """Most probable class label per image (multi-label: 0/1 per label, above 0.5)."""
        if getattr(self, "multilabel_", False):
            return (self.predict_proba(X) > 0.5).astype(np.int64)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def explain(self, images, *, target=None, steps=64):
        """Integrated-gradients attributions, shaped like ``images``.

        Parameters
        ----------
        images : ndarray
            ``(n, H, W)`` or ``(n, H, W, C)`` (or volumes ``(n, D, H, W[, C])``) as given to
            :meth:`fit`; :func:`medfeat.deep.plot_attributions` draws volumes as three
            orthogonal slices.
        target : class label, sequence of labels, or None
            Class to explain (a value of ``classes_``); None: the predicted class per image.
        steps : int
            Riemann steps of the path integral.
        """
        self._check_fitted()
        from .explain import integrated_gradients

        Xp = self._preprocess(images, "images")
        if target is not None:
            scalar = np.ndim(target) == 0
            t = np.atleast_1d(np.asarray(target))
            index = self._encode(t, len(t), "target")
            target = int(index[0]) if scalar else index
        attributions = np.asarray(integrated_gradients(self.model_, Xp, target=target,
                                                       steps=steps))
        if self.preprocessing_["add_channel"]:
            attributions = attributions[..., 0]
        shape = tuple(np.shape(images)[1:3])
        if self.preprocessing_.get("input_size") is not None and \
                tuple(attributions.shape[1:3]) != shape:
            # back to the image's pixels, scaled so that every image's attributions keep
            # their sum (integrated gradients' completeness)
            ratio = np.prod(attributions.shape[1:3]) / np.prod(shape)
            attributions = _resize_images(attributions, shape, anti_aliasing=False) * ratio
        return attributions

    # ---- persistence
    def _metadata(self):
        params = {k: v for k, v in self.get_params().items()
                  if isinstance(v, (str, int, float, bool, type(None), dict, list, tuple))
                  and k not in ("augment", "strategy")}
        if callable(self.kind):
            params["kind"] = getattr(self.kind, "__name__", "callable")
        multilabel = bool(getattr(self, "multilabel_", False))
        classes = np.arange(len(self.classes_)) if multilabel else self.classes_
        return {"format": _FORMAT, "version": 1, "params": params, "multilabel": multilabel,
                "classes": classes.tolist(), "classes_dtype": classes.dtype.str,
                "preprocessing": self.preprocessing_,
                "history": {k: v for k, v in self.history_.items()},
                "fit_seconds": self.fit_seconds_, "epochs": self.epochs_,
                "seed": getattr(self, "seed_", self.seed)}

    @classmethod
    def _from_metadata(cls, meta, model):
        params = dict(meta["params"])
        clf = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
        clf.model_ = model
        clf.classes_ = np.asarray(meta["classes"], dtype=np.dtype(meta["classes_dtype"]))
        clf.multilabel_ = bool(meta.get("multilabel", False))
        if clf.multilabel_:
            clf.classes_ = [np.array([0, 1]) for _ in clf.classes_]
        clf.preprocessing_ = meta["preprocessing"]
        clf.model_kind_ = clf.preprocessing_.get("model_kind") or clf.kind
        clf.history_ = meta["history"]
        clf.fit_seconds_ = meta["fit_seconds"]
        clf.epochs_ = meta.get("epochs", clf.epochs)
        clf.seed_ = meta.get("seed", clf.seed)
        return clf

    def save(self, path):
        """Save to one ``.keras`` file (see :func:`save`)."""
        save(self, path)

    @classmethod
    def load(cls, path):
        """Load a classifier written by :meth:`save`."""
        obj = load(path)
        if not isinstance(obj, cls):
            raise ValueError(f"{os.fspath(path)!r} holds a plain Keras model, not a "
                             "DeepClassifier")
        return obj
