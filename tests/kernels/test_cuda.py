"""The CUDA backend: under the CUDA simulator everywhere, at full size on a real GPU.

- ``test_cuda_kernels_under_the_simulator`` runs ``tests/kernels/_cuda_cases.py`` (every CUDA kernel
  against the Numba CPU backend on small real-image crops) in a subprocess with
  ``NUMBA_ENABLE_CUDASIM=1``: the variable only works if it is set before numba is first imported,
  and other test files import numba in this process.
- Tests marked ``gpu`` repeat the comparisons on the full-size real images; they are skipped
  unless a real CUDA GPU is present (not the simulator).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import medfeat.kernels as K

from ..conftest import DTYPES, REAL_2D, load_real, load_volume, to_dtype

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).with_name("_cuda_cases.py")
# the CPU reference: "auto" on a NumPy array is each family's one CPU backend
CPU = "auto"


def test_cuda_kernels_under_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env.pop("MEDFEAT_BACKEND", None)
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES),
        # The simulator runs kernels as Python code on NumPy scalars, which warn where a GPU
        # computes IEEE results silently (inf - inf in the moments of an image holding infinity,
        # which the test then expects to be refused); nothing else is filtered.
        "-W", "ignore:invalid value encountered:RuntimeWarning",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert " passed" in out and "skipped" not in out.splitlines()[-1], out


# ------------------------------------------------------------------------ real GPU, full size

def _real_gpu():
    try:
        from numba import config, cuda
    except ImportError:
        return False
    return not config.ENABLE_CUDASIM and cuda.is_available()


gpu = pytest.mark.skipif(not _real_gpu(), reason="needs a real CUDA GPU (not the simulator)")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", (np.bool_, *DTYPES))
@pytest.mark.parametrize("name", REAL_2D)
def test_gpu_edges_full_size(name, dtype):
    from numba import cuda

    a = to_dtype(load_real(name), dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for f in (K.sobel, K.prewitt):
        want = f(a, backend=CPU)
        got = f(a, backend="cuda")
        assert got.dtype == want.dtype
        # the GPU may contract a * b + c into fused multiply-adds: equal within rounding
        np.testing.assert_allclose(got, want, **tol)
        dev = f(cuda.to_device(a))
        np.testing.assert_allclose(dev.copy_to_host(), want, **tol)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", (np.bool_, *DTYPES))
@pytest.mark.parametrize("name", REAL_2D)
def test_gpu_canny_full_size(name, dtype):
    a = to_dtype(load_real(name), dtype)
    m = np.zeros(a.shape, bool)
    m[8:-8, 8:-8] = True
    for kw in (dict(), dict(sigma=2.0, mask=m), dict(mode="reflect", sigma=0.8),
               dict(use_quantiles=True, low_threshold=0.7, high_threshold=0.9)):
        got = K.canny(a, backend="cuda", **kw)
        want = K.canny(a, backend=CPU, **kw)
        # fused multiply-adds on the GPU can flip a pixel whose suppression test is a near tie
        assert (got != want).sum() <= max(2, want.sum() // 1000), (got != want).sum()


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("mode", ("reflect", "constant", "nearest", "mirror", "wrap"))
def test_gpu_edges_3d_and_modes(mode):
    v = load_volume()
    m = np.ones(v.shape, bool)
    m[:, :8] = False
    for axis in (None, 0, 1, 2):
        np.testing.assert_allclose(K.sobel(v, m, axis=axis, mode=mode, backend="cuda"),
                                   K.sobel(v, m, axis=axis, mode=mode, backend=CPU),
                                   rtol=1e-12, atol=1e-14)
    a = to_dtype(load_real("camera"), np.float32)
    for axis in (0, 1):
        np.testing.assert_allclose(K.prewitt(a, axis=axis, mode=mode, backend="cuda"),
                                   K.prewitt(a, axis=axis, mode=mode, backend=CPU),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", REAL_2D)
def test_gpu_density_and_normalize_full_size(name, dtype):
    a = to_dtype(load_real(name), dtype)
    for bins in (256, 7):
        got, ge = K.histogram(a, bins, backend="cuda")
        want, we = K.histogram(a, bins, backend=CPU)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(ge, we)
    for f in (K.threshold_otsu, K.threshold_maxent):
        assert f(a, backend="cuda") == f(a, backend=CPU)
    (gg, gp), (wg, wp) = K.density(a, backend="cuda"), K.density(a, backend=CPU)
    np.testing.assert_allclose(gg, wg, rtol=1e-12)
    np.testing.assert_allclose(gp, wp, rtol=1e-9, atol=1e-12 * wp.max())
    m = np.zeros(a.shape, bool)
    m[a.shape[0] // 4: 3 * a.shape[0] // 4] = True
    for method in ("zscore", "minmax", "percentile"):
        for mask in (None, m):
            np.testing.assert_allclose(K.normalize(a, method, mask=mask, backend="cuda"),
                                       K.normalize(a, method, mask=mask, backend=CPU),
                                       rtol=2e-6, atol=2e-6)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", (np.bool_, *DTYPES))
def test_gpu_morphology_full_size(dtype):
    a = to_dtype(load_real("retina"), dtype)
    for kernel in (K.erosion, K.dilation, K.opening, K.closing):
        for fp in (None, K.disk(5), K.rectangle(7, 9)):
            np.testing.assert_array_equal(kernel(a, fp, backend="cuda"),
                                          kernel(a, fp, backend=CPU))
    b = a != 0 if dtype != np.bool_ else a
    for kernel in (K.binary_erosion, K.binary_dilation, K.binary_opening, K.binary_closing):
        np.testing.assert_array_equal(kernel(b, K.disk(3), backend="cuda"),
                                      kernel(b, K.disk(3), backend=CPU))
    v = load_volume()
    np.testing.assert_array_equal(K.erosion(v, K.ball(2), backend="cuda"),
                                  K.erosion(v, K.ball(2), backend=CPU))


# ------------------------------------------------------------------- batch=True on every backend

# "auto" on a NumPy array: each family's one CPU backend
@pytest.mark.parametrize("backend", ["auto"])
@pytest.mark.parametrize("dtype", (np.uint16, np.float32))
def test_batch_is_the_2d_filter_of_each_image(backend, dtype):
    img = to_dtype(load_real("retina"), dtype)
    stack = np.stack([img[k * 40: k * 40 + 48, 20:84] for k in range(4)])
    for kernel in (K.sobel, K.prewitt):
        got = kernel(stack, mode="mirror", backend=backend, batch=True)
        assert got.shape == stack.shape
        for n in range(len(stack)):
            np.testing.assert_array_equal(got[n], kernel(stack[n], mode="mirror", backend=backend))
    with pytest.raises(ValueError, match="batch"):
        K.sobel(stack, backend=backend, batch="yes")


# "auto" on a NumPy array: each family's one CPU backend
@pytest.mark.parametrize("backend", ["auto"])
def test_batch_of_every_family_is_each_image(backend):
    img = to_dtype(load_real("retina"), np.uint16)
    stack = np.stack([img[k * 40: k * 40 + 24, 20:52] for k in range(3)])
    stack[2] = stack[2, 0, 0]  # a constant image: thresholds return its value, spreads are 0

    def each(f):
        return [f(stack[n]) for n in range(len(stack))]

    for kw in (dict(), dict(use_quantiles=True, low_threshold=0.6, high_threshold=0.9)):
        np.testing.assert_array_equal(K.canny(stack, backend=backend, batch=True, **kw),
                                      each(lambda a: K.canny(a, backend=backend, **kw)))
    for f, fp in ((K.erosion, K.disk(2)), (K.closing, K.rectangle(3, 2)),
                  (K.binary_opening, K.diamond(1))):
        np.testing.assert_array_equal(f(stack, fp, backend=backend, batch=True),
                                      each(lambda a: f(a, fp, backend=backend)))
    counts, edges = K.histogram(stack, 9, backend=backend, batch=True)
    assert counts.shape == (3, 9) and edges.shape == (3, 10)
    singles = each(lambda a: K.histogram(a, 9, backend=backend))
    np.testing.assert_array_equal(counts, [c for c, _ in singles])
    np.testing.assert_array_equal(edges, [e for _, e in singles])
    for f in (K.threshold_otsu, K.threshold_maxent):
        got = f(stack, backend=backend, batch=True)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, each(lambda a: f(a, backend=backend)))
    for method in ("zscore", "minmax", "percentile", "window"):
        kw = dict(center=3000, width=2000) if method == "window" else {}
        got = K.normalize(stack, method, backend=backend, batch=True, **kw)
        np.testing.assert_array_equal(got, each(lambda a: K.normalize(a, method, backend=backend,
                                                                      **kw)))
    f32 = to_dtype(load_real("camera"), np.float32)[None, :40, :40].repeat(2, 0)
    f32[1] *= 0.5
    assert K.threshold_otsu(f32, backend=backend, batch=True).dtype == np.float32
    with pytest.raises(ValueError, match="hist"):
        K.threshold_otsu(stack, hist=np.ones(4), backend=backend, batch=True)
    with pytest.raises(ValueError, match="image stack"):
        K.canny(stack[0], backend=backend, batch=True)


@pytest.mark.gpu
@gpu
def test_gpu_batch_of_small_images():
    from numba import cuda

    img = to_dtype(load_real("retina"), np.float32)
    stack = np.stack([img[y: y + 64, x: x + 64] for y in range(0, 192, 8) for x in range(0, 192, 8)])
    want = K.sobel(stack, backend=CPU, batch=True)
    got = K.sobel(cuda.to_device(stack), batch=True).copy_to_host()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ------------------------------------------- real GPU: order statistics, hysteresis, batches

@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", (np.float32, np.float64, np.int16))
def test_gpu_order_stats_full_size(dtype):
    from numba import cuda

    from medfeat._kernels.numba_cuda.intensity import order_stats

    rng = np.random.default_rng(1)
    if np.dtype(dtype).kind == "f":
        a = (rng.standard_normal(2048 * 2048) * 100).astype(dtype)
        a[:1000] = 0.0
        a[1000:2000] = -0.0
    else:
        a = rng.integers(-32768, 32767, 2048 * 2048, endpoint=True).astype(dtype)
    ks = [0, 12345, a.size // 2, a.size - 1]
    got = order_stats(cuda.to_device(a), np.zeros(0, np.uint8), ks)[0]
    np.testing.assert_array_equal(got, np.partition(a, ks)[ks].astype(np.float64))
    stack = a.reshape(1024, -1)  # 1024 segments of 4096
    got = order_stats(cuda.to_device(a), np.zeros(0, np.uint8), [3, 4000], nseg=1024)
    np.testing.assert_array_equal(got, np.sort(stack, axis=1)[:, [3, 4000]])


def _serpentine_labels(h, w, step=3):
    lab = np.zeros((h, w), np.uint8)
    rows = list(range(1, h - 1, step))
    for k, r in enumerate(rows):
        lab[r, 1:w - 1] = 1
        if k + 1 < len(rows):
            lab[r:r + step + 1, w - 2 if k % 2 == 0 else 1] = 1
    lab[1, 1] = 3
    return lab


@pytest.mark.gpu
@gpu
def test_gpu_hysteresis_long_chains():
    from numba import cuda
    from scipy import ndimage as ndi

    from medfeat._kernels.numba_cuda import edges as cuda_edges

    lab = _serpentine_labels(1024, 1024)
    lab[700, 500] = 0  # a cut: the far part of the chain stays weak
    comp, _ = ndi.label(lab > 0, np.ones((3, 3)))
    want = np.isin(comp, comp[lab == 3])
    d = cuda.to_device(np.stack([lab, lab[::-1, ::-1]]))
    assert cuda_edges.hysteresis(d) == 5  # ~350 000 chain pixels, five launches
    np.testing.assert_array_equal(d.copy_to_host()[0] == 3, want)
    np.testing.assert_array_equal(d.copy_to_host()[1] == 3, want[::-1, ::-1])
    # and Canny on an image of long chains (a spiral) agrees with the CPU
    y, x = np.mgrid[-1:1:1024j, -1:1:1024j]
    step = np.sin(40 * np.hypot(x, y) + 6 * np.arctan2(y, x)) > 0
    spiral = (step * (0.05 + 0.95 * (x + 1) / 2)).astype(np.float32)  # fading: weak chains
    kw = dict(sigma=2.0, low_threshold=0.02, high_threshold=0.3)
    got = K.canny(spiral, backend="cuda", **kw)
    ref = K.canny(spiral, backend=CPU, **kw)
    assert (got != ref).sum() <= max(2, ref.sum() // 1000)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", (np.uint8, np.int16, np.float32))
def test_gpu_batch_every_family(dtype):
    from numba import cuda

    img = to_dtype(load_real("retina"), dtype)
    stack = np.stack([img[y: y + 64, x: x + 64] for y in range(0, 192, 16)
                      for x in range(0, 192, 16)])
    d = cuda.to_device(stack)
    for kw in (dict(), dict(use_quantiles=True, low_threshold=0.6, high_threshold=0.9)):
        got = K.canny(d, batch=True, **kw).copy_to_host()
        want = K.canny(stack, backend=CPU, batch=True, **kw)
        assert (got != want).sum() <= max(2, want.sum() // 1000)
    for f, fp in ((K.erosion, K.disk(3)), (K.opening, K.rectangle(5, 3)),
                  (K.binary_dilation, K.disk(2))):
        np.testing.assert_array_equal(f(d, fp, batch=True).copy_to_host(),
                                      f(stack, fp, backend=CPU, batch=True))
    for bins in (256, 7):
        got, ge = K.histogram(d, bins, batch=True)
        want, we = K.histogram(stack, bins, backend=CPU, batch=True)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(ge, we)
    for f in (K.threshold_otsu, K.threshold_maxent):
        np.testing.assert_array_equal(f(d, batch=True), f(stack, backend=CPU, batch=True))
    for method in ("zscore", "minmax", "percentile"):
        np.testing.assert_allclose(K.normalize(d, method, batch=True).copy_to_host(),
                                   K.normalize(stack, method, backend=CPU, batch=True),
                                   rtol=2e-6, atol=2e-6)
