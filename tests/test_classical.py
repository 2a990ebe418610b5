"""make_classifier: every kind builds a working Pipeline, defaults and overrides, random_state
threading, determinism, clone, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from medfeat.classical import (CLASSIFIERS, BalancedKNeighborsClassifier, DecorrelatedGaussianNB,
                               QuantileScaler, make_classifier)
from medfeat.features import FeatureExtractor
from medfeat.io import make_phantoms

FAST = {"families": ["intensity", "histogram", "glcm", "edges"]}
SMALL = {"forest": {"n_estimators": 20}, "gboost": {"max_iter": 20}}   # keeps the tests quick


@pytest.fixture(scope="module")
def data():
    ds = make_phantoms(n=60, size=32, seed=1)
    return ds.train.images, ds.train.labels.ravel(), ds.test.images


@pytest.mark.parametrize("kind", sorted(CLASSIFIERS))
def test_every_kind_fits_and_predicts(kind, data):
    X, y, Xt = data
    model = make_classifier(kind, features=FAST, random_state=0, **SMALL.get(kind, {})).fit(X, y)
    assert [name for name, _ in model.steps] == ["features", "scale", "clf"]
    proba = model.predict_proba(Xt)
    assert proba.shape == (len(Xt), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(Xt)) <= {0, 1}


@pytest.mark.parametrize("kind", ["tree", "forest", "gboost"])
def test_random_state_threaded_and_deterministic(kind, data):
    X, y, Xt = data
    small = SMALL.get(kind, {})
    m1 = make_classifier(kind, features=FAST, random_state=7, **small)
    assert m1.named_steps["clf"].random_state == 7
    p1 = m1.fit(X, y).predict_proba(Xt)
    p2 = make_classifier(kind, features=FAST, random_state=7, **small).fit(X, y).predict_proba(Xt)
    np.testing.assert_array_equal(p1, p2)


def test_defaults_overrides_and_steps():
    m = make_classifier("knn")
    assert m.named_steps["clf"].n_neighbors == 15
    assert make_classifier("knn", n_neighbors=3).named_steps["clf"].n_neighbors == 3
    assert isinstance(m.named_steps["scale"], QuantileScaler)                # "auto" for knn
    assert isinstance(make_classifier("tree").named_steps["scale"], StandardScaler)
    assert isinstance(make_classifier("knn", scaler="standard").named_steps["scale"],
                      StandardScaler)
    assert m.named_steps["clf"].class_weight == "balanced"
    assert make_classifier("nb", scaler=None).named_steps["scale"] == "passthrough"
    assert make_classifier("nb", scaler="quantile", random_state=3).named_steps[
        "scale"].random_state == 3
    fx = FeatureExtractor(bins=8)
    assert make_classifier("tree", features=fx).named_steps["features"] is fx
    assert make_classifier("forest", n_jobs=2).named_steps["clf"].n_jobs == 2
    assert make_classifier("tree", features={"bins": 8}).named_steps["features"].bins == 8
    assert clone(m).get_params()["clf__weights"] == "distance"


def test_errors():
    with pytest.raises(ValueError, match="kind"):
        make_classifier("svm-rbf-quantum")
    with pytest.raises(ValueError, match="scaler"):
        make_classifier("knn", scaler="minmax")


def _expected_failures(est):
    if isinstance(est, BalancedKNeighborsClassifier):
        # The check expects weights {0: 1000, 1: 1e-4} to flip nearly every prediction to class
        # 0; class weights scale neighbour votes, so a query whose neighbours are all of class 1
        # stays class 1, whatever the weights (a property of voting, not a bug).
        return {"check_class_weight_classifiers": "weights scale votes; an all-class-1 "
                                                  "neighbourhood cannot become class 0"}
    return {}


@parametrize_with_checks([BalancedKNeighborsClassifier(3), BalancedKNeighborsClassifier(
    3, weights="distance", class_weight=None), QuantileScaler(n_quantiles=50),
    DecorrelatedGaussianNB(), DecorrelatedGaussianNB(n_components=2, priors=None)],
    expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_balanced_knn_is_prior_corrected_knn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + 0.8 * rng.normal(size=200) > 0.9).astype(int)        # about 1 in 5 positive
    Xq = rng.normal(size=(50, 3))
    for weights in ("uniform", "distance"):
        ref = KNeighborsClassifier(9, weights=weights).fit(X, y)
        plain = BalancedKNeighborsClassifier(9, weights=weights, class_weight=None).fit(X, y)
        np.testing.assert_array_equal(plain.predict_proba(Xq), ref.predict_proba(Xq))
        np.testing.assert_array_equal(plain.predict(Xq), ref.predict(Xq))
        fair = BalancedKNeighborsClassifier(9, weights=weights).fit(X, y)
        prior = np.bincount(y) / len(y)
        expect = ref.predict_proba(Xq) / prior
        expect /= expect.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(fair.predict_proba(Xq), expect, rtol=1e-12)
        np.testing.assert_array_equal(fair.predict(Xq), expect.argmax(axis=1))
        assert fair.predict(Xq).mean() > ref.predict(Xq).mean()      # the minority gains
    with pytest.raises(ValueError, match="class_weight"):
        BalancedKNeighborsClassifier(class_weight="auto").fit(X, y)


@pytest.mark.parametrize("shape", [(700, 120), (30, 80)])   # tall (covariance), wide (SVD)
def test_decorrelated_nb_rotation_is_the_exact_pca(shape):
    # at 700 x 120 with 40 components scikit-learn's "auto" takes the randomised solver; the
    # rotation here must be the exact principal axes (a full SVD), whatever the shape
    from sklearn.decomposition import PCA
    rng = np.random.default_rng(4)
    X = rng.normal(size=shape) @ rng.normal(size=(shape[1], shape[1])) * 0.1
    y = (X[:, 0] > 0).astype(int)
    k = min(20, shape[0] - 1)
    ref = PCA(k, whiten=True, svd_solver="full").fit(X)
    nb = DecorrelatedGaussianNB(n_components=k).fit(X, y)
    np.testing.assert_allclose(nb.pca_.explained_variance_, ref.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(np.abs(nb.pca_.transform(X)), np.abs(ref.transform(X)),
                               rtol=1e-6, atol=1e-8)


def test_quantile_scaler_caps_quietly():
    X = np.random.default_rng(1).normal(size=(30, 2))
    qs = QuantileScaler(n_quantiles=200).fit(X)                           # no warning (errors)
    assert qs.n_quantiles_ == 30 and qs.n_quantiles == 200
    ref = QuantileTransformer(n_quantiles=30, output_distribution="normal").fit(X)
    np.testing.assert_allclose(qs.transform(X), ref.transform(X))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_quantile_scaler_transform_is_quantile_transformer_bit_for_bit(dtype):
    """The fast forward map: ties (repeated quantiles), NaN, values beyond the training range
    and at its ends, a constant feature, on features of real images and on drawn data."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 6))
    X[:, 1] = np.round(X[:, 1])                                  # heavy ties
    X[:, 2] = 4.0                                                # constant
    X[:, 3] = rng.exponential(size=300) ** 3                     # heavy tail
    ds = make_phantoms(n=40, size=32, seed=1)
    F = FeatureExtractor(families=["intensity", "glcm"]).fit_transform(ds.train.images)
    for A, B in ((X, rng.normal(scale=3, size=(80, 6))), (F, F[::-1] * 1.5)):
        A, B = A.astype(dtype), B.astype(dtype).copy()
        B[0, 0] = np.nan
        B[1] = A.min(axis=0)                                     # the lower end, exactly
        B[2] = A.max(axis=0)
        for q in (200, 17):
            ours = QuantileScaler(n_quantiles=q).fit(A)
            ref = QuantileTransformer(n_quantiles=min(q, len(A)),
                                      output_distribution="normal").fit(A)
            for Z in (A, B):
                got, want = ours.transform(Z), ref.transform(Z)
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)
                np.testing.assert_array_equal(ours.inverse_transform(got),
                                              ref.inverse_transform(want))


def test_decorrelated_nb_is_nb_on_whitened_components():
    from sklearn.decomposition import PCA
    from sklearn.naive_bayes import GaussianNB
    rng = np.random.default_rng(2)
    X = rng.normal(size=(150, 5))
    X[:, 1] = X[:, 0] + 0.05 * X[:, 1]                                   # strongly correlated
    y = (X[:, 0] + 0.5 * rng.normal(size=150) > 0.7).astype(int)
    Xq = rng.normal(size=(20, 5))
    pca = PCA(3, whiten=True).fit(X)
    ref = GaussianNB(priors=[0.5, 0.5]).fit(pca.transform(X), y)
    nb = DecorrelatedGaussianNB(n_components=3).fit(X, y)
    np.testing.assert_allclose(nb.predict_proba(Xq), ref.predict_proba(pca.transform(Xq)))
    np.testing.assert_array_equal(nb.predict(Xq), ref.predict(pca.transform(Xq)))
    freq = DecorrelatedGaussianNB(n_components=3, priors=None).fit(X, y)
    np.testing.assert_allclose(freq.nb_.class_prior_, np.bincount(y) / len(y))
    assert DecorrelatedGaussianNB(n_components=40).fit(X, y).pca_.n_components_ == 5   # capped
    with pytest.raises(ValueError, match="priors"):
        DecorrelatedGaussianNB(priors="equal").fit(X, y)
