"""The unit tier: compile-only tests of pure rules, run without any database server.

``pytest tests/unit`` runs them alone (a few seconds, no server needed). A test here may use
an in-memory SQLite database (``sqlite://``) or compile statements for a dialect, but never
the ``backend`` / ``db`` / ``fresh`` fixtures that reach the servers: asking for one is a
collection error, so the tier stays runnable on a machine without PostgreSQL or MariaDB.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SERVER_FIXTURES = frozenset({"backend", "db", "fresh", "insert_path"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unit: a compile-only test of tests/unit (no server)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in Path(str(item.path)).resolve().parents:
            continue
        item.add_marker(pytest.mark.unit)
        wanted = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        if wanted:
            raise pytest.UsageError(
                f"{item.nodeid} is in the unit tier but asks for {sorted(wanted)}: "
                "move it out of tests/unit or compile the statement instead"
            )
