"""Flat footprints (structuring elements) of the morphology kernels, and footprint sequences.

The arrays are scikit-image's (``skimage.morphology.disk``, ``footprint_rectangle``, ...); the
private helpers turn what a kernel's ``footprint`` argument may be (None, an array, a sequence
``((array, n_iter), ...)``) into a list of ``(bool array, n_iter)``.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._validate import check_footprint

__all__ = ["disk", "rectangle", "diamond", "ball", "cube"]


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
# what a kernel's footprint argument may be


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


def _footprints(footprint, ndim, batch):
    """:func:`_prepare_footprint` for an image of rank ``ndim``; with ``batch`` the footprint is 2-D
    and lifted to ``(1, rows, cols)``: a 3-D filter that never reaches across the stack's first
    axis is the 2-D filter of each image."""
    if not batch:
        return _prepare_footprint(footprint, ndim)
    return [(fp[None], n) for fp, n in _prepare_footprint(footprint, 2)]
