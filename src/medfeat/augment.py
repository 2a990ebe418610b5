"""Seeded augmentations for stacks of images, shared by the classical and the deep road.

Every operation works on a stack ``(n, H, W)`` or ``(n, H, W, C)`` (one image: ``image[None]``),
draws its random parameters per image from a NumPy ``Generator``, and never writes to its input.
:class:`Compose` chains operations and gives back the input's shape and dtype (integers rounded
and clipped to their range); the same seed gives the same output.

===========================  ====================================================================
operation                    strength argument (0 leaves the images unchanged)
===========================  ====================================================================
:class:`GaussianNoise`       ``sigma``: standard deviation, in the images' own units
:class:`GaussianBlur`        ``sigma``: blur radius range in pixels
:class:`Flip`                ``axis``: "horizontal" / "vertical", probability ``p``
:class:`Rotate`              ``degrees``: angle range, counter-clockwise as displayed
:class:`Scale`               ``scale``: zoom factor range around 1
:class:`ShiftScaleRotate`    ``shift`` (fraction of the side), ``scale``, ``degrees``
:class:`GridDistortion`      ``distort``: relative change of grid-cell sizes
:class:`ElasticDeformation`  ``alpha`` (displacement in pixels), ``sigma`` (smoothness)
:class:`IntensityJitter`     ``brightness`` (fraction of an image's range), ``contrast``, ``gamma``
===========================  ====================================================================

Volumes (CT, MR) have their own geometric operations; they take one volume ``(D, H, W)``, a stack
``(n, D, H, W)`` or a stack with channels ``(n, D, H, W, C)``, and so does a :class:`Compose` that
holds one of them (:class:`GaussianNoise`, :class:`GaussianBlur` and :class:`IntensityJitter` work
on volumes too; the 2-D geometric operations do not):

===========================  ====================================================================
:class:`VolumeFlip`          ``axes`` flipped independently, probability ``p`` each
:class:`VolumeRot90`         rotation by a random multiple of 90 degrees about each of ``axes``
:class:`VolumeAffine`        ``degrees`` about each axis, ``scale``, ``shift`` (trilinear)
:class:`VolumeElastic`       ``alpha`` (displacement in voxels), ``sigma`` (smoothness)
===========================  ====================================================================

Training uses them through :func:`medfeat.deep.train` (``augment=Compose([...])`` or a
:func:`preset` name): each epoch's shuffled copy of the training images is augmented, validation
and test images never are. :func:`medfeat.deep.keras_layers` translates the geometric and
intensity operations into Keras' own random layers instead, to put inside a model (active in
training only); this module never imports Keras.

Examples
--------
>>> import numpy as np
>>> from medfeat.augment import Compose, Flip, GaussianNoise
>>> images = np.zeros((4, 8, 8), np.float32)
>>> out = Compose([Flip("horizontal"), GaussianNoise(0.1)])(images, seed=0)
>>> out.shape, out.dtype
((4, 8, 8), dtype('float32'))
"""

import numbers

import numpy as np
from scipy import ndimage

__all__ = ["Compose", "ElasticDeformation", "Flip", "GaussianBlur", "GaussianNoise",
           "GridDistortion", "IntensityJitter", "Op", "Rotate", "Scale", "ShiftScaleRotate",
           "VolumeAffine", "VolumeElastic", "VolumeFlip", "VolumeOp", "VolumeRot90", "augment",
           "preset"]

_MODES = ("reflect", "nearest", "constant", "mirror", "wrap")


# --------------------------------------------------------------------------- helpers
def _check_stack(images, name="images"):
    images = np.asarray(images)
    if images.dtype.kind not in "buif":
        raise ValueError(f"{name} must hold real numbers, got dtype {images.dtype}")
    if images.ndim not in (3, 4) or 0 in images.shape:
        raise ValueError(f"{name} must be a non-empty stack (n, H, W) or (n, H, W, C), got shape "
                         f"{images.shape}")
    return images


def _work_dtype(dtype):
    return np.float32 if dtype == np.float32 else np.float64


def _restore(out, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return out.astype(dtype, copy=False)
    if dtype.kind == "b":
        return out >= 0.5
    info = np.iinfo(dtype)
    return np.clip(np.rint(out), info.min, info.max).astype(dtype)


def _check_prob(p):
    if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    return float(p)


def _range(value, name, *, center=0.0, low=None):
    """A scalar ``v`` means ``(center - v, center + v)``; a pair is taken as given."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
        lo, hi = center - float(value), center + float(value)
    else:
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}") \
                from exc
        if lo > hi:
            raise ValueError(f"{name}: low {lo} > high {hi}")
    if low is not None and lo < low:
        raise ValueError(f"{name} must stay >= {low}, got range ({lo}, {hi})")
    return lo, hi


def _fixed_or_range(value, name):
    """A scalar is used as it is, a ``(low, high)`` pair is drawn from; both must be >= 0."""
    if isinstance(value, numbers.Real):
        lo_hi = (float(value), float(value))
    else:
        lo_hi = _range(value, name, low=0.0)
    if lo_hi[0] < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return lo_hi


def _check_mode(mode):
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    return mode


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or seed < 0):
        raise ValueError(f"seed must be None, a non-negative integer or a numpy Generator, got "
                         f"{seed!r}")
    return np.random.default_rng(seed)


def _apply_map(image, coords, mode, cval, order):
    """Sample ``image`` (H, W[, C]) at ``coords`` (2, H, W), channel by channel."""
    if image.ndim == 2:
        return ndimage.map_coordinates(image, coords, order=order, mode=mode, cval=cval)
    return np.stack([ndimage.map_coordinates(image[..., c], coords, order=order, mode=mode,
                                             cval=cval) for c in range(image.shape[-1])], axis=-1)


def _affine(image, angle, scale, shift, mode, cval, order):
    """Rotate by ``angle`` degrees (counter-clockwise as displayed, as ``np.rot90``), zoom by
    ``scale`` about the centre, and shift by ``shift`` (rows, cols) pixels."""
    h, w = image.shape[:2]
    theta = np.deg2rad(angle)
    c, s = np.cos(theta), np.sin(theta)
    # snap the trigonometry of exact multiples of 90 degrees, so those rotations are exact
    c, s = (round(c) if abs(c - round(c)) < 1e-12 else c), (round(s) if abs(s - round(s)) < 1e-12
                                                            else s)
    # output (r, q) -> input: inverse of p_out = centre + scale * R (p_in - centre) + shift, with
    # R the counter-clockwise rotation in (row, col) coordinates (row axis pointing down)
    inv = np.array([[c, s], [-s, c]]) / scale
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    offset = centre - inv @ (centre + np.asarray(shift, dtype=np.float64))
    if image.ndim == 2:
        return ndimage.affine_transform(image, inv, offset, order=order, mode=mode, cval=cval)
    return np.stack([ndimage.affine_transform(image[..., k], inv, offset, order=order, mode=mode,
                                              cval=cval) for k in range(image.shape[-1])], axis=-1)


# --------------------------------------------------------------------------- operations
class Op:
    """Base class: ``op(images, rng) -> images`` on a float working copy, with probability ``p``
    per image. Subclasses implement ``_draw(rng, n)`` (parameters per image) and
    ``_apply_one(image, params)``; ``_identity(params)`` says when an image is left as it is.

    Examples
    --------
    >>> import numpy as np
    >>> op = Flip("horizontal", p=1)           # every operation here is an Op
    >>> isinstance(op, Op), op(np.arange(4.0).reshape(1, 2, 2), rng=0)[0].tolist()
    (True, [[1.0, 0.0], [3.0, 2.0]])
    """

    p = 1.0
    #: True for operations that work unchanged on volumes (no geometry of the plane).
    _any_rank = False

    def __call__(self, images, rng=None):
        rng = _rng(rng)
        images = _check_stack(images)
        dtype = images.dtype
        work = images.astype(_work_dtype(dtype), copy=True)
        out = self._apply(work, rng)
        return _restore(out, dtype)

    def _apply(self, work, rng):
        n = len(work)
        chosen = rng.random(n) < self.p
        params = self._draw(rng, n)
        for i in np.flatnonzero(chosen):
            one = {k: v[i] for k, v in params.items()}
            if not self._identity(one):
                work[i] = self._apply_one(work[i], one)
        return work

    def _draw(self, rng, n):
        return {}

    def _identity(self, params):
        return False

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class GaussianNoise(Op):
    """Add zero-mean Gaussian noise of standard deviation ``sigma`` (in the images' units).

    Works on volumes too (inside a :class:`Compose` with a volume operation).

    Parameters
    ----------
    sigma : float or (low, high)
        A pair draws one standard deviation per image uniformly from it.
    p : float

    Examples
    --------
    >>> import numpy as np
    >>> out = GaussianNoise(0.5)(np.zeros((2, 64, 64)), np.random.default_rng(0))
    >>> bool(0.45 < out.std() < 0.55)
    True
    """

    _any_rank = True

    def __init__(self, sigma=0.05, *, p=1.0):
        self.sigma = sigma
        self.p = _check_prob(p)
        self._range = _fixed_or_range(sigma, "sigma")

    @property
    def sigma_range(self):
        """``(low, high)`` of the noise's standard deviation (equal for a fixed one)."""
        return tuple(self._range)

    def _draw(self, rng, n):
        return {"sigma": rng.uniform(*self._range, n)}

    def _identity(self, params):
        return params["sigma"] == 0

    def _apply(self, work, rng):
        n = len(work)
        chosen = rng.random(n) < self.p
        sigma = self._draw(rng, n)["sigma"] * chosen
        noise = rng.standard_normal(work.shape).astype(work.dtype, copy=False)
        work += noise * sigma.reshape((n,) + (1,) * (work.ndim - 1)).astype(work.dtype)
        return work


class GaussianBlur(Op):
    """Gaussian blur with a radius ``sigma`` (pixels) drawn per image; channels are not mixed.

    On volumes (inside a :class:`Compose` with a volume operation) it blurs all three axes.

    Parameters
    ----------
    sigma : float or (low, high)
        A scalar blurs every chosen image with that ``sigma``.
    p : float
    mode : str
        Border handling (``scipy.ndimage``).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((1, 9, 9)); img[0, 4, 4] = 1
    >>> out = GaussianBlur(1.0)(img)
    >>> round(float(out.sum()), 6), bool(out[0, 4, 4] < 1)
    (1.0, True)
    """

    _any_rank = True

    def __init__(self, sigma=(0.1, 1.0), *, p=1.0, mode="reflect"):
        self.sigma = sigma
        self.p = _check_prob(p)
        self.mode = _check_mode(mode)
        self._range = _fixed_or_range(sigma, "sigma")

    def _draw(self, rng, n):
        return {"sigma": rng.uniform(*self._range, n)}

    def _identity(self, params):
        return params["sigma"] == 0

    def _apply_one(self, image, params):
        # (H, W), (H, W, C), or a volume (D, H, W, C) inside a volume Compose: the last axis of a
        # 3-D or 4-D item is its channel axis and is not blurred
        s = params["sigma"]
        sig = (s, s) if image.ndim == 2 else (s,) * (image.ndim - 1) + (0,)
        return ndimage.gaussian_filter(image, sig, mode=self.mode)


class Flip(Op):
    """Mirror images left-right (``"horizontal"``) or top-bottom (``"vertical"``) with
    probability ``p``. Exact: pixels are only moved.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(8.0).reshape(1, 2, 4)
    >>> bool(np.array_equal(Flip("horizontal", p=1)(x), x[:, :, ::-1]))
    True
    """

    def __init__(self, axis="horizontal", *, p=0.5):
        if axis not in ("horizontal", "vertical"):
            raise ValueError(f"axis must be 'horizontal' or 'vertical', got {axis!r}")
        self.axis = axis
        self.p = _check_prob(p)

    def _apply(self, work, rng):
        chosen = rng.random(len(work)) < self.p
        if self.axis == "horizontal":
            work[chosen] = work[chosen][:, :, ::-1]
        else:
            work[chosen] = work[chosen][:, ::-1]
        return work


class ShiftScaleRotate(Op):
    """Random affine transform per image: shift, zoom about the centre, and rotation.

    Parameters
    ----------
    shift : float or (low, high)
        Shift as a fraction of the side, drawn independently for rows and columns.
    scale : float or (low, high)
        A scalar ``s`` draws zoom factors from ``(1 - s, 1 + s)``; a pair is taken as given.
    degrees : float or (low, high)
        Rotation angle (counter-clockwise as displayed, the direction of ``np.rot90``).
    p : float
    mode, cval : border handling (``scipy.ndimage``)
    order : int
        Spline order of the interpolation (1: bilinear).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((1, 6, 6))
    >>> out = ShiftScaleRotate(0, 0, (90, 90))(x)
    >>> bool(np.allclose(out[0], np.rot90(x[0])))
    True
    """

    def __init__(self, shift=0.0625, scale=0.1, degrees=15, *, p=1.0, mode="reflect", cval=0.0,
                 order=1):
        self.shift = shift
        self.scale = scale
        self.degrees = degrees
        self.p = _check_prob(p)
        self.mode = _check_mode(mode)
        self.cval = float(cval)
        if order not in (0, 1, 2, 3, 4, 5):
            raise ValueError(f"order must be an integer 0..5, got {order!r}")
        self.order = order
        self._shift = _range(shift, "shift")
        if isinstance(scale, numbers.Real):
            if scale < 0 or scale >= 1:
                raise ValueError(f"scale must be in [0, 1) or a (low, high) pair, got {scale!r}")
            self._scale = (1 - float(scale), 1 + float(scale))
        else:
            self._scale = _range(scale, "scale")
            if self._scale[0] <= 0:
                raise ValueError(f"scale factors must be > 0, got {scale!r}")
        self._degrees = _range(degrees, "degrees")

    @property
    def shift_range(self):
        """``(low, high)`` of the shift, a fraction of the image size."""
        return tuple(self._shift)

    @property
    def scale_range(self):
        """``(low, high)`` of the scale factor."""
        return tuple(self._scale)

    @property
    def degrees_range(self):
        """``(low, high)`` of the rotation in degrees."""
        return tuple(self._degrees)

    def _draw(self, rng, n):
        return {"shift": rng.uniform(*self._shift, (n, 2)), "scale": rng.uniform(*self._scale, n),
                "angle": rng.uniform(*self._degrees, n)}

    def _identity(self, params):
        return params["angle"] % 360 == 0 and params["scale"] == 1 and not np.any(params["shift"])

    def _apply_one(self, image, params):
        shift = params["shift"] * np.array(image.shape[:2], dtype=np.float64)
        return _affine(image, params["angle"], params["scale"], shift, self.mode, self.cval,
                       self.order)


class Rotate(ShiftScaleRotate):
    """Rotation by an angle drawn from ``degrees`` (counter-clockwise as displayed).

    ``Rotate((90, 90))`` equals ``np.rot90`` for square images.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).random((2, 5, 5))
    >>> bool(np.allclose(Rotate((-90, -90))(x), np.rot90(x, -1, axes=(1, 2))))
    True
    """

    def __init__(self, degrees=15, *, p=1.0, mode="reflect", cval=0.0, order=1):
        super().__init__(0.0, 0.0, degrees, p=p, mode=mode, cval=cval, order=order)


class Scale(ShiftScaleRotate):
    """Zoom about the centre by a factor drawn from ``scale`` (``s`` means ``(1-s, 1+s)``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).random((2, 5, 5))
    >>> bool(np.array_equal(Scale(0)(x), x))
    True
    """

    def __init__(self, scale=0.1, *, p=1.0, mode="reflect", cval=0.0, order=1):
        super().__init__(0.0, scale, 0.0, p=p, mode=mode, cval=cval, order=order)


class GridDistortion(Op):
    """Grid distortion: the image is cut into ``steps x steps`` cells whose widths and heights
    are changed by random factors in ``(1 - distort, 1 + distort)``, piecewise linearly.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).random((2, 16, 16))
    >>> out = GridDistortion(steps=4, distort=0.3)(x, np.random.default_rng(0))
    >>> out.shape, bool(np.array_equal(GridDistortion(distort=0)(x), x))
    ((2, 16, 16), True)
    """

    def __init__(self, steps=5, distort=0.3, *, p=1.0, mode="reflect", cval=0.0, order=1):
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if not isinstance(distort, numbers.Real) or not 0 <= distort < 1:
            raise ValueError(f"distort must be in [0, 1), got {distort!r}")
        self.steps = int(steps)
        self.distort = float(distort)
        self.p = _check_prob(p)
        self.mode = _check_mode(mode)
        self.cval = float(cval)
        self.order = order

    def _draw(self, rng, n):
        d = self.distort
        return {"rows": rng.uniform(1 - d, 1 + d, (n, self.steps)),
                "cols": rng.uniform(1 - d, 1 + d, (n, self.steps))}

    def _identity(self, params):
        return self.distort == 0

    def _axis_map(self, length, factors):
        # output cell edges are evenly spaced; input edges are spaced by the drawn factors
        out_edges = np.linspace(0, length - 1, self.steps + 1)
        widths = factors / factors.sum() * (length - 1)
        in_edges = np.concatenate([[0.0], np.cumsum(widths)])
        return np.interp(np.arange(length, dtype=np.float64), out_edges, in_edges)

    def _apply_one(self, image, params):
        h, w = image.shape[:2]
        rows = self._axis_map(h, params["rows"])
        cols = self._axis_map(w, params["cols"])
        coords = np.stack(np.meshgrid(rows, cols, indexing="ij"))
        return _apply_map(image, coords, self.mode, self.cval, self.order)


class ElasticDeformation(Op):
    """Elastic deformation (Simard et al., 2003): random displacement fields smoothed by a
    Gaussian of ``sigma`` pixels and scaled so that their largest value is about ``alpha`` pixels.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).random((2, 16, 16))
    >>> bool(np.array_equal(ElasticDeformation(alpha=0)(x), x))
    True
    """

    def __init__(self, alpha=2.0, sigma=4.0, *, p=1.0, mode="reflect", cval=0.0, order=1):
        if not isinstance(alpha, numbers.Real) or alpha < 0:
            raise ValueError(f"alpha must be >= 0 (pixels), got {alpha!r}")
        if not isinstance(sigma, numbers.Real) or sigma <= 0:
            raise ValueError(f"sigma must be > 0 (pixels), got {sigma!r}")
        self.alpha = float(alpha)
        self.sigma = float(sigma)
        self.p = _check_prob(p)
        self.mode = _check_mode(mode)
        self.cval = float(cval)
        self.order = order

    def _identity(self, params):
        return self.alpha == 0

    def _apply(self, work, rng):
        n, h, w = work.shape[:3]
        chosen = rng.random(n) < self.p
        fields = rng.uniform(-1, 1, (n, 2, h, w))
        if self.alpha == 0:
            return work
        rr, qq = np.mgrid[0:h, 0:w].astype(np.float64)
        for i in np.flatnonzero(chosen):
            d = np.stack([ndimage.gaussian_filter(fields[i, k], self.sigma, mode="constant")
                          for k in range(2)])
            peak = np.abs(d).max()
            if peak > 0:
                d *= self.alpha / peak
            work[i] = _apply_map(work[i], np.stack([rr + d[0], qq + d[1]]), self.mode, self.cval,
                                 self.order)
        return work


class IntensityJitter(Op):
    """Random brightness, contrast and gamma per image.

    ``x -> (x - mean) * c + mean + b * range`` with ``c`` from ``(1 - contrast, 1 + contrast)``
    and ``b`` from ``(-brightness, brightness)``, ``mean`` and ``range`` (max - min) of each image;
    then, if ``gamma`` > 0, a gamma curve ``g`` from ``(1 - gamma, 1 + gamma)`` applied to the
    image's values rescaled to [0, 1] within its original range. Works on volumes too (inside a
    :class:`Compose` with a volume operation), with the statistics of each whole volume.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).random((2, 8, 8))
    >>> bool(np.array_equal(IntensityJitter(0, 0, 0)(x), x))
    True
    """

    _any_rank = True

    def __init__(self, brightness=0.1, contrast=0.1, gamma=0.0, *, p=1.0):
        for name, v in (("brightness", brightness), ("contrast", contrast), ("gamma", gamma)):
            if not isinstance(v, numbers.Real) or v < 0:
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        if contrast >= 1 or gamma >= 1:
            raise ValueError(f"contrast and gamma must be < 1, got {contrast!r}, {gamma!r}")
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.gamma = float(gamma)
        self.p = _check_prob(p)

    def _draw(self, rng, n):
        return {"b": rng.uniform(-self.brightness, self.brightness, n),
                "c": rng.uniform(1 - self.contrast, 1 + self.contrast, n),
                "g": rng.uniform(1 - self.gamma, 1 + self.gamma, n)}

    def _identity(self, params):
        return params["b"] == 0 and params["c"] == 1 and params["g"] == 1

    def _apply_one(self, image, params):
        lo, hi = image.min(), image.max()
        span = hi - lo
        mean = image.mean()
        out = (image - mean) * params["c"] + mean + params["b"] * span
        if params["g"] != 1 and span > 0:
            t = np.clip((out - lo) / span, 0, 1)
            out = lo + span * t ** params["g"]
        return out


# --------------------------------------------------------------------------- volumes
def _check_volumes(images, name="images"):
    """``(D, H, W)``, ``(n, D, H, W)`` or ``(n, D, H, W, C)`` as a 5-D view, and its shape."""
    images = np.asarray(images)
    if images.dtype.kind not in "buif":
        raise ValueError(f"{name} must hold real numbers, got dtype {images.dtype}")
    if images.ndim not in (3, 4, 5) or 0 in images.shape:
        raise ValueError(f"{name} must be a non-empty volume (D, H, W), a stack (n, D, H, W) or "
                         f"(n, D, H, W, C), got shape {images.shape}")
    if images.ndim == 3:
        return images[None, ..., None], images.shape
    if images.ndim == 4:
        return images[..., None], images.shape
    return images, images.shape


def _volume_call(ops, images, rng):
    """Apply ``ops`` to volumes: a float 5-D working copy, then the input's shape and dtype."""
    view, shape = _check_volumes(images)
    for op in ops:
        if isinstance(op, Op) and not (isinstance(op, VolumeOp) or op._any_rank):
            raise ValueError(f"ops: {type(op).__name__} transforms 2-D images; on volumes use "
                             "VolumeFlip, VolumeRot90, VolumeAffine or VolumeElastic")
    dtype = view.dtype
    work = view.astype(_work_dtype(dtype), copy=True)
    for op in ops:
        if isinstance(op, Op):
            work = op._apply(work, rng)
        else:
            work = np.asarray(op(work, rng), dtype=work.dtype)
    return _restore(work, dtype).reshape(shape)


class VolumeOp(Op):
    """Base class of the volume operations: ``op(volumes, rng) -> volumes``.

    Accepts one volume ``(D, H, W)``, a stack ``(n, D, H, W)`` or ``(n, D, H, W, C)``; the
    spatial axes ``0, 1, 2`` of the arguments below are depth, height and width. Subclasses see
    each volume as ``(D, H, W, C)`` in ``_apply_one``.

    Examples
    --------
    >>> import numpy as np
    >>> op = VolumeFlip(axes=0, p=1)
    >>> v = np.arange(8.0).reshape(2, 2, 2)
    >>> isinstance(op, VolumeOp), bool(np.array_equal(op(v, rng=0), v[::-1]))
    (True, True)
    """

    def __call__(self, images, rng=None):
        return _volume_call([self], images, _rng(rng))


def _check_axes(axes, name="axes"):
    if isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        axes = (axes,)
    try:
        axes = tuple(axes)
    except TypeError:
        axes = None
    if not axes or any(isinstance(a, bool) or not isinstance(a, numbers.Integral)
                       or a not in (0, 1, 2) for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"{name} must be distinct spatial axes among 0 (depth), 1 (height) and "
                         f"2 (width), got {axes!r}")
    return tuple(int(a) for a in axes)


def _check_order(order):
    if isinstance(order, bool) or order not in (0, 1, 2, 3, 4, 5):
        raise ValueError(f"order must be an integer 0..5, got {order!r}")
    return int(order)


class VolumeFlip(VolumeOp):
    """Mirror volumes along each of ``axes``, independently, with probability ``p`` each. Exact.

    Parameters
    ----------
    axes : int or sequence of int
        Spatial axes: 0 depth, 1 height, 2 width (left-right in axial CT).
    p : float
        Probability per volume and axis.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.arange(24.0).reshape(2, 3, 4)
    >>> bool(np.array_equal(VolumeFlip(axes=0, p=1)(v), v[::-1]))
    True
    """

    def __init__(self, axes=(0, 1, 2), *, p=0.5):
        self.axes = _check_axes(axes)
        self.p = _check_prob(p)

    def _apply(self, work, rng):
        flips = rng.random((len(work), len(self.axes))) < self.p
        for i in np.flatnonzero(flips.any(axis=1)):
            axes = tuple(a for a, f in zip(self.axes, flips[i]) if f)
            work[i] = np.flip(work[i], axes)
        return work


class VolumeRot90(VolumeOp):
    """Rotate volumes about each of ``axes`` by a random multiple of 90 degrees. Exact.

    About axis 0 the (height, width) plane turns as :func:`numpy.rot90` with ``axes=(1, 2)``
    turns it, about axis 1 the (depth, width) plane, about axis 2 the (depth, height) plane; the
    number of quarter turns ``k`` is drawn uniformly from 0..3 per volume and axis. A plane that
    is not square only gets ``k`` of 0 or 2, which keep the shape.

    Parameters
    ----------
    axes : int or sequence of int
        Rotation axes, 0 (depth), 1 (height), 2 (width).
    p : float
        Probability per volume of rotating at all.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.random.default_rng(0).random((4, 4, 4))
    >>> out = VolumeRot90(axes=0, p=1)(v, np.random.default_rng(1))
    >>> any(np.array_equal(out, np.rot90(v, k, axes=(1, 2))) for k in range(4))
    True
    """

    #: The plane each axis turns: the other two spatial axes of a ``(D, H, W)`` volume.
    PLANES = {0: (1, 2), 1: (0, 2), 2: (0, 1)}

    def __init__(self, axes=(0,), *, p=1.0):
        self.axes = _check_axes(axes)
        self.p = _check_prob(p)

    def _draw(self, rng, n):
        return {"k": rng.integers(0, 4, (n, len(self.axes)))}

    def _identity(self, params):
        return not np.any(params["k"])

    def _apply_one(self, image, params):
        for axis, k in zip(self.axes, params["k"]):
            plane = self.PLANES[axis]
            if image.shape[plane[0]] != image.shape[plane[1]]:
                k -= k % 2  # quarter turns would change the shape: 0, 1 -> 0 and 2, 3 -> 2
            image = np.rot90(image, int(k), axes=plane)
        return image


class VolumeAffine(VolumeOp):
    """Random small rotations about each axis, an isotropic zoom and a shift, per volume.

    The output voxel ``p`` samples the input at ``c + A (p - c - t)``, with ``c`` the centre,
    ``t`` the shift, and ``A = R_0(-a_0) R_1(-a_1) R_2(-a_2) / s``: rotations by angles drawn
    from ``degrees`` about each of ``axes`` (in the plane of the other two axes, in the direction
    of :func:`numpy.rot90` for that plane, so 90 degrees about axis 0 equals
    ``np.rot90(v, 1, axes=(1, 2))`` on a cube) and a zoom factor ``s`` drawn from ``scale``.
    Interpolation by :func:`scipy.ndimage.affine_transform` (spline ``order``, 1: trilinear).

    Parameters
    ----------
    degrees : float or (low, high)
        Angle range for each rotation axis (a scalar ``d`` means ``(-d, d)``).
    scale : float or (low, high)
        ``s`` means zoom factors in ``(1 - s, 1 + s)``; a pair is taken as given.
    shift : float or (low, high)
        Shift as a fraction of each side, drawn per axis.
    axes : int or sequence of int
        Axes rotated about (default all three).
    p : float
    mode, cval : border handling (``scipy.ndimage``)
    order : int

    Examples
    --------
    >>> import numpy as np
    >>> v = np.random.default_rng(0).random((5, 5, 5))
    >>> out = VolumeAffine((90, 90), 0, axes=0)(v)
    >>> bool(np.allclose(out, np.rot90(v, 1, axes=(1, 2))))
    True
    """

    def __init__(self, degrees=10, scale=0.1, shift=0.0, *, axes=(0, 1, 2), p=1.0,
                 mode="reflect", cval=0.0, order=1):
        self.degrees = degrees
        self.scale = scale
        self.shift = shift
        self.axes = _check_axes(axes)
        self.p = _check_prob(p)
        self.mode = _check_mode(mode)
        self.cval = float(cval)
        self.order = _check_order(order)
        self._degrees = _range(degrees, "degrees")
        if isinstance(scale, numbers.Real) and not isinstance(scale, bool):
            if not 0 <= scale < 1:
                raise ValueError(f"scale must be in [0, 1) or a (low, high) pair, got {scale!r}")
            self._scale = (1 - float(scale), 1 + float(scale))
        else:
            self._scale = _range(scale, "scale")
            if self._scale[0] <= 0:
                raise ValueError(f"scale factors must be > 0, got {scale!r}")
        self._shift = _range(shift, "shift")

    def _draw(self, rng, n):
        return {"angles": rng.uniform(*self._degrees, (n, len(self.axes))),
                "scale": rng.uniform(*self._scale, n), "shift": rng.uniform(*self._shift, (n, 3))}

    def _identity(self, params):
        return (not np.any(params["angles"] % 360) and params["scale"] == 1
                and not np.any(params["shift"]))

    def _apply_one(self, image, params):
        inv = np.eye(3)
        for axis, angle in zip(self.axes, params["angles"]):
            theta = np.deg2rad(angle)
            c, s = np.cos(theta), np.sin(theta)
            # exact multiples of 90 degrees stay exact (no 1e-17 leaking into the matrix)
            c, s = (float(round(c)) if abs(c - round(c)) < 1e-12 else c,
                    float(round(s)) if abs(s - round(s)) < 1e-12 else s)
            i, j = VolumeRot90.PLANES[axis]
            r = np.eye(3)
            r[i, i], r[i, j], r[j, i], r[j, j] = c, s, -s, c
            inv = inv @ r
        inv = inv / params["scale"]
        shape = np.array(image.shape[:3], dtype=np.float64)
        centre = (shape - 1) / 2
        offset = centre - inv @ (centre + params["shift"] * shape)
        return np.stack([ndimage.affine_transform(image[..., k], inv, offset, order=self.order,
                                                  mode=self.mode, cval=self.cval)
                         for k in range(image.shape[-1])], axis=-1)


class VolumeElastic(VolumeOp):
    """Elastic deformation of volumes (Simard et al., 2003, in 3-D): three random displacement
    fields smoothed by a Gaussian of ``sigma`` voxels, scaled so that their largest value is
    ``alpha`` voxels, then trilinear resampling (spline ``order``).

    Examples
    --------
    >>> import numpy as np
    >>> v = np.random.default_rng(0).random((8, 8, 8))
    >>> out = VolumeElastic(alpha=1.5, sigma=3)(v, np.random.default_rng(0))
    >>> out.shape, bool(np.array_equal(VolumeElastic(alpha=0)(v), v))
    ((8, 8, 8), True)
    """

    def __init__(self, alpha=2.0, sigma=4.0, *, p=1.0, mode="reflect", cval=0.0, order=1):
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or alpha < 0:
            raise ValueError(f"alpha must be >= 0 (voxels), got {alpha!r}")
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or sigma <= 0:
            raise ValueError(f"sigma must be > 0 (voxels), got {sigma!r}")
        self.alpha = float(alpha)
        self.sigma = float(sigma)
        self.p = _check_prob(p)
        self.mode = _check_mode(mode)
        self.cval = float(cval)
        self.order = _check_order(order)

    def _apply(self, work, rng):
        n, d, h, w = work.shape[:4]
        chosen = rng.random(n) < self.p
        if self.alpha == 0:
            return work
        grid = np.mgrid[0:d, 0:h, 0:w].astype(np.float64)
        for i in np.flatnonzero(chosen):
            field = rng.uniform(-1, 1, (3, d, h, w))
            disp = np.stack([ndimage.gaussian_filter(field[k], self.sigma, mode="constant")
                             for k in range(3)])
            peak = np.abs(disp).max()
            if peak > 0:
                disp *= self.alpha / peak
            coords = grid + disp
            work[i] = np.stack([ndimage.map_coordinates(work[i, ..., c], coords, order=self.order,
                                                        mode=self.mode, cval=self.cval)
                                for c in range(work.shape[-1])], axis=-1)
        return work


# --------------------------------------------------------------------------- composition
class Compose:
    """Apply operations in order: ``Compose(ops)(images, seed=...)``.

    With a volume operation (:class:`VolumeOp`) among ``ops`` it takes volumes: one ``(D, H, W)``,
    a stack ``(n, D, H, W)`` or ``(n, D, H, W, C)``; its other operations must then work on any
    rank (:class:`GaussianNoise`, :class:`GaussianBlur`, :class:`IntensityJitter`, or callables).

    Parameters
    ----------
    ops : sequence of Op
        Any callables ``op(images, rng) -> images`` work.

    Examples
    --------
    >>> import numpy as np
    >>> aug = Compose([Flip("horizontal"), ShiftScaleRotate(0.05, 0.1, 10)])
    >>> x = np.random.default_rng(0).integers(0, 255, (3, 16, 16), dtype=np.uint8)
    >>> a, b = aug(x, seed=3), aug(x, seed=3)
    >>> a.dtype, bool(np.array_equal(a, b))
    (dtype('uint8'), True)
    """

    def __init__(self, ops):
        ops = list(ops)
        bad = [op for op in ops if not callable(op)]
        if bad:
            raise ValueError(f"ops must be callables op(images, rng), got {bad!r}")
        self.ops = ops

    def __call__(self, images, seed=None):
        if any(isinstance(op, VolumeOp) for op in self.ops):
            return _volume_call(self.ops, images, _rng(seed))
        images = _check_stack(images)
        rng = _rng(seed)
        dtype = images.dtype
        work = images.astype(_work_dtype(dtype), copy=True)
        for op in self.ops:
            if isinstance(op, Op):
                work = op._apply(work, rng)
            else:
                work = np.asarray(op(work, rng), dtype=work.dtype)
        return _restore(work, dtype)

    def __repr__(self):
        return f"Compose({self.ops!r})"


def augment(images, ops, *, seed=None):
    """Apply ``ops`` (a sequence of operations, or one) to a stack of images.

    Parameters
    ----------
    images : ndarray
        ``(n, H, W)`` or ``(n, H, W, C)``; with volume operations ``(D, H, W)``,
        ``(n, D, H, W)`` or ``(n, D, H, W, C)``. Not modified.
    ops : Op or sequence of Op
    seed : int, numpy Generator or None

    Returns
    -------
    ndarray
        Same shape and dtype as ``images``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 4, 4)
    >>> bool(np.array_equal(augment(x, Flip("vertical", p=1), seed=0), x[:, ::-1]))
    True
    """
    if callable(ops) and not isinstance(ops, (list, tuple)):
        ops = [ops]
    return Compose(ops)(images, seed=seed)


_VOLUME_PRESETS = {
    "default": lambda: Compose([VolumeFlip(axes=2), VolumeAffine(10, 0.1, 0.05),
                                IntensityJitter(0.1, 0.1)]),
    "light": lambda: Compose([VolumeAffine(5, 0.05, 0.04), IntensityJitter(0.05, 0.05)]),
    "strong": lambda: Compose([VolumeFlip(), VolumeAffine(15, 0.15, 0.08),
                               VolumeElastic(1.0, 3.0, p=0.3), GaussianBlur((0.1, 0.7), p=0.3),
                               IntensityJitter(0.15, 0.15, 0.2), GaussianNoise((0.0, 0.03))]),
}

_PRESETS = {
    "default": lambda: Compose([Flip("horizontal"), ShiftScaleRotate(0.05, 0.1, 10),
                                IntensityJitter(0.1, 0.1)]),
    "light": lambda: Compose([ShiftScaleRotate(0.04, 0.05, 5), IntensityJitter(0.05, 0.05)]),
    "strong": lambda: Compose([Flip("horizontal"), ShiftScaleRotate(0.08, 0.15, 15),
                               ElasticDeformation(1.0, 3.0, p=0.3), GaussianBlur((0.1, 0.7), p=0.3),
                               IntensityJitter(0.15, 0.15, 0.2), GaussianNoise((0.0, 0.03))]),
}


def preset(name, *, volumes=False):
    """A ready :class:`Compose` by name: ``"default"``, ``"light"`` or ``"strong"``.

    Noise levels assume images scaled to [0, 1] (as :class:`medfeat.deep.DeepClassifier` does).

    Parameters
    ----------
    name : {"default", "light", "strong"}
    volumes : bool
        The volume twin of the preset: ``"default"`` left-right flips (:class:`VolumeFlip` on
        the width axis), rotations up to 10 degrees about each axis, zoom 0.9-1.1 and shifts up
        to 5 % (:class:`VolumeAffine`), intensity jitter; ``"light"`` half of that without flips;
        ``"strong"`` flips along every axis, larger affine ranges, elastic deformation, blur,
        gamma and noise.

    Examples
    --------
    >>> [type(op).__name__ for op in preset("light").ops]
    ['ShiftScaleRotate', 'IntensityJitter']
    >>> [type(op).__name__ for op in preset("light", volumes=True).ops]
    ['VolumeAffine', 'IntensityJitter']
    """
    table = _VOLUME_PRESETS if volumes else _PRESETS
    if name not in table:
        raise ValueError(f"name must be one of {tuple(table)}, got {name!r}")
    return table[name]()
