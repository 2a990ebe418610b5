"""The helpers every backend compiles from one definition (medfeat._kernels._common)."""

import numpy as np
import pytest

from medfeat._kernels import _common

# scipy.ndimage's mode -> numpy.pad's name for the same extension
_NUMPY_PAD = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap"}


# numpy.pad cannot reflect (scipy: mirror) a single element; scipy repeats it (tested below)
@pytest.mark.parametrize("mode, n", [(m, n) for m in _NUMPY_PAD for n in (1, 2, 3, 5)
                                     if (m, n) != ("mirror", 1)])
def test_boundary_index_is_numpy_pad(mode, n):
    width = 4 * n + 3
    want = np.pad(np.arange(n), width, mode=_NUMPY_PAD[mode])
    got = [_common.boundary_index(i, n, _common.MODES[mode]) for i in range(-width, n + width)]
    np.testing.assert_array_equal(got, want)


def test_boundary_index_constant_and_single_pixel_mirror():
    assert [_common.boundary_index(i, 3, _common.CONSTANT) for i in (-1, 0, 2, 3)] == [-1, 0, 2, -1]
    assert {_common.boundary_index(i, 1, _common.MIRROR) for i in range(-5, 6)} == {0}


@pytest.mark.parametrize("mode", list(_common.MODES))
def test_compiled_cpu_map_is_the_python_function(mode):
    from medfeat._kernels.numba_cpu import morphology

    code = _common.MODES[mode]
    for n in (1, 4, 7):
        want = [_common.boundary_index(i, n, code) for i in range(-20, n + 20)]
        np.testing.assert_array_equal(morphology.axis_map(n, -20, n + 20, code), want)


def test_bin_slot_is_numpy_histograms_bin():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.uniform(-0.5, 10.5, 500), np.linspace(0, 10, 41), [np.nan]])
    for edges in (np.linspace(0.0, 10.0, 11), np.array([0.0, 0.1, 2.0, 2.5, 9.0, 10.0])):
        nb = edges.size - 1
        scale = nb / (edges[-1] - edges[0])
        slots = np.array([_common.bin_slot(float(v), edges, nb, edges[0], edges[-1], edges[0], scale)
                          for v in values])
        inside = (values >= edges[0]) & (values <= edges[-1])
        assert (slots[np.isnan(values)] == nb).all()
        assert (slots[~inside & ~np.isnan(values)] == nb + 1).all()
        np.testing.assert_array_equal(np.bincount(slots[inside], minlength=nb),
                                      np.histogram(values[inside], edges)[0])
