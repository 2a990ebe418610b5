"""numba.cuda bodies of the intensity kernels: the output pass and order statistics.

- :func:`affine` has the name and arguments of ``medfeat._kernels.cython._intensity_cy.affine``, on
  flat device arrays; :func:`affine_segments` is its batch twin, one launch over a stack of
  images with one ``(shift, scale)`` per image.
- :func:`order_stats` replaces the CPU's bucketed selection (``bucket_select``, which copies the
  pixels of a few buckets to the host's memory): a radix select on the device, exact for every
  dtype. Each value is mapped to an unsigned
  key whose order is the values' order (floats: the sign bit flipped for positives, every bit for
  negatives; int16: the sign bit flipped), then one digit of 8 bits is decided per pass, from the
  top: a pass counts, in a privatised shared-memory histogram per block, the digit of the keys
  that share the prefix found so far, and a small kernel walks the 256 counts to the digit holding
  the wanted rank. Nothing returns to the host between passes (4 passes for float32, 8 for
  float64, 1-2 for integers); the keys found come back at the end, a few numbers. Several ranks,
  and several images of a stack (segments), are selected in the same launches.

The statistics (moments, value ranges, counts) come from the density family
(``medfeat._kernels.numba_cuda.density``).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from ._common import MAX_BLOCKS, TPB, blocks_1d, zeros

#: bits decided per radix-select pass (256 counters per rank and block)
DIGIT = 8
RADIX = 1 << DIGIT
#: ranks selected together (a pair of percentiles needs at most four order statistics)
MAX_RANKS = 4
#: how an element's bits become an ordered unsigned key
KEY_UNSIGNED, KEY_SIGNED, KEY_FLOAT = 0, 1, 2


# ------------------------------------------------------------------------------------ output pass

@cuda.jit(device=True)
def _affine_one(v, shift, scale, clip, use32):
    if use32:
        r = (numba.float32(v) - numba.float32(shift)) * numba.float32(scale)
        if clip:
            r = numba.float32(0.0) if r < 0.0 else r
            r = numba.float32(1.0) if r > 1.0 else r
        return r
    w = (numba.float64(v) - shift) * scale
    if clip:
        w = 0.0 if w < 0.0 else w
        w = 1.0 if w > 1.0 else w
    return numba.float32(w)


@cuda.jit
def _affine(x, shift, scale, clip, use32, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = _affine_one(x[i], shift, scale, clip, use32)


def affine(x, shift, scale, clip, single, out, nchunks=1):
    """``out = float32((x - shift) * scale)``, clipped to [0, 1] when ``clip``; float32 arithmetic
    with ``single`` for inputs narrower than float64 (see the CPU body). A grid-stride map."""
    use32 = bool(single) and x.dtype.itemsize < 8
    _affine[blocks_1d(x.size), TPB](x, float(shift), float(scale), bool(clip), use32, out)
    return out


@cuda.jit
def _affine_seg(x, L, shift, scale, clip, use32, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n = i // L
        out[i] = _affine_one(x[i], shift[n], scale[n], clip, use32[n] != 0)


def affine_segments(x, L, shift, scale, clip, single, out):
    """:func:`affine` of a flat device stack of images of ``L`` pixels each, image ``n`` with
    ``shift[n]``, ``scale[n]`` and ``single[n]`` (host arrays), in one launch."""
    use32 = np.asarray(single, bool) & (x.dtype.itemsize < 8)
    args = [cuda.to_device(np.ascontiguousarray(a, t))
            for a, t in ((shift, np.float64), (scale, np.float64), (use32, np.uint8))]
    nb = max(1, min(x.size // (TPB * 8) + 1, 64 * MAX_BLOCKS))
    _affine_seg[nb, TPB](x, int(L), args[0], args[1], bool(clip), args[2], out)
    return out


# ---------------------------------------------------------------------------------- radix select

def key_view(x):
    """``(unsigned view, key kind, sign bit)`` of a flat device array of any supported dtype."""
    dt = np.dtype(x.dtype)
    u = np.dtype(f"u{dt.itemsize}")
    kind = KEY_FLOAT if dt.kind == "f" else KEY_SIGNED if dt.kind == "i" else KEY_UNSIGNED
    return (x if dt == u else x.view(u)), kind, np.uint64(1 << (8 * dt.itemsize - 1))


@cuda.jit(device=True)
def _key(b, kind, top):
    """The ordered key of the element whose bits are ``b`` (a uint64; ``top`` = its sign bit)."""
    if kind == KEY_UNSIGNED:
        return b
    if kind == KEY_SIGNED:
        return b ^ top
    if b & top:
        return ~b & (top | (top - numba.uint64(1)))
    return b | top


@cuda.jit
def _radix_hist(u, L, mask, use_mask, kind, top, nranks, shift, prefix, hist):
    # hist[n, r, d] += keys of segment n whose bits above `shift + DIGIT` equal prefix[n, r] and
    # whose digit at `shift` is d
    tab = cuda.shared.array(MAX_RANKS * RADIX, numba.uint32)
    pre = cuda.local.array(MAX_RANKS, numba.uint64)
    t = cuda.threadIdx.x
    nseg = hist.shape[0]
    nslot = nranks * RADIX
    step = cuda.gridDim.x * cuda.blockDim.x
    for n in range(cuda.blockIdx.y, nseg, cuda.gridDim.y):
        for r in range(nranks):
            pre[r] = prefix[n, r]
        for k in range(t, nslot, cuda.blockDim.x):
            tab[k] = 0
        cuda.syncthreads()
        base = n * L
        for i in range(cuda.blockIdx.x * cuda.blockDim.x + t, L, step):
            if use_mask and mask[i] == 0:
                continue
            key = _key(numba.uint64(u[base + i]), kind, top)
            low = key >> shift
            d = numba.int64(low & numba.uint64(RADIX - 1))
            high = low >> numba.uint64(DIGIT)  # two shifts: never one by the key's full width
            for r in range(nranks):
                if high == pre[r]:
                    cuda.atomic.add(tab, r * RADIX + d, numba.uint32(1))
        cuda.syncthreads()
        for k in range(t, nslot, cuda.blockDim.x):
            c = tab[k]
            if c:
                cuda.atomic.add(hist, (n, k // RADIX, k % RADIX), c)
        cuda.syncthreads()


@cuda.jit
def _radix_pick(hist, nranks, rank, prefix):
    # one thread per (segment, rank): the digit whose cumulative count passes the remaining rank;
    # the counts are zeroed for the next pass
    nseg = hist.shape[0]
    for idx in range(cuda.grid(1), nseg * nranks, cuda.gridsize(1)):
        n = idx // nranks
        r = idx - n * nranks
        want = rank[n, r]
        cum = numba.int64(0)
        digit = numba.int64(RADIX - 1)
        found = False
        for d in range(RADIX):
            c = numba.int64(hist[n, r, d])
            hist[n, r, d] = 0
            if not found:
                if want < cum + c:
                    digit = d
                    found = True
                else:
                    cum += c
        rank[n, r] = want - cum
        prefix[n, r] = (prefix[n, r] << numba.uint64(DIGIT)) | numba.uint64(digit)


@cuda.jit
def _count_nonzero(m, out):
    c = numba.uint64(0)
    for i in range(cuda.grid(1), m.size, cuda.gridsize(1)):
        if m[i] != 0:
            c += numba.uint64(1)
    if c:
        cuda.atomic.add(out, 0, c)


def count_selected(mask):
    """Number of non-zero entries of a flat device mask (what :func:`order_stats` counts)."""
    out = zeros(1, np.uint64)
    _count_nonzero[blocks_1d(mask.size), TPB](mask, out)
    return int(out.copy_to_host()[0])


def _decode(keys, dtype):
    """Host: ordered keys back to values of ``dtype`` (as float64)."""
    dt = np.dtype(dtype)
    bits = 8 * dt.itemsize
    top = np.uint64(1) << np.uint64(bits - 1)
    full = np.uint64((1 << bits) - 1)
    keys = keys.astype(np.uint64)
    if dt.kind == "f":
        raw = np.where(keys & top, keys ^ top, ~keys & full)
    elif dt.kind == "i":
        raw = keys ^ top
    else:
        raw = keys
    return raw.astype(f"u{dt.itemsize}").view(dt).astype(np.float64)


def order_stats(x, mask, ranks, nseg=1):
    """Order statistics of a flat device array, exactly, without sorting or copying it.

    Parameters
    ----------
    x : device array, 1-D
        ``nseg`` segments (images) of ``x.size // nseg`` values each, any supported dtype; NaN-free
        (the caller checks).
    mask : device array of uint8 or an empty host array
        Only elements with a non-zero mask count (one segment only); empty: every element.
    ranks : array_like of int, shape (K,) or (nseg, K)
        0-based positions in the ascending order of each segment's (selected) values, K <= 4; the
        same for every segment when 1-D.

    Returns
    -------
    ndarray of float64, shape (nseg, K)
        The values at those positions.
    """
    ranks = np.asarray(ranks, np.int64)
    if ranks.ndim == 1:
        ranks = np.broadcast_to(ranks, (nseg, ranks.size))
    K = ranks.shape[1]
    if not 1 <= K <= MAX_RANKS:
        raise ValueError(f"order_stats selects 1 to {MAX_RANKS} ranks at once, got {K}")
    L = x.size // nseg
    u, kind, top = key_view(x)
    use_mask = mask is not None and mask.size > 0
    if use_mask and nseg != 1:
        raise ValueError("a mask is supported for a single segment only")
    m = mask if use_mask else u
    d_rank = cuda.to_device(np.ascontiguousarray(ranks))
    prefix = zeros((nseg, K), np.uint64)
    hist = zeros((nseg, K, RADIX), np.uint32)
    # blocks per segment: each thread counts at least 8 values, or the flushes of the per-block
    # tables (K * 256 entries) would cost more than the counting
    bx = max(1, min(MAX_BLOCKS, -(-L // (TPB * 8))))
    grid = (bx, min(nseg, 65535))
    nbits = 8 * x.dtype.itemsize
    for shift in range(nbits - DIGIT, -1, -DIGIT):
        _radix_hist[grid, TPB](u, L, m, use_mask, kind, top, K, np.uint64(shift), prefix, hist)
        _radix_pick[blocks_1d(nseg * K), TPB](hist, K, d_rank, prefix)
    return _decode(prefix.copy_to_host(), x.dtype)
