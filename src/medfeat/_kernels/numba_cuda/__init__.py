"""numba.cuda implementations. Private: use :mod:`medfeat.kernels`."""
