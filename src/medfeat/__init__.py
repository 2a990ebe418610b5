"""medfeat: medical images from disk to a diagnosis model.

Two roads share one front door and one judge: fast classical kernels and radiomics-style
features for scikit-learn models, and Keras 3 deep models, both scored by one evaluation harness.

Subpackages load on first use, so ``import medfeat`` stays light (it never imports TensorFlow).

Examples
--------
>>> import numpy as np
>>> import medfeat
>>> edges = medfeat.kernels.sobel(np.eye(8, dtype=np.float32))
>>> edges.shape
(8, 8)
"""

import importlib

__version__ = "0.1.0.dev0"

_SUBMODULES = ("kernels", "io", "augment", "features", "classical", "deep", "evaluate", "report",
               "pipeline", "cli")

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'medfeat' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
