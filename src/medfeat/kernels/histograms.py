"""Intensity distributions: histogram, kernel density estimate, Otsu and maximum-entropy thresholds.

The public face of the density kernels. Each function validates its arguments, prepares flat,
contiguous inputs and small lookup arrays, and hands the loops over pixels to
``medfeat._kernels.cython._density_cy`` (or ``medfeat._kernels.numba_cuda.density``, same names).

Integer images (uint8, uint16, int16) are never binned pixel by pixel: one parallel pass counts
every distinct value (per-thread private tables merged afterwards), and everything else -- the bin
of each value, the image range, the moments -- is derived from those at most 65 536 counts.

All functions work on arrays of any rank (2-D images, 3-D volumes); they flatten their input.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import numbers

import numpy as np

from . import _dask
from ._dispatch import device_helpers, get_kernel, implementation, is_device_array
from ._validate import SUPPORTED_DTYPES, check_device_image, check_positive

# The CPU backend of "auto": Cython, the faster of the two CPU implementations this family once had
# (its counting loops use four/two sub-tables with no bounds or wraparound code, and it has no
# per-call dispatch overhead; benchmarks/results/architecture-2026-12-03.md).
AUTO_HISTOGRAM = AUTO_THRESHOLD = AUTO_DENSITY = ("cython",)

_FAMILY = "density"
#: (offset, number of values) of the direct-indexed count table per integer dtype.
_INT_TABLE = {
    np.dtype(np.uint8): (0, 256),
    np.dtype(np.uint16): (0, 65536),
    np.dtype(np.int16): (-32768, 65536),
}
_NOMASK = np.zeros(0, np.uint8)
_NOWEIGHT = np.zeros(0, np.float64)
_NOMASK.flags.writeable = False
_NOWEIGHT.flags.writeable = False
#: below this many pixels per thread a parallel loop costs more than it saves.
_MIN_CHUNK = 1 << 15


# ----------------------------------------------------------------------------------------- helpers

def _image(image, name="image", min_ndim=1):
    """Validate ``image`` (any rank >= ``min_ndim``, supported dtype, non-empty) and return it as an
    array (``min_ndim`` 2: a stack of images, ``batch=True``)."""
    from ._validate import check_image

    if min_ndim > 1:
        name = "image stack"
    if image is None:
        raise ValueError(f"{name} must be an array, got None")
    if is_device_array(image):
        # a GPU array: checked from its metadata, kept on the GPU (only backend "cuda" takes it)
        check_device_image(image, name=name, ndim=tuple(range(min_ndim, 65)),
                           dtypes=SUPPORTED_DTYPES)
        return device_helpers().as_device(image)
    arr = image if isinstance(image, np.ndarray) else None
    if arr is None:
        try:
            arr = np.asarray(image)
        except Exception as exc:
            raise ValueError(f"{name} must be convertible to a NumPy array: {exc}") from None
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension"
                         f"{'s' if min_ndim > 1 else ''}, got a {arr.ndim}-D array")
    return check_image(arr, name=name, ndim=arr.ndim, dtypes=SUPPORTED_DTYPES)


def _check_batch(batch, hist=None):
    if not isinstance(batch, (bool, np.bool_)):
        raise ValueError(f"batch must be True or False, got {batch!r}")
    if batch and hist is not None:
        raise ValueError("hist is not supported with batch=True (it describes a single image)")
    return bool(batch)


def _flat(arr):
    """A read-only, C-contiguous 1-D view (a copy only if ``arr`` is not contiguous). Read-only so
    that Numba compiles one specialisation per dtype whether or not the caller's array is
    writable. A GPU array gives a flat device view (it must be C-contiguous: no copy is made)."""
    if is_device_array(arr):
        _common = device_helpers()
        return _common.flat(_common.as_device(arr))
    flat = np.ascontiguousarray(arr).reshape(-1).view()
    flat.flags.writeable = False
    return flat


def _nchunks(impl, n):
    """Chunks (= threads) for a parallel loop over ``n`` pixels: the backend's threads, at most the
    calling thread's Numba setting (``numba.get_num_threads()``, so that one setting, e.g. one
    thread per feature-extraction worker, governs every kernel), fewer for a small image, and
    enough that no chunk reaches 2**31 pixels (uint32 tables).

    It never depends on the machine's load: floating-point sums are combined per chunk, so a
    load-dependent count would make results differ (in the last bits) from one call to the next.
    """
    import numba

    k = min(impl.max_threads(), numba.get_num_threads(), n // _MIN_CHUNK)
    return int(max(1, k, -(-n // (1 << 31))))


@contextlib.contextmanager
def _threads(impl, n):
    """Run the block with the backend's thread count set for ``n`` pixels (Numba's count is a
    per-thread setting, restored afterwards; Cython kernels take theirs as an argument)."""
    prev = impl.set_threads(_nchunks(impl, n))
    try:
        yield
    finally:
        impl.set_threads(prev)


def _int_counts(impl, flat, mask=_NOMASK):
    """``(raw, offset)``: ``raw[k]`` is the number of (masked) pixels equal to ``offset + k``."""
    offset, nvals = _INT_TABLE[flat.dtype]
    nch = _nchunks(impl, flat.size)
    if flat.size < 8 * nvals:
        # a small 16-bit image: zeroing and merging full 65 536-entry tables would cost more than
        # a pass that finds the values' span -- of every pixel, masked or not: the counting pass
        # indexes the table with each pixel's value (adding 0 outside the mask)
        lo, hi, _ = impl.value_range(flat, _NOMASK, nch)
        offset, nvals = int(lo), int(hi) - int(lo) + 1
    return impl.value_counts(flat, mask, offset, nvals, nch), offset


def _raw_extent(raw, offset):
    nz = np.flatnonzero(raw)
    return int(nz[0]) + offset, int(nz[-1]) + offset


def _float_extent(impl, flat, name):
    lo, hi, nan = impl.value_range(flat, _NOMASK, _nchunks(impl, flat.size))
    if nan:
        raise ValueError(f"{name} contains NaN, for which this kernel has no defined result")
    return lo, hi


def _check_moments(flat, mean, m2, name="image"):
    """Raise unless the moments are finite (a NaN or inf anywhere makes them NaN or inf)."""
    if math.isfinite(mean) and math.isfinite(m2):
        return
    if is_device_array(flat):
        raise ValueError(f"{name} contains NaN or infinity, or values too large for float64 "
                         "statistics (|x| > 1e154)")
    if np.isfinite(flat).all():
        raise ValueError(f"{name} has values too large for float64 statistics (|x| > 1e154)")
    raise ValueError(f"{name} contains NaN or infinity, for which this kernel has no defined "
                     "result")


def _check_range(range):
    if range is None:
        return None
    try:
        lo, hi = range
    except (TypeError, ValueError):
        raise ValueError(f"range must be a (min, max) pair, got {range!r}") from None
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ValueError(f"range must hold two real numbers, got {range!r}")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"range must be finite, got {range!r}")
    if lo > hi:
        raise ValueError(f"range must have min <= max, got {range!r}")
    return lo, hi


def _edges(arr, bins, first_edge, last_edge):
    """Bin edges and the scalars the kernels need, exactly as ``numpy.histogram`` derives them: same
    widening of an empty range, same edge dtype (``result_type`` of the range and the image, floats
    for integers), same ``linspace``."""
    if first_edge == last_edge:
        first_edge = first_edge - 0.5
        last_edge = last_edge + 0.5
    # an empty stand-in with arr's dtype: same promotion, and a GPU array is never converted
    bin_type = np.result_type(first_edge, last_edge, np.empty(0, arr.dtype))
    if np.issubdtype(bin_type, np.integer):
        bin_type = np.result_type(bin_type, float)
    edges = np.linspace(first_edge, last_edge, bins + 1, endpoint=True, dtype=bin_type)
    if np.any(edges[:-1] >= edges[1:]):
        raise ValueError(f"bins={bins} is too many for the data range [{first_edge}, {last_edge}]")
    # NumPy keeps first_edge <= v <= last_edge compared in the promoted type of the image and the
    # bound (float32 for a float32 image and Python floats); both are exact in float64.
    if arr.dtype.kind == "f":
        lo = float(np.result_type(arr, first_edge).type(first_edge))
        hi = float(np.result_type(arr, last_edge).type(last_edge))
    else:
        lo, hi = float(first_edge), float(last_edge)
    first = float(first_edge)
    scale = bins / (float(last_edge) - first)
    return edges, (np.ascontiguousarray(edges, dtype=np.float64), lo, hi, first, scale)


def _edges_rows(dtype, bins, lows, highs):
    """:func:`_edges` of many images at once, for their own extents ``lows``, ``highs`` (float64
    arrays of values exact in ``dtype``): ``(edges (N, bins + 1), (edges64, lo, hi, first,
    scale))`` with one row or value per image, bit for bit the rows :func:`_edges` gives image by
    image (the same elementwise operations, NumPy's ``linspace`` vectorised over its start and
    stop). The batch paths of 10 000 images would spend most of their time in 10 000 ``linspace``
    calls otherwise."""
    dtype = np.dtype(dtype)
    floating = dtype.kind == "f"
    f = np.asarray(lows).astype(dtype)
    last = np.asarray(highs).astype(dtype)
    if not floating:
        f, last = f.astype(np.float64), last.astype(np.float64)
    same = f == last
    # the widening of an empty range, in the image's float type (float64 for integers)
    f = np.where(same, f - 0.5, f).astype(f.dtype)
    last = np.where(same, last + 0.5, last).astype(f.dtype)
    if ((last - f) / bins == 0).any():
        # linspace treats a zero step differently when any row has one: do these image by image
        per = [_edges(np.empty(0, dtype), bins, dtype.type(a), dtype.type(b))
               for a, b in zip(lows, highs)]
        return (np.stack([e for e, _ in per]),
                (np.stack([a[0] for _, a in per]),
                 *(np.array([a[k] for _, a in per]) for k in builtins.range(1, 5))))
    edges = np.linspace(f, last, bins + 1, endpoint=True, dtype=f.dtype, axis=1)
    bad = np.flatnonzero((edges[:, :-1] >= edges[:, 1:]).any(axis=1))
    if bad.size:
        n = bad[0]
        raise ValueError(f"bins={bins} is too many for the data range [{f[n]}, {last[n]}] "
                         f"(image {n})")
    first = f.astype(np.float64)
    hi = last.astype(np.float64)
    scale = bins / (hi - first)
    return edges, (np.ascontiguousarray(edges, dtype=np.float64), first, hi, first, scale)


def _histogram(impl, arr, bins, range, name="image", extent=None):
    """``numpy.histogram(arr, bins, range)`` on the chosen backend (``extent``: the float image's
    ``(min, max)`` when the caller has it already, which saves a pass over the pixels)."""
    flat = _flat(arr)
    if flat.dtype.kind == "f":
        if range is None:
            lo, hi = _float_extent(impl, flat, name) if extent is None else extent
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"{name} contains infinity, so its range [{lo}, {hi}] is not "
                                 "finite; pass a finite range")
            first_edge, last_edge = flat.dtype.type(lo), flat.dtype.type(hi)
        else:
            first_edge, last_edge = range
        edges, args = _edges(arr, bins, first_edge, last_edge)
        out = impl.bin_counts(flat, *args, _nchunks(impl, flat.size))
        if out[-1]:
            raise ValueError(f"{name} contains NaN, for which this kernel has no defined result")
        return out[:-1], edges
    raw, offset = _int_counts(impl, flat)
    if range is None:
        vmin, vmax = _raw_extent(raw, offset)
        first_edge, last_edge = flat.dtype.type(vmin), flat.dtype.type(vmax)
    else:
        first_edge, last_edge = range
    edges, args = _edges(arr, bins, first_edge, last_edge)
    return impl.rebin(raw, offset, *args), edges


# ------------------------------------------------------------------------------------------ public

def histogram(image, bins=256, range=None, *, backend="auto", batch=False):
    """Histogram of an image's intensities, identical to :func:`numpy.histogram`.

    Parameters
    ----------
    image : ndarray of uint8, uint16, int16, float32 or float64, any rank
        Input image or volume; it is flattened.
    bins : int, optional
        Number of equal-width bins.
    range : (float, float), optional
        Lower and upper edge of the bins; values outside are ignored. Default: the image's minimum
        and maximum (widened by 0.5 on each side when they are equal, as NumPy does).
    backend : {"auto", "cpu", "cython", "cuda"}, optional
        Implementation to run; ``"auto"`` picks the fastest available (see :mod:`medfeat.kernels`).
    batch : bool, optional
        If True, ``image`` is a stack ``(N, ...)`` of images, each with its own histogram (its own
        range when ``range`` is None): ``counts`` is ``(N, bins)`` and ``edges`` ``(N, bins + 1)``.
        On 'cuda' each stage (ranges, counts) is one launch over the whole stack; on the CPU
        backends the images are done one after the other.

    Returns
    -------
    counts : ndarray of int64, shape (bins,)
        Number of pixels in each bin. Every bin is half-open ``[e_i, e_{i+1})`` except the last,
        which is closed, and a value's bin is decided by comparing it with the edges, so the counts
        equal NumPy's exactly, values on edges included.
    edges : ndarray, shape (bins + 1,)
        Bin edges, of NumPy's dtype: float32 for float32 images (with a float range), float64
        otherwise.

    Raises
    ------
    ValueError
        For an unsupported dtype, an empty or 0-D image, NaN anywhere, infinity when ``range`` is
        not given, a non-positive or non-integer ``bins``, a malformed ``range`` or an unknown
        ``backend``.

    Notes
    -----
    Integer images take a direct-indexed path: one parallel pass counts each distinct value in
    per-thread private tables, then each of the (at most 65 536) values is assigned to its bin.
    Float images are binned with NumPy's index computation ``(v - first) * bins / (last - first)``
    corrected against the edges.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import histogram
    >>> counts, edges = histogram(np.array([[0, 1], [1, 3]], np.uint8), bins=3)
    >>> counts.tolist(), edges.tolist()
    ([1, 2, 1], [0.0, 1.0, 2.0, 3.0])
    """
    if _dask.is_dask_array(image):
        return _dask.histogram(image, bins, range, backend, batch)
    batch = _check_batch(batch)
    arr = _image(image, min_ndim=2 if batch else 1)
    bins = check_positive(bins, name="bins", integer=True)
    range = _check_range(range)
    chosen, impl = _impl("bin_counts", backend, AUTO_HISTOGRAM, arr)
    arr = _place(chosen, arr)
    if batch:
        if chosen == "cuda":
            return _histogram_segments(impl, arr, int(bins), range)
        pairs = []
        for n in builtins.range(arr.shape[0]):
            with _threads(impl, arr[n].size):
                pairs.append(_histogram(impl, arr[n], int(bins), range, name=f"image {n}"))
        return np.stack([c for c, _ in pairs]), np.stack([e for _, e in pairs])
    with _threads(impl, arr.size):
        return _histogram(impl, arr, int(bins), range)


def _segment_ranges(impl, flat, nseg, name="image stack"):
    """``(lo, hi)`` arrays of each image of a flat device stack; raises for NaN anywhere."""
    r = impl.value_range_segments(flat, nseg)
    bad = np.flatnonzero(r[:, 2])
    if bad.size:
        raise ValueError(f"{name} contains NaN (image {bad[0]}), for which this kernel has no "
                         "defined result")
    return r[:, 0], r[:, 1]


def _histogram_segments(impl, arr, bins, range):
    """``batch=True`` of :func:`histogram` on the GPU: per-image ranges in one launch, NumPy's edges
    per image on the host, per-image counts in one launch."""
    N = arr.shape[0]
    flat = _flat(arr)
    dtype = np.dtype(flat.dtype)
    stand_in = np.empty(0, dtype)  # the image's dtype for NumPy's promotions in _edges
    if range is None:
        los, his = _segment_ranges(impl, flat, N)
        if dtype.kind == "f" and not (np.isfinite(los).all() and np.isfinite(his).all()):
            n = int(np.flatnonzero(~(np.isfinite(los) & np.isfinite(his)))[0])
            raise ValueError(f"image {n} contains infinity, so its range [{los[n]}, {his[n]}] is "
                             "not finite; pass a finite range")
        edges, args = _edges_rows(dtype, bins, los, his)
    else:
        e, a = _edges(stand_in, bins, *range)
        edges = np.broadcast_to(e, (N, e.size))
        args = [a[0][None]] + [np.array([a[k]]) for k in builtins.range(1, 5)]
    out = impl.bin_counts_segments(flat, N, *args)
    if out[:, -1].any():
        raise ValueError("image stack contains NaN, for which this kernel has no defined result")
    return out[:, :-1], np.ascontiguousarray(edges)


def _impl(name, backend, order, image):
    """``(backend, module)``: the resolved backend and its module (after checking that it has
    ``name``; the module's other kernels come with it)."""
    chosen, _ = get_kernel(_FAMILY, name, backend, auto=order, image=image)
    return chosen, implementation(_FAMILY, chosen)


def _place(chosen, arr):
    """``arr`` where backend ``chosen`` computes: a NumPy array given to "cuda" is copied to the
    device here, once per call (a GPU array is used in place); CPU backends get it unchanged.

    The summaries these kernels return (counts, edges, thresholds) are small and always come back
    as NumPy arrays or scalars, whatever the input's location."""
    if chosen != "cuda" or arr is None:
        return arr
    return device_helpers().to_device(arr)[0]


def _image_hist(impl, arr, nbins):
    """scikit-image's ``histogram(image, nbins, source_range='image')``: one bin per integer value
    from the minimum to the maximum for integer images, ``nbins`` NumPy bins (centres) for floats.
    Returns ``(counts, centres)``, or ``(None, value)`` for an image with a single value."""
    flat = _flat(arr)
    if flat.dtype.kind == "f":
        lo, hi = _float_extent(impl, flat, "image")
        if lo == hi:
            return None, flat.dtype.type(lo)
        counts, edges = _histogram(impl, arr, nbins, None, extent=(lo, hi))
        return counts, (edges[:-1] + edges[1:]) / 2.0
    raw, offset = _int_counts(impl, flat)
    vmin, vmax = _raw_extent(raw, offset)
    if vmin == vmax:
        return None, flat.dtype.type(vmin)
    return raw[vmin - offset: vmax - offset + 1], np.arange(vmin, vmax + 1)


def _single_value(impl, arr):
    """The image's value if it holds only one, else None."""
    flat = _flat(arr)
    if flat.dtype.kind == "f":
        lo, hi = _float_extent(impl, flat, "image")
    else:
        lo, hi = _raw_extent(*_int_counts(impl, flat))
    return flat.dtype.type(lo) if lo == hi else None


def _given_hist(hist):
    """``hist`` as (counts, centres) arrays, trimmed of empty end bins as scikit-image does."""
    if isinstance(hist, (tuple, list)):
        if len(hist) != 2:
            raise ValueError("hist must be a counts array or a (counts, bin_centers) pair")
        counts, centers = np.asarray(hist[0]), np.asarray(hist[1])
    else:
        counts = np.asarray(hist)
        centers = np.arange(counts.size)
    for what, a in (("counts", counts), ("bin centres", centers)):
        if a.dtype.kind not in "uif" or a.ndim != 1 or a.size == 0:
            raise ValueError(f"hist {what} must be a non-empty 1-D real array, got dtype "
                             f"{a.dtype} and shape {a.shape}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"hist {what} contain NaN or infinity")
    if centers.shape != counts.shape:
        raise ValueError(f"hist counts and bin centres differ in length: {counts.size} vs "
                         f"{centers.size}")
    if (counts < 0).any():
        raise ValueError("hist counts must not be negative")
    nz = np.flatnonzero(counts > 0)
    if nz.size == 0:
        raise ValueError("hist has no non-empty bin")
    counts, centers = counts[nz[0]: nz[-1] + 1], centers[nz[0]: nz[-1] + 1]
    if counts.size < 2:
        raise ValueError("hist has a single non-empty bin; no threshold separates two classes")
    return counts, centers


def _threshold_inputs(image, nbins, hist, backend, batch=False):
    """``(impl, counts, centres)`` for a threshold search, or with ``batch`` a list of those
    triples, one per image of the stack."""
    batch = _check_batch(batch, hist)
    if image is None and hist is None:
        raise ValueError("either image or hist must be provided")
    arr = None if image is None else _image(image, min_ndim=2 if batch else 1)
    if hist is None:
        nbins = check_positive(nbins, name="nbins", integer=True)
    chosen, impl = _impl("otsu_index", backend, AUTO_THRESHOLD, arr)
    arr = _place(chosen, arr)
    if batch:
        if chosen == "cuda":
            return _threshold_hists_segments(impl, arr, int(nbins))
        out = []
        for n in builtins.range(arr.shape[0]):
            with _threads(impl, arr[n].size):
                out.append(_threshold_hist(impl, arr[n], nbins, None))
        return out
    with _threads(impl, 0 if arr is None else arr.size):
        return _threshold_hist(impl, arr, nbins, hist)


def _threshold_hists_segments(impl, arr, nbins):
    """:func:`_image_hist` of every image of a device stack: ranges in one launch, then the counts
    of all images in one launch (one bin per value for integers, ``nbins`` NumPy bins for
    floats)."""
    N = arr.shape[0]
    flat = _flat(arr)
    dtype = np.dtype(flat.dtype)
    los, his = _segment_ranges(impl, flat, N)
    out = [None] * N
    todo = np.flatnonzero(los != his)
    for n in np.flatnonzero(los == his):
        out[n] = (impl, None, dtype.type(los[n]))  # a single value: returned as is
    if dtype.kind != "f":
        if todo.size:
            counts = impl.value_counts_segments(flat, N, los.astype(np.int64), his.astype(np.int64))
            for n in todo:
                out[n] = (impl, counts[n], np.arange(int(los[n]), int(his[n]) + 1))
        return out
    if not (np.isfinite(los).all() and np.isfinite(his).all()):
        raise ValueError("image stack contains infinity, for which this kernel has no defined "
                         "result")
    edges, args = _edges_rows(dtype, nbins, los, his)
    counts = impl.bin_counts_segments(flat, N, *args)[:, :-1]
    centres = (edges[:, :-1] + edges[:, 1:]) / 2.0
    for n in todo:
        out[n] = (impl, counts[n], centres[n])
    return out


def _threshold_hist(impl, arr, nbins, hist):
    if hist is not None:
        # like scikit-image, a single-valued image is returned as is even when hist is given
        if arr is not None:
            value = _single_value(impl, arr)
            if value is not None:
                return impl, None, value
        counts, centers = _given_hist(hist)
        return impl, counts, centers
    counts, centers = _image_hist(impl, arr, int(nbins))
    if counts is None:
        return impl, None, centers
    if counts.size < 2:
        # a float image whose values all fall in one bin cannot happen (min and max are in the end
        # bins and differ); kept as a guard for nbins=1
        raise ValueError("nbins=1 leaves no threshold between two classes")
    return impl, counts, centers


def threshold_otsu(image=None, nbins=256, *, hist=None, backend="auto", batch=False):
    """Threshold by Otsu's method, identical to :func:`skimage.filters.threshold_otsu`.

    Chooses the bin centre that maximises the between-class variance of the two classes it separates
    (Otsu 1979).

    Parameters
    ----------
    image : ndarray of uint8, uint16, int16, float32 or float64, any rank, optional
        Grayscale image or volume.
    nbins : int, optional
        Number of bins for float images. Integer images get one bin per value from their minimum to
        their maximum (scikit-image's rule), whatever ``nbins`` is.
    hist : ndarray or (ndarray, ndarray), optional
        Precomputed histogram: counts, or ``(counts, bin_centers)``. Empty bins at either end are
        dropped. Used instead of the image's histogram when given.
    backend : {"auto", "cpu", "cython", "cuda"}, optional
        Implementation to run.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, ...)`` of images and the result an array of N
        thresholds, one per image (int64 for integer images, the image's float dtype for float
        images). On 'cuda' the ranges and the histograms of all images take one launch each; the
        searches over the counts run on the host. No ``hist`` with ``batch``.

    Returns
    -------
    threshold : NumPy scalar
        A bin centre; pixels ``> threshold`` are the foreground. Its type follows scikit-image:
        int64 for integer images, the image's float dtype for float images, the centres' dtype
        (int64 for counts alone) for ``hist``, and the image's dtype for an image holding a single
        value, which is returned as is.

    Raises
    ------
    ValueError
        If neither ``image`` nor ``hist`` is given, for NaN or infinity in the image, an unsupported
        dtype, an empty image, a malformed or single-bin ``hist``, a non-positive ``nbins`` or an
        unknown ``backend``.

    Notes
    -----
    The arithmetic mirrors scikit-image's (class weights as float32 cumulative sums, means in the
    dtype NumPy's promotion gives) so that near-ties resolve to the same bin.

    References
    ----------
    .. [1] N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. Systems,
       Man, and Cybernetics 9(1), 62-66, 1979.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import threshold_otsu
    >>> image = np.array([[10, 11, 12], [200, 201, 202]], np.uint8)
    >>> int(threshold_otsu(image))
    12
    """
    if _dask.is_dask_array(image):
        return _dask.threshold(threshold_otsu, image, nbins, hist, backend, batch,
                               auto=AUTO_THRESHOLD)
    found = _threshold_inputs(image, nbins, hist, backend, batch)
    return _each(_otsu, found) if batch else _otsu(*found)


def _each(search, found):
    """Thresholds of a batch: the image's dtype for float images, int64 for integer images."""
    values = [search(*f) for f in found]
    kind = np.asarray(values[0]).dtype.kind
    return np.array(values, dtype=np.asarray(values[0]).dtype if kind == "f" else np.int64)


def _otsu(impl, counts, centers):
    if counts is None:
        return centers
    counts32 = np.ascontiguousarray(counts, dtype=np.float32)
    single = np.result_type(np.float32, centers.dtype) == np.float32
    idx = impl.otsu_index(counts32, np.ascontiguousarray(centers, dtype=np.float64), bool(single))
    return centers[idx]


def threshold_maxent(image=None, nbins=256, *, hist=None, backend="auto", batch=False):
    """Threshold by maximum entropy (Kapur, Sahoo & Wong 1985).

    Chooses the bin centre ``t`` that maximises ``H(A) + H(B)``, where A holds the bins up to and
    including ``t`` and B the bins above it, and ``H`` is the Shannon entropy (natural log) of a
    class's histogram normalised to sum to one. The histogram is built exactly as in
    :func:`threshold_otsu`, so the two are comparable.

    Parameters
    ----------
    image : ndarray of uint8, uint16, int16, float32 or float64, any rank, optional
        Grayscale image or volume.
    nbins : int, optional
        Number of bins for float images; integer images get one bin per value (as in Otsu).
    hist : ndarray or (ndarray, ndarray), optional
        Precomputed histogram: counts, or ``(counts, bin_centers)``; empty end bins are dropped.
    backend : {"auto", "cpu", "cython", "cuda"}, optional
        Implementation to run.
    batch : bool, optional
        As in :func:`threshold_otsu`: one threshold per image of a stack.

    Returns
    -------
    threshold : NumPy scalar
        A bin centre; pixels ``> threshold`` are the foreground. Same types as
        :func:`threshold_otsu` (int64 for integer images, the float dtype for float images, the
        image's dtype for a single-valued image, which is returned as is). Ties go to the lowest
        centre.

    Raises
    ------
    ValueError
        As :func:`threshold_otsu`.

    Notes
    -----
    scikit-image has no Kapur threshold. Its entropy-based relatives differ in criterion:
    :func:`skimage.filters.threshold_yen` maximises Yen's "entropic correlation" (a Rényi entropy of
    order 2, Yen, Chang & Chang 1995) and :func:`skimage.filters.threshold_li` minimises the cross
    entropy between the image and its two-level version (Li & Lee 1993). On unimodal or
    long-tailed images (CT, fundus) Kapur tends to land near Yen's threshold; none of them is
    expected to equal this one.

    References
    ----------
    .. [1] J. N. Kapur, P. K. Sahoo, A. K. C. Wong, "A new method for gray-level picture
       thresholding using the entropy of the histogram", Computer Vision, Graphics, and Image
       Processing 29(3), 273-285, 1985.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import threshold_maxent
    >>> image = np.repeat(np.array([10, 20, 30, 200, 210, 220], np.uint8), 10)
    >>> bool(30 <= threshold_maxent(image) < 200)
    True
    """
    if _dask.is_dask_array(image):
        return _dask.threshold(threshold_maxent, image, nbins, hist, backend, batch,
                               auto=AUTO_THRESHOLD)
    found = _threshold_inputs(image, nbins, hist, backend, batch)
    return _each(_maxent, found) if batch else _maxent(*found)


def _maxent(impl, counts, centers):
    if counts is None:
        return centers
    idx = impl.maxent_index(np.ascontiguousarray(counts, dtype=np.float64))
    return centers[idx]


_BANDWIDTHS = ("scott", "silverman")
#: Gaussians are cut at this many bandwidths (exp(-24.5) ~ 2e-11 of the peak).
_TRUNCATE = 7.0
#: linear binning with h steps per bandwidth errs by about peak / (8 h**2) pointwise; 16 steps keep
#: that near 0.05% of the kernel's peak.
_STEPS_PER_BW = 16.0
_MAX_FINE_GRID = 1 << 21


def density(image, *, bandwidth="scott", grid_size=512, backend="auto", batch=False):
    """Gaussian kernel density estimate of an image's intensity distribution.

    The estimate of :class:`scipy.stats.gaussian_kde` (one-dimensional, unweighted), evaluated on an
    even grid by linear binning and a discrete convolution (Silverman 1982; Wand 1994) instead of a
    sum over every pixel at every grid point.

    Parameters
    ----------
    image : ndarray of uint8, uint16, int16, float32 or float64, any rank
        Input image or volume; every pixel is one sample.
    bandwidth : {"scott", "silverman"} or float, optional
        The bandwidth factor, as ``bw_method`` of :class:`scipy.stats.gaussian_kde`: Scott's rule
        ``n**(-1/5)``, Silverman's ``(3n/4)**(-1/5)``, or the factor itself. The Gaussian's standard
        deviation is ``factor * std(image, ddof=1)``.
    grid_size : int, optional
        Number of grid points (at least 2).
    backend : {"auto", "cpu", "cython", "cuda"}, optional
        Implementation to run.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, ...)`` and each image gets its own estimate, the
        same as a call on it alone (the checks and the backend's set-up are done once, so a
        stack of small images costs much less than a loop of calls). The results are then
        ``(N, grid_size)`` arrays.

    Returns
    -------
    grid : ndarray of float64, shape (grid_size,)
        ``numpy.linspace(min - 3 bw, max + 3 bw, grid_size)``: the data range plus three kernel
        standard deviations ``bw`` on each side, where the density has fallen to at most ~1% of a
        lone extreme pixel's peak.
    pdf : ndarray of float64, shape (grid_size,)
        The density at each grid point (it integrates to about 1 over the grid).

    Raises
    ------
    ValueError
        For NaN or infinity, fewer than two pixels or a constant image (zero variance, for which
        ``gaussian_kde`` is undefined too), an unknown ``bandwidth`` string or a non-positive one,
        ``grid_size < 2``, an unsupported dtype or an unknown ``backend``.

    Notes
    -----
    Values are spread linearly onto a grid at least 16 steps per bandwidth (a finer internal grid
    when the output grid is coarser than that) and convolved with the Gaussian sampled on that grid
    (directly, or by FFT for long kernels), then read back at the output points. A kernel narrower
    than 1/256 of a grid step is evaluated exactly at the grid points instead. Integer images are
    binned from their value counts. The result is within 0.1% (integrated absolute difference) of
    ``gaussian_kde(image.ravel(), bw_method=bandwidth)(grid)``.

    References
    ----------
    .. [1] B. W. Silverman, "Algorithm AS 176: Kernel density estimation using the fast Fourier
       transform", Applied Statistics 31(1), 93-99, 1982.
    .. [2] M. P. Wand, "Fast computation of multivariate kernel estimators", Journal of
       Computational and Graphical Statistics 3(4), 433-445, 1994.
    .. [3] D. W. Scott, Multivariate Density Estimation, Wiley, 1992.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import density
    >>> rng = np.random.default_rng(0)
    >>> grid, pdf = density(rng.normal(size=(64, 64)))
    >>> round(float(pdf.sum() * (grid[1] - grid[0])), 3)
    1.0
    """
    batch = _check_batch(batch)
    if _dask.is_dask_array(image):
        if batch:
            raise ValueError("batch=True is not supported for dask arrays; compute the images "
                             "one by one")
        return _dask.density(image, bandwidth, grid_size, backend)
    arr = _image(image, min_ndim=2 if batch else 1)
    if isinstance(bandwidth, str):
        if bandwidth not in _BANDWIDTHS:
            raise ValueError(f"bandwidth must be 'scott', 'silverman' or a positive number; "
                             f"got {bandwidth!r}")
    else:
        check_positive(bandwidth, name="bandwidth")
    grid_size = check_positive(grid_size, name="grid_size", integer=True)
    if grid_size < 2:
        raise ValueError(f"grid_size must be at least 2, got {grid_size}")
    chosen, impl = _impl("linear_bin", backend, AUTO_DENSITY, arr)
    arr = _place(chosen, arr)
    if batch:
        return _density_batch(impl, arr, bandwidth, grid_size)
    with _threads(impl, arr.size):
        return _density(impl, arr, bandwidth, grid_size)


def _density_batch(impl, arr, bandwidth, grid_size):
    """``batch=True`` of :func:`density`: every image of the stack ``arr`` as a call on it
    alone computes it (same thread count, so the same chunked sums)."""
    n = arr.shape[0]
    grids = np.empty((n, grid_size))
    pdfs = np.empty((n, grid_size))
    with _threads(impl, math.prod(arr.shape[1:])):
        for k in builtins.range(n):
            try:
                grids[k], pdfs[k] = _density(impl, arr[k], bandwidth, grid_size)
            except ValueError as exc:
                raise ValueError(f"image {k} of the stack: {exc}") from None
    return grids, pdfs


def _density(impl, arr, bandwidth, grid_size):
    flat = _flat(arr)

    if flat.dtype.kind == "f":
        n, mean, m2 = impl.moments(flat, _NOMASK, 4096, _nchunks(impl, flat.size))
        _check_moments(flat, mean, m2)
        lo, hi = _float_extent(impl, flat, "image")
        values, weights = flat, _NOWEIGHT
    else:
        raw, offset = _int_counts(impl, flat)
        nz = np.flatnonzero(raw)
        weights = raw[nz].astype(np.float64)
        values = (nz + offset).astype(np.float64)
        n = weights.sum()
        mean = float(weights @ values) / n
        m2 = float(weights @ (values - mean) ** 2)
        lo, hi = values[0], values[-1]
    nch = _nchunks(impl, values.size)

    def spread(kind, *args):
        fn = impl.linear_bin if kind == "bin" else impl.gauss_scatter
        return fn(values, weights, *args, nch)

    return _kde(impl, n, m2, lo, hi, bandwidth, grid_size, spread)


def _kde(impl, n, m2, lo, hi, bandwidth, grid_size, spread):
    """The estimate on its grid from the sample's size, sum of squared deviations and range;
    ``spread("bin", g0, dx, size)`` bins the sample linearly onto a grid and
    ``spread("scatter", g0, dx, size, bw, cut)`` sums its Gaussians at the grid points (the
    in-memory arrays, or chunk by chunk for a dask array)."""
    if n < 2 or m2 <= 0:
        raise ValueError("image is constant (zero variance) or has a single pixel; its kernel "
                         "density estimate is undefined")
    std = math.sqrt(m2 / (n - 1))
    if bandwidth == "scott":
        factor = n ** (-0.2)
    elif bandwidth == "silverman":
        factor = (n * 0.75) ** (-0.2)
    else:
        factor = float(bandwidth)
    bw = factor * std
    g0, g1 = lo - 3 * bw, hi + 3 * bw
    grid = np.linspace(g0, g1, grid_size)
    dx = (g1 - g0) / (grid_size - 1)

    up = max(1, math.ceil(_STEPS_PER_BW * dx / bw))
    fine = (grid_size - 1) * up + 1
    if fine > _MAX_FINE_GRID:
        # kernel far narrower than a grid step: evaluate the Gaussians exactly at the grid points
        sums = spread("scatter", g0, dx, grid_size, bw, _TRUNCATE * bw)
    else:
        dxf = dx / up
        binned = spread("bin", g0, dxf, fine)
        half = min(fine - 1, math.ceil(_TRUNCATE * bw / dxf))
        kern = np.exp(-0.5 * (np.arange(-half, half + 1) * (dxf / bw)) ** 2)
        if fine * kern.size <= 4_000_000:
            sums = impl.convolve_same(binned, kern, _nchunks(impl, fine * kern.size // 64))
        else:
            nfft = 1 << (fine + kern.size - 1).bit_length()
            full = np.fft.irfft(np.fft.rfft(binned, nfft) * np.fft.rfft(kern, nfft), nfft)
            sums = full[half: half + fine]
        sums = sums[::up]
    pdf = np.maximum(sums, 0.0) / (n * bw * math.sqrt(2 * math.pi))
    return grid, pdf
