"""Benchmarks of the intensity kernels: normalize (zscore, minmax, percentile, window).

asv classes time medfeat's backends next to the plain NumPy expressions and OpenCV's ``normalize``
(min-max) in the same class; ``COMPARE_CASES`` feeds ``benchmarks/compare.py``. Libraries are
imported inside functions because asv imports this module at discovery.
"""

from __future__ import annotations

from benchmarks._common import have, real_image

SIZES = (512, 2048, 4096)
BACKENDS = ("auto", "cython")  # the family's one CPU backend (Numba's was the slower)
METHODS = ("zscore", "minmax", "percentile", "window")
# a soft-tissue-like window in each dtype's units (the benchmark image spans the dtype's useful
# range)
_WINDOW = {"uint8": (128, 100), "uint16": (32768, 25000), "int16": (40, 400),
           "float32": (0.5, 0.4), "float64": (0.5, 0.4)}


def _kwargs(method, dtype):
    if method == "window":
        c, w = _WINDOW[dtype]
        return {"center": c, "width": w}
    return {}


def _medfeat(method, backend, dtype):
    from medfeat.kernels.intensity import normalize

    kw = _kwargs(method, dtype)
    return lambda img: normalize(img, method, backend=backend, **kw)


def _numpy(method, dtype):
    """The plain NumPy expression a user would write (float64 statistics, float32 result)."""
    import numpy as np

    if method == "zscore":
        return lambda x: ((x - x.mean()) / x.std()).astype(np.float32)
    if method == "minmax":
        def minmax(x):
            lo, hi = x.min(), x.max()
            return ((x - lo) / (hi - lo)).astype(np.float32)
        return minmax
    if method == "percentile":
        def percentile(x):
            lo, hi = np.percentile(x, [1, 99])
            return np.clip((x - lo) / (hi - lo), 0, 1).astype(np.float32)
        return percentile
    c, w = _WINDOW[dtype]
    return lambda x: np.clip((x - (c - w / 2)) / w, 0, 1).astype(np.float32)


def _opencv(method):
    if method != "minmax" or not have("cv2"):
        return None

    def minmax(x):
        import cv2

        return cv2.normalize(x, None, 0.0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F)
    return minmax


class TimeNormalize:
    params = (list(SIZES), ["uint8", "uint16", "int16", "float32", "float64"], list(METHODS),
              [*BACKENDS, "numpy", "opencv"])
    param_names = ["size", "dtype", "method", "impl"]
    timeout = 300

    def setup(self, size, dtype, method, impl):
        self.image = real_image(size, dtype)
        if impl in BACKENDS:
            self.fn = _medfeat(method, impl, dtype)
        elif impl == "numpy":
            self.fn = _numpy(method, dtype)
        else:
            self.fn = _opencv(method)
            if self.fn is None:
                raise NotImplementedError(f"OpenCV has no {method} normalisation")
        self.fn(self.image)

    def time_normalize(self, size, dtype, method, impl):
        self.fn(self.image)


def _case(method, dtype, targets):
    from benchmarks.compare import Case

    impls = {
        "medfeat": _medfeat(method, "auto", dtype),
        "medfeat[cython]": _medfeat(method, "cython", dtype),
        "numpy": _numpy(method, dtype),
    }
    if _opencv(method) is not None:
        impls["opencv"] = _opencv(method)
    # compiled ahead of time (Cython): no first-call compile to measure
    return Case(name=f"normalize {method} {dtype}", make=lambda size: real_image(size, dtype),
                impls=impls, targets=targets)


COMPARE_CASES = [
    _case("zscore", "float32", {"numpy": 1.5}),
    _case("zscore", "int16", {}),
    _case("minmax", "float32", {"opencv": 1 / 1.5}),
    _case("percentile", "float32", {}),
    _case("percentile", "uint16", {}),
    _case("window", "int16", {}),
]
