"""The ambient state: one frame per open outermost transaction, kept in a context variable.

A frame belongs to the thread (and asyncio task) that opened it: other threads and tasks
never join it, even ones that copied the context (``asyncio.to_thread``, child tasks). The
entries are the ``Transaction`` blocks entered (the outermost one and its savepoints). A
statement left open on a frame's connection (:class:`PendingStatement`) is flushed before the
frame hands its connection out.

Example::

    >>> import activerecord
    >>> db = activerecord.connect("sqlite://")
    >>> resolve_database() is db, frame_of(db) is None
    (True, True)
"""

from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from ...errors import ConfigurationError
from .. import bridge
from ..database import DEFAULT, Database, get_database

if TYPE_CHECKING:
    from .block import Transaction

__all__ = [
    "Entry",
    "Frame",
    "PendingStatement",
    "entries_var",
    "frame_of",
    "frames_var",
    "resolve_database",
]

#: Why a call cannot use this task's open transaction, by whether that one is async.
_MIXED_FLAVOURS = {
    True: "this task is inside `async with Transaction()` (or an async using()): call the "
    "async methods there (await record.asave(), await query.aall()); a sync call cannot use "
    "its async connection",
    False: "this task is inside a sync `with Transaction()` block: use `async with "
    "Transaction()` for the async methods",
}


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
class Frame:
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
    #: The library's own writes in it mark their records persisted only once it commits,
    #: and a rollback puts them back as a failed call does (see ``hold_marks``).
    marks_held: bool = False
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
class Entry:
    """One entered ``Transaction`` block: the outermost one or a savepoint."""

    tx: Transaction
    frame: Frame
    savepoint: sa.NestedTransaction | None
    depth: int


#: The open outermost transactions, by database name.
frames_var: ContextVar[dict[str, Frame] | None] = ContextVar(
    "activerecord_transactions", default=None
)
#: The ``Transaction`` blocks entered, innermost last.
entries_var: ContextVar[tuple[Entry, ...]] = ContextVar(
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


def frame_of(db: Database, *, io: bool = True) -> Frame | None:
    """This thread's (and task's) open transaction on ``db``; ``io``: the caller is about to
    use its connection, which must be of the calling API's flavour (sync or async)."""
    open_frames = frames_var.get()
    if not open_frames:
        return None
    frame = open_frames.get(db.name)
    if frame is None or not frame.owned_here():
        return None
    if io and frame.is_async is not bridge.bridged():
        raise ConfigurationError(_MIXED_FLAVOURS[frame.is_async])
    return frame
