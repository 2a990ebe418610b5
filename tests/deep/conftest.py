"""Fixtures for the deep tests: tiny synthetic image stacks; Keras/TensorFlow warnings filtered."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest.importorskip("keras", reason='needs the deep extra: pip install "medfeat[deep]"')


def pytest_collection_modifyitems(items):
    # TensorFlow and Keras raise a few deprecation warnings from their own internals on import and
    # on first use (not ours to act on); pytest runs with filterwarnings=error.
    for item in items:
        if "tests/deep/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:tensorflow.*"))
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*"))
            item.add_marker(pytest.mark.filterwarnings("ignore::FutureWarning:keras.*"))


def make_squares(n=48, size=16, seed=0, dtype=np.uint8):
    """Noise images; class 1 carries a bright square at a random place. Balanced labels."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 80, (n, size, size)).astype(np.float64)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, size - size // 3, 2)
        X[i, r:r + size // 3, c:c + size // 3] = 230
    if np.dtype(dtype) == np.uint8:
        return X.astype(np.uint8), y
    if np.dtype(dtype) == np.int16:
        return (X * 8 - 1000).astype(np.int16), y
    return (X / 255).astype(dtype), y


@pytest.fixture(scope="session")
def squares():
    """(X_train, y_train, X_val, y_val) of 16x16 uint8 squares."""
    X, y = make_squares(96, 16, seed=0)
    return X[:64], y[:64], X[64:], y[64:]
