"""The harness on small phantoms: same numbers as fitting the Pipelines by hand, seeded, the
metrics.json schema, method resolution and its errors, and a tiny deep method."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from medfeat.classical import make_classifier
from medfeat.evaluate import METRICS, Evaluation, MethodResult, evaluate, score, stratified_kfold
from medfeat.io import Dataset, make_phantoms

CLASSICAL = ["knn", "tree", "nb"]


@pytest.fixture(scope="module")
def phantoms():
    return make_phantoms(n=60, size=32, seed=0)


@pytest.fixture(scope="module")
def run(phantoms):
    """The kinds' fixed defaults (no search, no calibration): comparable with the Pipelines
    fitted by hand. Selection and calibration have their own tests (test_search.py)."""
    lines = []
    ev = evaluate(phantoms, CLASSICAL, cv=3, seed=0, progress=False, log=lines.append,
                  n_boot=200, select=False, calibrate=False)
    return ev, lines


def test_result_structure(run, phantoms):
    ev, lines = run
    assert isinstance(ev, Evaluation) and list(ev.methods) == CLASSICAL
    n_test = phantoms.sizes[2]
    for name, res in ev.methods.items():
        assert isinstance(res, MethodResult) and res.family == "classical"
        assert set(METRICS) <= set(res.test) and len(res.test["auc_ci95"]) == 2
        assert res.proba.shape == (n_test, 2)
        assert np.allclose(res.proba.sum(axis=1), 1)
        assert np.array_equal(res.y_true, phantoms.test.labels)
        assert res.confusion.sum() == n_test
        assert res.cv["k"] == 3 and len(res.cv["folds"]) == 3
        for m in METRICS:
            vals = [f[m] for f in res.cv["folds"]]
            assert res.cv["mean"][m] == pytest.approx(np.mean(vals))
            assert res.cv["std"][m] == pytest.approx(np.std(vals, ddof=1))
        assert res.fit_seconds > 0 and res.predict_seconds > 0
    assert ev.comparison is None                      # no deep method ran
    assert ev.dataset == {"name": "phantoms", "n_train": phantoms.sizes[0],
                          "n_val": phantoms.sizes[1], "n_test": n_test,
                          "classes": ["normal", "lesion"]}
    # one line per fold and per method, and one per split of feature extraction
    assert sum("fold" in line for line in lines) == 3 * len(CLASSICAL)
    assert sum(line.startswith(tuple(f"{m}:" for m in CLASSICAL)) for line in lines) == 3
    assert sum(line.startswith("features") for line in lines) == 3   # once per split, shared


def test_same_numbers_as_fitting_the_pipeline_by_hand(run, phantoms):
    """Caching the features must not change anything: refit each full Pipeline on images."""
    ev, _ = run
    Xtr, ytr = phantoms.train
    Xte, yte = phantoms.test
    folds = stratified_kfold(ytr, 3, seed=0)
    for kind in CLASSICAL:
        res = ev.methods[kind]
        pipe = make_classifier(kind, random_state=0)
        proba = clone(pipe).fit(Xtr, ytr).predict_proba(Xte)
        np.testing.assert_allclose(res.proba, proba, rtol=1e-10, atol=1e-12)
        expected = score(yte, proba, n_boot=200, seed=0)
        for m in METRICS:
            assert res.test[m] == pytest.approx(expected[m], nan_ok=True)
        assert res.test["auc_ci95"] == pytest.approx(expected["auc_ci95"])
        if kind == "tree":                  # the folds too (once: each refit re-extracts)
            for (tr, te), fold in zip(folds, res.cv["folds"]):
                p = clone(pipe).fit(Xtr[tr], ytr[tr]).predict_proba(Xtr[te])
                assert fold["auc"] == pytest.approx(roc_auc_score(ytr[te], p[:, 1]))
                assert fold["acc"] == pytest.approx(np.mean((p[:, 1] > 0.5) == ytr[te]))
        # the returned estimator is a fitted Pipeline that works on images
        np.testing.assert_allclose(res.estimator.predict_proba(Xte), proba, rtol=1e-10)


def test_deterministic_for_a_seed(run, phantoms):
    ev, _ = run
    again = evaluate(phantoms, CLASSICAL, cv=3, seed=0, progress=False, log=None, n_boot=200,
                     select=False, calibrate=False)
    for name in CLASSICAL:
        assert again.methods[name].test == ev.methods[name].test
        assert again.methods[name].cv == ev.methods[name].cv


def test_to_dict_is_json_and_follows_the_schema(run):
    ev, _ = run
    doc = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    assert set(doc["dataset"]) == {"name", "n_train", "n_val", "n_test", "classes"}
    for name in CLASSICAL:
        entry = doc["methods"][name]
        assert entry["family"] == "classical"
        assert set(METRICS) | {"auc_ci95"} <= set(entry["test"])
        assert {"k", "folds", "mean", "std"} <= set(entry["cv"])
        assert isinstance(entry["fit_seconds"], float)
        assert isinstance(entry["predict_seconds"], float)
    assert doc["best"] in CLASSICAL and doc["seed"] == 0
    assert doc["settings"]["cv"] == 3 and "total" in doc["settings"]["seconds"]


def test_unknown_names_fail_before_any_work(phantoms):
    lines = []
    with pytest.raises(ValueError, match="'svm'.*knn.*tree"):
        evaluate(phantoms, ["knn", "svm"], log=lines.append, progress=False)
    assert lines == []


@pytest.mark.parametrize("kwargs, match", [
    ({"cv": 1}, "cv"), ({"cv": 100}, "cv"), ({"cv": 2.0}, "cv"),
    ({"epochs": 0}, "epochs"), ({"backend": "fortran"}, "backend"), ({"seed": "a"}, "seed"),
    ({"n_jobs": 0}, "n_jobs"), ({"log": "yes"}, "log"), ({"budget": 0}, "budget"),
    ({"budget": -1.0}, "budget"), ({"budget": "ten"}, "budget"), ({"max_trials": 0}, "max_trials"),
])
def test_bad_arguments(phantoms, kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluate(phantoms, ["nb"], progress=False, **kwargs)


@pytest.mark.parametrize("methods, match", [
    ([], "empty"), (["nb", "nb"], "twice"), ({"x": 3}, "x"), (42, "methods"),
    ({"m": LogisticRegression().fit(np.eye(2), [0, 1]).coef_}, "m"),
])
def test_bad_methods(phantoms, methods, match):
    with pytest.raises(ValueError, match=match):
        evaluate(phantoms, methods, progress=False, log=None)


def test_not_a_dataset():
    with pytest.raises(ValueError, match="dataset"):
        evaluate({"train": 1}, ["nb"], log=None)


def test_dict_of_estimators_and_no_cv(phantoms):
    """A bare estimator sees flattened pixels; a custom Pipeline shares the cached features."""
    custom = make_classifier("knn", n_neighbors=3)
    ev = evaluate(phantoms, {"pixels": LogisticRegression(max_iter=2000), "knn3": custom,
                             "nb": "nb"}, cv=None, progress=False, log=None, n_boot=50,
                  calibrate=False)
    assert list(ev.methods) == ["pixels", "knn3", "nb"]
    assert all(r.cv == {} for r in ev.methods.values())
    Xtr, ytr = phantoms.train
    Xte = phantoms.test.images
    flat = LogisticRegression(max_iter=2000).fit(Xtr.reshape(len(Xtr), -1), ytr)
    np.testing.assert_allclose(ev.methods["pixels"].proba,
                               flat.predict_proba(Xte.reshape(len(Xte), -1)))
    np.testing.assert_allclose(ev.methods["knn3"].proba,
                               clone(custom).fit(Xtr, ytr).predict_proba(Xte))
    assert not hasattr(custom, "classes_")        # the user's object is never fitted


def test_multiclass_dataset():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    X = rng.normal(0, 1, (90, 8, 8))
    X += y[:, None, None] * 0.5
    ds = Dataset.from_arrays(X, y, classes=("a", "b", "c"), name="three")
    ev = evaluate(ds, {"lr": LogisticRegression(max_iter=1000)}, cv=3, progress=False,
                  log=None, n_boot=50, calibrate=False)
    res = ev.methods["lr"]
    assert res.proba.shape == (len(ds.test.labels), 3) and res.confusion.shape == (3, 3)
    assert res.test["auc"] == pytest.approx(
        roc_auc_score(ds.test.labels, res.proba, multi_class="ovr"))


# ---- the deep road


def _tiny_builder(input_shape, n_classes):
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(2, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def deep_run(phantoms):
    pytest.importorskip("keras")
    try:
        from medfeat.deep import DeepClassifier
    except ImportError as exc:                     # the deep road is not installed here
        pytest.skip(f"medfeat.deep unavailable: {exc}")
    clf = DeepClassifier(_tiny_builder, epochs=1, batch_size=16, seed=3, verbose=0)
    lines = []
    ev = evaluate(phantoms, {"nb": "nb", "tiny": clf}, cv=2, deep_cv=True, epochs=5, seed=0,
                  progress=False, log=lines.append, n_boot=100, select=False)
    return ev, lines, clf


def test_deep_method_runs_and_is_compared(deep_run, phantoms):
    ev, lines, clf = deep_run
    res = ev.methods["tiny"]
    assert res.family == "deep"
    assert res.proba.shape == (phantoms.sizes[2], 2)
    assert np.allclose(res.proba.sum(axis=1), 1, atol=1e-5)
    assert res.cv["k"] == 2 and len(res.cv["folds"]) == 2         # deep_cv=True
    assert sum(line.startswith("tiny fold") for line in lines) == 2
    # a DeepClassifier object is cloned and keeps its own settings (epochs=5 is for names)
    assert res.estimator is not clf and not hasattr(clf, "model_")
    assert res.estimator.epochs == 1 and res.estimator.seed == 3
    assert res.estimator.history_["stopped_epoch"] == 1
    assert ev.methods["nb"].cv["k"] == 2
    # each method's wall time is counted once: the methods' walls add up to at most the total
    seconds = ev.settings["seconds"]
    assert seconds["methods"]["tiny"] >= res.fit_seconds
    assert sum(seconds["methods"].values()) <= seconds["total"]
    comp = ev.comparison
    assert comp["classical"] == "nb" and comp["deep"] == "tiny" and comp["test"] == "delong"
    assert comp["auc_difference"] == pytest.approx(
        ev.methods["tiny"].test["auc"] - ev.methods["nb"].test["auc"])
    assert 0.0 <= comp["p_value"] <= 1.0
    assert ev.settings["deep_cv"] is True
    json.dumps(ev.to_dict(), allow_nan=False)


def test_names_and_builders_become_deep_classifiers():
    """How deep methods are built (no training here): epochs and seed reach the classifier."""
    from medfeat.evaluate import method_names
    from medfeat.evaluate.harness import _resolve

    deep = method_names()["deep"]
    if not deep:
        pytest.skip("no deep models here")
    assert "cnn" in deep and "resnet18" in deep
    resolved = _resolve({"c": "cnn", "b": _tiny_builder, "k": "knn"}, seed=4, epochs=2,
                        backend="auto", n_jobs=None, progress=False, verbose=0)
    assert [m.family for m in resolved] == ["deep", "deep", "classical"]
    cnn, builder = resolved[0].make(), resolved[1].make()
    assert type(cnn).__name__ == "DeepClassifier" and cnn.kind == "cnn"
    assert builder.kind is _tiny_builder
    assert cnn.epochs == builder.epochs == 2 and cnn.seed == builder.seed == 4
    assert resolved[0].make() is not cnn                               # fresh every time
    knn = resolved[2].make()
    assert knn.named_steps["clf"].n_neighbors == 15


def test_deep_kinds_are_listed_in_errors(phantoms):
    if "resnet18" not in __import__("medfeat.evaluate", fromlist=["x"]).method_names()["deep"]:
        pytest.skip("no deep models here")
    with pytest.raises(ValueError, match="resnet18"):
        evaluate(phantoms, ["cnn", "resnet17"], log=None)


# ---- colour datasets


def _colour_dataset(n=60, size=24, seed=0):
    """RGB noise; class 1 has a red disk (red up, green and blue down) at a random place."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(120, 25, (n, size, size, 3))
    yy, xx = np.mgrid[:size, :size]
    for img, label in zip(X, y):
        if label:
            cy, cx = rng.integers(7, size - 7, size=2)
            disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 16
            img[disk] += (90, -60, -60)
    X = np.clip(X, 0, 255).astype(np.uint8)
    return Dataset.from_arrays(X, y, classes=("plain", "red"), name="rgb", seed=seed)


@pytest.fixture(scope="module")
def colour_run():
    ds = _colour_dataset()
    lines = []
    ev = evaluate(ds, ["knn", "nb"], cv=3, seed=0, progress=False, log=lines.append, n_boot=50,
                  select=False, calibrate=False)
    return ds, ev, lines


def test_colour_dataset_gets_features_per_channel(colour_run):
    from medfeat.features import FeatureExtractor

    ds, ev, lines = colour_run
    assert ds.train.images.shape[1:] == (24, 24, 3)
    assert sum("colour images" in line and "channel_axis=-1" in line for line in lines) == 1
    assert ev.settings["colour"] is True
    Xtr, ytr = ds.train
    Xte = ds.test.images
    for kind in ("knn", "nb"):
        res = ev.methods[kind]
        assert res.test["auc"] > 0.8, (kind, res.test)
        fx = res.estimator.steps[0][1]
        assert isinstance(fx, FeatureExtractor) and fx.channel_axis == -1
        assert res.params["channel_axis"] == -1
        assert len(fx.get_feature_names_out()) == 3 * len(FeatureExtractor().fit(
            Xtr[:1, ..., 0]).get_feature_names_out())
        # the numbers of the Pipeline built by hand with per-channel features
        pipe = make_classifier(kind, random_state=0, features={"channel_axis": -1})
        np.testing.assert_allclose(res.proba, clone(pipe).fit(Xtr, ytr).predict_proba(Xte),
                                   rtol=1e-10, atol=1e-12)
    # the features were extracted once per split for both methods
    assert sum(line.startswith("features") for line in lines) == 3


def test_colour_dataset_dict_estimator_used_as_given():
    ds = _colour_dataset(n=40)
    custom = make_classifier("nb", features={"families": ["intensity"]})
    lines = []
    ev = evaluate(ds, {"mine": custom}, cv=None, progress=False, log=lines.append, n_boot=20)
    assert ev.methods["mine"].estimator.steps[0][1].channel_axis is None
    assert custom.steps[0][1].channel_axis is None
    # the log says the dataset is colour and that a dict estimator is not changed
    assert sum("colour images" in line and "used as given" in line for line in lines) == 1


@pytest.mark.parametrize("shape, colour", [
    ((5, 28, 28, 3), True), ((5, 28, 28, 4), True), ((5, 28, 28), False),
    ((5, 8, 8, 3), False), ((5, 28, 28, 5), False), ((5, 28, 28, 1), False),
    ((5, 3, 28, 28), False), ((5, 4, 28, 28, 3), False),
])
def test_colour_rule(shape, colour):
    from medfeat.evaluate.harness import _colour_images

    assert _colour_images(np.zeros(shape, np.uint8)) is colour


def test_grey_dataset_is_not_colour(run):
    ev, lines = run
    assert ev.settings["colour"] is False
    assert all("channel_axis" not in r.params for r in ev.methods.values())
    assert all(r.estimator.steps[0][1].channel_axis is None for r in ev.methods.values())
    assert not any("colour" in line for line in lines)


def test_backend_cpu_is_the_default_cpu_path_and_one_backend_name_is_refused():
    ds = make_phantoms(n=60, size=32, seed=2)
    kw = dict(cv=2, seed=0, progress=False, log=None, n_boot=20, select=False)
    auto = evaluate(ds, ["nb"], backend="auto", **kw)
    cpu = evaluate(ds, ["nb"], backend="cpu", **kw)
    np.testing.assert_array_equal(auto.methods["nb"].proba, cpu.methods["nb"].proba)
    with pytest.raises(ValueError, match="give 'cpu'"):
        evaluate(ds, ["nb"], backend="numba", **kw)
