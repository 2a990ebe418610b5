"""The min/max planner of the morphology kernels: one flat erosion or dilation step.

:func:`_minmax` crops a footprint to its bounding box and plans the passes: any footprint cut
into horizontal runs, all done in one streamed pass (``minmax_runs``), whose run rows a box taller
than :data:`VH_COL` combines by van Herk / Gil-Werman; the plane axis of a cube in a second pass
(``vrun``, or runs when short). Plans (run decomposition, crop, border maps) are cached per
footprint and shape. On the GPU, boxes are separable 1-D passes and other footprints one pass over
their offsets. :func:`_grey` and :func:`_binary` apply a footprint sequence with it. The
algorithms and their references are in :mod:`medfeat.kernels.morphology`.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from .._kernels._common import MODES
from ._dispatch import cuda_kernels, get_kernel, implementation, is_device_array
from .footprints import _mirror, _pad_odd

_FAMILY = "morphology"
# Box sides (rows, planes) at least this long combine their rows by van Herk / Gil-Werman (about
# three operations per pixel plus block bookkeeping, whatever the length); shorter ones by L - 1
# row operations, which stay cheaper up to about this length (benchmarks/bench_morphology.py
# measures both).
VH_COL = 5
# Boxes at most this wide (and less than VH_COL high) take the small-box kernel: an op down the
# box's rows, then of the shifted results, in plain indexed loops; wider ones the run kernel,
# whose doubling passes need fewer operations a pixel.
SMALL_X = 3
# Jobs below this many byte-passes (image bytes x row operations per pixel) run on one thread:
# such a job is shorter than what waking the thread team saves; a 3x3 erosion at 2048² is well
# above it and runs on two (benchmarks/results/cpu-2026-11-25.md has both timings beside
# cv2.erode). On a machine saturated by other jobs two threads can lose a scheduler slice.
SERIAL_WORK = 4e6
# Arrays made here start on a cache line (numpy's large allocations start 16 bytes into one), so
# that the vector stores of rows whose length is a multiple of 64 bytes never straddle two.
ALIGN = 64
NAN_MESSAGE = ("image contains NaN, for which a minimum/maximum has no defined result "
               "(scikit-image's result depends on the footprint's shape); replace NaNs first")


def _empty(shape, dtype):
    """``np.empty(shape, dtype)`` starting on an :data:`ALIGN`-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    buf = np.empty(nbytes + ALIGN, np.uint8)
    off = -buf.ctypes.data % ALIGN
    return buf[off:off + nbytes].view(dtype).reshape(shape)


def _check_nan(src):
    """Raise for NaN in ``src`` (a float array): the check of the paths whose kernels cannot make
    it on the way (one reduction, no temporary)."""
    if src.dtype.kind == "f" and np.isnan(src.min()):
        raise ValueError(NAN_MESSAGE)


def _border_value(dtype, mode, cval, *, is_max):
    """The value outside the image, in the kernel dtype, for a constant-like ``mode`` (else None).

    ``"max"``/``"min"`` use the dtype's extremes (infinities for floats); ``"ignore"`` means the
    neutral one (the maximum for an erosion, the minimum for a dilation).
    """
    return _border_cached(np.dtype(dtype), mode, cval, is_max)


@functools.lru_cache(maxsize=256)
def _border_cached(dtype, mode, cval, is_max):
    """:func:`_border_value`, cached (``np.iinfo`` costs more than a small image's kernel)."""
    if mode == "ignore":
        mode = "min" if is_max else "max"
    if mode in ("max", "min"):
        if dtype == np.bool_:
            return np.uint8(mode == "max")
        if dtype.kind == "f":
            return dtype.type(np.inf if mode == "max" else -np.inf)
        info = np.iinfo(dtype)
        return dtype.type(info.max if mode == "max" else info.min)
    if mode != "constant":
        return None
    return _convert_cval(cval, dtype)


def _convert_cval(cval, dtype):
    if isinstance(cval, (bool, np.bool_)):
        cval = int(cval)
    if not isinstance(cval, numbers.Real):
        raise ValueError(f"cval must be a real number, got {cval!r}")
    return _convert_real(float(cval), np.dtype(dtype))


@functools.lru_cache(maxsize=256)
def _convert_real(cval, dtype):
    """:func:`_convert_cval` of a float (cached: ``np.iinfo`` costs more than the small kernels'
    planning; an error is raised again on every call, as it is not cached)."""
    if np.isnan(cval):
        raise ValueError("cval must not be NaN")
    if dtype == np.bool_:
        return np.uint8(cval != 0)
    if dtype.kind == "f":
        return dtype.type(cval)
    # scipy.ndimage computes with a double cval and casts the result back, which truncates towards
    # zero; outside the dtype's range that cast is undefined, so refuse it.
    if not np.isfinite(cval):
        raise ValueError(f"cval must be finite for {dtype.name} images, got {cval!r}")
    t = int(np.trunc(cval))
    info = np.iinfo(dtype)
    if not info.min <= t <= info.max:
        raise ValueError(
            f"cval={cval!r} is outside the range of the image's dtype {dtype.name} "
            f"[{info.min}, {info.max}]"
        )
    return dtype.type(t)


@functools.lru_cache(maxsize=256)
def _axis_map(n, lo, hi, mode):
    """Source index of each extended position ``lo <= j < hi`` along an axis of length ``n``
    (-1 where the constant border value applies), with scipy.ndimage's boundary modes (used on
    the host by both the CPU and the GPU paths; cached, and never written by the kernels)."""
    return implementation(_FAMILY, "numba").axis_map(n, lo, hi, MODES[mode])


def _kernel_mode(mode):
    return "constant" if mode in ("max", "min", "ignore") else mode


def _ro(a):
    """A read-only view: the compiled kernels then see one array type per dtype, whether the
    caller's array is writeable or not (one Numba specialisation instead of two)."""
    v = a.view()
    v.flags.writeable = False
    return v


def _as3d(a):
    return a.reshape((1,) * (3 - a.ndim) + a.shape)


class _Kernels:
    """The two compiled kernels of one backend (:func:`_kernels` makes them once per backend)."""

    def __init__(self, backend):
        self.backend = backend
        self.vrun = get_kernel(_FAMILY, "vrun", backend, auto=(backend,))[1]
        self.minmax_runs = get_kernel(_FAMILY, "minmax_runs", backend, auto=(backend,))[1]
        self.minmax_small = get_kernel(_FAMILY, "minmax_small", backend, auto=(backend,))[1]


@functools.lru_cache(maxsize=None)
def _kernels(backend):
    """The :class:`_Kernels` of a concrete CPU ``backend``, looked up once."""
    return _Kernels(backend)


class _CudaKernels:
    """The GPU's kernels, and whether the caller's image was a NumPy array (result copied back)."""

    backend = "cuda"

    def __init__(self, to_host):
        self.to_host = to_host
        self.impl = get_kernel(_FAMILY, "footprint_minmax", "cuda", auto=("cuda",))[1]
        self.nonzero_u8 = cuda_kernels(_FAMILY).nonzero_u8


def _minmax(k, src, fp, *, is_max, mode, border, dst=None, check_nan=False):
    """``dst[i] = op over {j : fp[j]} of ext(src)[i + j - centre]`` (op = max if ``is_max``).

    ``src`` is C-contiguous 2-D or 3-D in the kernel dtype, ``fp`` boolean with odd sides,
    ``border`` the constant border value (or None for the other modes). Returns ``dst``.
    ``check_nan``: raise ValueError if ``src`` holds NaN (checked by the kernel as it reads the
    rows where it can, so ``dst`` may have been written by then).
    """
    if k.backend == "cuda":
        return _minmax_cuda(k, src, fp, is_max=is_max, mode=mode, border=border, dst=dst)
    if dst is None:
        dst = _empty(src.shape, src.dtype)
    cval = border if border is not None else src.dtype.type(0)
    src3, dst3 = _as3d(src), _as3d(dst)
    fp3 = np.ascontiguousarray(_as3d(fp), dtype=np.bool_)
    box, origin, full = _crop(fp3.shape, fp3.tobytes())
    if full:
        _box(k, src3, dst3, box.shape, list(origin), is_max, mode, cval, check_nan)
    else:
        _runs(k, src3, dst3, box, list(origin), is_max, mode, cval, check_nan=check_nan)
    return dst


@functools.lru_cache(maxsize=256)
def _crop(shape, data):
    """The 3-D boolean footprint of ``shape`` whose bytes are ``data`` cropped to its bounding
    box: ``(box, origin, full)``, ``origin`` the box's offset from the footprint centre, ``full``
    whether every element of the box is True (cached, like :func:`_run_plan`)."""
    fp3 = np.frombuffer(data, np.bool_).reshape(shape)
    nzidx = np.nonzero(fp3)
    lo = [int(ix.min()) for ix in nzidx]
    hi = [int(ix.max()) + 1 for ix in nzidx]
    box = fp3[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    origin = tuple(lo[a] - shape[a] // 2 for a in range(3))
    return box, origin, bool(box.all())


def _minmax_cuda(k, src, fp, *, is_max, mode, border, dst=None):
    """:func:`_minmax` on device arrays: boxes as separable 1-D passes, other footprints as one
    pass over their offsets."""
    from numba import cuda

    if dst is None:
        dst = cuda.device_array(src.shape, src.dtype)
    cval = border if border is not None else src.dtype.type(0)
    src3, dst3, fp3 = _as3d(src), _as3d(dst), _as3d(fp)
    nzidx = np.nonzero(fp3)
    lo = [int(ix.min()) for ix in nzidx]
    hi = [int(ix.max()) + 1 for ix in nzidx]
    box = fp3[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    origin = [lo[a] - fp3.shape[a] // 2 for a in range(3)]
    if box.all():
        # one 1-D pass per axis that needs one; the last writes dst
        passes = [a for a in range(3) if box.shape[a] > 1 or origin[a] != 0]
        if not passes:
            dst3.copy_to_device(src3)
            return dst
        cur = src3
        for i, a in enumerate(passes):
            target = dst3 if i == len(passes) - 1 else cuda.device_array(src3.shape, src3.dtype)
            shape = [1, 1, 1]
            shape[a] = box.shape[a]
            org = [0, 0, 0]
            org[a] = origin[a]
            _offsets_pass(k, cur, target, np.ones(shape, bool), org, is_max, mode, cval)
            cur = target
    else:
        _offsets_pass(k, src3, dst3, box, origin, is_max, mode, cval)
    return dst


def _offsets_pass(k, src3, dst3, box, origin, is_max, mode, cval):
    nz, ny, nx = src3.shape
    kz, ky, kx = box.shape
    maps = [_axis_map(n, o, n + o + kk - 1, mode)
            for n, o, kk in ((nz, origin[0], kz), (ny, origin[1], ky), (nx, origin[2], kx))]
    offs = np.argwhere(box)
    k.impl(src3, dst3, offs, *maps, cval, is_max)


def _threads(work):
    """1 for small jobs, else 0 (the backend's default): waking threads costs more than a small
    job takes on one core, and on a busy machine a thread the OS has not scheduled costs a whole
    time slice (4 ms here)."""
    return 1 if work < SERIAL_WORK else 0


@functools.lru_cache(maxsize=256)
def _run_plan(shape, data):
    """``(lengths, pairs, runs)`` of :func:`_runs` for the boolean box of ``shape`` whose bytes
    are ``data`` (cached: a footprint is planned once, not on every call)."""
    box = np.frombuffer(data, np.bool_).reshape(shape)
    kz, ky, _ = shape
    found = []  # (jz, jy, start, length)
    for jz in range(kz):
        for jy in range(ky):
            d = np.diff(np.concatenate(([0], box[jz, jy].astype(np.int8), [0])))
            for s, e in zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]):
                found.append((jz, jy, int(s), int(e - s)))
    lengths = sorted({f[3] for f in found})
    # pairs sorted by plane offset, then length: the kernel shares one doubling pyramid among the
    # lengths of a plane offset, shortest first
    keys = sorted({(jz, lengths.index(length)) for jz, _, _, length in found})
    pair_index = {key: i for i, key in enumerate(keys)}
    pairs = np.array(keys, dtype=np.int64).reshape(-1, 2)
    runs = np.array([(pair_index[(jz, lengths.index(length))], jy, start)
                     for jz, jy, start, length in found], dtype=np.int64)
    return np.array(lengths, np.int64), pairs, runs


def _runs(k, src3, dst3, box, origin, is_max, mode, cval, vh=False, check_nan=False):
    """The footprint ``box`` (no empty border; ``origin`` = offset of its first element from the
    centre) cut into horizontal runs, all done in one pass of ``minmax_runs``; ``vh``: ``box`` is
    full, and its rows are combined by van Herk / Gil-Werman; ``check_nan``: raise ValueError for
    NaN in ``src3``.

    A 3-D footprint makes each output row combine run rows of several planes: one parallel
    region and no image-sized temporaries.
    """
    nz, ny, nx = src3.shape
    kz, ky, kx = box.shape
    zmap = _axis_map(nz, origin[0], nz + origin[0] + kz - 1, mode)
    ymap = _axis_map(ny, origin[1], ny + origin[1] + ky - 1, mode)
    xmap = _axis_map(nx, origin[2], nx + origin[2] + kx - 1, mode)
    box = np.ascontiguousarray(box, dtype=np.bool_)
    lengths, pairs, runs = _run_plan(box.shape, box.tobytes())
    # The kernel reads every row of a plane offset (each in full for the check) while computing
    # its runs; with one plane offset whose rows include the output row's own, that is every row
    # of the image. Otherwise some rows may be left unread, and a separate pass checks them.
    in_kernel = kz == 1 and origin[0] == 0 and origin[1] <= 0 < origin[1] + ky
    if check_nan and not in_kernel:
        _check_nan(src3)
    check = check_nan and in_kernel and src3.dtype.kind == "f"
    work = src3.nbytes * (3 + len(pairs) if vh else len(pairs) + len(runs))
    nan = k.minmax_runs(_ro(src3), zmap, ymap, xmap, -origin[2], cval, lengths, pairs, runs,
                        is_max, vh, check, dst3, _threads(work), work)
    if nan:
        raise ValueError(NAN_MESSAGE)


def _small(k, src3, dst3, ky, kx, origin, is_max, mode, cval, check_nan=False):
    """A box of ``ky`` rows (fewer than :data:`VH_COL`) and ``kx`` columns (at most
    :data:`SMALL_X`, ``origin[2]`` in ``(-kx, 0]``) of the planes of ``src3``, by ``minmax_small``;
    ``check_nan``: raise ValueError for NaN in ``src3``, checked as the rows are read."""
    nz, ny, nx = src3.shape
    ymap = _axis_map(ny, origin[1], ny + origin[1] + ky - 1, mode)
    xmap = _axis_map(nx, origin[2], nx + origin[2] + kx - 1, mode)
    check = check_nan and src3.dtype.kind == "f"
    work = src3.nbytes * (ky + kx)
    nan = k.minmax_small(_ro(src3), ymap, xmap, -origin[2], cval, is_max, check, dst3,
                         _threads(work), work)
    if nan:
        raise ValueError(NAN_MESSAGE)


def _box(k, src3, dst3, lengths, origin, is_max, mode, cval, check_nan=False):
    """Box footprints, separable: the rows of a plane in one streamed pass of run rows (combined
    down the columns by van Herk / Gil-Werman when the box is tall, whose cost does not grow with
    the height); the plane axis by van Herk / Gil-Werman (``vrun``) or runs."""
    nz, ny, nx = src3.shape
    kz, ky, kx = lengths
    stages = []
    if ky > 1 or kx > 1 or origin[1] != 0 or origin[2] != 0:
        stages.append(("runs", (1, ky, kx), (0, origin[1], origin[2]), src3.shape))
    if kz > 1 or origin[0] != 0:
        # the plane axis as the middle axis of (1, planes, rows * columns)
        view = (1, nz, ny * nx)
        if kz >= VH_COL:
            stages.append(("vrun", kz, origin[0], view))
        else:
            stages.append(("runs", (1, kz, 1), (0, origin[0], 0), view))
    if check_nan and (not stages or stages[0][0] != "runs"):
        _check_nan(src3)
        check_nan = False
    if not stages:
        np.copyto(dst3, src3)
        return
    cur = src3
    for i, (kind, size, org, view) in enumerate(stages):
        target = dst3 if i == len(stages) - 1 else _empty(src3.shape, src3.dtype)
        src_v, tgt_v = cur.reshape(view), target.reshape(view)
        if kind == "runs" and size[1] < VH_COL and 0 <= -org[2] < size[2] <= SMALL_X:
            _small(k, src_v, tgt_v, size[1], size[2], org, is_max, mode, cval,
                   check_nan=check_nan and i == 0)
        elif kind == "runs":
            _runs(k, src_v, tgt_v, np.ones(size, bool), list(org), is_max, mode, cval,
                  vh=size[1] >= VH_COL, check_nan=check_nan and i == 0)
        else:
            n = view[1]
            amap = _axis_map(n, org, n + org + size - 1, mode)
            k.vrun(_ro(src_v), amap, cval, size, is_max, tgt_v, _threads(src3.nbytes * 4))
        cur = target


def _grey(k, src, seq, *, is_max, mode, cval, dtype, dst=None, check_nan=False):
    """Apply a footprint sequence with one op; ``src`` is a kernel view (never written);
    ``check_nan``: raise ValueError for NaN in ``src`` (a NumPy array)."""
    border = _border_value(dtype, mode, cval, is_max=is_max)
    kmode = _kernel_mode(mode)
    steps = []
    for fp, n in seq:
        steps.extend([_pad_odd(fp, pad_end=False)] * n)
    if not steps:
        if check_nan:
            _check_nan(src)
        return _copy(src, dst)
    cur = src
    for i, fp in enumerate(steps):
        last = i == len(steps) - 1
        cur = _minmax(k, cur, fp, is_max=is_max, mode=kmode, border=border,
                      dst=dst if last else None, check_nan=check_nan and i == 0)
    return cur


def _binary(k, src, seq, *, is_max, border_true, dst=None):
    """scipy.ndimage's binary erosion / dilation on a 0/1 uint8 view (footprints padded at the end;
    dilation mirrors the footprint)."""
    border = np.uint8(border_true)
    steps = []
    for fp, n in seq:
        fp = _pad_odd(fp, pad_end=True)
        if is_max:
            fp = _mirror(fp)
        steps.extend([fp] * n)
    if not steps:
        return _copy(src, dst)
    cur = src
    for i, fp in enumerate(steps):
        last = i == len(steps) - 1
        cur = _minmax(k, cur, fp, is_max=is_max, mode="constant", border=border,
                      dst=dst if last else None)
    return cur


def _copy(src, dst=None):
    """``src`` copied (into ``dst`` if given), on the host or on the GPU."""
    if is_device_array(src):
        from numba import cuda

        dst = cuda.device_array(src.shape, src.dtype) if dst is None else dst
        dst.copy_to_device(src)
        return dst
    if dst is None:
        return src.copy()
    np.copyto(dst, src)
    return dst
