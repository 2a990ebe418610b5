"""The Python front door: load a dataset, run the methods, tabulate, write the report.

>>> from medfeat import pipeline                                      # doctest: +SKIP
>>> result = pipeline.compare("pneumoniamnist.npz", out="report")    # doctest: +SKIP
>>> result.table[["auc", "acc"]]                                     # doctest: +SKIP

:func:`load` turns a path or a name into a :class:`medfeat.io.Dataset`; :func:`compare` runs
:func:`medfeat.evaluate.evaluate` on it and returns a :class:`CompareResult` (a pandas table, the
best method, the full :class:`~medfeat.evaluate.Evaluation`), writing the report folder
(:func:`medfeat.report.write_report`) when ``out`` is given.

Examples
--------
>>> from medfeat import pipeline
>>> ds = pipeline.load("phantoms", n=60, size=32)
>>> res = pipeline.compare(ds, methods=("nb", "tree"), cv=2, progress=False, log=None)
>>> list(res.table.index), res.best in ("nb", "tree")
(['nb', 'tree'], True)
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import re

import numpy as np

from .evaluate.search import DEFAULT_BUDGET as _DEFAULT_BUDGET

__all__ = ["load", "compare", "CompareResult", "DEFAULT_METHODS", "DEFAULT_BUDGET", "SourceError",
           "segment", "SegmentResult", "SEGMENT_DEFAULTS", "DEFAULT_PHANTOMS", "PHANTOM_DEEP",
           "EMBEDDED_METHODS", "default_dataset", "default_train_labels"]

#: What :func:`compare` runs when not told: k-nearest neighbours, a decision tree and naive
#: Bayes, an L2 logistic regression (the strongest classical baseline on PneumoniaMNIST), two deep
#: models, and the ensemble of the best classical and the best deep one (by validation AUC).
DEFAULT_METHODS = ("knn", "tree", "nb", "logreg", "cnn", "resnet18", "ensemble")

#: What :func:`compare` runs on the embedded default when not told: :data:`DEFAULT_METHODS`
#: without the ResNet-18, so that the whole run takes about a minute on two CPU cores. On the
#: phantoms the ResNet-18 costs several times the CNN per epoch (17 convolutions at full
#: resolution after its small-image stem) and finds the lesion less often; name it in
#: ``methods`` to run it.
EMBEDDED_METHODS = ("knn", "tree", "nb", "logreg", "cnn", "ensemble")

#: Minutes of a :func:`compare` run when not told (:data:`medfeat.evaluate.search.DEFAULT_BUDGET`).
DEFAULT_BUDGET = _DEFAULT_BUDGET

#: The embedded default of :func:`compare` (``dataset=None``) and of ``medfeat compare`` without
#: ``--data``: :func:`medfeat.io.make_phantoms` with these arguments (and the run's seed).
DEFAULT_PHANTOMS = {"n": 1000, "size": 48}

#: :class:`~medfeat.deep.DeepClassifier` settings of the deep methods named by kind on the
#: embedded default (``epochs=``, when given, still wins). ``DeepClassifier``'s own defaults
#: suit MedMNIST-like photographs of a finding spread over the image; the phantoms' finding is
#: a 2-3 px lesion anywhere in the liver or spleen, so the cnn ends in a global maximum of its
#: last feature map (a detector: a flattened dense head is not translation invariant), without
#: dropout and without augmentation (resampling by shift, scale or rotation blurs a 2 px lesion
#: into the noise), with small batches (20+ optimiser steps per epoch on 700 images) and half
#: the default width (16 filters in the first block): chosen on the validation split, where it
#: scored as well as the full width (AUC 0.96) at a third of the time. Its training has one
#: epoch of learning-rate warm-up, 16 epochs and one restart from another initialisation when
#: the validation AUC stays at chance: chosen over ten training seeds on the validation split,
#: because with one seed per setting two seeds in five sat at chance for most of the epochs.
PHANTOM_DEEP = {
    "cnn": {"epochs": 16, "batch_size": 32, "lr": 3e-3, "augment": None, "patience": 5,
            "warmup": 1, "restarts": 1,
            "model_options": {"pool": "max", "dropout": 0.0, "width": 16}},
    "resnet18": {"epochs": 12, "batch_size": 32, "lr": 1e-3, "augment": None, "patience": 6,
                 "model_options": {"dropout": 0.0}},
}

#: Column names a labels CSV may use for the file and for the label (first match wins).
_FILE_COLUMNS = ("file", "filename", "path", "image", "image_path", "name")
_LABEL_COLUMNS = ("label", "class", "target", "diagnosis", "y")


class SourceError(ValueError):
    """:func:`load` cannot make a dataset of ``source`` (no such file or folder, not a known
    dataset name, a labels CSV without the needed columns...)."""


# --------------------------------------------------------------------------------------------
# load


def _medmnist_name(text):
    """``(name, size)`` when ``text`` names a MedMNIST set ("pneumoniamnist", "bloodmnist_64"),
    else None."""
    from .io import medmnist

    m = re.fullmatch(r"([a-z0-9]+?)(?:[_-](\d+))?", text.lower())
    if m is None or m.group(1) not in medmnist.INFO:
        return None
    size = int(m.group(2)) if m.group(2) else 28
    return m.group(1), size


def _known_classes(stem):
    """Class names of a MedMNIST file from its stem (``pneumoniamnist``, ``bloodmnist_64``)."""
    found = _medmnist_name(stem)
    if found is None:
        return None
    from .io import medmnist

    return medmnist.INFO[found[0]][1]


def _find_labels_csv(folder):
    csvs = sorted(f for f in os.listdir(folder)
                  if f.lower().endswith(".csv") and not f.startswith(".")
                  and os.path.isfile(os.path.join(folder, f)))
    if not csvs:
        return None
    for preferred in ("labels.csv", "label.csv"):
        if preferred in csvs:
            return os.path.join(folder, preferred)
    if len(csvs) > 1:
        raise SourceError(f"source: {folder!r} holds several CSV files {csvs}; pass "
                          "labels=<path of the one with file,label columns>")
    return os.path.join(folder, csvs[0])


def _read_labels_csv(path):
    """``[(file, label_text), ...]`` from a CSV with a file column and a label column."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(fh, dialect=dialect)
        fields = {(f or "").strip().lower(): f for f in (reader.fieldnames or [])}
        fcol = next((fields[c] for c in _FILE_COLUMNS if c in fields), None)
        lcol = next((fields[c] for c in _LABEL_COLUMNS if c in fields), None)
        if fcol is None or lcol is None:
            raise SourceError(f"labels: {path!r} needs a file column ({'/'.join(_FILE_COLUMNS)}) "
                              f"and a label column ({'/'.join(_LABEL_COLUMNS)}); found columns "
                              f"{list(reader.fieldnames or [])}")
        rows = []
        for k, row in enumerate(reader, start=2):
            f, lab = (row.get(fcol) or "").strip(), (row.get(lcol) or "").strip()
            if not f and not lab:
                continue
            if not f or not lab:
                raise SourceError(f"labels: {path!r} line {k}: empty file or label")
            rows.append((f, lab))
    if not rows:
        raise SourceError(f"labels: {path!r} lists no files")
    return rows


def _load_labelled_folder(folder, labels_csv, *, seed, val_size, test_size, name, progress):
    """Images (DICOM or any format read_image knows) listed in a labels CSV."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from .io import Dataset, ImageReadError, is_dicom, read_dicom, read_image

    rows = _read_labels_csv(labels_csv)
    paths = []
    for f, _ in rows:
        p = f if os.path.isabs(f) else os.path.join(folder, f)
        if not os.path.isfile(p):
            raise SourceError(f"labels: {labels_csv!r} lists {f!r}, which is not a file in "
                              f"{folder!r}")
        paths.append(p)
    texts = [lab for _, lab in rows]
    # integer labels keep their numbers; anything else is a class name, sorted
    if all(re.fullmatch(r"[+]?\d+", t) for t in texts):
        values = [int(t) for t in texts]
        classes = tuple(str(k) for k in range(max(values) + 1))
    else:
        classes = tuple(sorted(set(texts)))
        values = [classes.index(t) for t in texts]

    def read(p):
        return read_dicom(p) if is_dicom(p) else read_image(p)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        images = list(tqdm(pool.map(read, paths), total=len(paths), unit="img",
                           desc=os.path.basename(os.path.normpath(folder)),
                           disable=not progress))
    first = images[0]
    for p, img in zip(paths, images):
        if img.shape != first.shape:
            raise ImageReadError(p, f"image shape {img.shape} differs from {first.shape} of "
                                    f"{paths[0]!r}; resample the images to one shape first")
    stack = np.stack(images)
    return Dataset.from_arrays(stack, np.asarray(values, dtype=np.int64), classes=classes,
                               name=name or os.path.basename(os.path.normpath(folder)),
                               val_size=val_size, test_size=test_size, seed=seed)


def load(source, *, seed=0, labels=None, name=None, val_size=0.15, test_size=0.15,
         progress=True, **options):
    """A :class:`medfeat.io.Dataset` from a file, a folder or a name.

    Parameters
    ----------
    source : Dataset, str or os.PathLike
        - a :class:`~medfeat.io.Dataset`: returned as it is;
        - an ``.npz`` file in the MedMNIST layout (:func:`medfeat.io.load_npz`; a file named like
          a MedMNIST set, e.g. ``pneumoniamnist.npz``, gets that set's class names);
        - a folder with a labels CSV (``labels.csv``, or the only ``.csv`` in it, or ``labels``):
          one row per image with a file column (``file``, ``filename``, ``path``, ``image``) and a
          label column (``label``, ``class``, ``target``, ``diagnosis``); DICOM files are read by
          :func:`medfeat.io.read_dicom` (modality values, e.g. Hounsfield units), others by
          :func:`medfeat.io.read_image`; integer labels are class indices, text labels class
          names (sorted);
        - a folder of DICOM series, one volume per sub-folder, with a labels CSV mapping
          sub-folders to labels, or ``root/<class>/<series>/`` (:func:`medfeat.io.
          load_series_folder`; ``shape=(D, H, W)`` resamples the volumes to one shape);
        - a folder with one sub-folder per class (:class:`medfeat.io.ImageFolder`);
        - ``"phantoms"``: :func:`medfeat.io.make_phantoms`; ``"default"``: the same with
          :data:`DEFAULT_PHANTOMS` (the embedded default, :func:`default_dataset`);
        - ``"phantom-volumes"``: :func:`medfeat.io.make_phantom_volumes` (3-D);
        - a MedMNIST name such as ``"pneumoniamnist"`` or ``"bloodmnist_64"``:
          :func:`medfeat.io.load_medmnist` (from its cache, downloading when online).
    seed : int, optional
        Seeds every split this function makes (and the phantoms).
    labels : str or os.PathLike, optional
        The labels CSV of a folder, when it is not in the folder or there are several.
    name : str, optional
        Dataset name (default: from the file or folder name).
    val_size, test_size : float, optional
        Fractions for the splits a source does not have (folders; ``.npz`` files without them).
    progress : bool, optional
        Progress bar while reading folders.
    **options
        Passed to the loader: ``n`` and ``size`` for ``"phantoms"``, ``n`` and ``shape`` for
        ``"phantom-volumes"``; ``root``, ``download``,
        ``timeout`` for MedMNIST names; ``extensions`` for class folders.

    Returns
    -------
    medfeat.io.Dataset

    Raises
    ------
    SourceError
        No such file, folder or dataset name; a labels CSV without the needed columns or listing
        missing files; options the loader does not take.
    medfeat.io.ImageReadError
        A file that cannot be read.
    medfeat.io.DownloadError
        A MedMNIST name that is not cached while offline (an ``OSError``).

    Examples
    --------
    >>> ds = load("phantoms", n=40, size=32, seed=1)
    >>> ds.name, ds.sizes
    ('phantoms', (28, 6, 6))
    """
    from . import io as mio

    if isinstance(source, mio.Dataset):
        if options or labels is not None:
            raise SourceError("load: a Dataset takes no loader options")
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise SourceError(f"source must be a path, a dataset name or a medfeat.io.Dataset, got "
                          f"{type(source).__name__}")
    text = os.fspath(source)
    if not text:
        raise SourceError("source is empty: give a path or a dataset name")
    path = os.path.expanduser(text)

    def call(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs, **options)
        except TypeError as exc:
            if options and "unexpected keyword" in str(exc):
                raise SourceError(f"load({text!r}): {exc}") from None
            raise

    if os.path.isfile(path):
        classes = _known_classes(os.path.splitext(os.path.basename(path))[0])
        return call(mio.load_npz, path, name=name, classes=classes, val_size=val_size,
                    test_size=test_size, seed=seed)
    if os.path.isdir(path):
        csv_path = os.fspath(labels) if labels is not None else _find_labels_csv(path)
        if mio.is_series_folder(path, csv_path):  # one DICOM series (a volume) per sub-folder
            return call(mio.load_series_folder, path, csv_path, name=name, seed=seed,
                        val_size=val_size, test_size=test_size, progress=progress)
        if csv_path is not None:
            if not os.path.isfile(csv_path):
                raise SourceError(f"labels: {csv_path!r} is not a file")
            if options:
                raise SourceError(f"load({text!r}): unexpected options {sorted(options)} for a "
                                  "folder with a labels CSV")
            return _load_labelled_folder(path, csv_path, seed=seed, val_size=val_size,
                                         test_size=test_size, name=name, progress=progress)
        folder = call(mio.ImageFolder, path)
        return folder.to_dataset(val_size=val_size, test_size=test_size, seed=seed, name=name,
                                 progress=progress)
    if labels is not None:
        raise SourceError(f"source: {text!r} is not a folder (labels= needs the image folder)")
    key = text.lower()
    makers = {"phantoms": (mio.make_phantoms, {}), "phantom": (mio.make_phantoms, {}),
              "default": (mio.make_phantoms, DEFAULT_PHANTOMS),
              "phantom-volumes": (mio.make_phantom_volumes, {})}
    if key in makers:
        make, defaults = makers[key]
        options = {**defaults, **options}
        ds = call(make, seed=seed, val_size=val_size, test_size=test_size)
        return ds if name is None else mio.Dataset(ds.train, ds.val, ds.test, ds.classes, name)
    found = None if os.sep in text or "." in text else _medmnist_name(text)
    if found is not None:
        return call(mio.load_medmnist, found[0], size=found[1])
    looks_like_path = os.sep in text or "." in os.path.basename(text)
    from .io import medmnist

    raise SourceError(
        f"source: {text!r} " + ("does not exist" if looks_like_path else
                                "is neither a file or folder here nor a dataset name")
        + f"; give an .npz file, an image folder, a folder with a labels CSV, 'phantoms', "
          f"'phantom-volumes', 'default', or a "
          f"MedMNIST name ({', '.join(sorted(medmnist.INFO))})")


# --------------------------------------------------------------------------------------------
# compare


_TABLE_COLUMNS = ("family", "acc", "auc", "auc_lo", "auc_hi", "f1", "sensitivity", "specificity",
                  "balanced_accuracy", "cv_auc_mean", "cv_auc_std", "fit_seconds",
                  "predict_seconds")


def _num(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


@dataclasses.dataclass
class CompareResult:
    """What :func:`compare` returns.

    Attributes
    ----------
    evaluation : medfeat.evaluate.Evaluation
        Every score, the test probabilities, the fitted models, the paired comparison.
    report : pathlib.Path or None
        The report folder, when one was written.
    """

    evaluation: object
    report: object = None

    @property
    def table(self):
        """One row per method (index ``method``): family, test ACC, AUC and its 95 % interval
        (``auc_lo``, ``auc_hi``), F1, sensitivity, specificity, balanced accuracy, the
        cross-validation AUC mean and standard deviation, fit and predict seconds."""
        import pandas as pd

        rows = []
        for name, r in self.evaluation.methods.items():
            t = r.test or {}
            ci = t.get("auc_ci95") or [None, None]
            cv_mean = (r.cv or {}).get("mean") or {}
            cv_std = (r.cv or {}).get("std") or {}
            rows.append({"method": name, "family": r.family, "acc": _num(t.get("acc")),
                         "auc": _num(t.get("auc")), "auc_lo": _num(ci[0]),
                         "auc_hi": _num(ci[1]), "f1": _num(t.get("f1")),
                         "sensitivity": _num(t.get("sensitivity")),
                         "specificity": _num(t.get("specificity")),
                         "balanced_accuracy": _num(t.get("balanced_accuracy")),
                         "cv_auc_mean": _num(cv_mean.get("auc")),
                         "cv_auc_std": _num(cv_std.get("auc")),
                         "fit_seconds": _num(r.fit_seconds),
                         "predict_seconds": _num(r.predict_seconds)})
        return pd.DataFrame(rows, columns=("method",) + _TABLE_COLUMNS).set_index("method")

    @property
    def best(self):
        """Name of the method with the highest test AUC."""
        return self.evaluation.best()

    @property
    def comparison(self):
        """The paired test of the best classical against the best deep method (or None)."""
        return self.evaluation.comparison

    def save(self, out, *, explain=True, n_heatmaps=6):
        """Write the report folder (:func:`medfeat.report.write_report`); returns its path."""
        from .report import write_report

        self.report = write_report(self.evaluation, out, explain=explain, n_heatmaps=n_heatmaps)
        return self.report

    def summary(self):
        """The table as fixed-width text (what the ``medfeat compare`` command prints)."""
        t = self.table
        head = (f"{'method':<12} {'family':<9} {'ACC':>6} {'AUC':>6} {'AUC 95% CI':>15} "
                f"{'F1':>6} {'sens':>6} {'spec':>6} {'CV AUC':>14} {'fit s':>8} {'pred s':>7}")
        lines = [head, "-" * len(head)]

        def f(v, d=3):
            return "–" if not math.isfinite(v) else f"{v:.{d}f}"

        for name, r in t.iterrows():
            cv = "–" if not math.isfinite(r.cv_auc_mean) else \
                f"{r.cv_auc_mean:.3f}±{f(r.cv_auc_std)}"
            ci = f"[{f(r.auc_lo)}, {f(r.auc_hi)}]"
            lines.append(f"{name:<12} {r.family:<9} {f(r.acc):>6} {f(r.auc):>6} {ci:>15} "
                         f"{f(r.f1):>6} {f(r.sensitivity):>6} {f(r.specificity):>6} {cv:>14} "
                         f"{f(r.fit_seconds, 1):>8} {f(r.predict_seconds, 2):>7}")
        best = self.best
        if best is not None:
            lines.append(f"best by test AUC: {best} ({self.evaluation.methods[best].family})")
        c = self.comparison
        if c:
            p = c.get("p_value")
            on = f" ({c['on']})" if c.get("on") else ""      # multi-label: the mean
            lines.append(f"paired {c.get('test')}: {c.get('deep')} - {c.get('classical')} AUC"
                         f"{on} {_num(c.get('auc_difference')):+.4f}, p = "
                         f"{'–' if p is None else format(p, '.3g')}")
        return "\n".join(lines)

    def __repr__(self):
        return f"CompareResult(best={self.best!r}, report={self.report!r})\n{self.summary()}"


def _class_counts(dataset):
    """Images per class in each split (multi-label: positives per finding)."""
    n = len(dataset.classes)
    if getattr(dataset, "multilabel", False):
        return {part: np.asarray(getattr(dataset, part).labels).sum(axis=0).astype(int).tolist()
                for part in ("train", "val", "test")}
    return {part: np.bincount(np.asarray(getattr(dataset, part).labels).ravel(),
                              minlength=n).tolist()
            for part in ("train", "val", "test")}


def default_dataset(seed=0):
    """The embedded default dataset: :func:`medfeat.io.make_phantoms` with
    :data:`DEFAULT_PHANTOMS` (synthetic CT slices, half with a small lesion), what
    :func:`compare` runs on when given no dataset.

    Parameters
    ----------
    seed : int, optional
        Seeds the phantoms and their split.

    Returns
    -------
    medfeat.io.Dataset

    Examples
    --------
    >>> ds = default_dataset(seed=0)
    >>> ds.name, ds.train.images.shape[1:], sum(ds.sizes) == DEFAULT_PHANTOMS["n"]
    ('phantoms', (48, 48), True)
    """
    from .io import make_phantoms

    return make_phantoms(seed=seed, **DEFAULT_PHANTOMS)


def default_train_labels(seed=0):
    """The labels of :func:`default_dataset`'s training split, without drawing its images (for
    checks before a run, such as the number of cross-validation folds).

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.array_equal(np.sort(default_train_labels(3)),
    ...                     np.sort(default_dataset(3).train.labels)))
    True
    """
    from .io import stratified_split

    n = DEFAULT_PHANTOMS["n"]
    labels = np.zeros(n, dtype=np.int64)
    labels[n // 2:] = 1                     # make_phantoms: exactly half carry a lesion
    train, _, _ = stratified_split(labels, seed=seed)
    return labels[train]


def _embedded_methods(methods, epochs, seed, verbose):
    """``methods`` as a dict for the embedded default: the deep kinds of :data:`PHANTOM_DEEP`
    as ``DeepClassifier`` estimators with its settings (``epochs``, when given, wins), every
    other entry as given."""
    if isinstance(methods, dict):
        return methods
    out = {}
    for name in methods:
        if isinstance(name, str) and name in PHANTOM_DEEP:
            from .deep import DeepClassifier

            params = dict(PHANTOM_DEEP[name])
            if epochs is not None:
                params["epochs"] = epochs
            out[name] = DeepClassifier(name, seed=seed, verbose=verbose, **params)
        else:
            out[name] = name
    return out


def compare(dataset=None, methods=None, cv=5, seed=0, out=None, epochs=None,
            backend="auto", progress=True, *, explain=True, log=print, n_jobs=None,
            budget=DEFAULT_BUDGET, select=True, scheduler=None, image_size=None,
            **evaluate_options):
    """Run several methods on one dataset with one judge, tabulate them, write the report.

    Parameters
    ----------
    dataset : Dataset, str, os.PathLike or None, optional
        A :class:`medfeat.io.Dataset` or anything :func:`load` accepts (loaded with ``seed``).
        None (the default) runs the embedded default, what ``medfeat compare`` without
        ``--data`` runs: :func:`default_dataset`, its deep methods named by kind with
        :data:`PHANTOM_DEEP`'s settings.
    methods : sequence of str or dict, optional
        :data:`DEFAULT_METHODS` when not given (:data:`EMBEDDED_METHODS` on the embedded
        default). Method names (classical ``"knn"``, ``"tree"``, ``"nb"``, ``"forest"``,
        ``"logreg"``, ``"gboost"``; deep ``"cnn"``, ``"resnet18"``, ...) or a dict name ->
        estimator, as
        :func:`medfeat.evaluate.evaluate` takes them.
    cv : int or None, optional
        Stratified folds of the cross-validation on the training split (classical methods;
        ``None`` or 0 skips it).
    seed : int, optional
        Seeds the splits, folds, classifiers, deep training and bootstrap.
    out : str or os.PathLike, optional
        Report folder to write (:func:`medfeat.report.write_report`); None writes nothing.
    epochs : int, optional
        Training epochs of the deep methods (default: ``DeepClassifier``'s).
    backend : str, optional
        Kernel backend of the feature extraction.
    progress : bool, optional
        Progress bars for reading and feature extraction, one line per training epoch.
    explain : bool, optional
        Integrated-gradients heat maps of the best deep model in the report.
    log : callable or None, optional
        Receives the harness's one-line messages (per fold, per method).
    n_jobs : int, optional
        Threads for feature extraction.
    budget : float or None, optional
        Minutes for the evaluation (model selection and training): deep candidates beyond each
        method's default run only while they fit; the skipped ones are listed in the report.
        The default lets about 1,000 images of 28 x 28 finish in under 10 minutes on two CPU
        cores. None: no limit.
    select : bool, optional
        Model selection on the validation split for the methods given by name (see
        :mod:`medfeat.evaluate.search`); False runs their fixed defaults.
    scheduler : dask.distributed.Client, str or int, optional
        Run the classical road on a dask cluster (the feature extraction, the cross-validation
        folds and the search trials; :func:`medfeat.evaluate.evaluate`): a ``Client``, a
        scheduler address (``"tcp://host:8786"``) or a number of local worker processes (a
        ``LocalCluster`` started here and closed at the end). Same numbers as without it;
        deep training stays in this process.
    image_size : int, optional
        Resize every 2-D image of every split to ``image_size`` x ``image_size`` first
        (:func:`medfeat.io.resize_images`: bilinear, Gaussian anti-aliasing when shrinking),
        for both roads. None (the default) keeps the stored size: the classical features are
        computed on it, and the deep methods named by kind train at the largest side of
        :data:`medfeat.evaluate.harness.DEEP_SIDES` not above it whose default trainings fit
        the budget (``params["input_size"]``; :func:`medfeat.evaluate.evaluate`).
    **evaluate_options
        Passed to :func:`medfeat.evaluate.evaluate` (``calibrate``, ``deep_cv``, ``n_boot``,
        ``max_trials``, ...).

    Returns
    -------
    CompareResult

    Raises
    ------
    ValueError
        Before any training: an unknown method, bad ``cv``/``epochs``/``backend``, a source
        :func:`load` cannot read (:class:`SourceError`, :class:`medfeat.io.ImageReadError`).
    medfeat.report.ReportError
        ``out`` is a file, or a non-empty folder that is not a medfeat report. Checked before
        the methods run, so a long run never ends in a refusal.

    Examples
    --------
    >>> from medfeat.io import make_phantoms
    >>> res = compare(make_phantoms(n=60, size=32), methods=["nb"], cv=2, progress=False,
    ...               log=None)
    >>> res.table.loc["nb", "family"]
    'classical'
    """
    from .evaluate import evaluate
    from .report import check_out

    if out is not None:
        check_out(out)            # fail before hours of training, not after
    if methods is None:
        methods = EMBEDDED_METHODS if dataset is None else DEFAULT_METHODS
    if dataset is None:
        ds = default_dataset(seed)
        methods = _embedded_methods(methods, epochs, seed,
                                    verbose=int(bool(progress) and log is not None))
        if log is not None:
            log(f"no dataset: the embedded default, {sum(ds.sizes)} synthetic CT phantoms "
                f"{DEFAULT_PHANTOMS['size']}x{DEFAULT_PHANTOMS['size']} (half with a small "
                "liver/spleen lesion)")
    else:
        ds = load(dataset, seed=seed, progress=progress)
    if log is not None:
        n_tr, n_va, n_te = ds.sizes
        log(f"dataset {ds.name!r}: {n_tr} train / {n_va} val / {n_te} test images "
            f"{'x'.join(map(str, ds.train.images.shape[1:]))}, classes {', '.join(ds.classes)}")
    if image_size is not None:
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
                or image_size < 8:
            raise ValueError(f"image_size must be None or an integer >= 8, got {image_size!r}")
        if ds.train.images.ndim not in (3, 4) or (ds.train.images.ndim == 4 and
                                                  ds.train.images.shape[-1] not in (3, 4)):
            raise ValueError(f"image_size applies to 2-D images (n, H, W[, C]), got a stack of "
                             f"shape {ds.train.images.shape}")
        stored = ds.train.images.shape[1:3]
        ds = ds.resized(int(image_size))
        if log is not None and tuple(stored) != (image_size, image_size):
            log(f"images resized from {stored[0]}x{stored[1]} to {image_size}x{image_size} "
                f"(anti-aliased) for both roads")
    try:
        load_at_start = [round(x, 2) for x in os.getloadavg()]
    except OSError:              # not on every platform
        load_at_start = None
    evaluation = evaluate(ds, methods, cv=cv, seed=seed, epochs=epochs, backend=backend,
                          progress=progress, log=log, n_jobs=n_jobs, budget=budget,
                          select=select, scheduler=scheduler, **evaluate_options)
    evaluation.dataset.setdefault("class_counts", _class_counts(ds))
    if load_at_start is not None:
        evaluation.settings.setdefault("load_average_at_start", load_at_start)
    if image_size is not None:
        evaluation.settings["image_size"] = int(image_size)
    result = CompareResult(evaluation)
    if out is not None:
        result.save(out, explain=explain)
    return result


# --------------------------------------------------------------------------------------------
# segment

#: The :class:`~medfeat.deep.Segmenter` settings of :func:`segment` when not told: a two-level
#: U-Net of width 16 and at most 30 epochs, stopped early on the validation Dice.
SEGMENT_DEFAULTS = {"kind": "unet", "epochs": 30, "batch_size": 32, "lr": 3e-3, "patience": 6,
                    "width": 16, "depth": 2}


@dataclasses.dataclass
class SegmentResult:
    """What :func:`segment` returns: the fitted segmenter, its test scores and predictions.

    Attributes
    ----------
    dataset : dict
        ``{"name", "n_train", "n_val", "n_test", "classes", "image_shape"}``.
    metrics : dict
        Per foreground class (``metrics["classes"][name]``): ``dice`` and ``iou`` pooled over
        every test pixel, ``dice_per_image`` (the mean over the test images that hold the class
        in the truth or the prediction) with its 95 % bootstrap interval ``dice_ci95``, and
        ``n_images``; ``mean_dice`` and ``mean_iou`` over the foreground classes.
    settings : dict
    seconds : dict
        ``fit``, ``predict`` and ``total``.
    segmenter : medfeat.deep.Segmenter
    test_images, test_masks, predictions : ndarray
    """

    dataset: dict
    metrics: dict
    settings: dict
    seconds: dict
    segmenter: object
    test_images: np.ndarray
    test_masks: np.ndarray
    predictions: np.ndarray

    def to_dict(self):
        """The ``metrics.json`` document of a segmentation report."""
        from .evaluate import jsonable

        return jsonable({"task": "segmentation", "dataset": self.dataset,
                         "metrics": self.metrics, "settings": self.settings,
                         "seconds": self.seconds,
                         "history": getattr(self.segmenter, "history_", {})})

    def summary(self):
        """A few lines: Dice and IoU per class."""
        lines = [f"{'class':<14} {'dice':>6} {'dice/image [95% CI]':>26} {'iou':>6}"]
        for name, m in self.metrics["classes"].items():
            lo, hi = m["dice_ci95"]
            lines.append(f"{name:<14} {m['dice']:6.3f} {m['dice_per_image']:9.3f} "
                         f"[{lo:.3f}, {hi:.3f}]   {m['iou']:6.3f}")
        lines.append(f"mean Dice {self.metrics['mean_dice']:.3f}, mean IoU "
                     f"{self.metrics['mean_iou']:.3f} over the foreground classes")
        return "\n".join(lines)

    def save(self, out):
        """Write the report folder (:func:`medfeat.report.write_segmentation_report`)."""
        from .report import write_segmentation_report

        return write_segmentation_report(self, out)


def _per_image_dice(truth, pred, c):
    t, p = truth == c, pred == c
    inter = (t & p).sum(axis=(1, 2))
    total = t.sum(axis=(1, 2)) + p.sum(axis=(1, 2))
    held = total > 0
    return 2.0 * inter[held] / total[held]


def _segment_scores(truth, pred, classes, seed, n_boot):
    from .deep.segment import dice_coefficient, iou_score

    k = len(classes)
    dice = dice_coefficient(truth, pred, n_classes=k, average=None)
    iou = iou_score(truth, pred, n_classes=k, average=None)
    rng = np.random.default_rng([int(seed), 11])
    out = {}
    for c in range(1, k):
        per = _per_image_dice(truth, pred, c)
        if per.size:
            boots = per[rng.integers(0, per.size, (int(n_boot), per.size))].mean(axis=1)
            ci = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
        else:
            ci = [math.nan, math.nan]
        out[classes[c]] = {"dice": float(dice[c]), "iou": float(iou[c]),
                           "dice_per_image": float(per.mean()) if per.size else math.nan,
                           "dice_ci95": ci, "n_images": int(per.size)}
    return {"classes": out,
            "mean_dice": float(np.nanmean([m["dice"] for m in out.values()])),
            "mean_iou": float(np.nanmean([m["iou"] for m in out.values()]))}


def segment(source=None, *, seed=0, out=None, log=print, verbose=0, n_boot=1000, **options):
    """Train a segmentation network on a dataset of label maps, score it on its test split.

    Parameters
    ----------
    source : SegmentationSet, str or os.PathLike, optional
        A :class:`medfeat.io.SegmentationSet`, an ``.npz`` of ``{split}_images`` and
        ``{split}_masks`` (:func:`medfeat.io.load_segmentation_npz`), or None for the embedded
        synthetic CT phantoms with their liver and spleen outlined
        (:func:`medfeat.io.make_phantom_segmentation`, 600 slices of 48 x 48).
    seed : int, optional
        Seeds the phantoms, the network and the bootstrap.
    out : str or os.PathLike, optional
        Report folder to write (checked before training).
    log : callable or None, optional
        Receives one-line progress messages.
    verbose : int, optional
        Keras' per-epoch output.
    n_boot : int, optional
        Bootstrap replicates of the per-image Dice interval.
    **options
        :class:`medfeat.deep.Segmenter` settings over :data:`SEGMENT_DEFAULTS` (``kind``,
        ``epochs``, ``width``, ...).

    Returns
    -------
    SegmentResult

    Raises
    ------
    SourceError
        ``source`` is not a segmentation set or a path to one.

    Examples
    --------
    >>> from medfeat import io, pipeline
    >>> ds = io.make_phantom_segmentation(n=40, size=32, seed=0)
    >>> res = pipeline.segment(ds, epochs=1, width=4, depth=1, log=None)
    >>> sorted(res.metrics["classes"]), res.predictions.shape
    (['liver', 'spleen'], (6, 32, 32))
    """
    import time

    from . import io as mio

    t0 = time.perf_counter()
    say = log if log is not None else (lambda *_: None)
    if out is not None:
        from .report import check_out

        check_out(out)
    if source is None:
        data = mio.make_phantom_segmentation(seed=seed)
    elif isinstance(source, mio.SegmentationSet):
        data = source
    elif isinstance(source, (str, os.PathLike)):
        path = os.path.expanduser(os.fspath(source))
        if not os.path.isfile(path):
            raise SourceError(f"source {os.fspath(source)!r} is not a file (a segmentation "
                              ".npz of {train,val,test}_images and _masks)")
        data = mio.load_segmentation_npz(path)
    else:
        raise SourceError(f"source must be a SegmentationSet, an .npz path or None, got "
                          f"{type(source).__name__}")
    from .deep import Segmenter

    settings = {**SEGMENT_DEFAULTS, **options, "seed": int(seed)}
    (xt, mt), (xv, mv), (xs, ms) = data.train, data.val, data.test
    say(f"segmentation {data.name!r}: {len(xt)} train / {len(xv)} val / {len(xs)} test images "
        f"{'x'.join(map(str, xt.shape[1:]))}, classes {', '.join(data.classes)}; "
        f"{settings['kind']}, up to {settings['epochs']} epochs")
    seg = Segmenter(verbose=verbose, **settings)
    t1 = time.perf_counter()
    seg.fit(xt, mt, validation=(xv, mv))
    fit_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    pred = seg.predict(xs)
    predict_s = time.perf_counter() - t2
    metrics = _segment_scores(ms, pred, data.classes, seed, n_boot)
    say(f"trained {len(seg.history_.get('loss', []))} epochs (best {seg.history_['best_epoch']})"
        f" in {fit_s:.1f} s; test mean Dice {metrics['mean_dice']:.3f}")
    result = SegmentResult(
        dataset={"name": data.name, "n_train": len(xt), "n_val": len(xv), "n_test": len(xs),
                 "classes": list(data.classes), "image_shape": list(xt.shape[1:])},
        metrics=metrics, settings=settings,
        seconds={"fit": round(fit_s, 3), "predict": round(predict_s, 3),
                 "total": round(time.perf_counter() - t0, 3)},
        segmenter=seg, test_images=xs, test_masks=ms, predictions=pred)
    if out is not None:
        result.save(out)
    return result
