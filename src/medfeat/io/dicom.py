"""DICOM in: pixel data to modality values, display windowing, and series to volumes.

pydicom parses the files and its pixel-data plugins decode them (the ``dicom`` extra installs
pylibjpeg with its openjpeg and rle plugins, and pyjpegls — nothing GPL). What happens to the
decoded values afterwards is written here, after the DICOM standard:

* PS3.10 §7.1 — a DICOM file starts with a 128-byte preamble and ``DICM``.
* PS3.3 §C.7.6.3 Image Pixel module — Photometric Interpretation, samples, bits; §C.7.6.3.1.5/6 and
  §C.7.9 palette colour lookup tables (applied through pydicom's ``apply_color_lut``).
* PS3.3 §C.11.1 Modality LUT module — the Modality LUT Sequence, or Rescale Slope and Intercept:
  stored values → modality values (HU for CT).
* PS3.3 §C.11.2 VOI LUT module — the VOI LUT Sequence, or Window Center/Width with the VOI LUT
  Function: LINEAR (§C.11.2.1.2.1), LINEAR_EXACT (§C.11.2.1.3.2), SIGMOID (§C.11.2.1.3.1).
  MONOCHROME1 (§C.7.6.3.1.2) is inverted after windowing, so that 1 is always bright.
* PS3.3 §C.7.6.2 Image Plane module — Image Position/Orientation (Patient) and Pixel Spacing; a
  series is sorted by the position projected on the slice normal (§C.7.6.2.1.1).
* PS3.3 §C.7.6.16 Multi-frame Functional Groups — Pixel Measures, Plane Position/Orientation, Pixel
  Value Transformation and Frame VOI LUT, read from the per-frame group, else the shared one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import warnings

import numpy as np

from ._errors import ImageReadError, check_file, check_folder

__all__ = ["ImageMeta", "read_dicom", "read_series", "is_dicom"]

# warnings.catch_warnings changes process-wide state, so reads that collect pydicom's warnings
# take turns.
_LOCK = threading.RLock()


@contextlib.contextmanager
def _collecting_warnings():
    """pydicom warns on malformed values whenever an element is first converted (at read time or
    much later, on access); every DICOM step runs inside this, and the messages go to
    :attr:`ImageMeta.warnings` instead of the user's console."""
    with _LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

# Which package decodes which compressed transfer syntax (the pydicom pixel-data plugins).
_PROVIDERS = {
    "1.2.840.10008.1.2.4.50": "Pillow (8-bit), or pylibjpeg-libjpeg (GPL-3.0) or python-gdcm",
    "1.2.840.10008.1.2.4.51": "pylibjpeg with pylibjpeg-libjpeg (GPL-3.0), or python-gdcm "
                              "(Pillow reads 8-bit JPEG only)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg with pylibjpeg-libjpeg (GPL-3.0), or python-gdcm",
    "1.2.840.10008.1.2.4.70": "pylibjpeg with pylibjpeg-libjpeg (GPL-3.0), or python-gdcm",
    "1.2.840.10008.1.2.4.80": "pyjpegls (installed by medfeat[dicom]), or python-gdcm",
    "1.2.840.10008.1.2.4.81": "pyjpegls (installed by medfeat[dicom]), or python-gdcm",
    "1.2.840.10008.1.2.4.90": "pylibjpeg with pylibjpeg-openjpeg (installed by medfeat[dicom])",
    "1.2.840.10008.1.2.4.91": "pylibjpeg with pylibjpeg-openjpeg (installed by medfeat[dicom])",
    "1.2.840.10008.1.2.4.201": "pylibjpeg with pylibjpeg-openjpeg (installed by medfeat[dicom])",
    "1.2.840.10008.1.2.4.202": "pylibjpeg with pylibjpeg-openjpeg (installed by medfeat[dicom])",
    "1.2.840.10008.1.2.4.203": "pylibjpeg with pylibjpeg-openjpeg (installed by medfeat[dicom])",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle (installed by medfeat[dicom])",
}


@dataclasses.dataclass(frozen=True)
class ImageMeta:
    """What a DICOM file says about its image (PS3.3 Image Pixel, Image Plane, VOI LUT modules).

    Lengths are in millimetres, positions in the patient coordinate system (PS3.3 §C.7.6.2.1.1).
    Attributes the file lacks are ``None`` (or an empty tuple for the windows).

    Attributes
    ----------
    path : str
    modality : str or None
        (0008,0060), e.g. ``"CT"``.
    shape : tuple of int
        Shape of the returned array.
    number_of_frames : int
    photometric_interpretation : str or None
    samples_per_pixel : int or None
    bits_allocated, bits_stored, pixel_representation : int or None
    pixel_spacing : (float, float) or None
        (row spacing, column spacing), i.e. (dy, dx).
    slice_thickness, spacing_between_slices : float or None
    image_position : (float, float, float) or None
        Image Position (Patient) of the first transmitted pixel.
    image_orientation : tuple of 6 floats or None
        Row then column direction cosines.
    window_center, window_width : tuple of float
        Every window the file offers (``window_index`` picks one).
    voi_lut_function : str
        ``"LINEAR"`` unless the file says otherwise.
    rescale_slope, rescale_intercept : float or None
    transfer_syntax, transfer_syntax_name : str or None
    patient_id, study_uid, series_uid, sop_instance_uid : str or None
    instance_number : int or None
    window_applied : tuple or None
        What ``window=`` did: ``("LINEAR", center, width)`` (or another function), ``("VOI LUT",
        index)``, ``("minmax", lo, hi)``, ``("bits", max_value)`` for colour, or ``None``.
    warnings : tuple of str
        Warnings pydicom raised while reading (e.g. padded pixel data), kept here rather than
        printed.
    """

    path: str
    modality: str | None = None
    shape: tuple = ()
    number_of_frames: int = 1
    photometric_interpretation: str | None = None
    samples_per_pixel: int | None = None
    bits_allocated: int | None = None
    bits_stored: int | None = None
    pixel_representation: int | None = None
    pixel_spacing: tuple | None = None
    slice_thickness: float | None = None
    spacing_between_slices: float | None = None
    image_position: tuple | None = None
    image_orientation: tuple | None = None
    window_center: tuple = ()
    window_width: tuple = ()
    voi_lut_function: str = "LINEAR"
    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    transfer_syntax: str | None = None
    transfer_syntax_name: str | None = None
    patient_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    sop_instance_uid: str | None = None
    instance_number: int | None = None
    window_applied: tuple | None = None
    warnings: tuple = ()


def is_dicom(path):
    """Whether ``path`` is a DICOM file (the ``DICM`` prefix after the 128-byte preamble).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    bool

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> is_dicom(get_testdata_file("CT_small.dcm"))
    True
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


# --------------------------------------------------------------------------------------------
# reading


def _dcmread(path, *, header_only):
    """The dataset (call inside :func:`_collecting_warnings`)."""
    path = check_file(path)
    if not is_dicom(path):
        raise ImageReadError(path, "not a DICOM file: no 'DICM' prefix after the 128-byte "
                                   "preamble (PS3.10 §7.1)")
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=header_only)
    except Exception as exc:  # pydicom raises many types on malformed files
        raise ImageReadError(path, f"cannot parse the DICOM file ({type(exc).__name__}: "
                                   f"{exc})") from exc


def _get(ds, keyword, convert=None):
    """An attribute converted with ``convert``; ``None`` when absent or empty."""
    value = ds.get(keyword, None)
    if value is None or value == "":
        return None
    return convert(value) if convert is not None else value


def _floats(value):
    try:
        return tuple(float(v) for v in value)
    except TypeError:
        return (float(value),)


def _functional(ds, sequence, keyword, frame=0):
    """``keyword`` from the per-frame functional group ``frame``, else the shared one (§C.7.6.16)."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame),
                          ("SharedFunctionalGroupsSequence", 0)):
        seq = ds.get(groups, None)
        if not seq or index >= len(seq):
            continue
        inner = seq[index].get(sequence, None)
        if inner and keyword in inner[0] and inner[0][keyword].value not in (None, ""):
            return inner[0][keyword].value
    return None


def _attr(ds, keyword, sequence, frame=0):
    """A top-level attribute, else from the functional groups of enhanced multi-frame files."""
    value = _get(ds, keyword)
    if value is None:
        value = _functional(ds, sequence, keyword, frame)
    return value


def _meta(ds, path, *, shape=(), window_applied=None, frame=0):
    fm = getattr(ds, "file_meta", None)
    ts = fm.get("TransferSyntaxUID", None) if fm is not None else None
    spacing = _attr(ds, "PixelSpacing", "PixelMeasuresSequence", frame)
    thickness = _attr(ds, "SliceThickness", "PixelMeasuresSequence", frame)
    position = _attr(ds, "ImagePositionPatient", "PlanePositionSequence", frame)
    orientation = _attr(ds, "ImageOrientationPatient", "PlaneOrientationSequence", frame)
    centers = _attr(ds, "WindowCenter", "FrameVOILUTSequence", frame)
    widths = _attr(ds, "WindowWidth", "FrameVOILUTSequence", frame)
    function = _attr(ds, "VOILUTFunction", "FrameVOILUTSequence", frame)
    return ImageMeta(
        path=os.fspath(path),
        modality=_get(ds, "Modality", str),
        shape=tuple(shape),
        number_of_frames=int(_get(ds, "NumberOfFrames", int) or 1),
        photometric_interpretation=_get(ds, "PhotometricInterpretation", str),
        samples_per_pixel=_get(ds, "SamplesPerPixel", int),
        bits_allocated=_get(ds, "BitsAllocated", int),
        bits_stored=_get(ds, "BitsStored", int),
        pixel_representation=_get(ds, "PixelRepresentation", int),
        pixel_spacing=_floats(spacing)[:2] if spacing is not None else None,
        slice_thickness=float(thickness) if thickness is not None else None,
        spacing_between_slices=_get(ds, "SpacingBetweenSlices", float),
        image_position=_floats(position) if position is not None else None,
        image_orientation=_floats(orientation) if orientation is not None else None,
        window_center=_floats(centers) if centers is not None else (),
        window_width=_floats(widths) if widths is not None else (),
        voi_lut_function=str(function).strip().upper() if function else "LINEAR",
        rescale_slope=_get(ds, "RescaleSlope", float),
        rescale_intercept=_get(ds, "RescaleIntercept", float),
        transfer_syntax=str(ts) if ts else None,
        transfer_syntax_name=ts.name if ts else None,
        patient_id=_get(ds, "PatientID", str),
        study_uid=_get(ds, "StudyInstanceUID", str),
        series_uid=_get(ds, "SeriesInstanceUID", str),
        sop_instance_uid=_get(ds, "SOPInstanceUID", str),
        instance_number=_get(ds, "InstanceNumber", int),
        window_applied=window_applied,
    )


def _check_decodable(ds, path):
    """Clear errors for what pydicom would fail on later, deep inside a plugin."""
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        sop = ds.get("SOPClassUID", None)
        what = f" (SOP class {sop.name})" if sop else ""
        raise ImageReadError(path, f"the file holds no pixel data{what}")
    fm = getattr(ds, "file_meta", None)
    ts = fm.get("TransferSyntaxUID", None) if fm is not None else None
    if not ts:
        raise ImageReadError(path, "the file meta information has no Transfer Syntax UID "
                                   "(0002,0010), so the pixel data cannot be interpreted")
    if ts.is_compressed:
        from pydicom.pixels import get_decoder

        try:
            decoder = get_decoder(ts)
        except NotImplementedError as exc:
            raise ImageReadError(path, f"pydicom has no decoder for the transfer syntax "
                                       f"{ts.name} ({ts})") from exc
        if not decoder.is_available:
            provider = _PROVIDERS.get(str(ts), "a pydicom pixel-data plugin for it")
            raise ImageReadError(path, f"no decoder for the transfer syntax {ts.name} ({ts}) is "
                                       f"installed; it is provided by {provider}")
    return ts


def _decode(ds, path, ts, frame):
    """Decoded stored values (YBR converted to RGB, as ``Dataset.pixel_array`` gives them)."""
    from pydicom.pixels import pixel_array

    try:
        if frame is None:
            return ds.pixel_array
        try:  # from the file: reads only that frame's bytes
            return pixel_array(path, index=frame)
        except Exception:  # e.g. deflated data sets, which must be inflated whole
            return pixel_array(ds, index=frame)
    except Exception as exc:
        msg = str(exc).strip().replace("\n", " ")
        hint = ""
        if "Unable to decode" in msg or "does not support" in msg:
            hint = f"; {ts.name} may need {_PROVIDERS.get(str(ts), 'another plugin')}"
        raise ImageReadError(path, f"cannot decode the {ts.name} pixel data "
                                   f"({type(exc).__name__}: {msg[:300]}){hint}") from exc


def _lut(item, ds, what, path):
    """(first mapped value, entries as float64, bits per entry) of a LUT item (§C.11.1.1.1)."""
    try:
        desc = [int(v) for v in item.LUTDescriptor]
        n, first, bits = (desc[0] or 65536), desc[1], desc[2]
        elem = item["LUTData"]
        if isinstance(elem.value, (bytes, bytearray)):
            little = getattr(ds, "original_encoding", (None, True))[1] is not False
            data = np.frombuffer(elem.value, dtype="<u2" if little else ">u2")
        else:
            data = np.asarray(_floats(elem.value) if not np.isscalar(elem.value)
                              else [elem.value], dtype=np.float64)
    except Exception as exc:
        raise ImageReadError(path, f"unreadable {what} ({type(exc).__name__}: {exc})") from exc
    if data.size < n:
        raise ImageReadError(path, f"{what} declares {n} entries but holds {data.size}")
    # The first value mapped is US or SS following Pixel Representation (§C.11.1.1.1).
    if first >= 32768 and int(ds.get("PixelRepresentation", 0) or 0) == 1:
        first -= 65536
    return first, np.asarray(data[:n], dtype=np.float64), bits


def _apply_lut(values, first, table):
    """Values below the first mapped one take the first entry, above the last the last."""
    idx = np.floor(values - first)
    np.clip(idx, 0, table.size - 1, out=idx)
    return table[idx.astype(np.intp)]


def _modality(arr, ds, path, frame):
    """Stored values → modality values (§C.11.1), as float64; and the rescale used, if any."""
    seq = ds.get("ModalityLUTSequence", None)
    if seq:
        first, table, _ = _lut(seq[0], ds, "Modality LUT", path)
        return _apply_lut(arr.astype(np.float64), first, table)
    out = arr.astype(np.float64)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        try:
            slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        except Exception as exc:
            raise ImageReadError(path, f"unreadable Rescale Slope/Intercept ({exc})") from exc
        pairs = [(slope, intercept)]
    else:
        # Enhanced multi-frame: Pixel Value Transformation per frame, else shared (§C.7.6.16.2.9).
        nframes = int(ds.get("NumberOfFrames", 1) or 1)
        frames = range(nframes) if frame is None else [frame]
        pairs = []
        for f in frames:
            s = _functional(ds, "PixelValueTransformationSequence", "RescaleSlope", f)
            i = _functional(ds, "PixelValueTransformationSequence", "RescaleIntercept", f)
            pairs.append((float(s), float(i)) if s is not None and i is not None else None)
        if all(p is None for p in pairs):
            return out
        pairs = [p if p is not None else (1.0, 0.0) for p in pairs]
        if len(set(pairs)) > 1 and frame is None and nframes > 1:
            slopes = np.array([p[0] for p in pairs]).reshape((-1,) + (1,) * (out.ndim - 1))
            inters = np.array([p[1] for p in pairs]).reshape(slopes.shape)
            return out * slopes + inters
    slope, intercept = pairs[0]
    if slope == 0:
        raise ImageReadError(path, "Rescale Slope is 0: every pixel would have the same value")
    out *= slope
    out += intercept
    return out


def _window_function(x, center, width, function, *, source, path):
    """VOI LUT Function on modality values → [0, 1] (§C.11.2.1.2.1, §C.11.2.1.3)."""
    def bad(msg):
        return ImageReadError(path, msg) if source == "file" else ValueError(msg)

    if not (np.isfinite(center) and np.isfinite(width)):
        raise bad(f"window center/width must be finite, got ({center}, {width})")
    if function == "LINEAR":
        if width < 1:
            raise bad(f"Window Width must be >= 1 for the LINEAR function (PS3.3 §C.11.2.1.2.1), "
                      f"got {width}")
        c, w = center - 0.5, width - 1.0
    elif function in ("LINEAR_EXACT", "SIGMOID"):
        if width <= 0:
            raise bad(f"Window Width must be > 0 for the {function} function, got {width}")
        c, w = center, width
    else:
        raise bad(f"unsupported VOI LUT Function {function!r} (LINEAR, LINEAR_EXACT, SIGMOID)")
    if function == "SIGMOID":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    lo, hi = c - w / 2, c + w / 2
    y = np.empty_like(x)
    below, above = x <= lo, x > hi
    mid = ~(below | above)
    y[below], y[above] = 0.0, 1.0
    y[mid] = (x[mid] - c) / w + 0.5  # w > 0 here whenever ``mid`` is non-empty
    return y


def _voi(values, ds, path, window, window_index, meta, frame):
    """Modality values → display values in [0, 1] (§C.11.2); and what was applied."""
    if isinstance(window, str):
        if window != "auto":
            raise ValueError(f"window must be None, 'auto' or (center, width), got {window!r}")
        seq = ds.get("VOILUTSequence", None)
        if seq and "LUTDescriptor" in seq[0] and "LUTData" in seq[0]:
            if not 0 <= window_index < len(seq):
                raise ValueError(f"window_index={window_index}, but {path!r} has {len(seq)} VOI "
                                 f"LUT(s)")
            first, table, bits = _lut(seq[window_index], ds, "VOI LUT", path)
            y = _apply_lut(values, first, table) / float(2 ** bits - 1)
            return y, ("VOI LUT", window_index)
        if meta.window_center and meta.window_width:
            n = min(len(meta.window_center), len(meta.window_width))
            if not 0 <= window_index < n:
                raise ValueError(f"window_index={window_index}, but {path!r} has {n} window(s)")
            c, w = meta.window_center[window_index], meta.window_width[window_index]
            y = _window_function(values, c, w, meta.voi_lut_function, source="file", path=path)
            return y, (meta.voi_lut_function, c, w)
        lo, hi = float(np.min(values)), float(np.max(values))  # no VOI in the file: full range
        y = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
        return y, ("minmax", lo, hi)
    try:
        c, w = (float(v) for v in window)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"window must be None, 'auto' or (center, width), got {window!r}") \
            from exc
    y = _window_function(values, c, w, meta.voi_lut_function, source="user", path=path)
    return y, (meta.voi_lut_function, c, w)


def read_dicom(path, *, window=None, frame=None, return_meta=False, window_index=0, lazy=False):
    """Read a DICOM image as modality values (float32), optionally windowed to [0, 1].

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM file (Part 10, with the ``DICM`` prefix).
    window : None, "auto" or (float, float), optional
        ``None`` (default): modality values — the Modality LUT, or Rescale Slope/Intercept, applied
        to the stored values (HU for CT), exactly as pydicom's ``apply_modality_lut`` gives them.
        ``"auto"``: the file's VOI LUT Sequence, else its Window Center/Width with its VOI LUT
        Function (LINEAR, LINEAR_EXACT or SIGMOID), mapped to [0, 1]; a file without either is
        scaled from its minimum to its maximum; colour images are divided by ``2**BitsStored - 1``.
        ``(center, width)``: that window, with the file's VOI LUT Function (LINEAR if none).
        MONOCHROME1 images are inverted after windowing, so 1 is always bright.
    frame : int, optional
        Decode only this frame (0-based) of a multi-frame file; from the file, so a large file
        is not decoded whole.
    return_meta : bool, optional
        Also return the :class:`ImageMeta`.
    window_index : int, optional
        Which of several windows or VOI LUTs ``window="auto"`` uses (default: the first).
    lazy : bool, optional
        Return a :class:`dask.array.Array` instead (``medfeat[dask]``): only the header is read
        now, and each frame is decoded (one chunk per frame, from the file) when computed, with
        the values the eager call gives (a multi-frame file with ``window`` is one chunk: its
        window may depend on every frame). ``meta`` then comes from the header
        (``window_applied`` and ``warnings`` are those of decoding, so not filled in).

    Returns
    -------
    image : ndarray (or dask array) of float32
        ``(rows, cols)``, ``(frames, rows, cols)`` for multi-frame files, with a trailing axis of
        3 (RGB) for colour images — YBR is converted to RGB and palette colour looked up.
    meta : ImageMeta
        Only when ``return_meta`` is true.

    Raises
    ------
    ImageReadError
        Not a DICOM file, malformed or truncated, no pixel data, or no decoder installed for its
        transfer syntax (the message names the syntax and the package that provides a decoder).
    ValueError
        A bad ``window``, ``frame`` or ``window_index``.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> hu = read_dicom(get_testdata_file("CT_small.dcm"))
    >>> hu.shape, hu.dtype
    ((128, 128), dtype('float32'))
    >>> img, meta = read_dicom(get_testdata_file("CT_small.dcm"), window=(40, 400),
    ...                        return_meta=True)
    >>> float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    True
    >>> meta.modality, meta.pixel_spacing
    ('CT', (0.661468, 0.661468))
    """
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, (int, np.integer))):
        raise ValueError(f"frame must be an int or None, got {frame!r}")
    if lazy:
        return _lazy_dicom(os.fspath(path), window, frame, window_index, return_meta)
    with _collecting_warnings() as caught:
        out, meta = _read_dicom(os.fspath(path), window, frame, window_index)
        warns = tuple(str(w.message) for w in caught)
    if not return_meta:
        return out
    return out, dataclasses.replace(meta, warnings=warns)


def _read_dicom(path, window, frame, window_index):
    ds = _dcmread(path, header_only=False)
    ts = _check_decodable(ds, path)
    try:
        nframes = int(ds.get("NumberOfFrames", 1) or 1)
    except Exception as exc:
        raise ImageReadError(path, f"unreadable Number of Frames ({exc})") from exc
    if frame is not None:
        frame = int(frame)
        if not 0 <= frame < nframes:
            raise ValueError(f"frame={frame} is out of range: {path!r} has {nframes} frame(s)")
    arr = _decode(ds, path, ts, frame)
    try:
        photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
        if photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            rgb = apply_color_lut(arr, ds)
            values, full_scale = rgb.astype(np.float64), float(np.iinfo(rgb.dtype).max)
        else:
            values = _modality(arr, ds, path, frame)
            full_scale = float(2 ** int(ds.get("BitsStored", 8) or 8) - 1)
        colour = values.ndim >= 3 and values.shape[-1] == 3 and (
            int(ds.get("SamplesPerPixel", 1) or 1) == 3 or photometric == "PALETTE COLOR")
        meta = _meta(ds, path, shape=values.shape, frame=frame or 0)
    except ImageReadError:
        raise
    except Exception as exc:  # malformed attributes surface here
        raise ImageReadError(path, f"malformed image attributes ({type(exc).__name__}: "
                                   f"{exc})") from exc
    applied = None
    if window is not None:
        if colour:
            if window != "auto":
                raise ValueError("window=(center, width) applies to monochrome images; "
                                 f"{path!r} is {photometric}")
            values = np.clip(values / full_scale, 0.0, 1.0)
            applied = ("bits", full_scale)
        else:
            values, applied = _voi(values, ds, path, window, window_index, meta, frame)
            if photometric == "MONOCHROME1":
                values = 1.0 - values
    return values.astype(np.float32), dataclasses.replace(meta, window_applied=applied)


def _frame(path, window, window_index, frame):
    """One frame of a file (all of a single-frame file) as the eager reader gives it, with a
    leading axis of one."""
    return read_dicom(path, window=window, frame=frame, window_index=window_index)[None]


def _lazy_dicom(path, window, frame, window_index, return_meta):
    """:func:`read_dicom` as a dask array: shape from the header, one chunk per frame."""
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError("lazy=True needs dask: pip install 'medfeat[dask]'") from None
    with _collecting_warnings():
        _dcmread(path, header_only=True)  # the errors for missing and non-DICOM files
        import pydicom

        # large values (the pixel data) stay on disk: read when a frame is computed
        ds = pydicom.dcmread(path, defer_size=1 << 10)
        _check_decodable(ds, path)
        try:
            nframes = int(ds.get("NumberOfFrames", 1) or 1)
            plane = (int(ds.Rows), int(ds.Columns))
            photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
            colour = int(ds.get("SamplesPerPixel", 1) or 1) == 3 or photometric == "PALETTE COLOR"
        except Exception as exc:
            raise ImageReadError(path, f"malformed image attributes ({type(exc).__name__}: "
                                       f"{exc})") from exc
    plane += (3,) if colour else ()
    if frame is not None and not 0 <= int(frame) < nframes:
        raise ValueError(f"frame={frame} is out of range: {path!r} has {nframes} frame(s)")
    read = dask.delayed(_frame, pure=True)
    if frame is not None or nframes == 1:
        f = None if frame is None and nframes == 1 else int(frame)
        out = da.from_delayed(read(path, window, window_index, f), (1, *plane), np.float32)[0]
    elif window is not None:
        # the window of a multi-frame file can depend on every frame (the min-max fallback of
        # window="auto"), so it is read as one chunk
        out = da.from_delayed(read(path, window, window_index, None), (1, nframes, *plane),
                              np.float32)[0]
    else:
        out = da.concatenate([da.from_delayed(read(path, window, window_index, k), (1, *plane),
                                              np.float32) for k in range(nframes)])
    if not return_meta:
        return out
    return out, _meta(ds, path, shape=tuple(out.shape), frame=frame or 0)


# --------------------------------------------------------------------------------------------
# series


def read_series(folder, *, window=None, series_uid=None, return_meta=False, lazy=False):
    """Read the slices of one series as a volume sorted along the slice normal.

    Slices are ordered by Image Position (Patient) projected on the normal of the slice plane,
    the cross product of the row and column direction cosines of Image Orientation (Patient)
    (PS3.3 §C.7.6.2.1.1) — not by file name or Instance Number.

    Parameters
    ----------
    folder : str or os.PathLike
        A folder holding the files of the series (files without the ``DICM`` prefix, and
        ``DICOMDIR``, are ignored; sub-folders are not searched).
    window : None, "auto" or (float, float), optional
        As in :func:`read_dicom`, applied slice by slice.
    series_uid : str, optional
        Which series to read when the folder holds several.
    return_meta : bool, optional
        Also return the :class:`ImageMeta` of each slice, in volume order.
    lazy : bool, optional
        Return the volume as a :class:`dask.array.Array` with one chunk per slice
        (``medfeat[dask]``): the headers are read and checked now, each slice when computed. The
        metas are then those of the headers.

    Returns
    -------
    volume : ndarray (or dask array) of float32, shape (slices, rows, cols)
    spacing : (float, float, float)
        ``(dz, dy, dx)`` in mm: the distance between slice positions, then Pixel Spacing. For a
        single slice ``dz`` is Spacing Between Slices, else Slice Thickness, else NaN.
    metas : list of ImageMeta
        Only when ``return_meta`` is true.

    Raises
    ------
    ImageReadError
        No DICOM files; several series (and no ``series_uid``); a slice without position or
        orientation; different orientations, shapes or pixel spacings; two slices at one position;
        unevenly spaced slices; multi-frame files; or any unreadable file.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from pydicom.data import get_testdata_file
    >>> folder = tempfile.mkdtemp()
    >>> _ = shutil.copy(get_testdata_file("CT_small.dcm"), folder)
    >>> volume, spacing = read_series(folder)
    >>> volume.shape, spacing[1:]
    ((1, 128, 128), (0.661468, 0.661468))
    >>> shutil.rmtree(folder)
    """
    folder = check_folder(folder)
    names = sorted(n for n in os.listdir(folder) if not n.startswith(".") and n != "DICOMDIR")
    paths = [os.path.join(folder, n) for n in names]
    paths = [p for p in paths if os.path.isfile(p) and is_dicom(p)]
    if not paths:
        raise ImageReadError(folder, "no DICOM files in the folder")
    headers = []
    with _collecting_warnings():  # the slices are read again below, keeping their warnings
        for p in paths:
            ds = _dcmread(p, header_only=True)
            try:
                headers.append((p, _meta(ds, p)))
            except Exception as exc:
                raise ImageReadError(p, f"malformed attributes ({type(exc).__name__}: "
                                        f"{exc})") from exc
    uids = sorted({m.series_uid or "" for _, m in headers})
    if series_uid is not None:
        headers = [(p, m) for p, m in headers if m.series_uid == series_uid]
        if not headers:
            raise ImageReadError(folder, f"no file of series {series_uid!r}; found {uids}")
    elif len(uids) > 1:
        counts = {u: sum(m.series_uid == u for _, m in headers) for u in uids}
        raise ImageReadError(folder, f"the folder mixes {len(uids)} series {counts}; pass "
                                     "series_uid= to pick one")
    ref_path, ref = headers[0]
    for p, m in headers:
        if m.number_of_frames != 1:
            raise ImageReadError(p, f"multi-frame file ({m.number_of_frames} frames) in a series "
                                    "of slices; read it with read_dicom")
        if m.image_position is None or len(m.image_position) != 3:
            raise ImageReadError(p, "no Image Position (Patient) (0020,0032): the slice cannot "
                                    "be placed in the series")
        if m.image_orientation is None or len(m.image_orientation) != 6:
            raise ImageReadError(p, "no Image Orientation (Patient) (0020,0037)")
        if not np.allclose(m.image_orientation, ref.image_orientation, atol=1e-4):
            raise ImageReadError(p, f"orientation {m.image_orientation} differs from "
                                    f"{ref.image_orientation} of {ref_path!r}")
        if m.pixel_spacing != ref.pixel_spacing:
            raise ImageReadError(p, f"pixel spacing {m.pixel_spacing} differs from "
                                    f"{ref.pixel_spacing} of {ref_path!r}")
    row, col = np.array(ref.image_orientation[:3]), np.array(ref.image_orientation[3:])
    normal = np.cross(row, col)
    if not np.isclose(np.linalg.norm(normal), 1.0, atol=1e-3):
        raise ImageReadError(ref_path, f"Image Orientation (Patient) {ref.image_orientation} "
                                       "is not a pair of orthogonal unit vectors")
    depth = np.array([np.dot(m.image_position, normal) for _, m in headers])
    order = np.argsort(depth, kind="stable")
    depth = depth[order]
    headers = [headers[i] for i in order]
    gaps = np.diff(depth)
    if gaps.size:
        dup = np.flatnonzero(gaps < 1e-3)
        if dup.size:
            a, b = headers[dup[0]][0], headers[dup[0] + 1][0]
            raise ImageReadError(folder, f"two slices at the same position {depth[dup[0]]:.3f} "
                                         f"mm along the normal: {a!r} and {b!r}")
        dz = float(np.median(gaps))
        if np.max(np.abs(gaps - dz)) > max(1e-2 * dz, 1e-3):
            raise ImageReadError(folder, f"slices are unevenly spaced (gaps from "
                                         f"{gaps.min():.4g} to {gaps.max():.4g} mm): missing "
                                         "slices or several stacks")
    else:
        dz = ref.spacing_between_slices or ref.slice_thickness or float("nan")
    if lazy:
        return _lazy_series(headers, window, dz, ref, return_meta)
    slices, metas = [], []
    for p, _ in headers:
        img, meta = read_dicom(p, window=window, return_meta=True)
        if slices and img.shape != slices[0].shape:
            raise ImageReadError(p, f"slice shape {img.shape} differs from {slices[0].shape} "
                                    f"of {metas[0].path!r}")
        slices.append(img)
        metas.append(meta)
    volume = np.stack(slices)
    dy, dx = ref.pixel_spacing if ref.pixel_spacing else (float("nan"), float("nan"))
    spacing = (float(dz), float(dy), float(dx))
    if return_meta:
        return volume, spacing, metas
    return volume, spacing


def _lazy_series(headers, window, dz, ref, return_meta):
    """The volume of :func:`read_series` as a dask array of one chunk per slice."""
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError("lazy=True needs dask: pip install 'medfeat[dask]'") from None
    with _collecting_warnings():
        shapes = []
        for p, _ in headers:
            ds = _dcmread(p, header_only=True)
            shapes.append((int(ds.Rows), int(ds.Columns)))
    for (p, _), shape in zip(headers, shapes):
        if shape != shapes[0]:
            raise ImageReadError(p, f"slice shape {shape} differs from {shapes[0]} of "
                                    f"{headers[0][0]!r}")
    read = dask.delayed(_frame, pure=True)
    volume = da.concatenate([da.from_delayed(read(p, window, 0, None), (1, *shapes[0]),
                                             np.float32) for p, _ in headers])
    dy, dx = ref.pixel_spacing if ref.pixel_spacing else (float("nan"), float("nan"))
    spacing = (float(dz), float(dy), float(dx))
    if return_meta:
        return volume, spacing, [m for _, m in headers]
    return volume, spacing
