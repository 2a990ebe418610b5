"""Sobel, Prewitt and Canny against scikit-image, for every CPU backend and dtype, on real
images."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.feature
import skimage.filters
from hypothesis import given
from hypothesis import strategies as st

from medfeat.kernels import BackendUnavailableError, canny, prewitt, sobel
from medfeat.kernels import FAMILY_BACKENDS, BackendNotImplementedError
from tests.conftest import DTYPES, REAL_2D, load_real, load_volume, to_dtype

CPU_BACKENDS = tuple(b for b in FAMILY_BACKENDS["edges"] if b != "cuda")

FILTERS = {"sobel": (sobel, skimage.filters.sobel), "prewitt": (prewitt, skimage.filters.prewitt)}
MODES = ("reflect", "constant", "nearest", "mirror", "wrap")
ALL_DTYPES = (np.bool_, *DTYPES)


def expected_dtype(dtype):
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def finite_max(a):
    a = np.abs(np.asarray(a, dtype=np.float64))
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else 0.0


def assert_filter_close(out, ref, image=None, cval=0.0):
    """Within 1e-5 relative, with an absolute floor at 1e-6 of the largest response and of the
    largest value entering the sums (input or ``cval``): responses that are zero in exact
    arithmetic come out as rounding noise of either implementation (a cancellation)."""
    assert out.dtype == ref.dtype
    assert out.shape == ref.shape
    floor = finite_max(ref)
    if image is not None:
        img = np.asarray(image)
        scale = 1.0 if img.dtype.kind in "uib" else finite_max(img)
        floor = max(floor, scale, abs(cval))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6 * floor + 1e-30)


def padded_reference(ref, img, modes, cval):
    """``ref`` with one boundary mode per axis, built by padding with NumPy (SciPy's convolve, and
    so scikit-image, refuses a sequence of modes)."""
    np_mode = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap"}
    f = np.asarray(img, dtype=np.float32 if img.dtype == np.float32 else np.float64)
    if img.dtype.kind in "ui":
        f = np.maximum(img / np.iinfo(img.dtype).max, -1.0)
    for ax, mode in enumerate(modes):
        width = [(0, 0)] * f.ndim
        width[ax] = (1, 1)
        if mode == "constant":
            f = np.pad(f, width, mode="constant", constant_values=cval)
        else:
            f = np.pad(f, width, mode=np_mode[mode])
    return ref(f)[(slice(1, -1),) * f.ndim]


def assert_edges_match(out, ref):
    """Canny: equal edge maps, or at most 0.2% of the edge pixels different (rounding)."""
    assert out.dtype == np.bool_ and out.shape == ref.shape
    diff = int(np.count_nonzero(out != ref))
    assert diff <= 0.002 * max(int(ref.sum()), 1), f"{diff} pixels differ of {int(ref.sum())} edges"


def positive_axis(axis, ndim):
    """scikit-image 0.26 smooths a negative axis as if it were also a smoothing axis (its kernel
    loses a factor 4 or 3); medfeat treats ``-1`` as the last axis, so compare with that axis."""
    if axis is None:
        return None
    if isinstance(axis, int):
        return axis % ndim
    return type(axis)(a % ndim for a in axis)


def real(name, dtype=None):
    img = load_real(name)
    return img if dtype is None else to_dtype(img, dtype)


# ------------------------------------------------------------------------------------------------
# Sobel / Prewitt
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.dtype(d).name for d in ALL_DTYPES])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("kernel", sorted(FILTERS))
def test_filter_matches_skimage_on_real_images(kernel, backend, dtype):
    ours, ref = FILTERS[kernel]
    for name in REAL_2D:
        img = real(name, dtype)
        out = ours(img, backend=backend)
        assert out.dtype == expected_dtype(dtype)
        assert_filter_close(out, ref(img))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("kernel", sorted(FILTERS))
def test_filter_native_dtypes(kernel, backend):
    ours, ref = FILTERS[kernel]
    for name in REAL_2D:
        img = real(name)  # int16 CT/MR, uint8 photographs
        assert_filter_close(ours(img, backend=backend), ref(img))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("kernel", sorted(FILTERS))
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, (0, 2)])
def test_filter_3d_volume(kernel, backend, axis):
    ours, ref = FILTERS[kernel]
    vol = load_volume()
    for img in (vol, to_dtype(vol, np.float32)):
        assert_filter_close(ours(img, axis=axis, backend=backend),
                            ref(img, axis=positive_axis(axis, img.ndim)))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_filter_modes(backend, mode):
    img = real("camera", np.float64)
    for kernel, (ours, ref) in FILTERS.items():
        assert_filter_close(ours(img, mode=mode, cval=0.7, backend=backend),
                            ref(img, mode=mode, cval=0.7))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_filter_mode_per_axis(backend):
    img = real("mr_small", np.float32)
    vol = load_volume()
    for ours, ref in FILTERS.values():
        modes = ["wrap", "constant"]
        out = ours(img, mode=modes, cval=0.2, backend=backend)
        assert_filter_close(out, padded_reference(ref, img, modes, 0.2))
        # the reference construction itself agrees with scikit-image for a single mode
        assert_filter_close(padded_reference(ref, img, ["wrap", "wrap"], 0.0),
                            ref(img, mode="wrap"))
        modes = ("mirror", "constant", "nearest")
        assert_filter_close(ours(vol, mode=modes, cval=-0.5, backend=backend),
                            padded_reference(ref, vol, modes, -0.5))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("axis", [0, 1, -1, -2, (0,), (1, 0), [1, 1], (0, 1)])
def test_filter_axis_forms(backend, axis):
    img = real("retina", np.float32)
    for ours, ref in FILTERS.values():
        assert_filter_close(ours(img, axis=axis, backend=backend),
                            ref(img, axis=positive_axis(axis, img.ndim)))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_filter_mask_2d_and_3d(backend):
    img = real("ct_small")
    mask = np.zeros(img.shape, bool)
    mask[40:200, 30:150] = True
    mask[100:120, 60:90] = False
    vol = load_volume()
    vmask = np.zeros(vol.shape, bool)
    vmask[2:10, 8:50, 5:60] = True
    for ours, ref in FILTERS.values():
        out = ours(img, mask=mask, backend=backend)
        assert_filter_close(out, ref(img, mask=mask))
        assert np.all(out[~mask] == 0)
        assert_filter_close(ours(vol, mask=vmask, backend=backend), ref(vol, mask=vmask))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_filter_nan_propagates_like_skimage(backend):
    img = to_dtype(real("camera"), np.float64)
    img[50, 60] = np.nan
    img[0, 5] = np.nan
    img[100:103, 200] = np.inf
    for ours, ref in FILTERS.values():
        out = ours(img, backend=backend)
        expected = ref(img)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
        assert np.isnan(out).sum() > 8
        assert_filter_close(out, expected)


@given(
    shape=st.one_of(
        st.tuples(st.integers(1, 40), st.integers(1, 40)),
        st.tuples(st.integers(1, 8), st.integers(1, 12), st.integers(1, 12)),
    ),
    dtype=st.sampled_from(ALL_DTYPES),
    mode=st.sampled_from(MODES),
    cval=st.floats(-2, 2),
    use_axis=st.booleans(),
    use_mask=st.booleans(),
    kernel=st.sampled_from(sorted(FILTERS)),
    seed=st.integers(0, 2**32 - 1),
)
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_filter_property_random_inputs(backend, shape, dtype, mode, cval, use_axis, use_mask,
                                       kernel, seed):
    rng = np.random.default_rng(seed)
    img = to_dtype(rng.random(shape), dtype)
    axis = int(rng.integers(len(shape))) if use_axis else None
    mask = rng.random(shape) > 0.2 if use_mask else None
    ours, ref = FILTERS[kernel]
    out = ours(img, mask, axis=axis, mode=mode, cval=cval, backend=backend)
    assert_filter_close(out, ref(img, mask, axis=axis, mode=mode, cval=cval), img, cval)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_filter_keywords_change_the_output(backend):
    """Each keyword is honoured (scikit-image's sobel once silently ignored cval)."""
    img = real("mr_small", np.float32)
    mask = np.zeros(img.shape, bool)
    mask[20:200, 20:200] = True
    for ours, _ in FILTERS.values():
        base = ours(img, backend=backend)
        assert not np.array_equal(ours(img, mask, backend=backend), base)
        assert not np.array_equal(ours(img, axis=0, backend=backend), base)
        assert not np.array_equal(ours(img, axis=0, backend=backend),
                                  ours(img, axis=1, backend=backend))
        assert not np.array_equal(ours(img, mode="wrap", backend=backend), base)
        const0 = ours(img, mode="constant", cval=0.0, backend=backend)
        const1 = ours(img, mode="constant", cval=1.0, backend=backend)
        assert not np.array_equal(const0, const1)
        assert np.array_equal(const0[1:-1, 1:-1], const1[1:-1, 1:-1])  # cval only at the border


def test_auto_is_the_cpu_backend():
    img = real("microaneurysms", np.float32)
    for k in (sobel, prewitt):
        np.testing.assert_array_equal(k(img, backend="auto"), k(img, backend=CPU_BACKENDS[0]))


@pytest.mark.parametrize("kernel", [sobel, prewitt, canny])
def test_removed_cpu_backend_names_the_available_ones(kernel):
    # one CPU implementation per family: the other CPU backend is refused, naming what runs here
    removed = next(b for b in ("cython", "numba") if b not in CPU_BACKENDS)
    with pytest.raises(BackendNotImplementedError, match=rf"backend='{removed}'.*'{CPU_BACKENDS[0]}'"):
        kernel(np.ones((8, 8), np.float32), backend=removed)


# ------------------------------------------------------------------------------------------------
# Canny
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.dtype(d).name for d in ALL_DTYPES])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_matches_skimage_on_real_images(backend, dtype):
    for name in REAL_2D:
        img = real(name, dtype)
        out = canny(img, backend=backend)
        ref = skimage.feature.canny(img)
        assert_edges_match(out, ref)
    # the defaults must find edges on a real photograph, or the comparison proves little
    assert canny(real("camera", dtype), backend=backend).sum() > 100


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_native_dtypes(backend):
    for name in REAL_2D:
        img = real(name)
        assert_edges_match(canny(img, sigma=2.0, backend=backend),
                           skimage.feature.canny(img, sigma=2.0))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_quantiles_mask_and_modes(backend):
    img = real("camera", np.float32)
    mask = np.zeros(img.shape, bool)
    mask[10:240, 30:200] = True
    cases = [
        dict(low_threshold=0.5, high_threshold=0.9, use_quantiles=True),
        dict(low_threshold=0.0, high_threshold=0.0, use_quantiles=True),
        dict(mask=mask),
        dict(mask=mask, mode="reflect"),
        dict(mode="reflect"),
        dict(mode="nearest", sigma=3.0),
        dict(mode="mirror", sigma=0.5),
        dict(mode="wrap"),
        dict(mode="constant", cval=0.5),
        dict(sigma=0.0, low_threshold=0.05, high_threshold=0.3),
        dict(low_threshold=0, high_threshold=0.05),
    ]
    for kw in cases:
        assert_edges_match(canny(img, backend=backend, **kw), skimage.feature.canny(img, **kw))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_thresholds_in_image_units(backend):
    img = real("camera")  # uint8: thresholds are in 0..255
    for low, high in ((10, 40), (25.5, 51.0), (60, 60)):
        assert_edges_match(canny(img, low_threshold=low, high_threshold=high, backend=backend),
                           skimage.feature.canny(img, low_threshold=low, high_threshold=high))


@given(
    shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    dtype=st.sampled_from(ALL_DTYPES),
    sigma=st.sampled_from([0.0, 0.5, 1.0, 1.7, 3.0]),
    mode=st.sampled_from(MODES),
    thresholds=st.one_of(st.none(), st.tuples(st.floats(0, 0.5), st.floats(0, 0.5))),
    use_quantiles=st.booleans(),
    use_mask=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_property_random_inputs(backend, shape, dtype, sigma, mode, thresholds,
                                      use_quantiles, use_mask, seed):
    rng = np.random.default_rng(seed)
    # blocky random images, so that there are edges to find
    base = rng.random((shape[0] // 4 + 1, shape[1] // 4 + 1))
    img = to_dtype(np.kron(base, np.ones((4, 4)))[: shape[0], : shape[1]]
                   + 0.05 * rng.random(shape), dtype)
    kw = dict(sigma=sigma, mode=mode, use_quantiles=use_quantiles)
    if thresholds is not None:
        lo, hi = sorted(thresholds)
        if not use_quantiles:
            lo, hi = lo * int(np.iinfo(img.dtype).max if img.dtype.kind in "ui" else 1), \
                hi * int(np.iinfo(img.dtype).max if img.dtype.kind in "ui" else 1)
        kw.update(low_threshold=lo, high_threshold=hi)
    if use_mask:
        kw["mask"] = rng.random(shape) > 0.1
    assert_edges_match(canny(img, backend=backend, **kw), skimage.feature.canny(img, **kw))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_keywords_change_the_output(backend):
    img = real("camera", np.float32)
    mask = np.zeros(img.shape, bool)
    mask[:, :128] = True
    base = canny(img, backend=backend)
    changed = {
        "sigma": canny(img, sigma=3.0, backend=backend),
        "low_threshold": canny(img, low_threshold=0.01, backend=backend),
        "high_threshold": canny(img, high_threshold=0.5, backend=backend),
        "mask": canny(img, mask=mask, backend=backend),
        "use_quantiles": canny(img, 1.0, 0.5, 0.9, use_quantiles=True, backend=backend),
        "mode": canny(img, mode="reflect", backend=backend),
    }
    for name, out in changed.items():
        assert not np.array_equal(out, base), name
    # cval only matters with mode='constant', and there it must matter
    assert not np.array_equal(canny(img, cval=1.0, backend=backend), base)
    assert np.array_equal(canny(img, mode="reflect", cval=1.0, backend=backend),
                          canny(img, mode="reflect", backend=backend))


def test_canny_auto_is_the_cpu_backend():
    img = real("retina", np.uint16)
    np.testing.assert_array_equal(canny(img, backend="auto"), canny(img, backend=CPU_BACKENDS[0]))


# ------------------------------------------------------------------------------------------------
# Dtype contract, input safety, errors
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.dtype(d).name for d in ALL_DTYPES])
def test_dtype_contract_and_input_untouched(backend, dtype):
    img = to_dtype(real("ct_small"), dtype)
    img.setflags(write=True)
    before = img.copy()
    for kernel in (sobel, prewitt):
        out = kernel(img, backend=backend)
        assert out.dtype == expected_dtype(dtype)
        assert out.shape == img.shape
        assert out is not img
    assert canny(img, backend=backend).dtype == np.bool_
    np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_non_contiguous_and_list_input(backend):
    img = real("camera", np.float32)
    view = img[::2, ::3]
    assert_filter_close(sobel(view, backend=backend), skimage.filters.sobel(view))
    np.testing.assert_array_equal(canny(view.T, backend=backend), skimage.feature.canny(view.T))
    small = [[0.0, 0.0, 1.0, 1.0]] * 4
    assert_filter_close(prewitt(small, backend=backend),
                        skimage.filters.prewitt(np.asarray(small)))


BAD_IMAGES = [
    (np.zeros((0, 4), np.float32), "image must not be empty"),
    (np.zeros(5, np.float32), "image must be"),
    (np.zeros((3, 3), np.complex64), "image must be real-valued"),
    (np.array([[object(), 1]], dtype=object), "image must be a numeric"),
    (np.zeros((3, 3), np.int64), "image has unsupported dtype int64"),
    (np.zeros((3, 3), np.float16), "image has unsupported dtype float16"),
]


@pytest.mark.parametrize("bad, match", BAD_IMAGES)
@pytest.mark.parametrize("kernel", [sobel, prewitt, canny])
def test_bad_images_raise(kernel, bad, match):
    with pytest.raises(ValueError, match=match):
        kernel(bad)


@pytest.mark.parametrize("kernel", [sobel, prewitt])
def test_filter_bad_arguments_raise(kernel):
    img = np.zeros((6, 6), np.float32)
    cases = [
        (dict(mask=np.ones((5, 6), bool)), "mask must have the image's shape"),
        (dict(mask=np.ones((6, 6), complex)), "mask must be a boolean"),
        (dict(axis=2), "axis must hold ints"),
        (dict(axis=-3), "axis must hold ints"),
        (dict(axis=1.0), "axis must"),
        (dict(axis=()), "axis must not be an empty"),
        (dict(axis=(0, "1")), "axis must hold ints"),
        (dict(mode="edge"), "mode must be one of"),
        (dict(mode=("reflect",)), "mode must name one mode per axis"),
        (dict(mode=("reflect", "bogus")), "mode must be one of"),
        (dict(mode=3), "mode must be one of"),
        (dict(cval="0"), "cval must be a real number"),
        (dict(cval=1j), "cval must be a real number"),
        (dict(backend="gpu"), "backend must be one of"),
    ]
    for kw, match in cases:
        with pytest.raises(ValueError, match=match):
            kernel(img, **kw)
    with pytest.raises(ValueError, match="image must be 2-D or 3-D"):
        kernel(np.zeros((2, 3, 4, 5), np.float32))


def test_canny_bad_arguments_raise():
    img = np.zeros((6, 6), np.float32)
    cases = [
        (dict(image=np.zeros((3, 3, 3), np.float32)), "image must be 2-D"),
        (dict(image=np.full((4, 4), np.nan)), "image contains NaN"),
        (dict(image=np.full((4, 4), np.inf, np.float32)), "image contains NaN or infinity"),
        (dict(sigma=-1.0), "sigma must be"),
        (dict(sigma=np.nan), "sigma must be"),
        (dict(sigma="1"), "sigma must be"),
        (dict(low_threshold=np.nan), "low_threshold must be a finite"),
        (dict(high_threshold="x"), "high_threshold must be a finite"),
        (dict(low_threshold=0.5, high_threshold=0.2), "must not be lower than"),
        (dict(low_threshold=1.5, use_quantiles=True), "low_threshold must be a quantile"),
        (dict(high_threshold=-0.1, use_quantiles=True), "high_threshold must be a quantile"),
        (dict(mask=np.ones((6, 5), bool)), "mask must have the image's shape"),
        (dict(mode="edge"), "mode must be one of"),
        (dict(mode=["reflect", "reflect"]), "mode must be one of"),
        (dict(cval=None), "cval must be a real number"),
        (dict(backend="fast"), "backend must be one of"),
    ]
    for kw, match in cases:
        kw = dict(kw)
        image = kw.pop("image", img)
        with pytest.raises(ValueError, match=match):
            canny(image, **kw)


def test_cuda_backend_is_refused_cleanly():
    """Without a GPU (or the simulator), asking for CUDA raises; it never falls back to the CPU."""
    from medfeat.kernels import available_backends

    if "cuda" in available_backends():
        pytest.skip("a CUDA device (or the simulator) is available here")
    img = np.zeros((6, 6), np.float32)
    for kernel in (sobel, prewitt, canny):
        with pytest.raises(ValueError) as info:
            kernel(img, backend="cuda")
        assert isinstance(info.value, BackendUnavailableError)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_multithreaded_path_on_a_large_real_image(backend):
    # Images above 512² run their rows on several threads: the real images above are smaller, so
    # this one (the full fundus green channel, 1411², with a mask and a non-default mode) covers the
    # parallel branch of every edge kernel.
    import skimage.data

    img = np.ascontiguousarray(skimage.data.retina()[:, :, 1])
    assert img.size > 512 * 512 + 1
    f = img.astype(np.float32) / 255
    mask = np.zeros(img.shape, bool)
    mask[40:-60, 30:-20] = True
    for ours, ref in ((sobel, skimage.filters.sobel), (prewitt, skimage.filters.prewitt)):
        assert_filter_close(ours(f, backend=backend), ref(f))
        assert_filter_close(ours(f, mask, mode="nearest", backend=backend),
                            ref(f, mask, mode="nearest"))
    assert_edges_match(canny(f, 2.0, backend=backend), skimage.feature.canny(f, 2.0))
    assert_edges_match(canny(img, 1.5, mask=mask, use_quantiles=True, low_threshold=0.8,
                             high_threshold=0.9, backend=backend),
                       skimage.feature.canny(img, 1.5, mask=mask, use_quantiles=True,
                                             low_threshold=0.8, high_threshold=0.9))


# ------------------------------------------------------------------------------------------------
# Canny's tiles: images above 512² are cut into tiles of whole rows, each smoothed, suppressed and
# flooded on its own, with the floods that cross a tile border finished afterwards. These cases are
# compared pixel for pixel (no tolerance): the tiling must not change a single edge.
# ------------------------------------------------------------------------------------------------


def _tiled_image(shape, dtype):
    """A real photograph resized to ``shape`` (above 512², so that the tiled path runs)."""
    from scipy import ndimage

    cam = load_real("camera").astype(np.float64) / 255
    img = np.clip(ndimage.zoom(cam, (shape[0] / cam.shape[0], shape[1] / cam.shape[1]), order=1),
                  0, 1)
    return to_dtype(img, dtype)


@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64", "uint16"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_tiles_exact_on_sizes_not_a_multiple_of_the_tile(backend, dtype):
    # 619 rows into 16 tiles of 38 or 39 rows, 523 columns (not a multiple of 8: the word scans of
    # the hysteresis meet rows that do not start on a word)
    img = _tiled_image((619, 523), dtype)
    assert img.size > 512 * 512 + 1
    for kw in ({}, dict(mode="reflect", sigma=2.0), dict(mode="wrap", sigma=1.5),
               dict(mode="nearest", sigma=0.6), dict(mode="mirror"), dict(cval=0.4, sigma=3.0),
               dict(low_threshold=0.02 * _scale(dtype), high_threshold=0.05 * _scale(dtype))):
        np.testing.assert_array_equal(canny(img, backend=backend, **kw),
                                      skimage.feature.canny(img, **kw), err_msg=str(kw))


def _scale(dtype):
    return float(np.iinfo(dtype).max) if np.dtype(dtype).kind in "ui" else 1.0


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_tiles_exact_with_mask_and_quantiles(backend):
    img = _tiled_image((700, 530), "uint8")
    mask = np.zeros(img.shape, bool)
    mask[30:650, 17:500] = True
    mask[300:320, :] = False  # a masked-out band across a tile border
    for kw in (dict(mask=mask), dict(mask=mask, mode="reflect", sigma=2.0),
               dict(use_quantiles=True, low_threshold=0.7, high_threshold=0.95)):
        np.testing.assert_array_equal(canny(img, backend=backend, **kw),
                                      skimage.feature.canny(img, **kw), err_msg=str(kw))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_hysteresis_follows_weak_chains_across_tiles(backend):
    # A band of low contrast running down through every tile, of high contrast only near the
    # bottom: the outline of its upper part is reached only through floods that continue across
    # the tile borders, upwards. A second low-contrast band with no strong piece must vanish.
    # (The contrast rises smoothly: a sudden change would make a T junction, where non-maximum
    # suppression leaves a gap.)
    H, W = 1030, 540
    img = np.zeros((H, W), np.float32)
    rows = np.arange(40, H - 40)
    img[40:H - 40, 120:260] = (0.3 + 0.7 * np.clip((rows - (H - 320)) / 200, 0, 1))[:, None]
    img[40:H - 40, 300:500] = 0.3
    kw = dict(sigma=1.0, low_threshold=0.2, high_threshold=2.0)  # the weak steps' magnitude ~1
    ref = skimage.feature.canny(img, **kw)
    out = canny(img, backend=backend, **kw)
    np.testing.assert_array_equal(out, ref)
    assert out[40:80, :280].any(), "the far end of the band's outline is kept"
    assert not out[:, 280:].any(), "the outline without a strong pixel is dropped"


def _serpentine(H, W, bar=14, gap=26, margin=40):
    """A weak band winding down the image: horizontal bars joined at alternate ends. Only its last
    bar rises (smoothly, so that no T junction breaks the outline) to a strong contrast."""
    img = np.zeros((H, W), np.float32)
    tops = list(range(margin, H - margin - bar, bar + gap))
    for k, t in enumerate(tops):
        img[t:t + bar, margin:W - margin] = 0.3
        if k + 1 < len(tops):
            c0 = W - margin - bar if k % 2 == 0 else margin
            img[t:tops[k + 1] + bar, c0:c0 + bar] = 0.3
    cols = np.arange(margin, W - margin)
    rise = (cols - (W - margin - 300)) if (len(tops) - 1) % 2 == 0 else ((margin + 300) - cols)
    img[tops[-1]:tops[-1] + bar, margin:W - margin] = 0.3 + 0.7 * np.clip(rise / 200, 0, 1)
    return img


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_hysteresis_winds_up_and_down_through_rows_and_words(backend):
    # The hysteresis marks whole runs of candidates on bit rows (64 pixels a word) and settles
    # rows against their neighbours: the band's outline climbs from its strong end through every
    # U turn (down-then-up within a tile and across tile borders) along runs that cross words.
    for shape in ((1060, 700), (300, 257)):  # 16 tiles; one tile
        img = _serpentine(*shape)
        kw = dict(sigma=1.0, low_threshold=0.2, high_threshold=2.0)
        ref = skimage.feature.canny(img, **kw)
        out = canny(img, backend=backend, **kw)
        np.testing.assert_array_equal(out, ref, err_msg=str(shape))
        assert out[:60].sum() > 2 * (shape[1] - 80), "the far end of the band is reached"


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_hysteresis_on_dense_noise_at_word_boundaries(backend):
    # noise with low thresholds: tangled candidate webs, runs across every word boundary, widths
    # a multiple of 64, one more, one less, and a single tile
    rng = np.random.default_rng(5)
    for shape in ((600, 640), (530, 513), (520, 575), (90, 129)):
        img = rng.random(shape).astype(np.float32)
        for kw in (dict(sigma=1.0, low_threshold=0.02, high_threshold=0.2),
                   dict(sigma=1.5, low_threshold=0.01, high_threshold=0.1)):
            np.testing.assert_array_equal(canny(img, backend=backend, **kw),
                                          skimage.feature.canny(img, **kw),
                                          err_msg=f"{shape} {kw}")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_short_images_and_wrap_rows(backend):
    # fewer rows than the Gaussian's window, in every mode: the rows a window needs (reflected or
    # wrapped more than once) must never overwrite each other in the kernel's row ring
    rng = np.random.default_rng(3)
    for shape in ((3, 40), (5, 33), (7, 64), (2, 9), (9, 3)):
        img = rng.random(shape).astype(np.float32)
        for mode in MODES:
            for sigma in (1.0, 2.5):
                kw = dict(sigma=sigma, mode=mode, low_threshold=0.01, high_threshold=0.05)
                np.testing.assert_array_equal(canny(img, backend=backend, **kw),
                                              skimage.feature.canny(img, **kw),
                                              err_msg=f"{shape} {kw}")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_uint8_read_directly_equals_its_float64_conversion(backend):
    # uint8 images are converted row by row inside the kernel; the result must be the one of the
    # float64 image img_as_float makes (thresholds in image units vs converted units)
    import numba

    img = _tiled_image((600, 600), "uint8")
    f = img / 255.0
    np.testing.assert_array_equal(canny(img, backend=backend),
                                  canny(f, backend=backend))
    np.testing.assert_array_equal(canny(img, low_threshold=20, high_threshold=60, backend=backend),
                                  canny(f, low_threshold=20 / 255, high_threshold=60 / 255,
                                        backend=backend))
    # one thread (as inside feature workers) gives the same edges as several
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = canny(img, backend=backend)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(single, canny(img, backend=backend))


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_radius_four_pairs_of_rows_near_every_border(backend, dtype):
    # sigma near 1 (a radius-4 Gaussian) smooths two rows per vertical pass, reading a float
    # image's rows in place where the window lies inside the image and converted rows near its
    # top and bottom: odd and even heights (a pair that would pass the last row), tiles starting on
    # odd rows, and a cval that float32 cannot hold (the rows outside must stay float64)
    rng = np.random.default_rng(11)
    for shape in ((9, 31), (10, 40), (11, 17), (531, 519), (620, 523)):
        base = _tiled_image(shape, "float64") if shape[0] > 500 else rng.random(shape)
        img = to_dtype(base, dtype)
        for kw in (dict(sigma=1.0), dict(sigma=0.9, cval=0.1), dict(sigma=1.1, mode="reflect"),
                   dict(sigma=1.0, mode="wrap"), dict(sigma=1.0, mode="nearest"),
                   dict(sigma=1.0, mode="mirror")):
            kw.update(low_threshold=0.02 * _scale(dtype), high_threshold=0.06 * _scale(dtype))
            np.testing.assert_array_equal(canny(img, backend=backend, **kw),
                                          skimage.feature.canny(img, **kw),
                                          err_msg=f"{shape} {kw}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_canny_nan_or_infinity_anywhere_raises(backend, dtype):
    # the kernel itself checks the image for NaN and infinity as its tiles read it: a single bad
    # pixel in any row (first, last, on a tile border, inside a tile) of a small or a tiled image,
    # in one image of a batch, and on the paths checked before the kernel (mask, quantiles)
    for shape in ((7, 9), (619, 523)):
        for row in (0, shape[0] // 16, shape[0] // 2, shape[0] - 1):
            for bad in (np.nan, np.inf, -np.inf):
                img = np.full(shape, 0.5, dtype)
                img[row, shape[1] // 3] = bad
                with pytest.raises(ValueError, match="image contains NaN or infinity"):
                    canny(img, backend=backend)
    img = np.zeros((40, 30), dtype)
    img[39, 29] = np.nan
    with pytest.raises(ValueError, match="contains NaN or infinity"):
        canny(np.stack([np.zeros_like(img), img]), batch=True, backend=backend)
    for kw in (dict(mask=np.ones(img.shape, bool)), dict(use_quantiles=True)):
        with pytest.raises(ValueError, match="image contains NaN or infinity"):
            canny(img, backend=backend, **kw)
    img[39, 29] = 0.5
    assert canny(img, backend=backend).shape == img.shape  # the plain path still runs after
