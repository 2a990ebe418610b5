"""Throughput of medfeat.features: 28 x 28 (MedMNIST), 28^3 volumes and 256 x 256 images.

asv: ``TimeFeatures`` times one FeatureExtractor.transform over a batch of 64 CT-like phantom
slices (``medfeat.io.make_phantoms(size=256)``), per family and for all families, with 1 and 2
threads. As a script (``python -m benchmarks.bench_features``) it prints, for PneumoniaMNIST's
training images (28 x 28), AdrenalMNIST3D's training volumes (28^3; both from ``../shared/data``,
left out when absent) and 256 x 256 phantom slices:

- images/s for the default families with 1 and 2 workers, wall clock and per CPU-second of the
  process (so that a figure from a loaded machine still means something), with the load average
  around every figure (the machine is shared);
- CPU ms/image of each family (one worker);
- with ``--before REV``, the same figures for the ``medfeat.features`` package of commit ``REV``
  (taken with ``git archive`` and imported next to the current one, on the same kernels),
  alternating with the current code in this one process, and whether the two give the same
  values bit for bit;
- PyRadiomics' first-order + GLCM time and values on the same phantom slices when it is
  installed -- in this environment, or in another one named with ``--pyradiomics PYTHON`` (the
  script then runs itself there as a worker on the same images: PyRadiomics is no dependency of
  medfeat and, with NumPy 2, installs only from its source, see benchmarks/results/features-*.md).

Each image's kernels run on one thread (parallelism is over images, see FeatureExtractor).
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
    fx.transform(X[:8])
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


def _load_before(rev):
    """The ``medfeat.features`` package of commit ``rev``, imported as
    ``medfeat._features_before`` (its relative imports reach the current kernels)."""
    import importlib.util
    import sys

    repo = Path(__file__).resolve().parents[1]
    dest = Path(tempfile.mkdtemp(prefix="features-before-"))
    arch = subprocess.run(["git", "-C", str(repo), "archive", rev, "src/medfeat/features"],
                          check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=arch, check=True)
    pkg = dest / "src" / "medfeat" / "features"
    name = "medfeat._features_before"
    spec = importlib.util.spec_from_file_location(name, pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _cases(n28, n3d, n256):
    """``(label, images)`` of the benchmark: PneumoniaMNIST train (28^2), AdrenalMNIST3D train
    (28^3) when ``../shared/data`` has them, and CT-like phantom slices (256^2)."""
    data = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    out = []
    if (data / "pneumoniamnist.npz").exists() and n28:
        out.append(("28x28 PneumoniaMNIST", np.load(data / "pneumoniamnist.npz")
                    ["train_images"][:n28]))
    if (data / "adrenalmnist3d.npz").exists() and n3d:
        out.append(("28^3 AdrenalMNIST3D", np.load(data / "adrenalmnist3d.npz")
                    ["train_images"][:n3d]))
    if n256:
        out.append(("256x256 phantoms", images(n=n256)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="256 x 256 images (default 200)")
    ap.add_argument("--n28", type=int, default=2000,
                    help="28 x 28 PneumoniaMNIST images (default 2000; 0 leaves them out)")
    ap.add_argument("--n3d", type=int, default=100,
                    help="28^3 AdrenalMNIST3D volumes (default 100; 0 leaves them out)")
    ap.add_argument("--repeat", type=int, default=2, help="repeats, best kept (default 2)")
    ap.add_argument("--before", metavar="REV",
                    help="also time medfeat.features of commit REV (git archive), alternating")
    ap.add_argument("--families-only", action="store_true",
                    help="only the per-family breakdown")
    ap.add_argument("--pyradiomics", metavar="PYTHON",
                    help="python of an environment where PyRadiomics is installed")
    ap.add_argument("--pyradiomics-n", type=int, default=20,
                    help="images for the PyRadiomics comparison (default 20; 0 skips it)")
    ap.add_argument("--pyradiomics-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.pyradiomics_worker:
        return _pyradiomics_worker(*args.pyradiomics_worker)
    from medfeat import features as after

    versions = [("after", after)]
    if args.before:
        versions.insert(0, (f"before ({args.before})", _load_before(args.before)))
    print(f"cores: {os.cpu_count()}; OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}; versions: "
          f"{', '.join(v for v, _ in versions)}")
    for label, X in _cases(args.n28, args.n3d, args.n):
        print(f"\n== {label}: {X.shape} {X.dtype}")
        if not args.families_only:
            outputs = {}
            for n_jobs in (1, 2):
                for name, mod in versions:
                    fx = mod.FeatureExtractor(n_jobs=n_jobs).fit(X)
                    before = _load()
                    wall, cpu = _rate(fx, X, args.repeat)
                    print(f"{name:22s} n_jobs={n_jobs}: {wall:8.1f} images/s wall, "
                          f"{cpu:8.1f} per CPU-second; load {before} -> {_load()}", flush=True)
                    if n_jobs == 1:
                        outputs[name] = fx.transform(X)
            if len(outputs) == 2:
                a, b = outputs.values()
                same = a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))
                print(f"values of the two versions bit for bit equal: {same}")
        part = X[:max(4, min(len(X), 200 if X[0].size < 1000 else 32))]
        before = _load()
        for fam in FAMILIES:
            cells = []
            for name, mod in versions:
                fx = mod.FeatureExtractor(families=[fam]).fit(part)
                wall, cpu = _rate(fx, part, repeat=2)
                cells.append(f"{name} {1e3 / cpu:7.3f}")
            print(f"  {fam:13s} CPU ms/image, n_jobs=1: " + "  ".join(cells), flush=True)
        print(f"  (on {len(part)} images; load {before} -> {_load()})")

    if args.pyradiomics_n:
        from medfeat.features import FeatureExtractor

        Xp = images(n=args.pyradiomics_n)
        before = _load()
        out = _pyradiomics(Xp, args.pyradiomics)
        if out is None:
            print("PyRadiomics: not installed (give --pyradiomics PYTHON to use another "
                  "environment)")
        else:
            secs = np.array(out["seconds"])
            ours, _ = _rate(
                FeatureExtractor(families=["intensity", "histogram", "glcm"]).fit(Xp), Xp, 5)
            print(f"PyRadiomics {out['version']} (NumPy {out['numpy']}), firstorder + glcm, "
                  f"binCount 32, force2D, whole-image mask: {len(secs) / secs.sum():.1f} "
                  f"images/s (median {1e3 * np.median(secs):.1f} ms/image); medfeat intensity + "
                  f"histogram + glcm on the same {len(Xp)} images: {ours:.1f} images/s "
                  f"({ours / (len(secs) / secs.sum()):.0f}x); load {before} -> {_load()}")
            print("largest relative difference over the images, PyRadiomics vs medfeat:")
            for key, rel in _compare_pyradiomics(Xp, out).items():
                print(f"  {key:75s} {rel:.2e}")
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
