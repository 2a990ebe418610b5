"""The operations of :mod:`medfeat.augment` as Keras layers, to put at the top of a model.

:mod:`medfeat.augment` is NumPy and SciPy only; this module translates what has a Keras
counterpart into Keras' own random layers (and three volume layers of its own), which act only
when the model is called with ``training=True`` and save in the ``.keras`` format.
"""

from __future__ import annotations

import numpy as np

from ..augment import (Compose, Flip, GaussianNoise, IntensityJitter, Op, ShiftScaleRotate,
                       VolumeFlip, VolumeOp, VolumeRot90)
from ._keras import check_seed, import_keras

__all__ = ["keras_layers", "keras_volume_layers"]


_KERAS_VOLUME_LAYERS = {}


def keras_volume_layers():
    """The Keras layers :func:`keras_layers` uses for volumes, by name (defined on first call).

    ``RandomVolumeFlip`` (``axes``, probability 0.5 each), ``RandomVolumeRot90`` (``axes``,
    quarter turns about each on cube-shaped planes) and ``RandomVolumeIntensity``
    (``brightness``, ``contrast``, ``value_range``) take 5-D input ``(n, D, H, W, C)``, act only
    with ``training=True``, draw from a seeded ``keras.random.SeedGenerator``, and are
    registered as Keras serialisable objects (package ``medfeat``): call this function before
    ``keras.saving.load_model`` on a model that holds them.

    Returns
    -------
    dict of str to type

    Examples
    --------
    >>> sorted(keras_volume_layers())
    ['RandomVolumeFlip', 'RandomVolumeIntensity', 'RandomVolumeRot90']
    """
    if _KERAS_VOLUME_LAYERS:
        return dict(_KERAS_VOLUME_LAYERS)
    keras = import_keras()
    ops, random = keras.ops, keras.random
    register = keras.saving.register_keras_serializable(package="medfeat")

    class _RandomVolume(keras.layers.Layer):
        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.seed = seed
            self._generator = random.SeedGenerator(seed)

        def _coin(self, x, p=0.5):
            """One draw per volume, shaped to broadcast over (n, D, H, W, C)."""
            return random.uniform((ops.shape(x)[0], 1, 1, 1, 1), seed=self._generator) < p

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "seed": self.seed}

    @register
    class RandomVolumeFlip(_RandomVolume):
        def __init__(self, axes=(0, 1, 2), seed=None, **kwargs):
            super().__init__(seed, **kwargs)
            self.axes = [int(a) for a in axes]

        def call(self, x, training=False):
            if not training:
                return x
            for a in self.axes:
                x = ops.where(self._coin(x), ops.flip(x, axis=a + 1), x)
            return x

        def get_config(self):
            return {**super().get_config(), "axes": self.axes}

    @register
    class RandomVolumeRot90(_RandomVolume):
        def __init__(self, axes=(0,), seed=None, **kwargs):
            super().__init__(seed, **kwargs)
            self.axes = [int(a) for a in axes]

        def call(self, x, training=False):
            if not training:
                return x
            for a in self.axes:
                i, j = (b + 1 for b in VolumeRot90.PLANES[a])
                square = x.shape[i] == x.shape[j]
                k = ops.floor(random.uniform((ops.shape(x)[0], 1, 1, 1, 1),
                                             seed=self._generator) * 4)
                out = ops.where(k == 2, ops.flip(x, axis=(i, j)), x)
                if square:
                    turned = ops.rot90(x, 1, axes=(i, j))
                    out = ops.where(k == 1, turned, out)
                    out = ops.where(k == 3, ops.flip(turned, axis=(i, j)), out)
                x = out
            return x

        def get_config(self):
            return {**super().get_config(), "axes": self.axes}

    @register
    class RandomVolumeIntensity(_RandomVolume):
        def __init__(self, brightness=0.1, contrast=0.1, value_range=(0.0, 1.0), seed=None,
                     **kwargs):
            super().__init__(seed, **kwargs)
            self.brightness = float(brightness)
            self.contrast = float(contrast)
            self.value_range = [float(v) for v in value_range]

        def call(self, x, training=False):
            if not training:
                return x
            shape = (ops.shape(x)[0], 1, 1, 1, 1)
            axes = (1, 2, 3, 4)
            mean = ops.mean(x, axis=axes, keepdims=True)
            span = ops.max(x, axis=axes, keepdims=True) - ops.min(x, axis=axes, keepdims=True)
            c = random.uniform(shape, 1 - self.contrast, 1 + self.contrast, seed=self._generator)
            b = random.uniform(shape, -self.brightness, self.brightness, seed=self._generator)
            out = (x - mean) * c + mean + b * span
            return ops.clip(out, self.value_range[0], self.value_range[1])

        def get_config(self):
            return {**super().get_config(), "brightness": self.brightness,
                    "contrast": self.contrast, "value_range": self.value_range}

    _KERAS_VOLUME_LAYERS.update(RandomVolumeFlip=RandomVolumeFlip,
                                RandomVolumeRot90=RandomVolumeRot90,
                                RandomVolumeIntensity=RandomVolumeIntensity)
    return dict(_KERAS_VOLUME_LAYERS)


def _keras_volume_sequence(keras, ops, seed, value_range):
    classes = keras_volume_layers()
    layers = []
    for k, op in enumerate(ops):
        name = type(op).__name__
        if not isinstance(op, Op):
            raise ValueError(f"ops must be medfeat.augment operations, got {op!r}")
        if isinstance(op, VolumeFlip):
            if op.p != 0.5:
                raise ValueError(f"ops: the Keras volume flip flips with probability 0.5, not "
                                 f"{op.p}")
            layers.append(classes["RandomVolumeFlip"](op.axes, seed=int(seed[k])))
        elif isinstance(op, VolumeRot90):
            if op.p != 1:
                raise ValueError(f"ops: {name} with p={op.p} has no Keras counterpart (p=1 only)")
            layers.append(classes["RandomVolumeRot90"](op.axes, seed=int(seed[k])))
        elif isinstance(op, GaussianNoise):
            lo, hi = op.sigma_range
            if lo != hi or op.p != 1:
                raise ValueError(f"ops: {name} needs one sigma and p=1 for Keras, got {op!r}")
            layers.append(keras.layers.GaussianNoise(hi, seed=int(seed[k])))
        elif isinstance(op, IntensityJitter):
            if op.gamma or op.p != 1:
                raise ValueError(f"ops: {name} with gamma or p<1 has no Keras counterpart")
            layers.append(classes["RandomVolumeIntensity"](
                op.brightness, op.contrast, tuple(value_range), seed=int(seed[k])))
        else:
            raise ValueError(f"ops: {name} has no Keras counterpart for volumes; use it through "
                             "medfeat.deep.train(augment=...) instead")
    return keras.Sequential(layers, name="augmentation")


def keras_layers(ops, *, seed=0, value_range=(0.0, 1.0), volumes=None):
    """The same augmentations as Keras layers, to put at the top of a model (training only).

    Translates :class:`Flip` (``p=0.5`` only), :class:`Rotate`, :class:`Scale`,
    :class:`ShiftScaleRotate` (symmetric ranges, ``mode`` "reflect", "nearest", "constant" or
    "wrap"), :class:`GaussianNoise` (one ``sigma``) and :class:`IntensityJitter` (``gamma=0``) into
    Keras' random layers (``RandomFlip``, ``RandomRotation``, ``RandomZoom``,
    ``RandomTranslation``, ``GaussianNoise``, ``RandomBrightness``, ``RandomContrast``). These act
    only when the model is called with ``training=True``, work on every Keras backend, and save in
    the ``.keras`` format with ``safe_mode`` on. Keras draws its own random numbers, so results
    match the NumPy operations in distribution, not value by value.

    Parameters
    ----------
    ops : Compose, Op or sequence of Op
    seed : int
        Seeds the layers (one derived seed each).
    value_range : (float, float)
        Range of the model's input values (brightness and contrast are clipped to it).
    volumes : bool, optional
        Layers for 5-D volume input ``(n, D, H, W, C)``; default: when ``ops`` holds a volume
        operation. Volumes translate :class:`VolumeFlip` (``p=0.5``), :class:`VolumeRot90`
        (``p=1``), :class:`GaussianNoise` and :class:`IntensityJitter` (``gamma=0``) into the
        layers of :func:`keras_volume_layers` and ``keras.layers.GaussianNoise``.

    Returns
    -------
    keras.Sequential

    Raises
    ------
    ValueError
        For an operation without a Keras counterpart (blur, grid and elastic distortion, gamma,
        noise ranges, flips with ``p`` other than 0.5, asymmetric ranges).

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.augment import Flip, GaussianNoise, IntensityJitter, Rotate, VolumeFlip
    >>> layers = keras_layers([Flip("horizontal"), Rotate(10), GaussianNoise(0.02)], seed=0)
    >>> x = np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32")
    >>> bool(np.array_equal(np.asarray(layers(x, training=False)), x))
    True
    >>> vol = keras_layers([VolumeFlip(), IntensityJitter(0.1, 0.1)], seed=0)
    >>> v = np.random.default_rng(0).random((2, 8, 8, 8, 1)).astype("float32")
    >>> np.asarray(vol(v, training=True)).shape
    (2, 8, 8, 8, 1)
    """
    if isinstance(ops, Compose):
        ops = ops.ops
    elif isinstance(ops, Op):
        ops = [ops]
    # one derived seed per layer
    seed = np.random.default_rng(check_seed(seed)).integers(2**31, size=64)
    keras = import_keras()
    if volumes is None:
        volumes = any(isinstance(op, VolumeOp) for op in ops)
    if volumes:
        return _keras_volume_sequence(keras, list(ops), seed, value_range)
    L = keras.layers
    layers, k = [], 0

    def symmetric(lo, hi, name, op):
        if not np.isclose(lo, -hi):
            raise ValueError(f"ops: {op!r} has an asymmetric {name} range ({lo}, {hi}); Keras' "
                             "random layers need ranges symmetric about no change")
        return hi

    for op in ops:
        if not isinstance(op, Op):
            raise ValueError(f"ops must be medfeat.augment operations, got {op!r}")
        name = type(op).__name__
        if isinstance(op, Flip):
            if op.p != 0.5:
                raise ValueError(f"ops: Keras' RandomFlip flips with probability 0.5, not {op.p}")
            layers.append(L.RandomFlip(op.axis, seed=int(seed[k])))
        elif isinstance(op, ShiftScaleRotate):
            if op.p != 1:
                raise ValueError(f"ops: {name} with p={op.p} has no Keras counterpart (p=1 only)")
            fill = {"reflect": "reflect", "mirror": "reflect", "nearest": "nearest",
                    "constant": "constant", "wrap": "wrap"}[op.mode]
            shift = symmetric(*op.shift_range, "shift", op)
            deg = symmetric(*op.degrees_range, "degrees", op)
            lo, hi = op.scale_range
            if deg:
                layers.append(L.RandomRotation(deg / 360.0, fill_mode=fill, fill_value=op.cval,
                                               seed=int(seed[k])))
            if (lo, hi) != (1.0, 1.0):
                # Keras zoom factor z shows the image at 1 / (1 + z) of its size
                layers.append(L.RandomZoom((1 / hi - 1, 1 / lo - 1), fill_mode=fill,
                                           fill_value=op.cval, seed=int(seed[k + 1])))
            if shift:
                layers.append(L.RandomTranslation(shift, shift, fill_mode=fill,
                                                  fill_value=op.cval, seed=int(seed[k + 2])))
        elif isinstance(op, GaussianNoise):
            lo, hi = op.sigma_range
            if lo != hi or op.p != 1:
                raise ValueError(f"ops: {name} needs one sigma and p=1 for Keras, got {op!r}")
            layers.append(L.GaussianNoise(hi, seed=int(seed[k])))
        elif isinstance(op, IntensityJitter):
            if op.gamma or op.p != 1:
                raise ValueError(f"ops: {name} with gamma or p<1 has no Keras counterpart")
            if op.brightness:
                layers.append(L.RandomBrightness(op.brightness, value_range=tuple(value_range),
                                                 seed=int(seed[k])))
            if op.contrast:
                layers.append(L.RandomContrast(op.contrast, value_range=tuple(value_range),
                                               seed=int(seed[k + 1])))
        else:
            raise ValueError(f"ops: {name} has no Keras counterpart; use it through "
                             "medfeat.deep.train(augment=...) instead")
        k += 3
    return keras.Sequential(layers, name="augmentation")
