"""numba.cuda body of the intensity output pass (normalisation).

Same name and arguments as ``medfeat._kernels.numba_cpu.intensity.affine``, on flat device arrays.
The statistics come from the density family (``medfeat._kernels.numba_cuda.density``). The
order-statistic selection for percentiles of float images (``select``) has no CUDA version yet.
"""

from __future__ import annotations

import numba
from numba import cuda

from ._common import TPB, blocks_1d


@cuda.jit
def _affine(x, shift, scale, clip, use32, out):
    s32 = numba.float32(shift)
    k32 = numba.float32(scale)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if use32:
            v = (numba.float32(x[i]) - s32) * k32
            if clip:
                v = numba.float32(0.0) if v < 0.0 else v
                v = numba.float32(1.0) if v > 1.0 else v
            out[i] = v
        else:
            w = (numba.float64(x[i]) - shift) * scale
            if clip:
                w = 0.0 if w < 0.0 else w
                w = 1.0 if w > 1.0 else w
            out[i] = numba.float32(w)


def affine(x, shift, scale, clip, single, out, nchunks=1):
    """``out = float32((x - shift) * scale)``, clipped to [0, 1] when ``clip``; float32 arithmetic
    with ``single`` for inputs narrower than float64 (see the CPU body). A grid-stride map."""
    use32 = bool(single) and x.dtype.itemsize < 8
    _affine[blocks_1d(x.size), TPB](x, float(shift), float(scale), bool(clip), use32, out)
    return out
