# The run-time switch of the AVX2 loops (_simd.h), included by every Cython kernel module that
# has such loops (``include``): each extension module holds its own switch.

cdef extern from "_simd.h":
    int medfeat_avx2_allowed
    int medfeat_has_avx2() noexcept nogil


def use_avx2(allowed=None):
    """Whether this module's AVX2 loops run (the CPU has AVX2 and they are allowed); with
    ``allowed``, allow or forbid them first. Both kinds of loop give the same results; tests run
    each."""
    global medfeat_avx2_allowed
    if allowed is not None:
        medfeat_avx2_allowed = 1 if allowed else 0
    return bool(medfeat_has_avx2())
