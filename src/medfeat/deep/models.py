"""Classification networks: a small CNN, ResNet-18 and ResNet-50, and a multi-label diagnostic head,
and their 3-D twins for volumes ("cnn3d", "resnet18_3d": the same blocks with ``Conv3D``, as in
MedMNIST v2's "ResNet-18 + 3D", Yang et al., Scientific Data 10:41, 2023).

Every builder takes images already scaled to about [0, 1] (``DeepClassifier`` does that) with
their own number of channels: grey images stay one channel, nothing is copied three times.
The models use only stock Keras layers, so they save and load in the ``.keras`` format with
``safe_mode`` on.
"""

import numbers

from ._keras import import_keras, set_seed

#: The kinds :func:`build_model` knows.
MODELS = ("cnn", "resnet18", "resnet50", "diagnostic", "cnn3d", "resnet18_3d")

#: The kinds that take volumes ``(depth, height, width[, channels])``.
VOLUME_MODELS = ("cnn3d", "resnet18_3d")

# Keras' default (0.99) needs hundreds of steps before the moving statistics fit the data; small
# medical datasets train for far fewer, so the running averages follow faster.
_BN_MOMENTUM = 0.9

#: Heads of the "cnn" kind: the last feature map flattened, or its global max / average.
_POOLS = ("flatten", "max", "avg")

_OPTIONS = {
    "cnn": {"width": 32, "dense": 128, "dropout": 0.3, "pool": "flatten"},
    "resnet18": {"width": 64, "dropout": 0.2},
    "resnet50": {"weights": None, "dropout": 0.3, "dense": 256},
    "diagnostic": {"backbone": "resnet18", "width": 64, "dense": 256, "dropout": 0.3,
                   "weight_decay": 1e-4, "weights": None},
    "cnn3d": {"width": 16, "dense": 64, "dropout": 0.3, "pool": "avg"},
    "resnet18_3d": {"width": 16, "dropout": 0.2, "stem_stride": 2},
}


def _check_input_shape(input_shape):
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is not None and len(shape) == 2:
        shape = (*shape, 1)
    ok = (shape is not None and len(shape) == 3
          and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                  for s in shape))
    if not ok:
        raise ValueError("input_shape must be (height, width) or (height, width, channels) of "
                         f"positive integers, got {input_shape!r}")
    if min(shape[:2]) < 8:
        raise ValueError(f"input_shape: images must be at least 8x8 pixels, got {shape}")
    return tuple(int(s) for s in shape)


def _check_volume_shape(input_shape):
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is not None and len(shape) == 3:
        shape = (*shape, 1)
    ok = (shape is not None and len(shape) == 4
          and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                  for s in shape))
    if not ok:
        raise ValueError("input_shape must be (depth, height, width) or (depth, height, width, "
                         f"channels) of positive integers for a volume model, got "
                         f"{input_shape!r}")
    if min(shape[:3]) < 4:      # thin slabs (4-7 slices) pool down to one slice ("same" padding)
        raise ValueError(f"input_shape: volumes must be at least 4x4x4 voxels (fewer slices: "
                         f"treat them as 2-D images or channels), got {shape}")
    return tuple(int(s) for s in shape)


def _check_n_classes(n_classes, minimum):
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) \
            or n_classes < minimum:
        raise ValueError(f"n_classes must be an integer >= {minimum}, got {n_classes!r}")
    return int(n_classes)


def build_model(kind, input_shape, n_classes, *, seed=None, **options):
    """A Keras classification model (not compiled; :func:`medfeat.deep.train` compiles it).

    Parameters
    ----------
    kind : {"cnn", "resnet18", "resnet50", "diagnostic", "cnn3d", "resnet18_3d"}
        ``"cnn"``: three blocks of two 3x3 convolutions, batch normalisation and max pooling,
        dropout, a dense layer, softmax. ``"resnet18"``: the 18-layer residual network (basic
        blocks, 2-2-2-2) with a 3x3 stem and no initial pooling below 64 px, so that 28 px
        inputs keep a 4x4 map in the last stage. ``"resnet50"``: ``keras.applications.ResNet50``
        as the backbone (inputs below 32 px are resized up to 32), then global average pooling,
        dropout, dense, batch normalisation and softmax. ``"diagnostic"``: a backbone
        (``backbone="resnet18"``, ``"resnet50"`` or ``"cnn"``) with a dense / batch-norm /
        dropout head, L2 weight decay on every kernel, and ``n_classes`` independent sigmoid
        outputs (multi-label findings). ``"cnn3d"`` (volumes): three blocks of one 3x3x3
        convolution, batch normalisation, ReLU and 2x2x2 max pooling, global average pooling
        (or ``pool``), dropout, a dense layer, softmax. ``"resnet18_3d"`` (volumes): ResNet-18 with every
        convolution 3-D (3x3x3 basic blocks, 2-2-2-2, 1x1x1 projections) after a 3x3x3 stem of
        stride ``stem_stride``, then global average pooling, dropout, softmax.
    input_shape : tuple of int
        ``(height, width)`` or ``(height, width, channels)``; at least 8x8. Volume kinds:
        ``(depth, height, width)`` or ``(depth, height, width, channels)``; at least 4x4x4.
    n_classes : int
        Number of classes (>= 2; >= 1 for ``"diagnostic"``, one sigmoid per finding).
    seed : int, optional
        When given, :func:`medfeat.deep._keras.set_seed` is called first, so that the initial
        weights (and dropout streams) are reproducible.
    **options
        Per kind (defaults in brackets): ``cnn``: ``width`` [32] filters of the first block
        (doubled per block), ``dense`` [128], ``dropout`` [0.3], ``pool`` ["flatten"] the head's
        input: the last feature map flattened, or its global ``"max"`` (translation invariant,
        a detector of small findings anywhere: the embedded phantoms' lesions) or ``"avg"``.
        ``resnet18``: ``width`` [64]
        filters of the first stage, ``dropout`` [0.2]. ``resnet50``: ``weights`` [None] a local
        weights file (never downloaded; ImageNet weights are for 3 channels and are adapted to
        grey inputs by summing the first convolution's kernel over its input channels, which
        equals feeding the grey image three times), ``dense`` [256], ``dropout`` [0.3].
        ``diagnostic``: ``backbone`` ["resnet18"], ``width`` [64], ``dense`` [256],
        ``dropout`` [0.3], ``weight_decay`` [1e-4], ``weights`` [None] (resnet50 backbone only).
        ``cnn3d``: ``width`` [16] filters of the first block (doubled per block), ``dense``
        [64], ``dropout`` [0.3], ``pool`` ["avg"] (or ``"max"``, ``"flatten"``, as for
        ``cnn``). ``resnet18_3d``: ``width`` [16] filters of the first stage,
        ``dropout`` [0.2], ``stem_stride`` [2] (1 keeps the full resolution in the first stage,
        eight times the work on a 28^3 volume). The 3-D widths are small so that 28^3 volumes
        train in minutes on a CPU.

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> model = build_model("cnn", (28, 28), 2, width=8, dense=16)
    >>> model.output_shape
    (None, 2)
    >>> build_model("cnn3d", (16, 16, 16), 2, width=4, dense=8).input_shape
    (None, 16, 16, 16, 1)
    """
    if kind not in MODELS:
        raise ValueError(f"kind must be one of {MODELS}, got {kind!r}")
    shape = _check_volume_shape(input_shape) if kind in VOLUME_MODELS else \
        _check_input_shape(input_shape)
    n_classes = _check_n_classes(n_classes, 1 if kind == "diagnostic" else 2)
    unknown = set(options) - set(_OPTIONS[kind])
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for kind {kind!r}; "
                         f"expected some of {sorted(_OPTIONS[kind])}")
    opts = {**_OPTIONS[kind], **options}
    for name in ("width", "dense"):
        if name in opts and (not isinstance(opts[name], numbers.Integral) or opts[name] < 1):
            raise ValueError(f"{name} must be a positive integer, got {opts[name]!r}")
    if "stem_stride" in opts and opts["stem_stride"] not in (1, 2):
        raise ValueError(f"stem_stride must be 1 or 2, got {opts['stem_stride']!r}")
    if "pool" in opts and opts["pool"] not in _POOLS:
        raise ValueError(f"pool must be one of {_POOLS}, got {opts['pool']!r}")
    if not 0 <= float(opts["dropout"]) < 1:
        raise ValueError(f"dropout must be in [0, 1), got {opts['dropout']!r}")
    if seed is not None:
        set_seed(seed)
    keras = import_keras()
    inputs = keras.Input(shape=shape, name="image")
    if kind == "cnn":
        x = _cnn_features(keras, inputs, opts["width"])
        x = _head(keras, x, opts["dense"], opts["dropout"], opts["pool"])
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    elif kind == "resnet18":
        x = _resnet18_features(keras, inputs, opts["width"])
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        if opts["dropout"]:
            x = keras.layers.Dropout(opts["dropout"], name="head_dropout")(x)
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    elif kind == "cnn3d":
        x = _cnn3d_features(keras, inputs, opts["width"])
        pool = {"avg": keras.layers.GlobalAveragePooling3D, "max": keras.layers.GlobalMaxPooling3D,
                "flatten": keras.layers.Flatten}[opts["pool"]]
        x = pool(name="pool")(x)
        x = keras.layers.Dropout(opts["dropout"], name="head_dropout")(x)
        x = keras.layers.Dense(opts["dense"], activation="relu", name="head_dense")(x)
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    elif kind == "resnet18_3d":
        x = _resnet18_features(keras, inputs, opts["width"], stem_stride=opts["stem_stride"])
        x = keras.layers.GlobalAveragePooling3D(name="pool")(x)
        if opts["dropout"]:
            x = keras.layers.Dropout(opts["dropout"], name="head_dropout")(x)
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    elif kind == "resnet50":
        x = _resnet50_features(keras, inputs, shape, opts["weights"])
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        x = keras.layers.Dropout(opts["dropout"], name="head_dropout")(x)
        x = keras.layers.Dense(opts["dense"], use_bias=False, name="head_dense")(x)
        x = keras.layers.BatchNormalization(name="head_bn")(x)
        x = keras.layers.Activation("relu", name="head_relu")(x)
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    else:
        outputs = _diagnostic(keras, inputs, shape, n_classes, opts)
    return keras.Model(inputs, outputs, name=kind)


def _head(keras, x, dense, dropout, pool="flatten"):
    if pool == "max":
        x = keras.layers.GlobalMaxPooling2D(name="pool")(x)
    elif pool == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    x = keras.layers.Dense(dense, activation="relu", name="head_dense")(x)
    return keras.layers.Dropout(dropout, name="head_dropout2")(x)


def _cnn_features(keras, x, width, regularizer=None):
    L = keras.layers
    for block in range(3):
        filters = width * 2 ** block
        for j in range(2):
            x = L.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=regularizer,
                         name=f"block{block + 1}_conv{j + 1}")(x)
            x = L.BatchNormalization(momentum=_BN_MOMENTUM,
                                     name=f"block{block + 1}_bn{j + 1}")(x)
            x = L.Activation("relu", name=f"block{block + 1}_relu{j + 1}")(x)
        x = L.MaxPooling2D(2, padding="same", name=f"block{block + 1}_pool")(x)
    return x


def _cnn3d_features(keras, x, width):
    L = keras.layers
    for block in range(3):
        x = L.Conv3D(width * 2 ** block, 3, padding="same", use_bias=False,
                     name=f"block{block + 1}_conv1")(x)
        x = L.BatchNormalization(momentum=_BN_MOMENTUM, name=f"block{block + 1}_bn1")(x)
        x = L.Activation("relu", name=f"block{block + 1}_relu1")(x)
        x = L.MaxPooling3D(2, padding="same", name=f"block{block + 1}_pool")(x)
    return x


def _conv_bn(keras, x, filters, kernel, strides, name, regularizer, relu=True):
    L = keras.layers
    conv = L.Conv3D if len(x.shape) == 5 else L.Conv2D
    x = conv(filters, kernel, strides=strides, padding="same", use_bias=False,
                 kernel_initializer="he_normal", kernel_regularizer=regularizer,
                 name=f"{name}_conv")(x)
    x = L.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_bn")(x)
    return L.Activation("relu", name=f"{name}_relu")(x) if relu else x


def _resnet18_features(keras, inputs, width, regularizer=None, stem_stride=1):
    """ResNet-18's residual stages; 2-D or 3-D convolutions after the input's rank."""
    L = keras.layers
    volume = len(inputs.shape) == 5
    small = min(inputs.shape[1:-1]) < 64
    if volume:  # 3x3x3 stem, as for small 2-D inputs; stride 2 trades resolution for speed
        x = _conv_bn(keras, inputs, width, 3, stem_stride, "stem", regularizer)
    elif small:  # 28-63 px: a 3x3 stem keeps the resolution (as for CIFAR-sized inputs)
        x = _conv_bn(keras, inputs, width, 3, 1, "stem", regularizer)
    else:  # 64-128 px and more: 7x7 stride-2 stem and max pooling, as in the ImageNet network
        x = _conv_bn(keras, inputs, width, 7, 2, "stem", regularizer)
        x = L.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage in range(4):
        filters = width * 2 ** stage
        for block in range(2):
            strides = 2 if stage > 0 and block == 0 else 1
            name = f"stage{stage + 1}_block{block + 1}"
            shortcut = x
            y = _conv_bn(keras, x, filters, 3, strides, f"{name}_a", regularizer)
            y = _conv_bn(keras, y, filters, 3, 1, f"{name}_b", regularizer, relu=False)
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = _conv_bn(keras, shortcut, filters, 1, strides, f"{name}_proj",
                                    regularizer, relu=False)
            x = L.Add(name=f"{name}_add")([shortcut, y])
            x = L.Activation("relu", name=f"{name}_out")(x)
    return x


def _resnet50_features(keras, inputs, shape, weights):
    x = inputs
    height, width, channels = shape
    if min(height, width) < 32:  # keras.applications.ResNet50 refuses anything below 32x32
        scale = 32 / min(height, width)
        size = (max(32, round(height * scale)), max(32, round(width * scale)))
        x = keras.layers.Resizing(*size, interpolation="bilinear", name="resize_to_32")(x)
        height, width = size
    backbone_shape = (height, width, channels)
    if weights is None:
        backbone = keras.applications.ResNet50(include_top=False, weights=None,
                                               input_shape=backbone_shape)
    else:
        backbone = _resnet50_from_file(keras, weights, backbone_shape)
    return backbone(x)


def _resnet50_from_file(keras, weights, shape):
    import os

    if not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
        raise ValueError("weights must be None or the path of an existing local weights file "
                         f"(nothing is downloaded), got {weights!r}")
    weights = os.fspath(weights)
    if shape[2] == 3:
        return keras.applications.ResNet50(include_top=False, weights=weights, input_shape=shape)
    # Weights are stored for RGB input. Load them into an RGB network, then copy them into one
    # with the wanted channels; the first convolution's kernel summed over its input channels
    # gives, for grey input, exactly what the RGB network gives for the grey image repeated.
    if shape[2] != 1:
        raise ValueError("a ResNet50 weights file holds RGB weights: input_shape needs 1 (grey) "
                         f"or 3 channels to use it, got {shape[2]}")
    rgb = keras.applications.ResNet50(include_top=False, weights=weights,
                                      input_shape=(*shape[:2], 3))
    grey = keras.applications.ResNet50(include_top=False, weights=None, input_shape=shape)
    _copy_weights_to_grey(rgb, grey, "conv1_conv")
    return grey


def _copy_weights_to_grey(rgb, grey, first_conv):
    """Copy the weights of a 3-channel network into the same network built for 1 channel.

    The first convolution's kernel is summed over its input channels: for a grey image ``g`` that
    gives exactly the RGB network's response to ``(g, g, g)``, without copying any channel.
    """
    for src, dst in zip(rgb.layers, grey.layers):
        values = src.get_weights()
        if src.name == first_conv:
            values[0] = values[0].sum(axis=2, keepdims=True)
        dst.set_weights(values)


def _diagnostic(keras, inputs, shape, n_classes, opts):
    L = keras.layers
    backbone = opts["backbone"]
    if backbone not in ("resnet18", "resnet50", "cnn"):
        raise ValueError(f"backbone must be 'resnet18', 'resnet50' or 'cnn', got {backbone!r}")
    if opts["weights"] is not None and backbone != "resnet50":
        raise ValueError(f"weights (a local ResNet50 weights file) needs backbone='resnet50', "
                         f"got backbone={backbone!r}")
    if not float(opts["weight_decay"]) >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {opts['weight_decay']!r}")
    reg = keras.regularizers.L2(float(opts["weight_decay"])) if opts["weight_decay"] else None
    if backbone == "resnet18":
        x = _resnet18_features(keras, inputs, opts["width"], reg)
    elif backbone == "cnn":
        x = _cnn_features(keras, inputs, opts["width"], reg)
    else:
        x = _resnet50_features(keras, inputs, shape, opts["weights"])
    x = L.GlobalAveragePooling2D(name="pool")(x)
    x = L.Dense(opts["dense"], use_bias=False, kernel_regularizer=reg, name="head_dense")(x)
    x = L.BatchNormalization(name="head_bn")(x)
    x = L.Activation("relu", name="head_relu")(x)
    x = L.Dropout(opts["dropout"], name="head_dropout")(x)
    return L.Dense(n_classes, activation="sigmoid", kernel_regularizer=reg,
                   name="findings")(x)
