"""make_phantom_volumes: the synthetic 3-D dataset, and both roads on it."""

import numpy as np
import pytest

from medfeat import pipeline
from medfeat.io import make_phantom_volumes, make_phantoms
from medfeat.io._phantoms import make_volumes


def test_shape_dtype_labels_and_determinism():
    ds = make_phantom_volumes(n=24, shape=(8, 32, 32), seed=3)
    images = np.concatenate([s.images for s in (ds.train, ds.val, ds.test)])
    labels = np.concatenate([s.labels for s in (ds.train, ds.val, ds.test)])
    assert images.shape == (24, 8, 32, 32) and images.dtype == np.uint8
    assert ds.classes == ("normal", "lesion") and ds.name == "phantom-volumes"
    assert labels.sum() == 12                                   # exactly half carry a lesion
    again = make_phantom_volumes(n=24, shape=(8, 32, 32), seed=3)
    np.testing.assert_array_equal(again.train.images, ds.train.images)
    assert not np.array_equal(make_phantom_volumes(n=24, shape=(8, 32, 32), seed=4).train.images,
                              ds.train.images)


def test_a_volume_is_one_abdomen_and_lesions_are_ellipsoids_in_it():
    vols, labels, masks = make_volumes(20, (12, 48, 48), 0)
    # neighbouring slices of one volume agree far better than the same slice of two volumes
    v = vols.astype(float)
    within = np.mean([np.corrcoef(v[i, 5].ravel(), v[i, 6].ravel())[0, 1] for i in range(20)])
    across = np.mean([np.corrcoef(v[i, 5].ravel(), v[i + 1, 5].ravel())[0, 1]
                      for i in range(19)])
    assert within > 0.9 and within > across + 0.05
    # lesions: only in label-1 volumes, on a few contiguous slices, widest in the middle
    assert not masks[labels == 0].any()
    for m in masks[labels == 1]:
        per_slice = m.sum(axis=(1, 2))
        zs = np.flatnonzero(per_slice)
        assert 1 <= zs.size <= 6 and np.all(np.diff(zs) == 1)
        assert per_slice[zs].argmax() not in (0, zs.size - 1) or zs.size <= 2
    # each lesion changes the image where it is: its voxels differ from the same voxels of the
    # volume drawn without it (the normal twin does not exist, so compare with the ring around)
    from scipy import ndimage
    diffs = []
    for vol, m in zip(v[labels == 1], masks[labels == 1]):
        ring = ndimage.binary_dilation(m, iterations=2) & ~ndimage.binary_dilation(m)
        diffs.append(abs(vol[m].mean() - vol[ring].mean()))
    assert np.median(diffs) > 8      # 40-70 HU through a 350 HU window is 29-51 grey levels,
    #                                  blurred and in noise


def test_slices_match_the_2d_phantoms_style():
    # the same window and value range as the 2-D phantoms: uint8 with air at 0
    vols = make_phantom_volumes(n=20, shape=(4, 32, 32), seed=0).train.images
    flat = make_phantoms(n=20, size=32, seed=0).train.images
    assert vols.min() == 0 and flat.min() == 0
    assert abs(np.median(vols) - np.median(flat)) < 40


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 10}, "n must be"), ({"n": True}, "n must be"),
    ({"shape": (3, 32, 32)}, "depth >= 4"), ({"shape": (8, 32, 40)}, "square"),
    ({"shape": (8, 16, 16)}, "at least 24"), ({"shape": (8, 32)}, "shape must be"),
    ({"shape": "big"}, "shape must be"), ({"shape": (8.5, 32, 32)}, "shape must be"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_phantom_volumes(**kwargs)


def test_pipeline_load_names():
    ds = pipeline.load("phantom-volumes", n=20, shape=(4, 24, 24), seed=2)
    ref = make_phantom_volumes(n=20, shape=(4, 24, 24), seed=2)
    np.testing.assert_array_equal(ds.test.images, ref.test.images)
    default = pipeline.load("default", n=20, seed=1)     # the embedded default's size
    assert default.train.images.shape[1:] == (pipeline.DEFAULT_PHANTOMS["size"],) * 2


def test_both_roads_run_on_non_cubic_volumes():
    # a 3-D set other than AdrenalMNIST3D's 28^3 cubes: 6 x 32 x 32, through the harness
    pytest.importorskip("keras")
    from medfeat.deep import DeepClassifier

    ds = make_phantom_volumes(n=40, shape=(6, 32, 32), seed=0)
    cnn = DeepClassifier("cnn", epochs=1, batch_size=8, seed=0, verbose=0,
                         model_options={"width": 4, "dense": 8})
    res = pipeline.compare(ds, methods={"logreg": "logreg", "cnn": cnn}, cv=2, progress=False,
                           log=None, n_boot=50)
    ev = res.evaluation
    assert set(ev.methods) == {"logreg", "cnn"}
    assert ev.methods["cnn"].estimator.model_kind_ == "cnn3d"     # the 3-D twin was built
    for r in ev.methods.values():
        assert r.proba.shape == (ds.sizes[2], 2) and np.isfinite(r.test["auc"])
