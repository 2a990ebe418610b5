"""3-D models (cnn3d, resnet18_3d) and DeepClassifier on volumes: kind selection, shapes, TTA
flips of the volume, rank errors, augmentation, explanations and save/load."""

import contextlib
import io

import numpy as np
import pytest

from medfeat.deep import DeepClassifier, build_model, predict


def make_cubes(n=32, size=12, seed=0):
    """Noise volumes; class 1 carries a bright cube at a random place. Balanced labels."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 80, (n, size, size, size)).astype(np.uint8)
    y = np.arange(n) % 2
    side = size // 3
    for i in np.flatnonzero(y):
        d, r, c = rng.integers(0, size - side, 3)
        X[i, d:d + side, r:r + side, c:c + side] = 230
    return X, y


@pytest.mark.parametrize("kind, options", [("cnn3d", {"width": 4, "dense": 8}),
                                           ("resnet18_3d", {"width": 4})])
@pytest.mark.parametrize("shape", [(12, 16, 16), (12, 16, 16, 2), (4, 16, 16)])   # (4, ...): a slab
def test_volume_models_output_probabilities(kind, options, shape):
    model = build_model(kind, shape, 3, seed=0, **options)
    full = shape if len(shape) == 4 else (*shape, 1)
    assert model.input_shape == (None, *full) and model.output_shape == (None, 3)
    convs = [layer for layer in model.layers if "conv" in type(layer).__name__.lower()]
    assert convs and all(type(layer).__name__ == "Conv3D" for layer in convs)
    assert model.get_layer("pool").__class__.__name__ == "GlobalAveragePooling3D"
    x = np.random.default_rng(0).random((3, *full)).astype(np.float32)
    p = predict(model, x)
    assert p.shape == (3, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)


def test_resnet18_3d_is_resnet18_with_3d_convolutions():
    model = build_model("resnet18_3d", (28, 28, 28), 2, width=4, stem_stride=1)
    blocks = {layer.name.rsplit("_", 1)[0] for layer in model.layers
              if layer.name.startswith("stage") and layer.name.endswith("_add")}
    assert len(blocks) == 8  # 2-2-2-2 basic blocks
    # stride-1 stem: 28 -> 28, then three stride-2 stages -> 4
    assert model.get_layer("stage4_block2_out").output.shape[1:4] == (4, 4, 4)
    fast = build_model("resnet18_3d", (28, 28, 28), 2, width=4)  # default stem stride 2
    assert fast.get_layer("stage1_block2_out").output.shape[1:4] == (14, 14, 14)
    assert fast.get_layer("stem_conv").kernel.shape == (3, 3, 3, 1, 4)


@pytest.mark.parametrize("kind, shape, match", [
    ("cnn3d", (28, 28), "depth, height, width"),
    ("cnn3d", (28, 28, 1), "at least 4x4x4"),
    ("resnet18_3d", (3, 28, 28), "at least 4x4x4"),
    ("cnn", (8, 28, 28, 1), "height, width"),
    ("resnet18", (8, 28, 28, 1), "height, width"),
])
def test_rank_of_input_shape_is_checked(kind, shape, match):
    with pytest.raises(ValueError, match=match):
        build_model(kind, shape, 2)


def test_volume_model_options_are_checked():
    with pytest.raises(ValueError, match="stem_stride"):
        build_model("resnet18_3d", (16, 16, 16), 2, stem_stride=3)
    with pytest.raises(ValueError, match="unknown option"):
        build_model("cnn3d", (16, 16, 16), 2, backbone="cnn")
    with pytest.raises(ValueError, match="pool"):
        build_model("cnn3d", (16, 16, 16), 2, pool="median")


@pytest.mark.parametrize("pool, layer", [("avg", "GlobalAveragePooling3D"),
                                         ("max", "GlobalMaxPooling3D"), ("flatten", "Flatten")])
def test_cnn3d_pool_heads(pool, layer):
    # the options of the 2-D cnn carry over, so a search over them works on volumes too
    model = build_model("cnn3d", (16, 16, 16), 2, width=4, dense=8, pool=pool)
    assert type(model.get_layer("pool")).__name__ == layer


def _clf(kind="cnn", **kw):
    opts = {"cnn": {"width": 4, "dense": 8}, "cnn3d": {"width": 4, "dense": 8},
            "resnet18": {"width": 4}, "resnet18_3d": {"width": 4}}.get(kind, {})
    kw.setdefault("model_options", opts)
    kw.setdefault("epochs", 2)
    return DeepClassifier(kind, batch_size=16, verbose=0, **kw)


@pytest.fixture(scope="module")
def cubes():
    X, y = make_cubes(48, 12, seed=0)
    return X[:32], y[:32], X[32:], y[32:]


@pytest.fixture(scope="module")
def fitted_volume(cubes):
    Xt, yt, Xv, yv = cubes
    return _clf("cnn", augment="default").fit(Xt, yt, validation=(Xv, yv))


def test_cnn_on_volumes_builds_cnn3d_with_a_5d_input(cubes, fitted_volume):
    Xt, yt, Xv, yv = cubes
    clf = fitted_volume
    assert clf.model_kind_ == "cnn3d"
    assert clf.model_.input_shape == (None, 12, 12, 12, 1)
    assert clf.preprocessing_["volume"] is True and clf.preprocessing_["add_channel"] is True
    proba = clf.predict_proba(Xv)
    assert proba.shape == (len(Xv), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert clf.epochs_ == 2 and len(clf.history_["loss"]) == 2


def test_resnet18_on_volumes_with_channels_builds_resnet18_3d(cubes):
    Xt, yt, _, _ = cubes
    X5 = np.stack([Xt, 255 - Xt], axis=-1)  # (n, D, H, W, 2)
    clf = _clf("resnet18")
    clf._fit_preprocessing(X5)  # what fit does first (training a ResNet here would take long)
    assert clf.model_kind_ == "resnet18_3d"
    assert clf.preprocessing_["add_channel"] is False and clf.preprocessing_["volume"] is True
    model = clf._build(clf._preprocess(X5).shape[1:], 2)
    assert model.name == "resnet18_3d" and model.input_shape == (None, 12, 12, 12, 2)
    assert model.get_layer("stem_conv").filters == 4  # model_options reach the 3-D twin


def test_images_with_channels_stay_2d():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (16, 16, 16, 3)).astype(np.uint8)  # 16 >= 4 * 3: colour images
    clf = _clf("cnn", augment=None, epochs=1).fit(X, np.arange(16) % 2)
    assert clf.model_kind_ == "cnn" and clf.model_.input_shape == (None, 16, 16, 3)


def test_kind_of_the_wrong_rank_raises(cubes):
    Xt, yt, _, _ = cubes
    images = Xt[:, 0]  # (n, H, W)
    with pytest.raises(ValueError, match="'cnn3d' takes volumes"):
        _clf("cnn3d").fit(images, yt)
    with pytest.raises(ValueError, match="'resnet50' takes 2-D images"):
        DeepClassifier("resnet50", epochs=1, verbose=0).fit(Xt, yt)
    # an explicit 3-D kind reads a 4-D stack as grey volumes, whatever its last side
    thin = np.zeros((4, 12, 12, 3), np.uint8)
    clf = _clf("cnn3d")
    assert clf._select_kind(thin) == ("cnn3d", True)


def test_tta_on_volumes_averages_the_eight_flips(cubes, fitted_volume):
    _, _, Xv, _ = cubes
    clf = fitted_volume
    Xp = clf._preprocess(Xv)
    views = [np.flip(Xp, axes) if axes else Xp for axes in
             [(), (1,), (2,), (3,), (1, 2), (1, 3), (2, 3), (1, 2, 3)]]
    expected = np.mean([predict(clf.model_, v) for v in views], axis=0)
    np.testing.assert_allclose(predict(clf.model_, Xp, tta=True), expected, rtol=1e-5,
                               atol=1e-6)
    one = predict(clf.model_, Xp, tta="depth")
    np.testing.assert_allclose(one, (predict(clf.model_, Xp)
                                     + predict(clf.model_, np.flip(Xp, 1))) / 2, rtol=1e-5,
                               atol=1e-6)
    # depth flips need volumes
    model2d = build_model("cnn", (12, 12), 2, width=4, dense=8)
    with pytest.raises(ValueError, match="depth flips need volumes"):
        predict(model2d, Xv[:, 0], tta="depth")


def test_volume_classifier_learns_bright_cubes():
    X, y = make_cubes(96, 12, seed=1)
    clf = DeepClassifier("cnn", epochs=6, batch_size=16, verbose=0, augment=None, lr=3e-3,
                         model_options={"width": 8, "dense": 16})
    clf.fit(X[:64], y[:64], validation=(X[64:], y[64:]))
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[64:], clf.predict_proba(X[64:])[:, 1]) > 0.8


def test_explain_and_save_load_on_volumes(cubes, fitted_volume, tmp_path):
    _, _, Xv, _ = cubes
    clf = fitted_volume
    att = clf.explain(Xv[:2], steps=16)
    assert att.shape == Xv[:2].shape and np.all(np.isfinite(att))
    path = tmp_path / "vol.keras"
    clf.save(path)
    with contextlib.redirect_stdout(io.StringIO()):
        back = DeepClassifier.load(path)
    assert back.model_kind_ == "cnn3d"
    np.testing.assert_allclose(back.predict_proba(Xv), clf.predict_proba(Xv), rtol=1e-5,
                               atol=1e-6)
