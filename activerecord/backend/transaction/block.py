"""The ``Transaction`` object: a transaction, or a savepoint when nested, that every library
operation joins; a context manager (sync and async), a decorator, and ``run``/``arun`` for
retries.

The block only keeps its settings and finds its entry again on exit; opening and ending live
in :mod:`.lifecycle`, the ambient state in :mod:`.frames`, the retry loop in :mod:`.retry`.

Example::

    >>> import activerecord
    >>> from activerecord.backend.transaction import in_transaction
    >>> _ = activerecord.connect("sqlite://")
    >>> with Transaction() as tx:
    ...     tx.connection.in_transaction(), in_transaction()
    (True, True)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

import sqlalchemy as sa

from ...errors import ArgumentTypeError, ConfigurationError
from .. import bridge
from ..database import Database
from ..dialects import normalize_isolation_level
from .frames import Entry, entries_var, frame_of, resolve_database
from .lifecycle import begin, end_savepoint, end_transaction, open_savepoint
from .retry import aretry_loop, is_retryable, retry_loop

__all__ = ["Transaction"]

P = ParamSpec("P")
R = TypeVar("R")


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
    >>> from activerecord.backend.transaction import in_transaction
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
        frame = frame_of(db)
        level, read_only, fragment_rows = self.isolation_level, self.read_only, self.fragment_rows
        if frame is None:
            frame = begin(db, isolation_level=level, read_only=read_only,
                          fragment_rows=fragment_rows)
            entry = Entry(self, frame, None, 0)
        else:
            savepoint = open_savepoint(frame, isolation_level=level, read_only=read_only,
                                       fragment_rows=fragment_rows)
            entry = Entry(self, frame, savepoint, frame.depth)
        entries_var.set(entries_var.get() + (entry,))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry = self._pop_entry()
        if entry.savepoint is not None:
            end_savepoint(entry, exc)
        else:
            end_transaction(entry.frame, exc, failed=exc_type is not None)

    def _pop_entry(self) -> Entry:
        entered = entries_var.get()
        for i in range(len(entered) - 1, -1, -1):
            if entered[i].tx is self:
                entries_var.set(entered[:i] + entered[i + 1 :])
                return entered[i]
        raise ConfigurationError("this Transaction was not entered in this thread or task")

    @property
    def connection(self) -> sa.Connection:
        """The SQLAlchemy Connection this transaction runs on (only inside the block)."""
        for entry in reversed(entries_var.get()):
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

    def _fresh(self, db: Database) -> Transaction:
        """A copy of this transaction to enter once (``run`` enters one per attempt)."""
        return Transaction(db, isolation_level=self.isolation_level, read_only=self.read_only,
                           fragment_rows=self.fragment_rows)

    def run(self, fn: Callable[[], R]) -> R:
        """Call ``fn`` inside a fresh copy of this transaction, retrying conflicts if asked.

        >>> import activerecord
        >>> from activerecord.backend.transaction import in_transaction
        >>> _ = activerecord.connect("sqlite://")
        >>> Transaction(retries=2).run(lambda: in_transaction())
        True
        """
        db = resolve_database(self._target)
        # Nested, a conflict propagates to the outermost retrying transaction.
        retries = self.retries if frame_of(db) is None else 0

        def attempt() -> R:
            with self._fresh(db):
                return fn()

        return retry_loop(attempt, retries=retries, backoff=self.backoff, retryable=is_retryable)

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
        >>> from activerecord.backend.transaction import in_transaction
        >>> _ = activerecord.connect("sqlite+aiosqlite://")
        >>> async def work():
        ...     return in_transaction()
        >>> asyncio.run(Transaction(retries=2).arun(work))
        True
        """
        db = resolve_database(self._target)
        retries = self.retries if frame_of(db, io=False) is None else 0

        async def attempt() -> R:
            async with self._fresh(db):
                return await fn()

        return await aretry_loop(
            attempt, retries=retries, backoff=self.backoff, retryable=is_retryable
        )
