"""Numba CPU bodies of the edge kernels (Sobel, Prewitt, Canny).

The family's only CPU implementation (the GPU's is ``medfeat._kernels.numba_cuda.edges``); the
public face, argument checks and dtype conversion live in :mod:`medfeat.kernels.edges`. Images arrive here
C-contiguous and already floating point (float32 or float64, called ``T`` below).

Canny's rounding follows SciPy's ``ndimage`` on purpose: every 1-D pass accumulates in float64 and
is rounded to ``T`` once, exactly where SciPy stores an intermediate array, so that non-maximum
suppression sees the same magnitudes as scikit-image and keeps the same pixels. The one exception
is a single addition or subtraction of two ``T`` values (Canny's central differences): computed in
``T`` it gives exactly the float64 result rounded to ``T``, since float64 carries more than twice
float32's precision (Figueroa, 1995). ``fastmath`` stays off everywhere to keep the rounding (it
would reassociate the sums and let NaN comparisons be folded away).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._common import REFLECT, boundary_index

_OPTS = dict(cache=True, error_model="numpy", nogil=True)

# Images up to this size run on one thread: waking the thread team costs more than the second core
# saves on a 512² image, while at 2048² two threads pay off for Sobel and Canny (the one- and
# two-thread timings are in benchmarks/results/cpu-2026-11-25.md). On a machine saturated by
# other jobs two threads can lose a whole scheduler slice at the closing barrier.
PARALLEL_MIN_PIXELS = 512 * 512 + 1

# Every parallel kernel is a prange over row blocks calling a serial worker for one block: Numba's
# parfor lowering is slow on large loop bodies, and this keeps compile time to seconds.


#: SciPy's boundary extension (``medfeat._kernels._common.boundary_index``, shared with the GPU)
_map = njit(inline="always", **_OPTS)(boundary_index)


@njit(**_OPTS)
def _chunks(n):
    """Number of row blocks, each with its own scratch rows: enough to keep any thread count busy
    (and a busy core from holding the others up), few enough that the per-block set-up is noise.
    A constant, because reading the thread count from compiled code makes it uncacheable."""
    return max(1, min(n, 32))


@njit(**_OPTS)
def _pad_line(buf, W, mode, cval, fill):
    """Fill ``buf[0]`` and ``buf[W + 1]`` of a 1-padded line from its own interior by ``mode``.

    ``fill`` is the value a ``cval`` pixel contributes to this line (it differs from ``cval`` when
    the line is already a weighted sum of rows).
    """
    lo = _map(-1, W, mode)
    hi = _map(W, W, mode)
    buf[0] = fill if lo < 0 else buf[lo + 1]
    buf[W + 1] = fill if hi < 0 else buf[hi + 1]


# ----------------------------------------------------------------------------------------------
# Sobel / Prewitt
# ----------------------------------------------------------------------------------------------


@njit(**_OPTS)
def _row_diff(row, mode, cvalT, h):
    """``h[j] = row[j + 1] - row[j - 1]`` with the row extended by ``mode``."""
    W = row.shape[0]
    if W > 2:
        a = row[2:]
        b = row[: W - 2]
        hh = h[1 : W - 1]
        for j in range(W - 2):
            hh[j] = a[j] - b[j]
    for j in (0, W - 1):
        p = _map(j + 1, W, mode)
        q = _map(j - 1, W, mode)
        h[j] = (cvalT if p < 0 else row[p]) - (cvalT if q < 0 else row[q])


@njit(**_OPTS)
def _edge_rows_2d(image, out, eroded, modes, cval, center, scale, weights, single, r0, r1):
    # Differences first, then smoothing: in float32 the rounding error is then relative to the
    # local gradient rather than to the intensity, which keeps float32 arithmetic (twice the SIMD
    # width of float64) within 1e-5 of scikit-image's float64-accumulated result.
    H, W = image.shape
    T = image.dtype.type
    m0 = modes[0]
    m1 = modes[1]
    w0 = T(weights[0])
    w1 = T(weights[1])
    c = T(center)
    sc = T(scale)
    inv = T(1.0 / math.sqrt(2.0))
    cvalT = T(cval)
    crow = np.full(W, cvalT, image.dtype)
    hd = np.empty((3, W), image.dtype)  # row differences of rows i-1, i, i+1 (rolling)
    vd = np.empty(W + 2, image.dtype)
    for k in (r0 - 1, r0):
        src = _map(k, H, m0)
        _row_diff(image[src] if src >= 0 else crow, m1, cvalT, hd[(k + 3) % 3])
    vd0 = vd[0:W]
    vd1 = vd[1 : W + 1]
    vd2 = vd[2 : W + 2]
    for i in range(r0, r1):
        iu = _map(i - 1, H, m0)
        idn = _map(i + 1, H, m0)
        up = image[iu] if iu >= 0 else crow
        dn = image[idn] if idn >= 0 else crow
        hn = hd[(i + 4) % 3]
        _row_diff(dn, m1, cvalT, hn)
        hu = hd[(i + 2) % 3]
        hm = hd[(i + 3) % 3]
        for j in range(W):
            vd1[j] = dn[j] - up[j]
        lo = _map(-1, W, m1)
        hi = _map(W, W, m1)
        vd[0] = T(0.0) if lo < 0 else vd[lo + 1]
        vd[W + 1] = T(0.0) if hi < 0 else vd[hi + 1]
        orow = out[i]
        if single == 0:
            for j in range(W):
                orow[j] = (vd0[j] + c * vd1[j] + vd2[j]) * sc
        elif single == 1:
            for j in range(W):
                orow[j] = (hu[j] + c * hm[j] + hn[j]) * sc
        else:
            for j in range(W):
                g0 = (vd0[j] + c * vd1[j] + vd2[j]) * sc
                g1 = (hu[j] + c * hm[j] + hn[j]) * sc
                orow[j] = np.sqrt(w0 * g0 * g0 + w1 * g1 * g1) * inv
        if eroded.shape[0] > 0:
            er = eroded[i]
            for j in range(W):
                orow[j] = orow[j] * er[j]


@njit(parallel=True, **_OPTS)
def edge_filter_2d(image, out, eroded, modes, cval, center, scale, weights, single):
    """Separable 3x3 edge filter of a 2-D image into ``out``.

    ``center`` is the middle smoothing weight (2 for Sobel, 1 for Prewitt) and ``scale`` the
    normalisation of one smoothing axis (1/4, 1/3). ``single`` >= 0 writes that axis' signed
    response; otherwise ``sqrt(sum_a weights[a] * g_a**2 / ndim)``. ``eroded`` (uint8, empty for
    no mask) multiplies the result, as scikit-image does.
    """
    H = image.shape[0]
    if image.size < PARALLEL_MIN_PIXELS:
        _edge_rows_2d(image, out, eroded, modes, cval, center, scale, weights, single, 0, H)
        return out
    nch = _chunks(H)
    for c in prange(nch):
        _edge_rows_2d(image, out, eroded, modes, cval, center, scale, weights, single,
                      c * H // nch, (c + 1) * H // nch)
    return out


@njit(**_OPTS)
def _edge_rows_3d(image, out, eroded, modes, cval, center, scale, weights, single, r0, r1):
    D, H, W = image.shape
    m0 = modes[0]
    m1 = modes[1]
    m2 = modes[2]
    w0 = weights[0]
    w1 = weights[1]
    w2 = weights[2]
    sq = math.sqrt(3.0)
    s2 = 2.0 + center
    rows = np.empty((3, 3, W + 2))
    a0 = np.empty(W + 2)  # derivative along axis 0, smoothed along axis 1
    a1 = np.empty(W + 2)  # derivative along axis 1, smoothed along axis 0
    ss = np.empty(W + 2)  # smoothed along axes 0 and 1
    sw = np.empty(3)
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
                buf = rows[dz, dy]
                if zi < 0 or yi < 0:
                    for j in range(W):
                        buf[j + 1] = cval
                else:
                    for j in range(W):
                        buf[j + 1] = image[zi, yi, j]
        for j in range(1, W + 1):
            t0 = 0.0
            t1 = 0.0
            t2 = 0.0
            for k in range(3):
                t0 += sw[k] * (rows[2, k, j] - rows[0, k, j])
                t1 += sw[k] * (rows[k, 2, j] - rows[k, 0, j])
                t2 += sw[k] * (rows[k, 0, j] + center * rows[k, 1, j] + rows[k, 2, j])
            a0[j] = t0
            a1[j] = t1
            ss[j] = t2
        _pad_line(a0, W, m2, cval, 0.0)
        _pad_line(a1, W, m2, cval, 0.0)
        _pad_line(ss, W, m2, cval, s2 * s2 * cval)
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
                v = math.sqrt(w0 * g0 * g0 + w1 * g1 * g1 + w2 * g2 * g2) / sq
            if eroded.shape[0] > 0:
                v = v * eroded[z, y, j]
            out[z, y, j] = v


@njit(parallel=True, **_OPTS)
def edge_filter_3d(image, out, eroded, modes, cval, center, scale, weights, single):
    """3-D twin of :func:`edge_filter_2d` (``scale`` is the 2-axis smoothing normalisation)."""
    nrows = image.shape[0] * image.shape[1]
    if image.size < PARALLEL_MIN_PIXELS:
        _edge_rows_3d(image, out, eroded, modes, cval, center, scale, weights, single, 0, nrows)
        return out
    nch = _chunks(nrows)
    for c in prange(nch):
        _edge_rows_3d(image, out, eroded, modes, cval, center, scale, weights, single,
                      c * nrows // nch, (c + 1) * nrows // nch)
    return out


@njit(parallel=True, **_OPTS)
def erode_mask_2d(mask):
    """Erosion by the full 3x3 square with a False border (SciPy's ``border_value=0``), as uint8."""
    H, W = mask.shape
    out = np.zeros((H, W), np.uint8)
    for i in prange(1, H - 1):
        for j in range(1, W - 1):
            ok = 1
            for di in range(-1, 2):
                for dj in range(-1, 2):
                    if mask[i + di, j + dj] == 0:
                        ok = 0
            out[i, j] = ok
    return out


@njit(parallel=True, **_OPTS)
def erode_mask_3d(mask):
    """3-D twin of :func:`erode_mask_2d` (full 3x3x3 cube)."""
    D, H, W = mask.shape
    out = np.zeros((D, H, W), np.uint8)
    for z in prange(1, D - 1):
        for i in range(1, H - 1):
            for j in range(1, W - 1):
                ok = 1
                for dz in range(-1, 2):
                    for di in range(-1, 2):
                        for dj in range(-1, 2):
                            if mask[z + dz, i + di, j + dj] == 0:
                                ok = 0
                out[z, i, j] = ok
    return out


# ----------------------------------------------------------------------------------------------
# Canny
# ----------------------------------------------------------------------------------------------


@njit(**_OPTS)
def _vpass(src, i, weights, R, mode, cval, acc, line):
    """Gaussian pass along axis 0 for output row ``i``, in SciPy's order, rounded to ``T``.

    Writes ``line[R:R + W]``; the caller pads the rest for the pass along axis 1.
    """
    H, W = src.shape
    tconv = src.dtype.type
    wc = weights[R]
    if R == 4:
        ia = (_map(i - 4, H, mode), _map(i - 3, H, mode), _map(i - 2, H, mode),
              _map(i - 1, H, mode))
        ib = (_map(i + 4, H, mode), _map(i + 3, H, mode), _map(i + 2, H, mode),
              _map(i + 1, H, mode))
        if min(min(ia), min(ib)) >= 0:
            # sigma near 1 (the default): all nine taps in one sweep, same order of operations
            c0 = src[i]
            a4, a3, a2, a1 = src[ia[0]], src[ia[1]], src[ia[2]], src[ia[3]]
            b4, b3, b2, b1 = src[ib[0]], src[ib[1]], src[ib[2]], src[ib[3]]
            w4, w3, w2, w1 = weights[8], weights[7], weights[6], weights[5]
            out = line[R : R + W]
            for j in range(W):
                t = np.float64(c0[j]) * wc
                t += (np.float64(a4[j]) + np.float64(b4[j])) * w4
                t += (np.float64(a3[j]) + np.float64(b3[j])) * w3
                t += (np.float64(a2[j]) + np.float64(b2[j])) * w2
                t += (np.float64(a1[j]) + np.float64(b1[j])) * w1
                out[j] = tconv(t)
            return
    for j in range(W):
        acc[j] = np.float64(src[i, j]) * wc
    for k in range(R, 0, -1):
        wk = weights[R + k]
        a = _map(i - k, H, mode)
        b = _map(i + k, H, mode)
        if a >= 0 and b >= 0:
            for j in range(W):
                acc[j] += (np.float64(src[a, j]) + np.float64(src[b, j])) * wk
        elif a >= 0:
            for j in range(W):
                acc[j] += (np.float64(src[a, j]) + cval) * wk
        elif b >= 0:
            for j in range(W):
                acc[j] += (cval + np.float64(src[b, j])) * wk
        else:
            for j in range(W):
                acc[j] += (cval + cval) * wk
    for j in range(W):
        line[R + j] = tconv(acc[j])


@njit(**_OPTS)
def _hpad(line, W, R, mode, cval):
    """Extend ``line[R:R + W]`` by ``R`` values on each side according to ``mode``."""
    for k in range(1, R + 1):
        a = _map(-k, W, mode)
        b = _map(W - 1 + k, W, mode)
        line[R - k] = cval if a < 0 else line[R + a]
        line[R + W - 1 + k] = cval if b < 0 else line[R + b]


@njit(**_OPTS)
def _hpoint(line, j, weights, R):
    """Gaussian pass along axis 1 at column ``j`` of a padded line, in SciPy's order (float64)."""
    s = line[R + j] * weights[R]
    for k in range(R, 0, -1):
        s += (line[R + j - k] + line[R + j + k]) * weights[R + k]
    return s


@njit(**_OPTS)
def _hpass(line, W, weights, R, acc):
    """:func:`_hpoint` for every column. Shifted views keep the hot loop indexed by ``j`` alone,
    which Numba needs to drop its negative-index handling and vectorise."""
    wc = weights[R]
    mid = line[R : R + W]
    if R == 4:
        l4, l3, l2, l1 = line[0:W], line[1 : W + 1], line[2 : W + 2], line[3 : W + 3]
        r1, r2, r3, r4 = line[5 : W + 5], line[6 : W + 6], line[7 : W + 7], line[8 : W + 8]
        w4, w3, w2, w1 = weights[8], weights[7], weights[6], weights[5]
        for j in range(W):
            t = mid[j] * wc
            t += (l4[j] + r4[j]) * w4
            t += (l3[j] + r3[j]) * w3
            t += (l2[j] + r2[j]) * w2
            t += (l1[j] + r1[j]) * w1
            acc[j] = t
        return
    for j in range(W):
        acc[j] = mid[j] * wc
    for k in range(R, 0, -1):
        wk = weights[R + k]
        lo = line[R - k : R - k + W]
        hi = line[R + k : R + k + W]
        for j in range(W):
            acc[j] += (lo[j] + hi[j]) * wk


@njit(**_OPTS)
def _bleed_ones(i, H, W, weights, R, cval, epsT, bline, brow):
    """The Gaussian of an all-ones indicator (plus ``eps``) for row ``i`` into ``brow``, with
    constant borders: its axis-0 pass is one number per row, its axis-1 pass differs from the
    interior value only within ``R`` of the left and right borders. Returns the axis-0 value, which
    identifies the row (rows with the same one have the same ``brow``)."""
    tconv = brow.dtype.type
    r = weights[R]
    for k in range(R, 0, -1):
        a = 1.0 if i - k >= 0 else cval
        b = 1.0 if i + k < H else cval
        r += (a + b) * weights[R + k]
    rT = np.float64(tconv(r))
    for j in range(W + 2 * R):
        bline[j] = rT if R <= j < R + W else cval
    if W > 2 * R + 1:
        inner = tconv(_hpoint(bline, R, weights, R)) + epsT
        for j in range(W):
            brow[j] = inner
        for j in range(R):
            brow[j] = tconv(_hpoint(bline, j, weights, R)) + epsT
            jj = W - 1 - j
            brow[jj] = tconv(_hpoint(bline, jj, weights, R)) + epsT
    else:
        for j in range(W):
            brow[j] = tconv(_hpoint(bline, j, weights, R)) + epsT
    return rT


@njit(**_OPTS)
def _bleed_src_row(bleed_src, r, W, weights, R, mode, cval, epsT, acc, bline, brow):
    """The bleed-over divisor of row ``r`` from the mask's indicator image ``bleed_src`` (bleed
    kind 2): that image smoothed as the image is, plus ``epsT``, into ``brow`` (in its dtype)."""
    tconv = brow.dtype.type
    _vpass(bleed_src, r, weights, R, mode, cval, acc, bline)
    _hpad(bline, W, R, mode, cval)
    _hpass(bline, W, weights, R, acc)
    for j in range(W):
        brow[j] = tconv(acc[j]) + epsT


@njit(**_OPTS)
def _smooth_row(image, i, weights, mode, cval, bleed_src, bleed_kind, epsT, acc, line, bline,
                brow, srow):
    """Row ``i`` of Canny's smoothed image into ``srow`` (dtype of ``image``)."""
    H, W = image.shape
    R = (weights.shape[0] - 1) // 2
    tconv = image.dtype.type
    _vpass(image, i, weights, R, mode, cval, acc, line)
    _hpad(line, W, R, mode, cval)
    if bleed_kind == 2:
        _bleed_src_row(bleed_src, i, W, weights, R, mode, cval, epsT, acc, bline, brow)
    elif bleed_kind == 1:
        _bleed_ones(i, H, W, weights, R, cval, epsT, bline, brow)
    _hpass(line, W, weights, R, acc)
    if bleed_kind == 0:
        for j in range(W):
            srow[j] = acc[j]
    else:
        for j in range(W):
            srow[j] = tconv(acc[j]) / brow[j]


@njit(**_OPTS)
def _smooth_rows(image, weights, mode, cval, bleed_src, bleed_kind, eps, smoothed, r0, r1):
    W = image.shape[1]
    R = (weights.shape[0] - 1) // 2
    acc = np.empty(W)
    line = np.empty(W + 2 * R)
    bline = np.empty(W + 2 * R)
    brow = np.empty(W, image.dtype)
    for i in range(r0, r1):
        _smooth_row(image, i, weights, mode, cval, bleed_src, bleed_kind, eps[0], acc, line,
                    bline, brow, smoothed[i])


@njit(**_OPTS)
def _pad_diff(srow, p, e):
    """A smoothed row as float64 in ``p[1:W + 1]`` (reflect-padded) and its rounded central
    differences ``e[j] = T(p[j + 2] - p[j])`` (SciPy's first Sobel pass along axis 1)."""
    W = srow.shape[0]
    tconv = srow.dtype.type
    p1 = p[1 : W + 1]
    for j in range(W):
        p1[j] = srow[j]
    _pad_line(p, W, REFLECT, 0.0, 0.0)
    p0 = p[0:W]
    p2 = p[2 : W + 2]
    for j in range(W):
        e[j] = tconv(p2[j] - p0[j])


@njit(**_OPTS)
def _mag_row(pu, pd, eu, em, ed, dv, mrow, irow, jrow):
    """Sobel responses (``irow``, ``jrow``) and magnitude of one row from its neighbours' padded
    rows ``pu``/``pd`` and the three rows' differences, with SciPy's rounding. The rows hold
    values of the dtype ``T`` of ``mrow``, stored as ``T`` or as float64 (``dv`` likewise)."""
    W = mrow.shape[0]
    tconv = mrow.dtype.type
    for j in range(W + 2):
        dv[j] = tconv(pd[j] - pu[j])  # in T for T rows: the same value (see P in _tile_rows)
    dv0 = dv[0:W]
    dv1 = dv[1 : W + 1]
    dv2 = dv[2 : W + 2]
    for j in range(W):
        isob = tconv(2.0 * dv1[j] + (np.float64(dv0[j]) + dv2[j]))
        jsob = tconv(2.0 * em[j] + (np.float64(eu[j]) + ed[j]))
        irow[j] = isob
        jrow[j] = jsob
        mrow[j] = np.sqrt(isob * isob + jsob * jsob)


@njit(**_OPTS)
def _magnitude_rows(smoothed, mag, r0, r1):
    # Rows roll through a ring keyed by row number, so each smoothed row is converted and
    # differenced once (rows needed at any time: x - 1, x, x + 1, consecutive after reflection).
    H, W = smoothed.shape
    P = np.empty((3, W + 2))
    E = np.empty((3, W))
    held = np.full(3, -1, np.int64)
    dv = np.empty(W + 2)
    junk_i = np.empty(W, smoothed.dtype)
    junk_j = np.empty(W, smoothed.dtype)
    for x in range(r0, r1):
        iu = _map(x - 1, H, REFLECT)
        idn = _map(x + 1, H, REFLECT)
        for r in (iu, x, idn):
            if held[r % 3] != r:
                _pad_diff(smoothed[r], P[r % 3], E[r % 3])
                held[r % 3] = r
        _mag_row(P[iu % 3], P[idn % 3], E[iu % 3], E[x % 3], E[idn % 3], dv, mag[x], junk_i,
                 junk_j)


@njit(parallel=True, **_OPTS)
def canny_smooth(image, weights, mode, cval, bleed_src, bleed_kind, eps):
    """Canny's smoothing and gradient magnitude, as scikit-image computes them.

    Returns ``(smoothed, magnitude)`` in ``image``'s dtype. ``smoothed`` is the Gaussian of
    ``image`` divided by the Gaussian of the valid-pixel indicator plus ``eps[0]`` ("bleed-over"):
    ``bleed_kind`` 0 means no division, 1 an all-ones indicator (mask absent, ``mode`` constant),
    2 the indicator in ``bleed_src``. ``magnitude`` is the hypotenuse of SciPy's unnormalised Sobel
    responses of ``smoothed`` with reflecting borders.
    """
    H, W = image.shape
    smoothed = np.empty((H, W), image.dtype)
    mag = np.empty((H, W), image.dtype)
    if image.size < PARALLEL_MIN_PIXELS:
        _smooth_rows(image, weights, mode, cval, bleed_src, bleed_kind, eps, smoothed, 0, H)
        _magnitude_rows(smoothed, mag, 0, H)
        return smoothed, mag
    nch = _chunks(H)
    for c in prange(nch):
        _smooth_rows(image, weights, mode, cval, bleed_src, bleed_kind, eps, smoothed,
                     c * H // nch, (c + 1) * H // nch)
    for c in prange(nch):
        _magnitude_rows(smoothed, mag, c * H // nch, (c + 1) * H // nch)
    return smoothed, mag


@njit(**_OPTS)
def _nms_row(Mu, Mc, Md, irow, jrow, emrow, low, high, lab, flags, fwords):
    """Non-maximum suppression and double threshold of one interior row into ``lab`` (1 weak,
    2 strong), given its Sobel responses.

    Most of a typical image lies below ``low``, where no pixel is kept whatever its neighbours:
    a vectorised pass marks the columns at or above ``low`` in ``flags`` (uint8, zero past the
    row's end, seen as uint64 ``fwords``: four words per block of 32 columns), and the arithmetic
    runs only on runs of blocks with a mark, the rest of the row staying 0. The blocks are read
    through the words rather than through slices of the row, which would cost a reference count
    update per block."""
    W = Mc.shape[0]
    for j in range(W):
        lab[j] = 0
        flags[j] = np.uint8(Mc[j] >= low)
    nblk = (W + 31) // 32
    start = -1  # first column of the current run of marked blocks
    for k in range(nblk + 1):
        hit = False
        if k < nblk:
            hit = (fwords[4 * k] | fwords[4 * k + 1] | fwords[4 * k + 2] | fwords[4 * k + 3]) != 0
        if hit:
            if start < 0:
                start = 32 * k
        elif start >= 0:
            _nms_cols(Mu, Mc, Md, irow, jrow, emrow, low, high, lab, max(start, 1),
                      min(32 * k, W - 1))
            start = -1


@njit(**_OPTS)
def _nms_cols(Mu, Mc, Md, irow, jrow, emrow, low, high, lab, k0, k1):
    """:func:`_nms_row`'s arithmetic for the interior columns ``[k0, k1)``. Branch-free (every
    neighbour loaded, the right one selected) so that it vectorises; the arithmetic is
    scikit-image's, rounding included. Indexed by an unsigned column, which spares the
    negative-index handling that would otherwise turn the loads into gathers."""
    one = np.uint64(1)
    for jj in range(k1 - k0):
        j = np.uint64(k0 + jj)
        m = Mc[j]
        isob = irow[j]
        jsob = jrow[j]
        ai = abs(isob)
        aj = abs(jsob)
        mu0 = Mu[j - one]
        mu1 = Mu[j]
        mu2 = Mu[j + one]
        mc0 = Mc[j - one]
        mc2 = Mc[j + one]
        md0 = Md[j - one]
        md1 = Md[j]
        md2 = Md[j + one]
        c1 = (isob > 0) == (jsob > 0)
        vert = (c1 & (ai > aj)) | ((not c1) & (not (ai < aj)))
        num = aj if vert else ai
        den = ai if vert else aj
        w = num / den
        n11 = (md1 if c1 else mu1) if vert else mc2
        n21 = (mu1 if c1 else md1) if vert else mc0
        n12 = md2 if c1 else mu2
        n22 = mu0 if c1 else md0
        keep = ((n12 * w + n11 * (1.0 - w)) <= m) & ((n22 * w + n21 * (1.0 - w)) <= m)
        keep = keep & (m >= low) & (emrow[j] != 0)
        lab[j] = np.uint8(keep) * (np.uint8(1) + np.uint8(m >= high))


@njit(**_OPTS)
def _load_row(image, v, scale, mode, cval, dst):
    """Virtual row ``v`` of the image as float64 into ``dst``: the row SciPy's boundary extension
    maps ``v`` to, times ``scale`` (``skimage.img_as_float``'s conversion of an integer image, as
    ``numpy.multiply(image, scale, dtype=float64)`` computes it; 1 for a float image, exact), or
    ``cval`` for a row outside the image in 'constant' mode."""
    H, W = image.shape
    src = _map(v, H, mode)
    if src < 0:
        for j in range(W):
            dst[j] = cval
    else:
        row = image[src]
        for j in range(W):
            dst[j] = np.float64(row[j]) * scale


@njit(**_OPTS)
def _vpass_ring(ring, i, weights, R, like, line):
    """:func:`_vpass` from a ring of converted rows: virtual row ``v`` lives in ``ring[v % n]``
    (``n`` at least ``2R + 1``), so the rows a window needs never share a slot, whatever the mode.
    Rounded to the dtype of ``like``."""
    tconv = like.dtype.type
    W = ring.shape[1]
    n = ring.shape[0]
    wc = weights[R]
    out = line[R : R + W]
    c0 = ring[i % n]
    if R == 4:
        a4, a3, a2, a1 = ring[(i - 4) % n], ring[(i - 3) % n], ring[(i - 2) % n], ring[(i - 1) % n]
        b4, b3, b2, b1 = ring[(i + 4) % n], ring[(i + 3) % n], ring[(i + 2) % n], ring[(i + 1) % n]
        w4, w3, w2, w1 = weights[8], weights[7], weights[6], weights[5]
        for j in range(W):
            t = c0[j] * wc
            t += (a4[j] + b4[j]) * w4
            t += (a3[j] + b3[j]) * w3
            t += (a2[j] + b2[j]) * w2
            t += (a1[j] + b1[j]) * w1
            out[j] = tconv(t)
        return
    if R == 3:
        a3, a2, a1 = ring[(i - 3) % n], ring[(i - 2) % n], ring[(i - 1) % n]
        b3, b2, b1 = ring[(i + 3) % n], ring[(i + 2) % n], ring[(i + 1) % n]
        w3, w2, w1 = weights[6], weights[5], weights[4]
        for j in range(W):
            t = c0[j] * wc
            t += (a3[j] + b3[j]) * w3
            t += (a2[j] + b2[j]) * w2
            t += (a1[j] + b1[j]) * w1
            out[j] = tconv(t)
        return
    for j in range(W):
        out[j] = c0[j] * wc
    for k in range(R, 0, -1):
        wk = weights[R + k]
        a = ring[(i - k) % n]
        b = ring[(i + k) % n]
        for j in range(W):
            out[j] += (a[j] + b[j]) * wk
    for j in range(W):
        out[j] = tconv(out[j])


@njit(**_OPTS)
def _vpass_pair(a4, a3, a2, a1, c0, b1, b2, b3, b4, b5, weights, like, out, out2):
    """:func:`_vpass_ring` for radius 4 and two consecutive rows at once: ``out`` is centred on
    row ``c0``, ``out2`` on ``b1`` (the ten rows ``c0 - 4 .. c0 + 5`` in order, each row either
    float64 or the image's own float rows, which convert exactly). Each loaded value serves both
    sums, which halves the loads of the pass; each sum keeps SciPy's order."""
    tconv = like.dtype.type
    W = out.shape[0]
    wc, w4, w3, w2, w1 = weights[4], weights[8], weights[7], weights[6], weights[5]
    for j in range(W):
        x4 = np.float64(a4[j])
        x3 = np.float64(a3[j])
        x2 = np.float64(a2[j])
        x1 = np.float64(a1[j])
        x0 = np.float64(c0[j])
        y1 = np.float64(b1[j])
        y2 = np.float64(b2[j])
        y3 = np.float64(b3[j])
        y4 = np.float64(b4[j])
        y5 = np.float64(b5[j])
        t = x0 * wc
        t += (x4 + y4) * w4
        t += (x3 + y3) * w3
        t += (x2 + y2) * w2
        t += (x1 + y1) * w1
        out[j] = tconv(t)
        u = y1 * wc
        u += (x3 + y5) * w4
        u += (x2 + y4) * w3
        u += (x1 + y3) * w2
        u += (x0 + y2) * w1
        out2[j] = tconv(u)


@njit(**_OPTS)
def _hpass_div(line, W, weights, R, brow, divide, acc, out):
    """The smoothed row from its axis-0 pass ``line``: :func:`_hpass` rounded to the dtype of
    ``brow`` and, if ``divide``, divided by ``brow`` in that dtype, into ``out`` (float64). For the
    common radius 4 in one loop, without the float64 row in between."""
    tconv = brow.dtype.type
    if R == 4 and divide:
        mid = line[4 : W + 4]
        l4, l3, l2, l1 = line[0:W], line[1 : W + 1], line[2 : W + 2], line[3 : W + 3]
        r1, r2, r3, r4 = line[5 : W + 5], line[6 : W + 6], line[7 : W + 7], line[8 : W + 8]
        wc, w4, w3, w2, w1 = weights[4], weights[8], weights[7], weights[6], weights[5]
        for j in range(W):
            t = mid[j] * wc
            t += (l4[j] + r4[j]) * w4
            t += (l3[j] + r3[j]) * w3
            t += (l2[j] + r2[j]) * w2
            t += (l1[j] + r1[j]) * w1
            out[j] = tconv(t) / brow[j]
        return
    _hpass(line, W, weights, R, acc)
    if divide:
        for j in range(W):
            out[j] = tconv(acc[j]) / brow[j]
    else:
        for j in range(W):
            out[j] = tconv(acc[j])


@njit(**_OPTS)
def _finite_rows(image, r0, r1):
    """Whether rows ``[r0, r1)`` of a float image hold no NaN and no infinity (``x - x`` is 0
    exactly for a finite ``x``); one vectorised reduction per row."""
    for i in range(r0, r1):
        row = image[i]
        ok = True
        for j in range(row.shape[0]):
            ok &= row[j] - row[j] == 0
        if not ok:
            return False
    return True


@njit(**_OPTS)
def _smooth_tail(line, r, H, W, weights, R, mode, cval, bleed_src, bleed_kind, epsT, acc, bline,
                 brow, brow_key, P, E):
    """Smoothed row ``r`` from its axis-0 pass ``line[R:R + W]``: the pass along axis 1, the
    bleed-over division, into ``P[r % 4]`` (padded), and its central differences into
    ``E[r % 4]``. ``brow`` holds the divisor row of the indicator row ``brow_key`` (bleed kind 1);
    returns the key it holds afterwards."""
    tconv = brow.dtype.type
    _hpad(line, W, R, mode, cval)
    if bleed_kind == 2:
        _bleed_src_row(bleed_src, r, W, weights, R, mode, cval, epsT, acc, bline, brow)
    elif bleed_kind == 1:
        # rows away from the top and bottom share one indicator row: computed once
        rv = 1.0
        for k in range(R, 0, -1):
            if r - k < 0 or r + k >= H:
                rv = -1.0 - r
        if rv != brow_key:
            _bleed_ones(r, H, W, weights, R, cval, epsT, bline, brow)
            brow_key = rv
    p = P[r % 4]
    _hpass_div(line, W, weights, R, brow, bleed_kind != 0, acc, p[1 : W + 1])
    _pad_line(p, W, REFLECT, 0.0, 0.0)
    e = E[r % 4]
    p0 = p[0:W]
    p2 = p[2 : W + 2]
    for j in range(W):
        e[j] = tconv(p2[j] - p0[j])  # computed in T, stored in float64: see P in _tile_rows
    return brow_key


@njit(**_OPTS)
def _tile_rows(image, scale, weights, mode, cval, bleed_src, bleed_kind, eps, eroded, low, high,
               label, r0, r1, CB, EB, flood):
    """Smoothing, Sobel gradients, magnitude, non-maximum suppression and double threshold of the
    label rows ``[r0, r1)`` (every one of them written), in one downward sweep with every
    intermediate in small row rings.

    Each step runs as soon as the rows it needs exist, always in increasing row order: input rows
    (a float image's read in place, two smoothed rows per vertical pass for radius 4; near the top
    and bottom, for an integer image and for other radii converted to float64 once, in a ring of
    ``2R + 2``), smoothed rows (ring of 4, padded), gradient rows (ring of 3), labels. A tile
    recomputes the few rows of its upper halo (``R + 2``) that the tile above also computes;
    nothing the size of the image is written except the labels.

    A float image (``scale`` 1) is first checked for NaN and infinity in rows ``[r0, r1)``: the
    tile returns -1 at once if it holds any (its caller raises), checking them here, tile by tile
    in parallel, rather than in a pass of its own over the image before the sweep (which also
    brings the tile's rows into the cache for the sweep).

    If ``flood`` is nonzero, the hysteresis runs on bit rows, one bit a pixel: each label row, as
    soon as it exists, is packed into its candidates ``CB[x]`` (uint64 words, image rows by
    ``(W + 63) // 64``), and ``EB[x]`` receives its runs of candidates that hold a strong pixel or
    touch a mark of the row above; marks that reach unmarked candidates of rows above are followed
    up and down the tile's rows so far (:func:`_settle`). Whole runs of up to 64 pixels are handled
    by a few word operations where a pixel flood visits every pixel and its eight neighbours. At
    the end the tile's marks are written to ``label`` as the edge map (0/1); the label rows
    themselves only pass through a scratch row. Marks across tile borders are the caller's
    (:func:`_join_tiles`). If ``flood`` is 0, ``label`` receives the labels as the double
    threshold gives them (0; 1 weak candidate; 2 strong) and ``CB``/``EB`` are not read. (An int64
    from both callers, never a literal bool: each literal would compile the sweep once more.)
    Returns 0, or -1 for a float image with NaN or infinity.
    """
    H, W = image.shape
    a = max(r0, 1)
    b = min(r1, H - 1)
    flat = label.ravel()
    # the label map arrives uninitialised: the rows no suppression writes (the image's first and
    # last) are zeroed by their tile, in parallel, rather than the whole map by one thread
    for p in range(r0 * W, a * W):
        flat[p] = 0
    for p in range(b * W, r1 * W):
        flat[p] = 0
    if scale == 1.0 and not _finite_rows(image, r0, r1):
        return -1
    if a >= b:
        return 0
    R = (weights.shape[0] - 1) // 2
    T = eps.dtype
    epsT = eps[0]
    n = 2 * R + 2  # rows r - R .. r + 1 + R of a pair of smoothed rows
    ring = np.empty((n, W))
    direct = scale == 1.0  # a float image: its own rows are the converted rows
    line = np.empty(W + 2 * R)
    line2 = np.empty(W + 2 * R)
    acc = np.empty(W)
    bline = np.empty(W + 2 * R)
    brow = np.empty(W, T)
    # Smoothed rows, padded (ring keyed by row % 4), in T: every value SciPy stores there is a T.
    # Their central differences along axis 1 (and _mag_row's along axis 0) are computed in T, which
    # gives the value SciPy rounds to T from float64 (float64 carries more than twice T's
    # precision, so rounding twice is harmless; Figueroa, "When is double rounding innocuous?",
    # SIGNUM Newsletter 30(3), 1995), and kept in float64, the type _mag_row adds them in: each is
    # converted once, not once per use.
    P = np.empty((4, W + 2), T)
    E = np.empty((4, W))
    M = np.empty((3, W), T)  # magnitude / isobel / jsobel rows (row % 3)
    IS = np.empty((3, W), T)
    JS = np.empty((3, W), T)
    dv = np.empty(W + 2)
    ones = np.ones(W, np.uint8)
    flags = np.zeros(32 * ((W + 31) // 32), np.uint8)  # _nms_row's marks, whole blocks
    fwords = flags.view(np.uint64)
    has_mask = eroded.shape[0] > 0
    # hysteresis on bit rows (CB candidates, EB marked; 64 pixels a word): the label row is written
    # to a scratch row, zero past its end, and packed; the plane receives the edges at the end
    nw = CB.shape[1]
    labbuf = np.zeros(64 * nw, np.uint8)
    lw = labbuf.view(np.uint64)
    srow = np.empty(nw, np.uint64)
    seeds = np.empty(nw, np.uint64)
    new = np.empty(nw, np.uint64)
    tmp = np.empty(nw, np.uint64)
    nomark = np.zeros(nw, np.uint64)
    stack = np.empty(b - a + 1, np.int64)
    instack = np.zeros(b - a + 1, np.uint8)
    nochange = np.zeros(0, np.uint8)
    brow_key = np.nan
    v_next = max(a - 2, 0) - R  # next virtual input row to convert
    s_next = max(a - 2, 0)  # next smoothed row
    for y in range(a - 1, b + 1):
        need = min(y + 1, H - 1)
        while s_next <= need:
            r = s_next
            if R == 4 and r + 1 < H:
                # two rows per vertical pass; a float image's rows are read where they are when
                # the whole window lies inside it, else converted rows from the ring
                if direct and r >= 4 and r + 5 < H:
                    _vpass_pair(image[r - 4], image[r - 3], image[r - 2], image[r - 1], image[r],
                                image[r + 1], image[r + 2], image[r + 3], image[r + 4],
                                image[r + 5], weights, brow, line[R : R + W], line2[R : R + W])
                else:
                    v_next = max(v_next, r - R)  # rows read in place above were not converted
                    while v_next <= r + 1 + R:
                        _load_row(image, v_next, scale, mode, cval, ring[v_next % n])
                        v_next += 1
                    _vpass_pair(ring[(r - 4) % n], ring[(r - 3) % n], ring[(r - 2) % n],
                                ring[(r - 1) % n], ring[r % n], ring[(r + 1) % n],
                                ring[(r + 2) % n], ring[(r + 3) % n], ring[(r + 4) % n],
                                ring[(r + 5) % n], weights, brow, line[R : R + W],
                                line2[R : R + W])
                brow_key = _smooth_tail(line, r, H, W, weights, R, mode, cval, bleed_src,
                                        bleed_kind, epsT, acc, bline, brow, brow_key, P, E)
                brow_key = _smooth_tail(line2, r + 1, H, W, weights, R, mode, cval, bleed_src,
                                        bleed_kind, epsT, acc, bline, brow, brow_key, P, E)
                s_next += 2
            else:
                v_next = max(v_next, r - R)
                while v_next <= r + R:
                    _load_row(image, v_next, scale, mode, cval, ring[v_next % n])
                    v_next += 1
                _vpass_ring(ring, r, weights, R, brow, line)
                brow_key = _smooth_tail(line, r, H, W, weights, R, mode, cval, bleed_src,
                                        bleed_kind, epsT, acc, bline, brow, brow_key, P, E)
                s_next += 1
        iu = _map(y - 1, H, REFLECT)
        idn = _map(y + 1, H, REFLECT)
        _mag_row(P[iu % 4], P[idn % 4], E[iu % 4], E[y % 4], E[idn % 4], dv, M[y % 3],
                 IS[y % 3], JS[y % 3])
        x = y - 1
        if x >= a:
            _nms_row(M[(x - 1) % 3], M[x % 3], M[(x + 1) % 3], IS[x % 3], JS[x % 3],
                     eroded[x] if has_mask else ones, low, high, labbuf if flood else label[x],
                     flags, fwords)
            if flood:
                # the row's strong runs and its runs touching marks of the row above, then
                # whatever that reaches back up the tile's rows so far
                cx = CB[x]
                ex = EB[x]
                _pack_row(lw, cx, srow)
                if x > a:
                    _touched(cx, EB[x - 1], nomark, seeds)
                    for k in range(nw):
                        seeds[k] |= srow[k]
                    _fill_runs(cx, seeds, ex)
                    stack[0] = x
                    instack[x - a] = 1
                    _settle(CB, EB, stack, 1, instack, a, x, new, tmp, nochange)
                else:
                    _fill_runs(cx, srow, ex)
    if flood:
        buf = np.empty(8 * nw, np.uint64)
        for y in range(a, b):
            _expand_row(EB[y], buf, label[y])
    return 0


@njit(**_OPTS)
def _pack_row(lw, crow, srow):
    """The label row seen as uint64 words ``lw`` (eight labels 0/1/2 each, zero past the row's end)
    packed into bit rows: ``crow`` bit ``j`` is set where label ``j`` is a candidate (1 or 2),
    ``srow`` bit ``j`` where it is strong (2). Bit ``j`` of a row is bit ``j % 64`` of its word
    ``j // 64``; the eight bit 0s of a word are gathered into one byte by a multiplication whose
    partial products never overlap (the usual byte-gather of bitboard engines)."""
    lows = np.uint64(0x0101010101010101)
    magic = np.uint64(0x0102040810204080)
    s56 = np.uint64(56)
    one = np.uint64(1)
    cb = crow.view(np.uint8)
    sb = srow.view(np.uint8)
    for k in range(lw.shape[0]):
        w = lw[k]
        cb[k] = np.uint8((((w | (w >> one)) & lows) * magic) >> s56)
        sb[k] = np.uint8((((w >> one) & lows) * magic) >> s56)


@njit(**_OPTS)
def _fill_runs(crow, seeds, out):
    """``out``: the runs of set bits of the bit row ``crow`` that hold a bit of ``seeds`` (a subset
    of ``crow``), runs crossing words included. Upwards from each run's lowest seed by one addition
    (its carry runs to the top of the run: ``((c + s) ^ c) | s``, masked by ``c``); downwards by a
    Kogge-Stone occluded fill (six shift-and-mask steps), skipping empty words."""
    nw = crow.shape[0]
    one = np.uint64(1)
    s63 = np.uint64(63)
    carry = np.uint64(0)
    for k in range(nw):
        c = crow[k]
        s = seeds[k] | (carry & c)
        up = (((c + s) ^ c) | s) & c
        out[k] = up
        carry = up >> s63
    carry = np.uint64(0)
    for k in range(nw - 1, -1, -1):
        c = crow[k]
        g = out[k] | ((carry << s63) & c)
        if g != 0:
            p = c
            g |= p & (g >> one)
            p &= p >> one
            g |= p & (g >> np.uint64(2))
            p &= p >> np.uint64(2)
            g |= p & (g >> np.uint64(4))
            p &= p >> np.uint64(4)
            g |= p & (g >> np.uint64(8))
            p &= p >> np.uint64(8)
            g |= p & (g >> np.uint64(16))
            p &= p >> np.uint64(16)
            g |= p & (g >> np.uint64(32))
            out[k] = g
        carry = g & one


@njit(**_OPTS)
def _touched(cn, ey, en, new):
    """``new``: the candidates of a row (bit row ``cn``, marked ``en``) not yet marked that are
    8-connected to a marked pixel of the adjacent row ``ey``. Returns whether there is any."""
    nw = cn.shape[0]
    one = np.uint64(1)
    s63 = np.uint64(63)
    zero = np.uint64(0)
    anyb = zero
    for k in range(nw):
        e = ey[k]
        d = e | (e << one) | (e >> one)
        if k > 0:
            d |= ey[k - 1] >> s63
        if k + 1 < nw:
            d |= ey[k + 1] << s63
        v = cn[k] & d & ~en[k]
        new[k] = v
        anyb |= v
    return anyb != zero


@njit(**_OPTS)
def _settle(C, E, stack, top, instack, lo, hi, new, tmp, changed):
    """Hysteresis between rows: the rows ``stack[:top]`` (each flagged in ``instack``, indexed by
    row - ``lo``) have gained marks; every candidate run of a row in ``[lo, hi]`` 8-connected to a
    marked pixel of the row above or below is marked in turn, until nothing changes. Rows that
    gain marks are flagged in ``changed`` (when it is not empty)."""
    while top > 0:
        top -= 1
        y = stack[top]
        instack[y - lo] = 0
        for n in (y - 1, y + 1):
            if n < lo or n > hi:
                continue
            if _touched(C[n], E[y], E[n], new):
                _fill_runs(C[n], new, tmp)
                en = E[n]
                for k in range(en.shape[0]):
                    en[k] |= tmp[k]
                if changed.shape[0] > 0:
                    changed[n] = 1
                if instack[n - lo] == 0:
                    instack[n - lo] = 1
                    stack[top] = n
                    top += 1


@njit(**_OPTS)
def _expand_row(erow, buf, dst):
    """The bit row ``erow`` as bytes 0/1 into ``dst`` (through ``buf``, one uint64 per eight
    bits): each bit byte is copied into all eight bytes, bit ``i`` kept in byte ``i``, and the
    bytes set where nonzero by adding 0x7f (no carry leaves a byte)."""
    lows = np.uint64(0x0101010101010101)
    spread = np.uint64(0x8040201008040201)
    sevens = np.uint64(0x7F7F7F7F7F7F7F7F)
    s7 = np.uint64(7)
    eb = erow.view(np.uint8)
    for k in range(eb.shape[0]):
        x = (np.uint64(eb[k]) * lows) & spread
        buf[k] = ((x + sevens) >> s7) & lows
    bb = buf.view(np.uint8)
    for j in range(dst.shape[0]):
        dst[j] = bb[j]


@njit(**_OPTS)
def _join_tiles(C, E, label, nt):
    """Hysteresis across tile borders, once every tile is done (one thread): the two rows beside
    each border settled against each other and everything they reach, unbounded (:func:`_settle`);
    the rows that gained marks written to the edge map again."""
    H = label.shape[0]
    nw = C.shape[1]
    if H < 3:
        return
    stack = np.empty(H, np.int64)
    instack = np.zeros(H, np.uint8)
    changed = np.zeros(H, np.uint8)
    top = 0
    for t in range(1, nt):
        q = t * H // nt
        for y in (q - 1, q):
            if 1 <= y <= H - 2 and instack[y - 1] == 0:
                instack[y - 1] = 1
                stack[top] = y
                top += 1
    new = np.empty(nw, np.uint64)
    tmp = np.empty(nw, np.uint64)
    _settle(C, E, stack, top, instack, 1, H - 2, new, tmp, changed)
    buf = np.empty(8 * nw, np.uint64)
    for y in range(1, H - 1):
        if changed[y]:
            _expand_row(E[y], buf, label[y])


@njit(parallel=True, **_OPTS)
def _tiles(image, scale, weights, mode, cval, bleed_src, bleed_kind, eps, eroded, low, high, label,
           C, E, status, flood):
    """:func:`_tile_rows` for every tile, one per thread at a time (its result in ``status``);
    then, if ``flood``, the hysteresis across tile borders (:func:`_join_tiles`, one thread).
    Alone in its parallel function: Numba's parallel pipeline is slow to compile, on the loop and
    on everything around it."""
    H, W = image.shape
    nt = status.shape[0]
    for t in prange(nt):
        status[t] = _tile_rows(image, scale, weights, mode, cval, bleed_src, bleed_kind, eps,
                               eroded, low, high, label, t * H // nt, (t + 1) * H // nt, C, E,
                               flood)
    if flood and status.min() >= 0:
        _join_tiles(C, E, label, nt)


def _n_tiles(image):
    """Tiles of whole rows for an image: one below :data:`PARALLEL_MIN_PIXELS`, else up to 16 of at
    least 32 rows."""
    H = image.shape[0]
    return 1 if image.size < PARALLEL_MIN_PIXELS else max(1, min(H // 32, 16))


@njit(**_OPTS)
def _one_tile(image, scale, weights, mode, cval, bleed_src, bleed_kind, eps, eroded, low, high,
              label, flood):
    """The whole image as one tile (no thread team woken, no border between tiles): the label map,
    or the edge map when ``flood`` is 1, in ``label``. Returns -1 for a float image with NaN or
    infinity (``label`` is then undefined), else 0."""
    H, W = image.shape
    nw = (W + 63) // 64
    C = np.empty((H if flood else 0, nw), np.uint64)
    E = np.empty((H if flood else 0, nw), np.uint64)
    return _tile_rows(image, scale, weights, mode, cval, bleed_src, bleed_kind, eps, eroded, low,
                      high, label, np.int64(0), H, C, E, flood)


def _sweep(image, weights, mode, cval, bleed_src, bleed_kind, eps, eroded, low, high, scale,
           flood, out):
    """The tile sweep of :func:`canny_fused` and :func:`canny_labels`, from Python: the parallel
    :func:`_tiles` is called only from here, never from another compiled function. A cached
    compiled caller of a parallel function crashes when a later process loads it from the cache
    if the parallel callee had itself been loaded from the cache when the caller was compiled
    (github.com/numba/numba/issues/8578, open as of Numba 0.68).

    The labels, and then the edges, are written into ``out`` (uint8, C-contiguous, the image's
    shape; allocated if None): a caller's output array serves as the label map, so that no second
    image-sized array is allocated (each fresh one costs its page faults).

    Raises ``ValueError`` for a float image with NaN or infinity, found by the tiles as they read
    the image (the public layer leaves this check to the kernel)."""
    nt = _n_tiles(image)
    flood = np.int64(flood)
    label = np.empty(image.shape, np.uint8) if out is None else out
    if nt == 1:
        bad = _one_tile(image, scale, weights, mode, cval, bleed_src, bleed_kind, eps, eroded,
                        low, high, label, flood) < 0
    else:
        H, W = image.shape
        nw = (W + 63) // 64
        C = np.empty((H if flood else 0, nw), np.uint64)
        E = np.empty((H if flood else 0, nw), np.uint64)
        status = np.zeros(nt, np.int64)
        _tiles(image, scale, weights, mode, cval, bleed_src, bleed_kind, eps, eroded, low, high,
               label, C, E, status, flood)
        bad = (status < 0).any()
    if bad:
        raise ValueError("image contains NaN or infinity, for which this kernel has no defined "
                         "result")
    return label


def canny_fused(image, weights, mode, cval, bleed_src, bleed_kind, eps, eroded, low, high,
                scale=1.0, out=None):
    """The Canny edge map: smoothing and gradients as :func:`canny_smooth` computes them, then
    bilinear non-maximum suppression, double threshold and hysteresis (8-connected).

    The image is cut into tiles of whole rows, each computed in one sweep by :func:`_tile_rows`
    (one tile per thread at a time, its rows in cache), its hysteresis resolved on bit rows inside
    its own rows as they come; the marks are settled across the tile borders after every tile is
    done. ``image`` is float32/float64 (``scale`` 1), or uint8
    converted on the fly with ``scale`` (1/255): the arithmetic is in the dtype of ``eps`` (float64
    then).

    ``eroded`` (uint8) marks the pixels that may be edges; empty means every pixel off the border.
    ``low`` and ``high`` are compared with the magnitude in float64 after the caller has rounded
    them the way scikit-image's comparisons do. ``out``, if given, is a C-contiguous uint8 array
    of the image's shape that receives the edge map (0/1; returned as a bool view).
    """
    return _sweep(image, weights, mode, cval, bleed_src, bleed_kind, eps, eroded, float(low),
                  float(high), float(scale), 1, out).view(np.bool_)


def canny_labels(image, weights, mode, cval, bleed_src, bleed_kind, eps, eroded, low, high,
                 scale=1.0):
    """Canny's double threshold without its hysteresis: the uint8 label map (0; 1, a weak
    candidate: a local maximum at or above ``low``; 2, a strong one: also at or above ``high``)
    from the same one-pass sweep as :func:`canny_fused`, with the same arguments.

    For a caller that resolves the hysteresis itself, across the chunks of an image too large for
    one call (``medfeat.kernels`` on dask arrays). The sweep is :func:`canny_fused`'s own tile
    functions, compiled for the same argument types, with the flood switched off, so
    ``canny_fused``'s edge map is exactly the candidates 8-connected to a strong one.
    """
    return _sweep(image, weights, mode, cval, bleed_src, bleed_kind, eps, eroded, float(low),
                  float(high), float(scale), 0, None)
