"""Numba CPU body of one chunk's share of Canny's hysteresis when it is resolved across the chunks
of a dask array (:mod:`medfeat.kernels._dask`).

The hysteresis keeps a candidate pixel when its 8-connected component of candidates holds a strong
pixel. A strong pixel is kept whatever its neighbours, and a weak one exactly when its *weak blob*
(8-connected component of weak pixels) touches a strong pixel: on a path from a weak pixel to the
first strong one, every pixel before that one is weak, so it lies in the same blob. A chunk can
therefore decide every pixel by flooding its weak pixels only, and leaves open just the blobs that
reach one of its sides without touching a strong pixel: those may join a strong pixel (or a kept
blob) of a neighbouring chunk across the boundary. The flood visits the weak pixels and never the
strong ones, which in Canny's candidates are usually the larger share.

What the merge across chunks needs is the same as in dask-image's ``ndmeasure.label``: numbers
along the chunk's four sides. Number 1 stands for every kept pixel of the chunk (a strong pixel or
a weak one whose blob touches one): a neighbouring blob adjacent to any of them is kept. Numbers
2, 3, ... are the open blobs, in the raster order of their first pixel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = dict(cache=True, error_model="numpy", nogil=True)


@njit(**_OPTS)
def _codes(cand, r0, c0, H, W, code):
    """``code`` of the window ``cand[r0:r0+H, c0:c0+W]``: 1 for a strong pixel, 3 for a weak one,
    0 elsewhere; returns the number of weak pixels."""
    nweak = 0
    for y in range(H):
        src = cand[r0 + y, c0:c0 + W]
        dst = code[y]
        for x in range(W):
            v = src[x]
            w = v == 1
            dst[x] = np.uint8(v == 2) | (np.uint8(w) * np.uint8(3))
            nweak += w
    return nweak


@njit(inline="always", **_OPTS)
def _visit(flat, r, stack, top, strong):
    """One neighbour of the flood: an unvisited weak pixel (3) is marked (4) and pushed; a strong
    one (1) says the blob touches it. Returns the new stack top and ``strong``."""
    c = flat[r]
    if c == 3:
        flat[r] = 4
        stack[top] = r
        top += 1
    elif c == 1:
        strong = True
    return top, strong


@njit(**_OPTS)
def _flood_weak(code, H, W, nweak):
    """Flood every weak blob of ``code`` (3 marks an unvisited weak pixel) and decide it: 1 when it
    touches a strong pixel, else 2 when it reaches a side of the window (then numbered 2, 3, ...),
    else 0. Returns the positions (raster indices) and numbers of the pixels coded 2, the number of
    open blobs, and ``code`` updated in place."""
    flat = code.reshape(-1)
    stack = np.empty(max(nweak, 1), np.int64)
    members = np.empty(max(nweak, 1), np.int64)
    pos = np.empty(max(nweak, 1), np.int64)
    num = np.empty(max(nweak, 1), np.int64)
    npos = 0
    nm = 0
    k = 1
    if nweak == 0:
        return pos[:0], num[:0], 0
    for p0 in range(H * W):
        if flat[p0] != 3:
            continue
        start = nm
        flat[p0] = 4
        stack[0] = p0
        top = 1
        strong = False
        side = False
        while top > 0:
            top -= 1
            q = stack[top]
            members[nm] = q
            nm += 1
            y = q // W
            x = q - y * W
            if 0 < y < H - 1 and 0 < x < W - 1:
                for r in (q - W - 1, q - W, q - W + 1, q - 1, q + 1, q + W - 1, q + W, q + W + 1):
                    top, strong = _visit(flat, r, stack, top, strong)
                continue
            side = True
            for yy in range(max(y - 1, 0), min(y + 2, H)):
                for xx in range(max(x - 1, 0), min(x + 2, W)):
                    top, strong = _visit(flat, yy * W + xx, stack, top, strong)
        if strong:
            # weak pixels marked 1 are never next to an unvisited weak pixel (they would share its
            # blob), so a later flood reads 1 only from strong pixels or this blob's own, both kept
            for i in range(start, nm):
                flat[members[i]] = 1
        elif side:
            k += 1
            for i in range(start, nm):
                q = members[i]
                flat[q] = 2
                pos[npos] = q
                num[npos] = k
                npos += 1
        else:
            for i in range(start, nm):
                flat[members[i]] = 0
    return pos[:npos], num[:npos], k - 1


@njit(**_OPTS)
def _side_numbers(code, pos, num, H, W, top, bottom, left, right):
    """The numbers along the window's four sides: 1 on a kept pixel, the blob's number on an open
    one, 0 elsewhere."""
    for x in range(W):
        top[x] = 1 if code[0, x] == 1 else 0
        bottom[x] = 1 if code[H - 1, x] == 1 else 0
    for y in range(H):
        left[y] = 1 if code[y, 0] == 1 else 0
        right[y] = 1 if code[y, W - 1] == 1 else 0
    for i in range(pos.size):
        q = pos[i]
        y = q // W
        x = q - y * W
        if y == 0:
            top[x] = num[i]
        if y == H - 1:
            bottom[x] = num[i]
        if x == 0:
            left[y] = num[i]
        if x == W - 1:
            right[y] = num[i]


def chunk_hysteresis(cand, window=None):
    """One chunk's share of a hysteresis resolved across chunks.

    Parameters
    ----------
    cand : ndarray of uint8, 2-D
        Canny's candidates (0; 1 weak; 2 strong), as ``canny_labels`` gives them, possibly with a
        halo around the chunk.
    window : tuple of int, optional
        ``(r0, c0, H, W)``: the chunk inside ``cand`` (default: all of it). Nothing outside it is
        read.

    Returns
    -------
    kept : ndarray of bool, ``(H, W)``
        The pixels decided to be edges here.
    pos, num : ndarray
        Raster positions (int64) and numbers of the pixels of the open blobs, which are edges
        exactly when their number turns out to be joined to a kept pixel across chunks.
    nb : int
        How many numbers the chunk uses: 1 (its kept pixels) plus its open blobs.
    strong : ndarray
        The numbers that are edges whatever the other chunks hold (``[1]``).
    top, bottom, left, right : ndarray
        The numbers along the four sides (0 off the candidates).

    Numbers are uint16 when ``nb`` < 65536, else uint32.
    """
    cand = np.ascontiguousarray(cand, dtype=np.uint8)
    if window is None:
        window = (0, 0, *cand.shape)
    r0, c0, H, W = (int(v) for v in window)
    code = np.empty((H, W), np.uint8)
    nweak = _codes(cand, r0, c0, H, W, code)
    pos, num, nopen = _flood_weak(code, H, W, nweak)
    nb = nopen + 1
    dtype = np.uint16 if nb < 1 << 16 else np.uint32
    sides = [np.empty(n, dtype) for n in (W, W, H, H)]
    _side_numbers(code, pos, num, H, W, *sides)
    return (code.view(np.bool_) if nopen == 0 else code == 1, pos, num.astype(dtype), nb,
            np.ones(1, dtype), *sides)
