# cython: language_level=3
"""Cython bodies of the edge kernels (Sobel, Prewitt, Canny).

Same function names and arguments as ``medfeat._kernels.numba_cpu.edges``; the public face, argument
checks and dtype conversion live in :mod:`medfeat.kernels.edges`. Images arrive C-contiguous and
floating point (float32 or float64: the fused type ``floating``).

Canny's rounding follows SciPy's ``ndimage`` on purpose: every 1-D pass accumulates in double and is
rounded to ``floating`` once, exactly where SciPy stores an intermediate array, so that non-maximum
suppression sees the same magnitudes as scikit-image and keeps the same pixels.
"""

cimport cython
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport fabs, sqrt, sqrtf
from libc.stdlib cimport free, malloc

import numpy as np

cdef enum:
    REFLECT = 0
    CONSTANT = 1
    NEAREST = 2
    MIRROR = 3
    WRAP = 4


cdef inline Py_ssize_t _map(Py_ssize_t i, Py_ssize_t n, int mode) noexcept nogil:
    """Index ``i`` of a length-``n`` axis after SciPy's boundary extension; -1 means ``cval``."""
    cdef Py_ssize_t p
    if 0 <= i < n:
        return i
    if mode == CONSTANT:
        return -1
    if mode == NEAREST:
        return 0 if i < 0 else n - 1
    if mode == WRAP:
        i = i % n
        return i + n if i < 0 else i
    if mode == REFLECT:
        p = 2 * n
        i = i % p
        if i < 0:
            i += p
        return p - 1 - i if i >= n else i
    if n == 1:  # MIRROR
        return 0
    p = 2 * n - 2
    i = i % p
    if i < 0:
        i += p
    return p - i if i >= n else i


# Images up to this size run on one thread (the reason and the measurements are beside the same
# constant in numba_cpu/edges.py).
cdef Py_ssize_t PARALLEL_MIN_PIXELS = 512 * 512 + 1  # as in numba_cpu/edges.py


cdef inline Py_ssize_t _chunks(Py_ssize_t n) noexcept nogil:
    """Row blocks, each with its own scratch rows: enough for any thread count, few enough that the
    per-block set-up is noise."""
    return max(1, min(n, 32))


# ------------------------------------------------------------------------------------------------
# Sobel / Prewitt
# ------------------------------------------------------------------------------------------------


cdef inline void _row_diff(const floating* row, Py_ssize_t W, int mode, floating cv,
                           floating* h) noexcept nogil:
    """``h[j] = row[j + 1] - row[j - 1]`` with the row extended by ``mode``."""
    cdef Py_ssize_t j, p, q, e
    for j in range(1, W - 1):
        h[j] = row[j + 1] - row[j - 1]
    for e in range(2):
        j = 0 if e == 0 else W - 1
        p = _map(j + 1, W, mode)
        q = _map(j - 1, W, mode)
        h[j] = (cv if p < 0 else row[p]) - (cv if q < 0 else row[q])


cdef void _edge_rows_2d(const floating* image, floating* out, const unsigned char* eroded,
                        bint has_mask, Py_ssize_t H, Py_ssize_t W, int m0, int m1, double cval,
                        double center, double scale, double wt0, double wt1, int single,
                        Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    # Differences first, then smoothing: in float32 the rounding error is then relative to the
    # local gradient rather than to the intensity, which keeps float32 arithmetic (twice the SIMD
    # width of double) within 1e-5 of scikit-image's double-accumulated result.
    cdef floating c = <floating>center
    cdef floating sc = <floating>scale
    cdef floating w0 = <floating>wt0
    cdef floating w1 = <floating>wt1
    cdef floating inv = <floating>(1.0 / sqrt(2.0))
    cdef floating cv = <floating>cval
    cdef floating g0, g1, s
    cdef Py_ssize_t i, j, k, src, iu, idn, lo, hi
    cdef floating* crow = <floating*>malloc(W * sizeof(floating))
    cdef floating* hd = <floating*>malloc(3 * W * sizeof(floating))
    cdef floating* vd = <floating*>malloc((W + 2) * sizeof(floating))
    cdef const floating* up
    cdef const floating* dn
    cdef floating* hu
    cdef floating* hm
    cdef floating* hn
    cdef floating* orow
    for j in range(W):
        crow[j] = cv
    for k in range(r0 - 1, r0 + 1):
        src = _map(k, H, m0)
        _row_diff(image + src * W if src >= 0 else crow, W, m1, cv, hd + ((k + 3) % 3) * W)
    for i in range(r0, r1):
        iu = _map(i - 1, H, m0)
        idn = _map(i + 1, H, m0)
        up = image + iu * W if iu >= 0 else crow
        dn = image + idn * W if idn >= 0 else crow
        hn = hd + ((i + 4) % 3) * W
        _row_diff(dn, W, m1, cv, hn)
        hu = hd + ((i + 2) % 3) * W
        hm = hd + ((i + 3) % 3) * W
        for j in range(W):
            vd[j + 1] = dn[j] - up[j]
        lo = _map(-1, W, m1)
        hi = _map(W, W, m1)
        vd[0] = 0 if lo < 0 else vd[lo + 1]
        vd[W + 1] = 0 if hi < 0 else vd[hi + 1]
        orow = out + i * W
        if single == 0:
            for j in range(W):
                orow[j] = (vd[j] + c * vd[j + 1] + vd[j + 2]) * sc
        elif single == 1:
            for j in range(W):
                orow[j] = (hu[j] + c * hm[j] + hn[j]) * sc
        else:
            for j in range(W):
                g0 = (vd[j] + c * vd[j + 1] + vd[j + 2]) * sc
                g1 = (hu[j] + c * hm[j] + hn[j]) * sc
                s = w0 * g0 * g0 + w1 * g1 * g1
                if floating is float:
                    orow[j] = sqrtf(s) * inv
                else:
                    orow[j] = sqrt(s) * inv
        if has_mask:
            for j in range(W):
                orow[j] = orow[j] * eroded[i * W + j]
    free(crow)
    free(hd)
    free(vd)


def edge_filter_2d(const floating[:, ::1] image, floating[:, ::1] out,
                   const unsigned char[:, ::1] eroded, const long long[::1] modes, double cval,
                   double center, double scale, const double[::1] weights, int single):
    """Separable 3x3 edge filter of a 2-D image into ``out``.

    ``center`` is the middle smoothing weight (2 for Sobel, 1 for Prewitt) and ``scale`` the
    normalisation of one smoothing axis (1/4, 1/3). ``single`` >= 0 writes that axis' signed
    response; otherwise ``sqrt(sum_a weights[a] * g_a**2 / ndim)``. ``eroded`` (uint8, empty for
    no mask) multiplies the result, as scikit-image does.
    """
    cdef Py_ssize_t H = image.shape[0], W = image.shape[1]
    cdef Py_ssize_t nch = _chunks(H), c
    cdef bint has_mask = eroded.shape[0] > 0
    cdef const unsigned char* er = &eroded[0, 0] if has_mask else NULL
    cdef int m0 = <int>modes[0], m1 = <int>modes[1]
    cdef double w0 = weights[0], w1 = weights[1]
    with nogil:
        if H * W < PARALLEL_MIN_PIXELS:
            _edge_rows_2d(&image[0, 0], &out[0, 0], er, has_mask, H, W, m0, m1, cval, center,
                          scale, w0, w1, single, 0, H)
        else:
            for c in prange(nch, schedule="dynamic"):
                _edge_rows_2d(&image[0, 0], &out[0, 0], er, has_mask, H, W, m0, m1, cval,
                              center, scale, w0, w1, single, c * H // nch, (c + 1) * H // nch)
    return np.asarray(out)


cdef inline void _load(const floating* image, Py_ssize_t idx, Py_ssize_t W, double cval,
                       double* buf) noexcept nogil:
    cdef Py_ssize_t j
    if idx < 0:
        for j in range(W):
            buf[j + 1] = cval
    else:
        for j in range(W):
            buf[j + 1] = image[idx * W + j]


cdef inline void _pad(double* buf, Py_ssize_t W, int mode, double fill) noexcept nogil:
    """Fill ``buf[0]`` and ``buf[W + 1]`` of a 1-padded line from its own interior by ``mode``."""
    cdef Py_ssize_t lo = _map(-1, W, mode), hi = _map(W, W, mode)
    buf[0] = fill if lo < 0 else buf[lo + 1]
    buf[W + 1] = fill if hi < 0 else buf[hi + 1]


cdef void _edge_rows_3d(const floating* image, floating* out, const unsigned char* eroded,
                        bint has_mask, Py_ssize_t D, Py_ssize_t H, Py_ssize_t W, int m0, int m1,
                        int m2, double cval, double center, double scale, double w0, double w1,
                        double w2, int single, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    cdef Py_ssize_t L = W + 2
    cdef double* rows = <double*>malloc(9 * L * sizeof(double))
    cdef double* a0 = <double*>malloc(L * sizeof(double))  # d/d axis 0, smoothed along axis 1
    cdef double* a1 = <double*>malloc(L * sizeof(double))  # d/d axis 1, smoothed along axis 0
    cdef double* ss = <double*>malloc(L * sizeof(double))  # smoothed along axes 0 and 1
    cdef double sw[3]
    cdef double s2 = 2.0 + center, sq = sqrt(3.0), t0, t1, t2, g0, g1, g2, v
    cdef Py_ssize_t r, z, y, dz, dy, zi, yi, j, k
    sw[0] = 1.0
    sw[1] = center
    sw[2] = 1.0
    for r in range(r0, r1):
        z = r // H
        y = r - z * H
        for dz in range(3):
            zi = _map(z + dz - 1, D, m0)
            for dy in range(3):
                yi = _map(y + dy - 1, H, m1)
                _load(image, -1 if (zi < 0 or yi < 0) else zi * H + yi, W, cval,
                      rows + (dz * 3 + dy) * L)
        for j in range(1, W + 1):
            t0 = 0.0
            t1 = 0.0
            t2 = 0.0
            for k in range(3):
                t0 = t0 + sw[k] * (rows[(6 + k) * L + j] - rows[k * L + j])
                t1 = t1 + sw[k] * (rows[(k * 3 + 2) * L + j] - rows[(k * 3) * L + j])
                t2 = t2 + sw[k] * (rows[(k * 3) * L + j] + center * rows[(k * 3 + 1) * L + j]
                                   + rows[(k * 3 + 2) * L + j])
            a0[j] = t0
            a1[j] = t1
            ss[j] = t2
        _pad(a0, W, m2, 0.0)
        _pad(a1, W, m2, 0.0)
        _pad(ss, W, m2, s2 * s2 * cval)
        for j in range(W):
            g0 = (a0[j] + center * a0[j + 1] + a0[j + 2]) * scale
            g1 = (a1[j] + center * a1[j + 1] + a1[j + 2]) * scale
            g2 = (ss[j + 2] - ss[j]) * scale
            if single == 0:
                v = g0
            elif single == 1:
                v = g1
            elif single == 2:
                v = g2
            else:
                v = sqrt(w0 * g0 * g0 + w1 * g1 * g1 + w2 * g2 * g2) / sq
            if has_mask:
                v = v * eroded[r * W + j]
            out[r * W + j] = <floating>v
    free(rows)
    free(a0)
    free(a1)
    free(ss)


def edge_filter_3d(const floating[:, :, ::1] image, floating[:, :, ::1] out,
                   const unsigned char[:, :, ::1] eroded, const long long[::1] modes,
                   double cval, double center, double scale, const double[::1] weights,
                   int single):
    """3-D twin of :func:`edge_filter_2d` (``scale`` is the 2-axis smoothing normalisation)."""
    cdef Py_ssize_t D = image.shape[0], H = image.shape[1], W = image.shape[2]
    cdef Py_ssize_t nrows = D * H, nch = _chunks(D * H), c
    cdef bint has_mask = eroded.shape[0] > 0
    cdef const unsigned char* er = &eroded[0, 0, 0] if has_mask else NULL
    cdef int m0 = <int>modes[0], m1 = <int>modes[1], m2 = <int>modes[2]
    cdef double w0 = weights[0], w1 = weights[1], w2 = weights[2]
    with nogil:
        if nrows * W < PARALLEL_MIN_PIXELS:
            _edge_rows_3d(&image[0, 0, 0], &out[0, 0, 0], er, has_mask, D, H, W, m0, m1, m2,
                          cval, center, scale, w0, w1, w2, single, 0, nrows)
        else:
            for c in prange(nch, schedule="dynamic"):
                _edge_rows_3d(&image[0, 0, 0], &out[0, 0, 0], er, has_mask, D, H, W, m0, m1,
                              m2, cval, center, scale, w0, w1, w2, single, c * nrows // nch,
                              (c + 1) * nrows // nch)
    return np.asarray(out)


def erode_mask_2d(const unsigned char[:, ::1] mask):
    """Erosion by the full 3x3 square with a False border (SciPy's ``border_value=0``), as uint8."""
    cdef Py_ssize_t H = mask.shape[0], W = mask.shape[1], i, j, di, dj
    cdef unsigned char ok
    out_arr = np.zeros((H, W), np.uint8)
    cdef unsigned char[:, ::1] out = out_arr
    with nogil:
        for i in prange(1, H - 1, schedule="static"):
            for j in range(1, W - 1):
                ok = 1
                for di in range(-1, 2):
                    for dj in range(-1, 2):
                        if mask[i + di, j + dj] == 0:
                            ok = 0
                out[i, j] = ok
    return out_arr


def erode_mask_3d(const unsigned char[:, :, ::1] mask):
    """3-D twin of :func:`erode_mask_2d` (full 3x3x3 cube)."""
    cdef Py_ssize_t D = mask.shape[0], H = mask.shape[1], W = mask.shape[2]
    cdef Py_ssize_t z, i, j, dz, di, dj
    cdef unsigned char ok
    out_arr = np.zeros((D, H, W), np.uint8)
    cdef unsigned char[:, :, ::1] out = out_arr
    with nogil:
        for z in prange(1, D - 1, schedule="static"):
            for i in range(1, H - 1):
                for j in range(1, W - 1):
                    ok = 1
                    for dz in range(-1, 2):
                        for di in range(-1, 2):
                            for dj in range(-1, 2):
                                if mask[z + dz, i + di, j + dj] == 0:
                                    ok = 0
                    out[z, i, j] = ok
    return out_arr


# ------------------------------------------------------------------------------------------------
# Canny
# ------------------------------------------------------------------------------------------------


cdef inline void _vpass(const floating* src, Py_ssize_t H, Py_ssize_t W, Py_ssize_t i,
                        const double* weights, Py_ssize_t R, int mode, double cval, double* acc,
                        double* line) noexcept nogil:
    """Gaussian pass along axis 0 for output row ``i`` in SciPy's order, rounded to ``floating``,
    into ``line[R:R + W]``."""
    cdef Py_ssize_t j, k, a, b
    cdef double wc = weights[R], wk
    cdef const floating* pa
    cdef const floating* pb
    for j in range(W):
        acc[j] = <double>src[i * W + j] * wc
    for k in range(R, 0, -1):
        wk = weights[R + k]
        a = _map(i - k, H, mode)
        b = _map(i + k, H, mode)
        if a >= 0 and b >= 0:
            pa = src + a * W
            pb = src + b * W
            for j in range(W):
                acc[j] = acc[j] + (<double>pa[j] + <double>pb[j]) * wk
        elif a >= 0:
            pa = src + a * W
            for j in range(W):
                acc[j] = acc[j] + (<double>pa[j] + cval) * wk
        elif b >= 0:
            pb = src + b * W
            for j in range(W):
                acc[j] = acc[j] + (cval + <double>pb[j]) * wk
        else:
            for j in range(W):
                acc[j] = acc[j] + (cval + cval) * wk
    for j in range(W):
        line[R + j] = <floating>acc[j]


cdef inline void _hpad(double* line, Py_ssize_t W, Py_ssize_t R, int mode,
                       double cval) noexcept nogil:
    cdef Py_ssize_t k, a, b
    for k in range(1, R + 1):
        a = _map(-k, W, mode)
        b = _map(W - 1 + k, W, mode)
        line[R - k] = cval if a < 0 else line[R + a]
        line[R + W - 1 + k] = cval if b < 0 else line[R + b]


cdef inline double _hpoint(const double* line, Py_ssize_t j, const double* weights,
                           Py_ssize_t R) noexcept nogil:
    cdef double s = line[R + j] * weights[R]
    cdef Py_ssize_t k
    for k in range(R, 0, -1):
        s = s + (line[R + j - k] + line[R + j + k]) * weights[R + k]
    return s


cdef inline void _hpass(const double* line, Py_ssize_t W, const double* weights, Py_ssize_t R,
                        double* acc) noexcept nogil:
    cdef Py_ssize_t j, k
    cdef double wc = weights[R], wk
    cdef const double* lo
    cdef const double* hi
    for j in range(W):
        acc[j] = line[R + j] * wc
    for k in range(R, 0, -1):
        wk = weights[R + k]
        lo = line + R - k
        hi = line + R + k
        for j in range(W):
            acc[j] = acc[j] + (lo[j] + hi[j]) * wk


cdef void _smooth_row(const floating* image, Py_ssize_t H, Py_ssize_t W, Py_ssize_t i,
                      const double* weights, Py_ssize_t R, int mode, double cval,
                      const floating* bleed_src, int bleed_kind, floating eps, double* acc,
                      double* line, double* bline, floating* brow, floating* srow) noexcept nogil:
    """Row ``i`` of Canny's smoothed image into ``srow``."""
    cdef Py_ssize_t j, k, jj
    cdef double r, a, b, rT
    cdef floating inner
    _vpass(image, H, W, i, weights, R, mode, cval, acc, line)
    _hpad(line, W, R, mode, cval)
    if bleed_kind == 2:
        _vpass(bleed_src, H, W, i, weights, R, mode, cval, acc, bline)
        _hpad(bline, W, R, mode, cval)
        _hpass(bline, W, weights, R, acc)
        for j in range(W):
            brow[j] = <floating>acc[j] + eps
    elif bleed_kind == 1:
        # The indicator is all ones: its axis-0 pass is one number per row, and its axis-1
        # pass differs from the interior value only within R of the left and right borders.
        r = weights[R]
        for k in range(R, 0, -1):
            a = 1.0 if i - k >= 0 else cval
            b = 1.0 if i + k < H else cval
            r = r + (a + b) * weights[R + k]
        rT = <double>(<floating>r)
        for j in range(W + 2 * R):
            bline[j] = rT if R <= j < R + W else cval
        if W > 2 * R + 1:
            inner = <floating>_hpoint(bline, R, weights, R) + eps
            for j in range(W):
                brow[j] = inner
            for j in range(R):
                brow[j] = <floating>_hpoint(bline, j, weights, R) + eps
                jj = W - 1 - j
                brow[jj] = <floating>_hpoint(bline, jj, weights, R) + eps
        else:
            for j in range(W):
                brow[j] = <floating>_hpoint(bline, j, weights, R) + eps
    _hpass(line, W, weights, R, acc)
    if bleed_kind == 0:
        for j in range(W):
            srow[j] = <floating>acc[j]
    else:
        for j in range(W):
            srow[j] = (<floating>acc[j]) / brow[j]


cdef void _smooth_rows(const floating* image, Py_ssize_t H, Py_ssize_t W, const double* weights,
                       Py_ssize_t R, int mode, double cval, const floating* bleed_src,
                       int bleed_kind, floating eps, floating* smoothed, Py_ssize_t r0,
                       Py_ssize_t r1) noexcept nogil:
    cdef double* acc = <double*>malloc(W * sizeof(double))
    cdef double* line = <double*>malloc((W + 2 * R) * sizeof(double))
    cdef double* bline = <double*>malloc((W + 2 * R) * sizeof(double))
    cdef floating* brow = <floating*>malloc(W * sizeof(floating))
    cdef Py_ssize_t i
    for i in range(r0, r1):
        _smooth_row(image, H, W, i, weights, R, mode, cval, bleed_src, bleed_kind, eps, acc,
                    line, bline, brow, smoothed + i * W)
    free(acc)
    free(line)
    free(bline)
    free(brow)


cdef inline void _pad_diff(const floating* srow, Py_ssize_t W, double* p,
                           double* e) noexcept nogil:
    """A smoothed row as double in ``p[1:W + 1]`` (reflect-padded) and its rounded central
    differences ``e[j] = (floating)(p[j + 2] - p[j])`` (SciPy's first Sobel pass along axis 1)."""
    cdef Py_ssize_t j
    for j in range(W):
        p[j + 1] = srow[j]
    _pad(p, W, REFLECT, 0.0)
    for j in range(W):
        e[j] = <floating>(p[j + 2] - p[j])


cdef inline void _mag_row(const double* pu, const double* pd, const double* eu,
                          const double* em, const double* ed, double* dv, Py_ssize_t W,
                          floating* mrow, floating* irow, floating* jrow) noexcept nogil:
    """Sobel responses and magnitude of one row, with SciPy's rounding."""
    cdef Py_ssize_t j
    cdef floating isob, jsob, t
    for j in range(W + 2):
        dv[j] = <floating>(pd[j] - pu[j])
    for j in range(W):
        isob = <floating>(2.0 * dv[j + 1] + (dv[j] + dv[j + 2]))
        jsob = <floating>(2.0 * em[j] + (eu[j] + ed[j]))
        irow[j] = isob
        jrow[j] = jsob
        t = isob * isob + jsob * jsob
        if floating is float:
            mrow[j] = sqrtf(t)
        else:
            mrow[j] = sqrt(t)


cdef inline void _nms_row(const floating* Mu, const floating* Mc, const floating* Md,
                          const floating* irow, const floating* jrow,
                          const unsigned char* emrow, Py_ssize_t W, double low, double high,
                          unsigned char* lab) noexcept nogil:
    """Non-maximum suppression and double threshold of one interior row into ``lab``."""
    cdef Py_ssize_t y
    cdef floating m, isob, jsob, ai, aj, w, n11, n12, n21, n22
    for y in range(1, W - 1):
        m = Mc[y]
        if (emrow != NULL and emrow[y] == 0) or not (m >= low):
            continue
        isob = irow[y]
        jsob = jrow[y]
        ai = fabs(isob)
        aj = fabs(jsob)
        if (isob > 0) == (jsob > 0):
            if ai > aj:
                w = aj / ai
                n11 = Md[y]
                n12 = Md[y + 1]
                n21 = Mu[y]
                n22 = Mu[y - 1]
            else:
                w = ai / aj
                n11 = Mc[y + 1]
                n12 = Md[y + 1]
                n21 = Mc[y - 1]
                n22 = Mu[y - 1]
        else:
            if ai < aj:
                w = ai / aj
                n11 = Mc[y + 1]
                n12 = Mu[y + 1]
                n21 = Mc[y - 1]
                n22 = Md[y - 1]
            else:
                w = aj / ai
                n11 = Mu[y]
                n12 = Mu[y + 1]
                n21 = Md[y]
                n22 = Md[y - 1]
        # Same mixed precision as scikit-image's Cython: w * n in floating, (1 - w) in double.
        if (n12 * w + n11 * (1.0 - w)) <= m and (n22 * w + n21 * (1.0 - w)) <= m:
            lab[y] = 2 if m >= high else 1


cdef void _fused_rows(const floating* image, Py_ssize_t H, Py_ssize_t W, const double* weights,
                      Py_ssize_t R, int mode, double cval, const floating* bleed_src,
                      int bleed_kind, floating eps, const unsigned char* eroded, double low,
                      double high, unsigned char* label, Py_ssize_t r0,
                      Py_ssize_t r1) noexcept nogil:
    """Smoothing, gradients, magnitude and suppression of rows [r0, r1) in one sweep; smoothed
    and magnitude rows live in small rings keyed by row number (4 and 3 slots)."""
    cdef Py_ssize_t L = W + 2, x, y, r, k, iu, idn
    cdef Py_ssize_t need[3]
    cdef Py_ssize_t sheld[4]
    cdef Py_ssize_t mheld[3]
    cdef double* acc = <double*>malloc(W * sizeof(double))
    cdef double* line = <double*>malloc((W + 2 * R) * sizeof(double))
    cdef double* bline = <double*>malloc((W + 2 * R) * sizeof(double))
    cdef floating* brow = <floating*>malloc(W * sizeof(floating))
    cdef floating* srow = <floating*>malloc(W * sizeof(floating))
    cdef double* P = <double*>malloc(4 * L * sizeof(double))
    cdef double* E = <double*>malloc(4 * W * sizeof(double))
    cdef floating* M = <floating*>malloc(3 * W * sizeof(floating))
    cdef floating* IS = <floating*>malloc(3 * W * sizeof(floating))
    cdef floating* JS = <floating*>malloc(3 * W * sizeof(floating))
    cdef double* dv = <double*>malloc(L * sizeof(double))
    for k in range(4):
        sheld[k] = -1
    for k in range(3):
        mheld[k] = -1
    for x in range(max(r0, 1), min(r1, H - 1)):
        for y in range(x - 1, x + 2):
            if mheld[y % 3] == y:
                continue
            iu = _map(y - 1, H, REFLECT)
            idn = _map(y + 1, H, REFLECT)
            need[0] = iu
            need[1] = y
            need[2] = idn
            for k in range(3):
                r = need[k]
                if sheld[r % 4] != r:
                    _smooth_row(image, H, W, r, weights, R, mode, cval, bleed_src, bleed_kind,
                                eps, acc, line, bline, brow, srow)
                    _pad_diff(srow, W, P + (r % 4) * L, E + (r % 4) * W)
                    sheld[r % 4] = r
            _mag_row(P + (iu % 4) * L, P + (idn % 4) * L, E + (iu % 4) * W, E + (y % 4) * W,
                     E + (idn % 4) * W, dv, W, M + (y % 3) * W, IS + (y % 3) * W,
                     JS + (y % 3) * W)
            mheld[y % 3] = y
        _nms_row(M + ((x - 1) % 3) * W, M + (x % 3) * W, M + ((x + 1) % 3) * W,
                 IS + (x % 3) * W, JS + (x % 3) * W,
                 eroded + x * W if eroded != NULL else NULL, W, low, high, label + x * W)
    free(acc)
    free(line)
    free(bline)
    free(brow)
    free(srow)
    free(P)
    free(E)
    free(M)
    free(IS)
    free(JS)
    free(dv)


cdef void _magnitude_rows(const floating* s, floating* mag, Py_ssize_t H, Py_ssize_t W,
                          Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    cdef Py_ssize_t L = W + 2
    cdef double* pu = <double*>malloc(L * sizeof(double))
    cdef double* pm = <double*>malloc(L * sizeof(double))
    cdef double* pd = <double*>malloc(L * sizeof(double))
    cdef double* dv = <double*>malloc(L * sizeof(double))
    cdef Py_ssize_t x, j, iu, idn
    cdef floating isob, jsob, t
    cdef double eu, em, ed
    for x in range(r0, r1):
        iu = _map(x - 1, H, REFLECT)
        idn = _map(x + 1, H, REFLECT)
        for j in range(W):
            pu[j + 1] = s[iu * W + j]
            pm[j + 1] = s[x * W + j]
            pd[j + 1] = s[idn * W + j]
        _pad(pu, W, REFLECT, 0.0)
        _pad(pm, W, REFLECT, 0.0)
        _pad(pd, W, REFLECT, 0.0)
        for j in range(L):
            dv[j] = <floating>(pd[j] - pu[j])
        for j in range(W):
            isob = <floating>(2.0 * dv[j + 1] + (dv[j] + dv[j + 2]))
            eu = <floating>(pu[j + 2] - pu[j])
            em = <floating>(pm[j + 2] - pm[j])
            ed = <floating>(pd[j + 2] - pd[j])
            jsob = <floating>(2.0 * em + (eu + ed))
            t = isob * isob + jsob * jsob
            if floating is float:
                mag[x * W + j] = sqrtf(t)
            else:
                mag[x * W + j] = sqrt(t)
    free(pu)
    free(pm)
    free(pd)
    free(dv)


def canny_smooth(const floating[:, ::1] image, const double[::1] weights, int mode, double cval,
                 const floating[:, ::1] bleed_src, int bleed_kind, const floating[::1] eps):
    """Canny's smoothing and gradient magnitude, as scikit-image computes them.

    Returns ``(smoothed, magnitude)`` in ``image``'s dtype. ``smoothed`` is the Gaussian of
    ``image`` divided by the Gaussian of the valid-pixel indicator plus ``eps[0]``:
    ``bleed_kind`` 0 means no division, 1 an all-ones indicator (mask absent, ``mode`` constant),
    2 the indicator in ``bleed_src``. ``magnitude`` is the hypotenuse of SciPy's unnormalised
    Sobel responses of ``smoothed`` with reflecting borders.
    """
    cdef Py_ssize_t H = image.shape[0], W = image.shape[1]
    cdef Py_ssize_t R = (weights.shape[0] - 1) // 2, nch = _chunks(H), c
    dtype = np.float32 if floating is float else np.float64
    smoothed_arr = np.empty((H, W), dtype)
    mag_arr = np.empty((H, W), dtype)
    cdef floating[:, ::1] smoothed = smoothed_arr
    cdef floating[:, ::1] mag = mag_arr
    cdef const floating* bsrc = &bleed_src[0, 0] if bleed_kind == 2 else NULL
    cdef floating e = eps[0]
    with nogil:
        if H * W < PARALLEL_MIN_PIXELS:
            _smooth_rows(&image[0, 0], H, W, &weights[0], R, mode, cval, bsrc, bleed_kind, e,
                         &smoothed[0, 0], 0, H)
            _magnitude_rows(&smoothed[0, 0], &mag[0, 0], H, W, 0, H)
        else:
            for c in prange(nch, schedule="dynamic"):
                _smooth_rows(&image[0, 0], H, W, &weights[0], R, mode, cval, bsrc, bleed_kind,
                             e, &smoothed[0, 0], c * H // nch, (c + 1) * H // nch)
            for c in prange(nch, schedule="dynamic"):
                _magnitude_rows(&smoothed[0, 0], &mag[0, 0], H, W, c * H // nch,
                                (c + 1) * H // nch)
    return smoothed_arr, mag_arr


cdef void _hysteresis(const unsigned char* label, Py_ssize_t H, Py_ssize_t W,
                      unsigned char* out, Py_ssize_t* stack) noexcept nogil:
    """Keep the candidates 8-connected to a strong one (label 2): a stack-based flood fill."""
    cdef Py_ssize_t p, q, nb, top, k
    cdef Py_ssize_t offs[8]
    offs[0] = -W - 1
    offs[1] = -W
    offs[2] = -W + 1
    offs[3] = -1
    offs[4] = 1
    offs[5] = W - 1
    offs[6] = W
    offs[7] = W + 1
    for p in range(H * W):
        if label[p] != 2 or out[p]:
            continue
        out[p] = 1
        stack[0] = p
        top = 1
        while top > 0:
            top -= 1
            q = stack[top]
            # candidates never touch the image border, so every neighbour index is valid
            for k in range(8):
                nb = q + offs[k]
                if label[nb] != 0 and not out[nb]:
                    out[nb] = 1
                    stack[top] = nb
                    top += 1


def canny_fused(const floating[:, ::1] image, const double[::1] weights, int mode, double cval,
                const floating[:, ::1] bleed_src, int bleed_kind, const floating[::1] eps,
                const unsigned char[:, ::1] eroded, double low, double high):
    """The Canny edge map: smoothing and gradients as :func:`canny_smooth` computes them, then
    bilinear non-maximum suppression, double threshold and hysteresis (8-connected), fused row by
    row so that no full-size smoothed or magnitude image is written.

    ``eroded`` (uint8) marks the pixels that may be edges; empty means every pixel off the border.
    ``low`` and ``high`` are compared with the magnitude in double after the caller has rounded
    them the way scikit-image's comparisons do.
    """
    cdef Py_ssize_t H = image.shape[0], W = image.shape[1]
    cdef Py_ssize_t R = (weights.shape[0] - 1) // 2, c
    # fewer, larger blocks than elsewhere: each block recomputes a few rows above its start
    cdef Py_ssize_t nch = max(1, min(H // 16, 16))
    cdef const floating* bsrc = &bleed_src[0, 0] if bleed_kind == 2 else NULL
    cdef const unsigned char* er = &eroded[0, 0] if eroded.shape[0] > 0 else NULL
    cdef floating e = eps[0]
    label_arr = np.zeros((H, W), np.uint8)
    out_arr = np.zeros((H, W), np.bool_)
    cdef unsigned char[:, ::1] label = label_arr
    cdef unsigned char[:, ::1] out = out_arr.view(np.uint8)
    cdef Py_ssize_t* stack
    with nogil:
        if H * W < PARALLEL_MIN_PIXELS:
            _fused_rows(&image[0, 0], H, W, &weights[0], R, mode, cval, bsrc, bleed_kind, e, er,
                        low, high, &label[0, 0], 0, H)
        else:
            for c in prange(nch, schedule="dynamic"):
                _fused_rows(&image[0, 0], H, W, &weights[0], R, mode, cval, bsrc, bleed_kind, e,
                            er, low, high, &label[0, 0], c * H // nch, (c + 1) * H // nch)
        stack = <Py_ssize_t*>malloc(H * W * sizeof(Py_ssize_t))
        _hysteresis(&label[0, 0], H, W, &out[0, 0], stack)
        free(stack)
    return out_arr
