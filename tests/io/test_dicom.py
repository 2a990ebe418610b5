"""read_dicom / read_series against pydicom, on every file pydicom ships and on edited copies."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from medfeat.io import ImageReadError, read_dicom, read_image, read_series

from .conftest import ct_small, pydicom_test_files, write_series

pydicom = pytest.importorskip("pydicom")
from pydicom.pixels import (apply_color_lut, apply_modality_lut, apply_voi,  # noqa: E402
                            apply_voi_lut, apply_windowing)

ROOT, FILES = pydicom_test_files()


def reference(path, *, frame=None):
    """pydicom's answer: (dataset, pixel_array then apply_modality_lut), or (None, exception).

    Palette colour images are looked up with apply_color_lut (the modality LUT does not apply to
    them, PS3.3 §C.7.6.3.1.5). pydicom's warnings on malformed files are expected here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
            arr = ds.pixel_array
        except Exception as exc:  # what pydicom cannot read, we must refuse with ImageReadError
            return None, exc
        if frame is not None:
            arr = arr[frame]
        if ds.PhotometricInterpretation == "PALETTE COLOR":
            return ds, apply_color_lut(arr, ds)
        return ds, apply_modality_lut(arr, ds)


def pydicom_display(values, ds, index=0):
    """pydicom's VOI LUT / windowing output rescaled to [0, 1] with pydicom's own output range."""
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        # pydicom warns that a VOI LUT on floats may be inexact (ours are whole numbers here),
        # and its SIGMOID overflows exp() to the right limit for far-off values
        warnings.simplefilter("ignore")
        return _pydicom_display(values, ds, index)


def _pydicom_display(values, ds, index):
    seq = ds.get("VOILUTSequence")
    if seq:
        return apply_voi(values, ds, index) / float(2 ** seq[index].LUTDescriptor[2] - 1)
    if ds.get("ModalityLUTSequence"):
        lo, hi = 0.0, float(2 ** ds.ModalityLUTSequence[0].LUTDescriptor[2] - 1)
    elif ds.PixelRepresentation == 0:
        lo, hi = 0.0, float(2 ** ds.BitsStored - 1)
    else:
        lo, hi = -float(2 ** (ds.BitsStored - 1)), float(2 ** (ds.BitsStored - 1) - 1)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        lo = lo * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        hi = hi * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    y = apply_windowing(values, ds, index)
    return (y - lo) / (hi - lo)


# ---------------------------------------------------------------------------------------------
# every file pydicom ships


@pytest.mark.parametrize("name", FILES)
def test_every_pydicom_file_matches_pydicom_or_raises(name):
    path = str(ROOT / name)
    ds, ref = reference(path)
    if ds is None:
        with pytest.raises(ImageReadError) as info:
            read_dicom(path)
        assert path in str(info.value) and info.value.cause
        return
    ours = read_dicom(path)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref.astype(np.float32))


def _monochrome(name):
    """Header-only check, so collection stays fast."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(ROOT / name, stop_before_pixels=True)
            return str(ds.get("PhotometricInterpretation", "")).startswith("MONOCHROME")
        except Exception:
            return False


@pytest.mark.parametrize("name", [n for n in FILES if _monochrome(n)])
def test_windowed_file_matches_pydicom_voi(name):
    path = str(ROOT / name)
    ds, ref = reference(path)
    if ds is None or ds.PhotometricInterpretation not in ("MONOCHROME1", "MONOCHROME2"):
        pytest.skip("pydicom cannot decode it; the whole-folder test checks that we raise")
    ours, meta = read_dicom(path, window="auto", return_meta=True)
    assert ours.dtype == np.float32
    assert 0.0 <= ours.min() and ours.max() <= 1.0
    has_voi = ds.get("VOILUTSequence") or ("WindowCenter" in ds and "WindowWidth" in ds)
    if has_voi:
        expected = pydicom_display(ref, ds)
    else:  # no VOI in the file: minimum to maximum
        lo, hi = ref.min(), ref.max()
        expected = (ref - lo) / (hi - lo) if hi > lo else np.zeros(ref.shape)
        assert meta.window_applied[0] == "minmax"
    if ds.PhotometricInterpretation == "MONOCHROME1":
        expected = 1.0 - expected
    np.testing.assert_allclose(ours, expected, atol=1e-6)


MULTIFRAME = ["rtdose.dcm", "rtdose_rle.dcm", "rtdose_expb.dcm", "SC_rgb_rle_2frame.dcm",
              "SC_rgb_rle_16bit_2frame.dcm", "SC_rgb_rle_32bit_2frame.dcm",
              "examples_ybr_color.dcm"]


@pytest.mark.parametrize("name", MULTIFRAME)
def test_single_frame_equals_that_frame_of_the_whole(name):
    path = str(ROOT / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = int(pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames)
    for k in (0, n - 1):
        _, ref = reference(path, frame=k)
        ours = read_dicom(path, frame=k)
        assert ours.shape == ref.shape
        np.testing.assert_array_equal(ours, ref.astype(np.float32))


def test_multiframe_and_colour_shapes():
    assert read_dicom(ROOT / "rtdose.dcm").shape == (15, 10, 10)
    assert read_dicom(ROOT / "SC_rgb_rle_2frame.dcm").shape == (2, 100, 100, 3)
    assert read_dicom(ROOT / "examples_palette.dcm").shape == (350, 800, 3)  # palette → RGB
    ybr = read_dicom(ROOT / "SC_ybr_full_422_uncompressed.dcm")  # YBR converted to RGB
    rgb = read_dicom(ROOT / "SC_rgb_rle.dcm")
    np.testing.assert_allclose(ybr, rgb, atol=8)  # lossy YBR 4:2:2 round trip


def test_frame_out_of_range_and_bad_frame():
    with pytest.raises(ValueError, match="out of range"):
        read_dicom(ROOT / "rtdose.dcm", frame=15)
    with pytest.raises(ValueError, match="out of range"):
        read_dicom(ROOT / "CT_small.dcm", frame=1)
    with pytest.raises(ValueError, match="frame must be an int"):
        read_dicom(ROOT / "rtdose.dcm", frame=1.5)
    assert read_dicom(ROOT / "CT_small.dcm", frame=0).shape == (128, 128)


# ---------------------------------------------------------------------------------------------
# windowing, against pydicom on edited copies


def saved(ds, tmp_path, name="x.dcm"):
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path)
    return str(path)


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("window", [(40.0, 400.0), (-600.0, 1500.0), (0.0, 1.0), (30.5, 2.0)])
def test_voi_lut_functions_match_pydicom(tmp_path, function, window):
    ds = ct_small()
    ds.WindowCenter, ds.WindowWidth = window
    ds.VOILUTFunction = function
    path = saved(ds, tmp_path)
    ours = read_dicom(path, window="auto")
    _, ref = reference(path)
    np.testing.assert_allclose(ours, pydicom_display(ref, ds), atol=1e-6)
    # an explicit window uses the same function
    np.testing.assert_allclose(read_dicom(path, window=window), ours, atol=1e-7)


def test_explicit_window_overrides_file_window():
    path = str(ROOT / "693_J2KI.dcm")  # CT with window 40/100
    ds, ref = reference(path)
    ds.WindowCenter, ds.WindowWidth = -600, 1500
    np.testing.assert_allclose(read_dicom(path, window=(-600, 1500)), pydicom_display(ref, ds),
                               atol=1e-6)
    assert not np.allclose(read_dicom(path, window=(-600, 1500)), read_dicom(path, window="auto"))


@pytest.mark.parametrize("index", [0, 1])
def test_window_index_picks_among_several(index):
    path = str(ROOT / "examples_overlay.dcm")  # two windows: 450/790 and 200/443
    ds, ref = reference(path)
    ours, meta = read_dicom(path, window="auto", window_index=index, return_meta=True)
    np.testing.assert_allclose(ours, pydicom_display(ref, ds, index), atol=1e-6)
    assert meta.window_applied == ("LINEAR", meta.window_center[index], meta.window_width[index])
    with pytest.raises(ValueError, match="window_index=2"):
        read_dicom(path, window="auto", window_index=2)


def test_monochrome1_inverted_after_windowing():
    path = str(ROOT / "dicomdirtests/77654033/CR1/6154")
    ds, ref = reference(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    ours = read_dicom(path, window=(1600, 2800))
    ds.WindowCenter, ds.WindowWidth = 1600, 2800
    np.testing.assert_allclose(ours, 1.0 - pydicom_display(ref, ds), atol=1e-6)
    # without windowing the values are modality values, not inverted
    np.testing.assert_array_equal(read_dicom(path), ref.astype(np.float32))


def test_modality_lut_sequence_matches_pydicom(tmp_path):
    from pydicom.dataset import Dataset

    ds = ct_small()
    arr = ds.pixel_array.astype(np.int32)
    arr = (arr - arr.min()).astype(np.uint16)  # unsigned stored values 0..~2k
    ds.PixelData, ds.PixelRepresentation = arr.tobytes(), 0
    del ds.RescaleSlope, ds.RescaleIntercept
    item = Dataset()
    first, n = 200, 1000  # values below 200 and above 1199 are clipped to the end entries
    item.LUTDescriptor = [n, first, 16]
    item.add_new(0x00283006, "US", [int(v) for v in (np.arange(n) * 7 % 4096)])
    item.ModalityLUTType = "HU"
    ds.ModalityLUTSequence = [item]
    path = saved(ds, tmp_path)
    _, ref = reference(path)
    ours = read_dicom(path)
    np.testing.assert_array_equal(ours, ref.astype(np.float32))
    assert (arr < first).any() and (arr >= first + n).any()


def test_voi_lut_sequence_matches_pydicom(tmp_path):
    from pydicom.dataset import Dataset

    ds = ct_small()
    item = Dataset()
    n, first = 2048, -1024
    item.LUTDescriptor = [n, first, 16]
    item.add_new(0x00283006, "US", [int(v) for v in np.linspace(0, 65535, n)])
    ds.VOILUTSequence = [item]
    ds.WindowCenter, ds.WindowWidth = 40, 400  # the LUT takes precedence, as in pydicom
    path = saved(ds, tmp_path)
    ds2, ref = reference(path)
    ours, meta = read_dicom(path, window="auto", return_meta=True)
    np.testing.assert_allclose(ours, pydicom_display(ref, ds2), atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(ours, apply_voi_lut(ref, ds2) / 65535.0, atol=1e-6)
    assert meta.window_applied == ("VOI LUT", 0)


def test_invalid_window_width_in_file_is_an_image_read_error(tmp_path):
    ds = ct_small()
    ds.WindowCenter, ds.WindowWidth = 40, 0.5  # LINEAR needs width >= 1
    path = saved(ds, tmp_path)
    with pytest.raises(ImageReadError, match="Window Width"):
        read_dicom(path, window="auto")
    with pytest.raises(ValueError, match="Window Width"):
        read_dicom(ROOT / "CT_small.dcm", window=(40, 0))
    with pytest.raises(ValueError, match="window must be"):
        read_dicom(ROOT / "CT_small.dcm", window="bone")


def test_unknown_voi_function_is_refused(tmp_path):
    ds = ct_small()
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 40, 400, "GAMMA"
    with pytest.raises(ImageReadError, match="GAMMA"):
        read_dicom(saved(ds, tmp_path), window="auto")


def test_colour_window_auto_scales_by_bits_and_refuses_explicit_window():
    path = ROOT / "SC_rgb_rle_16bit.dcm"
    img = read_dicom(path, window="auto")
    np.testing.assert_allclose(img, read_dicom(path) / 65535.0, rtol=1e-6)
    with pytest.raises(ValueError, match="monochrome"):
        read_dicom(path, window=(100, 50))


def test_zero_rescale_slope_is_refused(tmp_path):
    ds = ct_small()
    ds.RescaleSlope = 0
    with pytest.raises(ImageReadError, match="Rescale Slope is 0"):
        read_dicom(saved(ds, tmp_path))


# ---------------------------------------------------------------------------------------------
# errors and metadata


def test_missing_decoder_names_syntax_and_package():
    with pytest.raises(ImageReadError) as info:
        read_dicom(ROOT / "SC_rgb_jpeg_gdcm.dcm")  # JPEG Lossless SV1: no GPL decoder installed
    msg = str(info.value)
    assert "JPEG Lossless" in msg and "pylibjpeg-libjpeg" in msg and "gdcm" in msg


def test_missing_openjpeg_names_the_package(monkeypatch):
    import pydicom.pixels

    class Unavailable:
        is_available = False

    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda uid: Unavailable())
    with pytest.raises(ImageReadError, match="JPEG 2000.*pylibjpeg-openjpeg"):
        read_dicom(ROOT / "MR_small_jp2klossless.dcm")


@pytest.mark.parametrize("name, cause", [
    ("MR_truncated.dcm", "cannot decode"),
    ("README.txt", "not a DICOM file"),
    ("rtplan.dcm", "no pixel data"),
    ("meta_missing_tsyntax.dcm", "Transfer Syntax UID"),
    ("badVR.dcm", "1A"),
])
def test_bad_files_say_why(name, cause):
    with pytest.raises(ImageReadError, match=cause) as info:
        read_dicom(ROOT / name)
    assert str(ROOT / name) in str(info.value)


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_dicom(tmp_path / "nope.dcm")
    with pytest.raises(ImageReadError, match="is a folder"):
        read_dicom(tmp_path)


def test_truncated_copy_of_a_good_file(tmp_path):
    data = (ROOT / "CT_small.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) - 5000])
    with pytest.raises(ImageReadError):
        read_dicom(path)
    assert path.read_bytes() == data[: len(data) - 5000]  # the input is never touched


def test_pydicom_warnings_are_kept_in_meta_not_raised():
    img, meta = read_dicom(ROOT / "MR_small_padded.dcm", return_meta=True)
    assert img.shape == (64, 64)
    assert any("pixel data" in w for w in meta.warnings)


def test_meta_fields_ct():
    _, meta = read_dicom(ROOT / "CT_small.dcm", return_meta=True)
    ds = ct_small()
    assert meta.modality == "CT"
    assert meta.shape == (128, 128)
    assert meta.pixel_spacing == tuple(float(v) for v in ds.PixelSpacing)
    assert meta.slice_thickness == float(ds.SliceThickness)
    assert meta.image_position == tuple(float(v) for v in ds.ImagePositionPatient)
    assert meta.image_orientation == tuple(float(v) for v in ds.ImageOrientationPatient)
    assert meta.photometric_interpretation == "MONOCHROME2"
    assert (meta.bits_stored, meta.bits_allocated, meta.pixel_representation) == (16, 16, 1)
    assert meta.rescale_slope == 1.0 and meta.rescale_intercept == -1024.0
    assert meta.series_uid == ds.SeriesInstanceUID and meta.study_uid == ds.StudyInstanceUID
    assert meta.patient_id == ds.PatientID and meta.sop_instance_uid == ds.SOPInstanceUID
    assert meta.transfer_syntax == "1.2.840.10008.1.2.1"
    assert meta.window_applied is None


def test_read_image_dispatches_dicom_by_content(tmp_path):
    path = tmp_path / "looks_like.png"
    path.write_bytes((ROOT / "MR_small.dcm").read_bytes())  # its preamble holds a TIFF header
    np.testing.assert_array_equal(read_image(path), read_dicom(ROOT / "MR_small.dcm"))


# ---------------------------------------------------------------------------------------------
# series


def test_series_sorted_by_position_along_normal_not_names_or_numbers(tmp_path):
    # sagittal slices: the normal row × col is -x; z jitters in-plane, so sorting by z is wrong
    orientation = (0, 1, 0, 0, 0, -1)
    rng = np.random.default_rng(3)
    positions = [(-20 + 2.5 * k, 5.0, 30.0 + rng.uniform(-3, 3)) for k in range(6)]
    folder = write_series(tmp_path / "s", positions, orientation=orientation)
    vol, spacing, metas = read_series(folder, return_meta=True)
    base = read_dicom(ROOT / "CT_small.dcm")
    assert vol.shape == (6, 128, 128) and vol.dtype == np.float32
    for j in range(6):  # ascending along -x: the slice written last (largest x) comes first
        np.testing.assert_array_equal(vol[j], base + 10 * (5 - j))
    assert spacing[0] == pytest.approx(2.5)
    assert spacing[1:] == metas[0].pixel_spacing
    assert [m.instance_number for m in metas] == [1, 2, 3, 4, 5, 6]


def test_series_oblique_orientation(tmp_path):
    row = np.array([np.cos(0.3), np.sin(0.3), 0.0])
    col = np.array([-np.sin(0.3) * np.cos(0.5), np.cos(0.3) * np.cos(0.5), -np.sin(0.5)])
    normal = np.cross(row, col)
    positions = [tuple(np.array([10.0, -4.0, 7.0]) - 1.25 * k * normal) for k in range(4)]
    folder = write_series(tmp_path / "s", positions, orientation=tuple(row) + tuple(col))
    vol, spacing = read_series(folder)
    base = read_dicom(ROOT / "CT_small.dcm")
    for j in range(4):  # ascending along the normal: the last written slice comes first
        np.testing.assert_array_equal(vol[j], base + 10 * (3 - j))
    assert spacing[0] == pytest.approx(1.25)


def test_series_windowed_slices(tmp_path):
    folder = write_series(tmp_path / "s", [(0, 0, z) for z in (0, 3, 6)])
    vol, _ = read_series(folder, window=(40, 400))
    assert 0 <= vol.min() and vol.max() <= 1


def test_series_mixed_series_is_an_error_unless_one_is_chosen(tmp_path):
    import pydicom.uid

    folder = write_series(tmp_path / "s", [(0, 0, z) for z in (0, 2, 4)])
    write_series(folder, [(0, 0, z) for z in (1, 3)], names=["other1.dcm", "other2.dcm"],
                 seed=9)
    with pytest.raises(ImageReadError, match="mixes 2 series"):
        read_series(folder)
    uid = pydicom.uid.generate_uid(entropy_srcs=["9"])
    vol, spacing = read_series(folder, series_uid=uid)
    assert vol.shape[0] == 2 and spacing[0] == pytest.approx(2.0)


def test_series_missing_position(tmp_path):
    def drop(k, ds):
        if k == 1:
            del ds.ImagePositionPatient

    folder = write_series(tmp_path / "s", [(0, 0, z) for z in (0, 2, 4)], edit=drop)
    with pytest.raises(ImageReadError, match="Image Position"):
        read_series(folder)


def test_series_inconsistent_shapes(tmp_path):
    def crop(k, ds):
        if k == 2:
            arr = ds.pixel_array[:64]
            ds.PixelData, ds.Rows = arr.tobytes(), 64

    folder = write_series(tmp_path / "s", [(0, 0, z) for z in (0, 2, 4)], edit=crop)
    with pytest.raises(ImageReadError, match="shape"):
        read_series(folder)


def test_series_duplicate_and_uneven_positions(tmp_path):
    folder = write_series(tmp_path / "dup", [(0, 0, z) for z in (0, 2, 2)])
    with pytest.raises(ImageReadError, match="same position"):
        read_series(folder)
    folder = write_series(tmp_path / "gap", [(0, 0, z) for z in (0, 2, 4, 8)])
    with pytest.raises(ImageReadError, match="unevenly spaced"):
        read_series(folder)


def test_series_different_orientation(tmp_path):
    def tilt(k, ds):
        if k == 1:
            ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]

    folder = write_series(tmp_path / "s", [(0, 0, z) for z in (0, 2, 4)], edit=tilt)
    with pytest.raises(ImageReadError, match="orientation"):
        read_series(folder)


def test_series_empty_or_missing_folder_and_non_dicom_files_ignored(tmp_path):
    with pytest.raises(ImageReadError, match="no DICOM files"):
        read_series(tmp_path)
    with pytest.raises(ImageReadError, match="no such folder"):
        read_series(tmp_path / "nope")
    folder = write_series(tmp_path / "s", [(0, 0, z) for z in (0, 2)])
    (folder / "notes.txt").write_text("not an image")
    assert read_series(folder)[0].shape == (2, 128, 128)
    assert sorted(os.listdir(folder))[-1] == "notes.txt"


def test_series_multiframe_file_refused(tmp_path):
    import shutil

    shutil.copy(ROOT / "rtdose.dcm", tmp_path / "dose.dcm")
    with pytest.raises(ImageReadError, match="multi-frame"):
        read_series(tmp_path)


def test_frame_does_not_decode_the_whole_file(monkeypatch):
    import pydicom.dataset

    def whole(self):
        raise AssertionError("decoded every frame")

    _, ref = reference(str(ROOT / "SC_rgb_rle_2frame.dcm"), frame=1)
    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(whole))
    np.testing.assert_array_equal(read_dicom(ROOT / "SC_rgb_rle_2frame.dcm", frame=1), ref)
