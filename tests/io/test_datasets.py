"""Dataset, stratified_split, load_npz, ImageFolder, load_medmnist (offline) and make_phantoms."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from medfeat.io import (Dataset, DownloadError, ImageFolder, ImageReadError, Split, load_medmnist,
                        load_npz, make_phantoms, stratified_split)
from medfeat.io import medmnist


def write_npz(path, n=40, shape=(8, 8), parts=("train", "val", "test"), label_shape=(1,), seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for k, part in enumerate(parts):
        m = n // (k + 1)
        arrays[f"{part}_images"] = rng.integers(0, 256, (m, *shape), dtype=np.uint8)
        arrays[f"{part}_labels"] = (np.arange(m) % 2).reshape(m, *label_shape).astype(np.uint8)
    np.savez(path, **arrays)
    return arrays


# ---------------------------------------------------------------------------------------------
# Dataset and splitting


def test_dataset_validates_and_normalises_labels():
    x = np.zeros((6, 4, 4))
    ds = Dataset((x, np.array([[0], [1], [0], [1], [0], [1]])), (x[:2], [0, 1]), (x[:2], [1, 0]),
                 ["a", "b"], "t")
    assert isinstance(ds.train, Split)
    assert ds.train.labels.shape == (6,) and ds.train.labels.dtype == np.int64
    assert ds.classes == ("a", "b") and ds.sizes == (6, 2, 2)
    images, labels = ds.val  # splits unpack
    assert images.shape == (2, 4, 4)
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        Dataset((x[:2], [0, 1, 0]), (x[:2], [0, 1]), (x[:2], [0, 1]), ("a", "b"))
    with pytest.raises(ValueError, match="label 2"):
        Dataset((x[:2], [0, 2]), (x[:2], [0, 1]), (x[:2], [0, 1]), ("a", "b"))
    with pytest.raises(ValueError, match="at least two classes"):
        Dataset((x[:2], [0, 0]), (x[:2], [0, 0]), (x[:2], [0, 0]), ("a",))
    with pytest.raises(ValueError, match="image shape"):
        Dataset((x[:2], [0, 1]), (np.zeros((2, 5, 5)), [0, 1]), (x[:2], [0, 1]), ("a", "b"))
    with pytest.raises(ValueError, match="multi-label"):     # 0/1 matrices in some splits only
        Dataset((x[:2], np.zeros((2, 3))), (x[:2], [0, 1]), (x[:2], [0, 1]), ("a", "b", "c"))
    with pytest.raises(ValueError, match="3 multi-label columns but 2 classes"):
        Dataset((x[:2], np.zeros((2, 3))), (x[:2], np.zeros((2, 3))), (x[:2], np.zeros((2, 3))),
                ("a", "b"))
    with pytest.raises(ValueError, match="0 and 1 only"):
        Dataset((x[:2], np.full((2, 2), 2)), (x[:2], np.zeros((2, 2))),
                (x[:2], np.zeros((2, 2))), ("a", "b"))
    with pytest.raises(ValueError, match="integers"):
        Dataset((x[:2], [0.5, 1]), (x[:2], [0, 1]), (x[:2], [0, 1]), ("a", "b"))


def test_stratified_split_keeps_proportions_and_is_seeded():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    tr, va, te = stratified_split(labels, val_size=0.1, test_size=0.2, seed=4)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(100))
    assert np.bincount(labels[te]).tolist() == [12, 6, 2]
    assert np.bincount(labels[va]).tolist() == [6, 3, 1]
    again = stratified_split(labels, val_size=0.1, test_size=0.2, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    other = stratified_split(labels, val_size=0.1, test_size=0.2, seed=5)
    assert not np.array_equal(te, other[2])
    _, va0, _ = stratified_split(labels, val_size=0.0, test_size=0.2)
    assert va0.size == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"val_size": 0.6, "test_size": 0.5}, "below 1"),
    ({"val_size": -0.1}, "fraction"),
    ({"test_size": 1.0}, "fraction"),
])
def test_stratified_split_bad_fractions(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stratified_split(np.arange(20) % 2, **kwargs)


def test_stratified_split_single_class_and_tiny_class():
    with pytest.raises(ValueError, match="two classes"):
        stratified_split(np.zeros(10))
    with pytest.raises(ValueError, match="too few"):
        stratified_split(np.array([0] * 20 + [1, 1]), val_size=0.1, test_size=0.1)
    tr, va, te = stratified_split(np.array([0] * 20 + [1] * 3), val_size=0.1, test_size=0.1)
    assert [np.bincount(np.array([0] * 20 + [1] * 3)[i]).tolist() for i in (tr, va, te)] == \
        [[16, 1], [2, 1], [2, 1]]  # the small class still reaches every split


# ---------------------------------------------------------------------------------------------
# load_npz


def test_load_npz_medmnist_layout(tmp_path):
    arrays = write_npz(tmp_path / "toy.npz")
    ds = load_npz(tmp_path / "toy.npz")
    assert ds.name == "toy" and ds.classes == ("0", "1")
    np.testing.assert_array_equal(ds.train.images, arrays["train_images"])
    np.testing.assert_array_equal(ds.test.labels, arrays["test_labels"][:, 0])
    assert ds.sizes == (40, 20, 13)


def test_load_npz_flat_labels_and_class_names(tmp_path):
    write_npz(tmp_path / "flat.npz", label_shape=())
    ds = load_npz(tmp_path / "flat.npz", classes=["neg", "pos"], name="x")
    assert ds.classes == ("neg", "pos") and ds.name == "x" and ds.train.labels.ndim == 1


def test_load_npz_missing_splits_are_carved_from_train(tmp_path):
    arrays = write_npz(tmp_path / "train_only.npz", n=100, parts=("train",))
    ds = load_npz(tmp_path / "train_only.npz", val_size=0.1, test_size=0.2, seed=1)
    assert ds.sizes == (70, 10, 20)
    assert np.bincount(ds.test.labels).tolist() == [10, 10]
    rows = {r.tobytes() for r in arrays["train_images"]}
    assert all(r.tobytes() in rows for r in ds.val.images)
    write_npz(tmp_path / "no_val.npz", n=100, parts=("train", "test"))
    ds = load_npz(tmp_path / "no_val.npz", val_size=0.2)
    assert ds.sizes == (80, 20, 50)


def test_load_npz_errors(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        load_npz(tmp_path / "missing.npz")
    with pytest.raises(ImageReadError, match="is a folder"):
        load_npz(tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 this is no zip")
    with pytest.raises(ImageReadError, match="cannot read"):
        load_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "nokeys.npz", images=np.zeros((2, 2, 2)))
    with pytest.raises(ImageReadError, match="train_images"):
        load_npz(tmp_path / "nokeys.npz")
    np.savez(tmp_path / "count.npz", train_images=np.zeros((5, 2, 2)), train_labels=np.zeros(4))
    with pytest.raises(ImageReadError, match="4 labels"):
        load_npz(tmp_path / "count.npz")
    np.savez(tmp_path / "multi.npz", train_images=np.zeros((5, 2, 2)),
             train_labels=np.full((5, 14), 3))
    with pytest.raises(ImageReadError, match="multi-label"):
        load_npz(tmp_path / "multi.npz")
    np.savez(tmp_path / "shapes.npz", train_images=np.zeros((4, 2, 2)),
             train_labels=np.arange(4) % 2, val_images=np.zeros((2, 3, 3)),
             val_labels=[0, 1], test_images=np.zeros((2, 2, 2)), test_labels=[0, 1])
    with pytest.raises(ImageReadError, match="image shape"):
        load_npz(tmp_path / "shapes.npz")
    data = (tmp_path / "count.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError):
        load_npz(tmp_path / "cut.npz")


def test_shared_pneumoniamnist_loads(shared_data):
    ds = load_npz(shared_data / "pneumoniamnist.npz", classes=("normal", "pneumonia"))
    assert ds.sizes == (3882, 524, 624)
    assert ds.train.images.shape[1:] == (28, 28) and ds.train.images.dtype == np.uint8
    assert np.bincount(ds.train.labels).tolist() == [388, 3494]
    assert np.bincount(ds.val.labels).tolist() == [135, 389]
    assert np.bincount(ds.test.labels).tolist() == [234, 390]


# ---------------------------------------------------------------------------------------------
# ImageFolder


def make_folder(root, classes=("benign", "malignant"), n=6, shape=(8, 8)):
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(n):
            img = np.full(shape, 10 * i + 100 * k, np.uint8)
            Image.fromarray(img).save(root / c / f"{i:02d}.png")
    return root


def test_image_folder_lazy_and_parallel(tmp_path):
    root = make_folder(tmp_path / "data")
    (root / ".hidden").mkdir()
    (root / "readme.txt").write_text("ignored: not in a class folder")
    folder = ImageFolder(root)
    assert folder.classes == ("benign", "malignant") and len(folder) == 12
    img, label = folder[7]
    assert label == 1 and img[0, 0] == 110
    images, labels = folder.load(workers=2, progress=False)
    assert images.shape == (12, 8, 8) and labels.tolist() == [0] * 6 + [1] * 6
    np.testing.assert_array_equal(images[:, 0, 0], [10 * i for i in range(6)] +
                                  [100 + 10 * i for i in range(6)])
    ds = folder.to_dataset(val_size=1 / 6, test_size=1 / 6, progress=False)
    assert ds.sizes == (8, 2, 2) and ds.name == "data" and ds.classes == folder.classes


def test_image_folder_progress_bar(tmp_path, capsys):
    folder = ImageFolder(make_folder(tmp_path / "d"))
    folder.load(workers=1, progress=True)
    assert "12/12" in capsys.readouterr().err


def test_image_folder_errors(tmp_path):
    with pytest.raises(ImageReadError, match="no such folder"):
        ImageFolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="no class sub-folders"):
        ImageFolder(tmp_path / "empty")
    one = make_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(ImageReadError, match="only one class"):
        ImageFolder(one)
    two = make_folder(tmp_path / "two")
    (two / "third").mkdir()
    with pytest.raises(ImageReadError, match="holds no image files") as info:
        ImageFolder(two)
    assert str(two / "third") in str(info.value)


def test_image_folder_mismatched_shapes_and_bad_files(tmp_path):
    root = make_folder(tmp_path / "d")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(root / "malignant" / "99.png")
    with pytest.raises(ImageReadError, match="differs") as info:
        ImageFolder(root).load(progress=False)
    assert "99.png" in str(info.value)
    (root / "malignant" / "99.png").write_text("not an image")
    with pytest.raises(ImageReadError, match="99.png"):
        ImageFolder(root).load(progress=False)
    assert len(ImageFolder(root, extensions=[".PNG"])) == 13


# ---------------------------------------------------------------------------------------------
# load_medmnist (never the network)


def test_medmnist_table_is_complete():
    for name, (md5s, labels, channels, task, licence) in medmnist.INFO.items():
        assert len(md5s) == len(medmnist.SIZES)
        assert all(len(m) == 32 and int(m, 16) >= 0 for m in md5s)
        assert len(labels) >= 2 and channels in (1, 3)
    assert medmnist.INFO["pneumoniamnist"][0][0] == "28209eda62fecd6e6a2d98b1501bb15f"
    assert medmnist.URL.format(stem="pneumoniamnist_64").startswith("https://zenodo.org/")


@pytest.fixture
def mirror(tmp_path):
    src = tmp_path / "mirror" / "pneumoniamnist.npz"
    src.parent.mkdir()
    write_npz(src, n=30, shape=(28, 28))
    return src, hashlib.md5(src.read_bytes()).hexdigest()


def test_medmnist_downloads_from_file_url_into_cache(tmp_path, mirror):
    src, md5 = mirror
    cache = tmp_path / "cache"
    ds = load_medmnist("PneumoniaMNIST", root=cache, url=src.as_uri(), md5=md5)
    assert ds.classes == ("normal", "pneumonia") and ds.name == "pneumoniamnist"
    assert ds.sizes == (30, 15, 10)
    assert sorted(os.listdir(cache)) == ["pneumoniamnist.npz"]
    # second call: from the cache, no download (a broken URL would fail otherwise)
    again = load_medmnist("pneumoniamnist", root=cache, url="file:///nonexistent", md5=md5)
    np.testing.assert_array_equal(again.train.images, ds.train.images)


def test_medmnist_wrong_checksum_leaves_nothing(tmp_path, mirror):
    src, _ = mirror
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="does not match"):
        load_medmnist("pneumoniamnist", root=cache, url=src.as_uri(), md5="0" * 32)
    assert os.listdir(cache) == []  # no partial or temporary file


def test_medmnist_offline_fails_quickly_and_cleanly(tmp_path):
    import time

    cache = tmp_path / "cache"
    start = time.monotonic()
    with pytest.raises(DownloadError, match="cannot download"):
        load_medmnist("breastmnist", root=cache, url=(tmp_path / "absent.npz").as_uri(),
                      timeout=2)
    with pytest.raises(DownloadError, match="cannot download"):  # nothing listens on port 9
        load_medmnist("breastmnist", root=cache, url="http://127.0.0.1:9/breastmnist.npz",
                      timeout=2)
    assert time.monotonic() - start < 10
    assert os.listdir(cache) == []


def test_medmnist_precached_file_and_bad_cache(tmp_path, mirror):
    src, md5 = mirror
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "pneumoniamnist_64.npz").write_bytes(src.read_bytes())
    ds = load_medmnist("pneumoniamnist", size=64, root=cache, md5=md5, download=False)
    assert ds.name == "pneumoniamnist_64"
    with pytest.raises(DownloadError, match="left as it is"):  # official MD5 ≠ our toy file
        load_medmnist("pneumoniamnist", size=64, root=cache, download=False)
    assert (cache / "pneumoniamnist_64.npz").read_bytes() == src.read_bytes()
    with pytest.raises(DownloadError, match="download=False"):
        load_medmnist("bloodmnist", root=cache, download=False)


def test_medmnist_default_cache_from_environment(tmp_path, mirror, monkeypatch):
    src, md5 = mirror
    monkeypatch.setenv("MEDFEAT_DATA_DIR", str(tmp_path / "env_cache"))
    load_medmnist("pneumoniamnist", url=src.as_uri(), md5=md5)
    assert (tmp_path / "env_cache" / "pneumoniamnist.npz").is_file()


def test_medmnist_bad_arguments():
    with pytest.raises(ValueError, match="unknown MedMNIST"):
        load_medmnist("mnist")
    with pytest.raises(ValueError, match="size"):
        load_medmnist("pneumoniamnist", size=32)


# ---------------------------------------------------------------------------------------------
# phantoms


def auc(scores, labels):
    """ROC AUC by the Mann–Whitney statistic (ties count one half)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    pos = labels == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


@pytest.fixture(scope="module")
def phantoms():
    return make_phantoms()


def test_phantoms_default_shape_balance_and_determinism(phantoms):
    ds = phantoms
    assert ds.name == "phantoms" and ds.classes == ("normal", "lesion")
    assert sum(ds.sizes) == 2000 and ds.sizes == (1400, 300, 300)
    assert ds.train.images.shape[1:] == (64, 64) and ds.train.images.dtype == np.uint8
    total = sum(int(s.labels.sum()) for s in (ds.train, ds.val, ds.test))
    assert total == 1000  # exactly half carry a lesion
    small = make_phantoms(n=60, size=48, seed=7)
    again = make_phantoms(n=60, size=48, seed=7)
    other = make_phantoms(n=60, size=48, seed=8)
    np.testing.assert_array_equal(small.train.images, again.train.images)
    np.testing.assert_array_equal(small.test.labels, again.test.labels)
    assert not np.array_equal(small.train.images, other.train.images)
    assert small.train.images.shape[1:] == (48, 48)


def test_phantoms_look_like_ct(phantoms):
    img = phantoms.train.images[0].astype(float)
    assert img[0, 0] == 0 and img[:, :3].max() == 0  # air outside the body
    assert 80 < np.median(img[24:40, 24:40]) < 180  # soft tissue inside
    assert img.max() == 255  # bone saturates the abdominal window


def test_phantoms_lesion_changes_little(phantoms):
    """Lesion slices differ from normal ones by a small local change, not globally."""
    from medfeat.io._phantoms import make_slices

    _, labels, masks = make_slices(200, 64, 0)
    assert not masks[labels == 0].any()
    areas = masks[labels == 1].sum(axis=(1, 2))
    assert areas.min() >= 5 and areas.max() <= 60  # a few to a few dozen pixels of 4096


def test_phantoms_beat_raw_pixel_knn(phantoms):
    """A plain kNN on raw pixels must stay below AUC 0.9 (it sits near chance)."""
    ds = phantoms
    xtr = ds.train.images.reshape(len(ds.train.labels), -1).astype(np.float32)
    xte = ds.test.images.reshape(len(ds.test.labels), -1).astype(np.float32)
    d = (xte ** 2).sum(1)[:, None] - 2 * xte @ xtr.T + (xtr ** 2).sum(1)[None]
    for k in (1, 5, 15):
        nn = np.argsort(d, axis=1)[:, :k]
        score = ds.train.labels[nn].mean(axis=1)
        assert auc(score, ds.test.labels) < 0.9


def lesion_features(images):
    """Local-contrast detector: residual to an 11×11 median, smoothed at lesion scale, extremes
    over the part of the body away from air, fat, bone and kidneys."""
    from scipy import ndimage

    f = images.astype(np.float32)
    res = f - ndimage.median_filter(f, size=(1, 11, 11))
    sm = ndimage.gaussian_filter(f, sigma=(0, 1, 1))
    ok = (ndimage.minimum_filter(sm, size=(1, 7, 7)) > 60) & \
        (ndimage.maximum_filter(sm, size=(1, 11, 11)) < 212)
    res *= ok
    feats = []
    for s in (0.7, 1.0, 1.4):
        g = ndimage.gaussian_filter(res, sigma=(0, s, s)) * s
        feats += [g.max(axis=(1, 2)), -g.min(axis=(1, 2))]
    return np.stack(feats, axis=1)


@pytest.mark.slow
def test_phantoms_solvable_by_a_lesion_detector(phantoms):
    """Solvable: a matched local-contrast feature with logistic regression exceeds AUC 0.9."""
    from scipy.optimize import minimize

    ds = phantoms
    ftr, fte = lesion_features(ds.train.images[:700]), lesion_features(ds.test.images)
    ytr = ds.train.labels[:700]
    mu, sd = ftr.mean(0), ftr.std(0)
    ftr, fte = (ftr - mu) / sd, (fte - mu) / sd

    def loss(w):
        z = ftr @ w[1:] + w[0]
        return np.sum(np.logaddexp(0, z) - ytr * z) + 1e-3 * w @ w

    w = minimize(loss, np.zeros(ftr.shape[1] + 1)).x
    assert auc(fte @ w[1:], ds.test.labels) > 0.9


def test_phantoms_bad_arguments():
    with pytest.raises(ValueError, match="n must be"):
        make_phantoms(n=5)
    with pytest.raises(ValueError, match="size must be"):
        make_phantoms(n=40, size=8)
    with pytest.raises(ValueError, match="n must be"):
        make_phantoms(n=40.0)


# ---------------------------------------------------------------------------------------------
# MedMNIST 3-D files and folders of DICOM series


def test_load_npz_medmnist_3d_layout(tmp_path):
    arrays = write_npz(tmp_path / "toy3d.npz", n=12, shape=(6, 7, 8))
    ds = load_npz(tmp_path / "toy3d.npz")
    assert ds.train.images.shape == (12, 6, 7, 8) and ds.train.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.test.images, arrays["test_images"])
    assert ds.sizes == (12, 6, 4) and ds.classes == ("0", "1")


def test_shared_adrenalmnist3d_loads(shared_data):
    path = shared_data / "adrenalmnist3d.npz"
    if not path.is_file():
        pytest.skip("adrenalmnist3d.npz is not present")
    ds = load_npz(path)
    assert ds.sizes == (1188, 98, 298)
    assert ds.train.images.shape[1:] == (28, 28, 28) and ds.train.images.dtype == np.uint8
    assert ds.classes == ("0", "1")
    assert np.bincount(ds.test.labels).tolist() == [229, 69]


def _crop(rows, cols, bright=0, shift=0):
    """An edit for write_series: a rows x cols window of the slice starting ``shift`` pixels
    further down, plus ``bright`` in a block."""
    def edit(k, ds):
        arr = ds.pixel_array[10 + shift:10 + shift + rows, 20:20 + cols].astype(np.int16)
        arr[2:6, 2:6] += np.int16(bright)
        ds.Rows, ds.Columns = rows, cols
        ds.PixelData = arr.tobytes()
    return edit


def _series_root(tmp_path, shapes, labels, *, csv=True):
    """Studies of ``(slices, rows, cols)`` from CT_small, at shuffled file names; class-1 studies
    carry a bright block. With ``csv`` a labels.csv maps study folders to labels, else class
    folders hold the studies."""
    from .conftest import write_series

    root = tmp_path / "studies"
    lines = ["study,diagnosis"]
    for s, ((d, r, c), lab) in enumerate(zip(shapes, labels)):
        folder = root / f"study{s:02d}" if csv else root / lab / f"study{s:02d}"
        z0 = -40.0 + 3 * s  # each study at its own table position
        write_series(folder, [(0.0, 0.0, z0 + 2.5 * k) for k in range(d)], seed=s,
                     edit=_crop(r, c, 400 * (lab == "mass"), shift=3 * s))
        lines.append(f"study{s:02d},{lab}")
    if csv:
        (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def test_load_series_folder_reads_sorted_volumes_with_labels(tmp_path):
    from medfeat.io import is_series_folder, load_series_folder, read_series

    labels = ["normal", "mass"] * 4
    root = _series_root(tmp_path, [(5, 16, 20)] * 8, labels)
    assert is_series_folder(root)
    ds = load_series_folder(root, val_size=0.25, test_size=0.25, progress=False)
    assert ds.classes == ("mass", "normal") and ds.sizes == (4, 2, 2)
    assert ds.train.images.shape[1:] == (5, 16, 20) and ds.train.images.dtype == np.float32
    # every volume is read_series of its folder (slices sorted by position, Hounsfield units)
    vols = {s: read_series(root / f"study{s:02d}")[0] for s in range(8)}
    for images, y in (ds.train, ds.val, ds.test):
        for img, lab in zip(images, y):
            match = [s for s, v in vols.items() if np.array_equal(v, img)]
            assert len(match) == 1 and ds.classes[lab] == labels[match[0]]
    v = vols[0]
    assert np.all(np.diff(v[:, 8, 8]) == 10)  # write_series adds 10 per slice position


def test_load_series_folder_resamples_to_one_shape(tmp_path):
    from scipy import ndimage

    from medfeat.io import load_series_folder, read_series

    shapes = [(4, 16, 16), (6, 20, 24), (5, 16, 16), (3, 12, 12)] * 2
    root = _series_root(tmp_path, shapes, ["normal", "mass"] * 4)
    with pytest.raises(ImageReadError, match="different shapes.*shape="):
        load_series_folder(root, progress=False)
    ds = load_series_folder(root, shape=(4, 16, 16), order=1, val_size=0.25, test_size=0.25,
                            progress=False)
    assert ds.train.images.shape[1:] == (4, 16, 16)
    # study01 (6, 20, 24) resampled by scipy.ndimage.zoom, trilinear
    src = read_series(root / "study01")[0]
    ref = ndimage.zoom(src, (4 / 6, 16 / 20, 16 / 24), order=1, mode="nearest")
    every = np.concatenate([ds.train.images, ds.val.images, ds.test.images])
    assert any(np.allclose(img, ref, atol=1e-3) for img in every)
    cubic = load_series_folder(root, shape=(4, 16, 16), order=3, val_size=0.25,
                               test_size=0.25, progress=False)
    assert not np.allclose(cubic.train.images, ds.train.images)
    for bad, match in (({"shape": (4, 16)}, "shape"), ({"order": 7}, "order")):
        with pytest.raises(ValueError, match=match):
            load_series_folder(root, progress=False, **bad)


def test_load_series_folder_class_folders_and_errors(tmp_path):
    from medfeat.io import is_series_folder, load_series_folder

    root = _series_root(tmp_path, [(3, 12, 12)] * 6, ["normal", "mass"] * 3, csv=False)
    assert is_series_folder(root)
    ds = load_series_folder(root, val_size=0.2, test_size=0.2, progress=False)
    assert ds.classes == ("mass", "normal") and sum(ds.sizes) == 6
    # a CSV naming a missing study
    other = tmp_path / "other"
    other.mkdir()
    (other / "labels.csv").write_text("folder,label\nnowhere,1\n")
    with pytest.raises(ImageReadError, match="not a sub-folder"):
        load_series_folder(other, progress=False)
    assert not is_series_folder(other)
    # class folders of 2-D DICOM images are an ImageFolder, not series
    flat = tmp_path / "flat"
    for c in ("a", "b"):
        (flat / c).mkdir(parents=True)
        import shutil

        from pydicom.data import get_testdata_file

        shutil.copy(get_testdata_file("CT_small.dcm"), flat / c / "x.dcm")
    assert not is_series_folder(flat)


def test_pipeline_load_routes_series_folders(tmp_path):
    from medfeat import pipeline

    root = _series_root(tmp_path, [(3, 12, 14)] * 8, ["0", "1"] * 4)
    ds = pipeline.load(root, val_size=0.25, test_size=0.25, progress=False)
    assert ds.train.images.shape[1:] == (3, 12, 14) and ds.classes == ("0", "1")
    ds = pipeline.load(root, shape=(4, 8, 8), val_size=0.25, test_size=0.25, progress=False)
    assert ds.train.images.shape[1:] == (4, 8, 8)
