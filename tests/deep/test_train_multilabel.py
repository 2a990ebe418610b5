"""The deep road on multi-label findings: the diagnostic sigmoid head, binary cross-entropy
balanced per label, one probability per finding, saving, and the harness around it (search,
per-label calibration, the paired comparison on the mean per-label AUC)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

pytest.importorskip("keras")

from medfeat.deep import DeepClassifier  # noqa: E402
from medfeat.deep._loop import _balanced_bce, _label_weights  # noqa: E402
from medfeat.evaluate import evaluate  # noqa: E402
from medfeat.io import Dataset  # noqa: E402

from ..evaluate.test_multilabel import FINDINGS, findings_dataset  # noqa: E402


@pytest.fixture(scope="module")
def findings():
    X, Y = findings_dataset(n=200)
    return Dataset.from_arrays(X, Y, classes=FINDINGS, name="findings", val_size=0.2,
                               test_size=0.2, seed=0)


def _small_cnn(**kwargs):
    return DeepClassifier("cnn", epochs=8, batch_size=16, seed=0, augment=None, verbose=0,
                          model_options={"width": 8, "dense": 32}, **kwargs)


@pytest.fixture(scope="module")
def run(findings):
    lines = []
    ev = evaluate(findings, {"cnn": _small_cnn(), "logreg": "logreg"}, cv=None, seed=0,
                  progress=False, log=lines.append, n_boot=100)
    return ev, lines


def test_label_weights_balance_each_label():
    y = np.array([[1, 0], [0, 0], [0, 1], [0, 1]], dtype=np.float32)
    pos, neg = _label_weights(y, "balanced")
    assert pos.tolist() == [2.0, 1.0] and neg.tolist() == pytest.approx([4 / 6, 1.0])
    # each label's positives and negatives weigh the same in total
    assert np.allclose(pos * y.sum(axis=0), neg * (len(y) - y.sum(axis=0)))
    assert _label_weights(y, None) is None
    with pytest.raises(ValueError, match="class_weight"):
        _label_weights(y, {0: 1.0})


def test_balanced_loss_is_the_weighted_binary_cross_entropy():
    y = np.array([[1, 0], [0, 0], [0, 1]], dtype=np.float32)
    p = np.array([[0.8, 0.3], [0.2, 0.4], [0.6, 0.9]], dtype=np.float32)
    pos, neg = np.array([1.5, 2.0]), np.array([0.75, 0.5])
    loss = _balanced_bce(pos, neg)
    got = float(np.asarray(loss(y, p)))
    ref = -(pos * y * np.log(p) + neg * (1 - y) * np.log(1 - p)).mean(axis=1).mean()
    assert got == pytest.approx(ref, rel=1e-5)


def test_the_deep_model_learns_every_finding(run, findings):
    ev, _ = run
    res = ev.methods["cnn"]
    clf = res.estimator
    assert clf.multilabel_ and clf.model_kind_ == "diagnostic"
    assert clf.model_.layers[-1].activation.__name__ == "sigmoid"
    assert clf.model_.output_shape == (None, 3)
    assert len(clf.classes_) == 3
    y = findings.test.labels
    raw = clf.predict_proba(findings.test.images)
    assert raw.shape == y.shape and not np.allclose(raw.sum(axis=1), 1.0)
    assert min(roc_auc_score(y[:, k], raw[:, k]) for k in range(3)) > 0.8
    assert np.array_equal(clf.predict(findings.test.images), (raw > 0.5).astype(int))
    # the harness's per-label calibration is monotone: the per-label AUCs are those of raw
    assert [r["auc"] for r in res.test["per_label"]] == pytest.approx(
        [roc_auc_score(y[:, k], raw[:, k]) for k in range(3)], abs=1e-9)


def test_comparison_on_the_mean_per_label_auc(run, findings):
    ev, lines = run
    c = ev.comparison
    assert c["deep"] == "cnn" and c["classical"] == "logreg"
    assert c["test"] == "paired_bootstrap" and c["on"] == "mean per-label AUC"
    y = findings.test.labels
    deep = np.mean([roc_auc_score(y[:, k], ev.methods["cnn"].proba[:, k]) for k in range(3)])
    assert c["auc_deep"] == pytest.approx(deep, abs=1e-12)
    assert [r["label"] for r in c["per_label"]["labels"]] == list(FINDINGS)
    assert any(line.startswith("comparison (paired bootstrap, mean per-label AUC)")
               for line in lines)
    from medfeat.pipeline import CompareResult

    assert "paired paired_bootstrap: cnn - logreg AUC (mean per-label AUC) " in \
        CompareResult(ev).summary()


def test_save_and_load_keep_the_findings(run, findings, tmp_path):
    clf = run[0].methods["cnn"].estimator
    path = tmp_path / "findings.keras"
    clf.save(path)
    back = DeepClassifier.load(path)
    assert back.multilabel_ and len(back.classes_) == 3
    assert np.allclose(back.predict_proba(findings.test.images[:8]),
                       clf.predict_proba(findings.test.images[:8]), atol=1e-6)


def test_attributions_explain_the_most_probable_finding(run, findings):
    clf = run[0].methods["cnn"].estimator
    attr = clf.explain(findings.test.images[:2], steps=8)
    assert attr.shape == findings.test.images[:2].shape and np.isfinite(attr).all()


def test_searched_kinds_build_the_diagnostic_head(findings):
    ev = evaluate(findings, ["cnn"], cv=None, seed=0, epochs=1, max_trials=1, budget=None,
                  progress=False, log=None, n_boot=0)
    res = ev.methods["cnn"]
    assert res.estimator.model_kind_ == "diagnostic" and res.proba.shape == \
        findings.test.labels.shape
    trials = res.params["search"]["trials"]
    assert len(trials) == 1 and np.isfinite(trials[0]["val_auc"])


def test_bad_multilabel_input():
    X = np.zeros((6, 16, 16), np.uint8)
    with pytest.raises(ValueError, match="0/1 matrix"):
        _small_cnn().fit(X, np.full((6, 2), 2))
    with pytest.raises(ValueError, match="class_weight"):
        _small_cnn(class_weight={0: 1.0}).fit(X, np.eye(2, dtype=int)[np.arange(6) % 2])
    with pytest.raises(ValueError, match="2-D images"):
        _small_cnn().fit(np.zeros((6, 8, 16, 16)), np.eye(2, dtype=int)[np.arange(6) % 2])
