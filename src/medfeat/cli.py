"""The ``medfeat`` command.

Subcommands:

- ``medfeat compare [--data PATH | --dataset NAME] [--out DIR] [--methods ...] [--cv K]
  [--epochs N] [--seed S] [--backend B] [--no-explain]``: classical and deep methods on one dataset,
  one judge, a summary table and a report folder (:func:`medfeat.pipeline.compare`). With neither
  ``--data`` nor ``--dataset`` it runs on the embedded default (synthetic CT phantoms).
- ``medfeat segment [--data FILE.npz] [--model unet|deeplabv3] [--epochs N] [--out DIR]``: a
  segmentation network trained on images with label maps, Dice and IoU per class on the test
  split, a report folder (:func:`medfeat.pipeline.segment`); without ``--data`` the embedded
  phantoms with their liver and spleen outlined.
- ``medfeat features PATH... --out features.csv|.parquet``: FeatureExtractor features of image
  files or folders, one row per file.
- ``medfeat bench [ARGS...]``: ``benchmarks/compare.py`` of a source checkout, with ARGS.
- ``medfeat info``: versions (TensorFlow/Keras included), kernel backends that work here (and why
  the others do not), CPU threads, the GPU if any.
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
    from importlib import metadata

    for mod in ("medfeat", "numpy", "scipy", "numba", "llvmlite", "Cython", "skimage", "pydicom"):
        try:
            out.append((mod, getattr(importlib.import_module(mod), "__version__", "?")))
        except ImportError:
            out.append((mod, "not installed"))
    # read from the installed metadata: importing TensorFlow takes seconds
    for dist in ("scikit-learn", "pandas", "matplotlib", "tensorflow", "keras", "jax", "torch"):
        try:
            out.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            if dist in ("tensorflow", "keras"):
                out.append((dist, "not installed (pip install 'medfeat[deep]')"))
    return out


def _keras_backend():
    """The Keras backend Keras would pick, read without importing Keras."""
    name = os.environ.get("KERAS_BACKEND")
    if name:
        return f"{name} (KERAS_BACKEND)"
    import json

    config = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")),
                          "keras.json")
    try:
        with open(config, encoding="utf-8") as fh:
            return f"{json.load(fh).get('backend', 'tensorflow')} ({config})"
    except (OSError, ValueError):
        return "tensorflow (default)"


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


#: ``--backend`` choices: one CPU implementation per kernel family, so a whole run can ask for
#: "cpu" (whichever each family has) or "cuda", not for one CPU backend by name. ``compare``
#: offers "auto" and "cuda" only: the evaluation harness checks the name itself.
_KERNEL_BACKENDS = ("auto", "cpu", "cuda")


def cmd_info(args):
    from medfeat.kernels import backend_status

    print(f"medfeat on Python {platform.python_version()} ({platform.machine()}, {platform.system()})")
    for mod, ver in _versions():
        print(f"  {mod:<10} {ver}")
    print("kernel backends:")
    for b, why in backend_status().items():
        print(f"  {b:<7} {'available' if why is None else 'unavailable: ' + why}")
    try:
        import numba

        threads = numba.config.NUMBA_NUM_THREADS
    except ImportError:
        threads = "n/a"
    print(f"CPU: {os.cpu_count()} logical cores, numba threads {threads}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"GPU: {_gpu_name() or 'none'} (Numba CUDA)")
    print(f"Keras backend: {_keras_backend()}")
    if args.deep:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            import keras

            print(f"Keras {keras.__version__} imported, backend {keras.backend.backend()}")
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                gpus = tf.config.list_physical_devices("GPU")
                print(f"TensorFlow GPUs: {', '.join(g.name for g in gpus) or 'none'}")
        except ImportError as exc:
            print(f"Keras: cannot import ({exc}); pip install 'medfeat[deep]'")
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


# --------------------------------------------------------------------------------------------
# compare

DEFAULT_OUT = "medfeat-report"


class _BadArgument(ValueError):
    """A bad argument found after parsing: exit code 2, one line."""


def _check_methods(methods):
    from medfeat.evaluate import method_names

    if len(set(methods)) != len(methods):
        raise _BadArgument(f"--methods: a method is named twice ({' '.join(methods)})")
    names = method_names()
    known = names["classical"] + names["deep"] + names["ensemble"]
    # "<kind>+gan": the kind trained on the GAN-expanded training split
    unknown = [m for m in methods if m not in known and not (
        m.endswith("+gan") and m[:-len("+gan")] in names["classical"] + names["deep"])]
    if unknown:
        deep = " ".join(names["deep"]) if names["deep"] else "(none: install 'medfeat[deep]')"
        raise _BadArgument(f"--methods: unknown method {unknown[0]!r}; classical: "
                           f"{' '.join(names['classical'])}; deep: {deep}; and "
                           f"{' '.join(names['ensemble'])}")


def _positive(name, minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {value}")
        return value
    return parse


def _budget_arg(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--budget must be a number of minutes, got "
                                         f"{text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"--budget must be a positive number of minutes, got "
                                         f"{text}")
    return value


def _cv_arg(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--cv must be an integer, got {text!r}") from None
    if value == 1 or value < 0:
        raise argparse.ArgumentTypeError(f"--cv must be 0 (no cross-validation) or at least 2 "
                                         f"folds, got {value}")
    return value


def _load_for_compare(args):
    """The dataset of ``compare``, or None for the embedded default
    (:func:`medfeat.pipeline.default_dataset`, made inside ``pipeline.compare``): bad paths and
    names are argument errors (exit 2)."""
    from medfeat import pipeline

    if args.data is not None:
        path = os.path.expanduser(args.data)
        if not os.path.exists(path):
            raise _BadArgument(f"--data: {args.data!r} does not exist")
        return pipeline.load(path, seed=args.seed, progress=not args.quiet)
    if args.dataset is not None:
        return pipeline.load(args.dataset, seed=args.seed, progress=not args.quiet)
    return None


def cmd_compare(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")   # TensorFlow's C++ chatter off
    from medfeat import pipeline
    from medfeat.evaluate.splits import check_cv
    from medfeat.kernels import available_backends
    from medfeat.report import check_out

    t0 = time.perf_counter()
    try:
        if args.methods is not None:
            _check_methods(args.methods)
        if args.backend != "auto" and args.backend not in available_backends():
            raise _BadArgument(f"--backend: {args.backend!r} does not work here; available: "
                               f"{' '.join(available_backends())}")
        try:
            out = check_out(args.out)
        except ValueError as exc:
            raise _BadArgument("--" + str(exc)) from None
        ds = _load_for_compare(args)
        methods = tuple(args.methods) if args.methods is not None else \
            pipeline.EMBEDDED_METHODS if ds is None else pipeline.DEFAULT_METHODS
        if ds is not None:
            from medfeat.io import label_strata

            check_cv(args.cv, label_strata(ds.train.labels))  # multi-label: by rarest finding
        else:   # the embedded default's training labels, without drawing its images
            check_cv(args.cv, pipeline.default_train_labels(args.seed))
    except ValueError as exc:    # SourceError, ImageReadError, ReportError, bad --cv ...
        raise _BadArgument(str(exc)) from None
    epochs = args.epochs
    say = (lambda *a: None) if args.quiet else (lambda msg: print(msg, flush=True))
    say(f"methods: {' '.join(methods)}; cv {args.cv}; seed {args.seed}; epochs "
        f"{epochs if epochs is not None else 'default'}; backend {args.backend}; budget "
        f"{args.budget:g} min; selection on validation {'off' if args.no_search else 'on'}")
    result = pipeline.compare(ds, methods=methods, cv=args.cv or None,
                              seed=args.seed, epochs=epochs, backend=args.backend,
                              progress=not args.quiet, log=say, n_jobs=args.jobs,
                              budget=args.budget, select=not args.no_search,
                              calibrate=not args.no_calibrate,
                              scheduler=args.scheduler or args.workers,
                              image_size=args.image_size)
    folder = result.save(out, explain=not args.explain_off)
    print()
    print(result.summary())
    print(f"report: {folder} (report.html, report.md, metrics.json, PNG plots)")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


# --------------------------------------------------------------------------------------------
# features


_FEATURE_FORMATS = (".csv", ".parquet")


def _collect_images(paths):
    from medfeat.io.images import sniff_format

    files = []
    for p in paths:
        p = os.path.expanduser(p)
        if os.path.isfile(p):
            files.append(p)
        elif os.path.isdir(p):
            found = []
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for n in sorted(names):
                    full = os.path.join(root, n)
                    if not n.startswith(".") and sniff_format(full) is not None:
                        found.append(full)
            if not found:
                raise _BadArgument(f"{p!r}: no image files in this folder")
            files += found
        else:
            raise _BadArgument(f"{p!r}: no such file or folder")
    return files


def _as_grey(img):
    import numpy as np

    from medfeat.io import rgb_to_grey

    if img.ndim == 3 and img.shape[-1] in (3, 4):
        return rgb_to_grey(img[..., :3])
    return np.asarray(img)


def cmd_features(args):
    import numpy as np

    from medfeat.features import FeatureExtractor
    from medfeat.io import read_image

    out = os.path.abspath(os.path.expanduser(args.out))
    ext = os.path.splitext(out)[1].lower()
    if ext not in _FEATURE_FORMATS:
        raise _BadArgument(f"--out must end in .csv or .parquet, got {args.out!r}")
    if ext == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise _BadArgument("--out .parquet needs pyarrow (pip install pyarrow); or write "
                               ".csv") from None
    if not os.path.isdir(os.path.dirname(out)):
        raise _BadArgument(f"--out: the folder {os.path.dirname(out)!r} does not exist")
    if os.path.isdir(out):
        raise _BadArgument(f"--out: {args.out!r} is a folder")
    files = _collect_images(args.paths)
    if out in {os.path.abspath(f) for f in files}:
        raise _BadArgument(f"--out: {args.out!r} is one of the inputs")
    try:
        fx_params = dict(families=args.families, bins=args.bins, backend=args.backend,
                         n_jobs=args.jobs)
        FeatureExtractor(**fx_params)._check_params()
    except ValueError as exc:
        raise _BadArgument(str(exc)) from None
    scheduler = args.scheduler if args.scheduler is not None else args.workers
    if scheduler is not None or args.on_error == "skip":
        # each file read where its features are computed (on the dask workers with a scheduler);
        # the column names do not depend on the image shape, so a stand-in image gives them
        fx = FeatureExtractor(**fx_params, scheduler=scheduler, on_error=args.on_error,
                              progress=not args.quiet)
        feats, read = fx.transform_files(files)
        names = list(FeatureExtractor(**fx_params).fit(np.zeros((1, 2, 2))).
                     get_feature_names_out())
        if len(read) < len(files):
            print(f"skipped {len(files) - len(read)} of {len(files)} files (named above)",
                  file=sys.stderr)
        return _write_features(out, ext, read, feats, names)
    from tqdm.auto import tqdm

    # group images of one shape, so each group is one transform over a stack
    images = [_as_grey(read_image(f))
              for f in tqdm(files, desc="reading", unit="img", disable=args.quiet)]
    groups = {}
    for i, img in enumerate(images):
        groups.setdefault(img.shape, []).append(i)
    rows = [None] * len(files)
    names = None
    for shape, idx in groups.items():
        stack = np.stack([images[i] for i in idx])
        fx = FeatureExtractor(**fx_params, progress=not args.quiet).fit(stack)
        feats = fx.transform(stack)
        names = list(fx.get_feature_names_out())
        for i, row in zip(idx, feats):
            rows[i] = row
    return _write_features(out, ext, files, np.vstack(rows), names)


def _write_features(out, ext, files, feats, names):
    """The table (a path column, then the features), written atomically."""
    import pandas as pd

    table = pd.DataFrame(feats, columns=names)
    table.insert(0, "path", files)
    tmp = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.{os.getpid()}.tmp")
    try:
        if ext == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"wrote {len(files)} rows x {len(names)} features to {out}")
    return 0


# --------------------------------------------------------------------------------------------
# bench


def _compare_script():
    """``benchmarks/compare.py`` of the source checkout this medfeat was imported from."""
    import medfeat

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(medfeat.__file__))))
    script = os.path.join(root, "benchmarks", "compare.py")
    return script if os.path.isfile(script) else None


def cmd_segment(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from medfeat import pipeline
    from medfeat.report import check_out

    t0 = time.perf_counter()
    try:
        out = check_out(args.out)
        if args.data is not None and not os.path.isfile(os.path.expanduser(args.data)):
            raise _BadArgument(f"--data: {args.data!r} is not a file")
        source = None if args.data is None else os.path.expanduser(args.data)
        if source is not None:
            from medfeat.io import load_segmentation_npz

            source = load_segmentation_npz(source)
    except ValueError as exc:      # ReportError, ImageReadError, bad masks
        raise _BadArgument(str(exc)) from None
    options = {"kind": args.model}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    say = (lambda *a: None) if args.quiet else (lambda msg: print(msg, flush=True))
    if source is None:
        say("no --data: the embedded default, 600 synthetic CT phantoms 48x48 with their liver "
            "and spleen outlined")
    result = pipeline.segment(source, seed=args.seed, out=out, log=say,
                              verbose=0 if args.quiet else 2, **options)
    print()
    print(result.summary())
    print(f"report: {out} (report.html, report.md, metrics.json, PNG plots)")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


def cmd_bench(argv):
    import subprocess

    script = _compare_script()
    if script is None:
        print("medfeat: error: medfeat bench needs a source checkout (benchmarks/compare.py "
              "beside src/); this medfeat is installed without it — clone the repository and "
              "pip install -e . there", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, script, *argv])


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        self.exit(2, f"medfeat: error: {message}\n")


def build_parser():
    p = _Parser(prog="medfeat", description="Medical images from disk to a diagnosis model.")
    p.add_argument("--version", action="version", version=f"medfeat {__import__('medfeat').__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    pi = sub.add_parser("info", help="versions, backends, threads and GPU")
    pi.add_argument("--deep", action="store_true",
                    help="also import Keras and list TensorFlow's GPUs (takes seconds)")
    pi.set_defaults(func=cmd_info)
    pc = sub.add_parser("compare", help="classical and deep methods on one dataset, one report",
                        description="Run classical and deep methods on one dataset through the "
                                    "same splits and scores; print a table; write a report "
                                    "folder. Without --data/--dataset: the embedded phantoms.")
    src = pc.add_mutually_exclusive_group()
    src.add_argument("--data", metavar="PATH",
                     help=".npz (MedMNIST layout), a folder of class sub-folders, or a folder "
                          "of images/DICOM with a labels.csv (file,label)")
    src.add_argument("--dataset", metavar="NAME",
                     help="'phantoms' (make_phantoms' full set, 2000 images 64x64; without "
                          "--data/--dataset: 1,000 images 48x48) or a MedMNIST name "
                          "(pneumoniamnist, breastmnist, bloodmnist_64, ...; downloaded when "
                          "online)")
    pc.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                    help=f"report folder (default ./{DEFAULT_OUT}; a previous report there is "
                         "replaced, any other non-empty folder refused)")
    pc.add_argument("--methods", nargs="+", metavar="M",
                    default=None,
                    help="classical: knn tree nb forest logreg gboost; deep: cnn resnet18 "
                         "resnet50 diagnostic; ensemble (the best classical and deep mixed, "
                         "weights chosen on validation); any of them + '+gan' (e.g. cnn+gan: "
                         "trained on the GAN-expanded training split) (default: "
                         f"{' '.join(__import__('medfeat.pipeline').pipeline.DEFAULT_METHODS)}; "
                         "on the embedded default: "
                         f"{' '.join(__import__('medfeat.pipeline').pipeline.EMBEDDED_METHODS)})")
    pc.add_argument("--cv", type=_cv_arg, default=5, metavar="K",
                    help="stratified folds on the training split, 0 for none (default 5)")
    pc.add_argument("--epochs", type=_positive("--epochs", 1), metavar="N",
                    help="deep training epochs (default: each model's own, sized for a "
                         "2-core CPU)")
    pc.add_argument("--seed", type=int, default=0, metavar="S")
    pc.add_argument("--budget", type=_budget_arg, metavar="MINUTES",
                    default=__import__("medfeat.pipeline").pipeline.DEFAULT_BUDGET,
                    help="minutes for the search and training (default "
                         f"{__import__('medfeat.pipeline').pipeline.DEFAULT_BUDGET:g}: about "
                         "1,000 images of 28x28 finish in under 10 min on 2 cores); deep "
                         "candidates that do not fit are skipped and listed")
    pc.add_argument("--image-size", dest="image_size", type=_positive("--image-size", 8),
                    metavar="N",
                    help="resize every image to NxN first (anti-aliased), for both roads "
                         "(default: the stored size; deep methods then train on images larger "
                         "than 48 px at the largest of 28, 32, 48, 64, 96, 128, 224 px not "
                         "above them whose default trainings fit the budget)")
    pc.add_argument("--no-search", dest="no_search", action="store_true",
                    help="run each method's fixed defaults: no model selection on the "
                         "validation split")
    where = pc.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the classical road (features, cross-validation folds, "
                            "search trials) on this dask.distributed scheduler "
                            "(tcp://host:8786); deep training stays here")
    where.add_argument("--workers", type=_positive("--workers", 1), metavar="N",
                       help="run the classical road (features, cross-validation folds, "
                            "search trials) on a local dask cluster of N worker processes")
    pc.add_argument("--no-calibrate", dest="no_calibrate", action="store_true",
                    help="keep the balanced-class probabilities (no calibration to the "
                         "validation split's class balance; for a test split whose balance "
                         "differs from validation's)")
    pc.add_argument("--backend", choices=("auto", "cpu", "cuda"), default="auto",
                    help="kernel backend of the feature extraction")
    pc.add_argument("--jobs", type=_positive("--jobs", 1), metavar="N",
                    help="threads for feature extraction (default 1)")
    pc.add_argument("--no-explain", dest="explain_off", action="store_true",
                    help="no integrated-gradients heat maps in the report")
    pc.add_argument("--quiet", action="store_true", help="no progress output")
    pc.set_defaults(func=cmd_compare)
    pf = sub.add_parser("features", help="image features of files or folders to CSV/Parquet")
    pf.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    pf.add_argument("--out", required=True, help="features.csv or features.parquet")
    pf.add_argument("--families", nargs="+", metavar="F", help="feature families (default all)")
    pf.add_argument("--bins", type=_positive("--bins", 1), default=32)
    pf.add_argument("--backend", choices=_KERNEL_BACKENDS, default="auto")
    pf.add_argument("--jobs", type=_positive("--jobs", 1), metavar="N")
    where = pf.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on this dask.distributed scheduler (tcp://host:8786); files are "
                            "read on its workers")
    where.add_argument("--workers", type=_positive("--workers", 1), metavar="N",
                       help="run on N local dask worker processes (a LocalCluster)")
    pf.add_argument("--on-error", choices=("skip", "raise"), default="raise",
                    help="a file that cannot be read: stop (raise, default) or name it and go "
                         "on (skip)")
    pf.add_argument("--quiet", action="store_true", help="no progress bars")
    pf.set_defaults(func=cmd_features)
    sub.add_parser("bench", help="run benchmarks/compare.py of the source checkout (arguments "
                                 "are passed on)", add_help=False)
    ps = sub.add_parser("segment", help="train a segmentation network (U-Net or DeepLabV3) on "
                                        "images with label maps; Dice/IoU report",
                        description="Train a segmentation network on the training split, stop "
                                    "early on the validation Dice, score Dice and IoU per class "
                                    "on the test split, write a report folder. Without --data: "
                                    "the embedded phantoms with their liver and spleen outlined.")
    ps.add_argument("--data", metavar="FILE.npz",
                    help="an .npz of {train,val,test}_images and {train,val,test}_masks (integer "
                         "label maps, 0 = background)")
    ps.add_argument("--model", choices=("unet", "deeplabv3"), default="unet")
    ps.add_argument("--epochs", type=_positive("--epochs", 1), metavar="N",
                    help="most training epochs (default 30, early stopping on validation Dice)")
    ps.add_argument("--seed", type=int, default=0)
    ps.add_argument("--out", default="medfeat-segmentation",
                    help="report folder (default ./medfeat-segmentation; a previous report there "
                         "is replaced, any other non-empty folder refused)")
    ps.add_argument("--quiet", action="store_true", help="no progress output")
    ps.set_defaults(func=cmd_segment)
    pd = sub.add_parser("demo", help="run every kernel on a real medical image")
    pd.add_argument("--image", choices=DEMO_IMAGES, default="ct_small")
    pd.add_argument("--backend", choices=_KERNEL_BACKENDS, default="auto")
    pd.add_argument("--out", help="folder for PNGs of the inputs and outputs")
    pd.set_defaults(func=cmd_demo)
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:          # everything after "bench" belongs to compare.py
        return cmd_bench(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _BadArgument as exc:
        print(f"medfeat: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medfeat: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; MEDFEAT_DEBUG=1 shows the traceback
        if os.environ.get("MEDFEAT_DEBUG"):
            raise
        code = 2 if isinstance(exc, ValueError) and args.command in ("info", "demo") else 1
        print(f"medfeat: error: {type(exc).__name__}: {_one_line(exc)} (MEDFEAT_DEBUG=1 for "
              "the traceback)" if code == 1 else f"medfeat: error: {_one_line(exc)}",
              file=sys.stderr)
        return code


def _one_line(exc):
    return " ".join(str(exc).split())
