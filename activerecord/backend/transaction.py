"""Ambient transactions: ``with Transaction():`` and every operation inside joins it.

The open transaction of each database lives in a :class:`contextvars.ContextVar`, so two
threads or asyncio tasks never share one by accident. A nested ``Transaction`` is a savepoint.

Example::

    >>> import activerecord
    >>> from activerecord.backend.transaction import Transaction, in_transaction
    >>> _ = activerecord.connect("sqlite://")
    >>> with Transaction():
    ...     in_transaction()
    True
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ..errors import ConfigurationError, TransactionConflictError
from .database import DEFAULT, Database, get_database
from .dialects import translate_error

__all__ = [
    "Transaction",
    "after_commit",
    "current_connection",
    "in_transaction",
    "read_connection",
    "resolve_database",
    "write_connection",
]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class _Frame:
    db: Database
    conn: sa.Connection
    depth: int = 0
    hooks: list[tuple[int, Callable[[], Any]]] = field(default_factory=list)


_frames: ContextVar[dict[str, _Frame] | None] = ContextVar(
    "activerecord_transactions", default=None
)


def resolve_database(target: Any = None) -> Database:
    """A :class:`Database` from ``None`` (default), a name, a ``Database`` or a model class."""
    if target is None:
        return get_database(DEFAULT)
    if isinstance(target, Database):
        return target
    if isinstance(target, str):
        return get_database(target)
    getter = getattr(target, "database", None)
    if callable(getter):
        db = getter()
        if isinstance(db, Database):
            return db
    raise ConfigurationError(f"cannot find a database for {target!r}")


def _frame(db: Database) -> _Frame | None:
    frames = _frames.get()
    return None if frames is None else frames.get(db.name)


def in_transaction(target: Any = None) -> bool:
    """True inside a ``Transaction`` on the given database (default: the default one)."""
    return _frame(resolve_database(target)) is not None


def current_connection(target: Any = None) -> sa.Connection | None:
    """The SQLAlchemy Connection of the ambient transaction, or None outside one."""
    frame = _frame(resolve_database(target))
    return None if frame is None else frame.conn


def after_commit(fn: Callable[[], Any], target: Any = None) -> None:
    """Run ``fn`` once the outermost transaction commits; drop it if its scope rolls back.

    Outside a transaction ``fn`` runs at once.
    """
    frame = _frame(resolve_database(target))
    if frame is None:
        fn()
    else:
        frame.hooks.append((frame.depth, fn))


class Transaction:
    """A transaction (or a savepoint when nested) that library operations join.

    Usable as a context manager or a decorator. On an exception it rolls back and re-raises
    the exception unchanged. As a decorator, ``retries=N`` re-runs the function on deadlocks
    and serialization failures (outermost level only), with exponential backoff.

    >>> import activerecord
    >>> _ = activerecord.connect("sqlite://")
    >>> @Transaction()
    ... def work():
    ...     return in_transaction()
    >>> work()
    True
    """

    def __init__(
        self,
        target: Any = None,
        *,
        isolation_level: str | None = None,
        read_only: bool = False,
        retries: int = 0,
        backoff: float = 0.05,
    ) -> None:
        self._target = target
        self.isolation_level = isolation_level
        self.read_only = read_only
        self.retries = retries
        self.backoff = backoff
        self._stack: list[tuple[Database, Any, Any]] = []

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> Transaction:
        db = resolve_database(self._target)
        frame = _frame(db)
        if frame is None:
            conn = db.engine.connect()
            try:
                if self.isolation_level is not None:
                    conn.execution_options(isolation_level=self.isolation_level)
                conn.begin()
                if self.read_only:
                    _set_read_only(conn)
            except sa_exc.DBAPIError as exc:
                conn.close()
                raise translate_error(exc, context="cannot begin a transaction") from exc
            except BaseException:
                conn.close()
                raise
            frames = dict(_frames.get() or {})
            frames[db.name] = _Frame(db, conn)
            token = _frames.set(frames)
            self._stack.append((db, None, token))
        else:
            if self.isolation_level is not None:
                raise ConfigurationError(
                    "isolation_level can only be set on the outermost Transaction"
                )
            try:
                savepoint = frame.conn.begin_nested()
            except sa_exc.DBAPIError as exc:
                raise translate_error(exc, context="cannot open a savepoint") from exc
            frame.depth += 1
            self._stack.append((db, savepoint, None))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        db, savepoint, token = self._stack.pop()
        frame = _frame(db)
        assert frame is not None
        if savepoint is not None:
            depth = frame.depth
            frame.depth -= 1
            if exc_type is None:
                try:
                    savepoint.commit()
                except sa_exc.DBAPIError as err:
                    raise translate_error(err, context="cannot release a savepoint") from err
            else:
                frame.hooks[:] = [(d, h) for d, h in frame.hooks if d < depth]
                if savepoint.is_active:
                    savepoint.rollback()
            return
        conn = frame.conn
        try:
            if exc_type is None:
                try:
                    conn.commit()
                except sa_exc.DBAPIError as err:
                    raise translate_error(err, context="commit failed") from err
            else:
                try:
                    conn.rollback()
                except sa_exc.DBAPIError:
                    pass  # the original exception matters more than a failed rollback
        finally:
            _frames.reset(token)
            conn.close()
        if exc_type is None:
            for _depth, hook in frame.hooks:
                hook()

    @property
    def connection(self) -> sa.Connection:
        """The SQLAlchemy Connection this transaction runs on (only inside the block)."""
        if not self._stack:
            raise ConfigurationError("Transaction.connection is only available inside the block")
        frame = _frame(self._stack[-1][0])
        assert frame is not None
        return frame.conn

    # -- decorator -------------------------------------------------------------------------
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.run(functools.partial(fn, *args, **kwargs))

        return wrapper

    def run(self, fn: Callable[[], R]) -> R:
        """Call ``fn`` inside a fresh copy of this transaction, retrying conflicts if asked."""
        db = resolve_database(self._target)
        outermost = _frame(db) is None
        attempt = 0
        while True:
            tx = Transaction(
                db,
                isolation_level=self.isolation_level,
                read_only=self.read_only,
            )
            try:
                with tx:
                    return fn()
            except Exception as exc:
                if not (outermost and attempt < self.retries and is_retryable(exc)):
                    raise
                attempt += 1
                delay = self.backoff * (2 ** (attempt - 1))
                time.sleep(delay * (0.5 + random.random()))


def is_retryable(exc: BaseException) -> bool:
    """True for deadlocks, serialization failures, lock timeouts and SQLite's busy error."""
    if isinstance(exc, TransactionConflictError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return isinstance(translate_error(exc), TransactionConflictError)
    cause = exc.__cause__
    return isinstance(cause, BaseException) and cause is not exc and is_retryable(cause)


def _set_read_only(conn: sa.Connection) -> None:
    name = conn.dialect.name
    if name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif name in ("mysql", "mariadb"):
        # MySQL takes SET TRANSACTION only before the transaction starts: restart it.
        conn.rollback()
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.begin()
    else:
        conn.exec_driver_sql("PRAGMA query_only = ON")


@contextmanager
def read_connection(db: Database) -> Iterator[sa.Connection]:
    """A connection for reads: the ambient transaction's, or a pooled one returned after."""
    frame = _frame(db)
    if frame is not None:
        yield frame.conn
        return
    with db.engine.connect() as conn:
        yield conn


@contextmanager
def write_connection(db: Database, *, statements: int = 1) -> Iterator[sa.Connection]:
    """A connection whose work commits as one unit.

    Inside an ambient transaction: its connection, with a savepoint when the work is more
    than one statement (so a failed batch leaves the outer transaction as it was).
    Outside: a new transaction committed on success.
    """
    frame = _frame(db)
    if frame is not None and statements <= 1:
        yield frame.conn
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
