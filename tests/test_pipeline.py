"""medfeat.pipeline: load() for every kind of source, compare() end to end."""

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medfeat import pipeline
from medfeat.io import DownloadError, ImageReadError, make_phantoms, read_dicom
from medfeat.pipeline import SourceError


def _save_npz(path, ds, parts=("train", "val", "test")):
    arrays = {}
    for part in parts:
        split = getattr(ds, part)
        arrays[f"{part}_images"] = split.images
        arrays[f"{part}_labels"] = split.labels.reshape(-1, 1)
    np.savez(path, **arrays)


@pytest.fixture(scope="module")
def tiny():
    return make_phantoms(n=60, size=32, seed=0)


# --------------------------------------------------------------------------------------------
# load


def test_load_npz_keeps_its_splits(tiny, tmp_path):
    _save_npz(tmp_path / "tiny.npz", tiny)
    ds = pipeline.load(tmp_path / "tiny.npz")
    assert ds.name == "tiny" and ds.classes == ("0", "1")
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(ds, part).images, getattr(tiny, part).images)
        np.testing.assert_array_equal(getattr(ds, part).labels, getattr(tiny, part).labels)


def test_load_npz_carves_missing_splits_by_seed(tiny, tmp_path):
    _save_npz(tmp_path / "train_only.npz", tiny, parts=("train",))
    a = pipeline.load(str(tmp_path / "train_only.npz"), seed=1)
    b = pipeline.load(str(tmp_path / "train_only.npz"), seed=1)
    c = pipeline.load(str(tmp_path / "train_only.npz"), seed=2)
    assert sum(a.sizes) == len(tiny.train.labels) and a.sizes[1] > 0 and a.sizes[2] > 0
    np.testing.assert_array_equal(a.test.images, b.test.images)
    assert not np.array_equal(a.test.images, c.test.images)


def test_load_npz_named_like_medmnist_gets_class_names(tiny, tmp_path):
    _save_npz(tmp_path / "pneumoniamnist.npz", tiny)
    ds = pipeline.load(tmp_path / "pneumoniamnist.npz")
    assert ds.classes == ("normal", "pneumonia") and ds.name == "pneumoniamnist"


def test_load_real_pneumoniamnist(shared_data):
    path = shared_data / "pneumoniamnist.npz"
    if not path.exists():
        pytest.skip("pneumoniamnist.npz is not in ../shared/data")
    ds = pipeline.load(path)
    assert ds.classes == ("normal", "pneumonia")
    assert ds.sizes == (3882, 524, 624)
    assert np.bincount(ds.train.labels).tolist() == [388, 3494]


def _png_folder(root, per_class=8, size=12):
    from PIL import Image

    rng = np.random.default_rng(0)
    written = {}
    for k, cls in enumerate(("benign", "malignant")):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 120, (size, size)).astype(np.uint8) + 100 * k
            p = root / cls / f"img{i:02d}.png"
            Image.fromarray(img).save(p)
            written[p.name, cls] = img
    return written


def test_load_class_folders(tmp_path):
    written = _png_folder(tmp_path / "data")
    ds = pipeline.load(tmp_path / "data", seed=3, progress=False)
    assert ds.classes == ("benign", "malignant") and ds.name == "data"
    assert sum(ds.sizes) == 16 and min(ds.sizes) > 0
    images = np.concatenate([ds.train.images, ds.val.images, ds.test.images])
    labels = np.concatenate([ds.train.labels, ds.val.labels, ds.test.labels])
    # every written image is there once, with its folder's label
    for (_, cls), img in written.items():
        hits = [i for i in range(len(images)) if np.array_equal(images[i], img)]
        assert len(hits) == 1 and labels[hits[0]] == ("benign", "malignant").index(cls)


def _dicom_folder(root, n=12, size=16):
    """Tiny CT files cut from pydicom's CT_small, labels by whether a bright block was added."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    src = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    full = src.pixel_array
    root.mkdir()
    rows = []
    for i in range(n):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        crop = full[4 * i:4 * i + size, 40:40 + size].copy()
        label = "lesion" if i % 2 else "normal"
        if label == "lesion":
            crop[4:8, 4:8] += 300
        ds.Rows, ds.Columns = size, size
        ds.PixelData = crop.astype(full.dtype).tobytes()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        name = f"slice{i:02d}.dcm"
        ds.save_as(root / name, enforce_file_format=True)
        rows.append((name, label))
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label"])
        w.writerows(rows)
    return rows


def test_load_dicom_folder_with_labels_csv(tmp_path):
    rows = _dicom_folder(tmp_path / "dcm")
    ds = pipeline.load(tmp_path / "dcm", seed=0, val_size=0.2, test_size=0.2, progress=False)
    assert ds.classes == ("lesion", "normal")       # text labels: sorted class names
    assert sum(ds.sizes) == len(rows) and ds.train.images.dtype == np.float32
    expected = {name: read_dicom(tmp_path / "dcm" / name) for name, _ in rows}
    # modality values (Hounsfield units: slope 1, intercept -1024)
    first = expected[rows[0][0]]
    assert first.min() < 0
    images = np.concatenate([ds.train.images, ds.val.images, ds.test.images])
    labels = np.concatenate([ds.train.labels, ds.val.labels, ds.test.labels])
    for name, lab in rows:
        hits = [i for i in range(len(images)) if np.array_equal(images[i], expected[name])]
        assert len(hits) == 1 and ds.classes[labels[hits[0]]] == lab


def test_labels_csv_errors(tmp_path):
    rows = _dicom_folder(tmp_path / "dcm", n=6)
    (tmp_path / "dcm" / "labels.csv").write_text("name_of_file,kind\n" + "\n".join(
        f"{a},{b}" for a, b in rows))
    with pytest.raises(SourceError, match="file column"):
        pipeline.load(tmp_path / "dcm", progress=False)
    (tmp_path / "dcm" / "labels.csv").write_text("file,label\nmissing.dcm,1\n")
    with pytest.raises(SourceError, match="missing.dcm"):
        pipeline.load(tmp_path / "dcm", progress=False)
    # an explicit labels path outside the folder, integer labels
    other = tmp_path / "my_labels.csv"
    other.write_text("path;class\n" + "\n".join(f"{a};{i % 2}" for i, (a, _) in
                                                 enumerate(rows)))
    ds = pipeline.load(tmp_path / "dcm", labels=other, val_size=0.2, test_size=0.2,
                       progress=False)
    assert ds.classes == ("0", "1") and sum(ds.sizes) == 6


def test_load_names_and_errors(tmp_path):
    ds = pipeline.load("phantoms", n=40, size=32, seed=5)
    ref = make_phantoms(n=40, size=32, seed=5)
    np.testing.assert_array_equal(ds.test.images, ref.test.images)
    assert pipeline.load(ref) is ref
    with pytest.raises(SourceError, match="dataset name"):
        pipeline.load("nosuchdataset")
    with pytest.raises(SourceError, match="does not exist"):
        pipeline.load(tmp_path / "missing.npz")
    with pytest.raises(SourceError, match="unexpected keyword"):
        pipeline.load("phantoms", colour="blue")
    with pytest.raises(SourceError, match="path, a dataset name"):
        pipeline.load(42)
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(ImageReadError, match="notes.txt"):
        pipeline.load(tmp_path / "notes.txt")
    # a MedMNIST name that is not cached, without going online
    with pytest.raises(DownloadError, match="download=False"):
        pipeline.load("pneumoniamnist", root=tmp_path / "cache", download=False)
    with pytest.raises(DownloadError, match="download=False"):
        pipeline.load("bloodmnist_64", root=tmp_path / "cache", download=False)


# --------------------------------------------------------------------------------------------
# compare


def test_compare_classical_end_to_end(tiny, tmp_path):
    res = pipeline.compare(tiny, methods=("nb", "tree"), cv=2, seed=0, out=tmp_path / "rep",
                           progress=False, log=None)
    t = res.table
    assert list(t.index) == ["nb", "tree"] and t.index.name == "method"
    assert {"family", "acc", "auc", "auc_lo", "auc_hi", "f1", "sensitivity", "specificity",
            "cv_auc_mean", "cv_auc_std", "fit_seconds", "predict_seconds"} <= set(t.columns)
    for name in t.index:
        r = res.evaluation.methods[name]
        auc = roc_auc_score(r.y_true, r.proba[:, 1])
        acc = np.mean((r.proba[:, 1] >= 0.5) == r.y_true)
        assert t.loc[name, "auc"] == pytest.approx(auc)
        assert t.loc[name, "acc"] == pytest.approx(acc)
        assert t.loc[name, "auc_lo"] <= t.loc[name, "auc"] <= t.loc[name, "auc_hi"]
        folds = [f["auc"] for f in r.cv["folds"]]
        assert len(folds) == 2 and t.loc[name, "cv_auc_mean"] == pytest.approx(np.mean(folds))
    assert res.best == t["auc"].idxmax()
    assert res.report == (tmp_path / "rep").absolute()
    doc = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert doc["dataset"]["class_counts"]["test"] == np.bincount(tiny.test.labels).tolist()
    assert "nb" in res.summary() and "best by test AUC" in res.summary()
    # save() again, elsewhere
    again = res.save(tmp_path / "rep2", explain=False)
    assert (again / "report.html").exists()


def test_compare_refuses_bad_out_before_any_work(tiny, tmp_path, monkeypatch):
    import medfeat.evaluate

    def never(*args, **kwargs):
        raise AssertionError("evaluate ran although the report could not be written")

    monkeypatch.setattr(medfeat.evaluate, "evaluate", never)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.xlsx").write_text("x")
    from medfeat.report import ReportError

    with pytest.raises(ReportError, match="not a medfeat report"):
        pipeline.compare(tiny, methods=("nb",), out=tmp_path / "mine", progress=False, log=None)


def test_compare_from_a_path(tiny, tmp_path):
    _save_npz(tmp_path / "tiny.npz", tiny)
    res = pipeline.compare(str(tmp_path / "tiny.npz"), methods=["nb"], cv=None,
                           progress=False, log=None)
    assert res.evaluation.dataset["name"] == "tiny" and res.report is None
    assert np.isnan(res.table.loc["nb", "cv_auc_mean"])


def test_compare_with_a_tiny_deep_model(tiny, tmp_path):
    deep = pytest.importorskip("medfeat.deep")
    try:
        clf = deep.DeepClassifier("cnn", epochs=1, batch_size=16, verbose=0,
                                  model_options={"width": 4, "dense": 8})
    except ImportError as exc:       # Keras missing
        pytest.skip(str(exc))
    res = pipeline.compare(tiny, methods={"nb": "nb", "cnn": clf}, cv=2, out=tmp_path / "rep",
                           progress=False, log=None)
    assert list(res.table["family"]) == ["classical", "deep"]
    assert res.comparison is not None and res.comparison["test"] == "delong"
    assert 0 <= res.comparison["p_value"] <= 1
    files = {p.name for p in (tmp_path / "rep").iterdir()}
    assert "heatmaps.png" in files, (tmp_path / "rep" / "report.md").read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Integrated-gradients heat maps (cnn)" in md and "DeLong" in md


def test_compare_on_a_local_dask_cluster(tiny):
    """Features extracted on two dask worker processes: the same numbers as in this process,
    and the fitted Pipeline works once the cluster is gone."""
    pytest.importorskip("distributed")
    kwargs = dict(methods=("nb", "logreg"), cv=2, seed=0, progress=False, log=None, n_boot=50)
    here = pipeline.compare(tiny, **kwargs)
    there = pipeline.compare(tiny, scheduler=2, **kwargs)
    for name in ("nb", "logreg"):
        np.testing.assert_array_equal(here.evaluation.methods[name].proba,
                                      there.evaluation.methods[name].proba)
        est = there.evaluation.methods[name].estimator
        assert est.named_steps["features"].scheduler is None
        np.testing.assert_array_equal(est.predict_proba(tiny.test.images),
                                      here.evaluation.methods[name].estimator.predict_proba(
                                          tiny.test.images))
    with pytest.raises(ValueError, match="scheduler"):
        pipeline.compare(tiny, scheduler=0, **kwargs)
