"""medfeat.deep.gan: the conditional GAN, expansion of a training split, the quality figures."""

import contextlib
import io
import os

import numpy as np
import pytest

from medfeat.deep.gan import (ConditionalGAN, ClassProjection, SpectralConv2D, SpectralDense,
                              class_agreement, expand, expand_split, plot_samples,
                              two_sample_auc)
from medfeat.io import Dataset

SMALL = {"epochs": 2, "batch_size": 16, "width": 4, "latent_dim": 16, "verbose": 0}


def discs_and_stripes(n_per_class=48, size=16, seed=0):
    """Class 0: a bright disc on a dark ground; class 1: dark ground with bright stripes, both
    jittered and noisy (uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = []
    for _ in range(n_per_class):
        cy, cx = rng.uniform(size * 0.35, size * 0.65, 2)
        r = rng.uniform(size * 0.2, size * 0.3)
        images.append(np.where((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r, 220.0, 30.0))
    for _ in range(n_per_class):
        phase = rng.integers(0, 4)
        images.append(np.where(((xx + phase) // 2) % 2 == 0, 160.0, 20.0))
    x = np.stack(images) + rng.normal(0, 8, (2 * n_per_class, size, size))
    y = np.repeat([0, 1], n_per_class)
    return np.clip(np.round(x), 0, 255).astype(np.uint8), y


@pytest.fixture(scope="module")
def data():
    return discs_and_stripes()


@pytest.fixture(scope="module")
def trained(data):
    """The GAN of the quality test (trained once), with its progress lines."""
    x, y = data
    out = io.StringIO()
    gan = ConditionalGAN(epochs=30, batch_size=16, width=8, latent_dim=16, lr_g=1e-3, lr_d=2e-3,
                         seed=0, verbose=1)
    with contextlib.redirect_stdout(out):
        gan.fit(x, y)
    return gan, out.getvalue().splitlines()


@pytest.fixture(scope="module")
def small(data):
    x, y = data
    return ConditionalGAN(seed=3, **SMALL).fit(x, y)


def test_samples_keep_shape_dtype_and_range(data, trained):
    x, y = data
    gan, lines = trained
    s = gan.sample(10, label=1)
    assert s.shape == (10, 16, 16) and s.dtype == np.uint8
    assert s.min() >= x.min() and s.max() <= x.max()
    assert gan.generator_.output_shape == (None, 16, 16, 1)
    assert [ln.split()[:2] for ln in lines] == [["epoch", f"{k}/30"] for k in range(1, 31)]
    assert len(gan.history_["d_loss"]) == 30 and gan.epochs_ == 30


def test_float_images_come_back_as_float_in_their_range_and_odd_sizes_cropped():
    rng = np.random.default_rng(1)
    x = (rng.random((24, 10, 9, 1)) * 3 - 2).astype(np.float32)      # values in [-2, 1)
    gan = ConditionalGAN(seed=0, **SMALL).fit(x, np.arange(24) % 3)
    s = gan.sample(9)
    assert s.shape == (9, 10, 9, 1) and s.dtype == np.float32
    assert s.min() >= x.min() and s.max() <= x.max()
    # label None: the classes in turn
    np.testing.assert_array_equal(gan.sample(5, seed=2), gan.sample(5, label=[0, 1, 2, 0, 1],
                                                                  seed=2))
    assert not np.array_equal(gan.sample(3, label=0, seed=2), gan.sample(3, label=2, seed=2))


def test_same_seed_same_weights_and_samples(data, small):
    x, y = data
    again = ConditionalGAN(seed=3, **SMALL).fit(x, y)
    for a, b in zip(small.generator_.get_weights(), again.generator_.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(small.sample(6, label=0, seed=1),
                                  again.sample(6, label=0, seed=1))
    # the default sample seed is the GAN's seed
    np.testing.assert_array_equal(small.sample(4), small.sample(4, seed=3))
    assert not np.array_equal(small.sample(6, label=0, seed=1), small.sample(6, label=0, seed=2))
    # a GAN built by expand_split: gan_options and seed reach it; another seed, other samples
    _, _, syn, other = expand_split(x, y, factor=0.5, classes="all", seed=4, gan_options=SMALL)
    assert other.seed == 4 and other.width == SMALL["width"] and syn.sum() == len(y) // 2
    assert not np.array_equal(other.sample(6, label=0, seed=1), small.sample(6, label=0, seed=1))


def test_samples_belong_to_the_requested_class(data, trained):
    """A classifier trained on the real images assigns >= 90% of each class's samples to it."""
    from sklearn.linear_model import LogisticRegression

    x, y = data
    gan, _ = trained
    clf = LogisticRegression(max_iter=2000).fit(x.reshape(len(x), -1) / 255.0, y)
    assert clf.score(x.reshape(len(x), -1) / 255.0, y) == 1.0
    for label in (0, 1):
        s = gan.sample(50, label=label, seed=7)
        hits = np.mean(clf.predict(s.reshape(50, -1) / 255.0) == label)
        assert hits >= 0.9, (label, hits)
    # and they are not copies of one image
    assert np.std(gan.sample(20, label=0, seed=8).astype(float), axis=0).mean() > 1.0


def test_save_load_round_trip(tmp_path, small):
    path = tmp_path / "gan.keras"
    small.save(path)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]
    again = ConditionalGAN.load(path)
    np.testing.assert_array_equal(again.sample(7, label=1, seed=5),
                                  small.sample(7, label=1, seed=5))
    assert again.classes_.tolist() == [0, 1] and again.dtype_ == np.uint8
    assert again.value_range_ == small.value_range_
    with pytest.raises(ValueError, match="path"):
        small.save(tmp_path / "gan.h5")
    with pytest.raises(ValueError, match="path"):
        ConditionalGAN.load(tmp_path / "missing.keras")


def test_expand_adds_to_train_only(data, small):
    x, y = data
    ds = Dataset((x[8:88], y[8:88]), (x[:8], y[:8]), (x[88:], y[88:]), ("disc", "stripes"), "toy")
    counts = np.bincount(ds.train.labels)
    big = expand(ds, factor=0.5, classes="all", gan=small, seed=1)
    for part in ("val", "test"):              # the same arrays, untouched
        assert getattr(big, part).images is getattr(ds, part).images
        np.testing.assert_array_equal(getattr(big, part).labels, getattr(ds, part).labels)
    n = len(ds.train.labels)
    np.testing.assert_array_equal(big.train.images[:n], ds.train.images)
    np.testing.assert_array_equal(big.train.labels[:n], ds.train.labels)
    np.testing.assert_array_equal(np.bincount(big.train.labels[n:]), np.round(counts * 0.5))
    assert big.synthetic.dtype == bool and not big.synthetic[:n].any() and big.synthetic[n:].all()
    assert big.train.images.dtype == np.uint8 and ds.synthetic is None
    # expanding again trains on (and counts) only the real rows and keeps the marks
    again = expand(big, factor=0.25, classes="all", gan=small, seed=2)
    assert again.synthetic[:len(big.synthetic)].tolist() == big.synthetic.tolist()
    assert int(again.synthetic.sum()) == int(big.synthetic.sum()) + int(np.round(
        counts * 0.25).sum())


def test_minority_tops_up_smaller_classes_toward_the_largest(data, small):
    x, y = data
    xs, ys = x[:60], y[:60]                    # 48 of class 0, 12 of class 1
    xe, ye, syn, gan = expand_split(xs, ys, factor=1.0, classes="minority", gan=small, seed=0)
    assert gan is small and syn.sum() == 12 and set(ye[syn].tolist()) == {1}
    _, ye, syn, _ = expand_split(xs, ys, factor=5.0, classes="minority", gan=small, seed=0)
    assert syn.sum() == 36 and np.bincount(ye).tolist() == [48, 48]   # capped at the largest
    _, ye, syn, _ = expand_split(xs, ys, factor=0.5, classes="minority", gan=small, seed=0)
    assert syn.sum() == 6 and set(ye[syn].tolist()) == {1}


def test_bad_arguments_name_the_argument(data, small):
    x, y = data
    for kwargs, name in [({"epochs": 0}, "epochs"), ({"batch_size": -1}, "batch_size"),
                         ({"latent_dim": 1.5}, "latent_dim"), ({"lr_d": 0}, "lr_d"),
                         ({"seed": -1}, "seed"), ({"width": True}, "width")]:
        with pytest.raises(ValueError, match=name):
            ConditionalGAN(**{**SMALL, **kwargs}).fit(x[:8], y[:8])
    with pytest.raises(ValueError, match="images"):
        ConditionalGAN(**SMALL).fit(np.zeros((4, 4, 4)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="labels"):
        ConditionalGAN(**SMALL).fit(x[:8], y[:7])
    with pytest.raises(ValueError, match="label"):
        small.sample(3, label=7)
    with pytest.raises(ValueError, match="n must"):
        small.sample(-1)
    with pytest.raises(ValueError, match="not fitted"):
        ConditionalGAN().sample(2)
    with pytest.raises(ValueError, match="factor"):
        expand_split(x, y, factor=-1, gan=small)
    with pytest.raises(ValueError, match="classes"):
        expand_split(x, y, classes="some", gan=small)
    with pytest.raises(ValueError, match="gan_options"):
        expand_split(x, y, gan_options={"seed": 1})
    with pytest.raises(ValueError, match="dataset"):
        expand((x, y), gan=small)
    with pytest.raises(ValueError, match="synthetic"):
        Dataset((x, y), (x[:2], y[:2]), (x[:2], y[:2]), ("a", "b"), synthetic=np.zeros(3, bool))
    with pytest.raises(ValueError, match="classifier"):
        two_sample_auc(x, x, classifier="svm")


def test_two_sample_auc_tells_different_sets_apart(data):
    x, y = data
    rng = np.random.default_rng(0)
    half = rng.permutation(len(x))
    a, b = x[half[:48]], x[half[48:]]
    assert two_sample_auc(a, b, seed=0) < 0.75                   # two halves of the same data
    shifted = np.clip(b.astype(int) + 60, 0, 255).astype(np.uint8)
    assert two_sample_auc(a, shifted, seed=0) > 0.95
    # the small CNN sees the shift too, well above chance (two folds of 48 images: two short
    # trainings, a weaker test than the logistic regression's here)
    assert two_sample_auc(a, shifted, seed=0, classifier="cnn", cv=2) > 0.75


def test_class_agreement_tells_carried_classes_from_swapped_ones(data):
    x, y = data                                   # class 0 then class 1: train on every other
    assert class_agreement(x[::2], y[::2], x[1::2], y[1::2], seed=0) > 0.9
    assert class_agreement(x[::2], y[::2], x[1::2], 1 - y[1::2], seed=0) < 0.1
    with pytest.raises(ValueError, match="two classes"):
        class_agreement(x, np.zeros_like(y), x, y)
    with pytest.raises(ValueError, match="fake_labels"):
        class_agreement(x, y, x, y[:-1])


def test_plot_samples_writes_a_png(tmp_path, data, small):
    x, y = data
    path = plot_samples(small, x, y, tmp_path / "samples.png", n_per_class=3)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["samples.png"]
    with pytest.raises(ValueError, match="path"):
        plot_samples(small, x, y, tmp_path / "no" / "s.png")


def test_spectral_layers_have_unit_spectral_norm_and_serialise():
    import keras

    dense = SpectralDense(5, power_iterations=30)
    x = np.eye(7, dtype=np.float32)
    dense(x, training=True)          # builds, then the power iteration converges
    out = np.asarray(dense(x, training=True)) - np.asarray(dense.bias)
    assert np.linalg.svd(out, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-3)
    conv = SpectralConv2D(3, 3, strides=2, padding="valid")
    assert conv(np.zeros((1, 9, 9, 2), np.float32)).shape == (1, 4, 4, 3)
    for layer in (dense, conv, ClassProjection(4)):
        clone = keras.layers.deserialize(keras.layers.serialize(layer))
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
