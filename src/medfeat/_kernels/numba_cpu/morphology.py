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
# Scratch rows start on this many bytes (a cache line, and an AVX-512 vector): a vector store
# that straddles two cache lines costs about twice an aligned one, and the run passes are
# mostly stores to scratch rows.
ALIGN = 64
# Scratch rows are this many bytes apart modulo a page (4096): a pass that reads one scratch row
# while storing to another whose address is slightly above it modulo 4096 makes the CPU's
# memory disambiguation (which compares the low 12 address bits) stall the loads on the pending
# stores ("4K aliasing"); half a page apart, both directions of a ping-pong are clear of it.
SKEW = 2048


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
def _scratch(nrows, n, like):
    """``(nrows, >= n)`` uninitialised scratch in ``like``'s dtype, every row starting on an
    :data:`ALIGN`-byte boundary, consecutive rows :data:`SKEW` bytes apart modulo 4096."""
    item = like.itemsize
    per = ALIGN // item
    nbytes = (n * item + ALIGN - 1) // ALIGN * ALIGN
    nbytes += (SKEW - nbytes) % 4096
    stride = nbytes // item
    buf = np.empty(nrows * stride + per, like.dtype)
    off = (-buf.ctypes.data) % ALIGN // like.itemsize
    return buf[off:off + nrows * stride].reshape((nrows, stride))


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
def _op3_into(out, u, v, w, n, is_max):
    """out[x] = op(u[x], v[x], w[x]) for x < n: one store for two operations (the passes are
    bound by their stores; ``out`` must be none of the inputs, as in :func:`_op_into`)."""
    if is_max:
        for x in range(n):
            a = u[x]
            b = v[x]
            c = w[x]
            a = b if b > a else a
            out[x] = c if c > a else a
    else:
        for x in range(n):
            a = u[x]
            b = v[x]
            c = w[x]
            a = b if b < a else a
            out[x] = c if c < a else a


@njit(cache=True, nogil=True)
def _op3_acc(acc, v, w, n, is_max):
    """acc[x] = op(acc[x], v[x], w[x]) for x < n (see :func:`_op_acc`)."""
    if is_max:
        for x in range(n):
            a = acc[x]
            b = v[x]
            c = w[x]
            a = b if b > a else a
            acc[x] = c if c > a else a
    else:
        for x in range(n):
            a = acc[x]
            b = v[x]
            c = w[x]
            a = b if b < a else a
            acc[x] = c if c < a else a


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
def _row_vh(ext, L, nout, is_max, a, b, orow):
    """orow[x] = op(ext[x:x + L]) for x < nout by van Herk / Gil-Werman; ``a`` and ``b`` are
    scratch rows like ``ext``.

    op over each block of L from its start (a) and to its end (b); a window of length L spans at
    most two blocks, so op(b[x], a[x + L - 1]) is its value.
    """
    ne = nout + L - 1
    for start in range(0, ne, L):
        stop = min(start + L, ne)
        _scan_forward(a[start:], ext[start:], stop - start, is_max)
        _scan_backward(b[start:], ext[start:], stop - start, is_max)
    _op_into(orow, b, a[L - 1:], nout, is_max)


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
def _count_nan(src):
    """How many NaNs ``src`` holds (none for integers: ``v != v`` is then always False)."""
    c = 0
    for x in range(src.shape[0]):
        v = src[x]
        c += v != v
    return c


@njit(cache=True, nogil=True)
def _ext_at(src, xmap, j, cval):
    s = xmap[j]
    return src[s] if s >= 0 else cval


@njit(cache=True, nogil=True)
def _ext_run(out, src, xmap, x0, cval, k, is_max):
    """out[j] = op(ext[j:j + k]) (k = 2 or 3) for the extended row ``ext`` of ``src`` (see
    :func:`_fill_ext`), read straight from ``src`` where the window lies in it: short runs, or
    the first doubling level, without a copy of the row."""
    nx = src.shape[0]
    n = xmap.shape[0] - k + 1
    jlo = min(max(x0, 0), n)
    jhi = max(min(x0 + nx - k + 1, n), jlo)
    for part in range(2):
        lo = 0 if part == 0 else jhi
        hi = jlo if part == 0 else n
        for j in range(lo, hi):
            m = _ext_at(src, xmap, j, cval)
            for i in range(1, k):
                v = _ext_at(src, xmap, j + i, cval)
                if is_max:
                    m = v if v > m else m
                else:
                    m = v if v < m else m
            out[j] = m
    if jhi > jlo:
        s0 = jlo - x0
        if k == 2:
            _op_into(out[jlo:], src[s0:], src[s0 + 1:], jhi - jlo, is_max)
        else:
            _op3_into(out[jlo:], src[s0:], src[s0 + 1:], src[s0 + 2:], jhi - jlo, is_max)


@njit(cache=True, nogil=True)
def _run_rows(image, zmap, ymap, xmap, x0, cval, lengths, pairs, z, j, is_max, ring, slot,
              ext, a, b, off, check):
    """The run rows of extended row ``j`` of plane ``z``: ``ring[p, slot]`` for every pair ``p``;
    returns the number of NaNs in the image rows read if ``check`` (else 0).

    The pairs of one plane offset share one doubling pyramid: level ``k`` holds op over windows
    of ``2**k``, and a run of length L (pairs sorted by length) is op of two overlapping windows
    of the largest power of two ``w <= L``: ``op(lv[x], lv[x + L - w])``. Only the current level
    is kept (ping-pong between ``a`` and ``b``), so the rows stay in L1; the first level is read
    straight from the image row, and the extended row ``ext`` is only made for runs of length 1
    (the row itself) and van Herk's long runs.

    Element ``x`` of a row (``ring``, ``ext``, ``a``, ``b``) is at ``row[off + x]``. With ``off``
    chosen so that the image row's first pixel (``x0``) lands on a cache line, the passes between
    rows start at ``row[0]``, also on one, and leave ``off`` elements of garbage before ``x = 0``
    that no valid element depends on: every store of a pass is aligned.
    """
    ne = xmap.shape[0]
    npairs = pairs.shape[0]
    ys = ymap[j]
    nan = 0
    p = 0
    while p < npairs:
        dz = pairs[p, 0]
        q = p
        while q < npairs and pairs[q, 0] == dz:
            q += 1
        zs = zmap[z + dz]
        if zs < 0 or ys < 0:
            for r in range(p, q):
                row = ring[r, slot]
                for x in range(off, off + ne - lengths[pairs[r, 1]] + 1):
                    row[x] = cval
            p = q
            continue
        src = image[zs, ys]
        if check:
            # while the row is on its way into the cache for the runs below
            nan += _count_nan(src)
        w = 1
        level = 0  # 1: a, 2: b
        for r in range(p, q):
            L = lengths[pairs[r, 1]]
            row = ring[r, slot]
            n = ne - L + 1
            if L == 1:
                _fill_ext(src, xmap, x0, cval, row[off:])
                continue
            if L <= 3 and level == 0:
                _ext_run(row[off:], src, xmap, x0, cval, L, is_max)
                continue
            if L >= VH_ROW:
                # ``a`` and ``b`` are scratch from here on: longer runs come last and need no level
                _fill_ext(src, xmap, x0, cval, ext[off:])
                _row_vh(ext[off:], L, n, is_max, a[off:], b[off:], row[off:])
                continue
            while 2 * w <= L:
                m = off + ne - 2 * w + 1
                if level == 0:
                    _ext_run(a[off:], src, xmap, x0, cval, 2, is_max)
                    level = 1
                elif level == 1:
                    _op_into(b, a, a[w:], m, is_max)
                    level = 2
                else:
                    _op_into(a, b, b[w:], m, is_max)
                    level = 1
                w *= 2
            cur = a if level == 1 else b
            if w == L:
                _copy(row, cur, off + n)
            else:
                _op_into(row, cur, cur[L - w:], off + n, is_max)
        p = q
    return nan


@njit(cache=True, nogil=True)
def _run_of(ring, runs, k, y, nslots, off):
    """Run ``k``'s row for output row ``y``: its pair's run row ``y + dy`` from column ``xs`` on."""
    return ring[runs[k, 0], (y + runs[k, 1]) % nslots][off + runs[k, 2]:]


@njit(cache=True, nogil=True)
def _rows_chunk(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, vh, check, out,
                r0, r1):
    """Output rows r0..r1 (flattened over planes and rows) of :func:`_minmax_rows`; returns the
    number of NaNs in the image rows read if ``check``.

    The rows are streamed: each extended row's run rows are computed once into a ring buffer of
    the last ``ky`` (``2 ky`` for ``vh``) rows and combined while they are in cache, so a chunk
    reads its input rows once, plus a halo of ``ky - 1`` rows.
    """
    nz, ny, nx = out.shape
    ne = xmap.shape[0]
    ky = ymap.shape[0] - ny + 1
    npairs = pairs.shape[0]
    nruns = runs.shape[0]
    nslots = 2 * ky if vh else ky
    # see _run_rows: for a box's van Herk pass, whose stores go to the run rows; other footprints
    # read each run row at several shifts and keep its x = 0 on the cache line instead
    per = ALIGN // image.itemsize
    off = (-x0) % per if vh else 0
    ring = _scratch(npairs * nslots, ne + per, image).reshape((npairs, nslots, -1))
    rows = _scratch(4, ne + per, image)
    ext = rows[0]
    a = rows[1]
    b = rows[2]
    g = rows[3]
    nan = 0
    r = r0
    while r < r1:
        z = r // ny
        ya = r - z * ny
        yb = min(ny, ya + r1 - r)
        r += yb - ya
        if vh:
            # van Herk / Gil-Werman down the run rows of a box, blocks of L = ky output rows: for
            # the block at s, h[t] = op(R[s + t .. s + L - 1]) (made in place in the ring) and
            # g = op(R[s + L .. s + L + t - 1]); output row s + t is op(h[t], g).
            L = ky
            have = ya
            for s in range(ya, yb, L):
                while have < s + L:
                    nan += _run_rows(image, zmap, ymap, xmap, x0, cval, lengths, pairs, z, have,
                                     is_max, ring, have % nslots, ext, a, b, off, check)
                    have += 1
                for t in range(L - 2, -1, -1):
                    _op_acc(ring[0, (s + t) % nslots], ring[0, (s + t + 1) % nslots], off + nx,
                            is_max)
                _copy(out[z, s], ring[0, s % nslots][off:], nx)
                for t in range(1, min(L, yb - s)):
                    j = s + L + t - 1
                    nan += _run_rows(image, zmap, ymap, xmap, x0, cval, lengths, pairs, z, j,
                                     is_max, ring, j % nslots, ext, a, b, off, check)
                    have = j + 1
                    rj = ring[0, j % nslots]
                    h = ring[0, (s + t) % nslots][off:]
                    if t == 1:
                        _op_into(out[z, s + t], h, rj[off:], nx, is_max)
                    else:
                        if t == 2:
                            _op_into(g, ring[0, (j - 1) % nslots], rj, off + nx, is_max)
                        else:
                            _op_acc(g, rj, off + nx, is_max)
                        _op_into(out[z, s + t], h, g[off:], nx, is_max)
            continue
        for j in range(ya, yb + ky - 1):
            nan += _run_rows(image, zmap, ymap, xmap, x0, cval, lengths, pairs, z, j, is_max, ring,
                             j % nslots, ext, a, b, off, check)
            y = j - ky + 1
            if y < ya:
                continue
            # two operations a store (op3) while two rows are left
            orow = out[z, y]
            u = _run_of(ring, runs, 0, y, nslots, off)
            if nruns == 1:
                _copy(orow, u, nx)
                continue
            v = _run_of(ring, runs, 1, y, nslots, off)
            if nruns == 2:
                _op_into(orow, u, v, nx, is_max)
                continue
            _op3_into(orow, u, v, _run_of(ring, runs, 2, y, nslots, off), nx, is_max)
            k = 3
            while k + 1 < nruns:
                _op3_acc(orow, _run_of(ring, runs, k, y, nslots, off),
                         _run_of(ring, runs, k + 1, y, nslots, off), nx, is_max)
                k += 2
            if k < nruns:
                _op_acc(orow, _run_of(ring, runs, k, y, nslots, off), nx, is_max)
    return nan


@njit(parallel=True, cache=True, nogil=True)
def _minmax_rows(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, vh, check, out,
                 nthreads):
    """The whole min (or max) over a footprint cut into runs, in one parallel pass.

    ``pairs[p] = (dz, li)``, sorted: run rows of length ``lengths[li]`` from plane offset ``dz``
    (row ``(z, j)``'s value at x is op over ``ext[x:x + L]`` of source row ``(zmap[z + dz],
    ymap[j])`` extended through ``xmap``, which starts at ``ext[x0]``); ``runs[k] = (p, dy, xs)``:
    output row ``(z, y)`` combines row ``y + dy`` of pair ``p``'s run rows from column ``xs`` on.
    ``vh``: the footprint is a box (one pair, ``runs[k] = (0, k, 0)``), whose rows are combined by
    van Herk / Gil-Werman instead. One contiguous chunk of rows for each of the ``nthreads``
    threads, so that the halo is recomputed once per thread. Returns the number of NaNs in the
    image rows read (counting rows read twice twice) if ``check``, else 0: checking the rows on
    the way costs no extra pass over the image.
    """
    ky = ymap.shape[0] - out.shape[1] + 1
    total = out.shape[0] * out.shape[1]
    nchunks = max(1, min(nthreads, total // (4 * ky)))
    nan = 0
    for c in prange(nchunks):
        nan += _rows_chunk(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, vh,
                           check, out, c * total // nchunks, (c + 1) * total // nchunks)
    return nan


def _with_threads(nthreads, kernel, *args, pass_threads=False):
    """Run ``kernel`` on ``nthreads`` threads (0: Numba's default), restoring the setting after;
    ``pass_threads``: the thread count is also the kernel's last argument."""
    if nthreads <= 0:
        if pass_threads:
            args = (*args, numba.get_num_threads())
        return kernel(*args)
    previous = numba.get_num_threads()
    nthreads = min(nthreads, numba.config.NUMBA_NUM_THREADS)
    if pass_threads:
        args = (*args, nthreads)
    numba.set_num_threads(nthreads)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(previous)


def minmax_runs(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, vh, check, out,
                nthreads=0):
    """:func:`_minmax_rows` on ``nthreads`` threads (0: Numba's default); returns its NaN count."""
    return _with_threads(nthreads, _minmax_rows, image, zmap, ymap, xmap, x0, cval, lengths, pairs,
                         runs, is_max, vh, check, out, pass_threads=True)


def vrun(image, amap, cval, L, is_max, out, nthreads=0):
    """:func:`_vrun` on ``nthreads`` threads (0: Numba's default)."""
    _with_threads(nthreads, _vrun, image, amap, cval, L, is_max, out)
