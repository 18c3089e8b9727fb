"""The public surface, both directions: what users can reach from ``activerecord`` is exactly
``__all__``, every ``__all__`` name is documented, the names the docs and examples import exist
where they import them, and each alias behaves exactly as the spelling it stands for."""

from __future__ import annotations
import __future__

import ast
import importlib
import inspect
import pkgutil
import re
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import ActiveRecord, SoftDeleteMixin, UnsafeWriteError

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def test_the_top_level_namespace_is_exactly_all():
    reachable = {
        name
        for name, value in vars(activerecord).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and value is not __future__.annotations
    }
    assert reachable == set(activerecord.__all__) - {"__version__"}


def test_every_name_in_all_is_documented():
    text = "\n".join(path.read_text() for path in DOCS)
    undocumented = [
        name
        for name in activerecord.__all__
        if not re.search(rf"`[^`]*\b{re.escape(name)}\b", text)
    ]
    assert undocumented == [], "name these in README.md or docs/ (in `code`)"


def _sources() -> Iterator[tuple[str, str]]:
    for path in DOCS:
        for i, block in enumerate(PYTHON_BLOCK.findall(path.read_text())):
            yield f"{path.name} block {i + 1}", block
    for path in EXAMPLES:
        yield path.name, path.read_text()


def _imported_names() -> Iterator[tuple[str, str, str]]:
    """``(where, module, name)`` for each ``from activerecord... import name`` and each
    ``activerecord.module.name`` attribute chain the docs and examples use."""
    for where, source in _sources():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("activerecord"):
                for alias in node.names:
                    yield where, node.module or "", alias.name
            elif isinstance(node, ast.Attribute):
                chain = []
                value: ast.expr = node
                while isinstance(value, ast.Attribute):
                    chain.append(value.attr)
                    value = value.value
                if isinstance(value, ast.Name) and value.id == "activerecord" and len(chain) >= 2:
                    *module, name = ["activerecord", *reversed(chain)][:3]
                    if importlib.util.find_spec(".".join(module)) is not None:
                        yield where, ".".join(module), name


def test_names_the_docs_and_examples_import_are_exported_there():
    missing = []
    for where, module_name, name in _imported_names():
        module = importlib.import_module(module_name)
        if name not in getattr(module, "__all__", ()):
            if importlib.util.find_spec(f"{module_name}.{name}") is None:  # a submodule is fine
                missing.append(f"{where}: {module_name}.{name}")
    assert missing == []


def _modules() -> Iterator[types.ModuleType]:
    for info in pkgutil.walk_packages(activerecord.__path__, "activerecord."):
        if not info.name.endswith("__main__"):
            yield importlib.import_module(info.name)


def test_one_object_per_public_name():
    """A name a package exports and one of its modules (at any depth) also exports is one
    object: the top level and the subpackages re-export, they never shadow."""
    exported: dict[str, list[tuple[str, object]]] = {}
    for module in [activerecord, *_modules()]:
        for name in getattr(module, "__all__", ()):
            exported.setdefault(name, []).append((module.__name__, getattr(module, name)))
    clashes = [
        f"{outer}.{name} is not {inner}.{name}"
        for name, places in exported.items()
        for outer, outer_value in places
        for inner, inner_value in places
        if inner.startswith(outer + ".") and outer_value is not inner_value
    ]
    assert clashes == []


def test_every_module_all_names_exist():
    for module in _modules():
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{module.__name__}.__all__ lists {name}"


# -- aliases are strictly equal to their targets ---------------------------------------------


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class SurfaceThing(Model):
    __table_name__ = "surface_things"
    id: int | None = None
    n: int = 0


class SurfaceSoftThing(SoftDeleteMixin, Model):
    __table_name__ = "surface_soft_things"
    id: int | None = None


@pytest.fixture
def memory():
    activerecord.connect("sqlite://")
    SurfaceThing.create_table()
    SurfaceSoftThing.create_table()
    SurfaceThing.batch_insert_from_dicts([{"n": 1}, {"n": 2}])
    yield
    activerecord.disconnect()


def test_update_all_and_delete_all_keep_the_all_rows_guard(memory):
    with pytest.raises(UnsafeWriteError) as original:
        SurfaceThing.query().update({"n": 0})
    with pytest.raises(UnsafeWriteError) as alias:
        SurfaceThing.update_all({"n": 0})
    assert str(alias.value) == str(original.value)
    with pytest.raises(UnsafeWriteError) as original:
        SurfaceThing.query().delete()
    with pytest.raises(UnsafeWriteError) as alias:
        SurfaceThing.delete_all()
    assert str(alias.value) == str(original.value)
    assert SurfaceThing.query().count() == 2  # nothing was written
    assert SurfaceThing.update_all({"n": 5}, "n = ?", 1) == 1
    assert SurfaceThing.update_all({"n": 7}, all_rows=True) == 2
    assert SurfaceThing.delete_all({"n": 7}) == 2


def test_alias_signatures_match_their_targets():
    update = inspect.signature(ActiveRecord.update_all).parameters
    delete = inspect.signature(ActiveRecord.delete_all).parameters
    for parameters, target in ((update, activerecord.Query.update),
                               (delete, activerecord.Query.delete)):
        for name, parameter in inspect.signature(target).parameters.items():
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name in parameters:
                assert parameters[name].default == parameter.default, name
        assert "all_rows" in parameters


def test_query_aliases_build_the_same_statements(memory):
    assert str(SurfaceSoftThing.query_with_deleted().to_sql()) == str(
        SurfaceSoftThing.query().with_deleted().to_sql()
    )
    assert str(SurfaceSoftThing.query_only_deleted().to_sql()) == str(
        SurfaceSoftThing.query().only_deleted().to_sql()
    )
    assert SurfaceThing.find(2) == SurfaceThing.query().find(2)
    for key in (99, (1, 2)):  # no such row; a key of the wrong width
        with pytest.raises(activerecord.RecordNotFound) as original:
            SurfaceThing.query().find(key)
        with pytest.raises(activerecord.RecordNotFound) as alias:
            SurfaceThing.find(key)
        assert str(alias.value) == str(original.value)
    assert SurfaceThing.find_one_or_fail({"n": 2}) == SurfaceThing.find_one({"n": 2})
    with pytest.raises(activerecord.RecordNotFound):
        SurfaceThing.find_one_or_fail({"n": 99})
    records = [SurfaceThing(n=3), SurfaceThing(n=4)]
    assert SurfaceThing.bulk_create(records) == SurfaceThing.batch_insert([SurfaceThing(n=5)]) + 1
    assert [r.id for r in records] == [3, 4]
