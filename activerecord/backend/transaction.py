"""Ambient transactions: ``with Transaction():`` and every operation inside joins it.

The open transaction of each database lives in a :class:`contextvars.ContextVar` and belongs
to the thread (and asyncio task) that opened it: other threads and tasks never join it, even
ones that copied the context (``asyncio.to_thread``, child tasks); they run on their own
connections. A nested ``Transaction`` is a savepoint.

Example::

    >>> import activerecord
    >>> from activerecord.backend.transaction import Transaction, in_transaction
    >>> _ = activerecord.connect("sqlite://")
    >>> with Transaction():
    ...     in_transaction()
    True
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ParamSpec, Protocol, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ..errors import (
    ArgumentTypeError,
    ConfigurationError,
    DatabaseError,
    TransactionConflictError,
)
from ..log import logger
from . import bridge
from .database import DEFAULT, Database, checkout, get_database
from .dialects import normalize_isolation_level
from .errors import is_conflict, is_node_refusal, translate_error

__all__ = [
    "PendingStatement",
    "Transaction",
    "after_commit",
    "checkout",
    "current_connection",
    "holding_open",
    "in_transaction",
    "is_retryable",
    "read_connection",
    "resolve_database",
    "retrying",
    "write_connection",
]

P = ParamSpec("P")
R = TypeVar("R")

#: Upper bound of one retry's sleep, in seconds.
_MAX_BACKOFF = 2.0

#: Why a call cannot use this task's open transaction, by whether that one is async.
_MIXED_FLAVOURS = {
    True: "this task is inside `async with Transaction()` (or an async using()): call the "
    "async methods there (await record.asave(), await query.aall()); a sync call cannot use "
    "its async connection",
    False: "this task is inside a sync `with Transaction()` block: use `async with "
    "Transaction()` for the async methods",
}


def _delay(backoff: float, attempt: int) -> float:
    """The sleep before retry number ``attempt`` (from 1): exponential, with jitter."""
    delay: float = min(backoff * (2 ** (attempt - 1)), _MAX_BACKOFF)
    return delay * (0.5 + random.random())


class PendingStatement(Protocol):
    """A statement left open on a transaction's connection across calls (PostgreSQL's
    ``COPY`` streaming a batch's rows, see :func:`holding_open`): until it is flushed,
    nothing else may run on that connection."""

    def flush(self) -> None:
        """End the statement: on return its rows are written, or it raises why not."""


def _owner() -> tuple[int, object | None]:
    try:
        task: object | None = asyncio.current_task()
    except RuntimeError:  # no running event loop
        task = None
    return threading.get_ident(), task


@dataclass(eq=False)
class _Frame:
    """One open outermost transaction: its connection, savepoint depth and pending hooks."""

    db: Database
    conn: sa.Connection
    isolation_level: str | None
    read_only: bool
    reset: tuple[str, ...]
    owner: tuple[int, object | None] = field(default_factory=_owner)
    #: Galera streaming replication of this transaction (``Transaction(fragment_rows=N)``).
    fragment_rows: int | None = None
    depth: int = 0
    #: [depth, hook]: the depth moves up when the savepoint that registered it is released.
    hooks: list[list[Any]] = field(default_factory=list)
    #: [depth, hook] run when the work of their level rolls back (see ``on_rollback``).
    rollback_hooks: list[list[Any]] = field(default_factory=list)
    #: Set when a savepoint could not be rolled back: the transaction must not commit.
    broken: BaseException | None = None
    #: The caller's own Connection or Session (see ``using``): the caller commits, not us.
    external: bool = False
    #: A statement left open on the connection (a COPY streaming rows), flushed before
    #: anything else the library runs there (see ``holding_open``).
    pending: PendingStatement | None = None
    #: Opened by the async API (``async with``): its connection is an async driver's, usable
    #: only inside the greenlet bridge.
    is_async: bool = field(default_factory=bridge.bridged)

    def owned_here(self) -> bool:
        thread, task = _owner()
        return self.owner[0] == thread and self.owner[1] is task

    def connection(self) -> sa.Connection:
        """The connection, for a statement to run on it: the pending statement, if any, is
        flushed first (while it flushes, it is no longer pending: its own statements run)."""
        pending = self.pending
        if pending is not None:
            self.pending = None
            try:
                pending.flush()
            finally:
                self.pending = pending
        return self.conn


@dataclass(eq=False)
class _Entry:
    """One entered ``Transaction`` block: the outermost one or a savepoint."""

    tx: Transaction
    frame: _Frame
    savepoint: sa.NestedTransaction | None
    depth: int


_frames: ContextVar[dict[str, _Frame] | None] = ContextVar(
    "activerecord_transactions", default=None
)
_entries: ContextVar[tuple[_Entry, ...]] = ContextVar(
    "activerecord_transaction_blocks", default=()
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


def _frame(db: Database, *, io: bool = True) -> _Frame | None:
    """This thread's (and task's) open transaction on ``db``; ``io``: the caller is about to
    use its connection, which must be of the calling API's flavour (sync or async)."""
    frames = _frames.get()
    if not frames:
        return None
    frame = frames.get(db.name)
    if frame is None or not frame.owned_here():
        return None
    if io and frame.is_async is not bridge.bridged():
        raise ConfigurationError(_MIXED_FLAVOURS[frame.is_async])
    return frame


@contextmanager
def holding_open(db: Database, statement: PendingStatement) -> Iterator[bool]:
    """While the block runs, library code reaching the ambient connection (a query in a
    validator, ``get_connection()``, a nested ``Transaction``) first flushes ``statement``,
    which the block leaves open on it (every hand-out of the connection goes through
    ``_Frame.connection``). Yields False when that cannot be promised for every use: no
    transaction of ours; or the caller's own connection (``using``), which the caller may
    also reach without the library (library code reaching it still flushes the statement
    first, so a query of the caller's through the library never waits on it).
    """
    frame = _frame(db)
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
    return _frame(resolve_database(target), io=False) is not None


def current_connection(target: Any = None) -> sa.Connection | None:
    """The SQLAlchemy Connection of the ambient transaction, or None outside one.

    >>> import activerecord
    >>> _ = activerecord.connect("sqlite://")
    >>> current_connection() is None
    True
    """
    frame = _frame(resolve_database(target))
    return None if frame is None else frame.connection()


def after_commit(fn: Callable[[], Any], target: Any = None) -> None:
    """Run ``fn`` once the outermost transaction has committed; drop it on rollback.

    A hook registered inside a savepoint is dropped if that savepoint rolls back. Hooks run
    in registration order, outside the transaction (the connection is back in the pool). If
    one raises, the others still run and the first exception is raised afterwards; the data
    stays committed. Outside a transaction ``fn`` runs at once.

    >>> import activerecord
    >>> _ = activerecord.connect("sqlite://")
    >>> with Transaction():
    ...     after_commit(lambda: print("committed"))
    ...     print("inside")
    inside
    committed
    """
    frame = _frame(resolve_database(target), io=False)
    if frame is None:
        fn()
    elif frame.external:
        raise ConfigurationError(
            "after_commit is not available inside using(): the caller's connection or "
            "session decides when to commit; register the hook with it instead"
        )
    else:
        frame.hooks.append([frame.depth, fn])


def commit_tracked(db: Database) -> bool:
    """True when the library will see this work commit or roll back (internal): outside any
    transaction, or inside one of ours; False inside ``using()``, whose caller commits."""
    frame = _frame(db)
    return frame is None or not frame.external


def tracks_rollback(db: Database) -> bool:
    """True when :func:`on_rollback` would keep a hook for ``db`` now (internal).

    Writers ask first, so they capture what a restore needs only when it can be used.
    """
    frame = _frame(db)
    return frame is not None and not (frame.external and frame.depth == 0)


def on_rollback(fn: Callable[[], Any], db: Database) -> None:
    """Run ``fn`` if the work done so far at the current level is rolled back (internal).

    The library's writers register here the closures that put records back (Rails'
    ``rolledback!``). Only inside a ``Transaction`` of this thread or task; elsewhere (no
    transaction, or the caller's own unit of work at ``using()``'s level, whose rollback
    the library never sees) nothing is kept. A hook registered in a savepoint runs if that
    savepoint rolls back; once the savepoint is released it belongs to the enclosing level.
    The outermost rollback (or a failed commit) runs every hook left; a commit drops them.
    Hooks run newest first, after the database has rolled back; one that raises does not
    stop the others, nor hide the exception that caused the rollback (it is logged).

    >>> import activerecord
    >>> db = activerecord.connect("sqlite://")
    >>> try:
    ...     with Transaction():
    ...         on_rollback(lambda: print("put back"), db)
    ...         raise KeyError("boom")
    ... except KeyError:
    ...     pass
    put back
    """
    frame = _frame(db)
    if frame is not None and not (frame.external and frame.depth == 0):
        frame.rollback_hooks.append([frame.depth, fn])


class Transaction:
    """A transaction (or a savepoint when nested) that every library operation joins.

    ``Transaction()`` uses the default database; ``Transaction(Model)``,
    ``Transaction("name")`` or ``Transaction(database)`` another one. On normal exit it
    commits; on any exception it rolls back and re-raises that same exception.

    ``isolation_level`` ("READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE", ...; SQLite:
    "SERIALIZABLE" or "READ UNCOMMITTED") and ``read_only`` apply to the outermost
    transaction; a nested one may only repeat them.

    ``retries=N`` re-runs the work up to N more times on deadlocks, serialization failures
    and lock timeouts, sleeping ``backoff * 2**attempt`` seconds (with jitter) in between.
    Python cannot re-run a ``with`` block, so retries need the decorator form or
    :meth:`run`; ``with Transaction(retries=N)`` raises :class:`ConfigurationError`.
    Retries happen at the outermost level only: nested, a conflict propagates to the
    outermost retrying transaction.

    ``fragment_rows=N`` (Galera only; elsewhere :class:`ConfigurationError`): the
    transaction replicates in fragments of N rows (streaming replication), so one large
    transaction stays under the cluster's ``wsrep_max_ws_size``. A fragment ends between
    statements, so each statement must fit on its own (a batch's ``batch_size`` bounds its
    statements). ``wsrep_max_ws_rows`` counts the whole transaction: only ``commit_every``
    gets under it.

    >>> import activerecord
    >>> _ = activerecord.connect("sqlite://")
    >>> @Transaction(retries=3)
    ... def work():
    ...     return in_transaction()
    >>> work()
    True

    A rollback puts back the records written inside it (as Rails does): a record inserted
    is new again, without the key, timestamps and server values the insert gave it; an
    updated, deleted, soft-deleted or restored one has its persisted state, snapshot
    (``changed_fields``), lock version, ``updated_at`` and ``deleted_at`` as before the
    write. Values you set yourself stay. A savepoint rolled back puts back only its own
    records. ``batch_insert`` and ``batch_upsert`` put back records given as a list, and
    those of an iterator or generator that the caller still holds (the call keeps weak
    references only); inside ``using()`` only records written in a nested ``Transaction``
    that rolls back are put back.

    >>> from activerecord import ActiveRecord
    >>> class Memo(ActiveRecord):
    ...     __table_name__ = "doc_tx_memos"
    ...     id: int | None = None
    ...     text: str
    >>> Memo.create_table()
    >>> memo = Memo(text="hi")
    >>> try:
    ...     with Transaction():
    ...         _ = memo.save()
    ...         raise RuntimeError("changed my mind")
    ... except RuntimeError:
    ...     pass
    >>> memo.id, memo.is_new_record
    (None, True)
    >>> memo.save(), memo.id
    (True, 1)
    """

    def __init__(
        self,
        target: Any = None,
        *,
        isolation_level: str | None = None,
        read_only: bool = False,
        retries: int = 0,
        backoff: float = 0.05,
        fragment_rows: int | None = None,
    ) -> None:
        if inspect.isfunction(target) or inspect.ismethod(target):
            raise ConfigurationError("decorate with @Transaction() (with parentheses)")
        if not isinstance(retries, int):
            raise ArgumentTypeError(f"retries must be an int, got {retries!r}")
        if not isinstance(backoff, (int, float)):
            raise ArgumentTypeError(f"backoff must be a number of seconds, got {backoff!r}")
        if isolation_level is not None and not isinstance(isolation_level, str):
            raise ArgumentTypeError(
                f"isolation_level must be a name such as 'SERIALIZABLE', got {isolation_level!r}"
            )
        if retries < 0:
            raise ConfigurationError(f"retries must be >= 0, got {retries}")
        self._target = target
        self.isolation_level = normalize_isolation_level(isolation_level)
        self.read_only = read_only
        self.retries = retries
        self.backoff = backoff
        self.fragment_rows = fragment_rows

    def __repr__(self) -> str:
        return (
            f"Transaction({self._target!r}, isolation_level={self.isolation_level!r}, "
            f"read_only={self.read_only}, retries={self.retries})"
        )

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> Transaction:
        if self.retries:
            raise ConfigurationError(
                "Transaction(retries=N) cannot re-run a with block; decorate a function with "
                "@Transaction(retries=N) or call Transaction(retries=N).run(fn)"
            )
        db = resolve_database(self._target)
        frame = _frame(db)
        entry = self._begin(db) if frame is None else self._savepoint(frame)
        _entries.set(_entries.get() + (entry,))
        return self

    def _begin(self, db: Database) -> _Entry:
        setup = db.facts.transaction_setup(self.isolation_level, self.read_only)
        streaming: tuple[sa.TextClause, ...] = ()
        reset = setup.reset
        if self.fragment_rows is not None:
            streaming, undo = db.facts.fragment_setup(self.fragment_rows)
            reset = reset + undo
        conn = checkout(db)
        try:
            conn.begin()
            for clause in streaming:  # session settings: before the transaction writes
                conn.execute(clause)
            for statement in setup.begin:
                conn.exec_driver_sql(statement)
        except BaseException as exc:
            _release(conn, reset, failed=True)
            if isinstance(exc, sa_exc.DBAPIError):
                raise translate_error(exc, context="cannot begin a transaction") from exc
            raise
        frame = _Frame(db, conn, self.isolation_level, self.read_only, reset,
                       fragment_rows=self.fragment_rows)
        frames = dict(_frames.get() or {})
        frames[db.name] = frame
        _frames.set(frames)
        return _Entry(self, frame, None, 0)

    def _savepoint(self, frame: _Frame) -> _Entry:
        if self.fragment_rows not in (None, frame.fragment_rows):
            raise ConfigurationError(
                "fragment_rows applies to the outermost Transaction; a nested one cannot "
                f"change it (outer: {frame.fragment_rows})"
            )
        if self.isolation_level not in (None, frame.isolation_level) or (
            self.read_only and not frame.read_only
        ):
            raise ConfigurationError(
                "isolation_level and read_only apply to the outermost Transaction; a nested "
                f"one cannot change them (outer: {frame.isolation_level}, "
                f"read_only={frame.read_only})"
            )
        try:
            savepoint = frame.connection().begin_nested()
        except sa_exc.DBAPIError as exc:
            raise translate_error(exc, context="cannot open a savepoint") from exc
        frame.depth += 1
        return _Entry(self, frame, savepoint, frame.depth)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry = self._pop_entry()
        if entry.savepoint is not None:
            _end_savepoint(entry, exc)
        else:
            _end_transaction(entry.frame, exc, failed=exc_type is not None)

    def _pop_entry(self) -> _Entry:
        entries = _entries.get()
        for i in range(len(entries) - 1, -1, -1):
            if entries[i].tx is self:
                _entries.set(entries[:i] + entries[i + 1 :])
                return entries[i]
        raise ConfigurationError("this Transaction was not entered in this thread or task")

    @property
    def connection(self) -> sa.Connection:
        """The SQLAlchemy Connection this transaction runs on (only inside the block)."""
        for entry in reversed(_entries.get()):
            if entry.tx is self:
                return entry.frame.connection()
        raise ConfigurationError("Transaction.connection is only available inside the block")

    # -- decorator and retries -------------------------------------------------------------
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.arun(functools.partial(fn, *args, **kwargs))

            return cast("Callable[P, R]", awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.run(functools.partial(fn, *args, **kwargs))

        return wrapper

    def run(self, fn: Callable[[], R]) -> R:
        """Call ``fn`` inside a fresh copy of this transaction, retrying conflicts if asked.

        >>> import activerecord
        >>> _ = activerecord.connect("sqlite://")
        >>> Transaction(retries=2).run(lambda: in_transaction())
        True
        """
        db = resolve_database(self._target)
        attempt = 0
        while True:
            outermost = _frame(db) is None
            tx = Transaction(db, isolation_level=self.isolation_level, read_only=self.read_only,
                             fragment_rows=self.fragment_rows)
            try:
                with tx:
                    return fn()
            except Exception as exc:
                if not (outermost and attempt < self.retries and is_retryable(exc)):
                    raise
                attempt += 1
                bridge.sleep(_delay(self.backoff, attempt))

    # -- async: the same transaction for the async API -------------------------------------
    async def __aenter__(self) -> Transaction:
        return await bridge.spawn(self.__enter__)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await bridge.spawn(self.__exit__, exc_type, exc, tb)

    async def arun(self, fn: Callable[[], Awaitable[R]]) -> R:
        """Await ``fn()`` inside a fresh copy of this transaction, retrying conflicts if
        asked (the async twin of :meth:`run`; the backoff sleeps without blocking the loop).

        >>> import asyncio, activerecord
        >>> _ = activerecord.connect("sqlite+aiosqlite://")
        >>> async def work():
        ...     return in_transaction()
        >>> asyncio.run(Transaction(retries=2).arun(work))
        True
        """
        db = resolve_database(self._target)
        attempt = 0
        while True:
            outermost = _frame(db, io=False) is None
            tx = Transaction(db, isolation_level=self.isolation_level, read_only=self.read_only,
                             fragment_rows=self.fragment_rows)
            try:
                async with tx:
                    return await fn()
            except Exception as exc:
                if not (outermost and attempt < self.retries and is_retryable(exc)):
                    raise
                attempt += 1
                await asyncio.sleep(_delay(self.backoff, attempt))


def _end_savepoint(entry: _Entry, exc: BaseException | None) -> None:
    frame, savepoint, depth = entry.frame, entry.savepoint, entry.depth
    assert savepoint is not None
    frame.depth = depth - 1
    if exc is None:
        try:
            savepoint.commit()
        except sa_exc.DBAPIError as err:
            # SQLAlchemy leaves a savepoint whose RELEASE failed attached to the connection:
            # detach it (no SQL is sent for an inactive one), or the enclosing savepoint's
            # rollback warns "nested transaction already deassociated from connection".
            try:
                savepoint.rollback()
            except Exception:  # noqa: BLE001, S110 - the release error is the one to raise
                pass
            # A conflict there (a Galera certification failure lands on any statement) rolled
            # the whole transaction back: the enclosing levels must not commit what is left.
            frame.broken = err
            _drop_hooks(frame, depth)
            # Whether the work is still there is unknown: restore if the enclosing level
            # rolls back (the usual outcome of this error).
            _lift_hooks(frame.rollback_hooks, frame, depth)
            raise translate_error(err, context="cannot release a savepoint") from err
        _lift_hooks(frame.hooks, frame, depth)  # released work belongs to the enclosing level
        _lift_hooks(frame.rollback_hooks, frame, depth)
        return
    _drop_hooks(frame, depth)
    undo = [hook for hook in frame.rollback_hooks if hook[0] >= depth]
    frame.rollback_hooks[:] = [hook for hook in frame.rollback_hooks if hook[0] < depth]
    try:
        if savepoint.is_active:
            savepoint.rollback()
    except Exception as err:  # noqa: BLE001 - the original exception must propagate
        # E.g. MySQL rolls the whole transaction back on a deadlock and forgets its
        # savepoints: the outer transaction must not commit what is left.
        frame.broken = err if not is_retryable(exc) else exc
    _run_rollback_hooks([hook for _depth, hook in undo])


def _lift_hooks(hooks: list[list[Any]], frame: _Frame, depth: int) -> None:
    """A savepoint at ``depth`` was released: its hooks now belong to the enclosing level
    (dropped at ``using()``'s own level, where no rollback is ever seen)."""
    if frame.external and depth == 1:
        hooks[:] = [hook for hook in hooks if hook[0] < depth]
        return
    for hook in hooks:
        if hook[0] >= depth:
            hook[0] = depth - 1


def _drop_hooks(frame: _Frame, depth: int) -> None:
    frame.hooks[:] = [hook for hook in frame.hooks if hook[0] < depth]


def _end_transaction(frame: _Frame, exc: BaseException | None, *, failed: bool) -> None:
    frames = dict(_frames.get() or {})
    if frames.get(frame.db.name) is frame:
        del frames[frame.db.name]
        _frames.set(frames)
    conn = frame.conn
    hooks: list[Callable[[], Any]] = []
    committed = False
    try:
        if not failed and frame.broken is None:
            try:
                conn.commit()
            except sa_exc.DBAPIError as err:
                failed = True
                _rollback_after_failed_commit(conn)
                raise translate_error(err, context="commit failed") from err
            committed = True
            hooks = [hook for _depth, hook in frame.hooks]
        else:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - the original exception matters more
                _invalidate(conn)
            if not failed and frame.broken is not None:
                failed = True
                kind = TransactionConflictError if is_retryable(frame.broken) else DatabaseError
                raise kind(
                    "cannot commit: a savepoint could not be rolled back, so the database "
                    f"rolled the transaction back ({frame.broken})"
                ) from frame.broken
    finally:
        try:
            _release(conn, frame.reset, failed=failed)
        finally:
            if not committed:  # rolled back, or a commit that failed
                _run_rollback_hooks([hook for _depth, hook in frame.rollback_hooks])
            frame.rollback_hooks.clear()
    _run_hooks(hooks)


def _run_rollback_hooks(hooks: list[Callable[[], Any]]) -> None:
    """Run ``on_rollback`` hooks newest first; log (never raise) their errors, so the
    exception that caused the rollback is the one that propagates."""
    for hook in reversed(hooks):
        try:
            hook()
        except Exception:
            logger.exception("an on_rollback hook failed: %r", hook)


def _run_hooks(hooks: list[Callable[[], Any]]) -> None:
    first: Exception | None = None
    for hook in hooks:
        try:
            hook()
        except Exception as err:  # noqa: BLE001 - run every hook, raise the first error
            if first is None:
                first = err
    if first is not None:
        raise first


def _rollback_after_failed_commit(conn: sa.Connection) -> None:
    """End the transaction a refused COMMIT left open, so the pool gets a clean connection.

    SQLite keeps the transaction (and its write lock) open when COMMIT fails on a deferred
    constraint, while SQLAlchemy counts the transaction as ended and tells the pool there is
    nothing to roll back. A connection that cannot even roll back is thrown away.
    """
    if conn.invalidated:
        return
    try:
        conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - the commit's error is the one to report
        _invalidate(conn)


def _invalidate(conn: sa.Connection) -> None:
    try:
        conn.invalidate()
    except Exception:  # noqa: BLE001, S110 - best effort on a connection already broken
        pass


def _release(conn: sa.Connection, reset: tuple[str, ...], *, failed: bool) -> None:
    """Undo connection-wide settings, then give the connection back to the pool."""
    try:
        if reset and not conn.invalidated:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                for statement in reset:
                    cursor.execute(statement)
            finally:
                cursor.close()
    except Exception:  # noqa: BLE001 - never pool a connection we could not reset
        _invalidate(conn)
    try:
        conn.close()
    except Exception:
        if not failed:
            raise


def is_retryable(exc: BaseException) -> bool:
    """True for deadlocks, serialization failures, lock timeouts and SQLite's busy error.

    Recognises the library's :class:`TransactionConflictError`, SQLAlchemy-wrapped driver
    errors, the drivers' own exceptions (from raw cursors), and errors raised ``from`` one.

    >>> import sqlite3
    >>> is_retryable(sqlite3.OperationalError("database is locked"))
    True
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TransactionConflictError):
            return True
        if isinstance(current, sa_exc.DBAPIError):
            if isinstance(translate_error(current), TransactionConflictError):
                return True
        elif is_conflict(current):
            return True
        current = current.__cause__
    return False


def _refused_by_node(exc: BaseException) -> bool:
    """A Galera node's "not primary" refusal (1047) anywhere in the chain: nothing of the
    transaction was committed, and the next connection goes to a node that can serve."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if is_node_refusal(current) or is_node_refusal(getattr(current, "orig", None)):
            return True
        current = current.__cause__
    return False


def retrying(db: Database, fn: Callable[[], R], *, replayable: bool = True) -> R:
    """Run one library operation; with ``connect(..., retries=N)`` re-run it whole on a
    conflict, when it runs in its own transaction and ``replayable`` (its input can be gone
    over again). Records are put back between attempts by the transaction's rollback.

    >>> import activerecord
    >>> db = activerecord.connect("sqlite://", retries=2)
    >>> retrying(db, lambda: in_transaction())
    True
    """
    if not db.retries or not replayable or _frame(db) is not None:
        return fn()
    attempt = 0
    while True:
        try:
            with Transaction(db):
                return fn()
        except Exception as exc:
            if attempt >= db.retries or not (is_retryable(exc) or _refused_by_node(exc)):
                raise
            attempt += 1
            bridge.sleep(_delay(0.05, attempt))


@contextmanager
def read_connection(db: Database) -> Iterator[sa.Connection]:
    """A connection for reads: the ambient transaction's, or a pooled one returned after."""
    frame = _frame(db)
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
    frame = _frame(db)
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
