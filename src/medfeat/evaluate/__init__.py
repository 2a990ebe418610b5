"""One judge for both roads: splits, scores, cross-validation and the paired comparison.

===================  ===========================================================================
module               names
===================  ===========================================================================
metrics              :func:`score` (ACC, AUC, F1, sensitivity, specificity, balanced accuracy and
                     the bootstrap CI of the AUC), :func:`confusion`, :func:`roc_auc`,
                     :func:`bootstrap_auc`
compare              :func:`delong` (paired DeLong test of two AUCs), :func:`paired_bootstrap`
splits               :func:`stratified_kfold`
search               model selection on the validation split: search spaces per method, the
                     one-standard-error rule, the time budget (:data:`search.DEFAULT_BUDGET`)
calibration          :class:`~calibration.Calibrator` (per-class shifts of the log-probabilities
                     fitted on validation: ACC at MedMNIST's rule on imbalanced data)
harness              :func:`evaluate` (every method through the same splits and scores; selection,
                     calibration and the ``"ensemble"`` method)
_result              :class:`Evaluation`, :class:`MethodResult`, :data:`METRICS`, :func:`jsonable`
===================  ===========================================================================
"""

from ._result import METRICS, Evaluation, MethodResult, jsonable
from .compare import delong, paired_bootstrap
from .harness import evaluate, method_names
from .metrics import bootstrap_auc, confusion, roc_auc, score
from .splits import stratified_kfold

__all__ = ["METRICS", "Evaluation", "MethodResult", "score", "confusion", "roc_auc",
           "bootstrap_auc", "delong", "paired_bootstrap", "stratified_kfold", "evaluate",
           "method_names", "jsonable"]
