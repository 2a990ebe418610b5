"""The ``medfeat`` command: exit codes and what it prints."""

import subprocess
import sys

import pytest

from medfeat import cli


def test_info_lists_backends(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for backend in ("cython", "numba", "cuda"):
        assert backend in out
    assert "numpy" in out


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
