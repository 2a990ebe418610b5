"""Inputs and helpers shared by the asv suite and ``benchmarks/compare.py``.

Benchmark images are real: scikit-image's ``camera`` (512²) resized with cubic interpolation to the
requested size, then converted to the requested dtype, so edge and threshold kernels see real structure.
"""

from __future__ import annotations

import functools

import numpy as np

SIZES = (512, 2048, 4096)


@functools.lru_cache(maxsize=16)
def real_image(size=2048, dtype="float32"):
    """Camera, resized to ``size``², converted to ``dtype`` (floats in [0, 1], uint16 full range,
    int16 in a CT-like -1024..3071 range); read-only."""
    import skimage.data
    from scipy import ndimage

    cam = skimage.data.camera().astype(np.float64) / 255.0
    img = ndimage.zoom(cam, size / cam.shape[0], order=3, mode="reflect")
    img = np.clip(img, 0.0, 1.0)
    dt = np.dtype(dtype)
    if dt == np.uint8:
        out = np.round(img * 255)
    elif dt == np.uint16:
        out = np.round(img * 65535)
    elif dt == np.int16:
        out = np.round(img * 4095 - 1024)
    elif dt == np.bool_:
        out = img > 0.5
    else:
        out = img
    out = np.ascontiguousarray(out.astype(dt))
    out.setflags(write=False)
    return out


def have(module):
    """True if ``module`` imports (peers such as OpenCV are optional)."""
    try:
        __import__(module)
        return True
    except ImportError:
        return False
