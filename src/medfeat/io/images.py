"""The common image formats, recognised by content, and colour conversions.

PNG, JPEG and BMP are decoded by Pillow, TIFF by tifffile, ``.npy`` by NumPy and DICOM by
:func:`medfeat.io.read_dicom`. The format is chosen from the first bytes of the file, never from its
name, so a PNG called ``scan.dcm`` still reads as a PNG.
"""

from __future__ import annotations

import numpy as np

from ._errors import ImageReadError, check_file

__all__ = ["read_image", "sniff_format", "rgb_to_grey", "rgb_to_hsv", "rgb_to_lab"]

#: ITU-R BT.709 luma weights (the sRGB primaries), the ones scikit-image's ``rgb2gray`` uses.
BT709 = (0.2125, 0.7154, 0.0721)
#: ITU-R BT.601 luma weights (the NTSC / JPEG convention, Pillow's ``convert("L")``).
BT601 = (0.299, 0.587, 0.114)


def sniff_format(path):
    """The format of a file from its first bytes ("png", "jpeg", "tiff", "bmp", "npy", "dicom").

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str or None
        ``None`` when the content matches no supported format.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> sniff_format(get_testdata_file("MR_small.dcm"))
    'dicom'
    """
    path = check_file(path)
    with open(path, "rb") as fh:
        head = fh.read(132)
    # DICOM first: a DICOM preamble may itself hold a TIFF header (dual-personality files)
    if len(head) == 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "tiff"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"BM") and len(head) >= 26:
        return "bmp"
    return None


def _read_pillow(path):
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode == "P":  # palette: expand to what the palette holds
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            elif mode == "CMYK":
                img = img.convert("RGB")
            elif mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(img).astype(np.uint16)
            arr = np.asarray(img)
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's ways of saying "corrupt"
        raise ImageReadError(path, f"cannot decode the image ({type(exc).__name__}: {exc})") \
            from exc
    if arr.dtype == np.int32 and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # mode "I" holding 16-bit data
    return arr


def _png_is_deep_colour(path):
    """16-bit colour PNG: Pillow would silently reduce it to 8 bits (IHDR, PNG spec §11.2.2)."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    return len(head) == 26 and head[24] == 16 and head[25] in (2, 4, 6)


def _read_tiff(path):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series
            if not series:
                raise ImageReadError(path, "the TIFF file holds no image")
            if len(series) == 1:
                return series[0].asarray()
            stacks = [s.asarray() for s in series]
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(path, f"cannot decode the TIFF file ({type(exc).__name__}: {exc})") \
            from exc
    shapes = {a.shape for a in stacks}
    dtypes = {a.dtype for a in stacks}
    if len(shapes) > 1 or len(dtypes) > 1:
        raise ImageReadError(path, f"the TIFF pages differ in shape or type ({sorted(shapes)}), "
                                   "they cannot be stacked")
    return np.stack(stacks)


def _read_npy(path):
    try:
        with open(path, "rb") as fh:  # our own handle, closed even when np.load fails
            arr = np.load(fh, allow_pickle=False)
    except Exception as exc:
        raise ImageReadError(path, f"cannot read the .npy file ({type(exc).__name__}: {exc})") \
            from exc
    if arr.dtype.kind not in "biuf":
        raise ImageReadError(path, f"the array has dtype {arr.dtype}, not an image type")
    return arr


def read_image(path):
    """Read an image file of any supported format, recognised by its content.

    Parameters
    ----------
    path : str or os.PathLike
        PNG, JPEG, BMP, TIFF (several pages → a stack on the first axis), ``.npy`` or DICOM.

    Returns
    -------
    ndarray
        The stored values in their own dtype: 8-bit images as uint8, 16-bit ones as uint16;
        colour as ``(..., 3)`` RGB (or ``(..., 4)`` with alpha), palette images expanded to RGB.
        DICOM goes through :func:`medfeat.io.read_dicom` and comes back as float32 modality
        values.

    Raises
    ------
    ImageReadError
        Missing file, a folder, unknown format, corrupt or truncated content, 16-bit colour PNG
        (which Pillow would reduce to 8 bits).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "scan.dat")   # the name does not matter
    >>> Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).save(path, "PNG")
    >>> img = read_image(path)
    >>> img.dtype, img.shape, int(img.max())
    (dtype('uint16'), (3, 4), 55000)
    """
    path = check_file(path)
    kind = sniff_format(path)
    if kind is None:
        with open(path, "rb") as fh:
            head = fh.read(8)
        what = "an empty file" if not head else f"unrecognised content (starts with {head!r})"
        raise ImageReadError(path, f"{what}; supported: PNG, JPEG, BMP, TIFF, .npy, DICOM")
    if kind == "dicom":
        from .dicom import read_dicom

        return read_dicom(path)
    if kind == "tiff":
        return _read_tiff(path)
    if kind == "npy":
        return _read_npy(path)
    if kind == "png" and _png_is_deep_colour(path):
        raise ImageReadError(path, "16-bit colour PNG is not supported (Pillow would reduce it "
                                   "to 8 bits); save it as TIFF")
    return _read_pillow(path)


# --------------------------------------------------------------------------------------------
# colour


def _as_float_rgb(image, name="image"):
    """RGB(A) as floats in [0, 1]: integers scaled by their dtype maximum, floats kept."""
    image = np.asarray(image)
    if image.ndim < 2 or image.shape[-1] not in (3, 4):
        raise ValueError(f"{name} must have a last axis of 3 (RGB) or 4 (RGBA), got shape "
                         f"{image.shape}")
    if image.size == 0:
        raise ValueError(f"{name} is empty")
    rgb = image[..., :3]
    if rgb.dtype == np.bool_ or rgb.dtype.kind not in "uif":
        raise ValueError(f"{name} has unsupported dtype {image.dtype}")
    if rgb.dtype.kind in "ui":
        info = np.iinfo(rgb.dtype)
        out_type = np.float32 if info.bits <= 16 else np.float64
        return rgb.astype(out_type) / out_type(info.max)
    return rgb


def rgb_to_grey(image, *, weights=BT709):
    """Luma of an RGB image: ``weights[0]·R + weights[1]·G + weights[2]·B``.

    Parameters
    ----------
    image : array_like, shape (..., 3) or (..., 4)
        RGB (alpha is dropped). Integers are scaled to [0, 1] by their dtype maximum first.
    weights : (float, float, float), optional
        Default ITU-R BT.709 (0.2125, 0.7154, 0.0721), as scikit-image's ``rgb2gray``; pass
        :data:`BT601` (0.299, 0.587, 0.114) for the NTSC/JPEG convention.

    Returns
    -------
    ndarray
        Shape ``image.shape[:-1]``; float32 for 8- and 16-bit input, else the float type given.

    Examples
    --------
    >>> import numpy as np
    >>> rgb_to_grey(np.array([[[255, 255, 255], [255, 0, 0]]], dtype=np.uint8)).round(4)
    array([[1.    , 0.2125]], dtype=float32)
    """
    rgb = _as_float_rgb(image)
    w = np.asarray(weights, dtype=rgb.dtype)
    if w.shape != (3,) or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be three finite numbers, got {weights!r}")
    return rgb @ w


def rgb_to_hsv(image):
    """Hue, saturation, value in [0, 1] (scikit-image's ``rgb2hsv``).

    Parameters
    ----------
    image : array_like, shape (..., 3) or (..., 4)

    Returns
    -------
    ndarray, shape (..., 3)

    Examples
    --------
    >>> import numpy as np
    >>> rgb_to_hsv(np.array([[[0.0, 1.0, 0.0]]])).round(4).tolist()
    [[[0.3333, 1.0, 1.0]]]
    """
    from skimage.color import rgb2hsv

    return rgb2hsv(_as_float_rgb(image))


def rgb_to_lab(image, *, illuminant="D65"):
    """CIE L*a*b* of an sRGB image (scikit-image's ``rgb2lab``): L in [0, 100].

    Parameters
    ----------
    image : array_like, shape (..., 3) or (..., 4)
    illuminant : str, optional
        Reference white, default D65 (sRGB's).

    Returns
    -------
    ndarray, shape (..., 3)

    Examples
    --------
    >>> import numpy as np
    >>> rgb_to_lab(np.array([[[1.0, 0.0, 0.0]]])).round(1).tolist()
    [[[53.2, 80.1, 67.2]]]
    """
    from skimage.color import rgb2lab

    return rgb2lab(_as_float_rgb(image), illuminant=illuminant)
