"""FeatureExtractor on a dask.distributed LocalCluster of two worker processes: the same rows as the
serial run, in input order, through a worker killed mid-run and a corrupt file."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import numpy as np
import pytest

from medfeat.features import FeatureExtractor
from medfeat.features import _distributed
from medfeat.io import ImageReadError, read_image

from ..conftest import load_real, local_cluster

distributed = pytest.importorskip("distributed")

FAMILIES = ["intensity", "histogram", "glcm", "thresholds"]


@pytest.fixture(scope="module")
def client():
    with local_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """40 small real images (windows of pydicom's CT slice, varied position and size), as .npy
    and PNG files, with a corrupt file in the middle."""
    folder = tmp_path_factory.mktemp("scans")
    ct = load_real("ct_small")
    paths = []
    for k in range(40):
        r, c, size = 4 * (k % 10), 3 * (k // 10), 24 + (k % 5) * 4
        img = ct[r:r + size, c:c + size]
        p = folder / f"scan{k:02d}.npy"
        np.save(p, img)
        paths.append(str(p))
    bad = folder / "scan_corrupt.npy"
    bad.write_bytes(b"\x93NUMPY not really")
    return paths, str(bad)


def _slow_reader(path):
    """read_image plus a short sleep: tasks long enough for a worker to die in the middle."""
    time.sleep(0.04)
    return read_image(path)


def test_same_rows_as_serial_in_input_order(client, files):
    paths, _ = files
    serial, read = FeatureExtractor(families=FAMILIES).transform_files(paths)
    dist, read_d = FeatureExtractor(families=FAMILIES, scheduler=client).transform_files(paths)
    assert read_d == read == paths
    np.testing.assert_array_equal(dist, serial)
    # in-memory stacks go through the cluster too
    stack = np.stack([np.load(p)[:24, :24] for p in paths[:6]])
    fx = FeatureExtractor(families=FAMILIES).fit(stack)
    np.testing.assert_array_equal(fx.set_params(scheduler=client).transform(stack),
                                  fx.set_params(scheduler=None).transform(stack))


def test_worker_killed_mid_run_still_complete_and_identical(client, files):
    paths, _ = files
    serial, _ = FeatureExtractor(families=FAMILIES).transform_files(paths)
    client.wait_for_workers(2)
    pids = list(client.run(os.getpid).values())
    killed = {}

    def kill_one():
        time.sleep(0.3)  # tasks take about 40 x 0.04 s / 2 workers = 0.8 s in all
        os.kill(pids[0], signal.SIGKILL)
        killed["at"] = time.monotonic()

    killer = threading.Thread(target=kill_one)
    killer.start()
    dist, read = FeatureExtractor(families=FAMILIES, scheduler=client).transform_files(
        paths, reader=_slow_reader)
    done = time.monotonic()
    killer.join()
    assert "at" in killed and killed["at"] < done  # the worker died while the run was going on
    assert read == paths
    np.testing.assert_array_equal(dist, serial)
    client.wait_for_workers(2)  # the nanny restarts it; later tests get both workers


def test_corrupt_file_is_skipped_and_named(client, files, caplog):
    paths, bad = files
    mixed = paths[:5] + [bad] + paths[5:10]
    fx = FeatureExtractor(families=FAMILIES, scheduler=client, on_error="skip")
    with caplog.at_level(logging.WARNING, logger="medfeat.features"):
        F, read = fx.transform_files(mixed)
    assert read == paths[:10]
    assert any(bad in r.getMessage() for r in caplog.records)
    serial, _ = FeatureExtractor(families=FAMILIES).transform_files(paths[:10])
    np.testing.assert_array_equal(F, serial)
    with pytest.raises(ImageReadError, match="scan_corrupt"):
        fx.set_params(on_error="raise").transform_files(mixed)


def test_local_workers_started_and_closed_and_dashboard_printed_once(files, capsys):
    paths, _ = files
    _distributed._dashboards_shown.clear()
    before = set(threading.enumerate())
    F, _ = FeatureExtractor(families=["intensity"], scheduler=1).transform_files(paths[:4])
    serial, _ = FeatureExtractor(families=["intensity"]).transform_files(paths[:4])
    np.testing.assert_array_equal(F, serial)
    assert capsys.readouterr().err.count("dask dashboard:") == 1
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("Nanny")]


def test_dashboard_address_printed_once_per_client(client, files, capsys):
    paths, _ = files
    _distributed._dashboards_shown.clear()
    fx = FeatureExtractor(families=["intensity"], scheduler=client)
    fx.transform_files(paths[:2])
    fx.transform_files(paths[:2])
    assert capsys.readouterr().err.count(client.dashboard_link) == 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, object()])
def test_bad_scheduler_and_on_error(bad):
    with pytest.raises(ValueError, match="scheduler"):
        FeatureExtractor(scheduler=bad).transform_files(["x.npy"])
    with pytest.raises(ValueError, match="on_error"):
        FeatureExtractor(on_error="ignore").transform_files(["x.npy"])


def test_cli_features_on_the_cluster(client, files, tmp_path, capsys, caplog):
    import pandas as pd

    from medfeat import cli

    paths, bad = files
    out = tmp_path / "features.csv"
    with caplog.at_level(logging.WARNING, logger="medfeat.features"):
        code = cli.main(["features", *paths[:3], bad, *paths[3:6], "--out", str(out),
                         "--families", "intensity", "--scheduler", client.scheduler.address,
                         "--on-error", "skip", "--quiet"])
    assert code == 0
    assert "skipped 1 of 7 files" in capsys.readouterr().err
    assert any(bad in r.getMessage() for r in caplog.records)
    table = pd.read_csv(out)
    assert list(table["path"]) == paths[:6]
    serial, _ = FeatureExtractor(families=["intensity"]).transform_files(paths[:6])
    np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(float), serial, rtol=1e-12)
