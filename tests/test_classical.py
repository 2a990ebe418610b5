"""make_classifier: every kind builds a working Pipeline, defaults and overrides, random_state
threading, determinism, clone, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.preprocessing import StandardScaler

from medfeat.classical import CLASSIFIERS, make_classifier
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
    assert isinstance(m.named_steps["scale"], StandardScaler)
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
