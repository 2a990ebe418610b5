"""Multi-label findings through the whole road: labels (n, L) of 0/1 in io, the MedMNIST
evaluator's scores (mean per-label AUC and ACC) checked against scikit-learn, classical methods,
search, per-label calibration, the paired comparison and the report, on a small set of real
images (pydicom's CT slice and scikit-image's camera) with three independent planted findings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from medfeat.classical import MultiLabelClassifier, make_classifier
from medfeat.evaluate import evaluate, score
from medfeat.evaluate.compare import paired_bootstrap
from medfeat.evaluate.metrics import bootstrap_auc, confusion, per_label_scores, roc_auc
from medfeat.io import Dataset, label_strata, load_npz, stratified_split

from ..conftest import load_real

FINDINGS = ("nodule", "line", "texture")


def findings_dataset(n=180, size=32, seed=0):
    """Crops of two real images, each with three independent findings planted at random (each
    present with probability 0.4): a small bright disc, a dark line across the image, and
    fine-grained noise. Returns images (n, size, size) uint8 and labels (n, 3)."""
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    bases = []
    for name in ("ct_small", "camera"):
        img = load_real(name).astype(np.float64)
        bases.append((img - img.min()) / (img.max() - img.min()))
    X = np.empty((n, size, size), np.uint8)
    Y = (rng.random((n, len(FINDINGS))) < 0.4).astype(np.int64)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        base = bases[i % 2]
        side = int(rng.integers(size, 2 * size))
        r, c = rng.integers(0, base.shape[0] - side, 2)
        img = resize(base[r:r + side, c:c + side], (size, size), anti_aliasing=True) * 0.6 + 0.2
        if Y[i, 0]:
            cy, cx = rng.integers(6, size - 6, 2)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 5] = 1.0
        if Y[i, 1]:
            row = int(rng.integers(2, size - 2))
            img[row, :] = 0.0
        if Y[i, 2]:
            img = img + rng.normal(0, 0.08, img.shape)
        X[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return X, Y


@pytest.fixture(scope="module")
def findings():
    X, Y = findings_dataset()
    return Dataset.from_arrays(X, Y, classes=FINDINGS, name="findings", val_size=0.2,
                               test_size=0.25, seed=0)


@pytest.fixture(scope="module")
def train_features(findings):
    from medfeat.features import FeatureExtractor

    return FeatureExtractor().fit_transform(findings.train.images)


@pytest.fixture(scope="module")
def run(findings):
    lines = []
    ev = evaluate(findings, ["knn", "logreg", "tree", "ensemble"], cv=2, seed=0,
                  progress=False, log=lines.append, n_boot=100)
    return ev, lines


def _sk_mean_auc(y, p):
    return float(np.mean([roc_auc_score(y[:, k], p[:, k]) for k in range(y.shape[1])]))


def _sk_mean_acc(y, p):
    return float(np.mean([accuracy_score(y[:, k], p[:, k] > 0.5) for k in range(y.shape[1])]))


# ---- metrics


def _random_multilabel(n=120, n_labels=4, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < np.linspace(0.15, 0.6, n_labels)).astype(int)
    p = np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.2, y.shape), 0, 1)
    return y, p


def test_scores_are_the_medmnist_evaluators():
    y, p = _random_multilabel()
    s = score(y, p, n_boot=300, seed=1)
    assert s["auc"] == pytest.approx(_sk_mean_auc(y, p), abs=1e-12)
    assert s["auc"] == pytest.approx(roc_auc_score(y, p, average="macro"), abs=1e-12)
    assert s["acc"] == pytest.approx(_sk_mean_acc(y, p), abs=1e-12)
    assert roc_auc(y, p) == pytest.approx(s["auc"], abs=1e-12)
    assert [r["auc"] for r in s["per_label"]] == pytest.approx(
        [roc_auc_score(y[:, k], p[:, k]) for k in range(4)], abs=1e-12)
    assert [r["n_positive"] for r in s["per_label"]] == y.sum(axis=0).tolist()
    from sklearn.metrics import f1_score, recall_score

    assert s["f1"] == pytest.approx(f1_score(y, p > 0.5, average="macro"), abs=1e-12)
    assert s["sensitivity"] == pytest.approx(recall_score(y, p > 0.5, average="macro"),
                                             abs=1e-12)
    lo, hi = s["auc_ci95"]
    assert lo < s["auc"] < hi and hi - lo < 0.2
    for row in s["per_label"]:
        assert row["auc_ci95"][0] < row["auc"] < row["auc_ci95"][1]
    # each label's interval is the binary bootstrap of that label
    k = 2
    assert s["per_label"][k]["auc_ci95"] == bootstrap_auc(
        y[:, k], np.column_stack([1 - p[:, k], p[:, k]]), n_boot=300, seed=1)
    cm = confusion(y, p)
    assert cm.shape == (4, 2, 2) and (cm.sum(axis=(1, 2)) == len(y)).all()
    assert cm[:, 1, 1].tolist() == [int(((p[:, j] > 0.5) & (y[:, j] == 1)).sum())
                                    for j in range(4)]


def test_a_label_with_one_value_is_left_out_of_the_mean():
    y, p = _random_multilabel()
    y[:, 1] = 0
    s = score(y, p, n_boot=0)
    assert np.isnan(s["per_label"][1]["auc"])
    keep = [0, 2, 3]
    assert s["auc"] == pytest.approx(roc_auc_score(y[:, keep], p[:, keep]), abs=1e-12)


def test_multilabel_input_errors_name_the_argument():
    y, p = _random_multilabel(n=10)
    with pytest.raises(ValueError, match="proba must have shape"):
        score(y, p[:, :3], n_boot=0)
    with pytest.raises(ValueError, match="0 and 1"):
        score(y * 2, p, n_boot=0)
    with pytest.raises(ValueError, match=r"proba must hold probabilities in \[0, 1\]"):
        score(y, p + 1.5, n_boot=0)
    with pytest.raises(ValueError, match="names"):
        per_label_scores(y, p, n_boot=0, names=["a"])
    with pytest.raises(ValueError, match="n_labels"):
        per_label_scores(y[:, 0], p[:, 0], n_boot=0)


def test_selection_standard_error_is_that_of_the_mean_per_label_auc():
    from medfeat.evaluate.search import auc_se

    y, p = _random_multilabel()
    per = [auc_se(y[:, k], np.column_stack([1 - p[:, k], p[:, k]])) for k in range(4)]
    assert auc_se(y, p) == pytest.approx(np.sqrt(np.sum(np.square(per))) / 4, rel=1e-12)
    y[:, 0] = 1                                        # a label with one value drops out
    assert auc_se(y, p) == pytest.approx(np.sqrt(np.sum(np.square(per[1:]))) / 3, rel=1e-12)


def test_paired_bootstrap_compares_the_mean_per_label_auc():
    y, good = _random_multilabel(n=200, seed=3)
    rng = np.random.default_rng(4)
    bad = np.clip(good + rng.normal(0, 0.4, good.shape), 0, 1)
    res = paired_bootstrap(y, good, bad, n_boot=300, seed=0)
    assert res["auc_a"] == pytest.approx(_sk_mean_auc(y, good), abs=1e-12)
    assert res["auc_b"] == pytest.approx(_sk_mean_auc(y, bad), abs=1e-12)
    assert res["difference"] > 0 and res["ci95"][0] > 0 and res["p_value"] < 0.01


# ---- io


def test_label_strata_and_splits_keep_every_finding_in_every_split():
    X, Y = findings_dataset(n=120)
    key = label_strata(Y)
    assert key.shape == (120,) and key.min() >= 0
    tr, va, te = stratified_split(Y, val_size=0.2, test_size=0.2, seed=0)
    assert np.array_equal(np.sort(np.r_[tr, va, te]), np.arange(120))
    for idx in (tr, va, te):
        share = Y[idx].mean(axis=0)
        assert (Y[idx].sum(axis=0) > 0).all()
        assert np.abs(share - Y.mean(axis=0)).max() < 0.15


def test_load_npz_reads_multilabel_files(tmp_path):
    X, Y = findings_dataset(n=60)
    np.savez(tmp_path / "chest.npz", train_images=X[:40], train_labels=Y[:40],
             val_images=X[40:50], val_labels=Y[40:50], test_images=X[50:], test_labels=Y[50:])
    ds = load_npz(tmp_path / "chest.npz")
    assert ds.multilabel and ds.classes == ("0", "1", "2")
    assert np.array_equal(ds.test.labels, Y[50:]) and ds.test.labels.dtype == np.int64
    np.savez(tmp_path / "train_only.npz", train_images=X, train_labels=Y)
    carved = load_npz(tmp_path / "train_only.npz", classes=FINDINGS)
    assert carved.sizes[0] + carved.sizes[1] + carved.sizes[2] == 60
    assert carved.val.labels.shape[1] == 3 and carved.classes == FINDINGS


# ---- classical road


@pytest.mark.parametrize("kind, strategy", [("knn", "native"), ("tree", "native"),
                                            ("forest", "native"), ("nb", "per_label"),
                                            ("logreg", "per_label"), ("gboost", "per_label")])
def test_every_classical_kind_fits_findings(findings, train_features, kind, strategy):
    params = {"max_iter": 30} if kind == "gboost" else {"n_estimators": 30} \
        if kind == "forest" else {}
    model = make_classifier(kind, multilabel=True, random_state=0, **params)
    F = train_features
    head = model[1:]
    head.fit(F, findings.train.labels)
    clf = head.named_steps["clf"]
    assert isinstance(clf, MultiLabelClassifier) and clf.strategy_ == strategy
    p = head.predict_proba(F)
    assert p.shape == findings.train.labels.shape and ((p >= 0) & (p <= 1)).all()
    assert head.predict(F).shape == p.shape
    assert _sk_mean_auc(findings.train.labels, p) > 0.75


def test_per_label_strategy_equals_one_fit_per_label():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0.3, X[:, 4] < -0.5]).astype(int)
    p = MultiLabelClassifier(LogisticRegression(C=0.5)).fit(X, Y).predict_proba(X)
    for k in range(3):
        ref = LogisticRegression(C=0.5).fit(X, Y[:, k]).predict_proba(X)[:, 1]
        assert np.allclose(p[:, k], ref)
    with pytest.raises(ValueError, match="0/1 matrix"):
        MultiLabelClassifier(LogisticRegression()).fit(X, Y[:, 0])
    with pytest.raises(ValueError, match="does not fit several outputs"):
        MultiLabelClassifier(LogisticRegression(), strategy="native").fit(X, Y)


# ---- the harness


def test_harness_scores_match_sklearn(run, findings):
    ev, _ = run
    y_test = findings.test.labels
    for name, res in ev.methods.items():
        assert res.proba.shape == y_test.shape
        assert np.array_equal(res.y_true, y_test)
        assert res.test["auc"] == pytest.approx(_sk_mean_auc(y_test, res.proba), abs=1e-12)
        assert res.test["acc"] == pytest.approx(_sk_mean_acc(y_test, res.proba), abs=1e-12)
        per = res.test["per_label"]
        assert [r["label"] for r in per] == list(FINDINGS)
        assert [r["auc"] for r in per] == pytest.approx(
            [roc_auc_score(y_test[:, k], res.proba[:, k]) for k in range(3)], abs=1e-12)
        assert res.confusion.shape == (3, 2, 2)
    # every finding is learnable: the best method scores each one well
    best = ev.methods[ev.best()]
    assert min(r["auc"] for r in best.test["per_label"]) > 0.85
    assert ev.dataset["multilabel"] is True and "multilabel" in ev.settings


def test_search_and_calibration_are_per_label(run, findings):
    ev, lines = run
    for name in ("knn", "logreg", "tree"):
        res = ev.methods[name]
        search = res.params["search"]
        assert len(search["trials"]) > 1 and np.isfinite(search["chosen_val_auc"])
        cal = res.params["calibration"]
        assert [r["label"] for r in cal["per_label"]] == list(FINDINGS)
        assert set(cal["applied"]) <= set(FINDINGS)
        if cal["applied"]:
            # a binary map per label is monotone: the per-label AUCs, so their mean, stay
            raw = res.params["uncalibrated_test"]
            assert raw["auc"] == pytest.approx(res.test["auc"], abs=1e-12)
    assert any("calibrated on validation for" in line for line in lines)
    ens = ev.methods["ensemble"]
    assert ens.family == "ensemble" and len(ens.params["members"]) == 2


def test_metrics_json_has_per_label_auc_with_ci(run):
    ev, _ = run
    doc = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    per = doc["methods"]["logreg"]["test"]["per_label"]
    assert [r["label"] for r in per] == list(FINDINGS)
    assert all(len(r["auc_ci95"]) == 2 and r["auc_ci95"][0] <= r["auc"] <= r["auc_ci95"][1]
               for r in per)
    notes = doc["settings"]["multilabel"]
    assert "mean of the per-label AUCs" in notes["scores"] and "per label" in notes["calibration"]


def test_comparison_is_on_the_mean_per_label_auc(findings, run):
    # the comparison of the best classical and best deep method, here on two classical results
    from medfeat.evaluate.harness import _compare_multilabel

    ev, _ = run
    y = findings.test.labels
    pa, pb = ev.methods["logreg"].proba, ev.methods["tree"].proba
    out = _compare_multilabel(ev, "tree", "logreg", y, pb, pa, 0, lambda *_: None)
    assert out["on"] == "mean per-label AUC" and out["test"] == "paired_bootstrap"
    assert out["auc_deep"] == pytest.approx(_sk_mean_auc(y, pa), abs=1e-12)
    assert out["auc_classical"] == pytest.approx(_sk_mean_auc(y, pb), abs=1e-12)
    labels = out["per_label"]["labels"]
    assert [r["label"] for r in labels] == list(FINDINGS)
    k = 1
    assert labels[k]["auc_difference"] == pytest.approx(
        roc_auc_score(y[:, k], pa[:, k]) - roc_auc_score(y[:, k], pb[:, k]), abs=1e-12)


def test_gan_methods_are_refused_for_findings(findings):
    with pytest.raises(ValueError, match=r"\['knn\+gan'\].*multi-label"):
        evaluate(findings, ["knn+gan"], cv=None, progress=False, log=None)


def test_a_finding_absent_from_training_is_refused(findings):
    labels = findings.train.labels.copy()
    labels[:, 2] = 0
    bad = Dataset((findings.train.images, labels), findings.val, findings.test, FINDINGS)
    with pytest.raises(ValueError, match=r"single value.*\['texture'\]"):
        evaluate(bad, ["knn"], cv=None, progress=False, log=None)


def test_report_draws_per_label(run, tmp_path):
    from medfeat.report import write_report

    ev, _ = run
    folder = write_report(ev, tmp_path / "report", explain=False)
    assert (folder / "per_label.png").stat().st_size > 0
    md = (folder / "report.md").read_text()
    assert "mean of the per-finding AUCs" in md and "| nodule |" in md
    assert "per_label.png" in md
