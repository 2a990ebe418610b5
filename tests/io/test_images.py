"""read_image (format by content, dtypes kept, clear errors) and the colour helpers."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from medfeat.io import ImageReadError, read_image, rgb_to_grey, rgb_to_hsv, rgb_to_lab
from medfeat.io.images import BT601, sniff_format


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16_rgb(path, arr):
    """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[r].astype(">u2").tobytes() for r in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16 bits, colour type 2 (RGB)
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))
    path.write_bytes(data)


@pytest.fixture
def grey8():
    return (np.arange(20 * 30) % 251).astype(np.uint8).reshape(20, 30)


def test_png_by_content_not_name(tmp_path, grey8):
    path = tmp_path / "scan.jpg"  # a PNG with a misleading name
    Image.fromarray(grey8).save(path, format="PNG")
    assert sniff_format(path) == "png"
    out = read_image(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, grey8)


def test_png_16bit_stays_16bit(tmp_path):
    arr = (np.arange(16 * 16, dtype=np.uint32) * 257).astype(np.uint16).reshape(16, 16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    out = read_image(path)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, arr)


def test_png_16bit_colour_is_refused_not_truncated(tmp_path):
    arr = np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3) * 1000
    path = tmp_path / "deep_rgb.png"
    write_png16_rgb(path, arr)
    with pytest.raises(ImageReadError, match="16-bit colour PNG"):
        read_image(path)


def test_png_rgb_rgba_palette(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    rgba = rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgba)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "pal.png")
    out = read_image(tmp_path / "pal.png")
    assert out.shape == (10, 12, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.asarray(pal.convert("RGB")))


def test_jpeg_and_bmp(tmp_path, grey8):
    Image.fromarray(grey8).save(tmp_path / "a.bin", format="JPEG", quality=95)
    out = read_image(tmp_path / "a.bin")
    assert out.dtype == np.uint8 and out.shape == grey8.shape
    assert np.abs(out.astype(int) - grey8).mean() < 6  # lossy, but the same picture
    Image.fromarray(grey8).save(tmp_path / "b.bmp")
    np.testing.assert_array_equal(read_image(tmp_path / "b.bmp"), grey8)


def test_tiff_single_and_multipage(tmp_path):
    import tifffile

    one = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    tifffile.imwrite(tmp_path / "one.tif", one)
    out = read_image(tmp_path / "one.tif")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, one)
    stack = np.stack([one, one + 1, one + 2])
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    np.testing.assert_array_equal(read_image(tmp_path / "stack.tif"), stack)
    # pages written one by one (as scanners do) are stacked too
    pages = [Image.fromarray((one // 257).astype(np.uint8) + k) for k in range(3)]
    pages[0].save(tmp_path / "pages.tiff", save_all=True, append_images=pages[1:])
    out = read_image(tmp_path / "pages.tiff")
    assert out.shape == (3, 8, 8)
    np.testing.assert_array_equal(out[2], (one // 257).astype(np.uint8) + 2)


def test_tiff_pages_of_different_shapes_refused(tmp_path):
    pages = [Image.fromarray(np.zeros(shape, np.uint8)) for shape in ((8, 8), (4, 6))]
    pages[0].save(tmp_path / "mixed.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(ImageReadError, match="cannot be stacked"):
        read_image(tmp_path / "mixed.tif")


def test_npy(tmp_path):
    arr = np.linspace(-1, 1, 30, dtype=np.float32).reshape(5, 6)
    np.save(tmp_path / "a.npy", arr)
    out = read_image(tmp_path / "a.npy")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, arr)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError, match="npy"):
        read_image(tmp_path / "obj.npy")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_truncated_files_raise_and_are_left_alone(tmp_path, fmt):
    rng = np.random.default_rng(1)
    path = tmp_path / "img"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == data[: len(data) // 2]


def test_unknown_empty_missing_and_folder(tmp_path):
    (tmp_path / "x.png").write_bytes(b"GIF89a not supported here")
    with pytest.raises(ImageReadError, match="unrecognised content"):
        read_image(tmp_path / "x.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)
    assert issubclass(ImageReadError, ValueError)


def test_image_read_error_pickles():
    import pickle

    err = pickle.loads(pickle.dumps(ImageReadError("a.png", "broken")))
    assert err.path == "a.png" and err.cause == "broken" and "a.png" in str(err)


# ---------------------------------------------------------------------------------------------
# colour


@pytest.fixture
def retina():
    import skimage.data

    return skimage.data.retina()[600:664, 600:680]


def test_rgb_to_grey_matches_skimage(retina):
    from skimage.color import rgb2gray

    out = rgb_to_grey(retina)
    assert out.dtype == np.float32 and out.shape == retina.shape[:2]
    np.testing.assert_allclose(out, rgb2gray(retina), atol=1e-6)


def test_rgb_to_grey_weights_change_the_result(retina):
    bt601 = rgb_to_grey(retina, weights=BT601)
    f = retina.astype(np.float64) / 255
    np.testing.assert_allclose(bt601, 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2],
                               atol=1e-6)
    assert not np.allclose(bt601, rgb_to_grey(retina))
    with pytest.raises(ValueError, match="weights"):
        rgb_to_grey(retina, weights=(1, 2))


def test_rgb_to_grey_dtypes_and_alpha():
    px = np.array([[[65535, 0, 0, 7]]], dtype=np.uint16)
    assert rgb_to_grey(px)[0, 0] == pytest.approx(0.2125)
    f64 = np.array([[[0.0, 1.0, 0.0]]])
    assert rgb_to_grey(f64).dtype == np.float64
    assert rgb_to_grey(f64)[0, 0] == pytest.approx(0.7154)


def test_hsv_and_lab_match_skimage(retina):
    from skimage.color import rgb2hsv, rgb2lab

    np.testing.assert_allclose(rgb_to_hsv(retina), rgb2hsv(retina), atol=1e-6)
    np.testing.assert_allclose(rgb_to_lab(retina), rgb2lab(retina), atol=1e-4)
    lab = rgb_to_lab(np.array([[[1.0, 1.0, 1.0]]]))
    np.testing.assert_allclose(lab[0, 0], [100, 0, 0], atol=1e-2)


@pytest.mark.parametrize("func", [rgb_to_grey, rgb_to_hsv, rgb_to_lab])
def test_colour_helpers_refuse_bad_input(func):
    with pytest.raises(ValueError, match="last axis"):
        func(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="dtype"):
        func(np.zeros((4, 4, 3), dtype=complex))
    with pytest.raises(ValueError, match="empty"):
        func(np.zeros((0, 4, 3)))
