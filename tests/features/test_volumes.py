"""Every feature family on real 3-D volumes, against a reference computed with NumPy, SciPy or
scikit-image on the same volume: CT (12 windows of pydicom's CT_small), pydicom's multi-frame RT
dose grid read with medfeat.io.read_dicom (always present), and AdrenalMNIST3D (28^3, when
../shared/data is present)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from skimage import feature, filters, morphology

from medfeat import kernels
from medfeat.features import (DEFAULT_FAMILIES, FAMILIES, FeatureExtractor, canny_density,
                              density_summary, edge_stats, glcm_features, granulometry,
                              histogram_stats, intensity_stats, threshold_fractions)

from ..conftest import SHARED_DATA, load_volume

VOLUMES = ("ct", "rtdose", "adrenal")


def _read(name):
    if name == "ct":
        return load_volume()
    if name == "rtdose":
        from pydicom.data import get_testdata_file

        from medfeat.io import read_dicom

        vol = read_dicom(get_testdata_file("rtdose.dcm"))  # multi-frame: (frames, rows, cols)
        assert vol.ndim == 3 and vol.shape[0] > 1
        return vol
    path = SHARED_DATA / "adrenalmnist3d.npz"
    if not path.is_file():
        pytest.skip("../shared/data/adrenalmnist3d.npz is not present")
    with np.load(path) as npz:
        vols, labels = npz["test_images"], npz["test_labels"].ravel()
    return vols[np.flatnonzero(labels == 1)[0]]  # an adrenal mass


@pytest.fixture(params=VOLUMES)
def real_volume(request):
    vol = _read(request.param)
    assert vol.ndim == 3 and np.ptp(vol) > 0
    return vol


def _unit(vol):
    v = vol.astype(np.float64)
    return (v - v.min()) / (v.max() - v.min())


def test_first_order_on_volumes(real_volume):
    x = real_volume.astype(np.float64).ravel()
    f = intensity_stats(real_volume)
    assert f["mean"] == pytest.approx(x.mean())
    assert f["variance"] == pytest.approx(x.var())
    assert f["skewness"] == pytest.approx(stats.skew(x))
    assert f["kurtosis"] == pytest.approx(stats.kurtosis(x))
    for name, q in (("median", 50), ("p10", 10), ("p90", 90)):
        assert f[name] == pytest.approx(np.percentile(x, q))
    assert f["energy"] == pytest.approx((x ** 2).sum())
    # histogram features on 16 fixed bins: levels floor(16 (x - min) / range) + 1, top in bin 16
    h = histogram_stats(real_volume, bins=16)
    levels = np.minimum(np.floor(16 * (x - x.min()) / np.ptp(x)), 15) + 1
    p = np.bincount(levels.astype(int), minlength=17)[1:] / x.size
    nz = p[p > 0]
    assert h["entropy"] == pytest.approx(-(nz * np.log2(nz)).sum())
    assert h["uniformity"] == pytest.approx((p ** 2).sum())
    assert h["mode"] == np.argmax(p) + 1
    assert h["mean"] == pytest.approx(levels.mean())


def _glcm_reference(vol, ng):
    """Symmetric co-occurrence matrices of the 13 directions of the 26-neighbourhood, by
    counting pairs with np.add.at (independent of medfeat's counting)."""
    x = vol.astype(np.float64)
    q = (np.minimum(np.floor(ng * (x - x.min()) / np.ptp(x)), ng - 1)).astype(int)
    dirs = [d for d in itertools.product((-1, 0, 1), repeat=3) if d > (0, 0, 0)]
    mats = []
    for d in dirs:
        a = q[tuple(slice(max(0, -o), q.shape[k] - max(0, o)) for k, o in enumerate(d))]
        b = q[tuple(slice(max(0, o), q.shape[k] - max(0, -o)) for k, o in enumerate(d))]
        m = np.zeros((ng, ng))
        np.add.at(m, (a.ravel(), b.ravel()), 1)
        mats.append(m + m.T)
    return np.asarray(mats)


def _glcm_props(m):
    p = m / m.sum()
    i, j = np.indices(p.shape) + 1
    mu_i, mu_j = (i * p).sum(), (j * p).sum()
    sd_i, sd_j = np.sqrt(((i - mu_i) ** 2 * p).sum()), np.sqrt(((j - mu_j) ** 2 * p).sum())
    nz = p[p > 0]
    return {"contrast": ((i - j) ** 2 * p).sum(), "angular_second_moment": (p ** 2).sum(),
            "joint_entropy": -(nz * np.log2(nz)).sum(),
            "correlation": ((i - mu_i) * (j - mu_j) * p).sum() / (sd_i * sd_j),
            "joint_average": mu_i}


def test_glcm_3d_on_volumes(real_volume):
    ref = _glcm_reference(real_volume, 16)
    average = glcm_features(real_volume, levels=16, aggregation="3d_average")
    merged = glcm_features(real_volume, levels=16, aggregation="3d_merged")
    per_dir = [_glcm_props(m) for m in ref]
    whole = _glcm_props(ref.sum(axis=0))
    for name in ("contrast", "angular_second_moment", "joint_entropy", "correlation",
                 "joint_average"):
        assert average[name] == pytest.approx(np.mean([d[name] for d in per_dir]), rel=1e-9)
        assert merged[name] == pytest.approx(whole[name], rel=1e-9)
    # the default for a volume is the 3-D average
    assert glcm_features(real_volume, levels=16) == pytest.approx(average)


def test_edges_on_volumes_match_skimage_3d(real_volume):
    unit = _unit(real_volume)
    for op, ref in (("sobel", filters.sobel), ("prewitt", filters.prewitt)):
        mag = ref(unit)  # scikit-image's n-D magnitude: 3-D kernels on a volume
        f = edge_stats(real_volume, operator=op)
        assert f["mean"] == pytest.approx(mag.mean(), rel=1e-6, abs=1e-9)
        assert f["std"] == pytest.approx(mag.std(), rel=1e-5, abs=1e-9)
        assert f["p50"] == pytest.approx(np.percentile(mag, 50), rel=1e-6, abs=1e-9)
        assert f["p90"] == pytest.approx(np.percentile(mag, 90), rel=1e-6, abs=1e-9)
        assert f["max"] == pytest.approx(mag.max(), rel=1e-6)
    # Canny is 2-D: slice by slice along the first axis, as scikit-image's canny per slice
    edges = np.stack([feature.canny(s, 1.0, 0.1, 0.2) for s in unit])
    assert canny_density(real_volume)["density"] == pytest.approx(edges.mean())


def test_thresholds_on_volumes(real_volume):
    vals = real_volume.ravel()
    f = threshold_fractions(real_volume)
    t = filters.threshold_otsu(real_volume)
    assert f["otsu_fraction"] == pytest.approx(np.mean(vals > t), abs=1e-12)
    lo, hi = float(vals.min()), float(vals.max())
    assert f["otsu_level"] == pytest.approx((t - lo) / (hi - lo), abs=1e-6)
    # the max-entropy threshold, from the kernel on the whole volume
    tm = float(kernels.threshold_maxent(real_volume))
    assert f["maxent_fraction"] == pytest.approx(np.mean(vals > tm), abs=1e-12)


def test_granulometry_on_volumes_uses_balls(real_volume):
    radii = (1, 2)
    g = granulometry(real_volume, radii=radii)
    work = real_volume.astype(np.float64) - float(real_volume.min())
    sums = [work.sum()] + [morphology.opening(work, morphology.ball(r)).sum() for r in radii]
    for k, r in enumerate(radii):
        assert g[f"r{r}"] == pytest.approx((sums[k] - sums[k + 1]) / sums[0], rel=1e-5,
                                           abs=1e-9)
    # a disk per slice would not be the same spectrum
    flat = [work.sum()] + [morphology.opening(work, morphology.disk(1)[None]).sum()]
    assert not np.isclose((flat[0] - flat[1]) / flat[0], g["r1"])


def test_density_on_volumes_matches_gaussian_kde(real_volume):
    vals = real_volume.astype(np.float64).ravel()
    f = density_summary(real_volume, grid_size=256)
    grid, _ = kernels.density(vals, grid_size=256)
    pdf = stats.gaussian_kde(vals)(grid)  # Scott's rule, as the kernel
    lo, span = vals.min(), np.ptp(vals)
    assert f["peak_level"] == pytest.approx((grid[np.argmax(pdf)] - lo) / span, abs=2e-2)
    assert f["peak_height"] == pytest.approx(pdf.max() * span, rel=1e-2)


def test_extractor_on_a_stack_of_real_volumes(real_volume):
    vols = np.stack([real_volume, real_volume[::-1, ::-1].copy()])
    fx = FeatureExtractor(bins=16)
    X = fx.fit_transform(vols)
    names = list(fx.get_feature_names_out())
    assert X.shape == (2, sum(len(FAMILIES[f]) for f in DEFAULT_FAMILIES)) and np.all(np.isfinite(X))
    row = dict(zip(names, X[0]))
    assert row["intensity__mean"] == pytest.approx(intensity_stats(real_volume)["mean"])
    assert row["glcm__contrast"] == pytest.approx(
        glcm_features(real_volume, levels=16)["contrast"])
    assert row["granulometry__r2"] == pytest.approx(granulometry(real_volume)["r2"])
    assert row["edges__sobel_max"] == pytest.approx(edge_stats(real_volume)["max"])
    # flipping a volume keeps the first-order features
    np.testing.assert_allclose(X[1, :len(FAMILIES["intensity"])],
                               X[0, :len(FAMILIES["intensity"])], rtol=1e-9)
