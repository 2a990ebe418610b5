"""Helpers shared by every backend of :mod:`medfeat._kernels`, written once.

Scalar helpers are plain Python functions that each backend compiles for itself (nothing here
imports Numba): ``numba.njit(inline="always")`` in :mod:`medfeat._kernels.numba_cpu` and
``numba.cuda.jit(device=True)`` in :mod:`medfeat._kernels.numba_cuda`, so the CPU and GPU bodies
share one definition of SciPy's boundary extension and of NumPy's histogram bin. Host-side helpers (:func:`int_scale`)
are used by the public layer and the backends alike.
"""

from __future__ import annotations

import numpy as np

# Boundary modes of scipy.ndimage, numbered as the compiled kernels take them.
REFLECT, CONSTANT, NEAREST, MIRROR, WRAP = 0, 1, 2, 3, 4
#: scipy.ndimage's mode names -> the numbers above
MODES = {"reflect": REFLECT, "constant": CONSTANT, "nearest": NEAREST, "mirror": MIRROR,
         "wrap": WRAP}


def boundary_index(i, n, mode):
    """Index ``i`` of a length-``n`` axis after SciPy's boundary extension; -1 means ``cval``.

    ``mode`` is one of :data:`MODES`' numbers. Reflection continues periodically however far ``i``
    lies outside the axis.

    Examples
    --------
    >>> [boundary_index(i, 3, REFLECT) for i in range(-4, 7)]
    [2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0]
    >>> [boundary_index(i, 3, MIRROR) for i in range(-2, 5)]
    [2, 1, 0, 1, 2, 1, 0]
    >>> boundary_index(-1, 3, CONSTANT)
    -1
    """
    if 0 <= i < n:
        return i
    if mode == CONSTANT:
        return -1
    if mode == NEAREST:
        return 0 if i < 0 else n - 1
    if mode == WRAP:
        return i % n
    if mode == REFLECT:
        p = 2 * n
        i = i % p
        return p - 1 - i if i >= n else i
    # MIRROR
    if n == 1:
        return 0
    p = 2 * n - 2
    i = i % p
    return p - i if i >= n else i


def bin_slot(v, edges, nb, lo, hi, first, scale):
    """The histogram slot of value ``v``: its bin ``0 .. nb - 1`` among ``edges`` (``nb + 1``
    increasing edges, ``numpy.histogram``'s bin for every value), ``nb`` for NaN, ``nb + 1`` for a
    value outside ``[lo, hi]``.

    ``first`` and ``scale`` give NumPy's first guess for uniform bins, ``(v - first) * scale``;
    a walk from it then finds the bin whose edges bracket ``v`` (NumPy corrects the guess by one
    step; the walk gives the same bin whenever one step suffices, and the right one otherwise).

    Examples
    --------
    >>> edges = np.linspace(0.0, 1.0, 5)
    >>> [bin_slot(v, edges, 4, 0.0, 1.0, 0.0, 4.0) for v in (0.0, 0.3, 1.0, float("nan"), 2.0)]
    [0, 1, 3, 4, 5]
    """
    if not (v >= lo and v <= hi):
        return nb if v != v else nb + 1
    i = int((v - first) * scale)
    if i > nb - 1:
        i = nb - 1
    if i < 0:
        i = 0
    while i > 0 and v < edges[i]:
        i -= 1
    while i < nb - 1 and v >= edges[i + 1]:
        i += 1
    return i


def int_scale(dtype):
    """Factor that maps an integer dtype to floats the way ``skimage.img_as_float`` does.

    uint8 → 1/255, uint16 → 1/65535, int16 → 1/32767 (then clipped at -1); floats and bool → 1.

    Examples
    --------
    >>> int_scale(np.uint8) == 1 / 255
    True
    """
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        return 1.0 / np.iinfo(dt).max
    return 1.0
