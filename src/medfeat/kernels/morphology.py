"""Grey-level and binary morphology (erosion, dilation, opening, closing) and flat footprints.

Names, defaults and results follow :mod:`skimage.morphology` (0.26), plus a keyword-only
``backend="auto" | "numba" | "cuda"``. Every kernel works on 2-D images and 3-D volumes with any
flat footprint (disk, rectangle, diamond, ball, cube, or an arbitrary boolean array), and gives
exactly scikit-image's result.

How it is computed
------------------
A flat erosion is a minimum over the footprint, a dilation a maximum. Python prepares (footprint
decomposition, border index maps), the compiled backends run two kernels (``minmax_runs`` and
``vrun`` in :mod:`medfeat._kernels.numba_cpu.morphology`):

- Any footprint is cut into horizontal runs (chords) [3]_. The image is processed in bands of rows,
  in parallel; a band computes, for each distinct run length L, the running min/max of its rows
  (plus a halo) by repeated doubling (log2 L vectorised passes; van Herk / Gil-Werman for very long
  runs), then takes the min/max over the footprint's rows of the shifted results while they are
  still in cache. One pass over the image, whatever the footprint.
- A footprint whose True elements fill a box (rectangle, cube) is also separable: tall boxes and the
  plane axis of cubes use van Herk / Gil-Werman across rows, vectorised over the columns, whose
  cost per pixel does not grow with the side [1]_ [2]_.

On the GPU (``backend="cuda"``, or "auto" with a GPU array;
:mod:`medfeat._kernels.numba_cuda.morphology`) boxes are separable 1-D passes and other footprints
one pass over their offsets, one thread per pixel; GPU input gives GPU output, and ``out`` is not
supported there.

Borders are handled by index maps computed here, with scipy.ndimage's mode names and semantics.
One deliberate difference: with ``mode='reflect'`` and a non-rectangular footprint reaching four or
more image lengths past the border (a footprint far larger than the image), scipy.ndimage, and so
scikit-image, reads values from outside its buffer; here the reflection simply continues.

References
----------
.. [1] M. van Herk, "A fast algorithm for local minimum and maximum filters on rectangular and
       octagonal kernels", Pattern Recognition Letters 13(7):517-521, 1992.
.. [2] J. Gil and M. Werman, "Computing 2-D min, median, and max filters", IEEE Transactions on
       Pattern Analysis and Machine Intelligence 15(5):504-507, 1993.
.. [3] E. R. Urbach and M. H. F. Wilkinson, "Efficient 2-D grayscale morphological transformations
       with arbitrary flat structuring elements", IEEE Transactions on Image Processing 17(1):1-8,
       2008.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._kernels._common import MODES
from . import _dask
from ._dispatch import (cuda_kernels, device_helpers, get_kernel, implementation, is_device_array,
                        resolve_backend, wants_cuda)
from ._validate import (SUPPORTED_DTYPES, check_choice, check_device_image, check_footprint,
                        check_image)

__all__ = [
    "erosion", "dilation", "opening", "closing",
    "binary_erosion", "binary_dilation", "binary_opening", "binary_closing",
    "disk", "rectangle", "diamond", "ball", "cube",
]

# The CPU backend of "auto": Numba, the faster of the two CPU implementations this family once had
# in every case but 3x3 boxes, a tie (benchmarks/results/architecture-2026-12-03.md).
AUTO_EROSION = AUTO_DILATION = AUTO_OPENING = AUTO_CLOSING = AUTO_BINARY = ("numba",)

GREY_MODES = ("reflect", "constant", "nearest", "mirror", "wrap", "max", "min", "ignore")
BINARY_MODES = ("max", "min", "ignore")
GREY_DTYPES = (*SUPPORTED_DTYPES, np.bool_)
_FAMILY = "morphology"
# Box sides (rows, planes) at least this long use van Herk / Gil-Werman across rows (vrun, about
# three operations per pixel plus block bookkeeping); shorter ones L row operations in minmax_runs.
# Measured on 2048² uint8 with one thread: 3 rows 0.4 ms, van Herk 0.5-0.8 ms whatever the length.
VH_COL = 5
# Output rows per band of the one-pass run kernel: the halo of (footprint height - 1) run rows is
# recomputed per band, and a band's run rows should stay in cache.
BAND = 32
# Jobs below this many byte-passes (image bytes x row operations per pixel) run on one thread:
# about 0.25 ms on one core here, less than waking the thread team saves. Tuned on the idle 2-core
# machine: a 3x3 erosion of a 2048² uint8 image takes 1.7 ms on one thread and 0.9 ms on two (as
# fast as cv2.erode). On a machine saturated by other jobs two threads can lose a scheduler slice.
SERIAL_WORK = 4e6


# --------------------------------------------------------------------------------------------------
# footprints


def _check_radius(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_width(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def disk(radius, dtype=np.uint8, *, strict_radius=True):
    """Flat disk-shaped footprint: the pixels within Euclidean distance ``radius`` of the centre.

    Same array as ``skimage.morphology.disk`` (without its ``decomposition`` option: the kernels
    here are already fast for the whole disk).

    Parameters
    ----------
    radius : int
        Radius in pixels (>= 0); the footprint is ``(2 * radius + 1)`` pixels a side.
    dtype : dtype, optional
        dtype of the result (uint8 by default, like scikit-image).
    strict_radius : bool, optional
        If False, the radius is extended by 0.5, which rounds the disk out within the same square.

    Returns
    -------
    ndarray of ``dtype``
        1 inside the disk, 0 outside.

    Examples
    --------
    >>> disk(1)
    array([[0, 1, 0],
           [1, 1, 1],
           [0, 1, 0]], dtype=uint8)
    """
    radius = _check_radius(radius, "radius")
    r = np.arange(-radius, radius + 1)
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    limit = radius if strict_radius else radius + 0.5
    return np.asarray(d2 <= limit * limit, dtype=dtype)


def rectangle(nrows, ncols, dtype=np.uint8):
    """Flat rectangular footprint of ``nrows`` × ``ncols`` ones.

    Same array as ``skimage.morphology.footprint_rectangle((nrows, ncols))`` (and the deprecated
    ``skimage.morphology.rectangle``).

    Parameters
    ----------
    nrows, ncols : int
        Number of rows and columns (>= 1).
    dtype : dtype, optional
        dtype of the result (uint8 by default).

    Returns
    -------
    ndarray of ``dtype``, shape (nrows, ncols)

    Examples
    --------
    >>> rectangle(2, 3)
    array([[1, 1, 1],
           [1, 1, 1]], dtype=uint8)
    """
    shape = (_check_width(nrows, "nrows"), _check_width(ncols, "ncols"))
    return np.ones(shape, dtype=dtype)


def diamond(radius, dtype=np.uint8):
    """Flat diamond-shaped footprint: pixels within city-block distance ``radius`` of the centre.

    Same array as ``skimage.morphology.diamond``.

    Parameters
    ----------
    radius : int
        Radius in pixels (>= 0).
    dtype : dtype, optional
        dtype of the result (uint8 by default).

    Returns
    -------
    ndarray of ``dtype``, shape (2 * radius + 1, 2 * radius + 1)

    Examples
    --------
    >>> diamond(1)
    array([[0, 1, 0],
           [1, 1, 1],
           [0, 1, 0]], dtype=uint8)
    """
    radius = _check_radius(radius, "radius")
    r = np.abs(np.arange(-radius, radius + 1))
    return np.asarray(r[:, None] + r[None, :] <= radius, dtype=dtype)


def ball(radius, dtype=np.uint8, *, strict_radius=True):
    """Flat ball-shaped 3-D footprint: voxels within Euclidean distance ``radius`` of the centre.

    Same array as ``skimage.morphology.ball`` for integer radii.

    Parameters
    ----------
    radius : int
        Radius in voxels (>= 0).
    dtype : dtype, optional
        dtype of the result (uint8 by default).
    strict_radius : bool, optional
        If False, the radius is extended by 0.5.

    Returns
    -------
    ndarray of ``dtype``, shape (2 * radius + 1,) * 3

    Examples
    --------
    >>> ball(1).sum()
    np.uint64(7)
    """
    radius = _check_radius(radius, "radius")
    r = np.arange(-radius, radius + 1)
    d2 = r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2
    limit = radius if strict_radius else radius + 0.5
    return np.asarray(d2 <= limit * limit, dtype=dtype)


def cube(width, dtype=np.uint8):
    """Flat cubic 3-D footprint of ``width``³ ones.

    Same array as ``skimage.morphology.footprint_rectangle((width,) * 3)`` (and the deprecated
    ``skimage.morphology.cube``).

    Parameters
    ----------
    width : int
        Edge length (>= 1).
    dtype : dtype, optional
        dtype of the result (uint8 by default).

    Returns
    -------
    ndarray of ``dtype``, shape (width, width, width)

    Examples
    --------
    >>> cube(2).shape
    (2, 2, 2)
    """
    width = _check_width(width, "width")
    return np.ones((width,) * 3, dtype=dtype)


# --------------------------------------------------------------------------------------------------
# argument preparation


def _is_sequence(footprint):
    """True for scikit-image's footprint sequences: ``((array, n_iter), ...)``."""
    if not isinstance(footprint, (tuple, list)) or len(footprint) == 0:
        return False
    return all(
        isinstance(t, tuple) and len(t) == 2 and isinstance(t[0], np.ndarray)
        and isinstance(t[1], numbers.Integral) and not isinstance(t[1], bool)
        for t in footprint
    )


def _prepare_footprint(footprint, ndim):
    """A list of ``(bool footprint, n_iter)``: the default cross, one array, or a sequence."""
    if footprint is None:
        fp = np.zeros((3,) * ndim, bool)
        for ax in range(ndim):
            idx = [1] * ndim
            idx[ax] = slice(None)
            fp[tuple(idx)] = True
        return [(fp, 1)]
    if _is_sequence(footprint):
        seq = []
        for fp, n in footprint:
            if n < 0:
                raise ValueError(f"footprint sequence iteration counts must be >= 0, got {n}")
            seq.append((check_footprint(fp, ndim), int(n)))
        return seq
    if hasattr(footprint, "__cuda_array_interface__") and not isinstance(footprint, np.ndarray):
        raise ValueError("footprint must be a NumPy array (it lives on the GPU)")
    return [(check_footprint(footprint, ndim), 1)]


def _pad_odd(fp, *, pad_end):
    """Pad even axes of ``fp`` by one (at the end or the front), as scikit-image does."""
    pads = [((0, 1) if pad_end else (1, 0)) if n % 2 == 0 else (0, 0) for n in fp.shape]
    return np.pad(fp, pads) if any(p != (0, 0) for p in pads) else fp


def _mirror(fp):
    return fp[(slice(None, None, -1),) * fp.ndim]


def _border_value(dtype, mode, cval, *, is_max):
    """The value outside the image, in the kernel dtype, for a constant-like ``mode`` (else None).

    ``"max"``/``"min"`` use the dtype's extremes (infinities for floats); ``"ignore"`` means the
    neutral one (the maximum for an erosion, the minimum for a dilation).
    """
    dtype = np.dtype(dtype)
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
    cval = float(cval)
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


def _axis_map(n, lo, hi, mode):
    """Source index of each extended position ``lo <= j < hi`` along an axis of length ``n``
    (-1 where the constant border value applies), with scipy.ndimage's boundary modes (used on
    the host by both the CPU and the GPU paths)."""
    return implementation(_FAMILY, "numba").axis_map(n, lo, hi, MODES[mode])


def _kernel_mode(mode):
    return "constant" if mode in ("max", "min", "ignore") else mode


def _check_out(out, shape, dtype, name="out"):
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array or None, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have the image's shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise ValueError(f"{name} must have dtype {np.dtype(dtype).name}, got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return out


def _ro(a):
    """A read-only view: the compiled kernels then see one array type per dtype, whether the
    caller's array is writeable or not (one Numba specialisation instead of two)."""
    v = a.view()
    v.flags.writeable = False
    return v


def _as3d(a):
    return a.reshape((1,) * (3 - a.ndim) + a.shape)


class _Kernels:
    """The two compiled kernels of one backend."""

    def __init__(self, backend):
        self.backend = backend
        self.vrun = get_kernel(_FAMILY, "vrun", backend, auto=(backend,))[1]
        self.minmax_runs = get_kernel(_FAMILY, "minmax_runs", backend, auto=(backend,))[1]


class _CudaKernels:
    """The GPU's kernels, and whether the caller's image was a NumPy array (result copied back)."""

    backend = "cuda"

    def __init__(self, to_host):
        self.to_host = to_host
        self.impl = get_kernel(_FAMILY, "footprint_minmax", "cuda", auto=("cuda",))[1]
        self.nonzero_u8 = cuda_kernels(_FAMILY).nonzero_u8


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


def _check_batch(batch):
    if not isinstance(batch, (bool, np.bool_)):
        raise ValueError(f"batch must be True or False, got {batch!r}")
    return bool(batch)


def _footprints(footprint, ndim, batch):
    """:func:`_prepare_footprint` for an image of rank ``ndim``; with ``batch`` the footprint is 2-D
    and lifted to ``(1, rows, cols)``: a 3-D filter that never reaches across the stack's first
    axis is the 2-D filter of each image."""
    if not batch:
        return _prepare_footprint(footprint, ndim)
    return [(fp[None], n) for fp, n in _prepare_footprint(footprint, 2)]


def _prepare_cuda(image, backend, auto, *, binary, batch=False):
    """Validation and placement of the CUDA path: ``(image, kernel view, kernels)``."""
    resolve_backend(backend, auto=auto, image=image, family=_FAMILY)  # fails first if unavailable
    _common = device_helpers()
    dtype, shape = check_device_image(image, dtypes=GREY_DTYPES, ndim=3 if batch else (2, 3),
                                      name="image stack" if batch else "image")
    d, on_gpu = _common.to_device(image)
    k = _CudaKernels(not on_gpu)
    if binary:
        src = (d.view(np.uint8) if dtype == np.bool_
               else k.nonzero_u8(_common.flat(d)).reshape(shape))
        return d, src, k
    if dtype.kind == "f":
        if cuda_kernels("density").value_range(_common.flat(d), np.zeros(0, np.uint8))[2]:
            raise ValueError(
                "image contains NaN, for which a minimum/maximum has no defined result "
                "(scikit-image's result depends on the footprint's shape); replace NaNs first"
            )
    return d, (d.view(np.uint8) if dtype == np.bool_ else d), k


def _minmax(k, src, fp, *, is_max, mode, border, dst=None):
    """``dst[i] = op over {j : fp[j]} of ext(src)[i + j - centre]`` (op = max if ``is_max``).

    ``src`` is C-contiguous 2-D or 3-D in the kernel dtype, ``fp`` boolean with odd sides,
    ``border`` the constant border value (or None for the other modes). Returns ``dst``.
    """
    if k.backend == "cuda":
        return _minmax_cuda(k, src, fp, is_max=is_max, mode=mode, border=border, dst=dst)
    if dst is None:
        dst = np.empty(src.shape, src.dtype)
    cval = border if border is not None else src.dtype.type(0)
    src3, dst3, fp3 = _as3d(src), _as3d(dst), _as3d(fp)
    # Crop the footprint to its bounding box; `origin`: the box's offset from the footprint centre.
    nzidx = np.nonzero(fp3)
    lo = [int(ix.min()) for ix in nzidx]
    hi = [int(ix.max()) + 1 for ix in nzidx]
    box = fp3[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    origin = [lo[a] - fp3.shape[a] // 2 for a in range(3)]
    if box.all():
        _box(k, src3, dst3, box.shape, origin, is_max, mode, cval)
    else:
        _runs(k, src3, dst3, box, origin, is_max, mode, cval)
    return dst


def _threads(work):
    """1 for small jobs, else 0 (the backend's default): a fork-join region waits for its slowest
    thread, and on a busy machine a thread the OS has not scheduled costs a whole time slice (4 ms
    here), more than a small job takes on one core."""
    return 1 if work < SERIAL_WORK else 0


def _runs(k, src3, dst3, box, origin, is_max, mode, cval):
    """The footprint ``box`` (no empty border; ``origin`` = offset of its first element from the
    centre) cut into horizontal runs, all done in one pass of ``minmax_runs``.

    A 3-D footprint makes each band of output recompute its run rows for every plane offset: more
    work than a plane-by-plane pass, but one parallel region and no image-sized temporaries.
    """
    nz, ny, nx = src3.shape
    kz, ky, kx = box.shape
    zmap = _axis_map(nz, origin[0], nz + origin[0] + kz - 1, mode)
    ymap = _axis_map(ny, origin[1], ny + origin[1] + ky - 1, mode)
    xmap = _axis_map(nx, origin[2], nx + origin[2] + kx - 1, mode)
    found = []  # (jz, jy, start, length)
    for jz in range(kz):
        for jy in range(ky):
            d = np.diff(np.concatenate(([0], box[jz, jy].astype(np.int8), [0])))
            for s, e in zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]):
                found.append((jz, jy, int(s), int(e - s)))
    lengths = sorted({f[3] for f in found})
    pair_index = {}
    for jz, _, _, length in sorted(found):
        pair_index.setdefault((jz, lengths.index(length)), len(pair_index))
    pairs = np.array(list(pair_index), dtype=np.int64).reshape(-1, 2)
    runs = np.array([(pair_index[(jz, lengths.index(length))], jy, start)
                     for jz, jy, start, length in found], dtype=np.int64)
    work = src3.nbytes * (len(pairs) + len(runs))
    k.minmax_runs(_ro(src3), zmap, ymap, xmap, -origin[2], cval, np.array(lengths, np.int64),
                  pairs, runs, is_max, BAND, dst3, _threads(work))


def _box(k, src3, dst3, lengths, origin, is_max, mode, cval):
    """Box footprints, separable: rows and short columns in one run pass, tall columns and the
    plane axis by van Herk / Gil-Werman (``vrun``), whose cost does not grow with the length."""
    nz, ny, nx = src3.shape
    kz, ky, kx = lengths
    stages = []
    if ky >= VH_COL:
        if kx > 1 or origin[2] != 0:
            stages.append(("runs", (1, 1, kx), (0, 0, origin[2]), src3.shape))
        stages.append(("vrun", ky, origin[1], src3.shape))
    elif ky > 1 or kx > 1 or origin[1] != 0 or origin[2] != 0:
        stages.append(("runs", (1, ky, kx), (0, origin[1], origin[2]), src3.shape))
    if kz > 1 or origin[0] != 0:
        # the plane axis as the middle axis of (1, planes, rows * columns)
        view = (1, nz, ny * nx)
        if kz >= VH_COL:
            stages.append(("vrun", kz, origin[0], view))
        else:
            stages.append(("runs", (1, kz, 1), (0, origin[0], 0), view))
    if not stages:
        np.copyto(dst3, src3)
        return
    cur = src3
    for i, (kind, size, org, view) in enumerate(stages):
        target = dst3 if i == len(stages) - 1 else np.empty_like(src3)
        src_v, tgt_v = cur.reshape(view), target.reshape(view)
        if kind == "runs":
            _runs(k, src_v, tgt_v, np.ones(size, bool), list(org), is_max, mode, cval)
        else:
            n = view[1]
            amap = _axis_map(n, org, n + org + size - 1, mode)
            k.vrun(_ro(src_v), amap, cval, size, is_max, tgt_v, _threads(src3.nbytes * 4))
        cur = target


# --------------------------------------------------------------------------------------------------
# grey-level morphology


def _prepare_grey(image, footprint, out, mode, cval, backend, auto, batch=False):
    batch = _check_batch(batch)
    if wants_cuda(backend, image):
        if out is not None:
            raise ValueError("out is not supported with backend='cuda' (the result is returned)")
        check_choice(mode, GREY_MODES, name="mode")
        d, _, k = _prepare_cuda(image, backend, auto, binary=False, batch=batch)
        seq = _footprints(footprint, len(d.shape), batch)
        _convert_cval(cval, d.dtype)
        return d, seq, None, k
    image = check_image(image, dtypes=GREY_DTYPES, ndim=3 if batch else (2, 3),
                        name="image stack" if batch else "image")
    check_choice(mode, GREY_MODES, name="mode")
    if image.dtype.kind == "f" and np.isnan(image).any():
        raise ValueError(
            "image contains NaN, for which a minimum/maximum has no defined result "
            "(scikit-image's result depends on the footprint's shape); replace NaNs first"
        )
    seq = _footprints(footprint, image.ndim, batch)
    out = _check_out(out, image.shape, image.dtype)
    # validate cval even when the mode does not use it, so a bad value never passes silently
    _convert_cval(cval, image.dtype)
    chosen = resolve_backend(backend, auto=auto, image=image, family=_FAMILY)
    return image, seq, out, _Kernels(chosen)


def _work(image):
    """C-contiguous kernel view of ``image`` (bool as uint8)."""
    if is_device_array(image):
        return image.view(np.uint8) if image.dtype == np.bool_ else image
    a = np.ascontiguousarray(image)
    return a.view(np.uint8) if a.dtype == np.bool_ else a


def _grey(k, src, seq, *, is_max, mode, cval, dtype, pad_end, mirror, dst=None):
    """Apply a footprint sequence with one op; ``src`` is a kernel view (never written)."""
    border = _border_value(dtype, mode, cval, is_max=is_max)
    kmode = _kernel_mode(mode)
    steps = []
    for fp, n in seq:
        fp = _pad_odd(fp, pad_end=pad_end)
        if mirror:
            fp = _mirror(fp)
        steps.extend([fp] * n)
    if not steps:
        return _copy(src, dst)
    cur = src
    for i, fp in enumerate(steps):
        last = i == len(steps) - 1
        cur = _minmax(k, cur, fp, is_max=is_max, mode=kmode, border=border,
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


def _finish(result, image_dtype, out, direct, k=None):
    """Bool views back to bool; copy into ``out`` unless the kernels wrote there (``direct``)."""
    if getattr(k, "to_host", False):
        result = result.copy_to_host()
    if image_dtype == np.bool_ and result.dtype != np.bool_:
        result = result.view(np.bool_)
    if out is None:
        return result
    if direct is None:
        np.copyto(out, result)
    return out


def _direct_dst(out, image):
    """``out`` as a kernel view when the kernels can write into it directly, else None."""
    if out is None or not out.flags.c_contiguous or np.shares_memory(out, image):
        return None
    return out.view(np.uint8) if out.dtype == np.bool_ else out


def erosion(image, footprint=None, out=None, *, mode="reflect", cval=0.0, backend="auto",
            batch=False):
    """Grey-level morphological erosion: the minimum over the footprint around each pixel.

    Same result as ``skimage.morphology.erosion`` in every dtype, 2-D and 3-D.

    Parameters
    ----------
    image : ndarray, 2-D or 3-D
        uint8, uint16, int16, float32, float64 or bool.
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank (non-zero = inside). Even sides are padded at the
        front, as scikit-image does. Default: the cross of connectivity 1. A scikit-image footprint
        sequence ``((fp, n_iter), ...)`` applies each footprint ``n_iter`` times.
    out : ndarray, optional
        Array of the image's shape and dtype to write the result into.
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'max', 'min', 'ignore'}, optional
        Border handling (scipy.ndimage's names). 'max' and 'ignore' treat outside pixels as the
        dtype's maximum (+inf for floats), so they do not change the result; 'min' as its minimum.
    cval : float, optional
        Border value for ``mode='constant'``; cast to the image dtype (integers truncate towards
        zero, like scipy.ndimage). Must lie in the dtype's range and must not be NaN.
    backend : {'auto', 'numba', 'cuda'}, optional
        Implementation; 'auto' takes the fastest measured here.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images and ``footprint`` is 2-D: each
        image is filtered on its own (borders are each image's borders). It runs as one 3-D
        filter whose footprint is one plane thick, so on 'cuda' each pass is one launch over the
        whole stack, and on the CPU backends one call instead of N.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image`` (``out`` when given).

    Raises
    ------
    ValueError
        Unsupported dtype or rank, empty image, NaN in a float image (a minimum with NaN has no
        defined result; scikit-image's answer depends on the footprint's shape), footprint of the
        wrong rank or without True element, unknown mode or backend, cval out of range, wrong
        ``out``.

    Notes
    -----
    Dtypes: uint8, uint16, int16, float32, float64 and bool; the result has the input's dtype
    (no conversion to float: min and max are exact in every dtype). Footprints are decomposed into
    horizontal runs; tall boxes use the van Herk / Gil-Werman running minimum (module notes).

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import erosion, rectangle
    >>> img = np.zeros((5, 5), np.uint8)
    >>> img[1:4, 1:4] = 1
    >>> erosion(img, rectangle(3, 3))
    array([[0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0],
           [0, 0, 1, 0, 0],
           [0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0]], dtype=uint8)
    """
    if _dask.is_dask_array(image):
        return _dask.morphology("erosion", image, footprint, out, mode, cval, backend, batch)
    image, seq, out, k = _prepare_grey(image, footprint, out, mode, cval, backend, AUTO_EROSION,
                                       batch)
    direct = _direct_dst(out, image)
    res = _grey(k, _work(image), seq, is_max=False, mode=mode, cval=cval, dtype=image.dtype,
                pad_end=False, mirror=False, dst=direct)
    return _finish(res, image.dtype, out, direct, k)


def dilation(image, footprint=None, out=None, *, mode="reflect", cval=0.0, backend="auto",
             batch=False):
    """Grey-level morphological dilation: the maximum over the footprint around each pixel.

    Same result as ``skimage.morphology.dilation`` in every dtype, 2-D and 3-D. Like scikit-image,
    the footprint is *not* mirrored:
    ``out[i] = max over {j : footprint[j]} of image[i + j - centre]``.

    Parameters
    ----------
    image : ndarray, 2-D or 3-D
        uint8, uint16, int16, float32, float64 or bool.
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank; even sides are padded at the front. Default: the
        cross of connectivity 1.
    out : ndarray, optional
        Array of the image's shape and dtype to write the result into.
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'max', 'min', 'ignore'}, optional
        Border handling. 'min' and 'ignore' treat outside pixels as the dtype's minimum (-inf for
        floats), so they do not change the result; 'max' as its maximum.
    cval : float, optional
        Border value for ``mode='constant'`` (cast as in :func:`erosion`).
    backend : {'auto', 'numba', 'cuda'}, optional
        Implementation; 'auto' takes the fastest measured here.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images and ``footprint`` is 2-D: each
        image is filtered on its own (borders are each image's borders). It runs as one 3-D
        filter whose footprint is one plane thick, so on 'cuda' each pass is one launch over the
        whole stack, and on the CPU backends one call instead of N.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Raises
    ------
    ValueError
        As :func:`erosion` (NaN in a float image included).

    Notes
    -----
    Dtypes: uint8, uint16, int16, float32, float64 and bool in; the same dtype out.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import dilation, disk
    >>> img = np.zeros((5, 5), np.uint8)
    >>> img[2, 2] = 9
    >>> dilation(img, disk(1))
    array([[0, 0, 0, 0, 0],
           [0, 0, 9, 0, 0],
           [0, 9, 9, 9, 0],
           [0, 0, 9, 0, 0],
           [0, 0, 0, 0, 0]], dtype=uint8)
    """
    if _dask.is_dask_array(image):
        return _dask.morphology("dilation", image, footprint, out, mode, cval, backend, batch)
    image, seq, out, k = _prepare_grey(image, footprint, out, mode, cval, backend, AUTO_DILATION,
                                       batch)
    direct = _direct_dst(out, image)
    res = _grey(k, _work(image), seq, is_max=True, mode=mode, cval=cval, dtype=image.dtype,
                pad_end=False, mirror=False, dst=direct)
    return _finish(res, image.dtype, out, direct, k)


def opening(image, footprint=None, out=None, *, mode="reflect", cval=0.0, backend="auto",
            batch=False):
    """Grey-level morphological opening: erosion, then dilation with the mirrored footprint.

    Removes bright details smaller than the footprint. Same result as
    ``skimage.morphology.opening`` in every dtype, 2-D and 3-D.

    Parameters
    ----------
    image : ndarray, 2-D or 3-D
        uint8, uint16, int16, float32, float64 or bool.
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank. Default: the cross of connectivity 1.
    out : ndarray, optional
        Array of the image's shape and dtype to write the result into.
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'max', 'min', 'ignore'}, optional
        Border handling for both steps; 'ignore' is neutral in each (maximum for the erosion,
        minimum for the dilation).
    cval : float, optional
        Border value for ``mode='constant'`` (cast as in :func:`erosion`).
    backend : {'auto', 'numba', 'cuda'}, optional
        Implementation; 'auto' takes the fastest measured here.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images and ``footprint`` is 2-D: each
        image is filtered on its own (borders are each image's borders). It runs as one 3-D
        filter whose footprint is one plane thick, so on 'cuda' each pass is one launch over the
        whole stack, and on the CPU backends one call instead of N.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Raises
    ------
    ValueError
        As :func:`erosion`.

    Notes
    -----
    Dtypes: uint8, uint16, int16, float32, float64 and bool in; the same dtype out.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import opening, rectangle
    >>> img = np.zeros((7, 7), np.uint16)
    >>> img[1:4, 1:4] = 5        # a 3x3 block: kept
    >>> img[5, 5] = 9            # a one-pixel spike: removed
    >>> opened = opening(img, rectangle(3, 3))
    >>> int(opened[5, 5]), int(opened[2, 2]), int(opened[1, 1])
    (0, 5, 5)
    """
    if _dask.is_dask_array(image):
        return _dask.morphology("opening", image, footprint, out, mode, cval, backend, batch)
    image, seq, out, k = _prepare_grey(image, footprint, out, mode, cval, backend, AUTO_OPENING,
                                       batch)
    src = _work(image)
    tmp = _grey(k, src, seq, is_max=False, mode=mode, cval=cval, dtype=image.dtype,
                pad_end=False, mirror=False)
    # scikit-image pads at the front, then mirrors for the dilation
    seq2 = [(_mirror(_pad_odd(fp, pad_end=False)), n) for fp, n in seq]
    direct = _direct_dst(out, image)
    res = _grey(k, tmp, seq2, is_max=True, mode=mode, cval=cval, dtype=image.dtype,
                pad_end=False, mirror=False, dst=direct)
    return _finish(res, image.dtype, out, direct, k)


def closing(image, footprint=None, out=None, *, mode="reflect", cval=0.0, backend="auto",
            batch=False):
    """Grey-level morphological closing: dilation, then erosion with the mirrored footprint.

    Removes dark details smaller than the footprint. Same result as
    ``skimage.morphology.closing`` in every dtype, 2-D and 3-D.

    Parameters
    ----------
    image : ndarray, 2-D or 3-D
        uint8, uint16, int16, float32, float64 or bool.
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank. Default: the cross of connectivity 1.
    out : ndarray, optional
        Array of the image's shape and dtype to write the result into.
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'max', 'min', 'ignore'}, optional
        Border handling for both steps; 'ignore' is neutral in each.
    cval : float, optional
        Border value for ``mode='constant'`` (cast as in :func:`erosion`).
    backend : {'auto', 'numba', 'cuda'}, optional
        Implementation; 'auto' takes the fastest measured here.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images and ``footprint`` is 2-D: each
        image is filtered on its own (borders are each image's borders). It runs as one 3-D
        filter whose footprint is one plane thick, so on 'cuda' each pass is one launch over the
        whole stack, and on the CPU backends one call instead of N.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Raises
    ------
    ValueError
        As :func:`erosion`.

    Notes
    -----
    Dtypes: uint8, uint16, int16, float32, float64 and bool in; the same dtype out.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import closing, disk
    >>> img = np.full((7, 7), 5, np.int16)
    >>> img[3, 3] = -100         # a one-pixel hole: filled
    >>> int(closing(img, disk(1))[3, 3])
    5
    """
    if _dask.is_dask_array(image):
        return _dask.morphology("closing", image, footprint, out, mode, cval, backend, batch)
    image, seq, out, k = _prepare_grey(image, footprint, out, mode, cval, backend, AUTO_CLOSING,
                                       batch)
    src = _work(image)
    tmp = _grey(k, src, seq, is_max=True, mode=mode, cval=cval, dtype=image.dtype,
                pad_end=False, mirror=False)
    seq2 = [(_mirror(_pad_odd(fp, pad_end=False)), n) for fp, n in seq]
    direct = _direct_dst(out, image)
    res = _grey(k, tmp, seq2, is_max=False, mode=mode, cval=cval, dtype=image.dtype,
                pad_end=False, mirror=False, dst=direct)
    return _finish(res, image.dtype, out, direct, k)


# --------------------------------------------------------------------------------------------------
# binary morphology


def _prepare_binary(image, footprint, out, mode, backend, batch=False):
    batch = _check_batch(batch)
    if wants_cuda(backend, image):
        if out is not None:
            raise ValueError("out is not supported with backend='cuda' (the result is returned)")
        check_choice(mode, BINARY_MODES, name="mode")
        d, src, k = _prepare_cuda(image, backend, AUTO_BINARY, binary=True, batch=batch)
        return d, src, _footprints(footprint, len(d.shape), batch), None, k
    image = check_image(image, dtypes=GREY_DTYPES, ndim=3 if batch else (2, 3),
                        name="image stack" if batch else "image")
    check_choice(mode, BINARY_MODES, name="mode")
    seq = _footprints(footprint, image.ndim, batch)
    out = _check_out(out, image.shape, np.bool_)
    chosen = resolve_backend(backend, auto=AUTO_BINARY, image=image, family=_FAMILY)
    if image.dtype == np.bool_:
        src = np.ascontiguousarray(image).view(np.uint8)
    else:
        src = (image != 0).view(np.uint8)
    return image, src, seq, out, _Kernels(chosen)


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


def _finish_binary(result, out, direct, k=None):
    if getattr(k, "to_host", False):
        result = result.copy_to_host()
    if out is None:
        return result.view(np.bool_)
    if direct is None:
        np.copyto(out, result.view(np.bool_))
    return out


def binary_erosion(image, footprint=None, out=None, *, mode="ignore", backend="auto",
                   batch=False):
    """Binary erosion: a pixel stays True only if the whole footprint around it is True.

    Same result as ``skimage.morphology.binary_erosion`` (0.26, deprecated there in favour of
    :func:`erosion`; kept here because it is the fast path for masks).

    Parameters
    ----------
    image : ndarray, 2-D or 3-D
        bool, or uint8, uint16, int16, float32, float64 read as ``image != 0`` (NaN counts as True,
        as in scipy.ndimage).
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank. Even sides are padded at the *end* (scikit-image's
        binary convention, one pixel off :func:`erosion`'s). Default: the cross of connectivity 1.
    out : ndarray of bool, optional
        Array of the image's shape to write the result into.
    mode : {'ignore', 'max', 'min'}, optional
        Outside pixels are True for 'ignore' and 'max', False for 'min'.
    backend : {'auto', 'numba', 'cuda'}, optional
        Implementation; 'auto' takes the fastest measured here.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images and ``footprint`` is 2-D: each
        image is filtered on its own (borders are each image's borders). It runs as one 3-D
        filter whose footprint is one plane thick, so on 'cuda' each pass is one launch over the
        whole stack, and on the CPU backends one call instead of N.

    Returns
    -------
    ndarray of bool
        Same shape as ``image``.

    Raises
    ------
    ValueError
        Unsupported dtype or rank, empty image, footprint of the wrong rank or without True
        element, unknown mode or backend, ``out`` not a boolean array of the image's shape.

    Notes
    -----
    Dtypes: bool, uint8, uint16, int16, float32, float64 in (non-zero is True); bool out.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import binary_erosion, disk
    >>> mask = np.zeros((5, 5), bool)
    >>> mask[1:4, 1:4] = True
    >>> binary_erosion(mask, disk(1)).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0],
           [0, 0, 1, 0, 0],
           [0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0]])
    """
    if _dask.is_dask_array(image):
        return _dask.morphology("binary_erosion", image, footprint, out, mode, None, backend, batch)
    image, src, seq, out, k = _prepare_binary(image, footprint, out, mode, backend, batch)
    direct = _direct_dst(out, image)
    res = _binary(k, src, seq, is_max=False, border_true=mode != "min",
                  dst=direct)
    return _finish_binary(res, out, direct, k)


def binary_dilation(image, footprint=None, out=None, *, mode="ignore", backend="auto",
                    batch=False):
    """Binary dilation: True where the mirrored footprint around the pixel touches a True pixel.

    Same result as ``skimage.morphology.binary_dilation`` (0.26). Unlike :func:`dilation`, the
    footprint is mirrored (scipy.ndimage's convention); that matters for asymmetric footprints.

    Parameters
    ----------
    image : ndarray, 2-D or 3-D
        bool, or uint8, uint16, int16, float32, float64 read as ``image != 0``.
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank; even sides padded at the end. Default: the cross of
        connectivity 1.
    out : ndarray of bool, optional
        Array of the image's shape to write the result into.
    mode : {'ignore', 'max', 'min'}, optional
        Outside pixels are False for 'ignore' and 'min', True for 'max'.
    backend : {'auto', 'numba', 'cuda'}, optional
        Implementation; 'auto' takes the fastest measured here.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images and ``footprint`` is 2-D: each
        image is filtered on its own (borders are each image's borders). It runs as one 3-D
        filter whose footprint is one plane thick, so on 'cuda' each pass is one launch over the
        whole stack, and on the CPU backends one call instead of N.

    Returns
    -------
    ndarray of bool
        Same shape as ``image``.

    Raises
    ------
    ValueError
        As :func:`binary_erosion`.

    Notes
    -----
    Dtypes: bool, uint8, uint16, int16, float32, float64 in (non-zero is True); bool out.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import binary_dilation
    >>> mask = np.zeros((3, 4), bool)
    >>> mask[1, 1] = True
    >>> binary_dilation(mask).astype(int)
    array([[0, 1, 0, 0],
           [1, 1, 1, 0],
           [0, 1, 0, 0]])
    """
    if _dask.is_dask_array(image):
        return _dask.morphology("binary_dilation", image, footprint, out, mode, None, backend, batch)
    image, src, seq, out, k = _prepare_binary(image, footprint, out, mode, backend, batch)
    direct = _direct_dst(out, image)
    res = _binary(k, src, seq, is_max=True, border_true=mode == "max",
                  dst=direct)
    return _finish_binary(res, out, direct, k)


def binary_opening(image, footprint=None, out=None, *, mode="ignore", backend="auto",
                   batch=False):
    """Binary opening: :func:`binary_erosion` then :func:`binary_dilation` with the same footprint.

    Same result as ``skimage.morphology.binary_opening`` (0.26).

    Parameters
    ----------
    image : ndarray, 2-D or 3-D
        bool, or uint8, uint16, int16, float32, float64 read as ``image != 0``.
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank. Default: the cross of connectivity 1.
    out : ndarray of bool, optional
        Array of the image's shape to write the result into.
    mode : {'ignore', 'max', 'min'}, optional
        'ignore': outside is True for the erosion and False for the dilation (neutral in both);
        'max': True in both; 'min': False in both.
    backend : {'auto', 'numba', 'cuda'}, optional
        Implementation; 'auto' takes the fastest measured here.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images and ``footprint`` is 2-D: each
        image is filtered on its own (borders are each image's borders). It runs as one 3-D
        filter whose footprint is one plane thick, so on 'cuda' each pass is one launch over the
        whole stack, and on the CPU backends one call instead of N.

    Returns
    -------
    ndarray of bool

    Raises
    ------
    ValueError
        As :func:`binary_erosion`.

    Notes
    -----
    Dtypes: bool, uint8, uint16, int16, float32, float64 in (non-zero is True); bool out.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import binary_opening
    >>> mask = np.zeros((5, 5), bool)
    >>> mask[2, 2] = True        # an isolated pixel is removed
    >>> bool(binary_opening(mask).any())
    False
    """
    if _dask.is_dask_array(image):
        return _dask.morphology("binary_opening", image, footprint, out, mode, None, backend, batch)
    image, src, seq, out, k = _prepare_binary(image, footprint, out, mode, backend, batch)
    direct = _direct_dst(out, image)
    tmp = _binary(k, src, seq, is_max=False, border_true=mode != "min")
    res = _binary(k, tmp, seq, is_max=True, border_true=mode == "max",
                  dst=direct)
    return _finish_binary(res, out, direct, k)


def binary_closing(image, footprint=None, out=None, *, mode="ignore", backend="auto",
                   batch=False):
    """Binary closing: :func:`binary_dilation` then :func:`binary_erosion` with the same footprint.

    Same result as ``skimage.morphology.binary_closing`` (0.26).

    Parameters
    ----------
    image : ndarray, 2-D or 3-D
        bool, or uint8, uint16, int16, float32, float64 read as ``image != 0``.
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank. Default: the cross of connectivity 1.
    out : ndarray of bool, optional
        Array of the image's shape to write the result into.
    mode : {'ignore', 'max', 'min'}, optional
        'ignore': outside is False for the dilation and True for the erosion (neutral in both);
        'max': True in both; 'min': False in both.
    backend : {'auto', 'numba', 'cuda'}, optional
        Implementation; 'auto' takes the fastest measured here.
    batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images and ``footprint`` is 2-D: each
        image is filtered on its own (borders are each image's borders). It runs as one 3-D
        filter whose footprint is one plane thick, so on 'cuda' each pass is one launch over the
        whole stack, and on the CPU backends one call instead of N.

    Returns
    -------
    ndarray of bool

    Raises
    ------
    ValueError
        As :func:`binary_erosion`.

    Notes
    -----
    Dtypes: bool, uint8, uint16, int16, float32, float64 in (non-zero is True); bool out.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import binary_closing
    >>> mask = np.ones((5, 5), bool)
    >>> mask[2, 2] = False       # a one-pixel hole is filled
    >>> bool(binary_closing(mask).all())
    True
    """
    if _dask.is_dask_array(image):
        return _dask.morphology("binary_closing", image, footprint, out, mode, None, backend, batch)
    image, src, seq, out, k = _prepare_binary(image, footprint, out, mode, backend, batch)
    direct = _direct_dst(out, image)
    tmp = _binary(k, src, seq, is_max=True, border_true=mode == "max")
    res = _binary(k, tmp, seq, is_max=False, border_true=mode != "min",
                  dst=direct)
    return _finish_binary(res, out, direct, k)
