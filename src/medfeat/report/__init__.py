"""The report folder: ``metrics.json``, ``report.md``, a self-contained ``report.html`` and PNG plots.

:func:`write_report` draws one :class:`medfeat.evaluate.Evaluation`:

=====================  =========================================================================
file                   what it holds
=====================  =========================================================================
``metrics.json``       ``Evaluation.to_dict()`` (its schema: ARCHITECTURE.md)
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

The package's modules, by responsibility: ``_plots`` (the PNGs), ``_render`` (the text of
``report.md`` and ``report.html``), ``_folder`` (what counts as a report folder, the check before a
run, the atomic swap into place), ``_common`` (what they share); this module puts them together.

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

import json

import numpy as np

from ._common import ReportError, _fmt, _is_multilabel, _secs
from ._folder import REPORT_FILES, _publish, check_out
from ._plots import (FIGSIZE, _plot_auc_ci, _plot_confusion, _plot_cv, _plot_gan_quality,
                     _plot_gan_samples, _plot_heatmaps, _plot_per_label, _plot_roc, _plot_search,
                     _plot_segmentation, _plot_time, _plot_training)
from ._render import PUBLISHED, _html, _machine, _markdown, _sections, _versions


__all__ = ["write_report", "write_segmentation_report", "check_out", "ReportError",
           "REPORT_FILES", "PUBLISHED", "FIGSIZE"]


def _check_evaluation(evaluation):
    for attr in ("dataset", "methods", "to_dict", "best"):
        if not hasattr(evaluation, attr):
            raise ReportError(f"evaluation must be a medfeat.evaluate.Evaluation, got "
                              f"{type(evaluation).__name__} (no {attr!r})")
    if not evaluation.methods:
        raise ReportError("evaluation holds no methods: nothing to report")


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
