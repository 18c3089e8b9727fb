"""The public API is exactly what __all__ lists, sorted."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import activerecord


def test_all_is_sorted_and_complete():
    names = activerecord.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(activerecord, name), name


def _modules() -> list[str]:
    found = ["activerecord"]
    for info in pkgutil.walk_packages(activerecord.__path__, "activerecord."):
        if info.name.endswith("__main__"):
            continue
        found.append(info.name)
    return found


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    try:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    finally:
        activerecord.disconnect()
    assert result.failed == 0
