"""Driver errors -> the library's error tree, in one place.

Every error a driver (sqlite3, psycopg, PyMySQL) or a column's bind processor raises reaches
the caller as one of :mod:`activerecord.errors`, through :func:`translate_error` (a caught
exception) or :func:`driver_errors` (a block of statements). The error-code tables of each
backend live here: SQLSTATEs (PostgreSQL), error numbers (MySQL/MariaDB, TiDB, Galera) and
message phrases (SQLite, whose driver has neither).

Example::

    >>> import sqlite3
    >>> type(translate_error(sqlite3.IntegrityError("UNIQUE constraint failed: t.x"))).__name__
    'UniqueViolation'
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc as sa_exc

from ..errors import (
    DatabaseConnectionError,
    DatabaseError,
    DataError,
    ForeignKeyViolation,
    IntegrityError,
    NotNullViolation,
    TransactionConflictError,
    TransactionTooLargeError,
    UniqueViolation,
    error_context,
)
from .bridge import close_failed_cursors
from .nul_parameters import nul_parameter_column

__all__ = [
    "driver_errors",
    "is_conflict",
    "is_node_refusal",
    "overflow_error",
    "refused_value_error",
    "translate_error",
]

_PG_CONFLICT = {"40001", "40P01", "55P03"}
#: 9007: TiDB's optimistic write conflict, found at COMMIT like a Galera certification failure.
_MYSQL_CONFLICT = {1213, 1205, 9007}
#: Out of range, data too long, incorrect value / integer / datetime value.
#: 1690: a value out of its type's range computed by the statement ("BIGINT value is out of
#: range in ..."), SQLSTATE 22003 as PostgreSQL's "bigint out of range".
_MYSQL_DATA = {1264, 1406, 1292, 1366, 1265, 1367, 4025, 1690}
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
#: PostgreSQL's COPY context of a refused value: ``COPY t, line 3, column c: "..."``.
_COPY_COLUMN = re.compile(r"\bCOPY [^,]+, line \d+, column (.+?)(?::\s|$)", re.M)
#: MariaDB names the check of a JSON column (valid JSON) after the table and the column.
_MARIADB_COLUMN_CHECK = re.compile(r"CONSTRAINT `[^`.]+\.([^`]+)` failed")
#: The column a NOT NULL refusal names: MySQL's "Column 'c' cannot be null", SQLite's
#: "NOT NULL constraint failed: t.c" (PostgreSQL's is in the error's diagnostics).
_NOT_NULL_COLUMN = re.compile(
    r"Column '(?P<mysql>[^']+)' cannot be null"
    r"|NOT NULL constraint failed: (?:\S+\.)?(?P<sqlite>\S+)"
)


def _is_data_error(orig: BaseException, wrapped: BaseException | None) -> bool:
    """Whether the driver raised its DB-API ``DataError`` (by class name: every driver
    names it so), or SQLAlchemy wrapped one as its own."""
    if isinstance(wrapped, sa_exc.DataError):
        return True
    return any(cls.__name__ == "DataError" for cls in type(orig).__mro__)


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
    close_failed_cursors(err)  # before the error is kept: see there
    wrapped = err if isinstance(err, sa_exc.DBAPIError) else None
    orig: BaseException = err if wrapped is None or wrapped.orig is None else wrapped.orig
    # The bare message: str() puts the context and the record in front (errors.render).
    message = str(orig)
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
            return _too_large(message, orig, limit, record_index, context)
        kind = _mysql_kind(code, integrity)
    elif isinstance(sqlstate, str):  # psycopg
        kind = _sqlstate_kind(sqlstate)
    else:  # sqlite3 and anything else
        kind = _message_kind(text, integrity)
    if kind is DatabaseError and integrity:
        kind = IntegrityError
    if kind is DatabaseError and _is_data_error(orig, wrapped):
        kind = DataError  # a value the driver refused itself (no code, no SQLSTATE)
    if record_index is not None:
        # The record is named: PostgreSQL's "COPY t, line N" (N counted its own way) is not.
        message = _COPY_CONTEXT.sub("", message)
    error = kind(message, orig=orig)
    error.context = context or None
    error.record_index = record_index
    column = getattr(orig, "column", None)  # a value refused before it was sent names it
    if column is None and code in _MYSQL_DATA:  # "... for column 'n' at row 2"
        found = _MYSQL_COLUMN.search(str(orig))
        column = found.group(1) if found else None
    if column is None and kind is NotNullViolation:
        column = _not_null_column(orig)
    if column is None and isinstance(sqlstate, str):  # COPY's context names the column
        found = _COPY_COLUMN.search(getattr(getattr(orig, "diag", None), "context", "") or "")
        column = found.group(1) if found else None
    if column is None and code == 4025:  # MariaDB: "CONSTRAINT `t.c` failed": c's JSON check
        found = _MARIADB_COLUMN_CHECK.search(str(orig))
        column = found.group(1) if found else None
    if column is None and kind is DataError and wrapped is not None:
        column = nul_parameter_column(wrapped)
    error.column = column if isinstance(column, str) else None
    return error


def _not_null_column(orig: BaseException) -> str | None:
    """The column a NOT NULL refusal names (psycopg's diagnostics, else the message).

    >>> import sqlite3
    >>> _not_null_column(sqlite3.IntegrityError("NOT NULL constraint failed: t.name"))
    'name'
    """
    diag = getattr(orig, "diag", None)
    name = getattr(diag, "column_name", None) if diag is not None else None
    if isinstance(name, str) and name:
        return name
    found = _NOT_NULL_COLUMN.search(str(orig))
    if found is None:
        return None
    return found.group("mysql") or found.group("sqlite")


def _mysql_kind(code: int, integrity: bool) -> type[DatabaseError]:
    """The error class of a MySQL/MariaDB error number."""
    if code in (1062, 1586):
        return UniqueViolation
    if code in (1451, 1452, 1216, 1217):
        return ForeignKeyViolation
    if code in (1048, 1364):
        return NotNullViolation
    if code in _MYSQL_CONFLICT:
        return TransactionConflictError
    if code in _MYSQL_CONNECTION:
        return DatabaseConnectionError
    if code in _MYSQL_DATA:
        return DataError
    return IntegrityError if integrity else DatabaseError


def _sqlstate_kind(sqlstate: str) -> type[DatabaseError]:
    """The error class of a PostgreSQL SQLSTATE."""
    if sqlstate == "23505":
        return UniqueViolation
    if sqlstate == "23503":
        return ForeignKeyViolation
    if sqlstate == "23502":
        return NotNullViolation
    if sqlstate.startswith("23"):
        return IntegrityError
    if sqlstate in _PG_CONFLICT:
        return TransactionConflictError
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):
        return DatabaseConnectionError
    if sqlstate.startswith("22"):
        return DataError
    return DatabaseError


def _message_kind(text: str, integrity: bool) -> type[DatabaseError]:
    """The error class of a driver error with neither code nor SQLSTATE (sqlite3), by its
    message."""
    if "unique constraint" in text or "primary key must be unique" in text:
        return UniqueViolation
    if "foreign key constraint" in text:
        return ForeignKeyViolation
    if "not null constraint" in text:
        return NotNullViolation
    if text == "integer overflow":  # arithmetic beyond 64 bits (expression.whole)
        return DataError
    if any(marker in text for marker in _SQLITE_CONFLICT):
        return TransactionConflictError
    return IntegrityError if integrity else DatabaseError


def _too_large(
    message: str, orig: BaseException, limit: str, record_index: int | None, context: str
) -> TransactionTooLargeError:
    stream = (
        " or stream it in fragments (Transaction(fragment_rows=N))" if limit in _STREAMABLE
        else ""
    )
    error = TransactionTooLargeError(
        f"{message}: " + _TOO_LARGE_HINT.format(limit=limit, stream=stream),
        orig=orig,
        limit=limit,
    )
    error.context = context or None
    error.record_index = record_index
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
    error = DataError(str(err.orig), orig=err.orig)  # str() names the context and column
    error.context, error.column = context or None, column
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


def overflow_error(
    err: OverflowError, *, context: str = "", column: str | None = None
) -> DataError:
    """The stdlib sqlite3 driver raises a bare ``OverflowError`` for an int beyond 64 bits.

    >>> str(overflow_error(OverflowError("too large"), context="save of T", column="n"))
    "save of T: column 'n': value out of range for an integer column (too large)"
    """
    error = DataError(f"value out of range for an integer column ({err})", orig=err)
    error.context, error.column = context or None, column  # str() puts them in front
    return error


@contextmanager
def driver_errors(
    context: str, *, operation: str | None = None, model: str | None = None
) -> Iterator[None]:
    """Run a statement block, raising what the driver or a column's processor refused as
    one of ours, with ``context`` (``"User query"``, ``"update of User"``) in the message;
    every error of ours leaving the block gets ``operation`` (``"query.update"``) and
    ``model`` where given (:func:`activerecord.errors.error_context`).

    >>> import sqlalchemy as sa
    >>> engine = sa.create_engine("sqlite://")
    >>> try:
    ...     with driver_errors("Doc query"), engine.connect() as conn:
    ...         _ = conn.exec_driver_sql("SELECT * FROM missing")
    ... except DatabaseError as err:
    ...     print(type(err).__name__, str(err).split(":")[0])
    DatabaseError Doc query
    """
    with error_context(operation=operation, model=model), _translated(context):
        yield


@contextmanager
def _translated(context: str) -> Iterator[None]:
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
        error = DataError(str(exc), orig=exc)
        error.context = context
        raise error from exc


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
