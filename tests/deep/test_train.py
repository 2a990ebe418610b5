"""train / predict / save / load and DeepClassifier on tiny synthetic images."""

import numpy as np
import pytest

from medfeat.deep import DeepClassifier, build_model, load, predict, save, train

from .conftest import make_squares

TINY = {"width": 4, "dense": 8}


def _clf(**kw):
    params = dict(epochs=2, batch_size=16, verbose=0, seed=0, model_options=TINY)
    params.update(kw)
    return DeepClassifier("cnn", **params)


def test_deep_classifier_fit_predict_proba(squares):
    Xt, yt, Xv, yv = squares
    clf = _clf(epochs=3).fit(Xt, yt, validation=(Xv, yv))
    proba = clf.predict_proba(Xv)
    assert proba.shape == (len(Xv), 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert set(clf.predict(Xv)) <= {0, 1}
    assert clf.fit_seconds_ > 0
    assert 1 <= clf.history_["best_epoch"] <= 3
    assert len(clf.history_["loss"]) == clf.history_["stopped_epoch"]
    assert clf.model_.input_shape == (None, 16, 16, 1)
