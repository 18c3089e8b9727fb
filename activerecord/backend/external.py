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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from ..errors import ConfigurationError
from .errors import translate_error
from .transaction import _Frame, _frame, _frames, resolve_database

__all__ = ["using"]


@contextmanager
def using(unit_of_work: sa.Connection | orm.Session, target: Any = None) -> Iterator[sa.Connection]:
    """Run the block's model operations on the caller's Connection or Session.

    ``target`` names the database (default: the default one). With a Session, pending ORM
    changes are flushed first so both see the same rows; the Session's connection for that
    database is used. The caller commits or rolls back; ``after_commit`` is not available here.
    Yields the SQLAlchemy Connection in use.
    """
    db = resolve_database(target)
    if _frame(db) is not None:
        raise ConfigurationError(
            f"database {db.name!r} already has a transaction in this thread; using() must be "
            "the outermost unit of work"
        )
    if isinstance(unit_of_work, orm.Session):
        unit_of_work.flush()
        conn = unit_of_work.connection(bind_arguments={"bind": db.engine})
    elif isinstance(unit_of_work, sa.Connection):
        conn = unit_of_work
    else:
        raise ConfigurationError(
            f"using() takes a SQLAlchemy Connection or Session, not {type(unit_of_work).__name__}"
        )
    try:
        db.facts.join_caller_transaction(conn.connection.dbapi_connection)
    except sa.exc.DBAPIError as exc:
        raise translate_error(exc, context="cannot join the caller's transaction") from exc
    frames = dict(_frames.get() or {})
    frames[db.name] = _Frame(db, conn, None, False, (), external=True)
    token = _frames.set(frames)
    try:
        yield conn
    finally:
        _frames.reset(token)
