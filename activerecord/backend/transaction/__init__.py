"""Ambient transactions: ``with Transaction():`` and every operation inside joins it.

The open transaction of each database lives in a :class:`contextvars.ContextVar` and belongs
to the thread (and asyncio task) that opened it: other threads and tasks never join it, even
ones that copied the context (``asyncio.to_thread``, child tasks); they run on their own
connections. A nested ``Transaction`` is a savepoint.

This package is the seed's import path; its modules hold one idea each, lowest first:
``frames`` (the ambient state: frames, entered blocks, the pending-statement protocol),
``retry`` (which errors to retry, the backoff and the loop), ``hooks`` (``after_commit``,
``on_rollback``), ``lifecycle`` (begin, savepoints, commit or rollback, the connection back
to the pool), ``block`` (the ``Transaction`` object, sync and async) and ``ambient`` (the
connections library code reads and writes on, ``retrying``, ``holding_open``).

Example::

    >>> import activerecord
    >>> from activerecord.backend.transaction import Transaction, in_transaction
    >>> _ = activerecord.connect("sqlite://")
    >>> with Transaction():
    ...     in_transaction()
    True
"""

from __future__ import annotations

from ..database import checkout
from .ambient import (
    current_connection,
    holding_open,
    in_transaction,
    read_connection,
    retrying,
    wrap_db_errors,
    write_connection,
)
from .block import Transaction
from .frames import PendingStatement, resolve_database
from .hooks import (
    after_commit,
    commit_tracked,
    hold_marks,
    marks_held,
    on_rollback,
    tracks_rollback,
)
from .retry import is_retryable

__all__ = [
    "PendingStatement",
    "Transaction",
    "after_commit",
    "checkout",
    "commit_tracked",
    "current_connection",
    "hold_marks",
    "holding_open",
    "in_transaction",
    "is_retryable",
    "marks_held",
    "on_rollback",
    "read_connection",
    "resolve_database",
    "retrying",
    "tracks_rollback",
    "wrap_db_errors",
    "write_connection",
]
