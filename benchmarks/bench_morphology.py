"""Benchmarks of the morphology kernels: erosion, dilation, opening, closing, binary_erosion.

asv classes time medfeat's backends next to scikit-image and OpenCV in the same class, on the same
real image (camera resized) and footprint; ``COMPARE_CASES`` feeds ``benchmarks/compare.py``
with the issue's targets at 2048². OpenCV runs with ``BORDER_REFLECT`` for the grey operations
(scikit-image's default 'reflect') and its default border for the binary ones (neutral, like
'ignore').
Libraries are imported inside functions because asv imports this module at discovery.
"""

from __future__ import annotations

import functools

from benchmarks._common import have, real_image

SIZES = (512, 2048, 4096)
BACKENDS = ("auto", "numba")  # the family's one CPU backend (Cython's was the slower)
DTYPES = ("uint8", "uint16", "int16", "float32", "float64")


@functools.lru_cache(maxsize=None)
def _footprint(name):
    """The footprint called ``name`` ('square3', 'disk5', ...), built on first use."""
    import medfeat.kernels.morphology as mm
    import numpy as np

    if name == "square3":
        return np.ones((3, 3), np.uint8)
    if name == "square15":
        return np.ones((15, 15), np.uint8)
    kind, radius = name[:-1], int(name[-1])
    return getattr(mm, kind)(radius)


def _medfeat(kind, footprint, backend):
    def run(img):
        import medfeat.kernels.morphology as mm

        return getattr(mm, kind)(img, _footprint(footprint), backend=backend)

    return run


def _skimage(kind, footprint):
    def run(img):
        import warnings

        import skimage.morphology as skm

        with warnings.catch_warnings():  # binary_* are deprecated in scikit-image 0.26
            warnings.simplefilter("ignore", FutureWarning)
            return getattr(skm, kind)(img, _footprint(footprint))

    return run


_CV_OPS = ("erosion", "dilation", "opening", "closing", "binary_erosion", "binary_dilation")


def _opencv(kind, footprint):
    """cv2's version of ``kind`` (the footprint as a uint8 kernel), or None if it has none."""
    if kind not in _CV_OPS or not have("cv2"):
        return None

    def run(img):
        import cv2
        import numpy as np

        k = np.ascontiguousarray(_footprint(footprint), dtype=np.uint8)
        if kind.startswith("binary"):
            # a bool mask seen as 0/1 bytes; the default border is neutral, like mode='ignore'
            op = cv2.erode if kind == "binary_erosion" else cv2.dilate
            return op(img.view(np.uint8), k).view(bool)
        reflect = {"borderType": cv2.BORDER_REFLECT}
        if kind == "erosion":
            return cv2.erode(img, k, **reflect)
        if kind == "dilation":
            return cv2.dilate(img, k, **reflect)
        op = cv2.MORPH_OPEN if kind == "opening" else cv2.MORPH_CLOSE
        return cv2.morphologyEx(img, op, k, **reflect)

    return run


class _Base:
    kind = ""
    footprint = "disk5"
    params = (list(SIZES), list(DTYPES), [*BACKENDS, "skimage", "opencv"])
    param_names = ["size", "dtype", "impl"]
    timeout = 600

    def setup(self, size, dtype, impl):
        self.image = real_image(size, dtype)
        fp = self.footprint
        if impl in BACKENDS:
            self.fn = _medfeat(self.kind, fp, impl)
        elif impl == "skimage":
            self.fn = _skimage(self.kind, fp)
        else:
            self.fn = _opencv(self.kind, fp)
            if self.fn is None:
                raise NotImplementedError(f"{impl} has no {self.kind}")
        self.fn(self.image)  # compile / warm caches outside the timing

    def time_op(self, size, dtype, impl):
        self.fn(self.image)


class TimeErosionSquare3(_Base):
    kind = "erosion"
    footprint = "square3"


class TimeErosionSquare15(_Base):
    kind = "erosion"
    footprint = "square15"


class TimeDilationDisk5(_Base):
    kind = "dilation"


class TimeOpeningDisk5(_Base):
    kind = "opening"


class TimeClosingDisk5(_Base):
    kind = "closing"


class TimeBinaryErosionDisk5(_Base):
    kind = "binary_erosion"
    params = (list(SIZES), ["bool"], [*BACKENDS, "skimage", "opencv"])


class TimeBinaryDilationDisk5(_Base):
    kind = "binary_dilation"
    params = (list(SIZES), ["bool"], [*BACKENDS, "skimage", "opencv"])


# --------------------------------------------------------------------------------------------------
# benchmarks/compare.py


def _case(kind, footprint, dtype, targets=None, opencv=True):
    from benchmarks.compare import Case

    fp = footprint
    impls = {
        "medfeat": _medfeat(kind, fp, "auto"),
        "medfeat[numba]": _medfeat(kind, fp, "numba"),
        "skimage": _skimage(kind, fp),
    }
    if opencv:
        impls["opencv"] = _opencv(kind, fp)
    boxes = {"square3": "np.ones((3, 3), np.uint8)", "square15": "np.ones((15, 15), np.uint8)"}
    fp_code = boxes.get(footprint, f"{footprint[:-1]}({footprint[-1]})")
    snippet = (
        f"import numpy as np; from medfeat.kernels import {kind}, disk, diamond; "
        f"{kind}(np.ones((64, 64), np.{dtype}), {fp_code}, backend='numba')"
    )
    return Case(
        name=f"morph.{kind} {footprint} {dtype}",
        make=lambda size: real_image(size, dtype),
        impls=impls,
        targets=targets or {},
        compile_snippet=snippet,
    )


def _cases():
    return [
        _case("erosion", "square3", "uint8", {"skimage": 20, "opencv": 1 / 4}),
        _case("dilation", "disk5", "uint8", {"skimage": 10, "opencv": 1 / 4}),
        _case("opening", "disk5", "uint16", {"skimage": 10}),
        _case("binary_erosion", "disk5", "bool"),
        _case("erosion", "square15", "float32"),
        _case("closing", "disk5", "int16"),
    ]


COMPARE_CASES = _cases()
