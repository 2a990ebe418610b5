"""First-order features: IBSI-1 intensity statistics and intensity-histogram families.

Definitions follow the IBSI-1 reference manual (Zwanenburg et al., Radiology 295:328-338, 2020;
arXiv:1612.07003), section 3.3 "Intensity-based statistical features" and section 3.4 "Intensity
histogram features"; discretisation follows section 2.7. Choices the manual leaves open are:

- variance, skewness and kurtosis are the population (1/N) moments; kurtosis is *excess* kurtosis
  (``m4 / m2**2 - 3``); skewness and kurtosis are 0 for a constant region (IBSI 3.3.3, 3.3.4);
- percentiles use linear interpolation between order statistics (NumPy's default ``"linear"``);
- entropy is in bits (log2);
- the coefficient of variation and the quartile coefficient of dispersion are 0 when their
  denominator is 0 (a constant or zero-centred region), so that every feature stays finite;
- fixed bin number: ``floor(Ng (x - min) / (max - min)) + 1``, the maximum going to bin ``Ng``;
  fixed bin width: ``floor((x - origin) / w) + 1`` with ``origin`` the ROI minimum unless
  ``min_value`` is given (IBSI 2.7);
- the histogram mode breaks ties towards the lowest grey level.
"""

from __future__ import annotations

import numpy as np

__all__ = ["intensity_stats", "histogram_stats", "discretise", "roi_values",
           "INTENSITY_NAMES", "HISTOGRAM_NAMES"]

INTENSITY_NAMES = ("mean", "variance", "skewness", "kurtosis", "median", "minimum", "p10", "p90",
                   "maximum", "iqr", "range", "mad", "rmad", "medad", "cov", "qcod", "energy",
                   "rms")
HISTOGRAM_NAMES = ("mean", "variance", "skewness", "kurtosis", "median", "minimum", "p10", "p90",
                   "maximum", "mode", "iqr", "range", "mad", "rmad", "medad", "cov", "qcod",
                   "entropy", "uniformity", "max_grad", "max_grad_gl", "min_grad", "min_grad_gl")


def _check_image(image, name="image"):
    arr = np.asarray(image)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be 2-D or 3-D, got {arr.ndim}-D")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _check_mask(mask, shape):
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != shape:
        raise ValueError(f"mask has shape {m.shape}, image has {shape}")
    if m.dtype.kind not in "biuf":
        raise ValueError(f"mask must be boolean or numeric, got dtype {m.dtype}")
    m = m.astype(bool, copy=False)
    if not m.any():
        raise ValueError("mask selects no pixel")
    return m


def roi_values(image, mask=None):
    """The intensities inside the region of interest, as a 1-D float64 array.

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Real-valued image or volume (finite).
    mask : array_like of bool, optional
        Region of interest, same shape; ``None`` means the whole image.

    Returns
    -------
    ndarray of float64
        The selected intensities.

    Raises
    ------
    ValueError
        For a non-numeric, complex, empty, non-finite or wrongly shaped image, a mask of another
        shape or an empty mask.

    Examples
    --------
    >>> import numpy as np
    >>> roi_values(np.array([[1, 2], [3, 4]]), [[True, False], [False, True]]).tolist()
    [1.0, 4.0]
    """
    arr = _check_image(image)
    m = _check_mask(mask, arr.shape)
    vals = arr if m is None else arr[m]
    return np.asarray(vals, dtype=np.float64).ravel()


def _offsets(x, lo):
    """``x - lo`` as non-negative intp indices, without wrapping in ``x``'s own dtype."""
    if x.dtype == bool:
        x = x.view(np.uint8)
    if x.dtype.kind == "u":
        return (x - x.dtype.type(lo)).astype(np.intp)        # x >= lo: stays in range
    out = x.astype(np.intp)
    out -= lo
    return out


def _weighted(x):
    """``x`` as sorted distinct values and their counts (a counting pass for integers)."""
    if x.dtype.kind in "iub":
        lo = int(x.min())
        span = int(x.max()) - lo + 1
        if span <= 1 << 20:
            # (in intp: a signed 16-bit difference such as 30000 - (-30000) would wrap)
            counts = np.bincount(_offsets(x.ravel(), lo), minlength=span)
            nz = np.flatnonzero(counts)
            return (nz + lo).astype(np.float64), counts[nz].astype(np.float64)
    v = np.sort(np.asarray(x, dtype=np.float64).ravel())
    return v, None


def _wsum(a, w):
    # Weighted sum without BLAS (whose threads only add overhead at these sizes).
    return a.sum() if w is None else (a * w).sum()


def _percentiles(v, cum, n, qs):
    # NumPy's "linear" method on the order statistics of the sample that ``v``, with cumulative
    # counts ``cum``, describes: x[k] = v[first index whose cumulative count exceeds k].
    pos = (n - 1) * np.asarray(qs, dtype=np.float64) / 100.0
    lo = np.floor(pos)
    hi = np.minimum(lo + 1, n - 1)
    xlo = v[np.searchsorted(cum, lo, side="right")]
    xhi = v[np.searchsorted(cum, hi, side="right")]
    return xlo + (pos - lo) * (xhi - xlo)


def _stats(v, w):
    """The statistics shared by both families, on the sample of distinct sorted values ``v`` with
    counts ``w`` (``None``: each once)."""
    cum = np.arange(1.0, v.size + 1) if w is None else np.cumsum(w)
    n = cum[-1]
    mean = _wsum(v, w) / n
    d = v - mean
    d2 = d * d
    m2 = _wsum(d2, w) / n
    if m2 > 0:
        skew = _wsum(d2 * d, w) / n / m2 ** 1.5
        kurt = _wsum(d2 * d2, w) / n / m2 ** 2 - 3.0
    else:
        skew = kurt = 0.0
    p10, p25, p50, p75, p90 = _percentiles(v, cum, n, (10, 25, 50, 75, 90))
    inner = (v >= p10) & (v <= p90)
    vi = v[inner]
    wi = None if w is None else w[inner]
    ni = vi.size if w is None else wi.sum()
    rmad = _wsum(np.abs(vi - _wsum(vi, wi) / ni), wi) / ni if ni else 0.0
    std = np.sqrt(m2)
    return {
        "mean": mean,
        "variance": m2,
        "skewness": skew,
        "kurtosis": kurt,
        "median": p50,
        "minimum": v[0],
        "p10": p10,
        "p90": p90,
        "maximum": v[-1],
        "iqr": p75 - p25,
        "range": v[-1] - v[0],
        "mad": _wsum(np.abs(d), w) / n,
        "rmad": rmad,
        "medad": _wsum(np.abs(v - p50), w) / n,
        "cov": std / mean if mean != 0 else 0.0,
        "qcod": (p75 - p25) / (p75 + p25) if (p75 + p25) != 0 else 0.0,
        "_n": n,
        "_energy": _wsum(v * v, w),
    }


def intensity_stats(image, mask=None):
    """IBSI-1 intensity-based statistical features of a 2-D image or 3-D volume.

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Real-valued, finite intensities.
    mask : array_like of bool, optional
        Region of interest (same shape); default the whole image.

    Returns
    -------
    dict of str to float
        The 18 features of IBSI-1 section 3.3, in this order: ``mean``, ``variance``,
        ``skewness``, ``kurtosis`` (excess), ``median``, ``minimum``, ``p10``, ``p90``,
        ``maximum``, ``iqr``, ``range``, ``mad`` (mean absolute deviation), ``rmad`` (robust mean
        absolute deviation, over values in ``[p10, p90]``), ``medad`` (median absolute deviation,
        the mean distance to the median as IBSI defines it), ``cov`` (coefficient of variation),
        ``qcod`` (quartile coefficient of dispersion), ``energy`` (sum of squares) and ``rms``.

    Raises
    ------
    ValueError
        For bad input (see :func:`roi_values`).

    Notes
    -----
    Moments are population moments (IBSI 3.3.2-3.3.4); see the module notes for the choices made.

    References
    ----------
    Zwanenburg A. et al., "The Image Biomarker Standardization Initiative", Radiology 295 (2020),
    reference manual arXiv:1612.07003, section 3.3.

    Examples
    --------
    >>> import numpy as np
    >>> f = intensity_stats(np.array([[1, 2], [3, 4]], np.uint8))
    >>> float(f["mean"]), float(f["variance"]), float(f["energy"]), float(f["kurtosis"])
    (2.5, 1.25, 30.0, -1.36)
    """
    arr = _check_image(image)
    m = _check_mask(mask, arr.shape)
    s = _stats(*_weighted(arr.ravel() if m is None else arr[m]))
    s["energy"] = s["_energy"]
    s["rms"] = np.sqrt(s["_energy"] / s["_n"])
    return {k: float(s[k]) for k in INTENSITY_NAMES}


def discretise(values, *, bin_width=None, bins=None, min_value=None):
    """Discretise intensities into grey levels 1, 2, ... (IBSI-1 section 2.7).

    Parameters
    ----------
    values : array_like
        Intensities (any shape).
    bin_width : float, optional
        Fixed bin size ``w``: ``floor((x - origin) / w) + 1``.
    bins : int, optional
        Fixed bin number ``Ng``: ``floor(Ng (x - min) / (max - min)) + 1``, the maximum in bin
        ``Ng``; a constant input is all level 1.
    min_value : float, optional
        Origin of the fixed-bin-width grid (default: the minimum of ``values``); values below it
        are refused.

    Returns
    -------
    levels : ndarray of int64
        Grey levels, same shape as ``values``, starting at 1.
    n_levels : int
        ``Ng``: ``bins`` for a fixed bin number, the highest level for a fixed bin width.

    Raises
    ------
    ValueError
        If both or neither of ``bin_width`` and ``bins`` are given, or either is not positive.

    Examples
    --------
    >>> levels, ng = discretise([0.0, 0.5, 1.0, 2.0], bins=4)
    >>> levels.tolist(), ng
    ([1, 2, 3, 4], 4)
    >>> discretise([1, 2, 7], bin_width=2.5)[0].tolist()
    [1, 1, 3]
    """
    x = np.asarray(values, dtype=np.float64)
    if (bin_width is None) == (bins is None):
        raise ValueError("give exactly one of bin_width and bins")
    if x.size == 0:
        raise ValueError("values is empty")
    if bins is not None:
        if int(bins) != bins or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        bins = int(bins)
        lo, hi = x.min(), x.max()
        if hi == lo:
            return np.ones(x.shape, np.int64), bins
        levels = np.floor(bins * (x - lo) / (hi - lo)).astype(np.int64) + 1
        np.minimum(levels, bins, out=levels)
        return levels, bins
    if not bin_width > 0:
        raise ValueError(f"bin_width must be positive, got {bin_width!r}")
    origin = x.min() if min_value is None else float(min_value)
    if x.min() < origin:
        raise ValueError("values below min_value")
    levels = np.floor((x - origin) / bin_width).astype(np.int64) + 1
    return levels, int(levels.max())


def histogram_stats(image, mask=None, *, bin_width=None, bins=None, min_value=None):
    """IBSI-1 intensity-histogram features after discretisation.

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Real-valued, finite intensities.
    mask : array_like of bool, optional
        Region of interest; default the whole image.
    bin_width, bins, min_value
        Discretisation, see :func:`discretise`. When neither ``bin_width`` nor ``bins`` is given,
        ``bins=32``.

    Returns
    -------
    dict of str to float
        The 23 features of IBSI-1 section 3.4 on the grey levels: the statistics of
        :func:`intensity_stats` (without energy and rms) plus ``mode``, ``entropy`` (log2),
        ``uniformity``, ``max_grad``/``max_grad_gl`` and ``min_grad``/``min_grad_gl`` (the
        histogram gradient, central differences inside and one-sided at the ends of levels
        ``1..Ng``, and the grey level where it is extreme; ties go to the lowest level).

    Raises
    ------
    ValueError
        For bad input (see :func:`roi_values` and :func:`discretise`).

    References
    ----------
    IBSI-1 reference manual (arXiv:1612.07003), sections 2.7 and 3.4.

    Examples
    --------
    >>> import numpy as np
    >>> f = histogram_stats(np.array([[1, 1], [2, 4]]), bin_width=1)
    >>> float(f["mode"]), float(f["entropy"]), float(f["uniformity"])
    (1.0, 1.5, 0.375)
    """
    arr = _check_image(image)
    m = _check_mask(mask, arr.shape)
    if bin_width is None and bins is None:
        bins = 32
    # Discretise the distinct values only, then count the levels (discretisation is monotone).
    v, w = _weighted(arr.ravel() if m is None else arr[m])
    lv, ng = discretise(v, bin_width=bin_width, bins=bins, min_value=min_value)
    counts = np.bincount(lv, weights=w, minlength=ng + 1)[1:ng + 1].astype(np.float64)
    present = np.flatnonzero(counts)
    s = _stats((present + 1).astype(np.float64), counts[present])
    n = s["_n"]
    p = counts / n
    nz = p[p > 0]
    s["mode"] = float(np.argmax(counts) + 1)
    s["entropy"] = float(-(nz * np.log2(nz)).sum())
    s["uniformity"] = float((p * p).sum())
    grad = np.gradient(counts) if ng > 1 else np.zeros(1)
    s["max_grad"] = grad.max()
    s["max_grad_gl"] = float(np.argmax(grad) + 1)
    s["min_grad"] = grad.min()
    s["min_grad_gl"] = float(np.argmin(grad) + 1)
    return {k: float(s[k]) for k in HISTOGRAM_NAMES}
