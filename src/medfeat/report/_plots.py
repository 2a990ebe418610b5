"""The report's PNG plots (matplotlib, Agg backend), one function per file."""

from __future__ import annotations

import math

import numpy as np

from ._common import _classes, _fmt, _gan_record, _is_multilabel, _positive_scores, _searches


_DPI = 100


#: Figure sizes in inches (width, height) of the fixed-size plots; PNGs are these times _DPI.
FIGSIZE = {"roc": (6.4, 5.2), "auc_ci": (6.4, 4.0), "time": (6.4, 4.0), "cv": (6.4, 4.0)}


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
    from ..deep.gan import plot_samples

    plot_samples(gan, evaluation.test_images, y, path, n_per_class=6,
                 seed=int(evaluation.seed))
    return True


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
