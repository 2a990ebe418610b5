"""The Examples sections of medfeat.features and medfeat.classical run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["medfeat.features", "medfeat.features.first_order", "medfeat.features.texture",
           "medfeat.features.descriptors", "medfeat.features.extractor", "medfeat.classical"]


@pytest.mark.parametrize("modname", MODULES)
def test_docstring_examples_run(modname):
    mod = importlib.import_module(modname)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(mod, modname) if t.examples]
    assert tests, f"{modname} has no examples"
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest examples failed in {modname}"
