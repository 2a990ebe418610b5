"""Radiomics-grade features of images and volumes, computed with :mod:`medfeat.kernels`.

=================  ==========================================================================
module             functions
=================  ==========================================================================
first_order        :func:`intensity_stats` (IBSI-1 3.3), :func:`histogram_stats` (IBSI-1 3.4),
                   :func:`discretise` (IBSI-1 2.7)
texture            :func:`glcm_features`, :func:`glcm_matrices` (IBSI-1 3.6)
descriptors        :func:`edge_stats`, :func:`canny_density`, :func:`threshold_fractions`,
                   :func:`granulometry`, :func:`density_summary` (on :mod:`medfeat.kernels`)
extractor          :class:`FeatureExtractor` (scikit-learn transformer over image stacks,
                   optional masks: ``transform(X, masks=...)`` or ``stacked_masks=True``)
=================  ==========================================================================

Examples
--------
>>> import numpy as np
>>> from medfeat.features import intensity_stats
>>> intensity_stats(np.array([[1, 2], [3, 4]]))["mean"]
2.5
"""

from .first_order import (HISTOGRAM_NAMES, INTENSITY_NAMES, discretise, histogram_stats,
                          intensity_stats, roi_values)
from .texture import AGGREGATIONS, GLCM_NAMES, glcm_features, glcm_matrices
from .descriptors import (canny_density, density_summary, edge_stats, granulometry,
                          threshold_fractions, zone_names, zone_stats)
from .extractor import DEFAULT_FAMILIES, FAMILIES, FeatureExtractor

__all__ = [
    "intensity_stats", "histogram_stats", "discretise", "roi_values", "glcm_features",
    "glcm_matrices", "INTENSITY_NAMES", "HISTOGRAM_NAMES", "GLCM_NAMES", "AGGREGATIONS",
    "edge_stats", "canny_density", "threshold_fractions", "granulometry", "density_summary",
    "zone_stats", "zone_names", "FeatureExtractor", "FAMILIES", "DEFAULT_FAMILIES",
]
