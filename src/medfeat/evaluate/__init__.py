"""One judge for both roads: splits, scores, cross-validation and the paired comparison."""

from ._result import METRICS, Evaluation, MethodResult

__all__ = ["METRICS", "Evaluation", "MethodResult"]
