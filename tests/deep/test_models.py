"""build_model: shapes, softmax/sigmoid outputs, grey inputs, option and argument checks."""

import numpy as np
import pytest

from medfeat.deep import MODELS, build_model, predict


@pytest.mark.parametrize("kind, options, shape", [
    ("cnn", {"width": 4, "dense": 8}, (20, 24, 3)),
    ("resnet18", {"width": 4}, (28, 28, 1)),
    ("diagnostic", {"backbone": "cnn", "width": 4, "dense": 8}, (16, 16, 1)),
])
def test_small_models_output_probabilities(kind, options, shape):
    model = build_model(kind, shape, 3, seed=0, **options)
    assert model.input_shape == (None, *shape)
    assert model.output_shape == (None, 3)
    x = np.random.default_rng(0).random((4, *shape)).astype(np.float32)
    p = predict(model, x)
    assert p.shape == (4, 3) and np.all((p >= 0) & (p <= 1))
    if kind == "diagnostic":  # independent sigmoids: rows need not sum to one
        assert model.layers[-1].activation.__name__ == "sigmoid"
    else:
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)


def test_grey_input_is_not_copied_to_three_channels():
    model = build_model("resnet18", (28, 28), 2, width=4)
    first_conv = next(layer for layer in model.layers if layer.name == "stem_conv")
    assert model.input_shape == (None, 28, 28, 1)
    assert first_conv.kernel.shape[2] == 1


def test_resnet18_keeps_spatial_size_for_small_inputs_and_pools_for_large():
    small = build_model("resnet18", (28, 28), 2, width=4)
    large = build_model("resnet18", (128, 128), 2, width=4)
    # 28 px: 3x3 stride-1 stem and three stride-2 stages -> 4x4 in the last stage
    assert small.get_layer("stage4_block2_out").output.shape[1:3] == (4, 4)
    # 128 px: stride-2 stem + pooling -> 32, then three halvings -> 4
    assert large.get_layer("stage4_block2_out").output.shape[1:3] == (4, 4)


def test_diagnostic_has_weight_decay_and_sigmoid_outputs():
    model = build_model("diagnostic", (32, 32), 5, backbone="cnn", width=4, dense=8,
                        weight_decay=1e-3)
    assert model.output_shape == (None, 5)
    assert model.layers[-1].activation.__name__ == "sigmoid"
    assert model.get_layer("head_dense").kernel_regularizer is not None
    assert len(model.losses) > 0  # the L2 penalties
    assert any(layer.name == "head_bn" for layer in model.layers)


def test_resnet50_grey_and_small_inputs():
    model = build_model("resnet50", (28, 28), 2, dense=8)
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 2)
    names = [layer.name for layer in model.layers]
    assert "resize_to_32" in names and names[-2:] == ["head_relu", "probabilities"]
    assert "head_bn" in names and "head_dropout" in names
    assert model.layers[-1].activation.__name__ == "softmax"


def test_rgb_weights_adapted_to_grey():
    import keras

    from medfeat.deep.models import _copy_weights_to_grey

    def net(channels):
        x = keras.Input((12, 12, channels))
        y = keras.layers.Conv2D(4, 3, name="first")(x)
        y = keras.layers.Conv2D(2, 3, name="second")(keras.layers.Activation("relu")(y))
        return keras.Model(x, y)

    keras.utils.set_random_seed(1)
    rgb, grey = net(3), net(1)
    _copy_weights_to_grey(rgb, grey, "first")
    x = np.random.default_rng(0).random((2, 12, 12, 1)).astype(np.float32)
    # the grey network on x gives what the RGB network gives on x repeated three times
    expected = np.asarray(rgb(np.repeat(x, 3, axis=-1)))
    np.testing.assert_allclose(np.asarray(grey(x)), expected, rtol=1e-5, atol=1e-6)


def test_resnet50_weights_file_checks(tmp_path):
    with pytest.raises(ValueError, match="weights"):
        build_model("resnet50", (32, 32), 2, weights=str(tmp_path / "missing.h5"))
    path = tmp_path / "rgb.weights.h5"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="channels"):
        build_model("resnet50", (32, 32, 2), 2, weights=str(path))


@pytest.mark.parametrize("args, match", [
    (("vgg", (28, 28), 2), "kind"),
    (("cnn", (28,), 2), "input_shape"),
    (("cnn", (28, 28, 1, 1), 2), "input_shape"),
    (("cnn", (28, -1), 2), "input_shape"),
    (("cnn", (4, 4), 2), "input_shape"),
    (("cnn", (28, 28), 1), "n_classes"),
    (("cnn", (28, 28), 2.5), "n_classes"),
    (("diagnostic", (28, 28), 0), "n_classes"),
])
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        build_model(*args)


def test_bad_options():
    with pytest.raises(ValueError, match="unknown option"):
        build_model("cnn", (28, 28), 2, depth=3)
    with pytest.raises(ValueError, match="width"):
        build_model("cnn", (28, 28), 2, width=0)
    with pytest.raises(ValueError, match="dropout"):
        build_model("resnet18", (28, 28), 2, dropout=1.5)
    with pytest.raises(ValueError, match="backbone"):
        build_model("diagnostic", (28, 28), 2, backbone="vgg")
    with pytest.raises(ValueError, match="backbone='resnet50'"):
        build_model("diagnostic", (28, 28), 2, weights="w.h5")


def test_cnn_pool_heads():
    flat = build_model("cnn", (24, 24), 2, width=4, dense=8, seed=0)
    assert "flatten" in [layer.name for layer in flat.layers]
    for pool, cls in (("max", "GlobalMaxPooling2D"), ("avg", "GlobalAveragePooling2D")):
        model = build_model("cnn", (24, 24), 2, width=4, dense=8, pool=pool, seed=0)
        assert type(model.get_layer("pool")).__name__ == cls
        assert "flatten" not in [layer.name for layer in model.layers]
    with pytest.raises(ValueError, match="pool"):
        build_model("cnn", (24, 24), 2, pool="sum")


def test_cnn_max_head_is_invariant_to_moving_a_spot():
    # a bright spot moved by a multiple of the total pooling stride (8) on a zero background
    # gives the same global maximum, so the same output; the flattened head does not promise it
    model = build_model("cnn", (32, 32), 2, width=4, dense=8, pool="max", dropout=0.0, seed=0)
    a = np.zeros((1, 32, 32, 1), np.float32)
    b = np.zeros_like(a)
    a[0, 9:11, 9:11] = 1.0
    b[0, 17:19, 9:11] = 1.0
    pa, pb, p0 = predict(model, a), predict(model, b), predict(model, np.zeros_like(a))
    np.testing.assert_allclose(pa, pb, atol=1e-4)   # float summation order only
    assert np.abs(pa - p0).max() > 1e-4 * 10        # the spot does move the output


def test_models_tuple():
    assert MODELS == ("cnn", "resnet18", "resnet50", "diagnostic", "cnn3d", "resnet18_3d")


def test_seed_gives_same_initial_weights():
    a = build_model("cnn", (16, 16), 2, width=4, dense=8, seed=3)
    b = build_model("cnn", (16, 16), 2, width=4, dense=8, seed=3)
    c = build_model("cnn", (16, 16), 2, width=4, dense=8, seed=4)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


def test_augmentation_as_keras_layers(tmp_path):
    import keras

    from medfeat.augment import (ElasticDeformation, Flip, GaussianNoise, IntensityJitter, Rotate,
                                 ShiftScaleRotate, preset)
    from medfeat.deep import keras_layers, load, save

    layers = keras_layers(preset("default"), seed=0)
    names = [type(layer).__name__ for layer in layers.layers]
    assert names == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
                     "RandomBrightness", "RandomContrast"]
    x = np.random.default_rng(0).random((4, 16, 16, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(layers(x, training=False)), x)  # inference: off
    trained = np.asarray(layers(x, training=True))
    assert trained.shape == x.shape and not np.allclose(trained, x)
    noise = np.asarray(keras_layers([GaussianNoise(0.3)], seed=1)(np.zeros((8, 32, 32, 1)),
                                                                  training=True))
    assert 0.27 < noise.std() < 0.33
    # a model with the layers in front saves and loads in safe mode
    inputs = keras.Input((16, 16, 1))
    outputs = keras.layers.Dense(2, activation="softmax")(
        keras.layers.Flatten()(keras_layers([Flip(), Rotate(10)], seed=0)(inputs)))
    model = keras.Model(inputs, outputs)
    save(model, tmp_path / "aug.keras")
    np.testing.assert_allclose(predict(load(tmp_path / "aug.keras"), x), predict(model, x),
                               rtol=1e-6)
    for op in (ElasticDeformation(), Flip(p=1.0), IntensityJitter(gamma=0.2),
               ShiftScaleRotate(degrees=(0, 30)), GaussianNoise((0.0, 0.1))):
        with pytest.raises(ValueError, match="ops"):
            keras_layers([op])
