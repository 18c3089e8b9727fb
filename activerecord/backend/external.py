"""Join a unit of work the caller already holds: a SQLAlchemy ``Connection`` or ORM ``Session``.

Inside ``with using(conn_or_session):`` every operation of models bound to the database runs on
that connection, in the caller's transaction: it commits or rolls back when the caller does.
Nested ``Transaction()`` blocks become savepoints on it.

Example::

    >>> import sqlalchemy as sa
    >>> import activerecord
    >>> from activerecord.backend.transaction import current_connection
    >>> db = activerecord.connect("sqlite://")
    >>> with db.engine.connect() as conn:
    ...     with using(conn):
    ...         current_connection() is conn
    True
"""

from __future__ import annotations

from contextvars import Token
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import orm

from ..errors import ConfigurationError
from . import bridge, sa_asyncio
from .database import Database
from .errors import translate_error
from .transaction.frames import Frame, frame_of, frames_var, resolve_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["using"]


def using(unit_of_work: Any, target: Any = None) -> _Using:
    """Run the block's model operations on the caller's Connection or Session.

    ``target`` names the database (default: the default one). With a Session, pending ORM
    changes are flushed first so both see the same rows; the Session's connection for that
    database is used. The caller commits or rolls back; ``after_commit`` is not available here.
    ``with using(conn_or_session) as conn`` yields the SQLAlchemy Connection in use.

    ``async with using(async_session_or_async_connection):`` does the same for the async
    API (an ``AsyncSession`` or ``AsyncConnection``): the block's a-methods run in the
    caller's transaction, and yield its ``AsyncConnection``.

    >>> import asyncio, activerecord
    >>> from sqlalchemy.ext.asyncio import create_async_engine
    >>> engine = create_async_engine("sqlite+aiosqlite://")
    >>> _ = activerecord.connect(engine)
    >>> async def main():
    ...     async with engine.connect() as conn:
    ...         async with using(conn) as joined:
    ...             same = joined is conn
    ...     await engine.dispose()  # your engine: you dispose of it
    ...     return same
    >>> asyncio.run(main())
    True
    """
    return _Using(unit_of_work, target)


class _Using:
    """The context manager :func:`using` returns (``with`` and ``async with``)."""

    def __init__(self, unit_of_work: Any, target: Any) -> None:
        self._unit = unit_of_work
        self._target = target
        self._token: Token[dict[str, Frame] | None] | None = None

    def __enter__(self) -> sa.Connection:
        db = resolve_database(self._target)
        unit_of_work = self._unit
        if isinstance(unit_of_work, orm.Session):
            unit_of_work.flush()
            conn = unit_of_work.connection(bind_arguments={"bind": db.engine})
        elif isinstance(unit_of_work, sa.Connection):
            conn = unit_of_work
        else:
            raise ConfigurationError(
                "using() takes a SQLAlchemy Connection or Session (async with: an "
                f"AsyncConnection or AsyncSession), not {type(unit_of_work).__name__}"
            )
        self._join(db, conn)
        return conn

    def _join(self, db: Database, conn: sa.Connection) -> None:
        if frame_of(db, io=False) is not None:
            raise ConfigurationError(
                f"database {db.name!r} already has a transaction in this thread; using() must "
                "be the outermost unit of work"
            )
        try:
            db.facts.join_caller_transaction(conn.connection.dbapi_connection)
        except sa.exc.DBAPIError as exc:
            raise translate_error(exc, context="cannot join the caller's transaction") from exc
        frames = dict(frames_var.get() or {})
        frames[db.name] = Frame(db, conn, None, False, (), external=True)
        self._token = frames_var.set(frames)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            token, self._token = self._token, None
            frames_var.reset(token)

    async def __aenter__(self) -> AsyncConnection:
        db = resolve_database(self._target)
        unit_of_work = self._unit
        conn: AsyncConnection
        if sa_asyncio.is_instance(unit_of_work, "AsyncSession"):
            await unit_of_work.flush()
            bind = {"bind": db.async_engine.sync_engine}
            conn = await unit_of_work.connection(bind_arguments=bind)
        elif sa_asyncio.is_instance(unit_of_work, "AsyncConnection"):
            conn = unit_of_work
        else:
            raise ConfigurationError(
                "async with using() takes an AsyncConnection or AsyncSession (with: a "
                f"Connection or Session), not {type(unit_of_work).__name__}"
            )
        await bridge.spawn(self._join, db, conn.sync_connection)
        return conn

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)
