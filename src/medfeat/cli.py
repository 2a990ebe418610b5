"""The ``medfeat`` command.

Subcommands (more arrive with later issues):

- ``medfeat info``: versions, kernel backends that work here (and why the others do not), CPU threads,
  the GPU if any.
- ``medfeat demo [--image NAME] [--out DIR]``: runs every kernel on a real medical image (pydicom's
  CT_small by default), prints what each returned and how long it took, and optionally writes PNGs.

Exit codes: 0 on success, 2 on bad arguments (one-line message on stderr), 1 on other failures.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

DEMO_IMAGES = ("ct_small", "mr_small", "camera", "microaneurysms")


def _versions():
    import importlib

    out = []
    for mod in ("medfeat", "numpy", "scipy", "numba", "llvmlite", "Cython", "skimage", "pydicom"):
        try:
            out.append((mod, getattr(importlib.import_module(mod), "__version__", "?")))
        except ImportError:
            out.append((mod, "not installed"))
    return out


def _gpu_name():
    try:
        from numba import cuda

        if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
            return "CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
        if cuda.is_available():
            return cuda.get_current_device().name.decode() if isinstance(
                cuda.get_current_device().name, bytes) else str(cuda.get_current_device().name)
    except Exception:  # no driver, broken driver: report as no GPU
        return None
    return None


def cmd_info(args):
    from medfeat.kernels import _dispatch

    print(f"medfeat on Python {platform.python_version()} ({platform.machine()}, {platform.system()})")
    for mod, ver in _versions():
        print(f"  {mod:<10} {ver}")
    print("kernel backends:")
    for b in _dispatch.BACKENDS:
        why = _dispatch._why_unavailable(b)
        print(f"  {b:<7} {'available' if why is None else 'unavailable: ' + why}")
    try:
        import numba

        threads = numba.config.NUMBA_NUM_THREADS
    except ImportError:
        threads = "n/a"
    print(f"CPU: {os.cpu_count()} logical cores, numba threads {threads}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"GPU: {_gpu_name() or 'none'}")
    return 0


def _load_demo_image(name):
    """The demo input: pydicom's CT/MR read through :func:`medfeat.io.read_dicom` (modality values,
    e.g. Hounsfield units, kept as int16 so every kernel sees the dtype CT arrives in), or a
    scikit-image sample."""
    import numpy as np

    if name in ("ct_small", "mr_small"):
        from pydicom.data import get_testdata_file

        from medfeat.io import read_dicom

        fname = {"ct_small": "CT_small.dcm", "mr_small": "MR_small.dcm"}[name]
        values, meta = read_dicom(get_testdata_file(fname), return_meta=True)
        img = np.round(values).astype(np.int16)
        unit = "HU" if meta.modality == "CT" else "modality values"
        return img, (f"pydicom {fname} ({meta.modality}, {img.shape[0]}x{img.shape[1]}, {unit} "
                     f"{int(img.min())}..{int(img.max())}, read by medfeat.io.read_dicom)")
    import skimage.data

    img = getattr(skimage.data, name)()
    return img, f"scikit-image {name} ({img.shape[0]}x{img.shape[1]}, {img.dtype})"


def _to_png(arr):
    import numpy as np

    a = np.asarray(arr, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.round(a * 255).astype(np.uint8)


def _write_png_atomic(path, arr):
    import imageio.v3 as iio

    tmp = path + ".tmp.png"
    iio.imwrite(tmp, arr)
    os.replace(tmp, path)


def cmd_demo(args):
    import numpy as np

    from medfeat import kernels as K

    img, desc = _load_demo_image(args.image)
    print(f"image: {desc}")
    print(f"backends here: {', '.join(K.available_backends())}; backend={args.backend!r}")
    f = img.astype(np.float32)
    steps = [
        ("normalize (zscore)", lambda: K.normalize(img, "zscore", backend=args.backend),
         lambda r: f"mean {r.mean():+.3f}, std {r.std():.3f}, dtype {r.dtype}"),
        ("histogram (256 bins)", lambda: K.histogram(img, 256, backend=args.backend),
         lambda r: f"{int(r[0].sum())} pixels, fullest bin {int(r[0].argmax())}"),
        ("density (KDE, scott)", lambda: K.density(img, backend=args.backend),
         lambda r: f"mode at {r[0][int(np.argmax(r[1]))]:.1f}"),
        ("threshold_otsu", lambda: K.threshold_otsu(img, backend=args.backend),
         lambda r: f"t = {float(r):.1f}, foreground {(img > r).mean():.1%}"),
        ("threshold_maxent", lambda: K.threshold_maxent(img, backend=args.backend),
         lambda r: f"t = {float(r):.1f}, foreground {(img > r).mean():.1%}"),
        ("sobel", lambda: K.sobel(f, backend=args.backend),
         lambda r: f"max gradient {float(r.max()):.1f}"),
        ("prewitt", lambda: K.prewitt(f, backend=args.backend),
         lambda r: f"max gradient {float(r.max()):.1f}"),
        ("canny (sigma=2, quantiles)", lambda: K.canny(f, sigma=2.0, low_threshold=0.8,
                                                        high_threshold=0.9, use_quantiles=True,
                                                        backend=args.backend),
         lambda r: f"{int(r.sum())} edge pixels ({r.mean():.1%})"),
        ("erosion (disk 2)", lambda: K.erosion(img, K.disk(2), backend=args.backend),
         lambda r: f"mean {img.mean():.1f} -> {r.mean():.1f}"),
        ("opening (disk 3)", lambda: K.opening(img, K.disk(3), backend=args.backend),
         lambda r: f"mean {img.mean():.1f} -> {r.mean():.1f}"),
        ("binary_closing of Otsu mask", lambda: K.binary_closing(img > K.threshold_otsu(img),
                                                                 K.disk(2), backend=args.backend),
         lambda r: f"foreground {r.mean():.1%}"),
    ]
    results = {}
    print(f"{'kernel':<30} {'first call':>11} {'again':>9}  result")
    for name, run, summary in steps:
        t0 = time.perf_counter()
        res = run()
        t1 = time.perf_counter()
        run()
        t2 = time.perf_counter()
        results[name] = res
        print(f"{name:<30} {1e3 * (t1 - t0):>9.1f}ms {1e3 * (t2 - t1):>7.2f}ms  {summary(res)}")
    print("(first call includes Numba compilation on a cold cache; 'again' is the steady state)")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        pngs = {"input": img, "sobel": results["sobel"], "canny": results["canny (sigma=2, quantiles)"],
                "opening": results["opening (disk 3)"],
                "otsu_mask": results["binary_closing of Otsu mask"]}
        for key, arr in pngs.items():
            _write_png_atomic(os.path.join(args.out, f"{args.image}_{key}.png"), _to_png(arr))
        print(f"wrote {len(pngs)} PNGs to {args.out}")
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        self.exit(2, f"medfeat: error: {message}\n")


def build_parser():
    p = _Parser(prog="medfeat", description="Medical images from disk to a diagnosis model.")
    p.add_argument("--version", action="version", version=f"medfeat {__import__('medfeat').__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    pi = sub.add_parser("info", help="versions, backends, threads and GPU")
    pi.set_defaults(func=cmd_info)
    pd = sub.add_parser("demo", help="run every kernel on a real medical image")
    pd.add_argument("--image", choices=DEMO_IMAGES, default="ct_small")
    pd.add_argument("--backend", choices=("auto", "cython", "numba", "cuda"), default="auto")
    pd.add_argument("--out", help="folder for PNGs of the inputs and outputs")
    pd.set_defaults(func=cmd_demo)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # bad input reaching a kernel: one line, like a bad argument
        print(f"medfeat: error: {exc}", file=sys.stderr)
        return 2
