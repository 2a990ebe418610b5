"""numba.cuda bodies of the density kernels: value counts, value range, float binning, moments.

Same names and arguments as ``medfeat._kernels.cython._density_cy``, the family's CPU body; arrays are flat (1-D) numba
device arrays, the ``nchunks``/``nthreads`` arguments are accepted and ignored (a launch covers the
whole array), and what comes back is small and on the host: counts, ranges, moments -- the public
layer (:mod:`medfeat.kernels.histograms`) derives thresholds and bin edges from those.

- Counting (:func:`value_counts`, :func:`bin_counts`) uses privatised per-block histograms in shared
  memory (shared-memory atomics), merged into the global table with one atomic per non-empty entry
  per block; tables larger than :data:`SHARED_BINS` (16-bit images) count with global atomics.
- :func:`value_range` and :func:`moments` are block reductions (float64) whose per-block results are
  combined on the host (a few thousand numbers at most).
- ``*_segments``: the same for every image of a stack ``(N, ...)`` (the ``batch=True`` paths), one
  launch for the whole stack, ``blockIdx.y`` = image; their per-image results are bit for bit
  those of the single-image functions.
- The threshold searches (:func:`otsu_index`, :func:`maxent_index`) and :func:`rebin` work on the
  counts, at most 65 536 numbers: they run on the host, in the CPU backend's code.
- The kernel density estimate: :func:`linear_bin` and :func:`gauss_scatter` scatter the pixels of
  a float image onto the grid with float64 global atomics (the grid, up to 2**21 points, does not
  fit in shared memory); integer images arrive as their value counts, at most 65 536 host numbers,
  which the CPU body bins. :func:`convolve_same` is one thread per grid point. Float64 atomics add
  in no fixed order, so the estimate varies in its last bits from run to run.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda, njit

from .._common import bin_slot
# host-side steps on small host arrays run in the family's CPU body (see the module notes)
from ..cython import _density_cy as _cpu
from ..cython._density_cy import maxent_index, otsu_index, rebin  # noqa: F401

from ._common import MAX_BLOCKS, TPB, blocks_1d, zeros

#: integer tables up to this many entries are privatised in shared memory (16 KiB of uint32)
SHARED_BINS = 4096

__all__ = ["max_threads", "set_threads", "value_counts", "value_range", "bin_counts", "rebin",
           "moments", "otsu_index", "maxent_index", "linear_bin", "gauss_scatter",
           "convolve_same", "value_range_segments", "moments_segments", "bin_counts_segments",
           "value_counts_segments"]


def max_threads():
    """Chunks the public layer should ask for: one (a launch covers the whole array)."""
    return 1


def set_threads(k):
    """No thread setting on the GPU; returns 1 for the public layer to 'restore'."""
    return 1


# ---------------------------------------------------------------------------------- value counts

@cuda.jit
def _counts_shared(x, mask, use_mask, offset, nvals, out):
    tab = cuda.shared.array(SHARED_BINS, numba.uint32)
    t = cuda.threadIdx.x
    for k in range(t, nvals, cuda.blockDim.x):
        tab[k] = 0
    cuda.syncthreads()
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if not use_mask or mask[i]:
            cuda.atomic.add(tab, numba.int64(x[i]) - offset, 1)
    cuda.syncthreads()
    for k in range(t, nvals, cuda.blockDim.x):
        c = tab[k]
        if c:
            cuda.atomic.add(out, k, numba.uint64(c))


@cuda.jit
def _counts_global(x, mask, use_mask, offset, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if not use_mask or mask[i]:
            cuda.atomic.add(out, numba.int64(x[i]) - offset, numba.uint64(1))


def _mask_arg(x, mask):
    """(device mask, use it?) from the public layer's mask: empty (host) for none."""
    if mask is None or mask.size == 0:
        return x, False  # any array: never read
    return mask, True


def value_counts(x, mask, offset, nvals, nchunks=1):
    """Counts (int64, host) of each integer value ``x[i] - offset`` in ``[0, nvals)``, of masked
    pixels only when ``mask`` is non-empty. Values outside that range must not occur."""
    m, use_mask = _mask_arg(x, mask)
    out = cuda.to_device(np.zeros(nvals, np.uint64))
    if nvals <= SHARED_BINS:
        _counts_shared[blocks_1d(x.size), TPB](x, m, use_mask, int(offset), int(nvals), out)
    else:
        _counts_global[blocks_1d(x.size), TPB](x, m, use_mask, int(offset), out)
    return out.copy_to_host().astype(np.int64)


# ---------------------------------------------------------------------------------- value range

@cuda.jit(device=True)
def _block_min_max_sum(lo_s, hi_s, bad_s, t):
    """Tree reduction over the block's shared arrays: min into ``lo_s[0]``, max into
    ``hi_s[0]``, sum into ``bad_s[0]``; every thread of the block must call it."""
    cuda.syncthreads()
    s = TPB // 2
    while s > 0:
        if t < s:
            lo_s[t] = min(lo_s[t], lo_s[t + s])
            hi_s[t] = max(hi_s[t], hi_s[t + s])
            bad_s[t] += bad_s[t + s]
        cuda.syncthreads()
        s //= 2


@cuda.jit
def _range_blocks(x, mask, use_mask, part):
    lo_s = cuda.shared.array(TPB, numba.float64)
    hi_s = cuda.shared.array(TPB, numba.float64)
    bad_s = cuda.shared.array(TPB, numba.float64)
    t = cuda.threadIdx.x
    lo = np.inf
    hi = -np.inf
    bad = 0.0
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        a = numba.float64(x[i])
        keep = not use_mask or mask[i]
        # NaN anywhere; with a mask, infinity outside it too (inside it shows in min or max)
        if a != a or (not keep and (a - a) != 0):
            bad += 1.0
        if keep:
            lo = a if a < lo else lo
            hi = a if a > hi else hi
    lo_s[t] = lo
    hi_s[t] = hi
    bad_s[t] = bad
    _block_min_max_sum(lo_s, hi_s, bad_s, t)
    if t == 0:
        b = cuda.blockIdx.x
        part[b, 0] = lo_s[0]
        part[b, 1] = hi_s[0]
        part[b, 2] = bad_s[0]


def value_range(x, mask, nchunks=1):
    """``[min, max, n_bad]`` (float64, host) as :func:`medfeat._kernels.numba_cpu.density.
    value_range`: per-block reductions on the device, the few block results combined here."""
    m, use_mask = _mask_arg(x, mask)
    nb = blocks_1d(x.size)
    part = cuda.device_array((nb, 3), np.float64)
    _range_blocks[nb, TPB](x, m, use_mask, part)
    p = part.copy_to_host()
    return np.array([p[:, 0].min(), p[:, 1].max(), p[:, 2].sum()])


@cuda.jit
def _range_segments(x, L, part):
    # part[n, b] = (min, max, NaN count) of block b's share of segment n
    lo_s = cuda.shared.array(TPB, numba.float64)
    hi_s = cuda.shared.array(TPB, numba.float64)
    bad_s = cuda.shared.array(TPB, numba.float64)
    t = cuda.threadIdx.x
    nseg = part.shape[0]
    step = cuda.gridDim.x * cuda.blockDim.x
    for n in range(cuda.blockIdx.y, nseg, cuda.gridDim.y):
        lo = np.inf
        hi = -np.inf
        bad = 0.0
        for i in range(cuda.blockIdx.x * cuda.blockDim.x + t, L, step):
            a = numba.float64(x[n * L + i])
            if a != a:
                bad += 1.0
            lo = a if a < lo else lo
            hi = a if a > hi else hi
        lo_s[t] = lo
        hi_s[t] = hi
        bad_s[t] = bad
        _block_min_max_sum(lo_s, hi_s, bad_s, t)
        if t == 0:
            part[n, cuda.blockIdx.x, 0] = lo_s[0]
            part[n, cuda.blockIdx.x, 1] = hi_s[0]
            part[n, cuda.blockIdx.x, 2] = bad_s[0]
        cuda.syncthreads()


def _seg_grid(L, nseg):
    """(blocks per segment, grid) for a launch over ``nseg`` segments of ``L`` values: each thread
    takes at least 8 values, so that per-block setup stays small next to the counting."""
    bx = max(1, min(MAX_BLOCKS, -(-L // (TPB * 8))))
    return bx, (bx, min(nseg, 65535))


def value_range_segments(x, nseg):
    """``(nseg, 3)`` host array of ``[min, max, n_nan]`` of each image of a flat device stack, in
    one launch (min and max are exact whatever the order)."""
    L = x.size // nseg
    bx, grid = _seg_grid(L, nseg)
    part = cuda.device_array((nseg, bx, 3), np.float64)
    _range_segments[grid, TPB](x, L, part)
    p = part.copy_to_host()
    return np.stack([p[:, :, 0].min(1), p[:, :, 1].max(1), p[:, :, 2].sum(1)], axis=1)


# ---------------------------------------------------------------------------------- float binning

#: bins 0..nb-1, then nb for NaN and nb + 1 for values outside [lo, hi] (shared with the CPU)
_slot = cuda.jit(device=True)(bin_slot)


@cuda.jit
def _bins_shared(x, edges, lo, hi, first, scale, out):
    tab = cuda.shared.array(SHARED_BINS, numba.uint32)
    nb = edges.size - 1
    t = cuda.threadIdx.x
    for k in range(t, nb + 2, cuda.blockDim.x):
        tab[k] = 0
    cuda.syncthreads()
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        cuda.atomic.add(tab, _slot(numba.float64(x[i]), edges, nb, lo, hi, first, scale), 1)
    cuda.syncthreads()
    for k in range(t, nb + 1, cuda.blockDim.x):
        c = tab[k]
        if c:
            cuda.atomic.add(out, k, numba.uint64(c))


@cuda.jit
def _bins_global(x, edges, lo, hi, first, scale, out):
    nb = edges.size - 1
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        k = _slot(numba.float64(x[i]), edges, nb, lo, hi, first, scale)
        if k <= nb:
            cuda.atomic.add(out, k, numba.uint64(1))


def bin_counts(x, edges, lo, hi, first, scale, nchunks=1):
    """Histogram (int64, host) of float values on the uniform ``edges`` (host array, copied to the
    device: ``bins + 1`` numbers), NumPy's rules; the extra last count is the number of NaNs."""
    nb = edges.size - 1
    d_edges = cuda.to_device(np.ascontiguousarray(edges, np.float64))
    out = cuda.to_device(np.zeros(nb + 1, np.uint64))
    args = (x, d_edges, float(lo), float(hi), float(first), float(scale), out)
    if nb + 2 <= SHARED_BINS:
        _bins_shared[blocks_1d(x.size), TPB](*args)
    else:
        _bins_global[blocks_1d(x.size), TPB](*args)
    return out.copy_to_host().astype(np.int64)


@cuda.jit
def _bins_segments(x, L, edges, lo, hi, first, scale, use_shared, out):
    # out[n, :nb] = NumPy's histogram of segment n on its edges (row n of `edges`, or row 0 for
    # all), out[n, nb] = its NaN count
    tab = cuda.shared.array(SHARED_BINS, numba.uint32)
    nseg = out.shape[0]
    nb = edges.shape[1] - 1
    t = cuda.threadIdx.x
    step = cuda.gridDim.x * cuda.blockDim.x
    for n in range(cuda.blockIdx.y, nseg, cuda.gridDim.y):
        e = 0 if edges.shape[0] == 1 else n
        row = edges[e]
        if use_shared:
            for k in range(t, nb + 2, cuda.blockDim.x):
                tab[k] = 0
            cuda.syncthreads()
        for i in range(cuda.blockIdx.x * cuda.blockDim.x + t, L, step):
            k = _slot(numba.float64(x[n * L + i]), row, nb, lo[e], hi[e], first[e], scale[e])
            if use_shared:
                cuda.atomic.add(tab, k, numba.uint32(1))
            elif k <= nb:
                cuda.atomic.add(out, (n, k), numba.uint64(1))
        if use_shared:
            cuda.syncthreads()
            for k in range(t, nb + 1, cuda.blockDim.x):
                c = tab[k]
                if c:
                    cuda.atomic.add(out, (n, k), numba.uint64(c))
            cuda.syncthreads()


def bin_counts_segments(x, nseg, edges, lo, hi, first, scale):
    """:func:`bin_counts` of each image of a flat device stack in one launch: ``edges`` is
    ``(nseg, bins + 1)`` (or ``(1, bins + 1)``, shared), ``lo`` ... ``scale`` one value per row.
    Returns ``(nseg, bins + 1)`` int64 (host), the last column the NaN counts."""
    L = x.size // nseg
    edges = np.ascontiguousarray(np.atleast_2d(edges), np.float64)
    nb = edges.shape[1] - 1
    args = [cuda.to_device(np.ascontiguousarray(np.atleast_1d(a), np.float64))
            for a in (lo, hi, first, scale)]
    out = zeros((nseg, nb + 1), np.uint64)
    _, grid = _seg_grid(L, nseg)
    _bins_segments[grid, TPB](x, L, cuda.to_device(edges), *args, nb + 2 <= SHARED_BINS, out)
    return out.copy_to_host().astype(np.int64)


@cuda.jit
def _counts_segments(x, L, first, vmin, off, out):
    # out[off[n] + v - vmin[n]] += 1 for each value v of segment first + n
    nseg = off.shape[0] - 1
    step = cuda.gridDim.x * cuda.blockDim.x
    for n in range(cuda.blockIdx.y, nseg, cuda.gridDim.y):
        base = (first + n) * L
        for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, L, step):
            cuda.atomic.add(out, off[n] + numba.int64(x[base + i]) - vmin[n], numba.uint32(1))


#: entries of the count table of one :func:`value_counts_segments` launch (uint32: 256 MiB)
MAX_TABLE = 1 << 26


def value_counts_segments(x, nseg, vmin, vmax):
    """For each image ``n`` of a flat integer device stack, the counts (int64, host) of each value
    from ``vmin[n]`` to ``vmax[n]`` (its extremes): a list of ``nseg`` arrays. Images are counted
    in as few launches as keep the table under :data:`MAX_TABLE` entries."""
    L = x.size // nseg
    vmin = np.asarray(vmin, np.int64)
    spans = np.asarray(vmax, np.int64) - vmin + 1
    result = []
    s0 = 0
    while s0 < nseg:
        s1 = s0 + 1
        total = int(spans[s0])
        while s1 < nseg and total + spans[s1] <= MAX_TABLE:
            total += int(spans[s1])
            s1 += 1
        off = np.zeros(s1 - s0 + 1, np.int64)
        np.cumsum(spans[s0:s1], out=off[1:])
        out = zeros(total, np.uint32)
        _, grid = _seg_grid(L, s1 - s0)
        _counts_segments[grid, TPB](x, L, s0, cuda.to_device(vmin[s0:s1]), cuda.to_device(off),
                                    out)
        h = out.copy_to_host().astype(np.int64)
        result.extend(h[off[k]:off[k + 1]] for k in range(s1 - s0))
        s0 = s1
    return result


# ---------------------------------------------------------------------------------- moments

@cuda.jit
def _moment_blocks(x, mask, use_mask, block, L, nbper, st):
    """One CUDA block per data block of ``block`` pixels: shifted float64 sums around the block's
    first pixel (the CPU body's "shifted data" algorithm), reduced in shared memory. ``x`` holds
    segments (images) of ``L`` pixels, each cut into ``nbper`` data blocks from its start."""
    s1_s = cuda.shared.array(TPB, numba.float64)
    s2_s = cuda.shared.array(TPB, numba.float64)
    c_s = cuda.shared.array(TPB, numba.float64)
    t = cuda.threadIdx.x
    nblocks = st.shape[0]
    for b in range(cuda.blockIdx.x, nblocks, cuda.gridDim.x):
        seg = b // nbper
        start = seg * L + (b - seg * nbper) * block
        stop = min(seg * L + L, start + block)
        K = numba.float64(x[start])
        s1 = 0.0
        s2 = 0.0
        cnt = 0.0
        for i in range(start + t, stop, TPB):
            m = numba.float64(mask[i]) if use_mask else 1.0
            # a masked-out pixel is multiplied by 0, so a NaN or inf there still poisons s1
            d = (numba.float64(x[i]) - K) * m
            s1 += d
            s2 += d * d
            cnt += m
        s1_s[t] = s1
        s2_s[t] = s2
        c_s[t] = cnt
        cuda.syncthreads()
        s = TPB // 2
        while s > 0:
            if t < s:
                s1_s[t] += s1_s[t + s]
                s2_s[t] += s2_s[t + s]
                c_s[t] += c_s[t + s]
            cuda.syncthreads()
            s //= 2
        if t == 0:
            c = c_s[0]
            S1 = s1_s[0]
            st[b, 0] = c
            if c > 0:
                st[b, 1] = K + S1 / c
                m2 = s2_s[0] - S1 * S1 / c
                st[b, 2] = 0.0 if m2 < 0 else m2  # rounding only; a NaN stays NaN
            else:
                st[b, 1] = 0.0
                st[b, 2] = S1 * 0.0
        cuda.syncthreads()  # the shared arrays are reused by the next data block


@njit(cache=True)
def _merge(st):
    # Chan, Golub & LeVeque's pairwise update, block by block, as the CPU body
    out = np.zeros(3, np.float64)
    poison = 0.0
    for b in range(st.shape[0]):
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
    return out


def moments(x, mask, block, nthreads=1):
    """``[count, mean, m2]`` (float64, host) of ``x`` (masked pixels only with a mask): float64
    block sums on the device, blocks merged on the host in order."""
    m, use_mask = _mask_arg(x, mask)
    nblocks = (x.size + block - 1) // block
    st = cuda.device_array((nblocks, 3), np.float64)
    _moment_blocks[min(nblocks, MAX_BLOCKS), TPB](x, m, use_mask, int(block), x.size, nblocks, st)
    return _merge(st.copy_to_host())


def moments_segments(x, nseg, block):
    """:func:`moments` of each of the ``nseg`` images of a flat device stack, ``(nseg, 3)`` (host):
    one launch; each image is cut into data blocks and merged exactly as :func:`moments` does for
    it alone, so the results are bit for bit the single-image ones."""
    L = x.size // nseg
    nbper = (L + block - 1) // block
    st = cuda.device_array((nseg * nbper, 3), np.float64)
    _moment_blocks[min(nseg * nbper, 64 * MAX_BLOCKS), TPB](x, x, False, int(block), L, nbper, st)
    return _merge_segments(st.copy_to_host(), nbper)


@njit(cache=True)
def _merge_segments(st, nbper):
    # _merge of each segment's rows (a loop in compiled code: 10 000 images cost no Python calls)
    nseg = st.shape[0] // nbper
    out = np.empty((nseg, 3), np.float64)
    for n in range(nseg):
        out[n] = _merge(st[n * nbper:(n + 1) * nbper])
    return out


# ---------------------------------------------------------------------------------- KDE

def _is_host(x):
    return isinstance(x, np.ndarray)


@cuda.jit
def _linear_bin(x, w, weighted, lo, dx, last, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        t = (numba.float64(x[i]) - lo) / dx
        j = numba.int64(math.floor(t))
        if j < 0:
            j = 0
        elif j > last - 1:
            j = last - 1
        f = t - j
        wi = w[i] if weighted else 1.0
        cuda.atomic.add(out, j, wi * (1.0 - f))
        cuda.atomic.add(out, j + 1, wi * f)


def linear_bin(x, w, lo, dx, ngrid, nchunks=1):
    """Linear binning onto ``lo + k * dx`` (float64, host), as the CPU body: a device array ``x``
    is scattered with atomics; host values (an integer image's distinct values and their counts)
    go through the CPU body."""
    if _is_host(x):
        return _cpu.linear_bin(x, w, lo, dx, ngrid, 1)
    weighted = w.size > 0
    d_w = cuda.to_device(np.ascontiguousarray(w)) if weighted else x
    out = cuda.to_device(np.zeros(ngrid, np.float64))
    _linear_bin[blocks_1d(x.size), TPB](x, d_w, weighted, float(lo), float(dx), int(ngrid - 1),
                                        out)
    return out.copy_to_host()


@cuda.jit
def _gauss_scatter(x, w, weighted, lo, dx, ngrid, inv, cutoff, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = numba.float64(x[i])
        k0 = max(0, numba.int64(math.ceil((v - cutoff - lo) / dx)))
        k1 = min(ngrid - 1, numba.int64(math.floor((v + cutoff - lo) / dx)))
        wi = w[i] if weighted else 1.0
        for k in range(k0, k1 + 1):
            z = (lo + k * dx - v) * inv
            cuda.atomic.add(out, k, wi * math.exp(-0.5 * z * z))


def gauss_scatter(x, w, lo, dx, ngrid, bw, cutoff, nchunks=1):
    """Exact sum of Gaussians at the grid points within ``cutoff`` of each value (float64, host),
    as the CPU body; host values go through the CPU body."""
    if _is_host(x):
        return _cpu.gauss_scatter(x, w, lo, dx, ngrid, bw, cutoff, 1)
    weighted = w.size > 0
    d_w = cuda.to_device(np.ascontiguousarray(w)) if weighted else x
    out = cuda.to_device(np.zeros(ngrid, np.float64))
    _gauss_scatter[blocks_1d(x.size), TPB](x, d_w, weighted, float(lo), float(dx), int(ngrid),
                                           1.0 / bw, float(cutoff), out)
    return out.copy_to_host()


@cuda.jit
def _convolve_same(a, kern, out):
    n = a.size
    m = kern.size
    h = m // 2
    for k in range(cuda.grid(1), n, cuda.gridsize(1)):
        j0 = max(0, h - k)
        j1 = min(m, n + h - k)
        s = 0.0
        for j in range(j0, j1):
            s += a[k + j - h] * kern[j]
        out[k] = s


def convolve_same(a, kern, nthreads=1):
    """``out[k] = sum_j a[k + j - h] * kern[j]`` (zeros outside ``a``), one thread per output point;
    ``a`` and ``kern`` are the KDE's grid-sized host arrays (copied in, the result copied back)."""
    d_a = cuda.to_device(np.ascontiguousarray(a, np.float64))
    out = cuda.device_array(a.size, np.float64)
    _convolve_same[blocks_1d(a.size), TPB](d_a, cuda.to_device(np.ascontiguousarray(kern)), out)
    return out.copy_to_host()
