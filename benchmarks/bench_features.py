"""Throughput of medfeat.features on 256 x 256 images (target: >= 100 images/s on 2 cores).

asv: ``TimeFeatures`` times one FeatureExtractor.transform over a batch of 64 CT-like phantom
slices (``medfeat.io.make_phantoms(size=256)``), per family and for all families, with 1 and 2
threads. As a script (``python -m benchmarks.bench_features``) it prints images/s for each
configuration (wall clock, and per CPU-second so that a figure from a loaded machine still means
something), a per-family breakdown from the same run, the load average around every figure (the
machine is shared), and PyRadiomics' first-order + GLCM time and values on the same images when it
is installed -- in this environment, or in another one named with ``--pyradiomics PYTHON`` (the
script then runs itself there as a worker on the same images: PyRadiomics is no dependency of
medfeat and, with NumPy 2, installs only from its source, see benchmarks/results/features-*.md).

The FeatureExtractor runs each image's kernels on one thread (parallelism is over images), so
its figures no longer depend on ``OMP_WAIT_POLICY``: before, on a loaded machine, the Cython
kernels' OpenMP threads kept spinning after each parallel region and the density estimate of one
256 x 256 image took 9-28 ms instead of 0.4 ms. The policy is still printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

N_IMAGES = 64
FAMILIES = ("intensity", "histogram", "glcm", "edges", "canny", "thresholds", "granulometry",
            "density")


def images(n=N_IMAGES, size=256):
    from medfeat.io import make_phantoms

    ds = make_phantoms(n=max(n, 20), size=size, seed=0, val_size=0.1, test_size=0.1)
    X = np.concatenate([ds.train.images, ds.val.images, ds.test.images])[:n]
    return np.ascontiguousarray(X)


class TimeFeatures:
    params = (("all",) + FAMILIES, (1, 2))
    param_names = ("families", "n_jobs")

    def setup(self, families, n_jobs):
        from medfeat.features import FeatureExtractor

        self.X = images()
        fams = None if families == "all" else [families]
        self.fx = FeatureExtractor(families=fams, n_jobs=n_jobs).fit(self.X)
        self.fx.transform(self.X[:2])                      # compile / warm caches

    def time_transform(self, families, n_jobs):
        self.fx.transform(self.X)


def _load():
    return tuple(round(x, 2) for x in os.getloadavg())


def _rate(fx, X, repeat=3):
    """Best of ``repeat``: (images per wall second, images per CPU second of the process)."""
    fx.transform(X[:4])
    wall = cpu = np.inf
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fx.transform(X)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return len(X) / wall, len(X) / cpu


# PyRadiomics' names of the features both define the same way (IBSI), and medfeat's names.
# PyRadiomics' kurtosis is Pearson's (excess + 3); its entropy and uniformity are those of the
# binned histogram, i.e. medfeat's histogram family.
PYRAD_FIRSTORDER = {
    "Mean": "mean", "Variance": "variance", "Skewness": "skewness", "Kurtosis": "kurtosis",
    "Median": "median", "Minimum": "minimum", "10Percentile": "p10", "90Percentile": "p90",
    "Maximum": "maximum", "InterquartileRange": "iqr", "Range": "range",
    "MeanAbsoluteDeviation": "mad", "RobustMeanAbsoluteDeviation": "rmad",
    "RootMeanSquared": "rms", "Energy": "energy", "Entropy": "histogram:entropy",
    "Uniformity": "histogram:uniformity",
}
PYRAD_GLCM = {
    "Autocorrelation": "autocorrelation", "JointAverage": "joint_average",
    "ClusterProminence": "cluster_prominence", "ClusterShade": "cluster_shade",
    "ClusterTendency": "cluster_tendency", "Contrast": "contrast", "Correlation": "correlation",
    "DifferenceAverage": "difference_average", "DifferenceEntropy": "difference_entropy",
    "DifferenceVariance": "difference_variance", "JointEnergy": "angular_second_moment",
    "JointEntropy": "joint_entropy", "Imc1": "information_correlation_1",
    "Imc2": "information_correlation_2", "Idm": "inverse_difference_moment",
    "Idmn": "normalised_inverse_difference_moment", "Id": "inverse_difference",
    "Idn": "normalised_inverse_difference", "InverseVariance": "inverse_variance",
    "MaximumProbability": "joint_maximum", "SumAverage": "sum_average",
    "SumEntropy": "sum_entropy", "SumSquares": "joint_variance",
}
PYRAD_SETTINGS = {"binCount": 32, "force2D": True}


def _pyradiomics_worker(src, dst):
    """Run inside an environment with PyRadiomics: features and seconds of every image of the
    ``.npy`` stack ``src`` (the first image once before timing), written as JSON to ``dst``."""
    import logging

    import radiomics
    import SimpleITK as sitk
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    X = np.load(src)
    ext = featureextractor.RadiomicsFeatureExtractor(**PYRAD_SETTINGS)
    ext.disableAllFeatures()
    ext.enableFeatureClassByName("firstorder")
    ext.enableFeatureClassByName("glcm")
    # Each image goes in as a volume of one slice: given a 2-D image, PyRadiomics' force2D takes
    # its first axis (rows) as the out-of-plane one and counts GLCM pairs along the columns only.
    mask = sitk.GetImageFromArray(np.ones((1,) + X.shape[1:], np.uint8))
    ext.execute(sitk.GetImageFromArray(X[0][None].astype(np.float32)), mask)
    feats, secs = [], []
    for img in X:
        t0 = time.perf_counter()
        r = ext.execute(sitk.GetImageFromArray(img[None].astype(np.float32)), mask)
        secs.append(time.perf_counter() - t0)
        feats.append({k[len("original_"):]: float(v) for k, v in r.items()
                      if k.startswith("original_")})
    Path(dst).write_text(json.dumps({"version": radiomics.__version__, "numpy": np.__version__,
                                     "seconds": secs, "features": feats}))


def _pyradiomics(X, python=None):
    """PyRadiomics on ``X``: in this process when it imports, else in ``python``; or None."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "images.npy", Path(tmp) / "out.json"
        np.save(src, X)
        try:
            import radiomics  # noqa: F401
            _pyradiomics_worker(src, dst)
        except ImportError:
            if python is None:
                return None
            subprocess.run([python, str(Path(__file__).resolve()), "--pyradiomics-worker",
                            str(src), str(dst)], check=True, cwd=tmp)
        return json.loads(dst.read_text())


def _compare_pyradiomics(X, out):
    """Largest relative difference per shared feature between PyRadiomics and medfeat."""
    from medfeat.features import glcm_features, histogram_stats, intensity_stats

    diffs = {}
    for img, theirs in zip(X, out["features"]):
        ours = intensity_stats(img)
        hist = histogram_stats(img, bins=32)
        ours["kurtosis"] += 3.0                      # Pearson's kurtosis in PyRadiomics
        glcm = glcm_features(img, levels=32)
        for cls, table in (("firstorder", PYRAD_FIRSTORDER), ("glcm", PYRAD_GLCM)):
            for name, mine in table.items():
                if cls == "glcm":
                    a = glcm[mine]
                elif mine.startswith("histogram:"):
                    a = hist[mine.split(":")[1]]
                else:
                    a = ours[mine]
                b = theirs[f"{cls}_{name}"]
                rel = abs(a - b) / max(abs(a), abs(b), 1e-12)
                key = f"{cls}:{name} / {mine}"
                diffs[key] = max(diffs.get(key, 0.0), rel)
    return diffs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="images (default 200)")
    ap.add_argument("--repeat", type=int, default=3, help="repeats, best kept (default 3)")
    ap.add_argument("--pyradiomics", metavar="PYTHON",
                    help="python of an environment where PyRadiomics is installed")
    ap.add_argument("--pyradiomics-n", type=int, default=20,
                    help="images for the PyRadiomics comparison (default 20)")
    ap.add_argument("--pyradiomics-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.pyradiomics_worker:
        return _pyradiomics_worker(*args.pyradiomics_worker)
    from medfeat.features import FeatureExtractor

    X = images(n=args.n)
    print(f"images: {X.shape} {X.dtype}; cores: {os.cpu_count()}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    for n_jobs in (1, 2):
        before = _load()
        wall, cpu = _rate(FeatureExtractor(n_jobs=n_jobs).fit(X), X, args.repeat)
        print(f"all families, n_jobs={n_jobs}: {wall:7.1f} images/s wall, {cpu:7.1f} images per "
              f"CPU-second; load {before} -> {_load()}")
    before = _load()
    base, base_cpu = _rate(FeatureExtractor(families=["intensity", "histogram", "glcm"]).fit(X),
                           X, args.repeat)
    print(f"IBSI families only (intensity, histogram, glcm), n_jobs=1: {base:7.1f} images/s "
          f"wall, {base_cpu:7.1f} per CPU-second; load {before} -> {_load()}")
    before = _load()
    for fam in FAMILIES:
        wall, cpu = _rate(FeatureExtractor(families=[fam]).fit(X), X[:64], repeat=2)
        print(f"  {fam:13s} n_jobs=1: {1e3 / wall:6.2f} ms/image wall, {1e3 / cpu:6.2f} CPU ms")
    print(f"  (load {before} -> {_load()})")

    Xp = X[:args.pyradiomics_n]
    before = _load()
    out = _pyradiomics(Xp, args.pyradiomics)
    if out is None:
        print("PyRadiomics: not installed (give --pyradiomics PYTHON to use another environment)")
    else:
        secs = np.array(out["seconds"])
        ours, _ = _rate(
            FeatureExtractor(families=["intensity", "histogram", "glcm"]).fit(Xp), Xp, 5)
        print(f"PyRadiomics {out['version']} (NumPy {out['numpy']}), firstorder + glcm, "
              f"binCount 32, force2D, whole-image mask: {len(secs) / secs.sum():.1f} images/s "
              f"(median {1e3 * np.median(secs):.1f} ms/image); medfeat intensity + histogram + "
              f"glcm on the same {len(Xp)} images: {ours:.1f} images/s "
              f"({ours / (len(secs) / secs.sum()):.0f}x); load {before} -> {_load()}")
        print("largest relative difference over the images, PyRadiomics vs medfeat:")
        for key, rel in _compare_pyradiomics(Xp, out).items():
            print(f"  {key:75s} {rel:.2e}")
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
