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

from ..errors import ConfigurationError
from .database import DEFAULT, Database, connect, disconnect, get_database
from .dialects import DialectFacts
from .raw_async import AsyncRawConnection, aget_connection
from .raw_checkout import checkout_raw, release
from .transaction import (
    Transaction,
    after_commit,
    in_transaction,
)

__all__ = [
    "DEFAULT",
    "AsyncRawConnection",
    "Database",
    "DialectFacts",
    "RawConnection",
    "Transaction",
    "after_commit",
    "aget_connection",
    "connect",
    "disconnect",
    "get_connection",
    "get_database",
    "in_transaction",
]


class _Cursor:
    """A DB-API cursor that is also a context manager (the stdlib sqlite3 one is not)."""

    def __init__(self, cursor: Any, connection: RawConnection) -> None:
        self._cursor = cursor
        self._connection = connection  # keeps the connection out of the pool while in use

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()


class RawConnection:
    """A DB-API connection handed out by :func:`get_connection`.

    Inside a ``Transaction`` it is that transaction's own driver connection: raw SQL commits
    or rolls back together with model operations. ``commit()`` and ``close()`` do nothing
    there (the ``Transaction`` decides), and ``rollback()`` raises :class:`ConfigurationError`
    (raise an exception out of the block instead).

    Outside one it is a pooled connection switched to autocommit mode, so each statement
    commits at once and holds no locks afterwards (the seed's ``ALTER TABLE ... DISABLE
    TRIGGER ALL`` must not block the batch insert that follows on another connection). It
    goes back to the pool, switched back out of autocommit, on ``close()``, on leaving a
    ``with`` block, or when it is garbage collected, whichever comes first. Session settings
    you change on it (``SET ...``) stay with the pooled connection: undo them yourself.

    Raw SQL uses the driver's own placeholder style (``?`` on SQLite, ``%s`` on PostgreSQL
    and MySQL).
    """

    def __init__(self, dbapi: Any, owner: sa.Connection | None, facts: DialectFacts) -> None:
        self._dbapi = dbapi
        self._owner = owner
        self._finalizer = (
            weakref.finalize(self, release, owner, dbapi, facts) if owner is not None else None
        )

    @property
    def dbapi_connection(self) -> Any:
        """The driver's own connection object."""
        return self._dbapi

    @property
    def in_transaction(self) -> bool:
        """True when this is the connection of an ambient ``Transaction``."""
        return self._owner is None

    def cursor(self, *args: Any, **kwargs: Any) -> _Cursor:
        """A driver cursor usable as ``with conn.cursor() as cursor:`` on every backend."""
        if self.closed:
            raise ConfigurationError("this raw connection was closed (returned to the pool)")
        return _Cursor(self._dbapi.cursor(*args, **kwargs), self)

    def commit(self) -> None:
        """Commit; in autocommit mode and inside a ``Transaction`` there is nothing to do."""
        if self._owner is not None and not self.closed:
            self._dbapi.commit()

    def rollback(self) -> None:
        """Roll back; inside a ``Transaction`` raise an exception out of the block instead."""
        if self._owner is None:
            raise ConfigurationError(
                "this connection belongs to a Transaction: raise an exception out of the "
                "with block to roll back"
            )
        if not self.closed:
            self._dbapi.rollback()

    def close(self) -> None:
        """Return the connection to the pool (does nothing inside a ``Transaction``)."""
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


def get_connection(target: Any = None) -> RawConnection:
    """A DB-API connection for raw SQL (see :class:`RawConnection` for its lifetime).

    ``target`` picks the database like ``Transaction`` does (None, a name, a model class).

    >>> import activerecord
    >>> _ = activerecord.connect("sqlite://")
    >>> with Transaction():
    ...     get_connection().in_transaction
    True
    """
    return RawConnection(*checkout_raw(target))
