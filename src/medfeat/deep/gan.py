"""A class-conditional GAN for 2-D images, synthetic data expansion, and how to judge its samples.

The model is an SNGAN with a projection discriminator, sized for small medical images on a CPU:

* **Discriminator**: strided 3x3 / 4x4 convolutions with spectral normalisation of every weight
  (Miyato et al., ICLR 2018: each kernel divided by its largest singular value, estimated by one
  power iteration per training step, the gradient flowing through the estimate), leaky ReLU,
  global average pooling to a feature vector ``phi(x)``, and the *projection* output
  ``D(x, y) = w . phi(x) + e_y . phi(x)`` (Miyato & Koyama, ICLR 2018), where ``e_y`` is a
  learned, spectrally normalised class embedding.
* **Generator**: DCGAN-style (Radford et al., ICLR 2016): the latent vector concatenated with a
  class embedding, and a per-class gain and bias after every normalisation
  (:class:`ClassConditionalScale`), a dense layer to a ``H/4 x W/4`` (``H/8`` above 32 px) map, then blocks of
  nearest-neighbour upsampling and a 3x3 convolution (resize-convolution against the checkerboard
  artefacts of transposed convolutions, Odena et al., Distill 2016), ``tanh`` output, cropped to
  the image size. Pixel-wise feature normalisation (Karras et al., ICLR 2018) instead of batch
  normalisation: a sample does not depend on the others in its batch, and training and inference
  compute the same function.
* **Training**: the hinge loss (Lim & Ye 2017; Miyato et al. 2018), one discriminator step per
  generator step, Adam with ``beta_1 = 0``, ``beta_2 = 0.9`` and a discriminator learning rate
  twice the generator's (the two time-scale rule, Heusel et al., NeurIPS 2017). The rates, 1e-3
  and 5e-4, are larger than the 4e-4 and 1e-4 of SAGAN (Zhang et al., ICML 2019) because a CPU
  budget is about 10^3 steps, not 10^5: Adam moves a weight by about the learning rate per step,
  and at 1e-4 the generator's class-conditional gains had moved by 0.02 after 180 steps on
  two toy classes, too little to tell them apart (at 1e-3 both classes came out right).

The code is backend-neutral Keras 3: custom layers use only :mod:`keras.ops`, and training
alternates ``train_on_batch`` of two compiled models (the discriminator, and the generator
followed by the frozen discriminator), so no backend's gradient API appears here.

GAN-based expansion of a small medical training set follows Frid-Adar et al. (Neurocomputing
321, 2018, synthetic liver lesions). Whether it helps a classifier must be measured on real test
data; :func:`two_sample_auc` says how distinguishable the samples are from real images (the
classifier two-sample test of Lopez-Paz & Oquab, ICLR 2017).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import tempfile
import time
import zipfile

import numpy as np

from ._keras import check_seed, import_keras, set_seed
from ._inputs import _check_positive_int as _positive_int

keras = import_keras()
ops = keras.ops
layers = keras.layers

__all__ = ["ConditionalGAN", "expand", "expand_split", "two_sample_auc", "class_agreement",
           "plot_samples",
           "SpectralConv2D", "SpectralDense", "ClassProjection", "PixelNormalization",
           "ClassConditionalScale"]

_META_NAME = "medfeat.json"
_FORMAT = "medfeat.ConditionalGAN"
#: Generator steps the default ``epochs=None`` aims at (the epochs follow from the data size).
_DEFAULT_STEPS = 1500
_MIN_EPOCHS, _MAX_EPOCHS = 10, 500
_CLASSES_MODES = ("minority", "all")


# --------------------------------------------------------------------------- layers
def _spectral_normalise(w, u, power_iterations):
    """``(w / sigma(w), u_new)`` for a 2-D ``w`` ``(m, n)`` and its left estimate ``u`` ``(1, n)``.

    ``sigma`` is the power-iteration estimate of the largest singular value; ``u`` and ``v`` are
    held constant for the gradient, which flows through ``sigma`` (Miyato et al., 2018, eq. 12).
    """
    for _ in range(power_iterations):
        v = ops.matmul(u, ops.transpose(w))
        v = v / (ops.sqrt(ops.sum(v * v)) + 1e-12)
        u = ops.matmul(v, w)
        u = u / (ops.sqrt(ops.sum(u * u)) + 1e-12)
    u = ops.stop_gradient(u)
    v = ops.stop_gradient(v)
    sigma = ops.sum(ops.matmul(v, w) * u)
    return w / sigma, u


class _Spectral(layers.Layer):
    """Shared power-iteration state of the spectrally normalised layers."""

    def __init__(self, power_iterations=1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations,
                                                                numbers.Integral) \
                or power_iterations < 1:
            raise ValueError(f"power_iterations must be a positive integer, got "
                             f"{power_iterations!r}")
        self.power_iterations = int(power_iterations)

    def _add_u(self, n):
        self.u = self.add_weight(shape=(1, n), initializer="random_normal", trainable=False,
                                 name="sn_u")

    def _normalised(self, kernel, training):
        shape = ops.shape(kernel)
        w = ops.reshape(kernel, (-1, shape[-1]))
        w_sn, u_new = _spectral_normalise(w, self.u, self.power_iterations)
        if training:
            self.u.assign(u_new)
        return ops.reshape(w_sn, shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(package="medfeat")
class SpectralConv2D(_Spectral):
    """A 2-D convolution whose kernel is divided by its spectral norm (Miyato et al., 2018).

    Parameters
    ----------
    filters : int
    kernel_size : int
    strides : int, optional
    padding : {"same", "valid"}, optional
    use_bias : bool, optional
    power_iterations : int, optional
        Power iterations per training call (one suffices: the estimate carries over).

    Examples
    --------
    >>> import numpy as np
    >>> layer = SpectralConv2D(4, 3, strides=2)
    >>> tuple(layer(np.zeros((2, 8, 8, 1), np.float32)).shape)
    (2, 4, 4, 4)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same", use_bias=True,
                 power_iterations=1, **kwargs):
        super().__init__(power_iterations, **kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.padding = padding
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(shape=(k, k, int(input_shape[-1]), self.filters),
                                      initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias") \
            if self.use_bias else None
        self._add_u(self.filters)

    def call(self, inputs, training=False):
        kernel = self._normalised(self.kernel, training)
        out = ops.conv(inputs, kernel, strides=self.strides, padding=self.padding)
        return out + self.bias if self.bias is not None else out

    def compute_output_shape(self, input_shape):
        def side(s):
            if s is None:
                return None
            if self.padding == "same":
                return -(-s // self.strides)
            return (s - self.kernel_size) // self.strides + 1
        return (input_shape[0], side(input_shape[1]), side(input_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="medfeat")
class SpectralDense(_Spectral):
    """A dense layer whose kernel is divided by its spectral norm (Miyato et al., 2018).

    Examples
    --------
    >>> import numpy as np
    >>> tuple(SpectralDense(3)(np.ones((2, 5), np.float32)).shape)
    (2, 3)
    """

    def __init__(self, units, use_bias=True, power_iterations=1, **kwargs):
        super().__init__(power_iterations, **kwargs)
        self.units = int(units)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(int(input_shape[-1]), self.units),
                                      initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias") \
            if self.use_bias else None
        self._add_u(self.units)

    def call(self, inputs, training=False):
        out = ops.matmul(inputs, self._normalised(self.kernel, training))
        return out + self.bias if self.bias is not None else out

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="medfeat")
class ClassProjection(_Spectral):
    """The class term of a projection discriminator: ``e_y . phi`` (Miyato & Koyama, 2018).

    Called on ``[phi, y]`` with features ``phi`` ``(batch, features)`` and integer class indices
    ``y`` ``(batch,)`` or ``(batch, 1)``; returns ``(batch, 1)``. The embedding matrix is spectrally
    normalised like the other discriminator weights.

    Examples
    --------
    >>> import numpy as np
    >>> proj = ClassProjection(3)
    >>> tuple(proj([np.ones((2, 4), np.float32), np.array([[0], [2]])]).shape)
    (2, 1)
    """

    def __init__(self, n_classes, power_iterations=1, **kwargs):
        super().__init__(power_iterations, **kwargs)
        self.n_classes = int(n_classes)

    def build(self, input_shape):
        features = int(input_shape[0][-1])
        self.embeddings = self.add_weight(shape=(self.n_classes, features),
                                          initializer="glorot_uniform", name="embeddings")
        # the embedding rows are the outputs: normalise the (features, classes) map
        self._add_u(self.n_classes)

    def call(self, inputs, training=False):
        phi, y = inputs
        emb = ops.transpose(self._normalised(ops.transpose(self.embeddings), training))
        y = ops.reshape(ops.cast(y, "int32"), (-1,))
        e = ops.take(emb, y, axis=0)
        return ops.sum(e * phi, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes}


@keras.saving.register_keras_serializable(package="medfeat")
class PixelNormalization(layers.Layer):
    """Each pixel's feature vector scaled to unit root-mean-square (Karras et al., ICLR 2018).

    Examples
    --------
    >>> import numpy as np
    >>> out = PixelNormalization()(np.full((1, 2, 2, 4), 3.0, np.float32))
    >>> bool(np.allclose(np.asarray(out), 1.0, atol=1e-4))
    True
    """

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        return inputs * ops.rsqrt(ops.mean(inputs * inputs, axis=-1, keepdims=True)
                                  + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="medfeat")
class ClassConditionalScale(layers.Layer):
    """A per-class gain and bias of every channel, ``h * (1 + gamma_y) + beta_y``.

    Applied after each normalisation of the generator, this is conditional normalisation
    (Dumoulin et al., ICLR 2017; de Vries et al., NeurIPS 2017), the way the generators of
    Miyato & Koyama (2018) receive the class: at every resolution, not only in the input.
    Called on ``[h, y]`` with features ``(batch, H, W, C)`` and class indices ``(batch, 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> layer = ClassConditionalScale(3)
    >>> tuple(layer([np.ones((2, 4, 4, 5), np.float32), np.array([[0], [2]])]).shape)
    (2, 4, 4, 5)
    """

    def __init__(self, n_classes, **kwargs):
        super().__init__(**kwargs)
        self.n_classes = int(n_classes)

    def build(self, input_shape):
        c = int(input_shape[0][-1])
        self.gamma = self.add_weight(shape=(self.n_classes, c), initializer="zeros",
                                     name="gamma")
        self.beta = self.add_weight(shape=(self.n_classes, c), initializer="zeros", name="beta")

    def call(self, inputs):
        h, y = inputs
        y = ops.reshape(ops.cast(y, "int32"), (-1,))
        gamma = ops.take(self.gamma, y, axis=0)[:, None, None, :]
        beta = ops.take(self.beta, y, axis=0)[:, None, None, :]
        return h * (1.0 + gamma) + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes}


# --------------------------------------------------------------------------- networks
def _n_up(height, width):
    """Upsampling steps of the generator (and strided steps of the discriminator)."""
    side = min(height, width)
    return 2 + (side > 32) + (side > 64) + (side > 128)


def _build_generator(shape, n_classes, latent_dim, width):
    H, W, C = shape
    n_up = _n_up(H, W)
    bh, bw = -(-H // 2 ** n_up), -(-W // 2 ** n_up)
    channels = [width * 2 ** (n_up - k) for k in range(n_up + 1)]   # e.g. 4w, 2w, w
    z = keras.Input((latent_dim,), name="z")
    y = keras.Input((1,), dtype="int32", name="label")
    e = layers.Flatten()(layers.Embedding(n_classes, min(latent_dim, 32))(y))
    h = layers.Concatenate()([z, e])
    h = layers.Dense(bh * bw * channels[0])(h)
    h = layers.Reshape((bh, bw, channels[0]))(h)
    h = ClassConditionalScale(n_classes)([PixelNormalization()(layers.LeakyReLU(0.2)(h)), y])
    for c in channels[1:]:
        h = layers.UpSampling2D(2, interpolation="nearest")(h)
        h = layers.Conv2D(c, 3, padding="same")(h)
        h = ClassConditionalScale(n_classes)([PixelNormalization()(layers.LeakyReLU(0.2)(h)),
                                              y])
    h = layers.Conv2D(C, 3, padding="same", activation="tanh")(h)
    dh, dw = bh * 2 ** n_up - H, bw * 2 ** n_up - W
    if dh or dw:
        h = layers.Cropping2D(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))(h)
    return keras.Model([z, y], h, name="generator")


def _build_discriminator(shape, n_classes, width):
    H, W, _ = shape
    x = keras.Input(shape, name="image")
    y = keras.Input((1,), dtype="int32", name="label")
    h = layers.LeakyReLU(0.1)(SpectralConv2D(width, 3)(x))
    c = width
    for _ in range(_n_up(H, W)):
        c *= 2
        h = layers.LeakyReLU(0.1)(SpectralConv2D(c, 4, strides=2)(h))
        h = layers.LeakyReLU(0.1)(SpectralConv2D(c, 3)(h))
    # summed over positions (as SNGAN does): an average would shrink D's scores by the map's area
    side = (-(-H // 2 ** _n_up(H, W))) * (-(-W // 2 ** _n_up(H, W)))
    phi = layers.Rescaling(float(side))(layers.GlobalAveragePooling2D()(h))
    out = layers.Add()([SpectralDense(1)(phi), ClassProjection(n_classes)([phi, y])])
    return keras.Model([x, y], out, name="discriminator")


# registered: the discriminator's compile settings travel inside a saved file
@keras.saving.register_keras_serializable(package="medfeat")
def _d_hinge(target, score):
    """Discriminator hinge loss; ``target`` is +1 for real rows and -1 for generated ones."""
    return ops.mean(ops.relu(1.0 - target * score))


@keras.saving.register_keras_serializable(package="medfeat")
def _g_hinge(target, score):
    """Generator hinge loss ``-D(G(z))`` (``target`` is all ones)."""
    return -ops.mean(target * score)


# --------------------------------------------------------------------------- argument checks


def _positive_float(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _check_images(images, name="images"):
    x = np.asarray(images)
    if x.dtype.kind not in "buif":
        raise ValueError(f"{name} must hold real numbers (bool, integer or float), got dtype "
                         f"{x.dtype}")
    if x.ndim == 4 and x.shape[-1] > 4 or x.ndim not in (3, 4) or 0 in x.shape:
        raise ValueError(f"{name} must be a non-empty stack of 2-D images (n, H, W) or "
                         f"(n, H, W, C) with C <= 4, got shape {x.shape}")
    if min(x.shape[1:3]) < 8:
        raise ValueError(f"{name}: images must be at least 8x8 pixels, got {x.shape[1:3]}")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _check_labels(labels, n, name="labels"):
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the images, got {y.shape}")
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(np.isfinite(y))
                                          and np.all(y == np.round(y))):
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    return y.astype(np.int64)


# --------------------------------------------------------------------------- the GAN
class ConditionalGAN:
    """A class-conditional GAN (SNGAN with a projection discriminator) for 2-D image stacks.

    See the module docstring for the architecture and the training recipe. Training is
    deterministic for a seed on the CPU (Keras seeded and TensorFlow's op determinism on, as
    :class:`~medfeat.deep.DeepClassifier` does; batches and latent vectors come from NumPy
    generators seeded by ``(seed, epoch)``).

    Parameters
    ----------
    latent_dim : int, optional
        Length of the generator's Gaussian latent vector.
    epochs : int or None, optional
        Passes over the training images. None: as many as give about 1,500 generator steps
        (``ceil(1500 / steps_per_epoch)``, between 10 and 500), so small and large data sets
        get the same amount of training.
    batch_size : int, optional
        Real images per step (the discriminator sees as many generated ones beside them);
        capped at the number of images.
    width : int, optional
        Channels of the discriminator's first convolution and of the generator's last block
        (doubled per resolution step).
    lr_g, lr_d : float, optional
        Adam learning rates of the generator and the discriminator.
    seed : int, optional
        Seeds the weights, the batches and the latent vectors; also the default of
        :meth:`sample`'s ``seed``.
    verbose : int, optional
        1: one line per epoch (discriminator and generator losses, seconds) through ``log``.
    log : callable, optional
        Receives the progress lines (default ``print``).

    Attributes
    ----------
    generator_, discriminator_ : keras.Model
    classes_ : ndarray
        The class labels seen in :meth:`fit`, sorted.
    image_shape_ : tuple
        Shape of one training image (without a channel axis if the images had none).
    dtype_ : numpy.dtype
    value_range_ : (float, float)
        Minimum and maximum of the training images; samples lie in it.
    history_ : dict
        Per epoch ``"d_loss"``, ``"g_loss"``, ``"seconds"``.
    epochs_ : int
    fit_seconds_ : float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((16, 16, 16), np.uint8); x[8:, 4:12, 4:12] = 200
    >>> y = np.repeat([0, 1], 8)
    >>> gan = ConditionalGAN(epochs=1, batch_size=8, width=4, verbose=0).fit(x, y)
    >>> s = gan.sample(3, label=1)
    >>> s.shape, s.dtype, int(s.min()) >= 0 and int(s.max()) <= 200
    ((3, 16, 16), dtype('uint8'), True)
    """

    def __init__(self, latent_dim=64, *, epochs=None, batch_size=64, width=16, lr_g=5e-4,
                 lr_d=1e-3, seed=0, verbose=1, log=None):
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.width = width
        self.lr_g = lr_g
        self.lr_d = lr_d
        self.seed = seed
        self.verbose = verbose
        self.log = log

    # ---- checks and scaling
    def _check_params(self):
        _positive_int(self.latent_dim, "latent_dim")
        if self.epochs is not None:
            _positive_int(self.epochs, "epochs")
        _positive_int(self.batch_size, "batch_size")
        _positive_int(self.width, "width")
        _positive_float(self.lr_g, "lr_g")
        _positive_float(self.lr_d, "lr_d")
        check_seed(self.seed)
        if self.log is not None and not callable(self.log):
            raise ValueError(f"log must be callable or None, got {type(self.log).__name__}")

    def _scale(self, x):
        low, high = self.value_range_
        span = high - low if high > low else 1.0
        x = (x.astype(np.float32) - np.float32(low)) / np.float32(span) * 2 - 1
        return x[..., None] if x.ndim == 3 else x

    def _unscale(self, t):
        low, high = self.value_range_
        t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
        x = low + (t + 1) / 2 * (high - low)
        if len(self.image_shape_) == 2:
            x = x[..., 0]
        dtype = self.dtype_
        if dtype.kind == "b":
            return x > (low + high) / 2
        if dtype.kind in "iu":
            return np.clip(np.round(x), low, high).astype(dtype)
        return np.clip(x.astype(dtype), dtype.type(low), dtype.type(high))

    def _epochs_for(self, n):
        if self.epochs is not None:
            return int(self.epochs)
        steps = max(1, n // min(int(self.batch_size), n))
        return int(min(_MAX_EPOCHS, max(_MIN_EPOCHS, math.ceil(_DEFAULT_STEPS / steps))))

    # ---- training
    def fit(self, images, labels):
        """Train the GAN on ``images`` with their class ``labels``; returns ``self``.

        Parameters
        ----------
        images : ndarray
            ``(n, H, W)`` or ``(n, H, W, C)`` (C <= 4), at least 8x8, any real dtype. They are
            scaled to [-1, 1] by their own minimum and maximum.
        labels : array_like
            ``(n,)`` or ``(n, 1)`` integer class labels (at least one class).
        """
        self._check_params()
        x = _check_images(images)
        y = _check_labels(labels, len(x))
        t0 = time.perf_counter()
        self.classes_ = np.unique(y)
        yi = np.searchsorted(self.classes_, y).astype(np.int32)
        self.image_shape_ = tuple(int(s) for s in x.shape[1:])
        self.dtype_ = x.dtype
        self.value_range_ = (float(x.min()), float(x.max())) if x.dtype.kind != "b" \
            else (0.0, 1.0)
        xs = self._scale(x)
        shape = xs.shape[1:]
        seed = check_seed(self.seed)
        log = self.log or print

        set_seed(seed)
        latent = int(self.latent_dim)
        self.generator_ = _build_generator(shape, len(self.classes_), latent, int(self.width))
        self.discriminator_ = _build_discriminator(shape, len(self.classes_), int(self.width))
        G, D = self.generator_, self.discriminator_
        D.compile(optimizer=keras.optimizers.Adam(float(self.lr_d), beta_1=0.0, beta_2=0.9),
                  loss=_d_hinge, jit_compile=False)
        z_in = keras.Input((latent,), name="z")
        y_in = keras.Input((1,), dtype="int32", name="label")
        D.trainable = False
        # the discriminator in inference mode here: no power-iteration update in generator steps
        stacked = keras.Model([z_in, y_in], D([G([z_in, y_in]), y_in], training=False),
                              name="generator_step")
        stacked.compile(optimizer=keras.optimizers.Adam(float(self.lr_g), beta_1=0.0,
                                                        beta_2=0.9),
                        loss=_g_hinge, jit_compile=False)

        n = len(xs)
        batch = min(int(self.batch_size), n)
        steps = max(1, n // batch)
        self.epochs_ = self._epochs_for(n)
        target = np.concatenate([np.ones(batch), -np.ones(batch)]).astype(np.float32)[:, None]
        ones = np.ones((batch, 1), np.float32)
        history = {"d_loss": [], "g_loss": [], "seconds": []}
        for epoch in range(self.epochs_):
            te = time.perf_counter()
            rng = np.random.default_rng([seed, epoch])
            order = rng.permutation(n)
            d_losses, g_losses = [], []
            for s in range(steps):
                idx = order[s * batch:(s + 1) * batch]
                yb = yi[idx][:, None]
                z = rng.standard_normal((batch, latent), dtype=np.float32)
                fake = G.predict_on_batch([z, yb])
                D.trainable = True
                d_losses.append(float(D.train_on_batch(
                    [np.concatenate([xs[idx], fake]), np.concatenate([yb, yb])], target)))
                D.trainable = False
                # generated labels follow the data's class frequencies
                z = rng.standard_normal((batch, latent), dtype=np.float32)
                yg = yi[rng.integers(0, n, batch)][:, None]
                g_losses.append(float(stacked.train_on_batch([z, yg], ones)))
            seconds = time.perf_counter() - te
            history["d_loss"].append(float(np.mean(d_losses)))
            history["g_loss"].append(float(np.mean(g_losses)))
            history["seconds"].append(seconds)
            if self.verbose:
                log(f"epoch {epoch + 1:3d}/{self.epochs_}  d_loss {history['d_loss'][-1]:.4f}  "
                    f"g_loss {history['g_loss'][-1]:.4f}  {seconds:.1f}s")
        D.trainable = True
        self.history_ = history
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _check_fitted(self):
        if not hasattr(self, "generator_"):
            raise ValueError("this ConditionalGAN is not fitted yet; call fit or load first")

    # ---- sampling
    def sample(self, n, label=None, seed=None):
        """``n`` generated images of class ``label``, in the training data's dtype and range.

        Parameters
        ----------
        n : int
            Number of images (0 gives an empty stack).
        label : class label, array_like of labels, or None, optional
            One class for all images, one label per image, or None: the classes in turn
            (``classes_[i % n_classes]``).
        seed : int, optional
            Seeds the latent vectors (default: the GAN's ``seed``). Same seed, same images.

        Returns
        -------
        ndarray
            ``(n, *image_shape_)`` of ``dtype_``, values within ``value_range_``.
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        n = int(n)
        seed = check_seed(self.seed if seed is None else seed)
        if label is None:
            labels = self.classes_[np.arange(n) % len(self.classes_)]
        else:
            labels = np.asarray(label)
            if labels.ndim == 0:
                labels = np.full(n, labels)
            if labels.shape != (n,):
                raise ValueError(f"label must be one class or one per image ({n}), got shape "
                                 f"{labels.shape}")
        index = np.clip(np.searchsorted(self.classes_, labels), 0, len(self.classes_) - 1)
        if n and not np.all(self.classes_[index] == labels):
            unknown = np.setdiff1d(np.unique(labels), self.classes_).tolist()
            raise ValueError(f"label holds {unknown}, not among the trained classes "
                             f"{self.classes_.tolist()}")
        if n == 0:
            return np.zeros((0, *self.image_shape_), dtype=self.dtype_)
        rng = np.random.default_rng([seed, 0x5A])
        z = rng.standard_normal((n, int(self.latent_dim)), dtype=np.float32)
        out = self.generator_.predict([z, index.astype(np.int32)[:, None]], batch_size=256,
                                      verbose=0)
        return self._unscale(out)

    # ---- persistence
    def _metadata(self):
        low, high = self.value_range_
        return {"format": _FORMAT, "version": 1,
                "params": {"latent_dim": int(self.latent_dim), "epochs": self.epochs,
                           "batch_size": int(self.batch_size), "width": int(self.width),
                           "lr_g": float(self.lr_g), "lr_d": float(self.lr_d),
                           "seed": int(self.seed), "verbose": int(self.verbose)},
                "classes": self.classes_.tolist(), "classes_dtype": self.classes_.dtype.str,
                "image_shape": list(self.image_shape_), "dtype": self.dtype_.str,
                "value_range": [low, high], "history": self.history_,
                "epochs_run": self.epochs_, "fit_seconds": self.fit_seconds_}

    def save(self, path):
        """Write the generator, the discriminator and the settings to one ``.keras`` file.

        Written atomically (a temporary file in the same folder, then renamed); the settings
        are a ``medfeat.json`` entry in the same archive. :meth:`load` reads it back with
        Keras' ``safe_mode`` on.

        Parameters
        ----------
        path : str or os.PathLike
            Ends with ``.keras``.
        """
        self._check_fitted()
        path = os.fspath(path)
        if not path.endswith(".keras"):
            raise ValueError(f"path must end with '.keras' (the Keras 3 format), got {path!r}")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ValueError(f"path must be in an existing folder, {folder!r} is not one")
        G, D = self.generator_, self.discriminator_
        z = keras.Input(G.inputs[0].shape[1:], name="z")
        y = keras.Input((1,), dtype="int32", name="label")
        x = keras.Input(D.inputs[0].shape[1:], name="image")
        both = keras.Model([z, y, x], [G([z, y]), D([x, y])], name="medfeat_cgan")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=folder)
        os.close(fd)
        try:
            both.save(tmp, overwrite=True)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(_META_NAME, json.dumps(self._metadata(), indent=1))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    @classmethod
    def load(cls, path):
        """A fitted :class:`ConditionalGAN` from a file written by :meth:`save`.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> x = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
        >>> gan = ConditionalGAN(epochs=1, batch_size=4, width=2, verbose=0).fit(x, [0, 1] * 4)
        >>> path = os.path.join(tempfile.mkdtemp(), "gan.keras")
        >>> gan.save(path)
        >>> again = ConditionalGAN.load(path)
        >>> bool(np.array_equal(again.sample(4, seed=1), gan.sample(4, seed=1)))
        True
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ValueError(f"path {path!r} is not a file")
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                meta = json.loads(archive.read(_META_NAME)) if _META_NAME in names else None
        except zipfile.BadZipFile as exc:
            raise ValueError(f"path {path!r} is not a .keras archive") from exc
        if meta is None or meta.get("format") != _FORMAT:
            raise ValueError(f"path {path!r} does not hold a medfeat ConditionalGAN")
        both = keras.saving.load_model(path, safe_mode=True, compile=False)
        gan = cls(**meta["params"])
        gan.generator_ = both.get_layer("generator")
        gan.discriminator_ = both.get_layer("discriminator")
        gan.classes_ = np.asarray(meta["classes"], dtype=np.dtype(meta["classes_dtype"]))
        gan.image_shape_ = tuple(meta["image_shape"])
        gan.dtype_ = np.dtype(meta["dtype"])
        gan.value_range_ = tuple(meta["value_range"])
        gan.history_ = meta["history"]
        gan.epochs_ = meta["epochs_run"]
        gan.fit_seconds_ = meta["fit_seconds"]
        return gan


# --------------------------------------------------------------------------- expansion
def _synthetic_counts(labels, factor, classes):
    """Synthetic images per class label: ``{label: count}``."""
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or \
            not math.isfinite(factor) or factor < 0:
        raise ValueError(f"factor must be a non-negative number, got {factor!r}")
    if classes not in _CLASSES_MODES:
        raise ValueError(f"classes must be one of {_CLASSES_MODES}, got {classes!r}")
    values, counts = np.unique(labels, return_counts=True)
    largest = counts.max()
    out = {}
    for v, c in zip(values.tolist(), counts.tolist()):
        k = int(round(factor * c))
        if classes == "minority":
            k = min(k, int(largest - c))
        out[v] = k
    return out


def expand_split(images, labels, *, factor=1.0, classes="minority", seed=0, gan=None,
                 gan_options=None):
    """A training split with GAN-generated images appended, and which rows are synthetic.

    Parameters
    ----------
    images : ndarray
        ``(n, H, W)`` or ``(n, H, W, C)`` real training images.
    labels : array_like
        ``(n,)`` class labels.
    factor : float, optional
        Synthetic images per class as a multiple of that class's count: ``"all"`` adds
        ``round(factor * n_c)`` to every class; ``"minority"`` adds as many to each class
        smaller than the largest, but never beyond the largest class's count (``factor`` 1
        doubles a minority class, or fills it up to the largest if that is nearer); the
        largest class gets none.
    classes : {"minority", "all"}, optional
    seed : int, optional
        Seeds the GAN built here (``gan_options`` may not override it) and the samples.
    gan : ConditionalGAN, optional
        Used as is when fitted (it must know every class of ``labels`` and the image shape),
        fitted on ``images`` first when not. None: ``ConditionalGAN(seed=seed,
        **gan_options)`` fitted on ``images``.
    gan_options : dict, optional
        Keyword arguments of :class:`ConditionalGAN` for the GAN built here.

    Returns
    -------
    images : ndarray
        The real images first, in their order, then the synthetic ones (by class).
    labels : ndarray of int64
    synthetic : ndarray of bool
        True for the appended rows.
    gan : ConditionalGAN
        The fitted GAN.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((12, 8, 8), np.uint8); y = np.array([0] * 8 + [1] * 4)
    >>> xe, ye, syn, gan = expand_split(x, y, gan_options={"epochs": 1, "width": 2,
    ...                                                    "verbose": 0})
    >>> xe.shape, ye.tolist()[-4:], int(syn.sum())
    ((16, 8, 8), [1, 1, 1, 1], 4)
    """
    x = _check_images(images)
    y = _check_labels(labels, len(x))
    counts = _synthetic_counts(y, factor, classes)
    seed = check_seed(seed)
    if gan_options is not None and not isinstance(gan_options, dict):
        raise ValueError(f"gan_options must be a dict or None, got {type(gan_options).__name__}")
    if gan is None:
        options = dict(gan_options or {})
        if "seed" in options:
            raise ValueError("gan_options must not hold 'seed': pass seed=...")
        gan = ConditionalGAN(seed=seed, **options).fit(x, y)
    elif not isinstance(gan, ConditionalGAN):
        raise ValueError(f"gan must be a ConditionalGAN or None, got {type(gan).__name__}")
    elif not hasattr(gan, "generator_"):
        gan.fit(x, y)
    if tuple(gan.image_shape_) != tuple(x.shape[1:]):
        raise ValueError(f"gan was fitted on images of shape {gan.image_shape_}, the split has "
                         f"{x.shape[1:]}")
    missing = [c for c, k in counts.items() if k and c not in set(gan.classes_.tolist())]
    if missing:
        raise ValueError(f"gan does not know the classes {missing} (it has "
                         f"{gan.classes_.tolist()})")
    parts, part_labels = [x], [y]
    for i, (c, k) in enumerate(sorted(counts.items())):
        if k:
            fake = gan.sample(k, label=c, seed=int(np.random.SeedSequence([seed, i]).
                                                   generate_state(1)[0] >> 1))
            parts.append(fake.astype(x.dtype, copy=False))
            part_labels.append(np.full(k, c, dtype=np.int64))
    out_x = np.concatenate(parts)
    out_y = np.concatenate(part_labels)
    synthetic = np.zeros(len(out_y), dtype=bool)
    synthetic[len(y):] = True
    return out_x, out_y, synthetic, gan


def expand(dataset, factor=1.0, classes="minority", gan=None, seed=0, gan_options=None):
    """``dataset`` with GAN-generated images added to its training split only.

    The GAN learns from the real training images (rows already marked synthetic are left out),
    never from the validation or test split, which are returned unchanged (the same arrays).

    Parameters
    ----------
    dataset : medfeat.io.Dataset
    factor, classes, gan, seed, gan_options
        As in :func:`expand_split`.

    Returns
    -------
    medfeat.io.Dataset
        The training split holds the real images first, then the synthetic ones;
        ``Dataset.synthetic`` marks the synthetic training rows (earlier marks kept).

    Examples
    --------
    >>> from medfeat.io import make_phantoms
    >>> ds = make_phantoms(n=40, size=32, seed=0)
    >>> big = expand(ds, factor=0.5, classes="all", gan_options={"epochs": 1, "width": 2,
    ...                                                          "verbose": 0})
    >>> big.sizes[0] - ds.sizes[0], int(big.synthetic.sum()), big.test.images is ds.test.images
    (14, 14, True)
    """
    from ..io import Dataset, Split

    if not isinstance(dataset, Dataset):
        raise ValueError(f"dataset must be a medfeat.io.Dataset, got {type(dataset).__name__}")
    images, labels = dataset.train
    marked = getattr(dataset, "synthetic", None)
    real = np.ones(len(labels), dtype=bool) if marked is None else ~np.asarray(marked)
    real_x, real_y = images[real], labels[real]
    xe, ye, syn, _ = expand_split(real_x, real_y, factor=factor, classes=classes, seed=seed,
                                  gan=gan, gan_options=gan_options)
    new_x, new_y = xe[syn], ye[syn]
    train = Split(np.concatenate([images, new_x]), np.concatenate([labels, new_y]))
    mask = np.concatenate([~real, np.ones(len(new_y), dtype=bool)])
    return dataclasses.replace(dataset, train=train, synthetic=mask)


# --------------------------------------------------------------------------- quality
_C2ST_MIN_STEPS = 160


def _pixel_logreg():
    """Standardised pixels into L2 logistic regression (C = 0.1; lbfgs, deterministic): the
    classifier of the ``"logreg"`` two-sample test and of :func:`class_agreement`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))


def two_sample_auc(real, fake, *, seed=0, classifier="logreg", cv=5):
    """Classifier two-sample test: cross-validated ROC AUC of telling ``real`` from ``fake``.

    Equal numbers of each (the larger set subsampled, seeded) are pooled, a classifier is
    trained to separate them in stratified ``cv``-fold cross-validation, and the AUC of its
    out-of-fold scores is returned (Lopez-Paz & Oquab, ICLR 2017). 0.5: the classifier cannot
    tell them apart; 1.0: it always can. Use real images the GAN was *not* trained on, or a
    memorising GAN scores well.

    Parameters
    ----------
    real, fake : ndarray
        Image stacks of one shape (``fake`` converted to ``real``'s dtype); at least ``cv``
        images each.
    seed : int, optional
        Seeds the subsampling, the folds and the classifier.
    classifier : {"logreg", "cnn"}, optional
        ``"logreg"``: standardised pixels, L2 logistic regression (fast; sees intensity and
        layout, not texture). ``"cnn"``: a small :class:`~medfeat.deep.DeepClassifier`
        (width 8, no augmentation, 8 epochs or more, at least 160 steps of 32 images) per
        fold, stronger on local texture and artefacts.
    cv : int, optional
        Folds (>= 2).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random((40, 8, 8)), rng.random((40, 8, 8))
    >>> bool(two_sample_auc(a, b) < 0.75), bool(two_sample_auc(a, b + 0.5) > 0.95)
    (True, True)
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    seed = check_seed(seed)
    if classifier not in ("logreg", "cnn"):
        raise ValueError(f"classifier must be 'logreg' or 'cnn', got {classifier!r}")
    cv = _positive_int(cv, "cv")
    if cv < 2:
        raise ValueError(f"cv must be at least 2, got {cv}")
    a, b = np.asarray(real), np.asarray(fake)
    for name, arr in (("real", a), ("fake", b)):
        if arr.dtype.kind not in "buif" or arr.ndim < 2:
            raise ValueError(f"{name} must be a stack of real-valued images, got dtype "
                             f"{arr.dtype} and shape {arr.shape}")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"fake images have shape {b.shape[1:]}, real ones {a.shape[1:]}")
    m = min(len(a), len(b))
    if m < cv:
        raise ValueError(f"real and fake need at least cv={cv} images each, got {len(a)} and "
                         f"{len(b)}")
    rng = np.random.default_rng(seed)
    a = a[np.sort(rng.choice(len(a), m, replace=False))]
    b = b[np.sort(rng.choice(len(b), m, replace=False))].astype(a.dtype, copy=False)
    X = np.concatenate([a, b])
    y = np.repeat([0, 1], m)
    scores = np.empty(len(y))
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    for tr, te in folds:
        if classifier == "logreg":
            flat = X.reshape(len(X), -1).astype(np.float64)
            model = _pixel_logreg()
            model.fit(flat[tr], y[tr])
            scores[te] = model.predict_proba(flat[te])[:, 1]
        else:
            from .training import DeepClassifier

            # at least 8 epochs and _C2ST_MIN_STEPS optimiser steps: a fold of a few dozen
            # images gets a few steps per epoch, too few to learn even a plain shift
            epochs = max(8, math.ceil(_C2ST_MIN_STEPS / math.ceil(len(tr) / 32)))
            model = DeepClassifier("cnn", epochs=epochs, batch_size=32, seed=seed, augment=None,
                                   class_weight=None, verbose=0, lr=1e-3,
                                   model_options={"width": 8, "dense": 32, "pool": "avg",
                                                  "dropout": 0.0})
            model.fit(X[tr], y[tr])
            scores[te] = model.predict_proba(X[te])[:, 1]
    return float(roc_auc_score(y, scores))


def class_agreement(images, labels, fake, fake_labels, *, seed=0):
    """Share of generated images that a classifier trained on the real ones assigns to the class
    they were generated for.

    The classifier is L2 logistic regression on standardised pixels (as the ``"logreg"``
    two-sample test), fitted on ``images`` / ``labels``. Near 1: the generator draws what makes
    each class; near chance (1 / number of classes): the generated labels carry no class, and
    adding the images to a training split adds label noise.

    Parameters
    ----------
    images, labels : ndarray
        Real images and their integer class labels (at least two classes).
    fake, fake_labels : ndarray
        Generated images (same image shape) and the classes they were requested for.
    seed : int, optional
        Checked only: the classifier's solver (lbfgs) draws nothing at random, so the figure is
        the same for every seed (the argument keeps the signature of :func:`two_sample_auc`).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.random((20, 8, 8)), rng.random((20, 8, 8)) + 1])
    >>> y = np.repeat([0, 1], 20)
    >>> class_agreement(x, y, x[::-1], y[::-1]), class_agreement(x, y, x, 1 - y)
    (1.0, 0.0)
    """
    check_seed(seed)
    x, f = _check_images(images), _check_images(fake, "fake")
    if x.shape[1:] != f.shape[1:]:
        raise ValueError(f"fake images have shape {f.shape[1:]}, real ones {x.shape[1:]}")
    y = _check_labels(labels, len(x))
    yf = _check_labels(fake_labels, len(f), "fake_labels")
    if np.unique(y).size < 2:
        raise ValueError("labels must hold at least two classes")
    model = _pixel_logreg()
    model.fit(x.reshape(len(x), -1).astype(np.float64), y)
    pred = model.predict(f.reshape(len(f), -1).astype(np.float64))
    return float(np.mean(pred == yf))


def plot_samples(gan, real_images, real_labels, path, n_per_class=8, *, seed=None, dpi=100):
    """A PNG grid: per class, ``n_per_class`` real images beside as many generated ones.

    Parameters
    ----------
    gan : ConditionalGAN
        Fitted.
    real_images : ndarray
        ``(n, H, W)`` or ``(n, H, W, C)`` grey or RGB images.
    real_labels : array_like
        ``(n,)`` class labels; classes with no real image show generated ones only.
    path : str or os.PathLike
        The PNG to write (atomically: a temporary file in the same folder, then renamed).
    n_per_class : int, optional
    seed : int, optional
        Seeds the generated images (default: the GAN's seed).
    dpi : int, optional

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    >>> gan = ConditionalGAN(epochs=1, batch_size=4, width=2, verbose=0).fit(x, [0, 1] * 4)
    >>> out = plot_samples(gan, x, [0, 1] * 4, os.path.join(tempfile.mkdtemp(), "s.png"), 2)
    >>> out.read_bytes()[:4] == b"\\x89PNG"
    True
    """
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(gan, ConditionalGAN):
        raise ValueError(f"gan must be a ConditionalGAN, got {type(gan).__name__}")
    gan._check_fitted()
    x = _check_images(real_images, "real_images")
    y = _check_labels(real_labels, len(x), "real_labels")
    k = _positive_int(n_per_class, "n_per_class")
    dpi = _positive_int(dpi, "dpi")
    path = Path(os.fspath(path))
    if not path.parent.is_dir():
        raise ValueError(f"path must be in an existing folder, {str(path.parent)!r} is not one")
    low, high = gan.value_range_
    span = high - low if high > low else 1.0

    def show(ax, img):
        img = (np.asarray(img, dtype=np.float64) - low) / span
        img = np.clip(img, 0, 1)
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)

    classes = gan.classes_
    fig = Figure(figsize=(0.9 * (2 * k + 1), 1.0 * len(classes) + 0.4), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(classes), 2 * k + 1, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    rng = np.random.default_rng(check_seed(gan.seed if seed is None else seed))
    for r, c in enumerate(classes.tolist()):
        reals = np.flatnonzero(y == c)
        reals = reals[np.sort(rng.choice(len(reals), min(k, len(reals)), replace=False))] \
            if len(reals) else reals
        for j, i in enumerate(reals):
            show(axes[r, j], x[i])
        fakes = gan.sample(k, label=c, seed=int(rng.integers(2**31)))
        for j in range(k):
            show(axes[r, k + 1 + j], fakes[j])
        axes[r, 0].set_title(f"class {c}: real", fontsize=7, loc="left")
        axes[r, k + 1].set_title("generated", fontsize=7, loc="left")
    fig.tight_layout()
    from .explain import _save_png

    return _save_png(fig, path)
