"""histogram, threshold_otsu, threshold_maxent and density against NumPy, scikit-image and SciPy, on
every CPU backend and dtype, real images and volumes, and random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.filters
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import gaussian_kde

from medfeat.kernels.histograms import density, histogram, threshold_maxent, threshold_otsu
from medfeat.kernels import FAMILY_BACKENDS, BackendNotImplementedError
from tests.conftest import DTYPES, REAL_2D, load_real, load_volume, to_dtype

CPU_BACKENDS = tuple(b for b in FAMILY_BACKENDS["density"] if b != "cuda")

DTYPE_NAMES = [np.dtype(d).name for d in DTYPES] + ["native"]


@st.composite
def images(draw, dtypes=(np.uint8, np.uint16, np.int16, np.float32, np.float64), min_side=1,
           min_dims=1, max_dims=3, bound=1e6):
    """Small random images (<= 40 px a side) of any of ``dtypes``, values within +-bound."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    if dtype.kind == "f":
        lo, hi = -bound, bound
    else:
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -bound), min(info.max, bound)
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                                  max_side=40))
    elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                         width=32 if dtype == np.float32 else 64) if dtype.kind == "f" else \
        st.integers(int(lo), int(hi))
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _image(name, dtype):
    img = load_real(name)
    return img if dtype == "native" else to_dtype(img, dtype)


# ---------------------------------------------------------------------------------------- histogram

@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name", REAL_2D)
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_histogram_matches_numpy_on_real_images(backend, name, dtype):
    img = _image(name, dtype)
    ref_range = (0.25, 0.75) if img.dtype.kind == "f" else (100, 300.5)
    for bins, rng in ((256, None), (7, None), (1000, None), (64, ref_range)):
        counts, edges = histogram(img, bins, rng, backend=backend)
        ref_counts, ref_edges = np.histogram(img, bins, rng)
        np.testing.assert_array_equal(counts, ref_counts)
        np.testing.assert_array_equal(edges, ref_edges)
        assert edges.dtype == ref_edges.dtype
        assert counts.dtype == np.int64


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_histogram_volume(backend):
    vol = load_volume()
    for v in (vol, to_dtype(vol, np.float32)):
        counts, edges = histogram(v, 50, backend=backend)
        ref = np.histogram(v, 50)
        np.testing.assert_array_equal(counts, ref[0])
        np.testing.assert_array_equal(edges, ref[1])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_histogram_values_on_edges(backend, dtype):
    # every value sits exactly on a bin edge (and the last on the closed right edge), the place
    # where a plain floor((v - lo) / width) disagrees with NumPy
    edges = np.linspace(0.1, 0.7, 31, dtype=dtype)
    img = np.concatenate([edges, edges[::3], np.nextafter(edges, dtype(0))])[:72].reshape(3, -1)
    for rng in (None, (0.1, 0.7), (0.2, 0.5)):
        counts, e = histogram(img, 30, rng, backend=backend)
        ref = np.histogram(img, 30, rng)
        np.testing.assert_array_equal(counts, ref[0])
        np.testing.assert_array_equal(e, ref[1])


@pytest.fixture(params=["avx2", "baseline"])
def simd(request):
    """Run the test with the compiled modules' AVX2 loops (where the CPU has them), then with the
    baseline SSE2 ones: both must give the same results."""
    from medfeat._kernels.cython import _density_cy, _intensity_cy

    modules = (_density_cy, _intensity_cy)
    if request.param == "avx2" and not _density_cy.use_avx2():
        pytest.skip("no AVX2 on this CPU (or the build has no AVX2 loops)")
    for mod in modules:
        mod.use_avx2(request.param == "avx2")
    yield request.param
    for mod in modules:
        mod.use_avx2(True)


def test_results_do_not_depend_on_the_team():
    # a parallel loop whose threads enter late runs its chunks on the calling thread for a while;
    # the chunks stay the same, so every result must be the same bits either way
    from medfeat._kernels.cython import _density_cy, _intensity_cy
    from medfeat.kernels.intensity import normalize, percentile

    rng = np.random.default_rng(0)
    img = rng.normal(size=(300, 700)).astype(np.float32)
    u16 = (rng.random((300, 700)) * 4000).astype(np.uint16)

    def run():
        return [histogram(img, 256), histogram(u16, 100), density(img), density(u16),
                threshold_otsu(img), normalize(img, "zscore"), normalize(img, "percentile"),
                percentile(img, [1, 50, 99], mask=img > 0), normalize(u16, "minmax"),
                _density_cy.moments(img.ravel(), np.zeros(0, np.uint8), 4096, 2)]

    try:
        for mod in (_density_cy, _intensity_cy):
            mod.team_reset(serial=True)
        serial = run()
    finally:
        for mod in (_density_cy, _intensity_cy):
            mod.team_reset()
    parallel = run()
    for a, b in zip(serial, parallel):
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def _edge_values(lo, hi, bins, n, seed):
    """``n`` float32 values drawn from NumPy's edges of ``bins`` bins on [lo, hi], their float
    neighbours on both sides and uniform values in between (shuffled)."""
    rng = np.random.default_rng(seed)
    e = np.linspace(np.float32(lo), np.float32(hi), bins + 1, dtype=np.float32)
    pool = np.concatenate([e, np.nextafter(e, np.float32(np.inf)),
                           np.nextafter(e, np.float32(-np.inf)),
                           rng.uniform(lo, hi, 3 * bins).astype(np.float32)])
    return rng.choice(pool, n)


def _check_against_numpy(img, bins, rng, backend):
    """``histogram`` gives ``numpy.histogram``'s counts and edges, or refuses with ValueError
    where NumPy does (e.g. too many bins for a float32 range)."""
    try:
        ref = np.histogram(img, bins, rng)
    except ValueError:
        with pytest.raises(ValueError):
            histogram(img, bins, rng, backend=backend)
        return
    counts, edges = histogram(img, bins, rng, backend=backend)
    np.testing.assert_array_equal(counts, ref[0])
    np.testing.assert_array_equal(edges, ref[1])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("n", [1, 3, 4, 5, 1023, 1024, 1025, 4099, 65535, 65537, 131075])
def test_float32_histogram_on_edges_at_block_and_chunk_boundaries(backend, n, simd):
    # float32 pixels are binned four at a time, 1024 per block, with the guess's fraction checked
    # against margins; pixels on or next to an edge, and the tail of each block, go to the exact
    # walk. Every size around those boundaries (and the two-thread chunk split), every kind of
    # range, against NumPy.
    from medfeat._kernels.cython import _density_cy

    for k, (lo, hi, bins) in enumerate(((0.0, 1.0, 256), (-3.5, 1e4, 1000), (0.1, 0.7, 30),
                                        (1000.0, 1000.5, 7), (-1e-3, 1e-3, 4096))):
        img = _edge_values(lo, hi, bins, n, seed=k)
        for rng in (None, (lo, hi), (np.float64(lo) + 1e-9, np.float64(hi)),
                    (np.float32(lo), np.float32((lo + hi) / 2))):
            _check_against_numpy(img, bins, rng, backend)
        if n >= 1024:
            # these edges take the SIMD path (else the test above would not exercise it)
            e64 = np.linspace(np.float32(lo), np.float32(hi), bins + 1,
                              dtype=np.float32).astype(np.float64)
            usable, alpha, beta = _density_cy.float32_bin_margins(
                e64, e64[0], e64[-1], e64[0], bins / (e64[-1] - e64[0]))
            assert usable and alpha < 1e-3 and beta > 1 - 1e-3


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_float32_histogram_special_values(backend, simd):
    # negative zero, subnormals, the largest floats, all-equal images and a range far beyond
    # float32's, where the float32 guess is useless (constant) and the walk decides every pixel
    from medfeat._kernels.cython import _density_cy

    tiny = np.float32(1e-45)
    big = np.finfo(np.float32).max
    cases = [
        (np.array([0.0, -0.0, tiny, -tiny, 1e-40, -1e-40, 1.0], np.float32), 10, None),
        (np.arange(-50, 50, dtype=np.float32) * tiny, 99, None),
        (np.array([-big, big, 0.0, -0.0, 1.0, -1.0] * 5, np.float32), 7, None),
        (np.full(1000, -0.0, np.float32), 5, None),
        (np.full(1000, np.float32(3.3e-39)), 256, None),
        (np.linspace(-1, 1, 5000, dtype=np.float32), 256, (np.float64(-1e300), np.float64(1e300))),
        (np.linspace(-1, 1, 5000, dtype=np.float32), 3, (-0.0, 0.0)),
    ]
    for img, bins, rng in cases:
        # [-max, max] overflows in linspace (NumPy's edges, so ours too): not our warning to test
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                ref = np.histogram(img, bins, rng)
            except (ValueError, IndexError):  # NumPy's own limits (an overflowing range)
                continue
            counts, e = histogram(img, bins, rng, backend=backend)
        np.testing.assert_array_equal(counts, ref[0])
        np.testing.assert_array_equal(e, ref[1])
    e = np.linspace(-1e300, 1e300, 257)
    assert not _density_cy.float32_bin_margins(e, -1e300, 1e300, -1e300, 256 / 2e300)[0]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_histogram_range_outside_and_infinity(backend):
    img = np.array([[-np.inf, 0.0, 0.5], [1.0, 2.0, np.inf]], np.float64)
    counts, edges = histogram(img, 4, (0.0, 1.0), backend=backend)
    ref = np.histogram(img, 4, (0.0, 1.0))
    np.testing.assert_array_equal(counts, ref[0])
    np.testing.assert_array_equal(edges, ref[1])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@given(img=images(), bins=st.integers(1, 300), use_range=st.booleans())
def test_histogram_property(backend, img, bins, use_range):
    rng = None
    if use_range:
        lo, hi = float(img.min()), float(img.max())
        rng = (lo + 0.25 * (hi - lo), hi)
    _check_against_numpy(img, bins, rng, backend)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_histogram_keywords_change_output(backend):
    img = _image("camera", "uint16")
    c1, e1 = histogram(img, backend=backend)
    c2, e2 = histogram(img, bins=16, backend=backend)
    c3, e3 = histogram(img, range=(0, 1000), backend=backend)
    assert c1.size == 256 and c2.size == 16
    assert not np.array_equal(e1, e3) and c3.sum() < c1.sum()


@pytest.mark.parametrize("kernel", [histogram, density, threshold_otsu, threshold_maxent])
def test_auto_is_the_cpu_backend_and_numba_is_gone(kernel):
    img = _image("retina", "float32")
    auto, cpu = kernel(img, backend="auto"), kernel(img, backend=CPU_BACKENDS[0])
    for a, b in zip(auto, cpu) if isinstance(auto, tuple) else [(auto, cpu)]:
        np.testing.assert_array_equal(a, b)
    with pytest.raises(BackendNotImplementedError, match=r"backend='numba'.*'cython'.*'cuda'"):
        kernel(img, backend="numba")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_histogram_does_not_modify_input(backend):
    img = to_dtype(load_real("mr_small"), np.float32).copy()
    before = img.copy()
    histogram(img, 10, backend=backend)
    np.testing.assert_array_equal(img, before)
    assert img.flags.writeable


BAD_IMAGES = [
    (np.zeros((0, 4), np.uint8), "image"),
    (np.float32(3.0), "image"),
    (np.ones((4, 4), np.complex64), "image"),
    (np.ones((4, 4), object), "image"),
    (np.ones((4, 4), np.int64), "image"),
    (np.ones((4, 4), bool), "image"),
    (None, "image"),
]


@pytest.mark.parametrize("bad,word", BAD_IMAGES)
def test_histogram_bad_images(bad, word):
    with pytest.raises(ValueError, match=word):
        histogram(bad)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_histogram_bad_arguments(backend):
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    nan = img.copy()
    nan[1, 1] = np.nan
    inf = img.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN"):
        histogram(nan, backend=backend)
    with pytest.raises(ValueError, match="NaN"):
        histogram(nan, range=(0, 5), backend=backend)
    with pytest.raises(ValueError, match="infinity"):
        histogram(inf, backend=backend)
    for bins in (0, -3, 2.5, True, "auto"):
        with pytest.raises(ValueError, match="bins"):
            histogram(img, bins, backend=backend)
    for rng in ((2, 1), (0, np.inf), (np.nan, 1), (1,), "ab", (0, "x")):
        with pytest.raises(ValueError, match="range"):
            histogram(img, 4, rng, backend=backend)
    with pytest.raises(ValueError, match="bins"):
        histogram(np.array([1.0, 1.0 + 1e-15]), 10**6, backend=backend)


def test_unknown_backend():
    img = np.ones((4, 4), np.uint8)
    for fn in (histogram, threshold_otsu, threshold_maxent, density):
        with pytest.raises(ValueError, match="backend"):
            fn(img, backend="fortran")
    # no GPU here: a ValueError subclass, not a crash (with one, tests/kernels/test_cuda.py covers it)
    from medfeat.kernels import BackendUnavailableError, available_backends

    if "cuda" not in available_backends():
        with pytest.raises(BackendUnavailableError):
            histogram(img, backend="cuda")


# ----------------------------------------------------------------------------------- threshold_otsu

@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name", REAL_2D)
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_otsu_matches_skimage_on_real_images(backend, name, dtype):
    img = _image(name, dtype)
    ref = skimage.filters.threshold_otsu(img)
    got = threshold_otsu(img, backend=backend)
    assert got == ref
    assert type(got) is type(ref)
    if img.dtype.kind == "f":
        assert threshold_otsu(img, nbins=37, backend=backend) == skimage.filters.threshold_otsu(
            img, nbins=37)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_otsu_volume(backend):
    vol = load_volume()
    assert threshold_otsu(vol, backend=backend) == skimage.filters.threshold_otsu(vol)
    volf = to_dtype(vol, np.float64)
    assert threshold_otsu(volf, backend=backend) == skimage.filters.threshold_otsu(volf)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_otsu_given_hist(backend):
    img = _image("ct_small", "native")
    counts, centers = np.histogram(img, 100)[0], np.arange(100) * 3.5 - 7
    padded = np.concatenate([[0, 0], counts, [0]])
    for hist in (counts, (counts, centers), padded, (padded, np.arange(103, dtype=np.float32))):
        assert threshold_otsu(hist=hist, backend=backend) == skimage.filters.threshold_otsu(
            hist=hist)
    # hist wins over the image (the image is only checked for being single-valued)
    assert threshold_otsu(img, hist=counts, backend=backend) == skimage.filters.threshold_otsu(
        img, hist=counts)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_otsu_single_value(backend, dtype):
    img = np.full((5, 6), 7, dtype)
    got = threshold_otsu(img, backend=backend)
    ref = skimage.filters.threshold_otsu(img)
    assert got == ref and got.dtype == ref.dtype == np.dtype(dtype)
    assert threshold_maxent(img, backend=backend) == 7
    assert threshold_otsu(img, hist=np.array([1, 2, 3]), backend=backend) == 7


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@given(img=images(min_side=2, min_dims=2), nbins=st.integers(2, 300))
def test_otsu_property(backend, img, nbins):
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :2]  # scikit-image warns on RGB-looking shapes
    try:
        ref = skimage.filters.threshold_otsu(img, nbins)
    except ValueError:
        with pytest.raises(ValueError):
            threshold_otsu(img, nbins, backend=backend)
        return
    assert threshold_otsu(img, nbins, backend=backend) == ref


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_otsu_keywords_change_output(backend):
    img = _image("retina", "float64")
    assert threshold_otsu(img, nbins=4, backend=backend) != threshold_otsu(img, backend=backend)
    assert threshold_otsu(img, hist=np.array([5, 1, 1, 5, 9]), backend=backend) != \
        threshold_otsu(img, backend=backend)


@pytest.mark.parametrize("fn", [threshold_otsu, threshold_maxent])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_threshold_bad_arguments(fn, backend):
    with pytest.raises(ValueError, match="image or hist"):
        fn(backend=backend)
    nan = np.arange(16, dtype=np.float64).reshape(4, 4)
    nan[2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(nan, backend=backend)
    img = np.arange(16, dtype=np.float64).reshape(4, 4)
    with pytest.raises(ValueError, match="nbins"):
        fn(img, nbins=0, backend=backend)
    with pytest.raises(ValueError, match="nbins"):
        fn(img, nbins=1, backend=backend)
    for hist in (np.zeros(5), np.array([0, 3, 0]), np.ones((2, 2)), (np.ones(3), np.ones(4)),
                 np.array([1.0, np.nan]), np.array([1, -1, 2]), np.array([], float), "abc"):
        with pytest.raises(ValueError, match="hist"):
            fn(hist=hist, backend=backend)
    for bad, word in BAD_IMAGES[:-1]:
        with pytest.raises(ValueError, match=word):
            fn(bad, backend=backend)


# --------------------------------------------------------------------------------- threshold_maxent

def _reference_hist(img, nbins=256):
    """The histogram threshold_otsu uses, built independently: one bin per integer value, or NumPy's
    bins with their centres."""
    if img.dtype.kind in "ui":
        lo = int(img.min())
        counts = np.bincount((img.astype(np.int64) - lo).ravel())
        return counts, np.arange(lo, lo + counts.size)
    counts, edges = np.histogram(img, nbins)
    return counts, (edges[:-1] + edges[1:]) / 2


def _kapur_objective(counts):
    """H(A) + H(B) for every split t (A = bins <= t), straight from the definition (for long
    histograms, from cumulative sums of p and p log p, which is the same expansion written
    apart)."""
    p = counts / counts.sum()
    if p.size > 1024:
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0)
        pa, sa = np.cumsum(p)[:-1], np.cumsum(plogp)[:-1]
        pb, sb = np.cumsum(p[::-1])[::-1][1:], np.cumsum(plogp[::-1])[::-1][1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            h = (np.log(pa) - sa / pa) + (np.log(pb) - sb / pb)
        return np.where((pa > 0) & (pb > 0), h, -np.inf)
    out = np.full(p.size - 1, -np.inf)
    for t in range(p.size - 1):
        total = 0.0
        for part in (p[: t + 1], p[t + 1:]):
            mass = part.sum()
            if mass == 0:
                break
            q = part[part > 0] / mass
            total -= np.sum(q * np.log(q))
        else:
            out[t] = total
    return out


def _assert_maxent(got, counts, centers):
    obj = _kapur_objective(counts)
    best = int(np.argmax(obj))
    if got != centers[best]:
        # a near-tie resolved differently by rounding: the objective must be equal there
        idx = int(np.flatnonzero(centers == got)[0])
        assert obj[idx] == pytest.approx(obj[best], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name", REAL_2D)
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_maxent_matches_reference_on_real_images(backend, name, dtype):
    img = _image(name, dtype)
    got = threshold_maxent(img, backend=backend)
    counts, centers = _reference_hist(img)
    _assert_maxent(got, counts, centers)
    assert type(got) is type(skimage.filters.threshold_otsu(img))
    assert img.min() <= got < img.max()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_maxent_volume_and_hist(backend):
    vol = load_volume()
    counts, centers = _reference_hist(vol)
    _assert_maxent(threshold_maxent(vol, backend=backend), counts, centers)
    h = np.array([0, 4, 9, 3, 0, 0, 2, 7, 7, 1, 0])
    c = np.linspace(-1, 1, h.size)
    _assert_maxent(threshold_maxent(hist=(h, c), backend=backend), h[1:10], c[1:10])
    _assert_maxent(threshold_maxent(hist=h, backend=backend) + 0.0, h[1:10],
                   np.arange(1, 10).astype(float))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@given(img=images(min_side=2, min_dims=2, max_dims=2, bound=1000))
def test_maxent_property(backend, img):
    if np.all(img == img.flat[0]):
        assert threshold_maxent(img, backend=backend) == img.flat[0]
        return
    counts, centers = _reference_hist(img)
    _assert_maxent(threshold_maxent(img, backend=backend), counts, centers)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_maxent_keywords_change_output(backend):
    img = _image("camera", "float32")
    assert threshold_maxent(img, nbins=8, backend=backend) != threshold_maxent(img, backend=backend)
    assert threshold_maxent(img, hist=np.array([9, 1, 1, 1, 9, 9]), backend=backend) != \
        threshold_maxent(img, backend=backend)


# ------------------------------------------------------------------------------------------ density

def _kde_error(img, grid, pdf, bw_method="scott"):
    ref = gaussian_kde(img.astype(np.float64).ravel(), bw_method=bw_method)(grid)
    return np.abs(pdf - ref).sum() * (grid[1] - grid[0])


def _bw(img, bw_method="scott"):
    kde = gaussian_kde(img.astype(np.float64).ravel(), bw_method=bw_method)
    return float(np.sqrt(kde.covariance[0, 0]))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name", REAL_2D)
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_density_matches_gaussian_kde_on_real_images(backend, name, dtype):
    img = _image(name, dtype)[::4, ::4]  # every 16th pixel keeps gaussian_kde's O(n * grid) quick
    grid, pdf = density(img, backend=backend)
    assert grid.dtype == pdf.dtype == np.float64 and grid.shape == pdf.shape == (512,)
    bw = _bw(img)
    lo, hi = float(img.min()), float(img.max())
    np.testing.assert_allclose(grid, np.linspace(lo - 3 * bw, hi + 3 * bw, 512), rtol=1e-12,
                               atol=1e-12 * (hi - lo + 6 * bw))
    assert _kde_error(img, grid, pdf) < 1e-3


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_density_volume(backend):
    vol = load_volume()[:, ::2, ::2]
    grid, pdf = density(vol, backend=backend)
    assert _kde_error(vol, grid, pdf) < 1e-3


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("bw", ["silverman", 0.5, 0.02, 1e-6])
def test_density_bandwidths_and_paths(backend, bw):
    # 0.5: short kernel (direct convolution); 0.02: finer internal grid; 1e-6: exact Gaussian sums
    img = _image("mr_small", "float32")[::2, ::2]
    grid, pdf = density(img, bandwidth=bw, backend=backend)
    assert _kde_error(img, grid, pdf, bw) < 1e-3


@pytest.mark.parametrize("n", [1, 2, 3, 1023, 1024, 1025, 5000, 70001])
def test_linear_binning_of_float32_is_the_float64_loop_bit_for_bit(n, simd):
    # float32 pixels are binned by a two-step block loop (cells and weights two lanes at a time,
    # then the adds in pixel order); the float64 loop is the one-step scalar code. Both must add
    # the same weights in the same order: equal bits, values below, on and above the grid's ends,
    # and NaN, for one to three chunks.
    from medfeat._kernels.cython import _density_cy

    rng = np.random.default_rng(n)
    x = rng.normal(size=n).astype(np.float32)
    x[:: 7] = np.float32(-3.0)           # below the grid
    x[3:: 11] = np.float32(2.0)          # the last grid point exactly
    x[5:: 13] = np.float32(9.0)          # above it
    if n > 10:
        x[n // 2] = np.nan
    for ngrid in (2, 3, 97, 4001):
        lo, dx = -2.0, 4.0 / (ngrid - 1)
        for nchunks in (1, 2, 3):
            got = _density_cy.linear_bin(x, np.zeros(0), lo, dx, ngrid, nchunks)
            ref = _density_cy.linear_bin(x.astype(np.float64), np.zeros(0), lo, dx, ngrid,
                                         nchunks)
            assert got.tobytes() == ref.tobytes()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_density_fft_path(backend):
    img = _image("camera", "float64")[::4, ::4]
    grid, pdf = density(img, bandwidth=2.0, grid_size=4096, backend=backend)
    assert grid.size == 4096
    assert _kde_error(img, grid, pdf, 2.0) < 1e-3


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@given(img=images(min_side=2, min_dims=2, max_dims=2, bound=1000), grid_size=st.integers(2, 600))
def test_density_property(backend, img, grid_size):
    x = img.astype(np.float64)
    if x.std() <= 1e-6 * max(1.0, np.abs(x).max()):
        return  # constant or nearly so: gaussian_kde is singular; tested separately
    grid, pdf = density(img, grid_size=grid_size, backend=backend)
    kde = gaussian_kde(x.ravel())
    ref = kde(grid)
    assert grid.size == grid_size
    # a coarse grid makes a coarse integral: compare pointwise, against a lone kernel's peak
    peak = 1 / np.sqrt(2 * np.pi * kde.covariance[0, 0])
    np.testing.assert_allclose(pdf, ref, rtol=0, atol=1e-3 * peak)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_density_keywords_change_output(backend):
    img = _image("ct_small", "native")[::4, ::4]
    g1, p1 = density(img, backend=backend)
    g2, p2 = density(img, bandwidth="silverman", backend=backend)
    g3, p3 = density(img, bandwidth=0.3, backend=backend)
    g4, p4 = density(img, grid_size=100, backend=backend)
    assert not np.allclose(p1, p2) and not np.allclose(p1, p3)
    assert p4.shape == g4.shape == (100,)


@pytest.mark.parametrize("first", [
    "import medfeat.kernels as k",
    "from medfeat.kernels import density",
    "from medfeat.kernels import histogram",
    "import medfeat.kernels.intensity",
    "from medfeat.kernels.histograms import threshold_otsu",
    "import medfeat.kernels.histograms",
])
def test_density_is_the_function_in_any_import_order(first):
    # the function's module is `histograms`, so no submodule import can rebind the package's
    # `density` attribute (fresh interpreter: import order is process-wide state)
    import subprocess
    import sys

    code = (f"{first}\nimport numpy as np, medfeat.kernels as k\n"
            "from medfeat.kernels import density as d\n"
            "import types\n"
            "assert isinstance(k.density, types.FunctionType) and k.density is d, k.density\n"
            "g, p = d(np.arange(100, dtype=np.float32))\n"
            "assert g.shape == p.shape == (512,)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_density_bad_arguments(backend):
    img = np.arange(64, dtype=np.float32).reshape(8, 8)
    for bad in (np.full((4, 4), 3.0), np.ones((1, 1), np.uint8)):
        with pytest.raises(ValueError, match="constant"):
            density(bad, backend=backend)
    for v in (np.nan, np.inf):
        x = img.copy()
        x[3, 3] = v
        with pytest.raises(ValueError, match="NaN or infinity"):
            density(x, backend=backend)
    for bw in ("scot", 0, -1.0, np.nan, None, True):
        with pytest.raises(ValueError, match="bandwidth"):
            density(img, bandwidth=bw, backend=backend)
    for g in (1, 0, 2.5, "512"):
        with pytest.raises(ValueError, match="grid_size"):
            density(img, grid_size=g, backend=backend)
    for bad, word in BAD_IMAGES:
        with pytest.raises(ValueError, match=word):
            density(bad, backend=backend)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_strided_and_fortran_inputs(backend):
    img = _image("retina", "float32")
    for view in (img[::3, 1::2], np.asfortranarray(img), img.T):
        np.testing.assert_array_equal(histogram(view, 64, backend=backend)[0],
                                      np.histogram(view, 64)[0])
        assert threshold_otsu(view, backend=backend) == skimage.filters.threshold_otsu(view)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_parallel_chunks_never_share_pixels(backend):
    # Regression: chunk bounds written through pointers were shared between OpenMP threads, so under
    # load two threads could count the same pixels (sums of 1.5x or 0.5x the pixel count). Many more
    # chunks than threads, many times, widens the window in which such a race shows.
    from medfeat.kernels._dispatch import implementation

    impl = implementation("density", backend)
    x = np.ascontiguousarray(load_real("retina").reshape(-1))
    ref = np.bincount(x, minlength=256)
    nomask = np.zeros(0, np.uint8)
    for nchunks in (2, 3, 8, 64):
        for _ in range(50):
            np.testing.assert_array_equal(impl.value_counts(x, nomask, 0, 256, nchunks), ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_edges_equal_the_edges_of_each_image(dtype):
    # the GPU batch derives every image's bin edges in one vectorised linspace; they must be the
    # rows numpy.histogram's own rule gives image by image (a last-bit difference moves counts)
    from medfeat.kernels.histograms import _edges, _edges_rows

    rng = np.random.default_rng(3)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        lows = (rng.standard_normal(60) * 10.0 ** rng.integers(-30, 30, 60)).astype(dt)
        spread = np.abs(lows.astype(np.float64)) * 10.0 ** rng.uniform(-4, 1, 60) + 1e-30
        highs = (lows + spread).astype(dt)
    else:
        info = np.iinfo(dt)
        room = min(5000, (int(info.max) - int(info.min)) // 2)
        lows = rng.integers(info.min, info.max - room, 60).astype(dt)
        highs = (lows.astype(np.int64) + rng.integers(7, room, 60)).astype(dt)
    lows[:4] = (0, 1, 100, 3 if dt.kind in "ui" else 1e-20)
    highs[:4] = lows[:4]  # constant images: the range widened by 0.5
    lows, highs = lows.astype(np.float64), highs.astype(np.float64)
    edges, args = _edges_rows(dt, 7, lows, highs)
    for n, (a, b) in enumerate(zip(lows, highs)):
        e, single = _edges(np.empty(0, dt), 7, dt.type(a), dt.type(b))
        assert e.dtype == edges.dtype
        np.testing.assert_array_equal(edges[n], e)
        np.testing.assert_array_equal(args[0][n], single[0])
        assert [args[k][n] for k in range(1, 5)] == list(single[1:])
    if dt.kind == "f":  # a range too narrow for the bins fails as it does image by image
        with pytest.raises(ValueError, match="too many"):
            _edges_rows(dt, 7, np.r_[lows, 1.0], np.r_[highs, np.nextafter(dt.type(1), dt.type(2))])


def test_masked_counts_of_a_small_16_bit_image_index_every_pixel_in_range():
    """The span of a small 16-bit image is taken over every pixel: the counting pass indexes its
    table with each pixel's value, masked or not (adding 0 outside the mask), so a span of the
    masked pixels alone sent the others (here 0 and 65,535, far from the masked 30,000s) out of
    the table's bounds, a flaky crash under threads."""
    from medfeat.kernels import percentile
    from medfeat.kernels._dispatch import FAMILY_BACKENDS, implementation
    from medfeat.kernels.histograms import _int_counts

    rng = np.random.default_rng(0)
    a = rng.integers(30000, 30011, (64, 64)).astype(np.uint16)
    a[0::4], a[1::4] = 0, 65535
    m = np.zeros(a.shape, bool)
    m[2::4] = True
    impl = implementation("density", FAMILY_BACKENDS["density"][0])
    raw, offset = _int_counts(impl, a.ravel(), m.ravel().view(np.uint8))
    assert offset <= int(a.min()) and offset + raw.size - 1 >= int(a.max())
    assert int(raw.sum()) == int(m.sum())
    np.testing.assert_array_equal(percentile(a, [0, 50, 100], mask=m),
                                  np.percentile(a[m], [0, 50, 100]))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
def test_density_batch_equals_each_image_alone(dtype):
    img = _image("camera", dtype)
    h, w = img.shape[0] // 2, img.shape[1] // 3
    stack = np.stack([img[:24, :24], img[h:h + 24, w:w + 24], img[-24:, -24:]])
    grids, pdfs = density(stack, grid_size=64, batch=True)
    assert grids.shape == pdfs.shape == (3, 64)
    for n, one in enumerate(stack):
        g, p = density(one, grid_size=64)
        np.testing.assert_array_equal(grids[n], g)
        np.testing.assert_array_equal(pdfs[n], p)
    stack[1] = stack[1, 0, 0]                       # a constant image: named in the error
    with pytest.raises(ValueError, match="image 1 of the stack"):
        density(stack, batch=True)
    with pytest.raises(ValueError, match="batch"):
        density(stack, batch="yes")
