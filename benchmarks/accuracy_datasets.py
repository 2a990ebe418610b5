"""``medfeat compare --data FILE`` with no other flag on every dataset at hand, beside MedMNIST v2.

Usage: ``python -m benchmarks.accuracy_datasets [--data FILE ...] [--repeat 2] [--out FILE.md]``
(default: every ``.npz`` in ``../shared/data``), or ``--reports DIR ...`` to tabulate report
folders that ``medfeat compare --data FILE --out DIR`` already wrote (their ``metrics.json``; the
wall time is then the evaluation's own total). Each run is the command a new user types, in a
fresh process, with its default methods, budget and seed; the script reads the report's
``metrics.json`` and tabulates test AUC and ACC (MedMNIST's rules: the positive-class probability
above 0.5 for binary tasks, the arg-max otherwise; AUC one-vs-rest macro) per method, the best of
each road and the ensemble beside the published MedMNIST v2 figures for that dataset (Yang et al.,
Scientific Data 10:41, 2023, Tables 3 and 4: the deep road against ResNet-18 of the same input,
the classical road against auto-sklearn), and the wall time. With ``--repeat 2`` every dataset
runs twice and the table says whether the numbers were identical (the same seed must give the same
numbers).

This is a benchmark, not a test: it takes minutes per dataset on two CPU cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _published(name):
    from medfeat.io.medmnist import PUBLISHED, PUBLISHED_PEERS

    key = next((k for k in PUBLISHED if k in name.lower()), None)
    if key is None:
        return None, None
    table = PUBLISHED[key]
    deep = next((table[m] + (m,) for m in PUBLISHED_PEERS["deep"] if m in table), None)
    classical = next((table[m] + (m,) for m in PUBLISHED_PEERS["classical"] if m in table), None)
    return deep, classical


def run_once(path, workdir):
    out = Path(workdir) / "report"
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "medfeat", "compare", "--data", str(path),
                           "--out", str(out)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    if proc.returncode != 0:
        raise RuntimeError(f"medfeat compare --data {path} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    doc = json.loads((out / "metrics.json").read_text())
    return doc, wall, (load0 + load1) / 2


def _scores(doc):
    return {n: (m["test"]["auc"], m["test"]["acc"]) for n, m in doc["methods"].items()}


def _best(doc, family):
    rows = [(m["test"]["auc"], n) for n, m in doc["methods"].items() if m["family"] == family]
    return max(rows)[1] if rows else None


def _best_by_val(doc, family):
    """The method of ``family`` a user would pick without test labels: best validation AUC
    (the chosen trial's) -- the figure the targets are read on."""
    rows = []
    for n, m in doc["methods"].items():
        if m["family"] != family:
            continue
        params = m.get("params") or {}
        val = params.get("val_auc", (params.get("search") or {}).get("chosen_val_auc"))
        rows.append((-1.0 if val is None else val, n))
    return max(rows)[1] if rows else None


def table(results):
    lines = ["| dataset | method | family | test AUC | test ACC | val AUC | "
             "published peer (AUC / ACC) | meets both |",
             "|---|---|---|---|---|---|---|---|"]
    for name, (doc, walls, loads, same) in results.items():
        deep_pub, cl_pub = _published(name)
        for method, m in doc["methods"].items():
            fam = m["family"]
            auc, acc = m["test"]["auc"], m["test"]["acc"]
            rec = (m.get("params") or {}).get("search") or {}
            peer, meets = "–", "–"
            pubs = [p for p in ((deep_pub,) if fam == "deep" else (cl_pub,) if
                                fam == "classical" else (deep_pub, cl_pub)) if p]
            if pubs:
                peer = "; ".join(f"{p[2]} {p[0]:.3f} / {p[1]:.3f}" for p in pubs)
                meets = "yes" if all(auc >= p[0] and acc >= p[1] for p in pubs) else "no"
            val = (m.get("params") or {}).get("val_auc", rec.get("chosen_val_auc"))
            lines.append(f"| {name} | {method} | {fam} | {auc:.3f} | {acc:.3f} | "
                         f"{'–' if val is None else f'{val:.3f}'} | {peer} | {meets} |")
    return "\n".join(lines)


def summary(results):
    lines = ["| dataset | n train / val / test | wall s (each run) | load | same numbers | "
             "best deep (val) | best classical (val) | ensemble |", "|---|---|---|---|---|---|---|---|"]
    for name, (doc, walls, loads, same) in results.items():
        d = doc["dataset"]
        sc = _scores(doc)
        bd, bc = _best_by_val(doc, "deep"), _best_by_val(doc, "classical")
        ens = next((n for n, m in doc["methods"].items() if m["family"] == "ensemble"), None)

        def f(n):
            return "–" if n is None else f"{n} {sc[n][0]:.3f} / {sc[n][1]:.3f}"

        lines.append(f"| {name} | {d['n_train']} / {d['n_val']} / {d['n_test']} | "
                     f"{', '.join(f'{w:.0f}' for w in walls)} | "
                     f"{', '.join(f'{v:.1f}' for v in loads)} | "
                     f"{'–' if same is None else ('yes' if same else 'NO')} | {f(bd)} | "
                     f"{f(bc)} | {f(ens)} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", type=Path,
                   default=sorted(SHARED.glob("*.npz")) if SHARED.is_dir() else [])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--reports", nargs="+", type=Path,
                   help="report folders to tabulate instead of running")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if not args.data:
        print("no datasets: pass --data FILE.npz (../shared/data is absent)", file=sys.stderr)
        return 2
    results = {}
    for folder in args.reports or ():
        doc = json.loads((folder / "metrics.json").read_text())
        wall = doc["settings"]["seconds"]["total"]
        load = (doc["settings"].get("load_average_at_start") or [float("nan")])[0]
        results[doc["dataset"]["name"]] = (doc, [wall], [load], None)
    for path in [] if args.reports else args.data:
        name = path.stem
        docs, walls, loads = [], [], []
        for _ in range(max(1, args.repeat)):
            with tempfile.TemporaryDirectory() as tmp:
                doc, wall, load = run_once(path, tmp)
            docs.append(doc)
            walls.append(wall)
            loads.append(load)
            print(f"{name}: {wall:.0f} s, load {load:.1f}", flush=True)
        same = None if len(docs) == 1 else all(_scores(d) == _scores(docs[0]) for d in docs)
        results[name] = (docs[0], walls, loads, same)
        print(table({name: results[name]}), flush=True)
    text = "\n".join([
        f"# `medfeat compare --data FILE` on the datasets at hand ({datetime.date.today()})",
        "",
        f"`python -m benchmarks.accuracy_datasets {' '.join(argv or sys.argv[1:])}`: each row is "
        "the command a new user types (no flag but `--data`: default methods, budget and seed), "
        "in a fresh process. Machine: "
        f"{platform.machine()} with {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        "load is the 1-minute load average during the run.",
        "",
        "Targets: the deep road against MedMNIST v2's ResNet-18 of the same input (28 or 3D), "
        "the classical road against auto-sklearn, the ensemble against both (Yang et al., "
        "Scientific Data 10:41, 2023, Tables 3 and 4; official splits). 'best (val)' is the "
        "method of that road with the best validation AUC: what a user picks without test "
        "labels.",
        "", summary(results), "", table(results), ""])
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
