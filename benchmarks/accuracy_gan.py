"""Does GAN data expansion help the CNN? (a script, not a test).

Usage: ``python -m benchmarks.accuracy_gan [--npz PATH] [--seeds 3] [--fractions 0.1 0.25 1.0]
[--gan-steps 400] [--budget-min 33] [--out FILE.md]``.

Two parts:

1. *Default GAN timing*: :class:`medfeat.deep.gan.ConditionalGAN` with its default settings on
   the whole PneumoniaMNIST training split (28x28, 3,882 images), timed, with the 1-minute load
   average; its samples judged by the classifier two-sample test (logistic regression and a small
   CNN, 5-fold, real = the validation split, which the GAN never saw) and a PNG grid.
2. *Expansion grid*: on the embedded phantoms (``medfeat compare``'s default: 1,000 slices of
   48x48, its phantom-tuned cnn settings) and on PneumoniaMNIST with its training split subsampled
   to 10 %, 25 % and 100 % (stratified, seeded), for each seed: the cnn
   (:class:`medfeat.deep.DeepClassifier`) trained on the real training split, a GAN trained on
   that same split, the cnn trained on the split expanded by ``expand(..., classes="all",
   factor=1)`` (every class doubled), both scored on the untouched test split (AUC, ACC at 0.5),
   the paired DeLong test of the two AUCs (expanded - real), the two-sample AUC of the GAN's
   samples against the validation split and the share of synthetic images the real-data cnn
   assigns to the class they were generated for. The GAN gets a fixed step budget here
   (``--gan-steps``), not its default, so that the grid fits the time budget; units run seed by
   seed, and units that would start after ``--budget-min`` are skipped and listed.

The results file is rewritten after every unit, so a cut run still leaves its finished rows.

Note: this copy's training split is more imbalanced than the official one (388 normal / 3,494
pneumonia instead of 1,214 / 3,494; see ../shared/data/README.md). Cite MedMNIST v2 (Yang et al.,
Sci. Data 10:41, 2023) and Kermany et al. (Cell 2018) with these numbers.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "pneumoniamnist.npz"
RESULTS = Path(__file__).resolve().parent / "results"


def _load():
    return os.getloadavg()[0]


def _subsample(labels, fraction, seed):
    """Stratified, seeded indices: ``round(fraction * n_c)`` of each class (at least 2)."""
    if fraction >= 1:
        return np.arange(len(labels))
    rng = np.random.default_rng([seed, 7])
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(rng.choice(idx, max(2, int(round(fraction * idx.size))), replace=False))
    return np.sort(np.concatenate(keep))


def _gan_epochs(n, batch, steps):
    per_epoch = max(1, n // min(batch, n))
    return max(1, math.ceil(steps / per_epoch))


def _write(path, text):
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".md", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def default_timing(data, seed, log, png):
    """Part 1: the default ConditionalGAN on the whole training split."""
    from medfeat.deep.gan import ConditionalGAN, plot_samples, two_sample_auc

    (xt, yt), (xv, yv) = data.train, data.val
    load0 = _load()
    cpu0 = time.process_time()
    gan = ConditionalGAN(seed=seed, verbose=1, log=log).fit(xt, yt)
    cpu = time.process_time() - cpu0
    load1 = _load()
    fake = gan.sample(len(yv), label=yv, seed=seed + 1)
    c2st_lr = two_sample_auc(xv, fake, seed=seed)
    c2st_cnn = two_sample_auc(xv, fake, seed=seed, classifier="cnn", cv=3)
    # a sanity line for the test: two halves of the real validation split
    half = np.random.default_rng(seed).permutation(len(yv))
    real_vs_real = two_sample_auc(xv[half[: len(yv) // 2]], xv[half[len(yv) // 2:]], seed=seed)
    plot_samples(gan, xt, yt, png, n_per_class=10, seed=seed)
    row = {"n": len(yt), "epochs": gan.epochs_, "steps": gan.epochs_ * (len(yt) // 64),
           "fit_s": gan.fit_seconds_, "cpu_s": cpu, "load0": load0, "load1": load1,
           "c2st_lr": c2st_lr, "c2st_cnn": c2st_cnn, "real_vs_real": real_vs_real}
    log(f"default GAN: {row}")
    return row


def unit(name, data, seed, cnn_params, gan_steps, log, control=False):
    """Part 2: one (setting, seed): the cnn without and with expansion (and, with ``control``,
    on the real split given twice: as many optimiser steps as the expanded one, no new
    images)."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    from medfeat.deep import DeepClassifier
    from medfeat.deep.gan import ConditionalGAN, expand, two_sample_auc
    from medfeat.evaluate import delong

    (xt, yt), (xv, yv), (xte, yte) = data.train, data.val, data.test
    t0 = time.perf_counter()
    load0 = _load()
    base = DeepClassifier("cnn", seed=seed, verbose=0, **cnn_params).fit(xt, yt,
                                                                        validation=(xv, yv))
    p_base = base.predict_proba(xte)[:, 1]
    t_base = time.perf_counter() - t0

    t1 = time.perf_counter()
    gan = ConditionalGAN(epochs=_gan_epochs(len(yt), 64, gan_steps), seed=seed, verbose=0)
    big = expand(data, factor=1.0, classes="all", gan=gan, seed=seed)
    t_gan = time.perf_counter() - t1
    syn = big.synthetic
    xs, ys = big.train.images[syn], big.train.labels[syn]
    agree = float(np.mean(base.predict(xs) == ys))
    fake_v = gan.sample(len(yv), label=yv, seed=seed + 1)
    c2st = two_sample_auc(xv, fake_v, seed=seed)

    t2 = time.perf_counter()
    aug = DeepClassifier("cnn", seed=seed, verbose=0, **cnn_params).fit(
        big.train.images, big.train.labels, validation=(xv, yv))
    p_aug = aug.predict_proba(xte)[:, 1]
    t_aug = time.perf_counter() - t2
    d = delong(yte, p_aug, p_base)
    dup = {}
    if control:
        t3 = time.perf_counter()
        twice = DeepClassifier("cnn", seed=seed, verbose=0, **cnn_params).fit(
            np.concatenate([xt, xt]), np.concatenate([yt, yt]), validation=(xv, yv))
        p_dup = twice.predict_proba(xte)[:, 1]
        dc = delong(yte, p_aug, p_dup)
        dup = {"auc_dup": roc_auc_score(yte, p_dup),
               "acc_dup": accuracy_score(yte, (p_dup >= 0.5).astype(int)),
               "diff_dup": dc["difference"], "p_dup": dc["p_value"],
               "t_dup": time.perf_counter() - t3}
    row = {"setting": name, "seed": seed, "n_real": len(yt), "n_syn": int(syn.sum()),
           "auc_base": roc_auc_score(yte, p_base),
           "acc_base": accuracy_score(yte, (p_base >= 0.5).astype(int)),
           "auc_gan": roc_auc_score(yte, p_aug),
           "acc_gan": accuracy_score(yte, (p_aug >= 0.5).astype(int)),
           "diff": d["difference"], "ci": d["ci95"], "p": d["p_value"], "c2st": c2st,
           "agree": agree, "gan_steps": gan.epochs_ * max(1, len(yt) // min(64, len(yt))),
           "t_base": t_base, "t_gan": t_gan, "t_aug": t_aug,
           "load": (load0 + _load()) / 2, **dup}
    log(f"-> {name} seed {seed}: AUC {row['auc_base']:.4f} -> {row['auc_gan']:.4f} "
        f"(DeLong p {row['p']:.3g}), ACC {row['acc_base']:.4f} -> {row['acc_gan']:.4f}, "
        f"C2ST {c2st:.3f}, agree {agree:.3f}, s {t_base:.0f}/{t_gan:.0f}/{t_aug:.0f}, "
        f"load {row['load']:.2f}")
    return row


def report(args, timing, rows, skipped, started, cnn_desc):
    lines = [f"# GAN data expansion for the cnn ({datetime.date.today().isoformat()})", "",
             f"Machine: {platform.node()} ({platform.processor() or platform.machine()}), "
             f"{os.cpu_count()} CPUs shared with other jobs (load averages below), no GPU; "
             f"`nice -n 10 python -m benchmarks.accuracy_gan "
             f"{' '.join(sys.argv[1:])}`; wall time so far "
             f"{(time.perf_counter() - started) / 60:.1f} min.", "",
             "GAN: `medfeat.deep.gan.ConditionalGAN` (SNGAN with a projection discriminator, "
             "hinge loss). Expansion: `expand(dataset, factor=1, classes=\"all\")` (every class "
             "of the training split doubled with generated images; validation and test "
             "untouched). Two-sample AUC (C2ST): cross-validated logistic regression on pixels, "
             "real = validation split (never seen by the GAN), 0.5 = indistinguishable.", ""]
    if timing:
        t = timing
        lines += ["## Default GAN on PneumoniaMNIST's training split (28x28)", "",
                  "| images | epochs (steps) | fit s | CPU s | load before / after | "
                  "C2ST logreg (5-fold) | C2ST cnn (3-fold) | real vs real (logreg) |", "|---|---|---|---|---|---|---|---|",
                  f"| {t['n']} | {t['epochs']} ({t['steps']}) | {t['fit_s']:.0f} | "
                  f"{t['cpu_s']:.0f} | {t['load0']:.2f} / {t['load1']:.2f} | "
                  f"{t['c2st_lr']:.3f} | {t['c2st_cnn']:.3f} | {t['real_vs_real']:.3f} |", "",
                  f"Samples beside real images: `{Path(args.png).name}`.", ""]
    if rows:
        lines += ["## cnn with and without expansion (test split)", "",
                  f"cnn settings: {cnn_desc}. GAN per unit: fixed step budget "
                  f"(`--gan-steps {args.gan_steps}`, epochs = steps / (n / 64)). "
                  "Diff and p: DeLong's paired test, AUC(expanded) - AUC(real only). "
                  "Agree: share of the synthetic images that the real-data cnn assigns to "
                  "their requested class.", "",
                  "| setting | seed | real / synthetic | AUC real | AUC +GAN | diff [95% CI] | p | "
                  "ACC real | ACC +GAN | C2ST | agree | GAN steps | s cnn / GAN / cnn+GAN | "
                  "load |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(
                f"| {r['setting']} | {r['seed']} | {r['n_real']} / {r['n_syn']} | "
                f"{r['auc_base']:.4f} | {r['auc_gan']:.4f} | {r['diff']:+.4f} "
                f"[{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}] | {r['p']:.3g} | {r['acc_base']:.4f} | "
                f"{r['acc_gan']:.4f} | {r['c2st']:.3f} | {r['agree']:.3f} | {r['gan_steps']} | "
                f"{r['t_base']:.0f} / {r['t_gan']:.0f} / {r['t_aug']:.0f} | {r['load']:.2f} |")
        lines += ["", "Per setting, mean ± sd over seeds:", "",
                  "| setting | seeds | AUC real | AUC +GAN | diff AUC | ACC real | ACC +GAN | "
                  "DeLong p < 0.05 (better / worse) |", "|---|---|---|---|---|---|---|---|"]
        for name in dict.fromkeys(r["setting"] for r in rows):
            rs = [r for r in rows if r["setting"] == name]

            def ms(key, rs=rs):
                v = np.array([r[key] for r in rs], dtype=float)
                return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v[0]:.4f}"
            better = sum(r["p"] < 0.05 and r["diff"] > 0 for r in rs)
            worse = sum(r["p"] < 0.05 and r["diff"] < 0 for r in rs)
            lines.append(f"| {name} | {len(rs)} | {ms('auc_base')} | {ms('auc_gan')} | "
                         f"{ms('diff')} | {ms('acc_base')} | {ms('acc_gan')} | "
                         f"{better} / {worse} |")
        lines.append("")
        ctrl = [r for r in rows if "auc_dup" in r]
        if ctrl:
            lines += ["Control (same settings and seed): the cnn on the real training split "
                      "given twice, i.e. as many optimiser steps per epoch as the expanded "
                      "split but no new images. Diff and p: DeLong, AUC(+GAN) - AUC(real x2).",
                      "", "| setting | seed | AUC real x2 | ACC real x2 | AUC +GAN - real x2 | "
                      "p | s |", "|---|---|---|---|---|---|---|"]
            for r in ctrl:
                lines.append(f"| {r['setting']} | {r['seed']} | {r['auc_dup']:.4f} | "
                             f"{r['acc_dup']:.4f} | {r['diff_dup']:+.4f} | {r['p_dup']:.3g} | "
                             f"{r['t_dup']:.0f} |")
            lines.append("")
    if skipped:
        lines += ["Not run (time budget): " + ", ".join(skipped) + ".", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", default=str(DEFAULT))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--phantom-seeds", type=int, default=1)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 1.0])
    parser.add_argument("--gan-steps", type=int, default=300)
    parser.add_argument("--pneumonia-epochs", type=int, default=8)
    parser.add_argument("--control-max", type=int, default=400,
                        help="run the real-x2 control where the real split has at most this "
                             "many images")
    parser.add_argument("--no-phantoms", action="store_true")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--timing-only", action="store_true",
                        help="only part 1 (the default GAN's fit time and sample quality)")
    parser.add_argument("--budget-min", type=float, default=33.0)
    parser.add_argument("--out", default=str(RESULTS / f"gan-{datetime.date.today()}.md"))
    parser.add_argument("--png", default=None)
    args = parser.parse_args(argv)
    out = Path(args.out)
    args.png = args.png or str(out.with_name(out.stem + "-samples.png"))
    started = time.perf_counter()

    def log(msg):
        print(f"[{(time.perf_counter() - started) / 60:5.1f} min] {msg}", flush=True)

    from medfeat.pipeline import DEFAULT_PHANTOMS, PHANTOM_DEEP
    from medfeat.io import Dataset, load_npz, make_phantoms

    have_npz = Path(args.npz).is_file()
    if not have_npz:
        log(f"no data at {args.npz}: PneumoniaMNIST parts skipped")
    settings = []
    pn_params = {"epochs": args.pneumonia_epochs}
    if not args.no_phantoms:
        ph = make_phantoms(seed=0, **DEFAULT_PHANTOMS)
        settings.append(("phantoms", lambda seed, ph=ph: ph, dict(PHANTOM_DEEP["cnn"]),
                         args.phantom_seeds))
    if have_npz:
        pn = load_npz(args.npz, classes=("normal", "pneumonia"))
        for frac in args.fractions:
            def make(seed, frac=frac):
                keep = _subsample(pn.train.labels, frac, seed)
                return Dataset((pn.train.images[keep], pn.train.labels[keep]), pn.val, pn.test,
                               pn.classes, f"{pn.name}-{frac:g}")
            settings.append((f"pneumonia {frac:.0%}", make, pn_params, args.seeds))
    cnn_desc = (f"phantoms: the `medfeat compare` phantom settings {PHANTOM_DEEP['cnn']}; "
                f"PneumoniaMNIST: DeepClassifier('cnn') defaults with epochs="
                f"{args.pneumonia_epochs}; early stopping on the validation AUC")
    timing, rows, skipped = None, [], []
    if have_npz and not args.no_timing:
        timing = default_timing(pn, 0, log, Path(args.png))
        _write(out, report(args, timing, rows, skipped, started, cnn_desc))
    if args.timing_only:
        settings = []
    # seed by seed, the cheap settings first and PneumoniaMNIST 100 % last; a unit is skipped
    # when its estimated time (seconds per real training image: of the same setting's previous
    # unit, else a prior measured on this machine under load) would end it past the budget
    order = sorted(((seed, k) for k, st in enumerate(settings) for seed in range(st[3])),
                   key=lambda sk: (settings[sk[1]][0] == "pneumonia 100%", sk[0],
                                   settings[sk[1]][0] == "phantoms" and sk[0] > 0))
    rate = {}
    prior = {"phantoms": 1.3}
    for seed, k in order:
        name, make, params, _ = settings[k]
        data = make(seed)
        n = len(data.train.labels)
        per_image = rate.get(name, prior.get(name, 0.35 if n > args.control_max else 0.6))
        elapsed = time.perf_counter() - started
        if (elapsed + per_image * n) / 60 > args.budget_min:
            skipped.append(f"{name} seed {seed}")
            log(f"skipped {name} seed {seed}: estimated {per_image * n / 60:.1f} min")
            continue
        t0 = time.perf_counter()
        rows.append(unit(name, data, seed, params, args.gan_steps, log,
                         control=n <= args.control_max and name != "phantoms"))
        rate[name] = (time.perf_counter() - t0) / n
        _write(out, report(args, timing, rows, skipped, started, cnn_desc))
    _write(out, report(args, timing, rows, skipped, started, cnn_desc))
    log(f"done: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
