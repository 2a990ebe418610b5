"""numba.cuda bodies of grey and binary morphology (flat minimum / maximum filters).

Not the CPU kernels' names: the CPU backends cut footprints into runs processed a band of rows at a
time (``minmax_runs``) and run van Herk / Gil-Werman down columns (``vrun``), sequential schemes
that suit a core's cache. On the GPU, :mod:`medfeat.kernels.morphology` calls:

- :func:`footprint_minmax`: one thread per output pixel (grid-stride), min or max over a list of
  footprint offsets read through per-axis border maps. Boxes (rectangles, cubes) are done as
  separable passes of 1-D offset lists (kx + ky + kz reads per pixel instead of kx * ky * kz);
  other footprints loop over their offsets.
- :func:`nonzero_u8`: ``image != 0`` as 0/1 uint8, the input of the binary operations.

Arrays are 3-D device arrays (2-D images as one plane); every dtype works (the kernel is compiled
per dtype), NaN-free floats only (the public layer checks).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ._common import TPB, blocks_1d


@cuda.jit
def _footprint_minmax(src, dst, offs, zmap, ymap, xmap, cval, is_max):
    nz, ny, nx = dst.shape
    noff = offs.shape[0]
    for idx in range(cuda.grid(1), nz * ny * nx, cuda.gridsize(1)):
        z = idx // (ny * nx)
        rem = idx - z * ny * nx
        y = rem // nx
        x = rem - y * nx
        acc = cval
        for k in range(noff):
            # extended position (z + jz, ...) is source index map[...] or -1 for the border value
            zi = zmap[z + offs[k, 0]]
            yi = ymap[y + offs[k, 1]]
            xi = xmap[x + offs[k, 2]]
            v = cval if zi < 0 or yi < 0 or xi < 0 else src[zi, yi, xi]
            if k == 0:
                acc = v
            elif is_max:
                acc = v if v > acc else acc
            else:
                acc = v if v < acc else acc
        dst[z, y, x] = acc


def footprint_minmax(src, dst, offs, zmap, ymap, xmap, cval, is_max):
    """``dst[p] = op over k of ext(src)[p + offs[k]]`` (op = max if ``is_max``) for 3-D device
    arrays; ``offs`` (K, 3) are offsets into the extended image whose positions the host maps
    ``zmap``, ``ymap``, ``xmap`` send to source indices (-1: ``cval``)."""
    d = [cuda.to_device(np.ascontiguousarray(a, np.int64)) for a in (offs, zmap, ymap, xmap)]
    _footprint_minmax[blocks_1d(dst.size), TPB](src, dst, *d, src.dtype.type(cval), bool(is_max))
    return dst


@cuda.jit
def _nonzero(src, dst):
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        dst[i] = 1 if src[i] != 0 else 0


def nonzero_u8(src):
    """``src != 0`` as a 0/1 uint8 device array (NaN counts as non-zero, as in scipy.ndimage);
    ``src`` is a flat device array."""
    out = cuda.device_array(src.shape, np.uint8)
    _nonzero[blocks_1d(src.size), TPB](src, out)
    return out
