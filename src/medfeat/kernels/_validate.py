"""Shared argument checks and the dtype contract of :mod:`medfeat.kernels`.

Every public kernel calls these on its first lines, so that bad input fails early, with a message that
names the argument and what was expected, instead of deep inside a compiled loop.
"""

from __future__ import annotations

import numbers

import numpy as np

#: dtypes every kernel accepts (bool only where a kernel says so).
SUPPORTED_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
_DTYPE_NAMES = ", ".join(np.dtype(d).name for d in SUPPORTED_DTYPES)


def _dtype_list(dtypes):
    return ", ".join(np.dtype(d).name for d in dtypes)


def check_image(image, *, name="image", ndim=(2, 3), dtypes=SUPPORTED_DTYPES, finite=False):
    """Return ``image`` as a NumPy array after checking dtype, size and rank.

    Parameters
    ----------
    image : array_like
        The input to check.
    name : str
        Argument name used in error messages.
    ndim : int or tuple of int
        Accepted numbers of dimensions.
    dtypes : tuple of dtype
        Accepted dtypes. Anything else (complex, object, int64, ...) raises.
    finite : bool
        If True, floating-point input containing NaN or infinity raises.

    Returns
    -------
    numpy.ndarray
        The input as an array (no copy when it already is one).

    Raises
    ------
    ValueError
        If any check fails; the message names ``name`` and what was expected.

    Examples
    --------
    >>> import numpy as np
    >>> check_image(np.zeros((4, 4), np.uint8)).shape
    (4, 4)
    """
    if image is None:
        raise ValueError(f"{name} must be an array, got None")
    if _on_gpu(image) and not isinstance(image, np.ndarray):
        raise ValueError(
            f"{name} lives on the GPU; CPU backends need a NumPy array (use backend='cuda' or 'auto')"
        )
    try:
        arr = np.asarray(image)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be convertible to a NumPy array: {exc}") from None
    dt = arr.dtype
    if dt.kind == "c":
        raise ValueError(f"{name} must be real-valued, got complex dtype {dt}")
    if dt.kind in "OSUV":
        raise ValueError(f"{name} must be a numeric array, got dtype {dt}")
    allowed = tuple(np.dtype(d) for d in dtypes)
    if dt not in allowed:
        raise ValueError(f"{name} has unsupported dtype {dt}; expected one of {_dtype_list(allowed)}")
    ndims = (ndim,) if isinstance(ndim, numbers.Integral) else tuple(ndim)
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got a {arr.ndim}-D array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if finite and dt.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity, for which this kernel has no defined result")
    return arr


def _on_gpu(x):
    # same test as _dispatch.is_device_array (numba device arrays, simulated ones included)
    return getattr(x, "__cuda_ndarray__", False) is True or hasattr(x, "__cuda_array_interface__")


def device_meta(image):
    """``(dtype, shape)`` of a GPU array, read from its metadata (nothing is copied to the host).

    Examples
    --------
    >>> class Fake:
    ...     __cuda_array_interface__ = {"shape": (2, 3), "typestr": "<f4", "data": (0, False),
    ...                                 "version": 3}
    >>> device_meta(Fake())
    (dtype('float32'), (2, 3))
    """
    if getattr(image, "__cuda_ndarray__", False) is True:  # numba's own (or simulated) arrays
        return np.dtype(image.dtype), tuple(image.shape)
    cai = image.__cuda_array_interface__
    return np.dtype(cai["typestr"]), tuple(int(n) for n in cai["shape"])


def check_device_image(image, *, name="image", ndim=(2, 3), dtypes=SUPPORTED_DTYPES):
    """Check a GPU array's dtype, rank and size from its metadata, as :func:`check_image` does for
    NumPy arrays; returns ``(dtype, shape)``. Host input goes through :func:`check_image`.

    Values are not inspected (that would need a pass over the device data): the kernels that refuse
    NaN on the CPU find it on the device, or document that they do not.

    Examples
    --------
    >>> check_device_image(np.zeros((4, 4), np.uint8))
    (dtype('uint8'), (4, 4))
    """
    if not _on_gpu(image):
        arr = check_image(image, name=name, ndim=ndim, dtypes=dtypes)
        return arr.dtype, arr.shape
    dt, shape = device_meta(image)
    if dt.kind == "c":
        raise ValueError(f"{name} must be real-valued, got complex dtype {dt}")
    allowed = tuple(np.dtype(d) for d in dtypes)
    if dt not in allowed:
        raise ValueError(f"{name} has unsupported dtype {dt}; expected one of {_dtype_list(allowed)}")
    ndims = (ndim,) if isinstance(ndim, numbers.Integral) else tuple(ndim)
    if len(shape) not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got a {len(shape)}-D array of shape {shape}")
    if int(np.prod(shape)) == 0:
        raise ValueError(f"{name} must not be empty, got shape {shape}")
    return dt, shape


def check_device_mask(mask, shape, *, name="mask"):
    """A GPU mask's checks from its metadata (numeric or bool dtype, the image's ``shape``); returns
    the mask unchanged. Host masks go through :func:`check_mask`.

    Examples
    --------
    >>> check_device_mask([[1, 0]], (1, 2)).dtype
    dtype('bool')
    """
    if mask is None or not _on_gpu(mask):
        return check_mask(mask, shape, name=name)
    dt, mshape = device_meta(mask)
    if dt.kind not in "biu":
        raise ValueError(f"{name} on the GPU must be bool or unsigned integer, got dtype {dt}")
    if mshape != tuple(shape):
        raise ValueError(f"{name} must have the image's shape {tuple(shape)}, got {mshape}")
    return mask


def check_choice(value, choices, *, name):
    """Raise ``ValueError`` unless ``value`` is one of ``choices``.

    Examples
    --------
    >>> check_choice("reflect", ("reflect", "constant"), name="mode")
    'reflect'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_mask(mask, shape, *, name="mask"):
    """Return ``mask`` as a C-contiguous boolean array of ``shape``, or None.

    Examples
    --------
    >>> check_mask([[1, 0], [0, 1]], (2, 2)).dtype
    dtype('bool')
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype.kind in "cOSUV":
        raise ValueError(f"{name} must be a boolean array, got dtype {m.dtype}")
    if m.shape != tuple(shape):
        raise ValueError(f"{name} must have the image's shape {tuple(shape)}, got {m.shape}")
    return np.ascontiguousarray(m, dtype=bool)


def check_footprint(footprint, ndim, *, name="footprint"):
    """Return ``footprint`` as a C-contiguous boolean array of rank ``ndim``.

    Raises ``ValueError`` for the wrong rank, an empty or all-False footprint, or a non-numeric dtype.

    Examples
    --------
    >>> check_footprint(np.ones((3, 3)), 2).dtype
    dtype('bool')
    """
    fp = np.asarray(footprint)
    if fp.dtype.kind in "cOSUV":
        raise ValueError(f"{name} must be a boolean array, got dtype {fp.dtype}")
    if fp.ndim != ndim:
        raise ValueError(f"{name} must have the image's rank {ndim}, got a {fp.ndim}-D footprint")
    if fp.size == 0 or not fp.any():
        raise ValueError(f"{name} must contain at least one True element")
    return np.ascontiguousarray(fp, dtype=bool)


def check_positive(value, *, name, integer=False, allow_none=False):
    """Check that ``value`` is a finite positive number (an integer if asked).

    Examples
    --------
    >>> check_positive(3, name="bins", integer=True)
    3
    """
    if value is None and allow_none:
        return None
    ok_type = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, ok_type) or not np.isfinite(value) or value <= 0:
        kind = "positive integer" if integer else "positive finite number"
        raise ValueError(f"{name} must be a {kind}, got {value!r}")
    return value


def float_dtype(dtype):
    """The float dtype a kernel computes in for input ``dtype`` (scikit-image's rule).

    float32 (and float16) stay float32; everything else goes to float64.

    Examples
    --------
    >>> float_dtype(np.uint8)
    dtype('float64')
    >>> float_dtype(np.float32)
    dtype('float32')
    """
    dt = np.dtype(dtype)
    return np.dtype(np.float32) if dt in (np.float16, np.float32) else np.dtype(np.float64)
