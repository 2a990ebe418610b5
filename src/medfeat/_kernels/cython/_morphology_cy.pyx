# cython: language_level=3
"""Cython bodies of the morphology kernels. Private: use :mod:`medfeat.kernels.morphology`.

Same names, arguments and results as :mod:`medfeat._kernels.numba_cpu.morphology` (read that
module's docstring for the array layout and the index maps):

- ``minmax_runs``: min/max over a footprint cut into horizontal runs, in one pass over bands of
  output rows; each band computes its running min/max rows (doubling passes, log2 L vectorisable
  loops, or van Herk / Gil-Werman for very long runs) and combines them while they are in cache;
- ``vrun``: running min/max of length ``L`` along the middle axis of an ``(A, N, B)`` array by
  van Herk / Gil-Werman, vectorised across the rows (tall boxes).

The loops work on raw row pointers so that the C compiler vectorises them; ``_op_acc`` exists beside
``_op_into`` because a compiler's overlap check fails when the output is also an input, and it then
runs the scalar loop.
"""

cimport cython
cimport openmp
from cython.parallel cimport parallel, prange
from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

ctypedef fused T:
    uint8_t
    uint16_t
    int16_t
    float
    double

# Windows at least this long use van Herk / Gil-Werman along rows; shorter ones doubling passes.
# van Herk's scans along a row are sequential, each doubling pass vectorises: measured on 2048²
# uint8/float32, doubling was >10x faster at L = 64 and still faster at L = 1024 (see Numba twin).
DEF VH_ROW = 4096
# Work is split into at most this many dynamically scheduled chunks (scratch buffers per thread).
DEF CHUNKS = 256


cdef inline void _op_into(T* out, const T* u, const T* v, Py_ssize_t n, bint is_max) noexcept nogil:
    """out[x] = op(u[x], v[x]); ``out`` must be neither ``u`` nor ``v``."""
    cdef Py_ssize_t x
    cdef T a, b
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


cdef inline void _op_acc(T* acc, const T* v, Py_ssize_t n, bint is_max) noexcept nogil:
    """acc[x] = op(acc[x], v[x])."""
    cdef Py_ssize_t x
    cdef T a, b
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


cdef inline void _fill(T* out, T c, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t x
    for x in range(n):
        out[x] = c


cdef inline void _scan_forward(T* out, const T* src, Py_ssize_t n, bint is_max) noexcept nogil:
    """out[j] = op(src[0..j])."""
    cdef Py_ssize_t j
    cdef T m = src[0], v
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


cdef inline void _scan_backward(T* out, const T* src, Py_ssize_t n, bint is_max) noexcept nogil:
    """out[j] = op(src[j..n-1])."""
    cdef Py_ssize_t j
    cdef T m = src[n - 1], v
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


cdef inline void _fill_ext(const T* src, Py_ssize_t nx, const int64_t[::1] xmap, Py_ssize_t x0,
                           T cval, T* ext) noexcept nogil:
    """The extended row: ``src`` starts at ``ext[x0]``, the borders come through ``xmap``."""
    cdef Py_ssize_t ne = xmap.shape[0]
    cdef Py_ssize_t jlo = max(x0, 0), jhi = min(x0 + nx, ne)
    cdef Py_ssize_t j, s
    for j in range(jlo):
        s = xmap[j]
        ext[j] = src[s] if s >= 0 else cval
    if jhi > jlo:
        memcpy(&ext[jlo], &src[jlo - x0], (jhi - jlo) * sizeof(T))
    for j in range(max(jhi, 0), ne):
        s = xmap[j]
        ext[j] = src[s] if s >= 0 else cval


cdef void _row_run(const T* ext, Py_ssize_t L, Py_ssize_t nout, bint is_max, T* a, T* b,
                   T* orow) noexcept nogil:
    """orow[x] = op(ext[x:x + L]) for x < nout; ``a`` and ``b`` are scratch rows like ``ext``."""
    cdef Py_ssize_t ne = nout + L - 1
    cdef Py_ssize_t n, p, start, stop
    cdef T* cur
    cdef T* nxt
    cdef T* tmp
    if L == 1:
        memcpy(orow, ext, nout * sizeof(T))
    elif L >= VH_ROW:
        # van Herk / Gil-Werman: op from each block start (a) and to each block end (b); a window
        # of length L spans at most two blocks, so op(b[x], a[x + L - 1]) is its value.
        start = 0
        while start < ne:
            stop = min(start + L, ne)
            _scan_forward(&a[start], &ext[start], stop - start, is_max)
            _scan_backward(&b[start], &ext[start], stop - start, is_max)
            start += L
        _op_into(orow, b, &a[L - 1], nout, is_max)
    else:
        # Doubling: after the pass with shift p the buffer holds op over windows of length 2p;
        # two overlapping windows of the largest power of two p <= L cover any window.
        n = ne - 1
        _op_into(a, ext, &ext[1], n, is_max)
        cur = a
        nxt = b
        p = 2
        while 2 * p <= L:
            n -= p
            _op_into(nxt, cur, &cur[p], n, is_max)
            tmp = cur
            cur = nxt
            nxt = tmp
            p *= 2
        _op_into(orow, cur, &cur[L - p], nout, is_max)


cdef void _vrun_blocks(const T[:, :, ::1] image, const int64_t[::1] amap, T cval, Py_ssize_t L,
                       bint is_max, T[:, :, ::1] out, Py_ssize_t b0, Py_ssize_t b1,
                       T* h, T* g, T* crow) noexcept nogil:
    """Blocks b0..b1 (over the outer axis and blocks of L output rows): see the Numba twin."""
    cdef Py_ssize_t ne = amap.shape[0], nout = out.shape[1], nb = image.shape[2]
    cdef Py_ssize_t nblocks = (nout + L - 1) // L
    cdef Py_ssize_t blk, ai, start, stop, gstop, j, s, t
    cdef const T* src
    _fill(crow, cval, nb)
    for blk in range(b0, b1):
        ai = blk // nblocks
        start = (blk - ai * nblocks) * L
        stop = min(start + L, ne)
        j = stop - 1
        while j >= start:
            s = amap[j]
            src = &image[ai, s, 0] if s >= 0 else crow
            t = j - start
            if j == stop - 1:
                memcpy(&h[t * nb], src, nb * sizeof(T))
            else:
                _op_into(&h[t * nb], &h[(t + 1) * nb], src, nb, is_max)
            j -= 1
        gstop = min(start + 2 * L - 1, ne)
        for j in range(start + L, gstop):
            s = amap[j]
            src = &image[ai, s, 0] if s >= 0 else crow
            t = j - start - L
            if t == 0:
                memcpy(g, src, nb * sizeof(T))
            else:
                _op_into(&g[t * nb], &g[(t - 1) * nb], src, nb, is_max)
        for t in range(min(L, nout - start)):
            if t == 0:
                memcpy(&out[ai, start, 0], h, nb * sizeof(T))
            else:
                _op_into(&out[ai, start + t, 0], &h[t * nb], &g[(t - 1) * nb], nb, is_max)


@cython.boundscheck(False)
@cython.wraparound(False)
def vrun(const T[:, :, ::1] image, const int64_t[::1] amap, T cval, Py_ssize_t L, bint is_max,
         T[:, :, ::1] out, int nthreads=0):
    """Running min (or max) of length ``L`` along the middle axis of an ``(A, N, B)`` array, by
    van Herk / Gil-Werman vectorised across the rows (short windows go through ``minmax_runs``).

    ``out[a, i, :] = op over k < L of src[a, amap[i + k], :]`` (``cval`` where the map is -1).
    ``nthreads``: threads to use (0: OpenMP's default).
    """
    cdef Py_ssize_t nb = image.shape[2], nout = out.shape[1]
    cdef Py_ssize_t ntotal = image.shape[0] * ((nout + L - 1) // L)
    cdef Py_ssize_t nchunks = min(ntotal, CHUNKS)
    cdef Py_ssize_t c
    cdef T* h = NULL
    cdef T* g = NULL
    cdef T* crow = NULL
    if nthreads <= 0:
        nthreads = openmp.omp_get_max_threads()
    with nogil, parallel(num_threads=nthreads):
        h = <T*>malloc(L * nb * sizeof(T))
        g = <T*>malloc(L * nb * sizeof(T))
        crow = <T*>malloc(nb * sizeof(T))
        for c in prange(nchunks, schedule="dynamic"):
            _vrun_blocks(image, amap, cval, L, is_max, out,
                         c * ntotal // nchunks, (c + 1) * ntotal // nchunks, h, g, crow)
        free(h)
        free(g)
        free(crow)


cdef void _runs_bands(const T[:, :, ::1] image, const int64_t[::1] zmap, const int64_t[::1] ymap,
                      const int64_t[::1] xmap, Py_ssize_t x0, T cval, const int64_t[::1] lengths,
                      const int64_t[:, ::1] pairs, const int64_t[:, ::1] runs, bint is_max,
                      Py_ssize_t band, T[:, :, ::1] out, Py_ssize_t t0, Py_ssize_t t1,
                      T* hb, T* ext, T* a, T* b) noexcept nogil:
    """Bands t0..t1 of ``minmax_runs`` (see the Numba twin); ``hb`` holds
    ``npairs * (band + ky - 1)`` run rows of ``ne`` values."""
    cdef Py_ssize_t nz = out.shape[0], ny = out.shape[1], nx = out.shape[2]
    cdef Py_ssize_t ne = xmap.shape[0], ky = ymap.shape[0] - ny + 1
    cdef Py_ssize_t npairs = pairs.shape[0], nruns = runs.shape[0]
    cdef Py_ssize_t nbands = (ny + band - 1) // band, hrows = band + ky - 1
    cdef Py_ssize_t t, z, y0, y1, y, j, p, k, dz, last_dz, L, nout, zs, ys
    cdef T* hrow
    cdef T* orow
    for t in range(t0, t1):
        z = t // nbands
        y0 = (t - z * nbands) * band
        y1 = min(y0 + band, ny)
        for j in range(y1 - y0 + ky - 1):
            ys = ymap[y0 + j]
            last_dz = -1
            for p in range(npairs):
                dz = pairs[p, 0]
                L = lengths[pairs[p, 1]]
                nout = ne - L + 1
                zs = zmap[z + dz]
                hrow = &hb[(p * hrows + j) * ne]
                if zs < 0 or ys < 0:
                    _fill(hrow, cval, nout)
                    continue
                if dz != last_dz:
                    _fill_ext(&image[zs, ys, 0], nx, xmap, x0, cval, ext)
                    last_dz = dz
                _row_run(ext, L, nout, is_max, a, b, hrow)
        for y in range(y0, y1):
            orow = &out[z, y, 0]
            j = y - y0
            memcpy(orow, &hb[(runs[0, 0] * hrows + j + runs[0, 1]) * ne + runs[0, 2]],
                   nx * sizeof(T))
            for k in range(1, nruns):
                _op_acc(orow, &hb[(runs[k, 0] * hrows + j + runs[k, 1]) * ne + runs[k, 2]], nx,
                        is_max)


@cython.boundscheck(False)
@cython.wraparound(False)
def minmax_runs(const T[:, :, ::1] image, const int64_t[::1] zmap, const int64_t[::1] ymap,
                const int64_t[::1] xmap, Py_ssize_t x0, T cval, const int64_t[::1] lengths,
                const int64_t[:, ::1] pairs, const int64_t[:, ::1] runs, bint is_max,
                Py_ssize_t band, T[:, :, ::1] out, int nthreads=0):
    """The whole min (or max) over a footprint cut into runs, in one parallel pass.

    ``pairs[p] = (dz, li)``: run rows of length ``lengths[li]`` from plane offset ``dz``, computed
    for the rows a band of output needs; ``runs[k] = (p, dy, xs)``: output row ``(z, y)`` combines
    row ``y + dy`` of pair ``p``'s run rows from column ``xs`` on. ``nthreads``: threads to use
    (0: OpenMP's default).
    """
    cdef Py_ssize_t ny = out.shape[1]
    cdef Py_ssize_t ne = xmap.shape[0], ky = ymap.shape[0] - ny + 1
    cdef Py_ssize_t nbands = (ny + band - 1) // band
    cdef Py_ssize_t ntotal = out.shape[0] * nbands
    cdef Py_ssize_t nchunks = min(ntotal, CHUNKS)
    cdef Py_ssize_t hsize = pairs.shape[0] * (band + ky - 1) * ne
    cdef Py_ssize_t c
    cdef T* hb = NULL
    cdef T* ext = NULL
    cdef T* a = NULL
    cdef T* b = NULL
    if nthreads <= 0:
        nthreads = openmp.omp_get_max_threads()
    with nogil, parallel(num_threads=nthreads):
        hb = <T*>malloc(hsize * sizeof(T))
        ext = <T*>malloc(ne * sizeof(T))
        a = <T*>malloc(ne * sizeof(T))
        b = <T*>malloc(ne * sizeof(T))
        # dynamic: a thread that the OS preempts does not hold back a fixed share of the bands
        for c in prange(nchunks, schedule="dynamic"):
            _runs_bands(image, zmap, ymap, xmap, x0, cval, lengths, pairs, runs, is_max, band, out,
                        c * ntotal // nchunks, (c + 1) * ntotal // nchunks, hb, ext, a, b)
        free(hb)
        free(ext)
        free(a)
        free(b)
