# cython: language_level=3
"""Cython bodies of the intensity kernels (normalisation).

Same names and arguments as ``medfeat._kernels.numba_cpu.intensity``. The statistics pass (moments,
value counts) is shared with the density family (``medfeat._kernels.cython._density_cy``); these are
the output pass and the order-statistic selection. Images arrive flattened.
"""

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t

cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* p[i] = p[i] < 0 ? 0 : (p[i] > 1 ? 1 : p[i]) in place; MAXPS(0, v) and MINPS(1, v) are those
       selects exactly (a NaN v is passed through), which compilers do not emit on their own for
       floats without -ffast-math. */
    static void medfeat_clip01_f32(float* p, Py_ssize_t n) {
        Py_ssize_t i = 0;
    #if defined(__SSE2__)
        const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f);
        for (; i + 4 <= n; i += 4)
            _mm_storeu_ps(p + i, _mm_min_ps(one, _mm_max_ps(zero, _mm_loadu_ps(p + i))));
    #endif
        for (; i < n; i++) {
            float v = p[i];
            v = v < 0.0f ? 0.0f : v;
            p[i] = v > 1.0f ? 1.0f : v;
        }
    }
    """
    void medfeat_clip01_f32(float* p, Py_ssize_t n) noexcept nogil


ctypedef fused pix_t:
    uint8_t
    uint16_t
    int16_t
    float
    double

ctypedef fused flt_t:
    float
    double


cdef void _affine_chunk(const pix_t* x, double shift, double scale, bint clip, bint single,
                       float* out, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    # a pure map the compiler vectorises, then (when clipping) a SIMD clip of the same block while
    # it is still in L1; clipping the float32 result equals clipping before rounding, as 0 and 1
    # are exact in float32 and rounding is monotone
    cdef Py_ssize_t i, b, e
    cdef float shift32 = <float>shift, scale32 = <float>scale
    b = start
    while b < stop:
        e = min(stop, b + 4096)
        if single and pix_t is not double:
            for i in range(b, e):
                out[i] = (<float>x[i] - shift32) * scale32
        else:
            for i in range(b, e):
                out[i] = <float>((<double>x[i] - shift) * scale)
        if clip:
            medfeat_clip01_f32(out + b, e - b)
        b = e


def affine(const pix_t[::1] x, double shift, double scale, bint clip, bint single, float[::1] out,
           Py_ssize_t nchunks):
    """``out = float32((x - shift) * scale)``, clipped to [0, 1] when ``clip`` (a NaN stays NaN).
    With ``single`` (only honoured for inputs narrower than float64) the arithmetic is float32; the
    caller asks for it only when ``shift`` is exact in float32, so the result stays within a few
    float32 ulps of the float64 one."""
    cdef Py_ssize_t n = x.shape[0], c, step = (n + nchunks - 1) // nchunks
    cdef const pix_t* xp = &x[0]
    cdef float* op = &out[0]
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1, num_threads=nchunks):
        _affine_chunk(xp, shift, scale, clip, single, op, min(n, c * step),
                      min(n, c * step + step))


cdef inline void _swap(flt_t* a, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    cdef flt_t t = a[i]
    a[i] = a[j]
    a[j] = t


cdef flt_t _select_one(flt_t* a, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t i, j, mid
    cdef flt_t pivot
    while hi > lo + 1:
        mid = (lo + hi) >> 1
        _swap(a, mid, lo + 1)
        if a[lo] > a[hi]:
            _swap(a, lo, hi)
        if a[lo + 1] > a[hi]:
            _swap(a, lo + 1, hi)
        if a[lo] > a[lo + 1]:
            _swap(a, lo, lo + 1)
        i = lo + 1
        j = hi
        pivot = a[lo + 1]
        while True:
            i += 1
            while a[i] < pivot:
                i += 1
            j -= 1
            while a[j] > pivot:
                j -= 1
            if j < i:
                break
            _swap(a, i, j)
        a[lo + 1] = a[j]
        a[j] = pivot
        if j >= k:
            hi = j - 1
        if j <= k:
            lo = i
    if hi == lo + 1 and a[hi] < a[lo]:
        _swap(a, lo, hi)
    return a[k]


def select(flt_t[::1] buf, const int64_t[::1] ks):
    """Values of order statistics ``ks`` (ascending positions) of ``buf``, which is partially sorted
    in place: quickselect with median-of-three pivots and a Hoare partition that stops on equal
    keys, so images with few distinct values stay linear (Hoare 1961; Press et al., Numerical
    Recipes 8.5)."""
    cdef Py_ssize_t n = buf.shape[0], q, left = 0
    res_arr = np.empty(ks.shape[0], np.float64)
    cdef double[::1] res = res_arr
    with nogil:
        for q in range(ks.shape[0]):
            res[q] = <double>_select_one(&buf[0], left, n - 1, ks[q])
            # everything before ks[q] is now <= everything from it on
            left = ks[q]
    return res_arr
