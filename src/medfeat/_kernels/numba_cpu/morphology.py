"""Numba CPU bodies of the morphology kernels. Private: use :mod:`medfeat.kernels.morphology`.

Every array is in the canonical 3-D form ``(planes, rows, columns)`` prepared by the public module
(2-D images arrive as one plane; inputs arrive as read-only views), so each kernel compiles once per
dtype. Borders are handled with index maps computed in Python: ``map[j]`` is the source index of
extended position ``j``, or -1 where the border value ``cval`` applies. Two kernels (the
family's only CPU implementation):

- :func:`minmax_runs`: min/max over a footprint cut into horizontal runs, in one pass over bands of
  output rows: each band computes the running min/max rows it needs (repeated doubling, or
  van Herk / Gil-Werman for very long runs) and combines them while they are in cache;
- :func:`vrun`: running min/max of length ``L`` along the middle axis of an ``(A, N, B)`` array by
  van Herk / Gil-Werman, vectorised across the rows (tall boxes).

Inner loops index views (``a[off:]``) rather than ``a[x + off]``: Numba wraps negative indices, and
with a run-time offset that check stops LLVM from vectorising the loop.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .._common import boundary_index

# Windows at least this long use van Herk / Gil-Werman along rows; shorter ones doubling passes.
# van Herk's two scans along a row are sequential (about 2 cycles a pixel), each doubling pass is
# vectorised (16-64 pixels an instruction): measured on 2048² uint8/float32, doubling was >10x
# faster at L = 64 and still faster at L = 1024, so van Herk only guards the O(1) bound for huge
# windows.
VH_ROW = 4096
# Work is split into at most this many chunks, each allocating its scratch buffers once (a band
# buffer can be a few MB): enough to balance two to a dozen threads, few enough that the
# allocations do not count.
CHUNKS = 32


_boundary = njit(cache=True, nogil=True, inline="always", error_model="numpy")(boundary_index)


@njit(cache=True, nogil=True, error_model="numpy")
def axis_map(n, lo, hi, mode):
    """``map[j - lo]`` for ``lo <= j < hi``: the source index of extended position ``j`` along an
    axis of length ``n`` (-1 where the constant border applies), ``mode`` numbered as in
    ``medfeat._kernels._common.MODES`` (SciPy's boundary extension, shared with the edge kernels)."""
    out = np.empty(hi - lo, np.int64)
    for k in range(hi - lo):
        out[k] = _boundary(lo + k, n, mode)
    return out


@njit(cache=True, nogil=True)
def _op_into(out, u, v, n, is_max):
    """out[x] = op(u[x], v[x]) for x < n (``out`` must be neither ``u`` nor ``v``: see
    :func:`_op_acc`)."""
    if is_max:
        for x in range(n):
            a = u[x]
            b = v[x]
            out[x] = b if b > a else a
    else:
        for x in range(n):
            a = u[x]
            b = v[x]
            out[x] = b if b < a else a


@njit(cache=True, nogil=True)
def _op_acc(acc, v, n, is_max):
    """acc[x] = op(acc[x], v[x]) for x < n. Not ``_op_into(acc, acc, v)``: LLVM's overlap check
    between the output and an input that is the same array fails and it runs the scalar loop."""
    if is_max:
        for x in range(n):
            a = acc[x]
            b = v[x]
            acc[x] = b if b > a else a
    else:
        for x in range(n):
            a = acc[x]
            b = v[x]
            acc[x] = b if b < a else a


@njit(cache=True, nogil=True)
def _copy(out, src, n):
    for x in range(n):
        out[x] = src[x]


@njit(cache=True, nogil=True)
def _scan_forward(out, src, n, is_max):
    """Running op from the start: out[j] = op(src[0..j])."""
    m = src[0]
    out[0] = m
    if is_max:
        for j in range(1, n):
            v = src[j]
            m = v if v > m else m
            out[j] = m
    else:
        for j in range(1, n):
            v = src[j]
            m = v if v < m else m
            out[j] = m


@njit(cache=True, nogil=True)
def _scan_backward(out, src, n, is_max):
    """Running op from the end: out[j] = op(src[j..n-1])."""
    m = src[n - 1]
    out[n - 1] = m
    if is_max:
        for j in range(n - 2, -1, -1):
            v = src[j]
            m = v if v > m else m
            out[j] = m
    else:
        for j in range(n - 2, -1, -1):
            v = src[j]
            m = v if v < m else m
            out[j] = m


@njit(cache=True, nogil=True)
def _fill_ext(src, xmap, x0, cval, ext):
    """The extended row: ``src`` starts at ``ext[x0]``, the borders come through ``xmap``."""
    nx = src.shape[0]
    ne = xmap.shape[0]
    jlo = max(x0, 0)
    jhi = min(x0 + nx, ne)
    for j in range(jlo):
        s = xmap[j]
        ext[j] = src[s] if s >= 0 else cval
    if jhi > jlo:
        _copy(ext[jlo:], src[jlo - x0:], jhi - jlo)
    for j in range(max(jhi, 0), ne):
        s = xmap[j]
        ext[j] = src[s] if s >= 0 else cval


@njit(cache=True, nogil=True)
def _row_run(ext, L, nout, is_max, a, b, orow):
    """orow[x] = op(ext[x:x + L]) for x < nout; ``a`` and ``b`` are scratch rows like ``ext``."""
    ne = nout + L - 1
    if L == 1:
        _copy(orow, ext, nout)
    elif L >= VH_ROW:
        # van Herk / Gil-Werman: op over each block of L from its start (a) and to its end (b);
        # a window of length L spans at most two blocks, so op(b[x], a[x + L - 1]) is its value.
        for start in range(0, ne, L):
            stop = min(start + L, ne)
            _scan_forward(a[start:], ext[start:], stop - start, is_max)
            _scan_backward(b[start:], ext[start:], stop - start, is_max)
        _op_into(orow, b, a[L - 1:], nout, is_max)
    else:
        # Doubling: after the pass with shift p, the buffer holds op over windows of length 2p;
        # two overlapping windows of the largest power of two p <= L then cover any window.
        n = ne - 1
        _op_into(a, ext, ext[1:], n, is_max)
        p = 2
        cur_a = True
        while 2 * p <= L:
            n -= p
            if cur_a:
                _op_into(b, a, a[p:], n, is_max)
            else:
                _op_into(a, b, b[p:], n, is_max)
            cur_a = not cur_a
            p *= 2
        if cur_a:
            _op_into(orow, a, a[L - p:], nout, is_max)
        else:
            _op_into(orow, b, b[L - p:], nout, is_max)


@njit(cache=True, nogil=True)
def _vrun_blocks(image, amap, cval, L, is_max, out, b0, b1):
    """Blocks b0..b1 of :func:`vrun` (flattened over the outer axis and blocks of L output rows).

    van Herk / Gil-Werman, vectorised across the rows: for the block starting at output row
    ``start``, ``h[t]`` is op over rows ``start + t .. start + L - 1`` and ``g[t]`` op over rows
    ``start + L .. start + L + t``; the window starting at row ``start + t`` is then
    ``op(h[t], g[t - 1])`` (just ``h[0]`` for t = 0).
    """
    ne = amap.shape[0]
    nout = out.shape[1]
    nb = image.shape[2]
    nblocks = (nout + L - 1) // L
    h = np.empty((L, nb), image.dtype)
    g = np.empty((L, nb), image.dtype)
    crow = np.empty(nb, image.dtype)
    for x in range(nb):
        crow[x] = cval
    for blk in range(b0, b1):
        ai = blk // nblocks
        start = (blk - ai * nblocks) * L
        stop = min(start + L, ne)
        for j in range(stop - 1, start - 1, -1):
            s = amap[j]
            t = j - start
            # separate calls for image rows and the cval row: a read-only view and a scratch row
            # have different Numba types
            if j == stop - 1:
                if s >= 0:
                    _copy(h[t], image[ai, s], nb)
                else:
                    _copy(h[t], crow, nb)
            elif s >= 0:
                _op_into(h[t], h[t + 1], image[ai, s], nb, is_max)
            else:
                _op_into(h[t], h[t + 1], crow, nb, is_max)
        gstop = min(start + 2 * L - 1, ne)
        for j in range(start + L, gstop):
            s = amap[j]
            t = j - start - L
            if t == 0:
                if s >= 0:
                    _copy(g[0], image[ai, s], nb)
                else:
                    _copy(g[0], crow, nb)
            elif s >= 0:
                _op_into(g[t], g[t - 1], image[ai, s], nb, is_max)
            else:
                _op_into(g[t], g[t - 1], crow, nb, is_max)
        for t in range(min(L, nout - start)):
            if t == 0:
                _copy(out[ai, start], h[0], nb)
            else:
                _op_into(out[ai, start + t], h[t], g[t - 1], nb, is_max)


@njit(parallel=True, cache=True, nogil=True)
def _vrun(image, amap, cval, L, is_max, out):
    """Running min (or max) of length ``L`` along the middle axis of an ``(A, N, B)`` array, by
    van Herk / Gil-Werman (for long windows; short ones go through :func:`minmax_runs`).

    ``out[a, i, :] = op over k < L of src[a, amap[i + k], :]`` (``cval`` where the map is -1).
    """
    nout = out.shape[1]
    ntotal = image.shape[0] * ((nout + L - 1) // L)
    nchunks = min(ntotal, CHUNKS)
    for c in prange(nchunks):
        _vrun_blocks(image, amap, cval, L, is_max, out,
                     c * ntotal // nchunks, (c + 1) * ntotal // nchunks)


@njit(cache=True, nogil=True)
def _runs_bands(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, band, out,
                t0, t1):
    """Bands t0..t1 (flattened over planes and bands of ``band`` output rows) of
    :func:`minmax_runs`: the run rows a band needs are computed into a band-local buffer, then
    combined, so the whole operation is one pass over the image that stays in cache."""
    nz, ny, nx = out.shape
    ne = xmap.shape[0]
    ky = ymap.shape[0] - ny + 1
    npairs = pairs.shape[0]
    nruns = runs.shape[0]
    nbands = (ny + band - 1) // band
    hb = np.empty((npairs, band + ky - 1, ne), image.dtype)
    ext = np.empty(ne, image.dtype)
    a = np.empty(ne, image.dtype)
    b = np.empty(ne, image.dtype)
    for t in range(t0, t1):
        z = t // nbands
        y0 = (t - z * nbands) * band
        y1 = min(y0 + band, ny)
        for j in range(y1 - y0 + ky - 1):
            ys = ymap[y0 + j]
            last_dz = -1
            have_ext = False
            for p in range(npairs):
                dz = pairs[p, 0]
                L = lengths[pairs[p, 1]]
                nout = ne - L + 1
                zs = zmap[z + dz]
                hrow = hb[p, j]
                if zs < 0 or ys < 0:
                    for x in range(nout):
                        hrow[x] = cval
                    continue
                if dz != last_dz or not have_ext:
                    _fill_ext(image[zs, ys], xmap, x0, cval, ext)
                    last_dz = dz
                    have_ext = True
                _row_run(ext, L, nout, is_max, a, b, hrow)
        for y in range(y0, y1):
            orow = out[z, y]
            j = y - y0
            _copy(orow, hb[runs[0, 0], j + runs[0, 1]][runs[0, 2]:], nx)
            for k in range(1, nruns):
                _op_acc(orow, hb[runs[k, 0], j + runs[k, 1]][runs[k, 2]:], nx, is_max)


@njit(parallel=True, cache=True, nogil=True)
def _minmax_runs(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, band, out):
    """The whole min (or max) over a footprint cut into runs, in one parallel pass.

    ``pairs[p] = (dz, li)``: run rows of length ``lengths[li]`` from plane offset ``dz`` (row
    ``(z, y)``'s value at x is op over ``ext[x:x + L]`` of source row ``(zmap[z + dz], ymap[y])``
    extended through ``xmap``, which starts at ``ext[x0]``; computed for the rows a band needs);
    ``runs[k] = (p, dy, xs)``: output
    row ``(z, y)`` combines row ``y + dy`` of pair ``p``'s run rows from column ``xs`` on.
    """
    nbands = (out.shape[1] + band - 1) // band
    ntotal = out.shape[0] * nbands
    nchunks = min(ntotal, CHUNKS)
    for c in prange(nchunks):
        _runs_bands(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, band, out,
                    c * ntotal // nchunks, (c + 1) * ntotal // nchunks)


def _with_threads(nthreads, kernel, *args):
    """Run ``kernel`` on ``nthreads`` threads (0: Numba's default), restoring the setting after."""
    if nthreads <= 0:
        return kernel(*args)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(nthreads, numba.config.NUMBA_NUM_THREADS))
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(previous)


def minmax_runs(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, band, out,
                nthreads=0):
    """:func:`_minmax_runs` on ``nthreads`` threads (0: Numba's default)."""
    _with_threads(nthreads, _minmax_runs, image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs,
                  is_max, band, out)


def vrun(image, amap, cval, L, is_max, out, nthreads=0):
    """:func:`_vrun` on ``nthreads`` threads (0: Numba's default)."""
    _with_threads(nthreads, _vrun, image, amap, cval, L, is_max, out)
