"""Fast image kernels shared by the classical and deep roads.

Every kernel takes a keyword-only ``backend="auto" | "cpu" | "cython" | "numba" | "cuda"``: each
family has one CPU backend (:data:`FAMILY_BACKENDS`), which ``"cpu"`` names whatever it is, and
asking a family for a backend it lacks raises :class:`BackendNotImplementedError`. The names,
defaults and results follow scikit-image where it has the function. Submodules load lazily.
Every kernel also takes ``batch=True`` for a stack ``(N, H, W)`` of images, each processed on
its own: one launch per stage on 'cuda' (the way to run thousands of small images), image by
image (morphology: one plane-thick 3-D pass) on the CPU backends (:func:`density`: image by
image on every backend, with the checks and set-up done once).

=================  ==========================================================================
module             kernels
=================  ==========================================================================
edges              :func:`sobel`, :func:`prewitt`, :func:`canny`
morphology         :func:`erosion`, :func:`dilation`, :func:`opening`, :func:`closing`,
                   :func:`binary_erosion`, :func:`binary_dilation`, :func:`binary_opening`,
                   :func:`binary_closing`
footprints         :func:`disk`, :func:`rectangle`, :func:`diamond`, :func:`ball`, :func:`cube`
histograms         :func:`histogram`, :func:`density`, :func:`threshold_otsu`,
                   :func:`threshold_maxent`
intensity          :func:`normalize`, :func:`percentile`
=================  ==========================================================================

Examples
--------
>>> import numpy as np
>>> from medfeat import kernels
>>> image = np.zeros((16, 16), np.uint8)
>>> image[4:12, 4:12] = 200
>>> edges = kernels.sobel(image)
>>> bool(edges[8, 4] > 0), bool(edges[8, 8] == 0)
(True, True)
"""

import importlib

from ._dispatch import (FAMILY_BACKENDS, BackendNotImplementedError, BackendUnavailableError,
                        available_backends, backend_status)

_EXPORTS = {
    "sobel": "edges",
    "prewitt": "edges",
    "canny": "edges",
    "erosion": "morphology",
    "dilation": "morphology",
    "opening": "morphology",
    "closing": "morphology",
    "binary_erosion": "morphology",
    "binary_dilation": "morphology",
    "binary_opening": "morphology",
    "binary_closing": "morphology",
    "disk": "footprints",
    "rectangle": "footprints",
    "diamond": "footprints",
    "ball": "footprints",
    "cube": "footprints",
    "histogram": "histograms",
    "density": "histograms",
    "threshold_otsu": "histograms",
    "threshold_maxent": "histograms",
    "normalize": "intensity",
    "percentile": "intensity",
    "DeviceChunkError": "_dask",
}

__all__ = ["available_backends", "backend_status", "BackendUnavailableError",
           "BackendNotImplementedError", "FAMILY_BACKENDS", *_EXPORTS]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medfeat.kernels' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
