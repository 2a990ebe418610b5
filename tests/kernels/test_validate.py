"""The shared argument checks every kernel relies on."""

import numpy as np
import pytest

from medfeat._kernels._common import int_scale
from medfeat.kernels import _validate as V


@pytest.mark.parametrize("dtype", V.SUPPORTED_DTYPES)
def test_supported_dtypes_pass_unchanged(dtype):
    a = np.arange(12, dtype=dtype).reshape(3, 4)
    out = V.check_image(a)
    assert out is a


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((3, 3), np.complex64), "complex"),
        (np.array([[object(), 1]], dtype=object), "numeric"),
        (np.zeros((3, 3), np.int64), "unsupported dtype int64"),
        (np.zeros((0, 3), np.uint8), "must not be empty"),
        (np.zeros(5, np.uint8), "2-D or 3-D"),
        (np.zeros((2, 2, 2, 2), np.uint8), "2-D or 3-D"),
        (None, "got None"),
        ([[1, 2], [3]], "convertible"),
    ],
)
def test_bad_images_name_the_argument(bad, match):
    with pytest.raises(ValueError, match=match) as info:
        V.check_image(bad, name="volume")
    assert "volume" in str(info.value)


def test_nan_refused_only_when_asked():
    a = np.array([[0.0, np.nan]], np.float32)
    assert V.check_image(a) is a
    with pytest.raises(ValueError, match="NaN"):
        V.check_image(a, finite=True)


def test_check_choice_and_positive():
    assert V.check_choice("wrap", ("wrap",), name="mode") == "wrap"
    with pytest.raises(ValueError, match="mode must be one of"):
        V.check_choice("bogus", ("wrap", "reflect"), name="mode")
    for bad in (0, -1, 1.5, True, float("nan"), "3"):
        with pytest.raises(ValueError, match="nbins"):
            V.check_positive(bad, name="nbins", integer=True)
    assert V.check_positive(None, name="sigma", allow_none=True) is None


def test_footprint_and_mask_checks():
    assert V.check_footprint(np.ones((3, 3), np.uint8), 2).dtype == bool
    with pytest.raises(ValueError, match="rank 3"):
        V.check_footprint(np.ones((3, 3)), 3)
    with pytest.raises(ValueError, match="at least one True"):
        V.check_footprint(np.zeros((3, 3)), 2)
    with pytest.raises(ValueError, match="image's shape"):
        V.check_mask(np.ones((3, 4)), (4, 3))
    assert V.check_mask(None, (3, 3)) is None


def test_float_rules_follow_scikit_image():
    from skimage._shared.utils import _supported_float_type
    from skimage.util import img_as_float

    for dt in V.SUPPORTED_DTYPES:
        assert V.float_dtype(dt) == _supported_float_type(np.dtype(dt))
        if np.dtype(dt).kind in "ui":
            info = np.iinfo(dt)
            a = np.array([info.max, 1, 0], dtype=dt)
            np.testing.assert_allclose(a * int_scale(dt), img_as_float(a), rtol=1e-12)
