"""Numba CPU bodies of the morphology kernels. Private: use :mod:`medfeat.kernels.morphology`.

Every array is in the canonical 3-D form ``(planes, rows, columns)`` prepared by the public module
(2-D images arrive as one plane; inputs arrive as read-only views), so each kernel compiles once per
dtype. Borders are handled with index maps computed in Python: ``map[j]`` is the source index of
extended position ``j``, or -1 where the border value ``cval`` applies. Three kernels (the
family's only CPU implementation):

- :func:`minmax_small`: boxes up to 3 columns wide and a few rows high (3x3 the most common),
  op down the rows then along them, in indexed loops with no per-row bookkeeping;

- :func:`minmax_runs`: min/max over a footprint cut into horizontal runs, in one pass streaming
  the output rows: each input row's running min/max rows (one doubling pyramid shared by the run
  lengths, or van Herk / Gil-Werman for very long runs) go into a ring buffer of the last few
  rows, combined while they are in cache; a box's rows are combined by van Herk / Gil-Werman down
  the columns. Chunks of rows run on a pool of threads. Footprints of one plane on small planes
  (a batch of small images) take :func:`_planes_chunk` instead: the same passes over a whole
  extended plane laid out as one row, chunks of planes on the same pool;
- :func:`vrun`: running min/max of length ``L`` along the middle axis of an ``(A, N, B)`` array by
  van Herk / Gil-Werman, vectorised across the rows (the plane axis of cubes).

Inner loops index views (``a[off:]``) rather than ``a[x + off]``: Numba wraps negative indices, and
with a run-time offset that check stops LLVM from vectorising the loop.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._common import boundary_index

# Windows at least this long use van Herk / Gil-Werman along rows; shorter ones doubling passes.
# van Herk's two scans along a row are sequential (about 2 cycles a pixel), each doubling pass is
# vectorised (16-64 pixels an instruction): measured on 2048² uint8/float32, doubling was >10x
# faster at L = 64 and still faster at L = 1024, so van Herk only guards the O(1) bound for huge
# windows.
VH_ROW = 4096
# vrun's work is split into at most this many chunks, each allocating its scratch buffers once:
# enough to balance two to a dozen threads, few enough that the allocations do not count.
CHUNKS = 32
# Chunks of rows per thread of the run kernels (taken by the threads as they come; each recomputes
# a halo of footprint height - 1 rows, and each costs a call from Python), for jobs of at least
# DYNAMIC_WORK byte-passes (image bytes x row operations per pixel); smaller jobs take one chunk a
# thread, as a chunk then lasts little longer than the calls and hand-overs between threads.
CHUNKS_PER_THREAD = 4
DYNAMIC_WORK = 5e7
# Footprints of one plane on planes whose scratch (extended plane x (lengths + 3)) takes at
# most this many bytes run a plane at a time (_planes_chunk): up to about this size a few long
# passes over the plane beat the row kernel's calls and unvectorised loop tails a row, even
# from L2 (measured on uint8 and float32 batches of 28² to 1024² planes, disks 1 to 7); larger
# planes keep the streamed rows, whose scratch stays in L1, and a thread's scratch stays bounded.
PLANE_BYTES = 4 << 20
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
        # one call for both k (pairs read the second pixel twice): each call site of a pass is
        # another vectorised loop for LLVM to optimise, in every function that inlines it
        s0 = jlo - x0
        _op3_into(out[jlo:], src[s0:], src[s0 + 1:], src[s0 + k - 1:], jhi - jlo, is_max)


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
        # (one call site per pass kind: see _ext_run)
        w = 1
        cur = a  # the current level (w > 1), the other scratch row is ``nxt``
        nxt = b
        for r in range(p, q):
            L = lengths[pairs[r, 1]]
            row = ring[r, slot]
            n = ne - L + 1
            if L == 1 or L >= VH_ROW:
                _fill_ext(src, xmap, x0, cval, row[off:] if L == 1 else ext[off:])
                if L >= VH_ROW:
                    # ``a`` and ``b`` are scratch from here on: longer runs come last, need no level
                    _row_vh(ext[off:], L, n, is_max, a[off:], b[off:], row[off:])
                continue
            if w == 1:
                # runs of 2 and 3 straight from the image; else the first level (pairs) into a
                k = L if L <= 3 else 2
                _ext_run(row[off:] if L <= 3 else a[off:], src, xmap, x0, cval, k, is_max)
                if L <= 3:
                    continue
                w = 2
            while 2 * w <= L:
                _op_into(nxt, cur, cur[w:], off + ne - 2 * w + 1, is_max)
                cur, nxt = nxt, cur
                w *= 2
            # op(cur, cur) is cur: a run of exactly w is a copy
            _op_into(row, cur, cur[L - w:], off + n, is_max)
        p = q
    return nan


@intrinsic
def _borrowed(typingctx, ary):
    """``ary`` without its reference count (NRT meminfo): views taken of it skip NRT's atomic
    increment and decrement, which on rows of a few dozen pixels cost more than the arithmetic.

    The caller keeps ``ary``'s owner alive while the result is in use: an argument is held by
    whoever called, an array made in the function must be used again (:func:`_keep`) after the
    last use of its borrowed views.
    """
    if not isinstance(ary, types.Array):
        return None

    def codegen(context, builder, signature, args):
        view = context.make_array(ary)(context, builder, value=args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return ary(ary), codegen


@intrinsic
def _keep(typingctx, ary):
    """A use of ``ary`` that does nothing: its owner lives (Numba releases a variable after its
    last use) until here, past the last use of views :func:`_borrowed` took of it."""

    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return types.none(ary), codegen


@njit(cache=True, nogil=True)
def _chunk_scratch(image, xmap, nrows, off):
    """A chunk's scratch (``nrows`` ring rows and the rows ``ext``, ``a``, ``b``, ``g``, each with
    room for ``off`` elements before the extended row: see :func:`_run_rows`) and its owner; the
    rows are :func:`_borrowed` views, so the caller keeps the owner (:func:`_keep`) until it is
    done with them."""
    per = ALIGN // image.itemsize
    owner = _scratch(nrows + 4, xmap.shape[0] + per + off, image)
    buf = _borrowed(owner)
    return owner, buf[:nrows], buf[nrows], buf[nrows + 1], buf[nrows + 2], buf[nrows + 3]


@njit(cache=True, nogil=True)
def _runs_chunk(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, check, out,
                r0, r1):
    """Output rows r0..r1 (flattened over planes and rows) of :func:`_minmax_runs`; returns the
    number of NaNs in the image rows read if ``check``.

    The rows are streamed: each extended row's run rows are computed once into a ring buffer of
    the last ``ky`` rows and combined while they are in cache, so a chunk reads its input rows
    once, plus a halo of ``ky - 1`` rows.
    """
    nz, ny, nx = out.shape
    ky = ymap.shape[0] - ny + 1
    npairs = pairs.shape[0]
    nruns = runs.shape[0]
    # x = 0 of the run rows on the cache line: they are read at several shifts. (Derived from an
    # argument so that Numba compiles _run_rows once for both chunk kinds, not again for a literal.)
    off = x0 - x0
    owner, flat, ext, a, b, _ = _chunk_scratch(image, xmap, npairs * ky, off)
    ring = flat.reshape((npairs, ky, -1))
    # the rows of the loops below are views of these (the caller holds the arguments)
    image = _borrowed(image)
    out = _borrowed(out)
    nan = 0
    r = r0
    while r < r1:
        z = r // ny
        ya = r - z * ny
        yb = min(ny, ya + r1 - r)
        r += yb - ya
        for j in range(ya, yb + ky - 1):
            nan += _run_rows(image, zmap, ymap, xmap, x0, cval, lengths, pairs, z, j, is_max, ring,
                             j % ky, ext, a, b, off, check)
            y = j - ky + 1
            if y < ya:
                continue
            # Two operations a store: op3 of the first three runs, then two more at a time (a run
            # repeated where fewer are left: op is idempotent). Run k's row for output row y is
            # row y + dy of its pair's run rows, from column xs on.
            k0 = min(1, nruns - 1)
            k1 = min(2, nruns - 1)
            _op3_into(out[z, y], ring[runs[0, 0], (y + runs[0, 1]) % ky][runs[0, 2]:],
                      ring[runs[k0, 0], (y + runs[k0, 1]) % ky][runs[k0, 2]:],
                      ring[runs[k1, 0], (y + runs[k1, 1]) % ky][runs[k1, 2]:], nx, is_max)
            for k in range(3, nruns, 2):
                k1 = min(k + 1, nruns - 1)
                _op3_acc(out[z, y], ring[runs[k, 0], (y + runs[k, 1]) % ky][runs[k, 2]:],
                         ring[runs[k1, 0], (y + runs[k1, 1]) % ky][runs[k1, 2]:], nx, is_max)
    _keep(owner)
    return nan


@njit(cache=True, nogil=True)
def _box_chunk(image, zmap, ymap, xmap, x0, cval, lengths, pairs, is_max, check, out, r0, r1):
    """Output rows r0..r1 of :func:`_minmax_box`: :func:`_runs_chunk` for a box, whose run rows
    are combined down the columns by van Herk / Gil-Werman, in blocks of ``L = ky`` output rows:
    for the block at s, ``h[t] = op(R[s + t .. s + L - 1])`` (made in place in a ring of ``2 L``
    run rows) and ``g = op(R[s + L .. s + L + t - 1])``; output row ``s + t`` is
    ``op(h[t], g)``."""
    nz, ny, nx = out.shape
    L = ymap.shape[0] - ny + 1
    nslots = 2 * L
    # the run passes store to the run rows: see _run_rows
    off = (-x0) % (ALIGN // image.itemsize)
    owner, flat, ext, a, b, g = _chunk_scratch(image, xmap, nslots, off)
    ring = flat.reshape((1, nslots, -1))
    image = _borrowed(image)
    out = _borrowed(out)
    nan = 0
    r = r0
    while r < r1:
        z = r // ny
        ya = r - z * ny
        yb = min(ny, ya + r1 - r)
        r += yb - ya
        have = ya
        for s in range(ya, yb, L):
            while have < s + L:
                nan += _run_rows(image, zmap, ymap, xmap, x0, cval, lengths, pairs, z, have,
                                 is_max, ring, have % nslots, ext, a, b, off, check)
                have += 1
            for t in range(L - 2, -1, -1):
                _op_acc(ring[0, (s + t) % nslots], ring[0, (s + t + 1) % nslots], off + nx,
                        is_max)
            for t in range(min(L, yb - s)):
                # g is R[s + L] itself for t = 1 (and unused for t = 0: op(h, h) is h)
                h = ring[0, (s + t) % nslots]
                gt = h
                if t >= 1:
                    j = s + L + t - 1
                    nan += _run_rows(image, zmap, ymap, xmap, x0, cval, lengths, pairs, z, j,
                                     is_max, ring, j % nslots, ext, a, b, off, check)
                    have = j + 1
                    gt = ring[0, j % nslots]
                    if t >= 2:
                        if t == 2:
                            _copy(g, ring[0, (j - 1) % nslots], off + nx)
                        _op_acc(g, gt, off + nx, is_max)
                        gt = g
                _op_into(out[z, s + t], h[off:], gt[off:], nx, is_max)
    _keep(owner)
    return nan


@njit(cache=True, nogil=True)
def _planes_chunk(image, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, check, out, z0, z1):
    """Planes z0..z1 of :func:`minmax_runs` for a footprint of one plane, each plane's rows
    side by side in one long row; returns the number of NaNs in those planes if ``check``.

    The extended plane (rows through ``ymap``, each extended through ``xmap``) is laid out as
    one row ``E`` of ``(rows + ky - 1) * ne`` elements; a window of up to ``ne - x`` elements
    from column ``x`` of a row lies in that row, so the doubling passes (as in
    :func:`_run_rows`) and the combination of the runs run over the whole plane at once, shifted
    by ``dy * ne + xs``, and only the output's columns are copied out. Values that a window
    straddling two rows gives are never read. On small planes this makes a few passes long
    enough to vectorise out of many rows shorter than a vector, each a handful of calls.
    """
    nz, ny, nx = out.shape
    ne = xmap.shape[0]
    nye = ymap.shape[0]
    nlen = lengths.shape[0]
    nruns = runs.shape[0]
    m = nye * ne
    # the output's last element is at (ny - 1) * ne + nx - 1 of the combined row
    nout = (ny - 1) * ne + nx
    owner = _scratch(nlen + 3, m, image)
    bufs = _borrowed(owner)
    ext = bufs[nlen]
    a = bufs[nlen + 1]
    b = bufs[nlen + 2]
    image = _borrowed(image)
    out = _borrowed(out)
    nan = 0
    for z in range(z0, z1):
        for j in range(nye):
            s = ymap[j]
            if s < 0:
                for x in range(j * ne, (j + 1) * ne):
                    ext[x] = cval
            else:
                _fill_ext(image[z, s], xmap, x0, cval, ext[j * ne:])
        if check:
            for y in range(ny):
                nan += _count_nan(image[z, y])
        # the run rows of each length from one doubling pyramid (lengths ascending)
        w = 1
        cur = a
        nxt = b
        for li in range(nlen):
            L = lengths[li]
            n = m - L + 1
            row = bufs[li]
            if L == 1:
                _copy(row, ext, m)
                continue
            if w == 1:
                k = L if L <= 3 else 2
                if L <= 3:
                    if k == 2:
                        _op_into(row, ext, ext[1:], n, is_max)
                    else:
                        _op3_into(row, ext, ext[1:], ext[2:], n, is_max)
                    continue
                _op_into(cur, ext, ext[1:], m - 1, is_max)
                w = 2
            while 2 * w <= L:
                _op_into(nxt, cur, cur[w:], m - 2 * w + 1, is_max)
                cur, nxt = nxt, cur
                w *= 2
            _op_into(row, cur, cur[L - w:], n, is_max)
        # the runs combined into a row laid out as the extended plane (``a`` is free again)
        acc = a
        p0 = pairs[runs[0, 0], 1]
        p1 = pairs[runs[min(1, nruns - 1), 0], 1]
        p2 = pairs[runs[min(2, nruns - 1), 0], 1]
        d0 = runs[0, 1] * ne + runs[0, 2]
        d1 = runs[min(1, nruns - 1), 1] * ne + runs[min(1, nruns - 1), 2]
        d2 = runs[min(2, nruns - 1), 1] * ne + runs[min(2, nruns - 1), 2]
        _op3_into(acc, bufs[p0][d0:], bufs[p1][d1:], bufs[p2][d2:], nout, is_max)
        for k in range(3, nruns, 2):
            k1 = min(k + 1, nruns - 1)
            q0 = pairs[runs[k, 0], 1]
            q1 = pairs[runs[k1, 0], 1]
            e0 = runs[k, 1] * ne + runs[k, 2]
            e1 = runs[k1, 1] * ne + runs[k1, 2]
            _op3_acc(acc, bufs[q0][e0:], bufs[q1][e1:], nout, is_max)
        for y in range(ny):
            _copy(out[z, y], acc[y * ne:], nx)
    _keep(owner)
    return nan


@njit(cache=True, nogil=True, inline="always")
def _small_cols(dst, dz, dy, image, z, rows, nv, cval, pad, is_max, n):
    """``dst[dz, dy, x]`` = op over the ``nv`` image rows ``(z, rows[k])`` at column ``x`` (and
    over ``cval`` if ``pad``) for ``x < n``.

    Rows are indexed, not sliced: a view of a row costs a reference count update, a good part of
    a short row's work. Three rows a pass (a row repeated where fewer are left: op is
    idempotent), so that one loop serves one to three rows.
    """
    if nv == 0:
        for x in range(n):
            dst[dz, dy, x] = cval
        return
    a = rows[0]
    b = rows[min(1, nv - 1)]
    c = rows[min(2, nv - 1)]
    if is_max:
        for x in range(n):
            u = image[z, a, x]
            v = image[z, b, x]
            w = image[z, c, x]
            u = v if v > u else u
            dst[dz, dy, x] = w if w > u else u
    else:
        for x in range(n):
            u = image[z, a, x]
            v = image[z, b, x]
            w = image[z, c, x]
            u = v if v < u else u
            dst[dz, dy, x] = w if w < u else u
    for k in range(3, nv):
        s = rows[k]
        if is_max:
            for x in range(n):
                u = dst[dz, dy, x]
                v = image[z, s, x]
                dst[dz, dy, x] = v if v > u else u
        else:
            for x in range(n):
                u = dst[dz, dy, x]
                v = image[z, s, x]
                dst[dz, dy, x] = v if v < u else u
    if pad:
        if is_max:
            for x in range(n):
                u = dst[dz, dy, x]
                dst[dz, dy, x] = cval if cval > u else u
        else:
            for x in range(n):
                u = dst[dz, dy, x]
                dst[dz, dy, x] = cval if cval < u else u


@njit(cache=True, nogil=True, inline="always")
def _op3_rows(dst, image, z, a, b, c, is_max, n):
    """dst[x] = op(image[z, a, x], image[z, b, x], image[z, c, x]) for x < n."""
    if is_max:
        for x in range(n):
            u = image[z, a, x]
            v = image[z, b, x]
            w = image[z, c, x]
            u = v if v > u else u
            dst[x] = w if w > u else u
    else:
        for x in range(n):
            u = image[z, a, x]
            v = image[z, b, x]
            w = image[z, c, x]
            u = v if v < u else u
            dst[x] = w if w < u else u


@njit(cache=True, nogil=True, inline="always")
def _small_row(out, z, y, t, t1, t2, is_max, n):
    """out[z, y, x] = op(t[x], t1[x], t2[x]) for x < n."""
    if is_max:
        for x in range(n):
            u = t[x]
            v = t1[x]
            w = t2[x]
            u = v if v > u else u
            out[z, y, x] = w if w > u else u
    else:
        for x in range(n):
            u = t[x]
            v = t1[x]
            w = t2[x]
            u = v if v < u else u
            out[z, y, x] = w if w < u else u


@njit(cache=True, nogil=True)
def _small_chunk(image, ymap, xmap, x0, cval, is_max, check, out, r0, r1):
    """Output rows r0..r1 (flattened over planes and rows) of :func:`minmax_small`; returns the number of NaNs in the
    output rows' own image rows if ``check``.

    Per output row, op down the box's rows into an extended scratch row (straight into ``out``
    for a one-column box), the border columns of that row filled through ``xmap`` (the column op
    commutes with the column map), then op of up to three shifted scratch rows. Every pass is a
    plain loop over a row that LLVM vectorises; the shifted views are made once per chunk.
    """
    nz, ny, nx = out.shape
    ky = ymap.shape[0] - ny + 1
    ne = xmap.shape[0]
    kx = ne - nx + 1
    per = ALIGN // image.itemsize
    # the scratch row's image part (from t[x0]) starts on a cache line: it takes the stores
    buf = _scratch(1, ne + per, image)[0]
    t = buf[(per - x0 % per) % per:]
    t0 = t[x0:]
    tv = t0.reshape((1, 1, -1))
    t1 = t[min(1, kx - 1):]
    t2 = t[kx - 1:]
    rows = np.empty(ky, np.int64)
    nan = 0
    z = r0 // ny
    y = r0 - z * ny - 1
    for _ in range(r0, r1):
        y += 1
        if y == ny:
            z += 1
            y = 0
        if check:
            for x in range(nx):
                v = image[z, y, x]
                nan += v != v
        a = ymap[y]
        b = ymap[y + min(1, ky - 1)]
        c = ymap[y + ky - 1]
        if kx > 1 and ky <= 3 and a >= 0 and b >= 0 and c >= 0:
            # the common row, with less bookkeeping than the general one below
            _op3_rows(t0, image, z, a, b, c, is_max, nx)
        else:
            nv = 0
            for k in range(ky):
                s = ymap[y + k]
                if s >= 0:
                    rows[nv] = s
                    nv += 1
            pad = nv < ky
            if kx == 1:
                _small_cols(out, z, y, image, z, rows, nv, cval, pad, is_max, nx)
                continue
            _small_cols(tv, 0, 0, image, z, rows, nv, cval, pad, is_max, nx)
        for j in range(x0):
            s = xmap[j]
            t[j] = t[x0 + s] if s >= 0 else cval
        for j in range(x0 + nx, ne):
            s = xmap[j]
            t[j] = t[x0 + s] if s >= 0 else cval
        _small_row(out, z, y, t, t1, t2, is_max, nx)
    return nan


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


_POOL = [None, None]  # the executor and the process it was made in
_POOL_LOCK = threading.Lock()


def _forget_pool_in_child():
    global _POOL_LOCK
    _POOL_LOCK = threading.Lock()  # a fork while another thread held it would leave it held
    _POOL[:] = [None, None]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _pool():
    """The process's thread pool for the run kernels' chunks: ``NUMBA_NUM_THREADS - 1`` threads
    (the calling thread takes chunks too), made once per process under a lock, so that threads
    calling the kernels at once share it and never see it replaced, and made again in a forked
    child (whose copy of the parent's pool has no threads behind it)."""
    with _POOL_LOCK:
        pool, pid = _POOL
        if pool is None or pid != os.getpid():
            pool = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                      thread_name_prefix="medfeat-morphology")
            _POOL[:] = [pool, os.getpid()]
        return pool


def _run_chunks(kernel, args, total, ky, nthreads=0, nchunks=None, work=None, rows=1):
    """``kernel(*args, r0, r1)`` over ``0 <= r0 < r1 <= total`` output rows split into chunks,
    on ``nthreads`` threads (0: Numba's thread count, so ``NUMBA_NUM_THREADS`` and
    ``numba.set_num_threads`` apply); returns the sum of the results (NaN counts).

    Threads here rather than a ``prange``: the kernels release the GIL, a parallel Numba function
    would compile the whole run kernel a second time (doubling the first call's compile time),
    and the threads take the chunks as they come (the calling thread among them), so a thread
    the OS leaves waiting on a busy machine holds up its chunk, not a fixed half of the image.
    Chunks are a few per thread for a job of ``work`` byte-passes (unknown: large), each
    recomputing a halo of ``ky - 1`` rows (see :data:`CHUNKS_PER_THREAD`); ``rows``: output rows
    an item of ``total`` stands for (a plane's rows when the kernel takes whole planes).
    """
    if nthreads == 1 and nchunks is None:
        return kernel(*args, 0, total)  # the planner's small jobs: nothing to split
    if nthreads <= 0:
        nthreads = numba.get_num_threads()
    nthreads = max(1, min(nthreads, numba.config.NUMBA_NUM_THREADS))
    if nchunks is None:
        per_thread = CHUNKS_PER_THREAD if work is None or work >= DYNAMIC_WORK else 1
        nchunks = 1 if nthreads == 1 else min(per_thread * nthreads, total * rows // (8 * ky))
    nchunks = max(1, min(nchunks, total))
    if nchunks == 1:
        return kernel(*args, 0, total)
    bounds = [c * total // nchunks for c in range(nchunks + 1)]
    tickets = itertools.count()  # next() is atomic under the GIL

    def work():
        nan = 0
        c = next(tickets)
        while c < nchunks:
            nan += kernel(*args, bounds[c], bounds[c + 1])
            c = next(tickets)
        return nan

    helpers = min(nthreads, nchunks) - 1
    pool = _pool()
    futures = [pool.submit(work) for _ in range(helpers)]
    nan = work()
    return nan + sum(f.result() for f in futures)


def minmax_runs(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, vh, check, out,
                nthreads=0, work=None):
    """The whole min (or max) over a footprint cut into runs, in one pass over the image on
    ``nthreads`` threads (0: Numba's default); returns the number of NaNs in the image rows read
    (rows read twice count twice) if ``check``, else 0: checking the rows on the way costs no
    extra pass over the image.

    ``pairs[p] = (dz, li)``, sorted: run rows of length ``lengths[li]`` from plane offset ``dz``
    (row ``(z, j)``'s value at x is op over ``ext[x:x + L]`` of source row ``(zmap[z + dz],
    ymap[j])`` extended through ``xmap``, which starts at ``ext[x0]``); ``runs[k] = (p, dy, xs)``:
    output row ``(z, y)`` combines row ``y + dy`` of pair ``p``'s run rows from column ``xs`` on
    (:func:`_runs_chunk`). ``vh``: the footprint is a box (one pair, ``runs[k] = (0, k, 0)``),
    whose rows are combined by van Herk / Gil-Werman instead (:func:`_box_chunk`). ``work``: the
    job's size in byte-passes, for the number of chunks (see :data:`CHUNKS_PER_THREAD`).
    Footprints of one plane whose planes' scratch fits :data:`PLANE_BYTES` go a plane at a time
    (:func:`_planes_chunk`).
    """
    ky = ymap.shape[0] - out.shape[1] + 1
    total = out.shape[0] * out.shape[1]
    if vh:
        args = (image, zmap, ymap, xmap, x0, cval, lengths, pairs, is_max, check, out)
        return _run_chunks(_box_chunk, args, total, ky, nthreads, work=work)
    args = (image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, check, out)
    nz, ny, nx = out.shape
    if (zmap.shape[0] == nz and not pairs[:, 0].any()
            and (ymap.shape[0] * xmap.shape[0] * (len(lengths) + 3) * image.itemsize
                 <= PLANE_BYTES)):
        args = (image, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, check, out)
        return _run_chunks(_planes_chunk, args, nz, 1, nthreads, work=work, rows=ny)
    return _run_chunks(_runs_chunk, args, total, ky, nthreads, work=work)


def minmax_small(image, ymap, xmap, x0, cval, is_max, check, out, nthreads=0, work=None):
    """Min (or max) over a box of at most 3 columns and a few rows (the planner sends boxes
    lower than its ``VH_COL``) on ``nthreads`` threads (0: Numba's default); returns the number
    of NaNs in ``image`` if ``check`` (every row is read for it).

    The box's first column is ``x0`` columns left of the centre, with ``0 <= x0 <`` its width;
    its rows are those ``ymap`` gives.

    Maps and ``out`` as in :func:`minmax_runs` (whose planes must be the output's own:
    ``image`` and ``out`` have one shape). Vertical then horizontal in one streamed pass of
    indexed loops (:func:`_small_chunk`), without the run kernel's per-row views and ring,
    which cost about as much as a 3x3 box's arithmetic.
    """
    ky = ymap.shape[0] - out.shape[1] + 1
    total = out.shape[0] * out.shape[1]
    args = (image, ymap, xmap, x0, cval, is_max, check, out)
    return _run_chunks(_small_chunk, args, total, ky, nthreads, work=work)


def vrun(image, amap, cval, L, is_max, out, nthreads=0):
    """:func:`_vrun` on ``nthreads`` threads (0: Numba's default)."""
    _with_threads(nthreads, _vrun, image, amap, cval, L, is_max, out)
