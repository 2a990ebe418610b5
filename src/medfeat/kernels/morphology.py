"""Grey-level and binary morphology (erosion, dilation, opening, closing) and flat footprints.

Names, defaults and results follow :mod:`skimage.morphology` (0.26), plus a keyword-only
``backend="auto" | "numba" | "cuda"``. Every kernel works on 2-D images and 3-D volumes with any
flat footprint (disk, rectangle, diamond, ball, cube, or an arbitrary boolean array), and gives
exactly scikit-image's result.

How it is computed
------------------
A flat erosion is a minimum over the footprint, a dilation a maximum. This module validates and
applies footprint sequences; the planner (:mod:`medfeat.kernels._minmax`) decomposes each
footprint and computes the border index maps, and the compiled backend runs three kernels
(``minmax_small``, ``minmax_runs`` and ``vrun`` in :mod:`medfeat._kernels.numba_cpu.morphology`).
Footprints live in
:mod:`medfeat.kernels.footprints` (also importable from here):

- Any footprint is cut into horizontal runs (chords) [3]_. The output rows are streamed, in chunks
  on a pool of threads: each input row's running min/max for every distinct run length L comes
  from one doubling pyramid shared by the lengths (log2 L vectorised passes; van Herk /
  Gil-Werman for very long runs) into a ring buffer of the last few rows, and each output row is
  the min/max of the footprint's rows of shifted results while they are still in cache. One pass
  over the image, whatever the footprint; float images are checked for NaN on the way.
- Boxes up to 3 columns wide and 4 rows high (3x3 the most common footprint) take a kernel of
  their own: per output row, the min/max down the box's rows into a scratch row, then along it.
- A footprint whose True elements fill a box (rectangle, cube) is also separable: the ring rows of
  a tall box are combined by van Herk / Gil-Werman down the columns in the same pass, and the
  plane axis of cubes is a second pass of it; its cost per pixel does not grow with the side
  [1]_ [2]_.

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

import numpy as np

from . import _dask
from ._dispatch import cuda_kernels, device_helpers, is_device_array, resolve_backend, wants_cuda
from ._minmax import _binary, _convert_cval, _CudaKernels, _grey, _kernels
from ._validate import SUPPORTED_DTYPES, check_choice, check_device_image, check_image
from .footprints import _footprints, _mirror, _pad_odd, ball, cube, diamond, disk, rectangle

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


# Docstring paragraphs the kernels here share, written once: a docstring names them as
# ``%(name)s`` and :func:`_shared_doc` fills them in (scipy.ndimage's docfiller does the same).
_PARAMS = {
    "image_grey": """image : ndarray, 2-D or 3-D
        uint8, uint16, int16, float32, float64 or bool.""",
    "image_bool": """image : ndarray, 2-D or 3-D
        bool, or uint8, uint16, int16, float32, float64 read as ``image != 0``.""",
    "dtypes_grey": """Dtypes: uint8, uint16, int16, float32, float64 and bool in; the same dtype out.""",
    "dtypes_bool": """Dtypes: bool, uint8, uint16, int16, float32, float64 in (non-zero is True); bool out.""",
    "out": """out : ndarray, optional
        Array of the image's shape and dtype to write the result into.""",
    "out_bool": """out : ndarray of bool, optional
        Array of the image's shape to write the result into.""",
    "backend": """backend : {'auto', 'cpu', 'numba', 'cuda'}, optional
        Implementation: 'auto' is the family's CPU backend for a NumPy array and 'cuda' for a
        GPU array; 'cpu' is always the CPU backend.""",
    "batch": """batch : bool, optional
        If True, ``image`` is a stack ``(N, H, W)`` of 2-D images and ``footprint`` is 2-D: each
        image is filtered on its own (borders are each image's borders). It runs as one 3-D
        filter whose footprint is one plane thick, so on 'cuda' each pass is one launch over the
        whole stack, and on the CPU backends one call instead of N.""",
}


def _shared_doc(fn):
    """Fill the shared parameter descriptions (:data:`_PARAMS`) into ``fn``'s docstring."""
    if fn.__doc__:  # None under python -OO
        fn.__doc__ = fn.__doc__ % _PARAMS
    return fn


# --------------------------------------------------------------------------------------------------
# argument preparation


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


def _check_batch(batch):
    if not isinstance(batch, (bool, np.bool_)):
        raise ValueError(f"batch must be True or False, got {batch!r}")
    return bool(batch)


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
    # NaN is refused by the first kernel step, which checks the rows as it reads them
    seq = _footprints(footprint, image.ndim, batch)
    out = _check_out(out, image.shape, image.dtype)
    # validate cval even when the mode does not use it, so a bad value never passes silently
    _convert_cval(cval, image.dtype)
    chosen = resolve_backend(backend, auto=auto, image=image, family=_FAMILY)
    return image, seq, out, _kernels(chosen)


def _work(image):
    """C-contiguous kernel view of ``image`` (bool as uint8)."""
    if is_device_array(image):
        return image.view(np.uint8) if image.dtype == np.bool_ else image
    a = np.ascontiguousarray(image)
    return a.view(np.uint8) if a.dtype == np.bool_ else a


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


def _grey_steps(name, image, footprint, out, mode, cval, backend, batch, auto, steps):
    """Kernel ``name`` as a chain of erosions (False) and dilations (True) given by ``steps``; every
    step after the first uses the mirrored footprint (scikit-image pads it at the front, then
    mirrors it for the second step of an opening or closing)."""
    if _dask.is_dask_array(image):
        return _dask.morphology(name, image, footprint, out, mode, cval, backend, batch)
    image, seq, out, k = _prepare_grey(image, footprint, out, mode, cval, backend, auto, batch)
    direct = _direct_dst(out, image)
    cur = _work(image)
    for i, is_max in enumerate(steps):
        if i:
            seq = [(_mirror(_pad_odd(fp, pad_end=False)), n) for fp, n in seq]
        cur = _grey(k, cur, seq, is_max=is_max, mode=mode, cval=cval, dtype=image.dtype,
                    dst=direct if i == len(steps) - 1 else None,
                    check_nan=i == 0 and image.dtype.kind == "f" and not is_device_array(cur))
    return _finish(cur, image.dtype, out, direct, k)


@_shared_doc
def erosion(image, footprint=None, out=None, *, mode="reflect", cval=0.0, backend="auto",
            batch=False):
    """Grey-level morphological erosion: the minimum over the footprint around each pixel.

    Same result as ``skimage.morphology.erosion`` in every dtype, 2-D and 3-D.

    Parameters
    ----------
    %(image_grey)s
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank (non-zero = inside). Even sides are padded at the
        front, as scikit-image does. Default: the cross of connectivity 1. A scikit-image footprint
        sequence ``((fp, n_iter), ...)`` applies each footprint ``n_iter`` times.
    %(out)s
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'max', 'min', 'ignore'}, optional
        Border handling (scipy.ndimage's names). 'max' and 'ignore' treat outside pixels as the
        dtype's maximum (+inf for floats), so they do not change the result; 'min' as its minimum.
    cval : float, optional
        Border value for ``mode='constant'``; cast to the image dtype (integers truncate towards
        zero, like scipy.ndimage). Must lie in the dtype's range and must not be NaN.
    %(backend)s
    %(batch)s

    Returns
    -------
    ndarray
        Same shape and dtype as ``image`` (``out`` when given).

    Raises
    ------
    ValueError
        Unsupported dtype or rank, empty image, NaN in a float image (a minimum with NaN has no
        defined result; scikit-image's answer depends on the footprint's shape; found while the
        image is read, so ``out`` may have been written by then), footprint of the wrong rank or
        without True element, unknown mode or backend, cval out of range, wrong ``out``.

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
    return _grey_steps("erosion", image, footprint, out, mode, cval, backend, batch, AUTO_EROSION,
                       (False,))


@_shared_doc
def dilation(image, footprint=None, out=None, *, mode="reflect", cval=0.0, backend="auto",
             batch=False):
    """Grey-level morphological dilation: the maximum over the footprint around each pixel.

    Same result as ``skimage.morphology.dilation`` in every dtype, 2-D and 3-D. Like scikit-image,
    the footprint is *not* mirrored:
    ``out[i] = max over {j : footprint[j]} of image[i + j - centre]``.

    Parameters
    ----------
    %(image_grey)s
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank; even sides are padded at the front. Default: the
        cross of connectivity 1.
    %(out)s
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'max', 'min', 'ignore'}, optional
        Border handling. 'min' and 'ignore' treat outside pixels as the dtype's minimum (-inf for
        floats), so they do not change the result; 'max' as its maximum.
    cval : float, optional
        Border value for ``mode='constant'`` (cast as in :func:`erosion`).
    %(backend)s
    %(batch)s

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
    %(dtypes_grey)s

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
    return _grey_steps("dilation", image, footprint, out, mode, cval, backend, batch,
                       AUTO_DILATION, (True,))


@_shared_doc
def opening(image, footprint=None, out=None, *, mode="reflect", cval=0.0, backend="auto",
            batch=False):
    """Grey-level morphological opening: erosion, then dilation with the mirrored footprint.

    Removes bright details smaller than the footprint. Same result as
    ``skimage.morphology.opening`` in every dtype, 2-D and 3-D.

    Parameters
    ----------
    %(image_grey)s
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank. Default: the cross of connectivity 1.
    %(out)s
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'max', 'min', 'ignore'}, optional
        Border handling for both steps; 'ignore' is neutral in each (maximum for the erosion,
        minimum for the dilation).
    cval : float, optional
        Border value for ``mode='constant'`` (cast as in :func:`erosion`).
    %(backend)s
    %(batch)s

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
    %(dtypes_grey)s

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
    return _grey_steps("opening", image, footprint, out, mode, cval, backend, batch, AUTO_OPENING,
                       (False, True))


@_shared_doc
def closing(image, footprint=None, out=None, *, mode="reflect", cval=0.0, backend="auto",
            batch=False):
    """Grey-level morphological closing: dilation, then erosion with the mirrored footprint.

    Removes dark details smaller than the footprint. Same result as
    ``skimage.morphology.closing`` in every dtype, 2-D and 3-D.

    Parameters
    ----------
    %(image_grey)s
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank. Default: the cross of connectivity 1.
    %(out)s
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'max', 'min', 'ignore'}, optional
        Border handling for both steps; 'ignore' is neutral in each.
    cval : float, optional
        Border value for ``mode='constant'`` (cast as in :func:`erosion`).
    %(backend)s
    %(batch)s

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
    %(dtypes_grey)s

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import closing, disk
    >>> img = np.full((7, 7), 5, np.int16)
    >>> img[3, 3] = -100         # a one-pixel hole: filled
    >>> int(closing(img, disk(1))[3, 3])
    5
    """
    return _grey_steps("closing", image, footprint, out, mode, cval, backend, batch, AUTO_CLOSING,
                       (True, False))


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
    return image, src, seq, out, _kernels(chosen)


def _finish_binary(result, out, direct, k=None):
    if getattr(k, "to_host", False):
        result = result.copy_to_host()
    if out is None:
        return result.view(np.bool_)
    if direct is None:
        np.copyto(out, result.view(np.bool_))
    return out


def _binary_steps(name, image, footprint, out, mode, backend, batch, steps):
    """Binary kernel ``name`` as a chain of erosions (False) and dilations (True), each with the
    same footprint; outside pixels are True for an erosion unless ``mode='min'``, and for a
    dilation only with ``mode='max'``."""
    if _dask.is_dask_array(image):
        return _dask.morphology(name, image, footprint, out, mode, None, backend, batch)
    image, src, seq, out, k = _prepare_binary(image, footprint, out, mode, backend, batch)
    direct = _direct_dst(out, image)
    cur = src
    for i, is_max in enumerate(steps):
        cur = _binary(k, cur, seq, is_max=is_max,
                      border_true=(mode == "max") if is_max else (mode != "min"),
                      dst=direct if i == len(steps) - 1 else None)
    return _finish_binary(cur, out, direct, k)


@_shared_doc
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
    %(out_bool)s
    mode : {'ignore', 'max', 'min'}, optional
        Outside pixels are True for 'ignore' and 'max', False for 'min'.
    %(backend)s
    %(batch)s

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
    %(dtypes_bool)s

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
    return _binary_steps("binary_erosion", image, footprint, out, mode, backend, batch, (False,))


@_shared_doc
def binary_dilation(image, footprint=None, out=None, *, mode="ignore", backend="auto",
                    batch=False):
    """Binary dilation: True where the mirrored footprint around the pixel touches a True pixel.

    Same result as ``skimage.morphology.binary_dilation`` (0.26). Unlike :func:`dilation`, the
    footprint is mirrored (scipy.ndimage's convention); that matters for asymmetric footprints.

    Parameters
    ----------
    %(image_bool)s
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank; even sides padded at the end. Default: the cross of
        connectivity 1.
    %(out_bool)s
    mode : {'ignore', 'max', 'min'}, optional
        Outside pixels are False for 'ignore' and 'min', True for 'max'.
    %(backend)s
    %(batch)s

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
    %(dtypes_bool)s

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
    return _binary_steps("binary_dilation", image, footprint, out, mode, backend, batch, (True,))


@_shared_doc
def binary_opening(image, footprint=None, out=None, *, mode="ignore", backend="auto",
                   batch=False):
    """Binary opening: :func:`binary_erosion` then :func:`binary_dilation` with the same footprint.

    Same result as ``skimage.morphology.binary_opening`` (0.26).

    Parameters
    ----------
    %(image_bool)s
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank. Default: the cross of connectivity 1.
    %(out_bool)s
    mode : {'ignore', 'max', 'min'}, optional
        'ignore': outside is True for the erosion and False for the dilation (neutral in both);
        'max': True in both; 'min': False in both.
    %(backend)s
    %(batch)s

    Returns
    -------
    ndarray of bool

    Raises
    ------
    ValueError
        As :func:`binary_erosion`.

    Notes
    -----
    %(dtypes_bool)s

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import binary_opening
    >>> mask = np.zeros((5, 5), bool)
    >>> mask[2, 2] = True        # an isolated pixel is removed
    >>> bool(binary_opening(mask).any())
    False
    """
    return _binary_steps("binary_opening", image, footprint, out, mode, backend, batch, (False, True))


@_shared_doc
def binary_closing(image, footprint=None, out=None, *, mode="ignore", backend="auto",
                   batch=False):
    """Binary closing: :func:`binary_dilation` then :func:`binary_erosion` with the same footprint.

    Same result as ``skimage.morphology.binary_closing`` (0.26).

    Parameters
    ----------
    %(image_bool)s
    footprint : array_like or sequence of (ndarray, int), optional
        Flat neighbourhood of the image's rank. Default: the cross of connectivity 1.
    %(out_bool)s
    mode : {'ignore', 'max', 'min'}, optional
        'ignore': outside is False for the dilation and True for the erosion (neutral in both);
        'max': True in both; 'min': False in both.
    %(backend)s
    %(batch)s

    Returns
    -------
    ndarray of bool

    Raises
    ------
    ValueError
        As :func:`binary_erosion`.

    Notes
    -----
    %(dtypes_bool)s

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.kernels import binary_closing
    >>> mask = np.ones((5, 5), bool)
    >>> mask[2, 2] = False       # a one-pixel hole is filled
    >>> bool(binary_closing(mask).all())
    True
    """
    return _binary_steps("binary_closing", image, footprint, out, mode, backend, batch, (True, False))
