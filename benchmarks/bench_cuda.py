"""Benchmarks of the CUDA backend (numba.cuda): kernel time with and without host<->device transfer.

Two ways to time a GPU kernel, both reported:

- ``device``: the input already lives on the GPU and the result stays there (the call is followed by
  ``cuda.synchronize()`` so that the launch's work is inside the timing): the kernel's own cost,
  to compare with the card's memory bandwidth (bytes read + written per second).
- ``host``: a NumPy array in, a NumPy array out (``backend="cuda"``): one copy in, one copy out,
  what a caller holding NumPy arrays pays.

Sizes 512², 2048², 4096² of the real benchmark image (``benchmarks._common.real_image``), and a
batch of 10 000 images of 64x64 (``batch=True`` of Sobel, Canny with fixed and quantile thresholds,
opening, histogram, Otsu and normalize: one launch per stage for the whole stack). Quantile Canny
and percentile normalisation time the device radix select; every Canny times the union-find
hysteresis. The CPU backends and scikit-image are timed in the same classes, so speed-ups come
from one run.

Without a real CUDA GPU (none, or only the simulator) every asv benchmark is skipped (``setup``
raises ``NotImplementedError``) and ``COMPARE_CASES`` is empty. ``benchmarks/compare.py`` collects
this module once ``"cuda"`` is in its ``FAMILIES``. Libraries are imported inside functions because
asv imports this module at discovery.
"""

from __future__ import annotations

from benchmarks._common import real_image

try:
    from benchmarks.compare import Case
except ImportError:  # asv runs the suite from a copy where compare.py may be absent
    Case = None

SIZES = (512, 2048, 4096)
BATCH = 10_000
BATCH_SIDE = 64
WHERE = ("device", "host")
# the CPU side: "auto" on a NumPy array is each family's one CPU backend
CPU = ("auto",)


def real_gpu():
    """True when a real CUDA GPU is usable (the simulator does not count: its timings mean
    nothing)."""
    try:
        from numba import config, cuda
    except ImportError:
        return False
    try:
        return not config.ENABLE_CUDASIM and cuda.is_available()
    except Exception:  # a broken driver
        return False


def _kernel(name):
    import medfeat.kernels as K

    return getattr(K, name)


def _on_device(fn, **kw):
    """``fn`` on a GPU array, synchronised, so the timing holds the kernel's work."""
    from numba import cuda

    def call(d):
        out = fn(d, backend="cuda", **kw)
        cuda.synchronize()
        return out

    return call


def _on_host(fn, **kw):
    return lambda a: fn(a, backend="cuda", **kw)


def _stack(dtype="float32"):
    """``BATCH`` real 64x64 tiles (overlapping windows of the 4096² image)."""
    import numpy as np

    img = real_image(4096, dtype)
    step = (4096 - BATCH_SIDE) // 99
    tiles = [img[y: y + BATCH_SIDE, x: x + BATCH_SIDE]
             for y in range(0, 100 * step, step) for x in range(0, 100 * step, step)]
    return np.ascontiguousarray(np.stack(tiles[:BATCH]))


def _fp(kind):
    import medfeat.kernels as K

    return K.rectangle(3, 3) if kind == "rect3" else K.disk(5)


# the kernels timed: (label, name, dtype, keyword arguments); footprints by name ("rect3", "disk5")
KERNELS = (
    ("sobel float32", "sobel", "float32", {}),
    ("prewitt float32", "prewitt", "float32", {}),
    ("canny float32", "canny", "float32", {"sigma": 1.0}),
    ("canny float32 quantiles", "canny", "float32",
     {"sigma": 1.0, "use_quantiles": True, "low_threshold": 0.8, "high_threshold": 0.9}),
    ("erosion uint8 3x3", "erosion", "uint8", {"footprint": "rect3"}),
    ("dilation uint8 disk5", "dilation", "uint8", {"footprint": "disk5"}),
    ("histogram uint16", "histogram", "uint16", {"bins": 256}),
    ("threshold_otsu uint8", "threshold_otsu", "uint8", {}),
    ("normalize float32 zscore", "normalize", "float32", {"method": "zscore"}),
    ("normalize float32 percentile", "normalize", "float32", {"method": "percentile"}),
    ("normalize int16 window", "normalize", "int16", {"method": "window", "center": 40,
                                                      "width": 400}),
)

# the batch=True paths on the stack of BATCH 64x64 tiles: (label, name, dtype, keyword arguments)
BATCH_KERNELS = (
    ("sobel float32", "sobel", "float32", {}),
    ("canny float32", "canny", "float32", {"sigma": 1.0}),
    ("canny float32 quantiles", "canny", "float32",
     {"sigma": 1.0, "use_quantiles": True, "low_threshold": 0.8, "high_threshold": 0.9}),
    ("opening uint8 3x3", "opening", "uint8", {"footprint": "rect3"}),
    ("histogram uint8", "histogram", "uint8", {"bins": 64}),
    ("threshold_otsu uint8", "threshold_otsu", "uint8", {}),
    ("normalize float32 zscore", "normalize", "float32", {"method": "zscore"}),
    ("normalize float32 percentile", "normalize", "float32", {"method": "percentile"}),
)


def _args(kw):
    """``kw`` with footprint names replaced by the arrays."""
    return {k: (_fp(v) if k == "footprint" else v) for k, v in kw.items()}


def _skimage_peer(name, kw):
    """The scikit-image function doing the same on one image, or None."""
    if name in ("sobel", "prewitt"):
        import skimage.filters

        return getattr(skimage.filters, name)
    if name == "canny":
        from skimage.feature import canny

        return lambda a: canny(a, **kw)
    if name in ("erosion", "dilation", "opening"):
        import skimage.morphology

        f = getattr(skimage.morphology, name)
        return lambda a: f(a, kw["footprint"])
    return None


class TimeCuda:
    """Each kernel on the GPU (``device`` and ``host`` timings) next to the CPU backends."""

    params = ([label for label, *_ in KERNELS], list(SIZES), [*WHERE, *CPU])
    param_names = ["kernel", "size", "impl"]
    timeout = 300

    def setup(self, kernel, size, impl):
        if not real_gpu():
            raise NotImplementedError("no CUDA GPU here")
        from numba import cuda

        _, name, dtype, kw = KERNELS[self.params[0].index(kernel)]
        fn = _kernel(name)
        kw = _args(kw)
        self.image = real_image(size, dtype)
        if impl == "device":
            self.image = cuda.to_device(self.image)
            self.fn = _on_device(fn, **kw)
        elif impl == "host":
            self.fn = _on_host(fn, **kw)
        else:
            self.fn = lambda a: fn(a, backend=impl, **kw)
        self.fn(self.image)  # compile outside the timing

    def time_kernel(self, kernel, size, impl):
        self.fn(self.image)


class TimeCudaBatch:
    """``batch=True`` on 10 000 images of 64x64: one launch per stage on the GPU, image by image on
    the CPU backends, a loop over scikit-image where it has the function."""

    params = ([label for label, *_ in BATCH_KERNELS], [*WHERE, *CPU, "skimage"])
    param_names = ["kernel", "impl"]
    timeout = 600

    def setup(self, kernel, impl):
        if not real_gpu():
            raise NotImplementedError("no CUDA GPU here")
        from numba import cuda

        _, name, dtype, kw = BATCH_KERNELS[self.params[0].index(kernel)]
        kw = _args(kw)
        fn = _kernel(name)
        self.stack = _stack(dtype)
        if impl == "device":
            self.stack = cuda.to_device(self.stack)
            self.fn = _on_device(fn, batch=True, **kw)
        elif impl == "host":
            self.fn = _on_host(fn, batch=True, **kw)
        elif impl == "skimage":
            peer = _skimage_peer(name, kw)
            if peer is None:
                raise NotImplementedError(f"scikit-image has no {name}")
            self.fn = lambda s: [peer(im) for im in s]
        else:
            self.fn = lambda s: fn(s, backend=impl, batch=True, **kw)
        self.fn(self.stack)

    def time_batch(self, kernel, impl):
        self.fn(self.stack)


# ------------------------------------------------------------------------------------------------
# benchmarks/compare.py cases (empty without a real GPU)
# ------------------------------------------------------------------------------------------------


def _compare_cases():
    if Case is None or not real_gpu():
        return []
    from numba import cuda

    cases = []
    for label, name, dtype, kw in KERNELS:
        fn = _kernel(name)
        kw = _args(kw)

        def make(size, dtype=dtype):
            a = real_image(size, dtype)
            return a, cuda.to_device(a)

        impls = {
            # "medfeat" is backend="auto", which picks cuda for the GPU array: kernel time only
            "medfeat": (lambda f, k: lambda p: (f(p[1], **k), cuda.synchronize()))(fn, kw),
            "medfeat[cuda+transfer]": (lambda f, k: lambda p: f(p[0], backend="cuda", **k))(fn, kw),
            "medfeat[cpu]": (lambda f, k: lambda p: f(p[0], backend="auto", **k))(fn, kw),
        }
        targets = {}
        peer = _skimage_peer(name, kw)
        if peer is not None:
            impls["skimage"] = (lambda g: lambda p: g(p[0]))(peer)
        if name == "canny":
            targets = {"skimage": 50}  # the target on an H100
        cases.append(Case(name=f"cuda {label}", make=make, impls=impls, targets=targets))

    for label, name, dtype, kw in BATCH_KERNELS:
        fn = _kernel(name)
        kw = _args(kw)

        def make_batch(size, dtype=dtype):
            # as many 64x64 images as a size² image has pixels (64 at 512², 4096 at 4096²), so
            # the per-megapixel column compares with the single-image rows; TimeCudaBatch does
            # 10 000
            import numpy as np

            n = size * size // (BATCH_SIDE * BATCH_SIDE)
            s = np.ascontiguousarray(_stack(dtype)[:n])
            return s, cuda.to_device(s)

        impls = {
            "medfeat": (lambda f, k: lambda p: (f(p[1], batch=True, **k),
                                                cuda.synchronize()))(fn, kw),
            "medfeat[cuda+transfer]": (lambda f, k: lambda p: f(p[0], backend="cuda", batch=True,
                                                                 **k))(fn, kw),
            "medfeat[numba]": (lambda f, k: lambda p: f(p[0], backend="numba", batch=True,
                                                         **k))(fn, kw),
        }
        peer = _skimage_peer(name, kw)
        if peer is not None:
            impls["skimage"] = (lambda g: lambda p: [g(im) for im in p[0]])(peer)
        cases.append(Case(name=f"cuda batch of 64x64 {label}", make=make_batch, impls=impls))
    return cases


COMPARE_CASES = _compare_cases()
