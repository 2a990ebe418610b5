"""medfeat.kernels.morphology against scikit-image 0.26 (the reference), every backend and dtype."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import skimage.morphology as skm
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage as ndi

from medfeat.kernels import _minmax
from medfeat.kernels import morphology as M
from medfeat.kernels import FAMILY_BACKENDS, BackendNotImplementedError
from tests.conftest import DTYPES, REAL_2D, load_real, load_volume, to_dtype

CPU_BACKENDS = tuple(b for b in FAMILY_BACKENDS["morphology"] if b != "cuda")

GREY = ("erosion", "dilation", "opening", "closing")
BINARY = ("binary_erosion", "binary_dilation", "binary_opening", "binary_closing")
GREY_MODES = ("reflect", "constant", "nearest", "mirror", "wrap", "max", "min", "ignore")
ALL_DTYPES = (*DTYPES, np.bool_)
DTYPE_IDS = [np.dtype(d).name for d in DTYPES]
ALL_DTYPE_IDS = [np.dtype(d).name for d in ALL_DTYPES]
# Footprints the real-image tests cycle through: a box (separable path, van Herk across rows for the
# 9-high one), a disk and a diamond (run decomposition), an asymmetric even-sized one (padding and
# mirroring conventions).
ASYM = np.array([[1, 1, 0, 0], [0, 1, 1, 1]], np.uint8)
FOOTPRINTS_2D = {
    "square3": np.ones((3, 3), np.uint8),
    "rect9x5": np.ones((9, 5), np.uint8),
    "disk3": skm.disk(3),
    "diamond2": skm.diamond(2),
    "asym2x4": ASYM,
}


def ref(name, image, footprint=None, **kw):
    """scikit-image's result (its binary_* functions are deprecated in 0.26: not our concern)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return getattr(skm, name)(image, footprint, **kw)


def ours(name, image, footprint=None, **kw):
    return getattr(M, name)(image, footprint, **kw)


def assert_same(got, want):
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def real_inputs(dtype):
    """Every real 2-D image converted to ``dtype``, plus its native dtype when that is ``dtype``."""
    out = []
    for name in REAL_2D:
        img = load_real(name)
        out.append((name, to_dtype(img, dtype)))
        if img.dtype == dtype:
            out.append((name + "-native", img))
    return out


# --------------------------------------------------------------------------------------------------
# equality with scikit-image on real images


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=ALL_DTYPE_IDS)
@pytest.mark.parametrize("kernel", GREY)
def test_grey_equals_skimage_on_real_images(kernel, dtype, backend):
    for i, (name, img) in enumerate(real_inputs(dtype)):
        fp_name = list(FOOTPRINTS_2D)[i % len(FOOTPRINTS_2D)]
        fp = FOOTPRINTS_2D[fp_name]
        got = ours(kernel, img, fp, backend=backend)
        assert_same(got, ref(kernel, img, fp))
        # the operation must do something on real images, or the comparison proves little
        assert not np.array_equal(got, img), (name, fp_name)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=ALL_DTYPE_IDS)
@pytest.mark.parametrize("kernel", BINARY)
def test_binary_equals_skimage_on_real_images(kernel, dtype, backend):
    for i, (name, img) in enumerate(real_inputs(dtype)):
        if dtype != np.bool_:
            # grey levels above the median become the non-zero pixels of a mask-like image
            img = np.where(img > np.median(img), img, 0).astype(dtype)
        fp = list(FOOTPRINTS_2D.values())[i % len(FOOTPRINTS_2D)]
        got = ours(kernel, img, fp, backend=backend)
        assert_same(got, ref(kernel, img, fp))
        assert not np.array_equal(got, img != 0), name


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kernel", GREY + BINARY)
def test_3d_volume_equals_skimage(kernel, dtype, backend):
    vol = to_dtype(load_volume(), dtype)
    if kernel.startswith("binary"):
        vol = np.where(vol > np.median(vol), vol, 0).astype(dtype)
    for fp in (skm.ball(2), np.ones((3, 5, 3), np.uint8), np.ones((5, 1, 1), np.uint8)):
        assert_same(ours(kernel, vol, fp, backend=backend), ref(kernel, vol, fp))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_3d_native_and_default_footprint(backend):
    vol = load_volume()
    for kernel in GREY + BINARY:
        assert_same(ours(kernel, vol, backend=backend), ref(kernel, vol))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["uint8", "float32"])
def test_long_windows(dtype, backend):
    """Row windows long enough for van Herk along rows; tall boxes use it across rows."""
    img = to_dtype(load_real("camera")[:6, :80], dtype)
    for fp in (np.ones((1, 4097), np.uint8), np.ones((31, 1), np.uint8),
               np.ones((7, 101), np.uint8)):
        for kernel in ("erosion", "dilation"):
            assert_same(ours(kernel, img, fp, backend=backend), ref(kernel, img, fp))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_footprint_sequences(backend):
    img = load_real("camera")
    for seq in (skm.disk(3, decomposition="sequence"), skm.diamond(3, decomposition="sequence"),
                skm.footprint_rectangle((5, 7), decomposition="separable")):
        for kernel in GREY:
            assert_same(ours(kernel, img, seq, backend=backend), ref(kernel, img, seq))
        for kernel in ("binary_erosion", "binary_dilation"):
            mask = img > 128
            assert_same(ours(kernel, mask, seq, backend=backend), ref(kernel, mask, seq))


# --------------------------------------------------------------------------------------------------
# property tests: random shapes, dtypes, footprints and modes


@st.composite
def cases(draw, ndim_max=3):
    ndim = draw(st.integers(2, ndim_max))
    side = 40 if ndim == 2 else 10
    shape = tuple(draw(st.integers(1, side)) for _ in range(ndim))
    dtype = np.dtype(draw(st.sampled_from(ALL_DTYPES)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        img = rng.random(shape) < 0.5
    elif dtype.kind == "f":
        img = rng.normal(size=shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        img = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    # at most 7 a side: scipy.ndimage reads outside its buffer in 'reflect' mode once a footprint
    # reaches four image lengths past the border, which then cannot be a reference
    fshape = tuple(draw(st.integers(1, 7 if ndim == 2 else 4)) for _ in range(ndim))
    fp = rng.random(fshape) < draw(st.sampled_from([0.4, 0.8, 1.0]))
    if not fp.any():
        fp.flat[0] = True
    return img, fp


@given(case=cases(), kernel=st.sampled_from(GREY), mode=st.sampled_from(GREY_MODES),
       cval=st.integers(-3, 100), backend=st.sampled_from(CPU_BACKENDS))
def test_grey_property(case, kernel, mode, cval, backend):
    img, fp = case
    if img.dtype == np.uint8 or img.dtype == np.uint16 or img.dtype == np.bool_:
        cval = abs(cval) if img.dtype != np.bool_ else cval % 2
    got = ours(kernel, img, fp, mode=mode, cval=cval, backend=backend)
    assert_same(got, ref(kernel, img, fp, mode=mode, cval=cval))


@given(case=cases(), kernel=st.sampled_from(BINARY), mode=st.sampled_from(("ignore", "max", "min")),
       backend=st.sampled_from(CPU_BACKENDS))
def test_binary_property(case, kernel, mode, backend):
    img, fp = case
    assert_same(ours(kernel, img, fp, mode=mode, backend=backend), ref(kernel, img, fp, mode=mode))


# --------------------------------------------------------------------------------------------------
# the dtype contract, and the caller's arrays


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=ALL_DTYPE_IDS)
def test_dtype_contract(dtype):
    img = to_dtype(load_real("mr_small"), dtype)
    for kernel in GREY:
        assert ours(kernel, img, backend="numba").dtype == dtype
    for kernel in BINARY:
        assert ours(kernel, img, backend="numba").dtype == np.bool_


def test_binary_reads_nonzero_as_true_and_nan_as_true():
    img = np.zeros((5, 5), np.float32)
    img[2, 2] = -0.5
    img[0, 0] = np.nan
    got = M.binary_dilation(img, np.ones((1, 1)))
    np.testing.assert_array_equal(got, img != 0)
    assert_same(got, ref("binary_dilation", img, np.ones((1, 1))))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_caller_array_untouched_and_readonly_ok(backend):
    img = load_real("camera")  # read-only
    before = img.copy()
    for kernel in GREY + BINARY:
        ours(kernel, img, skm.disk(2), backend=backend)
    np.testing.assert_array_equal(img, before)
    # non-contiguous input
    view = np.asarray(before)[::2, ::3]
    assert_same(M.erosion(view, skm.disk(2), backend=backend), ref("erosion", view, skm.disk(2)))


# --------------------------------------------------------------------------------------------------
# one test per keyword: each must change the output


@pytest.mark.parametrize("kernel", GREY + BINARY)
def test_footprint_keyword_changes_output(kernel):
    img = load_real("camera")
    a = ours(kernel, img > 100 if "binary" in kernel else img, skm.disk(1))
    b = ours(kernel, img > 100 if "binary" in kernel else img, skm.disk(4))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("kernel", GREY + BINARY)
def test_out_keyword(kernel):
    img = load_real("camera")
    want = ours(kernel, img)
    out = np.zeros(img.shape, want.dtype)
    got = ours(kernel, img, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    # a non-contiguous out is filled too
    big = np.zeros((img.shape[0], img.shape[1] * 2), want.dtype)
    ours(kernel, img, out=big[:, ::2])
    np.testing.assert_array_equal(big[:, ::2], want)


@pytest.mark.parametrize("kernel", ("erosion", "dilation"))
def test_out_may_be_the_image(kernel):
    img = to_dtype(load_real("camera"), np.float32)
    want = ref(kernel, img, skm.disk(2))
    work = img.copy()
    assert ours(kernel, work, skm.disk(2), out=work) is work
    np.testing.assert_array_equal(work, want)


@pytest.mark.parametrize("kernel", GREY)
def test_mode_keyword_changes_output(kernel):
    img = to_dtype(load_real("ct_small"), np.float32)
    # a symmetric footprint sees the same values under 'reflect', 'mirror' and 'nearest' (the
    # reflected pixels are inside the window anyway); a far off-centre one tells every mode apart
    fp = np.zeros((7, 7), np.uint8)
    fp[0, 6] = fp[1, 5] = 1
    results = [ours(kernel, img, fp, mode=m, cval=0.5) for m in GREY_MODES]
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            pair = {GREY_MODES[i], GREY_MODES[j]}
            # 'ignore' is 'max' for an erosion and 'min' for a dilation; opening/closing mix them
            if pair in ({"ignore", "max"}, {"ignore", "min"}):
                continue
            assert not np.array_equal(results[i], results[j]), pair


@pytest.mark.parametrize("kernel", GREY)
def test_cval_keyword_changes_output(kernel):
    img = to_dtype(load_real("ct_small"), np.uint16)
    a = ours(kernel, img, skm.disk(3), mode="constant", cval=0)
    b = ours(kernel, img, skm.disk(3), mode="constant", cval=65535)
    assert not np.array_equal(a, b)
    assert_same(b, ref(kernel, img, skm.disk(3), mode="constant", cval=65535))


def test_cval_is_truncated_like_scipy():
    img = to_dtype(load_real("camera"), np.int16)
    for cval in (2.7, -3.5, -0.5):
        for fp in (np.ones((3, 3)), skm.disk(2)):
            assert_same(M.erosion(img, fp, mode="constant", cval=cval),
                        ref("erosion", img, fp, mode="constant", cval=cval))


@pytest.mark.parametrize("kernel", BINARY)
def test_binary_mode_keyword_changes_output(kernel):
    img = load_real("camera") > 100
    results = {m: ours(kernel, img, skm.disk(3), mode=m) for m in ("ignore", "max", "min")}
    assert not np.array_equal(results["max"], results["min"])
    other = "min" if kernel in ("binary_erosion", "binary_opening") else "max"
    assert not np.array_equal(results["ignore"], results[other])


@pytest.mark.parametrize("kernel", GREY + BINARY)
def test_backend_keyword(kernel):
    img = load_real("retina")
    a = ours(kernel, img, skm.disk(2), backend="numba")
    c = ours(kernel, img, skm.disk(2), backend="auto")
    np.testing.assert_array_equal(a, c)
    # one CPU implementation per family: Cython's is gone, and the error names what runs
    with pytest.raises(BackendNotImplementedError, match=r"backend='cython'.*'numba'.*'cuda'"):
        ours(kernel, img, skm.disk(2), backend="cython")


def test_dilation_does_not_mirror_but_binary_dilation_does():
    img = np.zeros((7, 7), np.uint8)
    img[3, 3] = 1
    fp = np.array([[0, 0, 0], [0, 1, 1], [0, 0, 0]], np.uint8)
    assert M.dilation(img, fp)[3, 2] == 1 and M.dilation(img, fp)[3, 4] == 0
    assert M.binary_dilation(img, fp)[3, 4] and not M.binary_dilation(img, fp)[3, 2]


# --------------------------------------------------------------------------------------------------
# footprint constructors


def test_footprints_equal_skimage():
    for r in range(0, 9):
        for strict in (True, False):
            assert_same(M.disk(r, strict_radius=strict), skm.disk(r, strict_radius=strict))
        assert_same(M.diamond(r), skm.diamond(r))
    for r in range(0, 5):
        for strict in (True, False):
            assert_same(M.ball(r, strict_radius=strict), skm.ball(r, strict_radius=strict))
    for shape in ((1, 1), (2, 5), (4, 3)):
        assert_same(M.rectangle(*shape), skm.footprint_rectangle(shape))
    for w in (1, 2, 3):
        assert_same(M.cube(w), skm.footprint_rectangle((w, w, w)))
    assert_same(M.disk(2, dtype=bool), skm.disk(2, dtype=bool))
    assert M.rectangle(2, 2, dtype=np.float32).dtype == np.float32


def test_strict_radius_keyword_changes_output():
    assert not np.array_equal(M.disk(3), M.disk(3, strict_radius=False))
    assert not np.array_equal(M.ball(3), M.ball(3, strict_radius=False))


@pytest.mark.parametrize("call", [
    lambda: M.disk(-1), lambda: M.disk(1.5), lambda: M.diamond("2"), lambda: M.ball(-2),
    lambda: M.rectangle(0, 3), lambda: M.rectangle(2, 2.0), lambda: M.cube(0), lambda: M.disk(True),
])
def test_footprint_constructor_errors(call):
    with pytest.raises(ValueError):
        call()


# --------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("kernel", GREY + BINARY)
@pytest.mark.parametrize("bad, match", [
    (np.zeros((0, 5), np.uint8), "image"),
    (np.zeros(5, np.uint8), "image"),
    (np.zeros((2, 2, 2, 2), np.uint8), "image"),
    (np.zeros((4, 4), np.complex64), "image"),
    (np.zeros((4, 4), object), "image"),
    (np.zeros((4, 4), np.int64), "image"),
    (None, "image"),
], ids=["empty", "1d", "4d", "complex", "object", "int64", "none"])
def test_bad_image(kernel, bad, match):
    with pytest.raises(ValueError, match=match):
        ours(kernel, bad)


@pytest.mark.parametrize("kernel", GREY)
def test_nan_raises_for_grey(kernel):
    img = np.ones((5, 5), np.float64)
    img[1, 1] = np.nan
    with pytest.raises(ValueError, match="image"):
        ours(kernel, img)


@pytest.mark.parametrize("kernel", GREY + BINARY)
@pytest.mark.parametrize("fp", [np.ones(3), np.ones((3, 3, 3)), np.zeros((3, 3)),
                                np.ones((3, 3), complex)], ids=["1d", "3d", "all-false", "complex"])
def test_bad_footprint(kernel, fp):
    with pytest.raises(ValueError, match="footprint"):
        ours(kernel, np.ones((6, 6), np.uint8), fp)


@pytest.mark.parametrize("kernel", GREY + BINARY)
def test_bad_backend_and_mode(kernel):
    img = np.ones((6, 6), np.uint8)
    with pytest.raises(ValueError, match="backend"):
        ours(kernel, img, backend="fortran")
    with pytest.raises(ValueError, match="mode"):
        ours(kernel, img, mode="bogus")
    from medfeat.kernels import BackendUnavailableError, available_backends

    if "cuda" not in available_backends():  # no GPU here: a clear refusal, never a CPU fallback
        with pytest.raises(BackendUnavailableError):
            ours(kernel, img, backend="cuda")


@pytest.mark.parametrize("kernel", BINARY)
def test_binary_refuses_grey_modes(kernel):
    with pytest.raises(ValueError, match="mode"):
        ours(kernel, np.ones((6, 6), bool), mode="reflect")


@pytest.mark.parametrize("kernel", GREY)
@pytest.mark.parametrize("cval", [-1, 256, np.nan, "0", np.inf], ids=str)
def test_bad_cval(kernel, cval):
    with pytest.raises(ValueError, match="cval"):
        ours(kernel, np.ones((6, 6), np.uint8), mode="constant", cval=cval)


@pytest.mark.parametrize("kernel", GREY + BINARY)
def test_bad_out(kernel):
    img = np.ones((6, 6), np.uint8)
    good = ours(kernel, img)
    with pytest.raises(ValueError, match="out"):
        ours(kernel, img, out=np.empty((6, 5), good.dtype))
    with pytest.raises(ValueError, match="out"):
        ours(kernel, img, out=np.empty((6, 6), np.float64))
    with pytest.raises(ValueError, match="out"):
        ours(kernel, img, out=[[0] * 6] * 6)


def test_footprint_sequence_checked():
    with pytest.raises(ValueError, match="footprint"):
        M.erosion(np.ones((6, 6), np.uint8), ((np.ones((3, 3, 3)), 1),))


def test_scipy_generate_binary_structure_is_the_default():
    img = load_real("camera")
    cross = ndi.generate_binary_structure(2, 1)
    np.testing.assert_array_equal(M.erosion(img), M.erosion(img, cross))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_multithreaded_path_on_a_large_real_image(backend):
    # Jobs above SERIAL_WORK run on several threads; the real images above are mostly below it, so
    # the full fundus green channel (1411²) covers the parallel branch of both kernels (runs for a
    # disk, van Herk across rows for a tall rectangle) in grey and binary morphology.
    import skimage.data

    img = np.ascontiguousarray(skimage.data.retina()[:, :, 1])
    assert img.size * 3 > _minmax.SERIAL_WORK
    u16 = to_dtype(img, np.uint16)
    assert_same(M.erosion(img, M.disk(3), backend=backend), ref("erosion", img, skm.disk(3)))
    box = np.ones((9, 3), np.uint8)
    assert_same(M.dilation(u16, box, backend=backend), ref("dilation", u16, box))
    assert_same(M.opening(img, M.diamond(2), backend=backend), ref("opening", img, skm.diamond(2)))
    mask = img > 60
    assert_same(M.binary_closing(mask, M.disk(2), backend=backend),
                ref("binary_closing", mask, skm.disk(2)))


@pytest.mark.parametrize("kernel", GREY + BINARY)
def test_shared_parameter_descriptions_are_filled_in(kernel):
    doc = getattr(M, kernel).__doc__
    assert "%(" not in doc
    for name in ("batch", "backend", "out"):
        assert f"\n    {name} : " in doc, name
    assert "one call instead of N" in doc


# --------------------------------------------------------------------------------------------------
# the streamed run kernel: chunks, van Herk blocks of boxes, run lengths, NaN found on the way


def _random_image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "f":
        return rng.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=ALL_DTYPE_IDS)
def test_boxes_around_van_herk_blocks(dtype):
    # Tall boxes combine their run rows by van Herk / Gil-Werman in blocks of `rows` output rows:
    # heights below, at and just past one and two blocks, odd and even sides (padded at the front),
    # widths whose runs take the direct, doubling and power-of-two paths.
    for height in (1, 4, 5, 6, 9, 10, 11, 19, 20, 21):
        img = _random_image((height, 37), dtype, seed=height)
        for rows, cols in ((5, 1), (5, 3), (6, 2), (9, 4), (10, 15), (16, 8), (25, 1)):
            fp = np.ones((rows, cols), np.uint8)
            for kernel in ("erosion", "dilation"):
                for mode in ("reflect", "constant", "wrap"):
                    assert_same(ours(kernel, img, fp, mode=mode, cval=1),
                                ref(kernel, img, fp, mode=mode, cval=1))


@pytest.fixture(params=["planes", "rows"])
def run_path(request, monkeypatch):
    """Footprints of one plane on small planes take the whole-plane kernel; ``"rows"`` sends
    them through the streamed row kernel instead, which large images take."""
    from medfeat._kernels.numba_cpu import morphology as K

    if request.param == "rows":
        monkeypatch.setattr(K, "PLANE_BYTES", 0)
    return request.param


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=ALL_DTYPE_IDS)
def test_run_lengths_share_one_pyramid(dtype, run_path):
    # Footprints whose rows have several run lengths, 1 (the row itself), 2 and 3 (read straight
    # from the image) and longer ones (doubling levels shared among them), with holes (two runs in
    # a row), rows shifted off the centre, and odd and even numbers of runs (combined three at a
    # time, the last one or two on their own).
    holes = np.zeros((5, 13), np.uint8)
    holes[0, :] = 1
    holes[1, 2:4] = holes[1, 6:13] = 1
    holes[2, 6] = 1
    holes[3, :3] = holes[3, 5:8] = 1
    holes[4, 12] = 1
    img = _random_image((41, 53), dtype, seed=1)
    for fp in (skm.disk(5), skm.diamond(4), skm.octagon(3, 2), holes, holes[::-1, ::-1],
               holes[:4], holes[1:], np.ones((2, 3), np.uint8), np.ones((1, 2), np.uint8)):
        for kernel in GREY:
            for mode in ("reflect", "nearest", "max", "constant"):
                assert_same(ours(kernel, img, fp, mode=mode, cval=2),
                            ref(kernel, img, fp, mode=mode, cval=2))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=ALL_DTYPE_IDS)
def test_small_boxes(dtype):
    # Boxes up to 3 wide and VH_COL - 1 high take their own kernel (rows down the box, then
    # shifted columns): images of 1 to 3 pixels a side (border rows and columns everywhere, no
    # full row), odd and even sides (padded at the front, so the centre is off the middle), every
    # mode, a one-column box straight into the output.
    assert _minmax.VH_COL == 5 and _minmax.SMALL_X == 3
    boxes = [(r, c) for r in (1, 2, 3, 4) for c in (1, 2, 3)]
    for shape in ((1, 1), (1, 2), (2, 1), (2, 3), (3, 3), (3, 1), (1, 3), (7, 5), (9, 67)):
        img = _random_image(shape, dtype, seed=sum(shape))
        for rows, cols in boxes:
            fp = np.ones((rows, cols), np.uint8)
            for mode in GREY_MODES:
                for kernel in GREY:
                    assert_same(ours(kernel, img, fp, mode=mode, cval=1),
                                ref(kernel, img, fp, mode=mode, cval=1))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float64, np.bool_],
                         ids=["uint8", "int16", "float64", "bool"])
def test_small_boxes_in_3d_and_batches(dtype):
    # cubes: the rows of each plane, then the plane axis as a one-column box over (planes, rows
    # x columns); batches: the planes are separate images
    vol = _random_image((3, 5, 7), dtype, seed=4)
    for fp in (np.ones((2, 2, 2)), np.ones((3, 3, 3)), np.ones((4, 1, 1)), np.ones((1, 3, 2)),
               np.ones((3, 1, 3))):
        for mode in ("reflect", "constant", "wrap", "max"):
            for kernel in GREY:
                assert_same(ours(kernel, vol, fp, mode=mode, cval=1),
                            ref(kernel, vol, fp, mode=mode, cval=1))
    stack = _random_image((4, 6, 9), dtype, seed=5)
    for fp in (np.ones((3, 3)), np.ones((2, 2)), np.ones((1, 3)), np.ones((4, 1))):
        for kernel in GREY:
            got = ours(kernel, stack, fp, batch=True, mode="nearest")
            for i in range(len(stack)):
                assert_same(got[i], ref(kernel, stack[i], fp, mode="nearest"))


def test_small_boxes_take_the_small_kernel(monkeypatch):
    # the tests above would pass on the run kernel too: check the planner's routing
    calls = []
    small = _minmax._small
    monkeypatch.setattr(_minmax, "_small", lambda *a, **k: calls.append(a[3:5]) or small(*a, **k))
    img = _random_image((20, 30), np.uint8)
    for fp in (np.ones((3, 3)), np.ones((4, 2)), np.ones((3, 4)), np.ones((5, 3)), skm.disk(1)):
        M.erosion(img, fp)
    assert calls == [(3, 3), (4, 2)]


@pytest.mark.parametrize("nchunks", [1, 2, 3, 7])
def test_small_kernel_chunks_give_the_same_result(nchunks):
    from medfeat._kernels.numba_cpu import morphology as K

    img = _random_image((3, 11, 13), np.float32, seed=nchunks)
    nz, ny, nx = img.shape
    ymap = _minmax._axis_map(ny, -1, ny + 1, "mirror")
    xmap = _minmax._axis_map(nx, -1, nx + 1, "mirror")
    got = np.empty_like(img)
    want = ndi.grey_dilation(img, footprint=np.ones((1, 3, 3)), mode="mirror")
    for nthreads in (1, 2, 3):
        got[...] = 0
        args = (img, ymap, xmap, 1, np.float32(0), True, True, got)
        assert K._run_chunks(K._small_chunk, args, nz * ny, 3, nthreads, nchunks) == 0
        np.testing.assert_array_equal(got, want)
    img[2, 10, 12] = np.nan
    assert K._run_chunks(K._small_chunk, args, nz * ny, 3, 2, nchunks) == 1


@pytest.mark.parametrize("nchunks", [1, 2, 3, 5, 16])
@pytest.mark.parametrize("vh", [False, True], ids=["runs", "van-herk"])
def test_kernel_chunks_give_the_same_result(nchunks, vh):
    # However the rows are split into chunks (each recomputes its halo) and among threads, the
    # result is the same; planes are split too, so a chunk can start and end inside a plane.
    from medfeat._kernels.numba_cpu import morphology as K

    img = _random_image((3, 23, 29), np.int16, seed=nchunks)
    box = np.ones((1, 7, 5), bool) if vh else skm.disk(3).astype(bool)[None]
    origin = [0, -(box.shape[1] // 2), -(box.shape[2] // 2)]
    nz, ny, nx = img.shape
    kz, ky, kx = box.shape
    maps = [_minmax._axis_map(n, o, n + o + k - 1, "reflect")
            for n, o, k in ((nz, origin[0], kz), (ny, origin[1], ky), (nx, origin[2], kx))]
    lengths, pairs, runs = _minmax._run_plan(box.shape, box.tobytes())
    got = np.empty_like(img)
    common = (img, *maps, -origin[2], np.int16(0), lengths, pairs)
    kernel, args = ((K._box_chunk, (*common, False, False, got)) if vh
                    else (K._runs_chunk, (*common, runs, False, False, got)))
    for nthreads in (1, 2, 3):
        got[...] = 0
        assert K._run_chunks(kernel, args, nz * ny, ky, nthreads, nchunks) == 0
        want = ndi.grey_erosion(img, footprint=box, mode="reflect")
        np.testing.assert_array_equal(got, want)


def test_batch_of_boxes_and_disks_equals_each_image(run_path):
    stack = _random_image((4, 30, 31), np.uint16, seed=3)
    for fp in (np.ones((7, 3), np.uint8), skm.disk(2)):
        for kernel in GREY:
            got = ours(kernel, stack, fp, batch=True)
            for i in range(len(stack)):
                assert_same(got[i], ref(kernel, stack[i], fp))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("where", [(0, 0), (0, -1), (-1, 0), (-1, -1), (17, 5), (33, 40)],
                         ids=str)
def test_nan_anywhere_raises(dtype, where, run_path):
    # NaN is found by the kernel as it reads the rows, or by a separate pass where the footprint
    # leaves rows unread (all True elements above the centre, a 3-D footprint): every row counts.
    img = _random_image((70, 45), dtype)
    img[where] = np.nan
    top_only = np.zeros((5, 3), np.uint8)
    top_only[0] = 1
    for fp in (np.ones((3, 3)), np.ones((15, 15)), skm.disk(3), top_only, top_only.T,
               skm.disk(1, decomposition="sequence"), np.ones((1, 3)), np.ones((3, 1)),
               np.ones((2, 2)), np.ones((4, 3)), np.ones((1, 2))):
        for kernel in GREY:
            with pytest.raises(ValueError, match="NaN"):
                ours(kernel, img, fp)
    vol = np.repeat(img[None], 3, axis=0)
    for fp in (skm.ball(1), np.ones((3, 3, 3)), np.ones((1, 5, 5)), np.ones((3, 1, 1))):
        with pytest.raises(ValueError, match="NaN"):
            ours("erosion", vol, fp)
    with pytest.raises(ValueError, match="NaN"):
        ours("erosion", img, [(np.ones((3, 3)), 0)])


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=ALL_DTYPE_IDS)
def test_whole_plane_kernel_on_tiny_and_uneven_planes(dtype):
    # The plane's extended rows side by side in one row: planes of 1 to a few pixels a side (the
    # runs' shifts reach past a row into the next, whose values must never be read), lengths 1, 2,
    # 3 and longer, holes, off-centre rows, every mode; batches whose planes are separate images.
    holes = np.zeros((4, 9), np.uint8)
    holes[0, :2] = holes[0, 5:] = 1
    holes[1, 4] = holes[2, :] = holes[3, 1:4] = 1
    fps = (skm.disk(1), skm.disk(2), skm.disk(4), skm.diamond(3), holes, holes[::-1, ::-1],
           np.ones((1, 2), np.uint8), np.ones((2, 5), np.uint8))
    for shape in ((1, 1), (1, 6), (5, 1), (2, 3), (4, 9), (13, 7)):
        img = _random_image(shape, dtype, seed=sum(shape))
        for fp in fps:
            for mode in GREY_MODES:
                for kernel in ("erosion", "dilation"):
                    assert_same(ours(kernel, img, fp, mode=mode, cval=1),
                                ref(kernel, img, fp, mode=mode, cval=1))
    stack = _random_image((5, 28, 28), dtype, seed=9)
    for fp in fps[:3]:
        for kernel in GREY:
            got = ours(kernel, stack, fp, batch=True)
            for i in range(len(stack)):
                assert_same(got[i], ref(kernel, stack[i], fp))


def test_small_planes_take_the_whole_plane_kernel(monkeypatch):
    # the tests above pass on the row kernel too: check the routing (one-plane footprints on
    # small planes; not 3-D footprints, boxes, or planes over PLANE_BYTES)
    from medfeat._kernels.numba_cpu import morphology as K

    calls = []
    planes = K._planes_chunk
    monkeypatch.setattr(K, "_planes_chunk",
                        lambda *a: calls.append(a[-3].shape) or planes(*a))
    stack = _random_image((6, 28, 28), np.uint8)
    M.opening(stack, skm.disk(2), batch=True)
    assert calls == [(6, 28, 28)] * 2
    calls.clear()
    M.erosion(stack, skm.ball(1))
    M.erosion(stack, np.ones((7, 7)), batch=True)
    monkeypatch.setattr(K, "PLANE_BYTES", 28 * 28 * 4)
    M.erosion(stack, skm.disk(2), batch=True)
    assert calls == []


@pytest.mark.parametrize("nchunks", [1, 2, 3, 7])
def test_whole_plane_kernel_chunks_give_the_same_result(nchunks):
    from medfeat._kernels.numba_cpu import morphology as K

    img = _random_image((7, 11, 13), np.float32, seed=nchunks)
    box = skm.disk(2).astype(bool)[None]
    nz, ny, nx = img.shape
    ymap = _minmax._axis_map(ny, -2, ny + 2, "mirror")
    xmap = _minmax._axis_map(nx, -2, nx + 2, "mirror")
    lengths, pairs, runs = _minmax._run_plan(box.shape, box.tobytes())
    got = np.empty_like(img)
    want = ndi.grey_dilation(img, footprint=box, mode="mirror")
    args = (img, ymap, xmap, 2, np.float32(0), lengths, pairs, runs, True, True, got)
    for nthreads in (1, 2, 3):
        got[...] = 0
        assert K._run_chunks(K._planes_chunk, args, nz, 1, nthreads, nchunks, rows=ny) == 0
        np.testing.assert_array_equal(got, want)
    img[6, 10, 12] = img[0, 0, 0] = np.nan
    assert K._run_chunks(K._planes_chunk, args, nz, 1, 2, nchunks, rows=ny) == 2


def test_kernels_called_from_several_threads_at_once_agree_with_skimage():
    # the run kernel hands its chunks to one process-wide pool; callers on several threads share
    # it (a caller must never find it shut down or replaced under it)
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    images = [rng.integers(0, 255, (600, 640), dtype=np.uint8) for _ in range(4)]
    fps = [skm.disk(3), np.ones((9, 9), bool), skm.disk(1), np.ones((3, 15), bool)]
    expected = [skm.erosion(im, fp) for im, fp in zip(images, fps)]

    def job(i):
        return np.array_equal(M.erosion(images[i % 4], fps[i % 4]), expected[i % 4])

    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(job, range(16)))
