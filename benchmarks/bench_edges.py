"""Benchmarks of the edge kernels: sobel, prewitt, canny.

asv classes time medfeat's backends next to scikit-image and OpenCV in the same class (OpenCV's
Sobel magnitude is cv2.Sobel dx + dy, CV_32F, ksize=3, then cv2.magnitude: another scale than
scikit-image's, same work; its Canny is cv2.GaussianBlur + cv2.Canny on the uint8 image, as OpenCV
needs 8-bit input). ``COMPARE_CASES`` feeds ``benchmarks/compare.py``. Libraries are imported inside
functions because asv imports this module at discovery.
"""

from __future__ import annotations

from benchmarks._common import have, real_image

try:
    from benchmarks.compare import Case
except ImportError:  # asv runs the suite from a copy where compare.py may be absent
    Case = None

SIZES = (512, 2048, 4096)
DTYPES = ("uint8", "uint16", "int16", "float32", "float64")
BACKENDS = ("auto", "numba")  # the family's one CPU backend (Cython's was the slower)


def _medfeat(name, backend, **kw):
    import medfeat.kernels.edges as mod

    fn = getattr(mod, name)
    return lambda img: fn(img, backend=backend, **kw)


def _cv_sobel(img):
    import cv2

    # OpenCV cannot write float32 from float64 input: keep float64 there
    depth = cv2.CV_64F if img.dtype.itemsize == 8 else cv2.CV_32F
    return cv2.magnitude(cv2.Sobel(img, depth, 1, 0, ksize=3), cv2.Sobel(img, depth, 0, 1, ksize=3))


def _cv_canny(img):
    """Gaussian blur (sigma 1, kernel size from sigma) then Canny with scikit-image's default
    thresholds scaled to uint8 (0.1 and 0.2 of 255)."""
    import cv2

    return cv2.Canny(cv2.GaussianBlur(img, (0, 0), 1.0), 25.5, 51.0)


def _to_uint8(img):
    import numpy as np

    if img.dtype == np.uint8:
        return img
    f = img.astype(np.float64)
    lo, hi = f.min(), f.max()
    return np.round((f - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)


def _peer(kind, impl, dtype):
    """The peer's function for this (kernel, implementation, dtype), or None if it has none."""
    if impl == "skimage":
        if kind == "canny":
            from skimage.feature import canny

            return canny
        import skimage.filters

        return getattr(skimage.filters, kind)
    if impl == "opencv" and have("cv2"):
        if kind == "sobel" and dtype in ("uint8", "uint16", "int16", "float32", "float64"):
            return _cv_sobel
        if kind == "canny":
            return lambda img: _cv_canny(_to_uint8(img))
    return None


class _Base:
    kind = ""
    params = (list(SIZES), list(DTYPES), [*BACKENDS, "skimage", "opencv"])
    param_names = ["size", "dtype", "impl"]
    timeout = 300

    def setup(self, size, dtype, impl):
        self.image = real_image(size, dtype)
        if impl in BACKENDS:
            self.fn = _medfeat(self.kind, impl)
        else:
            self.fn = _peer(self.kind, impl, dtype)
            if self.fn is None:
                raise NotImplementedError(f"{impl} has no {self.kind}")
            if impl == "opencv" and self.kind == "canny":
                # the uint8 conversion is OpenCV's input preparation, not its Canny
                img = _to_uint8(self.image)
                self.image = img
                self.fn = _cv_canny
        self.fn(self.image)  # compile / warm caches outside the timing


class TimeSobel(_Base):
    kind = "sobel"

    def time_sobel(self, size, dtype, impl):
        self.fn(self.image)


class TimePrewitt(_Base):
    kind = "prewitt"
    params = (list(SIZES), list(DTYPES), [*BACKENDS, "skimage"])

    def time_prewitt(self, size, dtype, impl):
        self.fn(self.image)


class TimeCanny(_Base):
    kind = "canny"

    def time_canny(self, size, dtype, impl):
        self.fn(self.image)


class TimeSobel3D:
    """A CT-like int16 volume; scikit-image is the only peer with 3-D Sobel."""

    params = ([64, 128], [*BACKENDS, "skimage"])
    param_names = ["size", "impl"]
    timeout = 300

    def setup(self, size, impl):
        import numpy as np

        # a stack of overlapping windows of one real slice: smooth along z, like a CT series
        plane = real_image(size * 2, "int16")
        self.image = np.ascontiguousarray(np.stack([plane[k: k + size, ::2]
                                                    for k in range(size)]))
        self.fn = _medfeat("sobel", impl) if impl in BACKENDS else _peer("sobel", impl, "int16")
        self.fn(self.image)

    def time_sobel_3d(self, size, impl):
        self.fn(self.image)


# ------------------------------------------------------------------------------------------------
# benchmarks/compare.py cases: float32, the targets at 2048²
# ------------------------------------------------------------------------------------------------


def _compare_cases():
    if Case is None:
        return []

    def make(size):
        return real_image(size, "float32")

    cases = []
    for kind, targets, peers in (
        ("sobel", {"skimage": 10, "opencv": 1 / 1.5}, ("skimage", "opencv")),
        ("prewitt", {"skimage": 10, "opencv": 1 / 1.5}, ("skimage", "opencv")),
    ):
        impls = {"medfeat": _medfeat(kind, "auto"),
                 "medfeat[numba]": _medfeat(kind, "numba")}
        impls["skimage"] = (lambda k: lambda img: _peer(k, "skimage", "float32")(img))(kind)
        # OpenCV has no Prewitt magnitude; its Sobel magnitude is the peer for both 3x3 operators
        impls["opencv"] = _cv_sobel if have("cv2") else None
        cases.append(Case(
            name=f"{kind} float32",
            make=make,
            impls=impls,
            targets=targets,
            compile_snippet=("import numpy as np; from medfeat.kernels import " + kind + "; "
                             + kind + "(np.ones((64, 64), np.float32), backend='numba')"),
        ))

    def make_canny(size):
        img = real_image(size, "float32")
        return img, _to_uint8(real_image(size, "uint8"))

    def canny_impl(backend):
        fn = _medfeat("canny", backend, sigma=1.0)
        return lambda pair: fn(pair[0])

    def sk_canny(pair):
        from skimage.feature import canny

        return canny(pair[0], sigma=1.0)

    cases.append(Case(
        name="canny float32 sigma=1",
        make=make_canny,
        impls={"medfeat": canny_impl("auto"), "medfeat[numba]": canny_impl("numba"), "skimage": sk_canny,
               "opencv": (lambda pair: _cv_canny(pair[1])) if have("cv2") else None},
        targets={"skimage": 10, "opencv": 1 / 2},
        compile_snippet=("import numpy as np; from medfeat.kernels import canny; "
                         "canny(np.ones((64, 64), np.float32), backend='numba')"),
        # medfeat reads the float32 image and writes the bool map (the pair's uint8 copy is OpenCV's)
        traffic=lambda pair: pair[0].nbytes + pair[0].size,
    ))

    def make_u8(size):
        return real_image(size, "uint8")

    def canny_u8(backend):
        fn = _medfeat("canny", backend, sigma=1.0)
        return lambda img: fn(img)

    def sk_canny_u8(img):
        from skimage.feature import canny

        return canny(img, sigma=1.0)

    # the same uint8 image for all three: OpenCV's native input, scikit-image's and medfeat's results
    # in float64 after img_as_float (thresholds 0.1 and 0.2 of 255 in all three)
    cases.append(Case(
        name="canny uint8 sigma=1",
        make=make_u8,
        impls={"medfeat": canny_u8("auto"), "skimage": sk_canny_u8,
               "opencv": _cv_canny if have("cv2") else None},
        targets={"skimage": 10, "opencv": 1},
        compile_snippet=("import numpy as np; from medfeat.kernels import canny; "
                         "canny(np.ones((64, 64), np.uint8), backend='numba')"),
    ))
    return cases


COMPARE_CASES = _compare_cases()
