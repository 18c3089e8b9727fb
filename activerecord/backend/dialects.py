"""Every per-database fact in one place.

Code elsewhere asks a :class:`DialectFacts` (``facts.supports_returning``, ``facts.max_params``,
``facts.rows_per_statement(ncols)``) instead of testing dialect names.

Example::

    >>> import sqlalchemy as sa
    >>> facts = DialectFacts.probe(sa.create_engine("sqlite://"))
    >>> facts.name, facts.supports_returning
    ('sqlite', True)
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite import base as sqlite_types

from ..errors import (
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    DataError,
    ForeignKeyViolation,
    IntegrityError,
    NotNullViolation,
    TransactionConflictError,
    TransactionTooLargeError,
    UniqueViolation,
)

__all__ = [
    "DialectFacts",
    "SessionKeys",
    "TransactionSetup",
    "bind_processor",
    "causal_reads_statements",
    "database_unique_keys",
    "decimal_as_real",
    "driver_errors",
    "driver_hint",
    "float_guard",
    "in_list_as_array",
    "is_conflict",
    "is_node_refusal",
    "limit_in_subquery",
    "node_unready_reason",
    "normalize_isolation_level",
    "overflow_error",
    "partial_index_supported",
    "readable_compiler",
    "refused_value_error",
    "translate_error",
    "update_reads_assigned",
    "without_params",
]

#: PostgreSQL binds parameters server side; one statement takes at most 65,535.
_PG_MAX_PARAMS = 65_535
#: Cap on rows in one multi-row statement: beyond this, statements get slower to parse.
_MAX_ROWS_PER_STATEMENT = 2_000
#: How ``batch_update`` writes many rows by key, per database (see :attr:`DialectFacts.
#: batch_update_style`), and the most rows it puts in one statement (or one executemany call).
#: PostgreSQL: one array parameter per column, so psycopg never re-parses a statement with
#: thousands of placeholders (it does not cache long ones) and the row count is free of the
#: 65,535-parameter limit.
_BATCH_UPDATE_STYLE = {"postgresql": "unnest", "mysql": "union", "sqlite": "executemany"}
_BATCH_UPDATE_ROWS = {"unnest": 10_000, "values": 500, "union": 2_000, "executemany": 10_000}


def _lookup_rows(dialect: sa.Dialect) -> int:
    """Most key values in one upsert lookup (see ``DialectFacts.lookup_rows``)."""
    return 999 if getattr(dialect, "is_mariadb", False) else 5000


#: Fast batch-insert paths, by (dialect name, driver); anything else uses SQLAlchemy Core.
_INSERT_STRATEGIES = {
    ("sqlite", "pysqlite"): "sqlite_rowid",
    ("postgresql", "psycopg"): "pg_copy",
    ("mysql", "pymysql"): "mysql_values",
    ("mariadb", "pymysql"): "mysql_values",
}
#: The URL scheme naming the driver the library is built and tested with, per backend: a URL
#: without a driver (``mysql://``) makes SQLAlchemy import another one (MySQLdb, psycopg2).
_SUPPORTED_SCHEMES = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


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
    scheme = _SUPPORTED_SCHEMES.get(backend)
    if scheme is None:
        return ""
    return (
        f"use a {scheme + '://'!r} URL (PyMySQL and psycopg 3 are the drivers activerecord "
        "supports)"
    )


#: BEGIN modes of SQLite, by the stdlib driver's ``isolation_level`` (see
#: :meth:`DialectFacts.join_caller_transaction`): a fixed text, never the caller's string.
_SQLITE_BEGIN_MODES = {"": "", "DEFERRED": "DEFERRED", "IMMEDIATE": "IMMEDIATE",
                       "EXCLUSIVE": "EXCLUSIVE"}
#: Dialects where one multi-row INSERT numbers the generated keys in row order, so that
#: keys returned sorted belong to the rows in order: a sequence's ``nextval`` (PostgreSQL) or
#: AUTO_INCREMENT / rowid taken row by row. Any other dialect (CockroachDB's
#: ``unique_rowid()``, no order proven within a statement) gets one row per statement:
#: exact, not guessed.
_KEYS_FOLLOW_ROWS = {"sqlite", "postgresql", "mysql", "mariadb"}
#: Headroom left in MySQL's max_allowed_packet for the packet header and statement text.
_PACKET_HEADROOM = 64 * 1024
#: Largest multi-row INSERT we build on MySQL even when the packet allows more.
_MAX_STATEMENT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class DialectFacts:
    """What one database (as reached through one engine) can and cannot do."""

    name: str
    driver: str
    server_version: tuple[int, ...]
    is_mariadb: bool
    supports_returning: bool
    max_params: int | None
    max_packet_bytes: int | None
    #: MySQL/MariaDB ``innodb_autoinc_lock_mode`` 0 or 1: one multi-row INSERT's keys are
    #: consecutive steps of the session's ``auto_increment_increment`` (a session value, read
    #: for each write by :meth:`session_keys`, never here: a ``SET SESSION`` or a Galera node
    #: changes it while the engine lives).
    autoinc_consecutive: bool
    supports_partial_index: bool
    supports_savepoints: bool
    #: How batch inserts write and get keys back (see activerecord/insert/strategies.py):
    #: "sqlite_rowid", "pg_copy", "mysql_values" or "core" (SQLAlchemy's own executemany).
    insert_strategy: str = "core"
    #: How ``batch_update`` writes many rows, each with its own values, by primary key:
    #: ``"unnest"``: ``UPDATE t SET a = v.a FROM unnest(:keys, :as) AS v(k, a) WHERE t.k = v.k``
    #: (PostgreSQL, one array per column);
    #: ``"values"``: ``UPDATE t SET a = v.a FROM (VALUES ...) AS v(k, a) WHERE t.k = v.k``;
    #: ``"union"``: ``UPDATE t, (SELECT .. AS k, .. AS a UNION ALL SELECT ..) v SET t.a = v.a
    #: WHERE t.k = v.k`` (MySQL/MariaDB: their executemany runs one round trip per row);
    #: ``"executemany"``: ``UPDATE t SET a = ? WHERE k = ?`` per row in the driver's C loop
    #: (SQLite: no round trips, so this beats one big statement).
    batch_update_style: str = "executemany"
    #: Whether string equality must be asked for byte by byte to see every change: MySQL's
    #: default collations ignore case and trailing spaces (``'a' <=> 'A'`` is true), so an
    #: upsert compares strings as ``CAST(x AS BINARY)`` there before deciding a row changed.
    text_compare_binary: bool = False
    #: Whether an upsert looks its keys up as one array parameter (``key = ANY(:keys)``,
    #: PostgreSQL: one value for psycopg to send, nothing for the server to parse) rather
    #: than an ``IN`` list of one parameter per key.
    lookup_any_array: bool = False
    #: A MariaDB Galera cluster node (``wsrep_on``): write sets, streaming replication.
    is_galera: bool = False
    #: Whether one multi-row INSERT's generated keys follow the rows' order (see
    #: ``_KEYS_FOLLOW_ROWS``); where not proven, the Core path sends one row per statement.
    keys_follow_rows: bool = False
    #: Most key values one upsert lookup puts in its ``IN`` list. MariaDB turns an ``IN``
    #: list of ``in_predicate_conversion_threshold`` (1000) values or more into a join with a
    #: derived table, which its optimizer runs as a scan of the whole table: twice the time
    #: of 1000-value lists on 20k rows here, and growing with the table.
    lookup_rows: int = 5000

    @classmethod
    def for_dialect(cls, dialect: sa.Dialect) -> DialectFacts:
        """The facts a dialect object alone tells, without a server (compile-level): server
        limits unknown, AUTO_INCREMENT never assumed consecutive, no Galera.

        >>> from sqlalchemy.dialects import postgresql
        >>> facts = DialectFacts.for_dialect(postgresql.psycopg.dialect())
        >>> facts.insert_strategy, facts.key_path
        ('pg_copy', 'copy')
        """
        name = dialect.name
        family = "mysql" if name == "mariadb" else name
        return cls(
            name=family,
            driver=dialect.driver,
            server_version=tuple(getattr(dialect, "server_version_info", None) or ()),
            is_mariadb=bool(getattr(dialect, "is_mariadb", False)),
            supports_returning=bool(dialect.insert_returning),
            max_params=_PG_MAX_PARAMS if name == "postgresql" else None,
            max_packet_bytes=None,
            autoinc_consecutive=False,
            supports_partial_index=partial_index_supported(dialect),
            supports_savepoints=True,
            insert_strategy=_INSERT_STRATEGIES.get((name, dialect.driver), "core"),
            batch_update_style=_BATCH_UPDATE_STYLE.get(family, "executemany"),
            text_compare_binary=family == "mysql",
            lookup_any_array=name == "postgresql",
            keys_follow_rows=name in _KEYS_FOLLOW_ROWS,
            lookup_rows=_lookup_rows(dialect),
        )

    @property
    def key_path(self) -> str:
        """How a batch insert gets its generated keys back, by name: ``"rowid range"``
        (SQLite), ``"copy"`` (PostgreSQL: sequence proven or ids reserved), ``"values"``
        (MySQL: a proven LAST_INSERT_ID range, else RETURNING, else row by row),
        ``"returning sorted"`` (Core, keys proven to follow the rows), ``"returning per row"``
        (Core, one row per statement: each key is its own row's) or ``"row by row"``.

        >>> from sqlalchemy.dialects import sqlite
        >>> DialectFacts.for_dialect(sqlite.dialect()).key_path
        'rowid range'
        """
        named = {"sqlite_rowid": "rowid range", "pg_copy": "copy", "mysql_values": "values"}
        if self.insert_strategy in named:
            return named[self.insert_strategy]
        if not self.supports_returning:
            return "row by row"
        return "returning sorted" if self.keys_follow_rows else "returning per row"

    @classmethod
    def probe(cls, engine: sa.Engine) -> DialectFacts:
        """Read the facts from a live connection (run once per engine)."""
        dialect = engine.dialect
        name = dialect.name
        max_params: int | None = None
        max_packet: int | None = None
        consecutive = False
        galera = yugabyte = False
        with engine.connect() as conn:
            if name == "sqlite":
                max_params = _sqlite_max_variables(conn)
            elif name == "postgresql":
                max_params = _PG_MAX_PARAMS
                # YugabyteDB answers as PostgreSQL, but its COPY commits every 20,000 rows
                # unless told otherwise: no COPY path there (Core's RETURNING instead).
                yugabyte = "-yb-" in str(conn.exec_driver_sql("SELECT version()").scalar()).lower()
            elif name in ("mysql", "mariadb"):
                row = conn.exec_driver_sql(
                    "SELECT @@max_allowed_packet, @@innodb_autoinc_lock_mode"
                ).one()
                max_packet = int(row[0])
                consecutive = int(row[1]) in (0, 1)
                # SHOW, not @@wsrep_on: MySQL has no such variable.
                wsrep = conn.exec_driver_sql("SHOW VARIABLES LIKE 'wsrep_on'").first()
                galera = wsrep is not None and str(wsrep[1]).upper() == "ON"
                # TiDB answers as MySQL, but each TiDB server hands out AUTO_INCREMENT values
                # from its own cache: one statement's keys may jump. Never take a range there.
                if "tidb" in str(conn.exec_driver_sql("SELECT VERSION()").scalar()).lower():
                    consecutive = False
            conn.rollback()
        version = tuple(getattr(dialect, "server_version_info", None) or ())
        return cls(
            name="mysql" if name == "mariadb" else name,
            driver=dialect.driver,
            server_version=version,
            is_mariadb=bool(getattr(dialect, "is_mariadb", False)),
            supports_returning=bool(dialect.insert_returning),
            max_params=max_params,
            max_packet_bytes=max_packet,
            autoinc_consecutive=consecutive,
            supports_partial_index=partial_index_supported(dialect),
            supports_savepoints=True,
            insert_strategy="core" if yugabyte
            else _INSERT_STRATEGIES.get((name, dialect.driver), "core"),
            batch_update_style=_BATCH_UPDATE_STYLE.get(
                "mysql" if name == "mariadb" else name, "executemany"
            ),
            text_compare_binary=name in ("mysql", "mariadb"),
            lookup_any_array=name == "postgresql",
            is_galera=galera,
            keys_follow_rows=name in _KEYS_FOLLOW_ROWS,
            lookup_rows=_lookup_rows(dialect),
        )

    def rows_per_statement(self, ncols: int, *, row_bytes: int = 256) -> int:
        """How many rows of ``ncols`` bound values fit in one statement.

        ``row_bytes`` is an estimate of one row's encoded size, used where the limit is a packet
        size in bytes (MySQL) rather than a parameter count.

        >>> import sqlalchemy as sa
        >>> DialectFacts.probe(sa.create_engine("sqlite://")).rows_per_statement(40) <= 2000
        True
        """
        ncols = max(ncols, 1)
        rows = _MAX_ROWS_PER_STATEMENT
        if self.max_params is not None:
            rows = min(rows, self.max_params // ncols)
        if self.max_packet_bytes is not None:
            # Leave half the packet as headroom for the statement text and escaping.
            rows = min(rows, max(1, (self.max_packet_bytes // 2) // max(row_bytes, 1)))
        return max(rows, 1)

    @property
    def max_statement_bytes(self) -> int | None:
        """Byte budget of one multi-row statement where the limit is a packet (MySQL).

        >>> import sqlalchemy as sa
        >>> DialectFacts.probe(sa.create_engine("sqlite://")).max_statement_bytes is None
        True
        """
        if self.max_packet_bytes is None:
            return None
        budget = self.max_packet_bytes - _PACKET_HEADROOM
        return max(min(budget, _MAX_STATEMENT_BYTES), 16 * 1024)

    def chunk_rows(self, ncols: int) -> int:
        """Default rows per batch chunk (the unit validated, then written): about 100,000
        values, at most 10,000 rows. Statements inside a chunk obey the hard limits above.
        PostgreSQL's ``COPY`` path takes five times more: each chunk is one ``COPY``, and the
        client formatting rows while the server writes them stops at every chunk's end (10,000
        row chunks cost a fifth of the speed of one ``COPY``).

        >>> import sqlalchemy as sa
        >>> DialectFacts.probe(sa.create_engine("sqlite://")).chunk_rows(6)
        10000
        """
        factor = 5 if self.insert_strategy == "pg_copy" else 1
        return max(100, min(10_000 * factor, 100_000 * factor // max(ncols, 1)))

    def update_rows_per_statement(self, ncols: int) -> int:
        """How many rows of ``ncols`` values ``batch_update`` writes per statement.

        >>> import sqlalchemy as sa
        >>> DialectFacts.probe(sa.create_engine("sqlite://")).update_rows_per_statement(3)
        10000
        """
        cap = _BATCH_UPDATE_ROWS.get(self.batch_update_style, _MAX_ROWS_PER_STATEMENT)
        if self.batch_update_style in ("executemany", "unnest"):
            return cap  # a fixed number of parameters: only memory bounds a chunk
        rows = min(cap, self.rows_per_statement(ncols, row_bytes=32 * max(ncols, 1)))
        return max(rows, 1)

    # -- generated keys ----------------------------------------------------------------------
    def generates_key(self, column: sa.Column[Any]) -> bool:
        """Whether the database numbers this autoincrement key column when a row leaves it out.

        SQLite numbers only a rowid alias, a key whose declared type is exactly ``INTEGER``;
        a ``BIGINT PRIMARY KEY`` is an ordinary column there, which would hold NULL (while
        ``lastrowid`` names the hidden rowid). Known from the column type: no query.

        >>> import sqlalchemy as sa
        >>> facts = DialectFacts.probe(sa.create_engine("sqlite://"))
        >>> facts.generates_key(sa.Column("id", sa.BigInteger, primary_key=True))
        False
        >>> facts.generates_key(sa.Column("id", sa.Integer, primary_key=True))
        True
        """
        if self.name != "sqlite":
            return True
        rendered = column.type.compile(dialect=_SQLITE_DIALECT)
        return rendered.strip().upper() == "INTEGER"

    def session_keys(self, conn: sa.Connection) -> SessionKeys:
        """How the connection's session numbers AUTO_INCREMENT keys now (MySQL/MariaDB:
        ``auto_increment_increment``, ``auto_increment_offset`` and whether ``0`` asks for a
        key, i.e. ``sql_mode`` lacks ``NO_AUTO_VALUE_ON_ZERO``); one query, asked for each
        write that relies on it. Elsewhere: steps of 1, and 0 is a key like any other.

        >>> import sqlalchemy as sa
        >>> engine = sa.create_engine("sqlite://")
        >>> with engine.connect() as conn:
        ...     DialectFacts.probe(engine).session_keys(conn)
        SessionKeys(increment=1, offset=1, zero_generates=False)
        """
        if self.name != "mysql":
            return SessionKeys(1, 1, False)
        row = conn.exec_driver_sql(
            "SELECT @@SESSION.auto_increment_increment, @@SESSION.auto_increment_offset, "
            "@@SESSION.sql_mode"
        ).one()
        zero = "NO_AUTO_VALUE_ON_ZERO" not in str(row[2]).upper()
        return SessionKeys(int(row[0]), int(row[1]), zero)

    @property
    def zero_key_may_generate(self) -> bool:
        """Whether ``0`` in an autoincrement key may mean "generate one" (MySQL/MariaDB, by
        session ``sql_mode``; see :meth:`session_keys`).

        >>> import sqlalchemy as sa
        >>> DialectFacts.probe(sa.create_engine("sqlite://")).zero_key_may_generate
        False
        """
        return self.name == "mysql"

    # -- transactions ------------------------------------------------------------------------
    @property
    def isolation_levels(self) -> tuple[str, ...]:
        """The isolation levels one transaction may ask for on this database."""
        return _ISOLATION_LEVELS.get(self.name, ())

    def transaction_setup(self, isolation_level: str | None, read_only: bool) -> TransactionSetup:
        """The SQL that gives one transaction its isolation level and read-only mode.

        Plain statements rather than SQLAlchemy's ``isolation_level`` execution option: on
        SQLite that option hands transaction control back to the stdlib driver (breaking
        savepoints, see database.py), and per-transaction statements leave nothing to reset
        on PostgreSQL and MySQL.

        ``begin`` runs right after the transaction begins (before any other statement);
        ``reset`` runs on the driver connection after COMMIT or ROLLBACK, to undo settings
        that outlive a transaction (SQLite pragmas), so the pool never gets them back.

        >>> import sqlalchemy as sa
        >>> facts = DialectFacts.probe(sa.create_engine("sqlite://"))
        >>> facts.transaction_setup("serializable", True).reset
        ('PRAGMA query_only = 0',)
        """
        level = normalize_isolation_level(isolation_level)
        if level is not None:
            if level not in self.isolation_levels:
                raise ConfigurationError(
                    f"isolation level {isolation_level!r} is not available on {self.name}; "
                    f"choose one of {', '.join(self.isolation_levels)}"
                )
        begin: list[str] = []
        reset: list[str] = []
        if self.name == "postgresql":
            # Valid as the first statements of the transaction psycopg opened.
            if level is not None:
                begin.append(f"SET TRANSACTION ISOLATION LEVEL {level}")
            if read_only:
                begin.append("SET TRANSACTION READ ONLY")
        elif self.name == "mysql":
            # SET TRANSACTION (no SESSION) applies to the next transaction only, and must come
            # before it starts; START TRANSACTION then starts it explicitly and consumes it.
            if level is not None:
                begin.append(f"SET TRANSACTION ISOLATION LEVEL {level}")
            if read_only:
                begin.append("START TRANSACTION READ ONLY")
            elif level is not None:
                begin.append("START TRANSACTION")
        elif self.name == "sqlite":
            # Connection-wide pragmas: turned back off after the transaction.
            if level == "READ UNCOMMITTED":
                begin.append("PRAGMA read_uncommitted = 1")
                reset.append("PRAGMA read_uncommitted = 0")
            if read_only:
                begin.append("PRAGMA query_only = 1")
                reset.append("PRAGMA query_only = 0")
        elif read_only:
            raise ConfigurationError(f"read-only transactions are not supported on {self.name}")
        return TransactionSetup(tuple(begin), tuple(reset))

    def join_caller_transaction(self, dbapi_connection: Any) -> None:
        """Make sure the caller's connection (``using()``) has its transaction open at the
        database before the library's first statement runs on it.

        The stdlib SQLite driver, left in its default (legacy) transaction control as in an
        application's own ``create_engine("sqlite:///...")``, sends BEGIN only before an
        INSERT, UPDATE or DELETE: a batch's SAVEPOINT would then open the transaction itself
        and its RELEASE commit it, past the caller's rollback. A deferred BEGIN (what the
        driver would send, with its ``isolation_level``) takes no lock until the first
        statement. Other drivers, and SQLite connections in autocommit mode or already in a
        transaction, are left as they are.

        >>> import sqlalchemy as sa, sqlite3
        >>> facts = DialectFacts.probe(sa.create_engine("sqlite://"))
        >>> raw = sqlite3.connect(":memory:")
        >>> facts.join_caller_transaction(raw)
        >>> raw.in_transaction
        True
        """
        if self.name != "sqlite" or not isinstance(dbapi_connection, sqlite3.Connection):
            return
        legacy = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", -1)
        if getattr(dbapi_connection, "autocommit", legacy) != legacy:
            return  # Python 3.12+ autocommit=True/False: the driver does what was asked
        level = dbapi_connection.isolation_level
        if level is None or dbapi_connection.in_transaction:
            return  # autocommit, or the library's own BEGIN (database.py) already ran
        if level.upper() not in _SQLITE_BEGIN_MODES:
            return  # the driver accepts no other value; nothing we could send for it
        try:
            dbapi_connection.execute(f"BEGIN {_SQLITE_BEGIN_MODES[level.upper()]}".rstrip())
        except sqlite3.Error as err:
            raise translate_error(err, context="cannot join the caller's transaction") from err

    def fragment_setup(self, rows: int) -> tuple[tuple[sa.TextClause, ...], tuple[str, ...]]:
        """Statements that make one transaction replicate in fragments of ``rows`` rows
        (Galera streaming replication), and those that turn it off again afterwards.

        Only a Galera node has it: elsewhere :class:`ConfigurationError` (no write-set
        limit to get under, and no silent no-op).

        >>> import sqlalchemy as sa
        >>> try:
        ...     DialectFacts.probe(sa.create_engine("sqlite://")).fragment_setup(100)
        ... except ConfigurationError as err:
        ...     print(err)
        fragment_rows is Galera streaming replication; sqlite is no Galera node
        """
        if type(rows) is not int or rows < 1:
            raise ConfigurationError(f"fragment_rows must be a positive int, got {rows!r}")
        if not self.is_galera:
            raise ConfigurationError(
                f"fragment_rows is Galera streaming replication; {self.name} is no Galera node"
            )
        begin = (
            sa.text("SET SESSION wsrep_trx_fragment_unit = 'rows'"),
            sa.text("SET SESSION wsrep_trx_fragment_size = :rows").bindparams(rows=rows),
        )
        reset = (
            "SET SESSION wsrep_trx_fragment_size = 0",
            "SET SESSION wsrep_trx_fragment_unit = DEFAULT",
        )
        return begin, reset

    def set_autocommit(self, dbapi_connection: Any, on: bool) -> None:
        """Switch a driver connection's autocommit mode (used by raw connections).

        SQLite connections of this library always run in driver autocommit mode (the library
        emits BEGIN itself, see database.py), so there is nothing to switch there.
        """
        if self.name == "postgresql":
            dbapi_connection.autocommit = on
        elif self.name == "mysql":
            dbapi_connection.autocommit(on)


@dataclass(frozen=True)
class SessionKeys:
    """How one session numbers generated keys (see :meth:`DialectFacts.session_keys`)."""

    increment: int
    offset: int
    zero_generates: bool


_SQLITE_DIALECT = sqlite_types.SQLiteDialect()


@dataclass(frozen=True)
class TransactionSetup:
    """Statements run after BEGIN (``begin``) and after the transaction ends (``reset``)."""

    begin: tuple[str, ...] = ()
    reset: tuple[str, ...] = ()


def normalize_isolation_level(level: str | None) -> str | None:
    """``"repeatable_read"`` -> ``"REPEATABLE READ"`` (None stays None).

    >>> normalize_isolation_level("read_committed")
    'READ COMMITTED'
    """
    if level is None:
        return None
    return " ".join(level.replace("_", " ").upper().split())


_SQL_LEVELS = ("READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")
#: SQLite is always serializable; READ UNCOMMITTED only matters with a shared cache.
_ISOLATION_LEVELS = {
    "postgresql": _SQL_LEVELS,
    "mysql": _SQL_LEVELS,
    "sqlite": ("READ UNCOMMITTED", "SERIALIZABLE"),
}


def partial_index_supported(dialect: sa.Dialect) -> bool:
    """Whether ``CREATE INDEX ... WHERE`` exists: PostgreSQL and SQLite yes, MySQL/MariaDB no.

    Asked at DDL time (no probe needed), e.g. by soft-delete unique keys, which use a partial
    unique index where this holds and a generated column otherwise.

    >>> import sqlalchemy as sa
    >>> partial_index_supported(sa.create_engine("sqlite://").dialect)
    True
    """
    return dialect.name in ("sqlite", "postgresql")


def in_list_as_array(dialect: sa.Dialect) -> bool:
    """Whether a condition's ``IN`` list is bound as one array parameter (``= ANY(:values)``):
    PostgreSQL, whose 65,535-parameter limit a list of keys reaches otherwise (and where one
    statement text then serves every list length).

    >>> import sqlalchemy as sa
    >>> in_list_as_array(sa.create_engine("sqlite://").dialect)
    False
    """
    return dialect.name == "postgresql"


def limit_in_subquery(dialect: sa.Dialect) -> bool:
    """Whether ``x IN (SELECT ... LIMIT n)`` runs: MySQL and MariaDB refuse it ("doesn't yet
    support 'LIMIT & IN/ALL/ANY/SOME subquery'"), but take a LIMIT in a derived table.

    >>> import sqlalchemy as sa
    >>> limit_in_subquery(sa.create_engine("sqlite://").dialect)
    True
    """
    return dialect.name not in ("mysql", "mariadb")


def update_reads_assigned(dialect: sa.Dialect) -> bool:
    """Whether a single-table UPDATE's SET reads the values assigned to its left: MySQL and
    MariaDB do (``SET a = b, b = a`` leaves both equal); standard SQL reads the old row.

    >>> import sqlalchemy as sa
    >>> update_reads_assigned(sa.create_engine("sqlite://").dialect)
    False
    """
    return dialect.name in ("mysql", "mariadb")


_READABLE_COMPILERS: dict[type[Any], type[Any]] = {}


def _limit_as_asked(compiler: Any, select: Any, **kw: Any) -> str:
    # SQLite's compiler writes "OFFSET ?" (a bound 0) after every LIMIT; a reader asked for none.
    if select._offset_clause is None and select._limit_clause is not None:
        return "\n LIMIT " + str(compiler.process(select._limit_clause, **kw))
    full: Callable[..., Any] = sqlite_types.SQLiteCompiler.limit_clause
    return str(full(compiler, select, **kw))


def readable_compiler(dialect: sa.Dialect) -> type[Any]:
    """The statement compiler :meth:`Query.to_sql` renders with: the dialect's own, except that
    on SQLite a ``LIMIT`` without an offset is shown without the ``OFFSET 0`` SQLAlchemy adds.

    Only for showing SQL; statements run with the dialect's compiler unchanged.

    >>> import sqlalchemy as sa
    >>> readable_compiler(sa.create_engine("sqlite://").dialect).__name__
    'ReadableSQLiteCompiler'
    """
    base: type[Any] = dialect.statement_compiler
    if not issubclass(base, sqlite_types.SQLiteCompiler):
        return base
    readable = _READABLE_COMPILERS.get(base)
    if readable is None:
        readable = type("ReadableSQLiteCompiler", (base,), {"limit_clause": _limit_as_asked})
        _READABLE_COMPILERS[base] = readable
    return readable


def bind_processor(
    type_: sa.types.TypeEngine[Any], dialect: sa.Dialect
) -> Callable[[Any], Any] | None:
    """The function SQLAlchemy applies to a bound value of ``type_`` (None: none applies).

    Where SQLAlchemy's own is slow and an exact equivalent is known, that one: SQLite
    DATETIME's default text format is ``datetime.isoformat(" ", "microseconds")`` for naive
    datetimes (5x faster than its %-formatting).

    >>> import datetime as dt
    >>> from sqlalchemy.dialects import sqlite as sqlite_dialect
    >>> bind_processor(sa.DateTime(), sqlite_dialect.dialect())(dt.datetime(2024, 1, 2, 3, 4))
    '2024-01-02 03:04:00.000000'
    """
    impl = type_.dialect_impl(dialect)
    proc = impl.bind_processor(dialect)
    if isinstance(impl, sa.Float) and not isinstance(impl, sa.types.TypeDecorator):
        return float_guard(dialect, proc)  # a reflected float column: refuse the same values
    if (
        proc is None
        and dialect.name in _TEXT_FOR_TEMPORAL
        and isinstance(impl, (sa.Date, sa.DateTime, sa.Time))
    ):
        return _temporal_guard(impl.python_type)
    if (
        proc is not None
        and type(impl) is sqlite_types.DATETIME
        and getattr(impl, "_storage_format", None) == sqlite_types.DATETIME._storage_format
    ):
        slow = proc

        def fast(value: Any) -> Any:
            if type(value) is dt.datetime and value.tzinfo is None:
                return value.isoformat(" ", "microseconds")
            return slow(value)

        # The same as source, for code that builds rows without a call per value: {v} is the
        # value's variable, {p} this function.
        fast.inline = (  # type: ignore[attr-defined]
            "{v}.isoformat(' ', 'microseconds') "
            "if type({v}) is _datetime and {v}.tzinfo is None else {p}({v})",
            {"_datetime": dt.datetime},
        )
        return fast
    return proc


def database_unique_keys(
    conn: sa.Connection, table: str, schema: str | None = None
) -> list[tuple[str | None, tuple[str, ...]]]:
    """The unique keys the database holds for ``table``, as (name, column names): unique
    constraints and unique indexes, not partial ones nor those over expressions or prefixes.

    SQLAlchemy's reflection misses some of SQLite's inline ``UNIQUE`` column constraints
    (``c VARCHAR(20) UNIQUE``; their indexes are automatic ones, which it skips): SQLite's
    ``pragma_index_list`` adds them, unnamed. Each set of columns comes once.

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
    if conn.dialect.name == "sqlite":
        found += _sqlite_unique_indexes(conn, table, schema)
    named = {(name, cols) for name, cols in found if name is not None}
    unnamed = {cols for name, cols in found if name is None} - {cols for _, cols in named}
    return [*sorted(named, key=str), *((None, cols) for cols in sorted(unnamed))]


def _sqlite_unique_indexes(
    conn: sa.Connection, table: str, schema: str | None
) -> list[tuple[str | None, tuple[str, ...]]]:
    schema_arg = () if schema is None else (schema,)
    listed = sa.func.pragma_index_list(table, *schema_arg).table_valued(
        "name", "unique", "origin", "partial"
    )
    out: list[tuple[str | None, tuple[str, ...]]] = []
    rows = conn.execute(
        sa.select(listed.c.name, listed.c.origin)
        .where(listed.c.unique == 1, listed.c.partial == 0)
    ).all()
    for name, origin in rows:
        info = sa.func.pragma_index_info(name, *schema_arg).table_valued("seqno", "name")
        columns = [c for (c,) in conn.execute(sa.select(info.c.name).order_by(info.c.seqno))]
        if columns and None not in columns:  # (None: an expression)
            # Automatic indexes of UNIQUE constraints have internal names, not the constraint's.
            out.append((None if origin != "c" else str(name), tuple(columns)))
    return out


def without_params(sql: str, dialect: sa.Dialect) -> str:
    """Compiled SQL text as the driver must get it when it is sent with no parameters.

    SQLAlchemy doubles every ``%`` in the text it compiles for ``format``/``pyformat``
    drivers (psycopg, PyMySQL), identifiers included; those drivers read ``%%`` back as ``%``
    only while they interpolate parameters. A statement sent alone (a ``COPY``, a multi-row
    ``INSERT`` whose rows are already literals, a table name passed as a value) needs them
    undone, or ``"rate%"`` reaches the server as ``"rate%%"``.

    >>> from sqlalchemy.dialects import postgresql
    >>> without_params('COPY "q_100%%" (id) FROM STDIN', postgresql.psycopg.dialect())
    'COPY "q_100%" (id) FROM STDIN'
    """
    if dialect.paramstyle in ("format", "pyformat"):
        return sql % ()  # exactly the driver's reading (a stray placeholder raises)
    return sql


#: The float values each backend stores and reads back exactly besides ordinary numbers;
#: any other is refused before it is sent. PostgreSQL's ``double precision`` keeps NaN, the
#: infinities and -0.0; SQLite keeps the infinities but stores NaN as NULL and -0.0 as 0;
#: MySQL/MariaDB ``DOUBLE`` takes none of them (NaN and the infinities are errors, -0.0
#: becomes 0).
_FLOAT_SPECIALS: dict[str, frozenset[str]] = {
    "postgresql": frozenset({"nan", "inf", "-0.0"}),
    "sqlite": frozenset({"inf"}),
    "mysql": frozenset(),
    "mariadb": frozenset(),
}


def float_guard(
    dialect: sa.Dialect, then: Callable[[Any], Any] | None = None
) -> Callable[[Any], Any] | None:
    """A bind processor refusing the floats this backend cannot store (see
    ``_FLOAT_SPECIALS``) with a ``ValueError``, then applying ``then``; None where every
    float is stored as given (PostgreSQL, unless ``then``). Given as source too (``inline``),
    for row builders: an ordinary number costs one comparison.

    >>> import sqlalchemy as sa
    >>> guard = float_guard(sa.create_engine("sqlite://").dialect)
    >>> guard(1.5), guard(float("inf"))
    (1.5, inf)
    >>> guard(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: NaN cannot be stored on sqlite (it would read back as NULL)
    """
    stored = _FLOAT_SPECIALS.get(dialect.name, frozenset({"nan", "inf", "-0.0"}))
    if len(stored) == 3:
        return then
    name = dialect.name
    after = then

    def guard(value: Any) -> Any:
        if isinstance(value, float):
            if value != value:
                if "nan" not in stored:
                    raise ValueError(f"NaN cannot be stored on {name}{_LOST.get(name, '')}")
            elif value in (_INF, -_INF):
                if "inf" not in stored:
                    raise ValueError(f"{value} cannot be stored on {name}")
            elif value == 0 and math.copysign(1.0, value) < 0 and "-0.0" not in stored:
                raise ValueError(f"-0.0 cannot be stored on {name} (it would read back as 0.0)")
        return value if after is None else after(value)

    # A finite float other than 0 needs nothing (the usual); anything else takes the call.
    guard.inline = (  # type: ignore[attr-defined]
        "{v} if type({v}) is float and {v} != 0 and {v} - {v} == 0 else {p}({v})",
        {},
    )
    return guard


_INF = float("inf")
_LOST = {"sqlite": " (it would read back as NULL)"}


def decimal_as_real(dialect: sa.Dialect) -> bool:
    """Whether a ``NUMERIC`` column holds a value as a 64-bit INTEGER or a REAL (SQLite: its
    NUMERIC affinity turns even text into one of them), so only integers of 64 bits and
    values of at most 15 significant digits are stored exactly.

    >>> import sqlalchemy as sa
    >>> decimal_as_real(sa.create_engine("sqlite://").dialect)
    True
    """
    return dialect.name == "sqlite"


#: Drivers that send any value as text, which the server then parses as a date or time:
#: PyMySQL would store the string ``"2024-01-01"`` unvalidated (and a malformed one depends on
#: the SQL mode). A batch refuses what is not a date/time object there, as SQLite's and
#: psycopg's conversions do.
_TEXT_FOR_TEMPORAL = ("mysql", "mariadb")


def _temporal_guard(kind: type) -> Callable[[Any], Any]:
    def guard(value: Any) -> Any:
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"expected a {kind.__name__}, got {type(value).__name__}")
        return value

    name = f"_{kind.__name__}_kind"
    guard.inline = (  # type: ignore[attr-defined]
        "{v} if {v} is None or isinstance({v}, " + name + ") else {p}({v})",
        {name: kind},
    )
    guard.unchanged = True  # type: ignore[attr-defined]  # values it passes, it passes as given
    return guard


def _sqlite_max_variables(conn: sa.Connection) -> int:
    raw = conn.connection.dbapi_connection
    getlimit = getattr(raw, "getlimit", None)  # Python 3.11+
    if getlimit is not None:
        limit_id = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", 9)
        return int(getlimit(limit_id))
    return 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


_PG_CONFLICT = {"40001", "40P01", "55P03"}
#: 9007: TiDB's optimistic write conflict, found at COMMIT like a Galera certification failure.
_MYSQL_CONFLICT = {1213, 1205, 9007}
#: Out of range, data too long, incorrect value / integer / datetime value.
_MYSQL_DATA = {1264, 1406, 1292, 1366, 1265, 1367, 4025}
_MYSQL_DRIVERS = ("pymysql", "MySQLdb", "mysql.connector")
_SQLITE_CONFLICT = ("database is locked", "database table is locked")
#: 1047: a Galera node outside the primary component ("WSREP has not yet prepared node for
#: application use"): this node refuses, another one of the cluster may not.
_MYSQL_CONNECTION = {2002, 2003, 2006, 2013, 2014, 2055, 1927, 4031, 1047}
_GALERA_NOT_READY = 1047
#: Transaction size limits, by error code and a phrase of the message: Galera's write-set
#: limits (1180 "wsrep_max_ws_rows exceeded", 1105 "Maximum writeset size exceeded") and
#: TiDB's txn-total-size-limit (8004 "Transaction is too large").
_MYSQL_TOO_LARGE = (
    (1180, "wsrep_max_ws_rows", "wsrep_max_ws_rows"),
    (1105, "writeset size", "wsrep_max_ws_size"),
    (8004, "transaction is too large", "txn-total-size-limit"),
)
_TOO_LARGE_HINT = (
    "the transaction is larger than the server's {limit} allows; nothing was committed. "
    "Write in smaller transactions (batch_insert(..., commit_every=N), "
    "load_csv(..., commit_every=N)){stream}"
)
#: Galera's streaming replication replicates a transaction in fragments, each its own write
#: set: it gets under the size limit, not under the row count of the whole transaction.
_STREAMABLE = {"wsrep_max_ws_size"}


#: MySQL names the column (MariaDB as `db`.`table`.`column`) of a value it refused.
_MYSQL_COLUMN = re.compile(r"for column (?:`[^`]*`\.)*[`']([^`']+)[`'] at row")
_COPY_CONTEXT = re.compile(r"\n?CONTEXT:\s+COPY [^\n]*")


def _is_integrity(err: BaseException) -> bool:
    if isinstance(err, sa_exc.IntegrityError):
        return True
    # A raw driver exception: every DB-API driver names its class IntegrityError.
    return any(cls.__name__ == "IntegrityError" for cls in type(err).__mro__)


def translate_error(
    err: BaseException, *, context: str = "", record_index: int | None = None
) -> DatabaseError:
    """Map a driver error to the library's error tree.

    ``err`` is either SQLAlchemy's wrapper (``DBAPIError``) or the driver's own exception
    (raised by code that runs statements on the raw DB-API cursor). The returned error keeps
    the driver's exception as ``.orig`` and, when given, the failing record's ``record_index``.

    >>> import sqlite3
    >>> e = translate_error(sqlite3.IntegrityError("UNIQUE constraint failed: t.x"), record_index=3)
    >>> type(e).__name__, e.record_index
    ('UniqueViolation', 3)
    """
    wrapped = err if isinstance(err, sa_exc.DBAPIError) else None
    orig: BaseException = err if wrapped is None or wrapped.orig is None else wrapped.orig
    message = f"{context}: {orig}" if context else str(orig)
    kind: type[DatabaseError] = DatabaseError
    sqlstate = getattr(orig, "sqlstate", None)
    args = getattr(orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    text = str(orig).lower()
    integrity = _is_integrity(orig) or (wrapped is not None and _is_integrity(wrapped))
    if wrapped is not None and (
        wrapped.connection_invalidated or isinstance(wrapped, sa_exc.DisconnectionError)
    ):
        kind = DatabaseConnectionError
    elif isinstance(orig, OverflowError):  # sqlite3: an int beyond 64 bits
        kind = DataError
    elif code is not None:  # PyMySQL (its errors carry a sqlstate too: test the code first)
        limit = _too_large_limit(code, text)
        if limit is not None:
            too_large = TransactionTooLargeError(
                f"{message}: " + _TOO_LARGE_HINT.format(
                    limit=limit,
                    stream=" or stream it in fragments (Transaction(fragment_rows=N))"
                    if limit in _STREAMABLE else "",
                ),
                orig=orig,
                limit=limit,
            )
            too_large.record_index = record_index
            return too_large
        if code in (1062, 1586):
            kind = UniqueViolation
        elif code in (1451, 1452, 1216, 1217):
            kind = ForeignKeyViolation
        elif code in (1048, 1364):
            kind = NotNullViolation
        elif code in _MYSQL_CONFLICT:
            kind = TransactionConflictError
        elif code in _MYSQL_CONNECTION:
            kind = DatabaseConnectionError
        elif code in _MYSQL_DATA:
            kind = DataError
        elif integrity:
            kind = IntegrityError
    elif isinstance(sqlstate, str):  # psycopg
        if sqlstate == "23505":
            kind = UniqueViolation
        elif sqlstate == "23503":
            kind = ForeignKeyViolation
        elif sqlstate == "23502":
            kind = NotNullViolation
        elif sqlstate.startswith("23"):
            kind = IntegrityError
        elif sqlstate in _PG_CONFLICT:
            kind = TransactionConflictError
        elif sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):
            kind = DatabaseConnectionError
        elif sqlstate.startswith("22"):
            kind = DataError
    else:  # sqlite3 and anything else
        if "unique constraint" in text or "primary key must be unique" in text:
            kind = UniqueViolation
        elif "foreign key constraint" in text:
            kind = ForeignKeyViolation
        elif "not null constraint" in text:
            kind = NotNullViolation
        elif any(marker in text for marker in _SQLITE_CONFLICT):
            kind = TransactionConflictError
        elif integrity:
            kind = IntegrityError
    if kind is DatabaseError and integrity:
        kind = IntegrityError
    if record_index is not None:
        # The record is named: PostgreSQL's "COPY t, line N" (N counted its own way) is not.
        detail = _COPY_CONTEXT.sub("", str(orig))
        message = f"{context}: record {record_index}: {detail}" if context else (
            f"record {record_index}: {detail}"
        )
    error = kind(message, orig=orig)
    error.record_index = record_index
    column = getattr(orig, "column", None)  # a value refused before it was sent names it
    if column is None and code in _MYSQL_DATA:  # "... for column 'n' at row 2"
        found = _MYSQL_COLUMN.search(str(orig))
        column = found.group(1) if found else None
    error.column = column if isinstance(column, str) else None
    return error


#: What a column's bind processor (or the driver converting a value) raises for a value it
#: cannot send: the value is refused, nothing about the connection or the statement.
_VALUE_ERRORS = (ValueError, TypeError, LookupError, AttributeError, OverflowError)


def refused_value_error(
    err: sa_exc.StatementError, *, context: str = "", column: str | None = None
) -> DataError | None:
    """The ``DataError`` for a value refused while SQLAlchemy bound a statement's parameters
    (a ``StatementError`` that is not the driver's), or None for any other error.

    >>> e = sa_exc.StatementError("bind", "INSERT ...", {}, ValueError("NaN cannot be stored"))
    >>> str(refused_value_error(e, context="save of T", column="f"))
    "save of T: column 'f': NaN cannot be stored"
    """
    if isinstance(err, sa_exc.DBAPIError) or not isinstance(err.orig, _VALUE_ERRORS):
        return None
    where = f"column {column!r}: " if column else ""
    prefix = f"{context}: " if context else ""
    error = DataError(f"{prefix}{where}{err.orig}", orig=err.orig)
    error.column = column
    return error


def _too_large_limit(code: int, text: str) -> str | None:
    for limit_code, phrase, limit in _MYSQL_TOO_LARGE:
        if code == limit_code and phrase in text:
            return limit
    return None


def is_node_refusal(orig: BaseException | None) -> bool:
    """True for a Galera node's "not primary" refusal (1047): the connection is useless
    until the node rejoins, so the pool must drop it (see database.py).

    >>> import pymysql
    >>> is_node_refusal(pymysql.err.OperationalError(1047, "WSREP has not yet prepared node"))
    True
    """
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return (
        bool(args)
        and args[0] == _GALERA_NOT_READY
        and type(orig).__module__.startswith(_MYSQL_DRIVERS)
    )


def node_unready_reason(dbapi_connection: Any) -> str | None:
    """Why a new MySQL-family connection's server cannot serve (None: it can).

    A Galera node that has left the primary component accepts connections but refuses
    every statement with 1047 until it rejoins; ``wsrep_ready`` says so up front. Servers
    that are not Galera nodes (``wsrep_on`` off or unknown, MySQL) are always ready.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
        row = cursor.fetchone()
        if row is None or str(row[1]).upper() != "ON":
            return None
        cursor.execute("SHOW STATUS LIKE 'wsrep_ready'")
        ready = cursor.fetchone()
        if ready is not None and str(ready[1]).upper() != "ON":
            return "Galera node not ready (not in the primary component)"
        return None
    finally:
        cursor.close()


def causal_reads_statements(backend: str) -> tuple[str, ...]:
    """Session statements that make a read see every write committed anywhere before it.

    MySQL family: Galera's ``wsrep_sync_wait = 1`` (a read first waits until this node has
    applied what the cluster committed). On a server that is no Galera node the variable
    does nothing (MariaDB) or is unknown (MySQL; the caller skips it then). PostgreSQL,
    SQLite and one-server setups read their own writes already: nothing to do.

    >>> causal_reads_statements("mysql")
    ('SET SESSION wsrep_sync_wait = 1',)
    """
    return ("SET SESSION wsrep_sync_wait = 1",) if backend in ("mysql", "mariadb") else ()


def overflow_error(err: OverflowError, *, context: str = "") -> DataError:
    """The stdlib sqlite3 driver raises a bare ``OverflowError`` for an int beyond 64 bits."""
    prefix = f"{context}: " if context else ""
    return DataError(f"{prefix}value out of range for an integer column ({err})", orig=err)


@contextmanager
def driver_errors(context: str) -> Iterator[None]:
    """Run a statement block, raising what the driver or a column's processor refused as
    one of ours, with ``context`` (``"User query"``, ``"update of User"``) in the message.

    >>> engine = sa.create_engine("sqlite://")
    >>> try:
    ...     with driver_errors("Doc query"), engine.connect() as conn:
    ...         _ = conn.exec_driver_sql("SELECT * FROM missing")
    ... except DatabaseError as err:
    ...     print(type(err).__name__, str(err).split(":")[0])
    DatabaseError Doc query
    """
    try:
        yield
    except sa_exc.DBAPIError as exc:
        raise translate_error(exc, context=context) from exc
    except sa_exc.StatementError as exc:  # a value a column's processor refused
        error = refused_value_error(exc, context=context)
        if error is None:
            raise
        raise error from exc
    except OverflowError as exc:
        raise overflow_error(exc, context=context) from exc
    except UnicodeEncodeError as exc:  # the driver's: text no database encoding holds
        raise DataError(f"{context}: {exc}", orig=exc) from exc


def is_conflict(orig: BaseException) -> bool:
    """True if a driver exception is a deadlock, serialization failure or lock timeout.

    Works on the driver's own exceptions (raised by raw cursors), not only wrapped ones:
    PostgreSQL SQLSTATE 40001 / 40P01 / 55P03, MySQL 1213 / 1205, SQLite "database is locked".

    >>> import sqlite3
    >>> is_conflict(sqlite3.OperationalError("database is locked"))
    True
    """
    # MySQL drivers set a sqlstate too ("HY000" for a lock wait timeout): test codes first.
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and type(orig).__module__.startswith(_MYSQL_DRIVERS):
        return args[0] in _MYSQL_CONFLICT
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate in _PG_CONFLICT
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        return any(marker in text for marker in _SQLITE_CONFLICT)
    return False
