# cython: language_level=3
"""Cython bodies of the density kernels (histogram, KDE, Otsu, maximum entropy).

Same names and arguments as ``medfeat._kernels.numba_cpu.density``; :mod:`medfeat.kernels.density`
validates and prepares, these only run the loops. Images arrive flattened (1-D, C order). Parallel loops
split the data into ``nchunks`` contiguous chunks, each with a private histogram/grid, merged afterwards,
so no two threads write the same counter.
"""

import numpy as np

cimport cython
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, ceil, exp, floor, log
from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t

ctypedef fused pix_t:
    uint8_t
    uint16_t
    int16_t
    float
    double

ctypedef fused int_t:
    uint8_t
    uint16_t
    int16_t

ctypedef fused flt_t:
    float
    double


_MAX_THREADS = None


def max_threads():
    """Threads an OpenMP parallel loop uses (the chunk count the public layer asks for)."""
    global _MAX_THREADS
    cdef int i, total = 0
    cdef int[256] seen
    if _MAX_THREADS is None:
        for i in range(256):
            seen[i] = 0
        for i in prange(4096, nogil=True, schedule="static", chunksize=1):
            if threadid() < 256:
                seen[threadid()] = 1
        for i in range(256):
            total += seen[i]
        _MAX_THREADS = max(1, total)
    return _MAX_THREADS


cdef inline void _chunk(Py_ssize_t n, Py_ssize_t nchunks, Py_ssize_t c,
                        Py_ssize_t* start, Py_ssize_t* stop) noexcept nogil:
    cdef Py_ssize_t step = (n + nchunks - 1) // nchunks
    start[0] = min(n, c * step)
    stop[0] = min(n, start[0] + step)


cdef void _vc_chunk(const int_t[::1] x, const uint8_t[::1] mask, bint use_mask, int64_t offset,
                    int64_t* row, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    if use_mask:
        for i in range(start, stop):
            if mask[i]:
                row[<int64_t>x[i] - offset] += 1
    else:
        for i in range(start, stop):
            row[<int64_t>x[i] - offset] += 1


def value_counts(const int_t[::1] x, const uint8_t[::1] mask, int64_t offset, Py_ssize_t nvals,
                 Py_ssize_t nchunks):
    """Counts of each integer value ``x[i] - offset`` in ``[0, nvals)`` (of masked pixels only when
    ``mask`` is non-empty). Values outside that range must not occur."""
    cdef Py_ssize_t n = x.shape[0], c, k, start, stop
    priv_arr = np.zeros((nchunks, nvals), np.int64)
    cdef int64_t[:, ::1] priv = priv_arr
    cdef bint use_mask = mask.shape[0] > 0
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1):
        _chunk(n, nchunks, c, &start, &stop)
        _vc_chunk(x, mask, use_mask, offset, &priv[c, 0], start, stop)
    out_arr = np.zeros(nvals, np.int64)
    cdef int64_t[::1] out = out_arr
    for c in range(nchunks):
        for k in range(nvals):
            out[k] += priv[c, k]
    return out_arr


cdef void _range_chunk(const flt_t[::1] x, double* res, Py_ssize_t start,
                       Py_ssize_t stop) noexcept nogil:
    cdef double lo = INFINITY, hi = -INFINITY, v
    cdef Py_ssize_t i, nan = 0
    for i in range(start, stop):
        v = x[i]
        if v != v:
            nan += 1
        else:
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    res[0] = lo
    res[1] = hi
    res[2] = nan


def finite_range(const flt_t[::1] x, Py_ssize_t nchunks):
    """``[min, max, n_nan]`` of a float array; min and max ignore NaN (+-inf count)."""
    cdef Py_ssize_t n = x.shape[0], c, start, stop
    res_arr = np.empty((nchunks, 3), np.float64)
    cdef double[:, ::1] res = res_arr
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1):
        _chunk(n, nchunks, c, &start, &stop)
        _range_chunk(x, &res[c, 0], start, stop)
    return np.array([res_arr[:, 0].min(), res_arr[:, 1].max(), res_arr[:, 2].sum()])


cdef inline Py_ssize_t _bin_of(double v, const double[::1] edges, Py_ssize_t nb, double first,
                               double scale) noexcept nogil:
    # NumPy's guess, then walk to the bin whose edges bracket v (NumPy corrects by one step; a walk
    # gives the same bin whenever that step suffices and the right bin when it does not)
    cdef Py_ssize_t i = <Py_ssize_t>((v - first) * scale)
    if i > nb - 1:
        i = nb - 1
    if i < 0:
        i = 0
    while i > 0 and v < edges[i]:
        i -= 1
    while i < nb - 1 and v >= edges[i + 1]:
        i += 1
    return i


cdef void _bin_chunk(const flt_t[::1] x, const double[::1] edges, double lo, double hi, double first,
                     double scale, int64_t* row, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i, nb = edges.shape[0] - 1
    cdef double v
    for i in range(start, stop):
        v = x[i]
        if v >= lo and v <= hi:
            row[_bin_of(v, edges, nb, first, scale)] += 1
        elif v != v:
            row[nb] += 1


def bin_counts(const flt_t[::1] x, const double[::1] edges, double lo, double hi, double first,
               double scale, Py_ssize_t nchunks):
    """Histogram of float values on the uniform ``edges`` (NumPy's rules: keep ``lo <= v <= hi``, last
    bin closed). Returns ``nbins + 1`` counts; the last is the number of NaNs seen."""
    cdef Py_ssize_t n = x.shape[0], nb = edges.shape[0] - 1, c, k, start, stop
    priv_arr = np.zeros((nchunks, nb + 1), np.int64)
    cdef int64_t[:, ::1] priv = priv_arr
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1):
        _chunk(n, nchunks, c, &start, &stop)
        _bin_chunk(x, edges, lo, hi, first, scale, &priv[c, 0], start, stop)
    return priv_arr.sum(axis=0)


def rebin(const int64_t[::1] raw, int64_t offset, const double[::1] edges, double lo, double hi,
          double first, double scale):
    """Histogram from integer value counts: ``raw[k]`` pixels have value ``offset + k``; each value goes
    to the bin NumPy would put it in."""
    cdef Py_ssize_t k, nb = edges.shape[0] - 1
    cdef double v
    out_arr = np.zeros(nb, np.int64)
    cdef int64_t[::1] out = out_arr
    with nogil:
        for k in range(raw.shape[0]):
            if raw[k] == 0:
                continue
            v = <double>(offset + k)
            if v >= lo and v <= hi:
                out[_bin_of(v, edges, nb, first, scale)] += raw[k]
    return out_arr


cdef void _lin_chunk(const flt_t[::1] x, const double[::1] w, bint weighted, double lo, double dx,
                     Py_ssize_t ngrid, double* row, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i, j, last = ngrid - 1
    cdef double t, f, wi
    for i in range(start, stop):
        t = (<double>x[i] - lo) / dx
        j = <Py_ssize_t>floor(t)
        if j < 0:
            j = 0
        elif j > last - 1:
            j = last - 1
        f = t - j
        wi = w[i] if weighted else 1.0
        row[j] += wi * (1.0 - f)
        row[j + 1] += wi * f


def linear_bin(const flt_t[::1] x, const double[::1] w, double lo, double dx, Py_ssize_t ngrid,
               Py_ssize_t nchunks):
    """Linear binning (each value splits its weight between its two grid neighbours, in proportion to
    closeness) onto ``lo + k * dx``, ``k < ngrid``. ``w`` empty means unit weights."""
    cdef Py_ssize_t n = x.shape[0], c, start, stop
    cdef bint weighted = w.shape[0] > 0
    priv_arr = np.zeros((nchunks, ngrid), np.float64)
    cdef double[:, ::1] priv = priv_arr
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1):
        _chunk(n, nchunks, c, &start, &stop)
        _lin_chunk(x, w, weighted, lo, dx, ngrid, &priv[c, 0], start, stop)
    return priv_arr.sum(axis=0)


cdef void _scatter_chunk(const flt_t[::1] x, const double[::1] w, bint weighted, double lo, double dx,
                         Py_ssize_t ngrid, double bw, double cutoff, double* row, Py_ssize_t start,
                         Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i, k, k0, k1
    cdef double v, z, wi, inv = 1.0 / bw
    for i in range(start, stop):
        v = x[i]
        k0 = max(0, <Py_ssize_t>ceil((v - cutoff - lo) / dx))
        k1 = min(ngrid - 1, <Py_ssize_t>floor((v + cutoff - lo) / dx))
        wi = w[i] if weighted else 1.0
        for k in range(k0, k1 + 1):
            z = (lo + k * dx - v) * inv
            row[k] += wi * exp(-0.5 * z * z)


def gauss_scatter(const flt_t[::1] x, const double[::1] w, double lo, double dx, Py_ssize_t ngrid,
                  double bw, double cutoff, Py_ssize_t nchunks):
    """Exact sum of unnormalised Gaussians ``exp(-(g - x_i)**2 / (2 bw**2))`` over grid points within
    ``cutoff`` of each value (for kernels too narrow for binning). ``w`` empty means unit weights."""
    cdef Py_ssize_t n = x.shape[0], c, start, stop
    cdef bint weighted = w.shape[0] > 0
    priv_arr = np.zeros((nchunks, ngrid), np.float64)
    cdef double[:, ::1] priv = priv_arr
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1):
        _chunk(n, nchunks, c, &start, &stop)
        _scatter_chunk(x, w, weighted, lo, dx, ngrid, bw, cutoff, &priv[c, 0], start, stop)
    return priv_arr.sum(axis=0)


def convolve_same(const double[::1] a, const double[::1] kern):
    """``out[k] = sum_j a[k + j - h] * kern[j]`` with ``h = len(kern) // 2`` and zeros outside ``a``."""
    cdef Py_ssize_t n = a.shape[0], m = kern.shape[0], h = m // 2, k, j, j0, j1
    cdef double s
    out_arr = np.empty(n, np.float64)
    cdef double[::1] out = out_arr
    for k in prange(n, nogil=True, schedule="static"):
        j0 = max(0, h - k)
        j1 = min(m, n + h - k)
        s = 0.0
        for j in range(j0, j1):
            s = s + a[k + j - h] * kern[j]
        out[k] = s
    return out_arr


def otsu_index(const float[::1] counts, const double[::1] centers, bint single):
    """Index of the bin centre maximising Otsu's between-class variance, with scikit-image's arithmetic:
    float32 class weights (cumulative sums of float32 counts) and, when ``single``, float32 means and
    variance (float32 bin centres), otherwise float64 ones."""
    cdef Py_ssize_t nb = counts.shape[0], i, best = -1
    cdef float acc, s, d, v, vbest = 0
    cdef double s64, d64, v64, vbest64 = 0
    w1_arr = np.empty(nb, np.float32)
    w2_arr = np.empty(nb, np.float32)
    m1_arr = np.empty(nb, np.float32)
    m2_arr = np.empty(nb, np.float32)
    d1_arr = np.empty(nb, np.float64)
    d2_arr = np.empty(nb, np.float64)
    cdef float[::1] w1 = w1_arr, w2 = w2_arr, m1 = m1_arr, m2 = m2_arr
    cdef double[::1] d1 = d1_arr, d2 = d2_arr
    with nogil:
        acc = 0
        for i in range(nb):
            acc = acc + counts[i]
            w1[i] = acc
        acc = 0
        for i in range(nb - 1, -1, -1):
            acc = acc + counts[i]
            w2[i] = acc
        if single:
            s = 0
            for i in range(nb):
                s = s + counts[i] * <float>centers[i]
                m1[i] = s / w1[i]
            s = 0
            for i in range(nb - 1, -1, -1):
                s = s + counts[i] * <float>centers[i]
                m2[i] = s / w2[i]
            for i in range(nb - 1):
                d = m1[i] - m2[i + 1]
                v = (w1[i] * w2[i + 1]) * (d * d)
                if best < 0 or v > vbest:
                    vbest = v
                    best = i
        else:
            s64 = 0
            for i in range(nb):
                s64 = s64 + <double>counts[i] * centers[i]
                d1[i] = s64 / <double>w1[i]
            s64 = 0
            for i in range(nb - 1, -1, -1):
                s64 = s64 + <double>counts[i] * centers[i]
                d2[i] = s64 / <double>w2[i]
            for i in range(nb - 1):
                d64 = d1[i] - d2[i + 1]
                v64 = <double>(w1[i] * w2[i + 1]) * (d64 * d64)
                if best < 0 or v64 > vbest64:
                    vbest64 = v64
                    best = i
    return best


def maxent_index(const double[::1] counts):
    """Index ``t`` maximising H(bins <= t) + H(bins > t), the entropies of the two classes' normalised
    histograms (Kapur, Sahoo & Wong 1985). With class total C and S = sum c log c, H = log C - S / C."""
    cdef Py_ssize_t nb = counts.shape[0], i, t, best = -1
    cdef double c, c_acc = 0, s_acc = 0, h, hbest = 0
    ca_arr = np.empty(nb, np.float64)
    sa_arr = np.empty(nb, np.float64)
    cdef double[::1] ca = ca_arr, sa = sa_arr
    with nogil:
        for i in range(nb):
            c = counts[i]
            c_acc += c
            if c > 0:
                s_acc += c * log(c)
            ca[i] = c_acc
            sa[i] = s_acc
        c_acc = 0
        s_acc = 0
        # walk down so the upper class's sums are accumulated, not obtained by cancellation
        for i in range(nb - 1, 0, -1):
            c = counts[i]
            c_acc += c
            if c > 0:
                s_acc += c * log(c)
            t = i - 1
            if ca[t] > 0 and c_acc > 0:
                h = (log(ca[t]) - sa[t] / ca[t]) + (log(c_acc) - s_acc / c_acc)
                if best < 0 or h >= hbest:
                    hbest = h
                    best = t
    return best


cdef void _moments_block(const pix_t[::1] x, const uint8_t[::1] mask, bint use_mask, double* st,
                         Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i, cnt = 0, nan = 0, inf = 0
    cdef double v, s = 0, lo = INFINITY, hi = -INFINITY, mean = 0, m2 = 0, d
    for i in range(start, stop):
        v = <double>x[i]
        if v != v:
            nan += 1
            continue
        if v == INFINITY or v == -INFINITY:
            inf += 1
        if use_mask and not mask[i]:
            continue
        cnt += 1
        s += v
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    if cnt > 0:
        mean = s / cnt
        for i in range(start, stop):
            if use_mask and not mask[i]:
                continue
            d = <double>x[i] - mean
            m2 += d * d
    st[0] = cnt
    st[1] = mean
    st[2] = m2
    st[3] = lo
    st[4] = hi
    st[5] = nan
    st[6] = inf


def moments(const pix_t[::1] x, const uint8_t[::1] mask, Py_ssize_t block):
    """``[count, mean, m2, min, max, n_nan, n_inf]`` of ``x`` (of masked pixels only when ``mask`` is
    non-empty; NaN and inf are counted over every pixel). Each block of ``block`` values is summed in
    float64 and its squared deviations taken from its own mean while it is in cache; blocks are then
    merged with the pairwise update of Chan, Golub & LeVeque (1979), so ``m2`` does not suffer the
    cancellation of ``sum(x**2) - n * mean**2``."""
    cdef Py_ssize_t n = x.shape[0], nblocks = (n + block - 1) // block, b
    cdef bint use_mask = mask.shape[0] > 0
    st_arr = np.zeros((nblocks, 7), np.float64)
    cdef double[:, ::1] st = st_arr
    out_arr = np.zeros(7, np.float64)
    cdef double[::1] out = out_arr
    cdef double na, nb_, tot, delta
    for b in prange(nblocks, nogil=True, schedule="static"):
        _moments_block(x, mask, use_mask, &st[b, 0], b * block, min(n, b * block + block))
    out[3] = INFINITY
    out[4] = -INFINITY
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
    return out_arr
