"""The FeatureExtractor's whole-stack path gives every image the per-image path's values bit for
bit: real images (pydicom's CT, scikit-image's camera, PneumoniaMNIST and AdrenalMNIST3D when
present), with and without masks, integer and float dtypes, images and volumes, colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from medfeat.features import FAMILIES, FeatureExtractor
from medfeat.features import _fast, first_order
from medfeat.features.extractor import _image_features

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ALL = tuple(FAMILIES)


def _per_image(X, masks=None, families=ALL, bins=32, distance=1):
    return np.stack([_image_features(X[i], families, bins, distance, "auto",
                                     mask=None if masks is None else masks[i])
                     for i in range(len(X))])


def _assert_same_bits(got, ref):
    assert got.shape == ref.shape
    bad = np.argwhere(got.view(np.uint64) != ref.view(np.uint64))
    assert bad.size == 0, f"differ at (image, feature) {bad[:5].tolist()}"


def _check(X, masks=None, families=ALL, n_jobs=1, **kw):
    ref = _per_image(X, masks, families, **kw)
    got = FeatureExtractor(families=list(families), n_jobs=n_jobs, **kw).fit(X).transform(
        X, masks=masks)
    _assert_same_bits(got, ref)
    return got


def _camera_crops(n=12, size=24):
    import skimage.data

    cam = skimage.data.camera()
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(0, cam.shape[0] - size, (2, n))
    return np.stack([cam[y:y + size, x:x + size] for y, x in zip(ys, xs)])


def _masks(X, seed=0):
    """Masks of three kinds: above the image's median, a box, scattered pixels."""
    rng = np.random.default_rng(seed)
    m = X > np.median(X.reshape(len(X), -1), axis=1).reshape((-1,) + (1,) * (X.ndim - 1))
    m[1::3] = False
    m[1::3, 2:-3, 3:-2] = True
    m[2::3] = rng.random(m[2::3].shape) < 0.3
    m.reshape(len(X), -1)[:, 0] = True
    return m


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64", "int64"])
def test_camera_crops_every_dtype(dtype):
    X = _camera_crops().astype(np.float64)
    if dtype == "uint16":
        X = X * 257 + 3
    elif dtype == "int16":
        X = X * 8 - 1024
    elif dtype.startswith("float"):
        X = (X / 255.0) ** 1.3
    X = X.astype(dtype)
    _check(X)
    _check(X, _masks(X))


def test_ct_slice_with_masks_and_parameters():
    pydicom = pytest.importorskip("pydicom")
    ct = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm")).pixel_array
    X = np.stack([ct[:64, :64], ct[64:, 64:], ct[32:96, 16:80], ct[::2, ::2]]).astype(np.int16)
    _check(X)
    _check(X, _masks(X, seed=1))
    _check(X, families=("intensity", "histogram", "glcm"), bins=16, distance=2)


def test_constant_images_and_tiny_regions():
    X = _camera_crops(6, 16)
    X[0] = 7                                        # constant image
    m = np.zeros(X.shape, bool)
    m[:, 5, 5] = True                               # one pixel: no co-occurring pair
    m[3, 5, 6] = True                               # one horizontal pair only
    m[4, :, 8] = True                               # one column: vertical pairs only
    _check(X)
    _check(X, m)


def test_volumes_from_ct_and_camera():
    X = _camera_crops(18, 16).reshape(3, 6, 16, 16)
    _check(X)
    _check(X, _masks(X))
    _check((X / 255.0).astype(np.float32))


def test_colour_channels():
    import skimage.data

    X = np.stack([skimage.data.astronaut()[y:y + 20, x:x + 20] for y in (0, 90, 200)
                  for x in (10, 150)])                          # (6, 20, 20, 3) colour crops
    ref = np.stack([np.concatenate([_image_features(np.ascontiguousarray(im[..., c]), ALL, 32, 1,
                                                    "auto") for c in range(3)]) for im in X])
    got = FeatureExtractor(families=list(ALL), channel_axis=-1).fit(X).transform(X)
    _assert_same_bits(got, ref)


def test_two_workers_and_small_chunks(monkeypatch):
    from medfeat.features import extractor

    X = _camera_crops(20, 20)
    monkeypatch.setattr(extractor, "_MAX_CHUNK", 3)           # several chunks of odd sizes
    _check(X, n_jobs=2)


@pytest.mark.skipif(not (DATA / "pneumoniamnist.npz").exists(), reason="no shared data")
def test_pneumoniamnist():
    X = np.load(DATA / "pneumoniamnist.npz")["val_images"][:96]
    _check(X, n_jobs=2)
    _check(X[:48], _masks(X[:48]))


@pytest.mark.skipif(not (DATA / "adrenalmnist3d.npz").exists(), reason="no shared data")
def test_adrenalmnist3d():
    V = np.load(DATA / "adrenalmnist3d.npz")["val_images"][:4]
    _check(V)
    _check(V[:2], V[:2] > 60)


# --- the compiled copies of NumPy's arithmetic the stack path relies on


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(0, 3000), elements=st.floats(-1e9, 1e9)))
def test_numpy_sum_is_numpys_sum(v):
    assert _fast.numpy_sum(v) == v.sum()
    assert np.array_equal(_fast.segment_sums(v, np.array([0, v.size // 3, v.size])),
                          [v[:v.size // 3].sum(), v[v.size // 3:].sum()])


def test_numpy_sum_long_and_signed_zero():
    v = np.random.default_rng(2).normal(size=100_003) * 1e6
    assert _fast.numpy_sum(v) == v.sum()
    assert str(_fast.numpy_sum(np.array([-0.0]))) == str(np.array([-0.0]).sum())


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.integers(1, 400)))
def test_segment_stats_equal_first_order_stats(x):
    v, w = first_order._weighted(x)
    ref = first_order._stats(v, w)
    vals, wts, starts = _fast.value_segments(x[None])
    got = _fast.segment_stats(vals, wts, starts)[0]
    names = {"minimum": "minimum", "maximum": "maximum", "median": "median", "mean": "mean",
             "variance": "m2", "mad": "mad", "rmad": "rmad", "medad": "medad", "_n": "n",
             "_energy": "energy", "p10": "p10", "p90": "p90"}
    for theirs, mine in names.items():
        assert got[_fast.STAT_COLUMNS.index(mine)] == ref[theirs], theirs


@pytest.mark.parametrize("bins", [1, 2, 7, 32])
def test_compiled_glcm_features_equal_the_numpy_statement(bins):
    from medfeat.features import texture

    X = _camera_crops(10, 24)
    V = X[:8].reshape(2, 4, 24, 24)
    for stack, dirs in ((X, 4), (V, 13)):
        flat = stack.reshape(len(stack), -1)
        lo, hi = flat.min(axis=1).astype(float), flat.max(axis=1).astype(float)
        offsets = texture._DIRS_3D if stack.ndim == 4 else None
        mats = _fast.cooc_stack(stack, None, lo, hi, bins, 1, offsets).reshape(-1, bins, bins)
        grey = np.arange(1.0, bins + 1)
        for per in (None, dirs):
            _assert_same_bits(texture._features(mats, grey, per),
                              texture._features_numpy(mats, grey, per))


def test_log2_of_positive_entries_equals_log2_in_place():
    """The compiled GLCM sums take ``numpy.log2`` of the positive entries packed together; it
    must give each entry what ``log2`` in place (``where=q > 0``) gives it."""
    from medfeat.features import texture

    rng = np.random.default_rng(3)
    q = rng.random((5, 9, 9)) ** 4
    q[q < 0.05] = 0
    got = np.zeros_like(q)
    got[q > 0] = np.log2(q[q > 0])
    _assert_same_bits(got, texture._log2(q))


@pytest.mark.parametrize("ng", [1, 3, 16])
def test_compiled_glcm_features_on_sparse_and_asymmetric_counts(ng):
    from medfeat.features import texture

    rng = np.random.default_rng(ng)
    mats = rng.integers(0, 5, (12, ng, ng)) * (rng.random((12, ng, ng)) < 0.3)
    mats[:, 0, 0] += 1                                   # every matrix has a pair
    mats[3] = 0
    mats[3, ng - 1, 0] = 7                               # one off-diagonal cell, asymmetric
    grey = np.arange(1.0, ng + 1)
    for per in (None, 4):
        _assert_same_bits(texture._features(mats, grey, per),
                          texture._features_numpy(mats, grey, per))
