"""Fixtures for medfeat.io: pydicom's test files, and small DICOM series written on the fly."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

#: ../shared/data seen from tests/io/; absent on users' machines.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def pydicom_test_files():
    """Every file under pydicom/data/test_files, as paths relative to that folder."""
    import pydicom.data

    root = Path(pydicom.data.__file__).parent / "test_files"
    return root, sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def ct_small():
    import pydicom
    from pydicom.data import get_testdata_file

    return pydicom.dcmread(get_testdata_file("CT_small.dcm"))


def write_series(folder, positions, *, orientation=(1, 0, 0, 0, 1, 0), names=None, seed=0,
                 edit=None):
    """Copies of CT_small.dcm at ``positions`` (one per slice), pixel values ``base + 10·k``.

    Files get shuffled names and reversed Instance Numbers, so only the positions tell the order.
    ``edit(k, ds)`` may change slice ``k`` before it is written. Returns the folder.
    """
    import pydicom.uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = len(positions)
    names = names or [f"img{v:04d}.dcm" for v in rng.permutation(n) * 7 + 3]
    series = pydicom.uid.generate_uid(entropy_srcs=[str(seed)])
    for k, pos in enumerate(positions):
        ds = ct_small()
        arr = ds.pixel_array.astype(np.int16) + np.int16(10 * k)
        ds.PixelData = arr.tobytes()
        ds.ImagePositionPatient = [float(v) for v in pos]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.InstanceNumber = n - k
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[str(seed), str(k)])
        if edit is not None:
            edit(k, ds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(folder / names[k])
    return folder


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
