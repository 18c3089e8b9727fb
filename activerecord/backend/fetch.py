"""A result's rows column by column, read the fastest way the dialect has.

PyMySQL parses each row in Python; its unbuffered (server-side cursor) result read column by
column (:meth:`~activerecord.backend.dialects.DialectFacts.read_streamed`,
:mod:`activerecord.backend.pymysql_rows`) is several times faster. :func:`stream_results`
says whether a statement should ask for a server-side cursor for that; :func:`fetch_columns`
reads such a result that way, and any other through its fetch strategy.

Example::

    >>> import sqlalchemy as sa
    >>> engine = sa.create_engine("sqlite://")
    >>> with engine.connect() as conn:
    ...     result = conn.exec_driver_sql("SELECT 1, 'a' UNION ALL SELECT 2, 'b'")
    ...     fetch_columns(result, 2, None)
    ([(1, 2), ('a', 'b')], True)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from .dialects import facts_class

__all__ = ["fetch_columns", "stream_results"]


def stream_results(conn: sa.Connection) -> bool:
    """Whether a result on ``conn`` reads faster from a server-side cursor."""
    return conn.dialect.driver in facts_class(conn.dialect).streamed_read_drivers


def fetch_columns(
    result: sa.CursorResult[Any], ncols: int, limit: int | None
) -> tuple[list[Sequence[Any]], bool]:
    """Up to ``limit`` (None: all) more rows of ``result`` as ``ncols`` columns of driver
    values, and whether the result has ended: read by the dialect's ``read_streamed`` where
    it has a faster way (a server-side cursor's rows column by column), else through the
    result's fetch strategy (its buffer, and driver errors wrapped as SQLAlchemy's), without
    a ``Row`` for each."""
    strategy, cursor = result.cursor_strategy, result.cursor
    # SQLAlchemy reads one row ahead on a server-side cursor: those rows come first.
    ahead: Any = getattr(strategy, "_rowbuffer", None)
    if isinstance(ahead, deque) and (limit is None or len(ahead) <= limit):
        try:
            read = facts_class(result.dialect).read_streamed(
                cursor, None if limit is None else limit - len(ahead)
            )
        except BaseException as exc:  # noqa: BLE001 - raised again, wrapped as SQLAlchemy's
            strategy.handle_exception(result, cursor, exc)
        if read is not None:
            columns: list[Sequence[Any]] = list(read[0])
            if ahead:
                columns = [[*before, *after] for before, after in zip(zip(*ahead), columns)]
                ahead.clear()
            return (columns or [[] for _ in range(ncols)]), read[1]
    if limit is None:
        rows = strategy.fetchall(result, cursor)
    else:
        rows = strategy.fetchmany(result, cursor, limit)
    ended = limit is None or len(rows) < limit  # then the strategy has closed the cursor
    return (list(zip(*rows)) if rows else [[] for _ in range(ncols)]), ended
