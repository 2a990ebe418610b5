"""Compiled helpers of the feature families (Numba, one thread, cached on disk).

Kept here rather than in :mod:`medfeat._kernels`: they serve the features only (exact order
statistics for percentiles, co-occurrence counting) and always run serially, since the
:class:`~medfeat.features.FeatureExtractor` parallelises over images.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["percentiles", "order_stats", "cooc_counts", "cooc_counts_2d"]

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
    """Exact order statistics: ``np.sort(values)[ks]`` without sorting.

    Parameters
    ----------
    values : ndarray of float64, 1-D, non-empty, without NaN
    ks : sequence of int
        0-based ranks, in increasing order.

    Returns
    -------
    ndarray of float64
    """
    return _order_stats(np.ascontiguousarray(values, dtype=np.float64),
                        np.asarray(ks, dtype=np.int64))


def percentiles(values, qs):
    """``numpy.percentile(values, qs)`` (method ``"linear"``), bit for bit, by exact selection:
    :func:`medfeat.kernels.percentile` of the values as float64.

    Parameters
    ----------
    values : ndarray, 1-D, non-empty, finite
    qs : sequence of float
        Percentiles in [0, 100].

    Returns
    -------
    ndarray of float64
    """
    from medfeat import kernels

    return kernels.percentile(np.ascontiguousarray(values, dtype=np.float64).ravel(), list(qs))


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
