"""The public kernels on :class:`dask.array.Array` input: images larger than memory, in chunks.

Each public kernel calls :func:`is_dask_array` on its first line and hands a dask array to the
function of the same name here, which validates the arguments once (from the array's metadata:
nothing is computed), resolves the backend once, and builds a lazy graph whose tasks call the
in-memory kernel on NumPy chunks. Nothing here re-implements a kernel's arithmetic, so results are
the in-memory ones:

- Stencils (Sobel, Prewitt) and morphology run as :func:`dask.array.map_overlap` with the
  footprint's radius as ``depth`` (summed over the steps of a footprint sequence and over the two
  halves of an opening or closing), the way dask-image's ``ndfilters`` and ``ndmorph`` do.
  ``boundary`` follows ``mode``: ``'periodic'`` for ``'wrap'``; for every other mode ``'none'``, so
  that a chunk on the image's border is not padded on that side and the in-memory kernel applies
  ``mode`` (reflect, mirror, nearest, constant, max/min/ignore) at the true border itself. Pixels
  within ``depth`` of a chunk's inner edge are wrong in that chunk and trimmed away.
- Histograms, thresholds and the density estimate are chunked reductions: one pass for the value
  range, one for the counts (exact integers, summed), then the in-memory code on the counts.
- Normalisation: one reduction for the statistics, then a map of the same affine kernel.
- Canny: one halo of the Gaussian's radius plus two pixels (the gradient and the non-maximum
  suppression), in which the in-memory kernel's sweep smooths and suppresses each chunk and
  gives its weak and strong candidates in one pass, stopped before its own hysteresis
  (``mode='wrap'``, whose smoothing wraps around the image but whose gradient does not, smooths
  in a first overlapping stage). Each chunk is one task that reads its halo'd region (in one
  slice when the array slices an array-like such as a memory map or a Zarr or HDF5 dataset,
  else from its own chunk and its neighbours' halo strips), computes its candidates and labels
  them; nothing of the halo'd region outlives that task. The
  hysteresis is global. A strong candidate is always an edge and a weak one is an edge when its
  8-connected blob of weak pixels touches a strong pixel, so each chunk floods its weak pixels
  only and decides every pixel but those of the blobs that reach one of its sides without
  touching a strong one; those are numbered along the chunk's sides, numbers that touch across a
  chunk boundary are merged (connected components of the graph of pairs found along the lines
  on either side of every boundary, corners included), and an open blob is an edge when its
  merged component reaches a kept pixel, as dask-image's ``ndmeasure.label`` merges labels
  across chunk faces. Each chunk is computed and labelled once, when ``canny`` is called, and
  what is kept of it (persisted, on the workers under a distributed scheduler) is a bit per
  pixel plus the positions of its open pixels; only the numbers along its sides travel to the
  merge. The returned edge map is lazy and only looks the open pixels up in the merged table.
  No label image the size of the input is ever held.

GPU chunks: a dask array whose chunks are CuPy arrays (its ``_meta`` is one, or exposes
``__cuda_array_interface__``) runs every chunk with ``backend='cuda'`` on the device array, and the
result's chunks and meta stay CuPy (the CUDA path's numba device arrays are wrapped by
``cupy.asarray`` without a copy), as dask-image chooses the implementation by the chunk type. That
holds for the stencils, morphology and ``canny(batch=True)``; the kernels whose dask path runs on
the host (Canny's hysteresis across chunks, histograms, thresholds, density, normalisation) and
GPU chunks given with host data (a NumPy mask) raise :class:`DeviceChunkError` rather than copy
between host and device.

The dask path is bit for bit the in-memory result for morphology, histograms, thresholds and
Canny, and within rounding (1e-6 relative) for the float filters and the moments of ``zscore``,
whatever the chunking. NaN in a chunk (refused by several kernels) is found when that chunk is
computed, so the ``ValueError`` comes from ``compute()``.

References
----------
.. [1] dask-image, ``dask_image.ndfilters`` and ``dask_image.ndmeasure.label``
       (https://github.com/dask/dask-image).
.. [2] K. Wu, E. Otoo, K. Suzuki, "Optimizing two-pass connected-component labeling algorithms",
       Pattern Analysis and Applications 12(2):117-135, 2009 (labels merged through equivalences).
"""

from __future__ import annotations

import functools
import math
import sys

import numpy as np

from ._dispatch import is_device_array, resolve_backend
from ._validate import check_choice, check_image

#: a float selection gathers the values of its interval once at most this many remain.
_GATHER = 1 << 16
#: bins per refinement pass of the float selection.
_SELECT_BINS = 1024


def is_dask_array(x):
    """True for a :class:`dask.array.Array` (checked without importing dask).

    Examples
    --------
    >>> import numpy as np
    >>> is_dask_array(np.zeros(3))
    False
    """
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def _density_module():
    from . import histograms

    return histograms


def _da():
    import dask.array as da

    return da


def _standin(image):
    """A zero-byte NumPy array with ``image``'s shape and dtype: the shared checks of
    :mod:`medfeat.kernels._validate` then run on the metadata alone."""
    return np.broadcast_to(np.zeros((), image.dtype), image.shape)


def _check(image, *, ndim, dtypes, name="image"):
    check_image(_standin(image), ndim=ndim, dtypes=dtypes, name=name)
    return image


def _meta(ndim, dtype):
    return np.empty((0,) * ndim, dtype)


class DeviceChunkError(ValueError):
    """GPU and host data mixed in one call on dask arrays (a dask array of CuPy chunks with a
    NumPy mask, or the reverse), or GPU chunks given to a kernel that has no GPU path on dask
    arrays. Nothing is converted behind the caller's back: a silent copy between host and device
    would cost more than the kernel."""


def on_device(x):
    """True when ``x`` lives on the GPU: for a dask array, when its chunks do (its ``_meta`` is a
    CuPy array, or any array exposing ``__cuda_array_interface__``); checked by the type's module
    name and that attribute, without importing CuPy.

    Examples
    --------
    >>> import numpy as np
    >>> on_device(np.zeros(3))
    False
    """
    meta = getattr(x, "_meta", x) if is_dask_array(x) else x
    return is_device_array(meta) or type(meta).__module__.split(".")[0] == "cupy"


class _OnGPU:
    """Stands for GPU input in :func:`medfeat.kernels._dispatch.resolve_backend`."""

    __cuda_array_interface__ = None


def _resolve(backend, image, *, auto, family):
    """The backend for every chunk of ``image``: as for an in-memory array of the chunks' kind
    ('auto' takes 'cuda' for GPU chunks; a CPU backend is refused for them)."""
    return resolve_backend(backend, auto=auto, family=family,
                           image=_OnGPU() if on_device(image) else None)


def _no_device_path(image, kernel, hint):
    if on_device(image):
        raise DeviceChunkError(f"{kernel} of a dask array of GPU (CuPy) chunks is not supported: "
                               f"{hint}; or move the chunks to the host first "
                               "(x.map_blocks(cupy.asnumpy))")


def _as_chunk_type(result, block):
    """A kernel's result for a GPU chunk as an array of the chunk's own type, so that the dask
    array stays CuPy-backed: the CUDA path returns numba device arrays, which the chunk library's
    ``asarray`` wraps through ``__cuda_array_interface__`` without a copy (dask-image likewise
    keeps CuPy chunks CuPy, choosing the implementation by the chunk type)."""
    if type(result) is type(block) or not on_device(block):
        return result
    return sys.modules[type(block).__module__.split(".")[0]].asarray(result)


def _meta_like(array, ndim, dtype):
    """The ``_meta`` of a result computed from ``array``'s chunks: of their array type."""
    if not on_device(array):
        return _meta(ndim, dtype)
    from dask.array.utils import meta_from_array

    return meta_from_array(array._meta, ndim=ndim, dtype=dtype)


def _mask_like(mask, image, name="mask"):
    """``mask`` (NumPy or dask; on the GPU with GPU chunks) as a boolean dask array chunked like
    ``image``."""
    da = _da()
    if on_device(mask) != on_device(image):
        where = {True: "on the GPU", False: "in host memory"}
        raise DeviceChunkError(f"{name} lives {where[on_device(mask)]} but the image's chunks "
                               f"{where[on_device(image)]}; give both on the same side (no copy "
                               "is made between host and device)")
    if is_dask_array(mask):
        if tuple(mask.shape) != tuple(image.shape):
            raise ValueError(f"{name} must have the image's shape {tuple(image.shape)}, got "
                             f"{tuple(mask.shape)}")
        if mask.dtype.kind in "cOSUV":
            raise ValueError(f"{name} must be a boolean array, got dtype {mask.dtype}")
        return (mask != 0 if mask.dtype != np.bool_ else mask).rechunk(image.chunks)
    from ._validate import check_device_mask, check_mask

    if on_device(mask):
        mask = check_device_mask(mask, tuple(image.shape), name=name)
        return da.from_array(mask if mask.dtype == np.bool_ else mask != 0, chunks=image.chunks)
    return da.from_array(check_mask(mask, image.shape, name=name), chunks=image.chunks)


def _overlap(func, arrays, depth, boundary, dtype):
    """``map_overlap`` of ``func`` over ``arrays`` (same shape), with an axis whose halo would
    reach past the whole image taken as one chunk instead (the in-memory kernel then sees the
    whole axis and applies ``mode`` at both ends)."""
    da = _da()
    first = arrays[0]
    depth = dict(depth)
    whole = {}
    for axis, d in depth.items():
        if d >= first.shape[axis] or (d > 0 and len(first.chunks[axis]) == 1):
            whole[axis] = -1
            depth[axis] = 0
    if whole:
        arrays = [a.rechunk(whole) for a in arrays]
    if not any(depth.values()):
        return da.map_blocks(func, *arrays, dtype=dtype, meta=_meta_like(first, first.ndim, dtype))
    return da.map_overlap(func, *arrays, depth=depth, boundary=boundary, dtype=dtype,
                          meta=_meta_like(first, first.ndim, dtype), align_arrays=True)


def _boundaries(modes):
    return {a: "periodic" if m == "wrap" else "none" for a, m in enumerate(modes)}


def _blocks(*arrays):
    """The chunks of same-chunked arrays as tuples of delayed NumPy blocks."""
    return list(zip(*(a.to_delayed().ravel() for a in arrays)))


def _tree(combine, parts):
    """Pairwise (tree) reduction of delayed parts."""
    import dask

    merge = dask.delayed(combine, pure=True)
    while len(parts) > 1:
        parts = [merge(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def _reduce(per_block, combine, *arrays, compute=True):
    import dask

    f = dask.delayed(per_block, pure=True)
    total = _tree(combine, [f(*bs) for bs in _blocks(*arrays)])
    return total.compute() if compute else total


def _check_batch(batch):
    if not isinstance(batch, (bool, np.bool_)):
        raise ValueError(f"batch must be True or False, got {batch!r}")
    return bool(batch)


def _whole_images(stack):
    """A ``batch`` stack rechunked so that every chunk holds whole images."""
    return stack.rechunk({a: -1 for a in range(1, stack.ndim)})


# ------------------------------------------------------------------------------------------- edges


def _edge_block(block, *, public, axis, mode, cval, backend, batch=False):
    return _as_chunk_type(public(block, axis=axis, mode=mode, cval=cval, backend=backend,
                                 batch=batch), block)


def _eroded_block(block):
    """The mask eroded by one pixel with full connectivity, the image border excluded (outside is
    False), as the edge kernels erode their ``mask``."""
    from .morphology import binary_erosion

    return _as_chunk_type(binary_erosion(block, np.ones((3,) * block.ndim, bool), mode="min"),
                          block)


def edge_filter(public, image, mask, axis, mode, cval, backend, batch, *, auto):
    """:func:`medfeat.kernels.sobel` / :func:`~medfeat.kernels.prewitt` of a dask array."""
    from . import edges as E
    from ._validate import float_dtype

    batch = E._check_batch(batch, mask)
    if batch:
        _check(image, ndim=3, dtypes=E._DTYPES, name="image stack")
        nd = 2
    else:
        _check(image, ndim=(2, 3), dtypes=E._DTYPES)
        nd = image.ndim
    E._check_axes(axis, nd)
    E._check_modes(mode, nd)
    modes = [mode] * nd if isinstance(mode, str) else list(mode)
    cval = E._check_cval(cval)
    chosen = _resolve(backend, image, auto=auto, family=E._FAMILY)
    dtype = np.dtype(np.float64) if image.dtype == np.bool_ else float_dtype(image.dtype)
    func = functools.partial(_edge_block, public=public, axis=axis, mode=mode, cval=cval,
                             backend=chosen, batch=batch)
    if batch:
        return _overlap(func, [image], {0: 0, 1: 1, 2: 1},
                        {0: "none", **{a + 1: b for a, b in _boundaries(modes).items()}}, dtype)
    out = _overlap(func, [image], {a: 1 for a in range(nd)}, _boundaries(modes), dtype)
    if mask is None:
        return out
    # the kernels multiply by the eroded 0/1 mask: the same product, chunk by chunk
    m = _mask_like(mask, image)
    eroded = _overlap(_eroded_block, [m], {a: 1 for a in range(nd)}, "none", np.bool_)
    return out * eroded.rechunk(out.chunks).astype(dtype)


# -------------------------------------------------------------------------------------- morphology

_SECOND_HALF = {"opening": True, "closing": True, "binary_opening": True, "binary_closing": True}


def _morph_block(block, *, public, kwargs):
    return _as_chunk_type(public(block, **kwargs), block)


def morphology(name, image, footprint, out, mode, cval, backend, batch):
    """Grey or binary morphology ``name`` of a dask array: one ``map_overlap`` whose halo is the
    sum of the radii of every step (footprint sequences, both halves of an opening/closing)."""
    from . import morphology as M

    if out is not None:
        raise ValueError("out is not supported for dask arrays (the result is a lazy dask array)")
    batch = M._check_batch(batch)
    binary = name.startswith("binary_")
    _check(image, ndim=3 if batch else (2, 3), dtypes=M.GREY_DTYPES,
           name="image stack" if batch else "image")
    check_choice(mode, M.BINARY_MODES if binary else M.GREY_MODES, name="mode")
    seq = M._footprints(footprint, image.ndim, batch)
    kwargs = {"footprint": footprint, "mode": mode, "batch": batch}
    if not binary:
        M._convert_cval(cval, image.dtype)
        kwargs["cval"] = cval
    auto = M.AUTO_BINARY if binary else getattr(M, f"AUTO_{name.upper()}")
    kwargs["backend"] = _resolve(backend, image, auto=auto, family=M._FAMILY)
    halves = 2 if _SECOND_HALF.get(name) else 1
    depth = {a: halves * sum(n * (fp.shape[a] // 2) for fp, n in seq) for a in range(image.ndim)}
    boundary = "periodic" if mode == "wrap" else "none"
    dtype = np.dtype(np.bool_) if binary else image.dtype
    func = functools.partial(_morph_block, public=getattr(M, name), kwargs=kwargs)
    return _overlap(func, [image], depth, boundary, dtype)


# ----------------------------------------------------------------------------------------- density


def _range_block(block):
    """(min, max, has NaN) of one block (float64; NaN propagates through min and max)."""
    if block.size == 0:
        return (math.inf, -math.inf, False)
    lo, hi = block.min(), block.max()
    nan = bool(block.dtype.kind == "f" and (np.isnan(lo) or np.isnan(hi)))
    return (float(lo), float(hi), nan)


def _range_merge(a, b):
    return (min(a[0], b[0]), max(a[1], b[1]), a[2] or b[2])


def _value_range(image, name="image"):
    """Exact (min, max) of a dask array as values of its dtype; raises for NaN."""
    lo, hi, nan = _reduce(_range_block, _range_merge, image)
    if nan:
        raise ValueError(f"{name} contains NaN, for which this kernel has no defined result")
    return image.dtype.type(lo), image.dtype.type(hi)


def _hist_block(block, *, bins, range, backend):
    from .histograms import histogram

    return histogram(block, bins, range, backend=backend)


def _hist_merge(a, b):
    return a[0] + b[0], a[1]


def _density_image(image, name="image"):
    from ._validate import SUPPORTED_DTYPES

    if image.ndim < 1:
        raise ValueError(f"{name} must have at least 1 dimension, got a 0-D array")
    return _check(image, ndim=image.ndim, dtypes=SUPPORTED_DTYPES, name=name)


def _per_image(func, stack, **kwargs):
    """``func(chunk, batch=True, **kwargs)`` of every chunk of whole images, computed; the
    results (arrays, or tuples of arrays) concatenated along the stack axis."""
    import dask

    parts = dask.compute(*[dask.delayed(func, pure=True)(b[0], batch=True, **kwargs)
                           for b in _blocks(_whole_images(stack).rechunk({0: stack.chunks[0]}))])
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(p) for p in zip(*parts))
    return np.concatenate(parts)


def _hist_range(image, range):
    """The (first, last) edges :func:`numpy.histogram` would use: ``range``, or the data's extent
    as values of the image's dtype."""
    if range is not None:
        return range
    lo, hi = _value_range(image)
    if image.dtype.kind == "f" and not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"image contains infinity, so its range [{lo}, {hi}] is not finite; "
                         "pass a finite range")
    return lo, hi


def histogram(image, bins, range, backend, batch):
    """:func:`medfeat.kernels.histogram` of a dask array: a range pass, then per-chunk counts
    on the same edges, summed (the counts are exact, so the result is the in-memory one)."""
    D = _density_module()
    from ._validate import check_positive

    batch = _check_batch(batch)
    if batch:
        _check(image, ndim=tuple(range_(2, 65)), dtypes=D.SUPPORTED_DTYPES, name="image stack")
    else:
        _density_image(image)
    bins = int(check_positive(bins, name="bins", integer=True))
    range = D._check_range(range)
    _no_device_path(image, "histogram", "its chunked counts run on the CPU")
    chosen = resolve_backend(backend, auto=D.AUTO_HISTOGRAM, family=D._FAMILY)
    if batch:
        return _per_image(D.histogram, image, bins=bins, range=range, backend=chosen)
    first_last = _hist_range(image, range)
    block = functools.partial(_hist_block, bins=bins, range=first_last, backend=chosen)
    return _reduce(block, _hist_merge, image)


range_ = range  # the builtin, shadowed by the ``range`` arguments above


def _bincount_block(block, mask=None, *, lo, n):
    v = block if mask is None else block[mask]
    return np.bincount((v.reshape(-1).astype(np.int64) - lo), minlength=n)


def _int_counts(image, lo, hi, mask=None):
    """Counts of every integer value from ``lo`` to ``hi`` (of the masked pixels)."""
    lo, hi = int(lo), int(hi)
    f = functools.partial(_bincount_block, lo=lo, n=hi - lo + 1)
    arrays = (image,) if mask is None else (image, mask)
    return _reduce(f, np.add, *arrays)


def _threshold_counts(image, nbins, backend):
    """``(counts, centres)`` as scikit-image's ``histogram(image, nbins, source_range='image')``
    gives them (one bin per integer value; ``nbins`` NumPy bins for floats), or ``(None, value)``
    for an image holding a single value."""
    lo, hi = _value_range(image)
    if lo == hi:
        return None, lo
    if image.dtype.kind != "f":
        return _int_counts(image, lo, hi), np.arange(int(lo), int(hi) + 1)
    counts, edges = histogram(image, nbins, None, backend, False)
    return counts, (edges[:-1] + edges[1:]) / 2.0


def threshold(public, image, nbins, hist, backend, batch, *, auto):
    """:func:`~medfeat.kernels.threshold_otsu` / :func:`~medfeat.kernels.threshold_maxent` of a
    dask array: the image's histogram as exact chunked counts, then the in-memory search on it."""
    D = _density_module()
    from ._validate import check_positive

    batch = _check_batch(batch)
    if batch and hist is not None:
        raise ValueError("hist is not supported with batch=True (it describes a single image)")
    if batch:
        _check(image, ndim=tuple(range_(2, 65)), dtypes=D.SUPPORTED_DTYPES, name="image stack")
    else:
        _density_image(image)
    if hist is None:
        nbins = int(check_positive(nbins, name="nbins", integer=True))
    _no_device_path(image, "a threshold", "its chunked histogram runs on the CPU")
    chosen = resolve_backend(backend, auto=auto, family=D._FAMILY)
    if batch:
        return _per_image(public, image, nbins=nbins, backend=chosen)
    if hist is not None:
        lo, hi = _value_range(image)
        if lo == hi:  # a single-valued image is returned as is, hist or not (as in memory)
            return lo
        return public(hist=hist, backend=chosen)
    counts, centres = _threshold_counts(image, nbins, chosen)
    if counts is None:
        return centres
    return public(hist=(counts, centres), backend=chosen)


def _moments_block(block, mask=None, *, backend):
    """(n, mean, M2) of one block's (masked) pixels, from the backend's blocked two-pass sums."""
    D = _density_module()
    from ._dispatch import implementation

    dens = implementation("density", backend)
    flat = D._flat(block)
    mflat = D._NOMASK if mask is None else D._flat(mask).view(np.uint8)
    if mflat.size and not mflat.any():
        return (0.0, 0.0, 0.0)
    n, mean, m2 = dens.moments(flat, mflat, 4096, D._nchunks(dens, flat.size))
    return (float(n), float(mean), float(m2))


def _moments_merge(a, b):
    """Chan, Golub and LeVeque's pairwise update of (n, mean, M2)."""
    na, ma, sa = a
    nb, mb, sb = b
    n = na + nb
    if na == 0 or nb == 0:
        return a if nb == 0 else b
    d = mb - ma
    return (n, ma + d * (nb / n), sa + sb + d * d * (na * nb / n))


def _moments(image, backend, mask=None):
    f = functools.partial(_moments_block, backend=backend)
    arrays = (image,) if mask is None else (image, mask)
    return _reduce(f, _moments_merge, *arrays)


def _binning_block(block, *, backend, kind, args):
    """One chunk's linear binning (or exact Gaussian scatter) onto the density's grid."""
    D = _density_module()
    from ._dispatch import implementation

    impl = implementation("density", backend)
    flat = D._flat(block)
    if flat.dtype.kind == "f":
        values, weights = flat, D._NOWEIGHT
    else:
        lo = int(flat.min())
        counts = np.bincount(flat.astype(np.int64) - lo)
        nz = np.flatnonzero(counts)
        values, weights = (nz + lo).astype(np.float64), counts[nz].astype(np.float64)
    fn = impl.linear_bin if kind == "bin" else impl.gauss_scatter
    return fn(values, weights, *args, D._nchunks(impl, values.size))


def density(image, bandwidth, grid_size, backend):
    """:func:`medfeat.kernels.density` of a dask array: moments and range as reductions, the
    linear binning per chunk and summed, then the same convolution (within rounding of the
    in-memory estimate: the binned sums are added in another order)."""
    D = _density_module()
    from ._validate import check_positive

    _density_image(image)
    if isinstance(bandwidth, str):
        check_choice(bandwidth, D._BANDWIDTHS, name="bandwidth")
    else:
        check_positive(bandwidth, name="bandwidth")
    grid_size = check_positive(grid_size, name="grid_size", integer=True)
    if grid_size < 2:
        raise ValueError(f"grid_size must be at least 2, got {grid_size}")
    _no_device_path(image, "density", "its chunked binning runs on the CPU")
    chosen = resolve_backend(backend, auto=D.AUTO_DENSITY, family=D._FAMILY)
    lo, hi = _value_range(image)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("image contains NaN or infinity, for which this kernel has no defined "
                         "result")
    n, mean, m2 = _moments(image, chosen)
    if not (math.isfinite(mean) and math.isfinite(m2)):
        raise ValueError("image has values too large for float64 statistics (|x| > 1e154)")

    def spread(kind, *args):
        f = functools.partial(_binning_block, backend=chosen, kind=kind, args=args)
        return _reduce(f, np.add, image)

    from ._dispatch import implementation

    return D._kde(implementation("density", chosen), n, m2, float(lo), float(hi), bandwidth,
                  grid_size, spread)


# --------------------------------------------------------------------------------------- intensity


def _select_block(block, mask=None, *, intervals, gather):
    """For each closed interval [a, b]: the values in it (``gather``) or their counts in
    ``_SELECT_BINS`` equal bins (the last one closed)."""
    # float64 comparisons: a float32 array would round the bounds to float32 instead
    v = (block if mask is None else block[mask]).reshape(-1).astype(np.float64)
    out = []
    for (a, b), g in zip(intervals, gather):
        inside = v[(v >= a) & (v <= b)]
        if g:
            out.append(inside)
        else:
            edges = np.linspace(a, b, _SELECT_BINS + 1)
            idx = np.searchsorted(edges, inside, side="right") - 1
            out.append(np.bincount(np.minimum(idx, _SELECT_BINS - 1), minlength=_SELECT_BINS))
    return out


def _select_merge(a, b):
    return [np.concatenate([x, y]) if x.dtype.kind == "f" else x + y for x, y in zip(a, b)]


def _float_order_stats(image, mask, ks, lo, hi, n):
    """The order statistics ``ks`` (0-based ranks among the ``n`` selected values) of a float
    dask array, exactly: each pass narrows every rank's interval to one of 1024 bins by counting,
    until few enough values remain in it to be gathered and selected."""
    state = {k: [float(lo), float(hi), 0, n] for k in ks}  # interval, count below it, inside it
    found = {}
    arrays = (image,) if mask is None else (image, mask)
    while len(found) < len(ks):
        todo = [k for k in ks if k not in found]
        intervals = [tuple(state[k][:2]) for k in todo]
        gather = [state[k][3] <= _GATHER or state[k][0] == state[k][1] for k in todo]
        f = functools.partial(_select_block, intervals=intervals, gather=gather)
        parts = _reduce(f, _select_merge, *arrays)
        for k, g, part in zip(todo, gather, parts):
            a, b, below, _ = state[k]
            if g:
                found[k] = image.dtype.type(np.partition(part, k - below)[k - below])
                continue
            edges = np.linspace(a, b, _SELECT_BINS + 1)
            cum = np.cumsum(part)
            j = int(np.searchsorted(cum, k - below, side="right"))
            top = edges[j + 1] if j == _SELECT_BINS - 1 else np.nextafter(edges[j + 1], -np.inf)
            state[k] = [float(edges[j]), float(max(top, edges[j])),
                        below + (int(cum[j - 1]) if j else 0), int(part[j])]
    return [found[k] for k in ks]


def _percentiles(image, mask, qs, lo, hi, *, numpy_lerp=False):
    """The percentiles ``qs`` of the (masked) pixels as :func:`medfeat.kernels.normalize`
    computes them (``numpy_lerp``: exactly as :func:`numpy.percentile` interpolates, in the data's
    dtype, which Canny's quantile thresholds use). Integer images: from exact value counts."""
    from .intensity import _interpolate, _positions

    if image.dtype.kind != "f":
        cum = np.cumsum(_int_counts(image, lo, hi, mask))
        n = int(cum[-1])
        virt, prev, ks = _positions(n, qs)
        vals = [image.dtype.type(v) for v in np.searchsorted(cum, ks, side="right") + int(lo)]
    else:
        n = image.size if mask is None else _reduce(_count_block, _add, mask)
        virt, prev, ks = _positions(n, qs)
        vals = _float_order_stats(image, mask, ks, lo, hi, n)
    if not numpy_lerp:
        return _interpolate(n, virt, prev, ks, vals)
    at = dict(zip(ks, vals))
    out = []
    for v, p in zip(virt, prev):
        a, b, t = at[p], at[min(p + 1, n - 1)], np.float64(v - p)
        d = b - a
        out.append(float(b - d * (1 - t)) if t >= 0.5 else float(a + d * t))
    return out


def _count_block(mask):
    return int(np.count_nonzero(mask))


def _add(a, b):
    return a + b


def _masked_range_block(block, mask):
    sel = block[mask]
    if sel.size == 0:
        return (math.inf, -math.inf, False)
    return _range_block(sel)


def _affine_block(block, *, shift, scale, clip, backend):
    D = _density_module()
    from ._dispatch import get_kernel, implementation

    _, affine = get_kernel("intensity", "affine", backend, auto=(backend,))
    dens = implementation("density", backend)
    flat = D._flat(block)
    out = np.empty(block.shape, np.float32)
    single = flat.dtype != np.float64 and float(np.float32(shift)) == shift
    affine(flat, shift, scale, clip, single, out.reshape(-1), D._nchunks(dens, flat.size))
    return out


def _any_block(block):
    return bool(block.any())


def _or(a, b):
    return a or b


def _nan_block(block):
    return bool(block.dtype.kind == "f" and np.isnan(block).any())


def normalize(image, method, lower, upper, center, width, mask, backend, batch):
    """:func:`medfeat.kernels.normalize` of a dask array: the statistics as one reduction (two
    passes or a few more for float percentiles), then the same fused affine kernel per chunk."""
    from . import intensity as Int
    from ._validate import SUPPORTED_DTYPES

    batch = _check_batch(batch)
    if batch and mask is not None:
        raise ValueError("mask is not supported with batch=True (yet); normalise the images one "
                         "by one")
    if batch:
        _check(image, ndim=tuple(range_(2, 65)), dtypes=SUPPORTED_DTYPES, name="image stack")
    else:
        _density_image(image)
    check_choice(method, Int.METHODS, name="method")
    lower, upper = Int._real(lower, "lower"), Int._real(upper, "upper")
    if not 0 <= lower < upper <= 100:
        raise ValueError(f"lower and upper must satisfy 0 <= lower < upper <= 100, got {lower}, "
                         f"{upper}")
    if method == "window":
        if center is None or width is None:
            raise ValueError("method='window' needs both center and width")
        center, width = Int._real(center, "center"), Int._real(width, "width")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
    else:
        for name, value in (("center", center), ("width", width)):
            if value is not None:
                raise ValueError(f"{name} applies only to method='window', not {method!r}")
    _no_device_path(image, "normalize", "its chunked statistics run on the CPU")
    chosen = resolve_backend(backend, auto=Int.AUTO_NORMALIZE, family="intensity")
    da = _da()
    if batch:
        return da.map_blocks(Int.normalize, _whole_images(image), method, lower=lower,
                             upper=upper, center=center, width=width, backend=chosen, batch=True,
                             dtype=np.float32, meta=_meta(image.ndim, np.float32))
    m = None if mask is None or method == "window" else _mask_like(mask, image)
    if m is not None and not _reduce(_any_block, _or, m):
        raise ValueError("mask selects no pixel; the statistics are undefined")
    clip = True
    if method == "window":
        if _reduce(_nan_block, _or, image):
            raise ValueError("image contains NaN, for which normalisation has no defined result")
        shift, scale = center - width / 2.0, 1.0 / width
    else:
        lo, hi, nan = _reduce(_range_block, _range_merge, image)
        if nan or not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("image contains NaN or infinity; its statistics are undefined")
        if m is not None:
            lo, hi, _ = _reduce(_masked_range_block, _range_merge, image, m)
        if method == "percentile":
            p_lo, p_hi = _percentiles(image, m, (lower, upper), lo, hi)
            shift, spread = p_lo, p_hi - p_lo
        elif method == "zscore":
            n, mean, m2 = _moments(image, chosen, m)
            if not (math.isfinite(mean) and math.isfinite(m2)):
                raise ValueError("image has values too large for float64 statistics "
                                 "(|x| > 1e154)")
            clip = False
            shift, spread = mean, math.sqrt(m2 / n)
        else:
            clip = False
            shift, spread = float(lo), float(hi) - float(lo)
        scale = 1.0 / spread if spread > 0 else 1.0
    func = functools.partial(_affine_block, shift=float(shift), scale=float(scale), clip=clip,
                             backend=chosen)
    return da.map_blocks(func, image, dtype=np.float32, meta=_meta(image.ndim, np.float32))


# ------------------------------------------------------------------------------------------- canny


def _smoothing_inputs(block, mask, mode, *, checked=False):
    """What the Canny kernels' smoothing takes for ``block``, as in memory: the float image (zero
    outside ``mask``), the bleed-over correction's kind and source, and the dtype's epsilon;
    NaN and infinity refused, here unless ``checked`` says that the kernel called next refuses
    them itself as it reads the image (a mask would first hide those outside it)."""
    from . import edges as E

    f = E._as_float(block)
    if (f.dtype.kind == "f" and (mask is not None or not checked)
            and not np.isfinite(f).all()):
        raise ValueError("image contains NaN or infinity, for which this kernel has no defined "
                         "result")
    dtype = f.dtype
    if mask is None:
        bleed_kind = 1 if mode == "constant" else 0
        bleed_src = E._readonly(np.zeros((0, 0), dtype))
    else:
        bleed_kind = 2
        f = np.where(mask, f, dtype.type(0))
        bleed_src = E._readonly(mask.astype(dtype))
    return f, bleed_kind, bleed_src, np.array([np.finfo(dtype).eps], dtype=dtype)


def _eroded(mask, backend):
    """The eroded mask the kernels' suppression reads (an empty array without a mask)."""
    from . import edges as E
    from ._dispatch import get_kernel

    if mask is None:
        return np.zeros((0, 0), np.uint8)
    _, erode = get_kernel(E._FAMILY, "erode_mask_2d", backend, auto=(backend,))
    return erode(np.ascontiguousarray(mask, dtype=bool).view(np.uint8))


def _canny_smooth_block(block, mask=None, *, sigma, mode, cval, backend):
    """Stage 1: the Gaussian smoothing with bleed-over correction, as in memory."""
    from . import edges as E
    from ._dispatch import get_kernel

    f, bleed_kind, bleed_src, eps = _smoothing_inputs(block, mask, mode)
    if mask is not None:
        f = E._readonly(f)
    _, smooth = get_kernel(E._FAMILY, "canny_smooth", backend, auto=(backend,))
    smoothed, _ = smooth(f, E._gaussian_weights(float(sigma)), E._MODES[mode], cval, bleed_src,
                         bleed_kind, eps)
    return smoothed


def _identity_args(smoothed):
    """Arguments that make the Canny kernels skip their smoothing: one weight of 1 (exact)."""
    from . import edges as E

    dtype = smoothed.dtype
    return (E._readonly(smoothed), np.ones(1), E._MODES["constant"], 0.0,
            E._readonly(np.zeros((0, 0), dtype)), 0, np.array([np.finfo(dtype).eps], dtype))


def _magnitude_block(smoothed, *, backend):
    """Stage 2 for quantile thresholds: the gradient magnitude of the smoothed image."""
    from . import edges as E
    from ._dispatch import get_kernel

    _, smooth = get_kernel(E._FAMILY, "canny_smooth", backend, auto=(backend,))
    return smooth(*_identity_args(smoothed))[1]


def _candidates_block(smoothed, mask=None, *, low, high, backend):
    """Stage 2: the weak (1) and strong (2) candidates after non-maximum suppression, the CPU
    kernel's double threshold before its hysteresis (one pass)."""
    from . import edges as E
    from ._dispatch import get_kernel

    _, labels = get_kernel(E._FAMILY, "canny_labels", backend, auto=(backend,))
    return labels(*_identity_args(smoothed), _eroded(mask, backend), low, high, 1.0)


def _candidates_image_block(block, mask=None, *, sigma, mode, cval, low, high, backend):
    """Stages 1 and 2 at once, on a chunk with a halo of the Gaussian's radius plus two: the
    weak (1) and strong (2) candidates from one pass of the CPU kernel's sweep before its
    hysteresis, which smooths as it sweeps (its rows within the halo are wrong, and trimmed
    away)."""
    from . import edges as E
    from ._dispatch import get_kernel

    # the sweep checks every row it reads for NaN and infinity, as in memory
    f, bleed_kind, bleed_src, eps = _smoothing_inputs(block, mask, mode, checked=True)
    _, labels = get_kernel(E._FAMILY, "canny_labels", backend, auto=(backend,))
    args = (E._readonly(np.ascontiguousarray(f)), E._gaussian_weights(float(sigma)),
            E._MODES[mode], cval, bleed_src, bleed_kind, eps, _eroded(mask, backend))
    # scale passed as the in-memory call passes it: the sweep's compiled specialisation is the
    # one the in-memory kernel uses
    return labels(*args, low, high, 1.0)


def _label_chunk(cand, window=None):
    """Pass 1 of the hysteresis for one chunk, its only labelling: ``(bits, shape, pos, num,
    summary)``.

    ``cand`` holds the chunk's candidates (0, 1 weak, 2 strong), with its halo around the
    ``window`` ``(r0, c0, H, W)``. Every pixel is decided here except those of the weak blobs
    that reach a side of the chunk without touching a strong pixel (module notes of
    :mod:`medfeat._kernels.numba_cpu.hysteresis`): ``bits`` are the edges decided here, a bit
    per pixel of the chunk's ``shape`` (``numpy.packbits``: what is kept of every chunk until the
    edge map is computed is an eighth of a byte map), ``pos`` and ``num`` the raster positions and
    numbers of the open pixels.
    ``summary`` is what the merge needs: ``nb``, the numbers that are edges in any case (``[1]``,
    the chunk's kept pixels) and the numbers along the four sides (top, bottom, left, right; 0
    off the candidates).
    """
    from .._kernels.numba_cpu.hysteresis import chunk_hysteresis

    kept, pos, num, *summary = chunk_hysteresis(cand, window)
    return np.packbits(kept), kept.shape, pos, num, tuple(summary)


def _summary_of(part):
    """The numbers the merge needs of a :func:`_label_chunk` result."""
    return part[-1]


def _strip_pairs(a, b):
    """Pairs of labels 8-connected across the boundary between the adjacent lines ``a``, ``b``."""
    pairs = [np.zeros((0, 2), np.int64)]
    for x, y in ((a, b), (a[1:], b[:-1]), (a[:-1], b[1:])):
        keep = (x > 0) & (y > 0)
        pairs.append(np.stack([x[keep], y[keep]], axis=1))
    return np.concatenate(pairs)


def _edge_table(summaries, grid_shape):
    """Label offsets per chunk and the lookup table global label -> is an edge: the components of
    the graph of labels joined across chunk boundaries that hold a number that is an edge in any
    case."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    counts = np.array([s[0] for s in summaries], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])[:-1].reshape(grid_shape)
    summ = np.empty(grid_shape, object)
    for i, idx in enumerate(np.ndindex(grid_shape)):
        summ[idx] = summaries[i]

    def line(idx, k):
        v = summ[idx][k].astype(np.int64)
        return np.where(v > 0, v + offsets[idx], 0)

    R, C = grid_shape
    pairs = []
    for i in range(R - 1):  # boundaries between chunk rows: whole-width strips (corners included)
        pairs.append(_strip_pairs(np.concatenate([line((i, j), 3) for j in range(C)]),
                                  np.concatenate([line((i + 1, j), 2) for j in range(C)])))
    for j in range(C - 1):
        pairs.append(_strip_pairs(np.concatenate([line((i, j), 5) for i in range(R)]),
                                  np.concatenate([line((i, j + 1), 4) for i in range(R)])))
    pairs = np.concatenate([np.zeros((0, 2), np.int64), *pairs])
    n = int(counts.sum()) + 1
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    strong = np.concatenate([np.zeros(0, np.int64)] + [
        summ[idx][1][summ[idx][1] > 0].astype(np.int64) + offsets[idx]
        for idx in np.ndindex(grid_shape)])
    is_edge = np.zeros(comp.max() + 1, bool)
    is_edge[comp[strong]] = True
    table = is_edge[comp]
    table[0] = False
    return offsets, table


def _finish_chunk(part, offset, table):
    """Pass 2 for one chunk: the edges decided in it, and its open pixels looked up in the global
    table (a new array: the kept part may be computed into several results)."""
    bits, shape, pos, num, _ = part
    out = np.unpackbits(bits, count=math.prod(shape)).view(np.bool_).reshape(shape)
    if pos.size:
        out.reshape(-1)[pos] = table[num.astype(np.int64) + offset]
    return out


#: layers at most of a dask array searched for the array-like it reads (:func:`_source_reads`):
#: ``from_array`` gives two, a slice of it a third.
_SOURCE_LAYERS = 4


def _source_reads(x):
    """How to read any box of the dask array ``x`` straight from the array-like it slices, when
    ``x`` is one (``dask.array.from_array`` of a memory map, a Zarr or HDF5 dataset or any object
    with ``__getitem__``, perhaps sliced with steps of 1): ``(source, get, origin, lock)``, so
    that ``get(source, box + origin, lock=lock)`` is ``x[box]`` (as a NumPy array); None for
    anything else (chunks computed by tasks, chunks held in the graph, fancy indexing).

    The chunk tasks of dask's optimised graph (slices already fused into the getter, as dask
    does for xarray's lazily indexed files) are followed down to one getter call on one key of
    the graph holding the array-like; every chunk must read from the same key with the same
    getter, at the chunk's own position plus one shift per axis. ``source`` is a delayed object
    of that key, so that a task using it depends on the same key the chunk tasks do.
    """
    from dask._task_spec import (
        Alias,
        DataNode,
        Task,
        TaskRef,
        _execute_subgraph,
        convert_legacy_graph,
    )
    from dask.array.chunk import getitem
    from dask.array.core import getter, getter_inline, getter_nofancy
    from dask.array.optimization import fuse_slice
    from dask.core import flatten
    from dask.delayed import Delayed
    from dask.utils import ensure_dict

    getters = (getter, getter_nofancy, getter_inline, getitem)
    graph = x.__dask_graph__()
    if len(getattr(graph, "layers", ())) > _SOURCE_LAYERS:
        return None
    keys = list(flatten(x.__dask_keys__()))
    dsk = convert_legacy_graph(ensure_dict(x.__dask_optimize__(graph, keys)))

    def value(v):
        return v.value if isinstance(v, DataNode) else v

    def follow(key):
        """(source key, its node, getter, index, lock) of ``key``'s task, or None."""
        scopes = [dsk]  # nested graphs of fused tasks, innermost last
        steps = []
        while True:
            for g in reversed(scopes):
                if key in g:
                    node = g[key]
                    break
            else:
                return None
            if isinstance(node, Alias):
                key = node.target.key if isinstance(node.target, TaskRef) else node.target
            elif isinstance(node, Task) and node.func is _execute_subgraph:
                scopes.append(node.args[0])
                key = node.args[1]
            elif isinstance(node, Task) and node.func in getters:
                args, kw = node.args, {k: value(v) for k, v in node.kwargs.items()}
                if (len(args) not in (2, 4) or not isinstance(args[0], TaskRef)
                        or set(kw) - {"asarray", "lock"}):
                    return None
                # asarray is left out: the region is made a NumPy array in any case
                lock = value(args[3]) if len(args) == 4 else kw.get("lock", None)
                steps.append((node.func, value(args[1]), lock or None))
                key = args[0].key
            elif isinstance(node, DataNode) and steps:
                break
            else:
                return None
        get, index, lock = steps[-1]
        for outer in reversed(steps[:-1]):
            if outer[0] is not getitem and outer[2] is not lock:
                return None
            try:
                index = fuse_slice(index, outer[1])
            except (NotImplementedError, TypeError, ValueError, IndexError):
                return None  # indexing dask does not fuse: the general path
        return key, node, get, index, lock

    bounds = [np.cumsum((0,) + tuple(c)) for c in x.chunks]
    found, origin = None, None
    for idx in np.ndindex(x.numblocks):
        got = follow((x.name, *idx))
        if got is None:
            return None
        key, node, get, index, lock = got
        if found is None:
            found = (key, node, get, lock)
        elif found[0] != key or found[2] is not get or found[3] is not lock:
            return None
        if type(index) is not tuple or len(index) != x.ndim:
            return None
        shift = []
        for s, b, i in zip(index, bounds, idx):
            if (not isinstance(s, slice) or s.step not in (None, 1)
                    or not isinstance(s.stop, (int, np.integer))
                    or not isinstance(s.start, (int, np.integer, type(None)))):
                return None
            start = int(s.start or 0)
            if start < 0 or int(s.stop) - start != int(b[i + 1] - b[i]):
                return None
            shift.append(start - int(b[i]))
        if origin is None:
            origin = tuple(shift)
        elif tuple(shift) != origin:
            return None
    if found is None:
        return None
    key, node, get, lock = found
    return Delayed(key, {key: node}), get, origin, lock


def _read(source, get, index, lock):
    """``source[index]`` through dask's getter (its lock held, if any), as a NumPy array."""
    from dask.array.chunk import getitem

    return np.asarray(source[index] if get is getitem else get(source, index, lock=lock))


def _halo_parts(func, arrays, depth, **kwargs):
    """``func(*regions, window=..., **kwargs)`` for every chunk of ``arrays`` (same shape and
    chunks), as delayed tasks in the chunks' raster order, and the chunks they cover.

    ``regions`` are each array's chunk grown by ``depth[axis]`` on every side that is not the
    image's border, and ``window`` ``(r0, c0, h, w)`` places the chunk in them. An array that
    slices an array-like (:func:`_source_reads`: ``from_array`` of a memory map, a Zarr or HDF5
    dataset) is read by the task itself, its whole region in one slice: no task reads its chunks
    and nothing of it moves between workers. Any other array is cut from its chunks: the task
    takes its own chunk whole and only the strips it needs of the neighbouring chunks (one
    slicing task each, run where that neighbour is), and assembles the region in one copy. Either
    way the one task per chunk replaces ``map_overlap``'s concatenation, block function, trimming
    and a separate labelling task. Chunks thinner than the halo are merged with their neighbours
    first (as ``map_overlap`` does), so that a region spans at most three chunks per axis; an
    axis shorter than its halo becomes one chunk.
    """
    import itertools
    import operator

    import dask
    from dask.array.overlap import ensure_minimum_chunksize

    first = arrays[0]
    chunks = list(first.chunks)
    for a, d in enumerate(depth):
        if d >= first.shape[a]:
            chunks[a] = (first.shape[a],)
        elif d > min(chunks[a]):
            chunks[a] = ensure_minimum_chunksize(d, chunks[a])
    chunks = tuple(tuple(int(v) for v in c) for c in chunks)
    # a source is read at any position: looked for before any rechunking
    sources = [_source_reads(x) for x in arrays]
    arrays = [x if s is not None or x.chunks == chunks else x.rechunk(chunks)
              for x, s in zip(arrays, sources)]
    bounds = [np.cumsum((0,) + c) for c in chunks]
    blocks = [None if s is not None else x.to_delayed() for x, s in zip(arrays, sources)]
    getitem = dask.delayed(operator.getitem, pure=True)
    task = dask.delayed(_assembled, pure=True)
    parts = []
    for idx in np.ndindex(tuple(len(c) for c in chunks)):
        lo = [max(0, int(b[i]) - depth[a]) for a, (b, i) in enumerate(zip(bounds, idx))]
        hi = [min(int(b[-1]), int(b[i + 1]) + depth[a])
              for a, (b, i) in enumerate(zip(bounds, idx))]
        spans = [range(int(np.searchsorted(b, l, "right")) - 1, int(np.searchsorted(b, h, "left")))
                 for b, l, h in zip(bounds, lo, hi)]
        layout, strips = [], [[] for _ in arrays]
        for nidx in itertools.product(*spans):
            b0 = [int(b[i]) for b, i in zip(bounds, nidx)]
            b1 = [int(b[i + 1]) for b, i in zip(bounds, nidx)]
            s0 = [max(x, y) for x, y in zip(lo, b0)]
            s1 = [min(x, y) for x, y in zip(hi, b1)]
            dest = tuple(slice(x - l, y - l) for x, y, l in zip(s0, s1, lo))
            src = tuple(slice(x - b, y - b) for x, y, b in zip(s0, s1, b0))
            whole = s0 == b0 and s1 == b1
            layout.append(dest)
            for k, bl in enumerate(blocks):
                if bl is not None:
                    strips[k].append(bl[nidx] if whole else getitem(bl[nidx], src))
        inputs = []
        for k, s in enumerate(sources):
            if s is None:
                inputs.append(("pieces", tuple(layout), strips[k]))
            else:
                source, get, origin, lock = s
                box = tuple(slice(l + o, h + o) for l, h, o in zip(lo, hi, origin))
                inputs.append(("read", source, get, box, lock))
        window = tuple(int(b[i]) - l for b, i, l in zip(bounds, idx, lo)) + tuple(
            int(b[i + 1] - b[i]) for b, i in zip(bounds, idx))
        shape = tuple(h - l for l, h in zip(lo, hi))
        parts.append(task(func, shape, window, kwargs, inputs))
    return parts, chunks


def _assembled(func, shape, window, kwargs, inputs):
    """The task of :func:`_halo_parts`: each array's region, read from its source in one slice
    or assembled from its pieces, then ``func``."""
    regions = []
    for kind, *spec in inputs:
        if kind == "read":
            regions.append(_read(*spec))
            continue
        layout, own = spec
        if len(own) == 1:
            regions.append(own[0])
            continue
        region = np.empty(shape, own[0].dtype)
        for dest, piece in zip(layout, own):
            region[dest] = piece
        regions.append(region)
    return func(*regions, window=window, **kwargs)


def _canny_chunk(block, mask=None, *, window, **kwargs):
    """One chunk's candidates from its region (:func:`_candidates_image_block`), labelled."""
    return _label_chunk(_candidates_image_block(block, mask, **kwargs), window)


def _canny_chunk_smoothed(smoothed, mask=None, *, window, **kwargs):
    """One chunk's candidates from its smoothed region (:func:`_candidates_block`), labelled."""
    return _label_chunk(_candidates_block(smoothed, mask, **kwargs), window)


def _hysteresis(parts, chunks):
    """The global hysteresis of an image whose chunks ``chunks`` are labelled by the delayed
    ``parts`` (:func:`_label_chunk`'s results, in the chunks' raster order).

    Pass 1 runs now, once per chunk: the candidates are computed and labelled, and the compact
    result (a bit per pixel plus the open pixels) is kept (persisted: on the workers under a
    distributed scheduler) so that nothing is computed twice; only the summaries (the numbers
    along each chunk's sides) come back, and the equivalences across chunk boundaries are resolved
    into one table. Pass 2 is the returned lazy array: a lookup per chunk in the kept results. No
    label image the size of the input is ever held (a chunk's labels live only while that chunk
    is labelled).
    """
    import dask

    grid_shape = tuple(len(c) for c in chunks)
    parts = dask.persist(*parts)
    summary = dask.delayed(_summary_of, pure=True)
    summaries = dask.compute(*[summary(p) for p in parts])
    offsets, table = _edge_table(summaries, grid_shape)
    table = dask.delayed(table, pure=True)  # one key, shipped once per worker
    finish = dask.delayed(_finish_chunk, pure=True)
    da = _da()
    blocks = np.empty(grid_shape, object)
    for k, idx in enumerate(np.ndindex(grid_shape)):
        shape = tuple(c[i] for c, i in zip(chunks, idx))
        blocks[idx] = da.from_delayed(finish(parts[k], int(offsets[idx]), table), shape,
                                      dtype=np.bool_, meta=_meta(2, np.bool_))
    return da.block(blocks.tolist())


def _canny_batch_block(block, sigma, low_threshold, high_threshold, use_quantiles, **kwargs):
    from . import edges as E

    return _as_chunk_type(E.canny(block, sigma, low_threshold, high_threshold, None,
                                  use_quantiles, batch=True, **kwargs), block)


def canny(image, sigma, low_threshold, high_threshold, mask, use_quantiles, mode, cval, backend,
          batch):
    """:func:`medfeat.kernels.canny` of a dask array (module notes: two overlapping stages, then a
    global hysteresis)."""
    from . import edges as E

    batch = E._check_batch(batch, mask)
    if batch:
        _check(image, ndim=3, dtypes=E._DTYPES, name="image stack")
    else:
        _check(image, ndim=2, dtypes=E._DTYPES)
    if (isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.number))
            or not np.isfinite(sigma) or sigma < 0):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    low_threshold = E._check_threshold(low_threshold, "low_threshold")
    high_threshold = E._check_threshold(high_threshold, "high_threshold")
    check_choice(mode, tuple(E._MODES), name="mode")
    cval = E._check_cval(cval)
    chosen = _resolve(backend, image, auto=E.AUTO_CANNY, family=E._FAMILY)
    if batch:
        return _da().map_blocks(_canny_batch_block, _whole_images(image), sigma, low_threshold,
                                high_threshold, use_quantiles, mode=mode, cval=cval,
                                backend=chosen, dtype=np.bool_, meta=_meta_like(image, 3, np.bool_))
    _no_device_path(image, "canny", "its hysteresis across chunks runs on the CPU; batch=True "
                    "runs stacks of independent images on the GPU")
    low, high = E._canny_thresholds(low_threshold, high_threshold, use_quantiles, image.dtype)
    m = None if mask is None else _mask_like(mask, image)
    radius = len(E._gaussian_weights(float(sigma))) // 2
    fdtype = np.dtype(np.float64) if image.dtype == np.bool_ else np.dtype(
        np.float32 if image.dtype == np.float32 else np.float64)
    arrays = [image] if m is None else [image, m]
    smooth = functools.partial(_canny_smooth_block, sigma=sigma, mode=mode, cval=cval,
                               backend=chosen)
    smoothed = _overlap(smooth, arrays, {0: radius, 1: radius}, _boundaries([mode, mode]),
                        fdtype)
    if use_quantiles:
        mag = _overlap(functools.partial(_magnitude_block, backend=chosen), [smoothed],
                       {0: 1, 1: 1}, "none", fdtype)
        lo, hi = _value_range(mag, "image")
        low, high = _percentiles(mag, None, (100.0 * low, 100.0 * high), lo, hi,
                                 numpy_lerp=True)
    low_v, high_v = E._low_value(low), E._compare_value(high, fdtype)
    if mode == "wrap":
        # the smoothing wraps around the image, the gradient does not: two overlapping stages
        arrays = [smoothed] if m is None else [smoothed, m.rechunk(smoothed.chunks)]
        parts, chunks = _halo_parts(_canny_chunk_smoothed, arrays, (2, 2), low=low_v,
                                    high=high_v, backend=chosen)
        return _hysteresis(parts, chunks)
    # no halo past the image's border: the fused kernel applies mode there itself
    parts, chunks = _halo_parts(_canny_chunk, arrays, (radius + 2, radius + 2), sigma=sigma,
                                mode=mode, cval=cval, low=low_v, high=high_v, backend=chosen)
    return _hysteresis(parts, chunks)
