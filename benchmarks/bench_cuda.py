"""Benchmarks of the CUDA backend (numba.cuda): kernel time with and without host<->device transfer.

Two ways to time a GPU kernel, both reported:

- ``device``: the input already lives on the GPU and the result stays there (the call is followed by
  ``cuda.synchronize()`` so that the launch's work is inside the timing): the kernel's own cost,
  to compare with the card's memory bandwidth (bytes read + written per second).
- ``host``: a NumPy array in, a NumPy array out (``backend="cuda"``): one copy in, one copy out,
  what a caller holding NumPy arrays pays.

Sizes 512², 2048², 4096² of the real benchmark image (``benchmarks._common.real_image``), and a
batch of 10 000 images of 64x64 (``sobel(..., batch=True)``: one launch for the whole stack). The
CPU backends and scikit-image are timed in the same classes, so speed-ups come from one run.

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
CPU = ("cython", "numba")


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


# the kernels timed, with their arguments: (name, dtype, keyword arguments)
KERNELS = (
    ("sobel", "float32", {}),
    ("prewitt", "float32", {}),
    ("canny", "float32", {"sigma": 1.0}),
    ("histogram", "uint16", {"bins": 256}),
    ("threshold_otsu", "uint8", {}),
    ("normalize", "float32", {"method": "zscore"}),
    ("normalize", "int16", {"method": "window", "center": 40, "width": 400}),
)


class TimeCuda:
    """Each kernel on the GPU (``device`` and ``host`` timings) next to the CPU backends."""

    params = ([f"{n} {d} {kw.get('method', '')}".strip() for n, d, kw in KERNELS], list(SIZES),
              [*WHERE, *CPU])
    param_names = ["kernel", "size", "impl"]
    timeout = 300

    def setup(self, kernel, size, impl):
        if not real_gpu():
            raise NotImplementedError("no CUDA GPU here")
        from numba import cuda

        name, dtype, kw = KERNELS[self.params[0].index(kernel)]
        fn = _kernel(name)
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
    """Sobel of 10 000 images of 64x64: one launch on the GPU, image by image on the CPU."""

    params = ([*WHERE, *CPU, "skimage"],)
    param_names = ["impl"]
    timeout = 600

    def setup(self, impl):
        if not real_gpu():
            raise NotImplementedError("no CUDA GPU here")
        from numba import cuda

        self.stack = _stack()
        if impl == "device":
            self.stack = cuda.to_device(self.stack)
            self.fn = _on_device(_kernel("sobel"), batch=True)
        elif impl == "host":
            self.fn = _on_host(_kernel("sobel"), batch=True)
        elif impl == "skimage":
            import skimage.filters

            self.fn = lambda s: [skimage.filters.sobel(im) for im in s]
        else:
            self.fn = lambda s: _kernel("sobel")(s, backend=impl, batch=True)
        self.fn(self.stack)

    def time_sobel_batch(self, impl):
        self.fn(self.stack)


# ------------------------------------------------------------------------------------------------
# benchmarks/compare.py cases (empty without a real GPU)
# ------------------------------------------------------------------------------------------------


def _compare_cases():
    if Case is None or not real_gpu():
        return []
    from numba import cuda

    cases = []
    for name, dtype, kw in KERNELS:
        fn = _kernel(name)

        def make(size, dtype=dtype):
            a = real_image(size, dtype)
            return a, cuda.to_device(a)

        impls = {
            # "medfeat" is backend="auto", which picks cuda for the GPU array: kernel time only
            "medfeat": (lambda f, k: lambda p: (f(p[1], **k), cuda.synchronize()))(fn, kw),
            "medfeat[cuda+transfer]": (lambda f, k: lambda p: f(p[0], backend="cuda", **k))(fn, kw),
            "medfeat[cython]": (lambda f, k: lambda p: f(p[0], backend="cython", **k))(fn, kw),
            "medfeat[numba]": (lambda f, k: lambda p: f(p[0], backend="numba", **k))(fn, kw),
        }
        targets = {}
        if name in ("sobel", "prewitt"):
            import skimage.filters

            impls["skimage"] = (lambda g: lambda p: g(p[0]))(getattr(skimage.filters, name))
        if name == "canny":
            from skimage.feature import canny

            impls["skimage"] = lambda p: canny(p[0], sigma=1.0)
            targets = {"skimage": 50}  # the target on an H100
        label = f"{name} {dtype} {kw.get('method', '')}".strip()
        cases.append(Case(name=f"cuda {label}", make=make, impls=impls, targets=targets))

    def make_batch(size):
        # as many 64x64 images as a size² image has pixels (64 at 512², 4096 at 4096²), so the
        # per-megapixel column compares with the single-image rows; TimeCudaBatch does 10 000
        import numpy as np

        n = size * size // (BATCH_SIDE * BATCH_SIDE)
        s = np.ascontiguousarray(_stack()[:n])
        return s, cuda.to_device(s)

    sobel = _kernel("sobel")
    cases.append(Case(
        name="cuda sobel batch of 64x64 float32",
        make=make_batch,
        impls={
            "medfeat": lambda p: (sobel(p[1], batch=True), cuda.synchronize()),
            "medfeat[cuda+transfer]": lambda p: sobel(p[0], backend="cuda", batch=True),
            "medfeat[numba]": lambda p: sobel(p[0], backend="numba", batch=True),
        },
    ))
    return cases


COMPARE_CASES = _compare_cases()
