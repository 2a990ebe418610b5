"""The report folder: ``metrics.json``, ``report.md``, a self-contained ``report.html`` and PNG plots.

:func:`write_report` draws one :class:`medfeat.evaluate.Evaluation`:

=====================  =========================================================================
file                   what it holds
=====================  =========================================================================
``metrics.json``       ``Evaluation.to_dict()`` (the schema of DESIGN.md)
``report.md``          dataset, sizes, the results table, the paired comparison, the best method,
                       settings, versions and machine; links to the PNGs beside it
``report.html``        the same, with every plot inline (base64 ``data:`` URIs, no external assets)
``roc.png``            ROC curves of all methods on one chart, test AUC in the legend
``confusion.png``      one confusion matrix per method
``auc_ci.png``         test AUC with its 95 % bootstrap interval per method
``time.png``           fit and predict seconds per method
``cv.png``             cross-validation AUC per fold and method (when cross-validation ran)
``heatmaps.png``       integrated-gradients attributions of the best deep model over a few test
                       images (when a deep model is present and can explain itself)
``per_label.png``      multi-label tasks: each finding's test AUC with its 95 % interval, per
                       method (the confusion matrices are then per finding, and the ROC curves
                       micro-averaged over the findings)
=====================  =========================================================================

The folder is built beside ``out`` under a temporary name and swapped into place, so a reader
never sees half a report, and re-running into a previous report replaces it. A folder that is
not a medfeat report is never replaced.

Examples
--------
>>> import tempfile, numpy as np
>>> from medfeat.evaluate import Evaluation, MethodResult
>>> y = np.array([0, 0, 1, 1]); p = np.array([[.8, .2], [.4, .6], [.3, .7], [.1, .9]])
>>> r = MethodResult("toy", "classical", {"acc": .75, "auc": 1.0, "auc_ci95": [1.0, 1.0]}, {},
...                  0.1, 0.01, y, p, np.array([[1, 1], [0, 2]]))
>>> ev = Evaluation({"name": "toy", "n_train": 8, "n_val": 2, "n_test": 4,
...                  "classes": ["no", "yes"]}, {"toy": r})
>>> folder = write_report(ev, tempfile.mkdtemp() + "/report")
>>> sorted(p.name for p in folder.iterdir())[:3]
['auc_ci.png', 'confusion.png', 'metrics.json']
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import math
import os
import pathlib
import platform
import re
import shutil
import tempfile

import numpy as np

from .io import _medmnist

__all__ = ["write_report", "write_segmentation_report", "check_out", "ReportError",
           "REPORT_FILES", "PUBLISHED"]

#: Files a report folder may hold; a folder with anything else in it is not replaced.
REPORT_FILES = ("metrics.json", "report.md", "report.html", "roc.png", "confusion.png",
                "auc_ci.png", "time.png", "cv.png", "search.png", "heatmaps.png",
                "per_label.png", "gan_samples.png", "gan_quality.png", "segmentation.png",
                "training.png")

#: Published test scores of MedMNIST v2 for the sets this report knows (model -> (AUC, ACC));
#: kept with the other MedMNIST facts in :mod:`medfeat.io`.
PUBLISHED = _medmnist.PUBLISHED
#: Official PneumoniaMNIST split sizes (normal, pneumonia), from the MedMNIST v2 paper.
_PNEUMONIA_OFFICIAL = {"train": (1214, 3494), "val": (135, 389), "test": (234, 390)}

_DPI = 100
#: Figure sizes in inches (width, height) of the fixed-size plots; PNGs are these times _DPI.
FIGSIZE = {"roc": (6.4, 5.2), "auc_ci": (6.4, 4.0), "time": (6.4, 4.0), "cv": (6.4, 4.0)}


class ReportError(ValueError):
    """The report cannot be written where asked (``out`` is a file, or a folder that is not a
    medfeat report), or the evaluation is not one."""


# --------------------------------------------------------------------------------------------
# small helpers


def _fmt(value, digits=3):
    if value is None:
        return "–"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def _secs(value):
    if value is None or not math.isfinite(float(value)):
        return "–"
    value = float(value)
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _check_evaluation(evaluation):
    for attr in ("dataset", "methods", "to_dict", "best"):
        if not hasattr(evaluation, attr):
            raise ReportError(f"evaluation must be a medfeat.evaluate.Evaluation, got "
                              f"{type(evaluation).__name__} (no {attr!r})")
    if not evaluation.methods:
        raise ReportError("evaluation holds no methods: nothing to report")


def _is_multilabel(evaluation):
    """True for a multi-label task (0/1 label matrices ``(n, L)``)."""
    if (evaluation.dataset or {}).get("multilabel"):
        return True
    first = next(iter(evaluation.methods.values()))
    return np.ndim(first.y_true) == 2 and np.shape(first.y_true)[1] >= 2


def _positive_scores(result):
    """Binary tasks: the positive-class column; None for multi-class."""
    proba = np.asarray(result.proba, dtype=np.float64)
    if proba.ndim == 2 and proba.shape[1] == 2:
        return proba[:, 1]
    if proba.ndim == 1:
        return proba
    return None


def _classes(evaluation):
    classes = evaluation.dataset.get("classes")
    if classes:
        return [str(c) for c in classes]
    first = next(iter(evaluation.methods.values()))
    return [str(k) for k in range(np.asarray(first.confusion).shape[0])]


def _table_rows(evaluation):
    """One dict per method with the numbers of the report's table (strings)."""
    rows = []
    for name, r in evaluation.methods.items():
        t = r.test or {}
        ci = t.get("auc_ci95") or [None, None]
        cv_mean = (r.cv or {}).get("mean", {}) or {}
        cv_std = (r.cv or {}).get("std", {}) or {}
        cv = "–"
        if cv_mean.get("auc") is not None:
            cv = f"{_fmt(cv_mean.get('auc'))} ± {_fmt(cv_std.get('auc'))}"
        rows.append({
            "method": name, "family": r.family, "ACC": _fmt(t.get("acc")),
            "AUC [95% CI]": f"{_fmt(t.get('auc'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]",
            "F1": _fmt(t.get("f1")), "sens.": _fmt(t.get("sensitivity")),
            "spec.": _fmt(t.get("specificity")), "CV AUC (mean ± std)": cv,
            "fit s": _secs(r.fit_seconds), "predict s": _secs(r.predict_seconds)})
    return rows


def _versions():
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("medfeat", "numpy", "scipy", "scikit-learn", "scikit-image", "numba", "pandas",
                 "matplotlib", "tensorflow", "keras", "jax", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    keras = __import__("sys").modules.get("keras")
    if keras is not None:
        try:
            out["keras backend"] = keras.backend.backend()
        except Exception:  # an odd keras install must not stop a report
            pass
    return out


def _machine():
    info = {"platform": platform.platform(), "processor": platform.machine(),
            "cpu cores": os.cpu_count()}
    try:
        info["load average (1, 5, 15 min)"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


def _dataset_notes(evaluation):
    """Notes about the data: for PneumoniaMNIST the published numbers and how this copy differs."""
    ds = evaluation.dataset
    name = str(ds.get("name", "")).lower()
    notes = []
    known = next((k for k in PUBLISHED if k in name), None)
    if known is not None:
        shown = _medmnist.PUBLISHED_PEERS["deep"] + _medmnist.PUBLISHED_PEERS["classical"] + \
            ("Google AutoML Vision",)
        lines = "; ".join(f"{m}: AUC {a:.3f}, ACC {c:.3f}" for m, (a, c) in
                          PUBLISHED[known].items() if m in shown)
        notes.append(f"MedMNIST v2 published {known} test scores (Yang et al., Scientific "
                     f"Data 10:41, 2023, official splits): {lines}.")
    if "pneumoniamnist" in name:
        sizes = ds.get("class_counts") or {}
        found = f"n_train {ds.get('n_train')}, n_val {ds.get('n_val')}, n_test {ds.get('n_test')}"
        if sizes:
            found += " (per class: " + "; ".join(
                f"{part} {'/'.join(str(c) for c in counts)}" for part, counts in sizes.items()) + ")"
        off = _PNEUMONIA_OFFICIAL
        official = (f"train {sum(off['train'])} ({off['train'][0]:,} normal / "
                    f"{off['train'][1]:,} pneumonia), val {sum(off['val'])}, test {sum(off['test'])}")
        differs = ds.get("n_train") != sum(off["train"])
        notes.append(f"Sizes found in this copy: {found}. The official split is {official}. "
                     + ("This copy's training split differs from the official one, so the "
                        "comparison with the published numbers is only loose."
                        if differs else "The training size matches the official split."))
    return notes


# --------------------------------------------------------------------------------------------
# plots


def _figure(size):
    from matplotlib.figure import Figure

    # a Figure without pyplot: no global state, no display, the Agg canvas is attached on save
    return Figure(figsize=size, dpi=_DPI, layout="constrained")


def _save(fig, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI, format="png")


def _plot_roc(evaluation, path):
    from sklearn.metrics import roc_curve

    fig = _figure(FIGSIZE["roc"])
    ax = fig.add_subplot()
    n_classes = len(_classes(evaluation))
    drawn = 0
    for name, r in evaluation.methods.items():
        y = np.asarray(r.y_true)
        multilabel = y.ndim == 2 and y.shape[1] >= 2
        y = y if multilabel else y.ravel()
        scores = _positive_scores(r)
        auc = (r.test or {}).get("auc")
        if multilabel:   # micro-averaged over the findings, mean per-label AUC in the legend
            fpr, tpr, _ = roc_curve(y.ravel(), np.asarray(r.proba, dtype=np.float64).ravel())
        elif scores is not None and n_classes <= 2:
            if np.unique(y).size < 2:
                continue
            fpr, tpr, _ = roc_curve(y, scores)
        else:  # multi-class: micro-averaged one-vs-rest curve, macro AUC in the legend
            proba = np.asarray(r.proba, dtype=np.float64)
            onehot = np.eye(proba.shape[1])[y]
            fpr, tpr, _ = roc_curve(onehot.ravel(), proba.ravel())
        ax.plot(fpr, tpr, lw=1.6, label=f"{name} ({r.family}), AUC {_fmt(auc)}")
        drawn += 1
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (1 - specificity)",
           ylabel="true positive rate (sensitivity)",
           title="ROC on the test split" + (" (micro-averaged over the findings)"
                                            if _is_multilabel(evaluation) else
                                            " (micro-averaged)" if n_classes > 2 else ""))
    if drawn:
        ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def _plot_confusion_multilabel(evaluation, path):
    """Per method, one row per finding: its true negatives, false positives, false negatives and
    true positives at 0.5 (the 2 x 2 confusion matrix of each label, laid flat)."""
    classes = _classes(evaluation)
    names = list(evaluation.methods)
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = _figure((0.6 + 3.0 * ncols, 0.8 + (0.6 + 0.28 * len(classes)) * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    short = [c if len(c) <= 14 else c[:13] + "…" for c in classes]
    for ax, name in zip(axes.ravel(), names):
        cm = np.asarray(evaluation.methods[name].confusion, dtype=np.int64).reshape(-1, 4)
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1), aspect="auto")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks(range(4), ["TN", "FP", "FN", "TP"], fontsize=7)
        ax.set_yticks(range(len(classes)), short, fontsize=7)
        ax.set_title(name, fontsize=9)
    for ax in axes.ravel()[len(names):]:
        ax.set_axis_off()
    fig.suptitle("Confusion per finding (threshold 0.5)", fontsize=9)
    _save(fig, path)


def _plot_per_label(evaluation, path):
    """Each finding's test AUC with its 95 % bootstrap interval, one marker per method."""
    classes = _classes(evaluation)
    names = list(evaluation.methods)
    fig = _figure((max(6.4, 0.9 + 0.55 * len(classes) * max(1, len(names)) ** 0.5), 4.2))
    ax = fig.add_subplot()
    width = 0.8 / max(len(names), 1)
    for m, name in enumerate(names):
        rows = (evaluation.methods[name].test or {}).get("per_label") or []
        xs, ys, lo, hi = [], [], [], []
        for k, row in enumerate(rows):
            auc = row.get("auc")
            if auc is None or not math.isfinite(auc):
                continue
            ci = row.get("auc_ci95") or [None, None]
            xs.append(k - 0.4 + width * (m + 0.5))
            ys.append(auc)
            lo.append(max(auc - ci[0], 0.0) if ci[0] is not None and math.isfinite(ci[0])
                      else 0.0)
            hi.append(max(ci[1] - auc, 0.0) if ci[1] is not None and math.isfinite(ci[1])
                      else 0.0)
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", ms=4, capsize=3, lw=1, label=name)
    ax.set_xticks(range(len(classes)), classes, rotation=30 if len(classes) > 4 else 0,
                  fontsize=8, ha="right" if len(classes) > 4 else "center")
    ax.axhline(0.5, ls=":", color="grey", lw=1)
    ax.set_ylabel("test AUC (95 % bootstrap CI)")
    ax.set_title("AUC per finding")
    if names:
        ax.legend(fontsize=7, ncol=min(4, len(names)))
    _save(fig, path)


def _per_label_rows(evaluation):
    """One row per finding: its positives in the test split and each method's AUC [CI]."""
    classes = _classes(evaluation)
    rows = []
    for k, label in enumerate(classes):
        row = {"finding": label}
        for name, r in evaluation.methods.items():
            per = (r.test or {}).get("per_label") or []
            if k < len(per):
                row.setdefault("test positives", str(per[k].get("n_positive")))
                ci = per[k].get("auc_ci95") or [None, None]
                row[name] = (f"{_fmt(per[k].get('auc'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]")
        rows.append(row)
    return rows


def _plot_confusion(evaluation, path):
    if _is_multilabel(evaluation):
        return _plot_confusion_multilabel(evaluation, path)
    classes = _classes(evaluation)
    names = list(evaluation.methods)
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    cell = 0.9 + 0.35 * len(classes)
    fig = _figure((0.4 + cell * ncols * 1.25, 0.4 + cell * nrows * 1.15))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    short = [c if len(c) <= 12 else c[:11] + "…" for c in classes]
    for ax, name in zip(axes.ravel(), names):
        cm = np.asarray(evaluation.methods[name].confusion, dtype=np.int64)
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), short, fontsize=7, rotation=30 if len(classes) > 2 else 0)
        ax.set_yticks(range(len(classes)), short, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    for ax in axes.ravel()[len(names):]:
        ax.set_axis_off()
    _save(fig, path)


def _plot_auc_ci(evaluation, path):
    fig = _figure(FIGSIZE["auc_ci"])
    ax = fig.add_subplot()
    names = list(evaluation.methods)
    colours = {"classical": "tab:blue", "deep": "tab:orange", "ensemble": "tab:green"}
    for k, name in enumerate(names):
        r = evaluation.methods[name]
        auc = (r.test or {}).get("auc")
        ci = (r.test or {}).get("auc_ci95") or [None, None]
        if auc is None or not math.isfinite(auc):
            continue
        lo = auc - ci[0] if ci[0] is not None else 0.0
        hi = ci[1] - auc if ci[1] is not None else 0.0
        ax.errorbar([k], [auc], yerr=[[max(lo, 0.0)], [max(hi, 0.0)]], fmt="o", capsize=5,
                    color=colours.get(r.family, "tab:green"))
    ax.set_xticks(range(len(names)), names, rotation=20 if len(names) > 5 else 0)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylabel("test AUC (95 % bootstrap CI)")
    ax.axhline(0.5, ls=":", color="grey", lw=1)
    ax.set_title("AUC per method (blue: classical, orange: deep, green: ensemble)")
    _save(fig, path)


def _plot_time(evaluation, path):
    fig = _figure(FIGSIZE["time"])
    ax = fig.add_subplot()
    names = list(evaluation.methods)
    y = np.arange(len(names))
    fit = [max(float(evaluation.methods[n].fit_seconds or 0.0), 1e-4) for n in names]
    pred = [max(float(evaluation.methods[n].predict_seconds or 0.0), 1e-4) for n in names]
    ax.barh(y - 0.2, fit, height=0.4, label="fit")
    ax.barh(y + 0.2, pred, height=0.4, label="predict (test split)")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale)")
    ax.set_title("Time per method")
    ax.legend(fontsize=8)
    _save(fig, path)


def _cv_folds(result, metric="auc"):
    folds = (result.cv or {}).get("folds") or []
    vals = [f.get(metric) for f in folds if isinstance(f, dict)]
    return [float(v) for v in vals if v is not None and math.isfinite(float(v))]


def _plot_cv(evaluation, path):
    names = [n for n, r in evaluation.methods.items() if _cv_folds(r)]
    if not names:
        return False
    fig = _figure(FIGSIZE["cv"])
    ax = fig.add_subplot()
    data = [_cv_folds(evaluation.methods[n]) for n in names]
    ax.boxplot(data, positions=range(len(names)), widths=0.5)
    rng = np.random.default_rng(0)   # jitter only, so the points do not overlap
    for k, vals in enumerate(data):
        ax.scatter(k + rng.uniform(-0.08, 0.08, len(vals)), vals, s=14, color="tab:red", zorder=3)
    ax.set_xticks(range(len(names)), names, rotation=20 if len(names) > 5 else 0)
    k = (evaluation.methods[names[0]].cv or {}).get("k", len(data[0]))
    ax.set_ylabel("AUC per fold")
    ax.set_title(f"{k}-fold cross-validation on the training split")
    _save(fig, path)
    return True


def _searches(evaluation):
    """``{name: search record}`` of the methods whose settings were searched."""
    return {n: r.params["search"] for n, r in evaluation.methods.items()
            if isinstance(r.params, dict) and isinstance(r.params.get("search"), dict)
            and r.params["search"].get("trials")}


def _plot_search(evaluation, path):
    """Validation AUC of every trial per method; the default hollow, the chosen one a star."""
    searches = _searches(evaluation)
    if not searches:
        return False
    fig = _figure(FIGSIZE["cv"])
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)   # jitter only
    names = list(searches)
    for k, name in enumerate(names):
        rec = searches[name]
        vals = [t.get("val_auc") for t in rec["trials"]]
        vals = np.array([v if v is not None else np.nan for v in vals], dtype=float)
        x = k + rng.uniform(-0.12, 0.12, vals.size)
        ax.scatter(x[1:], vals[1:], s=12, color="tab:grey", alpha=0.7, zorder=2)
        ax.scatter(x[:1], vals[:1], s=40, facecolors="none", edgecolors="tab:blue", zorder=3,
                   label="default" if k == 0 else None)
        chosen = rec.get("chosen_val_auc")
        if chosen is not None and math.isfinite(float(chosen)):
            ax.scatter([k], [chosen], marker="*", s=120, color="tab:red", zorder=4,
                       label="chosen" if k == 0 else None)
    ax.set_xticks(range(len(names)), names, rotation=20 if len(names) > 5 else 0)
    ax.set_ylabel("validation AUC")
    ax.set_title("Model selection: every trial on the validation split")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)
    return True


def _all_families():
    from .features import DEFAULT_FAMILIES

    return tuple(DEFAULT_FAMILIES)


def _search_rows(evaluation):
    rows = []
    for name, rec in _searches(evaluation).items():
        r = evaluation.methods[name]
        chosen = {k: v for k, v in (rec.get("chosen") or {}).items()
                  if k not in ("families",)}
        fams = (rec.get("chosen") or {}).get("families")
        cal = (r.params or {}).get("calibration") or {}
        raw = (r.params or {}).get("uncalibrated_test") or {}
        rows.append({"method": name, "trials": str(len(rec.get("trials") or [])),
                     "skipped": str(len(rec.get("skipped") or [])),
                     "val AUC default": _fmt(rec.get("default_val_auc")),
                     "val AUC chosen": _fmt(rec.get("chosen_val_auc")),
                     "chosen": json.dumps(_plain(chosen), sort_keys=True)
                     + (f"; without {', '.join(f for f in _all_families() if f not in fams)}"
                        if fams and set(_all_families()) - set(fams) else "")
                     + (f"; with {', '.join(f for f in fams if f not in _all_families())}"
                        if fams and set(fams) - set(_all_families()) else ""),
                     "calibrated": (f"{len(cal['applied'])} of {len(cal['per_label'])} "
                                    f"findings" if "per_label" in cal else "yes")
                     if cal.get("applied") else
                     ("no" + (f" ({cal['reason']})" if cal.get("reason") else "")),
                     "test ACC uncalibrated": _fmt(raw.get("acc")) if raw else "–"})
    return rows


def _explain_candidate(evaluation):
    deep = [(n, r) for n, r in evaluation.methods.items() if r.family == "deep"]
    if not deep:
        return None, "no deep model in this comparison"
    def key(item):
        auc = (item[1].test or {}).get("auc")
        return -auc if auc is not None and math.isfinite(auc) else math.inf

    deep.sort(key=key)
    for name, r in deep:
        if r.estimator is not None and hasattr(r.estimator, "explain"):
            return name, None
    return None, "the deep models were not kept (no fitted estimator with explain())"


def _pick_images(y, proba, n):
    """Up to ``n`` test indices, alternating classes, the most confident first within each
    (multi-label: alternating the rows' first finding, none first)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] >= 2:
        first = np.where(y.any(axis=1), np.argmax(y, axis=1) + 1, 0)
        order = {c: list(np.flatnonzero(first == c)) for c in np.unique(first)}
        picked = []
        while len(picked) < n and any(order.values()):
            for c in sorted(order):
                if order[c] and len(picked) < n:
                    picked.append(order[c].pop(0))
        return np.asarray(picked, dtype=np.int64)
    y = y.ravel()
    classes = np.unique(y)
    order = {}
    for c in classes:
        idx = np.flatnonzero(y == c)
        if proba is not None:
            idx = idx[np.argsort(-np.asarray(proba)[idx, c], kind="stable")]
        order[c] = list(idx)
    picked = []
    while len(picked) < n and any(order.values()):
        for c in classes:
            if order[c] and len(picked) < n:
                picked.append(order[c].pop(0))
    return np.asarray(picked, dtype=np.int64)


def _plot_heatmaps(evaluation, path, n):
    """Attribution heat maps of the best deep model; returns (name or None, note)."""
    name, why = _explain_candidate(evaluation)
    if name is None:
        return None, why
    images = getattr(evaluation, "test_images", None)
    if images is None:
        return None, "the evaluation did not keep the test images"
    r = evaluation.methods[name]
    idx = _pick_images(r.y_true, r.proba, n)
    if idx.size == 0:
        return None, "no test images"
    sample = np.asarray(images)[idx]
    classes = _classes(evaluation)
    y = np.asarray(r.y_true)
    multilabel = y.ndim == 2 and y.shape[1] >= 2
    y = y if multilabel else y.ravel()
    proba = np.asarray(r.proba)
    volumes = sample.ndim == 5 or (sample.ndim == 4 and sample.shape[-1] not in (1, 3, 4))
    try:
        from medfeat.deep import overlay, plot_attributions

        attributions = np.asarray(r.estimator.explain(sample))
        if volumes:   # each volume: its three orthogonal slices through the most attribution
            titles = [f"true {classes[y[i]]}, pred {classes[int(np.argmax(proba[i]))]} "
                      f"({proba[i].max():.2f})" for i in idx]
            plot_attributions(sample, attributions, path, titles=titles, volumes=True,
                              slices="max")
            return name, None
        overlays = [overlay(_grey(img), _grey(att)) for img, att in zip(sample, attributions)]
    except (ImportError, NotImplementedError, ValueError, TypeError, AttributeError,
            RuntimeError) as exc:
        return None, f"integrated gradients failed for {name}: {type(exc).__name__}: {exc}"
    cols = len(idx)
    fig = _figure((1.7 * cols + 0.3, 3.9))
    axes = fig.subplots(2, cols, squeeze=False)
    for j, (i, img, ov) in enumerate(zip(idx, sample, overlays)):
        pred = int(np.argmax(proba[i]))
        axes[0, j].imshow(_grey(img), cmap="gray")
        if multilabel:    # the explained finding is the most probable one
            true = ", ".join(classes[k] for k in np.flatnonzero(y[i])) or "none"
            axes[0, j].set_title(f"true {true}\nexplained {classes[pred]} "
                                 f"({proba[i, pred]:.2f})", fontsize=7)
        else:
            axes[0, j].set_title(f"true {classes[y[i]]}\npred {classes[pred]} "
                                 f"({proba[i, pred]:.2f})", fontsize=7)
        axes[1, j].imshow(ov)
        for ax in axes[:, j]:
            ax.set_axis_off()
    fig.suptitle(f"Integrated gradients, {name} (bottom: attribution over the image)",
                 fontsize=9)
    _save(fig, path)
    return name, None


def _grey(image):
    """A 2-D view of one image: drops a single channel axis, averages colour channels."""
    a = np.asarray(image)
    if a.ndim == 3:
        a = a[..., 0] if a.shape[-1] == 1 else a.mean(axis=-1)
    return a


# --------------------------------------------------------------------------------------------
# text


def _gan_record(evaluation):
    """The GAN expansion record shared by the "+gan" methods, or None."""
    return next((r.params["gan"] for r in evaluation.methods.values()
                 if isinstance((r.params or {}).get("gan"), dict)), None)


def _plot_gan_quality(evaluation, path):
    """Bars of the two-sample AUC (real vs generated, and two halves of the real images); False
    when it was not computed."""
    rec = _gan_record(evaluation)
    if not rec or rec.get("two_sample_auc") is None:
        return False
    fig = _figure((6.0, 2.2))
    ax = fig.subplots()
    names, values = ["real vs generated"], [rec["two_sample_auc"]]
    if rec.get("two_sample_auc_real_halves") is not None:
        names.append("real vs real (two halves)")
        values.append(rec["two_sample_auc_real_halves"])
    ax.barh(names, values, color=["tab:red", "tab:gray"])
    ax.axvline(0.5, color="k", lw=0.8, ls="--")
    for i, v in enumerate(values):
        ax.text(min(v + 0.01, 0.93), i, f"{v:.3f}", va="center", fontsize=8)
    ax.set_xlim(0.0, 1.0)
    ax.invert_yaxis()
    ax.set_xlabel("classifier two-sample AUC (0.5: indistinguishable)")
    ax.set_title("GAN quality on the validation split")
    _save(fig, path)
    return True


def _plot_gan_samples(evaluation, path):
    """Real test images beside generated ones, per class; False without a fitted GAN."""
    gan = getattr(evaluation, "gan", None)
    y = next((r.y_true for r in evaluation.methods.values() if r.y_true is not None), None)
    if gan is None or evaluation.test_images is None or y is None:
        return False
    from .deep.gan import plot_samples

    plot_samples(gan, evaluation.test_images, y, path, n_per_class=6,
                 seed=int(evaluation.seed))
    return True


def _gan_rows(evaluation):
    """Each "<kind>+gan" method beside ``<kind>`` on the real split, when both ran."""
    rows = []
    for name, r in evaluation.methods.items():
        base = name[:-len("+gan")] if name.endswith("+gan") else None
        if base is None or base not in evaluation.methods:
            continue
        b = evaluation.methods[base]
        rows.append({"method": base, "test AUC real": _fmt(b.test.get("auc")),
                     "test AUC +GAN": _fmt(r.test.get("auc")),
                     "test ACC real": _fmt(b.test.get("acc")),
                     "test ACC +GAN": _fmt(r.test.get("acc"))})
    return rows


def _md_table(rows):
    if not rows:
        return ""
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(out)


def _html_table(rows):
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _comparison_text(evaluation):
    c = evaluation.comparison
    if not c:
        return ("No paired comparison: it needs at least one classical and one deep method "
                "scored on the same test images.")
    test = {"delong": "DeLong's test", "paired_bootstrap": "paired bootstrap"}.get(
        c.get("test"), str(c.get("test", "paired test")))
    ci = c.get("ci95") or [None, None]
    p = c.get("p_value")
    ptxt = "–" if p is None else (f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}")
    text = (f"Best deep ({c.get('deep')}) minus best classical ({c.get('classical')}) test AUC"
            f"{' (' + c['on'] + ')' if c.get('on') else ''}: "
            f"{_fmt(c.get('auc_difference'), 4)} (95 % CI {_fmt(ci[0], 4)} to {_fmt(ci[1], 4)}), "
            f"{test}, p = {ptxt}.")
    per = (c.get("per_label") or {}).get("labels")
    if per:
        def one(row):
            p = row.get("p_value")
            if p is None:
                return f"{row['label']} –"
            return (f"{row['label']} {_fmt(row.get('auc_difference'), 3)} "
                    f"(p {p:.2g})" if p >= 1e-4 else
                    f"{row['label']} {_fmt(row.get('auc_difference'), 3)} (p {p:.1e})")
        text += (" The test is on the mean of the per-label AUCs (the figure the methods are "
                 "ranked by), resampling test images once for both methods; per finding, "
                 "DeLong's test (uncorrected for the number of findings): " +
                 "; ".join(one(r) for r in per) + ".")
    return text


def _sections(evaluation, plots, heat_note, heat_name):
    """The report's content as a list of (kind, payload) shared by the markdown and HTML writers."""
    ds = evaluation.dataset
    best = evaluation.best()
    parts = [("h1", f"medfeat report: {ds.get('name') or 'dataset'}")]
    classes = _classes(evaluation)
    counts = ds.get("class_counts") or {}
    per_class = ""
    if counts:
        per_class = (" Positives per finding (" if _is_multilabel(evaluation) else
                     " Per class (") + " / ".join(classes) + "): " + "; ".join(
            f"{part} {' / '.join(str(c) for c in n)}" for part, n in counts.items()) + "."
    parts.append(("p", f"Dataset {ds.get('name') or '(unnamed)'}: {len(classes)} "
                       f"{'findings (multi-label)' if _is_multilabel(evaluation) else 'classes'} "
                       f"({', '.join(classes)}); {ds.get('n_train')} training, {ds.get('n_val')} "
                       f"validation and {ds.get('n_test')} test images.{per_class}"))
    for note in _dataset_notes(evaluation):
        parts.append(("note", note))
    parts.append(("h2", "Results on the test split"))
    parts.append(("table", _table_rows(evaluation)))
    if _is_multilabel(evaluation):
        parts.append(("p", "Multi-label task: every image has its own 0/1 value of each "
                           "finding. As the MedMNIST evaluator scores ChestMNIST, AUC is the "
                           "mean of the per-finding AUCs and ACC the mean per-finding accuracy "
                           "at 0.5 (F1, sensitivity and specificity likewise means over the "
                           "findings). Per finding (test AUC [95 % bootstrap CI]):"))
        parts.append(("table", _per_label_rows(evaluation)))
    parts.append(("p", "ACC uses a 0.5 threshold on the positive-class score (binary tasks, as "
                       "the MedMNIST evaluator) or the arg-max class; AUC is one-vs-rest macro "
                       "for more than two classes; the interval is a 95 % bootstrap over test "
                       "images; CV is stratified k-fold on the training split. Fit and "
                       "predict seconds of a classical method include the feature extraction "
                       "of its split (computed once and shared by the classical methods)."))
    no_cv = [n for n, r in evaluation.methods.items() if r.family == "deep" and not r.cv]
    if no_cv:
        parts.append(("p", f"Not cross-validated: {', '.join(no_cv)} (deep methods train k more "
                           "times for that; their test scores with the bootstrap interval are "
                           "the figures that compare the two roads)."))
    if best is not None:
        r = evaluation.methods[best]
        parts.append(("p", f"Best method by test AUC: **{best}** ({r.family}), AUC "
                           f"{_fmt(r.test.get('auc'))}, ACC {_fmt(r.test.get('acc'))}."))
    for fam in ("classical", "deep"):
        b = evaluation.best(fam)
        if b is not None and b != best:
            parts.append(("p", f"Best {fam} method: {b} (AUC "
                               f"{_fmt(evaluation.methods[b].test.get('auc'))})."))
    search_rows = _search_rows(evaluation)
    if search_rows:
        parts.append(("h2", "Model selection on the validation split"))
        parts.append(("p", "Each method named by kind searched its settings on the validation "
                           "split (ROC AUC; the test split is scored once, at the end): the "
                           "default is kept unless a candidate beats it by more than one "
                           "standard error of its validation AUC (Hanley and McNeil 1982). "
                           "Probabilities are then calibrated on the validation split "
                           "(per-class shifts of the log-probabilities, fitted by maximum "
                           "likelihood), which moves the 0.5 threshold back to the data's class "
                           "balance; for two classes it leaves the AUC unchanged."))
        parts.append(("table", search_rows))
        skipped = {n: rec["skipped"] for n, rec in _searches(evaluation).items()
                   if rec.get("skipped")}
        if skipped:
            budget = (evaluation.settings or {}).get("budget_minutes")
            parts.append(("note", "Skipped for the time budget" +
                          (f" ({budget:g} min)" if budget else "") + ": " + "; ".join(
                              f"{n}: {len(v)} candidate(s)" for n, v in skipped.items()) +
                          ". A larger --budget runs them."))
    gan = _gan_record(evaluation)
    if gan:
        parts.append(("h2", "GAN data expansion"))
        text = (f"The methods named '+gan' trained on the training split with "
                f"{gan.get('n_synthetic')} images from a class-conditional GAN (SNGAN with a "
                f"projection discriminator) added to the {gan.get('n_real')} real ones "
                f"({_secs(gan.get('seconds'))} to train and sample); validation and test hold "
                f"real images only, and the '+gan' methods are not cross-validated (the GAN has "
                f"seen every training image).")
        if gan.get("two_sample_auc") is not None:
            halves = gan.get("two_sample_auc_real_halves")
            text += (f" Classifier two-sample test ({gan.get('two_sample')}): AUC "
                     f"{_fmt(gan['two_sample_auc'])} for real against generated images"
                     + ("" if halves is None else
                        f", {_fmt(halves)} for two halves of the real ones")
                     + " (0.5: indistinguishable).")
        elif gan.get("two_sample"):
            text += f" Two-sample test: {gan['two_sample']}."
        parts.append(("p", text))
        rows = _gan_rows(evaluation)
        if rows:
            parts.append(("table", rows))
    parts.append(("h2", "Paired comparison"))
    parts.append(("p", _comparison_text(evaluation)))
    parts.append(("h2", "Plots"))
    captions = {"roc.png": "ROC curves", "confusion.png": "Confusion matrices (test split)",
                "auc_ci.png": "Test AUC with 95 % CI", "time.png": "Fit and predict time",
                "cv.png": "Cross-validation AUC per fold",
                "search.png": "Model selection: validation AUC of every trial",
                "heatmaps.png": f"Integrated-gradients heat maps ({heat_name})",
                "per_label.png": "Test AUC per finding with 95 % CI",
                "gan_samples.png": "Real test images (left) beside GAN-generated ones (right), "
                                   "per class",
                "gan_quality.png": "GAN quality: classifier two-sample AUC"}
    for fname in plots:
        parts.append(("img", (fname, captions.get(fname, fname))))
    if heat_note:
        parts.append(("note", f"No attribution heat maps: {heat_note}."))
    parts.append(("h2", "Settings"))
    settings = dict(evaluation.settings or {})
    settings.setdefault("seed", evaluation.seed)
    parts.append(("kv", settings))
    params = {n: r.params for n, r in evaluation.methods.items() if r.params}
    if params:
        parts.append(("p", "Per method:"))
        parts.append(("kv", {n: json.dumps(_plain(p), sort_keys=True) for n, p in params.items()}))
    parts.append(("h2", "Versions and machine"))
    parts.append(("kv", {**_versions(), **_machine()}))
    parts.append(("p", "Written " + datetime.datetime.now(datetime.timezone.utc)
                  .strftime("%Y-%m-%d %H:%M UTC") + " by medfeat.report."))
    return parts


def _plain(value):
    from medfeat.evaluate import jsonable

    value = jsonable(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _bold_md_to_html(text):
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def _markdown(parts):
    lines = []
    for kind, payload in parts:
        if kind == "h1":
            lines += [f"# {payload}", ""]
        elif kind == "h2":
            lines += [f"## {payload}", ""]
        elif kind == "p":
            lines += [payload, ""]
        elif kind == "note":
            lines += [f"> {payload}", ""]
        elif kind == "table":
            lines += [_md_table(payload), ""]
        elif kind == "img":
            fname, caption = payload
            lines += [f"![{caption}]({fname})", ""]
        elif kind == "kv":
            lines += [f"- {k}: {v}" for k, v in payload.items()] + [""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:72em;margin:2em auto;
padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:right}th{background:#f0f0f0}
td:first-child,td:nth-child(2){text-align:left}figure{margin:1em 0}img{max-width:100%}
blockquote{border-left:4px solid #f0a000;margin:1em 0;padding:0.2em 1em;background:#fff8e6}
figcaption{font-size:0.9em;color:#555}"""


def _html(parts, folder):
    body = []
    title = "medfeat report"
    for kind, payload in parts:
        if kind == "h1":
            title = payload
            body.append(f"<h1>{html.escape(payload)}</h1>")
        elif kind == "h2":
            body.append(f"<h2>{html.escape(payload)}</h2>")
        elif kind == "p":
            body.append(f"<p>{_bold_md_to_html(payload)}</p>")
        elif kind == "note":
            body.append(f"<blockquote>{_bold_md_to_html(payload)}</blockquote>")
        elif kind == "table":
            body.append(_html_table(payload))
        elif kind == "img":
            fname, caption = payload
            data = base64.b64encode((folder / fname).read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(caption)}" '
                        f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
                        "</figcaption></figure>")
        elif kind == "kv":
            items = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>"
                            for k, v in payload.items())
            body.append(f"<ul>{items}</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# --------------------------------------------------------------------------------------------
# the folder


def _is_report_folder(path):
    """True when ``path`` is an empty folder or holds only report files, metrics.json among them."""
    entries = [e for e in os.listdir(path)]
    if not entries:
        return True
    allowed = set(REPORT_FILES)
    return "metrics.json" in entries and all(
        e in allowed and os.path.isfile(os.path.join(path, e)) for e in entries)


def check_out(out):
    """The absolute report folder for ``out``, checked before any work is done.

    A folder that does not exist yet (in an existing parent), an empty one or a previous medfeat
    report is accepted (:func:`write_report` replaces it); a file, a link or a folder holding
    anything else is refused, so a report never lands on the user's own files.

    Parameters
    ----------
    out : str or os.PathLike

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ReportError
        Naming the folder and why it cannot take a report.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> check_out(os.path.join(root, "report")).name
    'report'
    >>> open(os.path.join(root, "notes.txt"), "w").close()
    >>> check_out(root)
    Traceback (most recent call last):
    ...
    medfeat.report.ReportError: out: ... is a non-empty folder that is not a medfeat report ...
    """
    out = pathlib.Path(os.fspath(out)).expanduser()
    if str(out) in ("", "."):
        out = pathlib.Path.cwd()
    out = out.absolute()
    if out.exists() or out.is_symlink():
        if out.is_symlink() or not out.is_dir():
            raise ReportError(f"out: {str(out)!r} exists and is not a folder; give a folder path "
                              "for the report")
        if not _is_report_folder(out):
            extra = sorted(e for e in os.listdir(out) if e not in REPORT_FILES)[:5]
            raise ReportError(
                f"out: {str(out)!r} is a non-empty folder that is not a medfeat report "
                f"(it holds {', '.join(extra) or 'files but no metrics.json'}); refusing to "
                "replace it — choose a new or empty folder")
    parent = out.parent
    if not parent.is_dir():
        raise ReportError(f"out: the parent folder {str(parent)!r} does not exist")
    return out


def write_report(evaluation, out, *, explain=True, n_heatmaps=6):
    """Write the report folder of one evaluation.

    Parameters
    ----------
    evaluation : medfeat.evaluate.Evaluation
        What :func:`medfeat.evaluate.evaluate` returned.
    out : str or os.PathLike
        The report folder. It is created, or replaced when it holds a previous medfeat report (or
        nothing); a folder holding anything else is refused. Its parent must exist.
    explain : bool, optional
        Draw integrated-gradients heat maps for the best deep model (needs the fitted model and
        ``evaluation.test_images``); skipped with a note in the report when not possible.
    n_heatmaps : int, optional
        Number of test images in the heat-map figure (alternating classes, most confident first).

    Returns
    -------
    pathlib.Path
        The report folder (absolute).

    Raises
    ------
    ReportError
        ``out`` is a file or a folder that is not a medfeat report, its parent is missing, or
        ``evaluation`` is not an Evaluation with at least one method.
    ValueError
        ``n_heatmaps`` is not a positive integer.

    Notes
    -----
    Everything is written into a temporary folder beside ``out`` (so on the same file system),
    then swapped in by renames: the previous report, if any, is moved aside, the new one renamed
    into place, and the old one deleted. On any failure the temporary folder is removed and the
    previous report is left as it was.

    Examples
    --------
    >>> import json, tempfile, numpy as np
    >>> from medfeat.evaluate import Evaluation, MethodResult
    >>> y = np.array([0, 1, 0, 1]); p = np.array([[.9, .1], [.2, .8], [.6, .4], [.45, .55]])
    >>> r = MethodResult("nb", "classical", {"acc": 1.0, "auc": 1.0, "auc_ci95": [1.0, 1.0]},
    ...                  {}, 0.2, 0.01, y, p, np.array([[2, 0], [0, 2]]))
    >>> ev = Evaluation({"name": "toy", "n_train": 10, "n_val": 2, "n_test": 4,
    ...                  "classes": ["a", "b"]}, {"nb": r})
    >>> folder = write_report(ev, tempfile.mkdtemp() + "/toy-report")
    >>> json.loads((folder / "metrics.json").read_text())["best"]
    'nb'
    """
    _check_evaluation(evaluation)
    if isinstance(n_heatmaps, bool) or not isinstance(n_heatmaps, (int, np.integer)) \
            or n_heatmaps < 1:
        raise ValueError(f"n_heatmaps must be a positive integer, got {n_heatmaps!r}")
    out = check_out(out)

    def fill(tmp):
        doc = evaluation.to_dict()
        (tmp / "metrics.json").write_text(json.dumps(doc, indent=2, allow_nan=False,
                                                     default=repr) + "\n",
                                          encoding="utf-8")
        plots = ["roc.png", "confusion.png", "auc_ci.png", "time.png"]
        if _is_multilabel(evaluation):
            _plot_per_label(evaluation, tmp / "per_label.png")
            plots.insert(3, "per_label.png")
        _plot_roc(evaluation, tmp / "roc.png")
        _plot_confusion(evaluation, tmp / "confusion.png")
        _plot_auc_ci(evaluation, tmp / "auc_ci.png")
        _plot_time(evaluation, tmp / "time.png")
        if _plot_cv(evaluation, tmp / "cv.png"):
            plots.append("cv.png")
        if _plot_search(evaluation, tmp / "search.png"):
            plots.append("search.png")
        if _plot_gan_samples(evaluation, tmp / "gan_samples.png"):
            plots.append("gan_samples.png")
        if _plot_gan_quality(evaluation, tmp / "gan_quality.png"):
            plots.append("gan_quality.png")
        heat_name, heat_note = None, None
        if explain:
            heat_name, heat_note = _plot_heatmaps(evaluation, tmp / "heatmaps.png",
                                                  int(n_heatmaps))
            if heat_name is not None:
                plots.append("heatmaps.png")
        else:
            heat_note = "not asked for (explain=False)"
        parts = _sections(evaluation, plots, heat_note, heat_name)
        (tmp / "report.md").write_text(_markdown(parts), encoding="utf-8")
        (tmp / "report.html").write_text(_html(parts, tmp), encoding="utf-8")

    return _publish(out, fill)


def _publish(out, fill):
    """Write a report folder atomically: ``fill(tmp)`` writes into a fresh temporary folder next
    to ``out``, which then replaces ``out`` (a previous report is moved aside first and removed
    last, so a failure at any point leaves the old report, or nothing, never half of one)."""
    tmp = pathlib.Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    old = None
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)   # mkdtemp makes it 0700; a report is an ordinary folder
        # swap: the old report aside, the new one in, the old one gone
        if out.exists():
            old = pathlib.Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.rmdir(old)
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old is not None:
                os.replace(old, out)
                old = None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out



# --------------------------------------------------------------------------------------------
# segmentation


def _plot_segmentation(result, path, n=6):
    """Test images with the true (green) and predicted (red) outlines of every foreground class,
    the images with the most foreground first."""
    from skimage.segmentation import find_boundaries

    images, truth, pred = result.test_images, result.test_masks, result.predictions
    order = np.argsort(-(truth > 0).sum(axis=(1, 2)), kind="stable")[:n]
    fig = _figure((2.2 * len(order), 2.6))
    axes = np.atleast_1d(fig.subplots(1, len(order)))
    for ax, i in zip(axes, order):
        img = np.asarray(images[i], dtype=np.float64)
        img = _grey(img) if img.ndim == 3 else img
        lo, hi = float(img.min()), float(img.max())
        rgb = np.repeat(((img - lo) / (hi - lo if hi > lo else 1.0))[..., None], 3, axis=-1)
        rgb[find_boundaries(truth[i], mode="inner")] = (0.1, 0.9, 0.1)
        rgb[find_boundaries(pred[i], mode="inner")] = (0.95, 0.1, 0.1)
        ax.imshow(rgb)
        ax.set_title(f"test #{int(i)}", fontsize=8)
        ax.set_axis_off()
    fig.suptitle("truth (green) and prediction (red)", fontsize=9)
    _save(fig, path)


def _plot_training(result, path):
    hist = getattr(result.segmenter, "history_", {}) or {}
    if not hist.get("dice"):
        return False
    fig = _figure((5.0, 3.0))
    ax = fig.subplots()
    epochs = np.arange(1, len(hist["dice"]) + 1)
    ax.plot(epochs, hist["dice"], label="train")
    if hist.get("val_dice"):
        ax.plot(epochs, hist["val_dice"], label="validation")
        ax.axvline(hist.get("best_epoch", epochs[-1]), color="k", lw=0.8, ls="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("foreground Dice")
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def write_segmentation_report(result, out):
    """Write the report folder of one :func:`medfeat.pipeline.segment` run.

    ``metrics.json`` (Dice and IoU per class, the per-image Dice with its bootstrap interval,
    settings, training history), ``report.md`` and ``report.html``, ``segmentation.png`` (test
    images with true and predicted outlines) and ``training.png``; written atomically, as
    :func:`write_report` writes (same rules for ``out``).

    Parameters
    ----------
    result : medfeat.pipeline.SegmentResult
    out : str or os.PathLike

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import os, tempfile
    >>> from medfeat import io, pipeline
    >>> res = pipeline.segment(io.make_phantom_segmentation(n=40, size=32), epochs=1, width=4,
    ...                        depth=1, log=None)
    >>> folder = write_segmentation_report(res, os.path.join(tempfile.mkdtemp(), "seg"))
    >>> sorted(p.name for p in folder.iterdir())[:3]
    ['metrics.json', 'report.html', 'report.md']
    """
    for attr in ("to_dict", "metrics", "test_images", "test_masks", "predictions"):
        if not hasattr(result, attr):
            raise ReportError(f"result must be what medfeat.pipeline.segment returns, got "
                              f"{type(result).__name__} (no {attr!r})")
    out = check_out(out)

    def fill(tmp):
        doc = result.to_dict()
        (tmp / "metrics.json").write_text(json.dumps(doc, indent=2, allow_nan=False,
                                                     default=repr) + "\n", encoding="utf-8")
        _plot_segmentation(result, tmp / "segmentation.png")
        plots = ["segmentation.png"] + (["training.png"]
                                        if _plot_training(result, tmp / "training.png") else [])
        ds, m = result.dataset, result.metrics
        rows = [{"class": name, "Dice": _fmt(v["dice"]), "IoU": _fmt(v["iou"]),
                 "Dice per image": _fmt(v["dice_per_image"]),
                 "95 % CI": f"[{_fmt(v['dice_ci95'][0])}, {_fmt(v['dice_ci95'][1])}]",
                 "images": str(v["n_images"])} for name, v in m["classes"].items()]
        hist = getattr(result.segmenter, "history_", {}) or {}
        parts = [("h1", f"medfeat segmentation report: {ds.get('name') or 'dataset'}"),
                 ("p", f"{ds['n_train']} training, {ds['n_val']} validation and {ds['n_test']} "
                       f"test images of {' x '.join(map(str, ds['image_shape']))}; classes "
                       f"{', '.join(ds['classes'])}."),
                 ("h2", "Results on the test split"), ("table", rows),
                 ("p", f"Mean over the foreground classes: Dice {_fmt(m['mean_dice'])}, IoU "
                       f"{_fmt(m['mean_iou'])}. Dice and IoU count every test pixel together; "
                       "the per-image Dice is the mean over the test images holding the class "
                       "(in the truth or the prediction), with a 95 % percentile bootstrap "
                       "interval over those images."),
                 ("p", f"{result.settings.get('kind')}: {len(hist.get('loss', []))} epochs, "
                       f"the best by validation Dice ({hist.get('best_epoch')}) kept; fit "
                       f"{_secs(result.seconds.get('fit'))}, predict "
                       f"{_secs(result.seconds.get('predict'))}."),
                 ("h2", "Plots")]
        captions = {"segmentation.png": "Test images: true (green) and predicted (red) outlines",
                    "training.png": "Foreground Dice per epoch"}
        parts += [("img", (f, captions[f])) for f in plots]
        parts += [("h2", "Settings"), ("kv", dict(result.settings)),
                  ("h2", "Versions and machine"), ("kv", {**_versions(), **_machine()})]
        (tmp / "report.md").write_text(_markdown(parts), encoding="utf-8")
        (tmp / "report.html").write_text(_html(parts, tmp), encoding="utf-8")

    return _publish(out, fill)
