"""The compiled shortcuts of the whole-stack path give the values of the code they replace, bit
for bit: the density's convolution against the plain dependent chain of additions, the batched
threshold searches against the per-image kernels, and the stack path against the per-image path
for the families they serve (the images chosen to reach every branch: flat backgrounds, gaps in
the values, wide 16-bit ranges, negative values)."""

from __future__ import annotations

import numpy as np
import pytest

from medfeat import kernels
from medfeat.features import FeatureExtractor
from medfeat.features.extractor import _image_features

_density_cy = pytest.importorskip("medfeat._kernels.cython._density_cy")


def _bits_equal(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def _chain_convolution(a, kern):
    """``out[k] = sum_j a[k + j - h] * kern[j]``, each output's terms added one after the other
    in increasing ``j`` from 0.0 (Python floats are IEEE doubles)."""
    n, m = len(a), len(kern)
    h = m // 2
    out = []
    for k in range(n):
        s = 0.0
        for j in range(max(0, h - k), min(m, n + h - k)):
            s = s + float(a[k + j - h]) * float(kern[j])
        out.append(s)
    return np.array(out)


@pytest.mark.parametrize("n, m", [(1, 1), (5, 11), (40, 3), (97, 97), (511, 281), (300, 1)])
@pytest.mark.parametrize("threads", [1, 2])
def test_convolve_same_is_the_dependent_chain(n, m, threads):
    rng = np.random.default_rng(n * 1000 + m)
    a = rng.random(n) * (rng.random(n) < 0.6)          # zeros as in a linear binning
    a[::5] *= -1e-3
    kern = np.exp(-0.5 * np.linspace(-3.0, 3.0, m) ** 2)
    got = _density_cy.convolve_same(a, kern, threads)
    assert _bits_equal(got, _chain_convolution(a, kern))


def test_convolve_same_empty_and_signed_zero():
    assert _density_cy.convolve_same(np.zeros(0), np.ones(3), 1).shape == (0,)
    got = _density_cy.convolve_same(np.array([-0.0, -0.0]), np.array([1.0]), 1)
    assert _bits_equal(got, [0.0, 0.0])                 # 0.0 + (-0.0), as the chain gives


def _segments(rows):
    vals, wts, starts = [], [], [0]
    for r in rows:
        v, c = np.unique(r, return_counts=True)
        vals.append(v.astype(np.float64))
        wts.append(c.astype(np.float64))
        starts.append(starts[-1] + v.size)
    return np.concatenate(vals), np.concatenate(wts), np.array(starts, np.int64)


def _threshold_rows():
    rng = np.random.default_rng(7)
    rows = [rng.integers(0, 256, 784),                        # full uint8 range
            np.r_[np.zeros(700, int), rng.integers(30, 40, 84)],  # flat background
            np.array([3, 3, 3, 9]),                           # two values, a gap of empty bins
            np.array([5, 5, 5, 5]),                           # one value: no threshold
            rng.integers(-1024, 3000, 500),                   # int16 CT-like, negative values
            np.r_[rng.integers(0, 10, 300), rng.integers(60000, 65535, 30)],  # wide uint16
            np.array([0, 1]),
            np.repeat(np.array([10, 20, 30, 200, 210, 220]), 10)]
    return rows


def test_threshold_indices_segments_equal_the_single_image_kernels():
    rows = _threshold_rows()
    otsu, maxent, n_otsu, n_maxent = _density_cy.threshold_indices_segments(*_segments(rows))
    for r, i_otsu, i_maxent, a_otsu, a_maxent in zip(rows, otsu, maxent, n_otsu, n_maxent):
        lo, hi = int(r.min()), int(r.max())
        if lo == hi:
            assert i_otsu == i_maxent == -1
            continue
        assert a_otsu == np.count_nonzero(r > lo + i_otsu)
        assert a_maxent == np.count_nonzero(r > lo + i_maxent)
        counts = np.bincount(r - lo, minlength=hi - lo + 1)
        centres = np.arange(lo, hi + 1, dtype=np.float64)
        assert i_otsu == _density_cy.otsu_index(counts.astype(np.float32), centres, False)
        assert i_maxent == _density_cy.maxent_index(counts.astype(np.float64))
        # and the public kernels on an image of those values agree
        image = r.astype(np.int16 if lo < 0 else np.uint16 if hi > 255 else np.uint8)
        assert lo + i_otsu == kernels.threshold_otsu(image)
        assert lo + i_maxent == kernels.threshold_maxent(image)


def _per_image(X, families):
    return np.stack([_image_features(x, families, 32, 1, "auto") for x in X])


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
def test_threshold_and_density_families_equal_per_image(dtype):
    rows = [r for r in _threshold_rows() if r.size >= 4]
    if dtype == "uint8":
        rows = [r for r in rows if r.min() >= 0 and r.max() < 256]
    elif dtype == "uint16":
        rows = [r for r in rows if r.min() >= 0]
    else:
        rows = [r for r in rows if r.max() < 32768]
    rng = np.random.default_rng(0)
    X = np.stack([rng.choice(r, 16 * 16).reshape(16, 16) for r in rows]).astype(dtype)
    X[-1] = X[-1, 0, 0]                                     # and a constant image
    fams = ("thresholds", "density")
    got = FeatureExtractor(families=list(fams)).fit(X).transform(X)
    assert _bits_equal(got, _per_image(X, fams))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
@pytest.mark.parametrize("quantiles", [False, True])
def test_canny_batch_equals_scikit_image_on_each_image(dtype, quantiles):
    import skimage.data
    import skimage.feature

    cam = skimage.data.camera()
    X = np.stack([cam[:40, :48], cam[100:140, 200:248], cam[300:340, 7:55]])
    if dtype.startswith("float"):
        X = (X / 255.0) ** 1.5
    elif dtype == "uint16":
        X = X.astype(np.uint16) * 200
    X = X.astype(dtype)
    kw = dict(low_threshold=0.3, high_threshold=0.8, use_quantiles=True) if quantiles else {}
    got = kernels.canny(X, 1.5, batch=True, **kw)
    ref = np.stack([skimage.feature.canny(x, 1.5, **kw) for x in X])
    assert got.dtype == bool and np.array_equal(got, ref) and ref.any()


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
def test_counted_density_equals_the_kernel_per_image(dtype):
    import skimage.data

    from medfeat.features import _stack

    cam = skimage.data.camera().astype(np.int64)
    X = np.stack([cam[:28, :28], cam[200:228, 300:328], cam[::9, ::9][:28, :28],
                  np.where(cam[300:328, 200:228] > np.median(cam[300:328, 200:228]), 200, 3)])
    if dtype == "uint16":
        X = X * 97 + 11
    elif dtype == "int16":
        X = X * 4 - 600
    X = X.astype(dtype)
    st = _stack._Stack(np.ascontiguousarray(X), None)
    idx = np.arange(len(X))
    grid, pdf = _stack._density_counted(st, idx, 256)
    assert grid is not None                              # the counted route, not the fallback
    for x, g, p in zip(X, grid, pdf):
        g_ref, p_ref = kernels.density(x, grid_size=256)
        assert _bits_equal(g, g_ref) and _bits_equal(p, p_ref)


def test_kde_segments_reads_every_up_th_output_of_the_full_convolution():
    rng = np.random.default_rng(5)
    vals = np.sort(rng.choice(200, 40, replace=False)).astype(np.float64)
    wts = rng.integers(1, 9, 40).astype(np.float64)
    starts = np.array([0, 15, 40], np.int64)
    grid_size = 10
    g0, dxf, fine, ups, kerns, refs = [], [], [], [], [], []
    for up, (a, b) in zip((1, 3), ((0, 15), (15, 40))):
        n_fine = (grid_size - 1) * up + 1
        lo, step = vals[a] - 1.0, (vals[b - 1] - vals[a] + 2.0) / (n_fine - 1)
        kern = np.exp(-0.5 * np.linspace(-2.5, 2.5, 2 * up + 3) ** 2)
        binned = _density_cy.linear_bin(vals[a:b], wts[a:b], lo, step, n_fine, 1)
        refs.append(_density_cy.convolve_same(binned, kern, 1)[::up])
        g0.append(lo)
        dxf.append(step)
        fine.append(n_fine)
        ups.append(up)
        kerns.append(kern)
    kstart = np.r_[0, np.cumsum([k.size for k in kerns])].astype(np.int64)
    got = _density_cy.kde_segments(vals, wts, starts, np.array([0, 1], np.int64), np.array(g0),
                                   np.array(dxf), np.array(fine, np.int64),
                                   np.array(ups, np.int64), np.concatenate(kerns), kstart,
                                   grid_size)
    for row, ref in zip(got, refs):
        assert _bits_equal(row, ref)
