"""glcm_features: IBSI-1 digital phantom (3D merged, 2D averaged values; 2D merged matrices),
agreement with scikit-image's graycomatrix/graycoprops, hand-computed cases, errors."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

from medfeat.features import GLCM_NAMES, glcm_features, glcm_matrices

from .ibsi_phantom import GLCM_2D_MERGED_MATRICES, GLCM_REF, MASK, PHANTOM


@pytest.mark.parametrize("aggregation", sorted(GLCM_REF))
def test_glcm_ibsi_phantom(aggregation):
    f = glcm_features(PHANTOM, MASK, aggregation=aggregation)
    ref = GLCM_REF[aggregation]
    assert set(ref) == set(GLCM_NAMES)
    bad = {k: (f[k], v) for k, v in ref.items() if float(f"{f[k]:.3g}") != v}
    assert not bad


def test_glcm_ibsi_phantom_slice_merged_matrices():
    mats, grey = glcm_matrices(PHANTOM, MASK, aggregation="2d_merged")
    assert grey.tolist() == [1, 2, 3, 4, 5, 6]
    for m, ref in zip(mats, GLCM_2D_MERGED_MATRICES):
        got = {(int(grey[a]), int(grey[b])): int(m[a, b]) for a, b in zip(*np.nonzero(m))}
        assert got == ref


def test_glcm_matrix_counts_3d():
    mats, _ = glcm_matrices(PHANTOM, MASK, aggregation="3d_average")
    assert mats.shape == (13, 6, 6)
    merged, _ = glcm_matrices(PHANTOM, MASK, aggregation="3d_merged")
    np.testing.assert_array_equal(merged[0], mats.sum(axis=0))
    assert all(np.array_equal(m, m.T) for m in mats)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_glcm_agrees_with_skimage(seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 8, size=(23, 31)).astype(np.uint8)
    angles = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]
    for d in (1,):
        P = graycomatrix(img, [d], angles, levels=8, symmetric=True, normed=True)
        f = glcm_features(img, distance=d)
        assert f["contrast"] == pytest.approx(graycoprops(P, "contrast").mean())
        assert f["dissimilarity"] == pytest.approx(graycoprops(P, "dissimilarity").mean())
        assert f["inverse_difference_moment"] == pytest.approx(
            graycoprops(P, "homogeneity").mean())
        assert f["angular_second_moment"] == pytest.approx(graycoprops(P, "ASM").mean())
        assert f["correlation"] == pytest.approx(graycoprops(P, "correlation").mean())


def test_glcm_axis_matrices_match_skimage_at_distance_3():
    # scikit-image rounds diagonal offsets (Euclidean); IBSI scales them (Chebyshev), so only the
    # axis directions are the same matrices at distances above 1.
    img = np.random.default_rng(5).integers(0, 6, size=(17, 19)).astype(np.uint8)
    img[0, 0], img[0, 1] = 0, 5
    P = graycomatrix(img, [3], [0, np.pi / 2], levels=6, symmetric=True)
    mats, _ = glcm_matrices(img, distance=3)
    np.testing.assert_array_equal(mats[0], P[:, :, 0, 0])
    np.testing.assert_array_equal(mats[2], P[:, :, 0, 1])


def test_glcm_by_hand():
    # [[1, 2], [2, 1]]: horizontal and vertical pairs are all (1,2); diagonals (1,1) and (2,2).
    f = glcm_features(np.array([[1, 2], [2, 1]]))
    assert f["contrast"] == pytest.approx(0.5)
    assert f["joint_average"] == pytest.approx(1.5)
    m, _ = glcm_matrices(np.array([[1, 2], [2, 1]]), aggregation="2d_merged")
    assert m[0].tolist() == [[2, 4], [4, 2]]


def test_distance_and_levels_change_the_output():
    img = np.random.default_rng(3).normal(size=(30, 30))
    a = glcm_features(img, levels=8)
    assert glcm_features(img, levels=8, distance=3) != a
    assert glcm_features(img, levels=16) != a
    assert glcm_features(img, bin_width=0.5) != a


def test_mask_restricts_pairs():
    img = np.array([[1, 1, 5, 5]] * 4)
    left = np.zeros(img.shape, bool)
    left[:, :2] = True
    f = glcm_features(img, left, aggregation="2d_merged")
    assert f["contrast"] == 0 and f["joint_average"] == 1


def test_constant_and_pairless_regions_are_finite():
    f = glcm_features(np.full((6, 6), 3))
    assert f["correlation"] == 1 and f["contrast"] == 0
    assert all(np.isfinite(v) for v in f.values())
    g = glcm_features(np.array([[4]]))
    assert all(v == 0 for v in g.values())


def test_2d_aggregations_on_a_volume_work_slicewise():
    vol = np.random.default_rng(4).integers(1, 5, size=(3, 10, 10))
    avg = glcm_features(vol, aggregation="2d_average")
    manual = np.mean([[glcm_features(s)[k] for k in GLCM_NAMES] for s in vol], axis=0)
    np.testing.assert_allclose([avg[k] for k in GLCM_NAMES], manual)


def test_glcm_errors():
    with pytest.raises(ValueError, match="integers"):
        glcm_features(np.array([[0.5, 1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="aggregation"):
        glcm_features(np.ones((3, 3)), aggregation="4d")
    with pytest.raises(ValueError, match="3-D"):
        glcm_features(np.ones((3, 3)), aggregation="3d_merged")
    with pytest.raises(ValueError, match="distance"):
        glcm_features(np.ones((3, 3)), distance=0)
    with pytest.raises(ValueError):
        glcm_features(np.array([[np.nan, 1.0]]), levels=4)
