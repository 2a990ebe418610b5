"""Radiomics-grade features of images and volumes, computed with :mod:`medfeat.kernels`.

=================  ==========================================================================
module             functions
=================  ==========================================================================
first_order        :func:`intensity_stats` (IBSI-1 3.3), :func:`histogram_stats` (IBSI-1 3.4),
                   :func:`discretise` (IBSI-1 2.7)
texture            :func:`glcm_features`, :func:`glcm_matrices` (IBSI-1 3.6)
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

__all__ = [
    "intensity_stats", "histogram_stats", "discretise", "roi_values", "glcm_features",
    "glcm_matrices", "INTENSITY_NAMES", "HISTOGRAM_NAMES", "GLCM_NAMES", "AGGREGATIONS",
]
