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
           "density_summary"]

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
