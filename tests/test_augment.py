"""medfeat.augment: determinism, exactness of flips and right-angle rotations, noise statistics,
identity at zero strength, dtype/shape kept, input never written."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from medfeat import augment as A

ALL_OPS = [
    A.GaussianNoise(0.1), A.GaussianBlur((0.3, 1.0)), A.Flip("horizontal"), A.Flip("vertical"),
    A.Rotate(20), A.Scale(0.2), A.ShiftScaleRotate(0.1, 0.1, 15), A.GridDistortion(4, 0.3),
    A.ElasticDeformation(2.0, 3.0), A.IntensityJitter(0.2, 0.2, 0.3),
]


def _stack(dtype=np.float64, shape=(6, 17, 17), seed=0):
    x = np.random.default_rng(seed).random(shape)
    if np.dtype(dtype).kind in "iu":
        return (x * 200).astype(dtype)
    return x.astype(dtype)


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: type(op).__name__)
@pytest.mark.parametrize("dtype, shape", [(np.float32, (5, 16, 12)), (np.uint8, (4, 13, 13, 3)),
                                          (np.int16, (3, 12, 12))])
def test_shape_dtype_determinism_and_input_untouched(op, dtype, shape):
    x = _stack(dtype, shape)
    x_copy = x.copy()
    a = A.augment(x, op, seed=7)
    b = A.augment(x, op, seed=7)
    assert a.shape == x.shape and a.dtype == x.dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, x_copy)
    assert not np.shares_memory(a, x)


@pytest.mark.parametrize("op", [op for op in ALL_OPS if not isinstance(op, A.Flip)],
                         ids=lambda op: type(op).__name__)
def test_different_seeds_differ(op):
    x = _stack()
    assert not np.array_equal(A.augment(x, op, seed=1), A.augment(x, op, seed=2))


def test_read_only_input_is_accepted():
    x = _stack()
    x.setflags(write=False)
    out = A.Compose(ALL_OPS)(x, seed=0)
    assert out.shape == x.shape and out.flags.writeable


def test_flips_are_exact():
    x = _stack(np.uint8, (8, 9, 7, 2))
    np.testing.assert_array_equal(A.augment(x, A.Flip("horizontal", p=1), seed=0), x[:, :, ::-1])
    np.testing.assert_array_equal(A.augment(x, A.Flip("vertical", p=1), seed=0), x[:, ::-1])
    np.testing.assert_array_equal(A.augment(x, A.Flip("vertical", p=0), seed=0), x)
    out = A.augment(x, A.Flip("horizontal", p=0.5), seed=3)
    flipped = [np.array_equal(o, xi[:, ::-1]) for o, xi in zip(out, x)]
    kept = [np.array_equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


@pytest.mark.parametrize("k", [1, -1, 2, 3])
def test_right_angle_rotations_equal_rot90(k):
    x = _stack(np.float64, (3, 11, 11))
    angle = 90.0 * k
    out = A.augment(x, A.Rotate((angle, angle)), seed=0)
    np.testing.assert_allclose(out, np.rot90(x, k, axes=(1, 2)), atol=1e-12)
    xc = _stack(np.uint8, (2, 10, 10, 3))
    np.testing.assert_array_equal(A.augment(xc, A.Rotate((angle, angle)), seed=0),
                                  np.rot90(xc, k, axes=(1, 2)))


def test_rotation_matches_scipy_rotate():
    x = _stack(np.float64, (2, 21, 21))
    out = A.augment(x, A.Rotate((30, 30), mode="constant"), seed=0)
    ref = ndimage.rotate(x, 30, axes=(2, 1), reshape=False, order=1, mode="constant")
    np.testing.assert_allclose(out, ref, atol=1e-9)


def test_scale_zooms_about_the_centre():
    x = np.zeros((1, 21, 21))
    x[0, 10, 14] = 1.0  # 4 px right of the centre
    out = A.augment(x, A.Scale((1.5, 1.5), order=0), seed=0)
    assert out[0, 10, 16] == 1.0  # 6 px right of the centre after a 1.5x zoom


def test_shift_moves_by_the_fraction_of_the_side():
    x = _stack(np.float64, (1, 20, 20))
    out = A.augment(x, A.ShiftScaleRotate((0.1, 0.1), 0, 0), seed=0)  # +2 px in rows and cols
    np.testing.assert_allclose(out[0, 2:, 2:], x[0, :-2, :-2], atol=1e-12)


@pytest.mark.parametrize("op", [
    A.GaussianNoise(0), A.GaussianBlur(0), A.Rotate(0), A.Scale(0), A.ShiftScaleRotate(0, 0, 0),
    A.GridDistortion(5, 0), A.ElasticDeformation(0), A.IntensityJitter(0, 0, 0),
    A.Flip(p=0), A.Rotate(30, p=0), A.Compose([]),
], ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int16])
def test_identity_at_zero_strength(op, dtype):
    x = _stack(dtype, (4, 12, 12))
    np.testing.assert_array_equal(A.augment(x, op, seed=0) if not isinstance(op, A.Compose)
                                  else op(x, seed=0), x)


def test_noise_statistics():
    x = np.full((8, 64, 64), 0.5)
    out = A.augment(x, A.GaussianNoise(0.2), seed=0)
    d = (out - x).ravel()
    assert abs(d.mean()) < 0.005 and abs(d.std() - 0.2) < 0.005
    # a range draws one sigma per image within it
    out = A.augment(x, A.GaussianNoise((0.05, 0.3)), seed=1)
    stds = (out - x).reshape(8, -1).std(axis=1)
    assert np.all((stds > 0.04) & (stds < 0.31)) and stds.std() > 0.01
    # integers are rounded and clipped to their range
    u = A.augment(np.full((2, 32, 32), 250, np.uint8), A.GaussianNoise(20.0), seed=0)
    assert u.dtype == np.uint8 and u.max() == 255 and (u == 255).mean() > 0.3


def test_blur_matches_scipy_and_keeps_channels_apart():
    x = _stack(np.float64, (2, 15, 15, 2))
    out = A.augment(x, A.GaussianBlur(1.2), seed=0)
    np.testing.assert_allclose(out, ndimage.gaussian_filter(x, (0, 1.2, 1.2, 0), mode="reflect"),
                               atol=1e-12)


def test_intensity_jitter_brightness_and_contrast():
    x = _stack(np.float64, (50, 8, 8))
    out = A.augment(x, A.IntensityJitter(brightness=0.2, contrast=0), seed=0)
    shift = (out - x).reshape(50, -1)
    np.testing.assert_allclose(shift, shift[:, :1].repeat(64, axis=1), atol=1e-12)  # additive
    spans = np.ptp(x.reshape(50, -1), axis=1)
    assert np.all(np.abs(shift[:, 0]) <= 0.2 * spans + 1e-12)
    out = A.augment(x, A.IntensityJitter(brightness=0, contrast=0.5), seed=0)
    np.testing.assert_allclose(out.reshape(50, -1).mean(axis=1), x.reshape(50, -1).mean(axis=1))


def test_grid_and_elastic_move_pixels_but_keep_values_in_range():
    x = _stack(np.float64, (3, 24, 24))
    for op in (A.GridDistortion(4, 0.4), A.ElasticDeformation(3.0, 3.0)):
        out = A.augment(x, op, seed=0)
        assert not np.allclose(out, x)
        assert out.min() >= x.min() - 1e-12 and out.max() <= x.max() + 1e-12  # bilinear


def test_compose_equals_applying_ops_with_one_generator():
    x = _stack(np.float64, (4, 12, 12))
    ops = [A.Flip(), A.GaussianNoise(0.1)]
    rng = np.random.default_rng(5)
    manual = ops[1](ops[0](x, rng), rng)
    np.testing.assert_allclose(A.Compose(ops)(x, seed=5), manual)


def test_presets_and_bad_arguments():
    x = _stack(np.float32, (3, 16, 16))
    for name in ("default", "light", "strong"):
        assert A.preset(name)(x, seed=0).shape == x.shape
    with pytest.raises(ValueError, match="name"):
        A.preset("medium")
    with pytest.raises(ValueError, match="images"):
        A.augment(np.zeros((8, 8)), A.Flip())
    with pytest.raises(ValueError, match="real numbers"):
        A.augment(np.zeros((2, 8, 8), complex), A.Flip())
    with pytest.raises(ValueError, match="seed"):
        A.augment(x, A.Flip(), seed=-1)
    with pytest.raises(ValueError, match="p must"):
        A.Flip(p=1.5)
    with pytest.raises(ValueError, match="axis"):
        A.Flip("diagonal")
    with pytest.raises(ValueError, match="sigma"):
        A.GaussianNoise(-1)
    with pytest.raises(ValueError, match="scale"):
        A.Scale(1.5)
    with pytest.raises(ValueError, match="mode"):
        A.Rotate(10, mode="bogus")
    with pytest.raises(ValueError, match="distort"):
        A.GridDistortion(4, 1.5)
    with pytest.raises(ValueError, match="alpha"):
        A.ElasticDeformation(-1)
    with pytest.raises(ValueError, match="ops"):
        A.Compose([3])


def test_import_stays_light():
    code = ("import sys, medfeat.augment; "
            "print([m for m in ('tensorflow', 'keras', 'torch', 'jax') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- volumes
VOLUME_OPS = [
    A.VolumeFlip(), A.VolumeRot90(axes=(0, 1, 2)), A.VolumeAffine(15, 0.1, 0.05),
    A.VolumeElastic(2.0, 3.0), A.GaussianNoise(0.1), A.GaussianBlur((0.3, 1.0)),
    A.IntensityJitter(0.2, 0.2, 0.3),
]


def _volumes(dtype=np.float64, shape=(3, 9, 10, 10), seed=0):
    return _stack(dtype, shape, seed)


@pytest.mark.parametrize("op", VOLUME_OPS, ids=lambda op: type(op).__name__)
@pytest.mark.parametrize("dtype, shape", [(np.float32, (9, 10, 10)), (np.uint8, (3, 9, 10, 10)),
                                          (np.int16, (2, 8, 8, 8, 2))])
def test_volume_ops_shape_dtype_determinism_and_input_untouched(op, dtype, shape):
    x = _volumes(dtype, shape)
    x_copy = x.copy()
    ops = [A.VolumeFlip(p=0), op]  # a volume op first: the Compose takes volumes
    a, b = A.augment(x, ops, seed=7), A.augment(x, ops, seed=7)
    assert a.shape == x.shape and a.dtype == x.dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, x_copy)
    # flips can leave a small stack as it is; noise of 0.1 rounds away on integers
    if not isinstance(op, A.VolumeFlip) and x.dtype.kind == "f":
        assert not np.array_equal(A.augment(x, ops, seed=1), A.augment(x, ops, seed=2))


def test_volume_flip_is_exact_per_axis():
    x = _volumes(np.uint8, (6, 5, 6, 7))
    for axis in (0, 1, 2):
        np.testing.assert_array_equal(A.VolumeFlip(axes=axis, p=1)(x, 0), np.flip(x, axis + 1))
    np.testing.assert_array_equal(A.VolumeFlip(p=0)(x, 0), x)
    # p=0.5 on every axis: each volume is one of the 8 flips of itself, and not all the same one
    out = A.VolumeFlip(p=0.5)(x, 3)
    combos = [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    seen = set()
    for o, xi in zip(out, x):
        match = [c for c in combos if np.array_equal(o, np.flip(xi, c) if c else xi)]
        assert match
        seen.add(match[0])
    assert len(seen) > 1
    one = x[0]  # a single (D, H, W) volume
    np.testing.assert_array_equal(A.VolumeFlip(axes=2, p=1)(one, 0), one[:, :, ::-1])


@pytest.mark.parametrize("axis, plane", [(0, (1, 2)), (1, (0, 2)), (2, (0, 1))])
def test_volume_rot90_is_a_quarter_turn_of_the_plane(axis, plane):
    x = _volumes(np.float64, (8, 6, 6, 6))
    out = A.VolumeRot90(axes=axis)(x, 0)
    ks = []
    for o, xi in zip(out, x):
        k = [k for k in range(4) if np.array_equal(o, np.rot90(xi, k, axes=plane))]
        assert len(k) == 1
        ks.append(k[0])
    assert len(set(ks)) > 1
    # a non-square plane only gets half turns: the shape is kept
    flat = _volumes(np.float64, (8, 4, 6, 6))
    out = A.VolumeRot90(axes=(1, 2))(flat, 0)
    assert out.shape == flat.shape


@pytest.mark.parametrize("axis, plane", [(0, (1, 2)), (1, (0, 2)), (2, (0, 1))])
def test_volume_affine_right_angles_and_small_rotations_match_scipy(axis, plane):
    x = _volumes(np.float64, (2, 9, 9, 9))
    out = A.VolumeAffine((90, 90), 0, axes=axis)(x, 0)
    np.testing.assert_allclose(out, np.rot90(x, 1, axes=(plane[0] + 1, plane[1] + 1)),
                               atol=1e-12)
    out = A.VolumeAffine((20, 20), 0, axes=axis, mode="constant")(x, 0)
    ref = ndimage.rotate(x, 20, axes=(plane[1] + 1, plane[0] + 1), reshape=False, order=1,
                         mode="constant")
    np.testing.assert_allclose(out, ref, atol=1e-9)


def test_volume_affine_zoom_and_shift():
    x = np.zeros((1, 21, 21, 21))
    x[0, 10, 10, 14] = 1.0  # 4 voxels right of the centre
    out = A.VolumeAffine(0, (1.5, 1.5), order=0)(x, 0)
    assert out[0, 10, 10, 16] == 1.0
    y = _volumes(np.float64, (1, 10, 10, 10))
    out = A.VolumeAffine(0, 0, (0.1, 0.1))(y, 0)  # +1 voxel on every axis
    np.testing.assert_allclose(out[0, 1:, 1:, 1:], y[0, :-1, :-1, :-1], atol=1e-12)


def test_volume_elastic_displacement_is_bounded_by_alpha():
    ramp = np.broadcast_to(np.arange(16.0)[None, None, :], (16, 16, 16))[None]
    out = A.VolumeElastic(alpha=1.5, sigma=3.0, mode="nearest")(ramp, 0)
    moved = out - ramp  # on a unit ramp along the width, the value change is the displacement
    assert np.abs(moved).max() <= 1.5 + 1e-9 and np.abs(moved).max() > 0.5
    np.testing.assert_array_equal(A.VolumeElastic(alpha=0)(ramp, 0), ramp)


@pytest.mark.parametrize("op", [A.VolumeFlip(p=0), A.VolumeRot90(p=0), A.VolumeAffine(0, 0),
                                A.VolumeElastic(0)], ids=repr)
def test_volume_identity_at_zero_strength(op):
    x = _volumes(np.int16, (2, 7, 8, 9))
    np.testing.assert_array_equal(op(x, 0), x)


def test_blur_and_jitter_in_a_volume_compose():
    x = _volumes(np.float64, (2, 9, 9, 9))
    out = A.Compose([A.VolumeFlip(p=0), A.GaussianBlur(1.0)])(x, seed=0)
    np.testing.assert_allclose(out, ndimage.gaussian_filter(x, (0, 1, 1, 1), mode="reflect"),
                               atol=1e-12)
    out = A.Compose([A.VolumeFlip(p=0), A.IntensityJitter(0, 0.5)])(x, seed=0)
    np.testing.assert_allclose(out.reshape(2, -1).mean(axis=1), x.reshape(2, -1).mean(axis=1))


def test_volume_presets_and_errors():
    x = _volumes(np.float32, (2, 8, 8, 8))
    for name in ("default", "light", "strong"):
        out = A.preset(name, volumes=True)(x, seed=0)
        assert out.shape == x.shape and not np.array_equal(out, x)
    with pytest.raises(ValueError, match="2-D images"):
        A.Compose([A.VolumeFlip(), A.Rotate(10)])(x, seed=0)
    with pytest.raises(ValueError, match="axes"):
        A.VolumeFlip(axes=3)
    with pytest.raises(ValueError, match="axes"):
        A.VolumeRot90(axes=(0, 0))
    with pytest.raises(ValueError, match="volume"):
        A.VolumeFlip()(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="scale"):
        A.VolumeAffine(10, 1.5)
    with pytest.raises(ValueError, match="order"):
        A.VolumeAffine(order=7)
    with pytest.raises(ValueError, match="sigma"):
        A.VolumeElastic(1.0, 0)


def test_keras_volume_layers_act_in_training_only():
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    from medfeat.deep import keras_layers

    x = _volumes(np.float32, (6, 6, 6, 6))[..., None]
    layers = keras_layers([A.VolumeFlip(), A.VolumeRot90(axes=(0, 1, 2)),
                           A.IntensityJitter(0.1, 0.1), A.GaussianNoise(0.01)], seed=0)
    np.testing.assert_array_equal(np.asarray(layers(x, training=False)), x)
    out = np.asarray(layers(x, training=True))
    assert out.shape == x.shape and not np.allclose(out, x)
    assert out.min() >= 0 - 0.2 and out.max() <= 1 + 0.2
    # flips and quarter turns alone only move voxels: every output is a symmetry of its input
    geo = keras_layers([A.VolumeFlip(), A.VolumeRot90(axes=0)], seed=1)
    out = np.asarray(geo(x, training=True))
    for o, xi in zip(out, x):
        assert np.array_equal(np.sort(o.ravel()), np.sort(xi.ravel()))
    intensity = keras_layers([A.IntensityJitter(0.3, 0.3)], seed=0, volumes=True)
    out = np.asarray(intensity(x, training=True))
    assert out.min() >= 0 and out.max() <= 1 and not np.allclose(out, x)
    with pytest.raises(ValueError, match="no Keras counterpart"):
        keras_layers([A.VolumeAffine()], seed=0)
    with pytest.raises(ValueError, match="no Keras counterpart"):
        keras_layers([A.VolumeFlip(), A.Flip()], seed=0)


def test_augment_never_imports_keras():
    code = ("import sys, medfeat.augment as A; A.preset('default'); "
            "print([m for m in ('keras', 'tensorflow', 'medfeat.deep') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert not hasattr(A, "keras_layers")          # the Keras translation lives in medfeat.deep
