"""The training loop: :func:`train`, its losses, weights and distribution strategy.

:func:`train` runs one ``model.fit`` epoch at a time on a shuffled (and, if asked, augmented)
copy of the training data, so that shuffling and augmentation come from NumPy generators seeded by
``(seed, epoch)``: two runs with the same seed see the same batches. After each epoch it scores the
validation set (ROC AUC), prints one line, and keeps the best epoch's weights, which are restored
at the end (early stopping after ``patience`` epochs without improvement).
"""

import numbers
import time

import numpy as np

from ._inputs import _check_positive_int, _model_input, _targets
from ._keras import check_seed, import_keras, set_seed


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


def best_val_auc(history):
    """The best validation AUC of a :func:`train` history (None when it has none)."""
    aucs = [a for a in history.get("val_auc", []) if a is not None]
    return max(aucs) if aucs else None


def auc_lower_bound(auc, y_val):
    """Lower end of the 95% interval of a validation AUC, from the standard error of Hanley &
    McNeil (Radiology 143:29, 1982), with the validation labels' class counts (for several
    classes or labels: the smallest class or label against the rest)."""
    y_val = np.asarray(y_val)
    if y_val.ndim == 2:
        pos = y_val.sum(axis=0)
        pos = pos[(pos > 0) & (pos < len(y_val))]
        n1 = int(min(pos.min(), len(y_val) - pos.max())) if pos.size else 0
    else:
        counts = np.bincount(y_val)
        n1 = int(counts[counts > 0].min())
    n2 = len(y_val) - n1
    if n1 < 1 or n2 < 1:
        return -np.inf
    a = float(auc)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2)
    return a - 1.959963984540054 * np.sqrt(max(var, 0.0))


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


def train(model, X, y, *, validation=None, epochs=20, batch_size=64, seed=0,
          class_weight="balanced", augment=None, lr=1e-3, lr_schedule="cosine", patience=5,
          warmup=0, strategy=None, verbose=1, log=print):
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
    warmup : float
        Epochs of linear learning-rate warm-up (Goyal et al., "Accurate, Large Minibatch SGD",
        2017): the rate of the first ``warmup`` epochs' optimiser steps rises linearly from
        ``1 / n`` of the schedule's rate to all of it (``n`` steps in all); 0 for none.
        Adam's first steps, taken at the full rate from a random initialisation, can throw a
        network with batch normalisation into a state it needs many epochs to leave; a short
        warm-up avoids it.
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
    if not (isinstance(warmup, numbers.Real) and not isinstance(warmup, bool)
            and 0 <= warmup <= epochs):
        raise ValueError(f"warmup must be a number of epochs from 0 to epochs={epochs}, got "
                         f"{warmup!r}")
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
                           patience=patience, verbose=verbose, log=log, warmup=warmup)


def _warmup_epoch(model, X, y, weights, *, batch_size, epoch, steps, total, rate):
    """One epoch of a linear learning-rate warm-up: step ``k`` of the run (counted from the
    first epoch's first) at ``rate * (k + 1) / total`` until ``total`` steps, then at ``rate``.

    One ``train_on_batch`` per step, the rate assigned between steps: every Keras backend reads
    the optimiser's variables afresh at each call (inside one ``fit`` call, the JAX trainer keeps
    its own copy of them). Returns the epoch's loss, the mean over its samples, as ``fit``
    reports it."""
    total_loss, seen = 0.0, 0
    for b, a in enumerate(range(0, len(X), batch_size)):
        k = epoch * steps + b
        model.optimizer.learning_rate.assign(rate * min(1.0, (k + 1) / total))
        e = a + batch_size
        loss = model.train_on_batch(X[a:e], y[a:e],
                                    sample_weight=None if weights is None else weights[a:e])
        n = len(X[a:e])
        total_loss += float(np.asarray(loss).reshape(-1)[0]) * n
        seen += n
    model.optimizer.learning_rate.assign(rate)
    return total_loss / seen


def _epoch_loop(model, X, y, weights, validation, *, epochs, batch_size, seed, augment, lr,
                lr_schedule, patience, verbose, log, warmup=0):
    """The epoch loop of :func:`train` (arguments already checked)."""
    history = {"loss": [], "val_auc": [], "val_loss": [], "lr": [], "seconds": [],
               "best_epoch": 0, "stopped_epoch": 0}
    best_score, best_weights, waited = -np.inf, None, 0
    steps = -(-len(X) // batch_size)
    warm_steps = max(1, int(round(warmup * steps)))
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
        we = None if weights is None else weights[order]
        if epoch * steps < warm_steps and warmup > 0:
            loss = _warmup_epoch(model, Xe, y[order], we, batch_size=batch_size, epoch=epoch,
                                 steps=steps, total=warm_steps, rate=rate)
        else:
            fit = model.fit(Xe, y[order], sample_weight=we, batch_size=batch_size, epochs=1,
                            shuffle=False, verbose=0)
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
