"""Throughput of medfeat.features on 256 x 256 images (target: >= 100 images/s on 2 cores).

asv: ``TimeFeatures`` times one FeatureExtractor.transform over a batch of 64 CT-like phantom
slices (``medfeat.io.make_phantoms(size=256)``), per family and for all families, with 1 and 2
threads. As a script (``python -m benchmarks.bench_features``) it prints images/s for each
configuration, a per-family breakdown, the load average before and after (the machine is shared),
and PyRadiomics' first-order + GLCM time on the same images when it is installed.

Run it twice, plain and with ``OMP_WAIT_POLICY=passive``: on a loaded machine the Cython kernels'
OpenMP threads keep spinning after each parallel region and slow the kernels that follow (here the
density estimate went from 0.4 to 11-15 ms per image), which the passive policy avoids.
"""

from __future__ import annotations

import os
import time

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


def _rate(fx, X, repeat=3):
    fx.transform(X[:4])
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fx.transform(X)
        best = min(best, time.perf_counter() - t0)
    return len(X) / best


def _pyradiomics(X):
    try:
        import SimpleITK as sitk
        from radiomics import featureextractor
    except ImportError:
        return None
    ext = featureextractor.RadiomicsFeatureExtractor(binCount=32, force2D=True)
    ext.disableAllFeatures()
    ext.enableFeatureClassByName("firstorder")
    ext.enableFeatureClassByName("glcm")
    mask = sitk.GetImageFromArray(np.ones(X.shape[1:], np.uint8))
    t0 = time.perf_counter()
    for img in X:
        ext.execute(sitk.GetImageFromArray(img.astype(np.float32)), mask)
    return len(X) / (time.perf_counter() - t0)


def main():
    from medfeat.features import FeatureExtractor

    X = images(n=200)
    print(f"images: {X.shape} {X.dtype}; cores: {os.cpu_count()}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; "
          f"load average before: {os.getloadavg()}")
    for n_jobs in (1, 2):
        r = _rate(FeatureExtractor(n_jobs=n_jobs).fit(X), X)
        print(f"all families, n_jobs={n_jobs}: {r:7.1f} images/s")
    base = _rate(FeatureExtractor(families=["intensity", "histogram", "glcm"]).fit(X), X)
    print(f"IBSI families only (intensity, histogram, glcm), n_jobs=1: {base:7.1f} images/s")
    for fam in FAMILIES:
        r = _rate(FeatureExtractor(families=[fam]).fit(X), X[:64], repeat=2)
        print(f"  {fam:13s} n_jobs=1: {1e3 / r:6.2f} ms/image")
    py = _pyradiomics(X[:20])
    print("PyRadiomics (firstorder + glcm, binCount 32): "
          + ("not installed" if py is None else f"{py:.1f} images/s"))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
