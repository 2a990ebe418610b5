"""Descriptors built on :mod:`medfeat.kernels`: edges, thresholds, granulometry, intensity density.

These have no IBSI definition; each function documents what it measures. All accept a 2-D image
or a 3-D volume (Canny runs slice by slice on volumes, since the kernel is 2-D) and an optional
mask, and return a dict of finite floats. Intensities are rescaled to [0, 1] by the ROI's minimum
and maximum where a threshold in image units would otherwise make the result depend on the
image's scale (Canny); a constant region gives zeros.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ._fast import percentiles
from .first_order import _check_image, _check_mask, _offsets

__all__ = ["edge_stats", "canny_density", "threshold_fractions", "granulometry",
           "density_summary", "zone_stats", "zone_names"]

_KERNEL_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def _as_kernel_input(image):
    arr = _check_image(image)
    if arr.dtype.type not in _KERNEL_DTYPES:
        arr = arr.astype(np.float64)
    return arr


def _prepare(image, mask):
    arr = _as_kernel_input(image)
    return arr, _check_mask(mask, arr.shape)


def _unit(arr, m):
    vals = arr if m is None else arr[m]
    lo, hi = float(vals.min()), float(vals.max())
    if hi == lo:
        return np.zeros(arr.shape), False
    return (arr.astype(np.float64) - lo) / (hi - lo), True


def edge_stats(image, mask=None, *, operator="sobel", backend="auto"):
    """Statistics of the gradient magnitude (Sobel or Prewitt) inside the region.

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Finite intensities.
    mask : array_like of bool, optional
        Region of interest; the magnitude is computed on the whole image, then summarised in it.
    operator : {"sobel", "prewitt"}, optional
        Which kernel of :mod:`medfeat.kernels.edges`.
    backend : str, optional
        Kernel backend.

    Returns
    -------
    dict
        ``mean``, ``std``, ``p50``, ``p90`` and ``max`` of the magnitude, on intensities rescaled
        to [0, 1] (so the values do not depend on the image's units).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((8, 8)); img[:, 4:] = 1
    >>> f = edge_stats(img)
    >>> f["max"] > 0, f["p50"] == 0
    (True, True)
    """
    if operator not in ("sobel", "prewitt"):
        raise ValueError(f"operator must be 'sobel' or 'prewitt', got {operator!r}")
    arr, m = _prepare(image, mask)
    return _edge_summary(_unit(arr, m), m, operator, backend)


_EDGE_NAMES = ("mean", "std", "p50", "p90", "max")


def _edge_summary(unit_varies, m, operator, backend):
    """:func:`edge_stats` from the rescaled image ``_unit`` made (shared by both operators)."""
    unit, varies = unit_varies
    if not varies:
        return dict.fromkeys(_EDGE_NAMES, 0.0)
    mag = getattr(kernels, operator)(unit, backend=backend)
    v = np.asarray(mag if m is None else mag[m], dtype=np.float64).ravel()
    # the same values as np.percentile(v, (50, 90)), by selection instead of partitioning
    p50, p90 = percentiles(v, (50, 90))
    return {"mean": float(v.mean()), "std": float(v.std()), "p50": float(p50),
            "p90": float(p90), "max": float(v.max())}


def canny_density(image, mask=None, *, sigma=1.0, low_threshold=0.1, high_threshold=0.2,
                  backend="auto"):
    """Fraction of the region's pixels that the Canny detector marks as edges.

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Finite intensities, rescaled to [0, 1] before detection; volumes are processed slice by
        slice along the first axis.
    mask : array_like of bool, optional
        Region of interest.
    sigma, low_threshold, high_threshold : float, optional
        Passed to :func:`medfeat.kernels.canny` (thresholds on the rescaled image).
    backend : str, optional
        Kernel backend.

    Returns
    -------
    dict
        ``density``: edge pixels / region pixels.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((16, 16)); img[4:12, 4:12] = 1
    >>> 0 < canny_density(img)["density"] < 0.5
    True
    """
    arr, m = _prepare(image, mask)
    return _canny_summary(_unit(arr, m), m, sigma, low_threshold, high_threshold, backend)


def _canny_summary(unit_varies, m, sigma, low_threshold, high_threshold, backend):
    unit, varies = unit_varies
    if not varies:
        return {"density": 0.0}
    if unit.ndim == 2:
        edges = kernels.canny(unit, sigma, low_threshold, high_threshold, backend=backend)
    else:
        edges = np.stack([kernels.canny(s, sigma, low_threshold, high_threshold,
                                        backend=backend) for s in unit])
    sel = edges if m is None else edges[m]
    return {"density": float(np.count_nonzero(sel) / sel.size)}


def threshold_fractions(image, mask=None, *, nbins=256, backend="auto"):
    """Foreground fractions and relative positions of the Otsu and maximum-entropy thresholds.

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Finite intensities.
    mask : array_like of bool, optional
        Region of interest; thresholds are computed from its intensities only.
    nbins : int, optional
        Histogram bins for float images (integer images use one bin per value).
    backend : str, optional
        Kernel backend.

    Returns
    -------
    dict
        ``otsu_fraction`` and ``maxent_fraction`` (share of region pixels above each threshold),
        ``otsu_level`` and ``maxent_level`` (the threshold's position between the region's
        minimum, 0, and maximum, 1). All 0 for a constant region.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((10, 10), np.uint8); img[:, :3] = 200
    >>> threshold_fractions(img)["otsu_fraction"]
    0.3
    """
    arr, m = _prepare(image, mask)
    vals = arr.ravel() if m is None else arr[m]
    lo, hi = float(vals.min()), float(vals.max())
    if hi == lo:
        return dict.fromkeys(("otsu_fraction", "otsu_level", "maxent_fraction", "maxent_level"),
                             0.0)
    # One histogram for both thresholds, built as the kernels would build it (one bin per value
    # for integers, ``nbins`` equal bins for floats), then handed over with ``hist=``.
    if vals.dtype.kind in "iu":
        counts = np.bincount(_offsets(vals.ravel(), int(lo)))
        centers = np.arange(int(lo), int(lo) + counts.size)
    else:
        counts, edges = kernels.histogram(vals, nbins, backend=backend)
        centers = (edges[:-1] + edges[1:]) / 2
    out = {}
    for name, fn in (("otsu", kernels.threshold_otsu), ("maxent", kernels.threshold_maxent)):
        t = float(fn(hist=(counts, centers), backend=backend))
        out[f"{name}_fraction"] = float(np.count_nonzero(vals > t) / vals.size)
        out[f"{name}_level"] = (t - lo) / (hi - lo)
    return {k: out[k] for k in ("otsu_fraction", "otsu_level", "maxent_fraction",
                                "maxent_level")}


def granulometry(image, mask=None, *, radii=(1, 2, 4), backend="auto"):
    """Grey-level opening spectrum (pattern spectrum) over growing disks (balls in 3-D).

    With ``S(r)`` the sum over the region of the opening by a disk of radius ``r`` (of the image
    shifted so the region's minimum is 0) and ``S(0)`` the sum of the shifted image, the spectrum
    is ``(S(r_prev) - S(r)) / S(0)`` for each radius: the share of the image's "mass" in bright
    structures narrower than the disk (Serra 1982; Maragos 1989).

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Finite intensities.
    mask : array_like of bool, optional
        Region of interest (openings run on the whole image, sums over the region).
    radii : sequence of int, optional
        Increasing radii.
    backend : str, optional
        Kernel backend.

    Returns
    -------
    dict
        ``r{r}`` for each radius; all 0 for a constant region.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((20, 20)); img[5, 5] = 1; img[10:16, 10:16] = 1
    >>> g = granulometry(img, radii=(1, 2))
    >>> round(g["r1"], 3), round(g["r2"], 3)
    (0.135, 0.216)
    """
    radii = [int(r) for r in radii]
    if not radii or any(r < 1 for r in radii) or sorted(set(radii)) != radii:
        raise ValueError(f"radii must be increasing positive integers, got {radii!r}")
    arr, m = _prepare(image, mask)
    vals = arr if m is None else arr[m]
    lo = vals.min()
    if lo == vals.max():
        return {f"r{r}": 0.0 for r in radii}
    work = None
    if arr.dtype.kind in "iu" and (m is None or arr.min() >= lo):
        # Integers shifted by the ROI minimum stay exact in 8 or 16 bits, and openings commute
        # with the shift: the same sums as the float32 path, on a cheaper dtype.
        top = int(arr.max()) - int(lo)
        for t in (np.uint8, np.uint16):
            if top <= np.iinfo(t).max:
                work = arr if (t == arr.dtype and lo == 0) else (
                    arr.astype(np.int32) - int(lo)).astype(t)
                break
    if work is None:
        work = (arr.astype(np.float64) - float(lo)).astype(np.float32)
    total = float(np.sum(work if m is None else work[m], dtype=np.float64))
    prev = total
    out = {}
    fp = kernels.disk if arr.ndim == 2 else kernels.ball
    for r in radii:
        op = kernels.opening(work, fp(r), backend=backend)
        s = float(np.sum(op if m is None else op[m], dtype=np.float64))
        out[f"r{r}"] = (prev - s) / total
        prev = s
    return out


def density_summary(image, mask=None, *, grid_size=256, backend="auto"):
    """Summaries of the Gaussian kernel density estimate of the region's intensities.

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Finite intensities.
    mask : array_like of bool, optional
        Region of interest.
    grid_size : int, optional
        Grid points of :func:`medfeat.kernels.density`.
    backend : str, optional
        Kernel backend.

    Returns
    -------
    dict
        ``peak_level`` (where the density peaks, 0 at the region's minimum and 1 at its
        maximum), ``peak_height`` (the peak density times the intensity range, so unit-free),
        ``n_modes`` (local maxima above 5 % of the peak) and ``entropy`` (differential entropy in
        bits of the density on [0, 1]-rescaled intensities). All 0 for a constant region.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.r_[np.zeros(50), np.ones(50)].reshape(10, 10)
    >>> density_summary(img)["n_modes"]
    2.0
    """
    arr, m = _prepare(image, mask)
    vals = arr.ravel() if m is None else arr[m]
    lo, hi = float(vals.min()), float(vals.max())
    names = ("peak_level", "peak_height", "n_modes", "entropy")
    if hi == lo or vals.size < 2:
        return dict.fromkeys(names, 0.0)
    grid, pdf = kernels.density(vals, grid_size=grid_size, backend=backend)
    span = hi - lo
    k = int(np.argmax(pdf))
    peak = pdf[k]
    inner = pdf[1:-1]
    modes = np.count_nonzero((inner > pdf[:-2]) & (inner >= pdf[2:]) & (inner > 0.05 * peak))
    step = (grid[1] - grid[0]) / span
    q = pdf * span
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(q > 0, q * np.log2(np.where(q > 0, q, 1.0)), 0.0)) * step
    return {"peak_level": float((grid[k] - lo) / span), "peak_height": float(peak * span),
            "n_modes": float(modes), "entropy": float(h)}


#: Cells per axis of the :func:`zone_stats` grid (4 x 4 on images, 4 x 4 x 4 on volumes).
ZONES = 4


def zone_names(ndim, cells=ZONES):
    """Keys of :func:`zone_stats` for an image of ``ndim`` axes, in its order.

    Parameters
    ----------
    ndim : {2, 3}
        Axes of one image (2) or volume (3).
    cells : int, optional
        Cells per axis.

    Returns
    -------
    tuple of str
        ``mean_<i>`` for every cell, then ``std_<i>``; cells numbered in C order (the last axis
        fastest).

    Examples
    --------
    >>> zone_names(2, cells=2)
    ('mean_0', 'mean_1', 'mean_2', 'mean_3', 'std_0', 'std_1', 'std_2', 'std_3')
    """
    n = int(cells) ** int(ndim)
    return tuple(f"mean_{i}" for i in range(n)) + tuple(f"std_{i}" for i in range(n))


def _cell_bounds(size, cells):
    """``cells`` non-empty index ranges covering ``[0, size)``: pixel ``i`` is in cell
    ``i * cells // size`` (cells share pixels when the axis is shorter than ``cells``)."""
    edges = -(-np.arange(cells + 1) * size // cells)
    lo = np.minimum(edges[:-1], size - 1)
    hi = np.maximum(edges[1:], lo + 1)
    return lo, hi


def zone_stats(image, mask=None, *, cells=ZONES):
    """Mean and standard deviation of the intensities in each cell of a regular grid.

    Where the global families summarise the whole region, these say *where* it is bright or
    varied: a ``cells`` x ``cells`` grid (``cells`` x ``cells`` x ``cells`` on volumes) laid over the image,
    or over the bounding box of ``mask``. This is the spatial pooling of the bag-of-features
    literature (the spatial pyramid of Lazebnik, Schmid and Ponce, CVPR 2006, at one level) on
    raw intensities, and it assumes images of one kind are roughly aligned, as MedMNIST's centred
    crops and most acquisition protocols are; it is therefore not in the
    :class:`~medfeat.features.FeatureExtractor` default, and the harness's model selection adds
    it only where validation says it helps.

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Finite intensities (the values' own units; no rescaling).
    mask : array_like of bool, optional
        Region of interest. The grid covers its bounding box and each cell's statistics use the
        region's pixels in it; a cell without any takes the region's mean and a spread of 0.
    cells : int, optional
        Cells per axis: pixel ``i`` of an axis of ``n`` is in cell ``i * cells // n`` (an axis
        shorter than ``cells`` pixels gets cells that share pixels).

    Returns
    -------
    dict
        Keys :func:`zone_names` ``(image.ndim, cells)``: ``mean_<i>`` and ``std_<i>`` (population
        standard deviation) of cell ``i`` in C order.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((8, 8)); img[:4, :4] = 10
    >>> z = zone_stats(img, cells=2)
    >>> [z[f"mean_{i}"] for i in range(4)]
    [10.0, 0.0, 0.0, 0.0]
    """
    arr = _check_image(image)
    m = _check_mask(mask, arr.shape)
    if not (isinstance(cells, (int, np.integer)) and not isinstance(cells, bool) and cells >= 1):
        raise ValueError(f"cells must be a positive integer, got {cells!r}")
    cells = int(cells)
    x = arr.astype(np.float64)
    if m is None:
        box = tuple(slice(0, s) for s in x.shape)
        w = np.ones(x.shape)
    else:
        where = np.nonzero(m)
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in where)
        w = m[box].astype(np.float64)
    x = x[box]
    centre = float((x * w).sum() / w.sum())
    x = (x - centre) * w                 # centred: the variances below do not cancel
    sums = [w, x, x * x]
    for axis, size in enumerate(x.shape):
        lo, hi = _cell_bounds(size, cells)
        sums = [np.stack([np.take(a, np.arange(a_lo, a_hi), axis=axis).sum(axis=axis)
                          for a_lo, a_hi in zip(lo, hi)], axis=axis) for a in sums]
    count, s1, s2 = (a.ravel() for a in sums)
    filled = count > 0
    mean = np.where(filled, s1 / np.maximum(count, 1.0), 0.0)
    var = np.where(filled, s2 / np.maximum(count, 1.0) - mean ** 2, 0.0)
    std = np.sqrt(np.maximum(var, 0.0))
    names = zone_names(arr.ndim, cells)
    values = np.concatenate([mean + centre, std])
    return {k: float(v) for k, v in zip(names, values)}
