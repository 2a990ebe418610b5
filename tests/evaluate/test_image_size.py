"""Images of any size: anti-aliased resizing in io, the deep road's input side chosen by the
budget's cost model (estimates that grow with the pixels), ``pipeline.compare(image_size=)``
and ``medfeat compare --image-size`` and multi-label files through the command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medfeat import cli, pipeline
from medfeat.evaluate import search
from medfeat.io import Dataset, make_phantoms, resize_images

from ..conftest import load_real


def test_resize_matches_scikit_image_with_anti_aliasing():
    from skimage.transform import resize

    img = load_real("camera")                        # 256 x 256 uint8
    stack = np.stack([img, img[::-1]])
    small = resize_images(stack, 64)
    ref = resize(img.astype(np.float64), (64, 64), order=1, mode="reflect",
                 anti_aliasing=True, preserve_range=True)
    assert small.shape == (2, 64, 64) and small.dtype == np.uint8
    assert np.abs(small[0].astype(int) - np.rint(ref).astype(int)).max() == 0
    # without anti-aliasing, the fine texture of the camera aliases: the results differ
    plain = resize_images(stack, 64, anti_aliasing=False)
    assert np.abs(plain[0].astype(int) - small[0].astype(int)).max() > 10
    big = resize_images(stack.astype(np.float32), (300, 200))
    assert big.shape == (2, 300, 200) and big.dtype == np.float32
    assert resize_images(stack, 256) is stack        # already that size
    colour = resize_images(np.zeros((1, 40, 40, 3), np.uint8), 20)
    assert colour.shape == (1, 20, 20, 3)
    with pytest.raises(ValueError, match="size"):
        resize_images(stack, 0)
    with pytest.raises(ValueError, match="stack of 2-D images"):
        resize_images(img, 32)


def test_dataset_resized_keeps_labels_and_splits():
    ds = make_phantoms(n=40, size=32, seed=0)
    big = ds.resized(96)
    assert big.train.images.shape[1:] == (96, 96) and big.sizes == ds.sizes
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(big, part).labels, getattr(ds, part).labels)


def test_cost_model_follows_what_each_network_sees():
    _deep_available()
    over = search._OVERHEAD_SECONDS

    def ratio(kind, side):
        base = search.deep_base(kind, 2000)
        t28, t = (search.estimate_seconds(kind, base, 2000, 400, (s, s)) for s in (28, side))
        return (t - over) / (t28 - over)
    # the cnn convolves every pixel: a little faster than the pixels
    assert ratio("cnn", 128) == pytest.approx(((128 / 28) ** 2) ** search._PIXEL_EXPONENT["cnn"])
    assert ratio("cnn", 64) > (64 / 28) ** 2
    # resnet18 keeps the pixels below 64 px, and downsamples by 4 with its ImageNet stem above
    assert ratio("resnet18", 48) == pytest.approx((48 / 28) ** 2)
    assert ratio("resnet18", 128) == pytest.approx(
        (128 / 28) ** 2 / 16 * search._RESNET_STEM_FACTOR)
    assert ratio("resnet18", 64) < ratio("resnet18", 48)
    from medfeat.deep import build_model

    small, large = (build_model("resnet18", (s, s, 1), 2, width=4) for s in (48, 64))
    assert large.get_layer("stage1_block1_out").output.shape[1] == 16        # 64 / 4
    assert small.get_layer("stage1_block1_out").output.shape[1] == 48


def _deep_available():
    pytest.importorskip("keras")
    try:
        import medfeat.deep  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"medfeat.deep unavailable: {exc}")


@pytest.fixture(scope="module")
def phantoms64():
    return make_phantoms(n=60, size=64, seed=0)


def test_deep_side_is_the_largest_that_fits_the_budget(phantoms64):
    _deep_available()
    from medfeat.evaluate import evaluate
    from medfeat.evaluate.harness import _deep_input_side

    n_tr, n_va = phantoms64.sizes[:2]
    # the rule on its own: every side up to 64 fits an unlimited budget; 30 s fits only the
    # smaller sides, chosen from the cost model (no training)
    states = _fake_states(["cnn", "resnet18"], n_tr)
    side, shape = _deep_input_side(states, (64, 64), n_tr, n_va, np.inf, _Ctx())
    assert side == 64 and shape == (64, 64)
    def cost(s):
        return sum(search.estimate_seconds(k, search.deep_base(k, n_tr), n_tr, n_va, (s, s))
                   for k in ("cnn", "resnet18"))

    allowance = (cost(32) + cost(48)) / 2
    states = _fake_states(["cnn", "resnet18"], n_tr)
    side, shape = _deep_input_side(states, (64, 64), n_tr, n_va, allowance, _Ctx())
    assert side == 32 and shape == (32, 32)
    assert all(c["input_size"] == 32 for st in states for c in st.candidates)
    assert all(st.method.params["input_size"]["estimate_seconds"] == pytest.approx(
        cost(32), abs=0.1) for st in states)
    # in the harness: a small budget trains the default at the smallest side, epochs cut
    lines = []
    ev = evaluate(phantoms64, ["cnn"], cv=None, seed=0, progress=False, log=lines.append,
                  n_boot=0, budget=0.05, max_trials=2)
    res = ev.methods["cnn"]
    note = res.params["input_size"]
    assert note["input_size"] == 28 and note["stored"] == [64, 64]
    assert res.estimator.model_.input_shape == (None, 28, 28, 1)
    first, cut = note["epochs_cut"]["cnn"]
    assert cut == 3 < first and res.params["search"]["trials"][0]["settings"]["epochs"] == 3
    assert res.proba.shape == (phantoms64.sizes[2], 2)
    assert any("train at 28x28" in line for line in lines)


class _Ctx:
    epochs = None

    @staticmethod
    def say(*_):
        pass


def _fake_states(kinds, n_train):
    from medfeat.evaluate.harness import _DeepState, _Method

    states = []
    for k in kinds:
        base = search.deep_base(k, n_train)
        cands = search.deep_candidates(k, base, seed=0, n=2)
        states.append(_DeepState(_Method(k, "deep", None, {"kind": k}, kind=k), cands))
    return states


def test_compare_image_size_resizes_both_roads(tmp_path):
    ds = make_phantoms(n=60, size=32, seed=0)
    lines = []
    res = pipeline.compare(ds, methods=["nb"], cv=2, progress=False, log=lines.append,
                           image_size=48, out=tmp_path / "r")
    ev = res.evaluation
    assert ev.settings["image_size"] == 48
    assert ev.test_images.shape[1:] == (48, 48)
    assert any("resized from 32x32 to 48x48" in line for line in lines)
    doc = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert doc["settings"]["image_size"] == 48
    with pytest.raises(ValueError, match="image_size"):
        pipeline.compare(ds, methods=["nb"], cv=2, progress=False, log=None, image_size=4)


def _findings_npz(path, size=32):
    from .test_multilabel import findings_dataset

    X, Y = findings_dataset(n=120, size=size)
    np.savez(path, train_images=X[:80], train_labels=Y[:80], val_images=X[80:100],
             val_labels=Y[80:100], test_images=X[100:], test_labels=Y[100:])
    return path


def test_command_runs_multilabel_files_at_a_chosen_size(tmp_path, capsys):
    data = _findings_npz(tmp_path / "findings.npz")
    out = tmp_path / "report"
    code = cli.main(["compare", "--data", str(data), "--methods", "logreg", "--cv", "2",
                     "--image-size", "40", "--out", str(out), "--quiet"])
    assert code == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["dataset"]["multilabel"] is True and doc["settings"]["image_size"] == 40
    per = doc["methods"]["logreg"]["test"]["per_label"]
    assert len(per) == 3 and all(len(r["auc_ci95"]) == 2 for r in per)
    assert (out / "per_label.png").exists()
    md = (out / "report.md").read_text()
    assert "3 findings (multi-label) (0, 1, 2)" in md
    assert "Positives per finding (0 / 1 / 2): train " + " / ".join(
        str(v) for v in np.load(data)["train_labels"].sum(axis=0)) in md
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", "--data", str(data), "--image-size", "2"])
    assert exc.value.code == 2 and "--image-size must be >= 8" in capsys.readouterr().err


def test_multilabel_datasets_refuse_nothing_but_bad_labels():
    x = np.zeros((4, 8, 8), np.uint8)
    y = np.array([[0, 1], [1, 0], [1, 1], [0, 0]])
    ds = Dataset((x, y), (x, y), (x, y), ("a", "b"))
    assert ds.multilabel and ds.resized(16).train.labels.shape == (4, 2)
