"""Feature extraction on a dask.distributed cluster, for :class:`FeatureExtractor`.

The unit of work is a batch of files (or of images already in memory). Files are read on the
workers, so only paths travel from the client and only feature rows come back. Tasks are pure
(a batch's rows depend only on its paths and the extractor's parameters) and may run twice: when
a worker dies, the scheduler runs its tasks again elsewhere and the rows are the same. A file that
cannot be read or processed is reported by name (``on_error="skip"``: logged, its row left out,
the run goes on; ``"raise"``: the run stops with the file's name in the error).
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import sys

log = logging.getLogger("medfeat.features")

ON_ERROR = ("skip", "raise")
#: batches per worker: enough to balance the load (and to lose little when a worker dies),
#: few enough that the scheduler's cost per task (about a millisecond) stays small.
_BATCHES_PER_WORKER = 8
_MAX_BATCH = 32
_dashboards_shown = set()


def check_scheduler(scheduler):
    """Raise ``ValueError`` unless ``scheduler`` is None, a Client, an address or a count."""
    if scheduler is None or isinstance(scheduler, str):
        return scheduler
    if isinstance(scheduler, numbers.Integral) and not isinstance(scheduler, bool):
        if scheduler < 1:
            raise ValueError(f"scheduler as a number of local workers must be >= 1, got "
                             f"{scheduler}")
        return int(scheduler)
    if type(scheduler).__name__ == "Client" and hasattr(scheduler, "submit"):
        return scheduler
    raise ValueError(f"scheduler must be None, a dask.distributed Client, a scheduler address "
                     f"('tcp://host:8786') or a number of local worker processes; got "
                     f"{scheduler!r}")


@contextlib.contextmanager
def client_for(scheduler):
    """A ``dask.distributed.Client`` for ``scheduler``; a client or cluster made here (from an
    address or a worker count) is closed on exit, one passed in is left open."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("scheduler= needs dask.distributed: "
                          "pip install 'medfeat[dask]'") from None
    cluster = None
    if isinstance(scheduler, str):
        client = Client(scheduler)
    elif isinstance(scheduler, int):
        cluster = LocalCluster(n_workers=scheduler, threads_per_worker=1, processes=True)
        client = Client(cluster)
    else:
        client = scheduler
    link = getattr(client, "dashboard_link", None)
    if link and link not in _dashboards_shown:
        _dashboards_shown.add(link)
        print(f"dask dashboard: {link}", file=sys.stderr)
    try:
        yield client
    finally:
        if client is not scheduler:
            client.close()
        if cluster is not None:
            cluster.close()


def _batches(n, workers):
    size = max(1, min(_MAX_BATCH, -(-n // (_BATCHES_PER_WORKER * max(1, workers)))))
    return [(i, min(n, i + size)) for i in range(0, n, size)]


def run(client, func, items, *, progress, desc, unit="img", retries=2):
    """``func(batch)`` for batches of ``items`` on the cluster; the batches' results in input
    order. A tqdm bar on the client counts finished items."""
    from distributed import as_completed

    workers = len(client.scheduler_info().get("workers", {})) or 1
    spans = _batches(len(items), workers)
    futures = [client.submit(func, items[a:b], pure=True, retries=retries) for a, b in spans]
    index = {f.key: k for k, f in enumerate(futures)}
    results = [None] * len(futures)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc=desc, unit=unit)
    try:
        for fut in as_completed(futures):
            k = index[fut.key]
            results[k] = fut.result()
            if bar is not None:
                a, b = spans[k]
                bar.update(b - a)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        if bar is not None:
            bar.close()
    return results


def file_rows(paths, *, features, reader, on_error):
    """Worker side: ``(rows, failures)`` for a batch of paths; ``rows[i]`` is None for a file that
    failed, and ``failures`` lists ``(path, message)``. Nothing is raised for a bad file, so that
    the scheduler never retries what would fail again."""
    if reader is None:
        from medfeat.io import read_image as reader
    rows, failures = [], []
    for path in paths:
        try:
            rows.append(features(reader(path)))
        except Exception as exc:  # reported by name on the client
            rows.append(None)
            failures.append((str(path), f"{type(exc).__name__}: {exc}"))
            if on_error == "raise":
                break
    return rows, failures


def collect(results, paths, on_error):
    """Rows of every file in input order (None for skipped ones) from the batches' results;
    logs each failure, or raises for the first with ``on_error="raise"``."""
    rows, failed = [], []
    for batch_rows, failures in results:
        rows.extend(batch_rows)
        failed.extend(failures)
    if failed and on_error == "raise":
        from medfeat.io import ImageReadError

        order = {str(p): i for i, p in enumerate(paths)}
        path, msg = min(failed, key=lambda f: order[f[0]])
        raise ImageReadError(path, msg)
    for path, msg in failed:
        log.warning("skipped %s: %s", path, msg)
    return rows, failed

