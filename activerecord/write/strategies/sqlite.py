"""SQLite: one driver ``executemany`` (its C loop) plus a proven rowid range.

While we hold the write lock a new rowid is always above every rowid before it; so if the
first row's id is the table's max rowid and the last row's id is first + n - 1, the n rows
got exactly that range (no triggers on the table, checked; else one row at a time with
``lastrowid``).

Example::

    >>> SqliteRowidStrategy.name, SqliteRowidStrategy.positional_params
    ('sqlite_rowid', True)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...backend.bridge import driver_of
from ...backend.dialects import SQLiteFacts
from ...insert.locate import ValueRefused, WriteFailed
from ...insert.shape import InsertShape
from .base import Data, InsertStrategy

if TYPE_CHECKING:
    from ...backend.dialects import DialectFacts
    from ...model.info import ModelInfo

__all__ = ["SqliteRowidStrategy"]


class SqliteRowidStrategy(InsertStrategy):
    """Driver executemany plus a proven rowid range (see the module docs)."""

    name = "sqlite_rowid"
    positional_params = True

    def __init__(self, conn: sa.Connection, info: ModelInfo, facts: DialectFacts) -> None:
        super().__init__(conn, info, facts)
        self._range_ok: bool | None = None

    def _range_is_provable(self) -> bool:
        if self._range_ok is None:
            table = self.info.table
            triggers = self.conn.execute(
                sa.text(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
                ),
                {"t": table.name},
            ).scalar_one()
            self._range_ok = triggers == 0
        return self._range_ok

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        rows = shape.rows(data)
        if not rows:
            return [] if fetch_key else None
        cursor = self.cursor
        if not fetch_key:
            self._executemany(shape, rows, 0)
            return None
        # Write first, read after: a read before the first write in a deferred transaction
        # would hold a shared lock that deadlocks against a concurrent writer.
        try:
            cursor.execute(shape.sql, rows[0])
        except Exception as exc:
            raise self._failed_at(exc, 0, shape, rows[0]) from exc
        first = int(cursor.lastrowid)
        n = len(rows)
        pk = self.info.columns[self.info.autoincrement_pk or ""]
        if n == 1:
            return [first]
        top = self.conn.execute(sa.select(sa.func.max(pk))).scalar_one()
        if (
            not self._range_is_provable()
            or top != first
            or first + n - 1 >= SQLiteFacts.max_rowid
        ):
            return [first, *self._one_by_one(shape, rows[1:], 1)]
        self._executemany(shape, rows[1:], 1)
        last = self.conn.execute(sa.select(sa.func.last_insert_rowid())).scalar_one()
        if last != first + n - 1:  # cannot happen while we hold the write lock
            raise RuntimeError(f"rowids {first}..{last} are not the {n} rows just written")
        return range(first, first + n)

    def _executemany(self, shape: InsertShape, rows: list[tuple[Any, ...]], base: int) -> None:
        raw = driver_of(self.conn.connection.dbapi_connection)  # aiosqlite: the driver's
        before = raw.total_changes
        try:
            self.cursor.executemany(shape.sql, rows)
        except Exception as exc:
            done = raw.total_changes - before
            at = rows[done] if done < len(rows) else None
            raise self._failed_at(exc, base + done, shape, at) from exc

    def _one_by_one(self, shape: InsertShape, rows: list[tuple[Any, ...]], base: int) -> list[Any]:
        keys = []
        cursor = self.cursor
        for n, row in enumerate(rows):
            try:
                cursor.execute(shape.sql, row)
            except Exception as exc:
                raise self._failed_at(exc, base + n, shape, row) from exc
            keys.append(cursor.lastrowid)
        return keys

    def _failed_at(
        self, exc: Exception, row: int, shape: InsertShape, values: Sequence[Any] | None
    ) -> WriteFailed:
        """The driver could not bind a value (text with a lone surrogate, an int beyond 64
        bits, a type it does not know) when the error is not the server's: name its column,
        found by binding each of the row's values alone."""
        binding = not isinstance(exc, sqlite3.Error) or isinstance(
            exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)
        )
        if values is not None and binding:
            cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                refused = self._refused_in(
                    shape, values, lambda v: cursor.execute("SELECT ?", (v,))
                )
            finally:
                cursor.close()
            if refused is not None:
                return WriteFailed(refused, row)
            if isinstance(exc, sqlite3.Error):
                return WriteFailed(exc, row)  # not a value's fault after all
            return WriteFailed(ValueRefused(None, exc), row)
        return WriteFailed(exc, row)
