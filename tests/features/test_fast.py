"""Compiled helpers of the features: exact percentiles equal numpy.percentile bit for bit, the
compiled co-occurrence counts equal the NumPy statement of them, integer fast paths equal the
general ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from medfeat.features import glcm_features, granulometry
from medfeat.features import texture
from medfeat.features._fast import cooc_counts, cooc_counts_2d, order_stats, percentiles


def _samples():
    rng = np.random.default_rng(0)
    yield rng.normal(size=5000)                                   # distinct values
    yield rng.integers(0, 4, 3000).astype(float)                  # heavy ties everywhere
    v = np.zeros(65536)
    v[:20000] = rng.random(20000)                                 # a flat background (Sobel)
    yield v
    yield np.r_[rng.random(700), np.ones(900)]                    # ties at the maximum
    yield rng.exponential(size=4000) ** 6                         # long tail
    yield np.r_[1e-310, 2e-310, np.zeros(400)]                    # subnormal range
    yield np.array([3.5])


@pytest.mark.parametrize("i", range(7))
def test_percentiles_equal_numpy_bit_for_bit(i):
    v = list(_samples())[i]
    for qs in ((50, 90), (0, 10, 25, 50, 75, 90, 100), (33.3,), (99.99,)):
        np.testing.assert_array_equal(percentiles(v, qs), np.percentile(v, qs))


@given(arrays(np.float64, st.integers(1, 600),
              elements=st.floats(-1e6, 1e6, allow_nan=False)),
       st.lists(st.floats(0, 100), min_size=1, max_size=5))
def test_percentiles_property(v, qs):
    qs = sorted(qs)
    np.testing.assert_array_equal(percentiles(v, qs), np.percentile(v, qs))


def test_order_stats_equal_sort():
    v = np.random.default_rng(1).normal(size=10000).round(2)      # ties and 4096+ buckets
    ks = [0, 1, 4999, 5000, 9998, 9999]
    np.testing.assert_array_equal(order_stats(v, ks), np.sort(v)[ks])


@pytest.mark.parametrize("distance", [1, 2, 5])
def test_cooc_2d_equals_numpy_reference(distance):
    rng = np.random.default_rng(distance)
    idx = rng.integers(0, 7, size=(19, 23)).astype(np.intp)
    idx[rng.random(idx.shape) < 0.2] = -1                         # outside the mask
    valid = idx >= 0
    got = cooc_counts_2d(idx, distance, 7)
    for k, d in enumerate(texture._DIRS_2D):
        ref = texture._cooc(np.where(valid, idx, 0), valid, (distance * d[0], distance * d[1]), 7)
        np.testing.assert_array_equal(got[k], ref)


def test_cooc_3d_equals_numpy_reference():
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 5, size=(5, 7, 6)).astype(np.intp)
    idx[rng.random(idx.shape) < 0.15] = -1
    valid = idx >= 0
    offsets = [tuple(2 * o for o in d) for d in texture._DIRS_3D]
    got = cooc_counts(idx, offsets, 5)
    for k, off in enumerate(offsets):
        ref = texture._cooc(np.where(valid, idx, 0), valid, off, 5)
        np.testing.assert_array_equal(got[k], ref)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, bool])
def test_glcm_integer_lookup_equals_float_discretisation(dtype):
    rng = np.random.default_rng(4)
    hi = 2 if dtype is bool else 200
    img = rng.integers(0, hi, size=(21, 17)).astype(dtype)
    if dtype is np.int16:
        img = (img.astype(np.int16) - 150) * 7
    mask = rng.random(img.shape) < 0.7
    for m in (None, mask):
        for kw in ({"levels": 16}, {"bin_width": 3.0}):
            a = glcm_features(img, m, **kw)
            b = glcm_features(img.astype(np.float64), m, **kw)
            assert a == b


def test_granulometry_integer_work_equals_float():
    rng = np.random.default_rng(6)
    img = (rng.random((40, 40)) * 180 + 40).astype(np.uint8)
    mask = np.zeros(img.shape, bool)
    mask[5:30, 8:35] = True
    for m in (None, mask):
        a = granulometry(img, m)
        b = granulometry(img.astype(np.float32), m)
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)
    u16 = (rng.random((30, 30)) * 3000 + 500).astype(np.uint16)
    assert granulometry(u16) == pytest.approx(granulometry(u16.astype(np.float64)), rel=1e-12)


def test_wide_int16_range_does_not_wrap():
    # 30000 - (-30000) overflows int16: offsets must be taken in a wider type
    x = np.array([[-30000, 30000, 5], [0, 100, -7]], np.int16)
    f = x.astype(np.float64)
    from medfeat.features import histogram_stats, intensity_stats, threshold_fractions
    assert intensity_stats(x) == intensity_stats(f)
    assert histogram_stats(x) == histogram_stats(f)
    assert glcm_features(x, levels=8) == glcm_features(f, levels=8)
    t = threshold_fractions(x)
    assert 0 < t["otsu_fraction"] < 1 and 0 <= t["otsu_level"] <= 1
    g = glcm_features(np.array([[-20000, 20000], [20000, -20000]], np.int16) // 10000 * 10000,
                      levels=2)
    assert g["contrast"] > 0


@pytest.mark.parametrize("distance", [1, 3])
def test_cooc_stack_2d_equals_numpy_reference(distance):
    # the stack kernel discretises each image over its region's range and counts both ways
    from medfeat.features._fast import cooc_stack

    rng = np.random.default_rng(10 + distance)
    X = rng.integers(0, 200, size=(5, 13, 17)).astype(np.uint8)
    M = rng.random(X.shape) > 0.25
    lo = np.array([X[i][M[i]].min() for i in range(5)], np.float64)
    hi = np.array([X[i][M[i]].max() for i in range(5)], np.float64)
    got = cooc_stack(X, M, lo, hi, 8, distance)
    assert got.shape == (5, 4, 8, 8)
    for i in range(5):
        lv = np.minimum(np.floor(8 * (X[i] - lo[i]) / (hi[i] - lo[i])).astype(np.intp) + 1, 8) - 1
        for k, d in enumerate(texture._DIRS_2D):
            ref = texture._cooc(np.where(M[i], lv, 0), M[i], (distance * d[0], distance * d[1]), 8)
            np.testing.assert_array_equal(got[i, k], ref)
