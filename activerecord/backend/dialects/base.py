"""The dialect object: what one database (as reached through one engine) can and cannot do.

:class:`DialectFacts` is the base; each backend's class (``sqlite.py``, ``postgresql.py``,
``mysql.py``) overrides its facts and hooks, and :func:`facts_class` finds the class of a
SQLAlchemy dialect (or of a backend name) by the names the class registers. A database that
none registers (CockroachDB, a third-party dialect) gets this base: the Core paths, nothing
assumed. Code elsewhere asks the object (``facts.supports_returning``, ``facts.max_params``,
``facts.rows_per_statement(ncols)``) and never tests dialect names.

Two levels of facts: per engine, read from the server once (:meth:`DialectFacts.probe`: the
parameter limit, the packet size, AUTO_INCREMENT lock mode, Galera), kept as the instance's
fields; and per backend, known without a server (``ClassVar`` attributes and classmethods:
partial indexes, the float values a column keeps, the engine setup), which code holding only
a SQLAlchemy dialect reads through :func:`facts_class`.

Longer than 400 lines because it is one class, each of whose facts is documented where it
is declared; the backends' classes override only what differs.

Example::

    >>> import sqlalchemy as sa
    >>> facts = DialectFacts.probe(sa.create_engine("sqlite://"))
    >>> type(facts).__name__, facts.name, facts.supports_returning
    ('SQLiteFacts', 'sqlite', True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import sqlalchemy as sa

from ...errors import ConfigurationError
from .session import SessionKeys, TransactionSetup, normalize_isolation_level

__all__ = ["DialectFacts", "facts_class", "new_engine"]

#: Cap on rows in one multi-row statement: beyond this, statements get slower to parse.
_MAX_ROWS_PER_STATEMENT = 2_000
#: The most rows ``batch_update`` puts in one statement (or one executemany call), by
#: :attr:`DialectFacts.batch_update_style`.
_BATCH_UPDATE_ROWS = {
    "unnest": 10_000, "values": 500, "union": 2_000, "executemany": 10_000,
    # SQLite: 20,000 rows of two columns took 13-14 ms CPU in statements of 500 rows,
    # 14-15 ms of 1,000, 16-17 ms of 4,000 to 20,000 (the VALUES table SQLite builds stays
    # in the CPU's cache), 23-24 ms by executemany (two runs each).
    "values_select": 500,
    # COPY (LOAD DATA on MySQL) into a temporary table, one UPDATE joined to it: only memory
    # bounds a chunk.
    "copy": 100_000, "load": 100_000,
}
#: Styles whose statement has a fixed number of parameters, whatever its rows.
_FIXED_PARAMS = frozenset({"executemany", "unnest", "copy", "load"})
#: Headroom left in a packet-limited server's packet for the header and statement text.
_PACKET_HEADROOM = 64 * 1024
#: Largest multi-row INSERT built where the limit is a packet, even when it allows more.
_MAX_STATEMENT_BYTES = 4 * 1024 * 1024
#: A batch chunk holds about this many values (see :meth:`DialectFacts.chunk_rows`) ...
_CHUNK_VALUES = 100_000
#: ... and at most this many rows.
_CHUNK_ROWS = 10_000

#: The dialect class of each SQLAlchemy dialect name (filled by the backends' classes).
_FAMILIES: dict[str, type[DialectFacts]] = {}


def new_engine(url: sa.URL, **options: Any) -> sa.Engine:
    """``sa.create_engine``; for an async driver's URL the ``AsyncEngine``'s ``sync_engine``,
    so the listeners go where SQLAlchemy runs them (``connect()`` wraps it back)."""
    if getattr(url.get_dialect(), "is_async", False):
        # Imported here: the sync API runs without SQLAlchemy's asyncio extension.
        from .. import sa_asyncio

        engine: sa.Engine = sa_asyncio.extension().create_async_engine(url, **options).sync_engine
        return engine
    return sa.create_engine(url, **options)


def facts_class(dialect: sa.Dialect | str) -> type[DialectFacts]:
    """The dialect class of a SQLAlchemy dialect or backend name (the base for others).

    >>> from sqlalchemy.dialects import mysql
    >>> facts_class(mysql.pymysql.dialect()).__name__, facts_class("mariadb").__name__
    ('MySQLFacts', 'MySQLFacts')
    >>> facts_class("cockroachdb").__name__
    'DialectFacts'
    """
    name = dialect if isinstance(dialect, str) else dialect.name
    return _FAMILIES.get(name, DialectFacts)


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
    #: How batch inserts write and get keys back (see activerecord/write/strategies/):
    #: "sqlite_rowid", "pg_copy", "mysql_values" or "core" (SQLAlchemy's own executemany).
    insert_strategy: str = "core"
    #: How ``batch_update`` writes many rows, each with its own values, by primary key:
    #: ``"unnest"``: ``UPDATE t SET a = v.a FROM unnest(:keys, :as) AS v(k, a) WHERE t.k = v.k``
    #: (PostgreSQL, one array per column);
    #: ``"values"``: ``UPDATE t SET a = v.a FROM (VALUES ...) AS v(k, a) WHERE t.k = v.k``;
    #: ``"union"``: ``UPDATE t, (SELECT .. AS k, .. AS a UNION ALL SELECT ..) v SET t.a = v.a
    #: WHERE t.k = v.k`` (MySQL/MariaDB: their executemany runs one round trip per row);
    #: ``"executemany"``: ``UPDATE t SET a = ? WHERE k = ?`` per row in the driver's C loop
    #: (SQLite's upsert). ``batch_update`` asks :meth:`update_style`, which may name
    #: ``"values_select"`` (SQLite 3.33+: ``UPDATE ... FROM (SELECT column1 AS k, ... FROM
    #: (VALUES ...))``) or ``"copy"`` (PostgreSQL: rows COPY-ed into a temporary table).
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
    #: :attr:`keys_in_row_order`); where not proven, the Core path sends one row per statement.
    keys_follow_rows: bool = False
    #: Most key values one upsert lookup puts in its ``IN`` list (see ``MySQLFacts``).
    lookup_rows: int = 5000

    # -- per backend, known without a server ----------------------------------------------
    #: SQLAlchemy dialect names this class speaks for (registered in :func:`facts_class`).
    dialect_names: ClassVar[tuple[str, ...]] = ()
    #: Fast batch-insert paths, by driver; any other driver uses SQLAlchemy Core.
    insert_strategies: ClassVar[dict[str, str]] = {}
    #: Whether one multi-row INSERT numbers the generated keys in row order, so that keys
    #: returned sorted belong to the rows in order: a sequence's ``nextval`` (PostgreSQL) or
    #: AUTO_INCREMENT / rowid taken row by row. Elsewhere (CockroachDB's ``unique_rowid()``,
    #: no order proven within a statement) one row per statement: exact, not guessed.
    keys_in_row_order: ClassVar[bool] = False
    #: The bound-parameter limit known without a server (None: none, or read by the probe).
    param_limit: ClassVar[int | None] = None
    #: Whether ``CREATE INDEX ... WHERE`` exists: soft-delete unique keys use a partial
    #: unique index where it does and a generated column otherwise.
    partial_indexes: ClassVar[bool] = False
    #: Whether a condition's ``IN`` list is bound as one array parameter (``= ANY(:values)``).
    in_list_array: ClassVar[bool] = False
    #: Whether ``x IN (SELECT ... LIMIT n)`` runs (MySQL and MariaDB refuse it).
    limit_in_subquery: ClassVar[bool] = True
    #: Whether a single-table UPDATE's SET reads the values assigned to its left (MySQL).
    update_reads_assigned: ClassVar[bool] = False
    #: Whether a ``NUMERIC`` column holds a value as a 64-bit INTEGER or a REAL (SQLite).
    decimal_as_real: ClassVar[bool] = False
    #: The float values stored and read back exactly besides ordinary numbers, of
    #: ``{"nan", "inf", "-0.0"}``; any other is refused before it is sent.
    float_specials: ClassVar[frozenset[str]] = frozenset({"nan", "inf", "-0.0"})
    #: What happens to a refused float special, for the error message.
    float_lost_as: ClassVar[str] = ""
    #: Whether the driver sends any value as text, which the server then parses as a date or
    #: time: a batch refuses what is not a date/time object there.
    temporal_as_text: ClassVar[bool] = False
    #: Whether a text value cannot hold NUL (``\x00``): PostgreSQL's text types refuse it
    #: (psycopg before sending, COPY on the server), naming no column. A batch refuses it,
    #: naming the record and the column, before anything is written.
    text_refuses_nul: ClassVar[bool] = False
    #: Whether a timezone-aware ``DateTime`` column keeps the UTC offset (else: stored as UTC).
    keeps_utc_offset: ClassVar[bool] = False
    #: How an upsert of dict rows (no records handed back) lets the server insert, update and
    #: count in one statement per chunk (:mod:`activerecord.write.upsert_direct`): ``"rowid"``
    #: (SQLite: ``ON CONFLICT DO UPDATE ... WHERE changed``, the row count, and the rows above
    #: the max rowid read before: the inserted), ``"staged"`` (MySQL/MariaDB: the rows loaded
    #: into a temporary table, then ``UPDATE ... JOIN`` it where changed and ``INSERT ...
    #: SELECT`` the rest, each counted by its row count), or None: keys looked up first.
    upsert_direct: ClassVar[str | None] = None
    #: Whether ``0`` in an autoincrement key may mean "generate one" (see :meth:`session_keys`).
    zero_key_may_generate: ClassVar[bool] = False
    #: The isolation levels one transaction may ask for.
    isolation_levels: ClassVar[tuple[str, ...]] = ()
    #: Session statements that make a read see every write committed anywhere before it.
    causal_reads_statements: ClassVar[tuple[str, ...]] = ()
    #: The URL scheme naming the driver the library is built and tested with (``{name}``: the
    #: backend's name in the URL): a URL without a driver (``mysql://``) makes SQLAlchemy
    #: import another one (MySQLdb, psycopg2).
    supported_scheme: ClassVar[str | None] = None
    #: Whether ``connect(hosts=...)`` (several servers of one database) is supported.
    several_hosts: ClassVar[bool] = False
    #: Drivers whose whole results are read faster through a server-side cursor and
    #: :meth:`read_streamed` than by their buffered fetch (PyMySQL's parsing per row).
    streamed_read_drivers: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.__dict__.get("dialect_names", ()):
            _FAMILIES[name] = cls

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def for_dialect(cls, dialect: sa.Dialect) -> DialectFacts:
        """The facts a dialect object alone tells, without a server (compile-level): server
        limits unknown, AUTO_INCREMENT never assumed consecutive, no Galera.

        >>> from sqlalchemy.dialects import postgresql
        >>> facts = DialectFacts.for_dialect(postgresql.psycopg.dialect())
        >>> facts.insert_strategy, facts.key_path
        ('pg_copy', 'copy')
        """
        return facts_class(dialect)._build(dialect, {})

    @classmethod
    def probe(cls, engine: sa.Engine) -> DialectFacts:
        """Read the facts from a live connection (run once per engine)."""
        family = facts_class(engine.dialect)
        with engine.connect() as conn:
            read = family._read_server(conn)
            conn.rollback()
        return family._build(engine.dialect, read)

    @classmethod
    def _read_server(cls, conn: sa.Connection) -> dict[str, Any]:
        """The fields this backend reads from a live server (see :meth:`probe`)."""
        return {"max_params": None}

    @classmethod
    def _build(cls, dialect: sa.Dialect, read: dict[str, Any]) -> DialectFacts:
        fields: dict[str, Any] = {
            "name": dialect.name,
            "driver": dialect.driver,
            # Set by SQLAlchemy on the first connection (read after the probe's).
            "server_version": tuple(getattr(dialect, "server_version_info", None) or ()),
            "is_mariadb": bool(getattr(dialect, "is_mariadb", False)),
            "supports_returning": bool(dialect.insert_returning),
            "max_params": cls.param_limit,
            "max_packet_bytes": None,
            "autoinc_consecutive": False,
            "supports_partial_index": cls.partial_indexes,
            "supports_savepoints": True,
            "insert_strategy": cls.insert_strategies.get(dialect.driver, "core"),
            "keys_follow_rows": cls.keys_in_row_order,
        }
        fields.update(cls._fields_of(dialect))
        fields.update(read)
        return cls(**fields)

    @classmethod
    def _fields_of(cls, dialect: sa.Dialect) -> dict[str, Any]:
        """Fields this backend derives from the dialect object (its name, its flavour)."""
        return {}

    # -- statement sizes --------------------------------------------------------------------
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
        values, at most 10,000 rows, times :meth:`chunk_factor`. Statements inside a chunk
        obey the hard limits above.

        >>> import sqlalchemy as sa
        >>> DialectFacts.probe(sa.create_engine("sqlite://")).chunk_rows(6)
        10000
        """
        factor = self.chunk_factor()
        return max(100, min(_CHUNK_ROWS * factor, _CHUNK_VALUES * factor // max(ncols, 1)))

    def direct_upsert(self) -> str | None:
        """The :attr:`upsert_direct` style this server runs (see SQLite's: a version floor).

        >>> from sqlalchemy.dialects import postgresql
        >>> DialectFacts.for_dialect(postgresql.psycopg.dialect()).direct_upsert() is None
        True
        """
        return self.upsert_direct

    def binary_arrays(
        self, sql: str, arrays: Mapping[str, tuple[Any, Sequence[Any]]]
    ) -> str:
        """``sql`` with the array parameters (by name: the column type, the values) that the
        driver may send in its binary format marked so (see PostgreSQL's); here unchanged.

        >>> import sqlalchemy as sa
        >>> facts = DialectFacts.probe(sa.create_engine("sqlite://"))
        >>> facts.binary_arrays("SELECT ?", {"a0": (sa.Integer(), [1])})
        'SELECT ?'
        """
        return sql

    def chunk_factor(self) -> int:
        """How many times the usual chunk the insert strategy takes (see PostgreSQL's)."""
        return 1

    def update_style(self, nrows: int) -> str:
        """The UPDATE-by-key form ``batch_update`` writes chunks of ``nrows`` rows in (see
        :attr:`batch_update_style`, the form of an upsert's UPDATE half; a backend may pick
        another for ``batch_update``, by chunk size).

        >>> import sqlalchemy as sa
        >>> from sqlalchemy.dialects import mysql
        >>> DialectFacts.for_dialect(mysql.pymysql.dialect()).update_style(10_000)
        'union'
        """
        return self.batch_update_style

    def update_rows_per_statement(self, ncols: int, style: str | None = None) -> int:
        """How many rows of ``ncols`` values ``batch_update`` writes per statement in
        ``style`` (default :attr:`batch_update_style`).

        >>> import sqlalchemy as sa
        >>> facts = DialectFacts.probe(sa.create_engine("sqlite://"))
        >>> facts.update_rows_per_statement(3)
        10000
        >>> facts.update_rows_per_statement(2, "values_select")
        500
        """
        style = style or self.batch_update_style
        cap = _BATCH_UPDATE_ROWS.get(style, _MAX_ROWS_PER_STATEMENT)
        if style in _FIXED_PARAMS:
            return cap  # a fixed number of parameters: only memory bounds a chunk
        if style == "values_select" and self.max_params is not None:
            return max(1, min(cap, self.max_params // max(ncols, 1)))
        rows = min(cap, self.rows_per_statement(ncols, row_bytes=32 * max(ncols, 1)))
        return max(rows, 1)

    # -- generated keys ---------------------------------------------------------------------
    def generates_key(self, column: sa.Column[Any]) -> bool:
        """Whether the database numbers this autoincrement key column when a row leaves it out
        (see SQLite's, which does not for every type).

        >>> import sqlalchemy as sa
        >>> from sqlalchemy.dialects import postgresql
        >>> facts = DialectFacts.for_dialect(postgresql.psycopg.dialect())
        >>> facts.generates_key(sa.Column("id", sa.BigInteger, primary_key=True))
        True
        """
        return True

    def session_keys(self, conn: sa.Connection) -> SessionKeys:
        """How the connection's session numbers AUTO_INCREMENT keys now (see MySQL's, the
        only one that asks): elsewhere steps of 1, and 0 is a key like any other.

        >>> import sqlalchemy as sa
        >>> engine = sa.create_engine("sqlite://")
        >>> with engine.connect() as conn:
        ...     DialectFacts.probe(engine).session_keys(conn)
        SessionKeys(increment=1, offset=1, zero_generates=False)
        """
        return SessionKeys(1, 1, False)

    def follow_given_key(
        self, conn: sa.Connection, table: sa.Table, column: sa.Column[Any], key: int
    ) -> None:
        """After one row was written with a key it gave itself: make the database's numbering
        follow it, so the next generated key cannot collide with it. Nothing to do here:
        SQLite's and MySQL's next key already follows the largest stored one (see
        PostgreSQL's, whose sequence does not).

        >>> import sqlalchemy as sa
        >>> engine = sa.create_engine("sqlite://")
        >>> t = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
        >>> with engine.connect() as conn:
        ...     DialectFacts.probe(engine).follow_given_key(conn, t, t.c.id, 7)
        """

    # -- transactions -----------------------------------------------------------------------
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
        if level is not None and level not in self.isolation_levels:
            raise ConfigurationError(
                f"isolation level {isolation_level!r} is not available on {self.name}; "
                f"choose one of {', '.join(self.isolation_levels)}"
            )
        return self._transaction_statements(level, read_only)

    def _transaction_statements(self, level: str | None, read_only: bool) -> TransactionSetup:
        """This backend's statements for an isolation level it offers (or None)."""
        if read_only:
            raise ConfigurationError(f"read-only transactions are not supported on {self.name}")
        return TransactionSetup()

    def join_caller_transaction(self, dbapi_connection: Any) -> None:
        """Make sure the caller's connection (``using()``) has its transaction open at the
        database before the library's first statement runs on it (see SQLite's; other
        drivers open it themselves)."""

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
        return self._fragment_statements(rows)

    def _fragment_statements(
        self, rows: int
    ) -> tuple[tuple[sa.TextClause, ...], tuple[str, ...]]:
        raise ConfigurationError(f"{self.name} has no streaming replication")

    def set_autocommit(self, dbapi_connection: Any, on: bool) -> None:
        """Switch a driver connection's autocommit mode (used by raw connections).

        SQLite connections of this library always run in driver autocommit mode (the library
        emits BEGIN itself, see database.py), so there is nothing to switch there.
        """

    # -- engine setup -----------------------------------------------------------------------
    @classmethod
    def create_engine(
        cls, url: sa.URL, options: dict[str, Any], hosts: list[str], *, causal_reads: bool
    ) -> sa.Engine:
        """The engine :func:`~activerecord.connect` creates for a URL of this backend, with
        its session setup; ``hosts``: several servers of one database (see ``connect``)."""
        if hosts and not cls.several_hosts:
            raise ConfigurationError(
                f"several hosts are not supported on {url.get_backend_name()}"
            )
        options.setdefault("pool_pre_ping", True)
        return new_engine(url, **options)

    @classmethod
    def prepare_engine(cls, engine: sa.Engine) -> None:
        """Listeners every engine of this backend needs, the caller's own ones too (once)."""

    # -- statements and types ---------------------------------------------------------------
    @classmethod
    def read_streamed(
        cls, dbapi_cursor: Any, limit: int | None
    ) -> tuple[list[list[Any]], bool] | None:
        """Up to ``limit`` (None: all) more rows of a server-side cursor's result, one list
        of the driver's values per column, and whether the result has ended; None where
        this driver has no faster way than fetching rows (the caller fetches them)."""
        return None

    @classmethod
    def readable_compiler(cls, dialect: sa.Dialect) -> type[Any]:
        """The statement compiler ``Query.to_sql`` renders with (see SQLite's)."""
        compiler: type[Any] = dialect.statement_compiler
        return compiler

    @classmethod
    def fast_bind(
        cls, impl: sa.types.TypeEngine[Any], proc: Callable[[Any], Any]
    ) -> Callable[[Any], Any] | None:
        """An exact, faster equivalent of a column's bind processor ``proc``, if this backend
        knows one (see SQLite's); None: use ``proc``."""
        return None

    @classmethod
    def datetime_type(cls, *, aware: bool) -> sa.types.TypeEngine[Any]:
        """The column type a ``datetime`` field is stored as (``aware``: the UTC instant)."""
        return sa.DateTime(timezone=aware and cls.keeps_utc_offset)

    @classmethod
    def time_type(cls) -> sa.types.TypeEngine[Any]:
        """The column type a ``time`` field is stored as."""
        return sa.Time()

    @classmethod
    def unique_keys_missed(
        cls, conn: sa.Connection, table: str, schema: str | None
    ) -> list[tuple[str | None, tuple[str, ...]]]:
        """Unique keys SQLAlchemy's reflection misses on this backend (see SQLite's)."""
        return []

    @classmethod
    def checks_off_statements(cls, table: str) -> tuple[str, str]:
        """Statements that turn foreign-key checks off for a bulk load, and back on."""
        raise ConfigurationError("no known way to turn foreign-key checks off here")
