"""What the report's modules share: its error, number formats, views of an Evaluation."""

from __future__ import annotations

import math

import numpy as np


class ReportError(ValueError):
    """The report cannot be written where asked (``out`` is a file, or a folder that is not a
    medfeat report), or the evaluation is not one."""

    __module__ = "medfeat.report"      # where users import it from


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


def _is_multilabel(evaluation):
    """True for a multi-label task (0/1 label matrices ``(n, L)``)."""
    if (evaluation.dataset or {}).get("multilabel"):
        return True
    first = next(iter(evaluation.methods.values()))
    return np.ndim(first.y_true) == 2 and np.shape(first.y_true)[1] >= 2


def _classes(evaluation):
    classes = evaluation.dataset.get("classes")
    if classes:
        return [str(c) for c in classes]
    first = next(iter(evaluation.methods.values()))
    return [str(k) for k in range(np.asarray(first.confusion).shape[0])]


def _positive_scores(result):
    """Binary tasks: the positive-class column; None for multi-class."""
    proba = np.asarray(result.proba, dtype=np.float64)
    if proba.ndim == 2 and proba.shape[1] == 2:
        return proba[:, 1]
    if proba.ndim == 1:
        return proba
    return None


def _searches(evaluation):
    """``{name: search record}`` of the methods whose settings were searched."""
    return {n: r.params["search"] for n, r in evaluation.methods.items()
            if isinstance(r.params, dict) and isinstance(r.params.get("search"), dict)
            and r.params["search"].get("trials")}


def _gan_record(evaluation):
    """The GAN expansion record shared by the "+gan" methods, or None."""
    return next((r.params["gan"] for r in evaluation.methods.values()
                 if isinstance((r.params or {}).get("gan"), dict)), None)


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
