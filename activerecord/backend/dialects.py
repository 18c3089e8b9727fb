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

import sqlite3
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ..errors import (
    DatabaseConnectionError,
    DatabaseError,
    ForeignKeyViolation,
    IntegrityError,
    NotNullViolation,
    TransactionConflictError,
    UniqueViolation,
)

__all__ = ["DialectFacts", "translate_error"]

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
    autoinc_consecutive: bool
    supports_partial_index: bool
    supports_savepoints: bool
    #: How ``batch_update`` writes many rows, each with its own values, by primary key:
    #: ``"unnest"``: ``UPDATE t SET a = v.a FROM unnest(:keys, :as) AS v(k, a) WHERE t.k = v.k``
    #: (PostgreSQL, one array per column);
    #: ``"values"``: ``UPDATE t SET a = v.a FROM (VALUES ...) AS v(k, a) WHERE t.k = v.k``;
    #: ``"union"``: ``UPDATE t, (SELECT .. AS k, .. AS a UNION ALL SELECT ..) v SET t.a = v.a
    #: WHERE t.k = v.k`` (MySQL/MariaDB: their executemany runs one round trip per row);
    #: ``"executemany"``: ``UPDATE t SET a = ? WHERE k = ?`` per row in the driver's C loop
    #: (SQLite: no round trips, so this beats one big statement).
    batch_update_style: str = "executemany"

    @classmethod
    def probe(cls, engine: sa.Engine) -> DialectFacts:
        """Read the facts from a live connection (run once per engine)."""
        dialect = engine.dialect
        name = dialect.name
        max_params: int | None = None
        max_packet: int | None = None
        consecutive = False
        with engine.connect() as conn:
            if name == "sqlite":
                max_params = _sqlite_max_variables(conn)
            elif name == "postgresql":
                max_params = _PG_MAX_PARAMS
            elif name in ("mysql", "mariadb"):
                row = conn.exec_driver_sql(
                    "SELECT @@max_allowed_packet, @@innodb_autoinc_lock_mode, "
                    "@@auto_increment_increment"
                ).one()
                max_packet = int(row[0])
                consecutive = int(row[1]) in (0, 1) and int(row[2]) == 1
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
            supports_partial_index=name in ("sqlite", "postgresql"),
            supports_savepoints=True,
            batch_update_style=_BATCH_UPDATE_STYLE.get(
                "mysql" if name == "mariadb" else name, "executemany"
            ),
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


def _sqlite_max_variables(conn: sa.Connection) -> int:
    raw = conn.connection.dbapi_connection
    getlimit = getattr(raw, "getlimit", None)  # Python 3.11+
    if getlimit is not None:
        limit_id = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", 9)
        return int(getlimit(limit_id))
    return 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


_PG_CONFLICT = {"40001", "40P01", "55P03"}
_MYSQL_CONFLICT = {1213, 1205}
_MYSQL_CONNECTION = {2002, 2003, 2006, 2013, 2014, 2055, 1927, 4031}


def translate_error(err: sa_exc.DBAPIError, *, context: str = "") -> DatabaseError:
    """Map a driver error (wrapped by SQLAlchemy) to the library's error tree.

    The returned error keeps the driver's exception as ``.orig``.
    """
    orig = err.orig
    message = f"{context}: {orig}" if context else str(orig)
    kind: type[DatabaseError] = DatabaseError
    sqlstate = getattr(orig, "sqlstate", None)
    args = getattr(orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    text = str(orig).lower()
    if err.connection_invalidated or isinstance(err, sa_exc.DisconnectionError):
        kind = DatabaseConnectionError
    elif code is not None:  # PyMySQL (its errors carry a sqlstate too: test the code first)
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
        elif isinstance(err, sa_exc.IntegrityError):
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
    else:  # sqlite3 and anything else
        if "unique constraint" in text or "primary key must be unique" in text:
            kind = UniqueViolation
        elif "foreign key constraint" in text:
            kind = ForeignKeyViolation
        elif "not null constraint" in text:
            kind = NotNullViolation
        elif "database is locked" in text or "database table is locked" in text:
            kind = TransactionConflictError
        elif isinstance(err, sa_exc.IntegrityError):
            kind = IntegrityError
    if kind is DatabaseError and isinstance(err, sa_exc.IntegrityError):
        kind = IntegrityError
    return kind(message, orig=orig)
