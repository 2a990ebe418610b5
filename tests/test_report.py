"""The report folder: files, validity, self-contained HTML, atomic replacement, refusal to clobber.

The evaluations drawn here hold real scores: scikit-learn models fitted on scikit-learn's bundled
data sets (breast cancer, digits, iris), scored with scikit-learn's metrics.
"""

import json
import re

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (balanced_accuracy_score, confusion_matrix, f1_score, recall_score,
                             roc_auc_score)
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from medfeat import report
from medfeat.evaluate import Evaluation, MethodResult
from medfeat.report import ReportError, write_report


def _scores(y, proba, seed=0):
    binary = proba.shape[1] == 2
    pred = (proba[:, 1] >= 0.5).astype(int) if binary else proba.argmax(1)
    auc = roc_auc_score(y, proba[:, 1]) if binary else roc_auc_score(y, proba, multi_class="ovr")
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(200):
        i = rng.integers(0, len(y), len(y))
        if np.unique(y[i]).size == proba.shape[1]:
            boot.append(roc_auc_score(y[i], proba[i, 1]) if binary else
                        roc_auc_score(y[i], proba[i], multi_class="ovr"))
    avg = "binary" if binary else "macro"
    return {"acc": float((pred == y).mean()), "auc": float(auc),
            "f1": float(f1_score(y, pred, average=avg)),
            "sensitivity": float(recall_score(y, pred, average=avg)),
            "specificity": float(recall_score(y, pred, pos_label=0)) if binary else None,
            "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "auc_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}


def _result(name, family, model, Xtr, ytr, Xte, yte, cv=True):
    folds = []
    if cv:
        for tr, va in StratifiedKFold(3, shuffle=True, random_state=0).split(Xtr, ytr):
            m = model.__class__(**model.get_params()).fit(Xtr[tr], ytr[tr])
            folds.append(_scores(ytr[va], m.predict_proba(Xtr[va])))
    model.fit(Xtr, ytr)
    proba = model.predict_proba(Xte)
    cvd = {}
    if folds:
        keys = [k for k in folds[0] if k != "auc_ci95" and folds[0][k] is not None]
        cvd = {"k": 3, "folds": folds,
               "mean": {k: float(np.mean([f[k] for f in folds])) for k in keys},
               "std": {k: float(np.std([f[k] for f in folds])) for k in keys}}
    pred = proba.argmax(1)
    return MethodResult(name, family, _scores(yte, proba), cvd, 0.12, 0.003, yte, proba,
                        confusion_matrix(yte, pred, labels=range(proba.shape[1])),
                        estimator=model, params=model.get_params())


def _dataset(name, ytr, yte, classes):
    return {"name": name, "n_train": int(len(ytr)), "n_val": 0, "n_test": int(len(yte)),
            "classes": list(classes)}


@pytest.fixture(scope="module")
def binary_evaluation():
    data = load_breast_cancer()
    Xtr, Xte, ytr, yte = train_test_split(data.data, data.target, test_size=0.3,
                                          stratify=data.target, random_state=0)
    methods = {
        "nb": _result("nb", "classical", GaussianNB(), Xtr, ytr, Xte, yte),
        "tree": _result("tree", "classical", DecisionTreeClassifier(max_depth=3, random_state=0),
                        Xtr, ytr, Xte, yte),
        "logreg": _result("logreg", "classical", make_pipeline(StandardScaler(),
                                                               LogisticRegression()),
                          Xtr, ytr, Xte, yte, cv=False),
    }
    return Evaluation(_dataset("breast-cancer", ytr, yte, data.target_names), methods, None,
                      seed=0, settings={"cv": 3})


class PixelLogistic:
    """A logistic regression on raw pixels that explains itself: for a linear logit and a black
    baseline, integrated gradients are exactly weight × pixel."""

    def __init__(self):
        self.model = LogisticRegression(max_iter=2000)

    def fit(self, X, y):
        self.shape = X.shape[1:]
        self.model.fit(X.reshape(len(X), -1), y)
        return self

    def predict_proba(self, X):
        return self.model.predict_proba(X.reshape(len(X), -1))

    def explain(self, images):
        images = np.asarray(images, dtype=np.float64)
        return images * self.model.coef_[0].reshape(self.shape)


@pytest.fixture(scope="module")
def digits_evaluation():
    """Digits 3 vs 8 (8x8 images): a pixel model as the "deep" road, NB as the classical one."""
    d = load_digits()
    keep = np.isin(d.target, (3, 8))
    X, y = d.images[keep], (d.target[keep] == 8).astype(int)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    pix = PixelLogistic().fit(Xtr, ytr)
    proba = pix.predict_proba(Xte)
    deep = MethodResult("pixels", "deep", _scores(yte, proba), {}, 0.5, 0.01, yte, proba,
                        confusion_matrix(yte, proba.argmax(1)), estimator=pix)
    nb = _result("nb", "classical", GaussianNB(), Xtr.reshape(len(Xtr), -1), ytr,
                 Xte.reshape(len(Xte), -1), yte, cv=False)
    comparison = {"classical": "nb", "deep": "pixels", "test": "delong",
                  "auc_difference": deep.test["auc"] - nb.test["auc"], "ci95": [-0.01, 0.05],
                  "p_value": 0.03}
    return Evaluation(_dataset("digits-3-vs-8", ytr, yte, ("three", "eight")),
                      {"nb": nb, "pixels": deep}, comparison, seed=0, test_images=Xte)


def _png_size(path):
    import imageio.v3 as iio

    img = iio.imread(path)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.std() > 0           # something was drawn
    return img.shape[1], img.shape[0]


def test_report_files_are_valid(binary_evaluation, tmp_path):
    out = write_report(binary_evaluation, tmp_path / "rep")
    assert out == (tmp_path / "rep").absolute() and out.is_dir()
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["metrics.json", "report.md", "report.html", "roc.png",
                            "confusion.png", "auc_ci.png", "time.png", "cv.png"])
    doc = json.loads((out / "metrics.json").read_text())
    assert doc == json.loads(json.dumps(binary_evaluation.to_dict(), default=repr))
    assert set(doc["methods"]) == {"nb", "tree", "logreg"}
    for name in ("roc", "auc_ci", "time", "cv"):
        w, h = report.FIGSIZE[name]
        assert _png_size(out / f"{name}.png") == (round(w * 100), round(h * 100))
    _png_size(out / "confusion.png")
    md = (out / "report.md").read_text()
    assert "| method | family | ACC | AUC [95% CI] |" in md
    best = binary_evaluation.best()
    for name, r in binary_evaluation.methods.items():
        row = next(line for line in md.splitlines() if line.startswith(f"| {name} |"))
        assert f"{r.test['auc']:.3f}" in row and f"{r.test['acc']:.3f}" in row
    assert f"Best method by test AUC: **{best}**" in md
    nb_cv = binary_evaluation.methods["nb"].cv
    assert f"{nb_cv['mean']['auc']:.3f} ± {nb_cv['std']['auc']:.3f}" in md
    assert "No paired comparison" in md and "no deep model" in md
    assert "scikit-learn" in md and "cpu cores" in md


def test_html_is_self_contained(binary_evaluation, tmp_path):
    out = write_report(binary_evaluation, tmp_path / "rep")
    page = (out / "report.html").read_text()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page, flags=re.I)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "<link" not in page.lower() and "@import" not in page and "url(" not in page
    import base64
    import io

    import imageio.v3 as iio

    first = base64.b64decode(refs[0].split(",", 1)[1])
    assert first == (out / "roc.png").read_bytes()
    assert iio.imread(io.BytesIO(first)).shape[0] > 100
    assert "<table>" in page and "breast-cancer" in page


def test_rerun_replaces_cleanly(binary_evaluation, digits_evaluation, tmp_path):
    out = tmp_path / "rep"
    write_report(binary_evaluation, out)
    assert (out / "cv.png").exists()
    write_report(digits_evaluation, out, explain=False)
    assert not (out / "cv.png").exists()       # the old report's files are gone
    assert json.loads((out / "metrics.json").read_text())["dataset"]["name"] == "digits-3-vs-8"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]   # no temp folders left


def test_refuses_unrelated_folder(binary_evaluation, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(ReportError, match="not a medfeat report"):
        write_report(binary_evaluation, mine)
    assert (mine / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    # a report folder with a user's file added is refused too
    rep = write_report(binary_evaluation, tmp_path / "rep")
    (rep / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="notes.txt"):
        write_report(binary_evaluation, rep)
    assert (rep / "notes.txt").exists() and (rep / "metrics.json").exists()
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(ReportError, match="not a folder"):
        write_report(binary_evaluation, afile)
    with pytest.raises(ReportError, match="parent"):
        write_report(binary_evaluation, tmp_path / "missing" / "rep")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "mine", "rep"]


def test_empty_folder_is_used(binary_evaluation, tmp_path):
    (tmp_path / "empty").mkdir()
    out = write_report(binary_evaluation, tmp_path / "empty")
    assert (out / "metrics.json").exists()


def test_failure_leaves_previous_report_and_no_temp(binary_evaluation, digits_evaluation,
                                                    tmp_path, monkeypatch):
    out = write_report(binary_evaluation, tmp_path / "rep")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "_plot_time", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(digits_evaluation, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_bad_arguments(binary_evaluation, tmp_path):
    with pytest.raises(ReportError, match="Evaluation"):
        write_report({"methods": {}}, tmp_path / "x")
    with pytest.raises(ReportError, match="no methods"):
        write_report(Evaluation({"name": "x"}, {}), tmp_path / "x")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_heatmaps"):
            write_report(binary_evaluation, tmp_path / "x", n_heatmaps=bad)
    assert not (tmp_path / "x").exists()


def test_heatmaps_of_the_deep_model(digits_evaluation, tmp_path):
    pytest.importorskip("medfeat.deep.explain")
    out = write_report(digits_evaluation, tmp_path / "rep", n_heatmaps=4)
    assert (out / "heatmaps.png").exists()
    w, h = _png_size(out / "heatmaps.png")
    assert w > h                              # 4 columns, 2 rows
    md = (out / "report.md").read_text()
    assert "heatmaps.png" in md and "No attribution heat maps" not in md
    assert "Best deep (pixels) minus best classical (nb)" in md and "DeLong" in md


def test_heatmaps_skipped_with_a_note(digits_evaluation, tmp_path, monkeypatch):
    pytest.importorskip("medfeat.deep.explain")
    class Broken(PixelLogistic):
        def explain(self, images):
            raise ValueError("this model has no gradient")

    ev = digits_evaluation
    broken = MethodResult(**{**ev.methods["pixels"].__dict__, "estimator": Broken()})
    ev2 = Evaluation(ev.dataset, {"nb": ev.methods["nb"], "pixels": broken}, ev.comparison,
                     test_images=ev.test_images)
    out = write_report(ev2, tmp_path / "rep")
    md = (out / "report.md").read_text()
    assert not (out / "heatmaps.png").exists()
    assert "No attribution heat maps" in md and "this model has no gradient" in md
    ev3 = Evaluation(ev.dataset, ev.methods, ev.comparison, test_images=None)
    md = (write_report(ev3, tmp_path / "rep") / "report.md").read_text()
    assert "did not keep the test images" in md


def test_multiclass_report(tmp_path):
    d = load_iris()
    Xtr, Xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.4, stratify=d.target,
                                          random_state=1)
    ev = Evaluation(_dataset("iris", ytr, yte, d.target_names),
                    {"nb": _result("nb", "classical", GaussianNB(), Xtr, ytr, Xte, yte)})
    out = write_report(ev, tmp_path / "iris")
    assert "micro" not in (out / "report.md").read_text()   # caption text lives in the PNG
    assert _png_size(out / "roc.png") == (640, 520)
    cm = json.loads((out / "metrics.json").read_text())["methods"]["nb"]["confusion"]
    assert np.asarray(cm).shape == (3, 3) and np.asarray(cm).sum() == len(yte)


def test_pneumoniamnist_note(binary_evaluation, tmp_path):
    ev = binary_evaluation
    ds = {"name": "pneumoniamnist", "n_train": 3882, "n_val": 524, "n_test": 624,
          "classes": ["normal", "pneumonia"]}
    out = write_report(Evaluation(ds, ev.methods), tmp_path / "pneu", explain=False)
    md = (out / "report.md").read_text()
    for fact in ("ResNet-18 (28): AUC 0.944, ACC 0.854", "auto-sklearn: AUC 0.942, ACC 0.855",
                 "Google AutoML Vision: AUC 0.991, ACC 0.946", "Yang et al.", "n_train 3882",
                 "train 4708 (1,214 normal / 3,494 pneumonia)", "differs from the official"):
        assert fact in md
    other = write_report(ev, tmp_path / "other", explain=False)
    assert "Yang et al." not in (other / "report.md").read_text()


def _tiny_volume_builder(input_shape, n_classes):
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.Conv3D(2, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling3D()(x)
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))


def test_volume_heatmaps_and_the_search_section(tmp_path):
    """A volume dataset: heat maps on three orthogonal slices per volume (a 3 x 2 grid per row),
    and the model-selection table with the classical search."""
    pytest.importorskip("keras")
    from medfeat.deep import DeepClassifier
    from medfeat.evaluate import evaluate
    from medfeat.io import Dataset

    rng = np.random.default_rng(0)
    y = np.arange(48) % 2
    X = rng.normal(100, 10, (48, 10, 10, 10))
    X[y == 1, 3:7, 3:7, 3:7] += 60
    ds = Dataset.from_arrays(np.clip(X, 0, 255).astype(np.uint8), y, classes=("a", "b"),
                             name="vol", seed=0)
    deep = DeepClassifier(_tiny_volume_builder, epochs=1, batch_size=8, verbose=0)
    ev = evaluate(ds, {"nb": "nb", "tiny3d": deep}, cv=None, progress=False, log=None,
                  n_boot=20)
    out = write_report(ev, tmp_path / "rep", n_heatmaps=2)
    w, h = _png_size(out / "heatmaps.png")
    assert w > 2 * h                                   # one row of 3 slice pairs per volume
    md = (out / "report.md").read_text()
    assert "Model selection on the validation split" in md and "search.png" in md
    assert (out / "search.png").exists()
