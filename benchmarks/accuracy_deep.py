"""Accuracy of the deep road on PneumoniaMNIST (a script, not a test).

Usage: ``python -m benchmarks.accuracy_deep [--configs cnn resnet18 ...] [--npz PATH]
[--out FILE.md]`` (default data ``../shared/data/pneumoniamnist.npz``). Each configuration is a
:class:`medfeat.deep.DeepClassifier` trained on the training split with early stopping / best-epoch
selection on the validation split (ROC AUC); the script reports test ROC AUC and ACC (threshold 0.5
on the pneumonia probability, as MedMNIST's evaluator), the best epoch, training seconds and the
machine's load average, and writes a markdown table.

Note: this copy's training split is more imbalanced than the official one (388 normal / 3,494
pneumonia instead of 1,214 / 3,494; see ../shared/data/README.md), so the numbers compare only
loosely with the MedMNIST v2 paper (Yang et al., Sci. Data 10:41, 2023: ResNet-18 (28) AUC 0.944,
ACC 0.854; data from Kermany et al., Cell 2018).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "pneumoniamnist.npz"

#: name -> DeepClassifier keyword arguments
CONFIGS = {
    # DeepClassifier's own defaults for the kind (what `medfeat compare` runs)
    "cnn-default": dict(kind="cnn"),
    "resnet18-default": dict(kind="resnet18"),
    # candidates for the best model
    "cnn-w32-e20": dict(kind="cnn", epochs=20, model_options={"width": 32}),
    "cnn-w32-e30-b64": dict(kind="cnn", epochs=30, batch_size=64, patience=8,
                            model_options={"width": 32, "dense": 128, "dropout": 0.3}),
    "cnn-noaug": dict(kind="cnn", augment=None),
    "cnn-noweights": dict(kind="cnn", class_weight=None),
    "cnn-w16-e12": dict(kind="cnn", epochs=12, model_options={"width": 16, "dense": 64}),
    "resnet18-w16-e10": dict(kind="resnet18", epochs=10, model_options={"width": 16}),
    "resnet18-w32-e15": dict(kind="resnet18", epochs=15, model_options={"width": 32}),
}


def _load(path):
    data = np.load(path)
    return [(data[f"{s}_images"], data[f"{s}_labels"].ravel()) for s in ("train", "val", "test")]


def run(name, params, splits, seed=0, log=print):
    from sklearn.metrics import accuracy_score, roc_auc_score

    from medfeat.deep import DeepClassifier

    (Xtr, ytr), (Xva, yva), (Xte, yte) = splits
    load_before = os.getloadavg()[0]
    clf = DeepClassifier(**params, seed=seed, verbose=1)
    log(f"== {name}: {params}")
    cpu0 = time.process_time()
    clf.fit(Xtr, ytr, validation=(Xva, yva))
    cpu_s = time.process_time() - cpu0
    t0 = time.perf_counter()
    p_te = clf.predict_proba(Xte)[:, 1]
    predict_s = time.perf_counter() - t0
    p_va = clf.predict_proba(Xva)[:, 1]
    clf.tta = "horizontal"  # the same model, test-time augmentation by left-right flips
    p_tta = clf.predict_proba(Xte)[:, 1]
    row = {"name": name, "val_auc": roc_auc_score(yva, p_va),
           "test_auc": roc_auc_score(yte, p_te),
           "test_acc": accuracy_score(yte, (p_te >= 0.5).astype(int)),
           "val_acc": accuracy_score(yva, (p_va >= 0.5).astype(int)),
           "tta_auc": roc_auc_score(yte, p_tta),
           "tta_acc": accuracy_score(yte, (p_tta >= 0.5).astype(int)),
           "best_epoch": clf.history_["best_epoch"], "epochs_run": clf.history_["stopped_epoch"],
           "fit_s": clf.fit_seconds_, "cpu_s": cpu_s, "predict_s": predict_s,
           "load": (load_before + os.getloadavg()[0]) / 2, "params": params}
    log(f"-> {name}: test AUC {row['test_auc']:.4f}  ACC {row['test_acc']:.4f}  "
        f"(val AUC {row['val_auc']:.4f})  fit {row['fit_s']:.0f}s (CPU {cpu_s:.0f}s)  "
        f"load {row['load']:.2f}")
    return row


def table(rows):
    lines = ["| config | test AUC | test ACC | TTA AUC | TTA ACC | val AUC | val ACC | "
             "best / run epochs | fit s | fit CPU s | predict s | load (1 min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['test_auc']:.4f} | {r['test_acc']:.4f} | "
                     f"{r['tta_auc']:.4f} | {r['tta_acc']:.4f} | "
                     f"{r['val_auc']:.4f} | {r['val_acc']:.4f} | {r['best_epoch']} / "
                     f"{r['epochs_run']} | {r['fit_s']:.0f} | {r['cpu_s']:.0f} | "
                     f"{r['predict_s']:.1f} | "
                     f"{r['load']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["cnn-default", "resnet18-default"],
                        choices=sorted(CONFIGS))
    parser.add_argument("--npz", default=str(DEFAULT))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="markdown file to write (atomically)")
    args = parser.parse_args(argv)
    if not Path(args.npz).is_file():
        print(f"no data at {args.npz}; nothing to do", file=sys.stderr)
        return 1
    splits = _load(args.npz)
    rows = []
    for name in args.configs:
        rows.append(run(name, CONFIGS[name], splits, seed=args.seed))
        print(table(rows), flush=True)
    import keras

    text = "\n".join([
        f"# Deep road on PneumoniaMNIST ({datetime.date.today().isoformat()})", "",
        f"Machine: {platform.node()} ({platform.processor() or platform.machine()}), "
        f"{os.cpu_count()} CPUs, shared (load average column: 1-minute load, mean of before and "
        f"after each fit; fit CPU s: process CPU time of the fit, all threads, which depends "
        f"less on the load); Python {platform.python_version()}, Keras {keras.__version__} "
        f"({keras.backend.backend()}), seed {args.seed}.", "",
        "Train on train, best epoch by validation ROC AUC, test ACC at threshold 0.5 on the "
        "pneumonia probability; TTA: the same model's test scores averaged over the image and its "
        "left-right flip. This copy's training split is more imbalanced than the official "
        "one (388 / 3,494 instead of 1,214 / 3,494), so the comparison with MedMNIST v2's "
        "ResNet-18 (28) (AUC 0.944, ACC 0.854) is loose.", "",
        table(rows), "",
        "Settings:", "",
        *[f"- {r['name']}: `{r['params']}`" for r in rows], ""])
    print(text)
    if args.out:
        out = Path(args.out)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
