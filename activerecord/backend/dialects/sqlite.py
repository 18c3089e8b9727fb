"""SQLite (the stdlib ``sqlite3`` driver): its facts, engine setup and transaction quirks.

Example::

    >>> import sqlalchemy as sa
    >>> facts = SQLiteFacts.probe(sa.create_engine("sqlite://"))
    >>> facts.insert_strategy, facts.batch_update_style, facts.max_params >= 999
    ('sqlite_rowid', 'executemany', True)
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.sqlite import base as sqlite_types
from sqlalchemy.pool import StaticPool

from ..bridge import close_failed_cursors
from ..errors import translate_error
from .base import DialectFacts, new_engine
from .session import TransactionSetup

__all__ = ["SQLiteFacts"]

#: BEGIN modes of SQLite, by the stdlib driver's ``isolation_level`` (see
#: :meth:`SQLiteFacts.join_caller_transaction`): a fixed text, never the caller's string.
_BEGIN_MODES = {"": "", "DEFERRED": "DEFERRED", "IMMEDIATE": "IMMEDIATE",
                "EXCLUSIVE": "EXCLUSIVE"}
#: Marks a pooled SQLite connection (in its ``ConnectionRecord.info``) as prepared.
_PREPARED = "activerecord_sqlite_prepared"
_TYPES_DIALECT = sqlite_types.SQLiteDialect()
_READABLE_COMPILERS: dict[type[Any], type[Any]] = {}


@dataclass(frozen=True)
class SQLiteFacts(DialectFacts):
    """SQLite: rowid keys, a parameter limit read at run time, the driver's C executemany."""

    batch_update_style: str = "executemany"

    dialect_names: ClassVar[tuple[str, ...]] = ("sqlite",)
    # aiosqlite: the stdlib driver in a thread, behind SQLAlchemy's adapter (the greenlet bridge).
    insert_strategies: ClassVar[dict[str, str]] = {
        "pysqlite": "sqlite_rowid", "aiosqlite": "sqlite_rowid",
    }
    keys_in_row_order: ClassVar[bool] = True
    partial_indexes: ClassVar[bool] = True
    # NUMERIC affinity turns even text into an INTEGER or a REAL: only integers of 64 bits
    # and values of at most 15 significant digits are stored exactly.
    decimal_as_real: ClassVar[bool] = True
    # The infinities are kept; NaN is stored as NULL and -0.0 as 0.
    float_specials: ClassVar[frozenset[str]] = frozenset({"inf"})
    float_lost_as: ClassVar[str] = " (it would read back as NULL)"
    # Always serializable; READ UNCOMMITTED only matters with a shared cache.
    isolation_levels: ClassVar[tuple[str, ...]] = ("READ UNCOMMITTED", "SERIALIZABLE")
    #: The largest rowid; past it SQLite picks rowids at random (no range to prove).
    max_rowid: ClassVar[int] = 2**63 - 1
    upsert_direct: ClassVar[str | None] = "rowid"

    @classmethod
    def _read_server(cls, conn: sa.Connection) -> dict[str, Any]:
        raw = conn.connection.dbapi_connection
        getlimit = getattr(raw, "getlimit", None)  # Python 3.11+
        if getlimit is not None:
            limit_id = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", 9)
            return {"max_params": int(getlimit(limit_id))}
        return {"max_params": 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999}

    def direct_upsert(self) -> str | None:
        """``ON CONFLICT ... DO UPDATE`` came with SQLite 3.24."""
        return self.upsert_direct if self.server_version >= (3, 24) else None

    def update_style(self, nrows: int) -> str:
        """SQLite 3.33+ takes ``UPDATE ... FROM``: one statement of a ``VALUES`` list per
        up to the parameter limit's rows ran 20,000 rows in 32-44 ms where the driver's
        executemany of the one-row UPDATE took 72 ms (same run; 16,383 rows a statement for
        two columns)."""
        if sqlite3.sqlite_version_info >= (3, 33, 0):
            return "values_select"
        return self.batch_update_style

    def generates_key(self, column: sa.Column[Any]) -> bool:
        """SQLite numbers only a rowid alias, a key whose declared type is exactly
        ``INTEGER``; a ``BIGINT PRIMARY KEY`` is an ordinary column there, which would hold
        NULL (while ``lastrowid`` names the hidden rowid). Known from the column type.

        >>> import sqlalchemy as sa
        >>> facts = DialectFacts.probe(sa.create_engine("sqlite://"))
        >>> facts.generates_key(sa.Column("id", sa.BigInteger, primary_key=True))
        False
        >>> facts.generates_key(sa.Column("id", sa.Integer, primary_key=True))
        True
        """
        rendered = column.type.compile(dialect=_TYPES_DIALECT)
        return rendered.strip().upper() == "INTEGER"

    def _transaction_statements(self, level: str | None, read_only: bool) -> TransactionSetup:
        # Connection-wide pragmas: turned back off after the transaction.
        begin: list[str] = []
        reset: list[str] = []
        if level == "READ UNCOMMITTED":
            begin.append("PRAGMA read_uncommitted = 1")
            reset.append("PRAGMA read_uncommitted = 0")
        if read_only:
            begin.append("PRAGMA query_only = 1")
            reset.append("PRAGMA query_only = 0")
        return TransactionSetup(tuple(begin), tuple(reset))

    def join_caller_transaction(self, dbapi_connection: Any) -> None:
        """The stdlib SQLite driver, left in its default (legacy) transaction control as in an
        application's own ``create_engine("sqlite:///...")``, sends BEGIN only before an
        INSERT, UPDATE or DELETE: a batch's SAVEPOINT would then open the transaction itself
        and its RELEASE commit it, past the caller's rollback. A deferred BEGIN (what the
        driver would send, with its ``isolation_level``) takes no lock until the first
        statement. Connections in autocommit mode or already in a transaction are left as
        they are.

        >>> import sqlalchemy as sa, sqlite3
        >>> facts = DialectFacts.probe(sa.create_engine("sqlite://"))
        >>> raw = sqlite3.connect(":memory:")
        >>> facts.join_caller_transaction(raw)
        >>> raw.in_transaction
        True
        """
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        legacy = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", -1)
        if getattr(dbapi_connection, "autocommit", legacy) != legacy:
            return  # Python 3.12+ autocommit=True/False: the driver does what was asked
        level = dbapi_connection.isolation_level
        if level is None or dbapi_connection.in_transaction:
            return  # autocommit, or the library's own BEGIN (database.py) already ran
        if level.upper() not in _BEGIN_MODES:
            return  # the driver accepts no other value; nothing we could send for it
        try:
            dbapi_connection.execute(f"BEGIN {_BEGIN_MODES[level.upper()]}".rstrip())
        except sqlite3.Error as err:
            raise translate_error(err, context="cannot join the caller's transaction") from err

    # -- engine setup -----------------------------------------------------------------------
    @classmethod
    def create_engine(
        cls, url: sa.URL, options: dict[str, Any], hosts: list[str], *, causal_reads: bool
    ) -> sa.Engine:
        """A file or in-memory database: one shared connection for an in-memory one, so it
        lives across calls and threads; usable from any thread; a 30 s busy timeout."""
        if hosts:
            return super().create_engine(url, options, hosts, causal_reads=causal_reads)
        database = url.database or ""
        connect_args = dict(options.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
        if database in ("", ":memory:") and "poolclass" not in options:
            options["poolclass"] = StaticPool
        return new_engine(url, connect_args=connect_args, **options)

    @classmethod
    def prepare_engine(cls, engine: sa.Engine) -> None:
        """SQLAlchemy's documented pysqlite recipe, which SAVEPOINTs need (see ``connect``)."""
        if event.contains(engine, "begin", _on_begin):
            return
        event.listen(engine, "connect", _on_connect)
        event.listen(engine, "begin", _on_begin)
        event.listen(engine, "checkout", _on_checkout)
        # Any failed statement on the engine, the application's own included.
        event.listen(engine, "handle_error", _on_error)
        # Connections the pool already holds were opened before these listeners: the checkout
        # listener prepares each on its next checkout. Disposing of the pool instead would
        # close a user's connections (and lose an in-memory database with them).

    # -- statements -------------------------------------------------------------------------
    @classmethod
    def readable_compiler(cls, dialect: sa.Dialect) -> type[Any]:
        """The dialect's compiler, except that a ``LIMIT`` without an offset is shown without
        the ``OFFSET 0`` SQLAlchemy adds (only for showing SQL)."""
        base: type[Any] = dialect.statement_compiler
        if not issubclass(base, sqlite_types.SQLiteCompiler):
            return base
        readable = _READABLE_COMPILERS.get(base)
        if readable is None:
            readable = type("ReadableSQLiteCompiler", (base,), {"limit_clause": _limit_as_asked})
            _READABLE_COMPILERS[base] = readable
        return readable

    @classmethod
    def unique_keys_missed(
        cls, conn: sa.Connection, table: str, schema: str | None
    ) -> list[tuple[str | None, tuple[str, ...]]]:
        """Inline ``UNIQUE`` column constraints (``c VARCHAR(20) UNIQUE``), whose automatic
        indexes SQLAlchemy's reflection skips: read from ``pragma_index_list``, unnamed."""
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
                # Automatic indexes of UNIQUE constraints have internal names, not the
                # constraint's.
                out.append((None if origin != "c" else str(name), tuple(columns)))
        return out

    @classmethod
    def checks_off_statements(cls, table: str) -> tuple[str, str]:
        # PRAGMA foreign_keys is ignored inside a transaction; deferring the checks is not.
        return "PRAGMA defer_foreign_keys = ON", "PRAGMA defer_foreign_keys = OFF"

    @classmethod
    def fast_bind(
        cls, impl: sa.types.TypeEngine[Any], proc: Callable[[Any], Any]
    ) -> Callable[[Any], Any] | None:
        """An exact, faster equivalent of a column's bind processor, if one is known: DATETIME's
        default text format is ``datetime.isoformat(" ", "microseconds")`` for naive datetimes
        (5x faster than its %-formatting)."""
        if type(impl) is not sqlite_types.DATETIME or (
            getattr(impl, "_storage_format", None) != sqlite_types.DATETIME._storage_format
        ):
            return None
        return _fast_datetime(proc)


def _fast_datetime(slow: Callable[[Any], Any]) -> Callable[[Any], Any]:
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


def _limit_as_asked(compiler: Any, select: Any, **kw: Any) -> str:
    # SQLite's compiler writes "OFFSET ?" (a bound 0) after every LIMIT; a reader asked for none.
    if select._offset_clause is None and select._limit_clause is not None:
        return "\n LIMIT " + str(compiler.process(select._limit_clause, **kw))
    full: Callable[..., Any] = sqlite_types.SQLiteCompiler.limit_clause
    return str(full(compiler, select, **kw))


def _on_connect(dbapi_connection: Any, record: Any) -> None:
    # The stdlib driver opens transactions on its own and breaks SAVEPOINT; take that job
    # over (SQLAlchemy's documented recipe) and turn on foreign keys.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
    if record is not None:
        record.info[_PREPARED] = True


def _on_error(context: sa.engine.ExceptionContext) -> None:
    close_failed_cursors(context.original_exception)


def _on_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    # A connection the pool opened before connect() added the "connect" listener (a user's
    # engine) gets the same settings on its first checkout, so it never has to be disposed.
    if not record.info.get(_PREPARED):
        _on_connect(dbapi_connection, record)
    # A connection reloads its copy of the schema only when a statement reads the database:
    # until then PRAGMAs (which SQLAlchemy's reflection runs) answer from the copy it had,
    # missing tables and indexes another connection of the pool created since. One read of
    # the schema table in autocommit mode (a lock taken and released at once) refreshes it.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        cursor.fetchall()  # not chained: aiosqlite's adapted execute() returns None
    finally:
        cursor.close()
