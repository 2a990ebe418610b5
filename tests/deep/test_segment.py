"""Segmentation networks (shapes, odd sizes, seeds, validation), Dice / IoU against scikit-learn,
the streaming Keras metrics, the soft Dice loss, saving, and a short training on synthetic discs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sklearn.metrics import f1_score, jaccard_score

from medfeat.deep.segment import (
    SEGMENTERS,
    DiceLoss,
    DiceMetric,
    IoUMetric,
    build_segmenter,
    dice_coefficient,
    iou_score,
)

TINY = {"deeplabv3": {"width": 4}, "unet": {"width": 4, "depth": 2}}


def make_discs(n, size, seed):
    """Noisy backgrounds with one or two brighter discs; masks 1 on the discs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            r = rng.uniform(size / 10, size / 4.5)
            cy, cx = rng.uniform(r, size - r, 2)
            masks[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    images = rng.normal(0.3, 0.14, (n, size, size)) + 0.4 * masks
    return images[..., None].astype(np.float32), masks


# ---------------------------------------------------------------------------------------------
# networks


@pytest.mark.parametrize("kind", SEGMENTERS)
def test_softmax_per_pixel_at_input_resolution(kind):
    model = build_segmenter(kind, (32, 32, 2), 3, seed=0, **TINY[kind])
    assert model.input_shape == (None, 32, 32, 2)
    assert model.output_shape == (None, 32, 32, 3)
    x = np.random.default_rng(0).random((2, 32, 32, 2)).astype(np.float32)
    p = keras.ops.convert_to_numpy(model(x, training=False))
    assert p.shape == (2, 32, 32, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(p >= 0)


@pytest.mark.parametrize("kind", SEGMENTERS)
@pytest.mark.parametrize("shape", [(33, 29), (17, 45, 1), (5, 7)])
def test_sizes_not_divisible_by_the_stride(kind, shape):
    model = build_segmenter(kind, shape, 2, seed=0, **TINY[kind])
    h, w = shape[:2]
    assert model.output_shape == (None, h, w, 2)
    x = np.random.default_rng(1).random((1, h, w, 1)).astype(np.float32)
    assert keras.ops.convert_to_numpy(model(x, training=False)).shape == (1, h, w, 2)


def test_output_depends_on_the_input_position():
    # The padding/cropping must keep pixels where they were: a bright spot moves the response.
    model = build_segmenter("unet", (12, 10), 2, seed=3, **TINY["unet"])
    a = np.zeros((1, 12, 10, 1), np.float32)
    b = a.copy()
    a[0, 2, 2] = 5.0
    b[0, 9, 7] = 5.0
    pa, pb = keras.ops.convert_to_numpy(model(np.concatenate([a, b]), training=False))
    near_a = np.abs(pa - pb)[:5, :5].sum()
    far_a = np.abs(pa - pb)[:5, 6:].sum()
    assert near_a > 0 and np.abs(pa - pb)[7:, 5:].sum() > 0 and near_a > far_a


def test_deeplab_options():
    base = dict(width=4, seed=0)
    plain = build_segmenter("deeplabv3", (32, 32), 2, decoder=False, **base)
    dec = build_segmenter("deeplabv3", (32, 32), 2, **base)
    assert "decoder_concat" not in [layer.name for layer in plain.layers]
    assert "decoder_concat" in [layer.name for layer in dec.layers]
    names = [layer.name for layer in dec.layers]
    # paper rates (6, 12, 18) for 33x33 maps, scaled to the 4x4 map of a 32x32 input at stride 8
    assert {"aspp_rate1_conv", "aspp_rate2_conv", "aspp_rate3_conv", "aspp_pool"} <= set(names)
    assert dec.get_layer("aspp_rate3_conv").dilation_rate == (3, 3)
    custom = build_segmenter("deeplabv3", (32, 32), 2, atrous_rates=(1, 3), **base)
    assert {"aspp_rate1_conv", "aspp_rate3_conv"} <= {layer.name for layer in custom.layers}
    assert "aspp_rate2_conv" not in {layer.name for layer in custom.layers}
    for stride in (4, 8, 16):
        m = build_segmenter("deeplabv3", (40, 24), 2, output_stride=stride, **base)
        assert m.output_shape == (None, 40, 24, 2)
        assert m.get_layer("aspp_pool").output.shape[1:3] == (1, 1)
        assert m.get_layer("aspp_1x1_conv").output.shape[1:3] == (
            -(-40 // stride),
            -(-24 // stride),
        )


@pytest.mark.parametrize("kind", SEGMENTERS)
def test_seed_fixes_the_weights(kind):
    a = build_segmenter(kind, (16, 16), 2, seed=7, **TINY[kind])
    keras.utils.set_random_seed(123)  # the global state must not matter
    b = build_segmenter(kind, (16, 16), 2, seed=7, **TINY[kind])
    c = build_segmenter(kind, (16, 16), 2, seed=8, **TINY[kind])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


@pytest.mark.parametrize("kind", SEGMENTERS)
def test_default_seed_none_builds_from_the_global_state(kind):
    # seed=None (the default) once handed Keras an initialiser name it does not know ("glorot")
    keras.utils.set_random_seed(5)
    a = build_segmenter(kind, (16, 16), 2, **TINY[kind])
    keras.utils.set_random_seed(5)
    b = build_segmenter(kind, (16, 16), 2, **TINY[kind])
    assert a.output_shape == (None, 16, 16, 2)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("segnet", (16, 16), 2), {}, "kind"),
        (("unet", (16, 16), 1), {}, "n_classes"),
        (("unet", (16, 16), 2.0), {}, "n_classes"),
        (("unet", (16, None), 2), {}, "input_shape"),
        (("unet", (16, 0, 1), 2), {}, "input_shape"),
        (("unet", (16,), 2), {}, "input_shape"),
        (("unet", (1, 16, 16, 1), 2), {}, "input_shape"),
        (("unet", 16, 2), {}, "input_shape"),
        (("unet", (16, 16), 2), {"depth": 0}, "depth"),
        (("unet", (16, 16), 2), {"width": 0}, "width"),
        (("unet", (16, 16), 2), {"dropout": 1.0}, "dropout"),
        (("unet", (16, 16), 2), {"seed": -1}, "seed"),
        (("deeplabv3", (16, 16), 2), {"output_stride": 32}, "output_stride"),
        (("deeplabv3", (16, 16), 2), {"atrous_rates": (2, 2)}, "atrous_rates"),
        (("deeplabv3", (16, 16), 2), {"atrous_rates": (0, 1)}, "atrous_rates"),
        (("deeplabv3", (16, 16), 2), {"atrous_rates": 3}, "atrous_rates"),
        (("deeplabv3", (16, 16), 2), {"decoder": "yes"}, "decoder"),
    ],
)
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_segmenter(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Dice and IoU in NumPy, against scikit-learn


@pytest.fixture
def masks():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, (4, 9, 7))
    p = np.where(rng.random(t.shape) < 0.7, t, rng.integers(0, 3, t.shape))
    return t, p


def test_dice_and_iou_match_sklearn(masks):
    t, p = masks
    labels = [0, 1, 2]
    np.testing.assert_allclose(
        dice_coefficient(t, p, average=None),
        f1_score(t.ravel(), p.ravel(), labels=labels, average=None),
    )
    np.testing.assert_allclose(
        iou_score(t, p, average=None),
        jaccard_score(t.ravel(), p.ravel(), labels=labels, average=None),
    )
    assert dice_coefficient(t, p) == pytest.approx(f1_score(t.ravel(), p.ravel(), average="macro"))
    assert iou_score(t, p) == pytest.approx(jaccard_score(t.ravel(), p.ravel(), average="macro"))
    assert dice_coefficient(t, p, class_ids=[1, 2]) == pytest.approx(
        f1_score(t.ravel(), p.ravel(), labels=[1, 2], average="macro")
    )
    # Dice and IoU of one class are tied: D = 2 J / (1 + J)
    j = iou_score(t, p, average=None)
    np.testing.assert_allclose(dice_coefficient(t, p, average=None), 2 * j / (1 + j))


def test_probabilities_are_reduced_by_argmax(masks):
    t, p = masks
    proba = np.random.default_rng(1).dirichlet(np.ones(4), size=t.shape)
    assert dice_coefficient(t, proba) == pytest.approx(
        dice_coefficient(t, proba.argmax(-1), n_classes=4)
    )
    # one-hot probabilities give the labels' score
    assert dice_coefficient(t, np.eye(3)[p]) == pytest.approx(dice_coefficient(t, p))


def test_absent_classes_are_nan_and_left_out_of_the_mean():
    t = np.array([[0, 0, 2, 2]])
    p = np.array([[0, 2, 2, 2]])
    per_class = dice_coefficient(t, p, n_classes=4, average=None)
    assert np.isnan(per_class[1]) and np.isnan(per_class[3])
    assert dice_coefficient(t, p, n_classes=4) == pytest.approx(np.mean([2 / 3, 0.8]))
    assert dice_coefficient(t, t) == 1.0
    assert iou_score(np.zeros((3, 3), int), np.ones((3, 3), int), average=None).tolist() == [
        0.0,
        0.0,
    ]


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs, match",
    [
        (np.zeros((2, 3), int), np.zeros((2, 4), int), {}, "y_pred"),
        (np.full((2, 3), -1), np.zeros((2, 3), int), {}, "y_true"),
        (np.full((2, 3), 0.5), np.zeros((2, 3), int), {}, "y_true"),
        (np.zeros((2, 3), int), np.full((2, 3), 3), {"n_classes": 3}, "n_classes"),
        (np.zeros((2, 3), int), np.zeros((2, 3, 4)), {"n_classes": 3}, "n_classes"),
        (np.zeros((2, 3), int), np.zeros((2, 3), int), {"average": "micro"}, "average"),
        (np.zeros((2, 3), int), np.zeros((2, 3), int), {"class_ids": [5]}, "class_ids"),
        (np.zeros((0,), int), np.zeros((0,), int), {}, "empty"),
        (np.zeros((2,), complex), np.zeros((2,), int), {}, "y_true"),
    ],
)
def test_score_bad_arguments(y_true, y_pred, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dice_coefficient(y_true, y_pred, **kwargs)


# ---------------------------------------------------------------------------------------------
# the Keras metrics and loss


def test_streaming_metrics_equal_the_numpy_scores(masks):
    t, p = masks
    proba = np.eye(3)[p].astype(np.float32) * 0.8 + 0.05
    dice, iou, fg = DiceMetric(3), IoUMetric(3), DiceMetric(3, class_ids=[1, 2])
    for start in (0, 2, 3):  # uneven chunks
        stop = {0: 2, 2: 3, 3: 4}[start]
        for m in (dice, iou, fg):
            m.update_state(t[start:stop], proba[start:stop])
    assert float(dice.result()) == pytest.approx(dice_coefficient(t, p), rel=1e-6)
    assert float(iou.result()) == pytest.approx(iou_score(t, p), rel=1e-6)
    assert float(fg.result()) == pytest.approx(dice_coefficient(t, p, class_ids=[1, 2]), rel=1e-6)
    np.testing.assert_allclose(dice.per_class(), dice_coefficient(t, p, average=None))
    dice.reset_state()
    dice.update_state(t[..., None], proba)  # (n, H, W, 1) masks
    assert float(dice.result()) == pytest.approx(dice_coefficient(t, p), rel=1e-6)
    # Keras' own mean IoU agrees when every class occurs
    with warnings.catch_warnings():
        # under JAX (no x64) Keras' MeanIoU asks for int64 itself and JAX warns about it
        warnings.filterwarnings("ignore", "Explicitly requested dtype", UserWarning)
        ref = keras.metrics.MeanIoU(num_classes=3)
        ref.update_state(t, p)
        assert float(iou.result()) == pytest.approx(float(ref.result()), rel=1e-5)


def test_metric_weights_and_void_labels(masks):
    t, p = masks
    proba = np.eye(3)[p].astype(np.float32)
    m = DiceMetric(3)
    m.update_state(t, proba, sample_weight=np.array([1.0, 0.0, 1.0, 0.0]))
    keep = np.array([0, 2])
    assert float(m.result()) == pytest.approx(dice_coefficient(t[keep], p[keep]), rel=1e-6)
    void = t.copy()
    void[:, :3] = 255  # not scored
    m = IoUMetric(3)
    m.update_state(void, proba)
    assert float(m.result()) == pytest.approx(iou_score(t[:, 3:], p[:, 3:]), rel=1e-6)


def test_metric_config_and_validation():
    m = DiceMetric(4, class_ids=[1, 3], name="fg_dice")
    clone = DiceMetric.from_config(m.get_config())
    assert (clone.n_classes, clone.class_ids, clone.name) == (4, [1, 3], "fg_dice")
    with pytest.raises(ValueError, match="n_classes"):
        IoUMetric(1)
    with pytest.raises(ValueError, match="class_ids"):
        DiceMetric(2, class_ids=[2])
    with pytest.raises(ValueError, match="smooth"):
        DiceLoss(2, smooth=0)
    with pytest.raises(ValueError, match="crossentropy"):
        DiceLoss(2, crossentropy=-1)


def test_soft_dice_loss():
    t = np.array([[[0, 1], [1, 1]], [[0, 0], [0, 1]]])
    perfect = np.eye(2)[t].astype(np.float32)
    loss = DiceLoss(2, smooth=1e-6)
    assert float(loss(t, perfect)) == pytest.approx(0.0, abs=1e-5)
    assert float(loss(t, 1 - perfect)) == pytest.approx(1.0, abs=1e-5)
    # the formula, per image then averaged, for a soft prediction
    soft = np.full(perfect.shape, 0.5, np.float32)
    one_hot = np.eye(2)[t]
    inter = (one_hot * soft).sum(axis=(1, 2))
    dice = (2 * inter + 1.0) / (one_hot.sum(axis=(1, 2)) + soft.sum(axis=(1, 2)) + 1.0)
    assert float(DiceLoss(2)(t, soft)) == pytest.approx(np.mean(1 - dice.mean(axis=1)), rel=1e-5)
    fg_only = (2 * inter[:, 1] + 1.0) / (
        one_hot[..., 1].sum(axis=(1, 2)) + soft[..., 1].sum(axis=(1, 2)) + 1.0
    )
    assert float(DiceLoss(2, class_ids=1)(t, soft)) == pytest.approx(np.mean(1 - fg_only), rel=1e-5)
    ce = -np.log(0.5)
    assert float(DiceLoss(2, crossentropy=0.5)(t, soft)) == pytest.approx(
        np.mean(1 - dice.mean(axis=1)) + 0.5 * ce, rel=1e-5
    )


def test_save_and_load_with_the_custom_objects(tmp_path):
    model = build_segmenter("unet", (8, 8), 2, seed=0, **TINY["unet"])
    model.compile(
        "adam", DiceLoss(2, crossentropy=1.0), metrics=[DiceMetric(2, class_ids=1), IoUMetric(2)]
    )
    model.optimizer.build(model.trainable_variables)  # as after training, without the training
    x, _ = make_discs(2, 8, seed=5)
    path = tmp_path / "seg.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )
    assert isinstance(loaded.loss, DiceLoss) and loaded.loss.crossentropy == 1.0


# ---------------------------------------------------------------------------------------------
# learning something


@pytest.fixture(scope="module")
def discs():
    return make_discs(160, 32, seed=0), make_discs(48, 32, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, options, loss",
    [
        ("deeplabv3", {"width": 8}, "sparse_categorical_crossentropy"),
        ("unet", {"width": 4, "depth": 2}, "dice+ce"),
    ],
)
def test_short_training_on_synthetic_discs(discs, kind, options, loss):
    (x, m), (xt, mt) = discs
    model = build_segmenter(kind, (32, 32), 2, seed=0, **options)
    if loss == "dice+ce":
        loss = DiceLoss(2, crossentropy=1.0)
    model.compile(
        keras.optimizers.Adam(3e-3), loss, metrics=[DiceMetric(2, class_ids=1), IoUMetric(2)]
    )
    keras.utils.set_random_seed(0)  # the shuffling order
    model.fit(x, m, epochs=8, batch_size=32, verbose=0)
    proba = model.predict(xt, verbose=0)
    fg = dice_coefficient(mt, proba, class_ids=1)
    assert fg > 0.7, fg  # the all-background prediction scores 0 on the foreground
    assert dice_coefficient(mt, proba) > dice_coefficient(mt, np.zeros_like(mt), n_classes=2) + 0.3
    # the streaming metric of model.evaluate and the NumPy score on the same predictions agree
    results = model.evaluate(xt, mt, batch_size=16, verbose=0, return_dict=True)
    assert results["dice"] == pytest.approx(fg, rel=1e-4)
    assert results["iou"] == pytest.approx(iou_score(mt, proba), rel=1e-4)
    assert results["iou"] == pytest.approx(
        jaccard_score(mt.ravel(), proba.argmax(-1).ravel(), average="macro"), rel=1e-4
    )
