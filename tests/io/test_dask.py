"""Lazy reading: read_dicom / read_series(lazy=True) give dask arrays (one chunk per frame or
slice) equal to the eager result, read when computed; tiled TIFFs through tifffile's zarr store."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from medfeat import kernels as K
from medfeat.io import ImageReadError, read_dicom, read_series

from .conftest import pydicom_test_files, write_series

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.mark.parametrize("name", ["CT_small.dcm", "SC_rgb_rle_2frame.dcm", "rtdose_rle.dcm",
                                  "examples_ybr_color.dcm"])
@pytest.mark.parametrize("window", [None, "auto"])
def test_lazy_read_dicom_equals_eager(name, window):
    root, names = pydicom_test_files()
    if name not in names:
        pytest.skip(f"{name} is not among pydicom's test files here")
    path = root / name
    try:
        eager = read_dicom(path, window=window)
    except ImageReadError as exc:  # e.g. no pixel data, or a decoder missing here
        with pytest.raises(ImageReadError):
            read_dicom(path, window=window, lazy=True)
        pytest.skip(str(exc))
    lazy, meta = read_dicom(path, window=window, lazy=True, return_meta=True)
    assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
    assert lazy.shape == eager.shape == meta.shape
    if meta.number_of_frames > 1 and window is None:
        assert lazy.chunks[0] == (1,) * meta.number_of_frames  # one chunk per frame
    np.testing.assert_array_equal(lazy.compute(), eager)
    if meta.number_of_frames > 1:
        np.testing.assert_array_equal(read_dicom(path, frame=1, lazy=True).compute(),
                                      read_dicom(path, frame=1))


def test_lazy_read_is_deferred_until_compute(tmp_path):
    from pydicom.data import get_testdata_file

    path = tmp_path / "ct.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), path)
    lazy = read_dicom(path, lazy=True)
    os.unlink(path)  # the pixels were not read yet: computing now must fail
    with pytest.raises(ImageReadError, match="ct.dcm"):
        lazy.compute()


def test_lazy_read_errors_come_early(tmp_path):
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"not dicom at all")
    with pytest.raises(ImageReadError, match="not a DICOM file"):
        read_dicom(bad, lazy=True)
    from pydicom.data import get_testdata_file

    with pytest.raises(ValueError, match="frame"):
        read_dicom(get_testdata_file("CT_small.dcm"), frame=3, lazy=True)


def test_lazy_read_series_equals_eager(tmp_path):
    folder = write_series(tmp_path / "s", [(0, 0, 2.5 * k) for k in (3, 0, 2, 1, 4)])
    volume, spacing, metas = read_series(folder, return_meta=True)
    lazy, lazy_spacing, lazy_metas = read_series(folder, return_meta=True, lazy=True)
    assert isinstance(lazy, da.Array) and lazy.chunks[0] == (1,) * 5
    assert lazy_spacing == spacing
    assert [m.path for m in lazy_metas] == [m.path for m in metas]
    np.testing.assert_array_equal(lazy.compute(), volume)
    # the volume goes straight into the chunked kernels
    np.testing.assert_array_equal(K.erosion(lazy, K.ball(1)).compute(),
                                  K.erosion(volume, K.ball(1)))


def test_tiled_tiff_through_tifffile_zarr_store(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    zarr = pytest.importorskip("zarr")
    img = np.random.default_rng(0).integers(0, 4000, (150, 130)).astype(np.uint16)
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, img, tile=(64, 64))
    with tifffile.imread(path, aszarr=True) as store:
        lazy = da.from_zarr(zarr.open(store, mode="r"))
        assert lazy.chunks == ((64, 64, 22), (64, 64, 2))  # the file's tiles
        np.testing.assert_allclose(K.sobel(lazy).compute(), K.sobel(img), rtol=1e-6)
