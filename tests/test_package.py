"""Package-level promises: a light import, lazy subpackages, working docstring examples, the CLI."""

import doctest
import importlib
import pkgutil
import subprocess
import sys

import pytest

import medfeat


def test_import_is_light():
    code = ("import sys, medfeat, medfeat.kernels; "
            "heavy = [m for m in ('tensorflow', 'keras', 'torch', 'jax', 'cv2') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="nosuchthing"):
        medfeat.nosuchthing  # noqa: B018
    import medfeat.kernels as K

    with pytest.raises(AttributeError, match="nosuchkernel"):
        K.nosuchkernel  # noqa: B018


def _kernel_modules():
    import medfeat.kernels as K

    names = ["medfeat", "medfeat.kernels"]
    names += [f"medfeat.kernels.{m.name}" for m in pkgutil.iter_modules(K.__path__)]
    return names


@pytest.mark.parametrize("modname", _kernel_modules())
def test_docstring_examples_run(modname):
    mod = importlib.import_module(modname)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(mod, modname, extraglobs={"np": __import__("numpy")})
    examples = sum(len(t.examples) for t in tests)
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest examples failed in {modname}"
    if modname.endswith((".edges", ".morphology", ".density", ".intensity")):
        assert examples > 0, f"public kernel module {modname} has no runnable examples"
