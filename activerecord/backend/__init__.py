"""Connecting, and raw DB-API access through :func:`get_connection`.

Example::

    >>> import activerecord
    >>> from activerecord.backend import get_connection
    >>> _ = activerecord.connect("sqlite://")
    >>> with get_connection() as conn:
    ...     with conn.cursor() as cursor:
    ...         _ = cursor.execute("SELECT 1")
    ...         cursor.fetchone()
    (1,)
"""

from __future__ import annotations

import weakref
from typing import Any

import sqlalchemy as sa

from .database import DEFAULT, Database, connect, disconnect, get_database
from .dialects import DialectFacts
from .transaction import Transaction, current_connection, resolve_database

__all__ = [
    "DEFAULT",
    "Database",
    "DialectFacts",
    "RawConnection",
    "Transaction",
    "connect",
    "disconnect",
    "get_connection",
    "get_database",
]


class _Cursor:
    """A DB-API cursor that is also a context manager (the stdlib sqlite3 one is not)."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()


def _release(conn: sa.Connection, dbapi: Any, restore: Any) -> None:
    try:
        if restore is not None:
            restore(dbapi)
    finally:
        conn.close()


class RawConnection:
    """A DB-API connection handed out by :func:`get_connection`.

    Inside a ``Transaction`` it is that transaction's connection: raw SQL commits or rolls
    back together with model operations, and ``close()`` does nothing. Outside one it is a
    pooled connection in autocommit mode (each statement commits at once), returned to the
    pool by ``close()``, by leaving a ``with`` block, or when it is garbage collected.
    """

    def __init__(self, dbapi: Any, owner: sa.Connection | None, restore: Any = None) -> None:
        self._dbapi = dbapi
        self._owner = owner
        self._finalizer = (
            weakref.finalize(self, _release, owner, dbapi, restore) if owner is not None else None
        )

    @property
    def dbapi_connection(self) -> Any:
        """The driver's own connection object."""
        return self._dbapi

    def cursor(self, *args: Any, **kwargs: Any) -> _Cursor:
        """A driver cursor usable as ``with conn.cursor() as cursor:`` on every backend."""
        return _Cursor(self._dbapi.cursor(*args, **kwargs))

    def commit(self) -> None:
        """Commit; inside a ``Transaction`` the transaction decides, so this does nothing."""
        if self._owner is not None:
            self._dbapi.commit()

    def close(self) -> None:
        """Return the connection to the pool (no-op inside a ``Transaction``)."""
        if self._finalizer is not None:
            self._finalizer()

    @property
    def closed(self) -> bool:
        """True once an outside-transaction connection went back to the pool."""
        return self._finalizer is not None and not self._finalizer.alive

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dbapi, name)

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _autocommit(dbapi: Any, dialect: str) -> Any:
    """Switch a driver connection to autocommit; return a function that switches it back."""
    if dialect == "postgresql":
        dbapi.autocommit = True

        def restore(c: Any) -> None:
            c.autocommit = False

        return restore
    if dialect in ("mysql", "mariadb"):
        dbapi.autocommit(True)

        def restore_mysql(c: Any) -> None:
            c.autocommit(False)

        return restore_mysql
    return None  # sqlite connections already run in autocommit mode (see database.py)


def get_connection(target: Any = None) -> RawConnection:
    """A DB-API connection for raw SQL (see :class:`RawConnection` for its lifetime)."""
    db = resolve_database(target)
    ambient = current_connection(db)
    if ambient is not None:
        return RawConnection(ambient.connection.dbapi_connection, None)
    conn = db.engine.connect()
    try:
        dbapi = conn.connection.dbapi_connection
        restore = _autocommit(dbapi, db.engine.dialect.name)
    except BaseException:
        conn.close()
        raise
    return RawConnection(dbapi, conn, restore)
