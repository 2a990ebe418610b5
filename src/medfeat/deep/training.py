"""Training, prediction, saving, and :class:`DeepClassifier` (what the evaluation harness runs).

:func:`train` runs one ``model.fit`` epoch at a time on a shuffled (and, if asked, augmented)
copy of the training data, so that shuffling and augmentation come from NumPy generators seeded by
``(seed, epoch)``: two runs with the same seed see the same batches. After each epoch it scores the
validation set (ROC AUC), prints one line, and keeps the best epoch's weights, which are restored
at the end (early stopping after ``patience`` epochs without improvement).
"""

import json
import numbers
import os
import tempfile
import time
import zipfile

import numpy as np

from ._keras import check_seed, import_keras, set_seed

__all__ = ["train", "predict", "save", "load", "DeepClassifier", "KIND_DEFAULTS"]

_META_NAME = "medfeat.json"
_FORMAT = "medfeat.DeepClassifier"


# --------------------------------------------------------------------------- argument checks
def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_images(X, name="X"):
    X = np.asarray(X)
    if X.dtype.kind not in "buif":
        raise ValueError(f"{name} must hold real numbers (bool, integer or float), got dtype "
                         f"{X.dtype}")
    if X.ndim not in (3, 4, 5) or X.shape[0] == 0 or 0 in X.shape:
        raise ValueError(f"{name} must be a non-empty stack of images (n, height, width[, "
                         f"channels]) or volumes (n, depth, height, width[, channels]), got "
                         f"shape {X.shape}")
    if X.dtype.kind == "f" and not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def _model_input(model, X, name="X"):
    """``X`` as float32 with the model's channel axis; shapes are checked against the model."""
    X = _check_images(X, name)
    expected = tuple(model.input_shape[1:])
    if X.ndim == len(expected) and expected[-1] == 1:  # grey images or volumes: channel axis
        X = X[..., None]
    if len(expected) != X.ndim - 1 or any(e is not None and e != s
                                          for e, s in zip(expected, X.shape[1:])):
        raise ValueError(f"{name}: images of shape {X.shape[1:]} do not fit the model's input "
                         f"{expected}")
    return np.ascontiguousarray(X, dtype=np.float32)


def _is_multilabel(model):
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") == "sigmoid"


def _targets(model, y, n, name="y"):
    """Integer labels (softmax models) or a 0/1 matrix (sigmoid, multi-label models)."""
    y = np.asarray(y)
    n_out = model.output_shape[-1]
    if _is_multilabel(model):
        if y.ndim == 1:  # single-label classes for a sigmoid head: one-hot
            y = _labels(y, n, n_out, name)
            y = np.eye(n_out, dtype=np.float32)[y]
        if y.shape != (n, n_out) or not np.all((y == 0) | (y == 1)):
            raise ValueError(f"{name} must be labels (n,) or a 0/1 matrix (n, {n_out}) for a "
                             f"multi-label model, got shape {y.shape}")
        return y.astype(np.float32)
    return _labels(y, n, n_out, name)


def _labels(y, n, n_classes, name):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the images, got {y.shape}")
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise ValueError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"{name} must hold class indices in [0, {n_classes}), got "
                         f"[{y.min()}, {y.max()}]")
    return y


def _sample_weights(y, class_weight, n_classes):
    if class_weight is None or y.ndim == 2:  # multi-label targets: no per-class weighting
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be 'balanced', a dict or None, got "
                             f"{class_weight!r}")
        present = counts > 0
        weights = np.zeros(n_classes)
        weights[present] = len(y) / (present.sum() * counts[present])
    elif isinstance(class_weight, dict):
        weights = np.array([float(class_weight.get(k, 1.0)) for k in range(n_classes)])
        if np.any(weights < 0):
            raise ValueError(f"class_weight values must be >= 0, got {class_weight}")
    else:
        raise ValueError(f"class_weight must be 'balanced', a dict or None, got {class_weight!r}")
    return weights[y].astype(np.float32)


def _resolve_augment(augment, volumes=False):
    if augment is None or augment is False:
        return None
    if isinstance(augment, str):
        from .. import augment as _augment

        return _augment.preset(augment, volumes=volumes)
    if not callable(augment):
        raise ValueError("augment must be None, a preset name or a callable "
                         f"f(images, seed=...) -> images, got {augment!r}")
    return augment


def _resolve_strategy(strategy):
    """None, a strategy/distribution object, or ``"mirrored"`` (all local devices)."""
    if strategy is None:
        return None
    keras = import_keras()
    backend = keras.backend.backend()
    if isinstance(strategy, str):
        if strategy not in ("mirrored", "data_parallel"):
            raise ValueError(f"strategy must be None, 'mirrored' or a strategy object, got "
                             f"{strategy!r}")
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.distribute.MirroredStrategy()
        if backend == "jax":
            return keras.distribution.DataParallel()
        raise ValueError(f"strategy={strategy!r} needs the tensorflow or jax backend, not "
                         f"{backend}")
    if not hasattr(strategy, "scope"):
        raise ValueError("strategy must have a scope() method (tf.distribute.Strategy or "
                         f"keras.distribution.Distribution), got {strategy!r}")
    return strategy


class _NullScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _scope(strategy):
    return strategy.scope() if strategy is not None else _NullScope()


def _auc(y_true, proba):
    """Validation ROC AUC (binary: positive class; several classes: macro one-vs-rest); None if
    undefined (one class only)."""
    from sklearn.metrics import roc_auc_score

    if y_true.ndim == 2:  # multi-label: mean AUC over labels that have both values
        aucs = [roc_auc_score(y_true[:, k], proba[:, k]) for k in range(y_true.shape[1])
                if 0 < y_true[:, k].sum() < len(y_true)]
        return float(np.mean(aucs)) if aucs else None
    present = np.unique(y_true)
    if len(present) < 2:
        return None
    if proba.shape[1] == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    if len(present) < proba.shape[1]:
        return None
    return float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro"))


_BALANCED_BCE = []


def _balanced_bce(positive, negative):
    """Binary cross-entropy with a weight per label and value (a registered Keras loss, so a
    model compiled with it saves like any other)."""
    keras = import_keras()
    if not _BALANCED_BCE:
        @keras.saving.register_keras_serializable(package="medfeat")
        class LabelBalancedBinaryCrossentropy(keras.losses.Loss):
            """Mean over the labels of ``-(w1 y log p + w0 (1 - y) log (1 - p))``."""

            def __init__(self, positive, negative, name="label_balanced_bce", **kwargs):
                super().__init__(name=name, **kwargs)
                self.positive = [float(v) for v in positive]
                self.negative = [float(v) for v in negative]

            def call(self, y_true, y_pred):
                ops = keras.ops
                eps = 1e-7
                p = ops.clip(y_pred, eps, 1.0 - eps)
                y = ops.cast(y_true, p.dtype)
                w1 = ops.convert_to_tensor(np.asarray(self.positive, np.float32), dtype=p.dtype)
                w0 = ops.convert_to_tensor(np.asarray(self.negative, np.float32), dtype=p.dtype)
                loss = -(w1 * y * ops.log(p) + w0 * (1.0 - y) * ops.log(1.0 - p))
                return ops.mean(loss, axis=-1)

            def get_config(self):
                return {**super().get_config(), "positive": self.positive,
                        "negative": self.negative}
        _BALANCED_BCE.append(LabelBalancedBinaryCrossentropy)
    return _BALANCED_BCE[0](positive, negative)


def _label_weights(y, class_weight):
    """``(positive, negative)`` weights per label of a 0/1 matrix ``y`` under ``class_weight``
    ("balanced": ``n / (2 n_pos)`` and ``n / (2 n_neg)``, each label's two values weighing
    alike, as scikit-learn's balanced weights of a binary task); None for no weighting."""
    if class_weight is None:
        return None
    if class_weight != "balanced":
        raise ValueError(f"class_weight must be 'balanced' or None for multi-label targets, "
                         f"got {class_weight!r}")
    n = y.shape[0]
    pos = y.sum(axis=0).astype(np.float64)
    neg = n - pos
    positive = np.where(pos > 0, n / (2.0 * np.maximum(pos, 1)), 0.0)
    negative = np.where(neg > 0, n / (2.0 * np.maximum(neg, 1)), 0.0)
    return positive, negative


def _compile(model, lr, multilabel, label_weights=None):
    keras = import_keras()
    loss = "binary_crossentropy" if multilabel else "sparse_categorical_crossentropy"
    if multilabel and label_weights is not None:
        loss = _balanced_bce(*label_weights)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss=loss,
                  jit_compile=False)


# --------------------------------------------------------------------------- train / predict
def train(model, X, y, *, validation=None, epochs=20, batch_size=64, seed=0,
          class_weight="balanced", augment=None, lr=1e-3, lr_schedule="cosine", patience=5,
          strategy=None, verbose=1, log=print):
    """Train ``model`` with early stopping on validation AUC; restore the best epoch's weights.

    Parameters
    ----------
    model : keras.Model
        For example from :func:`build_model`. Compiled here (Adam, cross-entropy) unless it is
        already compiled. With ``strategy``, build the model inside ``strategy.scope()``
        (:class:`DeepClassifier` does that for you).
    X : ndarray
        Images ``(n, H, W)`` or ``(n, H, W, C)``, already scaled (no scaling is done here;
        :class:`DeepClassifier` scales to [0, 1]).
    y : ndarray
        Class indices ``(n,)`` (softmax models) or a 0/1 matrix ``(n, n_labels)`` (sigmoid).
    validation : (X_val, y_val), optional
        Scored after every epoch (ROC AUC; validation loss where AUC is undefined). Without
        it, all ``epochs`` run and the last weights are kept.
    epochs, batch_size : int
    seed : int
        Seeds Keras (and TensorFlow op determinism), the shuffling and the augmentation.
    class_weight : "balanced", dict or None
        ``"balanced"`` weights each sample by ``n / (n_classes * count(class))``; for a 0/1
        matrix ``y`` (multi-label) it weighs each label's positives by ``n / (2 n_pos)`` and
        negatives by ``n / (2 n_neg)`` in the binary cross-entropy (when ``model`` is not
        compiled yet).
    augment : None, str or callable
        ``f(images, seed=int) -> images`` applied to every epoch's shuffled copy (training only),
        e.g. a :class:`medfeat.augment.Compose`; a string names a
        :func:`medfeat.augment.preset`.
    lr : float
        Initial learning rate (Adam).
    lr_schedule : {"cosine", "constant"}
        Cosine decay from ``lr`` towards ``lr / 100`` over ``epochs``, or constant.
    patience : int
        Epochs without a better validation score before stopping.
    strategy : None, "mirrored" or a strategy object
        ``tf.distribute.MirroredStrategy`` (TensorFlow) / ``keras.distribution.DataParallel``
        (JAX) for several devices; ``batch_size`` is the global batch.
    verbose : int
        1: one line per epoch through ``log``; 0: silent.
    log : callable

    Returns
    -------
    dict
        Lists per epoch ``"loss"``, ``"val_auc"``, ``"val_loss"``, ``"lr"``, ``"seconds"``, and
        ``"best_epoch"`` (1-based; 0 when there was no validation), ``"stopped_epoch"``.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.deep import build_model
    >>> X = np.random.default_rng(0).random((32, 16, 16, 1), dtype=np.float32)
    >>> y = np.arange(32) % 2
    >>> model = build_model("cnn", (16, 16, 1), 2, width=4, dense=8, seed=0)
    >>> hist = train(model, X, y, validation=(X, y), epochs=1, batch_size=16, verbose=0)
    >>> len(hist["loss"]), hist["best_epoch"]
    (1, 1)
    """
    epochs = _check_positive_int(epochs, "epochs")
    batch_size = _check_positive_int(batch_size, "batch_size")
    seed = check_seed(seed)
    patience = _check_positive_int(patience, "patience")
    if not (isinstance(lr, numbers.Real) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
    strategy = _resolve_strategy(strategy)
    Xf = _model_input(model, X)
    augment = _resolve_augment(augment, volumes=Xf.ndim == 5)
    yt = _targets(model, y, len(Xf))
    multilabel = yt.ndim == 2
    n_out = model.output_shape[-1]
    weights = _sample_weights(yt, class_weight, n_out)
    if validation is not None:
        try:
            Xv, yv = validation
        except (TypeError, ValueError) as exc:
            raise ValueError("validation must be a pair (X_val, y_val)") from exc
        Xv = _model_input(model, Xv, "validation X")
        yv = _targets(model, yv, len(Xv), "validation y")

    set_seed(seed)
    # the whole loop runs in the strategy's scope: JAX's DataParallel shards the batches only
    # while its distribution is active (for TensorFlow it is harmless)
    with _scope(strategy):
        if not getattr(model, "compiled", False):
            _compile(model, float(lr), multilabel,
                     _label_weights(yt, class_weight) if multilabel else None)
        val = None if validation is None else (Xv, yv)
        return _epoch_loop(model, Xf, yt, weights, val, epochs=epochs, batch_size=batch_size,
                           seed=seed, augment=augment, lr=float(lr), lr_schedule=lr_schedule,
                           patience=patience, verbose=verbose, log=log)


def _epoch_loop(model, X, y, weights, validation, *, epochs, batch_size, seed, augment, lr,
                lr_schedule, patience, verbose, log):
    """The epoch loop of :func:`train` (arguments already checked)."""
    history = {"loss": [], "val_auc": [], "val_loss": [], "lr": [], "seconds": [],
               "best_epoch": 0, "stopped_epoch": 0}
    best_score, best_weights, waited = -np.inf, None, 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        rate = lr if lr_schedule == "constant" else \
            lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * epoch / epochs)))
        model.optimizer.learning_rate.assign(rate)
        # shuffling and augmentation depend on (seed, epoch) only
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(X))
        Xe = X[order]
        if augment is not None:
            Xe = np.asarray(augment(Xe, seed=int(rng.integers(2**31))), dtype=np.float32)
        fit = model.fit(Xe, y[order], sample_weight=None if weights is None else weights[order],
                        batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        loss = float(fit.history["loss"][-1])
        history["loss"].append(loss)
        history["lr"].append(rate)
        line = f"epoch {epoch + 1:3d}/{epochs}  loss {loss:.4f}"
        if validation:
            Xv, yv = validation
            proba = np.asarray(model.predict(Xv, batch_size=max(batch_size, 256), verbose=0),
                               dtype=np.float64)
            auc, val_loss = _auc(yv, proba), _loss(yv, proba)
            history["val_auc"].append(auc)
            history["val_loss"].append(val_loss)
            line += f"  val_loss {val_loss:.4f}"
            if auc is not None:
                line += f"  val_auc {auc:.4f}"
            score = auc if auc is not None else -val_loss
            if score > best_score:
                best_score, waited = score, 0
                best_weights = [w.copy() for w in model.get_weights()]
                history["best_epoch"] = epoch + 1
                line += "  *"
            else:
                waited += 1
        seconds = time.perf_counter() - t0
        history["seconds"].append(seconds)
        history["stopped_epoch"] = epoch + 1
        if verbose:
            log(f"{line}  lr {rate:.2e}  {seconds:.1f}s")
        if validation and waited >= patience and epoch + 1 < epochs:
            if verbose:
                log(f"early stop: no better validation score for {patience} epochs; best "
                    f"epoch {history['best_epoch']}")
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    return history


def _loss(y, proba):
    p = np.clip(proba, 1e-7, 1 - 1e-7)
    if y.ndim == 2:
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


#: Test-time flips: the axes each view reverses, counted from the end of a model input that has
#: its channel axis (-2 width, -3 height, -4 depth of a volume).
_TTA_AXES = {"none": (), "horizontal": (-2,), "vertical": (-3,), "both": (-3, -2),
             "depth": (-4,), "depth_horizontal": (-4, -2), "depth_vertical": (-4, -3),
             "all": (-4, -3, -2)}
_TTA = {view: (lambda x, axes=axes: np.flip(x, axes) if axes else x)
        for view, axes in _TTA_AXES.items()}


def _tta_views(tta, volumes=False):
    if tta is False or tta is None:
        return ("none",)
    if tta is True:  # images: the 4 flips of the plane; volumes: the 8 flips of the cube
        return tuple(_TTA) if volumes else ("none", "horizontal", "vertical", "both")
    if isinstance(tta, str):
        tta = (tta,)
    views = tuple(tta)
    names = tuple(_TTA) if volumes else ("none", "horizontal", "vertical", "both")
    bad = [v for v in views if v not in names]
    if bad or not views:
        raise ValueError(f"tta must be a bool or flips among {names}, got {tta!r}"
                         + ("" if volumes else " (depth flips need volumes)"))
    return views if "none" in views else ("none", *views)


def predict(model, X, *, tta=False, batch_size=256):
    """Class probabilities, optionally averaged over flipped copies (test-time augmentation).

    Parameters
    ----------
    model : keras.Model
    X : ndarray
        Images ``(n, H, W)`` or ``(n, H, W, C)``, scaled as for training.
    tta : bool, str or sequence of str
        ``True``: mean over the image and its horizontal, vertical and double flips; or names
        among ``"horizontal"``, ``"vertical"``, ``"both"`` (the unflipped image is always
        included). Volumes (a 3-D model): ``True`` averages the 8 flips along the depth, height
        and width axes; names also ``"depth"``, ``"depth_horizontal"``, ``"depth_vertical"``,
        ``"all"``.
    batch_size : int

    Returns
    -------
    ndarray
        ``(n, n_outputs)`` float64.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.deep import build_model
    >>> model = build_model("cnn", (16, 16), 3, width=4, dense=8, seed=0)
    >>> p = predict(model, np.zeros((5, 16, 16), np.float32), tta=True)
    >>> p.shape, bool(np.allclose(p.sum(axis=1), 1))
    ((5, 3), True)
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    Xf = _model_input(model, X)
    views = _tta_views(tta, volumes=Xf.ndim == 5)
    total = None
    for view in views:
        Xv = np.ascontiguousarray(_TTA[view](Xf))
        p = np.asarray(model.predict(Xv, batch_size=batch_size, verbose=0), dtype=np.float64)
        total = p if total is None else total + p
    return total / len(views)


# --------------------------------------------------------------------------- save / load
def _check_path(path):
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"path must end with '.keras' (the Keras 3 format), got {path!r}")
    return path


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
    path = _check_path(path)
    keras = import_keras()
    if isinstance(obj, DeepClassifier):
        obj._check_fitted()
        model, meta = obj.model_, obj._metadata()
    elif isinstance(obj, keras.Model):
        model, meta = obj, None
    else:
        raise ValueError(f"obj must be a keras.Model or a fitted DeepClassifier, got "
                         f"{type(obj).__name__}")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=folder)
    os.close(fd)
    try:
        model.save(tmp, overwrite=True)
        if meta is not None:
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(_META_NAME, json.dumps(meta, indent=1))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
    path = _check_path(path)
    if not os.path.isfile(path):
        raise ValueError(f"path {path!r} is not a file")
    keras = import_keras()
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(_META_NAME)) if _META_NAME in archive.namelist() \
                else None
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path!r} is not a .keras archive") from exc
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    if meta is None:
        return model
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{path!r}: unknown medfeat metadata format {meta.get('format')!r}")
    return DeepClassifier._from_metadata(meta, model)


def _resize_images(X, shape, anti_aliasing=True):
    """Float32 images ``(n, H, W[, C])`` resized to ``shape`` (bilinear; Gaussian
    anti-aliasing when shrinking)."""
    from skimage.transform import resize

    out_shape = tuple(shape) + tuple(X.shape[3:])
    shrink = anti_aliasing and any(a > b for a, b in zip(X.shape[1:3], shape))
    out = np.empty((X.shape[0],) + out_shape, dtype=np.float32)
    for i, img in enumerate(X):
        out[i] = resize(img, out_shape, order=1, mode="reflect", anti_aliasing=shrink,
                        preserve_range=True)
    return out


# --------------------------------------------------------------------------- DeepClassifier
try:
    from sklearn.base import BaseEstimator, ClassifierMixin
except ImportError:  # pragma: no cover - scikit-learn is a core dependency
    BaseEstimator, ClassifierMixin = object, object


#: DeepClassifier's defaults per kind, measured on PneumoniaMNIST (28 px) on a 2-core CPU
#: (benchmarks/accuracy_deep.py): a few minutes of training each, AUC > 0.96 on its test split.
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


def _is_volume_stack(X):
    """True for volumes ``(n, D, H, W)`` or ``(n, D, H, W, C)``.

    A 4-D stack is read as 2-D images ``(n, H, W, C)`` when its last axis is a plausible channel
    count (1 to 4) and both sides are at least four times that (the evaluation harness's colour
    rule: a 28 x 28 x 3 image is colour, a (28, 28, 28) stack is a volume).
    """
    if X.ndim == 5:
        return True
    if X.ndim == 4:
        channels = X.shape[-1]
        return not (channels <= 4 and min(X.shape[1], X.shape[2]) >= 4 * channels)
    return False


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
    lr, lr_schedule, patience
        See :func:`train`.
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
                 lr=2e-3, lr_schedule="cosine", patience=5, input_size=None):
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

    def _build(self, input_shape, n_classes):
        kind = getattr(self, "model_kind_", self.kind)
        defaults = {} if callable(kind) else KIND_DEFAULTS.get(kind, {})
        options = {**defaults.get("model_options", {}), **(self.model_options or {})}
        if callable(self.kind):
            set_seed(check_seed(self.seed))
            model = self.kind(input_shape, n_classes)
            if not isinstance(model, import_keras().Model):
                raise ValueError("kind, when callable, must return a keras.Model, got "
                                 f"{type(model).__name__}")
            return model
        from .models import build_model

        return build_model(kind, input_shape, n_classes, seed=check_seed(self.seed), **options)

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
        with _scope(strategy):
            model = self._build(Xp.shape[1:], len(self.classes_))
            _compile(model, float(self.lr), _is_multilabel(model))
        if model.output_shape[-1] != len(self.classes_):
            raise ValueError(f"the model has {model.output_shape[-1]} outputs for "
                             f"{len(self.classes_)} classes")
        self.model_ = model
        self.epochs_ = self._epochs()
        self.history_ = train(model, Xp, yi, validation=val, epochs=self.epochs_,
                              batch_size=self.batch_size, seed=self.seed,
                              class_weight=class_weight, augment=self.augment, lr=self.lr,
                              lr_schedule=self.lr_schedule, patience=self.patience,
                              strategy=strategy, verbose=self.verbose)
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
                              patience=self.patience, strategy=strategy, verbose=self.verbose)
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
                "fit_seconds": self.fit_seconds_, "epochs": self.epochs_}

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
