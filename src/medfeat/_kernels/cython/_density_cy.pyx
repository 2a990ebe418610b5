# cython: language_level=3
"""Cython bodies of the density kernels (histogram, KDE, Otsu, maximum entropy).

Same names and arguments as ``medfeat._kernels.numba_cpu.density``; :mod:`medfeat.kernels.histograms`
validates and prepares, these only run the loops. Images arrive flattened (1-D, C order). Parallel
loops split the data into ``nchunks`` contiguous chunks, each with a private histogram/grid, merged
afterwards, so no two threads write the same counter.
"""

import numpy as np

cimport cython
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport INFINITY, ceil, exp, floor, log
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t

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


cdef extern from *:
    """
    #include <math.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* min, max and a NaN/inf poison (the sum of a - a, NaN iff some a is NaN or +-inf) of x[0:n].
       MINPS/MAXPS compute exactly `a < m ? a : m` (a NaN a leaves m), the scalar rule below, so the
       SIMD path gives the same min and max; compilers do not vectorise that select reduction on
       their own without -ffast-math. */
    #define MEDFEAT_EXTENT_TAIL(T)                                                          \
        for (; i < n; i++) {                                                                \
            T a = x[i];                                                                     \
            l = a < l ? a : l;                                                              \
            h = a > h ? a : h;                                                              \
            z += a - a;                                                                     \
        }                                                                                   \
        *lo = l; *hi = h; *poison = z;
    static void medfeat_extent_f32(const float* x, Py_ssize_t n, float* lo, float* hi,
                                   float* poison) {
        Py_ssize_t i = 0;
        float l = INFINITY, h = -INFINITY, z = 0.0f;
    #if defined(__SSE2__)
        __m128 l0 = _mm_set1_ps(INFINITY), l1 = l0, h0 = _mm_set1_ps(-INFINITY), h1 = h0;
        __m128 z0 = _mm_setzero_ps(), z1 = z0;
        float buf[4];
        int j;
        for (; i + 8 <= n; i += 8) {
            __m128 a = _mm_loadu_ps(x + i), b = _mm_loadu_ps(x + i + 4);
            l0 = _mm_min_ps(a, l0); l1 = _mm_min_ps(b, l1);
            h0 = _mm_max_ps(a, h0); h1 = _mm_max_ps(b, h1);
            z0 = _mm_add_ps(z0, _mm_sub_ps(a, a)); z1 = _mm_add_ps(z1, _mm_sub_ps(b, b));
        }
        l0 = _mm_min_ps(l1, l0); h0 = _mm_max_ps(h1, h0); z0 = _mm_add_ps(z0, z1);
        _mm_storeu_ps(buf, l0); for (j = 0; j < 4; j++) l = buf[j] < l ? buf[j] : l;
        _mm_storeu_ps(buf, h0); for (j = 0; j < 4; j++) h = buf[j] > h ? buf[j] : h;
        _mm_storeu_ps(buf, z0); for (j = 0; j < 4; j++) z += buf[j];
    #endif
        MEDFEAT_EXTENT_TAIL(float)
    }
    static void medfeat_extent_f64(const double* x, Py_ssize_t n, double* lo, double* hi,
                                   double* poison) {
        Py_ssize_t i = 0;
        double l = INFINITY, h = -INFINITY, z = 0.0;
    #if defined(__SSE2__)
        __m128d l0 = _mm_set1_pd(INFINITY), l1 = l0, h0 = _mm_set1_pd(-INFINITY), h1 = h0;
        __m128d z0 = _mm_setzero_pd(), z1 = z0;
        double buf[2];
        int j;
        for (; i + 4 <= n; i += 4) {
            __m128d a = _mm_loadu_pd(x + i), b = _mm_loadu_pd(x + i + 2);
            l0 = _mm_min_pd(a, l0); l1 = _mm_min_pd(b, l1);
            h0 = _mm_max_pd(a, h0); h1 = _mm_max_pd(b, h1);
            z0 = _mm_add_pd(z0, _mm_sub_pd(a, a)); z1 = _mm_add_pd(z1, _mm_sub_pd(b, b));
        }
        l0 = _mm_min_pd(l1, l0); h0 = _mm_max_pd(h1, h0); z0 = _mm_add_pd(z0, z1);
        _mm_storeu_pd(buf, l0); for (j = 0; j < 2; j++) l = buf[j] < l ? buf[j] : l;
        _mm_storeu_pd(buf, h0); for (j = 0; j < 2; j++) h = buf[j] > h ? buf[j] : h;
        _mm_storeu_pd(buf, z0); for (j = 0; j < 2; j++) z += buf[j];
    #endif
        MEDFEAT_EXTENT_TAIL(double)
    }
    """
    void medfeat_extent_f32(const float* x, Py_ssize_t n, float* lo, float* hi,
                            float* poison) noexcept nogil
    void medfeat_extent_f64(const double* x, Py_ssize_t n, double* lo, double* hi,
                            double* poison) noexcept nogil


cdef extern from *:
    """
    #include <math.h>
    #include "_simd.h"
    /* The float32 path of bin_counts: NumPy's bin guess t = (v - first) * scale, evaluated in
       float32 four lanes at a time, is trusted where its fraction t - trunc(t) lies strictly
       between two margins alpha and beta, and every other pixel goes to the exact walk.

       Why the margins make it exact: the guess is a non-decreasing function of v (a subtraction,
       a multiplication by a positive number and a clamp, each monotone in IEEE arithmetic). Bin
       k's values are the floats in [edges[k], edges[k + 1]), so every value of the bins below k
       has a guess <= b_k = guess(largest float < edges[k]), and every value of bin k and above a
       guess >= a_k = guess(smallest float >= edges[k]). A value whose guess t has integer part k
       and t > b_k (it is in no bin below k) and t < a_{k+1} (in no bin above k) is in bin k. With
       alpha >= b_k - k and beta <= a_{k+1} - k for every k, a fraction in (alpha, beta) is enough.
       Both are computed once per call from the edges with the same float32 operations as the
       lanes (scalar float arithmetic rounds as the SIMD lanes do: MEDFEAT_SIMD). */
    typedef struct {
        float first, scale, top, lo, hi, alpha, beta;
        int usable;
    } medfeat_bin32;

    static float medfeat_guess32(float v, float first, float scale, float top) {
        float t = (v - first) * scale;
        t = t > 0.0f ? t : 0.0f;  /* MAXPS(t, 0): a NaN gives 0 */
        return t < top ? t : top; /* MINPS(t, top) */
    }
    static float medfeat_f32_at_least(double x) {  /* smallest float >= x */
        float f = (float)x;
        return (double)f < x ? nextafterf(f, INFINITY) : f;
    }
    static float medfeat_f32_below(double x) {     /* largest float < x */
        float f = (float)x;
        return (double)f >= x ? nextafterf(f, -INFINITY) : f;
    }
    static float medfeat_f32_at_most(double x) {   /* largest float <= x */
        float f = (float)x;
        return (double)f > x ? nextafterf(f, -INFINITY) : f;
    }

    static void medfeat_bin32_setup(const double* edges, Py_ssize_t nb, double lo, double hi,
                                    double first, double scale, medfeat_bin32* p) {
        Py_ssize_t k;
        double alpha = -INFINITY, beta = INFINITY, a, b;
        p->first = (float)first;
        p->scale = (float)scale;
        p->top = (float)(nb - 1);
        p->lo = medfeat_f32_at_least(lo);
        p->hi = medfeat_f32_at_most(hi);
        /* below 2**24 bins the top bin and every integer part are exact floats */
        p->usable = MEDFEAT_SIMD && nb >= 1 && nb < (1 << 24);
        for (k = 1; k < nb && p->usable; k++) {
            b = medfeat_guess32(medfeat_f32_below(edges[k]), p->first, p->scale, p->top);
            a = medfeat_guess32(medfeat_f32_at_least(edges[k]), p->first, p->scale, p->top);
            /* b - k and a - (k - 1) decide the tests below exactly: they are exact when the two
               terms are within a factor of two, and far from [0, 1] when not */
            alpha = b - (double)k > alpha ? b - (double)k : alpha;
            beta = a - (double)(k - 1) < beta ? a - (double)(k - 1) : beta;
        }
        /* a float fraction r satisfies r > alpha iff r > (largest float <= alpha), and r < beta
           iff r < (smallest float >= beta) */
        p->alpha = medfeat_f32_at_most(alpha);
        p->beta = medfeat_f32_at_least(beta);
        p->usable = p->usable && p->alpha < p->beta;
    }

    /* Slots of x[0:n]: the bin for values in [lo, hi], nb for NaN, nb + 1 for other values, and
       -1 where the exact walk must decide; returns non-zero if there is any -1. */
    static Py_ssize_t medfeat_slots_f32(const float* x, Py_ssize_t n, const medfeat_bin32* p,
                                        int32_t nb, int32_t* out) {
        Py_ssize_t i = 0, left = 0;
    #if MEDFEAT_SIMD
        const __m128 first = _mm_set1_ps(p->first), scale = _mm_set1_ps(p->scale);
        const __m128 top = _mm_set1_ps(p->top), zero = _mm_setzero_ps();
        const __m128 lo = _mm_set1_ps(p->lo), hi = _mm_set1_ps(p->hi);
        const __m128 alpha = _mm_set1_ps(p->alpha), beta = _mm_set1_ps(p->beta);
        const __m128i outside = _mm_set1_epi32(nb + 1), minus1 = _mm_set1_epi32(-1);
        for (; i + 4 <= n; i += 4) {
            __m128 v = _mm_loadu_ps(x + i);
            __m128 t = _mm_min_ps(_mm_max_ps(_mm_mul_ps(_mm_sub_ps(v, first), scale), zero), top);
            __m128i k = _mm_cvttps_epi32(t);
            __m128 r = _mm_sub_ps(t, _mm_cvtepi32_ps(k));
            __m128 in = _mm_and_ps(_mm_cmpge_ps(v, lo), _mm_cmple_ps(v, hi));
            __m128 sure = _mm_and_ps(_mm_cmpgt_ps(r, alpha), _mm_cmplt_ps(r, beta));
            /* NaN lanes: nb + 1 - 1; other lanes outside [lo, hi]: nb + 1 */
            __m128i other = _mm_add_epi32(outside, _mm_castps_si128(_mm_cmpunord_ps(v, v)));
            __m128i in_i = _mm_castps_si128(in);
            __m128i slot = _mm_or_si128(_mm_and_si128(in_i, k), _mm_andnot_si128(in_i, other));
            /* in and not sure: -1 */
            __m128i bad = _mm_castps_si128(_mm_andnot_ps(sure, in));
            slot = _mm_or_si128(_mm_andnot_si128(bad, slot), _mm_and_si128(bad, minus1));
            _mm_storeu_si128((__m128i*)(out + i), slot);
            left |= _mm_movemask_ps(_mm_castsi128_ps(bad));
        }
    #endif
        for (; i < n; i++) {
            out[i] = -1;
            left = 1;
        }
        return left;
    }

    #if MEDFEAT_AVX2
    /* medfeat_slots_f32 eight lanes at a time, for CPUs with AVX2 (chosen at run time): the same
       operations per lane, so the same slots. */
    __attribute__((target("avx2")))
    static Py_ssize_t medfeat_slots_f32_avx2(const float* x, Py_ssize_t n,
                                             const medfeat_bin32* p, int32_t nb, int32_t* out) {
        Py_ssize_t i = 0;
        int left = 0;
        const __m256 first = _mm256_set1_ps(p->first), scale = _mm256_set1_ps(p->scale);
        const __m256 top = _mm256_set1_ps(p->top), zero = _mm256_setzero_ps();
        const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
        const __m256 alpha = _mm256_set1_ps(p->alpha), beta = _mm256_set1_ps(p->beta);
        const __m256i outside = _mm256_set1_epi32(nb + 1);
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_sub_ps(v, first), scale),
                                                   zero), top);
            __m256i k = _mm256_cvttps_epi32(t);
            __m256 r = _mm256_sub_ps(t, _mm256_cvtepi32_ps(k));
            __m256 in = _mm256_and_ps(_mm256_cmp_ps(v, lo, _CMP_GE_OQ),
                                      _mm256_cmp_ps(v, hi, _CMP_LE_OQ));
            __m256 sure = _mm256_and_ps(_mm256_cmp_ps(r, alpha, _CMP_GT_OQ),
                                        _mm256_cmp_ps(r, beta, _CMP_LT_OQ));
            __m256i other = _mm256_add_epi32(
                outside, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
            __m256i slot = _mm256_blendv_epi8(other, k, _mm256_castps_si256(in));
            __m256i bad = _mm256_castps_si256(_mm256_andnot_ps(sure, in));
            slot = _mm256_or_si256(slot, bad);   /* bad lanes: all ones, -1 */
            _mm256_storeu_si256((__m256i*)(out + i), slot);
            left |= _mm256_movemask_ps(_mm256_castsi256_ps(bad));
        }
        return medfeat_slots_f32(x + i, n - i, p, nb, out + i) | left;
    }
    #endif

    static Py_ssize_t medfeat_slots_f32_best(const float* x, Py_ssize_t n,
                                             const medfeat_bin32* p, int32_t nb, int32_t* out) {
    #if MEDFEAT_AVX2
        if (medfeat_has_avx2())
            return medfeat_slots_f32_avx2(x, n, p, nb, out);
    #endif
        return medfeat_slots_f32(x, n, p, nb, out);
    }

    #if MEDFEAT_AVX2
    /* The first step of medfeat_linbin_f32 four lanes at a time (AVX: the same operations, the
       same bits); returns how many pixels it did. */
    __attribute__((target("avx2")))
    static Py_ssize_t medfeat_linbin_cells_avx2(const float* x, Py_ssize_t m, double lo,
                                                double dx, double top, int32_t* cell, double* w0,
                                                double* w1) {
        Py_ssize_t j = 0;
        const __m256d vlo = _mm256_set1_pd(lo), vdx = _mm256_set1_pd(dx);
        const __m256d one = _mm256_set1_pd(1.0), zero = _mm256_setzero_pd();
        const __m256d vtop = _mm256_set1_pd(top);
        for (; j + 4 <= m; j += 4) {
            __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + j));
            __m256d tt = _mm256_div_pd(_mm256_sub_pd(v, vlo), vdx);
            __m128i c = _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_max_pd(tt, zero), vtop));
            __m256d f = _mm256_sub_pd(tt, _mm256_cvtepi32_pd(c));
            _mm_storeu_si128((__m128i*)(cell + j), c);
            _mm256_storeu_pd(w0 + j, _mm256_sub_pd(one, f));
            _mm256_storeu_pd(w1 + j, f);
        }
        return j;
    }
    #endif
    /* The unweighted linear binning of a block of float32 pixels, in two steps: the cells and
       weights of every pixel, two lanes at a time (SSE2 doubles: the same operations as
       _lin_chunk, each correctly rounded, so the same bits), then the adds into the grid, pixel
       after pixel in the order of _lin_chunk (each grid point's sum is the same sequence of
       adds). Clamping t to [0, last - 1] before the conversion gives the cell _lin_chunk gets
       from floor and its clamp (a NaN t lands in cell 0, as there). */
    static void medfeat_linbin_f32(const float* x, Py_ssize_t m, double lo, double dx,
                                   Py_ssize_t last, double* row) {
        int32_t cell[1024];
        double w0[1024], w1[1024];
        Py_ssize_t j = 0;
        double t, top = (double)(last - 1);
    #if MEDFEAT_AVX2
        if (medfeat_has_avx2())
            j = medfeat_linbin_cells_avx2(x, m, lo, dx, top, cell, w0, w1);
    #endif
    #if MEDFEAT_SIMD
        const __m128d vlo = _mm_set1_pd(lo), vdx = _mm_set1_pd(dx), one = _mm_set1_pd(1.0);
        const __m128d zero = _mm_setzero_pd(), vtop = _mm_set1_pd(top);
        for (; j + 2 <= m; j += 2) {
            __m128d v = _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i*)(x + j))));
            __m128d tt = _mm_div_pd(_mm_sub_pd(v, vlo), vdx);
            __m128i c = _mm_cvttpd_epi32(_mm_min_pd(_mm_max_pd(tt, zero), vtop));
            __m128d f = _mm_sub_pd(tt, _mm_cvtepi32_pd(c));
            _mm_storel_epi64((__m128i*)(cell + j), c);
            _mm_storeu_pd(w0 + j, _mm_sub_pd(one, f));
            _mm_storeu_pd(w1 + j, f);
        }
    #endif
        for (; j < m; j++) {
            t = ((double)x[j] - lo) / dx;
            cell[j] = (int32_t)(t > 0.0 ? (t < top ? t : top) : 0.0);
            w1[j] = t - (double)cell[j];
            w0[j] = 1.0 - w1[j];
        }
        for (j = 0; j < m; j++) {
            row[cell[j]] += w0[j];
            row[cell[j] + 1] += w1[j];
        }
    }

    /* The four chains of _moments_block's unmasked loop (pixel i + r goes to chain r), two SSE2
       registers of two chains each: the same subtractions, products and sums in the same order
       per chain, so the same bits; sums[0:4] are the chains of S1, sums[4:8] those of S2. Covers
       x[0:n - n % 4]. */
    #define MEDFEAT_SHIFTED_SUMS(NAME, T, LOAD4)                                               \
        static void NAME(const T* x, Py_ssize_t n, double K, double* sums) {                   \
            Py_ssize_t i = 0;                                                                  \
            __m128d k = _mm_set1_pd(K), a, b;                                                  \
            __m128d s1ab = _mm_setzero_pd(), s1cd = s1ab, s2ab = s1ab, s2cd = s1ab;            \
            for (; i + 4 <= n; i += 4) {                                                       \
                LOAD4                                                                          \
                a = _mm_sub_pd(a, k);                                                          \
                b = _mm_sub_pd(b, k);                                                          \
                s1ab = _mm_add_pd(s1ab, a);                                                    \
                s1cd = _mm_add_pd(s1cd, b);                                                    \
                s2ab = _mm_add_pd(s2ab, _mm_mul_pd(a, a));                                     \
                s2cd = _mm_add_pd(s2cd, _mm_mul_pd(b, b));                                     \
            }                                                                                  \
            _mm_storeu_pd(sums, s1ab); _mm_storeu_pd(sums + 2, s1cd);                          \
            _mm_storeu_pd(sums + 4, s2ab); _mm_storeu_pd(sums + 6, s2cd);                      \
        }
    #if MEDFEAT_SIMD
    #define MEDFEAT_HAVE_SUMS 1
    MEDFEAT_SHIFTED_SUMS(medfeat_shifted_sums_f32, float,
        { __m128 v = _mm_loadu_ps(x + i); a = _mm_cvtps_pd(v);
          b = _mm_cvtps_pd(_mm_movehl_ps(v, v)); })
    MEDFEAT_SHIFTED_SUMS(medfeat_shifted_sums_f64, double,
        { a = _mm_loadu_pd(x + i); b = _mm_loadu_pd(x + i + 2); })
    #else
    #define MEDFEAT_HAVE_SUMS 0
    static void medfeat_shifted_sums_f32(const float* x, Py_ssize_t n, double K, double* s) {}
    static void medfeat_shifted_sums_f64(const double* x, Py_ssize_t n, double K, double* s) {}
    #endif
    """
    ctypedef struct medfeat_bin32:
        float alpha, beta
        int usable
    void medfeat_linbin_f32(const float* x, Py_ssize_t m, double lo, double dx, Py_ssize_t last,
                            double* row) noexcept nogil
    bint MEDFEAT_HAVE_SUMS
    void medfeat_shifted_sums_f32(const float* x, Py_ssize_t n, double K, double* sums) noexcept nogil
    void medfeat_shifted_sums_f64(const double* x, Py_ssize_t n, double K,
                                  double* sums) noexcept nogil
    void medfeat_bin32_setup(const double* edges, Py_ssize_t nb, double lo, double hi,
                             double first, double scale, medfeat_bin32* p) noexcept nogil
    Py_ssize_t medfeat_slots_f32_best(const float* x, Py_ssize_t n, const medfeat_bin32* p,
                                      int32_t nb, int32_t* out) noexcept nogil


include "_team.pxi"
include "_simd.pxi"


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


def set_threads(int k):
    """No-op (each Cython kernel takes its thread count as an argument); returns ``k``. Present so
    the public layer treats both backends alike."""
    return k


# Chunk bounds are returned by value, never through pointers: Cython makes a prange variable
# thread-private only when the loop body assigns it, so `_chunk(..., &start, &stop)` left them
# shared between threads and two threads could count the same pixels.
cdef inline Py_ssize_t _chunk_start(Py_ssize_t n, Py_ssize_t nchunks, Py_ssize_t c) noexcept nogil:
    return min(n, c * ((n + nchunks - 1) // nchunks))


cdef inline Py_ssize_t _chunk_stop(Py_ssize_t n, Py_ssize_t nchunks, Py_ssize_t c) noexcept nogil:
    return min(n, (c + 1) * ((n + nchunks - 1) // nchunks))


cdef void _vc_chunk(const int_t* x, const uint8_t* mask, bint use_mask, int64_t offset,
                    Py_ssize_t nvals, uint32_t* tab, Py_ssize_t start,
                    Py_ssize_t stop) noexcept nogil:
    # consecutive pixels often share a value; spreading them over two (uint16) or four (uint8)
    # sub-tables breaks the store-to-load dependency between their increments
    cdef Py_ssize_t i = start
    cdef uint32_t* t1 = tab + nvals
    cdef uint32_t* t2 = tab + 2 * nvals
    cdef uint32_t* t3 = tab + 3 * nvals
    if use_mask:
        for i in range(start, stop):
            tab[<int64_t>x[i] - offset] += mask[i]
    elif nvals <= 256:
        while i + 4 <= stop:
            tab[<int64_t>x[i] - offset] += 1
            t1[<int64_t>x[i + 1] - offset] += 1
            t2[<int64_t>x[i + 2] - offset] += 1
            t3[<int64_t>x[i + 3] - offset] += 1
            i += 4
        while i < stop:
            tab[<int64_t>x[i] - offset] += 1
            i += 1
    else:
        while i + 2 <= stop:
            tab[<int64_t>x[i] - offset] += 1
            t1[<int64_t>x[i + 1] - offset] += 1
            i += 2
        while i < stop:
            tab[<int64_t>x[i] - offset] += 1
            i += 1


def value_counts(const int_t[::1] x, const uint8_t[::1] mask, int64_t offset, Py_ssize_t nvals,
                 Py_ssize_t nchunks):
    """Counts of each integer value ``x[i] - offset`` in ``[0, nvals)`` (of masked pixels only when
    ``mask`` is non-empty). Values outside that range must not occur. Chunks must hold fewer than
    2**32 pixels (their private tables are uint32)."""
    cdef Py_ssize_t n = x.shape[0], c, k, start, stop, nsub = 4 if nvals <= 256 else 2
    cdef Py_ssize_t width = nsub * nvals, r
    priv_arr = np.zeros((nchunks, width), np.uint32)
    cdef uint32_t[:, ::1] priv = priv_arr
    cdef bint use_mask = mask.shape[0] > 0
    cdef const uint8_t* mp = &mask[0] if use_mask else NULL
    cdef const int_t* xp = &x[0]
    out_arr = np.zeros(nvals, np.int64)
    cdef int64_t[::1] out = out_arr
    cdef int64_t acc
    cdef double t0
    cdef double entered[256]
    cdef int team
    team = medfeat_team(nchunks, &t0, entered)
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1, num_threads=team):
        if c < team:
            entered[c] = medfeat_now()  # the first chunk of thread c
        start = _chunk_start(n, nchunks, c)
        stop = _chunk_stop(n, nchunks, c)
        _vc_chunk(xp, mp, use_mask, offset, nvals, &priv[c, 0], start, stop)
    medfeat_team_done(team, t0, entered)
    for k in prange(nvals, nogil=True, schedule="static", num_threads=team):
        acc = 0
        for r in range(nchunks * nsub):
            acc = acc + priv[r // nsub, (r % nsub) * nvals + k]
        out[k] = acc
    return out_arr


cdef void _range_chunk(const pix_t* x, const uint8_t* mask, double* res, Py_ssize_t start,
                       Py_ssize_t stop) noexcept nogil:
    # four independent min/max chains in the image's own type, so the loop is not bound by one
    # compare-select latency; a NaN fails every comparison, so it never becomes a min or max
    cdef pix_t lo0, lo1, lo2, lo3, hi0, hi1, hi2, hi3, a, b, c, d, z0
    cdef Py_ssize_t i = start, nan = 0
    cdef bint seen = False
    if pix_t is float or pix_t is double:
        lo0 = INFINITY
        hi0 = -INFINITY
    else:
        lo0 = x[start]
        hi0 = x[start]
    lo1 = lo2 = lo3 = lo0
    hi1 = hi2 = hi3 = hi0
    if mask != NULL:
        for i in range(start, stop):
            a = x[i]
            if pix_t is float or pix_t is double:
                # NaN anywhere, and infinity outside the mask, are counted
                nan += (a != a) or (not mask[i] and (a - a) != 0)
            if mask[i]:
                if not seen and (pix_t is not float and pix_t is not double or a == a):
                    lo0 = hi0 = a
                    seen = True
                lo0 = a if a < lo0 else lo0
                hi0 = a if a > hi0 else hi0
        lo1 = lo2 = lo3 = lo0
        hi1 = hi2 = hi3 = hi0
        if not seen:
            res[0] = INFINITY
            res[1] = -INFINITY
            res[2] = nan
            return
    elif pix_t is float:
        # NaN is found by poisoning: a - a is 0 for finite values and NaN for NaN or +-inf, so an
        # add per lane replaces a compare-and-count per pixel; only a poisoned chunk is recounted
        medfeat_extent_f32(x + start, stop - start, &lo0, &hi0, &z0)
        if z0 != z0:
            for i in range(start, stop):
                nan += x[i] != x[i]
    elif pix_t is double:
        medfeat_extent_f64(x + start, stop - start, &lo0, &hi0, &z0)
        if z0 != z0:
            for i in range(start, stop):
                nan += x[i] != x[i]
    else:
        while i + 4 <= stop:
            a = x[i]
            b = x[i + 1]
            c = x[i + 2]
            d = x[i + 3]
            lo0 = a if a < lo0 else lo0
            lo1 = b if b < lo1 else lo1
            lo2 = c if c < lo2 else lo2
            lo3 = d if d < lo3 else lo3
            hi0 = a if a > hi0 else hi0
            hi1 = b if b > hi1 else hi1
            hi2 = c if c > hi2 else hi2
            hi3 = d if d > hi3 else hi3
            i += 4
        while i < stop:
            a = x[i]
            lo0 = a if a < lo0 else lo0
            hi0 = a if a > hi0 else hi0
            i += 1
    res[0] = min(min(<double>lo0, <double>lo1), min(<double>lo2, <double>lo3))
    res[1] = max(max(<double>hi0, <double>hi1), max(<double>hi2, <double>hi3))
    res[2] = nan


def value_range(const pix_t[::1] x, const uint8_t[::1] mask, Py_ssize_t nchunks):
    """``[min, max, n_bad]`` of ``x``: min and max of the masked pixels only when ``mask`` is
    non-empty (+-inf if none), never NaN; ``n_bad`` counts NaNs over every pixel and, with a mask,
    infinities outside it (those inside show in min or max)."""
    cdef Py_ssize_t n = x.shape[0], c, start, stop
    cdef const pix_t* xp = &x[0]
    cdef const uint8_t* mp = &mask[0] if mask.shape[0] > 0 else NULL
    res_arr = np.empty((nchunks, 3), np.float64)
    cdef double[:, ::1] res = res_arr
    cdef double t0
    cdef double entered[256]
    cdef int team
    team = medfeat_team(nchunks, &t0, entered)
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1, num_threads=team):
        if c < team:
            entered[c] = medfeat_now()  # the first chunk of thread c
        start = _chunk_start(n, nchunks, c)
        stop = _chunk_stop(n, nchunks, c)
        if stop > start:
            _range_chunk(xp, mp, &res[c, 0], start, stop)
        else:
            res[c, 0] = INFINITY
            res[c, 1] = -INFINITY
            res[c, 2] = 0
    medfeat_team_done(team, t0, entered)
    return np.array([res_arr[:, 0].min(), res_arr[:, 1].max(), res_arr[:, 2].sum()])


cdef inline Py_ssize_t _bin_of(double v, const double* edges, Py_ssize_t nb, double first,
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


cdef inline Py_ssize_t _slot(double v, const double* edges, Py_ssize_t nb, double lo, double hi,
                             double first, double scale) noexcept nogil:
    # bins 0..nb-1, then nb for NaN and nb + 1 for values outside [lo, hi]
    if v >= lo and v <= hi:
        return _bin_of(v, edges, nb, first, scale)
    return nb if v != v else nb + 1


cdef void _bin_chunk(const flt_t* x, const double* edges, Py_ssize_t nb, double lo, double hi,
                     double first, double scale, uint32_t* tab, Py_ssize_t start,
                     Py_ssize_t stop) noexcept nogil:
    # four sub-tables, as in _vc_chunk: neighbouring pixels usually fall in the same bin
    cdef Py_ssize_t i = start, w = nb + 2
    while i + 4 <= stop:
        tab[_slot(x[i], edges, nb, lo, hi, first, scale)] += 1
        tab[w + _slot(x[i + 1], edges, nb, lo, hi, first, scale)] += 1
        tab[2 * w + _slot(x[i + 2], edges, nb, lo, hi, first, scale)] += 1
        tab[3 * w + _slot(x[i + 3], edges, nb, lo, hi, first, scale)] += 1
        i += 4
    while i < stop:
        tab[_slot(x[i], edges, nb, lo, hi, first, scale)] += 1
        i += 1


cdef void _bin_chunk_f32(const float* x, const double* edges, Py_ssize_t nb, double lo, double hi,
                         double first, double scale, const medfeat_bin32* fast, uint32_t* tab,
                         Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    # slots of a block by SIMD (medfeat_slots_f32), the few it cannot decide by the walk, then
    # the counts in four sub-tables as in _bin_chunk
    cdef int32_t buf[1024]
    cdef Py_ssize_t b, j, m, w = nb + 2
    b = start
    while b < stop:
        m = min(stop - b, 1024)
        if medfeat_slots_f32_best(x + b, m, fast, <int32_t>nb, buf) > 0:
            for j in range(m):
                if buf[j] < 0:
                    buf[j] = <int32_t>_slot(x[b + j], edges, nb, lo, hi, first, scale)
        j = 0
        while j + 4 <= m:
            tab[buf[j]] += 1
            tab[w + buf[j + 1]] += 1
            tab[2 * w + buf[j + 2]] += 1
            tab[3 * w + buf[j + 3]] += 1
            j += 4
        while j < m:
            tab[buf[j]] += 1
            j += 1
        b += m


def float32_bin_margins(const double[::1] edges, double lo, double hi, double first,
                        double scale):
    """``(usable, alpha, beta)`` of the float32 path of :func:`bin_counts` for these arguments:
    whether it is taken, and the fractions of the guess it trusts (for tests)."""
    cdef medfeat_bin32 p
    medfeat_bin32_setup(&edges[0], edges.shape[0] - 1, lo, hi, first, scale, &p)
    return bool(p.usable), float(p.alpha), float(p.beta)


def bin_counts(const flt_t[::1] x, const double[::1] edges, double lo, double hi, double first,
               double scale, Py_ssize_t nchunks):
    """Histogram of float values on the uniform ``edges`` (NumPy's rules: keep ``lo <= v <= hi``,
    last bin closed). Returns ``nbins + 1`` counts; the last is the number of NaNs seen. Chunks must
    hold fewer than 2**32 pixels."""
    cdef Py_ssize_t n = x.shape[0], nb = edges.shape[0] - 1, c, start, stop
    cdef const flt_t* xp = &x[0]
    cdef const double* ep = &edges[0]
    cdef medfeat_bin32 fast
    fast.usable = False
    if flt_t is float:
        medfeat_bin32_setup(ep, nb, lo, hi, first, scale, &fast)
    priv_arr = np.zeros((nchunks, 4, nb + 2), np.uint32)
    cdef uint32_t[:, :, ::1] priv = priv_arr
    cdef double t0
    cdef double entered[256]
    cdef int team
    team = medfeat_team(nchunks, &t0, entered)
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1, num_threads=team):
        if c < team:
            entered[c] = medfeat_now()  # the first chunk of thread c
        start = _chunk_start(n, nchunks, c)
        stop = _chunk_stop(n, nchunks, c)
        if flt_t is float:
            if fast.usable:
                _bin_chunk_f32(xp, ep, nb, lo, hi, first, scale, &fast, &priv[c, 0, 0], start,
                               stop)
                continue
        _bin_chunk(xp, ep, nb, lo, hi, first, scale, &priv[c, 0, 0], start, stop)
    medfeat_team_done(team, t0, entered)
    return priv_arr.sum(axis=(0, 1), dtype=np.int64)[: nb + 1]


def rebin(const int64_t[::1] raw, int64_t offset, const double[::1] edges, double lo, double hi,
          double first, double scale):
    """Histogram from integer value counts: ``raw[k]`` pixels have value ``offset + k``; each value
    goes to the bin NumPy would put it in."""
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
                out[_bin_of(v, &edges[0], nb, first, scale)] += raw[k]
    return out_arr


cdef void _lin_chunk(const flt_t[::1] x, const double[::1] w, bint weighted, double lo, double dx,
                     Py_ssize_t ngrid, double* row, Py_ssize_t start,
                     Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i, j, last = ngrid - 1
    cdef double t, f, wi
    if flt_t is float:
        if not weighted and last >= 1:
            i = start
            while i < stop:
                j = min(stop - i, 1024)
                medfeat_linbin_f32(&x[i], j, lo, dx, last, row)
                i += j
            return
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
    """Linear binning (each value splits its weight between its two grid neighbours, in proportion
    to closeness) onto ``lo + k * dx``, ``k < ngrid``. ``w`` empty means unit weights."""
    cdef Py_ssize_t n = x.shape[0], c, start, stop
    cdef bint weighted = w.shape[0] > 0
    priv_arr = np.zeros((nchunks, ngrid), np.float64)
    cdef double[:, ::1] priv = priv_arr
    cdef double t0
    cdef double entered[256]
    cdef int team
    team = medfeat_team(nchunks, &t0, entered)
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1, num_threads=team):
        if c < team:
            entered[c] = medfeat_now()  # the first chunk of thread c
        start = _chunk_start(n, nchunks, c)
        stop = _chunk_stop(n, nchunks, c)
        _lin_chunk(x, w, weighted, lo, dx, ngrid, &priv[c, 0], start, stop)
    medfeat_team_done(team, t0, entered)
    return priv_arr.sum(axis=0)


cdef void _scatter_chunk(const flt_t[::1] x, const double[::1] w, bint weighted, double lo,
                         double dx, Py_ssize_t ngrid, double bw, double cutoff, double* row, Py_ssize_t start,
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
    """Exact sum of unnormalised Gaussians ``exp(-(g - x_i)**2 / (2 bw**2))`` over grid points
    within ``cutoff`` of each value (for kernels too narrow for binning). ``w`` empty means unit
    weights."""
    cdef Py_ssize_t n = x.shape[0], c, start, stop
    cdef bint weighted = w.shape[0] > 0
    priv_arr = np.zeros((nchunks, ngrid), np.float64)
    cdef double[:, ::1] priv = priv_arr
    cdef double t0
    cdef double entered[256]
    cdef int team
    team = medfeat_team(nchunks, &t0, entered)
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1, num_threads=team):
        if c < team:
            entered[c] = medfeat_now()  # the first chunk of thread c
        start = _chunk_start(n, nchunks, c)
        stop = _chunk_stop(n, nchunks, c)
        _scatter_chunk(x, w, weighted, lo, dx, ngrid, bw, cutoff, &priv[c, 0], start, stop)
    medfeat_team_done(team, t0, entered)
    return priv_arr.sum(axis=0)


def convolve_same(const double[::1] a, const double[::1] kern, int nthreads):
    """``out[k] = sum_j a[k + j - h] * kern[j]`` with ``h = len(kern) // 2`` and zeros outside
    ``a``, each output's terms added in increasing ``j`` starting from 0.0.

    The loops run taps outside, outputs inside: every output still receives its terms one by one
    in increasing ``j``, so its value is that of the plain dependent chain, but the inner loop
    updates independent outputs (no chain of dependent adds, and it vectorises). Threads take
    contiguous blocks of outputs."""
    cdef Py_ssize_t n = a.shape[0], m = kern.shape[0], h = m // 2, c, nchunks
    out_arr = np.zeros(n, np.float64)
    cdef double[::1] out = out_arr
    if n == 0:
        return out_arr
    cdef double t0
    cdef double entered[256]
    cdef int team
    nchunks = max(1, min(nthreads, n))
    team = medfeat_team(nchunks, &t0, entered)
    for c in prange(nchunks, nogil=True, schedule="static", chunksize=1, num_threads=team):
        if c < team:
            entered[c] = medfeat_now()  # the first chunk of thread c
        _convolve_block(&a[0], n, &kern[0], m, h, &out[0], _chunk_start(n, nchunks, c),
                        _chunk_stop(n, nchunks, c))
    medfeat_team_done(team, t0, entered)
    return out_arr


cdef void _convolve_block(const double* a, Py_ssize_t n, const double* kern, Py_ssize_t m,
                          Py_ssize_t h, double* out, Py_ssize_t start,
                          Py_ssize_t stop) noexcept nogil:
    # output k takes tap j when 0 <= k + j - h < n: for tap j, k in [h - j, n + h - j)
    cdef Py_ssize_t j, k, k0, k1, off
    cdef double w
    for j in range(m):
        k0 = max(start, h - j)
        k1 = min(stop, n + h - j)
        w = kern[j]
        off = j - h
        for k in range(k0, k1):
            out[k] = out[k] + a[k + off] * w


def otsu_index(const float[::1] counts, const double[::1] centers, bint single):
    """Index of the bin centre maximising Otsu's between-class variance, with scikit-image's
    arithmetic: float32 class weights (cumulative sums of float32 counts) and, when ``single``,
    float32 means and variance (float32 bin centres), otherwise float64 ones."""
    cdef Py_ssize_t nb = counts.shape[0], best
    w_arr = np.empty((4, nb), np.float32)
    d_arr = np.empty((2, nb), np.float64)
    cdef float[:, ::1] w = w_arr
    cdef double[:, ::1] d = d_arr
    with nogil:
        best = _otsu(&counts[0], &centers[0], nb, single, &w[0, 0], &d[0, 0])
    return best


cdef Py_ssize_t _otsu(const float* counts, const double* centers, Py_ssize_t nb, bint single,
                      float* work, double* work64) noexcept nogil:
    # work: 4 * nb floats (w1, w2, m1, m2), work64: 2 * nb doubles (d1, d2)
    cdef Py_ssize_t i, best = -1
    cdef float acc, s, d, v, vbest = 0
    cdef double s64, d64, v64, vbest64 = 0
    cdef float* w1 = work
    cdef float* w2 = work + nb
    cdef float* m1 = work + 2 * nb
    cdef float* m2 = work + 3 * nb
    cdef double* d1 = work64
    cdef double* d2 = work64 + nb
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
    """Index ``t`` maximising H(bins <= t) + H(bins > t), the entropies of the two classes'
    normalised histograms (Kapur, Sahoo & Wong 1985). With class total C and S = sum c log c, H =
    log C - S / C."""
    cdef Py_ssize_t nb = counts.shape[0], best
    work_arr = np.empty((2, nb), np.float64)
    cdef double[:, ::1] work = work_arr
    with nogil:
        best = _maxent(&counts[0], nb, &work[0, 0])
    return best


cdef Py_ssize_t _maxent(const double* counts, Py_ssize_t nb, double* work) noexcept nogil:
    # work: 2 * nb doubles (the lower classes' running totals and sums of c log c)
    cdef Py_ssize_t i, t, best = -1
    cdef double c, c_acc = 0, s_acc = 0, h, hbest = 0
    cdef double* ca = work
    cdef double* sa = work + nb
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


def threshold_indices_segments(const double[::1] vals, const double[::1] wts,
                               const int64_t[::1] starts):
    """Otsu's and the maximum-entropy bin index of every segment of integer-valued samples.

    Segment ``i`` holds sorted distinct integer values ``vals[starts[i]:starts[i + 1]]`` with
    their counts ``wts``. Its histogram is the one an integer image gets (one bin per value from
    its minimum to its maximum, bin centres the values), searched by :func:`otsu_index` (float32
    counts, float64 centres) and :func:`maxent_index`, the same code. Returns two int64 arrays
    of indices into that histogram, -1 for a segment with fewer than two distinct values, then
    two float64 arrays: how many samples lie above each chosen bin (exact integers)."""
    cdef Py_ssize_t n = starts.shape[0] - 1, i, j, a, b, nb, width = 1
    cdef double lo, acc
    for i in range(n):
        if starts[i + 1] - starts[i] > 0:
            width = max(width, <Py_ssize_t>(vals[starts[i + 1] - 1] - vals[starts[i]]) + 1)
    otsu_arr = np.full(n, -1, np.int64)
    maxent_arr = np.full(n, -1, np.int64)
    c32_arr = np.zeros(width, np.float32)
    c64_arr = np.zeros(width, np.float64)
    centres_arr = np.empty(width, np.float64)
    w_arr = np.empty(4 * width, np.float32)
    d_arr = np.empty(2 * width, np.float64)
    above_arr = np.zeros((2, n), np.float64)
    cdef int64_t[::1] otsu = otsu_arr, maxent = maxent_arr
    cdef double[:, ::1] above = above_arr
    cdef float[::1] c32 = c32_arr, w = w_arr
    cdef double[::1] c64 = c64_arr, centres = centres_arr, d = d_arr
    with nogil:
        for i in range(n):
            a = starts[i]
            b = starts[i + 1]
            if b - a < 2:
                continue
            lo = vals[a]
            nb = <Py_ssize_t>(vals[b - 1] - lo) + 1
            for j in range(nb):
                c32[j] = 0
                c64[j] = 0
                centres[j] = lo + j
            for j in range(a, b):
                c64[<Py_ssize_t>(vals[j] - lo)] = wts[j]
                c32[<Py_ssize_t>(vals[j] - lo)] = <float>wts[j]
            otsu[i] = _otsu(&c32[0], &centres[0], nb, False, &w[0], &d[0])
            maxent[i] = _maxent(&c64[0], nb, &d[0])
            acc = 0
            for j in range(a, b):
                if vals[j] > lo + otsu[i]:
                    acc = acc + wts[j]
            above[0, i] = acc
            acc = 0
            for j in range(a, b):
                if vals[j] > lo + maxent[i]:
                    acc = acc + wts[j]
            above[1, i] = acc
    return otsu_arr, maxent_arr, above_arr[0], above_arr[1]


cdef void _moments_block(const pix_t* x, const uint8_t* mask, double* st, Py_ssize_t start,
                         Py_ssize_t stop) noexcept nogil:
    # shifted sums around K, a pixel of the block: var = (S2 - S1**2 / n) / n loses at most
    # ~n * eps to cancellation, as |mean - K| <= sqrt(n) * std (the "shifted data" algorithm);
    # four independent chains per sum keep the float64 adds from serialising
    cdef double K = x[start], d, e, f, g, m, cnt = 0
    cdef double s1a = 0, s1b = 0, s1c = 0, s1d = 0, s2a = 0, s2b = 0, s2c = 0, s2d = 0
    cdef double sums[8]
    cdef Py_ssize_t i = start
    if (pix_t is float or pix_t is double) and mask == NULL and MEDFEAT_HAVE_SUMS:
        # the loop below, vectorised (same chains, same bits)
        if pix_t is float:
            medfeat_shifted_sums_f32(x + start, stop - start, K, sums)
        else:
            medfeat_shifted_sums_f64(x + start, stop - start, K, sums)
        s1a, s1b, s1c, s1d = sums[0], sums[1], sums[2], sums[3]
        s2a, s2b, s2c, s2d = sums[4], sums[5], sums[6], sums[7]
        i = start + (stop - start) - (stop - start) % 4
    if mask != NULL:
        # masked-out pixels are multiplied by 0, so a NaN or inf there still poisons S1 and is seen
        for i in range(start, stop):
            m = mask[i]
            d = (<double>x[i] - K) * m
            s1a += d
            s2a += d * d
            cnt += m
    else:
        while i + 4 <= stop:
            d = <double>x[i] - K
            e = <double>x[i + 1] - K
            f = <double>x[i + 2] - K
            g = <double>x[i + 3] - K
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
            d = <double>x[i] - K
            s1a += d
            s2a += d * d
            i += 1
        cnt = stop - start
    s1a = (s1a + s1b) + (s1c + s1d)
    s2a = (s2a + s2b) + (s2c + s2d)
    st[0] = cnt
    if cnt > 0:
        st[1] = K + s1a / cnt
        m = s2a - s1a * s1a / cnt
        st[2] = 0.0 if m < 0 else m  # rounding only; a NaN stays NaN
    else:
        st[1] = 0.0
        st[2] = s1a * 0.0


def moments(const pix_t[::1] x, const uint8_t[::1] mask, Py_ssize_t block, int nthreads):
    """``[count, mean, m2]`` of ``x`` (of masked pixels only when ``mask`` is non-empty),
    accumulated in float64 block by block, blocks merged with the pairwise update of Chan, Golub &
    LeVeque (1979). A NaN or inf anywhere, masked or not, makes ``mean`` or ``m2`` non-finite."""
    cdef Py_ssize_t n = x.shape[0], nblocks = (n + block - 1) // block, b
    cdef const uint8_t* mp = &mask[0] if mask.shape[0] > 0 else NULL
    cdef const pix_t* xp = &x[0]
    st_arr = np.zeros((nblocks, 3), np.float64)
    cdef double[:, ::1] st = st_arr
    out_arr = np.zeros(3, np.float64)
    cdef double[::1] out = out_arr
    cdef double na, nb_, tot, delta, poison = 0
    cdef double t0
    cdef double entered[256]
    cdef int team = medfeat_team(min(nthreads, nblocks), &t0, entered)
    # blocks are handed out as threads come for them: each block's sums are the same whoever
    # computes it, and a thread that the OS holds back leaves its share to the others
    with nogil, parallel(num_threads=team):
        _entered(entered)
        for b in prange(nblocks, schedule="dynamic", chunksize=8):
            _moments_block(xp, mp, &st[b, 0], b * block, min(n, b * block + block))
    medfeat_team_done(team, t0, entered)
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
    return out_arr


def kde_segments(const double[::1] vals, const double[::1] wts, const int64_t[::1] starts,
                 const int64_t[::1] rows, const double[::1] g0, const double[::1] dxf,
                 const int64_t[::1] fine, const int64_t[::1] up, const double[::1] kern,
                 const int64_t[::1] kstart, Py_ssize_t grid_size):
    """The unnormalised kernel density sums of several samples, each as :func:`linear_bin`
    (one chunk) and :func:`convolve_same` compute it, read at every ``up``-th fine point.

    Sample ``i`` is segment ``rows[i]`` of ``vals`` (values) and ``wts`` (their weights), split
    at ``starts``. It is binned linearly onto ``fine[i]`` points ``g0[i] + k * dxf[i]`` and
    convolved with ``kern[kstart[i]:kstart[i + 1]]`` (odd length, centred); output ``m`` is
    fine point ``m * up[i]``, ``m < grid_size`` (so ``fine[i] = (grid_size - 1) * up[i] + 1``).
    Every output receives its terms in the order the full convolution adds them, so it is
    ``convolve_same(linear_bin(...), kern, ...)[::up]`` bit for bit. Returns
    ``(len(rows), grid_size)`` float64."""
    cdef Py_ssize_t n = rows.shape[0], i, j, m, m0, m1, kmin, kmax, nf, h, klen, u, off, width = 1
    cdef double w
    for i in range(n):
        width = max(width, <Py_ssize_t>fine[i])
    out_arr = np.zeros((n, grid_size), np.float64)
    binned_arr = np.empty(width, np.float64)
    cdef double[:, ::1] out = out_arr
    cdef double[::1] binned = binned_arr
    with nogil:
        for i in range(n):
            nf = fine[i]
            u = up[i]
            for j in range(nf):
                binned[j] = 0.0
            _lin_chunk(vals, wts, True, g0[i], dxf[i], nf, &binned[0], starts[rows[i]],
                       starts[rows[i] + 1])
            klen = kstart[i + 1] - kstart[i]
            h = klen // 2
            for j in range(klen):
                # fine output k takes tap j when 0 <= k + j - h < nf
                w = kern[kstart[i] + j]
                off = j - h
                kmin = max(0, h - j)
                kmax = min(nf, nf + h - j)
                if kmax <= kmin:
                    continue
                m0 = (kmin + u - 1) // u
                m1 = min(grid_size, (kmax + u - 1) // u)
                for m in range(m0, m1):
                    out[i, m] = out[i, m] + binned[m * u + off] * w
    return out_arr
