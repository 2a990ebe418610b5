"""normalize against float64 NumPy references, on every CPU backend and dtype, real images and
volumes, masks, and random inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medfeat.kernels.intensity import METHODS, normalize
from medfeat.kernels import FAMILY_BACKENDS, BackendNotImplementedError
from tests.conftest import DTYPES, REAL_2D, load_real, load_volume, to_dtype

CPU_BACKENDS = tuple(b for b in FAMILY_BACKENDS["intensity"] if b != "cuda")
from tests.kernels.test_density import images, simd  # noqa: F401 (simd: a fixture)

DTYPE_NAMES = [np.dtype(d).name for d in DTYPES] + ["native"]
RTOL, ATOL = 1e-5, 1e-6


def _image(name, dtype):
    img = load_real(name)
    return img if dtype == "native" else to_dtype(img, dtype)


def _window(img):
    """A window covering the middle of the image's intensities (so all three regions occur)."""
    x = img.astype(np.float64)
    lo, hi = np.percentile(x, [20, 80])
    return {"center": float((lo + hi) / 2), "width": float(max(hi - lo, 1e-3))}


def reference(img, method, mask=None, lower=1, upper=99, center=None, width=None):
    """The float64 NumPy computation each method is defined as."""
    x = img.astype(np.float64)
    s = x if mask is None else x[mask]
    if method == "zscore":
        # correctly rounded sums, so a constant image has exactly zero spread (NumPy's pairwise
        # mean can be an ulp off and turn rounding noise into +-1)
        mean = math.fsum(s.ravel()) / s.size
        sd = math.sqrt(math.fsum(((s - mean) ** 2).ravel()) / s.size)
        # even the correctly rounded sum divided by n can miss a constant value by an ulp, and
        # that ulp would become a spread of +-1: a constant region has zero spread by definition
        if s.size and np.all(s == s.flat[0]):
            mean, sd = float(s.flat[0]), 0.0
        return (x - mean) / (sd if sd > 0 else 1.0)
    if method == "minmax":
        r = s.max() - s.min()
        return (x - s.min()) / (r if r > 0 else 1.0)
    if method == "percentile":
        a, b = np.percentile(s, [lower, upper])
        r = b - a
        return np.clip((x - a) / (r if r > 0 else 1.0), 0, 1)
    return np.clip((x - (center - width / 2)) / width, 0, 1)


def _kwargs(img, method):
    return _window(img) if method == "window" else {}


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name", REAL_2D)
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_normalize_matches_numpy_on_real_images(backend, name, dtype):
    img = _image(name, dtype)
    mask = img > np.percentile(img, 30)
    for method in METHODS:
        kw = _kwargs(img, method)
        for m in (None, mask):
            got = normalize(img, method, mask=m, backend=backend, **kw)
            assert got.dtype == np.float32 and got.shape == img.shape
            np.testing.assert_allclose(got, reference(img, method, m, **kw), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("method", METHODS)
def test_normalize_volume(backend, method):
    vol = load_volume()
    kw = _kwargs(vol, method)
    got = normalize(vol, method, backend=backend, **kw)
    assert got.shape == vol.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(vol, method, **kw), rtol=RTOL, atol=ATOL)


def _four_chain_moments(x):
    """The density family's moments of one block, written out: shifted sums around the first
    value in four sequential chains (pixel i in chain i % 4, the leftover pixels in chain 0),
    combined as (a + b) + (c + d)."""
    d = x.astype(np.float64) - np.float64(x[0])
    m = d.size - d.size % 4
    s1 = [np.add.accumulate(np.concatenate(([0.0], d[r:m:4])))[-1] for r in range(4)]
    s2 = [np.add.accumulate(np.concatenate(([0.0], d[r:m:4] ** 2)))[-1] for r in range(4)]
    for v in d[m:]:
        s1[0] += v
        s2[0] += v * v
    a = (s1[0] + s1[1]) + (s1[2] + s1[3])
    b = (s2[0] + s2[1]) + (s2[2] + s2[3])
    n = float(d.size)
    return n, (np.float64(x[0]) + a / n) * 1.0, 0.0 + max(b - a * a / n, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 1001, 4099])
def test_vectorised_moments_are_the_four_chains_bit_for_bit(dtype, n):
    # the float moments run their four chains two per SSE2 register; one block (block = n) must
    # give exactly the scalar chains' bits
    from medfeat._kernels.cython import _density_cy

    rng = np.random.default_rng(n)
    # magnitudes over 16 decades, so that the sums round and their order shows in the bits
    x = (rng.normal(size=n) * 10.0 ** rng.uniform(-8, 8, n)).astype(dtype)
    got = _density_cy.moments(x, np.zeros(0, np.uint8), n, 1)
    assert tuple(float(v) for v in got) == _four_chain_moments(x)


@pytest.mark.parametrize("n", [1, 3, 4, 5, 7, 8, 9, 15, 17, 1000, 70001])
def test_float32_output_pass_is_the_scalar_formula_bit_for_bit(n, simd):
    # float32 pixels are mapped (and clipped) four or eight at a time in registers: every output
    # must be the scalar formula's bits, in float64 or float32 arithmetic, NaN and -0.0 included
    from medfeat._kernels.cython import _intensity_cy

    rng = np.random.default_rng(n)
    x = (rng.normal(size=n) * 2).astype(np.float32)
    x[:: 5] = np.float32(-0.0)
    x[1:: 7] = np.nan
    x[2:: 11] = np.float32(0.25)
    for shift, scale in ((0.1234567, 1.7), (0.25, 2.0), (-3.0, 0.001)):
        wide = (x.astype(np.float64) - shift) * scale
        narrow = (x - np.float32(shift)) * np.float32(scale)
        for single, ref in ((False, wide.astype(np.float32)), (True, narrow)):
            for clip in (False, True):
                want = ref.copy()
                if clip:
                    want = np.where(want < 0, np.float32(0), want)
                    want = np.where(want > 1, np.float32(1), want).astype(np.float32)
                for nchunks in (1, 2):
                    out = np.empty(n, np.float32)
                    _intensity_cy.affine(x, shift, scale, clip, single, out, nchunks)
                    assert out.tobytes() == want.tobytes(), (single, clip, shift)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_zscore_float32_precision(backend):
    # a large offset and small spread: float32 accumulation would lose the variance entirely
    rng = np.random.default_rng(1)
    img = (10000 + rng.normal(0, 0.5, size=(300, 301))).astype(np.float32)
    got = normalize(img, backend=backend)
    np.testing.assert_allclose(got, reference(img, "zscore"), rtol=RTOL, atol=ATOL)
    got = normalize(img, "minmax", backend=backend)
    np.testing.assert_allclose(got, reference(img, "minmax"), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_image_maps_to_zero(backend, dtype):
    img = np.full((7, 9), 5, dtype)
    for method in ("zscore", "minmax", "percentile"):
        out = normalize(img, method, backend=backend)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, 0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_mask_statistics_only_output_everywhere(backend):
    img = to_dtype(load_real("camera"), np.float32)
    mask = img < np.median(img)
    out = normalize(img, "minmax", mask=mask, backend=backend)
    np.testing.assert_allclose(out[mask].min(), 0, atol=ATOL)
    np.testing.assert_allclose(out[mask].max(), 1, atol=ATOL)
    assert (out[~mask] > 1).any()  # whole image written, with the masked region's statistics


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@given(
    img=images(min_side=2, min_dims=2, max_dims=3, bound=1e4),
    method=st.sampled_from(METHODS),
    use_mask=st.booleans(),
    data=st.data(),
)
def test_normalize_property(backend, img, method, use_mask, data):
    mask = None
    if use_mask:
        mask = data.draw(hnp.arrays(bool, img.shape))
        if not mask.any():
            mask.flat[0] = True
    kw = {}
    if method == "percentile":
        lower = data.draw(st.floats(0, 99))
        kw = {"lower": lower, "upper": data.draw(st.floats(lower + 0.5, 100))}
    elif method == "window":
        kw = {"center": data.draw(st.floats(-1e4, 1e4)), "width": data.draw(st.floats(1e-2, 1e4))}
    got = normalize(img, method, mask=mask, backend=backend, **kw)
    ref = reference(img, method, mask, **kw)
    scale = max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL * scale)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_keywords_change_output(backend):
    img = _image("mr_small", "native")
    mask = img > np.percentile(img, 50)
    base = {m: normalize(img, m, backend=backend, **_kwargs(img, m)) for m in METHODS}
    assert not np.allclose(base["zscore"], base["minmax"])
    assert not np.allclose(base["percentile"], base["minmax"])
    assert not np.allclose(normalize(img, "percentile", lower=20, backend=backend),
                           base["percentile"])
    assert not np.allclose(normalize(img, "percentile", upper=60, backend=backend),
                           base["percentile"])
    kw = _window(img)
    assert not np.allclose(normalize(img, "window", center=kw["center"] + 50, width=kw["width"],
                                     backend=backend), base["window"])
    assert not np.allclose(normalize(img, "window", center=kw["center"], width=kw["width"] * 2,
                                     backend=backend), base["window"])
    for m in ("zscore", "minmax", "percentile"):
        assert not np.allclose(normalize(img, m, mask=mask, backend=backend), base[m])


def test_auto_is_the_cpu_backend_and_numba_is_gone():
    img = _image("retina", "float32")
    np.testing.assert_array_equal(normalize(img, backend="auto"),
                                  normalize(img, backend=CPU_BACKENDS[0]))
    with pytest.raises(BackendNotImplementedError, match=r"backend='numba'.*'cython'.*'cuda'"):
        normalize(img, backend="numba")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_does_not_modify_input(backend):
    img = to_dtype(load_real("ct_small"), np.float64).copy()
    mask = img > 0.5
    before, mbefore = img.copy(), mask.copy()
    for method in METHODS:
        normalize(img, method, mask=mask, backend=backend, **_kwargs(img, method))
    np.testing.assert_array_equal(img, before)
    np.testing.assert_array_equal(mask, mbefore)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_bad_arguments(backend):
    img = np.arange(64, dtype=np.float32).reshape(8, 8)
    with pytest.raises(ValueError, match="method"):
        normalize(img, "robust", backend=backend)
    for lo, hi in ((50, 40), (-1, 50), (10, 101), (np.nan, 50), ("1", 99)):
        with pytest.raises(ValueError, match="lower|upper"):
            normalize(img, "percentile", lower=lo, upper=hi, backend=backend)
    with pytest.raises(ValueError, match="center and width"):
        normalize(img, "window", center=3, backend=backend)
    with pytest.raises(ValueError, match="width"):
        normalize(img, "window", center=3, width=0, backend=backend)
    with pytest.raises(ValueError, match="center"):
        normalize(img, "window", center=np.inf, width=2, backend=backend)
    with pytest.raises(ValueError, match="center"):
        normalize(img, "zscore", center=3, backend=backend)
    with pytest.raises(ValueError, match="mask"):
        normalize(img, mask=np.ones((4, 4), bool), backend=backend)
    with pytest.raises(ValueError, match="mask"):
        normalize(img, mask=np.zeros(img.shape, bool), backend=backend)
    with pytest.raises(ValueError, match="backend"):
        normalize(img, backend="fortran")
    for v in (np.nan, np.inf):
        x = img.copy()
        x[2, 3] = v
        for method in ("zscore", "minmax", "percentile"):
            with pytest.raises(ValueError, match="NaN"):
                normalize(x, method, backend=backend)
            mask = np.zeros(x.shape, bool)
            mask[0] = True  # the bad pixel is outside the mask: still refused
            with pytest.raises(ValueError, match="NaN"):
                normalize(x, method, mask=mask, backend=backend)
    x = img.copy()
    x[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        normalize(x, "window", center=3, width=2, backend=backend)
    # infinity has a defined window: it saturates
    x[2, 3] = np.inf
    assert normalize(x, "window", center=3, width=2, backend=backend)[2, 3] == 1
    for bad, word in [(np.zeros((0, 3)), "image"), (np.float64(1), "image"),
                      (np.ones((3, 3), np.complex128), "image"),
                      (np.ones((3, 3), np.int64), "image"),
                      (np.ones((3, 3), object), "image"), (None, "image")]:
        with pytest.raises(ValueError, match=word):
            normalize(bad, backend=backend)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_strided_and_fortran_inputs(backend):
    img = _image("camera", "uint16")
    for view in (img[::3, 1::2], np.asfortranarray(img), img.T):
        mask = view > np.median(view)
        for method in METHODS:
            kw = _kwargs(view, method)
            got = normalize(view, method, mask=mask, backend=backend, **kw)
            np.testing.assert_allclose(got, reference(view, method, mask, **kw), rtol=RTOL,
                                       atol=ATOL)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_zscore_of_a_constant_image_is_zero(backend):
    """A constant whose correctly rounded mean is an ulp off (fsum(206 x v) / 206 != v): the
    z-scores are 0, not the +-1 that the ulp would make of it (found by Hypothesis)."""
    v = 2739.2337464290868
    assert math.fsum([v] * 206) / 206 != v
    img = np.full((2, 103), v)
    np.testing.assert_array_equal(normalize(img, "zscore", backend=backend), 0.0)
    np.testing.assert_array_equal(reference(img, "zscore"), 0.0)


# ------------------------------------------------------------------------------------- percentile

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_percentile_is_numpy_percentile_bit_for_bit(dtype, backend):
    from medfeat.kernels import percentile

    img = to_dtype(load_real("mr_small"), dtype)
    mask = np.zeros(img.shape, bool)
    mask[::3, 1::2] = True
    qs = [99.5, 0, 1, 12.5, 50, 73.3, 100]          # unsorted on purpose
    ref = img.astype(np.float64)
    np.testing.assert_array_equal(percentile(img, qs, backend=backend), np.percentile(ref, qs))
    np.testing.assert_array_equal(percentile(img, qs, mask=mask, backend=backend),
                                  np.percentile(ref[mask], qs))
    got = percentile(img, 37.5, backend=backend)
    assert isinstance(got, float) and got == np.percentile(ref, 37.5)


def _float_samples(seed, n):
    """Float images that stress the bucketed selection: ties, values all equal, a far outlier that
    squeezes the rest into one bucket, subnormals, huge magnitudes, consecutive floats."""
    rng = np.random.default_rng(seed)
    one = np.float32(1)
    yield rng.random(n)
    yield rng.integers(0, 7, n) / 6.0                                  # ties on a few values
    yield np.full(n, 0.3)                                              # all equal
    yield np.concatenate([rng.random(n - 1), [1e30]])                  # one far outlier
    yield rng.choice([0.0, 1e-45, -1e-45, 3e-39, -3e38, 3e38, 1.0], n)  # subnormals, extremes
    yield 1 + rng.integers(0, 50, n) * float(np.spacing(one))          # consecutive floats


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 1023, 1024, 1025, 4099, 65537])
def test_float_percentiles_by_buckets_are_numpy_percentile(backend, n, simd):
    # float percentiles count the pixels in 4096 buckets, copy the few buckets holding the wanted
    # ranks (four pixels at a time for float32 and at most four buckets, a lookup table beyond)
    # and select there; sizes around the blocks of 1024 and the split between threads, masks,
    # ranks in one bucket or in many
    from medfeat.kernels import percentile

    for k, x in enumerate(_float_samples(n, n)):
        for dtype in (np.float32, np.float64):
            img = np.asarray(x, dtype)
            ref = img.astype(np.float64)
            mask = np.random.default_rng(k).random(n) < 0.3
            mask[n // 2] = True
            for qs in ([1, 99], [0, 100], [50], [0, 12.5, 25, 37.5, 50, 62.5, 75, 87.5, 100]):
                np.testing.assert_array_equal(percentile(img, qs, backend=backend),
                                              np.percentile(ref, qs))
                np.testing.assert_array_equal(percentile(img, qs, mask=mask, backend=backend),
                                              np.percentile(ref[mask], qs))
            lo, hi = np.percentile(ref[mask], [5, 95])
            expected = np.clip((ref - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
            np.testing.assert_allclose(normalize(img, "percentile", lower=5, upper=95, mask=mask,
                                                 backend=backend), expected, rtol=1e-5, atol=1e-6)


def test_bucket_select_is_exact_for_any_bounds(simd):
    # the buckets only have to be ordered: wrong bounds (too narrow, too wide, reversed, equal)
    # cost speed, never exactness
    from medfeat._kernels.cython import _intensity_cy

    rng = np.random.default_rng(3)
    x = (rng.normal(size=5000) * 100).astype(np.float32)
    ks = np.array([0, 1, 17, 2500, 4998, 4999], np.int64)
    want = np.sort(x)[ks]
    for lo, hi in ((-50.0, 50.0), (-1e30, 1e30), (10.0, -10.0), (1.0, 1.0),
                   (float(x.min()), float(x.max()))):
        for nchunks in (1, 2, 3):
            got = _intensity_cy.bucket_select(x, np.zeros(0, np.uint8), lo, hi, ks, nchunks)
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [5, 1027, 70001])
def test_float_percentiles_find_nan_and_infinity_anywhere(n, simd):
    # the bucket counting pass checks every pixel, selected or not, at any position (SIMD lanes,
    # block tails), and the bucket bounds come from a sample that may miss the extremes
    from medfeat._kernels.cython import _intensity_cy
    from medfeat.kernels import percentile

    rng = np.random.default_rng(n)
    for dtype in (np.float32, np.float64):
        img = rng.random(n).astype(dtype)
        mask = np.zeros(n, bool)
        mask[: n // 2 + 1] = True
        for pos in (0, n - 1, n // 2 + 1, 3 if n > 3 else 1):
            for bad in (np.nan, np.inf, -np.inf):
                x = img.copy()
                x[pos] = bad
                assert _intensity_cy.bucket_select(x, np.zeros(0, np.uint8), 0.0, 1.0,
                                                   np.array([0], np.int64), 2) is None
                with pytest.raises(ValueError, match="NaN or infinity"):
                    percentile(x, 50, mask=mask)
                with pytest.raises(ValueError, match="NaN or infinity"):
                    normalize(x, "percentile")
        # extremes only where the sample (every size // 4096-th pixel) does not look
        x = img.copy()
        x[1::2][:3] = [-1e30, 1e30, -5.0][: x[1::2][:3].size]
        ref = x.astype(np.float64)
        np.testing.assert_array_equal(percentile(x, [0, 0.01, 1, 50, 99, 100]),
                                      np.percentile(ref, [0, 0.01, 1, 50, 99, 100]))


def test_percentile_bad_arguments():
    from medfeat.kernels import percentile

    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    for bad in (-1, 100.5, [10, 101], [], np.nan, True):
        with pytest.raises(ValueError, match="q"):
            percentile(img, bad)
    with pytest.raises(ValueError, match="mask selects no pixel"):
        percentile(img, 50, mask=np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="mask"):
        percentile(img, 50, mask=np.ones((3, 4), bool))
    nan = img.copy()
    nan[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        percentile(nan, 50)
    with pytest.raises(BackendNotImplementedError, match="backend='numba'"):
        percentile(img, 50, backend="numba")
