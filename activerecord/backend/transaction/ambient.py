"""How library code joins the ambient transaction: the connection for a read or a write, a
whole operation retried in its own transaction, and a statement held open on the connection.

Every function here asks :func:`.frames.frame_of` first: inside a ``Transaction`` of this
thread or task the work runs on its connection; outside, on a pooled one.

Example::

    >>> import activerecord
    >>> from activerecord.backend.transaction import Transaction
    >>> db = activerecord.connect("sqlite://")
    >>> with write_connection(db) as conn:
    ...     in_transaction(), conn.in_transaction()
    (True, True)
    >>> with Transaction() as tx, read_connection(db) as conn:
    ...     conn is tx.connection
    True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ..database import Database, checkout
from ..errors import translate_error
from .block import Transaction
from .frames import PendingStatement, frame_of, resolve_database
from .retry import is_retryable, refused_by_node, retry_loop

__all__ = [
    "current_connection",
    "holding_open",
    "in_transaction",
    "read_connection",
    "retrying",
    "wrap_db_errors",
    "write_connection",
]

P = ParamSpec("P")
R = TypeVar("R")

#: The backoff of an operation retried by ``connect(..., retries=N)``, in seconds.
_OPERATION_BACKOFF = 0.05


@contextmanager
def holding_open(db: Database, statement: PendingStatement) -> Iterator[bool]:
    """While the block runs, library code reaching the ambient connection (a query in a
    validator, ``get_connection()``, a nested ``Transaction``) first flushes ``statement``,
    which the block leaves open on it (every hand-out of the connection goes through
    ``Frame.connection``). Yields False when that cannot be promised for every use: no
    transaction of ours; or the caller's own connection (``using``), which the caller may
    also reach without the library (library code reaching it still flushes the statement
    first, so a query of the caller's through the library never waits on it).
    """
    frame = frame_of(db)
    if frame is None:
        yield False
        return
    previous, frame.pending = frame.pending, statement
    try:
        yield not frame.external
    finally:
        frame.pending = previous


def in_transaction(target: Any = None) -> bool:
    """True inside a ``Transaction`` on the given database (default: the default one).

    >>> import activerecord
    >>> _ = activerecord.connect("sqlite://")
    >>> in_transaction()
    False
    """
    return frame_of(resolve_database(target), io=False) is not None


def current_connection(target: Any = None) -> sa.Connection | None:
    """The SQLAlchemy Connection of the ambient transaction, or None outside one.

    >>> import activerecord
    >>> _ = activerecord.connect("sqlite://")
    >>> current_connection() is None
    True
    """
    frame = frame_of(resolve_database(target))
    return None if frame is None else frame.connection()


def retrying(db: Database, fn: Callable[[], R], *, replayable: bool = True) -> R:
    """Run one library operation; with ``connect(..., retries=N)`` re-run it whole on a
    conflict, when it runs in its own transaction and ``replayable`` (its input can be gone
    over again). Records are put back between attempts by the transaction's rollback.

    >>> import activerecord
    >>> db = activerecord.connect("sqlite://", retries=2)
    >>> retrying(db, lambda: in_transaction())
    True
    """
    if not db.retries or not replayable or frame_of(db) is not None:
        return fn()

    def attempt() -> R:
        with Transaction(db):
            return fn()

    return retry_loop(
        attempt, retries=db.retries, backoff=_OPERATION_BACKOFF, retryable=_operation_retryable
    )


def _operation_retryable(exc: BaseException) -> bool:
    return is_retryable(exc) or refused_by_node(exc)


@contextmanager
def read_connection(db: Database) -> Iterator[sa.Connection]:
    """A connection for reads: the ambient transaction's, or a pooled one returned after."""
    frame = frame_of(db)
    if frame is not None:
        yield frame.connection()
        return
    with checkout(db) as conn:
        yield conn


@contextmanager
def write_connection(db: Database, *, statements: int = 1) -> Iterator[sa.Connection]:
    """A connection whose work commits as one unit.

    Inside an ambient transaction: its connection, with a savepoint when the work is more
    than one statement (so a failed batch leaves the outer transaction as it was).
    Outside: a new transaction committed on success.
    """
    frame = frame_of(db)
    if frame is not None and statements <= 1:
        yield frame.connection()
        return
    with Transaction(db) as tx:
        yield tx.connection


def wrap_db_errors(context: str = "") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: turn SQLAlchemy driver errors into the library's error tree."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except sa_exc.DBAPIError as exc:
                raise translate_error(exc, context=context) from exc

        return wrapper

    return decorate
