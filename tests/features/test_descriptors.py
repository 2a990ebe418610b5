"""Descriptors on the kernels: hand-checkable images, masks, 3-D, scale invariance, errors."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import filters, morphology

from medfeat.features import (canny_density, density_summary, edge_stats, granulometry,
                              threshold_fractions)


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
                                density_summary])
def test_bad_input_raises(fn):
    for bad in (np.zeros((0, 4)), np.array([[np.inf, 1.0]]), np.array([[1j, 2]])):
        with pytest.raises(ValueError):
            fn(bad)
