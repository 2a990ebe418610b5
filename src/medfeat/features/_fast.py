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
           "segment_sums", "value_segments", "level_histograms", "cooc_stack", "glcm_sums",
           "glcm_log_sums"]

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


@njit(**_OPTS)
def _bucket_counts(a, lo, scale):
    """How many values of ``a`` fall in each of the ``_BUCKETS`` buckets (counted in four
    interleaved tables, so that runs of equal values do not wait on one counter)."""
    sub = np.zeros((4, _BUCKETS), np.int64)
    n = a.size
    i = 0
    while i + 4 <= n:
        sub[0, _bucket(a[i], lo, scale)] += 1
        sub[1, _bucket(a[i + 1], lo, scale)] += 1
        sub[2, _bucket(a[i + 2], lo, scale)] += 1
        sub[3, _bucket(a[i + 3], lo, scale)] += 1
        i += 4
    while i < n:
        sub[0, _bucket(a[i], lo, scale)] += 1
        i += 1
    counts = np.empty(_BUCKETS, np.int64)
    for b in range(_BUCKETS):
        counts[b] = (sub[0, b] + sub[1, b]) + (sub[2, b] + sub[3, b])
    return counts


@njit(**_OPTS)
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


def _percentile_ranks(n, qs):
    """NumPy's virtual indices of percentiles ``qs`` of ``n`` sorted values (method
    ``"linear"``): the ranks below and above each, and the interpolation weights."""
    virtual = (n - 1) * np.true_divide(np.asarray(qs, dtype=np.float64), 100)
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    nxt[above] = -1
    below = virtual < 0
    prev[below] = 0
    nxt[below] = 0
    t = np.asarray(virtual - prev, dtype=np.float64)
    return prev.astype(np.intp) % n, nxt.astype(np.intp) % n, t


def _lerp(a, b, t):
    """``numpy.lib._function_base_impl._lerp`` as NumPy writes it (elementwise)."""
    diff = b - a
    out = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)
    return out


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
    prev, nxt, t = _percentile_ranks(v.size, qs)
    ranks = np.unique(np.concatenate([prev, nxt]))
    stats = dict(zip(ranks.tolist(), order_stats(v, ranks).tolist()))
    a = np.array([stats[k] for k in prev.tolist()])
    b = np.array([stats[k] for k in nxt.tolist()])
    return _lerp(a, b, t)


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


# The matrices are sparse (a 28 x 28 image fills about a third of a 32 x 32 matrix), so the sums
# run over the non-zero entries only, kept in the places NumPy's pairwise summation gives them:
# the same blocks of at most 128 values, the same one of the 8 accumulators for each value, in
# the same order, the same tree combining the blocks. A zero term changes no sum except in the
# sign of a zero result, and every sum here ends as ``0.0 + total`` (NumPy's reduction starts
# from 0.0), which makes that sign +0 in both.


def _pairwise_plan(n):
    """The blocks ``(start, length)`` of NumPy's pairwise summation of ``n`` values, in order,
    and the postfix program combining their sums (``k >= 0``: block ``k``'s sum, ``-1``: add the
    two values on top), as :func:`_pairwise` traverses them."""
    starts, lengths, prog = [], [], []

    def visit(lo, m):
        if m <= 128:
            prog.append(len(starts))
            starts.append(lo)
            lengths.append(m)
            return
        half = m // 2
        half -= half % 8
        visit(lo, half)
        visit(lo + half, m - half)
        prog.append(-1)
    visit(0, int(n))
    return (np.array(starts, np.int64), np.array(lengths, np.int64), np.array(prog, np.int64))


@njit(**_OPTS)
def _sparse_pairwise(nz, vals, c0, c1, base, starts, lengths, prog, work):
    """NumPy's sum of ``n`` values that are zero except ``vals[c]`` at ``base + nz[c]`` for
    ``c0 <= c < c1`` (``nz`` increasing), ``starts``/``lengths``/``prog`` the plan of ``n``
    (:func:`_pairwise_plan`); ``work`` holds 8 + 2 * blocks values."""
    nb = starts.size
    acc = work[:8]
    part = work[8:8 + nb]
    stack = work[8 + nb:8 + 2 * nb]
    c = c0
    for k in range(nb):
        s = base + starts[k]
        m = lengths[k]
        e = s + m
        res = 0.0
        if m >= 8:
            stop = e - m % 8
            for r in range(8):
                acc[r] = 0.0
            while c < c1 and nz[c] < stop:
                r = (nz[c] - s) & 7
                acc[r] = acc[r] + vals[c]
                c += 1
            res = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        while c < c1 and nz[c] < e:
            res = res + vals[c]
            c += 1
        part[k] = res
    if nb == 1:
        return 0.0 + part[0]
    sp = 0
    for op in prog:
        if op >= 0:
            stack[sp] = part[op]
            sp += 1
        else:
            sp -= 1
            stack[sp - 1] = stack[sp - 1] + stack[sp]
    return 0.0 + stack[0]


@njit(**_OPTS)
def _probabilities(mt, nz, pv):
    """The non-zero entries of ``p = counts / counts.sum()`` of one flattened matrix: their
    flat indices into ``nz`` and values into ``pv``; returns how many."""
    tot = 0
    cnt = 0
    for j in range(mt.size):
        tot += mt[j]
        if mt[j] != 0:
            nz[cnt] = j
            cnt += 1
    if tot <= 0:
        raise ValueError("every co-occurrence matrix must hold at least one pair")
    ft = np.float64(tot)
    for c in range(cnt):
        pv[c] = np.float64(mt[nz[c]]) / ft
    return cnt


@njit(**_OPTS)
def _glcm_sums(mats, weights, divisors, plan_s, plan_l, plan_p, row_s, row_l, row_p):
    """Everything of ``texture._features`` that needs no logarithm and no matrix-vector
    product, for each matrix of ``mats`` (k, Ng, Ng) of non-negative counts: the marginals
    ``pi``, the diagonal and anti-diagonal sums ``pd`` and ``ps``, the maximum and the sums of
    ``p * p``, ``p * weights[w]`` and ``p / divisors[d]``; and, for NumPy's ``log2``, the
    positive entries of every ``p`` and of every ``pi[:, None] * pi[None, :]``, in C order.
    ``plan_*``: :func:`_pairwise_plan` of ``Ng * Ng``, ``row_*``: of ``Ng``."""
    k, ng, _ = mats.shape
    nn = ng * ng
    nw = weights.shape[0]
    nd = divisors.shape[0]
    pi = np.empty((k, ng))
    pd = np.zeros((k, ng))
    ps = np.zeros((k, 2 * ng - 1))
    sums = np.empty((k, 2 + nw + nd))
    pos_p = np.empty(k * nn)
    pos_q = np.empty(k * nn)
    cp = 0
    cq = 0
    nz = np.empty(nn, np.int64)
    pv = np.empty(nn)
    buf = np.empty(nn)
    work = np.empty(8 + 2 * max(plan_s.size, row_s.size))
    posi = np.empty(ng, np.int64)
    for t in range(k):
        cnt = _probabilities(mats[t].ravel(), nz, pv)
        top = 0.0 if cnt < nn else -np.inf
        c = 0
        npos = 0
        for a in range(ng):
            c_row = c
            while c < cnt and nz[c] < (a + 1) * ng:
                v = pv[c]
                b = nz[c] - a * ng
                pd[t, abs(a - b)] += v
                ps[t, a + b] += v
                if v > top:
                    top = v
                buf[c] = v * v
                pos_p[cp + c] = v
                c += 1
            pi[t, a] = _sparse_pairwise(nz, pv, c_row, c, a * ng, row_s, row_l, row_p, work)
            if pi[t, a] > 0:
                posi[npos] = a
                npos += 1
        cp += cnt
        sums[t, 0] = top
        sums[t, 1] = _sparse_pairwise(nz, buf, 0, cnt, 0, plan_s, plan_l, plan_p, work)
        for w in range(nw):
            wf = weights[w].ravel()
            for c in range(cnt):
                buf[c] = pv[c] * wf[nz[c]]
            sums[t, 2 + w] = _sparse_pairwise(nz, buf, 0, cnt, 0, plan_s, plan_l, plan_p, work)
        for d in range(nd):
            df = divisors[d].ravel()
            for c in range(cnt):
                buf[c] = pv[c] / df[nz[c]]
            sums[t, 2 + nw + d] = _sparse_pairwise(nz, buf, 0, cnt, 0, plan_s, plan_l, plan_p,
                                                   work)
        # the products of positive marginals, in C order (a zero marginal gives a zero product)
        for x in range(npos):
            for y in range(npos):
                q = pi[t, posi[x]] * pi[t, posi[y]]
                if q > 0:
                    pos_q[cq] = q
                    cq += 1
    return pi, pd, ps, sums, pos_p[:cp], pos_q[:cq]


@njit(**_OPTS)
def _glcm_log_sums(mats, pi, log_p, log_q, mu, ipj, plan_s, plan_l, plan_p):
    """Joint entropies (``hxy``, ``hxy1``, ``hxy2``) and the cluster sums of each matrix, from
    the logarithms of the positive entries :func:`_glcm_sums` listed (0 stands for log 0), the
    marginals and the joint averages ``mu``; ``p`` and the marginal products are recomputed
    (the same divisions and products)."""
    k, ng, _ = mats.shape
    nn = ng * ng
    out = np.empty((k, 6))
    nz = np.empty(nn, np.int64)
    pv = np.empty(nn)
    nzq = np.empty(nn, np.int64)
    qv = np.empty(nn)
    lq = np.empty(nn)
    b1 = np.empty(nn)
    b2 = np.empty(nn)
    b3 = np.empty(nn)
    work = np.empty(8 + 2 * plan_s.size)
    sf = ipj.ravel()
    cp = 0
    cq = 0
    posi = np.empty(ng, np.int64)
    for t in range(k):
        cnt = _probabilities(mats[t].ravel(), nz, pv)
        npos = 0
        for a in range(ng):
            if pi[t, a] > 0:
                posi[npos] = a
                npos += 1
        lq[:] = 0.0
        nq = 0
        for x in range(npos):
            for y in range(npos):
                a = posi[x]
                b = posi[y]
                q = pi[t, a] * pi[t, b]
                if q > 0:
                    j = a * ng + b
                    lq[j] = log_q[cq]
                    nzq[nq] = j
                    qv[nq] = q
                    nq += 1
                    cq += 1
        for c in range(cnt):
            b1[c] = pv[c] * log_p[cp + c]
            b2[c] = pv[c] * lq[nz[c]]
        cp += cnt
        for c in range(nq):
            b3[c] = qv[c] * lq[nzq[c]]
        out[t, 0] = -_sparse_pairwise(nz, b1, 0, cnt, 0, plan_s, plan_l, plan_p, work)
        out[t, 1] = -_sparse_pairwise(nz, b2, 0, cnt, 0, plan_s, plan_l, plan_p, work)
        out[t, 2] = -_sparse_pairwise(nzq, b3, 0, nq, 0, plan_s, plan_l, plan_p, work)
        m2 = 2 * mu[t]
        for c in range(cnt):
            cl = sf[nz[c]] - m2
            pcl2 = pv[c] * (cl * cl)
            pcl3 = pcl2 * cl
            b1[c] = pcl2
            b2[c] = pcl3
            b3[c] = pcl3 * cl
        out[t, 3] = _sparse_pairwise(nz, b1, 0, cnt, 0, plan_s, plan_l, plan_p, work)
        out[t, 4] = _sparse_pairwise(nz, b2, 0, cnt, 0, plan_s, plan_l, plan_p, work)
        out[t, 5] = _sparse_pairwise(nz, b3, 0, cnt, 0, plan_s, plan_l, plan_p, work)
    return out


def glcm_sums(mats, weights, divisors):
    """``(pi, pd, ps, sums, pos_p, pos_q)`` of ``texture._features`` (see :func:`_glcm_sums`):
    ``sums[:, 0]`` the maximum of each matrix's ``p``, ``sums[:, 1]`` its sum of ``p * p``,
    then its sums of ``p * weights[w]`` and of ``p / divisors[d]``. Every matrix must hold a
    pair (ValueError otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> mats = np.array([[[2, 1], [1, 0]]])
    >>> pi, pd, ps, sums, pos_p, pos_q = glcm_sums(mats, np.ones((1, 2, 2)), np.ones((1, 2, 2)))
    >>> pi.tolist(), sums.tolist(), pos_p.tolist()
    ([[0.75, 0.25]], [[0.5, 0.375, 1.0, 1.0]], [0.5, 0.25, 0.25])
    """
    mats = np.ascontiguousarray(mats, dtype=np.int64)
    ng = mats.shape[-1]
    return _glcm_sums(mats, np.ascontiguousarray(weights, dtype=np.float64),
                      np.ascontiguousarray(divisors, dtype=np.float64),
                      *_pairwise_plan(ng * ng), *_pairwise_plan(ng))


def glcm_log_sums(mats, pi, log_p, log_q, mu, ipj):
    """``hxy``, ``hxy1``, ``hxy2``, cluster tendency, shade and prominence of each matrix, given
    ``numpy.log2`` of the ``pos_p`` and ``pos_q`` of :func:`glcm_sums` (``ipj``: the matrix of
    ``i + j``)."""
    mats = np.ascontiguousarray(mats, dtype=np.int64)
    ng = mats.shape[-1]
    return _glcm_log_sums(mats, np.ascontiguousarray(pi),
                          np.ascontiguousarray(log_p, dtype=np.float64),
                          np.ascontiguousarray(log_q, dtype=np.float64),
                          np.ascontiguousarray(mu, dtype=np.float64),
                          np.ascontiguousarray(ipj, dtype=np.float64),
                          *_pairwise_plan(ng * ng))
