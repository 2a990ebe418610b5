"""Methods named "<kind>+gan": the base method trained on the GAN-expanded training split."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from medfeat.classical import make_classifier
from medfeat.evaluate import evaluate
from medfeat.io import make_phantoms

pytest.importorskip("keras", reason='needs the deep extra: pip install "medfeat[deep]"')

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:tensorflow.*"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*"),
              pytest.mark.filterwarnings("ignore::FutureWarning:keras.*")]


@pytest.fixture(scope="module")
def short_gan():
    """The GAN's default training made short (ten steps) for these tests."""
    from medfeat.deep import gan

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gan, "_DEFAULT_STEPS", 10)
        yield gan


@pytest.fixture(scope="module")
def phantoms():
    return make_phantoms(n=60, size=32, seed=0)


@pytest.fixture(scope="module")
def gan_run(short_gan, phantoms):
    lines = []
    ev = evaluate(phantoms, ["nb", "nb+gan", "cnn+gan"], cv=2, epochs=1, seed=0, progress=False,
                  log=lines.append, n_boot=50, select=False, calibrate=False)
    return ev, lines


def test_gan_methods_train_on_the_expanded_split(short_gan, gan_run, phantoms):
    ev, lines = gan_run
    (Xtr, ytr), (Xte, _) = phantoms.train, phantoms.test
    n = len(ytr)
    assert ev.methods["nb+gan"].family == "classical" and ev.methods["cnn+gan"].family == "deep"
    for name in ("nb+gan", "cnn+gan"):
        record = ev.methods[name].params["gan"]
        assert record["factor"] == 1.0 and record["classes"] == "all"
        assert record["n_real"] == n and record["n_synthetic"] == n
        assert ev.methods[name].cv == {}            # no folds: the GAN saw every real image
    assert ev.methods["nb"].cv["k"] == 2
    assert ev.dataset["n_train"] == n               # the real training split is reported
    assert sum("+gan" in line and "synthetic" in line for line in lines) == 1   # one GAN
    # the same numbers as expanding the split by hand (the GAN is seeded) and fitting nb on it
    xe, ye, syn, _ = short_gan.expand_split(Xtr, ytr, factor=1.0, classes="all", seed=0,
                                            gan_options={"verbose": 0})
    proba = clone(make_classifier("nb", random_state=0)).fit(xe, ye).predict_proba(Xte)
    np.testing.assert_allclose(ev.methods["nb+gan"].proba, proba, rtol=1e-10, atol=1e-12)
    assert not np.allclose(ev.methods["nb+gan"].proba, ev.methods["nb"].proba)
    assert ev.methods["cnn+gan"].estimator.epochs == 1


def test_gan_quality_is_recorded_and_reported(short_gan, gan_run, phantoms, tmp_path):
    ev, lines = gan_run
    record = ev.methods["cnn+gan"].params["gan"]
    assert record == ev.methods["nb+gan"].params["gan"] and "model" not in record
    # the two-sample AUC is the one of the validation images against the generated ones
    xe, _, syn, _ = short_gan.expand_split(*phantoms.train, factor=1.0, classes="all", seed=0,
                                           gan_options={"verbose": 0})
    assert record["two_sample_auc"] == short_gan.two_sample_auc(phantoms.val.images, xe[syn],
                                                                seed=0)
    assert record["two_sample_auc_real_halves"] is None    # 8 validation images: no halves
    xr, yr = phantoms.train
    _, ye, _, _ = short_gan.expand_split(xr, yr, factor=1.0, classes="all", seed=0,
                                         gan_options={"verbose": 0})
    assert record["class_agreement"] == short_gan.class_agreement(xr, yr, xe[syn], ye[syn], seed=0)
    assert 0.0 <= record["class_agreement"] <= 1.0
    assert any("requested class" in line for line in lines)
    assert any("two-sample AUC" in line for line in lines)
    assert isinstance(ev.gan, short_gan.ConditionalGAN)
    from medfeat.report import write_report

    folder = write_report(ev, tmp_path / "rep", explain=False)
    for png in ("gan_samples.png", "gan_quality.png"):
        assert (folder / png).read_bytes()[:4] == b"\x89PNG"
    md = (folder / "report.md").read_text()
    assert "## GAN data expansion" in md and f"{record['two_sample_auc']:.3f}" in md
    assert "generated for" in md.split("## GAN data expansion")[1].split("##")[0]
    assert "| nb |" in md.split("## GAN data expansion")[1].split("##")[0]   # nb beside nb+gan
    assert "model" not in (folder / "metrics.json").read_text().split('"gan"')[1][:400]


def test_unknown_base_method_is_refused_before_any_work(phantoms):
    with pytest.raises(ValueError, match="nosuch"):
        evaluate(phantoms, ["nb", "nosuch+gan"], progress=False, log=None)
