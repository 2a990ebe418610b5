"""train / predict / save / load and DeepClassifier on tiny synthetic images."""

import contextlib
import functools
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import medfeat.deep as deep
from medfeat.deep import build_model
from medfeat.deep.training import DeepClassifier, load, predict, save, train

from .conftest import make_squares

TINY = {"width": 4, "dense": 8}


def _clf(kind="cnn", **kw):
    params = dict(epochs=2, batch_size=16, verbose=0, seed=0, model_options=TINY)
    params.update(kw)
    return DeepClassifier(kind, **params)


def _dense_model(input_shape, n_classes):
    """No batch norm, no dropout: its predictions change only through its weights."""
    import keras

    x = keras.Input(input_shape)
    y = keras.layers.Dense(n_classes, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(x, y)


@pytest.fixture(scope="module")
def fitted(squares):
    Xt, yt, Xv, yv = squares
    out = io.StringIO()
    clf = _clf(epochs=3, verbose=1, augment="default")
    with contextlib.redirect_stdout(out):  # DeepClassifier(verbose=1) prints one line per epoch
        clf.fit(Xt, yt, validation=(Xv, yv))
    lines = out.getvalue().splitlines()
    return clf, lines


def test_deep_classifier_fit_predict_proba(squares, fitted):
    Xt, yt, Xv, yv = squares
    clf, lines = fitted
    proba = clf.predict_proba(Xv)
    assert proba.shape == (len(Xv), 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(Xv), clf.classes_[proba.argmax(axis=1)])
    assert clf.fit_seconds_ > 0
    assert clf.model_.input_shape == (None, 16, 16, 1)
    assert clf.preprocessing_["low"] == 0 and clf.preprocessing_["high"] == 255
    assert clf.preprocessing_["add_channel"] is True
    assert [ln.split()[:2] for ln in lines] == [["epoch", f"{k}/3"] for k in (1, 2, 3)]


def test_best_epoch_weights_are_restored(squares, fitted):
    from sklearn.metrics import roc_auc_score

    Xt, yt, Xv, yv = squares
    clf, _ = fitted
    hist = clf.history_
    aucs = hist["val_auc"]
    assert len(aucs) == len(hist["loss"]) == hist["stopped_epoch"] == 3
    assert hist["best_epoch"] == 1 + int(np.argmax(aucs))
    # the model in hand is the best epoch's model
    assert roc_auc_score(yv, clf.predict_proba(Xv)[:, 1]) == pytest.approx(max(aucs), abs=1e-6)


def test_early_stopping_and_one_line_per_epoch(squares):
    Xt, yt, Xv, yv = squares
    lines = []
    model = _dense_model((16, 16, 1), 2)
    # a learning rate this small leaves the validation AUC unchanged: stop after `patience`
    hist = train(model, Xt / 255.0, yt, validation=(Xv / 255.0, yv), epochs=6, batch_size=32,
                 lr=1e-12, lr_schedule="constant", patience=2, log=lines.append)
    assert hist["stopped_epoch"] == 3 and hist["best_epoch"] == 1
    epoch_lines = [ln for ln in lines if ln.startswith("epoch")]
    assert len(epoch_lines) == 3 and "val_auc" in epoch_lines[0]
    assert any("early stop" in ln for ln in lines)
    silent = []
    train(_dense_model((16, 16, 1), 2), Xt / 255.0, yt, epochs=1, verbose=0, log=silent.append)
    assert silent == []


def test_same_seed_same_weights_and_predictions(squares):
    Xt, yt, Xv, yv = squares
    runs = []
    for _ in range(2):
        model = build_model("cnn", (16, 16, 1), 2, seed=5, **TINY)
        start = [w.copy() for w in model.get_weights()]
        train(model, Xt / 255.0, yt, epochs=2, batch_size=16, seed=5, augment="strong",
              verbose=0)
        runs.append((model.get_weights(), predict(model, Xv / 255.0)))
    (wa, pa), (wb, pb) = runs
    for a, b in zip(wa, wb):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pa, pb)
    assert any(not np.array_equal(a, s) for a, s in zip(wa, start))  # it did train


def test_balanced_class_weights_match_scikit_learn():
    from sklearn.utils.class_weight import compute_sample_weight

    from medfeat.deep._loop import _sample_weights

    y = np.array([0] * 9 + [1] * 3 + [2] * 1)
    np.testing.assert_allclose(_sample_weights(y, "balanced", 3),
                               compute_sample_weight("balanced", y), rtol=1e-6)
    assert _sample_weights(y, None, 3) is None
    np.testing.assert_allclose(_sample_weights(y, {1: 2.0}, 3)[8:11], [1, 2, 2])
    with pytest.raises(ValueError, match="class_weight"):
        _sample_weights(y, "auto", 3)


def test_tta_averages_over_flips(squares):
    _, _, Xv, _ = squares
    model = build_model("cnn", (16, 16, 1), 2, seed=0, **TINY)
    x = (Xv / 255.0).astype(np.float32)[..., None]
    views = [x, x[:, :, ::-1], x[:, ::-1], x[:, ::-1, ::-1]]
    expected = np.mean([model.predict(v, verbose=0) for v in views], axis=0)
    np.testing.assert_allclose(predict(model, x, tta=True), expected, rtol=1e-5, atol=1e-7)
    expected_h = np.mean([model.predict(v, verbose=0) for v in views[:2]], axis=0)
    np.testing.assert_allclose(predict(model, x, tta="horizontal"), expected_h, rtol=1e-5,
                               atol=1e-7)
    with pytest.raises(ValueError, match="tta"):
        predict(model, x, tta="diagonal")


def test_save_load_round_trip(tmp_path, squares, fitted):
    _, _, Xv, _ = squares
    clf, _ = fitted
    path = tmp_path / "clf.keras"
    clf.save(path)
    assert sorted(os.listdir(tmp_path)) == ["clf.keras"]  # no temporary file left behind
    for loaded in (DeepClassifier.load(path), load(path)):
        assert isinstance(loaded, DeepClassifier)
        np.testing.assert_array_equal(loaded.classes_, clf.classes_)
        assert loaded.preprocessing_ == clf.preprocessing_
        assert loaded.get_params()["epochs"] == clf.epochs
        np.testing.assert_allclose(loaded.predict_proba(Xv), clf.predict_proba(Xv), rtol=1e-6)
    model_path = tmp_path / "model.keras"
    save(clf.model_, model_path)
    model = load(model_path)
    np.testing.assert_allclose(predict(model, Xv / 255.0), clf.predict_proba(Xv), rtol=1e-5)
    with pytest.raises(ValueError, match="plain Keras model"):
        DeepClassifier.load(model_path)
    with pytest.raises(ValueError, match=".keras"):
        save(clf, tmp_path / "clf.h5")
    with pytest.raises(ValueError, match="keras.Model"):
        save("not a model", tmp_path / "x.keras")


def test_string_labels_int16_images_and_callable_kind(tmp_path):
    X, y = make_squares(40, 16, seed=1, dtype=np.int16)
    labels = np.array(["normal", "lesion"])[y]
    clf = DeepClassifier(_dense_model, epochs=1, batch_size=16, verbose=0).fit(X, labels)
    np.testing.assert_array_equal(clf.classes_, ["lesion", "normal"])
    assert clf.preprocessing_["low"] == X.min() and clf.preprocessing_["high"] == X.max()
    assert set(clf.predict(X)) <= {"normal", "lesion"}
    clf.save(tmp_path / "s.keras")
    np.testing.assert_array_equal(load(tmp_path / "s.keras").classes_, clf.classes_)


def test_kind_defaults_are_merged_with_model_options():
    clf = DeepClassifier("resnet18", model_options={"dropout": 0.1})
    assert clf.get_params()["epochs"] is None and clf._epochs() == 10
    model = clf._build((32, 32, 1), 2)
    assert model.get_layer("stem_conv").filters == 16  # the class default width
    assert model.get_layer("head_dropout").rate == 0.1  # the user's option
    assert DeepClassifier("resnet18", model_options={"width": 8})._build(
        (32, 32, 1), 2).get_layer("stem_conv").filters == 8
    assert DeepClassifier("cnn", epochs=3)._epochs() == 3


def test_bad_inputs(squares, fitted):
    Xt, yt, Xv, yv = squares
    clf, _ = fitted
    with pytest.raises(ValueError, match="X must be"):
        _clf().fit(Xt[0], yt)
    with pytest.raises(ValueError, match="real numbers"):
        _clf().fit(Xt.astype(complex), yt)
    bad = Xt.astype(np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _clf().fit(bad, yt)
    with pytest.raises(ValueError, match="y must have shape"):
        _clf().fit(Xt, yt[:-1])
    with pytest.raises(ValueError, match="two classes"):
        _clf().fit(Xt, np.zeros(len(Xt)))
    with pytest.raises(ValueError, match="not seen in training"):
        _clf().fit(Xt, yt, validation=(Xv, yv + 1))
    with pytest.raises(ValueError, match="fitted on"):
        clf.predict_proba(Xv[:, :8, :8])
    with pytest.raises(ValueError, match="epochs"):
        _clf(epochs=0).fit(Xt, yt)
    with pytest.raises(ValueError, match="class_weight"):
        _clf(class_weight={"a": 2.0}).fit(Xt, yt)
    model = build_model("cnn", (16, 16, 1), 2, **TINY)
    with pytest.raises(ValueError, match="do not fit"):
        train(model, Xt[:, :8], yt, epochs=1)
    with pytest.raises(ValueError, match="class indices"):
        train(model, Xt, yt + 5, epochs=1)
    with pytest.raises(ValueError, match="augment"):
        train(model, Xt, yt, epochs=1, augment=3)
    with pytest.raises(ValueError, match="strategy"):
        train(model, Xt, yt, epochs=1, strategy="everywhere")


def test_explain_shapes(squares, fitted):
    pytest.importorskip("medfeat.deep.explain")
    _, _, Xv, _ = squares
    clf, _ = fitted
    att = clf.explain(Xv[:3], steps=8)
    assert att.shape == Xv[:3].shape
    att1 = clf.explain(Xv[:2], target=1, steps=32)
    assert att1.shape == Xv[:2].shape and np.all(np.isfinite(att1))
    # completeness on the preprocessed input: the baseline (zeros) is the raw value 0 here
    gain = clf.predict_proba(Xv[:2])[:, 1] - clf.predict_proba(np.zeros_like(Xv[:2]))[:, 1]
    np.testing.assert_allclose(att1.reshape(2, -1).sum(axis=1), gain, rtol=0.05, atol=2e-3)


_FIT_ON_TWO_DEVICES = """
from medfeat.deep import DeepClassifier
rng = np.random.default_rng(0)
X = rng.integers(0, 255, (32, 16, 16)).astype(np.uint8)
y = np.arange(32) % 2
clf = DeepClassifier("cnn", epochs=1, batch_size=8, verbose=0, strategy="mirrored",
                     model_options={"width": 4, "dense": 8}).fit(X, y, validation=(X, y))
p = clf.predict_proba(X)
"""


def test_data_parallel_strategy_on_two_cpu_devices():
    import keras

    backend = keras.backend.backend()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore",
               KERAS_BACKEND=backend)
    if backend == "tensorflow":
        # logical devices must be configured before TensorFlow initialises: a fresh process
        code = textwrap.dedent("""
            import numpy as np, tensorflow as tf
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        """) + _FIT_ON_TWO_DEVICES + textwrap.dedent("""
            print("REPLICAS", clf.model_.distribute_strategy.num_replicas_in_sync, p.shape)
        """)
    elif backend == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        code = "import numpy as np\n" + _FIT_ON_TWO_DEVICES + textwrap.dedent("""
            print("REPLICAS", clf.model_.weights[0].value.sharding.mesh.size, p.shape)
        """)
    else:
        pytest.skip(f"no data-parallel strategy for the {backend} backend")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "REPLICAS 2 (32, 2)" in out.stdout


def test_lazy_exports(squares):
    Xt, yt, _, _ = squares
    assert deep.DeepClassifier is DeepClassifier and deep.predict is predict
    # the function, not a module, whatever was imported first (the module is deep.training)
    import medfeat.deep.training  # noqa: F401

    assert deep.train is train and callable(deep.train)
    hist = deep.train(_dense_model((16, 16, 1), 2), Xt / 255.0, yt, epochs=1, verbose=0)
    assert len(hist["loss"]) == 1


def test_embedded_default_deep_settings_build_and_fit():
    # `medfeat compare` without --data (pipeline.compare(None)) builds its deep methods from
    # pipeline.PHANTOM_DEEP
    from medfeat import pipeline
    from medfeat.deep import DeepClassifier

    methods = pipeline._embedded_methods(("nb", "cnn", "resnet18"), None, 3, verbose=0)
    assert methods["nb"] == "nb"
    for kind in ("cnn", "resnet18"):
        clf = methods[kind]
        assert isinstance(clf, DeepClassifier) and clf.kind == kind and clf.seed == 3
        assert clf.augment is None and clf.epochs == pipeline.PHANTOM_DEEP[kind]["epochs"]
        params = clf.get_params()  # every setting reaches the classifier (warm-up, restarts...)
        assert {k: params[k] for k in pipeline.PHANTOM_DEEP[kind]} == pipeline.PHANTOM_DEEP[kind]
    assert methods["cnn"].model_options["pool"] == "max"
    assert pipeline._embedded_methods(("cnn",), 2, 0, verbose=0)["cnn"].epochs == 2   # --epochs wins
    clf = methods["cnn"].set_params(epochs=1, model_options={"pool": "max", "dropout": 0.0,
                                                             "width": 4, "dense": 8})
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(24, 16, 16), dtype=np.uint8)
    y = np.arange(24) % 2
    proba = clf.fit(X, y).predict_proba(X)
    assert proba.shape == (24, 2) and np.allclose(proba.sum(axis=1), 1)
    assert type(clf.model_.get_layer("pool")).__name__ == "GlobalMaxPooling2D"


def test_warmup_rises_linearly_over_its_steps_then_follows_the_schedule(squares, monkeypatch):
    Xt, yt, _, _ = squares
    model = _dense_model((16, 16, 1), 2)
    seen = []
    real = model.train_on_batch

    def spy(*args, **kwargs):  # the rate each warm-up step is taken at
        seen.append(float(np.asarray(model.optimizer.learning_rate)))
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "train_on_batch", spy)
    steps = -(-len(Xt) // 16)
    hist = train(model, Xt / 255.0, yt, epochs=3, batch_size=16, lr=0.01,
                 lr_schedule="constant", warmup=1.5, verbose=0)
    total = round(1.5 * steps)
    expected = [0.01 * min(1.0, (k + 1) / total) for k in range(2 * steps)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)  # epochs 1-2 step by step, 3 by fit
    assert len(hist["loss"]) == 3 and all(np.isfinite(hist["loss"]))
    assert float(np.asarray(model.optimizer.learning_rate)) == pytest.approx(0.01)


def _seeded_dense(seed):
    from medfeat.deep._keras import set_seed

    set_seed(seed)
    return _dense_model((16, 16, 1), 2)


def test_warmup_changes_training_and_stays_deterministic(squares):
    Xt, yt, _, _ = squares
    weights = {}
    for key, warmup in (("none", 0), ("a", 1), ("b", 1)):
        model = _seeded_dense(2)
        train(model, Xt / 255.0, yt, epochs=2, batch_size=16, seed=2, lr=0.01, warmup=warmup,
              verbose=0)
        weights[key] = model.get_weights()
    for a, b in zip(weights["a"], weights["b"]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights["a"], weights["none"]))


def test_warmup_epoch_loss_is_the_loss_fit_reports(squares):
    # at a rate too small to move the weights, a warm-up epoch (one step at a time) and a plain
    # epoch (one fit call) see the same batches and must report the same mean loss
    Xt, yt, _, _ = squares
    losses = []
    for warmup in (1, 0):
        hist = train(_seeded_dense(4), Xt / 255.0, yt, epochs=1, batch_size=20, seed=4,
                     lr=1e-12, lr_schedule="constant", warmup=warmup, verbose=0)
        losses.append(hist["loss"][0])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


@pytest.mark.parametrize("bad", [-1, "1", True, 5, float("nan")])
def test_warmup_out_of_range_is_refused(squares, bad):
    Xt, yt, _, _ = squares
    with pytest.raises(ValueError, match="warmup"):
        train(_dense_model((16, 16, 1), 2), Xt / 255.0, yt, epochs=2, warmup=bad, verbose=0)


def test_auc_lower_bound_follows_hanley_mcneil():
    from medfeat.deep._loop import auc_lower_bound

    # Hanley & McNeil (1982), eqs. 1-2, by hand for A = 0.8 and 50 cases per class:
    # Q1 = 0.8 / 1.2, Q2 = 2 * 0.64 / 1.8, SE^2 = (0.16 + 49 (Q1 - 0.64) + 49 (Q2 - 0.64)) / 2500
    y = np.array([0] * 50 + [1] * 50)
    se = np.sqrt((0.16 + 49 * (2 / 3 - 0.64) + 49 * (1.28 / 1.8 - 0.64)) / 2500)
    assert se == pytest.approx(0.0445, abs=1e-4)
    assert auc_lower_bound(0.8, y) == pytest.approx(0.8 - 1.959964 * se, rel=1e-6)
    assert auc_lower_bound(0.8, y[::-1]) == auc_lower_bound(0.8, y)  # counts, not order
    # wider with fewer cases of the smaller class; 0.5 itself is never above chance
    y_small = np.array([0] * 90 + [1] * 10)
    assert auc_lower_bound(0.8, y_small) < auc_lower_bound(0.8, y)
    assert auc_lower_bound(0.5, y) < 0.5
    assert auc_lower_bound(0.9, np.zeros(10, int)) == -np.inf


def test_restart_when_validation_auc_stays_at_chance(squares, monkeypatch):
    from medfeat.deep import training

    Xt, yt, Xv, yv = squares
    flat = np.full_like(Xv, 100)  # one image repeated: tied scores, validation AUC exactly 0.5
    out = io.StringIO()
    dense = functools.partial(_clf, kind=_dense_model, model_options=None)
    clf = dense(epochs=1, restarts=1, verbose=1)
    with contextlib.redirect_stdout(out):
        clf.fit(Xt, yt, validation=(flat, yv))
    assert clf.history_["attempts"] == [0.5, 0.5]
    assert "restart: best validation AUC 0.500" in out.getvalue()
    assert clf.seed_ == 0  # the first among equals
    once = dense(epochs=1).fit(Xt, yt, validation=(flat, yv))  # restarts=0: one attempt
    assert once.history_["attempts"] == [0.5] and once.seed_ == 0
    # the attempt kept is the one with the best validation AUC, here the second
    scores = iter([0.5, 0.55, 0.52])
    monkeypatch.setattr(training, "best_val_auc", lambda history: next(scores))
    models = []
    real_train = training.train

    def spy(model, *args, **kwargs):
        models.append(model)
        return real_train(model, *args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    clf = dense(epochs=1, restarts=2).fit(Xt, yt, validation=(Xv, yv))
    # 0.55 on 16 + 16 validation cases is still at chance: a third attempt, then none left
    assert clf.history_["attempts"] == [0.5, 0.55, 0.52] and len(models) == 3
    assert clf.seed_ == 1_000_003 and clf.model_ is models[1]


def test_a_training_that_learns_is_not_restarted(squares):
    Xt, yt, Xv, yv = squares
    good = _clf(epochs=3, restarts=1).fit(Xt, yt, validation=(Xv, yv))
    assert len(good.history_["attempts"]) == 1 and good.seed_ == 0
    assert good.history_["attempts"][0] > 0.8
    with pytest.raises(ValueError, match="restarts"):
        _clf(restarts=-1).fit(Xt, yt, validation=(Xv, yv))
