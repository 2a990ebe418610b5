"""Numba CPU implementations (``@njit(parallel=True, cache=True)``). Private: use :mod:`medfeat.kernels`."""
