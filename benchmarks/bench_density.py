"""Benchmarks of the density kernels: histogram, threshold_otsu, threshold_maxent, density.

asv classes time medfeat's backends next to NumPy, scikit-image and OpenCV in the same class (an
implementation that lacks a dtype is skipped); ``COMPARE_CASES`` feeds ``benchmarks/compare.py``.
Libraries are imported inside functions because asv imports this module at discovery.
"""

from __future__ import annotations

from benchmarks._common import have, real_image

SIZES = (512, 2048, 4096)
BACKENDS = ("auto", "cython")  # the family's one CPU backend (Numba's was the slower)


def _medfeat(name, backend, **kw):
    from medfeat import kernels

    fn = getattr(kernels, name)
    return lambda img: fn(img, backend=backend, **kw)


def _cv_hist(img):
    import cv2

    hi = 256 if img.dtype.itemsize == 1 else 65536
    return cv2.calcHist([img], [0], None, [256], [0, hi])


def _cv_otsu(img):
    import cv2

    return cv2.threshold(img, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]


def _peer(kind, impl, dtype):
    """The peer's function for this (kernel, implementation, dtype), or None if it has none."""
    import numpy as np

    if kind == "histogram":
        if impl == "numpy":
            return lambda img: np.histogram(img, bins=256)
        if impl == "opencv" and dtype in ("uint8", "uint16") and have("cv2"):
            return _cv_hist
    if kind == "threshold_otsu":
        if impl == "skimage":
            from skimage.filters import threshold_otsu

            return threshold_otsu
        if impl == "opencv" and dtype == "uint8" and have("cv2"):
            return _cv_otsu
    return None


class _Base:
    kind = ""
    peers = ()
    params = (list(SIZES), ["uint8", "uint16", "int16", "float32", "float64"], list(BACKENDS))
    param_names = ["size", "dtype", "impl"]
    timeout = 300

    def setup(self, size, dtype, impl):
        self.image = real_image(size, dtype)
        if impl in BACKENDS:
            self.fn = _medfeat(self.kind, impl)
        else:
            self.fn = _peer(self.kind, impl, dtype)
            if self.fn is None:
                raise NotImplementedError(f"{impl} has no {self.kind} for {dtype}")
        self.fn(self.image)  # compile / warm caches outside the timing


class TimeHistogram(_Base):
    kind = "histogram"
    params = (list(SIZES), ["uint8", "uint16", "int16", "float32", "float64"],
              [*BACKENDS, "numpy", "opencv"])

    def time_histogram(self, size, dtype, impl):
        self.fn(self.image)


class TimeThresholdOtsu(_Base):
    kind = "threshold_otsu"
    params = (list(SIZES), ["uint8", "uint16", "int16", "float32", "float64"],
              [*BACKENDS, "skimage", "opencv"])

    def time_threshold_otsu(self, size, dtype, impl):
        self.fn(self.image)


class TimeThresholdMaxent(_Base):
    kind = "threshold_maxent"
    params = (list(SIZES), ["uint8", "uint16", "float32"], list(BACKENDS))

    def time_threshold_maxent(self, size, dtype, impl):
        self.fn(self.image)


class TimeDensity(_Base):
    kind = "density"
    params = (list(SIZES), ["uint8", "uint16", "float32"], list(BACKENDS))

    def time_density(self, size, dtype, impl):
        self.fn(self.image)


def _case(name, kind, dtype, peers, targets, **kw):
    from benchmarks.compare import Case

    impls = {
        "medfeat": _medfeat(kind, "auto", **kw),
        "medfeat[cython]": _medfeat(kind, "cython", **kw),
    }
    for label in peers:
        impls[label] = _peer(kind, label, dtype)
    # compiled ahead of time (Cython): no first-call compile to measure
    return Case(name=name, make=lambda size, dt=dtype: real_image(size, dt), impls=impls,
                targets=targets)


COMPARE_CASES = [
    _case("histogram uint16", "histogram", "uint16", ("numpy", "opencv"),
          {"numpy": 3, "opencv": 1 / 1.5}),
    _case("histogram uint8", "histogram", "uint8", ("numpy", "opencv"), {"opencv": 1 / 1.5}),
    _case("histogram float32", "histogram", "float32", ("numpy",), {}),
    _case("threshold_otsu uint16", "threshold_otsu", "uint16", ("skimage",), {"skimage": 3}),
    _case("threshold_otsu uint8", "threshold_otsu", "uint8", ("skimage", "opencv"),
          {"opencv": 1 / 1.5}),
    _case("threshold_otsu float32", "threshold_otsu", "float32", ("skimage",), {}),
    _case("threshold_maxent uint16", "threshold_maxent", "uint16", (), {}),
    _case("threshold_maxent float32", "threshold_maxent", "float32", (), {}),
    _case("density float32", "density", "float32", (), {}),
    _case("density uint16", "density", "uint16", (), {}),
]
