"""DeLong's test against a direct O(m n) DeLong computation and a paired bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medfeat.evaluate import delong, paired_bootstrap


def _pair(n_pos, n_neg, seed, *, shared=1.0, ties=False):
    """Two correlated scores: a common latent part plus method-specific noise."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    rng.shuffle(y)
    latent = shared * rng.standard_normal(y.size)
    a = 1.0 * y + latent + 0.6 * rng.standard_normal(y.size)
    b = 0.7 * y + latent + 0.9 * rng.standard_normal(y.size)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    return y, a, b


def _delong_direct(y, a, b):
    """DeLong et al. (1988) from the definition: the kernel psi(x, y) over all pairs."""
    out = []
    for s in (a, b):
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        out.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    m, n = int((y == 1).sum()), int((y == 0).sum())
    v10 = np.stack([o[1] for o in out])
    v01 = np.stack([o[2] for o in out])
    cov = np.cov(v10) / m + np.cov(v01) / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return out[0][0], out[1][0], math.sqrt(var)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
def test_matches_the_direct_computation(seed, ties):
    y, a, b = _pair(60, 90, seed, ties=ties)
    res = delong(y, a, b)
    auc_a, auc_b, se = _delong_direct(y, a, b)
    assert res["auc_a"] == pytest.approx(auc_a) == pytest.approx(roc_auc_score(y, a))
    assert res["auc_b"] == pytest.approx(auc_b) == pytest.approx(roc_auc_score(y, b))
    assert res["difference"] == pytest.approx(auc_a - auc_b)
    assert res["se"] == pytest.approx(se)
    assert res["z"] == pytest.approx((auc_a - auc_b) / se)
    assert res["ci95"] == pytest.approx([res["difference"] - 1.959964 * se,
                                         res["difference"] + 1.959964 * se], rel=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_standard_error_agrees_with_a_paired_bootstrap(seed):
    y, a, b = _pair(150, 250, seed)
    d = delong(y, a, b)
    boot = paired_bootstrap(y, 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b)), n_boot=3000,
                            seed=seed)
    assert boot["difference"] == pytest.approx(d["difference"])
    assert boot["se"] == pytest.approx(d["se"], rel=0.12)
    assert boot["p_value"] == pytest.approx(d["p_value"], abs=0.05)


def test_identical_scores_give_p_one():
    y, a, _ = _pair(40, 60, 0)
    res = delong(y, a, a.copy())
    assert res["difference"] == 0.0 and res["p_value"] == 1.0 and res["z"] == 0.0
    # a monotone transform keeps the ranks, hence the AUC
    res = delong(y, a, np.exp(a))
    assert res["difference"] == pytest.approx(0.0, abs=1e-12) and res["p_value"] == 1.0


def test_swap_symmetry():
    y, a, b = _pair(70, 50, 3)
    ab, ba = delong(y, a, b), delong(y, b, a)
    assert ab["auc_a"] == ba["auc_b"] and ab["auc_b"] == ba["auc_a"]
    assert ab["difference"] == pytest.approx(-ba["difference"])
    assert ab["z"] == pytest.approx(-ba["z"])
    assert ab["p_value"] == pytest.approx(ba["p_value"])
    assert ab["ci95"] == pytest.approx([-ba["ci95"][1], -ba["ci95"][0]])


def test_p_values_under_the_null_are_not_too_small():
    """Two equally good, independent-noise scores: p < 0.05 in about 5 % of the data sets."""
    rejections = 0
    rng = np.random.default_rng(0)
    for _ in range(200):
        y = np.r_[np.ones(40, int), np.zeros(60, int)]
        latent = rng.standard_normal(100)
        a = y + latent + rng.standard_normal(100)
        b = y + latent + rng.standard_normal(100)
        rejections += delong(y, a, b)["p_value"] < 0.05
    assert 2 <= rejections <= 22          # binomial(200, 0.05): mean 10, sd 3.1


def test_clear_difference_is_significant():
    y, a, b = _pair(200, 200, 1, shared=0.0)
    res = delong(y, a, b)
    assert res["difference"] > 0 and res["p_value"] < 0.01 and res["ci95"][0] > 0


def test_two_column_probabilities_use_column_one():
    y, a, b = _pair(30, 30, 2)
    pa, pb = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    r1 = delong(y, np.column_stack([1 - pa, pa]), np.column_stack([1 - pb, pb]))
    r2 = delong(y, a, b)
    assert r1["difference"] == pytest.approx(r2["difference"])
    assert r1["se"] == pytest.approx(r2["se"])


@pytest.mark.parametrize("args, match", [
    (([0, 1, 2], [1, 2, 3], [1, 2, 3]), "y_true"),
    (([1, 1, 1], [1, 2, 3], [1, 2, 3]), "y_true"),
    (([0, 1, 1], [1, 2], [1, 2, 3]), "score_a"),
    (([0, 1, 1], [1, 2, 3], [1, np.nan, 3]), "score_b"),
    (([0, 1, 1], [1, 2, 3], np.ones((3, 3))), "score_b"),
])
def test_delong_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        delong(*args)


def test_paired_bootstrap_multiclass_and_seeded():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 50)

    def proba(noise):
        e = np.exp(2 * np.eye(3)[y] + rng.normal(0, noise, (150, 3)))
        return e / e.sum(axis=1, keepdims=True)

    pa, pb = proba(0.7), proba(1.5)
    r = paired_bootstrap(y, pa, pb, n_boot=500, seed=1)
    assert r["auc_a"] == pytest.approx(roc_auc_score(y, pa, multi_class="ovr"))
    assert r["ci95"][0] < r["difference"] < r["ci95"][1]
    assert paired_bootstrap(y, pa, pb, n_boot=500, seed=1) == r
    with pytest.raises(ValueError, match="proba_b"):
        paired_bootstrap(y, pa, pb[:, :2], n_boot=100)
