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


def _public_modules():
    """Every module of the package whose name has no leading underscore (kernels included)."""
    names = ["medfeat"]
    for info in pkgutil.walk_packages(medfeat.__path__, "medfeat."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return names


def _public_callables(mod):
    """Public functions and classes; exceptions, dataclasses and named tuples (records
    documented by their attributes) are not asked for examples."""
    import dataclasses

    for name in getattr(mod, "__all__", ()):
        obj = getattr(mod, name, None)
        if not callable(obj) or not getattr(obj, "__module__", "").startswith("medfeat"):
            continue
        if isinstance(obj, type) and (issubclass(obj, (BaseException, tuple)) or
                                      dataclasses.is_dataclass(obj)):
            continue
        yield name, obj


@pytest.mark.parametrize("modname", _public_modules())
def test_public_callables_have_runnable_examples(modname):
    """Each public function and class of the module has at least one doctest example (pytest
    runs them all with --doctest-modules; a +SKIP example does not count)."""
    mod = importlib.import_module(modname)
    finder = doctest.DocTestFinder(exclude_empty=True, recurse=False)
    missing = []
    for name, obj in _public_callables(mod):
        examples = [ex for t in finder.find(obj, name) for ex in t.examples
                    if not ex.options.get(doctest.SKIP)]
        if not examples:
            missing.append(name)
    assert not missing, f"{modname}: no runnable docstring example in {missing}"


def test_doctests_are_collected_for_the_whole_package(pytestconfig):
    """The settings run every docstring example of src/medfeat, not a hand-picked list."""
    assert "--doctest-modules" in pytestconfig.getini("addopts")
    paths = [p.replace("\\", "/").rstrip("/") for p in pytestconfig.getini("testpaths")]
    assert "src/medfeat" in paths
