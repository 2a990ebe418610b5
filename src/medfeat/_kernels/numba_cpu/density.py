"""Numba bodies of the density kernels (histogram, KDE, Otsu, maximum entropy).

Same names and arguments as ``medfeat._kernels.cython._density_cy``; :mod:`medfeat.kernels.density`
validates and prepares, these only run the loops. Images arrive flattened (1-D, C order) and
read-only (the public layer passes read-only views so that Numba compiles one specialisation per
dtype, not two). Parallel loops split the data into ``nchunks`` contiguous chunks, each with a
private histogram/grid, merged afterwards, so no two threads write the same counter.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from .._common import bin_slot


def max_threads():
    """Threads a parallel loop uses (the chunk count the public layer asks for)."""
    return numba.get_num_threads()


def set_threads(k):
    """Make this Python thread's parallel loops use ``k`` threads; returns the previous number, for
    the public layer to restore (Numba's setting is per Python thread)."""
    prev = numba.get_num_threads()
    if k != prev:
        numba.set_num_threads(k)
    return prev


@njit(cache=True, inline="always")
def _chunk(n, nchunks, c):
    step = (n + nchunks - 1) // nchunks
    start = min(n, c * step)
    return start, min(n, start + step)


@njit(parallel=True, cache=True)
def value_counts(x, mask, offset, nvals, nchunks):
    """Counts of each integer value ``x[i] - offset`` in ``[0, nvals)`` (of masked pixels only when
    ``mask`` is non-empty). Values outside that range must not occur. Chunks must hold fewer than
    2**32 pixels (their private tables are uint32)."""
    n = x.size
    nsub = 4 if nvals <= 256 else 2
    priv = np.zeros((nchunks, nsub, nvals), np.uint32)
    use_mask = mask.size > 0
    for c in prange(nchunks):
        start, stop = _chunk(n, nchunks, c)
        tab = priv[c]
        if use_mask:
            for i in range(start, stop):
                tab[0, np.int64(x[i]) - offset] += mask[i]
        else:
            # consecutive pixels often share a value; spreading them over sub-tables breaks the
            # store-to-load dependency between their increments
            i = start
            if nsub == 4:
                while i + 4 <= stop:
                    tab[0, np.int64(x[i]) - offset] += 1
                    tab[1, np.int64(x[i + 1]) - offset] += 1
                    tab[2, np.int64(x[i + 2]) - offset] += 1
                    tab[3, np.int64(x[i + 3]) - offset] += 1
                    i += 4
            else:
                while i + 2 <= stop:
                    tab[0, np.int64(x[i]) - offset] += 1
                    tab[1, np.int64(x[i + 1]) - offset] += 1
                    i += 2
            while i < stop:
                tab[0, np.int64(x[i]) - offset] += 1
                i += 1
    out = np.zeros(nvals, np.int64)
    for k in prange(nvals):
        s = np.int64(0)
        for c in range(nchunks):
            for j in range(nsub):
                s += priv[c, j, k]
        out[k] = s
    return out


@njit(parallel=True, cache=True)
def value_range(x, mask, nchunks):
    """``[min, max, n_bad]`` of ``x``: min and max of the masked pixels only when ``mask`` is
    non-empty (+-inf if none), never NaN; ``n_bad`` counts NaNs over every pixel and, with a mask,
    infinities outside it (those inside show in min or max)."""
    n = x.size
    res = np.empty((nchunks, 3), np.float64)
    use_mask = mask.size > 0
    is_float = x.dtype.kind == "f"
    for c in prange(nchunks):
        start, stop = _chunk(n, nchunks, c)
        lo0 = lo1 = lo2 = lo3 = np.float64(np.inf)
        hi0 = hi1 = hi2 = hi3 = np.float64(-np.inf)
        nan = 0
        if use_mask:
            for i in range(start, stop):
                a = np.float64(x[i])
                # NaN anywhere, and infinity outside the mask, are counted
                nan += (a != a) or (not mask[i] and (a - a) != 0)
                if mask[i]:
                    lo0 = a if a < lo0 else lo0
                    hi0 = a if a > hi0 else hi0
        else:
            # four independent min/max chains in the image's type (a NaN fails every comparison,
            # so it is never kept); NaN is found by poisoning: a - a is 0 for finite values and NaN
            # for NaN or +-inf, so four add chains replace a compare-and-count per pixel, and only
            # a poisoned chunk is recounted
            t_lo = x.dtype.type(np.inf) if is_float else x[start]
            t_hi = x.dtype.type(-np.inf) if is_float else x[start]
            l0 = l1 = l2 = l3 = t_lo
            h0 = h1 = h2 = h3 = t_hi
            z0 = z1 = z2 = z3 = x.dtype.type(0)
            i = start
            while i + 4 <= stop:
                a = x[i]
                b = x[i + 1]
                cc = x[i + 2]
                d = x[i + 3]
                l0 = a if a < l0 else l0
                l1 = b if b < l1 else l1
                l2 = cc if cc < l2 else l2
                l3 = d if d < l3 else l3
                h0 = a if a > h0 else h0
                h1 = b if b > h1 else h1
                h2 = cc if cc > h2 else h2
                h3 = d if d > h3 else h3
                if is_float:
                    z0 = z0 + (a - a)
                    z1 = z1 + (b - b)
                    z2 = z2 + (cc - cc)
                    z3 = z3 + (d - d)
                i += 4
            while i < stop:
                a = x[i]
                l0 = a if a < l0 else l0
                h0 = a if a > h0 else h0
                if is_float:
                    z0 = z0 + (a - a)
                i += 1
            lo0 = np.float64(min(min(l0, l1), min(l2, l3)))
            hi0 = np.float64(max(max(h0, h1), max(h2, h3)))
            if is_float:
                z = (z0 + z1) + (z2 + z3)
                if z != z:
                    for i in range(start, stop):
                        nan += x[i] != x[i]
        res[c, 0] = min(min(lo0, lo1), min(lo2, lo3))
        res[c, 1] = max(max(hi0, hi1), max(hi2, hi3))
        res[c, 2] = nan
    out = np.empty(3, np.float64)
    out[0] = res[:, 0].min()
    out[1] = res[:, 1].max()
    out[2] = res[:, 2].sum()
    return out


#: bins 0..nb-1, then nb for NaN and nb + 1 for values outside [lo, hi] (shared with the GPU)
_slot = njit(cache=True, inline="always")(bin_slot)


@njit(parallel=True, cache=True)
def bin_counts(x, edges, lo, hi, first, scale, nchunks):
    """Histogram of float values on the uniform ``edges`` (NumPy's rules: keep ``lo <= v <= hi``,
    last bin closed). Returns ``nbins + 1`` counts; the last is the number of NaNs seen. Chunks must
    hold fewer than 2**32 pixels."""
    n = x.size
    nb = edges.size - 1
    priv = np.zeros((nchunks, 4, nb + 2), np.uint32)
    for c in prange(nchunks):
        start, stop = _chunk(n, nchunks, c)
        tab = priv[c]
        # four sub-tables, as in value_counts: neighbouring pixels usually fall in the same bin
        i = start
        while i + 4 <= stop:
            tab[0, _slot(np.float64(x[i]), edges, nb, lo, hi, first, scale)] += 1
            tab[1, _slot(np.float64(x[i + 1]), edges, nb, lo, hi, first, scale)] += 1
            tab[2, _slot(np.float64(x[i + 2]), edges, nb, lo, hi, first, scale)] += 1
            tab[3, _slot(np.float64(x[i + 3]), edges, nb, lo, hi, first, scale)] += 1
            i += 4
        while i < stop:
            tab[0, _slot(np.float64(x[i]), edges, nb, lo, hi, first, scale)] += 1
            i += 1
    out = np.zeros(nb + 1, np.int64)
    for c in range(nchunks):
        for j in range(4):
            for k in range(nb + 1):
                out[k] += priv[c, j, k]
    return out


@njit(cache=True)
def rebin(raw, offset, edges, lo, hi, first, scale):
    """Histogram from integer value counts: ``raw[k]`` pixels have value ``offset + k``; each value
    goes to the bin NumPy would put it in."""
    nb = edges.size - 1
    out = np.zeros(nb, np.int64)
    for k in range(raw.size):
        cnt = raw[k]
        if cnt == 0:
            continue
        s = _slot(np.float64(offset + k), edges, nb, lo, hi, first, scale)
        if s < nb:
            out[s] += cnt
    return out


@njit(parallel=True, cache=True)
def _sum_rows(priv):
    """Column sums of the per-chunk private rows ``priv`` (chunks x grid), in chunk order so the
    result does not depend on scheduling."""
    nchunks, ngrid = priv.shape
    out = np.zeros(ngrid, np.float64)
    for k in prange(ngrid):
        s = 0.0
        for c in range(nchunks):
            s += priv[c, k]
        out[k] = s
    return out


@njit(parallel=True, cache=True)
def linear_bin(x, w, lo, dx, ngrid, nchunks):
    """Linear binning (each value splits its weight between its two grid neighbours, in proportion
    to closeness) onto ``lo + k * dx``, ``k < ngrid``. ``w`` empty means unit weights."""
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
    return _sum_rows(priv)


@njit(parallel=True, cache=True)
def gauss_scatter(x, w, lo, dx, ngrid, bw, cutoff, nchunks):
    """Exact sum of unnormalised Gaussians ``exp(-(g - x_i)**2 / (2 bw**2))`` over grid points
    within ``cutoff`` of each value (for kernels too narrow for binning). ``w`` empty means unit
    weights."""
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
    return _sum_rows(priv)


@njit(parallel=True, cache=True)
def convolve_same(a, kern, nthreads):
    """``out[k] = sum_j a[k + j - h] * kern[j]`` with ``h = len(kern) // 2`` and zeros outside
    ``a``."""
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
    """Index of the bin centre maximising Otsu's between-class variance, with scikit-image's
    arithmetic: float32 class weights (cumulative sums of float32 counts) and, when ``single``,
    float32 means and variance (float32 bin centres), otherwise float64 ones."""
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
    """Index ``t`` maximising H(bins <= t) + H(bins > t), the entropies of the two classes'
    normalised histograms (Kapur, Sahoo & Wong 1985). With class total C and S = sum c log c, H =
    log C - S / C."""
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
def moments(x, mask, block, nthreads):
    """``[count, mean, m2]`` of ``x`` (of masked pixels only when ``mask`` is non-empty),
    accumulated in float64 block by block, blocks merged with the pairwise update of Chan, Golub &
    LeVeque (1979). A NaN or inf anywhere, masked or not, makes ``mean`` or ``m2`` non-finite."""
    n = x.size
    nblocks = (n + block - 1) // block
    st = np.zeros((nblocks, 3), np.float64)
    use_mask = mask.size > 0
    for b in prange(nblocks):
        start = b * block
        stop = min(n, start + block)
        # shifted sums around K, a pixel of the block: var = (S2 - S1**2 / n) / n loses at most
        # ~n * eps to cancellation, as |mean - K| <= sqrt(n) * std (the "shifted data" algorithm);
        # four independent chains per sum keep the float64 adds from serialising
        K = np.float64(x[start])
        s1a = s1b = s1c = s1d = 0.0
        s2a = s2b = s2c = s2d = 0.0
        cnt = 0.0
        if use_mask:
            # masked-out pixels are multiplied by 0, so a NaN or inf there still poisons S1
            for i in range(start, stop):
                m = np.float64(mask[i])
                d = (np.float64(x[i]) - K) * m
                s1a += d
                s2a += d * d
                cnt += m
        else:
            i = start
            while i + 4 <= stop:
                d = np.float64(x[i]) - K
                e = np.float64(x[i + 1]) - K
                f = np.float64(x[i + 2]) - K
                g = np.float64(x[i + 3]) - K
                s1a += d
                s1b += e
                s1c += f
                s1d += g
                s2a += d * d
                s2b += e * e
                s2c += f * f
                s2d += g * g
                i += 4
            while i < stop:
                d = np.float64(x[i]) - K
                s1a += d
                s2a += d * d
                i += 1
            cnt = np.float64(stop - start)
        s1 = (s1a + s1b) + (s1c + s1d)
        s2 = (s2a + s2b) + (s2c + s2d)
        st[b, 0] = cnt
        if cnt > 0:
            st[b, 1] = K + s1 / cnt
            m2 = s2 - s1 * s1 / cnt
            st[b, 2] = 0.0 if m2 < 0 else m2  # rounding only; a NaN stays NaN
        else:
            st[b, 1] = 0.0
            st[b, 2] = s1 * 0.0
    out = np.zeros(3, np.float64)
    poison = 0.0
    for b in range(nblocks):
        nb_ = st[b, 0]
        if nb_ > 0:
            na = out[0]
            tot = na + nb_
            delta = st[b, 1] - out[1]
            out[1] += delta * (nb_ / tot)
            out[2] += st[b, 2] + delta * delta * (na * nb_ / tot)
            out[0] = tot
        else:
            poison += st[b, 2]
    out[2] += poison
    return out