"""intensity_stats, histogram_stats and discretise: the IBSI-1 digital phantom reference values,
hand-computable cases, 2-D/3-D and mask handling, and errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from medfeat.features import discretise, histogram_stats, intensity_stats

from .ibsi_phantom import HISTOGRAM_REF, INTENSITY_REF, MASK, PHANTOM


def _ibsi_equal(value, ref):
    # IBSI-1 publishes phantom values at three significant figures, without tolerance.
    return float(f"{value:.3g}") == ref


@pytest.mark.parametrize("name", sorted(INTENSITY_REF))
def test_intensity_stats_ibsi_phantom(name):
    value = intensity_stats(PHANTOM, MASK)[name]
    assert _ibsi_equal(value, INTENSITY_REF[name]), (name, value, INTENSITY_REF[name])


@pytest.mark.parametrize("name", sorted(HISTOGRAM_REF))
def test_histogram_stats_ibsi_phantom(name):
    # Fixed bin width 1 and fixed bin number 6 both leave the phantom's levels unchanged.
    for kwargs in ({"bin_width": 1}, {"bins": 6}):
        value = histogram_stats(PHANTOM, MASK, **kwargs)[name]
        assert _ibsi_equal(value, HISTOGRAM_REF[name]), (name, kwargs, value)


def test_intensity_stats_against_scipy_and_numpy():
    rng = np.random.default_rng(0)
    img = rng.gamma(2.0, 30.0, size=(40, 50))
    f = intensity_stats(img)
    x = img.ravel()
    assert f["mean"] == pytest.approx(x.mean())
    assert f["variance"] == pytest.approx(x.var())
    assert f["skewness"] == pytest.approx(stats.skew(x))
    assert f["kurtosis"] == pytest.approx(stats.kurtosis(x))        # excess, Fisher
    assert f["median"] == pytest.approx(np.median(x))
    assert f["p10"] == pytest.approx(np.percentile(x, 10))
    assert f["p90"] == pytest.approx(np.percentile(x, 90))
    assert f["iqr"] == pytest.approx(stats.iqr(x))
    assert f["energy"] == pytest.approx((x ** 2).sum())
    assert f["rms"] == pytest.approx(np.sqrt((x ** 2).mean()))
    assert f["cov"] == pytest.approx(x.std() / x.mean())
    inner = x[(x >= f["p10"]) & (x <= f["p90"])]
    assert f["rmad"] == pytest.approx(np.abs(inner - inner.mean()).mean())
    assert f["medad"] == pytest.approx(np.abs(x - np.median(x)).mean())


def test_intensity_stats_small_case_by_hand():
    f = intensity_stats(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert f["mean"] == 2.5 and f["variance"] == 1.25 and f["range"] == 3.0
    assert f["mad"] == 1.0 and f["energy"] == 30.0 and f["skewness"] == 0.0
    assert f["kurtosis"] == pytest.approx(-1.36)


def test_constant_region_is_finite():
    f = intensity_stats(np.full((5, 5), 7, np.uint8))
    assert f["variance"] == 0 and f["skewness"] == 0 and f["kurtosis"] == 0
    assert all(np.isfinite(v) for v in f.values())
    h = histogram_stats(np.zeros((4, 4)))
    assert h["entropy"] == 0 and h["uniformity"] == 1 and all(np.isfinite(v) for v in h.values())


def test_mask_selects_the_region():
    img = np.arange(16, dtype=np.float64).reshape(4, 4)
    mask = img >= 8
    assert intensity_stats(img, mask)["minimum"] == 8
    assert intensity_stats(img, mask) == intensity_stats(img[2:])


def test_3d_equals_flattened_2d():
    rng = np.random.default_rng(1)
    vol = rng.integers(0, 100, size=(3, 8, 9)).astype(np.uint8)
    assert intensity_stats(vol) == pytest.approx(intensity_stats(vol.reshape(24, 9)))


def test_discretise_fixed_bin_number_and_width():
    lv, ng = discretise(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), bins=2)
    assert lv.tolist() == [1, 1, 2, 2, 2] and ng == 2
    lv, ng = discretise(np.array([10.0, 12.0, 15.0]), bin_width=2.5)
    assert lv.tolist() == [1, 1, 3] and ng == 3
    lv, _ = discretise(np.array([10.0, 12.0]), bin_width=5, min_value=0)
    assert lv.tolist() == [3, 3]


def test_histogram_bins_change_the_output():
    img = np.random.default_rng(2).normal(size=(32, 32))
    assert histogram_stats(img, bins=8)["maximum"] == 8
    assert histogram_stats(img, bins=16)["maximum"] == 16
    assert histogram_stats(img)["maximum"] == 32      # default: 32 bins


def test_histogram_entropy_by_hand():
    h = histogram_stats(np.array([[1, 1], [2, 4]]), bin_width=1)
    assert h["entropy"] == 1.5 and h["uniformity"] == 0.375 and h["mode"] == 1


@pytest.mark.parametrize("bad", [
    np.zeros((0, 3)), np.zeros(5), np.zeros((2, 2, 2, 2)), np.array([[1.0, np.nan]]),
    np.array([[1 + 2j, 3]]), np.array([["a", "b"]]),
])
def test_bad_images_raise(bad):
    with pytest.raises(ValueError):
        intensity_stats(bad)
    with pytest.raises(ValueError):
        histogram_stats(bad)


def test_bad_mask_and_discretisation_raise():
    img = np.ones((3, 3))
    with pytest.raises(ValueError, match="shape"):
        intensity_stats(img, np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="no pixel"):
        intensity_stats(img, np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="exactly one"):
        histogram_stats(img, bins=4, bin_width=1.0)
    with pytest.raises(ValueError):
        histogram_stats(img, bins=0)
    with pytest.raises(ValueError):
        histogram_stats(img, bin_width=-1.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_integer_counting_path_equals_float_path(dtype):
    # Integer images are summarised by counting distinct values, floats by sorting: same result.
    img = np.random.default_rng(7).integers(0, 120, size=(3, 17, 19))
    ref_i = intensity_stats(img.astype(np.float64))
    ref_h = histogram_stats(img.astype(np.float64), bins=10)
    assert intensity_stats(img.astype(dtype)) == pytest.approx(ref_i, rel=1e-12)
    assert histogram_stats(img.astype(dtype), bins=10) == pytest.approx(ref_h, rel=1e-12)
    assert intensity_stats(PHANTOM.astype(dtype), MASK) == pytest.approx(
        intensity_stats(PHANTOM, MASK), rel=1e-12)
