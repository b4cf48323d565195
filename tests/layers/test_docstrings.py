"""Every layer module's docstring examples run (both backends)."""

import doctest
import importlib
import pkgutil

import pytest

import layers

MODULES = sorted(m.name for m in pkgutil.iter_modules(layers.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"layers.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
