"""Numba bodies of the density kernels (histogram, KDE, Otsu, maximum entropy).

Same names and arguments as ``medfeat._kernels.cython._density_cy``; :mod:`medfeat.kernels.density`
validates and prepares, these only run the loops. Images arrive flattened (1-D, C order) and read-only
(the public layer passes read-only views so that Numba compiles one specialisation per dtype, not two).
Parallel loops split the data into ``nchunks`` contiguous chunks, each with a private histogram/grid,
merged afterwards, so no two threads write the same counter.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange


def max_threads():
    """Threads a parallel loop uses (the chunk count the public layer asks for)."""
    return numba.get_num_threads()


@njit(cache=True, inline="always")
def _chunk(n, nchunks, c):
    step = (n + nchunks - 1) // nchunks
    start = min(n, c * step)
    return start, min(n, start + step)


@njit(parallel=True, cache=True)
def value_counts(x, mask, offset, nvals, nchunks):
    """Counts of each integer value ``x[i] - offset`` in ``[0, nvals)`` (of masked pixels only when
    ``mask`` is non-empty). Values outside that range must not occur."""
    n = x.size
    priv = np.zeros((nchunks, nvals), np.int64)
    use_mask = mask.size > 0
    for c in prange(nchunks):
        start, stop = _chunk(n, nchunks, c)
        row = priv[c]
        if use_mask:
            for i in range(start, stop):
                if mask[i]:
                    row[np.int64(x[i]) - offset] += 1
        else:
            for i in range(start, stop):
                row[np.int64(x[i]) - offset] += 1
    out = np.zeros(nvals, np.int64)
    for k in prange(nvals):
        s = 0
        for c in range(nchunks):
            s += priv[c, k]
        out[k] = s
    return out


@njit(parallel=True, cache=True)
def finite_range(x, nchunks):
    """``[min, max, n_nan]`` of a float array; min and max ignore NaN (+-inf count)."""
    n = x.size
    res = np.empty((nchunks, 3), np.float64)
    for c in prange(nchunks):
        start, stop = _chunk(n, nchunks, c)
        lo = np.inf
        hi = -np.inf
        nan = 0
        for i in range(start, stop):
            v = np.float64(x[i])
            if v != v:
                nan += 1
            else:
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
        res[c, 0] = lo
        res[c, 1] = hi
        res[c, 2] = nan
    out = np.empty(3, np.float64)
    out[0] = res[:, 0].min()
    out[1] = res[:, 1].max()
    out[2] = res[:, 2].sum()
    return out


@njit(cache=True, inline="always")
def _bin_of(v, edges, nb, first, scale):
    # NumPy's guess, then walk to the bin whose edges bracket v (NumPy corrects by one step; a walk
    # gives the same bin whenever that step suffices and the right bin when it does not)
    i = np.int64((v - first) * scale)
    if i > nb - 1:
        i = nb - 1
    if i < 0:
        i = 0
    while i > 0 and v < edges[i]:
        i -= 1
    while i < nb - 1 and v >= edges[i + 1]:
        i += 1
    return i


@njit(parallel=True, cache=True)
def bin_counts(x, edges, lo, hi, first, scale, nchunks):
    """Histogram of float values on the uniform ``edges`` (NumPy's rules: keep ``lo <= v <= hi``, last
    bin closed). Returns ``nbins + 1`` counts; the last is the number of NaNs seen."""
    n = x.size
    nb = edges.size - 1
    priv = np.zeros((nchunks, nb + 1), np.int64)
    for c in prange(nchunks):
        start, stop = _chunk(n, nchunks, c)
        row = priv[c]
        for i in range(start, stop):
            v = np.float64(x[i])
            if v >= lo and v <= hi:
                row[_bin_of(v, edges, nb, first, scale)] += 1
            elif v != v:
                row[nb] += 1
    out = np.zeros(nb + 1, np.int64)
    for c in range(nchunks):
        for k in range(nb + 1):
            out[k] += priv[c, k]
    return out


@njit(cache=True)
def rebin(raw, offset, edges, lo, hi, first, scale):
    """Histogram from integer value counts: ``raw[k]`` pixels have value ``offset + k``; each value goes
    to the bin NumPy would put it in."""
    nb = edges.size - 1
    out = np.zeros(nb, np.int64)
    for k in range(raw.size):
        cnt = raw[k]
        if cnt == 0:
            continue
        v = np.float64(offset + k)
        if v >= lo and v <= hi:
            out[_bin_of(v, edges, nb, first, scale)] += cnt
    return out


@njit(parallel=True, cache=True)
def linear_bin(x, w, lo, dx, ngrid, nchunks):
    """Linear binning (each value splits its weight between its two grid neighbours, in proportion to
    closeness) onto ``lo + k * dx``, ``k < ngrid``. ``w`` empty means unit weights."""
    n = x.size
    priv = np.zeros((nchunks, ngrid), np.float64)
    weighted = w.size > 0
    last = ngrid - 1
    for c in prange(nchunks):
        start, stop = _chunk(n, nchunks, c)
        row = priv[c]
        for i in range(start, stop):
            t = (np.float64(x[i]) - lo) / dx
            j = np.int64(math.floor(t))
            if j < 0:
                j = 0
            elif j > last - 1:
                j = last - 1
            f = t - j
            wi = w[i] if weighted else 1.0
            row[j] += wi * (1.0 - f)
            row[j + 1] += wi * f
    out = np.zeros(ngrid, np.float64)
    for k in prange(ngrid):
        s = 0.0
        for c in range(nchunks):
            s += priv[c, k]
        out[k] = s
    return out


@njit(parallel=True, cache=True)
def gauss_scatter(x, w, lo, dx, ngrid, bw, cutoff, nchunks):
    """Exact sum of unnormalised Gaussians ``exp(-(g - x_i)**2 / (2 bw**2))`` over grid points within
    ``cutoff`` of each value (for kernels too narrow for binning). ``w`` empty means unit weights."""
    n = x.size
    priv = np.zeros((nchunks, ngrid), np.float64)
    weighted = w.size > 0
    inv = 1.0 / bw
    for c in prange(nchunks):
        start, stop = _chunk(n, nchunks, c)
        row = priv[c]
        for i in range(start, stop):
            v = np.float64(x[i])
            k0 = max(0, np.int64(math.ceil((v - cutoff - lo) / dx)))
            k1 = min(ngrid - 1, np.int64(math.floor((v + cutoff - lo) / dx)))
            wi = w[i] if weighted else 1.0
            for k in range(k0, k1 + 1):
                z = (lo + k * dx - v) * inv
                row[k] += wi * math.exp(-0.5 * z * z)
    out = np.zeros(ngrid, np.float64)
    for k in prange(ngrid):
        s = 0.0
        for c in range(nchunks):
            s += priv[c, k]
        out[k] = s
    return out


@njit(parallel=True, cache=True)
def convolve_same(a, kern):
    """``out[k] = sum_j a[k + j - h] * kern[j]`` with ``h = len(kern) // 2`` and zeros outside ``a``."""
    n = a.size
    m = kern.size
    h = m // 2
    out = np.empty(n, np.float64)
    for k in prange(n):
        j0 = max(0, h - k)
        j1 = min(m, n + h - k)
        s = 0.0
        for j in range(j0, j1):
            s += a[k + j - h] * kern[j]
        out[k] = s
    return out


@njit(cache=True)
def otsu_index(counts, centers, single):
    """Index of the bin centre maximising Otsu's between-class variance, with scikit-image's arithmetic:
    float32 class weights (cumulative sums of float32 counts) and, when ``single``, float32 means and
    variance (float32 bin centres), otherwise float64 ones."""
    nb = counts.size
    w1 = np.empty(nb, np.float32)
    w2 = np.empty(nb, np.float32)
    acc = np.float32(0.0)
    for i in range(nb):
        acc += counts[i]
        w1[i] = acc
    acc = np.float32(0.0)
    for i in range(nb - 1, -1, -1):
        acc += counts[i]
        w2[i] = acc
    best = -1
    if single:
        m1 = np.empty(nb, np.float32)
        m2 = np.empty(nb, np.float32)
        s = np.float32(0.0)
        for i in range(nb):
            s += counts[i] * np.float32(centers[i])
            m1[i] = s / w1[i]
        s = np.float32(0.0)
        for i in range(nb - 1, -1, -1):
            s += counts[i] * np.float32(centers[i])
            m2[i] = s / w2[i]
        vbest = np.float32(0.0)
        for i in range(nb - 1):
            d = m1[i] - m2[i + 1]
            v = (w1[i] * w2[i + 1]) * (d * d)
            if best < 0 or v > vbest:
                vbest = v
                best = i
    else:
        d1 = np.empty(nb, np.float64)
        d2 = np.empty(nb, np.float64)
        s64 = 0.0
        for i in range(nb):
            s64 += np.float64(counts[i]) * centers[i]
            d1[i] = s64 / np.float64(w1[i])
        s64 = 0.0
        for i in range(nb - 1, -1, -1):
            s64 += np.float64(counts[i]) * centers[i]
            d2[i] = s64 / np.float64(w2[i])
        vbest64 = 0.0
        for i in range(nb - 1):
            d = d1[i] - d2[i + 1]
            v64 = np.float64(w1[i] * w2[i + 1]) * (d * d)
            if best < 0 or v64 > vbest64:
                vbest64 = v64
                best = i
    return best


@njit(cache=True)
def maxent_index(counts):
    """Index ``t`` maximising H(bins <= t) + H(bins > t), the entropies of the two classes' normalised
    histograms (Kapur, Sahoo & Wong 1985). With class total C and S = sum c log c, H = log C - S / C."""
    nb = counts.size
    ca = np.empty(nb, np.float64)
    sa = np.empty(nb, np.float64)
    c_acc = 0.0
    s_acc = 0.0
    for i in range(nb):
        c = counts[i]
        c_acc += c
        if c > 0:
            s_acc += c * math.log(c)
        ca[i] = c_acc
        sa[i] = s_acc
    best = -1
    hbest = 0.0
    c_acc = 0.0
    s_acc = 0.0
    # walk down so the upper class's sums are accumulated, not obtained by cancellation
    for i in range(nb - 1, 0, -1):
        c = counts[i]
        c_acc += c
        if c > 0:
            s_acc += c * math.log(c)
        t = i - 1
        if ca[t] > 0 and c_acc > 0:
            h = (math.log(ca[t]) - sa[t] / ca[t]) + (math.log(c_acc) - s_acc / c_acc)
            if best < 0 or h >= hbest:
                hbest = h
                best = t
    return best


@njit(parallel=True, cache=True)
def moments(x, mask, block):
    """``[count, mean, m2, min, max, n_nan, n_inf]`` of ``x`` (of masked pixels only when ``mask`` is
    non-empty; NaN and inf are counted over every pixel). Each block of ``block`` values is summed in
    float64 and its squared deviations taken from its own mean while it is in cache; blocks are then
    merged with the pairwise update of Chan, Golub & LeVeque (1979), so ``m2`` does not suffer the
    cancellation of ``sum(x**2) - n * mean**2``."""
    n = x.size
    nblocks = (n + block - 1) // block
    st = np.zeros((nblocks, 7), np.float64)
    use_mask = mask.size > 0
    for b in prange(nblocks):
        start = b * block
        stop = min(n, start + block)
        cnt = 0
        s = 0.0
        lo = np.inf
        hi = -np.inf
        nan = 0
        inf = 0
        for i in range(start, stop):
            v = np.float64(x[i])
            if v != v:
                nan += 1
                continue
            if v == np.inf or v == -np.inf:
                inf += 1
            if use_mask and not mask[i]:
                continue
            cnt += 1
            s += v
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        m2 = 0.0
        mean = 0.0
        if cnt > 0:
            mean = s / cnt
            for i in range(start, stop):
                if use_mask and not mask[i]:
                    continue
                d = np.float64(x[i]) - mean
                m2 += d * d
        st[b, 0] = cnt
        st[b, 1] = mean
        st[b, 2] = m2
        st[b, 3] = lo
        st[b, 4] = hi
        st[b, 5] = nan
        st[b, 6] = inf
    out = np.zeros(7, np.float64)
    out[3] = np.inf
    out[4] = -np.inf
    for b in range(nblocks):
        nb_ = st[b, 0]
        if nb_ > 0:
            na = out[0]
            tot = na + nb_
            delta = st[b, 1] - out[1]
            out[1] += delta * (nb_ / tot)
            out[2] += st[b, 2] + delta * delta * (na * nb_ / tot)
            out[0] = tot
            out[3] = min(out[3], st[b, 3])
            out[4] = max(out[4], st[b, 4])
        out[5] += st[b, 5]
        out[6] += st[b, 6]
    return out
