"""The Examples sections of medfeat.io run, as part of the normal test run."""

import doctest
import importlib

import pytest

MODULES = ["medfeat.io", "medfeat.io._errors", "medfeat.io.dicom", "medfeat.io.images",
           "medfeat.io.datasets"]


@pytest.mark.parametrize("modname", MODULES)
def test_docstring_examples_run(modname):
    mod = importlib.import_module(modname)
    tests = doctest.DocTestFinder(exclude_empty=True).find(mod, modname)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest examples failed in {modname}"
    assert result.attempted > 0


def test_public_functions_have_examples():
    import medfeat.io as mio

    for name in mio.__all__:
        obj = getattr(mio, name)
        if callable(obj) and not isinstance(obj, type) or name in ("Dataset", "ImageFolder",
                                                                    "ImageReadError"):
            assert "Examples" in (obj.__doc__ or ""), f"{name} has no Examples section"


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, medfeat.io; print([m for m in ('pydicom', 'scipy', 'PIL', 'skimage', "
            "'tifffile', 'imageio', 'tqdm', 'tensorflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
