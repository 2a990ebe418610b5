"""medfeat vs scikit-image vs OpenCV, timed in the same run, with ratios and the issue's targets.

Usage::

    python benchmarks/compare.py                    # every case at 2048², table on stdout
    python benchmarks/compare.py --sizes 512 2048 4096 --out benchmarks/results/cpu.md
    python benchmarks/compare.py --only sobel canny --compile-times

Each ``benchmarks/bench_<family>.py`` module contributes a ``COMPARE_CASES`` list of :class:`Case`.
Times are the median of ``--repeat`` runs after one warm-up call (so Numba's compile time is excluded;
``--compile-times`` measures it separately, in a fresh process with an empty cache).

Memory-traffic floor: the run first measures this machine's copy bandwidth (best of ``--bw-repeat``
``numpy.copyto`` calls on a 128 MiB array, well beyond the last-level cache; bytes read + written per
second, one thread). A kernel's floor is the bytes it must read and write at least once (its input and
its output, :attr:`Case.traffic` where a case says otherwise) over that bandwidth: no implementation
that reads and writes main memory can be faster. `× floor` is the time over the floor. The summary
checks each case against "no slower than OpenCV where OpenCV has it, within 3× of the floor".
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

FAMILIES = ("edges", "morphology", "density", "intensity", "cuda")


@dataclasses.dataclass
class Case:
    """One comparison: the same work done by several implementations on the same input.

    ``make(size)`` returns the input; each entry of ``impls`` maps a label to ``fn(input)``. The label
    ``"medfeat"`` is medfeat with ``backend="auto"``; ``"medfeat[cython]"`` and ``"medfeat[numba]"`` the
    explicit backends. ``targets`` maps a peer label to the speed-up medfeat (auto) must reach over it:
    10 means "10× faster", 1/1.5 means "no slower than 1.5× the peer's time".
    ``compile_snippet`` is Python code that makes the first call to the Numba kernel from a fresh process.
    """

    name: str
    make: Callable[[int], object]
    impls: dict
    targets: dict = dataclasses.field(default_factory=dict)
    compile_snippet: str | None = None
    #: bytes read + written by the kernel for input ``arg`` (``traffic(arg)``); default: the sizes of the
    #: input arrays plus medfeat's output
    traffic: Callable[[object], int] | None = None


def collect_cases(only=None):
    cases = []
    for fam in FAMILIES:
        try:
            mod = importlib.import_module(f"benchmarks.bench_{fam}")
        except ModuleNotFoundError as exc:
            if exc.name == f"benchmarks.bench_{fam}":
                continue
            raise
        cases.extend(getattr(mod, "COMPARE_CASES", []))
    if only:
        cases = [c for c in cases if any(o in c.name for o in only)]
    return cases


FLOOR_FACTOR = 3.0  # the target: within this factor of the memory-traffic floor


def nbytes(obj):
    """Bytes of the NumPy arrays in ``obj`` (an array, or tuples/lists/dicts of them); 0 for anything else
    (a GPU array is not main-memory traffic)."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (tuple, list)):
        return sum(nbytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(nbytes(o) for o in obj.values())
    return 0


def copy_bandwidth(repeat=10, mib=128):
    """This machine's copy bandwidth in bytes/s: best of ``repeat`` ``numpy.copyto`` calls of a
    ``mib``-MiB array into another (both touched first), counting the bytes read and written."""
    import numpy as np

    src = np.ones(mib * 2**20 // 8)
    dst = np.zeros_like(src)
    np.copyto(dst, src)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best


def _timed(fn, arg, repeat):
    """(median, minimum) seconds of ``repeat`` calls after one warm-up call.

    The minimum is the least disturbed run on a shared machine (a multi-threaded kernel can lose a whole
    scheduler slice waiting for a descheduled thread); the median is what a user typically sees.
    """
    fn(arg)  # warm-up: compiles Numba kernels, fills caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def compile_time(snippet):
    """Seconds of the first call in a fresh process with an empty Numba cache, minus a second call."""
    code = textwrap.dedent(
        f"""
        import time
        t0 = time.perf_counter()
        {snippet}
        t1 = time.perf_counter()
        {snippet}
        t2 = time.perf_counter()
        print((t1 - t0) - (t2 - t1))
        """
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             cwd=HERE.parent)
        cold = float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else float("nan")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             cwd=HERE.parent)
        warm = float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else float("nan")
    return cold, warm


def machine_line():
    try:
        import numba
        threads = numba.config.NUMBA_NUM_THREADS
    except ImportError:
        threads = "?"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load average n/a"
    return (f"{cpu}, {os.cpu_count()} cores, numba threads {threads}, Python {platform.python_version()}, "
            f"{load} at the end of the run")


def versions_line():
    parts = []
    for mod in ("medfeat", "numpy", "scipy", "numba", "skimage", "cv2"):
        try:
            m = importlib.import_module(mod)
            parts.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            parts.append(f"{mod} (absent)")
    return ", ".join(parts)


def run(args):
    cases = collect_cases(args.only)
    if not cases:
        print("no benchmark cases found", file=sys.stderr)
        return 1
    rows = []
    failures = []
    floors = []
    load_before = _load()
    bandwidth = copy_bandwidth(args.bw_repeat)
    print(f"copy bandwidth {bandwidth / 1e9:.2f} GB/s (read + written), {load_before}", flush=True)
    for case in cases:
        for size in args.sizes:
            arg = case.make(size)
            traffic = None
            if not case.name.startswith("cuda") and case.impls.get("medfeat") is not None:
                try:
                    traffic = (case.traffic(arg) if case.traffic is not None
                               else nbytes(arg) + nbytes(case.impls["medfeat"](arg)))
                except Exception:  # reported as failed below, when it is timed
                    traffic = None
            times, mins = {}, {}
            for label, fn in case.impls.items():
                if fn is None:
                    continue
                try:
                    times[label], mins[label] = _timed(fn, arg, args.repeat)
                except Exception as exc:  # a peer that cannot run this case is reported, not fatal
                    times[label] = mins[label] = float("nan")
                    print(f"  {case.name} {size}: {label} failed: {exc}", file=sys.stderr)
            mp = size * size / 1e6
            ref = times.get("medfeat")
            for label, t in times.items():
                speedup = (t / ref) if ref and label != "medfeat" else None
                target = case.targets.get(label)
                ok = None
                if target is not None and speedup is not None and size == 2048:
                    ok = speedup >= target
                    if not ok:
                        failures.append(f"{case.name} @{size}: {speedup:.2f}x vs {label} < {target:.2f}x")
                rows.append((case.name, size, label, t, mins[label], t / mp, speedup, target, ok))
            print(f"{case.name:<34} {size:>5}²  "
                  + "  ".join(f"{k}={v * 1e3:.2f}ms" for k, v in times.items()), flush=True)
            if traffic and "medfeat" in times:
                floor = traffic / bandwidth
                peer = times.get("opencv")
                floors.append((case.name, size, traffic, floor, times["medfeat"], mins["medfeat"],
                               peer, mins.get("opencv")))
    compiles = []
    if args.compile_times:
        for case in cases:
            if case.compile_snippet:
                cold, warm = compile_time(case.compile_snippet)
                compiles.append((case.name, cold, warm))
    load_after = _load()
    md = render(rows, compiles, failures, floors=floors, bandwidth=bandwidth,
                loads=(load_before, load_after))
    print()
    print(md)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(md)
        os.replace(tmp, out)
        print(f"written to {out}")
    return 0


def _load():
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average n/a"


def render_floors(floors, bandwidth):
    """The floor table: each case's traffic, floor, medfeat's time against it and against OpenCV."""
    lines = [
        f"Memory-traffic floor at a copy bandwidth of {bandwidth / 1e9:.2f} GB/s (read + written, one "
        f"thread, best of `numpy.copyto` of 128 MiB). Target: no slower than OpenCV where OpenCV has the "
        f"kernel, and within {FLOOR_FACTOR:g}× of the floor (medians; minima in brackets).",
        "",
        "| case | size | MB moved | floor ms | medfeat ms | × floor | OpenCV ms | medfeat / OpenCV | target met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for name, size, traffic, floor, t, tmin, peer, peer_min in floors:
        ratio = t / floor
        vs = "" if peer is None or peer != peer else f"{t / peer:.2f} ({tmin / peer_min:.2f})"
        ok = _floor_met(t, floor, peer)
        lines.append(f"| {name} | {size}² | {traffic / 1e6:.1f} | {floor * 1e3:.2f} | {t * 1e3:.2f} "
                     f"({tmin * 1e3:.2f}) | {ratio:.1f} ({tmin / floor:.1f}) | "
                     + ("" if peer is None or peer != peer else f"{peer * 1e3:.2f} ({peer_min * 1e3:.2f})")
                     + f" | {vs} | {'yes' if ok else '**no**'} |")
    return lines


def render(rows, compiles, failures, *, floors=(), bandwidth=None, loads=None):
    lines = [
        f"# medfeat kernel benchmark ({datetime.date.today().isoformat()})",
        "",
        f"Machine: {machine_line()}  ",
        f"Versions: {versions_line()}",
        "",
        *([f"Load: {loads[0]} before the run, {loads[1]} after it.", ""] if loads else []),
        "Times are medians (and minima) after a warm-up call. `speed-up` = peer median / medfeat (auto) "
        "median; `target` is the issue's minimum at 2048².",
        "",
        "| case | size | implementation | median ms | min ms | ms/MP | speed-up of medfeat | target | met |",
        "|---|---:|---|---:|---:|---:|---:|---:|:-:|",
    ]
    for name, size, label, t, tmin, per_mp, speedup, target, ok in rows:
        su = f"{speedup:.2f}×" if speedup is not None else ""
        tg = f"{target:.2f}×" if target is not None else ""
        met = "" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {name} | {size}² | {label} | {t * 1e3:.2f} | {tmin * 1e3:.2f} | {per_mp * 1e3:.2f} "
                     f"| {su} | {tg} | {met} |")
    if compiles:
        lines += ["", "First-call Numba compile time (fresh process): cold cache vs `cache=True` warm cache",
                  "", "| case | cold s | cached s |", "|---|---:|---:|"]
        lines += [f"| {n} | {c:.2f} | {w:.2f} |" for n, c, w in compiles]
    if floors:
        lines += ["", *render_floors(floors, bandwidth)]
    lines += ["", "Speed-up targets missed: " + ("; ".join(failures) if failures else "none")]
    if floors:
        missed = [name for name, _, _, floor, t, _, peer, _ in floors
                  if not _floor_met(t, floor, peer)]
        lines.append(f"Floor/OpenCV targets missed: {len(missed)} of {len(floors)}"
                     + (f" ({', '.join(missed)})" if missed else ""))
    return "\n".join(lines) + "\n"


def _floor_met(t, floor, peer):
    """Within :data:`FLOOR_FACTOR` of the floor and, where OpenCV has the kernel, no slower."""
    return t / floor <= FLOOR_FACTOR and (peer is None or peer != peer or t <= peer)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2048])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--only", nargs="*", help="substrings of case names to run")
    p.add_argument("--out", help="write the markdown table here (atomically)")
    p.add_argument("--bw-repeat", type=int, default=10,
                   help="copies of a 128 MiB array for the bandwidth behind the floor (best taken)")
    p.add_argument("--compile-times", action="store_true",
                   help="also measure Numba's first-call compile time in fresh processes")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
