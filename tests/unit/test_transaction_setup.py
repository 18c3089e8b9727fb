"""What each backend runs to give one transaction its isolation level and read-only mode,
from the dialect alone (no server): statements after BEGIN, and resets after it ends."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite

from activerecord import ConfigurationError
from activerecord.backend.dialects import DialectFacts, normalize_isolation_level

FACTS = {
    "sqlite": DialectFacts.for_dialect(sqlite.dialect()),
    "postgresql": DialectFacts.for_dialect(postgresql.psycopg.dialect()),
    "mysql": DialectFacts.for_dialect(mysql.pymysql.dialect()),
}


@pytest.mark.parametrize(
    ("given", "normal"),
    [("read_committed", "READ COMMITTED"), ("Repeatable  Read", "REPEATABLE READ"), (None, None)],
)
def test_isolation_level_spellings(given, normal):
    assert normalize_isolation_level(given) == normal


@pytest.mark.parametrize(
    ("dialect", "level", "read_only", "begin", "reset"),
    [
        ("postgresql", None, False, (), ()),
        ("postgresql", "serializable", True,
         ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET TRANSACTION READ ONLY"), ()),
        ("mysql", None, False, (), ()),
        # SET TRANSACTION only holds for the next transaction: START TRANSACTION must follow.
        ("mysql", "repeatable_read", False,
         ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", "START TRANSACTION"), ()),
        ("mysql", "read committed", True,
         ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "START TRANSACTION READ ONLY"), ()),
        ("sqlite", None, False, (), ()),
        ("sqlite", "serializable", False, (), ()),  # what SQLite always is
        # Connection-wide pragmas: turned back off before the pool gets the connection.
        ("sqlite", "read_uncommitted", True,
         ("PRAGMA read_uncommitted = 1", "PRAGMA query_only = 1"),
         ("PRAGMA read_uncommitted = 0", "PRAGMA query_only = 0")),
    ],
)
def test_transaction_statements_per_dialect(dialect, level, read_only, begin, reset):
    setup = FACTS[dialect].transaction_setup(level, read_only)
    assert (tuple(setup.begin), tuple(setup.reset)) == (begin, reset)


@pytest.mark.parametrize("dialect", FACTS)
def test_an_unknown_level_is_refused_naming_the_choices(dialect):
    with pytest.raises(ConfigurationError, match="is not available on .*; choose one of"):
        FACTS[dialect].transaction_setup("snapshot", False)


def test_sqlite_has_no_repeatable_read():
    with pytest.raises(ConfigurationError, match="READ UNCOMMITTED, SERIALIZABLE"):
        FACTS["sqlite"].transaction_setup("repeatable read", False)
