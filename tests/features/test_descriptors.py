"""Descriptors on the kernels: hand-checkable images, masks, 3-D, scale invariance, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage import data, filters, morphology

from medfeat.features import (FeatureExtractor, canny_density, density_summary, edge_stats,
                              granulometry, threshold_fractions, zone_names, zone_stats)


def _square(n=32, lo=0, hi=1, a=8, b=24):
    img = np.full((n, n), lo, np.float64)
    img[a:b, a:b] = hi
    return img


def test_edge_stats_match_skimage_on_rescaled_image():
    img = np.random.default_rng(0).integers(0, 200, size=(24, 24)).astype(np.uint8)
    unit = (img - img.min()) / (img.max() - img.min())
    for op, ref in (("sobel", filters.sobel), ("prewitt", filters.prewitt)):
        f = edge_stats(img, operator=op)
        assert f["mean"] == pytest.approx(ref(unit).mean(), rel=1e-6)
        assert f["max"] == pytest.approx(ref(unit).max(), rel=1e-6)


def test_edge_stats_are_scale_free_and_masked():
    img = _square()
    assert edge_stats(img) == pytest.approx(edge_stats(img * 1000 + 5))
    inner = np.zeros(img.shape, bool)
    inner[12:20, 12:20] = True
    assert edge_stats(img, inner)["max"] == 0
    with pytest.raises(ValueError, match="operator"):
        edge_stats(img, operator="roberts")


def test_canny_density_square_outline():
    d = canny_density(_square())["density"]
    # The outline of a 16 x 16 square is about 4 * 16 pixels out of 32 * 32.
    assert 0.04 < d < 0.1
    assert canny_density(np.zeros((8, 8)))["density"] == 0
    vol = np.stack([_square(), _square()])
    assert canny_density(vol)["density"] == pytest.approx(d)


def test_threshold_fractions_two_levels():
    img = np.zeros((10, 10), np.uint8)
    img[:, :3] = 200
    f = threshold_fractions(img)
    assert f["otsu_fraction"] == pytest.approx(0.3) and f["maxent_fraction"] == pytest.approx(0.3)
    assert 0 <= f["otsu_level"] < 1
    mask = np.zeros(img.shape, bool)
    mask[:, 2:6] = True
    assert threshold_fractions(img, mask)["otsu_fraction"] == pytest.approx(0.25)
    assert all(v == 0 for v in threshold_fractions(np.ones((4, 4))).values())


def test_granulometry_against_skimage_openings():
    rng = np.random.default_rng(1)
    img = rng.random((30, 30))
    g = granulometry(img, radii=(1, 2))
    work = img - img.min()
    s0 = work.sum()
    s1 = morphology.opening(work, morphology.disk(1)).sum()
    s2 = morphology.opening(work, morphology.disk(2)).sum()
    assert g["r1"] == pytest.approx((s0 - s1) / s0, rel=1e-5)
    assert g["r2"] == pytest.approx((s1 - s2) / s0, rel=1e-5)
    assert granulometry(np.ones((5, 5))) == {"r1": 0.0, "r2": 0.0, "r4": 0.0}
    with pytest.raises(ValueError, match="radii"):
        granulometry(img, radii=(2, 1))


def test_granulometry_3d_uses_balls():
    vol = np.zeros((9, 9, 9))
    vol[4, 4, 4] = 1
    assert granulometry(vol, radii=(1,))["r1"] == pytest.approx(1.0)


def test_density_summary_modes():
    bimodal = np.r_[np.zeros(50), np.ones(50)].reshape(10, 10)
    assert density_summary(bimodal)["n_modes"] == 2
    normal = np.random.default_rng(2).normal(size=(40, 40))
    f = density_summary(normal)
    assert f["n_modes"] == 1 and 0.3 < f["peak_level"] < 0.7
    assert all(v == 0 for v in density_summary(np.ones((3, 3))).values())


@pytest.mark.parametrize("fn", [edge_stats, canny_density, threshold_fractions, granulometry,
                                density_summary, zone_stats])
def test_bad_input_raises(fn):
    for bad in (np.zeros((0, 4)), np.array([[np.inf, 1.0]]), np.array([[1j, 2]])):
        with pytest.raises(ValueError):
            fn(bad)


def _cell_labels(shape, cells):
    """Cell index of every pixel (pixel i of an axis of n in cell i * cells // n), C order."""
    idx = np.meshgrid(*[np.arange(n) * cells // n for n in shape], indexing="ij")
    return np.ravel_multi_index(idx, (cells,) * len(shape))


@pytest.mark.parametrize("shape", [(512, 512), (37, 53)])
@pytest.mark.parametrize("cells", [4, 3])
def test_zone_stats_match_scipy_per_cell(shape, cells):
    # a real radiograph-like image (skimage's camera), cropped to sizes that do and do not divide
    img = data.camera()[:shape[0], :shape[1]]
    z = zone_stats(img, cells=cells)
    labels = _cell_labels(img.shape, cells)
    index = np.arange(cells ** 2)
    np.testing.assert_allclose([z[f"mean_{i}"] for i in index],
                               ndimage.mean(img, labels, index), rtol=1e-12)
    np.testing.assert_allclose([z[f"std_{i}"] for i in index],
                               ndimage.standard_deviation(img, labels, index), rtol=1e-9)
    assert list(z) == list(zone_names(2, cells))


def test_zone_stats_volume_and_mask():
    vol = np.random.default_rng(1).normal(1000.0, 50.0, size=(9, 12, 16))
    z = zone_stats(vol, cells=2)
    labels = _cell_labels(vol.shape, 2)
    np.testing.assert_allclose([z[f"mean_{i}"] for i in range(8)],
                               ndimage.mean(vol, labels, np.arange(8)), rtol=1e-12)
    # a mask: the grid covers its bounding box; a cell without region pixels takes the region's
    # mean and zero spread
    img = data.camera().astype(np.float64)
    m = np.zeros(img.shape, bool)
    m[100:300, 200:260] = True
    m[100:200, 200:230] = False                   # the top-left cell of the box is empty
    z = zone_stats(img, m, cells=2)
    box = img[100:300, 200:260]
    inside = m[100:300, 200:260]
    labels = _cell_labels(box.shape, 2)
    for i in (1, 2, 3):
        sel = inside & (labels == i)
        assert z[f"mean_{i}"] == pytest.approx(box[sel].mean(), rel=1e-12)
        assert z[f"std_{i}"] == pytest.approx(box[sel].std(), rel=1e-9)
    assert z["mean_0"] == pytest.approx(img[m].mean(), rel=1e-12) and z["std_0"] == 0.0


def test_zone_stats_short_axis_and_errors():
    z = zone_stats(np.arange(6.0).reshape(2, 3), cells=4)      # cells share pixels
    assert len(z) == 32 and all(np.isfinite(list(z.values())))
    assert z["mean_0"] == 0.0 and z["mean_15"] == 5.0
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="cells"):
            zone_stats(np.ones((4, 4)), cells=bad)


def test_zones_family_is_opt_in_and_matches_the_function():
    X = np.stack([data.camera()[i * 64:(i + 1) * 64, :64] for i in range(3)])
    default = FeatureExtractor().fit(X)
    assert not any(n.startswith("zones__") for n in default.get_feature_names_out())
    fx = FeatureExtractor(families=["intensity", "zones"]).fit(X)
    names = list(fx.get_feature_names_out())
    F = fx.transform(X)
    z = zone_stats(X[2])
    assert F[2, names.index("zones__std_6")] == z["std_6"]
    assert sum(n.startswith("zones__") for n in names) == 32
    V = np.random.default_rng(0).random((2, 8, 8, 8))
    assert FeatureExtractor(families="zones").fit(V).transform(V).shape == (2, 128)
