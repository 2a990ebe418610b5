"""The report folder: what counts as one, the check before a run, the atomic swap into place."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

from ._common import ReportError


#: Files a report folder may hold; a folder with anything else in it is not replaced.
REPORT_FILES = ("metrics.json", "report.md", "report.html", "roc.png", "confusion.png",
                "auc_ci.png", "time.png", "cv.png", "search.png", "heatmaps.png",
                "per_label.png", "gan_samples.png", "gan_quality.png", "segmentation.png",
                "training.png")


def _is_report_folder(path):
    """True when ``path`` is an empty folder or holds only report files, metrics.json among them."""
    entries = [e for e in os.listdir(path)]
    if not entries:
        return True
    allowed = set(REPORT_FILES)
    return "metrics.json" in entries and all(
        e in allowed and os.path.isfile(os.path.join(path, e)) for e in entries)


def check_out(out):
    """The absolute report folder for ``out``, checked before any work is done.

    A folder that does not exist yet (in an existing parent), an empty one or a previous medfeat
    report is accepted (:func:`write_report` replaces it); a file, a link or a folder holding
    anything else is refused, so a report never lands on the user's own files.

    Parameters
    ----------
    out : str or os.PathLike

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ReportError
        Naming the folder and why it cannot take a report.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> check_out(os.path.join(root, "report")).name
    'report'
    >>> open(os.path.join(root, "notes.txt"), "w").close()
    >>> check_out(root)
    Traceback (most recent call last):
    ...
    medfeat.report.ReportError: out: ... is a non-empty folder that is not a medfeat report ...
    """
    out = pathlib.Path(os.fspath(out)).expanduser()
    if str(out) in ("", "."):
        out = pathlib.Path.cwd()
    out = out.absolute()
    if out.exists() or out.is_symlink():
        if out.is_symlink() or not out.is_dir():
            raise ReportError(f"out: {str(out)!r} exists and is not a folder; give a folder path "
                              "for the report")
        if not _is_report_folder(out):
            extra = sorted(e for e in os.listdir(out) if e not in REPORT_FILES)[:5]
            raise ReportError(
                f"out: {str(out)!r} is a non-empty folder that is not a medfeat report "
                f"(it holds {', '.join(extra) or 'files but no metrics.json'}); refusing to "
                "replace it — choose a new or empty folder")
    parent = out.parent
    if not parent.is_dir():
        raise ReportError(f"out: the parent folder {str(parent)!r} does not exist")
    return out


def _publish(out, fill):
    """Write a report folder atomically: ``fill(tmp)`` writes into a fresh temporary folder next
    to ``out``, which then replaces ``out`` (a previous report is moved aside first and removed
    last, so a failure at any point leaves the old report, or nothing, never half of one)."""
    tmp = pathlib.Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    old = None
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)   # mkdtemp makes it 0700; a report is an ordinary folder
        # swap: the old report aside, the new one in, the old one gone
        if out.exists():
            old = pathlib.Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.rmdir(old)
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old is not None:
                os.replace(old, out)
                old = None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out
