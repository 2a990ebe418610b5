"""Model selection on the validation split, calibration, the ensemble and the time budget."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import log_loss, roc_auc_score

from medfeat.classical import make_classifier
from medfeat.evaluate import evaluate, roc_auc
from medfeat.evaluate import search as S
from medfeat.evaluate.calibration import Calibrator
from medfeat.evaluate.harness import _carve_validation
from medfeat.io import Dataset, make_phantoms

# --------------------------------------------------------------------------------------------
# calibration


def _balanced_prior_scores(n, prior, seed):
    """Labels with ``prior`` positives and the probabilities of a model trained with equal
    priors: the true posterior's logit minus log(prior / (1 - prior))."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prior).astype(int)
    x = rng.normal(1.2 * y, 1.0)                       # one informative feature
    logit_true = 1.2 * x - 0.72 + np.log(prior / (1 - prior))
    logit_balanced = logit_true - np.log(prior / (1 - prior))
    p1 = 1 / (1 + np.exp(-logit_balanced))
    return y, np.column_stack([1 - p1, p1])


def test_binary_calibration_keeps_auc_and_raises_acc_on_an_imbalanced_split():
    y_val, p_val = _balanced_prior_scores(300, 0.8, seed=0)
    y_te, p_te = _balanced_prior_scores(2000, 0.8, seed=1)
    cal = Calibrator().fit(p_val, y_val)
    assert cal.applied_ and cal.record_["applied"]
    q = cal.transform(p_te)
    assert np.allclose(q.sum(axis=1), 1)
    assert roc_auc(y_te, q) == roc_auc(y_te, p_te)                   # exactly: monotone map
    acc_raw = np.mean((p_te[:, 1] > 0.5) == y_te)
    acc_cal = np.mean((q[:, 1] > 0.5) == y_te)
    assert acc_cal > acc_raw + 0.03, (acc_raw, acc_cal)
    # the fitted shift is close to the prior's log-odds, log(0.8 / 0.2) = 1.39
    assert cal.bias_[1] == pytest.approx(np.log(4.0), abs=0.45)
    assert log_loss(y_te, q) < log_loss(y_te, p_te)


def test_multiclass_calibration_is_kept_only_without_auc_loss():
    rng = np.random.default_rng(3)
    y = rng.choice(3, size=600, p=[0.6, 0.3, 0.1])
    logits = rng.normal(0, 1, (600, 3)) + 1.5 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)   # equal-prior scores
    cal = Calibrator().fit(p[:300], y[:300])
    rec = cal.record_
    assert rec["val_nll_after"] <= rec["val_nll_before"]
    if cal.applied_:
        assert rec["val_auc_after"] >= rec["val_auc_before"] - 1e-3
        q = cal.transform(p[300:])
        # the arg-max moves towards the common class: accuracy on the held-out half rises
        assert np.mean(q.argmax(1) == y[300:]) >= np.mean(p[300:].argmax(1) == y[300:])
    else:
        assert "AUC" in rec["reason"]


def test_calibration_needs_enough_validation_images():
    y, p = _balanced_prior_scores(12, 0.5, seed=0)
    cal = Calibrator().fit(p, y)
    assert not cal.applied_ and "too small" in cal.record_["reason"]
    np.testing.assert_array_equal(cal.transform(p), p)
    with pytest.raises(ValueError, match="not fitted"):
        Calibrator().transform(p)
    with pytest.raises(ValueError, match="shape"):
        cal.transform(np.ones((3, 3)) / 3)
    with pytest.raises(ValueError, match="y_true"):
        Calibrator().fit(p, np.arange(12) * 0.5)


def test_temperature_option_fits_a_slope():
    y_val, p_val = _balanced_prior_scores(400, 0.7, seed=4)
    sharp = np.column_stack([1 - p_val[:, 1] ** 3, p_val[:, 1] ** 3])
    sharp /= sharp.sum(axis=1, keepdims=True)
    cal = Calibrator(temperature=True).fit(sharp, y_val)
    assert cal.applied_ and cal.slope_ != 1.0
    assert Calibrator().fit(sharp, y_val).slope_ == 1.0


# --------------------------------------------------------------------------------------------
# the rule and its parts


def test_auc_se_agrees_with_the_bootstrap():
    y, p = _balanced_prior_scores(400, 0.3, seed=5)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(400):
        i = rng.integers(0, y.size, y.size)
        if np.unique(y[i]).size == 2:
            boots.append(roc_auc_score(y[i], p[i, 1]))
    assert S.auc_se(y, p) == pytest.approx(np.std(boots), rel=0.25)
    assert np.isnan(S.auc_se(np.zeros(5, int), np.full((5, 2), 0.5)))


def test_choose_keeps_the_default_within_one_standard_error():
    t = [S.Trial({}, 0.80, 1), S.Trial({"a": 1}, 0.83, 1), S.Trial({"a": 2}, 0.86, 1)]
    assert S.choose(t, 0.05) == 2 and S.choose(t, 0.07) == 0
    assert S.choose([S.Trial({}, float("nan"), 1), S.Trial({"a": 1}, 0.6, 1)], 0.1) == 1
    assert S.choose([S.Trial({}, float("nan"), 1)], 0.1) == 0


def test_grid_and_candidates():
    grid = S.classical_grid("knn", {"n_neighbors": 15, "weights": "distance", "x": 1})
    assert grid[0] == {"n_neighbors": 15, "weights": "distance"}
    assert len(grid) == len({json.dumps(g, sort_keys=True) for g in grid}) == 10
    base = S.deep_base("cnn", 546)
    assert base["batch_size"] == 32 and base["epochs"] >= 15
    assert S.deep_base("cnn", 3882) == {"batch_size": 128, "epochs": 15, "patience": 5}
    assert S.deep_base("cnn", 546, epochs=3)["epochs"] == 3
    c1 = S.deep_candidates("cnn", base, seed=1, n=6)
    assert c1 == S.deep_candidates("cnn", base, seed=1, n=6)            # seeded
    assert c1 != S.deep_candidates("cnn", base, seed=2, n=6)
    assert c1[0] == base and len({repr(c) for c in c1}) == 6
    fixed = S.deep_candidates("cnn", base, seed=1, n=6, fixed_epochs=True)
    assert all(c["epochs"] == base["epochs"] for c in fixed)
    # cost grows with epochs, width and image size
    est = S.estimate_seconds
    assert est("cnn", {**base, "epochs": 30}, 500, 80, (28, 28)) > est("cnn", base, 500, 80,
                                                                         (28, 28))
    assert est("cnn", {**base, "model_options": {"width": 48}}, 500, 80, (28, 28)) > \
        est("cnn", base, 500, 80, (28, 28))
    assert est("cnn", base, 500, 80, (64, 64)) > est("cnn", base, 500, 80, (28, 28))


def test_budget_arguments():
    assert S.Budget(None).left() == float("inf")
    for bad in (0, -2, "5", True, float("inf")):
        with pytest.raises(ValueError, match="budget"):
            S.Budget(bad)


def test_carved_validation_is_stratified_and_seeded():
    y = np.r_[np.zeros(80, int), np.ones(20, int)]
    tr, va = _carve_validation(y, seed=0)
    assert np.bincount(y[va]).tolist() == [12, 3]
    assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == 100
    assert np.array_equal(va, _carve_validation(y, seed=0)[1])
    assert not np.array_equal(va, _carve_validation(y, seed=1)[1])


# --------------------------------------------------------------------------------------------
# the harness


def _choices(record):
    """A search record without its timings (which differ between runs)."""
    out = dict(record)
    out["trials"] = [{k: v for k, v in t.items() if k != "seconds"} for t in record["trials"]]
    return out


@pytest.fixture(scope="module")
def phantoms():
    return make_phantoms(n=90, size=32, seed=1)


@pytest.fixture(scope="module")
def searched(phantoms):
    lines = []
    ev = evaluate(phantoms, ["knn", "logreg", "ensemble"], cv=2, seed=0, progress=False,
                  log=lines.append, n_boot=50)
    return ev, lines


def test_search_is_recorded_and_its_winner_is_the_final_model(searched, phantoms):
    ev, lines = searched
    for name in ("knn", "logreg"):
        rec = ev.methods[name].params["search"]
        assert rec["score"] == "val_auc" and len(rec["trials"]) > 5
        assert rec["trials"][0]["settings"]["stage"] == "families"
        assert rec["default_val_auc"] == rec["trials"][0]["val_auc"]
        chosen = rec["chosen"]
        est = ev.methods[name].estimator
        clf = est.named_steps["clf"]
        for key, value in chosen.items():
            if key != "families":
                assert clf.get_params()[key] == value
        fams = est.named_steps["features"].families
        assert (fams is None and len(chosen["families"]) == 8) or list(fams) == \
            chosen["families"]
        # the chosen trial's validation AUC is what the final model scores on validation
        Xv, yv = phantoms.val
        assert roc_auc(yv, est.predict_proba(Xv)) == pytest.approx(rec["chosen_val_auc"])
        assert any(line.startswith(f"{name}: ") and "trials on validation" in line
                   for line in lines)
    doc = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    assert doc["methods"]["knn"]["params"]["search"]["trials"]
    assert doc["settings"]["select"] is True and doc["settings"]["calibrate"] is True


def test_test_labels_are_never_used_before_the_final_score(searched, phantoms):
    """Shuffle the test labels: every choice (trials, winner, calibration, weights) stays."""
    ev, _ = searched
    rng = np.random.default_rng(0)
    shuffled = Dataset(phantoms.train, phantoms.val,
                       type(phantoms.test)(phantoms.test.images,
                                           rng.permutation(phantoms.test.labels)),
                       phantoms.classes, phantoms.name)
    other = evaluate(shuffled, ["knn", "logreg", "ensemble"], cv=2, seed=0, progress=False,
                     log=None, n_boot=50)
    for name in ("knn", "logreg", "ensemble"):
        a, b = ev.methods[name].params, other.methods[name].params
        assert _choices(a["search"]) == _choices(b["search"])
        assert a.get("calibration") == b.get("calibration")
        np.testing.assert_allclose(ev.methods[name].proba, other.methods[name].proba)


def test_same_seed_same_numbers(searched, phantoms):
    ev, _ = searched
    again = evaluate(phantoms, ["knn", "logreg", "ensemble"], cv=2, seed=0, progress=False,
                     log=None, n_boot=50)
    for name in ev.methods:
        assert again.methods[name].test == ev.methods[name].test
        assert _choices(again.methods[name].params["search"]) == \
            _choices(ev.methods[name].params["search"])


def test_family_subset_columns_equal_a_subset_extractor(phantoms):
    """The search slices the all-families matrix; that must equal extracting the subset."""
    from medfeat.evaluate.harness import _FeatureCache

    X = phantoms.train.images[:12]
    cache = _FeatureCache({"train": (X, None)}, lambda *_: None)
    for fams in (["glcm", "edges", "density"], ["intensity", "zones"], None):
        fx = make_classifier("knn", features={"families": fams}).steps[0][1]
        sliced, _ = cache.get(fx, "train")
        direct = clone(fx).fit(X).transform(X)
        np.testing.assert_array_equal(sliced, direct)


def _where_not_what(n=160, size=32, seed=0):
    """Crops of a real photograph (skimage's camera) with one bright square planted in the left
    or the right half: the label is *where* it is, which only the zones family sees."""
    from skimage import data

    rng = np.random.default_rng(seed)
    cam = data.camera()
    y = np.arange(n) % 2
    X = np.empty((n, size, size), np.uint8)
    for i in range(n):
        r, c = rng.integers(0, cam.shape[0] - size, 2)
        img = cam[r:r + size, c:c + size].copy()
        row = rng.integers(4, size - 12)
        col = rng.integers(2, size // 2 - 10) + (size // 2 if y[i] else 0)
        img[row:row + 8, col:col + 8] = 255
        X[i] = img
    return Dataset.from_arrays(X, y, val_size=0.25, test_size=0.25, seed=seed)


def test_the_search_adds_zones_where_position_is_the_signal():
    ds = _where_not_what()
    ev = evaluate(ds, ["logreg"], cv=2, seed=0, progress=False, log=None, n_boot=20)
    rec = ev.methods["logreg"].params["search"]
    added = [t for t in rec["trials"] if "zones" in t["settings"]["families"]
             and t["settings"]["stage"] == "families"]
    assert len(added) == 1 and rec["trials"][0]["settings"]["families"][-1] != "zones"
    assert "zones" in rec["chosen"]["families"]
    assert added[0]["val_auc"] > rec["default_val_auc"] + 0.2
    assert ev.methods["logreg"].test["auc"] > 0.9


def test_calibration_record_and_auc_unchanged(searched):
    ev, _ = searched
    for name in ("knn", "logreg"):
        p = ev.methods[name].params
        assert "calibration" in p
        if p["calibration"]["applied"]:
            assert p["uncalibrated_test"]["auc"] == pytest.approx(ev.methods[name].test["auc"])


def test_ensemble_mixes_the_two_best_by_validation_auc(searched):
    ev, _ = searched
    res = ev.methods["ensemble"]
    assert res.family == "ensemble"
    members, weights = res.params["members"], res.params["weights"]
    assert sorted(members) == ["knn", "logreg"] and sum(weights) == pytest.approx(1.0)
    # one road only: its two best by validation AUC, the better one as the second member
    vals = {n: ev.methods[n].params["val_auc"] for n in members}
    assert vals[members[1]] >= vals[members[0]]
    mix = weights[0] * ev.methods[members[0]].proba + weights[1] * ev.methods[members[1]].proba
    if res.params["calibration"]["applied"]:
        assert roc_auc(res.y_true, res.proba) == pytest.approx(roc_auc(res.y_true, mix))
    else:
        np.testing.assert_allclose(res.proba, mix)
    assert len(res.params["search"]["trials"]) == 11
    assert res.params["search"]["trials"][0]["settings"] == {
        f"weight_{members[1]}": 0.5, f"weight_{members[0]}": 0.5}


def test_ensemble_needs_two_methods(phantoms):
    with pytest.raises(ValueError, match="ensemble"):
        evaluate(phantoms, ["knn", "ensemble"], progress=False, log=None)


def test_no_validation_split_gets_one_carved(phantoms):
    empty = type(phantoms.val)(phantoms.val.images[:0], phantoms.val.labels[:0])
    ds = Dataset(phantoms.train, empty, phantoms.test, phantoms.classes, "noval")
    lines = []
    ev = evaluate(ds, ["nb"], cv=None, progress=False, log=lines.append, n_boot=20)
    carved = ev.settings["val_carved_from_train"]
    assert carved > 0 and ev.dataset["n_val"] == carved
    assert ev.dataset["n_train"] == len(phantoms.train.labels) - carved
    assert ev.methods["nb"].params["search"]["trials"]
    assert any("no validation split" in line for line in lines)


def test_select_false_runs_the_fixed_defaults(phantoms):
    ev = evaluate(phantoms, ["knn"], cv=None, progress=False, log=None, n_boot=20,
                  select=False, calibrate=False)
    assert "search" not in ev.methods["knn"].params
    Xtr, ytr = phantoms.train
    pipe = make_classifier("knn", random_state=0)
    np.testing.assert_allclose(ev.methods["knn"].proba,
                               clone(pipe).fit(Xtr, ytr).predict_proba(phantoms.test.images))


def test_deep_search_within_a_budget(phantoms):
    """A tiny budget: the default trains, the other candidates are skipped and listed; the
    same seed gives the same trials."""
    pytest.importorskip("keras")
    try:
        import medfeat.deep  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"medfeat.deep unavailable: {exc}")
    lines = []
    ev = evaluate(phantoms, ["cnn"], cv=None, epochs=1, seed=0, progress=False,
                  log=lines.append, n_boot=20, budget=0.05, max_trials=3)
    rec = ev.methods["cnn"].params["search"]
    assert len(rec["trials"]) == 1 and len(rec["skipped"]) == 2
    assert all(s["why"].startswith("budget") for s in rec["skipped"])
    assert rec["trials"][0]["settings"]["epochs"] == 1
    assert rec["trials"][0]["settings"]["batch_size"] == 16
    assert any("skipped" in line for line in lines)
    # with room: both candidates train and the record lists them in order
    ev2 = evaluate(phantoms, ["cnn"], cv=None, epochs=1, seed=0, progress=False, log=None,
                   n_boot=20, budget=None, max_trials=2)
    rec2 = ev2.methods["cnn"].params["search"]
    assert len(rec2["trials"]) == 2 and rec2["skipped"] == []
    assert rec2["trials"][0]["val_auc"] == pytest.approx(rec["trials"][0]["val_auc"])
    assert ev2.methods["cnn"].params["tta"] == rec2["chosen"]["tta"]


def test_methods_are_ranked_by_their_validation_auc_before_calibration():
    """Calibration is fitted on the validation split, so the AUC methods are compared by (the
    ensemble's members, 'best by validation') is the one of the probabilities before it."""
    rng = np.random.default_rng(5)
    y = rng.choice(3, size=240, p=[0.6, 0.3, 0.1])
    X = rng.normal(60, 20, (240, 24, 24)).clip(0, 255)
    X[:, 6:18, 6:18] += 25 * y[:, None, None] + rng.normal(0, 20, (240, 1, 1))
    ds = Dataset.from_arrays(X.clip(0, 255).astype(np.uint8), y, val_size=0.25, test_size=0.25,
                             seed=0)
    ev = evaluate(ds, ["knn", "logreg", "ensemble"], cv=0, seed=0, progress=False, log=None,
                  n_boot=20, select=False)
    Xv, yv = ds.val
    for name in ("knn", "logreg"):
        r = ev.methods[name]
        assert r.params["val_auc"] == pytest.approx(roc_auc(yv, r.estimator.predict_proba(Xv)))
    assert any(ev.methods[n].params["calibration"]["applied"] for n in ("knn", "logreg"))
    order = sorted(("knn", "logreg"), key=lambda n: ev.methods[n].params["val_auc"])
    assert ev.methods["ensemble"].params["members"][1] == order[-1]     # one road: best second
