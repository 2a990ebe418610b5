"""Compiled helpers of the feature families (Numba, one thread, cached on disk).

Kept here rather than in :mod:`medfeat._kernels`: they serve the features only (co-occurrence
counting, and the per-image statistics of the first-order families over a whole stack) and always
run serially, since the :class:`~medfeat.features.FeatureExtractor` parallelises over images.

The stack versions must give each image the value the per-image NumPy code gives it, bit for
bit. Elementwise IEEE arithmetic (``+ - * /``, ``sqrt``, ``floor``) is the same in Numba as in
NumPy; a NumPy sum is not a left-to-right sum but pairwise summation (blocks of up to 128 values
summed with 8 accumulators, halves above that, Higham 1993), which :func:`numpy_sum` repeats.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["percentiles", "order_stats", "cooc_counts", "cooc_counts_2d", "numpy_sum", "segment_stats",
           "segment_sums", "value_segments", "level_histograms", "cooc_stack", "glcm_first",
           "glcm_divided", "glcm_outer", "glcm_second", "log2_symmetric"]

_OPTS = dict(cache=True, nogil=True)

# Buckets of the first counting pass of :func:`order_stats`.
_BUCKETS = 4096
# Below this many candidates a plain sort is cheaper than another counting pass.
_SORT_BELOW = 256


@njit(**_OPTS)
def _extent(a):
    """Minimum, maximum, and how many values equal each."""
    lo = a[0]
    hi = a[0]
    nlo = 0
    nhi = 0
    for x in a:
        if x < lo:
            lo = x
            nlo = 1
        elif x == lo:
            nlo += 1
        if x > hi:
            hi = x
            nhi = 1
        elif x == hi:
            nhi += 1
    return lo, hi, nlo, nhi


@njit(**_OPTS)
def _bucket(x, lo, scale):
    b = int((x - lo) * scale)
    return b if b < _BUCKETS else _BUCKETS - 1


@njit(inline="always", **_OPTS)
def _bucket_counts(a, lo, scale):
    """How many values of ``a`` fall in each of the ``_BUCKETS`` buckets."""
    counts = np.zeros(_BUCKETS, np.int64)
    for x in a:
        counts[_bucket(x, lo, scale)] += 1
    return counts


@njit(inline="always", **_OPTS)
def _gather(a, lo, scale, b, count):
    """The ``count`` values of ``a`` in bucket ``b``, in their order in ``a``."""
    sub = np.empty(count, a.dtype)
    j = 0
    for x in a:
        if _bucket(x, lo, scale) == b:
            sub[j] = x
            j += 1
    return sub


@njit(**_OPTS)
def _select(a, k):
    """The ``k``-th smallest (0-based) value of ``a`` (which it does not modify)."""
    while True:
        n = a.size
        if n <= _SORT_BELOW:
            return np.sort(a)[k]
        lo, hi, nlo, nhi = _extent(a)
        # ties at either end (a flat background) are answered without another pass
        if k < nlo:
            return lo
        if k >= n - nhi:
            return hi
        # Bucketing by a monotone map keeps every bucket's values between its neighbours', so the
        # k-th value is the right rank inside the bucket that holds rank k.
        scale = _BUCKETS / (hi - lo)
        if not scale < np.inf:                # a range too small to divide (subnormal)
            return np.sort(a)[k]
        counts = _bucket_counts(a, lo, scale)
        below = 0
        target = 0
        for b in range(_BUCKETS):
            if below + counts[b] > k:
                target = b
                break
            below += counts[b]
        a = _gather(a, lo, scale, target, counts[target])
        k -= below


@njit(**_OPTS)
def _order_stats(a, ks):
    out = np.empty(ks.size, a.dtype)
    n = a.size
    lo, hi, nlo, nhi = _extent(a)
    scale = _BUCKETS / (hi - lo) if hi > lo else 0.0
    if lo == hi or n <= _SORT_BELOW or not scale < np.inf:
        s = np.sort(a)
        for i in range(ks.size):
            out[i] = s[ks[i]]
        return out
    # One shared counting pass, then each distinct bucket that holds a wanted rank is gathered
    # once and searched by _select.
    counts = _bucket_counts(a, lo, scale)
    starts = np.empty(_BUCKETS, np.int64)
    acc = 0
    for b in range(_BUCKETS):
        starts[b] = acc
        acc += counts[b]
    done_bucket = -1
    sub = np.empty(0, a.dtype)
    for i in range(ks.size):
        k = ks[i]
        if k < nlo:
            out[i] = lo
            continue
        if k >= n - nhi:
            out[i] = hi
            continue
        # the bucket holding rank k: the last one starting at or before k (never an empty one,
        # which starts where the next begins)
        b = np.searchsorted(starts, k, side="right") - 1
        if b != done_bucket:
            sub = _gather(a, lo, scale, b, counts[b])
            done_bucket = b
        out[i] = _select(sub, k - starts[b])
    return out


def order_stats(values, ks):
    """Exact order statistics: ``np.sort(values)[ks]`` without sorting (one bucket-counting
    pass, then a search of only the buckets that hold the wanted ranks; ties at either end
    answered directly).

    Parameters
    ----------
    values : ndarray of float64, 1-D, non-empty, without NaN
    ks : sequence of int
        0-based ranks, in increasing order.

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> import numpy as np
    >>> order_stats(np.array([3.0, 1.0, 2.0, 5.0]), [0, 3]).tolist()
    [1.0, 5.0]
    """
    return _order_stats(np.ascontiguousarray(values, dtype=np.float64),
                        np.asarray(ks, dtype=np.int64))


def percentiles(values, qs):
    """``numpy.percentile(values, qs)`` (method ``"linear"``), bit for bit, by exact selection:
    the order statistics of :func:`order_stats`, then NumPy's virtual indices and its
    interpolation (``numpy.lib._function_base_impl._lerp``), written as NumPy writes them.

    Parameters
    ----------
    values : ndarray, 1-D, non-empty, finite
    qs : sequence of float
        Percentiles in [0, 100].

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> import numpy as np
    >>> v = np.random.default_rng(0).normal(size=5000)
    >>> bool(np.array_equal(percentiles(v, [50, 90]), np.percentile(v, [50, 90])))
    True
    """
    v = np.ascontiguousarray(values, dtype=np.float64).ravel()
    n = v.size
    virtual = (n - 1) * np.true_divide(np.asarray(qs, dtype=np.float64), 100)
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    nxt[above] = -1
    below = virtual < 0
    prev[below] = 0
    nxt[below] = 0
    prev = prev.astype(np.intp)
    nxt = nxt.astype(np.intp)
    ranks = np.unique(np.concatenate([prev % n, nxt % n]))
    stats = dict(zip(ranks.tolist(), order_stats(v, ranks).tolist()))
    a = np.array([stats[k] for k in (prev % n).tolist()])
    b = np.array([stats[k] for k in (nxt % n).tolist()])
    t = np.asarray(virtual - prev, dtype=np.float64)
    diff = b - a
    out = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)
    return out


@njit(**_OPTS)
def _cooc(idx, offsets, ng):
    nz, ny, nx = idx.shape
    nd = offsets.shape[0]
    out = np.zeros((nd, ng * ng), np.int64)
    for d in range(nd):
        oz, oy, ox = offsets[d, 0], offsets[d, 1], offsets[d, 2]
        z0, z1 = max(0, -oz), min(nz, nz - oz)
        y0, y1 = max(0, -oy), min(ny, ny - oy)
        x0, x1 = max(0, -ox), min(nx, nx - ox)
        h = out[d]
        for z in range(z0, z1):
            for y in range(y0, y1):
                for x in range(x0, x1):
                    a = idx[z, y, x]
                    b = idx[z + oz, y + oy, x + ox]
                    if a >= 0 and b >= 0:
                        h[a * ng + b] += 1
    return out


@njit(**_OPTS)
def _cooc_2d(idx, dist, ng):
    """The four in-plane directions (0, d), (d, d), (d, 0), (d, -d) in one pass over a slice."""
    ny, nx = idx.shape
    h = np.zeros((4, ng * ng), np.int64)
    for y in range(ny):
        yd = y + dist
        for x in range(nx):
            a = idx[y, x]
            if a < 0:
                continue
            a *= ng
            if x + dist < nx:
                b = idx[y, x + dist]
                if b >= 0:
                    h[0, a + b] += 1
            if yd < ny:
                if x + dist < nx:
                    b = idx[yd, x + dist]
                    if b >= 0:
                        h[1, a + b] += 1
                b = idx[yd, x]
                if b >= 0:
                    h[2, a + b] += 1
                if x >= dist:
                    b = idx[yd, x - dist]
                    if b >= 0:
                        h[3, a + b] += 1
    return h


def _symmetric(counts, ng):
    c = counts.reshape(-1, ng, ng)
    return c + c.transpose(0, 2, 1)


def cooc_counts(idx, offsets, ng):
    """Symmetric co-occurrence counts of a 3-D level map for each offset.

    Parameters
    ----------
    idx : ndarray of signed int, 3-D
        0-based grey levels, -1 outside the region (pairs touching it are not counted).
    offsets : array_like of int, shape (k, 3)
    ng : int
        Number of levels.

    Returns
    -------
    ndarray of int64, shape (k, ng, ng)
    """
    return _symmetric(_cooc(np.ascontiguousarray(idx),
                            np.asarray(offsets, dtype=np.int64).reshape(-1, 3), int(ng)), ng)


def cooc_counts_2d(idx, distance, ng):
    """Symmetric co-occurrence counts of a 2-D level map along (0, d), (d, d), (d, 0), (d, -d).

    Parameters
    ----------
    idx : ndarray of signed int, 2-D
        0-based grey levels, -1 outside the region.
    distance : int
    ng : int

    Returns
    -------
    ndarray of int64, shape (4, ng, ng)
    """
    return _symmetric(_cooc_2d(np.ascontiguousarray(idx), int(distance), int(ng)), ng)


# ------------------------------------------------------------------------------------------------
# Whole-stack helpers of the first-order families (FeatureExtractor's batched path)


@njit(inline="always", **_OPTS)
def _block(a, lo, n):
    """NumPy's ``pairwise_sum`` of ``n <= 128`` values: 8 accumulators (a plain loop below 8)."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(**_OPTS)
def _pairwise(a, lo, n):
    """NumPy's pairwise sum of ``a[lo:lo + n]`` (its ``pairwise_sum`` for contiguous float64):
    blocks of at most 128 values, larger ranges split in two at a multiple of 8 below the half.
    The recursion runs on explicit stacks (Numba's on-disk cache does not keep recursive
    functions)."""
    if n <= 128:
        return _block(a, lo, n)
    los = np.empty(256, np.int64)
    ns = np.empty(256, np.int64)          # -1: add the two values on top of the value stack
    vals = np.empty(128)
    nw = 1
    nv = 0
    los[0] = lo
    ns[0] = n
    while nw:
        nw -= 1
        start, m = los[nw], ns[nw]
        if m < 0:
            nv -= 1
            vals[nv - 1] = vals[nv - 1] + vals[nv]
        elif m <= 128:
            vals[nv] = _block(a, start, m)
            nv += 1
        else:
            half = m // 2
            half -= half % 8
            ns[nw] = -1
            los[nw + 1], ns[nw + 1] = start + half, m - half
            los[nw + 2], ns[nw + 2] = start, half
            nw += 3
    return vals[0]


@njit(**_OPTS)
def _npsum(a):
    # a reduction starts from the identity 0.0 (so a sum of -0.0 alone is 0.0, as in NumPy)
    return 0.0 + _pairwise(a, 0, a.size)


def numpy_sum(values):
    """``values.sum()`` of a 1-D float64 array as NumPy computes it, bit for bit (compiled).

    Parameters
    ----------
    values : ndarray of float64, 1-D

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> v = np.random.default_rng(0).normal(size=1000) * 1e8
    >>> bool(numpy_sum(v) == v.sum())
    True
    """
    return float(_npsum(np.ascontiguousarray(values, dtype=np.float64)))


@njit(**_OPTS)
def _wsum(a, w, weighted):
    return _npsum(a * w) if weighted else _npsum(a)


#: Columns of :func:`segment_stats`.
STAT_COLUMNS = ("mean", "m2", "m3n", "m4n", "median", "minimum", "p10", "p90", "maximum", "p25",
                "p75", "mad", "rmad", "medad", "n", "energy")
_QS = np.array([10.0, 25.0, 50.0, 75.0, 90.0])


@njit(**_OPTS)
def _stats_row(v, w, weighted, out):
    """``first_order._stats`` of the sorted distinct values ``v`` with counts ``w`` (or each
    value once), the same operations in the same order; see :data:`STAT_COLUMNS`."""
    size = v.size
    cum = np.cumsum(w) if weighted else np.arange(1.0, size + 1)
    n = cum[size - 1]
    mean = _wsum(v, w, weighted) / n
    d = v - mean
    d2 = d * d
    m2 = _wsum(d2, w, weighted) / n
    m3n = 0.0
    m4n = 0.0
    if m2 > 0:
        m3n = _wsum(d2 * d, w, weighted) / n
        m4n = _wsum(d2 * d2, w, weighted) / n
    pq = np.empty(5)
    for k in range(5):
        pos = (n - 1) * _QS[k] / 100.0
        flo = np.floor(pos)
        fhi = min(flo + 1, n - 1)
        xlo = v[np.searchsorted(cum, flo, side="right")]
        xhi = v[np.searchsorted(cum, fhi, side="right")]
        pq[k] = xlo + (pos - flo) * (xhi - xlo)
    p10, p25, p50, p75, p90 = pq[0], pq[1], pq[2], pq[3], pq[4]
    inner = (v >= p10) & (v <= p90)
    vi = v[inner]
    wi = w[inner] if weighted else w
    ni = wi.sum() if weighted else float(vi.size)
    rmad = 0.0
    if ni:
        rmad = _wsum(np.abs(vi - _wsum(vi, wi, weighted) / ni), wi, weighted) / ni
    out[0] = mean
    out[1] = m2
    out[2] = m3n
    out[3] = m4n
    out[4] = p50
    out[5] = v[0]
    out[6] = p10
    out[7] = p90
    out[8] = v[size - 1]
    out[9] = p25
    out[10] = p75
    out[11] = _wsum(np.abs(d), w, weighted) / n
    out[12] = rmad
    out[13] = _wsum(np.abs(v - p50), w, weighted) / n
    out[14] = n
    out[15] = _wsum(v * v, w, weighted)


@njit(**_OPTS)
def _segment_stats(vals, wts, starts, weighted):
    out = np.empty((starts.size - 1, len(STAT_COLUMNS)))
    empty = np.empty(0)
    for i in range(starts.size - 1):
        a, b = starts[i], starts[i + 1]
        _stats_row(vals[a:b], wts[a:b] if weighted else empty, weighted, out[i])
    return out


def segment_stats(vals, wts, starts):
    """``first_order._stats`` of every segment ``vals[starts[i]:starts[i + 1]]``.

    Parameters
    ----------
    vals : ndarray of float64
        Each segment's sorted distinct values (or all its values, sorted, when ``wts`` is None).
    wts : ndarray of float64 or None
        Their counts.
    starts : ndarray of int64, shape (n + 1,)

    Returns
    -------
    ndarray of float64, shape (n, len(STAT_COLUMNS))
    """
    weighted = wts is not None
    return _segment_stats(np.ascontiguousarray(vals, dtype=np.float64),
                          np.ascontiguousarray(wts if weighted else vals, dtype=np.float64),
                          np.asarray(starts, dtype=np.int64), weighted)


@njit(**_OPTS)
def _segment_sums(vals, starts):
    out = np.empty(starts.size - 1)
    for i in range(starts.size - 1):
        out[i] = 0.0 + _pairwise(vals, starts[i], starts[i + 1] - starts[i])
    return out


def segment_sums(vals, starts):
    """NumPy's ``vals[starts[i]:starts[i + 1]].sum()`` of every segment, bit for bit.

    Parameters
    ----------
    vals : ndarray of float64
    starts : ndarray of int64, shape (n + 1,)

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    return _segment_sums(np.ascontiguousarray(vals, dtype=np.float64),
                         np.asarray(starts, dtype=np.int64))


@njit(**_OPTS)
def _value_segments(flat, mask, masked, offset, span):
    n, npix = flat.shape
    counts = np.zeros(span, np.int64)
    vals = np.empty(n * min(npix, span))
    wts = np.empty(vals.size)
    starts = np.zeros(n + 1, np.int64)
    k = 0
    for i in range(n):
        counts[:] = 0
        for j in range(npix):
            if not masked or mask[i, j]:
                counts[np.int64(flat[i, j]) - offset] += 1
        for c in range(span):
            if counts[c]:
                vals[k] = c + offset
                wts[k] = counts[c]
                k += 1
        starts[i + 1] = k
    return vals[:k], wts[:k], starts


def value_segments(flat, mask=None):
    """The sorted distinct values of each row of an integer stack, with their counts.

    Parameters
    ----------
    flat : ndarray of uint8, uint16 or int16, shape (n, n_pixels)
    mask : ndarray of bool, same shape, optional
        Only the selected pixels count (each row must select one).

    Returns
    -------
    vals, wts : ndarray of float64
        Distinct values and counts, row after row.
    starts : ndarray of int64, shape (n + 1,)
        Where each row's segment starts.
    """
    offset = int(flat.min())
    span = int(flat.max()) - offset + 1
    masked = mask is not None
    return _value_segments(flat, mask if masked else np.zeros((0, 0), np.bool_), masked, offset,
                           span)


@njit(**_OPTS)
def _level_histograms(vals, wts, starts, weighted, bins):
    n = starts.size - 1
    counts = np.zeros((n, bins))
    for i in range(n):
        a, b = starts[i], starts[i + 1]
        lo, hi = vals[a], vals[b - 1]
        for j in range(a, b):
            if hi == lo:
                lv = 1
            else:
                lv = np.int64(np.floor(bins * (vals[j] - lo) / (hi - lo))) + 1
                lv = min(lv, bins)
            counts[i, lv - 1] += wts[j] if weighted else 1.0
    return counts


def level_histograms(vals, wts, starts, bins):
    """Counts of the fixed-bin-number grey levels (IBSI 2.7, as ``first_order.discretise``) of
    every segment of sorted values (with their counts, or each once when ``wts`` is None).

    Returns
    -------
    ndarray of float64, shape (n, bins)
    """
    weighted = wts is not None
    return _level_histograms(np.ascontiguousarray(vals, dtype=np.float64),
                             np.ascontiguousarray(wts if weighted else vals, dtype=np.float64),
                             np.asarray(starts, dtype=np.int64), weighted, int(bins))


@njit(inline="always", **_OPTS)
def _level(v, lo, hi, bins):
    """0-based fixed-bin-number level of intensity ``v`` (``discretise``'s formula)."""
    if hi == lo:
        return 0
    lv = np.int64(np.floor(bins * (np.float64(v) - lo) / (hi - lo))) + 1
    return min(lv, bins) - 1


@njit(**_OPTS)
def _stack_levels(x, m, masked, lo, hi, bins):
    """0-based fixed-bin-number levels of one image, -1 outside the mask. Integer images look
    their pixels up in a table of the formula over the region's value range (the same values,
    one division per grey value instead of one per pixel)."""
    idx = np.empty(x.shape, np.int64)
    xf = x.ravel()
    mf = m.ravel()
    of = idx.ravel()
    if xf.dtype.kind != "f" and hi - lo < xf.size:
        base = np.int64(lo)
        table = np.empty(np.int64(hi) - base + 1, np.int64)
        for t in range(table.size):
            table[t] = _level(base + t, lo, hi, bins)
        for j in range(xf.size):
            if masked and not mf[j]:
                of[j] = -1
            else:
                of[j] = table[np.int64(xf[j]) - base]
        return idx
    for j in range(xf.size):
        if masked and not mf[j]:
            of[j] = -1
        else:
            of[j] = _level(xf[j], lo, hi, bins)
    return idx


@njit(**_OPTS)
def _cooc_stack_2d(X, M, masked, lo, hi, bins, dist):
    n = X.shape[0]
    out = np.empty((n, 4, bins * bins), np.int64)
    for i in range(n):
        idx = _stack_levels(X[i], M[i] if masked else M[0], masked, lo[i], hi[i], bins)
        out[i] = _cooc_2d(idx, dist, bins)
    return out


@njit(**_OPTS)
def _cooc_stack_3d(X, M, masked, lo, hi, bins, offsets):
    n = X.shape[0]
    out = np.empty((n, offsets.shape[0], bins * bins), np.int64)
    for i in range(n):
        idx = _stack_levels(X[i], M[i] if masked else M[0], masked, lo[i], hi[i], bins)
        out[i] = _cooc(idx, offsets, bins)
    return out


def cooc_stack(X, M, lo, hi, bins, distance, offsets=None):
    """Symmetric co-occurrence counts of every image of a stack after discretising it to ``bins``
    fixed-bin-number levels between its region's ``lo`` and ``hi``.

    Parameters
    ----------
    X : ndarray, shape (n, H, W) or (n, D, H, W)
    M : ndarray of bool like X, or None
    lo, hi : ndarray of float64, shape (n,)
        Each region's minimum and maximum.
    bins, distance : int
    offsets : array_like of int, shape (k, 3), optional
        Volumes only: the (scaled) directions.

    Returns
    -------
    ndarray of int64, shape (n, k, bins, bins)
        k = 4 directions for images (as :func:`cooc_counts_2d`), ``len(offsets)`` for volumes.
    """
    masked = M is not None
    X = np.ascontiguousarray(X)
    Mv = np.ascontiguousarray(M) if masked else np.zeros((1,) + X.shape[1:], np.bool_)
    lo = np.ascontiguousarray(lo, dtype=np.float64)
    hi = np.ascontiguousarray(hi, dtype=np.float64)
    if X.ndim == 3:
        raw = _cooc_stack_2d(X, Mv, masked, lo, hi, int(bins), int(distance))
    else:
        raw = _cooc_stack_3d(X, Mv, masked, lo, hi, int(bins),
                             np.asarray(offsets, dtype=np.int64).reshape(-1, 3))
    c = raw.reshape(X.shape[0], -1, bins, bins)
    return c + c.transpose(0, 1, 3, 2)


# ------------------------------------------------------------------------------------------------
# GLCM feature sums (texture._features): every reduction over a matrix is NumPy's pairwise sum of
# its Ng * Ng products in C order, as ``(p * w).sum(axis=(1, 2))`` computes it.


@njit(inline="always", **_OPTS)
def _flat_sum(buf, n):
    return 0.0 + _pairwise(buf, 0, n)


@njit(**_OPTS)
def _glcm_first(mats, weights):
    """Probabilities, marginals, diagonal and anti-diagonal sums, maximum and the weighted sums
    that need nothing else, for each matrix of ``mats`` (k, Ng, Ng)."""
    k, ng, _ = mats.shape
    nn = ng * ng
    p = np.empty((k, ng, ng))
    pi = np.empty((k, ng))
    pd = np.zeros((k, ng))
    ps = np.zeros((k, 2 * ng - 1))
    sums = np.empty((k, weights.shape[0] + 2))
    buf = np.empty(nn)
    for t in range(k):
        tot = 0
        for a in range(ng):
            for b in range(ng):
                tot += mats[t, a, b]
        ft = np.float64(tot)
        pt = p[t].ravel()
        mt = mats[t].ravel()
        top = -np.inf
        for j in range(nn):
            v = np.float64(mt[j]) / ft
            pt[j] = v
            if v > top:
                top = v
        for a in range(ng):
            pi[t, a] = 0.0 + _pairwise(pt, a * ng, ng)
        for a in range(ng):
            for b in range(ng):
                v = pt[a * ng + b]
                pd[t, abs(a - b)] += v
                ps[t, a + b] += v
        sums[t, 0] = top
        for j in range(nn):
            buf[j] = pt[j] * pt[j]
        sums[t, 1] = _flat_sum(buf, nn)
        for w in range(weights.shape[0]):
            wf = weights[w].ravel()
            for j in range(nn):
                buf[j] = pt[j] * wf[j]
            sums[t, w + 2] = _flat_sum(buf, nn)
    return p, pi, pd, ps, sums


@njit(**_OPTS)
def _glcm_divided(p, weights):
    """``(p / w).sum(axis=(1, 2))`` for each weight matrix ``w`` of ``weights``."""
    k, ng, _ = p.shape
    nn = ng * ng
    out = np.empty((k, weights.shape[0]))
    buf = np.empty(nn)
    for t in range(k):
        pt = p[t].ravel()
        for w in range(weights.shape[0]):
            wf = weights[w].ravel()
            for j in range(nn):
                buf[j] = pt[j] / wf[j]
            out[t, w] = _flat_sum(buf, nn)
    return out


@njit(**_OPTS)
def _glcm_outer(pi):
    """``pi[:, :, None] * pi[:, None, :]``."""
    k, ng = pi.shape
    out = np.empty((k, ng, ng))
    for t in range(k):
        for a in range(ng):
            for b in range(ng):
                out[t, a, b] = pi[t, a] * pi[t, b]
    return out


@njit(**_OPTS)
def _glcm_second(p, logp, pipj, logpipj, mu, ipj):
    """Joint entropies (``hxy``, ``hxy1``, ``hxy2``) and the cluster sums, which need the
    logarithms (taken by NumPy) and the joint average ``mu``."""
    k, ng, _ = p.shape
    nn = ng * ng
    out = np.empty((k, 6))
    b1 = np.empty(nn)
    b2 = np.empty(nn)
    b3 = np.empty(nn)
    sf = ipj.ravel()
    for t in range(k):
        pt = p[t].ravel()
        lt = logp[t].ravel()
        qt = pipj[t].ravel()
        lq = logpipj[t].ravel()
        for j in range(nn):
            b1[j] = pt[j] * lt[j]
            b2[j] = pt[j] * lq[j]
            b3[j] = qt[j] * lq[j]
        out[t, 0] = -_flat_sum(b1, nn)
        out[t, 1] = -_flat_sum(b2, nn)
        out[t, 2] = -_flat_sum(b3, nn)
        m2 = 2 * mu[t]
        for j in range(nn):
            cl = sf[j] - m2
            pcl2 = pt[j] * (cl * cl)
            pcl3 = pcl2 * cl
            b1[j] = pcl2
            b2[j] = pcl3
            b3[j] = pcl3 * cl
        out[t, 3] = _flat_sum(b1, nn)
        out[t, 4] = _flat_sum(b2, nn)
        out[t, 5] = _flat_sum(b3, nn)
    return out


def glcm_first(mats, weights):
    """``(p, pi, pd, ps, sums)`` of ``texture._features``: ``sums[:, 0]`` the maximum of each
    matrix, ``sums[:, 1]`` its sum of ``p * p``, ``sums[:, 2 + w]`` its sum of
    ``p * weights[w]``."""
    return _glcm_first(np.ascontiguousarray(mats, dtype=np.int64),
                       np.ascontiguousarray(weights, dtype=np.float64))


def glcm_divided(p, weights):
    """The sum of ``p / weights[w]`` over each matrix, for every ``w``."""
    return _glcm_divided(p, np.ascontiguousarray(weights, dtype=np.float64))


def glcm_outer(pi):
    """``pi[:, :, None] * pi[:, None, :]`` (compiled)."""
    return _glcm_outer(np.ascontiguousarray(pi))


def glcm_second(p, logp, pipj, logpipj, mu, ipj):
    """``hxy``, ``hxy1``, ``hxy2``, cluster tendency, shade and prominence of each matrix."""
    return _glcm_second(p, logp, pipj, logpipj, np.ascontiguousarray(mu, dtype=np.float64),
                        np.ascontiguousarray(ipj, dtype=np.float64))


@njit(**_OPTS)
def _upper_positive(q):
    """The positive entries of the upper triangles (diagonal included) of ``q`` (k, n, n), and
    whether every matrix is symmetric."""
    k, n, _ = q.shape
    out = np.empty(k * n * (n + 1) // 2)
    c = 0
    sym = True
    for t in range(k):
        for a in range(n):
            for b in range(a, n):
                v = q[t, a, b]
                if v != q[t, b, a]:
                    sym = False
                if v > 0:
                    out[c] = v
                    c += 1
    return out[:c], sym


@njit(**_OPTS)
def _mirror(q, logs):
    k, n, _ = q.shape
    out = np.zeros(q.shape)
    c = 0
    for t in range(k):
        for a in range(n):
            for b in range(a, n):
                if q[t, a, b] > 0:
                    out[t, a, b] = logs[c]
                    out[t, b, a] = logs[c]
                    c += 1
    return out


def log2_symmetric(q):
    """``log2`` of the positive entries of symmetric matrices ``q`` (k, n, n), 0 elsewhere, with
    ``numpy.log2`` taken once per pair of mirrored entries (equal values, equal logarithms).

    Parameters
    ----------
    q : ndarray of float64, shape (k, n, n)
        Non-negative; matrices that are not symmetric are handled too (every entry taken).

    Returns
    -------
    ndarray of float64, same shape

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[[0.5, 0.25], [0.25, 0.0]]])
    >>> log2_symmetric(q)[0].tolist()
    [[-1.0, -2.0], [-2.0, 0.0]]
    """
    q = np.ascontiguousarray(q, dtype=np.float64)
    packed, sym = _upper_positive(q)
    if not sym:
        out = np.zeros_like(q)
        pos = q > 0
        out[pos] = np.log2(q[pos])
        return out
    return _mirror(q, np.log2(packed))
