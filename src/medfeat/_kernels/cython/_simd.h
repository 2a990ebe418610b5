/* The SIMD switches of medfeat's Cython kernels, included by each module (each extension gets
   its own copy of the run-time switch).

   MEDFEAT_SIMD: SSE2 loops that must round exactly as the scalar code beside them are compiled only
   where scalar float and double arithmetic is evaluated in its own type (SSE2 scalar math,
   FLT_EVAL_METHOD 0; not x87 excess precision).
   MEDFEAT_AVX2: AVX2 versions of some loops, compiled for that instruction set alone (function
   target attributes: the rest of a module keeps the baseline instruction set, so the build runs on
   any x86-64) and chosen at run time by medfeat_has_avx2(), which medfeat_avx2_allowed can turn
   off (to check both paths on one machine). Define MEDFEAT_NO_AVX2 to leave them out. */
#ifndef MEDFEAT_SIMD_H
#define MEDFEAT_SIMD_H
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <float.h>
#if defined(__SSE2__) && defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define MEDFEAT_SIMD 1
#else
#define MEDFEAT_SIMD 0
#endif
#if MEDFEAT_SIMD && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) \
    && !defined(MEDFEAT_NO_AVX2)
#define MEDFEAT_AVX2 1
#include <immintrin.h>
static int medfeat_avx2_allowed = 1;
static int medfeat_has_avx2(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return known && medfeat_avx2_allowed;
}
#else
#define MEDFEAT_AVX2 0
static int medfeat_avx2_allowed = 0;
static int medfeat_has_avx2(void) { return 0; }
#endif

#endif
