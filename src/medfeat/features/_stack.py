"""The feature families over a whole stack of images at once (the FeatureExtractor's path).

:func:`stack_features` gives every image of a stack the same vector as the per-image functions
(``extractor._image_features``), bit for bit, with one pass per family instead of one per image:
on 28 x 28 images the per-image path spends most of its time in Python and in NumPy's per-call
overhead, not in arithmetic. How each family keeps the values identical:

- **Kernels on the stack**: Sobel, Prewitt, Canny and the openings of the granulometry run with
  ``batch=True`` (each image filtered on its own, the same arithmetic); the thresholds' searches
  take each image's own histogram as the per-image code builds it.
- **Elementwise arithmetic** (rescaling, discretising, ratios, square roots) is correctly rounded
  IEEE arithmetic, so computing it for the whole stack at once changes nothing.
- **Sums**: NumPy sums a contiguous row pairwise, the same way for a row of a 2-D array as for a
  1-D array of that length, so row sums of equal-sized images are taken with NumPy; regions of
  different sizes (masks, distinct values) are summed by :func:`medfeat.features._fast.numpy_sum`'s
  compiled copy of NumPy's algorithm. Integer-valued sums are exact in any order.
- **Powers and logarithms** are evaluated by the same functions as before (scalar ``**`` on NumPy
  scalars, ``numpy.log2`` on arrays), never by a different implementation.
- What cannot be batched exactly (a region whose co-occurrence matrix is empty in some
  direction, statistics inside masks for the neighbourhood families and the density estimate)
  is computed image by image by the per-image code itself; the density estimates of whole
  images come from one ``kernels.density(batch=True)`` call, each as a call on the image alone.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from . import _fast, descriptors
from ._fast import STAT_COLUMNS
from .texture import _DIRS_3D, GLCM_NAMES, _features

__all__ = ["stack_features"]

_KERNEL_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
_COL = {name: k for k, name in enumerate(STAT_COLUMNS)}
# Pixels per image from which the edge percentiles are taken by selection, row by row.
_SELECT_FROM = 4096
# Matrices per call of the GLCM feature formulas (the temporaries stay a few MB).
_GLCM_CHUNK = 1024


class _Stack:
    """A checked stack and the per-image quantities several families share, made on first use."""

    def __init__(self, X, M):
        self.X = X
        self.M = M
        self.n = X.shape[0]
        self.flat = X.reshape(self.n, -1)
        self.mflat = None if M is None else M.reshape(self.n, -1)
        self._cache = {}

    def get(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def extent(self):
        """Each region's minimum and maximum, in the image dtype."""
        def make():
            f, m = self.flat, self.mflat
            if m is None:
                return f.min(axis=1), f.max(axis=1)
            if f.dtype.kind == "f":
                top, bottom = np.inf, -np.inf
            else:
                info = np.iinfo(f.dtype)
                top, bottom = info.max, info.min
            return (np.where(m, f, f.dtype.type(top)).min(axis=1),
                    np.where(m, f, f.dtype.type(bottom)).max(axis=1))
        return self.get("extent", make)

    @property
    def extent64(self):
        lo, hi = self.extent
        return lo.astype(np.float64), hi.astype(np.float64)

    @property
    def varies(self):
        lo, hi = self.extent64
        return hi != lo

    @property
    def unit(self):
        """The varying images rescaled to [0, 1] by their region's extent (``descriptors._unit``),
        and their indices."""
        def make():
            idx = np.flatnonzero(self.varies)
            lo, hi = self.extent64
            shape = (-1,) + (1,) * (self.X.ndim - 1)
            u = ((self.X[idx].astype(np.float64) - lo[idx].reshape(shape))
                 / (hi[idx] - lo[idx]).reshape(shape))
            return u, idx
        return self.get("unit", make)

    @property
    def segments(self):
        """``first_order._weighted`` of every region: sorted distinct values and their counts
        (integers), or all values sorted (floats), as concatenated segments."""
        def make():
            f, m = self.flat, self.mflat
            if f.dtype.kind in "iu":
                return _fast.value_segments(f, m)
            if m is None:
                vals = np.sort(f.astype(np.float64), axis=1).ravel()
                starts = np.arange(self.n + 1, dtype=np.int64) * f.shape[1]
            else:
                parts = [np.sort(f[i][m[i]].astype(np.float64)) for i in range(self.n)]
                vals = np.concatenate(parts)
                starts = np.r_[0, np.cumsum([p.size for p in parts])].astype(np.int64)
            return vals, None, starts
        return self.get("segments", make)

    def mask(self, i):
        return None if self.M is None else self.M[i]


def _powers(x, p):
    """``x ** p`` of each value as the per-image code computes it: on a NumPy scalar."""
    return np.array([np.float64(v) ** p for v in x])


def _ratio(num, den, cond):
    """``num / den`` where ``cond``, else 0 (the per-image code's guarded divisions)."""
    out = np.zeros(np.shape(num))
    np.divide(num, den, out=out, where=cond)
    return out


def _stat_columns(S):
    """The feature columns ``first_order._stats`` (and its callers) derive from the statistics
    :func:`medfeat.features._fast.segment_stats` returns."""
    c = {name: S[:, k] for name, k in _COL.items()}
    m2, mean = c["m2"], c["mean"]
    pos = m2 > 0
    std = np.sqrt(m2)
    p25, p75 = c["p25"], c["p75"]
    out = {
        "mean": mean, "variance": m2,
        "skewness": _ratio(c["m3n"], _powers(m2, 1.5), pos),
        "kurtosis": np.where(pos, _ratio(c["m4n"], _powers(m2, 2), pos) - 3.0, 0.0),
        "median": c["median"], "minimum": c["minimum"], "p10": c["p10"], "p90": c["p90"],
        "maximum": c["maximum"], "iqr": p75 - p25, "range": c["maximum"] - c["minimum"],
        "mad": c["mad"], "rmad": c["rmad"], "medad": c["medad"],
        "cov": _ratio(std, mean, mean != 0),
        "qcod": _ratio(p75 - p25, p75 + p25, (p75 + p25) != 0),
        "_n": c["n"], "_energy": c["energy"],
    }
    return out


def _intensity(st, names):
    vals, wts, starts = st.segments
    c = _stat_columns(_fast.segment_stats(vals, wts, starts))
    c["energy"] = c["_energy"]
    c["rms"] = np.sqrt(c["_energy"] / c["_n"])
    return np.stack([c[k] for k in names], axis=1)


def _histogram(st, names, bins):
    vals, wts, starts = st.segments
    counts = _fast.level_histograms(vals, wts, starts, bins)
    rows, cols = np.nonzero(counts)
    starts2 = np.r_[0, np.cumsum(np.count_nonzero(counts, axis=1))].astype(np.int64)
    c = _stat_columns(_fast.segment_stats(cols + 1.0, counts[rows, cols], starts2))
    p = counts / c["_n"][:, None]
    nz = p[rows, cols]
    c["mode"] = np.argmax(counts, axis=1) + 1.0
    c["entropy"] = -_fast.segment_sums(nz * np.log2(nz), starts2)
    c["uniformity"] = (p * p).sum(axis=1)
    grad = np.gradient(counts, axis=1) if bins > 1 else np.zeros((st.n, 1))
    c["max_grad"] = grad.max(axis=1)
    c["max_grad_gl"] = np.argmax(grad, axis=1) + 1.0
    c["min_grad"] = grad.min(axis=1)
    c["min_grad_gl"] = np.argmin(grad, axis=1) + 1.0
    return np.stack([c[k] for k in names], axis=1)


def _glcm(st, bins, distance):
    lo, hi = st.extent64
    offsets = [tuple(distance * o for o in d) for d in _DIRS_3D] if st.X.ndim == 4 else None
    mats = _fast.cooc_stack(st.X, st.M, lo, hi, bins, distance, offsets)
    grey = np.arange(1, bins + 1, dtype=np.float64)
    keep = mats.sum(axis=(2, 3)) > 0
    k = mats.shape[1]
    out = np.zeros((st.n, len(GLCM_NAMES)))
    full = np.flatnonzero(keep.all(axis=1))
    step = max(1, _GLCM_CHUNK // k)
    for a in range(0, full.size, step):
        sel = full[a:a + step]
        f = _features(mats[sel].reshape(-1, bins, bins), grey, per=k)
        out[sel] = f.reshape(sel.size, k, -1).mean(axis=1)
    for i in np.flatnonzero(keep.any(axis=1) & ~keep.all(axis=1)):
        out[i] = _features(mats[i][keep[i]], grey).mean(axis=0)
    return out


def _edge_rows(mag):
    """``descriptors._edge_summary``'s statistics of each row of ``mag`` (whole images)."""
    v = mag.reshape(mag.shape[0], -1)
    if v.shape[1] < _SELECT_FROM:
        p50, p90 = np.percentile(v, (50, 90), axis=1)
        return np.stack([v.mean(axis=1), v.std(axis=1), p50, p90, v.max(axis=1)], axis=1)
    # the same values by exact selection, cheaper than partitioning large rows
    p50, p90 = np.array([_fast.percentiles(row, (50, 90)) for row in v]).T
    return np.stack([v.mean(axis=1), v.std(axis=1), p50, p90, v.max(axis=1)], axis=1)


def _edge_masked(mag, m):
    v = np.asarray(mag[m], dtype=np.float64).ravel()
    p50, p90 = _fast.percentiles(v, (50, 90))
    return [float(v.mean()), float(v.std()), float(p50), float(p90), float(v.max())]


def _filter(fn, u, backend):
    """``fn`` (Sobel or Prewitt) of every image of ``u``: one call on a stack of 2-D images."""
    if u.ndim == 3:
        return fn(u, backend=backend, batch=True)
    return np.stack([fn(x, backend=backend) for x in u]) if len(u) else u.copy()


def _edges(st, backend):
    u, idx = st.unit
    out = np.zeros((st.n, 10))
    for j, op in enumerate((kernels.sobel, kernels.prewitt)):
        if not idx.size:
            break
        mag = _filter(op, u, backend)
        if st.M is None:
            out[idx, 5 * j:5 * j + 5] = _edge_rows(mag)
        else:
            for r, i in enumerate(idx):
                out[i, 5 * j:5 * j + 5] = _edge_masked(mag[r], st.M[i])
    return out


def _canny(st, backend):
    u, idx = st.unit
    out = np.zeros((st.n, 1))
    if not idx.size:
        return out
    planes = u.reshape((-1,) + u.shape[-2:])
    edges = kernels.canny(planes, 1.0, 0.1, 0.2, backend=backend, batch=True).reshape(u.shape)
    e = edges.reshape(idx.size, -1)
    if st.M is None:
        out[idx, 0] = np.count_nonzero(e, axis=1) / e.shape[1]
    else:
        m = st.mflat[idx]
        out[idx, 0] = np.count_nonzero(e & m, axis=1) / np.count_nonzero(m, axis=1)
    return out


def _thresholds(st, backend):
    out = np.zeros((st.n, 4))
    idx = np.flatnonzero(st.varies)
    if not idx.size:
        return out
    if st.M is not None:
        for i in idx:
            d = descriptors.threshold_fractions(st.X[i], st.M[i], backend=backend)
            out[i] = [d["otsu_fraction"], d["otsu_level"], d["maxent_fraction"],
                      d["maxent_level"]]
        return out
    lo, hi = st.extent64
    lo, span = lo[idx], hi[idx] - lo[idx]
    if st.X.dtype.kind in "iu" and _threshold_backend(backend) == "cython":
        return _thresholds_counted(st, idx, lo, span, out)
    flat = st.flat[idx]
    for j, fn in enumerate((kernels.threshold_otsu, kernels.threshold_maxent)):
        t = fn(st.X[idx], backend=backend, batch=True).astype(np.float64)
        # the per-image code compares with a Python float: a float image's own dtype
        cmp = t.astype(flat.dtype) if flat.dtype.kind == "f" else t
        out[idx, 2 * j] = np.count_nonzero(flat > cmp[:, None], axis=1) / flat.shape[1]
        out[idx, 2 * j + 1] = (t - lo) / span
    return out


def _threshold_backend(backend):
    """The backend the threshold kernels resolve ``backend`` to for a NumPy image."""
    from ..kernels import histograms
    from ..kernels._dispatch import resolve_backend

    return resolve_backend(backend, auto=histograms.AUTO_THRESHOLD, family="density")


def _thresholds_counted(st, idx, lo, span, out):
    """The thresholds of varying integer images (``idx``) from the value counts the stack
    already has: their histograms are those ``threshold_otsu`` and ``threshold_maxent`` build
    (one bin per value from the minimum to the maximum, the values as centres), searched by the
    same compiled code, all images in one call."""
    from .._kernels.cython import _density_cy

    vals, wts, starts = st.segments
    i_otsu, i_maxent, n_otsu, n_maxent = _density_cy.threshold_indices_segments(vals, wts,
                                                                                starts)
    npix = st.flat.shape[1]
    for j, (k, above) in enumerate(((i_otsu, n_otsu), (i_maxent, n_maxent))):
        t = lo + k[idx]                     # the chosen bin's centre (exact integers)
        out[idx, 2 * j] = above[idx] / npix     # the pixels above it, counted exactly
        out[idx, 2 * j + 1] = (t - lo) / span
    return out


def _open_sums(work, m, fp, r, backend, exact):
    """Sums (float64) over each region of the opening of every image of ``work``."""
    if work.ndim == 3:
        op = kernels.opening(work, fp(r), backend=backend, batch=True)
    else:
        op = np.stack([kernels.opening(w, fp(r), backend=backend) for w in work])
    return _region_sums(op, m, exact)


def _region_sums(a, m, exact):
    if exact:                            # integers: exact in any order
        flat = a.reshape(len(a), -1)
        if m is not None:
            flat = np.where(m.reshape(len(a), -1), flat, 0)
        return flat.sum(axis=1, dtype=np.int64).astype(np.float64)
    return np.array([float(np.sum(a[i] if m is None else a[i][m[i]], dtype=np.float64))
                     for i in range(len(a))])


def _granulometry(st, backend, radii=(1, 2, 4)):
    X, M = st.X, st.M
    out = np.zeros((st.n, len(radii)))
    var = st.varies
    lo = st.extent[0]
    lo64 = st.extent64[0]
    fp = kernels.disk if X.ndim == 3 else kernels.ball
    shape = (-1,) + (1,) * (X.ndim - 1)
    groups = []
    if X.dtype.kind in "iu":
        as_int = var.copy()
        if M is not None:
            as_int &= st.flat.min(axis=1) >= lo
        g = np.flatnonzero(as_int)
        if g.size:
            # openings commute with the shift and are exact in any integer dtype wide enough
            top = int((st.flat[g].max(axis=1).astype(np.int64) - lo[g].astype(np.int64)).max())
            t = np.uint8 if top <= 255 else np.uint16
            if X.dtype == t and not lo[g].any():
                work = X[g]              # already shifted (the per-image code uses it as is)
            else:
                work = (X[g].astype(np.int32)
                        - lo[g].astype(np.int32).reshape(shape)).astype(t)
            groups.append((g, work, True))
        rest = np.flatnonzero(var & ~as_int)
    else:
        rest = np.flatnonzero(var)
    if rest.size:
        work = (X[rest].astype(np.float64) - lo64[rest].reshape(shape)).astype(np.float32)
        groups.append((rest, work, False))
    for g, work, exact in groups:
        m = None if M is None else M[g]
        total = _region_sums(work, m, exact)
        prev = total
        for k, r in enumerate(radii):
            s = _open_sums(work, m, fp, r, backend, exact)
            out[g, k] = (prev - s) / total
            prev = s
    return out


def _density(st, names, backend, grid_size=256):
    """``descriptors.density_summary`` of every image: the estimates of whole images in one
    batched kernel call, the summaries elementwise and by row sums over equal-sized rows."""
    if st.M is not None or st.flat.shape[1] < 2:
        return _per_image(st, descriptors.density_summary, names, backend=backend)
    out = np.zeros((st.n, 4))
    idx = np.flatnonzero(st.varies)
    if not idx.size:
        return out
    lo, hi = st.extent64
    lo, span = lo[idx], hi[idx] - lo[idx]
    grid = pdf = None
    if st.X.dtype.kind in "iu" and _threshold_backend(backend) == "cython":
        grid, pdf = _density_counted(st, idx, grid_size)
    if grid is None:
        grid, pdf = kernels.density(st.X[idx], grid_size=grid_size, backend=backend, batch=True)
    rows = np.arange(idx.size)
    k = np.argmax(pdf, axis=1)
    peak = pdf[rows, k]
    inner = pdf[:, 1:-1]
    modes = np.count_nonzero((inner > pdf[:, :-2]) & (inner >= pdf[:, 2:])
                             & (inner > (0.05 * peak)[:, None]), axis=1)
    step = (grid[:, 1] - grid[:, 0]) / span
    q = pdf * span[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(q > 0, q * np.log2(np.where(q > 0, q, 1.0)), 0.0), axis=1) * step
    out[idx] = np.stack([(grid[rows, k] - lo) / span, peak * span, modes.astype(np.float64), h],
                        axis=1)
    return out


def _density_counted(st, idx, grid_size):
    """``kernels.density(X[i], grid_size=grid_size)`` (Scott's bandwidth, the Cython backend)
    of the varying integer images ``idx``, from the value counts the stack already has, with
    the kernel's arithmetic step by step: the moments from the counts (the mean's sum is of
    integers, exact in any order; the squared deviations go through the same matrix product),
    the grid and bandwidth elementwise, the binning and the convolution of all images in one
    compiled call (:func:`medfeat._kernels.cython._density_cy.kde_segments`). Returns
    ``(None, None)`` when some image would take another of the kernel's routes (a fine grid
    above its limit, a convolution by FFT, binning split between threads)."""
    import math

    from .._kernels.cython import _density_cy
    from ..kernels import histograms as H

    vals, wts, starts = st.segments
    npix = st.flat.shape[1]
    lo, hi = st.extent64
    lo, hi = lo[idx], hi[idx]
    if npix * max(np.abs(lo).max(), np.abs(hi).max()) >= 2.0 ** 53:
        return None, None                 # the mean's sum might not be exact
    if max(int(starts[i + 1] - starts[i]) for i in idx) >= H._MIN_CHUNK and \
            H._nchunks(_density_cy, int(np.diff(starts).max())) > 1:
        return None, None
    n = np.float64(npix)                  # weights.sum(): a sum of integers, exact
    mean = np.array([float(v) for v in st.flat[idx].sum(axis=1, dtype=np.int64)]) / n
    m2 = np.empty(idx.size)
    for r, i in enumerate(idx):
        a, b = starts[i], starts[i + 1]
        m2[r] = float(wts[a:b] @ (vals[a:b] - mean[r]) ** 2)
    std = np.sqrt(m2 / (n - 1))
    bw = (n ** (-0.2)) * std
    g0, g1 = lo - 3 * bw, hi + 3 * bw
    grid = np.linspace(g0, g1, grid_size, axis=1)
    dx = (g1 - g0) / (grid_size - 1)
    up = np.maximum(1, np.ceil(H._STEPS_PER_BW * dx / bw)).astype(np.int64)
    fine = (grid_size - 1) * up + 1
    if (fine > H._MAX_FINE_GRID).any():
        return None, None
    dxf = dx / up
    half = np.minimum(fine - 1, np.ceil(H._TRUNCATE * bw / dxf)).astype(np.int64)
    if (fine * (2 * half + 1) > 4_000_000).any():
        return None, None
    kern = [np.exp(-0.5 * (np.arange(-k, k + 1) * (f / b)) ** 2)
            for k, f, b in zip(half.tolist(), dxf, bw)]
    kstart = np.r_[0, np.cumsum([k.size for k in kern])].astype(np.int64)
    sums = _density_cy.kde_segments(vals, wts, starts, idx.astype(np.int64), g0, dxf, fine, up,
                                    np.concatenate(kern), kstart, grid_size)
    pdf = np.maximum(sums, 0.0) / (n * bw * math.sqrt(2 * math.pi))[:, None]
    return grid, pdf


def _per_image(st, fn, names, **kw):
    out = np.empty((st.n, len(names)))
    for i in range(st.n):
        d = fn(st.X[i], st.mask(i), **kw)
        out[i] = [d[k] for k in names]
    return out


def stack_features(X, M, families, bins, distance, backend, names):
    """Feature matrix of a stack, equal bit for bit to the per-image vectors stacked.

    Parameters
    ----------
    X : ndarray, shape (n, H, W) or (n, D, H, W)
        Finite images (any real dtype; others than the kernels' are taken as float64).
    M : ndarray of bool like X, or None
        Regions, each selecting at least one pixel (checked by the caller).
    families : sequence of str
        Families of ``extractor.FAMILIES``, in output order.
    bins, distance : int
    backend : str
    names : callable
        ``names(family)``: that family's column names.

    Returns
    -------
    ndarray of float64, shape (n, n_features)
    """
    if X.dtype.type not in _KERNEL_DTYPES:
        X = X.astype(np.float64)
    X = np.ascontiguousarray(X)
    M = None if M is None else np.ascontiguousarray(M, dtype=bool)
    st = _Stack(X, M)
    cols = []
    for fam in families:
        if fam == "intensity":
            cols.append(_intensity(st, names(fam)))
        elif fam == "histogram":
            cols.append(_histogram(st, names(fam), bins))
        elif fam == "glcm":
            cols.append(_glcm(st, bins, distance))
        elif fam == "edges":
            cols.append(_edges(st, backend))
        elif fam == "canny":
            cols.append(_canny(st, backend))
        elif fam == "thresholds":
            cols.append(_thresholds(st, backend))
        elif fam == "granulometry":
            cols.append(_granulometry(st, backend))
        elif fam == "zones":
            cols.append(_per_image(st, descriptors.zone_stats, names(fam)))
        else:
            cols.append(_density(st, names(fam), backend))
    return np.hstack(cols) if cols else np.empty((st.n, 0))
