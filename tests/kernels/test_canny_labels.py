"""The CPU Canny kernel's double-threshold entry (``canny_labels``, what the dask path labels):
its 0 / 1 / 2 map is the one the in-memory kernel floods, checked against the in-memory edge map
and against scikit-image's double threshold."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.feature
from scipy import ndimage as ndi

from medfeat._kernels._common import int_scale
from medfeat.kernels import canny
from medfeat.kernels import edges as E

from ..conftest import load_real, to_dtype

N = pytest.importorskip("medfeat._kernels.numba_cpu.edges")


def _call(entry, img, sigma, mode, mask, low, high):
    """``entry`` with the arguments the in-memory ``canny`` passes to its fused kernel (uint8
    without a mask goes in as it is, converted row by row; everything else as float)."""
    direct = img.dtype == np.uint8 and mask is None
    f = E._readonly(np.ascontiguousarray(img)) if direct else E._as_float(img)
    dtype = np.dtype(np.float64) if direct else f.dtype
    eroded = np.zeros((0, 0), np.uint8)
    if mask is None:
        bleed_kind = 1 if mode == "constant" else 0
        bleed_src = E._readonly(np.zeros((0, 0), dtype))
    else:
        bleed_kind = 2
        bleed_src = E._readonly(mask.astype(dtype))
        eroded = N.erode_mask_2d(mask.view(np.uint8))
        f = E._readonly(np.where(mask, f, dtype.type(0)))
    lo, hi = E._canny_thresholds(low, high, False, img.dtype)
    return entry(f, E._gaussian_weights(float(sigma)), E._MODES[mode], 0.0, bleed_src, bleed_kind,
                 np.array([np.finfo(dtype).eps], dtype), eroded, E._low_value(lo),
                 E._compare_value(hi, dtype), int_scale(img.dtype) if direct else 1.0)


def _flood(labels):
    """Hysteresis of a label map the slow, obvious way: the 8-connected components of the
    candidates that hold a strong pixel."""
    comp, n = ndi.label(labels > 0, structure=np.ones((3, 3), bool))
    keep = np.zeros(n + 1, bool)
    keep[comp[labels == 2]] = True
    keep[0] = False
    return keep[comp]


CASES = [  # (image, dtype, sigma, mode, masked, thresholds in the image's units or None)
    ("camera", np.uint8, 1.0, "constant", False, (None, None)),
    ("camera", np.float32, 2.0, "reflect", False, (0.05, 0.15)),
    ("ct_small", np.float64, 1.0, "nearest", True, (0.04, 0.1)),
    ("mr_small", np.float32, 0.0, "mirror", False, (0.1, 0.3)),
    ("tiled", np.float32, 1.5, "constant", False, (0.05, 0.2)),   # several tiles (> 512^2)
    ("tiled", np.uint8, 1.0, "reflect", False, (20, 40)),
]


def _image(name, dtype):
    if name == "tiled":
        return to_dtype(np.tile(load_real("camera"), (1, 2)), dtype)
    return to_dtype(load_real(name), dtype)


@pytest.mark.parametrize("name, dtype, sigma, mode, masked, thresholds", CASES)
def test_labels_are_the_double_threshold_that_canny_floods(name, dtype, sigma, mode, masked,
                                                           thresholds):
    img = _image(name, dtype)
    mask = img > np.percentile(img, 15) if masked else None
    low, high = thresholds
    labels = _call(N.canny_labels, img, sigma, mode, mask, low, high)
    assert labels.dtype == np.uint8 and labels.shape == img.shape
    assert set(np.unique(labels)) <= {0, 1, 2}
    assert np.count_nonzero(labels == 1) > 0 and np.count_nonzero(labels == 2) > 0
    edges = canny(img, sigma=sigma, low_threshold=low, high_threshold=high, mask=mask, mode=mode)
    strong, cand = labels == 2, labels > 0
    assert not (strong & ~edges).any() and not (edges & ~cand).any()
    assert (cand & ~edges).any()  # some weak candidates are left out: the flood matters
    np.testing.assert_array_equal(_flood(labels), edges)


@pytest.mark.parametrize("name, dtype, sigma, mode, masked, thresholds", CASES[:3])
def test_labels_match_scikit_image_double_threshold(name, dtype, sigma, mode, masked, thresholds):
    """With equal thresholds scikit-image's hysteresis keeps every candidate, so its edge map at
    (low, low) is the candidates and at (high, high) the strong ones."""
    img = _image(name, dtype)
    mask = img > np.percentile(img, 15) if masked else None
    low, high = thresholds
    if low is None:
        low, high = 0.1 * E._DTYPE_MAX[img.dtype], 0.2 * E._DTYPE_MAX[img.dtype]
    labels = _call(N.canny_labels, img, sigma, mode, mask, low, high)
    for value, selected in ((low, labels > 0), (high, labels == 2)):
        ref = skimage.feature.canny(img, sigma=sigma, low_threshold=value, high_threshold=value,
                                    mask=mask, mode=mode)
        diff = np.count_nonzero(selected != ref)  # the same rounding allowance as canny's tests
        assert diff <= 0.002 * max(int(ref.sum()), 1), f"{diff} of {int(ref.sum())} differ"
