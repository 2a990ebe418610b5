"""Integrated gradients (completeness, localisation, batching, validation), the backend gradient,
heat-map overlays and the attribution PNG grid."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from medfeat.deep import _backend
from medfeat.deep.explain import (
    METHODS,
    integrated_gradients,
    overlay,
    plot_attributions,
    volume_views,
)

L = keras.layers
SIZE = 16


def make_square_task(n, seed):
    """Noise in [0, 0.4]; class 1 carries a bright 4x4 square at a random place; with the mask."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.4, (n, SIZE, SIZE)).astype(np.float32)
    y = np.arange(n) % 2
    mask = np.zeros(x.shape, bool)
    for i in np.flatnonzero(y):
        r, c = rng.integers(1, SIZE - 5, 2)
        mask[i, r : r + 4, c : c + 4] = True
    x[mask] = rng.uniform(0.8, 1.0, mask.sum())
    return x[..., None], y, mask


def relu_cnn():
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            L.Conv2D(8, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(16, 3, activation="relu"),
            L.GlobalMaxPooling2D(),
            L.Dense(2),
            L.Activation("softmax"),
        ]
    )


def smooth_cnn():
    # tanh / softplus / average pooling: the score is smooth along the path, so the quadrature
    # error, and nothing else, limits completeness.
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            L.Conv2D(8, 3, activation="tanh"),
            L.AveragePooling2D(2),
            L.Conv2D(16, 3, activation="softplus"),
            L.GlobalAveragePooling2D(),
            L.Dense(2),
            L.Activation("softmax"),
        ]
    )


@pytest.fixture(scope="module")
def task():
    return make_square_task(320, seed=0), make_square_task(24, seed=1)


def _fit(build, task, epochs):
    (x, y, _), _ = task
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def relu_model(task):
    return _fit(relu_cnn, task, epochs=6)


@pytest.fixture(scope="module")
def smooth_model(task):
    return _fit(smooth_cnn, task, epochs=6)


def _score_gap(model, x, baseline, target):
    """f(x) - f(baseline) for the target unit, from an independent forward pass (model.predict)."""
    n = len(x)
    fx = model.predict(x, verbose=0).astype(np.float64)[np.arange(n), target]
    fb = model.predict(np.broadcast_to(baseline, x.shape).astype(np.float32), verbose=0)
    return fx - fb.astype(np.float64)[np.arange(n), target]


# ---------------------------------------------------------------------------------------------
# exactness and completeness


@pytest.mark.parametrize("method", METHODS)
def test_linear_model_is_exact(method):
    # For F(x) = w.x + c the gradient is w everywhere, so IG = w * (x - x') for any quadrature.
    model = keras.Sequential([keras.Input((5,)), L.Dense(2)])
    w = np.arange(10, dtype=np.float64).reshape(5, 2) - 4.0
    model.layers[0].set_weights([w, np.array([0.3, -1.0])])
    x = np.random.default_rng(0).normal(size=(3, 5))
    base = np.linspace(-1, 1, 5)
    att = integrated_gradients(model, x, target=[0, 1, 1], baseline=base, steps=3, method=method)
    expected = w[:, [0, 1, 1]].T * (x - base)
    np.testing.assert_allclose(att, expected, rtol=1e-5, atol=1e-5)
    assert att.dtype == np.float32 and att.shape == x.shape


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "riemann_middle"])
def test_completeness_relu_cnn(relu_model, task, method):
    # Images with the square: from a black baseline the score climbs all the way. (Plain noise
    # images and the black baseline both sit at p(class 0) = 1, a zero gap that proves nothing.)
    _, (xt, yt, _) = task
    x = xt[yt == 1][:8]
    target = np.argmax(relu_model.predict(x, verbose=0), axis=1)
    # ReLU scores are only piecewise smooth along the path: 128 points keep every image under 3 %
    # (measured max 1.3 % Gauss-Legendre, 0.5 % trapezoid; 2.1 % and 1.5 % at 64 points)
    att = integrated_gradients(relu_model, x, steps=128, method=method)
    gap = _score_gap(relu_model, x, 0.0, target)
    assert np.all(np.abs(gap) > 0.05), (
        "the test needs inputs whose score differs from the baseline's"
    )
    rel = np.abs(att.reshape(len(x), -1).sum(axis=1) - gap) / np.abs(gap)
    assert rel.max() < 0.03, rel


def test_completeness_smooth_cnn_and_convergence(smooth_model, task):
    _, (xt, yt, _) = task
    x = xt[yt == 1][:8]
    target = np.argmax(smooth_model.predict(x, verbose=0), axis=1)
    gap = _score_gap(smooth_model, x, 0.0, target)
    assert np.all(np.abs(gap) > 0.05)
    errors = {}
    for method, steps in [
        ("gausslegendre", 64),
        ("riemann_trapezoid", 8),
        ("riemann_trapezoid", 64),
    ]:
        att = integrated_gradients(smooth_model, x, steps=steps, method=method)
        errors[method, steps] = np.abs(att.reshape(len(x), -1).sum(axis=1) - gap) / np.abs(gap)
    assert errors["gausslegendre", 64].max() < 0.005, errors
    assert errors["riemann_trapezoid", 64].max() < 0.01, errors
    # more points, smaller error (trapezoid error falls roughly with steps**-2 on a smooth path)
    assert errors["riemann_trapezoid", 64].mean() < errors["riemann_trapezoid", 8].mean() / 4


def test_return_delta_matches_independent_gap(relu_model, task):
    _, (xt, _, _) = task
    x = xt[:5]
    base = np.full(x.shape[1:], 0.2, np.float32)
    att, delta = integrated_gradients(relu_model, x, target=1, baseline=base, return_delta=True)
    gap = _score_gap(relu_model, x, base, np.ones(5, int))
    np.testing.assert_allclose(delta, att.reshape(5, -1).sum(axis=1) - gap, atol=1e-5)
    assert delta.shape == (5,) and delta.dtype == np.float64


# ---------------------------------------------------------------------------------------------
# what the attributions say


def test_attribution_concentrates_on_the_signal(relu_model, task):
    _, (xt, yt, mt) = task
    pos = np.flatnonzero(yt == 1)
    assert (relu_model.predict(xt, verbose=0).argmax(1) == yt).mean() >= 0.9
    att = integrated_gradients(relu_model, xt[pos], target=1)[..., 0]
    inside = np.abs(att[mt[pos]]).mean()
    outside = np.abs(att[~mt[pos]]).mean()
    assert inside > 20 * outside, (inside, outside)
    # most of the evidence for "square present" sits on the square (16 of 256 pixels)
    positive = np.maximum(att, 0)
    assert positive[mt[pos]].sum() > 0.8 * positive.sum()


def test_default_target_is_the_predicted_class(relu_model, task):
    _, (xt, _, _) = task
    x = xt[:6]
    pred = np.argmax(relu_model.predict(x, verbose=0), axis=1)
    assert len(set(pred)) == 2
    np.testing.assert_array_equal(
        integrated_gradients(relu_model, x, steps=8),
        integrated_gradients(relu_model, x, target=pred, steps=8),
    )
    # the other class explains something else: the gaps of a two-class softmax are opposite
    other = integrated_gradients(relu_model, x, target=1 - pred, steps=8)
    np.testing.assert_allclose(
        other, -integrated_gradients(relu_model, x, target=pred, steps=8), atol=1e-5
    )


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_batching_does_not_change_the_result(relu_model, task, batch_size):
    _, (xt, _, _) = task
    x = xt[:3]
    ref = integrated_gradients(relu_model, x, steps=10, batch_size=10)
    np.testing.assert_allclose(
        integrated_gradients(relu_model, x, steps=10, batch_size=batch_size),
        ref,
        rtol=1e-5,
        atol=1e-7,
    )


def test_single_image_and_baselines(relu_model, task):
    _, (xt, _, _) = task
    x = xt[:3]
    batch = integrated_gradients(relu_model, x, target=1, steps=8)
    one = integrated_gradients(relu_model, x[1], target=1, steps=8)
    assert one.shape == x[1].shape
    np.testing.assert_allclose(one, batch[1], rtol=1e-5, atol=1e-7)
    # a scalar, one image and one per image broadcast the same way
    per_image = np.full(x.shape, 0.3, np.float32)
    a = integrated_gradients(relu_model, x, target=1, baseline=0.3, steps=8)
    b = integrated_gradients(relu_model, x, target=1, baseline=per_image[0], steps=8)
    c = integrated_gradients(relu_model, x, target=1, baseline=per_image, steps=8)
    np.testing.assert_allclose(a, b, atol=1e-7)
    np.testing.assert_allclose(a, c, atol=1e-7)
    assert not np.allclose(a, batch)
    # a baseline equal to the input has nothing to attribute
    assert not np.any(integrated_gradients(relu_model, x, baseline=x, steps=4))


def test_inputs_are_not_modified(relu_model, task):
    _, (xt, _, _) = task
    x = xt[:2].copy()
    base = np.full_like(x, 0.1)
    x0, b0 = x.copy(), base.copy()
    integrated_gradients(relu_model, x, baseline=base, steps=4)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(base, b0)


def test_integer_images(relu_model):
    x = np.random.default_rng(3).integers(0, 2, (2, SIZE, SIZE, 1)).astype(np.uint8)
    att = integrated_gradients(relu_model, x, steps=4)
    np.testing.assert_allclose(att, integrated_gradients(relu_model, x.astype(np.float32), steps=4))
    assert att.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"steps": 1, "method": "riemann_trapezoid"}, "steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"method": "simpson"}, "method"),
        ({"target": 2}, "target"),
        ({"target": -1}, "target"),
        ({"target": [0, 1, 0]}, "target"),
        ({"target": 0.5}, "target"),
        ({"baseline": np.zeros((SIZE, SIZE + 1, 1))}, "baseline"),
        ({"baseline": np.nan}, "baseline"),
        ({"return_delta": "yes"}, "return_delta"),
    ],
)
def test_bad_arguments(relu_model, kwargs, match):
    x = np.zeros((2, SIZE, SIZE, 1), np.float32)
    with pytest.raises(ValueError, match=match):
        integrated_gradients(relu_model, x, **kwargs)


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((2, SIZE, SIZE)),
        np.zeros((2, SIZE + 1, SIZE, 1)),
        np.zeros((2, SIZE, SIZE, 3)),
        np.zeros((1, 2, SIZE, SIZE, 1)),
        np.full((1, SIZE, SIZE, 1), np.inf),
        np.zeros((1, SIZE, SIZE, 1), complex),
    ],
)
def test_bad_images(relu_model, images):
    with pytest.raises(ValueError, match="images"):
        integrated_gradients(relu_model, images)


def test_model_output_must_be_a_score_vector():
    seg = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(2, 1)])
    with pytest.raises(ValueError, match="model"):
        integrated_gradients(seg, np.zeros((1, 8, 8, 1)))


# ---------------------------------------------------------------------------------------------
# the backend gradient


def test_gradient_matches_finite_differences(smooth_model, task):
    _, (xt, _, _) = task
    x = xt[:2].astype(np.float64)
    g, out = _backend.gradient(smooth_model, x, [1, 0], return_outputs=True)
    np.testing.assert_allclose(out, smooth_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    eps = 1e-2
    for k, t, idx in [(0, 1, (5, 6, 0)), (1, 0, (9, 2, 0))]:
        hi, lo = x[k].copy(), x[k].copy()
        hi[idx] += eps
        lo[idx] -= eps
        p = smooth_model.predict(np.stack([hi, lo]).astype(np.float32), verbose=0).astype(
            np.float64
        )
        fd = (p[0, t] - p[1, t]) / (2 * eps)
        assert g[(k,) + idx] == pytest.approx(fd, rel=0.05, abs=1e-5)


def test_unsupported_backend_is_refused(monkeypatch, relu_model):
    monkeypatch.setattr(_backend, "backend_name", lambda: "numpy")
    with pytest.raises(_backend.UnsupportedBackendError, match="numpy"):
        _backend.gradient(relu_model, np.zeros((1, SIZE, SIZE, 1)), 0)
    assert issubclass(_backend.UnsupportedBackendError, ValueError)


_JAX_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from medfeat.deep.explain import integrated_gradients
    assert keras.backend.backend() == sys.argv[1], keras.backend.backend()
    L = keras.layers
    model = keras.Sequential([keras.Input((6, 6, 1)), L.Conv2D(3, 3, activation="tanh"),
                              L.Flatten(), L.Dense(2), L.Activation("softmax")])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    x = rng.random((2, 6, 6, 1)).astype("float32")
    att, delta = integrated_gradients(model, x, steps=16, batch_size=5, return_delta=True)
    print(json.dumps({"att": att.tolist(), "delta": delta.tolist()}))
    """
)


def _run_backend(name):
    env = dict(os.environ, KERAS_BACKEND=name, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", _JAX_SCRIPT, name],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_backend_agrees_with_tensorflow():
    jax_result = _run_backend("jax")
    # the same model and input in this (TensorFlow) process
    L_ = keras.layers
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            L_.Conv2D(3, 3, activation="tanh"),
            L_.Flatten(),
            L_.Dense(2),
            L_.Activation("softmax"),
        ]
    )
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    x = rng.random((2, 6, 6, 1)).astype("float32")
    att = integrated_gradients(model, x, steps=16, batch_size=5)
    np.testing.assert_allclose(np.array(jax_result["att"]), att, rtol=1e-3, atol=1e-5)
    assert np.abs(jax_result["delta"]).max() < 1e-3


# ---------------------------------------------------------------------------------------------
# overlays and the PNG grid


def test_overlay_without_attribution_is_the_normalised_grey_image():
    img = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100 + 7
    rgb = overlay(img, np.zeros((3, 4)))
    grey = np.round((img - img.min()) / (img.max() - img.min()) * 255).astype(np.uint8)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, np.repeat(grey[..., None], 3, axis=-1))


def test_overlay_colours_where_the_attribution_is():
    import matplotlib

    img = np.full((8, 8), 0.5)
    att = np.zeros((8, 8, 1))
    att[2, 3] = 2.0
    att[6, 6] = -2.0
    rgb = overlay(img, att, alpha=1.0, cmap="viridis")
    top_unit = np.asarray(matplotlib.colormaps["viridis"](1.0))[:3]
    top = np.round(top_unit * 255)
    np.testing.assert_array_equal(rgb[2, 3], top)
    np.testing.assert_array_equal(rgb[6, 6], top)  # absolute value by default
    np.testing.assert_array_equal(rgb[0, 0], [0, 0, 0])  # a constant image normalises to 0
    pos = overlay(img, att, alpha=1.0, cmap="viridis", sign="positive")
    np.testing.assert_array_equal(pos[2, 3], top)
    np.testing.assert_array_equal(pos[6, 6], [0, 0, 0])
    neg = overlay(img, att, alpha=1.0, cmap="viridis", sign="negative")
    np.testing.assert_array_equal(neg[6, 6], top)
    np.testing.assert_array_equal(neg[2, 3], [0, 0, 0])
    # alpha scales the blend: alpha=0 is the grey image whatever the attribution
    np.testing.assert_array_equal(overlay(img, att, alpha=0.0), overlay(img, np.zeros((8, 8))))
    half = overlay(img, att, alpha=0.5, cmap="viridis")
    np.testing.assert_array_equal(half[2, 3], np.round(0.5 * top_unit * 255))


def test_overlay_clip_percentile_saturates_the_bulk():
    att = np.linspace(0.01, 1.0, 100).reshape(10, 10)
    att[0, 0] = 1000.0  # one outlier
    img = np.zeros((10, 10))
    clipped = overlay(img, att, alpha=1.0, clip_percentile=90)
    unclipped = overlay(img, att, alpha=1.0, clip_percentile=100)
    assert clipped[9, 9].sum() > unclipped[9, 9].sum()


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.zeros((4, 4)), np.zeros((4, 5))), {}, "attribution"),
        ((np.zeros((4, 4, 2)), np.zeros((4, 4))), {}, "image"),
        ((np.zeros((4,)), np.zeros((4,))), {}, "image"),
        ((np.zeros((4, 4)), np.zeros((4, 4))), {"alpha": 1.5}, "alpha"),
        ((np.zeros((4, 4)), np.zeros((4, 4))), {"sign": "both"}, "sign"),
        ((np.zeros((4, 4)), np.zeros((4, 4))), {"cmap": "no-such-map"}, "cmap"),
        ((np.zeros((4, 4)), np.zeros((4, 4))), {"clip_percentile": 0}, "clip_percentile"),
        ((np.zeros((4, 4)), np.zeros((4, 4), complex)), {}, "attribution"),
    ],
)
def test_overlay_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        overlay(*args, **kwargs)


def test_plot_attributions_writes_a_png_atomically(tmp_path):
    import matplotlib.image

    rng = np.random.default_rng(0)
    imgs = rng.random((3, 8, 8, 1))
    path = tmp_path / "ig.png"
    out = plot_attributions(imgs, imgs - 0.5, path, titles=["a", "b", "c"], ncols=2, dpi=50)
    assert out == path
    png = matplotlib.image.imread(path)
    assert png.ndim == 3 and png.shape[0] > 50 and png.shape[1] > png.shape[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ig.png"]  # no temporary file left
    with pytest.raises(ValueError, match="titles"):
        plot_attributions(imgs, imgs, tmp_path / "x.png", titles=["a"])
    with pytest.raises(ValueError, match="attributions"):
        plot_attributions(imgs, imgs[:2], tmp_path / "x.png")
    with pytest.raises(ValueError, match="path"):
        plot_attributions(imgs, imgs, tmp_path / "missing" / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ig.png"]


# ---------------------------------------------------------------------------------------------
# volumes


def _smooth_3d_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 10, 12, 1)),
            L.Conv3D(4, 3, activation="tanh"),
            L.AveragePooling3D(2),
            L.Conv3D(4, 3, activation="softplus", padding="same"),
            L.GlobalAveragePooling3D(),
            L.Dense(2),
            L.Activation("softmax"),
        ]
    )


def test_integrated_gradients_on_volumes_are_complete():
    model = _smooth_3d_model()
    x = np.random.default_rng(0).random((3, 8, 10, 12, 1)).astype(np.float32)
    att, delta = integrated_gradients(model, x, target=1, steps=32, return_delta=True)
    assert att.shape == x.shape and att.dtype == np.float32
    gap = _score_gap(model, x, np.zeros_like(x), np.ones(3, int))
    np.testing.assert_allclose(att.reshape(3, -1).sum(axis=1, dtype=np.float64), gap,
                               rtol=1e-3, atol=1e-5)
    assert np.all(np.abs(delta) <= 1e-3 * np.abs(gap) + 1e-5)
    one = integrated_gradients(model, x[0], target=1, steps=32)  # one volume, no batch axis
    np.testing.assert_allclose(one, att[0], rtol=1e-4, atol=1e-7)


def test_volume_views_mid_max_and_given_slices():
    rng = np.random.default_rng(0)
    vol = rng.random((6, 7, 9))
    att = np.zeros_like(vol)
    att[1, 5, 2] = -3.0  # the largest absolute attribution
    att[4, 2, 7] = 1.0
    views = volume_views(vol, att)
    assert [v[0] for v in views] == ["depth 3", "height 3", "width 4"]
    np.testing.assert_array_equal(views[0][1], vol[3])
    np.testing.assert_array_equal(views[1][1], vol[:, 3])
    np.testing.assert_array_equal(views[2][2], att[:, :, 4])
    views = volume_views(vol, att, slices="max")
    assert [v[0] for v in views] == ["depth 1", "height 5", "width 2"]
    assert views[0][2][5, 2] == -3.0
    views = volume_views(vol[..., None].repeat(2, axis=-1), att[..., None].repeat(2, axis=-1),
                         slices=(4, 2, 7))
    np.testing.assert_allclose(views[0][1], vol[4])  # channels averaged for display
    assert views[0][2][2, 7] == 2.0  # attributions summed over channels
    with pytest.raises(ValueError, match="slices"):
        volume_views(vol, att, slices=(0, 0, 9))
    with pytest.raises(ValueError, match="attribution"):
        volume_views(vol, att[:-1])
    with pytest.raises(ValueError, match="volume"):
        volume_views(vol[0], att[0])


def test_plot_attributions_draws_three_slices_per_volume(tmp_path):
    import matplotlib.image

    rng = np.random.default_rng(0)
    vols = rng.random((2, 6, 8, 8))
    out = plot_attributions(vols, vols - 0.5, tmp_path / "ig3d.png", titles=["a", "b"], dpi=40)
    png = matplotlib.image.imread(out)
    flat = plot_attributions(vols[:, 0], vols[:, 0], tmp_path / "ig2d.png", ncols=4, dpi=40)
    # a row of 3 image / overlay pairs per volume: twice as many rows as the 2-D grid of 2 pairs
    assert png.shape[0] > 1.5 * matplotlib.image.imread(flat).shape[0]
    five = plot_attributions(vols[..., None], vols[..., None], tmp_path / "ig5d.png",
                             slices="max", dpi=40)
    assert matplotlib.image.imread(five).shape == png.shape
    with pytest.raises(ValueError, match="attributions"):
        plot_attributions(vols, vols[:, :3], tmp_path / "x.png")
    with pytest.raises(ValueError, match="titles"):
        plot_attributions(vols, vols, tmp_path / "x.png", titles=["a"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ig2d.png", "ig3d.png", "ig5d.png"]
