"""Numba bodies of the intensity kernels (normalisation).

Same names and arguments as ``medfeat._kernels.cython._intensity_cy``. The statistics pass (moments,
value counts) is shared with the density family (``medfeat._kernels.numba_cpu.density``); these are
the output pass and the order-statistic selection. Images arrive flattened and read-only.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def affine(x, shift, scale, clip, single, out, nchunks):
    """``out = float32((x - shift) * scale)``, clipped to [0, 1] when ``clip`` (a NaN stays NaN).
    With ``single`` (only honoured for inputs narrower than float64) the arithmetic is float32; the
    caller asks for it only when ``shift`` is exact in float32, so the result stays within a few
    float32 ulps of the float64 one."""
    n = x.size
    step = (n + nchunks - 1) // nchunks
    use32 = single and x.itemsize < 8
    s32 = np.float32(shift)
    k32 = np.float32(scale)
    for c in prange(nchunks):
        start = min(n, c * step)
        stop = min(n, start + step)
        # a pure map (selects for the clip, no reduction) so LLVM vectorises it
        if use32:
            for i in range(start, stop):
                v = (np.float32(x[i]) - s32) * k32
                if clip:
                    v = np.float32(0.0) if v < 0.0 else v
                    v = np.float32(1.0) if v > 1.0 else v
                out[i] = v
        elif clip:
            for i in range(start, stop):
                w = (np.float64(x[i]) - shift) * scale
                w = 0.0 if w < 0.0 else w
                w = 1.0 if w > 1.0 else w
                out[i] = np.float32(w)
        else:
            for i in range(start, stop):
                out[i] = np.float32((np.float64(x[i]) - shift) * scale)


@njit(cache=True)
def select(buf, ks):
    """Values of order statistics ``ks`` (ascending positions) of ``buf``, which is partially sorted
    in place: quickselect with median-of-three pivots and a Hoare partition that stops on equal
    keys, so images with few distinct values stay linear (Hoare 1961; Press et al., Numerical
    Recipes 8.5)."""
    n = buf.size
    res = np.empty(ks.size, np.float64)
    left = 0
    for q in range(ks.size):
        k = ks[q]
        lo = left
        hi = n - 1
        while hi > lo + 1:
            mid = (lo + hi) >> 1
            buf[mid], buf[lo + 1] = buf[lo + 1], buf[mid]
            if buf[lo] > buf[hi]:
                buf[lo], buf[hi] = buf[hi], buf[lo]
            if buf[lo + 1] > buf[hi]:
                buf[lo + 1], buf[hi] = buf[hi], buf[lo + 1]
            if buf[lo] > buf[lo + 1]:
                buf[lo], buf[lo + 1] = buf[lo + 1], buf[lo]
            i = lo + 1
            j = hi
            pivot = buf[lo + 1]
            while True:
                i += 1
                while buf[i] < pivot:
                    i += 1
                j -= 1
                while buf[j] > pivot:
                    j -= 1
                if j < i:
                    break
                buf[i], buf[j] = buf[j], buf[i]
            buf[lo + 1] = buf[j]
            buf[j] = pivot
            if j >= k:
                hi = j - 1
            if j <= k:
                lo = i
        if hi == lo + 1 and buf[hi] < buf[lo]:
            buf[lo], buf[hi] = buf[hi], buf[lo]
        res[q] = np.float64(buf[k])
        # everything before k is now <= everything from k on
        left = k
    return res
