"""The first compile of the feature kernels split across processes (medfeat.features._warm):
the split, that a warm cache starts nothing, that a miss starts helpers for the other families,
that the helper's entry point computes its families in a real process, and the switch."""

from __future__ import annotations

import pickle
import subprocess

import numba
import numpy as np
import pytest

from medfeat.features import FAMILIES, FeatureExtractor, _warm


def _part(n=2, size=20, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 255, (size, size), dtype=np.uint8), None) for _ in range(n)]


@pytest.fixture
def fresh(monkeypatch):
    """No key warmed yet in this process, helpers allowed, and Popen refused unless a test
    replaces the launcher."""
    monkeypatch.setattr(_warm, "_done", set())
    monkeypatch.setenv(_warm._ENV, "1")
    monkeypatch.setattr(_warm, "_helpers", lambda: 1)

    def refuse(*a, **k):
        raise AssertionError("a helper process was started")
    monkeypatch.setattr(_warm.subprocess, "Popen", refuse)


@pytest.mark.parametrize("n", [1, 2, 3, 9])
def test_split_covers_every_family_once_and_keeps_apart_only_the_listed(n):
    fams = tuple(FAMILIES)
    groups = _warm.split(fams, n)
    flat = [f for g in groups for f in g]
    assert sorted(flat) == sorted(fams)
    if n == 1:
        assert groups == [fams]
    else:
        assert groups[1:] == [(f,) for f in _warm.APART]
        assert "canny" not in groups[0]
    assert _warm.split(("canny",), n) == [("canny",)]           # nothing to run beside it
    assert _warm.split(fams, n) == groups                       # deterministic


# The cached medfeat functions a group of families reaches, in a fresh process: the compiled
# functions that ran, and everything they call (names in their code that are dispatchers),
# named by source function as Numba's cache files are.
_REACH = """
import json, sys, types
import numpy as np
from numba.core.dispatcher import Dispatcher
from medfeat.features import FAMILIES, _warm
rng = np.random.default_rng(0)
part = [(rng.integers(0, 255, (40, 40), dtype=np.uint8), None) for _ in range(2)]
_warm._run(part, (tuple(FAMILIES), 32, 1, "auto"), False, tuple(sys.argv[1].split(",")))

def called(d):
    names, stack = set(), [d.py_func.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    g = d.py_func.__globals__
    out = []
    for nm in names:
        obj = g.get(nm)
        if isinstance(obj, types.ModuleType):
            out += [getattr(obj, a) for a in names if isinstance(getattr(obj, a, None), Dispatcher)]
        elif isinstance(obj, Dispatcher):
            out.append(obj)
    return out

ran = [d for m in list(sys.modules.values()) if getattr(m, "__name__", "").startswith("medfeat")
       for d in vars(m).values() if isinstance(d, Dispatcher) and d.overloads]
seen, todo = set(), list(ran)
while todo:
    d = todo.pop()
    key = (d.py_func.__module__, d.py_func.__qualname__)
    if key in seen:
        continue
    todo += called(d)
    if d.targetoptions.get("inline", "never") == "never":   # inlined ones are never compiled alone
        seen.add(key)
cached = sorted(f"{m}.{q}" for m, q in seen if m.startswith("medfeat"))
print(json.dumps(cached))
"""


def _reach(families):
    out = subprocess.run([_warm.sys.executable, "-c", _REACH, ",".join(families)],
                         capture_output=True, text=True, timeout=900,
                         env=dict(_warm.os.environ, **{_warm._ENV: "0"}))
    assert out.returncode == 0, out.stderr
    import json
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_families_compiled_apart_share_no_compiled_function():
    """Two processes may only compile disjoint sets of cached functions at once (Numba's cache
    index is not safe for two writers of one function): the groups' reach is disjoint."""
    groups = _warm.split(tuple(FAMILIES), 2)
    assert len(groups) == 2
    reach = [_reach(g) for g in groups]
    assert all(reach)
    assert not reach[0] & reach[1], sorted(reach[0] & reach[1])
    assert "medfeat._kernels.numba_cpu.edges._tile_rows" in reach[1]     # Canny's sweep


def test_warm_cache_starts_nothing_and_each_key_runs_once(fresh, monkeypatch):
    part = _part()
    args = (("intensity", "canny"), 32, 1, "auto")
    monkeypatch.setattr(_warm, "_helpers", lambda: 0)          # compile here, in this process
    _warm._run(part, args, False, args[0])
    monkeypatch.setattr(_warm, "_helpers", lambda: 1)
    runs = []
    real_run = _warm._run
    monkeypatch.setattr(_warm, "_run", lambda *a: (runs.append(a[3]), real_run(*a)))
    assert _warm.warm(part, args, False) is False              # compiled above: no miss
    assert runs == [_warm.split(args[0], 2)[0]]
    assert _warm.warm(part, args, False) is False              # the same key: not even a run
    assert len(runs) == 1


def test_a_miss_starts_a_helper_for_the_other_families(fresh, monkeypatch):
    part = _part()
    fams = ("canny", "glcm", "intensity", "histogram")         # canny apart, the rest here
    args = (fams, 32, 1, "auto")
    groups = _warm.split(fams, 2)
    launched, waited, lines = [], [], []

    class Proc:
        def wait(self, timeout=None):
            waited.append(timeout)
            return 0

    def launch(sample, a, colour, families):
        launched.append((len(sample), a, colour, families))
        return Proc(), _warm.tempfile.mkstemp()[1]

    def run(sample, a, colour, families):
        # a function Numba has never seen: compiling it is a cache miss
        numba.njit(lambda x: x + 1)(1)
    monkeypatch.setattr(_warm, "_launch", launch)
    monkeypatch.setattr(_warm, "_run", run)
    assert _warm.warm(part, args, False, log=lines.append) is True
    assert launched == [(2, args, False, groups[1])]
    assert waited == [_warm._TIMEOUT_S]
    assert len(lines) == 1 and "2 processes" in lines[0]


def test_switched_off_runs_nothing_extra(monkeypatch):
    monkeypatch.setattr(_warm, "_done", set())
    monkeypatch.setenv(_warm._ENV, "0")
    assert _warm._helpers() == 0
    monkeypatch.setattr(_warm, "_run", lambda *a: pytest.fail("warm-up ran while switched off"))
    assert _warm.warm(_part(), (("intensity",), 32, 1, "auto"), False) is False


def test_helper_entry_point_computes_its_families_in_a_real_process(tmp_path):
    """The job file as the launcher writes it, run by ``python -m medfeat.features._warm``."""
    part = _part(n=1)
    args = (("thresholds", "density"), 32, 1, "auto")
    job = _warm._launch(part, args, False, ("thresholds",))
    assert job is not None
    proc, path = job
    try:
        assert proc.wait(timeout=300) == 0
        with open(path, "rb") as fh:
            sample, a, colour, families = pickle.load(fh)
        assert a == args and families == ("thresholds",) and colour is False
        assert np.array_equal(sample[0][0], part[0][0])
    finally:
        _warm.os.unlink(path)
    bad = tmp_path / "missing.pkl"
    rc = subprocess.run([_warm.sys.executable, "-m", "medfeat.features._warm", str(bad)],
                        capture_output=True, timeout=300).returncode
    assert rc != 0                                             # a broken job fails loudly


def test_extractor_values_do_not_depend_on_the_warm_up(monkeypatch):
    X = np.stack([im for im, _ in _part(n=5, seed=3)])
    monkeypatch.setattr(_warm, "_done", set())
    with_warm = FeatureExtractor().fit_transform(X)
    monkeypatch.setenv(_warm._ENV, "0")
    monkeypatch.setattr(_warm, "_done", set())
    without = FeatureExtractor().fit_transform(X)
    assert np.array_equal(with_warm, without)
