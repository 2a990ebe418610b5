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
        want = f(a, backend="numba")
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
    for kw in (dict(), dict(sigma=2.0, mask=m), dict(mode="reflect", sigma=0.8)):
        got = K.canny(a, backend="cuda", **kw)
        want = K.canny(a, backend="numba", **kw)
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
                                   K.sobel(v, m, axis=axis, mode=mode, backend="numba"),
                                   rtol=1e-12, atol=1e-14)
    a = to_dtype(load_real("camera"), np.float32)
    for axis in (0, 1):
        np.testing.assert_allclose(K.prewitt(a, axis=axis, mode=mode, backend="cuda"),
                                   K.prewitt(a, axis=axis, mode=mode, backend="numba"),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", REAL_2D)
def test_gpu_density_and_normalize_full_size(name, dtype):
    a = to_dtype(load_real(name), dtype)
    for bins in (256, 7):
        got, ge = K.histogram(a, bins, backend="cuda")
        want, we = K.histogram(a, bins, backend="numba")
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(ge, we)
    for f in (K.threshold_otsu, K.threshold_maxent):
        assert f(a, backend="cuda") == f(a, backend="numba")
    (gg, gp), (wg, wp) = K.density(a, backend="cuda"), K.density(a, backend="numba")
    np.testing.assert_allclose(gg, wg, rtol=1e-12)
    np.testing.assert_allclose(gp, wp, rtol=1e-9, atol=1e-12 * wp.max())
    m = np.zeros(a.shape, bool)
    m[a.shape[0] // 4: 3 * a.shape[0] // 4] = True
    for method in ("zscore", "minmax") + (("percentile",) if a.dtype.kind != "f" else ()):
        for mask in (None, m):
            np.testing.assert_allclose(K.normalize(a, method, mask=mask, backend="cuda"),
                                       K.normalize(a, method, mask=mask, backend="numba"),
                                       rtol=2e-6, atol=2e-6)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", (np.bool_, *DTYPES))
def test_gpu_morphology_full_size(dtype):
    a = to_dtype(load_real("retina"), dtype)
    for kernel in (K.erosion, K.dilation, K.opening, K.closing):
        for fp in (None, K.disk(5), K.rectangle(7, 9)):
            np.testing.assert_array_equal(kernel(a, fp, backend="cuda"),
                                          kernel(a, fp, backend="numba"))
    b = a != 0 if dtype != np.bool_ else a
    for kernel in (K.binary_erosion, K.binary_dilation, K.binary_opening, K.binary_closing):
        np.testing.assert_array_equal(kernel(b, K.disk(3), backend="cuda"),
                                      kernel(b, K.disk(3), backend="numba"))
    v = load_volume()
    np.testing.assert_array_equal(K.erosion(v, K.ball(2), backend="cuda"),
                                  K.erosion(v, K.ball(2), backend="numba"))


# ------------------------------------------------------------------- batch=True on every backend

@pytest.mark.parametrize("backend", [b for b in ("cython", "numba") if b in K.available_backends()])
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


@pytest.mark.gpu
@gpu
def test_gpu_batch_of_small_images():
    from numba import cuda

    img = to_dtype(load_real("retina"), np.float32)
    stack = np.stack([img[y: y + 64, x: x + 64] for y in range(0, 192, 8) for x in range(0, 192, 8)])
    want = K.sobel(stack, backend="numba", batch=True)
    got = K.sobel(cuda.to_device(stack), batch=True).copy_to_host()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
