"""Edge kernels: Sobel and Prewitt gradient filters (2-D and 3-D) and the Canny edge detector (2-D).

Names, defaults and results follow scikit-image 0.26 (``skimage.filters.sobel``/``prewitt``,
``skimage.feature.canny``). This module validates the arguments and converts the image to
floating point; the loops run in ``medfeat._kernels.numba_cpu.edges``, or on the GPU in ``medfeat._kernels.numba_cuda.edges``
(every step, with the conversion to floating point fused into the first kernel).

Dtype contract (all three kernels)
----------------------------------
Accepted: bool, uint8, uint16, int16, float32, float64. Integers and bool are converted the way
``skimage.img_as_float`` does (divided by the dtype's maximum, int16 clipped at -1) and computed in
float64; float32 stays float32 and float64 stays float64. Anything else (complex, object, int64,
float16, ...), empty input or the wrong number of dimensions raises ``ValueError``. The input array
is never modified.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._kernels._common import MODES, int_scale
from . import _dask
from ._dispatch import cuda_kernels, device_helpers, get_kernel, wants_cuda
from ._validate import (SUPPORTED_DTYPES, check_choice, check_device_image, check_device_mask,
                        check_image, check_mask, float_dtype)

__all__ = ["sobel", "prewitt", "canny"]

_FAMILY = "edges"
_DTYPES = (np.bool_, *SUPPORTED_DTYPES)

# Mode names scipy.ndimage uses, numbered as in the compiled kernels.
_MODES = MODES

# The CPU backend of "auto": Numba, the faster of the two CPU implementations this family once had
# (Numba compiles for the host CPU's AVX2/AVX-512, a Cython build for baseline SSE2); the
# measurements are in benchmarks/results/architecture-2026-12-03.md.
AUTO_SOBEL = ("numba",)
AUTO_PREWITT = AUTO_SOBEL
AUTO_CANNY = ("numba",)


# ------------------------------------------------------------------------------------------------
# shared preparation
# ------------------------------------------------------------------------------------------------


def _as_float(image):
    """``image`` as a C-contiguous float32/float64 array, converted as ``skimage.img_as_float``.

    Read-only, so that Numba compiles a single specialisation whether or not the caller's array is
    writeable (and so that nothing downstream can write into the caller's data).
    """
    dt = image.dtype
    if dt == np.float32 or dt == np.float64:
        out = np.ascontiguousarray(image)
    elif dt == np.bool_:
        out = image.astype(np.float64)
    else:
        out = np.multiply(image, int_scale(dt), dtype=np.float64)
        if dt.kind == "i":
            np.maximum(out, -1.0, out=out)
    return _readonly(out)


def _readonly(a):
    a = a.view()
    a.setflags(write=False)
    return a


def _check_cval(cval):
    if isinstance(cval, bool) or not isinstance(cval, numbers.Real):
        raise ValueError(f"cval must be a real number, got {cval!r}")
    return float(cval)


def _check_modes(mode, ndim):
    """One mode code per axis from a name or a sequence of names (scikit-image accepts both)."""
    names = tuple(_MODES)
    if isinstance(mode, str):
        check_choice(mode, names, name="mode")
        return np.full(ndim, _MODES[mode], dtype=np.int64)
    try:
        modes = list(mode)
    except TypeError:
        raise ValueError(f"mode must be one of {', '.join(map(repr, names))} "
                         f"or a sequence of them; got {mode!r}") from None
    if len(modes) != ndim:
        raise ValueError(f"mode must name one mode per axis ({ndim}), got {len(modes)}")
    return np.array([_MODES[check_choice(m, names, name="mode")] for m in modes], dtype=np.int64)


def _check_axes(axis, ndim):
    """(weights per axis, single axis or -1) for the ``axis`` argument of Sobel/Prewitt."""
    if axis is None:
        return np.ones(ndim), -1
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        axes = [axis]
        single = True
    else:
        try:
            axes = list(axis)
        except TypeError:
            raise ValueError(
                f"axis must be None, an int or a sequence of ints; got {axis!r}") from None
        if not axes:
            raise ValueError("axis must not be an empty sequence")
        single = len(axes) == 1
    weights = np.zeros(ndim)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral) or not -ndim <= a < ndim:
            raise ValueError(f"axis must hold ints in [{-ndim}, {ndim - 1}] for a {ndim}-D image; "
                             f"got {axis!r}")
        weights[a % ndim] += 1.0  # scikit-image sums repeated axes twice
    return weights, (int(axes[0]) % ndim if single else -1)


def _check_batch(batch, mask):
    if not isinstance(batch, (bool, np.bool_)):
        raise ValueError(f"batch must be True or False, got {batch!r}")
    if batch and mask is not None:
        raise ValueError("mask is not supported with batch=True (yet); filter the images one by one")
    return bool(batch)


def _edge(image, mask, axis, mode, cval, backend, *, center, auto, batch=False):
    batch = _check_batch(batch, mask)
    if wants_cuda(backend, image):
        return _edge_cuda(image, mask, axis, mode, cval, backend, center=center, auto=auto,
                          batch=batch)
    if batch:
        return _edge_batch_cpu(image, axis, mode, cval, backend, center=center, auto=auto)
    img = check_image(image, ndim=(2, 3), dtypes=_DTYPES)
    mask = check_mask(mask, img.shape)
    weights, single = _check_axes(axis, img.ndim)
    modes = _check_modes(mode, img.ndim)
    cval = _check_cval(cval)
    which = f"edge_filter_{img.ndim}d"
    _, kernel = get_kernel(_FAMILY, which, backend, auto=auto, image=image)
    _, erode = get_kernel(_FAMILY, f"erode_mask_{img.ndim}d", backend, auto=auto, image=image)
    f = _as_float(img)
    out = np.empty(f.shape, dtype=f.dtype)
    if mask is None:
        eroded = np.zeros((0,) * img.ndim, np.uint8)
    else:
        eroded = erode(mask.view(np.uint8))
    # One smoothing axis less than the image has dimensions, each normalised to sum 1.
    scale = (1.0 / (2.0 + center)) ** (img.ndim - 1)
    kernel(f, out, eroded, modes, cval, float(center), scale, weights, single)
    return out


def _edge_batch_cpu(image, axis, mode, cval, backend, *, center, auto):
    """``batch=True`` on a CPU backend: the 2-D kernel image by image (the reference the one-launch
    CUDA version is tested against; no faster than a loop in the caller)."""
    img = check_image(image, ndim=3, dtypes=_DTYPES, name="image stack")
    weights, single = _check_axes(axis, 2)
    modes = _check_modes(mode, 2)
    cval = _check_cval(cval)
    _, kernel = get_kernel(_FAMILY, "edge_filter_2d", backend, auto=auto, image=image)
    f = _as_float(img)
    out = np.empty(f.shape, dtype=f.dtype)
    no_mask = np.zeros((0, 0), np.uint8)
    for n in range(f.shape[0]):
        kernel(f[n], out[n], no_mask, modes, cval, float(center), 1.0 / (2.0 + center), weights,
               single)
    return out


def _edge_cuda(image, mask, axis, mode, cval, backend, *, center, auto, batch=False):
    """The CUDA path: GPU input stays on the GPU (result on the GPU); NumPy input is copied in once
    and the result copied back once. The float conversion happens inside the kernel."""
    get_kernel(_FAMILY, "edge_filter_2d", backend, auto=auto, image=image)  # fails first if absent
    from numba import cuda

    _common = device_helpers()
    if batch:
        dtype, shape = check_device_image(image, ndim=3, dtypes=_DTYPES, name="image stack")
        weights, single = _check_axes(axis, 2)
        modes = _check_modes(mode, 2)
        cval = _check_cval(cval)
        _, kernel = get_kernel(_FAMILY, "edge_filter_batch", backend, auto=auto, image=image)
        d_img, on_gpu = _common.to_device(image)
        out = cuda.device_array(shape, float_dtype(dtype) if dtype != np.bool_ else np.float64)
        kernel(d_img, out, modes, cval, float(center), 1.0 / (2.0 + center), weights, single)
        return _common.finish(out, on_gpu)
    dtype, shape = check_device_image(image, ndim=(2, 3), dtypes=_DTYPES)
    ndim = len(shape)
    mask = check_device_mask(mask, shape)
    weights, single = _check_axes(axis, ndim)
    modes = _check_modes(mode, ndim)
    cval = _check_cval(cval)
    _, kernel = get_kernel(_FAMILY, f"edge_filter_{ndim}d", backend, auto=auto, image=image)
    _, erode = get_kernel(_FAMILY, f"erode_mask_{ndim}d", backend, auto=auto, image=image)
    d_img, on_gpu = _common.to_device(image)
    eroded = None if mask is None else erode(_common.to_device(mask)[0])
    out = cuda.device_array(shape, float_dtype(dtype) if dtype != np.bool_ else np.float64)
    scale = (1.0 / (2.0 + center)) ** (ndim - 1)
    kernel(d_img, out, eroded, modes, cval, float(center), scale, weights, single)
    return _common.finish(out, on_gpu)


_EDGE_PARAMS = """\
    Parameters
    ----------
    image : ndarray, 2-D or 3-D
        Input image: bool, uint8, uint16, int16, float32 or float64. NaN and infinity propagate to
        the neighbours they touch, exactly as in scikit-image.
    mask : array_like of bool, optional
        Output is zero outside this mask eroded by one pixel (full connectivity, image border
        excluded), so that masked-out pixels cannot leak into the result.
    axis : int or sequence of int, optional
        Compute the signed response along this axis only. ``None`` (default) or a sequence of
        several axes gives the magnitude ``sqrt(sum(response(axis=a)**2 for a in axes) / ndim)``
        (scikit-image's definition: divided by ``image.ndim`` whatever the number of axes).
        Negative axes count from the end (scikit-image 0.26 instead also smooths across a
        negative derivative axis, which scales that response by 1/4 or 1/3).
    mode : str or sequence of str, optional
        Border handling, per axis or for all: 'reflect' (default), 'constant', 'nearest',
        'mirror' or 'wrap' (scipy.ndimage's meanings).
    cval : float, optional
        Value outside the image when ``mode`` is 'constant', in the units of the converted image
        (integer images are first scaled to [0, 1] or [-1, 1]).
    backend : {'auto', 'cpu', 'numba', 'cuda'}, optional
        Implementation to run; 'auto' takes the fastest available here, and 'cuda' for an image
        already on the GPU (any array with ``__cuda_array_interface__``: numba, CuPy, PyTorch).
        With 'cuda', a GPU image gives a GPU result (a numba device array) and a NumPy image is
        copied to the GPU and its result back.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images, each filtered on its own (``axis``
        and ``mode`` refer to the image axes 0 and 1): on 'cuda' one launch covers the whole stack,
        the efficient way to filter thousands of small images; on the CPU backends the images are
        filtered one after the other. No ``mask`` with ``batch``.

    Returns
    -------
    ndarray
        float32 for float32 input, float64 for every other dtype; same shape as ``image``.

    Raises
    ------
    ValueError
        For an unsupported dtype, an empty image, a rank other than 2 or 3 (3 with ``batch``), a
        mask of another shape, an axis out of range, an unknown mode or backend, or a non-numeric
        ``cval``.
"""


def sobel(image, mask=None, *, axis=None, mode="reflect", cval=0.0, backend="auto", batch=False):
    """Sobel edge filter: gradient magnitude, or the response along one axis.

    The 3x3(x3) Sobel operator (Sobel and Feldman, 1968) smooths with ``[1, 2, 1] / 4`` across
    the derivative axis and differentiates with ``[1, 0, -1]`` along it; the filters are applied
    separably in one pass over the image. Equal to ``skimage.filters.sobel`` within 1e-5 relative.

{params}
    References
    ----------
    .. [1] I. Sobel and G. Feldman, "A 3x3 isotropic gradient operator for image processing",
           Stanford Artificial Intelligence Project, 1968.
    .. [2] D. Kroon, "Numerical optimization of kernel based image derivatives", University of
           Twente, 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import sobel
    >>> image = np.zeros((5, 5), np.uint8)
    >>> image[:, 2:] = 255
    >>> sobel(image, axis=1)[2]
    array([0., 1., 1., 0., 0.])
    >>> sobel(image.astype(np.float32)).dtype
    dtype('float32')
    >>> stack = np.stack([image, image.T])  # two 5x5 images, filtered one by one
    >>> bool((sobel(stack, batch=True)[1] == sobel(image.T)).all())
    True
    >>> from numba import cuda
    >>> on_gpu = sobel(cuda.to_device(stack), batch=True)  # needs a GPU  # doctest: +SKIP
    """
    if _dask.is_dask_array(image):
        return _dask.edge_filter(sobel, image, mask, axis, mode, cval, backend, batch,
                                 auto=AUTO_SOBEL)
    return _edge(image, mask, axis, mode, cval, backend, center=2.0, auto=AUTO_SOBEL, batch=batch)


def prewitt(image, mask=None, *, axis=None, mode="reflect", cval=0.0, backend="auto",
            batch=False):
    """Prewitt edge filter: gradient magnitude, or the response along one axis.

    The Prewitt operator (Prewitt, 1970) smooths with ``[1, 1, 1] / 3`` across the derivative axis
    and differentiates with ``[1, 0, -1]`` along it. Equal to ``skimage.filters.prewitt`` within
    1e-5 relative.

{params}
    References
    ----------
    .. [1] J. M. S. Prewitt, "Object enhancement and extraction", in Picture Processing and
           Psychopictorics, Academic Press, 1970, pp. 75-149.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import prewitt
    >>> image = np.zeros((5, 5))
    >>> image[2:, :] = 1.0
    >>> prewitt(image, axis=0)[:, 2]
    array([0., 1., 1., 0., 0.])
    >>> prewitt(image, mask=np.ones((5, 5), bool))[0, 2]
    np.float64(0.0)
    """
    if _dask.is_dask_array(image):
        return _dask.edge_filter(prewitt, image, mask, axis, mode, cval, backend, batch,
                                 auto=AUTO_PREWITT)
    return _edge(image, mask, axis, mode, cval, backend, center=1.0, auto=AUTO_PREWITT,
                 batch=batch)


sobel.__doc__ = sobel.__doc__.format(params=_EDGE_PARAMS)
prewitt.__doc__ = prewitt.__doc__.format(params=_EDGE_PARAMS)


# ------------------------------------------------------------------------------------------------
# Canny
# ------------------------------------------------------------------------------------------------

# scikit-image's dtype_limits(image)[1]: user thresholds are in the image's own units.
_DTYPE_MAX = {np.dtype(np.bool_): 1, np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535,
              np.dtype(np.int16): 32767, np.dtype(np.float32): 1, np.dtype(np.float64): 1}


def _gaussian_weights(sigma):
    """SciPy's Gaussian weights for ``sigma`` (truncate 4), read off an impulse response so that
    they are bit-identical to the ones ``scipy.ndimage.gaussian_filter`` uses."""
    from scipy import ndimage as ndi

    radius = int(4.0 * sigma + 0.5)
    if sigma <= 1e-15 or radius == 0:  # SciPy skips such axes: the identity
        return np.ones(1)
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    return np.ascontiguousarray(
        ndi.gaussian_filter1d(impulse, sigma, mode="constant", cval=0.0, truncate=4.0)
    )


def _check_threshold(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number or None, got {value!r}")
    return value


def _compare_value(threshold, dtype):
    """``threshold`` as float64, rounded as NumPy rounds it when compared with a ``dtype`` array."""
    ct = np.result_type(dtype, threshold)
    with np.errstate(over="ignore"):
        return float(ct.type(threshold))


def _canny_thresholds(low_threshold, high_threshold, use_quantiles, dtype):
    """``(low, high)`` exactly as scikit-image derives them (same order of checks and divisions):
    the defaults 0.1 and 0.2, quantiles checked to lie in [0, 1], values in the image's units
    divided by the dtype's maximum."""
    dtype_max = _DTYPE_MAX[np.dtype(dtype)]
    thresholds = []
    for value, default, name in ((low_threshold, 0.1, "low_threshold"),
                                 (high_threshold, 0.2, "high_threshold")):
        if value is None:
            value = default
        elif use_quantiles:
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a quantile in [0, 1] when use_quantiles=True, "
                                 f"got {value!r}")
        else:
            value = value / dtype_max
        thresholds.append(value)
    low, high = thresholds
    if high < low:
        raise ValueError(f"high_threshold ({high_threshold!r}) must not be lower than "
                         f"low_threshold ({low_threshold!r})")
    return low, high


def canny(image, sigma=1.0, low_threshold=None, high_threshold=None, mask=None,
          use_quantiles=False, *, mode="constant", cval=0.0, backend="auto", batch=False):
    """Canny edge detector (Canny, 1986), equal to ``skimage.feature.canny``.

    Steps, all in compiled code: Gaussian smoothing of width ``sigma`` that ignores pixels outside
    ``mask`` (the smoothed image is divided by the smoothed indicator of valid pixels, as in
    scikit-image, which also happens at the border in 'constant' mode); Sobel gradients and their
    magnitude; non-maximum suppression with bilinear interpolation of the magnitude along the
    gradient direction; double thresholding; and hysteresis, a flood fill from the strong edge
    pixels through 8-connected weak ones.

    Parameters
    ----------
    image : ndarray, 2-D
        bool, uint8, uint16, int16, float32 or float64; must be finite (NaN or infinity raise).
    sigma : float, optional
        Standard deviation of the Gaussian filter (>= 0; truncated at 4 sigma as in SciPy).
    low_threshold : float, optional
        Lower hysteresis threshold, in the image's units (e.g. 0..255 for uint8). Default: 10% of
        the dtype's maximum (0.1 after conversion). A quantile in [0, 1] if ``use_quantiles``.
    high_threshold : float, optional
        Upper hysteresis threshold; default 20% of the dtype's maximum. Must not be lower than
        ``low_threshold``.
    mask : array_like of bool, optional
        Only pixels inside the mask, eroded by one pixel, can be edges; pixels outside it do not
        take part in the smoothing.
    use_quantiles : bool, optional
        Treat the thresholds as quantiles of the gradient magnitude (``numpy.percentile``'s
        'linear' definition; on 'cuda' an exact radix select on the device gives the same
        values).
    mode : str, optional
        Border handling of the Gaussian smoothing: 'constant' (default), 'reflect', 'nearest',
        'mirror' or 'wrap'.
    cval : float, optional
        Value outside the image for ``mode='constant'`` (in converted units).
    backend : {'auto', 'cpu', 'numba', 'cuda'}, optional
        Implementation to run; 'auto' takes the fastest available here, and 'cuda' for an image on
        the GPU (GPU edge map out).
    batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images, each processed on its own (its
        own quantile thresholds with ``use_quantiles``): on 'cuda' every stage is one launch over
        the whole stack; on the CPU backends the images are processed one after the other. No
        ``mask`` with ``batch``.

    Returns
    -------
    ndarray of bool
        The edge map, same shape as ``image``, whatever the input dtype. Pixels on the image border
        are never edges (with ``batch``, the border of each image).

    Raises
    ------
    ValueError
        For an unsupported dtype, an empty or non-2-D image (non-3-D with ``batch``), NaN or
        infinity in the image, a negative ``sigma``, a mask of another shape (a mask with
        ``batch``), thresholds that are not finite numbers, ``high_threshold < low_threshold``,
        quantiles outside [0, 1], or an unknown mode or backend.

    References
    ----------
    .. [1] J. Canny, "A computational approach to edge detection", IEEE Transactions on Pattern
           Analysis and Machine Intelligence 8(6):679-698, 1986. :DOI:`10.1109/TPAMI.1986.4767851`

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import canny
    >>> image = np.zeros((32, 32), np.uint8)
    >>> image[8:24, 8:24] = 200
    >>> edges = canny(image, sigma=1.0)
    >>> edges.dtype, bool(edges[8, 16]), bool(edges[16, 16])
    (dtype('bool'), True, False)
    >>> int(canny(image, low_threshold=900, high_threshold=1000).sum())  # too high: no edges
    0
    >>> stack = np.stack([image, image.T])
    >>> bool((canny(stack, batch=True)[1] == canny(image.T)).all())
    True
    """
    if _dask.is_dask_array(image):
        return _dask.canny(image, sigma, low_threshold, high_threshold, mask, use_quantiles, mode,
                           cval, backend, batch)
    batch = _check_batch(batch, mask)
    ndim, name = (3, "image stack") if batch else (2, "image")
    on_cuda = wants_cuda(backend, image)
    if on_cuda:
        get_kernel(_FAMILY, "canny_magnitude", backend, auto=AUTO_CANNY, image=image)
        dtype, shape = check_device_image(image, ndim=ndim, dtypes=_DTYPES, name=name)
        img = np.empty((0, 0), dtype)  # stands for the image's dtype below
    else:
        # NaN and infinity: on the common path (no mask, no quantiles) the compiled kernel checks
        # them as it reads the image, in parallel, rather than a pass of its own here
        plain = mask is None and not use_quantiles
        img = check_image(image, ndim=ndim, dtypes=_DTYPES, finite=not plain, name=name)
        shape = img.shape
    if (isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not np.isfinite(sigma)
            or sigma < 0):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    low_threshold = _check_threshold(low_threshold, "low_threshold")
    high_threshold = _check_threshold(high_threshold, "high_threshold")
    mask = check_device_mask(mask, shape) if on_cuda else check_mask(mask, shape)
    check_choice(mode, tuple(_MODES), name="mode")
    cval = _check_cval(cval)
    auto = AUTO_CANNY
    # resolve the backend before any work, so that an unavailable one fails first
    get_kernel(_FAMILY, "canny_magnitude" if on_cuda else "canny_fused", backend, auto=auto,
               image=image)

    low, high = _canny_thresholds(low_threshold, high_threshold, use_quantiles, img.dtype)

    if on_cuda:
        return _canny_cuda(image, sigma, low, high, mask, use_quantiles, mode, cval, backend, batch)
    if batch:
        return _canny_cpu_planes(img, sigma, low, high, None, use_quantiles, mode, cval, backend)
    return _canny_cpu(img, sigma, low, high, mask, use_quantiles, mode, cval, backend)


def _canny_cpu(img, sigma, low, high, mask, use_quantiles, mode, cval, backend):
    """Canny of one validated 2-D NumPy image on a CPU backend; thresholds as derived above."""
    return _canny_cpu_planes(img[None], sigma, low, high, mask, use_quantiles, mode, cval,
                             backend)[0]


def _canny_cpu_planes(stack, sigma, low, high, mask, use_quantiles, mode, cval, backend):
    """Canny of every image of a validated stack ``(N, H, W)`` (``mask``: only with N = 1), each
    computed as alone; the set-up that does not depend on the image (backend, weights) is done
    once for the stack."""
    auto = AUTO_CANNY
    # uint8 goes to the kernel as it is, converted row by row where the rows are read (the same
    # float64 values as img_as_float's, without writing an image eight times the input's size)
    direct = stack.dtype == np.uint8 and mask is None and not use_quantiles
    scale = int_scale(stack.dtype) if direct else 1.0
    dtype = np.dtype(np.float64) if direct else _as_float(stack[:0]).dtype
    eroded = np.zeros((0, 0), np.uint8)  # empty: every interior pixel
    if mask is None:
        bleed_kind = 1 if mode == "constant" else 0
        bleed_src = _readonly(np.zeros((0, 0), dtype))
    else:
        bleed_kind = 2
        bleed_src = _readonly(mask.astype(dtype))
        _, erode = get_kernel(_FAMILY, "erode_mask_2d", backend, auto=auto, image=stack)
        eroded = erode(mask.view(np.uint8))
    eps = np.array([np.finfo(dtype).eps], dtype=dtype)
    weights = _gaussian_weights(float(sigma))
    _, fused = get_kernel(_FAMILY, "canny_fused", backend, auto=auto, image=stack)
    if use_quantiles:
        _, smooth = get_kernel(_FAMILY, "canny_smooth", backend, auto=auto, image=stack)
    import numba

    out = np.empty(stack.shape, bool)
    # tiles handed out one at a time rather than in equal shares: on a shared machine a thread that
    # loses its core for a while then holds up the others less
    previous = numba.set_parallel_chunksize(1)
    try:
        for n in range(stack.shape[0]):
            img = stack[n]
            f = _readonly(np.ascontiguousarray(img)) if direct else _as_float(img)
            if mask is not None:
                f = _readonly(np.where(mask, f, dtype.type(0)))
            lo, hi = low, high
            if use_quantiles:
                # The quantiles need the whole magnitude image first; the sweep below then
                # recomputes it row by row (cheaper than keeping a second, non-fused
                # suppression kernel compiled).
                _, magnitude = smooth(f, weights, _MODES[mode], cval, bleed_src, bleed_kind, eps)
                lo, hi = np.percentile(magnitude, [100.0 * low, 100.0 * high])
            # the kernel writes into the output plane (its label map first), so that no second
            # image-sized array is allocated and nothing is copied
            fused(f, weights, _MODES[mode], cval, bleed_src, bleed_kind, eps, eroded,
                  _low_value(lo), _compare_value(hi, dtype), scale, out=out[n].view(np.uint8))
    finally:
        numba.set_parallel_chunksize(previous)
    return out


def _canny_cuda(image, sigma, low, high, mask, use_quantiles, mode, cval, backend, batch):
    """Canny on the GPU, every stage on the device (quantiles and hysteresis included), for one
    image or, with ``batch``, a stack with one launch per stage. GPU input gives a GPU edge map."""
    _common = device_helpers()
    cuda_intensity = cuda_kernels("intensity")

    _, magnitude = get_kernel(_FAMILY, "canny_magnitude", backend, auto=AUTO_CANNY, image=image)
    _, finish = get_kernel(_FAMILY, "canny_edges", backend, auto=AUTO_CANNY, image=image)
    _, stack_view = get_kernel(_FAMILY, "stack_view", backend, auto=AUTO_CANNY, image=image)
    d_img, on_gpu = _common.to_device(image)
    float32 = d_img.dtype == np.float32
    dtype = np.dtype(np.float32 if float32 else np.float64)
    if d_img.dtype.kind == "f":
        lo, hi, bad = cuda_kernels("density").value_range(_common.flat(d_img), np.zeros(0, np.uint8))
        if bad or not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("image contains NaN or infinity, for which this kernel has no defined "
                             "result")
    d_mask = eroded = None
    if mask is not None:
        _, erode = get_kernel(_FAMILY, "erode_mask_2d", backend, auto=AUTO_CANNY, image=image)
        m = _common.to_device(mask)[0]
        d_mask, eroded = stack_view(m), stack_view(erode(m))
    stack = d_img if batch else stack_view(d_img)
    N, H, W = stack.shape
    M, IS, JS = magnitude(stack, _gaussian_weights(float(sigma)), _MODES[mode], cval, d_mask,
                          np.finfo(dtype).eps, float32)
    if use_quantiles:
        from .intensity import _interpolate_rows, _positions

        n = H * W
        virt, prev, ks = _positions(n, (100.0 * low, 100.0 * high))
        vals = cuda_intensity.order_stats(_common.flat(M), np.zeros(0, np.uint8), ks, nseg=N)
        pairs = _interpolate_rows(n, virt, prev, ks, vals)
        # _low_value of each low quantile; the highs stay float64, as numpy.percentile returns
        # them on the CPU (so _compare_value keeps them as they are)
        with np.errstate(over="ignore"):
            low32 = pairs[:, 0].astype(np.float32)
        low32[low32 == 0] = np.float32(1e-14)
        lows, highs = low32.astype(np.float64), pairs[:, 1]
    else:
        lows = [_low_value(low)] * N
        highs = [_compare_value(high, dtype)] * N
    edges = finish(M, IS, JS, eroded, lows, highs)
    return _common.finish(edges if batch else edges.reshape(tuple(d_img.shape)), on_gpu)


def _low_value(low):
    """scikit-image passes the low threshold through a C float, and treats 0 as "above zero"."""
    with np.errstate(over="ignore"):
        low32 = np.float32(low)
    if low32 == 0:
        low32 = np.float32(1e-14)
    return float(low32)
