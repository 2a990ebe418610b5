"""FeatureExtractor: scikit-learn's estimator checks, clone/pickle/Pipeline/GridSearchCV/
cross_val_score, determinism across n_jobs, 2-D and 3-D stacks, feature names, progress, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from medfeat.features import (DEFAULT_FAMILIES, FAMILIES, FeatureExtractor, glcm_features,
                              intensity_stats)
from medfeat.io import make_phantoms

# Every scikit-learn check applies: 2-D (n_samples, n_features) input is read as flattened rows,
# one image of one row each (or of ``image_shape``), so nothing needs to be listed as expected to
# fail. The dict stays here, empty, as the place to record a check that cannot apply.
EXPECTED_FAILED = {}


@parametrize_with_checks([FeatureExtractor(families=["intensity", "histogram", "glcm"]),
                          FeatureExtractor()],
                         expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def phantoms():
    ds = make_phantoms(n=40, size=32, seed=0)
    return ds.train.images, ds.train.labels.ravel()


def test_output_shape_dtype_names(phantoms):
    X, _ = phantoms
    fx = FeatureExtractor().fit(X)
    F = fx.transform(X)
    names = fx.get_feature_names_out()
    assert F.dtype == np.float64 and F.shape == (len(X), len(names))
    assert len(set(names)) == len(names) == sum(len(FAMILIES[f]) for f in DEFAULT_FAMILIES)
    assert np.all(np.isfinite(F))


def test_columns_are_the_feature_functions(phantoms):
    X, _ = phantoms
    fx = FeatureExtractor(families=["glcm", "intensity"], bins=16).fit(X)
    F = fx.transform(X[:3])
    names = list(fx.get_feature_names_out())
    assert names[0] == "intensity__mean"           # family order is FAMILIES', not the argument's
    assert F[1, names.index("intensity__kurtosis")] == pytest.approx(
        intensity_stats(X[1])["kurtosis"])
    assert F[2, names.index("glcm__contrast")] == pytest.approx(
        glcm_features(X[2], levels=16)["contrast"])


def test_parameters_change_the_output(phantoms):
    X, _ = phantoms
    base = FeatureExtractor(families=["glcm"]).fit_transform(X[:4])
    assert not np.allclose(FeatureExtractor(families=["glcm"], bins=8).fit_transform(X[:4]), base)
    assert not np.allclose(
        FeatureExtractor(families=["glcm"], distance=2).fit_transform(X[:4]), base)


def test_deterministic_and_parallel_equal(phantoms):
    X, _ = phantoms
    a = FeatureExtractor().fit_transform(X)
    b = FeatureExtractor(n_jobs=2).fit_transform(X)
    c = FeatureExtractor(n_jobs=-1, backend="auto").fit_transform(X)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, rtol=1e-9, atol=1e-12)


def test_volumes_and_flattened_rows(phantoms):
    X, _ = phantoms
    vols = np.stack([X[:4], X[4:8]], axis=1)          # (4, 2, 32, 32)
    F = FeatureExtractor(families=["intensity", "glcm"]).fit_transform(vols)
    assert F.shape[0] == 4
    flat = X.reshape(len(X), -1)
    fx = FeatureExtractor(families=["intensity", "glcm"], image_shape=(32, 32))
    np.testing.assert_array_equal(fx.fit_transform(flat),
                                  FeatureExtractor(families=["intensity", "glcm"]).fit_transform(X))


def test_clone_pickle_pipeline_search(phantoms):
    X, y = phantoms
    fx = FeatureExtractor(families=["intensity", "histogram", "glcm"])
    fitted = fx.fit(X)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(X[:5]), fitted.transform(X[:5]))
    assert clone(fx).get_params() == fx.get_params()
    pipe = make_pipeline(clone(fx), StandardScaler(), KNeighborsClassifier(3))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,)
    search = GridSearchCV(pipe, {"featureextractor__bins": [8, 16]}, cv=2).fit(X, y)
    assert search.best_params_["featureextractor__bins"] in (8, 16)


def test_progress_bar(phantoms, capsys):
    X, _ = phantoms
    FeatureExtractor(families=["intensity"], progress=True).fit_transform(X[:6])
    assert "6/6" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [
    np.zeros((0, 8, 8)), np.zeros((3, 0, 8)), np.full((2, 4, 4), np.nan),
    np.ones((2, 4, 4), complex), np.zeros((2, 2, 2, 2, 2)), np.zeros(5),
    [np.zeros((4, 4)), np.zeros((5, 5))],
])
def test_bad_input_raises(bad):
    with pytest.raises(ValueError):
        FeatureExtractor(families=["intensity"]).fit(bad)


def test_bad_params_and_shapes_raise(phantoms):
    X, _ = phantoms
    with pytest.raises(ValueError, match="families"):
        FeatureExtractor(families=["shape"]).fit(X)
    with pytest.raises(ValueError, match="bins"):
        FeatureExtractor(bins=0).fit(X)
    with pytest.raises(ValueError, match="image_shape"):
        FeatureExtractor(image_shape=(5, 5)).fit(X.reshape(len(X), -1))
    fx = FeatureExtractor(families=["intensity"]).fit(X)
    with pytest.raises(ValueError, match="shape"):
        fx.transform(X[:, :16, :16])


# ------------------------------------------------------------------------ regions of interest


def _masks(X, seed=0):
    rng = np.random.default_rng(seed)
    masks = np.zeros(X.shape, bool)
    for m in masks:
        y, x = rng.integers(2, 12, size=2)
        m[y:y + 14, x:x + 16] = True
    return masks


def test_masks_reach_every_family(phantoms):
    from medfeat.features import (canny_density, edge_stats, granulometry, histogram_stats,
                                  threshold_fractions)
    X, _ = phantoms
    X = X[:4]
    masks = _masks(X)
    fx = FeatureExtractor(bins=16).fit(X)
    F = fx.transform(X, masks=masks)
    col = {name: k for k, name in enumerate(fx.get_feature_names_out())}
    i = 2
    assert F[i, col["intensity__mean"]] == X[i][masks[i]].mean()
    assert F[i, col["histogram__entropy"]] == histogram_stats(X[i], masks[i], bins=16)["entropy"]
    assert F[i, col["glcm__contrast"]] == glcm_features(X[i], masks[i], levels=16)["contrast"]
    assert F[i, col["edges__prewitt_p90"]] == edge_stats(X[i], masks[i], operator="prewitt")["p90"]
    assert F[i, col["canny__density"]] == canny_density(X[i], masks[i])["density"]
    assert F[i, col["thresholds__otsu_level"]] == threshold_fractions(X[i], masks[i])["otsu_level"]
    assert F[i, col["granulometry__r2"]] == granulometry(X[i], masks[i])["r2"]
    # masked features differ from the whole image's, and a full mask is no mask
    assert not np.allclose(F, fx.transform(X))
    np.testing.assert_array_equal(fx.transform(X, masks=np.ones(X.shape, np.uint8)),
                                  fx.transform(X))
    np.testing.assert_array_equal(FeatureExtractor(bins=16, n_jobs=2).fit_transform(X, masks=masks),
                                  F)


def test_stacked_masks_equal_masks_argument(phantoms):
    X, y = phantoms
    masks = _masks(X)
    fams = ["intensity", "glcm", "edges"]
    ref = FeatureExtractor(families=fams).fit(X).transform(X, masks=masks)
    pairs = np.stack([X, masks.astype(X.dtype)], axis=1)                 # (n, 2, 32, 32)
    fs = FeatureExtractor(families=fams, stacked_masks=True).fit(pairs)
    assert fs.image_shape_ == X.shape[1:] and fs.n_features_in_ == 2 * 32 * 32
    np.testing.assert_array_equal(fs.transform(pairs), ref)
    flat = FeatureExtractor(families=fams, stacked_masks=True, image_shape=(32, 32))
    np.testing.assert_array_equal(flat.fit_transform(pairs.reshape(len(X), -1)), ref)
    # the stacked layout travels through cross-validation and a search with y
    pipe = make_pipeline(FeatureExtractor(families=["intensity"], stacked_masks=True),
                         StandardScaler(), KNeighborsClassifier(3))
    assert cross_val_score(pipe, pairs, y, cv=3).shape == (3,)


def test_masks_through_metadata_routing(phantoms):
    import sklearn
    X, y = phantoms
    masks = _masks(X)
    with sklearn.config_context(enable_metadata_routing=True):
        fx = FeatureExtractor(families=["intensity"]).set_fit_request(masks=True)
        fx.set_transform_request(masks=True)
        pipe = make_pipeline(fx, StandardScaler().set_fit_request(sample_weight=False),
                             KNeighborsClassifier(3))
        pipe.fit(X, y, masks=masks)
        got = pipe[:-1].transform(X, masks=masks)
    scaler = pipe[1]
    ref = FeatureExtractor(families=["intensity"]).fit(X).transform(X, masks=masks)
    np.testing.assert_allclose(got, scaler.transform(ref))
    np.testing.assert_allclose(scaler.mean_, ref.mean(axis=0))


def test_mask_errors(phantoms):
    X, _ = phantoms
    fx = FeatureExtractor(families=["intensity"]).fit(X)
    masks = _masks(X)
    with pytest.raises(ValueError, match="masks has shape"):
        fx.transform(X, masks=masks[:, :16])
    empty = masks.copy()
    empty[3] = False
    with pytest.raises(ValueError, match=r"samples \[3\] select no pixel"):
        fx.transform(X, masks=empty)
    with pytest.raises(ValueError, match="masks"):
        fx.transform(X, masks=np.full(X.shape, np.nan))
    with pytest.raises(ValueError, match="masks must be boolean"):
        fx.transform(X, masks=masks.astype(complex))
    fs = FeatureExtractor(families=["intensity"], stacked_masks=True)
    with pytest.raises(ValueError, match="pairs on axis 1"):
        fs.fit(np.stack([X, masks, masks], axis=1))
    with pytest.raises(ValueError, match="pairs on axis 1"):
        fs.fit(X)
    pairs = np.stack([X, masks], axis=1)
    with pytest.raises(ValueError, match="do not also pass"):
        fs.fit(pairs, masks=masks)
    with pytest.raises(ValueError, match="stacked_masks"):
        FeatureExtractor(stacked_masks="yes").fit(X)


def test_masks_on_volumes(phantoms):
    X, _ = phantoms
    vols = np.stack([X[:3], X[3:6]], axis=1)                          # (3, 2, 32, 32) volumes
    masks = np.zeros(vols.shape, bool)
    masks[:, :, 4:20, 6:26] = True
    fams = ["intensity", "glcm", "granulometry"]
    F = FeatureExtractor(families=fams).fit(vols).transform(vols, masks=masks)
    assert F[1, 0] == vols[1][masks[1]].mean()
    assert F[2, 18 + 11] == glcm_features(vols[2], masks[2], levels=32)["contrast"]
    pairs = np.stack([vols, masks], axis=1)                           # (3, 2, 2, 32, 32)
    np.testing.assert_array_equal(
        FeatureExtractor(families=fams, stacked_masks=True).fit_transform(pairs), F)


# ---- colour images: channel_axis


def _rgb(X):
    """Three different grey stacks as the channels of one colour stack (n, H, W, 3)."""
    return np.stack([X[:6], X[6:12], X[12:18]], axis=-1)


FAMS = ["intensity", "histogram", "glcm", "edges", "thresholds"]


def test_colour_channels_are_the_grey_features_of_each_channel(phantoms):
    X, _ = phantoms
    rgb = _rgb(X)
    fx = FeatureExtractor(families=FAMS, bins=16, channel_axis=-1).fit(rgb)
    F = fx.transform(rgb)
    grey = FeatureExtractor(families=FAMS, bins=16).fit(X[:6])
    G = [grey.transform(np.ascontiguousarray(rgb[..., c])) for c in range(3)]
    np.testing.assert_array_equal(F, np.hstack(G))
    assert fx.n_channels_ == 3 and fx.image_shape_ == rgb.shape[1:]
    names = list(fx.get_feature_names_out())
    assert len(names) == len(set(names)) == F.shape[1] == 3 * G[0].shape[1]
    assert names == [f"{n}_c{c}" for c in range(3) for n in grey.get_feature_names_out()]
    # the channel axis may be anywhere; a positive axis counts within one image
    first = np.moveaxis(rgb, -1, 1).copy()                            # (n, 3, H, W)
    np.testing.assert_array_equal(FeatureExtractor(families=FAMS, bins=16,
                                                   channel_axis=0).fit_transform(first), F)
    np.testing.assert_array_equal(FeatureExtractor(families=FAMS, bins=16,
                                                   channel_axis=2).fit_transform(rgb), F)
    # without channel_axis the same array is a stack of volumes (n, H, W-by-3 slices): other
    # numbers, as many as one grey image has
    assert FeatureExtractor(families=FAMS, bins=16).fit_transform(rgb).shape == G[0].shape
    # parallel workers and flattened rows give the same
    np.testing.assert_array_equal(
        FeatureExtractor(families=FAMS, bins=16, channel_axis=-1, n_jobs=2).fit_transform(rgb), F)
    flat = FeatureExtractor(families=FAMS, bins=16, channel_axis=-1, image_shape=rgb.shape[1:])
    np.testing.assert_array_equal(flat.fit_transform(rgb.reshape(len(rgb), -1)), F)


def test_colour_volumes(phantoms):
    X, _ = phantoms
    vols = np.stack([_rgb(X[:18]), _rgb(X[1:19])], axis=1)           # (6, 2, 32, 32, 3)
    fx = FeatureExtractor(families=["intensity", "glcm"], channel_axis=-1)
    F = fx.fit_transform(vols)
    grey = FeatureExtractor(families=["intensity", "glcm"])
    np.testing.assert_array_equal(F, np.hstack([grey.fit_transform(vols[..., c].copy())
                                                for c in range(3)]))


def test_colour_masks_per_channel(phantoms):
    X, _ = phantoms
    rgb = _rgb(X)
    fams = ["intensity", "glcm", "granulometry"]
    spatial = _masks(X[:6])                                           # (6, 32, 32)
    fx = FeatureExtractor(families=fams, channel_axis=-1).fit(rgb)
    grey = FeatureExtractor(families=fams).fit(X[:6])
    ref = np.hstack([grey.transform(rgb[..., c].copy(), masks=spatial) for c in range(3)])
    # one region for all channels, or the same region given per channel
    np.testing.assert_array_equal(fx.transform(rgb, masks=spatial), ref)
    per = np.repeat(spatial[..., None], 3, axis=-1)
    np.testing.assert_array_equal(fx.transform(rgb, masks=per), ref)
    # different regions per channel reach their own channel
    per[..., 1] = np.roll(spatial, 5, axis=1)
    got = fx.transform(rgb, masks=per)
    k = len(grey.get_feature_names_out())
    np.testing.assert_array_equal(got[:, k:2 * k], grey.transform(rgb[..., 1].copy(),
                                                                  masks=per[..., 1]))
    np.testing.assert_array_equal(got[:, :k], ref[:, :k])
    assert got[0, k] == rgb[0, ..., 1][per[0, ..., 1]].mean()
    # stacked (image, mask) pairs with channels
    pairs = np.stack([rgb, per.astype(rgb.dtype)], axis=1)           # (6, 2, 32, 32, 3)
    fs = FeatureExtractor(families=fams, channel_axis=-1, stacked_masks=True)
    np.testing.assert_array_equal(fs.fit_transform(pairs), got)
    # a channel whose region is empty is named
    per[2, ..., 2] = False
    with pytest.raises(ValueError, match=r"samples \[2\] select no pixel in some channel"):
        fx.transform(rgb, masks=per)
    with pytest.raises(ValueError, match="one region for all channels"):
        fx.transform(rgb, masks=spatial[:, :16])


@pytest.mark.parametrize("axis", ["-1", 1.5, True, 3, -4])
def test_bad_channel_axis(phantoms, axis):
    X, _ = phantoms
    with pytest.raises(ValueError, match="channel_axis"):
        FeatureExtractor(families=["intensity"], channel_axis=axis).fit(_rgb(X))


def test_channel_axis_shape_errors(phantoms):
    X, _ = phantoms
    rgb = _rgb(X)
    fx = FeatureExtractor(families=["intensity"], channel_axis=-1)
    with pytest.raises(ValueError, match="channel_axis=-1"):
        fx.fit(X)                                          # grey images (n, H, W)
    with pytest.raises(ValueError, match="image_shape is needed with channel_axis"):
        fx.fit(rgb.reshape(len(rgb), -1))
    with pytest.raises(ValueError, match="channel_axis"):
        FeatureExtractor(channel_axis=-1, image_shape=(32, 32)).fit(rgb.reshape(len(rgb), -1))
    fx.fit(rgb)
    with pytest.raises(ValueError, match="expecting"):
        fx.transform(rgb[..., :2])                         # fewer channels than in fit
    assert clone(fx).get_params()["channel_axis"] == -1
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fx)).transform(rgb), fx.transform(rgb))
