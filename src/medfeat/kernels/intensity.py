"""Intensity normalisation: z-score, min-max, percentile and CT-window scaling to float32.

The public face of the intensity kernels. Every method is one statistics pass over the pixels
(moments or value counts, shared with the density family: ``medfeat._kernels.<backend>.density``),
then one fused output pass ``float32(clip((x - shift) * scale))``
(``medfeat._kernels.cython._intensity_cy``, or ``medfeat._kernels.numba_cuda.intensity`` on the
GPU), with no temporaries the size of the image.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import _dask
from ._dispatch import cuda_kernels, get_kernel, implementation, is_device_array
from ._validate import check_choice, check_device_mask
from .histograms import (_NOMASK, _check_moments, _flat, _image, _int_counts, _nchunks, _place,
                      _threads)

# The CPU backend of "auto": Cython, the faster of the two CPU implementations this family once had
# (its min/max and clip use SSE selects that LLVM will not emit without fast-math;
# benchmarks/results/architecture-2026-12-03.md).
AUTO_NORMALIZE = ("cython",)

METHODS = ("zscore", "minmax", "percentile", "window")
_BLOCK = 4096


def _real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _lerp(a, b, t):
    # numpy.percentile's interpolation, written the same way so ties at t = 0.5 round alike
    d = b - a
    return b - d * (1 - t) if t >= 0.5 else a + d * t


def _finite_range(dens, flat, mflat):
    """(min, max) of the selected pixels; raises for NaN anywhere or an infinite selected value."""
    lo, hi, nan = dens.value_range(flat, mflat, _nchunks(dens, flat.size))
    if nan or not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("image contains NaN or infinity; its statistics are undefined")
    return lo, hi


def _positions(n, qs):
    """numpy.percentile's ('linear') virtual positions of percentiles ``qs`` among ``n`` sorted
    values: ``(virtual, previous)`` per percentile and the sorted order statistics needed."""
    virt = [(n - 1) * (q / 100.0) for q in qs]
    prev = [min(int(math.floor(v)), n - 1) for v in virt]
    ks = sorted({k for p in prev for k in (p, min(p + 1, n - 1))})
    return virt, prev, ks


def _interpolate(n, virt, prev, ks, vals):
    """The percentiles from the values ``vals`` of order statistics ``ks`` (numpy's lerp)."""
    at = dict(zip(ks, (float(v) for v in vals)))
    return [_lerp(at[p], at[min(p + 1, n - 1)], v - p) for v, p in zip(virt, prev)]


def _interpolate_rows(n, virt, prev, ks, vals):
    """:func:`_interpolate` of many images at once: ``vals`` is ``(N, len(ks))``, the result
    ``(N, len(virt))``, with the same float64 operations elementwise."""
    vals = np.asarray(vals, np.float64)
    col = {k: i for i, k in enumerate(ks)}
    out = np.empty((vals.shape[0], len(virt)))
    for j, (v, p) in enumerate(zip(virt, prev)):
        a = vals[:, col[p]]
        b = vals[:, col[min(p + 1, n - 1)]]
        t = v - p
        d = b - a
        out[:, j] = b - d * (1 - t) if t >= 0.5 else a + d * t
    return out


def _percentiles(dens, intens, flat, mflat, qs):
    """``numpy.percentile(x[mask], qs)`` ('linear') in float64: order statistics from the value
    counts for integer images; for float images by counting the selected pixels in buckets of
    their range, then selecting among the few in the buckets that hold the wanted ranks (a radix
    select on the device for GPU arrays)."""
    if flat.dtype.kind == "f":
        if is_device_array(flat):
            _finite_range(dens, flat, _NOMASK)
            n = intens.count_selected(mflat) if mflat.size else flat.size
        else:
            n = int(np.count_nonzero(mflat)) if mflat.size else flat.size
    else:
        raw, offset = _int_counts(dens, flat, mflat)
        cum = np.cumsum(raw)
        n = int(cum[-1])
    virt, prev, ks = _positions(n, qs)
    if flat.dtype.kind != "f":
        vals = np.searchsorted(cum, ks, side="right") + offset
    elif is_device_array(flat):
        # the radix select decides a few ranks per set of passes
        step = intens.MAX_RANKS
        vals = np.concatenate([intens.order_stats(flat, mflat, ks[i:i + step])[0]
                               for i in range(0, len(ks), step)])
    else:
        # bucket bounds from a sample of a few thousand pixels (any bounds give exact values;
        # these are close to the data's without a pass of their own); the counting pass checks
        # every pixel for NaN and infinity
        sample = flat[:: max(1, flat.size // 4096)]
        vals = intens.bucket_select(flat, mflat, float(sample.min()), float(sample.max()),
                                    np.asarray(ks, np.int64), _nchunks(dens, flat.size))
        if vals is None:
            raise ValueError("image contains NaN or infinity; its statistics are undefined")
    return _interpolate(n, virt, prev, ks, vals)


def normalize(image, method="zscore", *, lower=1, upper=99, center=None, width=None, mask=None,
              backend="auto", batch=False):
    """Rescale intensities to a standard range, as float32.

    Parameters
    ----------
    image : ndarray of uint8, uint16, int16, float32 or float64, any rank
        Input image or volume. It is not modified.
    method : {"zscore", "minmax", "percentile", "window"}, optional
        - ``"zscore"``: ``(x - mean) / std``, with the population standard deviation (``ddof=0``).
        - ``"minmax"``: ``(x - min) / (max - min)``, so the statistics' pixels span [0, 1].
        - ``"percentile"``: ``clip((x - p_lower) / (p_upper - p_lower), 0, 1)`` with the percentiles
          of :func:`numpy.percentile` (method ``'linear'``).
        - ``"window"``: CT-style window ``clip((x - (center - width / 2)) / width, 0, 1)``: values
          below the window map to 0, above it to 1, linearly in between. This is the plain window of
          radiology viewers; DICOM's VOI LUT "LINEAR" function (PS3.3 C.11.2.1.2) differs from it by
          half a grey level (``center - 0.5``, ``width - 1``), which matters only for narrow windows
          on integer data.
        A zero spread (``std``, ``max - min`` or ``p_upper - p_lower``: a constant image or region)
        is taken as 1, so a constant image maps to zeros instead of NaN.
    lower, upper : float, optional
        Percentiles (0-100, ``lower < upper``) for ``method="percentile"``.
    center, width : float, optional
        Window centre and (positive) width, in the image's units (e.g. HU: ``center=40,
        width=400``); required for, and only allowed with, ``method="window"``.
    mask : ndarray of bool, optional
        Same shape as ``image``: the statistics are computed on the selected pixels only; the output
        covers the whole image (pixels outside the mask can fall outside [0, 1] for ``"minmax"``).
        Has no effect for ``"window"``, which has no statistics.
    backend : {"auto", "cpu", "cython", "cuda"}, optional
        Implementation to run.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, ...)`` of images, each normalised with its own
        statistics. On 'cuda' each stage (moments, ranges or order statistics, then the output
        pass) is one launch over the whole stack; on the CPU backends the images are done one
        after the other. No ``mask`` with ``batch``.

    Returns
    -------
    ndarray of float32
        Same shape as ``image``, whatever its dtype. Statistics are accumulated in float64
        (block-wise two-pass sums merged pairwise), so the result is within 1e-5 relative of the
        float64 NumPy computation.

    Raises
    ------
    ValueError
        For NaN (any method) or infinity (methods with statistics) in the image, an unknown
        ``method`` or ``backend``, ``lower``/``upper`` outside 0-100 or not increasing, a missing,
        non-finite or non-positive ``center``/``width`` for ``"window"`` (or one given for another
        method), a mask of the wrong shape or selecting no pixel, an unsupported dtype or an empty
        image.

    References
    ----------
    .. [1] T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise algorithm for
       computing sample variances", COMPSTAT 1982 (Stanford report STAN-CS-79-773, 1979).

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import normalize
    >>> ct = np.array([[-1000, 0], [40, 1000]], np.int16)
    >>> np.allclose(normalize(ct, "window", center=40, width=400), [[0, 0.4], [0.5, 1]])
    True
    >>> normalize(np.array([1.0, 2.0, 3.0]), "minmax").tolist()
    [0.0, 0.5, 1.0]
    >>> normalize(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 8.0]]), "minmax", batch=True).tolist()
    [[0.0, 0.5, 1.0], [0.0, 0.0, 1.0]]
    """
    if _dask.is_dask_array(image):
        return _dask.normalize(image, method, lower, upper, center, width, mask, backend, batch)
    if not isinstance(batch, (bool, np.bool_)):
        raise ValueError(f"batch must be True or False, got {batch!r}")
    if batch and mask is not None:
        raise ValueError("mask is not supported with batch=True (yet); normalise the images one "
                         "by one")
    arr = _image(image, min_ndim=2 if batch else 1)
    check_choice(method, METHODS, name="method")
    lower = _real(lower, "lower")
    upper = _real(upper, "upper")
    if not 0 <= lower < upper <= 100:
        raise ValueError(f"lower and upper must satisfy 0 <= lower < upper <= 100, got {lower}, "
                         f"{upper}")
    if method == "window":
        if center is None or width is None:
            raise ValueError("method='window' needs both center and width")
        center = _real(center, "center")
        width = _real(width, "width")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
    else:
        for name, value in (("center", center), ("width", width)):
            if value is not None:
                raise ValueError(f"{name} applies only to method='window', not {method!r}")
    shape = tuple(arr.shape)
    mask = check_device_mask(mask, shape)
    if mask is not None and not is_device_array(mask) and not mask.any():
        raise ValueError("mask selects no pixel; the statistics are undefined")

    chosen, affine = get_kernel("intensity", "affine", backend, auto=AUTO_NORMALIZE, image=arr)
    dens = implementation("density", chosen)
    if batch:
        if chosen == "cuda":
            on_gpu = is_device_array(arr)
            out = _normalize_segments(_place(chosen, arr), method, lower, upper, center, width,
                                      dens, implementation("intensity", chosen))
            return out if on_gpu else out.copy_to_host()
        out = np.empty(shape, np.float32)
        for n in range(shape[0]):
            with _threads(dens, out[n].size):
                out[n] = _normalize(arr[n], method, lower, upper, center, width, None, chosen,
                                    affine, dens)
        return out
    on_gpu = is_device_array(arr)
    arr, mask = _place_stats(chosen, dens, arr, mask)
    with _threads(dens, arr.size):
        out = _normalize(arr, method, lower, upper, center, width, mask, chosen, affine, dens)
    if chosen == "cuda" and not on_gpu:
        return out.copy_to_host()
    return out


def _place_stats(chosen, dens, arr, mask):
    """``(image, mask)`` where backend ``chosen`` computes; on the GPU an integer mask becomes a
    0/1 device mask, and an empty one is refused there (on the host it is refused earlier)."""
    if chosen != "cuda":
        return arr, mask
    arr = _place(chosen, arr)
    if mask is not None:
        mask = _place(chosen, mask)
        if mask.dtype != np.bool_:
            # an integer GPU mask selects its non-zero pixels: made 0/1 uint8 on the device,
            # the weights of the moments and the view the statistics kernels read
            nonzero_u8 = cuda_kernels("morphology").nonzero_u8
            mask = nonzero_u8(_flat(mask)).view(np.bool_).reshape(tuple(arr.shape))
        # the device mask's emptiness, from its maximum (one small reduction)
        if dens.value_range(_flat(mask).view(np.uint8), _NOMASK, 1)[1] <= 0:
            raise ValueError("mask selects no pixel; the statistics are undefined")
    return arr, mask


def percentile(image, q, *, mask=None, backend="auto"):
    """Percentiles of the pixels: ``numpy.percentile(image[mask].astype(float64), q)``, bit for bit.

    The kernel layer's percentile (:func:`normalize`'s ``"percentile"`` method uses the same
    code): exact order statistics instead of a sort -- from the value counts for integer images,
    by selection for float images (a radix select on the device for GPU input) -- then NumPy's
    ``"linear"`` interpolation, written as NumPy writes it.

    Parameters
    ----------
    image : ndarray of uint8, uint16, int16, float32 or float64, any rank
        Input image or volume, on the host or the GPU. It is not modified.
    q : float or sequence of float
        Percentiles in [0, 100], in any order.
    mask : ndarray of bool, optional
        Same shape as ``image``: only the selected pixels count.
    backend : {"auto", "cpu", "cython", "cuda"}, optional
        Implementation; 'auto' is the family's CPU backend for a NumPy array and 'cuda' for a GPU
        array.

    Returns
    -------
    float or ndarray of float64
        A float for a scalar ``q``, else one value per percentile (on the host).

    Raises
    ------
    ValueError
        For NaN or infinity in the image, a percentile outside [0, 100], a mask of another shape
        or selecting no pixel, an unsupported dtype or an unknown backend.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import percentile
    >>> image = np.arange(10, dtype=np.uint8).reshape(2, 5)
    >>> percentile(image, [0, 25, 50, 100]).tolist()
    [0.0, 2.25, 4.5, 9.0]
    >>> percentile(image, 50, mask=image > 4)
    7.0
    """
    arr = _image(image)
    scalar = np.ndim(q) == 0
    qs = [_real(v, "q") for v in np.atleast_1d(np.asarray(q, dtype=object)).tolist()]
    if not qs or not all(0 <= v <= 100 for v in qs):
        raise ValueError(f"q must be one or more percentiles in [0, 100], got {q!r}")
    mask = check_device_mask(mask, tuple(arr.shape))
    if mask is not None and not is_device_array(mask) and not mask.any():
        raise ValueError("mask selects no pixel; the statistics are undefined")
    chosen, _ = get_kernel("intensity", "affine", backend, auto=AUTO_NORMALIZE, image=arr)
    dens, intens = implementation("density", chosen), implementation("intensity", chosen)
    arr, mask = _place_stats(chosen, dens, arr, mask)
    flat = _flat(arr)
    mflat = _NOMASK if mask is None else _flat(mask).view(np.uint8)
    with _threads(dens, arr.size):
        out = _percentiles(dens, intens, flat, mflat, qs)
    return float(out[0]) if scalar else np.asarray(out, np.float64)


def _normalize(arr, method, lower, upper, center, width, mask, chosen, affine, dens):
    flat = _flat(arr)
    mflat = _NOMASK if mask is None or method == "window" else _flat(mask).view(np.uint8)
    clip = True
    if method == "window":
        shift, scale = center - width / 2.0, 1.0 / width
        if flat.dtype.kind == "f":
            lo, hi, nan = dens.value_range(flat, _NOMASK, _nchunks(dens, flat.size))
            if nan:
                raise ValueError("image contains NaN, for which normalisation has no defined "
                                 "result")
    else:
        if method == "percentile":
            intens = implementation("intensity", chosen)
            p_lo, p_hi = _percentiles(dens, intens, flat, mflat, (lower, upper))
            shift, spread = p_lo, p_hi - p_lo
        elif method == "zscore":
            n, mean, m2 = dens.moments(flat, mflat, _BLOCK, _nchunks(dens, flat.size))
            _check_moments(flat, mean, m2)
            clip = False
            shift, spread = mean, math.sqrt(m2 / n)
        else:
            lo, hi = _finite_range(dens, flat, mflat)
            clip = False
            shift, spread = lo, hi - lo
        scale = 1.0 / spread if spread > 0 else 1.0
    if chosen == "cuda":
        from numba import cuda

        out = cuda.device_array(arr.shape, np.float32)
    else:
        out = np.empty(arr.shape, np.float32)
    # float32 arithmetic loses nothing that matters when the input and the shift are exact in
    # float32: each of the two roundings is <= 6e-8 relative to the result (a float64 shift that is
    # not exact, e.g. a mean, would add |shift| * 6e-8 absolute, too much for small spreads)
    single = flat.dtype != np.float64 and float(np.float32(shift)) == shift
    affine(flat, shift, scale, clip, single, out.reshape(-1), _nchunks(dens, flat.size))
    return out


def _normalize_segments(arr, method, lower, upper, center, width, dens, intens):
    """``batch=True`` on the GPU: the statistics of every image of the device stack ``arr`` in one
    launch (per-image moments, ranges or order statistics, bit for bit those of one image alone),
    then one output pass with a shift and scale per image."""
    from numba import cuda

    N = arr.shape[0]
    flat = _flat(arr)
    L = flat.size // N
    clip = True
    if method == "window":
        shifts = np.full(N, center - width / 2.0)
        scales = np.full(N, 1.0 / width)
        if flat.dtype.kind == "f" and dens.value_range(flat, _NOMASK, 1)[2]:
            raise ValueError("image contains NaN, for which normalisation has no defined result")
    else:
        if method == "zscore":
            st = dens.moments_segments(flat, N, _BLOCK)
            for n, mean, m2 in st:
                _check_moments(flat, mean, m2)
            clip = False
            shifts, spreads = st[:, 1], np.sqrt(st[:, 2] / st[:, 0])
        else:
            r = dens.value_range_segments(flat, N)
            if r[:, 2].any() or not np.isfinite(r[:, :2]).all():
                raise ValueError("image contains NaN or infinity; its statistics are undefined")
            if method == "minmax":
                clip = False
                shifts, spreads = r[:, 0], r[:, 1] - r[:, 0]
            else:
                virt, prev, ks = _positions(L, (lower, upper))
                vals = intens.order_stats(flat, _NOMASK, ks, nseg=N)
                p = _interpolate_rows(L, virt, prev, ks, vals)
                shifts, spreads = p[:, 0], p[:, 1] - p[:, 0]
        scales = np.where(spreads > 0, 1.0 / np.where(spreads > 0, spreads, 1.0), 1.0)
    single = [flat.dtype != np.float64 and float(np.float32(s)) == s for s in shifts]
    out = cuda.device_array(arr.shape, np.float32)
    intens.affine_segments(flat, L, shifts, scales, clip, single, out.reshape(-1))
    return out
