"""Device-array plumbing shared by the numba.cuda kernels.

The public layer (:mod:`medfeat.kernels`) decides where data lives; these helpers move it only
where the caller asked for it: a NumPy array given with ``backend="cuda"`` is copied to the device
once, on the way in, and the result copied back once, on the way out. A GPU array (a numba device
array, or anything exposing ``__cuda_array_interface__``: CuPy, PyTorch, ...) is wrapped without a
copy and the result stays on the device.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, cuda

# The simulator runs every CUDA thread as a Python thread: there, launches are kept to a few dozen
# threads (grid-stride loops cover the rest), still two blocks so that cross-block merging is
# exercised. The numbers below the simulator's are the real GPU's.
_SIM = bool(config.ENABLE_CUDASIM)

#: threads per block of the 1-D (flat) kernels (a power of two: tree reductions halve it)
TPB = 32 if _SIM else 128
#: side of the square 2-D tiles (TILE x TILE threads per block); 8 under the simulator, which runs
#: every thread as a Python thread, so that tiny test images still span several blocks (halos)
TILE = 8 if _SIM else 16
#: cap on the blocks of grid-stride reductions: enough to fill a large GPU (132 SMs x 8), few
#: enough that the per-block partial results stay a small array
MAX_BLOCKS = 2 if _SIM else 1024


def is_device(x):
    """True for GPU arrays: numba device arrays (real or simulated), ``__cuda_array_interface__``."""
    return getattr(x, "__cuda_ndarray__", False) is True or hasattr(x, "__cuda_array_interface__")


def as_device(x):
    """A numba device array viewing the GPU array ``x`` (no copy)."""
    if getattr(x, "__cuda_ndarray__", False) is True:
        return x
    return cuda.as_cuda_array(x)


def to_device(x):
    """``(device_array, was_on_gpu)``: ``x`` itself for GPU input, else one host-to-device copy."""
    if is_device(x):
        return as_device(x), True
    return cuda.to_device(np.ascontiguousarray(x)), False


def finish(d, on_gpu):
    """The result for the caller: the device array for GPU input, a NumPy copy otherwise."""
    return d if on_gpu else d.copy_to_host()


def flat(d):
    """A 1-D view of a C-contiguous device array (the flat kernels need one; no copy is made)."""
    if d.ndim == 1:
        return d
    if not d.is_c_contiguous():
        raise ValueError("a non-contiguous GPU array cannot be flattened without a copy; pass a "
                         "C-contiguous array (e.g. cupy.ascontiguousarray)")
    return d.reshape(d.size)


def empty_mask():
    """A one-element device placeholder for 'no mask' (kernels take a flag as well)."""
    return cuda.to_device(np.zeros(1, np.uint8))


def blocks_1d(n, cap=MAX_BLOCKS):
    """Blocks of :data:`TPB` threads for a grid-stride loop over ``n`` items."""
    return max(1, min(cap, math.ceil(n / TPB)))


def grid_2d(h, w):
    """(blocks, threads) covering an ``h`` x ``w`` image with :data:`TILE` x :data:`TILE` tiles."""
    return (math.ceil(w / TILE), math.ceil(h / TILE)), (TILE, TILE)


@cuda.jit
def _zero(a):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] = 0


def zeros(shape, dtype):
    """A device array of zeros, filled on the device (no host buffer crosses the bus: the
    per-image tables of a batch reach tens of megabytes)."""
    d = cuda.device_array(shape, dtype)
    if d.size:
        _zero[blocks_1d(d.size, 64 * MAX_BLOCKS), TPB](d.reshape(d.size))
    return d
