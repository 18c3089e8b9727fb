"""Rules of the test suite itself: the tests' models live on a MetaData per test module
(tests/models.py says why), and no test module imports an optional package at import time
(each test that needs one skips by itself, the module's other tests still run)."""

from __future__ import annotations

import ast
from pathlib import Path

import activerecord
from activerecord import ActiveRecord, demo
from tests import models

TESTS = Path(__file__).resolve().parents[1]
#: Packages a test may need that a plain ``pip install -e .`` does not bring.
OPTIONAL = frozenset({"pandas", "polars", "tqdm", "hypothesis", "alembic", "django", "peewee"})
#: Models that sit on the default ``activerecord.metadata`` on purpose.
ON_DEFAULT_METADATA = {
    ("test_sqlalchemy_interop.py", "MigratedUser"),
    ("test_suite_rules.py", "User"),
}


def _is_active_record(base: ast.expr) -> bool:
    return (isinstance(base, ast.Name) and base.id == "ActiveRecord") or (
        isinstance(base, ast.Attribute) and base.attr == "ActiveRecord"
    )


def _sets(node: ast.ClassDef, name: str) -> bool:
    return any(
        isinstance(stmt, (ast.Assign, ast.AnnAssign))
        and any(
            isinstance(t, ast.Name) and t.id == name
            for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
        )
        for stmt in node.body
    )


def test_every_test_model_derives_from_its_modules_base():
    """A class deriving from ActiveRecord directly must bring its own MetaData (or an
    explicit ``__table__``); the module's ``Model`` base is the usual way."""
    strays = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef) or not any(map(_is_active_record, node.bases)):
                continue
            if any(_sets(node, name) for name in ("__metadata__", "__table__", "__abstract__")):
                continue
            if (path.name, node.name) not in ON_DEFAULT_METADATA:
                strays.append(f"{path.relative_to(TESTS)}:{node.lineno}: {node.name}")
    assert strays == []


def test_a_class_of_the_same_table_name_elsewhere_does_not_replace_a_test_table():
    ours = models.User.__table__
    assert demo.User.__table__.metadata is activerecord.metadata  # the demo's, imported above

    class User(ActiveRecord):  # as a README block would, on the default MetaData
        __table_name__ = "users"
        id: int | None = None

    try:
        assert models.Model.__metadata__.tables["users"] is ours
        assert models.User.__table__ is ours
        assert activerecord.metadata.tables["users"] is User.__table__
    finally:
        activerecord.metadata.remove(User.__table__)


def test_no_test_module_imports_an_optional_package_at_import_time():
    """Use ``optional()`` / ``needs()`` from tests/conftest.py (or import inside the test)."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found += [
                f"{path.relative_to(TESTS)}:{node.lineno}: {name}"
                for name in names
                if name.split(".")[0] in OPTIONAL
            ]
    assert found == []
