"""numba.cuda bodies of the edge kernels (Sobel, Prewitt, Canny).

Same function names and arguments as ``medfeat._kernels.numba_cpu.edges``, with two differences:
arrays are numba device arrays, and the image arrives in its own dtype -- the conversion to
floating point (``skimage.img_as_float``'s rule) is fused into the tile load instead of being a
separate pass over the image. The public face lives in :mod:`medfeat.kernels.edges`. Canny has two
entry points working on stacks ``(N, H, W)`` (one image is a stack of one), :func:`canny_magnitude`
and :func:`canny_edges`, between which the public layer takes quantile thresholds with the radix
select of :mod:`medfeat._kernels.numba_cuda.intensity`; :func:`canny_device` chains them for one
image with fixed thresholds (the CPU's ``canny_fused`` streams rows through small rings, a scheme
for a core's cache, not for a GPU).

The arithmetic repeats the CPU bodies' order of operations (differences first, then smoothing, in
the output's float type for 2-D; float64 accumulation for 3-D) so that the two backends agree to the
last bits under the simulator. On a real GPU the compiler may contract ``a * b + c`` into a fused
multiply-add, so expect agreement within a few ulps there, not bit for bit.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import config, cuda

from .._common import CONSTANT, REFLECT, boundary_index, int_scale
from ._common import TILE, TPB, blocks_1d, grid_2d

# How a pixel becomes a float (the tile load does it): as is, integer scaling, bool.
_AS_FLOAT, _AS_INT, _AS_BOOL = 0, 1, 2


#: SciPy's boundary extension (``medfeat._kernels._common.boundary_index``, shared with the CPU)
_map = cuda.jit(device=True)(boundary_index)


@cuda.jit(device=True)
def _load64(v, kind, iscale):
    """A pixel as float64, converted as ``skimage.img_as_float`` (int16 clipped at -1)."""
    if kind == _AS_INT:
        a = numba.float64(v) * iscale
        return -1.0 if a < -1.0 else a
    return numba.float64(v)


def _conversion(dtype):
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return _AS_BOOL, 1.0
    if dt.kind in "ui":
        return _AS_INT, int_scale(dt)
    return _AS_FLOAT, 1.0


# ------------------------------------------------------------------------------------- 2-D Sobel

def _make_edge_2d(T):
    """The 2-D kernels computing in float type ``T`` (float32 for float32 input, else float64):
    one for an image, one for a stack of images (one launch, ``blockIdx.z`` = image)."""
    side = TILE + 2

    @cuda.jit(device=True)
    def body(img, out, eroded, use_mask, tile, m0, m1, cval, center, scale, w0, w1, single, kind,
             iscale):
        H, W = img.shape
        # the block's TILE x TILE pixels and a one-pixel halo, already boundary-extended and
        # converted, so every pixel is read from global memory once per block instead of 8 times
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        x0 = cuda.blockIdx.x * TILE - 1
        y0 = cuda.blockIdx.y * TILE - 1
        cv = T(cval)
        t = ty * TILE + tx
        while t < side * side:
            ly = t // side
            lx = t - ly * side
            yy = _map(y0 + ly, H, m0)
            xx = _map(x0 + lx, W, m1)
            if yy < 0 or xx < 0:
                tile[ly, lx] = cv
            elif kind == _AS_FLOAT:
                tile[ly, lx] = T(img[yy, xx])
            else:
                tile[ly, lx] = T(_load64(img[yy, xx], kind, iscale))
            t += TILE * TILE
        cuda.syncthreads()
        y = y0 + 1 + ty
        x = x0 + 1 + tx
        if y >= H or x >= W:
            return
        ly = ty + 1
        lx = tx + 1
        c = T(center)
        sc = T(scale)
        zero = T(0.0)
        # differences across rows at columns x-1, x, x+1; a column outside the image in
        # 'constant' mode contributes 0 (cval - cval), as in the CPU body
        vm = zero if _map(x - 1, W, m1) < 0 else tile[ly + 1, lx - 1] - tile[ly - 1, lx - 1]
        v0 = tile[ly + 1, lx] - tile[ly - 1, lx]
        vp = zero if _map(x + 1, W, m1) < 0 else tile[ly + 1, lx + 1] - tile[ly - 1, lx + 1]
        hu = tile[ly - 1, lx + 1] - tile[ly - 1, lx - 1]
        hm = tile[ly, lx + 1] - tile[ly, lx - 1]
        hn = tile[ly + 1, lx + 1] - tile[ly + 1, lx - 1]
        if single == 0:
            v = (vm + c * v0 + vp) * sc
        elif single == 1:
            v = (hu + c * hm + hn) * sc
        else:
            g0 = (vm + c * v0 + vp) * sc
            g1 = (hu + c * hm + hn) * sc
            v = math.sqrt(T(w0) * g0 * g0 + T(w1) * g1 * g1) * T(1.0 / math.sqrt(2.0))
        if use_mask:
            v = v * T(eroded[y, x])
        out[y, x] = v

    @cuda.jit
    def single_image(img, out, eroded, use_mask, m0, m1, cval, center, scale, w0, w1, single,
                     kind, iscale):
        tile = cuda.shared.array((side, side), T)
        body(img, out, eroded, use_mask, tile, m0, m1, cval, center, scale, w0, w1, single, kind,
             iscale)

    @cuda.jit
    def stack(img, out, first, m0, m1, cval, center, scale, w0, w1, single, kind, iscale):
        tile = cuda.shared.array((side, side), T)
        n = first + cuda.blockIdx.z
        body(img[n], out[n], out[n], False, tile, m0, m1, cval, center, scale, w0, w1, single,
             kind, iscale)

    return single_image, stack


_EDGE_2D = {}


def _compiled(out):
    T = numba.float32 if out.dtype == np.float32 else numba.float64
    if T not in _EDGE_2D:
        _EDGE_2D[T] = _make_edge_2d(T)
    return _EDGE_2D[T]


def edge_filter_2d(image, out, eroded, modes, cval, center, scale, weights, single):
    """Separable 3x3 edge filter of a 2-D device image into the device array ``out``.

    Arguments as :func:`medfeat._kernels.numba_cpu.edges.edge_filter_2d`; ``image`` may be of any
    supported dtype (converted in the tile load), ``out`` is float32 or float64, ``eroded`` a uint8
    device array or None for no mask. One thread per pixel, TILE x TILE blocks.
    """
    kind, iscale = _conversion(image.dtype)
    H, W = image.shape
    blocks, threads = grid_2d(H, W)
    use_mask = eroded is not None
    er = eroded if use_mask else out  # any 2-D array: never read without use_mask
    _compiled(out)[0][blocks, threads](image, out, er, use_mask, int(modes[0]), int(modes[1]),
                                       float(cval), float(center), float(scale),
                                       float(weights[0]), float(weights[1]), int(single), kind,
                                       iscale)
    return out


#: CUDA's limit on gridDim.z: larger stacks take several launches
_MAX_GRID_Z = 65535


def edge_filter_batch(image, out, modes, cval, center, scale, weights, single):
    """:func:`edge_filter_2d` of every image of an ``(N, H, W)`` device stack into ``out``, in one
    launch (``blockIdx.z`` picks the image; one launch per 65 535 images). No mask."""
    kind, iscale = _conversion(image.dtype)
    N, H, W = image.shape
    (bx, by), threads = grid_2d(H, W)
    for first in range(0, N, _MAX_GRID_Z):
        nz = min(_MAX_GRID_Z, N - first)
        _compiled(out)[1][(bx, by, nz), threads](
            image, out, first, int(modes[0]), int(modes[1]), float(cval), float(center),
            float(scale), float(weights[0]), float(weights[1]), int(single), kind, iscale)
    return out


# ------------------------------------------------------------------------------------- 3-D Sobel

@cuda.jit(device=True)
def _column(img, z, y, xc, D, H, m0, m1, cval, center, kind, iscale):
    """(d/dz smoothed along y, d/dy smoothed along z, smoothed along z and y) at column ``xc``,
    summed in the CPU body's order."""
    t0 = 0.0
    t1 = 0.0
    t2 = 0.0
    for k in range(3):
        sw = center if k == 1 else 1.0
        # the rows (z + dz - 1, y + k - 1) and (z + k - 1, y + dy - 1) for dz, dy in 0, 1, 2
        r = cuda.local.array(3, numba.float64)
        q = cuda.local.array(3, numba.float64)
        for d in range(3):
            zi = _map(z + d - 1, D, m0)
            yi = _map(y + k - 1, H, m1)
            r[d] = cval if zi < 0 or yi < 0 else _load64(img[zi, yi, xc], kind, iscale)
            zi = _map(z + k - 1, D, m0)
            yi = _map(y + d - 1, H, m1)
            q[d] = cval if zi < 0 or yi < 0 else _load64(img[zi, yi, xc], kind, iscale)
        t0 += sw * (r[2] - r[0])
        t1 += sw * (q[2] - q[0])
        t2 += sw * (q[0] + center * q[1] + q[2])
    return t0, t1, t2


@cuda.jit
def _edge_3d(img, out, eroded, use_mask, m0, m1, m2, cval, center, scale, w0, w1, w2, single,
             kind, iscale):
    D, H, W = img.shape
    s2 = 2.0 + center
    fill = s2 * s2 * cval
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for idx in range(start, D * H * W, stride):
        z = idx // (H * W)
        rem = idx - z * H * W
        y = rem // W
        x = rem - y * W
        a0c, a1c, ssc = _column(img, z, y, x, D, H, m0, m1, cval, center, kind, iscale)
        xm = _map(x - 1, W, m2)
        if xm < 0:
            a0m, a1m, ssm = 0.0, 0.0, fill
        else:
            a0m, a1m, ssm = _column(img, z, y, xm, D, H, m0, m1, cval, center, kind, iscale)
        xp = _map(x + 1, W, m2)
        if xp < 0:
            a0p, a1p, ssp = 0.0, 0.0, fill
        else:
            a0p, a1p, ssp = _column(img, z, y, xp, D, H, m0, m1, cval, center, kind, iscale)
        g0 = (a0m + center * a0c + a0p) * scale
        g1 = (a1m + center * a1c + a1p) * scale
        g2 = (ssp - ssm) * scale
        if single == 0:
            v = g0
        elif single == 1:
            v = g1
        elif single == 2:
            v = g2
        else:
            v = math.sqrt(w0 * g0 * g0 + w1 * g1 * g1 + w2 * g2 * g2) / math.sqrt(3.0)
        if use_mask:
            v = v * eroded[z, y, x]
        out[z, y, x] = v


def edge_filter_3d(image, out, eroded, modes, cval, center, scale, weights, single):
    """3-D twin of :func:`edge_filter_2d`: one thread per voxel (grid-stride), reading its 3x3x3
    neighbourhood from global memory (no shared-memory tile yet), float64 accumulation."""
    kind, iscale = _conversion(image.dtype)
    use_mask = eroded is not None
    er = eroded if use_mask else out
    _edge_3d[blocks_1d(image.size), TPB](
        image, out, er, use_mask, int(modes[0]), int(modes[1]), int(modes[2]), float(cval),
        float(center), float(scale), float(weights[0]), float(weights[1]), float(weights[2]),
        int(single), kind, iscale)
    return out


# ------------------------------------------------------------------------------------ mask erosion

@cuda.jit
def _erode_2d(mask, out):
    H, W = mask.shape
    x, y = cuda.grid(2)
    if y >= H or x >= W:
        return
    ok = 1
    if y == 0 or x == 0 or y == H - 1 or x == W - 1:
        ok = 0
    else:
        for di in range(-1, 2):
            for dj in range(-1, 2):
                if not mask[y + di, x + dj]:
                    ok = 0
    out[y, x] = ok


@cuda.jit
def _erode_3d(mask, out):
    D, H, W = mask.shape
    start = cuda.grid(1)
    for idx in range(start, D * H * W, cuda.gridsize(1)):
        z = idx // (H * W)
        rem = idx - z * H * W
        y = rem // W
        x = rem - y * W
        ok = 1
        if z == 0 or y == 0 or x == 0 or z == D - 1 or y == H - 1 or x == W - 1:
            ok = 0
        else:
            for dz in range(-1, 2):
                for di in range(-1, 2):
                    for dj in range(-1, 2):
                        if not mask[z + dz, y + di, x + dj]:
                            ok = 0
        out[z, y, x] = ok


def erode_mask_2d(mask):
    """Erosion of a device mask by the full 3x3 square with a False border, as a uint8 device
    array (:func:`medfeat._kernels.numba_cpu.edges.erode_mask_2d`)."""
    out = cuda.device_array(mask.shape, np.uint8)
    blocks, threads = grid_2d(*mask.shape)
    _erode_2d[blocks, threads](mask, out)
    return out


def erode_mask_3d(mask):
    """3-D twin of :func:`erode_mask_2d` (full 3x3x3 cube)."""
    out = cuda.device_array(mask.shape, np.uint8)
    _erode_3d[blocks_1d(mask.size), TPB](mask, out)
    return out


# ------------------------------------------------------------------------------------------ Canny
#
# Every kernel works on a stack (N, H, W) of images (a single image is a stack of one), one thread
# per pixel, and repeats the CPU body's arithmetic (SciPy's order of operations and roundings to T,
# so that suppression keeps the same pixels): Gaussian along axis 0 (rounded to T), Gaussian along
# axis 1 with the "bleed" division, Sobel responses and magnitude, then non-maximum suppression
# with the double threshold (one pair of thresholds per image). Hysteresis runs on the device by
# union-find: see :func:`hysteresis`.


def _make_canny(T):
    @cuda.jit
    def as_float(src, dst, kind, iscale, mask, use_mask, bleed):
        N, H, W = src.shape
        for idx in range(cuda.grid(1), N * H * W, cuda.gridsize(1)):
            n = idx // (H * W)
            r = idx - n * H * W
            i = r // W
            j = r - i * W
            v = T(src[n, i, j]) if kind == _AS_FLOAT else T(_load64(src[n, i, j], kind, iscale))
            if use_mask:
                keep = mask[n, i, j] != 0
                dst[n, i, j] = v if keep else T(0.0)
                bleed[n, i, j] = T(1.0) if keep else T(0.0)
            else:
                dst[n, i, j] = v

    @cuda.jit
    def vpass(src, weights, mode, cval, out):
        # out = T(Gaussian along axis 0), accumulated in float64 in SciPy's order
        N, H, W = src.shape
        R = (weights.size - 1) // 2
        for idx in range(cuda.grid(1), N * H * W, cuda.gridsize(1)):
            n = idx // (H * W)
            r = idx - n * H * W
            i = r // W
            j = r - i * W
            acc = numba.float64(src[n, i, j]) * weights[R]
            for k in range(R, 0, -1):
                a = _map(i - k, H, mode)
                b = _map(i + k, H, mode)
                va = cval if a < 0 else numba.float64(src[n, a, j])
                vb = cval if b < 0 else numba.float64(src[n, b, j])
                acc += (va + vb) * weights[R + k]
            out[n, i, j] = T(acc)

    @cuda.jit(device=True)
    def hpoint(line, n, i, j, weights, mode, cval):
        W = line.shape[2]
        R = (weights.size - 1) // 2
        s = numba.float64(line[n, i, j]) * weights[R]
        for k in range(R, 0, -1):
            a = _map(j - k, W, mode)
            b = _map(j + k, W, mode)
            va = cval if a < 0 else numba.float64(line[n, i, a])
            vb = cval if b < 0 else numba.float64(line[n, i, b])
            s += (va + vb) * weights[R + k]
        return s

    @cuda.jit
    def hpass(vimg, vbleed, weights, mode, cval, bleed_kind, eps, out):
        # vbleed: one plane per image, or a single plane shared by all (the all-ones indicator)
        N, H, W = vimg.shape
        shared = vbleed.shape[0] == 1
        for idx in range(cuda.grid(1), N * H * W, cuda.gridsize(1)):
            n = idx // (H * W)
            r = idx - n * H * W
            i = r // W
            j = r - i * W
            s = hpoint(vimg, n, i, j, weights, mode, cval)
            if bleed_kind == 0:
                out[n, i, j] = T(s)
            else:
                b = T(hpoint(vbleed, 0 if shared else n, i, j, weights, mode, cval)) + eps
                out[n, i, j] = T(T(s) / b)

    @cuda.jit(device=True)
    def ediff(S, n, r, c, W):
        # T(p[c + 1] - p[c - 1]) along a row, reflect-padded (SciPy's first Sobel pass)
        return numba.float64(T(numba.float64(S[n, r, _map(c + 1, W, REFLECT)])
                               - numba.float64(S[n, r, _map(c - 1, W, REFLECT)])))

    @cuda.jit
    def gradients(S, mag, isob, jsob):
        N, H, W = S.shape
        for idx in range(cuda.grid(1), N * H * W, cuda.gridsize(1)):
            n = idx // (H * W)
            r = idx - n * H * W
            x = r // W
            j = r - x * W
            iu = _map(x - 1, H, REFLECT)
            idn = _map(x + 1, H, REFLECT)
            jm = _map(j - 1, W, REFLECT)
            jp = _map(j + 1, W, REFLECT)
            dv0 = numba.float64(T(numba.float64(S[n, idn, jm]) - numba.float64(S[n, iu, jm])))
            dv1 = numba.float64(T(numba.float64(S[n, idn, j]) - numba.float64(S[n, iu, j])))
            dv2 = numba.float64(T(numba.float64(S[n, idn, jp]) - numba.float64(S[n, iu, jp])))
            ib = T(2.0 * dv1 + (dv0 + dv2))
            jb = T(2.0 * ediff(S, n, x, j, W) + (ediff(S, n, iu, j, W) + ediff(S, n, idn, j, W)))
            isob[n, x, j] = ib
            jsob[n, x, j] = jb
            mag[n, x, j] = T(math.sqrt(ib * ib + jb * jb))

    @cuda.jit
    def suppress(M, isob, jsob, eroded, use_mask, lows, highs, label):
        N, H, W = M.shape
        for idx in range(cuda.grid(1), N * H * W, cuda.gridsize(1)):
            n = idx // (H * W)
            r = idx - n * H * W
            x = r // W
            y = r - x * W
            lab = numba.uint8(0)
            if 0 < x < H - 1 and 0 < y < W - 1 and (not use_mask or eroded[n, x, y] != 0):
                m = M[n, x, y]
                ib = isob[n, x, y]
                jb = jsob[n, x, y]
                ai = abs(ib)
                aj = abs(jb)
                c1 = (ib > 0) == (jb > 0)
                vert = (c1 and ai > aj) or ((not c1) and not (ai < aj))
                num = aj if vert else ai
                den = ai if vert else aj
                w = T(num / den)
                if vert:
                    n11 = M[n, x + 1, y] if c1 else M[n, x - 1, y]
                    n21 = M[n, x - 1, y] if c1 else M[n, x + 1, y]
                else:
                    n11 = M[n, x, y + 1]
                    n21 = M[n, x, y - 1]
                n12 = M[n, x + 1, y + 1] if c1 else M[n, x - 1, y + 1]
                n22 = M[n, x - 1, y - 1] if c1 else M[n, x + 1, y - 1]
                # the CPU body's types: n * w in T, n * (1.0 - w) in float64
                w64 = numba.float64(w)
                keep = ((numba.float64(T(n12 * w)) + numba.float64(n11) * (1.0 - w64)) <= m
                        and (numba.float64(T(n22 * w)) + numba.float64(n21) * (1.0 - w64)) <= m
                        and m >= lows[n])
                if keep:
                    lab = numba.uint8(3) if m >= highs[n] else numba.uint8(1)
            label[n, x, y] = lab

    return as_float, vpass, hpass, gradients, suppress


@cuda.jit
def _fill(a, value):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] = value


_CANNY = {}


def _canny_kernels(float32):
    T = numba.float32 if float32 else numba.float64
    if T not in _CANNY:
        _CANNY[T] = _make_canny(T)
    return _CANNY[T]


def canny_magnitude(image, weights, mode, cval, mask, eps, float32):
    """Smoothing and Sobel stages of Canny for a device stack ``(N, H, W)`` of any supported dtype.

    ``weights`` are the Gaussian's (host), ``mask`` the valid-pixel device mask ``(N, H, W)`` or
    None, ``eps`` the float type's epsilon; ``float32`` selects float32 arithmetic (float32
    input). Returns the device arrays ``(magnitude, isobel, jsobel)``, each ``(N, H, W)`` of the
    float type.
    """
    as_float, vpass, hpass, gradients, _ = _canny_kernels(float32)
    dt = np.float32 if float32 else np.float64
    N, H, W = image.shape
    nb = blocks_1d(N * H * W)
    kind, iscale = _conversion(image.dtype)
    f = cuda.device_array((N, H, W), dt)
    use_mask = mask is not None
    bleed = cuda.device_array((N, H, W), dt) if use_mask else f
    as_float[nb, TPB](image, f, kind, iscale, mask if use_mask else image, use_mask, bleed)
    d_w = cuda.to_device(np.ascontiguousarray(weights, np.float64))
    if use_mask:
        bleed_kind = 2
    elif mode == CONSTANT:
        # the valid-pixel indicator is all ones inside the image (cval outside, as on the CPU):
        # one plane, shared by every image of the stack
        bleed_kind = 1
        bleed = cuda.device_array((1, H, W), dt)
        _fill[blocks_1d(H * W), TPB](bleed.reshape(H * W), dt(1.0))
    else:
        bleed_kind = 0
    v = cuda.device_array((N, H, W), dt)
    vpass[nb, TPB](f, d_w, int(mode), float(cval), v)
    vb = v
    if bleed_kind:
        vb = cuda.device_array(bleed.shape, dt)
        vpass[blocks_1d(bleed.size), TPB](bleed, d_w, int(mode), float(cval), vb)
    S = f  # the converted image is not needed any more: reuse it for the smoothed one
    hpass[nb, TPB](v, vb, d_w, int(mode), float(cval), bleed_kind, dt(eps), S)
    M, IS, JS = v, cuda.device_array((N, H, W), dt), cuda.device_array((N, H, W), dt)
    gradients[nb, TPB](S, M, IS, JS)
    return M, IS, JS


def canny_edges(M, IS, JS, eroded, lows, highs):
    """Suppression, double threshold and hysteresis: the edge map (bool device array, the stack's
    shape) from :func:`canny_magnitude`'s arrays. ``eroded`` is the eroded mask (uint8 device
    stack) or None; ``lows`` and ``highs`` hold one threshold per image (host, float64), as
    :func:`medfeat._kernels.numba_cpu.edges.canny_fused` takes them."""
    suppress = _canny_kernels(M.dtype == np.float32)[4]
    N, H, W = M.shape
    label = cuda.device_array((N, H, W), np.uint8)
    er = eroded if eroded is not None else label
    d_lo = cuda.to_device(np.ascontiguousarray(lows, np.float64))
    d_hi = cuda.to_device(np.ascontiguousarray(highs, np.float64))
    suppress[blocks_1d(N * H * W), TPB](M, IS, JS, er, eroded is not None, d_lo, d_hi, label)
    hysteresis(label)
    out = cuda.device_array((N, H, W), np.bool_)
    _edges_of[blocks_1d(N * H * W), TPB](label, out)
    return out


def canny_device(image, weights, mode, cval, mask, eroded, eps, low, high, float32):
    """The Canny edge map (bool device array) of a 2-D device ``image`` with fixed thresholds:
    :func:`canny_magnitude` then :func:`canny_edges` on a stack of one."""
    st = stack_view
    M, IS, JS = canny_magnitude(st(image), weights, mode, cval,
                                None if mask is None else st(mask), eps, float32)
    edges = canny_edges(M, IS, JS, None if eroded is None else st(eroded), [low], [high])
    return edges.reshape(image.shape)


def stack_view(d):
    """A 2-D device array as a stack ``(1, H, W)`` of one image, without a copy."""
    if d.ndim == 3:
        return d
    if d.is_c_contiguous():
        return d.reshape((1,) + tuple(d.shape))
    if config.ENABLE_CUDASIM:
        return type(d)(d._ary[None])
    return type(d)(shape=(1,) + tuple(d.shape), strides=(d.strides[0] * d.shape[0],) + d.strides,
                   dtype=d.dtype, gpu_data=d.gpu_data)


# --------------------------------------------------------------------------------- hysteresis
#
# Labels: 0 background, 1 weak (between the thresholds), 3 strong. The edges are the weak pixels
# 8-connected to a strong one through weak pixels, i.e. the connected components of the non-zero
# labels that hold a strong pixel. They are found by concurrent union-find on the device (Playne &
# Hawick 2018): every non-zero pixel starts as its own root, each joins the components of its
# non-zero neighbours W, NW, N and NE with atomicMin on the parent links (a link only ever points
# to a lower index, so the trees stay acyclic whatever the order), the links are then compressed to
# the roots, every strong pixel marks its root, and a pixel is an edge if its root is marked. Five
# launches whatever the image, no host round trip, and the fixed point is the same set of pixels
# as the CPU's flood fill.

#: launches of the last :func:`hysteresis` call (no host round trip between them)
last_hysteresis_launches = 0


@cuda.jit(device=True)
def _find(parent, x):
    """The root of ``x``, halving the path on the way: each visited link is moved up to its
    grandparent, so that trees grown one link per pixel along a long chain (a row of threads each
    linking to its left neighbour) flatten instead of being walked end to end again and again. The
    move is an atomicMin: a link lowered meanwhile by a union is never raised back, and links only
    ever point to lower indices (an ancestor in the same tree), so the trees stay valid."""
    p = parent[x]
    while p != x:
        g = parent[p]
        if g < p:
            cuda.atomic.min(parent, x, g)
        x = p
        p = g
    return x


@cuda.jit(device=True)
def _union(parent, a, b):
    done = False
    while not done:
        a = _find(parent, a)
        b = _find(parent, b)
        if a < b:
            old = cuda.atomic.min(parent, b, a)
            done = old == b
            b = old
        elif b < a:
            old = cuda.atomic.min(parent, a, b)
            done = old == a
            a = old
        else:
            done = True


@cuda.jit
def _uf_init(lab, parent):
    for p in range(cuda.grid(1), lab.size, cuda.gridsize(1)):
        parent[p] = p


@cuda.jit
def _uf_merge(lab, parent, H, W):
    for p in range(cuda.grid(1), lab.size, cuda.gridsize(1)):
        if lab[p] == 0:
            continue
        r = p % (H * W)
        y = r // W
        x = r - y * W
        if x > 0 and lab[p - 1] != 0:
            _union(parent, p, p - 1)
        if y > 0:
            q = p - W
            if x > 0 and lab[q - 1] != 0:
                _union(parent, p, q - 1)
            if lab[q] != 0:
                _union(parent, p, q)
            if x < W - 1 and lab[q + 1] != 0:
                _union(parent, p, q + 1)


@cuda.jit
def _uf_compress(lab, parent):
    for p in range(cuda.grid(1), lab.size, cuda.gridsize(1)):
        if lab[p] != 0:
            parent[p] = _find(parent, p)


@cuda.jit
def _uf_mark(lab, parent):
    for p in range(cuda.grid(1), lab.size, cuda.gridsize(1)):
        if lab[p] == 3:
            lab[parent[p]] = 3


@cuda.jit
def _uf_promote(lab, parent):
    for p in range(cuda.grid(1), lab.size, cuda.gridsize(1)):
        if lab[p] == 1 and lab[parent[p]] == 3:
            lab[p] = 3


def hysteresis(label):
    """Promote, in place, the weak pixels (1) of a C-contiguous uint8 device label stack
    ``(N, H, W)`` that are 8-connected through weak pixels to an edge pixel (3), by union-find.
    Returns the number of launches (five; nothing is copied to the host)."""
    global last_hysteresis_launches
    N, H, W = label.shape
    lab = label.reshape(label.size)
    parent = cuda.device_array(label.size, np.int32 if label.size < 2 ** 31 else np.int64)
    nb = blocks_1d(label.size)
    _uf_init[nb, TPB](lab, parent)
    _uf_merge[nb, TPB](lab, parent, H, W)
    _uf_compress[nb, TPB](lab, parent)
    _uf_mark[nb, TPB](lab, parent)
    _uf_promote[nb, TPB](lab, parent)
    last_hysteresis_launches = 5
    return 5


@cuda.jit
def _edges_of(label, out):
    N, H, W = label.shape
    for idx in range(cuda.grid(1), N * H * W, cuda.gridsize(1)):
        n = idx // (H * W)
        r = idx - n * H * W
        x = r // W
        y = r - x * W
        out[n, x, y] = label[n, x, y] == 3
