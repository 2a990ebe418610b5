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

from medfeat.features import FAMILIES, FeatureExtractor, glcm_features, intensity_stats
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
    assert len(set(names)) == len(names) == sum(len(v) for v in FAMILIES.values())
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
    c = FeatureExtractor(n_jobs=-1, backend="numba").fit_transform(X)
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
