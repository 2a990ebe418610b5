"""CUDA kernels against the CPU backend, under the CUDA simulator.

Not collected by the main test run (no ``test_`` prefix): ``tests/kernels/test_cuda.py`` runs this
file in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``, which must be set before numba is first
imported. The simulator runs each CUDA thread as a Python thread, so the images are small crops
(12x20, 3x6x8) of the real images of ``tests/conftest.py``: big enough for several tiles and blocks
(the CUDA module shrinks tiles and blocks under the simulator), small enough to keep the file near
half a minute.

Run it alone with::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/kernels/_cuda_cases.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from numba import cuda

import medfeat.kernels as K

from ..conftest import load_real, load_volume, to_dtype

# Importable anywhere (the main run's doctest collection imports it too); its tests run only
# under the simulator.
pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1",
                                reason="run through tests/kernels/test_cuda.py "
                                       "(needs NUMBA_ENABLE_CUDASIM=1)")

# the CPU reference: "auto" on a NumPy array is each family's one CPU backend
CPU = "auto"

EDGE_DTYPES = (np.bool_, np.uint8, np.uint16, np.int16, np.float32, np.float64)
DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
MODES = ("reflect", "constant", "nearest", "mirror", "wrap")


def crop(name="camera", dtype=np.float32, y=100, x=100, h=12, w=20):
    return to_dtype(load_real(name)[y:y + h, x:x + w], dtype)


def vol(dtype=np.int16):
    return to_dtype(load_volume()[4:7, 20:26, 30:38], dtype)


class FakeGpuArray:
    """Only ``__cuda_array_interface__``, with a null pointer: validation must never touch data."""

    def __init__(self, shape, typestr):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (0, False),
                                         "version": 3}


# ------------------------------------------------------------------------------------ plumbing

def test_simulator_counts_as_cuda():
    assert cuda.is_available()
    assert "cuda" in K.available_backends()


def test_numpy_in_numpy_out_and_gpu_in_gpu_out():
    a = crop()
    host = K.sobel(a, backend="cuda")
    assert isinstance(host, np.ndarray)
    d = cuda.to_device(a)
    dev = K.sobel(d)  # "auto" picks cuda for GPU input
    assert not isinstance(dev, np.ndarray) and getattr(dev, "__cuda_ndarray__", False)
    np.testing.assert_array_equal(dev.copy_to_host(), host)
    z = K.normalize(d, "zscore")
    assert getattr(z, "__cuda_ndarray__", False)


def test_gpu_input_refused_by_cpu_backends():
    d = cuda.to_device(crop())
    for call in (lambda: K.sobel(d, backend="numba"), lambda: K.histogram(d, backend="cython"),
                 lambda: K.normalize(d, backend="cython")):
        with pytest.raises(ValueError, match="GPU"):
            call()


@pytest.mark.parametrize("shape, typestr, match", [
    ((4, 4), "<i8", "unsupported dtype int64"),
    ((4, 4), "<c8", "complex"),
    ((0, 4), "<f4", "empty"),
    ((4,), "<f4", "2-D or 3-D"),
])
def test_gpu_input_validated_from_metadata(shape, typestr, match):
    fake = FakeGpuArray(shape, typestr)
    with pytest.raises(ValueError, match=match):
        K.sobel(fake, backend="cuda")


def test_gpu_mask_validated_from_metadata():
    a = crop()
    with pytest.raises(ValueError, match="shape"):
        K.sobel(a, FakeGpuArray((3, 3), "|b1"), backend="cuda")
    with pytest.raises(ValueError, match="bool or unsigned"):
        K.sobel(a, FakeGpuArray(a.shape, "<f4"), backend="cuda")


# ------------------------------------------------------------------------------- Sobel, Prewitt

@pytest.mark.parametrize("dtype", EDGE_DTYPES)
@pytest.mark.parametrize("kernel", ["sobel", "prewitt"])
def test_edges_2d_every_dtype(kernel, dtype):
    f = getattr(K, kernel)
    a = crop("retina" if kernel == "sobel" else "mr_small", dtype, y=40, x=30)
    got = f(a, backend="cuda")
    want = f(a, backend=CPU)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)  # same operations in the same order
    assert np.abs(want).max() > 0


@pytest.mark.parametrize("mode", MODES)
def test_sobel_2d_modes_and_axes(mode):
    a = crop("ct_small", np.float64, y=30, x=40)
    # the mode matters along the derivative axis and across it: one axis per mode, alternating
    for axis in ((0,) if MODES.index(mode) % 2 else (1,)):
        np.testing.assert_array_equal(K.sobel(a, axis=axis, mode=mode, cval=0.25, backend="cuda"),
                                      K.sobel(a, axis=axis, mode=mode, cval=0.25, backend=CPU))


def test_prewitt_2d_mask_and_mixed_modes():
    a = crop("microaneurysms", np.float32, y=20, x=20)
    m = np.zeros(a.shape, bool)
    m[2:11, 3:17] = True
    kw = dict(mode=("wrap", "mirror"))
    np.testing.assert_array_equal(K.prewitt(a, m, backend="cuda", **kw),
                                  K.prewitt(a, m, backend=CPU, **kw))
    # a mask already on the GPU gives the same result
    d = K.prewitt(cuda.to_device(a), cuda.to_device(m), **kw)
    np.testing.assert_array_equal(d.copy_to_host(), K.prewitt(a, m, backend=CPU, **kw))


@pytest.mark.parametrize("dtype", (np.int16, np.float32))
def test_sobel_3d(dtype):
    v = vol(dtype)
    m = np.ones(v.shape, bool)
    m[0, :2] = False
    for axis, mode, mask in ((None, "reflect", None), (0, "constant", None), (2, "wrap", m),
                             (None, "nearest", m)):
        got = K.sobel(v, mask, axis=axis, mode=mode, backend="cuda")
        want = K.sobel(v, mask, axis=axis, mode=mode, backend=CPU)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


def test_prewitt_3d_axis1():
    v = vol(np.float64)
    np.testing.assert_array_equal(K.prewitt(v, axis=1, mode="mirror", backend="cuda"),
                                  K.prewitt(v, axis=1, mode="mirror", backend=CPU))


# ------------------------------------------------------------------------------------- Canny

@pytest.mark.parametrize("dtype", EDGE_DTYPES)
def test_canny_every_dtype(dtype):
    a = crop("camera", dtype, y=40, x=40)
    got = K.canny(a, backend="cuda")
    want = K.canny(a, backend=CPU)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, want)  # same roundings: the same pixels survive
    assert want.sum() > 0 or dtype == np.bool_


def test_canny_mask_modes_sigma_and_gpu_input():
    a = crop("retina", np.float32, y=40, x=40)
    m = np.zeros(a.shape, bool)
    m[1:11, 2:18] = True
    for kw in (dict(sigma=1.5, mask=m), dict(sigma=0.7, mode="reflect"),
               dict(mode="wrap", low_threshold=0.02, high_threshold=0.05)):
        np.testing.assert_array_equal(K.canny(a, backend="cuda", **kw),
                                      K.canny(a, backend=CPU, **kw))
    # quantile thresholds: the device's radix select gives numpy.percentile's values exactly
    kw = dict(use_quantiles=True, low_threshold=0.6, high_threshold=0.85)
    got = K.canny(a, backend="cuda", **kw)
    np.testing.assert_array_equal(got, K.canny(a, backend=CPU, **kw))
    assert got.sum() != K.canny(a, backend="cuda").sum()
    d = K.canny(cuda.to_device(a), mask=cuda.to_device(m))
    assert getattr(d, "__cuda_ndarray__", False)
    np.testing.assert_array_equal(d.copy_to_host(), K.canny(a, mask=m, backend=CPU))
    b = a.copy()
    b[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        K.canny(cuda.to_device(b))


def _serpentine(h, w, cut):
    """Labels (0 background, 1 weak, 3 strong) of one long 8-connected chain of weak pixels winding
    through the image, strong at one end, cut at ``cut`` (the part behind the cut stays weak)."""
    lab = np.zeros((h, w), np.uint8)
    rows = list(range(1, h - 1, 3))
    for k, r in enumerate(rows):
        lab[r, 1:w - 1] = 1
        if k + 1 < len(rows):
            c = w - 2 if k % 2 == 0 else 1
            lab[r:r + 4, c] = 1
    lab[1, 1] = 3
    lab[cut] = 0
    return lab


def test_hysteresis_long_chains_by_union_find():
    from scipy import ndimage as ndi

    from medfeat._kernels.numba_cuda import edges as cuda_edges

    # a stack: a chain of ~700 pixels cut in the middle, and the same chain reversed, whole
    lab = np.stack([_serpentine(40, 60, (22, 30)), _serpentine(40, 60, (0, 0))[::-1, ::-1]])
    st = np.zeros((3, 3, 3), bool)
    st[1] = True  # 8-connected within each image, never across
    comp, _ = ndi.label(lab > 0, st)
    want = np.isin(comp, comp[lab == 3])  # the weak pixels connected to a strong one
    assert 0 < want[0].sum() < (lab[0] > 0).sum() and want[1].sum() == (lab[1] > 0).sum() > 700
    d = cuda.to_device(np.ascontiguousarray(lab))
    # a fixed number of launches and no host round trip, however long the chains (the previous
    # scheme relaunched and read a flag back until a pass changed nothing)
    assert cuda_edges.hysteresis(d) == 5
    np.testing.assert_array_equal(d.copy_to_host() == 3, want)
    # many components of every shape, where concurrent unions meet
    rng = np.random.default_rng(0)
    lab = np.where(rng.random((2, 30, 40)) < 0.55, 1, 0).astype(np.uint8)
    lab[rng.random(lab.shape) < 0.02] = 3
    comp, _ = ndi.label(lab > 0, st)
    d = cuda.to_device(lab)
    cuda_edges.hysteresis(d)
    np.testing.assert_array_equal(d.copy_to_host() == 3, np.isin(comp, comp[lab == 3]) & (lab > 0))


def test_canny_long_edge_chains():
    # a spiral step edge fading from right to left: chains running across the whole image in
    # every direction, strong at one end and weak (reached only by hysteresis) at the other
    y, x = np.mgrid[-1:1:24j, -1:1:28j]
    step = np.sin(9 * np.hypot(x, y) + 2 * np.arctan2(y, x)) > 0
    spiral = (step * (0.05 + 0.95 * (x + 1) / 2)).astype(np.float32)
    kw = dict(sigma=0.8, low_threshold=0.02, high_threshold=1.5)
    want = K.canny(spiral, backend=CPU, **kw)
    np.testing.assert_array_equal(K.canny(spiral, backend="cuda", **kw), want)
    strong_only = K.canny(spiral, backend=CPU, sigma=0.8, low_threshold=1.5,
                          high_threshold=1.5)
    assert want.sum() > 1.5 * strong_only.sum() > 100


def test_order_stats_exact():
    from medfeat._kernels.numba_cuda.intensity import order_stats

    rng = np.random.default_rng(0)
    f = (rng.standard_normal(60) * 4).astype(np.float32)
    f[:4] = (0.0, -0.0, -np.float32(1e-38), np.float32(1e-45))  # signed zeros, denormals
    f[4:8] = f[9]  # ties
    i16 = rng.integers(-32768, 32767, 60, endpoint=True).astype(np.int16)
    i16[:2] = (-32768, 32767)
    m = rng.random(60) < 0.4
    for a in (f, i16):
        ks = [0, 7, 31, 59]
        got = order_stats(cuda.to_device(a), np.zeros(0, np.uint8), ks)
        np.testing.assert_array_equal(got[0], np.sort(a)[ks].astype(np.float64))
        sel = np.sort(a[m])
        got = order_stats(cuda.to_device(a), cuda.to_device(m.view(np.uint8)), [1, m.sum() - 1])
        np.testing.assert_array_equal(got[0], sel[[1, -1]].astype(np.float64))
    # segments: each image of a stack on its own, different ranks per image
    u8 = rng.integers(0, 255, (3, 20), endpoint=True).astype(np.uint8)
    ranks = [[0, 19], [5, 6], [10, 10]]
    got = order_stats(cuda.to_device(u8.ravel()), np.zeros(0, np.uint8), ranks, nseg=3)
    np.testing.assert_array_equal(got, [np.sort(u8[n])[ranks[n]] for n in range(3)])


# ------------------------------------------------------------------------ histogram, thresholds

@pytest.mark.parametrize("dtype", DTYPES)
def test_histogram_every_dtype(dtype):
    a = crop("ct_small", dtype, y=40, x=30)
    rng = (0.1, 0.5) if np.dtype(dtype).kind == "f" else (100, 3000)
    for bins, r in ((256, None), (7, None), (5, rng)):
        got, ge = K.histogram(a, bins, r, backend="cuda")
        want, we = K.histogram(a, bins, r, backend=CPU)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(ge, we)
        assert ge.dtype == we.dtype


def test_histogram_of_gpu_array_and_nan():
    a = crop("camera", np.float64)
    got, _ = K.histogram(cuda.to_device(a), 16)
    np.testing.assert_array_equal(got, np.histogram(a, 16)[0])
    b = a.copy()
    b[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        K.histogram(b, 16, (0.0, 1.0), backend="cuda")
    with pytest.raises(ValueError, match="NaN"):
        K.histogram(cuda.to_device(b), 16)


@pytest.mark.parametrize("dtype", DTYPES)
def test_thresholds_every_dtype(dtype):
    a = crop("mr_small", dtype, y=20, x=20)
    for f in (K.threshold_otsu, K.threshold_maxent):
        got = f(a, backend="cuda")
        want = f(a, backend=CPU)
        assert got == want and type(got) is type(want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_density_every_dtype(dtype):
    a = crop("ct_small", dtype, y=50, x=40)
    for kw in (dict(), dict(bandwidth="silverman", grid_size=64)):
        gg, gp = K.density(a, backend="cuda", **kw)
        wg, wp = K.density(a, backend=CPU, **kw)
        # the grid hangs on the moments, summed in another order for float images
        np.testing.assert_allclose(gg, wg, rtol=1e-12, atol=1e-14)
        # float64 atomics add in any order: equal within rounding
        np.testing.assert_allclose(gp, wp, rtol=1e-9, atol=1e-12 * wp.max())


def test_density_narrow_kernel_and_gpu_input():
    a = crop("camera", np.float64, y=10, x=10)
    # a bandwidth far below a grid step takes the exact-Gaussian path (gauss_scatter)
    got = K.density(cuda.to_device(a), bandwidth=1e-5, grid_size=32)
    want = K.density(a, bandwidth=1e-5, grid_size=32, backend=CPU)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-9, atol=1e-12 * want[1].max())


# --------------------------------------------------------------------------------- normalize

@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_every_dtype(dtype):
    a = crop("retina", dtype, y=60, x=60)
    m = np.zeros(a.shape, bool)
    m[2:9, 3:15] = True
    floating = np.dtype(dtype).kind == "f"
    for method in ("zscore", "minmax", "window", "percentile"):
        kw = dict(center=0.3, width=0.5) if method == "window" else {}
        if method == "window" and not floating:
            kw = dict(center=1000, width=800)
        if method == "percentile":
            kw = dict(lower=2.5, upper=97)
        masks = (None, m)
        if method == "window":
            masks = (None,)  # window ignores masks
        elif method == "percentile" and dtype == np.float64:
            masks = (m,)  # the radix select (8 passes for float64) is slow in the simulator
        for mask in masks:
            got = K.normalize(a, method, mask=mask, backend="cuda", **kw)
            want = K.normalize(a, method, mask=mask, backend=CPU, **kw)
            assert got.dtype == np.float32
            # float64 statistics summed in another order: equal within float32 rounding
            np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


def test_normalize_gpu_mask_and_errors():
    a = crop("camera", np.float32)
    m = np.zeros(a.shape, bool)
    m[:5] = True
    got = K.normalize(cuda.to_device(a), "minmax", mask=cuda.to_device(m))
    np.testing.assert_allclose(got.copy_to_host(), K.normalize(a, "minmax", mask=m,
                                                               backend=CPU), rtol=1e-6)
    # an integer GPU mask selects its non-zero pixels, whatever their value
    m16 = cuda.to_device(m.astype(np.uint16) * 300)
    for method in ("zscore", "percentile"):
        np.testing.assert_allclose(K.normalize(cuda.to_device(a), method, mask=m16).copy_to_host(),
                                   K.normalize(a, method, mask=m, backend=CPU), rtol=2e-6,
                                   atol=2e-6)
    with pytest.raises(ValueError, match="no pixel"):
        K.normalize(cuda.to_device(a), "zscore", mask=cuda.to_device(np.zeros(a.shape, bool)))
    b = a.copy()
    b[1, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        K.normalize(b, "zscore", backend="cuda")


# -------------------------------------------------------------------------------- morphology

GREY_CASES = ((None, "reflect"), ("disk2", "constant"), ("rect34", "wrap"), ("rect15", "ignore"))


def _fp(name):
    return {None: None, "disk2": K.disk(2), "rect34": K.rectangle(3, 4),
            "rect15": K.rectangle(1, 5), "diamond1": K.diamond(1)}[name]


@pytest.mark.parametrize("dtype", EDGE_DTYPES)
def test_grey_morphology_every_dtype(dtype):
    a = crop("ct_small", dtype, y=50, x=40)
    # footprints: the default cross and a disk (offset loops), rectangles (separable passes)
    for kernel, (fp, mode) in zip((K.erosion, K.dilation, K.opening, K.closing), GREY_CASES):
        got = kernel(a, _fp(fp), mode=mode, cval=0, backend="cuda")
        want = kernel(a, _fp(fp), mode=mode, cval=0, backend=CPU)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)  # min and max are exact


def test_grey_morphology_modes_3d_and_gpu_input():
    a = crop("mr_small", np.uint16, y=20, x=20)
    for mode in ("nearest", "mirror", "max", "min"):
        np.testing.assert_array_equal(K.dilation(a, K.diamond(1), mode=mode, backend="cuda"),
                                      K.dilation(a, K.diamond(1), mode=mode, backend=CPU))
    v = vol(np.int16)
    for fp in (K.ball(1), K.cube(3)):
        np.testing.assert_array_equal(K.erosion(v, fp, backend="cuda"),
                                      K.erosion(v, fp, backend=CPU))
    d = K.closing(cuda.to_device(a), K.disk(1))
    assert getattr(d, "__cuda_ndarray__", False)
    np.testing.assert_array_equal(d.copy_to_host(), K.closing(a, K.disk(1), backend=CPU))
    b = a.astype(np.float32)
    b[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        K.erosion(b, backend="cuda")
    with pytest.raises(ValueError, match="out"):
        K.erosion(a, out=np.empty_like(a), backend="cuda")


def test_binary_morphology():
    a = crop("retina", np.uint8, y=60, x=60)
    b = a > np.median(a)
    for kernel, (fp, mode) in zip(
            (K.binary_erosion, K.binary_dilation, K.binary_opening, K.binary_closing),
            ((None, "ignore"), ("disk2", "min"), ("rect34", "max"), ("diamond1", "ignore"))):
        got = kernel(b, _fp(fp), mode=mode, backend="cuda")
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, kernel(b, _fp(fp), mode=mode, backend=CPU))
    # non-bool input is read as image != 0, on the device
    f = crop("retina", np.float32, y=60, x=60) * (a > 120)
    np.testing.assert_array_equal(K.binary_dilation(cuda.to_device(f)).copy_to_host(),
                                  K.binary_dilation(f, backend=CPU))


# ----------------------------------------------------------------------------------- batches

def test_batch_one_launch_equals_image_by_image():
    stack = np.stack([crop(name, np.uint8, y=30, x=30, h=9, w=11)
                      for name in ("camera", "retina", "ct_small")])
    for kernel, kw in ((K.sobel, {}), (K.prewitt, dict(axis=1, mode="constant", cval=0.5))):
        got = kernel(stack, backend="cuda", batch=True, **kw)
        want = kernel(stack, backend=CPU, batch=True, **kw)
        np.testing.assert_array_equal(got, want)
        for n in range(len(stack)):  # and batch=True is the 2-D filter of each image
            np.testing.assert_array_equal(want[n], kernel(stack[n], backend=CPU, **kw))
    dev = K.sobel(cuda.to_device(stack), batch=True)
    np.testing.assert_array_equal(dev.copy_to_host(), K.sobel(stack, backend=CPU, batch=True))


def _stack(dtype, h=8, w=10):
    return np.stack([crop(name, dtype, y=30, x=30, h=h, w=w)
                     for name in ("camera", "retina", "ct_small")])


def _same_as_each_image(batch_result, single, stack):
    for n in range(len(stack)):
        np.testing.assert_array_equal(batch_result[n], single(stack[n]))


def test_batch_canny_quantiles_on_gpu_input():
    stack = _stack(np.float32, 9, 11)
    kw = dict(use_quantiles=True, low_threshold=0.5, high_threshold=0.9, sigma=0.8)
    got = K.canny(cuda.to_device(stack), batch=True, **kw)
    assert getattr(got, "__cuda_ndarray__", False)
    got = got.copy_to_host()
    np.testing.assert_array_equal(got, K.canny(stack, backend=CPU, batch=True, **kw))
    _same_as_each_image(got, lambda a: K.canny(a, backend="cuda", **kw), stack[:1])


def test_batch_morphology():
    stack = _stack(np.int16)
    for kernel, fp in ((K.opening, K.disk(1)), (K.dilation, K.rectangle(2, 3))):
        got = kernel(stack, fp, mode="wrap", backend="cuda", batch=True)
        np.testing.assert_array_equal(got, kernel(stack, fp, mode="wrap", backend=CPU,
                                                  batch=True))
        _same_as_each_image(got, lambda a: kernel(a, fp, mode="wrap", backend="cuda"), stack[:1])
    b = stack > 0
    got = K.binary_closing(cuda.to_device(b), batch=True).copy_to_host()
    np.testing.assert_array_equal(got, K.binary_closing(b, backend=CPU, batch=True))


@pytest.mark.parametrize("dtype", (np.uint16, np.float32))
def test_batch_histogram_and_thresholds(dtype):
    stack = _stack(dtype)
    rng = (0.2, 0.7) if np.dtype(dtype).kind == "f" else (1000, 40000)
    for bins, r in ((7, None), (5, rng)):
        got, ge = K.histogram(stack, bins, r, backend="cuda", batch=True)
        want, we = K.histogram(stack, bins, r, backend=CPU, batch=True)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(ge, we)
    _same_as_each_image(got, lambda a: K.histogram(a, 5, rng, backend="cuda")[0], stack[:1])
    for f in (K.threshold_otsu, K.threshold_maxent):
        got = f(stack, backend="cuda", batch=True)
        want = f(stack, backend=CPU, batch=True)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype and got.shape == (3,)
    # a constant image in the stack: its value, as for a single image
    flat = stack.copy()
    flat[1] = flat[1, 0, 0]
    assert K.threshold_otsu(flat, backend="cuda", batch=True)[1] == flat[1, 0, 0]


def test_batch_normalize():
    stack = _stack(np.float32)
    for method, kw in (("zscore", {}), ("minmax", {}), ("percentile", dict(lower=5, upper=90))):
        if method == "percentile":  # a GPU stack in, a GPU stack out
            got = K.normalize(cuda.to_device(stack), method, batch=True, **kw).copy_to_host()
        else:
            got = K.normalize(stack, method, backend="cuda", batch=True, **kw)
        want = K.normalize(stack, method, backend=CPU, batch=True, **kw)
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)
        # one launch for the stack, and yet bit for bit each image's own result
        _same_as_each_image(got, lambda a: K.normalize(a, method, backend="cuda", **kw),
                            stack[:1])


def test_batch_argument_checks():
    stack = crop(h=6, w=6)[None].repeat(2, 0)
    with pytest.raises(ValueError, match="3-D"):
        K.sobel(stack[0], backend="cuda", batch=True)
    with pytest.raises(ValueError, match="mask"):
        K.sobel(stack, np.ones(stack.shape, bool), backend="cuda", batch=True)
    with pytest.raises(ValueError, match="axis"):
        K.sobel(stack, axis=2, backend="cuda", batch=True)
    for call in (lambda: K.canny(stack[0], backend="cuda", batch=True),
                 lambda: K.erosion(stack[0], backend="cuda", batch=True),
                 lambda: K.normalize(stack[0, 0], backend="cuda", batch=True),
                 lambda: K.histogram(stack[0, 0], backend="cuda", batch=True)):
        with pytest.raises(ValueError, match="image stack"):
            call()
    with pytest.raises(ValueError, match="mask"):
        K.normalize(stack, mask=np.ones(stack.shape, bool), backend="cuda", batch=True)
    with pytest.raises(ValueError, match="footprint"):
        K.erosion(stack, K.ball(1), backend="cuda", batch=True)
    b = stack.copy()
    b[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        K.histogram(b, backend="cuda", batch=True)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_percentile_on_the_gpu_is_the_cpus(dtype):
    a = crop("mr_small", dtype, y=20, x=20)
    m = np.zeros(a.shape, bool)
    m[::2] = True
    qs = [0, 5, 50, 97.5, 100]
    for d, dm in ((cuda.to_device(a), cuda.to_device(m)), (a, m)):
        np.testing.assert_array_equal(K.percentile(d, qs, backend="cuda"), K.percentile(a, qs))
        np.testing.assert_array_equal(K.percentile(d, qs, mask=dm, backend="cuda"),
                                      K.percentile(a, qs, mask=m))
