"""The report's text: its sections, rendered as Markdown and as self-contained HTML."""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import platform
import re

from ..io import medmnist

from ._common import _classes, _fmt, _gan_record, _is_multilabel, _plain, _searches, _secs


#: Published test scores of MedMNIST v2 for the sets this report knows (model -> (AUC, ACC));
#: kept with the other MedMNIST facts in :mod:`medfeat.io`.
PUBLISHED = medmnist.PUBLISHED


#: Official PneumoniaMNIST split sizes (normal, pneumonia), from the MedMNIST v2 paper.
_PNEUMONIA_OFFICIAL = medmnist.OFFICIAL_CLASS_COUNTS["pneumoniamnist"]


def _table_rows(evaluation):
    """One dict per method with the numbers of the report's table (strings)."""
    rows = []
    for name, r in evaluation.methods.items():
        t = r.test or {}
        ci = t.get("auc_ci95") or [None, None]
        cv_mean = (r.cv or {}).get("mean", {}) or {}
        cv_std = (r.cv or {}).get("std", {}) or {}
        cv = "–"
        if cv_mean.get("auc") is not None:
            cv = f"{_fmt(cv_mean.get('auc'))} ± {_fmt(cv_std.get('auc'))}"
        rows.append({
            "method": name, "family": r.family, "ACC": _fmt(t.get("acc")),
            "AUC [95% CI]": f"{_fmt(t.get('auc'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]",
            "F1": _fmt(t.get("f1")), "sens.": _fmt(t.get("sensitivity")),
            "spec.": _fmt(t.get("specificity")), "CV AUC (mean ± std)": cv,
            "fit s": _secs(r.fit_seconds), "predict s": _secs(r.predict_seconds)})
    return rows


def _versions():
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("medfeat", "numpy", "scipy", "scikit-learn", "scikit-image", "numba", "pandas",
                 "matplotlib", "tensorflow", "keras", "jax", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    keras = __import__("sys").modules.get("keras")
    if keras is not None:
        try:
            out["keras backend"] = keras.backend.backend()
        except Exception:  # an odd keras install must not stop a report
            pass
    return out


def _machine():
    info = {"platform": platform.platform(), "processor": platform.machine(),
            "cpu cores": os.cpu_count()}
    try:
        info["load average (1, 5, 15 min)"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


def _dataset_notes(evaluation):
    """Notes about the data: for PneumoniaMNIST the published numbers and how this copy differs."""
    ds = evaluation.dataset
    name = str(ds.get("name", "")).lower()
    notes = []
    known = next((k for k in PUBLISHED if k in name), None)
    if known is not None:
        shown = medmnist.PUBLISHED_PEERS["deep"] + medmnist.PUBLISHED_PEERS["classical"] + \
            ("Google AutoML Vision",)
        lines = "; ".join(f"{m}: AUC {a:.3f}, ACC {c:.3f}" for m, (a, c) in
                          PUBLISHED[known].items() if m in shown)
        notes.append(f"MedMNIST v2 published {known} test scores (Yang et al., Scientific "
                     f"Data 10:41, 2023, official splits): {lines}.")
    if "pneumoniamnist" in name:
        sizes = ds.get("class_counts") or {}
        found = f"n_train {ds.get('n_train')}, n_val {ds.get('n_val')}, n_test {ds.get('n_test')}"
        if sizes:
            found += " (per class: " + "; ".join(
                f"{part} {'/'.join(str(c) for c in counts)}" for part, counts in sizes.items()) + ")"
        off = _PNEUMONIA_OFFICIAL
        official = (f"train {sum(off['train'])} ({off['train'][0]:,} normal / "
                    f"{off['train'][1]:,} pneumonia), val {sum(off['val'])}, test {sum(off['test'])}")
        differs = ds.get("n_train") != sum(off["train"])
        notes.append(f"Sizes found in this copy: {found}. The official split is {official}. "
                     + ("This copy's training split differs from the official one, so the "
                        "comparison with the published numbers is only loose."
                        if differs else "The training size matches the official split."))
    return notes


def _per_label_rows(evaluation):
    """One row per finding: its positives in the test split and each method's AUC [CI]."""
    classes = _classes(evaluation)
    rows = []
    for k, label in enumerate(classes):
        row = {"finding": label}
        for name, r in evaluation.methods.items():
            per = (r.test or {}).get("per_label") or []
            if k < len(per):
                row.setdefault("test positives", str(per[k].get("n_positive")))
                ci = per[k].get("auc_ci95") or [None, None]
                row[name] = (f"{_fmt(per[k].get('auc'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]")
        rows.append(row)
    return rows


def _all_families():
    from ..features import DEFAULT_FAMILIES

    return tuple(DEFAULT_FAMILIES)


def _search_rows(evaluation):
    rows = []
    for name, rec in _searches(evaluation).items():
        r = evaluation.methods[name]
        chosen = {k: v for k, v in (rec.get("chosen") or {}).items()
                  if k not in ("families",)}
        fams = (rec.get("chosen") or {}).get("families")
        cal = (r.params or {}).get("calibration") or {}
        raw = (r.params or {}).get("uncalibrated_test") or {}
        rows.append({"method": name, "trials": str(len(rec.get("trials") or [])),
                     "skipped": str(len(rec.get("skipped") or [])),
                     "val AUC default": _fmt(rec.get("default_val_auc")),
                     "val AUC chosen": _fmt(rec.get("chosen_val_auc")),
                     "chosen": json.dumps(_plain(chosen), sort_keys=True)
                     + (f"; without {', '.join(f for f in _all_families() if f not in fams)}"
                        if fams and set(_all_families()) - set(fams) else "")
                     + (f"; with {', '.join(f for f in fams if f not in _all_families())}"
                        if fams and set(fams) - set(_all_families()) else ""),
                     "calibrated": (f"{len(cal['applied'])} of {len(cal['per_label'])} "
                                    f"findings" if "per_label" in cal else "yes")
                     if cal.get("applied") else
                     ("no" + (f" ({cal['reason']})" if cal.get("reason") else "")),
                     "test ACC uncalibrated": _fmt(raw.get("acc")) if raw else "–"})
    return rows


def _gan_rows(evaluation):
    """Each "<kind>+gan" method beside ``<kind>`` on the real split, when both ran."""
    rows = []
    for name, r in evaluation.methods.items():
        base = name[:-len("+gan")] if name.endswith("+gan") else None
        if base is None or base not in evaluation.methods:
            continue
        b = evaluation.methods[base]
        rows.append({"method": base, "test AUC real": _fmt(b.test.get("auc")),
                     "test AUC +GAN": _fmt(r.test.get("auc")),
                     "test ACC real": _fmt(b.test.get("acc")),
                     "test ACC +GAN": _fmt(r.test.get("acc"))})
    return rows


def _md_table(rows):
    if not rows:
        return ""
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(out)


def _html_table(rows):
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _comparison_text(evaluation):
    c = evaluation.comparison
    if not c:
        return ("No paired comparison: it needs at least one classical and one deep method "
                "scored on the same test images.")
    test = {"delong": "DeLong's test", "paired_bootstrap": "paired bootstrap"}.get(
        c.get("test"), str(c.get("test", "paired test")))
    ci = c.get("ci95") or [None, None]
    p = c.get("p_value")
    ptxt = "–" if p is None else (f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}")
    text = (f"Best deep ({c.get('deep')}) minus best classical ({c.get('classical')}) test AUC"
            f"{' (' + c['on'] + ')' if c.get('on') else ''}: "
            f"{_fmt(c.get('auc_difference'), 4)} (95 % CI {_fmt(ci[0], 4)} to {_fmt(ci[1], 4)}), "
            f"{test}, p = {ptxt}.")
    per = (c.get("per_label") or {}).get("labels")
    if per:
        def one(row):
            p = row.get("p_value")
            if p is None:
                return f"{row['label']} –"
            return (f"{row['label']} {_fmt(row.get('auc_difference'), 3)} "
                    f"(p {p:.2g})" if p >= 1e-4 else
                    f"{row['label']} {_fmt(row.get('auc_difference'), 3)} (p {p:.1e})")
        text += (" The test is on the mean of the per-label AUCs (the figure the methods are "
                 "ranked by), resampling test images once for both methods; per finding, "
                 "DeLong's test (uncorrected for the number of findings): " +
                 "; ".join(one(r) for r in per) + ".")
    return text


def _sections(evaluation, plots, heat_note, heat_name):
    """The report's content as a list of (kind, payload) shared by the markdown and HTML writers."""
    ds = evaluation.dataset
    best = evaluation.best()
    parts = [("h1", f"medfeat report: {ds.get('name') or 'dataset'}")]
    classes = _classes(evaluation)
    counts = ds.get("class_counts") or {}
    per_class = ""
    if counts:
        per_class = (" Positives per finding (" if _is_multilabel(evaluation) else
                     " Per class (") + " / ".join(classes) + "): " + "; ".join(
            f"{part} {' / '.join(str(c) for c in n)}" for part, n in counts.items()) + "."
    parts.append(("p", f"Dataset {ds.get('name') or '(unnamed)'}: {len(classes)} "
                       f"{'findings (multi-label)' if _is_multilabel(evaluation) else 'classes'} "
                       f"({', '.join(classes)}); {ds.get('n_train')} training, {ds.get('n_val')} "
                       f"validation and {ds.get('n_test')} test images.{per_class}"))
    for note in _dataset_notes(evaluation):
        parts.append(("note", note))
    parts.append(("h2", "Results on the test split"))
    parts.append(("table", _table_rows(evaluation)))
    if _is_multilabel(evaluation):
        parts.append(("p", "Multi-label task: every image has its own 0/1 value of each "
                           "finding. As the MedMNIST evaluator scores ChestMNIST, AUC is the "
                           "mean of the per-finding AUCs and ACC the mean per-finding accuracy "
                           "at 0.5 (F1, sensitivity and specificity likewise means over the "
                           "findings). Per finding (test AUC [95 % bootstrap CI]):"))
        parts.append(("table", _per_label_rows(evaluation)))
    parts.append(("p", "ACC uses a 0.5 threshold on the positive-class score (binary tasks, as "
                       "the MedMNIST evaluator) or the arg-max class; AUC is one-vs-rest macro "
                       "for more than two classes; the interval is a 95 % bootstrap over test "
                       "images; CV is stratified k-fold on the training split. Fit and "
                       "predict seconds of a classical method include the feature extraction "
                       "of its split (computed once and shared by the classical methods)."))
    no_cv = [n for n, r in evaluation.methods.items() if r.family == "deep" and not r.cv]
    if no_cv:
        parts.append(("p", f"Not cross-validated: {', '.join(no_cv)} (deep methods train k more "
                           "times for that; their test scores with the bootstrap interval are "
                           "the figures that compare the two roads)."))
    if best is not None:
        r = evaluation.methods[best]
        parts.append(("p", f"Best method by test AUC: **{best}** ({r.family}), AUC "
                           f"{_fmt(r.test.get('auc'))}, ACC {_fmt(r.test.get('acc'))}."))
    for fam in ("classical", "deep"):
        b = evaluation.best(fam)
        if b is not None and b != best:
            parts.append(("p", f"Best {fam} method: {b} (AUC "
                               f"{_fmt(evaluation.methods[b].test.get('auc'))})."))
    search_rows = _search_rows(evaluation)
    if search_rows:
        parts.append(("h2", "Model selection on the validation split"))
        parts.append(("p", "Each method named by kind searched its settings on the validation "
                           "split (ROC AUC; the test split is scored once, at the end): the "
                           "default is kept unless a candidate beats it by more than one "
                           "standard error of its validation AUC (Hanley and McNeil 1982). "
                           "Probabilities are then calibrated on the validation split "
                           "(per-class shifts of the log-probabilities, fitted by maximum "
                           "likelihood), which moves the 0.5 threshold back to the data's class "
                           "balance; for two classes it leaves the AUC unchanged."))
        parts.append(("table", search_rows))
        skipped = {n: rec["skipped"] for n, rec in _searches(evaluation).items()
                   if rec.get("skipped")}
        if skipped:
            budget = (evaluation.settings or {}).get("budget_minutes")
            parts.append(("note", "Skipped for the time budget" +
                          (f" ({budget:g} min)" if budget else "") + ": " + "; ".join(
                              f"{n}: {len(v)} candidate(s)" for n, v in skipped.items()) +
                          ". A larger --budget runs them."))
    gan = _gan_record(evaluation)
    if gan:
        parts.append(("h2", "GAN data expansion"))
        text = (f"The methods named '+gan' trained on the training split with "
                f"{gan.get('n_synthetic')} images from a class-conditional GAN (SNGAN with a "
                f"projection discriminator) added to the {gan.get('n_real')} real ones "
                f"({_secs(gan.get('seconds'))} to train and sample); validation and test hold "
                f"real images only, and the '+gan' methods are not cross-validated (the GAN has "
                f"seen every training image).")
        if gan.get("two_sample_auc") is not None:
            halves = gan.get("two_sample_auc_real_halves")
            text += (f" Classifier two-sample test ({gan.get('two_sample')}): AUC "
                     f"{_fmt(gan['two_sample_auc'])} for real against generated images"
                     + ("" if halves is None else
                        f", {_fmt(halves)} for two halves of the real ones")
                     + " (0.5: indistinguishable).")
        elif gan.get("two_sample"):
            text += f" Two-sample test: {gan['two_sample']}."
        if gan.get("class_agreement") is not None:
            text += (f" Logistic regression on the real training images assigns "
                     f"{_fmt(gan['class_agreement'])} of the generated ones to the class they were "
                     f"generated for (near chance, the generated labels carry no class and the "
                     f"'+gan' methods train on label noise).")
        parts.append(("p", text))
        rows = _gan_rows(evaluation)
        if rows:
            parts.append(("table", rows))
    parts.append(("h2", "Paired comparison"))
    parts.append(("p", _comparison_text(evaluation)))
    parts.append(("h2", "Plots"))
    captions = {"roc.png": "ROC curves", "confusion.png": "Confusion matrices (test split)",
                "auc_ci.png": "Test AUC with 95 % CI", "time.png": "Fit and predict time",
                "cv.png": "Cross-validation AUC per fold",
                "search.png": "Model selection: validation AUC of every trial",
                "heatmaps.png": f"Integrated-gradients heat maps ({heat_name})",
                "per_label.png": "Test AUC per finding with 95 % CI",
                "gan_samples.png": "Real test images (left) beside GAN-generated ones (right), "
                                   "per class",
                "gan_quality.png": "GAN quality: classifier two-sample AUC"}
    for fname in plots:
        parts.append(("img", (fname, captions.get(fname, fname))))
    if heat_note:
        parts.append(("note", f"No attribution heat maps: {heat_note}."))
    parts.append(("h2", "Settings"))
    settings = dict(evaluation.settings or {})
    settings.setdefault("seed", evaluation.seed)
    parts.append(("kv", settings))
    params = {n: r.params for n, r in evaluation.methods.items() if r.params}
    if params:
        parts.append(("p", "Per method:"))
        parts.append(("kv", {n: json.dumps(_plain(p), sort_keys=True) for n, p in params.items()}))
    parts.append(("h2", "Versions and machine"))
    parts.append(("kv", {**_versions(), **_machine()}))
    parts.append(("p", "Written " + datetime.datetime.now(datetime.timezone.utc)
                  .strftime("%Y-%m-%d %H:%M UTC") + " by medfeat.report."))
    return parts


def _bold_md_to_html(text):
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def _markdown(parts):
    lines = []
    for kind, payload in parts:
        if kind == "h1":
            lines += [f"# {payload}", ""]
        elif kind == "h2":
            lines += [f"## {payload}", ""]
        elif kind == "p":
            lines += [payload, ""]
        elif kind == "note":
            lines += [f"> {payload}", ""]
        elif kind == "table":
            lines += [_md_table(payload), ""]
        elif kind == "img":
            fname, caption = payload
            lines += [f"![{caption}]({fname})", ""]
        elif kind == "kv":
            lines += [f"- {k}: {v}" for k, v in payload.items()] + [""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:72em;margin:2em auto;
padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:right}th{background:#f0f0f0}
td:first-child,td:nth-child(2){text-align:left}figure{margin:1em 0}img{max-width:100%}
blockquote{border-left:4px solid #f0a000;margin:1em 0;padding:0.2em 1em;background:#fff8e6}
figcaption{font-size:0.9em;color:#555}"""


def _html(parts, folder):
    body = []
    title = "medfeat report"
    for kind, payload in parts:
        if kind == "h1":
            title = payload
            body.append(f"<h1>{html.escape(payload)}</h1>")
        elif kind == "h2":
            body.append(f"<h2>{html.escape(payload)}</h2>")
        elif kind == "p":
            body.append(f"<p>{_bold_md_to_html(payload)}</p>")
        elif kind == "note":
            body.append(f"<blockquote>{_bold_md_to_html(payload)}</blockquote>")
        elif kind == "table":
            body.append(_html_table(payload))
        elif kind == "img":
            fname, caption = payload
            data = base64.b64encode((folder / fname).read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(caption)}" '
                        f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
                        "</figcaption></figure>")
        elif kind == "kv":
            items = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>"
                            for k, v in payload.items())
            body.append(f"<ul>{items}</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
