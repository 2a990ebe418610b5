"""The first run after an install: Numba's compile on an empty cache, and the main job cold and warm.

Not an asv benchmark (asv keeps one warm environment): every measurement runs in a fresh
process with its own empty ``NUMBA_CACHE_DIR``, the state of a fresh install, then, for the main
job, once more on the cache the first run left (the state of every later run).

Cases:

- ``features``: the feature extraction of the embedded default's training split (700 phantoms
  of 48 x 48, every family and the zones, as the harness computes them), with the
  families' first compile split across processes (``MEDFEAT_PARALLEL_COMPILE=1``, the default) and
  all in one process (``=0``), alternating, ``--repeat`` times each;
- ``main``: ``medfeat compare`` on its embedded default, cold and then warm.

Wall seconds, CPU seconds of the process and the children it waited for, and the 1-minute load
average before each run. The machine may be shared: compare the modes of one run.

Usage::

    python benchmarks/bench_first_run.py [--only features|main] [--repeat 2] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

_FEATURES = """
import time
from medfeat import pipeline
from medfeat.features import FAMILIES, FeatureExtractor
ds = pipeline.default_dataset()
t = time.perf_counter()
FeatureExtractor(families=list(FAMILIES)).fit_transform(ds.train.images)
print(f"extraction {time.perf_counter() - t:.2f}")
"""


def _run(cmd, env):
    """Wall and CPU seconds (this child and the processes it waited for) of ``cmd``, its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return wall, cpu, load, proc.stdout + proc.stderr


def _env(cache, **extra):
    return dict(os.environ, NUMBA_CACHE_DIR=cache, **extra)


def bench_features(repeat):
    rows = []
    for i in range(repeat):
        for mode in ("1", "0"):
            cache = tempfile.mkdtemp(prefix="medfeat-numba-")
            try:
                wall, cpu, load, out = _run([sys.executable, "-c", _FEATURES],
                                            _env(cache, MEDFEAT_PARALLEL_COMPILE=mode))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            ext = next(float(line.split()[1]) for line in out.splitlines()
                       if line.startswith("extraction "))
            label = "2 processes" if mode == "1" else "1 process"
            rows.append(("features, cold cache", label, i + 1, ext, wall, cpu, load))
            print(f"features {label} run {i + 1}: extraction {ext:.1f} s, process {wall:.1f} s "
                  f"wall, {cpu:.1f} s CPU, load {load:.2f}", flush=True)
    return rows


def bench_main(repeat):
    rows = []
    for i in range(repeat):
        cache = tempfile.mkdtemp(prefix="medfeat-numba-")
        out_dir = tempfile.mkdtemp(prefix="medfeat-report-")
        try:
            for state in ("cold", "warm"):
                wall, cpu, load, _ = _run(
                    [sys.executable, "-m", "medfeat", "compare", "--quiet", "--out",
                     os.path.join(out_dir, state)], _env(cache))
                rows.append((f"medfeat compare, {state} cache", "default", i + 1, None, wall, cpu,
                             load))
                print(f"main job {state} run {i + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
                      f"load {load:.2f}", flush=True)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(out_dir, ignore_errors=True)
    return rows


def table(rows):
    lines = ["| case | mode | run | extraction s | process wall s | CPU s | load |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for case, mode, run, ext, wall, cpu, load in rows:
        ext = "" if ext is None else f"{ext:.1f}"
        lines.append(f"| {case} | {mode} | {run} | {ext} | {wall:.1f} | {cpu:.1f} | {load:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("features", "main"))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", help="also write the Markdown table here")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    rows = []
    if args.only in (None, "features"):
        rows += bench_features(args.repeat)
    if args.only in (None, "main"):
        rows += bench_main(args.repeat)
    text = table(rows)
    print(text)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
