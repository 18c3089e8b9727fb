"""Retries: which errors are worth running the work again for, and the backoff between tries.

Deadlocks, serialization failures, lock timeouts and SQLite's busy error roll the work back
whole on the server, so running it again whole is safe; a Galera node out of the primary
component refuses before anything commits. The loops here only re-run: the caller makes each
attempt a fresh transaction.

Example::

    >>> attempts = []
    >>> def work():
    ...     attempts.append(1)
    ...     if len(attempts) < 3:
    ...         raise TransactionConflictError("deadlock")
    ...     return len(attempts)
    >>> retry_loop(work, retries=2, backoff=0.0, retryable=is_retryable)
    3
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from ...errors import TransactionConflictError
from .. import bridge
from ..errors import is_conflict, is_node_refusal, translate_error

__all__ = ["aretry_loop", "delay", "is_retryable", "refused_by_node", "retry_loop"]

R = TypeVar("R")

#: Upper bound of one retry's sleep, in seconds.
_MAX_BACKOFF = 2.0


def delay(backoff: float, attempt: int) -> float:
    """The sleep before retry number ``attempt`` (from 1): exponential, with jitter."""
    seconds: float = min(backoff * (2 ** (attempt - 1)), _MAX_BACKOFF)
    return seconds * (0.5 + random.random())


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


def refused_by_node(exc: BaseException) -> bool:
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


def retry_loop(
    attempt_once: Callable[[], R],
    *,
    retries: int,
    backoff: float,
    retryable: Callable[[BaseException], bool],
) -> R:
    """Call ``attempt_once`` until it returns, at most ``retries`` more times after an error
    ``retryable`` accepts, sleeping :func:`delay` in between (without blocking the event
    loop when the async API runs it, see :func:`bridge.sleep`)."""
    attempt = 0
    while True:
        try:
            return attempt_once()
        except Exception as exc:
            if attempt >= retries or not retryable(exc):
                raise
            attempt += 1
            bridge.sleep(delay(backoff, attempt))


async def aretry_loop(
    attempt_once: Callable[[], Awaitable[R]],
    *,
    retries: int,
    backoff: float,
    retryable: Callable[[BaseException], bool],
) -> R:
    """The async twin of :func:`retry_loop`: awaits each attempt and each sleep."""
    attempt = 0
    while True:
        try:
            return await attempt_once()
        except Exception as exc:
            if attempt >= retries or not retryable(exc):
                raise
            attempt += 1
            await asyncio.sleep(delay(backoff, attempt))
