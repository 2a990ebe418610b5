"""Semantic segmentation: DeepLabV3 and U-Net builders, Dice / IoU scores and metrics, a Dice loss.

Both networks end in a per-pixel softmax at the input resolution, for integer masks
``(n, H, W)`` with values in ``[0, n_classes)`` (train them with
``"sparse_categorical_crossentropy"``, :class:`DiceLoss`, or both). Inputs of any size work: the
image is zero-padded to a multiple of the network's total stride inside the model and the output
cropped back, so no caller has to resize.

The backbone is written here (small residual blocks) rather than borrowed from
:mod:`medfeat.deep.models`, so that the two modules can change independently.

References
----------
.. [1] L.-C. Chen, G. Papandreou, F. Schroff, H. Adam, "Rethinking Atrous Convolution for Semantic
   Image Segmentation", arXiv:1706.05587, 2017 (DeepLabV3: atrous spatial pyramid pooling with an
   image-level branch).
.. [2] L.-C. Chen, Y. Zhu, G. Papandreou, F. Schroff, H. Adam, "Encoder-Decoder with Atrous
   Separable Convolution for Semantic Image Segmentation", ECCV 2018 (DeepLabV3+: the decoder).
.. [3] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
   Segmentation", MICCAI 2015.
.. [4] K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
.. [5] F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully Convolutional Neural Networks for
   Volumetric Medical Image Segmentation", 3DV 2016 (the soft Dice loss).
"""

from __future__ import annotations

import numbers

import keras
import numpy as np
from keras import layers, ops

from ._backend import accumulator_dtype
from ._keras import check_seed

__all__ = [
    "SEGMENTERS",
    "DiceLoss",
    "DiceMetric",
    "IoUMetric",
    "Segmenter",
    "build_segmenter",
    "dice_coefficient",
    "iou_score",
]

#: Kinds :func:`build_segmenter` knows.
SEGMENTERS = ("deeplabv3", "unet")

# The ASPP rates of the DeepLabV3 paper, (6, 12, 18), belong to a 33x33 feature map (513-pixel crops
# at output stride 16); smaller maps get proportionally smaller rates (see _aspp_rates).
_PAPER_RATES = (6, 12, 18)
_PAPER_FEATURE_SIZE = 33

# Keras' default of 0.99 leaves the moving statistics far from the batch statistics after the few
# hundred steps that small medical data sets give; 0.9 tracks them within tens of steps.
_BN_MOMENTUM = 0.9


# ---------------------------------------------------------------------------------------------
# argument checks


def _int(value, name, minimum):
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_input_shape(input_shape):
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise ValueError(f"input_shape must be (H, W) or (H, W, C), got {input_shape!r}") from None
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or any(
        d is None or isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral) or d < 1
        for d in shape
    ):
        raise ValueError(
            f"input_shape must be (H, W) or (H, W, C) of positive integers (the padding to the "
            f"network's stride needs a fixed size), got {input_shape!r}"
        )
    return tuple(int(d) for d in shape)


class _Seeds:
    """Seeded initialisers, one new seed per layer, so that a seed fixes the whole model."""

    def __init__(self, seed):
        self._next = None if seed is None else _int(seed, "seed", 0)

    def __call__(self, kind="he_normal"):
        cls = {
            "he_normal": keras.initializers.HeNormal,
            "glorot": keras.initializers.GlorotUniform,
        }[kind]
        if self._next is None:
            return cls()
        self._next += 1
        return cls(seed=self._next)


# ---------------------------------------------------------------------------------------------
# building blocks


def _conv_bn_relu(x, filters, kernel, seeds, *, strides=1, dilation=1, name):
    x = layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        dilation_rate=dilation,
        padding="same",
        use_bias=False,
        kernel_initializer=seeds(),
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _residual_block(x, filters, seeds, *, strides=1, dilation=1, name):
    """A basic residual block (two 3x3 convolutions, as in ResNet-18/34), optionally atrous."""
    shortcut = x
    y = _conv_bn_relu(x, filters, 3, seeds, strides=strides, dilation=dilation, name=f"{name}_a")
    y = layers.Conv2D(
        filters,
        3,
        padding="same",
        dilation_rate=dilation,
        use_bias=False,
        kernel_initializer=seeds(),
        name=f"{name}_b_conv",
    )(y)
    y = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_b_bn")(y)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(
            filters,
            1,
            strides=strides,
            use_bias=False,
            kernel_initializer=seeds(),
            name=f"{name}_proj_conv",
        )(x)
        shortcut = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_proj_bn")(
            shortcut
        )
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def _aspp_rates(feature_size):
    """The paper's rates scaled to this feature map, strictly increasing, at least 1."""
    rates = []
    for r in _PAPER_RATES:
        rate = max(1, int(round(r * feature_size / _PAPER_FEATURE_SIZE)))
        rates.append(max(rate, rates[-1] + 1) if rates else rate)
    return tuple(rates)


def _pad_to_multiple(inputs, shape, multiple):
    """Zero-pad (bottom, right) to a multiple of ``multiple``; return the tensor and the padding."""
    pad_h, pad_w = (-shape[0]) % multiple, (-shape[1]) % multiple
    if pad_h or pad_w:
        inputs = layers.ZeroPadding2D(((0, pad_h), (0, pad_w)), name="pad_to_stride")(inputs)
    return inputs, (pad_h, pad_w)


def _head(x, n_classes, padding, seeds, name):
    x = layers.Conv2D(n_classes, 1, kernel_initializer=seeds("glorot"), name=f"{name}_logits")(x)
    if any(padding):
        x = layers.Cropping2D(((0, padding[0]), (0, padding[1])), name="crop_to_input")(x)
    return layers.Activation("softmax", dtype="float32", name="softmax")(x)


def _deeplabv3(
    input_shape, n_classes, *, width, output_stride, atrous_rates, decoder, dropout, seeds
):
    strides, dilations = {
        4: ((2, 2, 1, 1), (1, 1, 2, 4)),
        8: ((2, 2, 2, 1), (1, 1, 1, 2)),
        16: ((2, 2, 2, 2), (1, 1, 1, 1)),
    }[output_stride]
    inputs = keras.Input(input_shape, name="image")
    x, padding = _pad_to_multiple(inputs, input_shape, output_stride)
    padded = (input_shape[0] + padding[0], input_shape[1] + padding[1])

    x = _conv_bn_relu(x, width, 3, seeds, name="stem")
    low_level = None
    for i, (s, d) in enumerate(zip(strides, dilations)):
        x = _residual_block(x, width * 2**i, seeds, strides=s, dilation=d, name=f"stage{i + 1}")
        if i == 1:
            low_level = x  # output stride 4: the decoder's fine features
    if output_stride == 16:  # the paper's atrous block beyond the last strided stage
        x = _residual_block(x, width * 8, seeds, dilation=2, name="stage5")

    fh, fw = padded[0] // output_stride, padded[1] // output_stride
    rates = _aspp_rates(min(fh, fw)) if atrous_rates is None else atrous_rates
    f = width * 4
    branches = [_conv_bn_relu(x, f, 1, seeds, name="aspp_1x1")]
    for r in rates:
        branches.append(_conv_bn_relu(x, f, 3, seeds, dilation=r, name=f"aspp_rate{r}"))
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(x)
    pooled = _conv_bn_relu(pooled, f, 1, seeds, name="aspp_pool_proj")
    branches.append(layers.UpSampling2D((fh, fw), name="aspp_pool_broadcast")(pooled))
    x = layers.Concatenate(name="aspp_concat")(branches)
    x = _conv_bn_relu(x, f, 1, seeds, name="aspp_proj")
    if dropout:
        x = layers.Dropout(dropout, name="aspp_dropout")(x)

    if decoder:
        if output_stride > 4:
            x = layers.UpSampling2D(
                output_stride // 4, interpolation="bilinear", name="decoder_up"
            )(x)
        fine = _conv_bn_relu(low_level, max(width, 8), 1, seeds, name="decoder_fine")
        x = layers.Concatenate(name="decoder_concat")([x, fine])
        x = _conv_bn_relu(x, f, 3, seeds, name="decoder_conv1")
        x = _conv_bn_relu(x, f, 3, seeds, name="decoder_conv2")
        up = 4
    else:
        up = output_stride
    x = layers.Conv2D(n_classes, 1, kernel_initializer=seeds("glorot"), name="deeplab_logits")(x)
    x = layers.UpSampling2D(up, interpolation="bilinear", name="upsample_to_input")(x)
    if any(padding):
        x = layers.Cropping2D(((0, padding[0]), (0, padding[1])), name="crop_to_input")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name="deeplabv3")


def _unet(input_shape, n_classes, *, width, depth, dropout, seeds):
    inputs = keras.Input(input_shape, name="image")
    x, padding = _pad_to_multiple(inputs, input_shape, 2**depth)
    skips = []
    for level in range(depth):
        x = _conv_bn_relu(x, width * 2**level, 3, seeds, name=f"down{level}_1")
        x = _conv_bn_relu(x, width * 2**level, 3, seeds, name=f"down{level}_2")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = _conv_bn_relu(x, width * 2**depth, 3, seeds, name="bottom_1")
    x = _conv_bn_relu(x, width * 2**depth, 3, seeds, name="bottom_2")
    if dropout:
        x = layers.Dropout(dropout, name="bottom_dropout")(x)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(
            width * 2**level, 2, strides=2, kernel_initializer=seeds(), name=f"up{level}_transpose"
        )(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = _conv_bn_relu(x, width * 2**level, 3, seeds, name=f"up{level}_1")
        x = _conv_bn_relu(x, width * 2**level, 3, seeds, name=f"up{level}_2")
    return keras.Model(inputs, _head(x, n_classes, padding, seeds, "unet"), name="unet")


def build_segmenter(
    kind,
    input_shape,
    n_classes,
    *,
    width=16,
    output_stride=8,
    atrous_rates=None,
    decoder=True,
    depth=3,
    dropout=0.0,
    seed=None,
):
    """A segmentation network with a per-pixel softmax over ``n_classes`` at the input resolution.

    Parameters
    ----------
    kind : {"deeplabv3", "unet"}
        ``"deeplabv3"``: a small residual backbone (a stem and four basic residual stages of width
        ``width``, 2, 4, 8 x ``width``) whose last stages trade striding for atrous convolution to
        keep ``output_stride``; atrous spatial pyramid pooling (a 1x1 branch, three 3x3 atrous
        branches and an image-pooling branch) [1]_; with ``decoder=True`` the DeepLabV3+ decoder
        that mixes in stride-4 features before the final bilinear upsampling [2]_.
        ``"unet"``: the U-Net [3]_ with ``depth`` down/up levels, two 3x3 convolutions (batch
        normalised, "same" padding) per level, transposed-convolution upsampling and skip joins.
    input_shape : tuple of int
        ``(H, W)`` (grey, one channel) or ``(H, W, C)``. Any positive size: inputs are padded to a
        multiple of the total stride inside the model and the output is cropped back to ``(H, W)``.
    n_classes : int
        Number of classes, >= 2 (background counts as one).
    width : int, default 16
        Filters of the first stage; later stages double it.
    output_stride : {4, 8, 16}, default 8
        DeepLabV3 only: input size / ASPP feature-map size.
    atrous_rates : tuple of int, optional
        DeepLabV3 only: the ASPP rates. By default the paper's (6, 12, 18) for a 33x33 feature map,
        scaled to this one (for a 32x32 input at stride 8: (1, 2, 3)).
    decoder : bool, default True
        DeepLabV3 only: add the DeepLabV3+ decoder.
    depth : int, default 3
        U-Net only: number of pooling levels.
    dropout : float in [0, 1), default 0.0
        Dropout after ASPP / the U-Net bottleneck.
    seed : int, optional
        Seeds every initialiser, so the same seed builds the same weights whatever the global
        random state; None uses Keras' global generator (``keras.utils.set_random_seed``).

    Returns
    -------
    keras.Model
        Input ``(None, H, W, C)``, output ``(None, H, W, n_classes)`` probabilities (float32).

    Raises
    ------
    ValueError
        On an unknown ``kind``, a malformed ``input_shape``, ``n_classes < 2`` or an invalid option;
        the message names the argument.

    Examples
    --------
    >>> model = build_segmenter("deeplabv3", (33, 29), 3, width=4, seed=0)
    >>> model.output_shape
    (None, 33, 29, 3)
    >>> build_segmenter("unet", (16, 16, 1), 2, width=4, depth=2, seed=0).output_shape
    (None, 16, 16, 2)
    """
    if kind not in SEGMENTERS:
        raise ValueError(f"kind must be one of {SEGMENTERS}, got {kind!r}")
    shape = _check_input_shape(input_shape)
    n_classes = _int(n_classes, "n_classes", 2)
    width = _int(width, "width", 1)
    if (
        isinstance(dropout, (bool, np.bool_))
        or not isinstance(dropout, numbers.Real)
        or not 0 <= dropout < 1
    ):
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    seeds = _Seeds(seed)
    if kind == "unet":
        depth = _int(depth, "depth", 1)
        return _unet(
            shape, n_classes, width=width, depth=depth, dropout=float(dropout), seeds=seeds
        )

    if output_stride not in (4, 8, 16) or isinstance(output_stride, bool):
        raise ValueError(f"output_stride must be 4, 8 or 16, got {output_stride!r}")
    if atrous_rates is not None:
        try:
            rates = tuple(atrous_rates)
        except TypeError:
            raise ValueError(
                f"atrous_rates must be a sequence of integers >= 1, got {atrous_rates!r}"
            ) from None
        if not rates or len(set(rates)) != len(rates):
            raise ValueError(f"atrous_rates must be distinct integers >= 1, got {atrous_rates!r}")
        atrous_rates = tuple(_int(r, "atrous_rates", 1) for r in rates)
    if not isinstance(decoder, (bool, np.bool_)):
        raise ValueError(f"decoder must be True or False, got {decoder!r}")
    return _deeplabv3(
        shape,
        n_classes,
        width=width,
        output_stride=int(output_stride),
        atrous_rates=atrous_rates,
        decoder=bool(decoder),
        dropout=float(dropout),
        seeds=seeds,
    )


# ---------------------------------------------------------------------------------------------
# scores in NumPy


def _labels(y, name):
    arr = np.asarray(y)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must hold class labels >= 0, got {arr.min()}")
    return arr


def _confusion_counts(y_true, y_pred, n_classes):
    """Per-class true positives, false positives and false negatives, pooled over all pixels."""
    t = _labels(y_true, "y_true")
    p = np.asarray(y_pred)
    if p.ndim == t.ndim + 1 and p.shape[:-1] == t.shape and p.dtype.kind == "f":
        if n_classes is None:
            n_classes = p.shape[-1]
        elif p.shape[-1] != n_classes:
            raise ValueError(
                f"y_pred has {p.shape[-1]} class probabilities, n_classes is {n_classes}"
            )
        p = np.argmax(p, axis=-1)
    elif p.shape != t.shape:
        raise ValueError(
            f"y_pred must be labels shaped like y_true {t.shape} or probabilities shaped "
            f"{t.shape + ('n_classes',)}, got {p.shape}"
        )
    p = _labels(p, "y_pred")
    if t.size == 0:
        raise ValueError("y_true must not be empty")
    top = int(max(t.max(), p.max()))
    if n_classes is None:
        n_classes = top + 1
    n_classes = _int(n_classes, "n_classes", 1)
    if top >= n_classes:
        raise ValueError(f"labels must be < n_classes ({n_classes}), found {top}")
    t, p = t.ravel(), p.ravel()
    tp = np.bincount(t[t == p], minlength=n_classes).astype(np.float64)
    fp = np.bincount(p, minlength=n_classes) - tp
    fn = np.bincount(t, minlength=n_classes) - tp
    return tp, fp, fn


def _average(per_class, average, class_ids):
    if class_ids is not None:
        ids = np.atleast_1d(np.asarray(class_ids))
        if (
            ids.dtype.kind not in "iu"
            or ids.ndim != 1
            or ids.size == 0
            or ids.min() < 0
            or ids.max() >= per_class.size
        ):
            raise ValueError(
                f"class_ids must be class indices in [0, {per_class.size - 1}], got {class_ids!r}"
            )
        per_class = per_class[ids]
    if average is None:
        return per_class
    if average != "macro":
        raise ValueError(f"average must be 'macro' or None, got {average!r}")
    present = per_class[~np.isnan(per_class)]
    return float(present.mean()) if present.size else float("nan")


def dice_coefficient(y_true, y_pred, *, n_classes=None, average="macro", class_ids=None):
    """Dice coefficient ``2 TP / (2 TP + FP + FN)`` per class, counted over all pixels.

    Parameters
    ----------
    y_true : array_like of int
        True label masks, any shape (e.g. ``(n, H, W)``).
    y_pred : array_like
        Predicted labels shaped like ``y_true``, or class probabilities with one more (last) axis,
        reduced by arg max.
    n_classes : int, optional
        Number of classes; by default the probabilities' last axis, or the largest label + 1.
    average : {"macro", None}, default "macro"
        None returns one value per class; "macro" their mean over the classes that occur (in the
        truth or the prediction).
    class_ids : int or sequence of int, optional
        Score only these classes (e.g. ``[1, 2]`` to leave out the background).

    Returns
    -------
    float or numpy.ndarray
        Per class (float64, NaN for a class absent from both truth and prediction), or their mean.
        The counts are pooled, so per class this equals ``sklearn.metrics.f1_score`` on the
        flattened masks.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[0, 0, 1, 1]]); p = np.array([[0, 1, 1, 1]])
    >>> dice_coefficient(t, p, average=None)
    array([0.66666667, 0.8       ])
    >>> round(dice_coefficient(t, p), 4)
    0.7333
    """
    tp, fp, fn = _confusion_counts(y_true, y_pred, n_classes)
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(denom > 0, 2 * tp / denom, np.nan)
    return _average(per_class, average, class_ids)


def iou_score(y_true, y_pred, *, n_classes=None, average="macro", class_ids=None):
    """Intersection over union (Jaccard index) ``TP / (TP + FP + FN)`` per class, over all pixels.

    Arguments and return value as in :func:`dice_coefficient`; per class this equals
    ``sklearn.metrics.jaccard_score`` on the flattened masks.

    Examples
    --------
    >>> import numpy as np
    >>> iou_score(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), average=None)
    array([0.5       , 0.66666667])
    """
    tp, fp, fn = _confusion_counts(y_true, y_pred, n_classes)
    denom = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(denom > 0, tp / denom, np.nan)
    return _average(per_class, average, class_ids)


# ---------------------------------------------------------------------------------------------
# Keras metrics and loss


def _tensor(value, numpy_dtype):
    """A backend tensor; host data is cast first, since JAX without x64 warns on 64-bit input."""
    if isinstance(value, (np.ndarray, list, tuple, numbers.Number)):
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf":
            value = arr.astype(
                numpy_dtype if arr.dtype.itemsize >= 8 or arr.dtype.kind == "b" else arr.dtype
            )
    return ops.convert_to_tensor(value)


def _class_ids_config(class_ids, n_classes, name="class_ids"):
    if class_ids is None:
        return None
    ids = [class_ids] if isinstance(class_ids, numbers.Integral) else list(class_ids)
    if not ids or any(
        isinstance(i, (bool, np.bool_))
        or not isinstance(i, numbers.Integral)
        or not 0 <= i < n_classes
        for i in ids
    ):
        raise ValueError(f"{name} must be class indices in [0, {n_classes - 1}], got {class_ids!r}")
    return [int(i) for i in ids]


class _OverlapMetric(keras.metrics.Metric):
    """Streaming per-class TP / FP / FN counts over arg-max predictions vs integer masks."""

    def __init__(self, n_classes, *, class_ids=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.n_classes = _int(n_classes, "n_classes", 2)
        self.class_ids = _class_ids_config(class_ids, self.n_classes)
        # float64 counts stay exact to 2**53 pixels; float32 (JAX without x64) only to 2**24
        self._count_dtype = accumulator_dtype()
        self.tp = self.add_weight(
            name="tp", shape=(self.n_classes,), initializer="zeros", dtype=self._count_dtype
        )
        self.fp = self.add_weight(
            name="fp", shape=(self.n_classes,), initializer="zeros", dtype=self._count_dtype
        )
        self.fn = self.add_weight(
            name="fn", shape=(self.n_classes,), initializer="zeros", dtype=self._count_dtype
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = _tensor(y_pred, "float32")
        y_true = _tensor(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):  # (n, H, W, 1) masks
            y_true = ops.squeeze(y_true, axis=-1)
        labels = ops.cast(y_true, "int32")
        truth = ops.one_hot(labels, self.n_classes, dtype=self._count_dtype)
        pred = ops.one_hot(ops.argmax(y_pred, axis=-1), self.n_classes, dtype=self._count_dtype)
        # Pixels labelled outside [0, n_classes) (a "void" label) count nowhere.
        weight = ops.cast(ops.logical_and(labels >= 0, labels < self.n_classes), self._count_dtype)
        if sample_weight is not None:  # (n,) per image or (n, H, W) per pixel
            w = ops.cast(_tensor(sample_weight, "float32"), self._count_dtype)
            while len(w.shape) < len(weight.shape):
                w = ops.expand_dims(w, -1)
            weight = weight * w
        weight = ops.expand_dims(weight, -1)
        truth, pred = truth * weight, pred * weight
        axes = tuple(range(len(truth.shape) - 1))
        tp = ops.sum(truth * ops.cast(pred > 0, self._count_dtype), axis=axes)
        self.tp.assign_add(tp)
        self.fp.assign_add(ops.sum(pred, axis=axes) - tp)
        self.fn.assign_add(ops.sum(truth, axis=axes) - tp)

    def _per_class(self):  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def per_class(self):
        """The current score of each class as a NumPy array (NaN where a class never occurred)."""
        return np.asarray(ops.convert_to_numpy(self._per_class()), dtype=np.float64)

    def result(self):
        score = self._per_class()
        if self.class_ids is not None:
            score = ops.take(score, self.class_ids)
        present = ops.logical_not(ops.isnan(score))
        total = ops.sum(ops.where(present, score, 0.0))
        count = ops.sum(ops.cast(present, self._count_dtype))
        return ops.cast(ops.where(count > 0, total / ops.maximum(count, 1.0), np.nan), "float32")

    def reset_state(self):
        for v in (self.tp, self.fp, self.fn):
            v.assign(ops.zeros(v.shape, dtype=self._count_dtype))

    def get_config(self):
        return {
            "n_classes": self.n_classes,
            "class_ids": self.class_ids,
            "name": self.name,
            "dtype": self.dtype,
        }


@keras.saving.register_keras_serializable(package="medfeat")
class DiceMetric(_OverlapMetric):
    """Streaming Dice coefficient of arg-max predictions against integer masks.

    Counts are pooled over every pixel seen since the last reset, per class; the result is the mean
    Dice over the classes that occurred (or over ``class_ids``), as :func:`dice_coefficient` with
    ``average="macro"`` computes it on all the data at once.

    Parameters
    ----------
    n_classes : int
        Number of classes (>= 2), the last axis of the predictions.
    class_ids : int or sequence of int, optional
        Average over these classes only (e.g. ``1`` for the foreground of a binary task).
    name : str, default "dice"

    Notes
    -----
    Masks may be ``(n, H, W)`` or ``(n, H, W, 1)``; labels outside ``[0, n_classes)`` are ignored
    (a "void" label). ``sample_weight`` may weigh images ``(n,)`` or pixels ``(n, H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> m = DiceMetric(2)
    >>> m.update_state(np.array([[0, 0, 1, 1]]), np.eye(2)[[[0, 1, 1, 1]]])
    >>> round(float(m.result()), 4)
    0.7333
    """

    def __init__(self, n_classes, *, class_ids=None, name="dice", dtype=None):
        super().__init__(n_classes, class_ids=class_ids, name=name, dtype=dtype)

    def _per_class(self):
        denom = 2 * self.tp + self.fp + self.fn
        return ops.where(denom > 0, 2 * self.tp / ops.maximum(denom, 1e-30), np.nan)


@keras.saving.register_keras_serializable(package="medfeat")
class IoUMetric(_OverlapMetric):
    """Streaming intersection over union (Jaccard index) of arg-max predictions vs integer masks.

    As :class:`DiceMetric`, with ``TP / (TP + FP + FN)`` per class (the mean is Keras' "mean IoU"
    over the classes that occurred).

    Examples
    --------
    >>> import numpy as np
    >>> m = IoUMetric(2, class_ids=1)
    >>> m.update_state(np.array([[0, 0, 1, 1]]), np.eye(2)[[[0, 1, 1, 1]]])
    >>> round(float(m.result()), 4)
    0.6667
    """

    def __init__(self, n_classes, *, class_ids=None, name="iou", dtype=None):
        super().__init__(n_classes, class_ids=class_ids, name=name, dtype=dtype)

    def _per_class(self):
        denom = self.tp + self.fp + self.fn
        return ops.where(denom > 0, self.tp / ops.maximum(denom, 1e-30), np.nan)


@keras.saving.register_keras_serializable(package="medfeat")
class DiceLoss(keras.losses.Loss):
    """Soft Dice loss for per-pixel softmax outputs and integer masks, optionally + cross-entropy.

    Per image, ``1 - mean_c (2 sum(p_c t_c) + s) / (sum(p_c) + sum(t_c) + s)`` over the classes
    ``c`` (or ``class_ids``), with ``p`` the predicted probabilities, ``t`` the one-hot truth and
    ``s`` the ``smooth`` term that keeps absent classes at a loss of 0 [5]_. The cross-entropy term
    (``crossentropy`` x the mean pixel cross-entropy) helps early training, when Dice gradients
    are weak.

    Parameters
    ----------
    n_classes : int
        Number of classes (>= 2).
    class_ids : int or sequence of int, optional
        Classes the Dice term averages over (all by default).
    smooth : float, default 1.0
        Added to numerator and denominator (> 0).
    crossentropy : float, default 0.0
        Weight of the added sparse categorical cross-entropy (>= 0).

    Examples
    --------
    >>> import numpy as np
    >>> loss = DiceLoss(2, smooth=1e-6)
    >>> t = np.array([[0, 1, 1, 1]]); p = np.eye(2)[t].astype("float32")
    >>> round(float(loss(t, p)), 4)
    0.0
    """

    def __init__(
        self,
        n_classes,
        *,
        class_ids=None,
        smooth=1.0,
        crossentropy=0.0,
        name="dice_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.n_classes = _int(n_classes, "n_classes", 2)
        self.class_ids = _class_ids_config(class_ids, self.n_classes)
        for arg, value, low_open in (
            ("smooth", smooth, True),
            ("crossentropy", crossentropy, False),
        ):
            if (
                isinstance(value, (bool, np.bool_))
                or not isinstance(value, numbers.Real)
                or not np.isfinite(value)
                or value < 0
                or (low_open and value == 0)
            ):
                raise ValueError(
                    f"{arg} must be a finite number {'>' if low_open else '>='} 0, got {value!r}"
                )
        self.smooth = float(smooth)
        self.crossentropy = float(crossentropy)

    def call(self, y_true, y_pred):
        y_pred = _tensor(y_pred, "float32")
        y_true = _tensor(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        labels = ops.cast(y_true, "int32")
        truth = ops.one_hot(labels, self.n_classes, dtype=y_pred.dtype)
        axes = tuple(range(1, len(y_pred.shape) - 1))
        inter = ops.sum(truth * y_pred, axis=axes)
        denom = ops.sum(truth, axis=axes) + ops.sum(y_pred, axis=axes)
        dice = (2.0 * inter + self.smooth) / (denom + self.smooth)  # (batch, classes)
        if self.class_ids is not None:
            dice = ops.take(dice, self.class_ids, axis=1)
        loss = 1.0 - ops.mean(dice, axis=-1)
        if self.crossentropy:
            ce = keras.losses.sparse_categorical_crossentropy(labels, y_pred)
            loss = loss + self.crossentropy * ops.mean(
                ops.reshape(ce, (ops.shape(ce)[0], -1)), axis=-1
            )
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(
            n_classes=self.n_classes,
            class_ids=self.class_ids,
            smooth=self.smooth,
            crossentropy=self.crossentropy,
        )
        return config


class Segmenter:
    """A segmentation network with a fit / predict face: images and integer label maps in.

    Builds :func:`build_segmenter` for the training images' shape and the masks' classes, trains
    it with :class:`DiceLoss` plus cross-entropy (Adam), stops early on the validation Dice of
    the foreground classes (the best epoch's weights are kept), and predicts label maps. Images
    are scaled to [0, 1]: uint8 and bool by their dtype's range, other dtypes by the training
    images' minimum and maximum (recorded, applied unchanged to new images).

    Parameters
    ----------
    kind : {"unet", "deeplabv3"}, optional
    epochs : int, optional
        Most epochs.
    batch_size : int, optional
    lr : float, optional
        Adam's learning rate.
    patience : int, optional
        Epochs without a better validation Dice before training stops (with a validation split).
    seed : int, optional
        Seeds the weights and the shuffling; on the CPU the same seed gives the same weights.
    verbose : int, optional
        Keras' progress output (0 silent, 2 one line per epoch).
    **model_options
        Passed to :func:`build_segmenter` (``width``, ``depth``, ...; default width 8, depth 2
        for the U-Net).

    Attributes
    ----------
    model_ : keras.Model
    n_classes_ : int
    history_ : dict
        Per-epoch ``loss``, ``dice`` (and ``val_loss``, ``val_dice``), and ``best_epoch``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((8, 16, 16), np.uint8); m = np.zeros((8, 16, 16), np.int64)
    >>> x[:, 4:10, 4:10] = 200; m[:, 4:10, 4:10] = 1
    >>> seg = Segmenter(epochs=1, batch_size=4, width=4, depth=1).fit(x, m)
    >>> seg.predict(x).shape, seg.n_classes_
    ((8, 16, 16), 2)
    """

    def __init__(self, kind="unet", *, epochs=30, batch_size=32, lr=3e-3, patience=6, seed=0,
                 verbose=0, **model_options):
        if kind not in SEGMENTERS:
            raise ValueError(f"kind must be one of {SEGMENTERS}, got {kind!r}")
        self.kind = kind
        self.epochs = _int(epochs, "epochs", 1)
        self.batch_size = _int(batch_size, "batch_size", 1)
        self.patience = _int(patience, "patience", 1)
        if not (isinstance(lr, (int, float, np.floating)) and not isinstance(lr, bool)
                and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.seed = check_seed(seed)
        self.verbose = int(verbose)
        defaults = {"width": 8, "depth": 2} if kind == "unet" else {"width": 8}
        self.model_options = {**defaults, **model_options}

    def _scaled(self, images, fit=False):
        x = np.asarray(images)
        if x.ndim not in (3, 4) or x.dtype.kind not in "buif" or x.shape[0] == 0:
            raise ValueError(f"images must be a non-empty stack (n, H, W) or (n, H, W, C), got "
                             f"shape {x.shape} and dtype {x.dtype}")
        if fit:
            if x.dtype == np.uint8 or x.dtype.kind == "b":
                self.range_ = (0.0, 255.0 if x.dtype == np.uint8 else 1.0)
            else:
                self.range_ = (float(x.min()), float(x.max()))
            self.image_shape_ = x.shape[1:]
        elif x.shape[1:] != self.image_shape_:
            raise ValueError(f"images have shape {x.shape[1:]}, the segmenter was trained on "
                             f"{self.image_shape_}")
        lo, hi = self.range_
        x = (x.astype(np.float32) - lo) / (hi - lo if hi > lo else 1.0)
        return x[..., None] if x.ndim == 3 else x

    def fit(self, images, masks, *, validation=None):
        """Train on ``images`` and their label maps ``masks`` ``(n, H, W)``.

        Parameters
        ----------
        images, masks : array_like
        validation : tuple, optional
            ``(images, masks)`` for early stopping on the foreground Dice.

        Returns
        -------
        self
        """
        from ._keras import set_seed

        x = self._scaled(images, fit=True)
        m = _labels(masks, "masks")
        if m.shape != x.shape[:3]:
            raise ValueError(f"masks must have shape {x.shape[:3]}, got {m.shape}")
        self.n_classes_ = max(int(m.max()) + 1, 2)
        if validation is not None:
            xv = self._scaled(validation[0])
            mv = _labels(validation[1], "validation masks")
            if mv.shape != xv.shape[:3]:
                raise ValueError(f"validation masks must have shape {xv.shape[:3]}, got "
                                 f"{mv.shape}")
            self.n_classes_ = max(self.n_classes_, int(mv.max()) + 1)
        set_seed(self.seed)
        fg = list(range(1, self.n_classes_))
        self.model_ = build_segmenter(self.kind, x.shape[1:], self.n_classes_, seed=self.seed,
                                      **self.model_options)
        self.model_.compile(keras.optimizers.Adam(self.lr),
                            DiceLoss(self.n_classes_, crossentropy=1.0),
                            metrics=[DiceMetric(self.n_classes_, class_ids=fg, name="dice")])
        callbacks = []
        if validation is not None:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_dice", mode="max", patience=self.patience,
                restore_best_weights=True))
        hist = self.model_.fit(x, m, validation_data=None if validation is None else (xv, mv),
                               epochs=self.epochs, batch_size=self.batch_size,
                               verbose=self.verbose, callbacks=callbacks, shuffle=True)
        self.history_ = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        key = "val_dice" if validation is not None else "dice"
        self.history_["best_epoch"] = int(np.argmax(self.history_[key])) + 1
        return self

    def predict_proba(self, images, *, batch_size=64):
        """Per-pixel class probabilities ``(n, H, W, n_classes)``."""
        if not hasattr(self, "model_"):
            raise ValueError("this Segmenter is not fitted yet; call fit first")
        x = self._scaled(images)
        return np.asarray(self.model_.predict(x, batch_size=batch_size, verbose=0))

    def predict(self, images, *, batch_size=64):
        """Label maps ``(n, H, W)`` (arg max of :meth:`predict_proba`)."""
        return self.predict_proba(images, batch_size=batch_size).argmax(axis=-1)
