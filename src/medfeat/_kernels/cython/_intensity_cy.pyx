# cython: language_level=3
"""Cython bodies of the intensity kernels (normalisation).

Same names and arguments as ``medfeat._kernels.numba_cpu.intensity``. The statistics pass (moments,
value counts) is shared with the density family (``medfeat._kernels.cython._density_cy``); these are
the output pass and the order-statistic selection. Images arrive flattened.
"""

import numpy as np

cimport cython
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t

include "_team.pxi"
include "_simd.pxi"


cdef extern from *:
    """
    #include "_simd.h"
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

    /* The output pass of float32 pixels in float64 arithmetic, out = (float)((x - shift) * scale),
       clipped to [0, 1] when clip, in registers (each lane: the operations of _affine_chunk's
       loop and of medfeat_clip01_f32, so the same bits). Returns how many pixels it did. */
    static Py_ssize_t medfeat_affine64_f32(const float* x, Py_ssize_t n, double shift,
                                           double scale, int clip, float* out) {
        Py_ssize_t i = 0;
    #if MEDFEAT_SIMD
        const __m128d s = _mm_set1_pd(shift), k = _mm_set1_pd(scale);
        const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f);
        for (; i + 4 <= n; i += 4) {
            __m128 v = _mm_loadu_ps(x + i);
            __m128 lo = _mm_cvtpd_ps(_mm_mul_pd(_mm_sub_pd(_mm_cvtps_pd(v), s), k));
            __m128 hi = _mm_cvtpd_ps(_mm_mul_pd(_mm_sub_pd(_mm_cvtps_pd(_mm_movehl_ps(v, v)), s),
                                                k));
            __m128 r = _mm_movelh_ps(lo, hi);
            if (clip)
                r = _mm_min_ps(one, _mm_max_ps(zero, r));
            _mm_storeu_ps(out + i, r);
        }
    #endif
        return i;
    }
    /* The same in float32 arithmetic, out = (x - shift) * scale, for a shift exact in float32 */
    static Py_ssize_t medfeat_affine32_f32(const float* x, Py_ssize_t n, float shift,
                                           float scale, int clip, float* out) {
        Py_ssize_t i = 0;
    #if MEDFEAT_SIMD
        const __m128 s = _mm_set1_ps(shift), k = _mm_set1_ps(scale);
        const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f);
        for (; i + 4 <= n; i += 4) {
            __m128 r = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(x + i), s), k);
            if (clip)
                r = _mm_min_ps(one, _mm_max_ps(zero, r));
            _mm_storeu_ps(out + i, r);
        }
    #endif
        return i;
    }
    #if MEDFEAT_AVX2
    __attribute__((target("avx2")))
    static Py_ssize_t medfeat_affine32_f32_avx2(const float* x, Py_ssize_t n, float shift,
                                                float scale, int clip, float* out) {
        Py_ssize_t i = 0;
        const __m256 s = _mm256_set1_ps(shift), k = _mm256_set1_ps(scale);
        const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
        for (; i + 8 <= n; i += 8) {
            __m256 r = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), s), k);
            if (clip)
                r = _mm256_min_ps(one, _mm256_max_ps(zero, r));
            _mm256_storeu_ps(out + i, r);
        }
        return i;
    }
    #endif
    static Py_ssize_t medfeat_affine32_f32_best(const float* x, Py_ssize_t n, float shift,
                                                float scale, int clip, float* out) {
    #if MEDFEAT_AVX2
        if (medfeat_has_avx2())
            return medfeat_affine32_f32_avx2(x, n, shift, scale, clip, out);
    #endif
        return medfeat_affine32_f32(x, n, shift, scale, clip, out);
    }
    #if MEDFEAT_AVX2
    __attribute__((target("avx2")))
    static Py_ssize_t medfeat_affine64_f32_avx2(const float* x, Py_ssize_t n, double shift,
                                                double scale, int clip, float* out) {
        Py_ssize_t i = 0;
        const __m256d s = _mm256_set1_pd(shift), k = _mm256_set1_pd(scale);
        const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
        for (; i + 8 <= n; i += 8) {
            __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(
                _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), s), k));
            __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(
                _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), s), k));
            __m256 r = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
            if (clip)
                r = _mm256_min_ps(one, _mm256_max_ps(zero, r));
            _mm256_storeu_ps(out + i, r);
        }
        return i;
    }
    #endif
    static Py_ssize_t medfeat_affine64_f32_best(const float* x, Py_ssize_t n, double shift,
                                                double scale, int clip, float* out) {
    #if MEDFEAT_AVX2
        if (medfeat_has_avx2())
            return medfeat_affine64_f32_avx2(x, n, shift, scale, clip, out);
    #endif
        return medfeat_affine64_f32(x, n, shift, scale, clip, out);
    }
    """
    void medfeat_clip01_f32(float* p, Py_ssize_t n) noexcept nogil
    Py_ssize_t medfeat_affine64_f32_best(const float* x, Py_ssize_t n, double shift,
                                         double scale, int clip, float* out) noexcept nogil
    Py_ssize_t medfeat_affine32_f32_best(const float* x, Py_ssize_t n, float shift,
                                         float scale, int clip, float* out) noexcept nogil


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
    # float32 pixels: map and clip in SIMD registers; others: a pure map the compiler vectorises,
    # then (when clipping) a SIMD clip of the same block while it is still in L1. Clipping the
    # float32 result equals clipping before rounding, as 0 and 1 are exact in float32 and
    # rounding is monotone
    cdef Py_ssize_t i, b, e
    cdef float shift32 = <float>shift, scale32 = <float>scale
    if pix_t is float:
        # float32 pixels: map and clip in registers, the few left over below
        if single:
            b = start + medfeat_affine32_f32_best(x + start, stop - start, shift32, scale32, clip,
                                                  out + start)
            for i in range(b, stop):
                out[i] = (x[i] - shift32) * scale32
        else:
            b = start + medfeat_affine64_f32_best(x + start, stop - start, shift, scale, clip,
                                                  out + start)
            for i in range(b, stop):
                out[i] = <float>((<double>x[i] - shift) * scale)
        if clip:
            medfeat_clip01_f32(out + b, stop - b)
    else:
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
    # blocks of 32768 pixels handed out as threads come for them (each output pixel is the same
    # whoever computes it): a thread that the OS holds back leaves its share to the others
    cdef Py_ssize_t n = x.shape[0], c, step = 32768, nblocks = (n + step - 1) // step
    cdef const pix_t* xp = &x[0]
    cdef float* op = &out[0]
    cdef double t0
    cdef double entered[256]
    cdef int team = medfeat_team(min(nchunks, nblocks), &t0, entered)
    with nogil, parallel(num_threads=team):
        _entered(entered)
        for c in prange(nblocks, schedule="dynamic", chunksize=1):
            _affine_chunk(xp, shift, scale, clip, single, op, c * step, min(n, c * step + step))
    medfeat_team_done(team, t0, entered)


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


# ----------------------------------------------------------------- order statistics by buckets
#
# Selection without a copy of the image: a counting pass puts every selected value in one of
# NBUCKETS buckets by a non-decreasing function of the value (NumPy's histogram index on [lo, hi],
# in the image's float type), so every value of a bucket is <= every value of the next; the
# cumulative counts tell which bucket holds each wanted rank and its rank there. A second pass
# copies the values of those buckets only (a few thousandths of the image on real data), each
# chunk to its own place, and quickselect finds the ranks in these small arrays. A value that
# occurs very often, or a far outlier that squeezes the rest into one bucket, makes a big bucket:
# then the copy and the selection approach those of the whole image, never more.

cdef enum:
    NBUCKETS = 4096
    BLOCK = 1024


cdef extern from *:
    """
    #include <stdint.h>
    #if MEDFEAT_SIMD
    #include <emmintrin.h>
    #endif
    /* The copying pass of bucket_select for float32 and at most four wanted buckets: the bucket
       of four pixels at a time (the operations of _bucket_block, which rounds the same way),
       compared with the wanted ones, so that the scalar work is only for the few pixels that are
       copied. Ends at the last multiple of four; returns where it stopped. */
    static Py_ssize_t medfeat_gather4_f32(const float* x, const uint8_t* mask, Py_ssize_t start,
                                          Py_ssize_t stop, float lo, float scale,
                                          const int32_t* want, float* out, int64_t* pos) {
        Py_ssize_t i = start;
    #if MEDFEAT_SIMD
        const __m128 vlo = _mm_set1_ps(lo), vscale = _mm_set1_ps(scale);
        const __m128 zero = _mm_setzero_ps(), top = _mm_set1_ps((float)(4096 - 1));
        const __m128i w0 = _mm_set1_epi32(want[0]), w1 = _mm_set1_epi32(want[1]);
        const __m128i w2 = _mm_set1_epi32(want[2]), w3 = _mm_set1_epi32(want[3]);
        int32_t k[4];
        int hit, j, s;
        for (; i + 4 <= stop; i += 4) {
            __m128 t = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(x + i), vlo), vscale);
            __m128i b = _mm_cvttps_epi32(_mm_min_ps(_mm_max_ps(t, zero), top));
            __m128i eq = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi32(b, w0), _mm_cmpeq_epi32(b, w1)),
                                      _mm_or_si128(_mm_cmpeq_epi32(b, w2), _mm_cmpeq_epi32(b, w3)));
            hit = _mm_movemask_ps(_mm_castsi128_ps(eq));
            if (!hit)
                continue;
            _mm_storeu_si128((__m128i*)k, b);
            for (j = 0; j < 4; j++) {
                if (!((hit >> j) & 1) || (mask && !mask[i + j]))
                    continue;
                for (s = 0; want[s] != k[j]; s++) {}
                out[pos[s]++] = x[i + j];
            }
        }
    #endif
        return i;
    }
    #if MEDFEAT_AVX2
    __attribute__((target("avx2")))
    static Py_ssize_t medfeat_gather4_f32_avx2(const float* x, const uint8_t* mask,
                                               Py_ssize_t start, Py_ssize_t stop, float lo,
                                               float scale, const int32_t* want, float* out,
                                               int64_t* pos) {
        Py_ssize_t i = start;
        const __m256 vlo = _mm256_set1_ps(lo), vscale = _mm256_set1_ps(scale);
        const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps((float)(4096 - 1));
        const __m256i w0 = _mm256_set1_epi32(want[0]), w1 = _mm256_set1_epi32(want[1]);
        const __m256i w2 = _mm256_set1_epi32(want[2]), w3 = _mm256_set1_epi32(want[3]);
        int32_t k[8];
        int hit, j, s;
        for (; i + 8 <= stop; i += 8) {
            __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vlo), vscale);
            __m256i b = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(t, zero), top));
            __m256i eq = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi32(b, w0), _mm256_cmpeq_epi32(b, w1)),
                _mm256_or_si256(_mm256_cmpeq_epi32(b, w2), _mm256_cmpeq_epi32(b, w3)));
            hit = _mm256_movemask_ps(_mm256_castsi256_ps(eq));
            if (!hit)
                continue;
            _mm256_storeu_si256((__m256i*)k, b);
            for (j = 0; j < 8; j++) {
                if (!((hit >> j) & 1) || (mask && !mask[i + j]))
                    continue;
                for (s = 0; want[s] != k[j]; s++) {}
                out[pos[s]++] = x[i + j];
            }
        }
        return medfeat_gather4_f32(x, mask, i, stop, lo, scale, want, out, pos);
    }
    /* medfeat_buckets_f32 eight lanes at a time (same operations, same buckets); the rest to it */
    __attribute__((target("avx2")))
    static Py_ssize_t medfeat_buckets_f32_avx2(const float* x, Py_ssize_t m, float lo,
                                               float scale, int32_t* idx, float* poison) {
        Py_ssize_t j = 0;
        float z[8];
        int k;
        const __m256 vlo = _mm256_set1_ps(lo), vscale = _mm256_set1_ps(scale);
        const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps((float)(4096 - 1));
        __m256 acc = zero;
        for (; j + 8 <= m; j += 8) {
            __m256 x8 = _mm256_loadu_ps(x + j);
            __m256 v = _mm256_mul_ps(_mm256_sub_ps(x8, vlo), vscale);
            acc = _mm256_add_ps(acc, _mm256_sub_ps(x8, x8));
            _mm256_storeu_si256((__m256i*)(idx + j),
                                _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(v, zero), top)));
        }
        _mm256_storeu_ps(z, acc);
        for (k = 0; k < 8; k++)
            *poison += z[k];
        return j;
    }
    #endif
    /* idx[j] = bucket of x[j], j < m, as _bucket_block computes it (MAXPS/MINPS are its selects;
       compilers emit compare-and-mask sequences for them otherwise); *poison += the sum of
       x[j] - x[j], which is NaN iff some x[j] is NaN or infinite */
    static void medfeat_buckets_f32(const float* x, Py_ssize_t m, float lo, float scale,
                                    int32_t* idx, float* poison) {
        Py_ssize_t j = 0;
        float t;
    #if MEDFEAT_AVX2
        if (medfeat_has_avx2())
            j = medfeat_buckets_f32_avx2(x, m, lo, scale, idx, poison);
    #endif
    #if MEDFEAT_SIMD
        {
            float z[4];
            int k;
            const __m128 vlo = _mm_set1_ps(lo), vscale = _mm_set1_ps(scale);
            const __m128 zero = _mm_setzero_ps(), top = _mm_set1_ps((float)(4096 - 1));
            __m128 acc = zero;
            for (; j + 4 <= m; j += 4) {
                __m128 x4 = _mm_loadu_ps(x + j);
                __m128 v = _mm_mul_ps(_mm_sub_ps(x4, vlo), vscale);
                acc = _mm_add_ps(acc, _mm_sub_ps(x4, x4));
                _mm_storeu_si128((__m128i*)(idx + j),
                                 _mm_cvttps_epi32(_mm_min_ps(_mm_max_ps(v, zero), top)));
            }
            _mm_storeu_ps(z, acc);
            for (k = 0; k < 4; k++)
                *poison += z[k];
        }
    #endif
        for (; j < m; j++) {
            t = (x[j] - lo) * scale;
            t = t > 0.0f ? t : 0.0f;
            t = t < (float)(4096 - 1) ? t : (float)(4096 - 1);
            idx[j] = (int32_t)t;
            *poison += x[j] - x[j];
        }
    }
    static Py_ssize_t medfeat_gather4_f32_best(const float* x, const uint8_t* mask,
                                               Py_ssize_t start, Py_ssize_t stop, float lo,
                                               float scale, const int32_t* want, float* out,
                                               int64_t* pos) {
    #if MEDFEAT_AVX2
        if (medfeat_has_avx2())
            return medfeat_gather4_f32_avx2(x, mask, start, stop, lo, scale, want, out, pos);
    #endif
        return medfeat_gather4_f32(x, mask, start, stop, lo, scale, want, out, pos);
    }
    """
    Py_ssize_t medfeat_gather4_f32_best(const float* x, const uint8_t* mask, Py_ssize_t start,
                                        Py_ssize_t stop, float lo, float scale,
                                        const int32_t* want, float* out,
                                        int64_t* pos) noexcept nogil
    void medfeat_buckets_f32(const float* x, Py_ssize_t m, float lo, float scale,
                             int32_t* idx, float* poison) noexcept nogil
    Py_ssize_t medfeat_gather4_f32(const float* x, const uint8_t* mask, Py_ssize_t start,
                                   Py_ssize_t stop, float lo, float scale, const int32_t* want,
                                   float* out, int64_t* pos) noexcept nogil


cdef inline bint _bucket_block(const flt_t* x, Py_ssize_t m, flt_t lo, flt_t scale,
                               int32_t* idx) noexcept nogil:
    # (x - lo) * scale clamped to [0, NBUCKETS - 1] before the conversion: every step is monotone
    # (a NaN or an infinite lo gives 0, the same in every pass); MAXPS/MINPS-shaped so that the
    # loop vectorises. Returns whether the block holds a NaN or an infinity (the sum of x - x).
    cdef Py_ssize_t j
    cdef flt_t t, top = NBUCKETS - 1
    cdef float z32 = 0
    cdef flt_t z = 0
    if flt_t is float:
        medfeat_buckets_f32(x, m, lo, scale, idx, &z32)
        return z32 != z32
    else:
        for j in range(m):
            t = (x[j] - lo) * scale
            t = t if t > 0 else 0
            t = t if t < top else top
            idx[j] = <int32_t>t
            z += x[j] - x[j]
        return z != z


cdef bint _bucket_counts(const flt_t* x, const uint8_t* mask, flt_t lo, flt_t scale,
                         uint32_t* tab, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    # four sub-tables (NBUCKETS each) in turn, as in the density family's counting loops:
    # neighbouring pixels usually share a bucket, and four tables make four independent chains
    # of increments instead of one. Returns whether a pixel (selected or not) is NaN or infinite.
    cdef int32_t idx[BLOCK]
    cdef Py_ssize_t b = start, j, m
    cdef bint bad = False
    cdef uint32_t* tab1 = tab + NBUCKETS
    cdef uint32_t* tab2 = tab + 2 * NBUCKETS
    cdef uint32_t* tab3 = tab + 3 * NBUCKETS
    while b < stop:
        m = min(stop - b, BLOCK)
        if _bucket_block(x + b, m, lo, scale, idx):
            bad = True
        j = 0
        if mask != NULL:
            while j + 4 <= m:
                tab[idx[j]] += mask[b + j]
                tab1[idx[j + 1]] += mask[b + j + 1]
                tab2[idx[j + 2]] += mask[b + j + 2]
                tab3[idx[j + 3]] += mask[b + j + 3]
                j += 4
            while j < m:
                tab[idx[j]] += mask[b + j]
                j += 1
        else:
            while j + 4 <= m:
                tab[idx[j]] += 1
                tab1[idx[j + 1]] += 1
                tab2[idx[j + 2]] += 1
                tab3[idx[j + 3]] += 1
                j += 4
            while j < m:
                tab[idx[j]] += 1
                j += 1
        b += m
    for j in range(NBUCKETS):
        tab[j] += tab1[j] + tab2[j] + tab3[j]
    return bad


cdef void _bucket_gather(const flt_t* x, const uint8_t* mask, flt_t lo, flt_t scale,
                         const int32_t* slot, const int32_t* want, Py_ssize_t nwant, flt_t* out,
                         int64_t* pos, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    # slot[bucket]: -1, or which wanted bucket it is (want[slot[bucket]] == bucket); pos[s]: where
    # the next value of wanted bucket s goes in out
    cdef int32_t idx[BLOCK]
    cdef Py_ssize_t b = start, j, m
    cdef int32_t s
    if flt_t is float:
        if nwant <= 4:
            b = medfeat_gather4_f32_best(x, mask, start, stop, lo, scale, want, out, pos)
    while b < stop:
        m = min(stop - b, BLOCK)
        _bucket_block(x + b, m, lo, scale, idx)
        for j in range(m):
            s = slot[idx[j]]
            if s >= 0 and (mask == NULL or mask[b + j]):
                out[pos[s]] = x[b + j]
                pos[s] += 1
        b += m


def bucket_select(const flt_t[::1] x, const uint8_t[::1] mask, double lo, double hi,
                  const int64_t[::1] ks, Py_ssize_t nchunks):
    """Values of the order statistics ``ks`` (0-based ranks, increasing) among the pixels of ``x``
    selected by ``mask`` (all when empty), exactly: the pixels' own values, as float64; or None
    if any pixel, selected or not, is NaN or infinite.

    The buckets split ``[lo, hi]`` evenly and pixels outside it fall in the end buckets: any
    bounds give the exact values, bounds near the data's give them fastest."""
    cdef Py_ssize_t n = x.shape[0], c, t, q, nt, total
    cdef double t0
    cdef double entered[256]
    cdef int team
    cdef const flt_t* xp = &x[0]
    cdef const uint8_t* mp = &mask[0] if mask.shape[0] > 0 else NULL
    cdef flt_t lo_t = <flt_t>lo, scale_t
    # the scale in float64 (a float32 hi - lo can overflow), then in the image's type; any
    # positive finite value keeps the buckets ordered
    cdef double width = hi - lo
    scale_t = <flt_t>(NBUCKETS / width) if width > 0 and NBUCKETS / width < 1e30 else <flt_t>0
    tab_arr = np.zeros((nchunks, 4 * NBUCKETS), np.uint32)
    bad_arr = np.zeros(nchunks, np.uint8)
    cdef uint32_t[:, ::1] tab = tab_arr
    cdef uint8_t[::1] bad = bad_arr
    team = medfeat_team(nchunks, &t0, entered)
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1, num_threads=team):
        if c < team:
            entered[c] = medfeat_now()  # the first chunk of thread c
        bad[c] = _bucket_counts(xp, mp, lo_t, scale_t, &tab[c, 0], _chunk_start(n, nchunks, c),
                                _chunk_stop(n, nchunks, c))
    medfeat_team_done(team, t0, entered)
    if bad_arr.any():
        return None
    per_chunk = tab_arr[:, :NBUCKETS].astype(np.int64)
    cum = np.cumsum(per_chunk.sum(axis=0))
    ks_arr = np.asarray(ks)
    bucket = np.searchsorted(cum, ks_arr, side="right")
    rank = ks_arr - np.where(bucket > 0, cum[np.maximum(bucket - 1, 0)], 0)
    wanted = np.unique(bucket)
    nt = wanted.shape[0]
    slot_arr = np.full(NBUCKETS, -1, np.int32)
    slot_arr[wanted] = np.arange(nt, dtype=np.int32)
    # the wanted buckets, padded to four by repeating the last (the SIMD test compares with four)
    want_arr = np.concatenate((wanted, np.repeat(wanted[nt - 1:], 3))).astype(np.int32)
    # each wanted bucket's values: chunk c's from the counts of the chunks before it on
    sizes = per_chunk[:, wanted]                                  # (nchunks, nt)
    base = np.concatenate(([0], np.cumsum(sizes.sum(axis=0))))   # start of each bucket in out
    pos_arr = np.ascontiguousarray(base[:nt][None, :] + np.cumsum(sizes, axis=0) - sizes,
                                   dtype=np.int64)
    total = int(base[nt])
    out_arr = np.empty(max(total, 1), np.float32 if flt_t is float else np.float64)
    cdef const int32_t[::1] slot = slot_arr
    cdef const int32_t[::1] want = want_arr
    cdef int64_t[:, ::1] pos = pos_arr
    cdef flt_t[::1] out = out_arr
    team = medfeat_team(nchunks, &t0, entered)
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1, num_threads=team):
        if c < team:
            entered[c] = medfeat_now()  # the first chunk of thread c
        _bucket_gather(xp, mp, lo_t, scale_t, &slot[0], &want[0], nt, &out[0], &pos[c, 0],
                       _chunk_start(n, nchunks, c), _chunk_stop(n, nchunks, c))
    medfeat_team_done(team, t0, entered)
    res = np.empty(ks_arr.shape[0], np.float64)
    for t in range(nt):
        mine = np.flatnonzero(bucket == wanted[t])
        res[mine] = select(out_arr[base[t]:base[t + 1]], np.ascontiguousarray(rank[mine],
                                                                             dtype=np.int64))
    return res


cdef inline Py_ssize_t _chunk_start(Py_ssize_t n, Py_ssize_t nchunks, Py_ssize_t c) noexcept nogil:
    return min(n, c * ((n + nchunks - 1) // nchunks))


cdef inline Py_ssize_t _chunk_stop(Py_ssize_t n, Py_ssize_t nchunks, Py_ssize_t c) noexcept nogil:
    return min(n, (c + 1) * ((n + nchunks - 1) // nchunks))
