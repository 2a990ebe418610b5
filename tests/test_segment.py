"""The segmentation road: label-map datasets, pipeline.segment, its report and `medfeat segment`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import f1_score, jaccard_score

from medfeat import io as mio
from medfeat.io import ImageReadError, load_segmentation_npz, make_phantom_segmentation

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]


@pytest.fixture(scope="module")
def organs():
    return make_phantom_segmentation(n=60, size=32, seed=0)


def _save_npz(path, ds):
    np.savez(path, **{f"{s}_{k}": v for s in ("train", "val", "test")
                      for k, v in zip(("images", "masks"), getattr(ds, s))})
    return path


def test_phantom_organs_are_the_phantom_slices_with_their_organs(organs):
    ds = mio.make_phantoms(n=60, size=32, seed=0)
    ours = np.concatenate([organs.train[0], organs.val[0], organs.test[0]])
    theirs = np.concatenate([ds.train.images, ds.val.images, ds.test.images])
    key = lambda a: sorted(x.tobytes() for x in a)       # noqa: E731  same slices, any order
    assert key(ours) == key(theirs)
    assert organs.classes == ("background", "liver", "spleen") and organs.sizes == (42, 9, 9)
    images, masks = organs.train
    # organs lie inside the body (air is 0 after the CT window) and the liver is the larger
    assert images[masks > 0].min() > 0
    assert (masks == 1).sum() > 3 * (masks == 2).sum() > 0
    again = make_phantom_segmentation(n=60, size=32, seed=0)
    np.testing.assert_array_equal(again.test[1], organs.test[1])


def test_npz_round_trip_and_bad_files(organs, tmp_path):
    path = _save_npz(tmp_path / "organs.npz", organs)
    ds = load_segmentation_npz(path, classes=organs.classes)
    np.testing.assert_array_equal(ds.val[1], organs.val[1])
    assert ds.name == "organs" and ds.sizes == organs.sizes
    bad = dict(np.load(path))
    bad["val_masks"] = bad["val_masks"][:, :-1]
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match="val_masks must have shape"):
        load_segmentation_npz(tmp_path / "bad.npz")
    del bad["val_masks"]
    np.savez(tmp_path / "missing.npz", **bad)
    with pytest.raises(ImageReadError, match="missing val_masks"):
        load_segmentation_npz(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ImageReadError, match="text.npz"):
        load_segmentation_npz(tmp_path / "text.npz")
    with pytest.raises(ValueError, match="classes names 2 classes"):
        load_segmentation_npz(path, classes=("background", "organ"))


@pytest.fixture(scope="module")
def segmented(organs):
    pytest.importorskip("keras")
    from medfeat import pipeline

    lines = []
    res = pipeline.segment(organs, epochs=2, width=4, depth=1, batch_size=8, log=lines.append,
                           n_boot=200)
    return res, lines


def test_scores_are_the_standard_ones_on_the_predictions(segmented, organs):
    res, lines = segmented
    truth, pred = organs.test[1], res.predictions
    assert pred.shape == truth.shape and set(np.unique(pred)) <= {0, 1, 2}
    f1 = f1_score(truth.ravel(), pred.ravel(), labels=[1, 2], average=None, zero_division=0)
    iou = jaccard_score(truth.ravel(), pred.ravel(), labels=[1, 2], average=None,
                        zero_division=0)
    for c, name in ((1, "liver"), (2, "spleen")):
        m = res.metrics["classes"][name]
        assert m["dice"] == pytest.approx(f1[c - 1]) and m["iou"] == pytest.approx(iou[c - 1])
        held = [i for i in range(len(truth)) if (truth[i] == c).any() or (pred[i] == c).any()]
        per = [f1_score((truth[i] == c).ravel(), (pred[i] == c).ravel(), zero_division=0)
               for i in held]
        assert m["n_images"] == len(held) and m["dice_per_image"] == pytest.approx(np.mean(per))
        lo, hi = m["dice_ci95"]
        assert lo <= m["dice_per_image"] <= hi
    assert res.metrics["mean_dice"] == pytest.approx(np.mean(f1))
    assert any("test mean Dice" in line for line in lines)
    # the same seed gives the same network
    from medfeat import pipeline

    again = pipeline.segment(organs, epochs=2, width=4, depth=1, batch_size=8, log=None,
                             n_boot=200)
    np.testing.assert_array_equal(again.predictions, pred)


def test_report_folder(segmented, tmp_path):
    res, _ = segmented
    folder = res.save(tmp_path / "seg")
    names = {p.name for p in folder.iterdir()}
    assert {"metrics.json", "report.md", "report.html", "segmentation.png",
            "training.png"} <= names
    doc = json.loads((folder / "metrics.json").read_text())
    assert doc["task"] == "segmentation"
    assert doc["metrics"]["classes"]["liver"]["dice"] == res.metrics["classes"]["liver"]["dice"]
    md = (folder / "report.md").read_text()
    assert "| liver |" in md and f"{res.metrics['mean_dice']:.3f}" in md
    res.save(folder)                                  # a previous report is replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="not a medfeat report"):
        res.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_command(organs, tmp_path):
    pytest.importorskip("keras")
    path = _save_npz(tmp_path / "organs.npz", organs)
    run = [sys.executable, "-m", "medfeat", "segment", "--data", str(path), "--epochs", "1",
           "--quiet", "--out", str(tmp_path / "rep")]
    proc = subprocess.run(run, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "mean Dice" in proc.stdout and (tmp_path / "rep" / "metrics.json").is_file()
    bad = subprocess.run([sys.executable, "-m", "medfeat", "segment", "--data",
                          str(tmp_path / "nosuch.npz")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("medfeat: error: --data")
    assert len(bad.stderr.strip().splitlines()) == 1
