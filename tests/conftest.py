"""Shared fixtures: real images (pydicom's CT/MR, scikit-image's camera, retina, microaneurysms), dtype
conversion for the dtype-contract tests, and the shared data folder when present."""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: ../shared/data seen from the project root; absent on users' machines.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
REAL_2D = ("ct_small", "mr_small", "camera", "retina", "microaneurysms")


@functools.lru_cache(maxsize=None)
def load_real(name):
    """A real 2-D image in its native dtype (read-only, so no test can change it for another)."""
    if name in ("ct_small", "mr_small"):
        import pydicom
        from pydicom.data import get_testdata_file

        fname = {"ct_small": "CT_small.dcm", "mr_small": "MR_small.dcm"}[name]
        img = pydicom.dcmread(get_testdata_file(fname)).pixel_array
    else:
        import skimage.data

        img = getattr(skimage.data, name)()
        if name == "retina":  # 1411² RGB fundus: the green channel, centre crop, keeps tests small
            img = img[555:811, 555:811, 1]
        elif name == "camera":
            img = img[128:384, 128:384]
    img = np.ascontiguousarray(img)
    img.setflags(write=False)
    return img


def to_dtype(img, dtype):
    """``img`` rescaled to the full useful range of ``dtype`` (floats to [0, 1], int16 to a CT-like
    range of -1024..3071), so every dtype sees the same structures."""
    dtype = np.dtype(dtype)
    f = img.astype(np.float64)
    lo, hi = f.min(), f.max()
    f = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
    if dtype == np.uint8:
        out = np.round(f * 255)
    elif dtype == np.uint16:
        out = np.round(f * 65535)
    elif dtype == np.int16:
        out = np.round(f * 4095 - 1024)
    elif dtype == np.bool_:
        out = f > 0.5
    else:
        out = f
    return np.ascontiguousarray(out.astype(dtype))


@functools.lru_cache(maxsize=None)
def load_volume():
    """A small real 3-D volume (int16): 12 overlapping 64×64 windows of CT_small, stepping down the body."""
    ct = load_real("ct_small")
    vol = np.stack([ct[20 + 4 * k: 84 + 4 * k, 32:96] for k in range(12)])
    vol.setflags(write=False)
    return vol


@pytest.fixture(params=REAL_2D)
def real_image(request):
    """Each real 2-D image, native dtype."""
    return load_real(request.param)


@pytest.fixture(params=[np.dtype(d).name for d in DTYPES])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def volume():
    return load_volume()


@pytest.fixture
def shared_data():
    """Path of ../shared/data; skips the test when the folder is absent (users do not have it)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def cpu_backends():
    """The CPU backends that work here, for parametrising tests."""
    from medfeat.kernels import available_backends

    return [b for b in available_backends() if b in ("cython", "numba")]


CPU_BACKENDS = ("cython", "numba")


@contextlib.contextmanager
def local_cluster():
    """A dask.distributed ``LocalCluster`` of two worker processes of one thread each (a dashboard on
    a free port) and its client, closed on exit. Tasks left without a worker fail after a minute
    instead of waiting for one (dask's ``no-workers-timeout``), so a test whose workers died cannot
    hold the suite. Skips the test when distributed is not installed."""
    distributed = pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.scheduler.no-workers-timeout": "60s"}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close(timeout=30)
            cluster.close(timeout=30)
