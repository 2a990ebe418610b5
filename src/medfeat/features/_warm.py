"""The first compile of the feature kernels, shared between processes.

Numba compiles each kernel on its first call and keeps the machine code in its on-disk cache
(``cache=True``), so only the first run after an install (or after a change to a kernel's source)
pays for it; on that run, compiling is most of the feature extraction's time, on one core,
because Numba's compiler is single-threaded. :func:`warm` splits the families between this
process and one helper process per spare core: the families are compiled at the same time,
each process writing its machine code to the same cache, and the real extraction then loads
the other processes' code instead of compiling it. With a warm cache nothing is started: the
helper process is launched only when this process's own share actually misses the cache
(Numba's ``numba:compile`` event fires on a miss and only then).

Only families whose kernels share no compiled function go to different processes: Numba names
a function's cache entries from the index it read, so two processes adding different
signatures of one function at the same time can leave an index entry pointing at the other's
machine code. Canny's fused sweep is the one family whose compiled functions are its own (and
about half of the whole compile), so it compiles in the helper while this process compiles the
rest.

Set ``MEDFEAT_PARALLEL_COMPILE=0`` to compile everything in the calling process.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import threading

from numba.core import event

# The families whose compiled functions no other family calls (checked in the tests): each may
# compile in its own process.
APART = ("canny",)
# How long the caller waits for a helper before going on alone (it then compiles what is left).
_TIMEOUT_S = 600.0
_ENV = "MEDFEAT_PARALLEL_COMPILE"

_done: set = set()          # (dtype, ndim, masks, args, colour) already warmed in this process
_lock = threading.Lock()


def split(families, n):
    """``families`` in at most ``n`` groups that may compile at the same time: those of
    :data:`APART` one per group, all the others together in the first group."""
    fams = tuple(families)
    apart = [(f,) for f in APART if f in fams][:max(0, n - 1)]
    rest = tuple(f for f in fams if (f,) not in apart)
    return [g for g in [rest, *apart] if g]


def _helpers():
    """Spare cores for helper processes (0 when switched off)."""
    if os.environ.get(_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(0, min(cores, 4) - 1)


class _OnMiss(event.Listener):
    """A ``numba:compile`` listener that calls ``start`` once, at the first compile (a miss)."""

    def __init__(self, start):
        self.start = start
        self.fired = False

    def on_start(self, ev):
        if not self.fired:
            self.fired = True
            self.start()

    def on_end(self, ev):
        pass


def _run(sample, args, colour, families):
    from .extractor import _serial, _stack_rows

    _, *rest = args                       # each family alone, with the same settings
    for fam in families:
        _serial(_stack_rows)(sample, (tuple([fam]), *rest), colour)


def _launch(sample, args, colour, families):
    """Start a helper process that computes ``families`` on ``sample`` (compiling them); returns
    ``(process, job file)``, or ``None`` when it could not be started."""
    import medfeat

    fd, path = tempfile.mkstemp(prefix="medfeat-compile-", suffix=".pkl")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump((sample, args, colour, tuple(families)), fh)
        env = dict(os.environ)
        # the helper must import this very medfeat (and so share its Numba cache files)
        root = os.path.dirname(os.path.dirname(os.path.abspath(medfeat.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env["NUMBA_NUM_THREADS"] = "1"
        env[_ENV] = "0"
        proc = subprocess.Popen([sys.executable, "-m", "medfeat.features._warm", path], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        os.unlink(path)
        return None
    return proc, path


def warm(part, args, colour, log=None):
    """Compile the kernels the feature rows of ``part`` need, across processes on a cold cache.

    Parameters
    ----------
    part : list of (ndarray, ndarray or None)
        The first ``(image, mask)`` pairs of the real input (one or two are enough: the compiled
        code depends on dtypes, dimensions and the families' settings, not on the values).
    args : tuple
        ``(families, bins, distance, backend)`` as :class:`FeatureExtractor` passes them on.
    colour : bool
        Whether the images carry a channel axis.
    log : callable, optional
        Called with one line when a helper process is started.

    Returns
    -------
    bool
        Whether a helper process ran.
    """
    fams = tuple(args[0])
    masked = part[0][1] is not None
    key = (part[0][0].dtype.str, part[0][0].ndim, masked, args, colour)
    with _lock:
        if key in _done:
            return False
        n = _helpers()
        groups = split(fams, n + 1) if n else [fams]
        if len(groups) < 2:
            _done.add(key)
            return False
        started = []

        def start():
            for group in groups[1:]:
                job = _launch(part, args, colour, group)
                if job is not None:
                    started.append(job)
            if started and log is not None:
                log(f"compiling the feature kernels into Numba's cache in {len(started) + 1} "
                    f"processes (once after an install)")

        try:
            with event.install_listener("numba:compile", _OnMiss(start)):
                _run(part, args, colour, groups[0])
        finally:
            for proc, path in started:
                try:
                    proc.wait(timeout=_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                finally:
                    os.unlink(path)
        _done.add(key)
        return bool(started)


def _main(path):
    with open(path, "rb") as fh:
        sample, args, colour, families = pickle.load(fh)
    _run(sample, args, colour, families)


if __name__ == "__main__":       # the helper process
    _main(sys.argv[1])
    sys.exit(0)
