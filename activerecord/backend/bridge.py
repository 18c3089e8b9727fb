"""The greenlet bridge: the sync library code, run for the async API on an async driver.

``await Model.afind(1)`` runs the very code of ``Model.find(1)`` in a greenlet
(SQLAlchemy's ``greenlet_spawn``, the mechanism of ``AsyncConnection.run_sync``): every
DB-API call there is a sync-looking call of SQLAlchemy's adapted async driver, which hands
its awaitable to the event loop and resumes when it is done. So there is one planner, one
set of strategies and statements; only the connection differs. While ``bridged()`` is true
the library checks connections out of the database's async engine.

The greenlet shares the calling task's ``contextvars`` context: an ambient ``Transaction``
opened with ``async with`` is seen inside, and belongs to that task alone.

Example::

    >>> import asyncio
    >>> asyncio.run(spawn(bridged))
    True
    >>> bridged()
    False
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import util as sa_util
from sqlalchemy.util import concurrency as sa_concurrency

from ..errors import ConfigurationError

__all__ = [
    "await_", "bridged", "chunk_rows", "close_failed_cursors", "copy_cursor", "driver_of",
    "sleep", "spawn", "statement_bytes",
]

T = TypeVar("T")

_HAVE_GREENLET = importlib.util.find_spec("greenlet") is not None

_bridged: ContextVar[bool] = ContextVar("activerecord_bridged", default=False)

#: ``await_only`` is named ``await_`` from SQLAlchemy 2.1 on.
_await: Callable[[Awaitable[Any]], Any] = getattr(sa_util, "await_", None) or sa_util.await_only
#: Whether the running code is in a greenlet that can await (SQLAlchemy's or ours); where a
#: SQLAlchemy release lacks the helper, only the library's own bridge is known to await.
_in_greenlet: Callable[[], bool] = getattr(sa_concurrency, "in_greenlet", None) or _bridged.get

#: Rows a COPY formats between two turns of the event loop (see :class:`SyncCopy`).
_COPY_ROWS_PER_TURN = 2000

#: Most rows of one batch chunk in an async call: a chunk is validated in one go, and the
#: event loop waits meanwhile (5,000 rows: about 20 ms here). A streaming COPY stays open
#: across chunks, so smaller chunks cost it little.
_BRIDGED_CHUNK_ROWS = 5000


def bridged() -> bool:
    """True while sync library code runs for an async call (inside :func:`spawn`)."""
    return _bridged.get()


async def spawn(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the sync ``fn`` in a greenlet where async drivers can be awaited."""
    if not _HAVE_GREENLET:
        raise ConfigurationError(
            "the async API needs the greenlet package: pip install 'activerecord[async]'"
        )
    token = _bridged.set(True)
    try:
        result: T = await sa_util.greenlet_spawn(fn, *args, **kwargs)
        return result
    finally:
        _bridged.reset(token)


def await_(awaitable: Awaitable[T]) -> T:
    """Wait for ``awaitable`` from sync code inside :func:`spawn` (the event loop runs)."""
    result: T = _await(awaitable)
    return result


def chunk_rows(rows: int) -> int:
    """A batch chunk's size, capped in async calls so the event loop gets its turns."""
    return min(rows, _BRIDGED_CHUNK_ROWS) if bridged() else rows


#: Largest statement an async call sends in one piece: sending a few MB into the socket
#: holds the event loop as long as the server takes to read them (MySQL's multi-row INSERT).
_BRIDGED_STATEMENT_BYTES = 1_000_000


def statement_bytes(budget: int) -> int:
    """A statement's byte budget, capped in async calls so the event loop gets its turns."""
    return min(budget, _BRIDGED_STATEMENT_BYTES) if bridged() else budget


def sleep(seconds: float) -> None:
    """Sleep without blocking the event loop when bridged (a retry's backoff)."""
    if bridged():
        await_(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


def close_failed_cursors(error: BaseException) -> None:
    """Close the aiosqlite cursors a failed statement left open (the frames of ``error``'s
    traceback hold them).

    SQLAlchemy's aiosqlite adapter opens a driver cursor per statement and closes it only
    when the statement succeeds. Left open, it sits in a reference cycle with the error, and
    the garbage collector finalizes it later, in whatever thread collects: finalizing resets
    its statement, which takes the SQLite connection's mutex. If the pool has meanwhile lent
    that connection to another task whose statement waits for a lock in the connection's
    thread (for up to the busy timeout, 30 s), the collecting thread, the event loop's,
    stops that long holding the GIL: every task of the process stops with it. Closed here,
    in the connection's own thread while the connection is still the failing caller's,
    nothing is left for the collector.

    Anything else (another driver, no aiosqlite loaded, sync code) is left as it is.

    >>> close_failed_cursors(ValueError("not a driver's"))
    """
    aiosqlite = sys.modules.get("aiosqlite")
    if aiosqlite is None or not _in_greenlet():
        return
    seen: set[int] = set()
    errors: list[BaseException | None] = [error]
    while errors:
        current = errors.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        errors += [current.__cause__, getattr(current, "orig", None)]
        tb = current.__traceback__
        while tb is not None:
            for value in tb.tb_frame.f_locals.values():
                if isinstance(value, aiosqlite.Cursor) and id(value) not in seen:
                    seen.add(id(value))
                    try:
                        _await(value.close())
                    except Exception:  # noqa: BLE001 - closed or gone: nothing to release
                        pass
            tb = tb.tb_next


def driver_of(dbapi_connection: Any) -> Any:
    """The driver's own connection behind a pooled DB-API connection: the async driver's
    (psycopg ``AsyncConnection``, aiosqlite, aiomysql) behind SQLAlchemy's adapter, else
    the connection itself."""
    return getattr(dbapi_connection, "driver_connection", dbapi_connection)


def is_adapted(dbapi_connection: Any) -> bool:
    """Whether this DB-API connection is SQLAlchemy's adapter of an async driver."""
    return driver_of(dbapi_connection) is not dbapi_connection


def copy_cursor(dbapi_connection: Any) -> Any:
    """A psycopg cursor with ``copy()`` (and the ``adapters`` a ``Transformer`` reads) on a
    pooled connection: the connection's own cursor, or, behind SQLAlchemy's async adapter,
    the driver's ``AsyncCursor`` (:class:`DriverCursor`). SQLAlchemy 2.0's adapted cursor
    passed ``copy`` through to the driver's; 2.1's no longer does."""
    driver = driver_of(dbapi_connection)
    if driver is dbapi_connection:
        return dbapi_connection.cursor()
    return DriverCursor(driver.cursor())


class DriverCursor:
    """An async driver's cursor used from synchronous code: ``copy()`` as the driver gives
    it (:class:`copy_context` enters it), ``close()`` awaited; the rest read through."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def copy(self, sql: str) -> Any:
        return self._cursor.copy(sql)

    def close(self) -> None:
        await_(self._cursor.close())

    def __getattr__(self, name: str) -> Any:  # adapters, connection (a Transformer's)
        return getattr(self._cursor, name)


class SyncCopy:
    """psycopg's ``AsyncCopy`` with the sync ``Copy`` interface the strategies use.

    Rows are formatted as the sync ``Copy`` formats them (so a value the driver refuses
    raises at its own row); full buffers are sent through the event loop, which gets a turn
    every ``_COPY_ROWS_PER_TURN`` rows: a COPY sends without waiting for the server, so
    nothing else would let other tasks run during a long stream.
    """

    def __init__(self, copy: Any) -> None:
        self._copy = copy
        self._format = copy.formatter.write_row
        self._send = copy.writer.write
        self._rows = 0

    def set_types(self, types: Any) -> None:
        self._copy.set_types(types)

    def write_row(self, row: Any) -> None:
        data = self._format(row)
        self._rows += 1
        if data or self._rows >= _COPY_ROWS_PER_TURN:
            self._rows = 0
            await_(self._flush(data))

    async def _flush(self, data: Any) -> None:
        if data:
            await self._send(data)
        await asyncio.sleep(0)


class copy_context:  # noqa: N801 - used like the driver's own ``cursor.copy(sql)``
    """``with copy_context(cursor.copy(sql)) as copy:`` on psycopg's sync or async cursor."""

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        self._async = hasattr(manager, "__aenter__")

    def __enter__(self) -> Any:
        if not self._async:
            return self._manager.__enter__()
        return SyncCopy(await_(self._manager.__aenter__()))

    def __exit__(self, *exc: Any) -> Any:
        if not self._async:
            return self._manager.__exit__(*exc)
        return await_(self._manager.__aexit__(*exc))
