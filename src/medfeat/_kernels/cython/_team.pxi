# The thread-team declarations and helpers every Cython kernel module includes (``include``):
# the late-thread rule of _team.h, whose state each extension module holds for itself.

from cython.parallel cimport threadid

cdef extern from "_team.h":
    double medfeat_now() noexcept nogil
    int medfeat_team(Py_ssize_t nchunks, double* t0, double* entered) noexcept nogil
    void medfeat_team_done(int team, double t0, const double* entered) noexcept nogil
    void medfeat_team_reset(int serial) noexcept nogil
    void medfeat_team_state(double* state) noexcept nogil


cdef inline void _entered(double* entered) noexcept nogil:
    # inside a parallel block: when this thread entered it (for medfeat_team_done)
    cdef int t = threadid()
    if t < 256:
        entered[t] = medfeat_now()


def team_reset(bint serial=False):
    """Forget that a parallel loop found its threads late (the next loops use their whole team);
    with ``serial``, run every loop on the calling thread until the next call (for tests: the
    results must be the same either way)."""
    medfeat_team_reset(serial)


def team_state():
    """``(serial_for, hold, last_late)``: how many more seconds the loops run on the calling
    thread, for how long the next late team would send them there, and how late (seconds) the
    last thread to enter the last parallel loop was (for diagnostics)."""
    cdef double st[3]
    medfeat_team_state(st)
    return st[0], st[1], st[2]
