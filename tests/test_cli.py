"""The ``medfeat`` command: exit codes and what it prints."""

import subprocess
import sys

import pytest

from medfeat import cli


def test_info_lists_backends(capsys, monkeypatch):
    from medfeat import kernels

    assert cli.main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    block = lines[lines.index("kernel backends:") + 1:]
    status = kernels.backend_status()
    for backend, why in status.items():           # one line per backend, with its real status
        line = next(x for x in block if x.split()[0] == backend)
        assert line.split(None, 1)[1] == ("available" if why is None else f"unavailable: {why}")
    assert any(x.split()[:1] == ["numpy"] for x in lines)
    # a backend that stops working is reported so, with the reason
    monkeypatch.setattr(kernels, "backend_status",
                        lambda: {**status, "numba": "numba is not installed"})
    assert cli.main(["info"]) == 0
    assert "  numba   unavailable: numba is not installed" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["nosuchcommand"], ["demo", "--image", "nosuch"],
                                  ["demo", "--backend", "opencl"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    proc = subprocess.run([sys.executable, "-m", "medfeat", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("medfeat: error:")


def test_demo_runs_every_kernel_and_writes_pngs(tmp_path, capsys):
    assert cli.main(["demo", "--image", "mr_small", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "read by medfeat.io.read_dicom" in out
    for kernel in ("sobel", "canny", "threshold_otsu", "threshold_maxent", "opening", "histogram",
                   "density", "normalize"):
        assert kernel in out
    pngs = sorted(p.name for p in tmp_path.iterdir())
    assert "mr_small_canny.png" in pngs and len(pngs) == 5
    assert not [p for p in pngs if ".tmp" in p]
    import imageio.v3 as iio

    img = iio.imread(tmp_path / "mr_small_input.png")
    assert img.shape == (64, 64) and img.max() == 255


# --------------------------------------------------------------------------------------------
# compare, features, bench, info

import json  # noqa: E402

import numpy as np  # noqa: E402


def _run(*argv, cwd=None):
    return subprocess.run([sys.executable, "-m", "medfeat", *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    from medfeat.io import make_phantoms

    ds = make_phantoms(n=60, size=32, seed=0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, **{f"{p}_{k}": getattr(getattr(ds, p), k) for p in ("train", "val", "test")
                      for k in ("images", "labels")})
    return path


def test_info_shows_deep_versions(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "tensorflow" in out and "keras" in out and "Keras backend" in out


@pytest.mark.parametrize("argv, message", [
    (["compare", "--methods", "knn", "svm"], "unknown method 'svm'"),
    (["compare", "--cv", "1"], "--cv must be 0"),
    (["compare", "--cv", "400"], "smallest class of the training split has only 350"),  # default
    (["compare", "--epochs", "0"], "--epochs must be >= 1"),
    (["compare", "--data", "/no/such/file.npz"], "does not exist"),
    (["compare", "--dataset", "nosuchmnist"], "dataset name"),
    (["compare", "--data", "x.npz", "--dataset", "phantoms"], "not allowed with"),
    (["compare", "--backend", "opencl"], "invalid choice"),
    (["compare", "--budget", "0"], "--budget must be a positive number"),
    (["compare", "--workers", "0"], "--workers must be >= 1"),
    (["compare", "--workers", "2", "--scheduler", "tcp://x:1"], "not allowed with"),
    (["compare", "--budget", "ten"], "--budget must be a number of minutes"),
    (["compare", "--methods", "knn", "ensemble2"], "unknown method 'ensemble2'"),
    (["compare", "--methods", "knn", "svm+gan"], "unknown method 'svm+gan'"),
    (["features", "/no/such/folder", "--out", "f.csv"], "no such file or folder"),
    (["features", ".", "--out", "features.xlsx"], "--out must end in .csv or .parquet"),
    (["features", "."], "--out"),
])
def test_bad_arguments_of_the_new_commands(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = cli.main(argv)
    except SystemExit as exc:       # argparse's own errors
        code = exc.code
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medfeat: error:") and message in lines[0]
    assert list(tmp_path.iterdir()) == []          # nothing written


def test_compare_refuses_a_foreign_out_folder(tiny_npz, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    code = cli.main(["compare", "--data", str(tiny_npz), "--methods", "nb", "--out",
                     str(tmp_path / "mine")])
    err = capsys.readouterr().err
    assert code == 2 and "not a medfeat report" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["keep.txt"]


def test_compare_end_to_end(tiny_npz, tmp_path):
    out = tmp_path / "rep"
    proc = _run("compare", "--data", tiny_npz, "--methods", "knn", "nb", "--cv", "2",
                "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert f"report: {out}" in proc.stdout
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method "))
    rows = {line.split()[0]: line.split() for line in lines[header + 2:header + 4]}
    doc = json.loads((out / "metrics.json").read_text())
    assert set(rows) == set(doc["methods"]) == {"knn", "nb"}
    for name, cells in rows.items():
        assert cells[1] == "classical"
        assert float(cells[3]) == pytest.approx(doc["methods"][name]["test"]["auc"], abs=5.01e-4)
        assert doc["methods"][name]["cv"]["k"] == 2
    assert "budget 9 min" in proc.stdout and "trials on validation" in proc.stdout
    assert doc["methods"]["knn"]["params"]["search"]["trials"]       # selection ran
    assert doc["settings"]["budget_minutes"] == 9.0
    assert "features [train]" in proc.stdout          # progress
    assert "features:" in proc.stderr                 # the tqdm bar
    for name in ("report.md", "report.html", "roc.png", "confusion.png"):
        assert (out / name).is_file()
    # again into the same folder: replaced, exit 0
    again = _run("compare", "--data", tiny_npz, "--methods", "nb", "--cv", "0", "--out", out,
                 "--quiet", "--no-search", "--budget", "2.5", "--no-calibrate")
    assert again.returncode == 0, again.stderr
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["methods"]) == {"nb"} and "search" not in doc["methods"]["nb"]["params"]
    assert doc["settings"]["budget_minutes"] == 2.5 and doc["settings"]["select"] is False
    assert doc["settings"]["calibrate"] is False and "calibration" not in doc["methods"]["nb"][
        "params"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_features_csv(tmp_path):
    from PIL import Image
    from pydicom.data import get_testdata_file

    from medfeat.features import FeatureExtractor
    from medfeat.io import read_dicom

    rng = np.random.default_rng(0)
    (tmp_path / "pngs" / "sub").mkdir(parents=True)
    imgs = {}
    for i, where in enumerate(("pngs/a.png", "pngs/b.png", "pngs/sub/c.png")):
        img = rng.integers(0, 255, (20 + 4 * i, 24)).astype(np.uint8)   # different shapes
        Image.fromarray(img).save(tmp_path / where)
        imgs[str(tmp_path / where)] = img
    (tmp_path / "pngs" / "readme.txt").write_text("not an image")
    dcm = get_testdata_file("MR_small.dcm")
    out = tmp_path / "feats.csv"
    proc = _run("features", tmp_path / "pngs", dcm, "--out", out, "--families", "intensity",
                "glcm", "--quiet")
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    table = pd.read_csv(out)
    assert list(table["path"]) == sorted(imgs) + [dcm]
    imgs[dcm] = read_dicom(dcm)
    fx = FeatureExtractor(families=["intensity", "glcm"])
    assert list(table.columns[1:]) == list(fx.fit(imgs[dcm][None]).get_feature_names_out())
    for _, row in table.iterrows():
        img = imgs[row["path"]]
        expected = fx.fit(img[None]).transform(img[None])[0]
        np.testing.assert_allclose(row.iloc[1:].to_numpy(float), expected, rtol=1e-9,
                                   atol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats.csv", "pngs"]


def test_features_parquet_needs_pyarrow(tmp_path, capsys):
    try:
        import pyarrow  # noqa: F401
        pytest.skip("pyarrow is installed here")
    except ImportError:
        pass
    assert cli.main(["features", str(tmp_path), "--out", str(tmp_path / "f.parquet")]) == 2
    assert "pip install pyarrow" in capsys.readouterr().err


def test_bench_runs_compare_py():
    if cli._compare_script() is None:
        pytest.skip("not a source checkout")
    proc = _run("bench", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower() and "--sizes" in proc.stdout


def test_bench_outside_a_checkout(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_compare_script", lambda: None)
    assert cli.main(["bench", "--only", "sobel"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "source checkout" in err
