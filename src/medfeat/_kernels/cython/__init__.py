"""Cython implementations (compiled by setup.py). Private: use :mod:`medfeat.kernels`."""
