"""Every per-database fact, in one dialect object per backend.

:class:`DialectFacts` (``base.py``) is the dialect object; :class:`SQLiteFacts`,
:class:`PostgreSQLFacts` and :class:`MySQLFacts` (MariaDB, Galera and TiDB included) carry
each backend's facts, engine and session setup, insert strategy, update style and DDL
quirks. :func:`dialect_for` finds the object for an engine, connection or SQLAlchemy dialect;
the functions below answer one question each for code that holds only a SQLAlchemy dialect.
Code elsewhere asks these instead of testing dialect names.

Example::

    >>> import sqlalchemy as sa
    >>> facts = dialect_for(sa.create_engine("sqlite://"))
    >>> type(facts).__name__, facts.insert_strategy
    ('SQLiteFacts', 'sqlite_rowid')
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from .base import DialectFacts, facts_class
from .binding import (
    bind_processor,
    float_guard,
    integer_guard,
    unsigned_integer_guard,
    without_params,
)
from .mysql import AddLiveUniqueKeys, MySQLFacts, node_unready_reason
from .postgresql import PostgreSQLFacts
from .session import SessionKeys, TransactionSetup, normalize_isolation_level
from .sqlite import SQLiteFacts

__all__ = [
    "AddLiveUniqueKeys",
    "DialectFacts",
    "MySQLFacts",
    "PostgreSQLFacts",
    "SQLiteFacts",
    "SessionKeys",
    "TransactionSetup",
    "bind_processor",
    "causal_reads_statements",
    "database_unique_keys",
    "decimal_as_real",
    "dialect_for",
    "driver_hint",
    "facts_class",
    "float_guard",
    "in_list_as_array",
    "integer_guard",
    "limit_in_subquery",
    "node_unready_reason",
    "normalize_isolation_level",
    "partial_index_supported",
    "readable_compiler",
    "unsigned_integer_guard",
    "update_reads_assigned",
    "without_params",
]


def dialect_for(bind: sa.Engine | sa.Connection | sa.Dialect) -> DialectFacts:
    """The dialect object of an engine, connection or SQLAlchemy dialect, as the dialect
    alone tells it (no server asked: ``Database.facts`` holds the probed one).

    >>> from sqlalchemy.dialects import postgresql
    >>> dialect_for(postgresql.psycopg.dialect()).batch_update_style
    'unnest'
    """
    dialect = bind if isinstance(bind, sa.Dialect) else bind.dialect
    return DialectFacts.for_dialect(dialect)


def driver_hint(url: str | sa.URL) -> str:
    """A hint naming the supported driver's URL scheme, for a URL whose driver is missing.

    >>> driver_hint("mysql://root@localhost/app")
    "use a 'mysql+pymysql://' URL (PyMySQL and psycopg 3 are the drivers activerecord supports)"
    >>> driver_hint("sqlite://")
    ''
    """
    try:
        backend = sa.make_url(url).get_backend_name()
    except sa_exc.ArgumentError:
        return ""
    scheme = facts_class(backend).supported_scheme
    if scheme is None:
        return ""
    return (
        f"use a {scheme.format(name=backend) + '://'!r} URL (PyMySQL and psycopg 3 are the "
        "drivers activerecord supports)"
    )


def causal_reads_statements(backend: str) -> tuple[str, ...]:
    """Session statements that make a read see every write committed anywhere before it
    (Galera's ``wsrep_sync_wait``); PostgreSQL, SQLite and one-server setups read their own
    writes already: nothing to do.

    >>> causal_reads_statements("mysql")
    ('SET SESSION wsrep_sync_wait = 1',)
    """
    return facts_class(backend).causal_reads_statements


def partial_index_supported(dialect: sa.Dialect) -> bool:
    """Whether ``CREATE INDEX ... WHERE`` exists: PostgreSQL and SQLite yes, MySQL/MariaDB no.

    Asked at DDL time (no probe needed), e.g. by soft-delete unique keys, which use a partial
    unique index where this holds and a generated column otherwise.

    >>> import sqlalchemy as sa
    >>> partial_index_supported(sa.create_engine("sqlite://").dialect)
    True
    """
    return facts_class(dialect).partial_indexes


def in_list_as_array(dialect: sa.Dialect) -> bool:
    """Whether a condition's ``IN`` list is bound as one array parameter (``= ANY(:values)``):
    PostgreSQL, whose 65,535-parameter limit a list of keys reaches otherwise (and where one
    statement text then serves every list length).

    >>> import sqlalchemy as sa
    >>> in_list_as_array(sa.create_engine("sqlite://").dialect)
    False
    """
    return facts_class(dialect).in_list_array


def limit_in_subquery(dialect: sa.Dialect) -> bool:
    """Whether ``x IN (SELECT ... LIMIT n)`` runs: MySQL and MariaDB refuse it ("doesn't yet
    support 'LIMIT & IN/ALL/ANY/SOME subquery'"), but take a LIMIT in a derived table.

    >>> import sqlalchemy as sa
    >>> limit_in_subquery(sa.create_engine("sqlite://").dialect)
    True
    """
    return facts_class(dialect).limit_in_subquery


def update_reads_assigned(dialect: sa.Dialect) -> bool:
    """Whether a single-table UPDATE's SET reads the values assigned to its left: MySQL and
    MariaDB do (``SET a = b, b = a`` leaves both equal); standard SQL reads the old row.

    >>> import sqlalchemy as sa
    >>> update_reads_assigned(sa.create_engine("sqlite://").dialect)
    False
    """
    return facts_class(dialect).update_reads_assigned


def decimal_as_real(dialect: sa.Dialect) -> bool:
    """Whether a ``NUMERIC`` column holds a value as a 64-bit INTEGER or a REAL (SQLite: its
    NUMERIC affinity turns even text into one of them), so only integers of 64 bits and
    values of at most 15 significant digits are stored exactly.

    >>> import sqlalchemy as sa
    >>> decimal_as_real(sa.create_engine("sqlite://").dialect)
    True
    """
    return facts_class(dialect).decimal_as_real


def readable_compiler(dialect: sa.Dialect) -> type[Any]:
    """The statement compiler :meth:`Query.to_sql` renders with: the dialect's own, except that
    on SQLite a ``LIMIT`` without an offset is shown without the ``OFFSET 0`` SQLAlchemy adds.

    Only for showing SQL; statements run with the dialect's compiler unchanged.

    >>> import sqlalchemy as sa
    >>> readable_compiler(sa.create_engine("sqlite://").dialect).__name__
    'ReadableSQLiteCompiler'
    """
    return facts_class(dialect).readable_compiler(dialect)


def database_unique_keys(
    conn: sa.Connection, table: str, schema: str | None = None
) -> list[tuple[str | None, tuple[str, ...]]]:
    """The unique keys the database holds for ``table``, as (name, column names): unique
    constraints and unique indexes, not partial ones nor those over expressions or prefixes.

    SQLAlchemy's reflection misses some keys on some backends (SQLite's inline ``UNIQUE``
    column constraints): the dialect class's ``unique_keys_missed`` adds them, unnamed. Each
    set of columns comes once.

    >>> engine = sa.create_engine("sqlite://")
    >>> with engine.begin() as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, c TEXT UNIQUE)")
    ...     database_unique_keys(conn, "t")
    [(None, ('c',))]
    """
    inspector = sa.inspect(conn)
    found: list[tuple[str | None, tuple[str, ...]]] = [
        (uc["name"], tuple(uc["column_names"]))
        for uc in inspector.get_unique_constraints(table, schema)
        if not uc.get("duplicates_index")  # (MySQL: an index, read below with its options)
    ]
    for index in inspector.get_indexes(table, schema):
        options: Any = index.get("dialect_options", {})
        partial = any(v is not None for k, v in options.items() if k.endswith("_where"))
        partial = partial or bool(options.get("mysql_length"))  # a prefix: not the whole value
        columns = index["column_names"]
        if index["unique"] and not partial and None not in columns:
            found.append((index["name"], tuple(c for c in columns if c is not None)))
    found += facts_class(conn.dialect).unique_keys_missed(conn, table, schema)
    named = {(name, cols) for name, cols in found if name is not None}
    unnamed = {cols for name, cols in found if name is None} - {cols for _, cols in named}
    return [*sorted(named, key=str), *((None, cols) for cols in sorted(unnamed))]
