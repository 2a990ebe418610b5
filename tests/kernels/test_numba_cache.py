"""Numba's compiled functions: no cached one calls a parallel one, and every one releases the GIL.

A cached compiled function that calls a ``parallel=True`` function crashes (segmentation fault)
when a later process loads it from the cache, if the parallel callee had itself been loaded from
the cache in the process that compiled the caller (github.com/numba/numba/issues/8578). In
medfeat that happened to Canny on dask's worker processes, after the in-memory Canny had filled
the cache. So parallel functions are called from Python only; this test keeps it that way.

A compiled function holds the GIL unless it is compiled with ``nogil=True``: then the threads of
``FeatureExtractor(n_jobs=...)`` (and a user's own threads) take turns on one core in the kernels
instead of running them side by side.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

numba = pytest.importorskip("numba")
from numba.core.registry import CPUDispatcher  # noqa: E402

import medfeat  # noqa: E402


def _modules():
    for info in pkgutil.walk_packages(medfeat.__path__, "medfeat."):
        if (".numba_cuda" in info.name or info.name.startswith("medfeat.deep")
                or info.name.endswith("__main__")):
            continue
        try:
            yield importlib.import_module(info.name)
        except ImportError:          # an optional dependency that is not installed
            continue


def _names(code):
    out, stack = set(), [code]
    while stack:
        c = stack.pop()
        out.update(c.co_names)
        stack += [k for k in c.co_consts if isinstance(k, types.CodeType)]
    return out


def _dispatchers():
    seen = {}
    for mod in _modules():
        for obj in vars(mod).values():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__.startswith("medfeat"):
                seen[(obj.py_func.__module__, obj.py_func.__qualname__)] = obj
    return seen


def test_the_scan_sees_the_parallel_kernels():
    parallel = [k for k, d in _dispatchers().items() if d.targetoptions.get("parallel")]
    assert ("medfeat._kernels.numba_cpu.edges", "_tiles") in parallel
    assert len(parallel) >= 5


def test_no_cached_compiled_function_calls_a_parallel_one():
    bad = []
    for (mod, name), d in _dispatchers().items():
        if not d._cache.__class__.__name__.endswith("FunctionCache"):
            continue                                  # not cached: safe
        g = d.py_func.__globals__
        for nm in _names(d.py_func.__code__):
            callee = g.get(nm)
            if isinstance(callee, CPUDispatcher) and callee.targetoptions.get("parallel"):
                bad.append(f"{mod}.{name} -> {nm}")
    assert not bad, bad


def test_every_compiled_function_releases_the_gil():
    held = [f"{mod}.{name}" for (mod, name), d in _dispatchers().items()
            if not d.targetoptions.get("nogil")]
    assert len(_dispatchers()) >= 40
    assert not held, held
