"""MySQL/MariaDB: multi-row ``INSERT ... VALUES`` packed to the packet budget.

Keys from ``LAST_INSERT_ID()`` + row number times the session's ``auto_increment_increment``
(read for each write) when the server allocates one statement's keys consecutively
(``innodb_autoinc_lock_mode`` 0/1); else ``RETURNING`` (MariaDB 10.5+), whose keys are sorted
because one statement's keys rise in row order; else one row per statement.

Example::

    >>> MysqlValuesStrategy.name
    'mysql_values'
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate, repeat
from typing import Any

import sqlalchemy as sa

from ...backend.bridge import driver_of, statement_bytes
from ...backend.dialects import without_params
from ...insert.locate import ValueRefused, WriteFailed, rows_located
from ...insert.shape import InsertShape
from .base import Data, InsertStrategy

__all__ = ["MysqlValuesStrategy"]


class MysqlValuesStrategy(InsertStrategy):
    """Multi-row ``INSERT ... VALUES`` statements cut at the packet budget."""

    name = "mysql_values"
    positional_params = True

    def construct(self, fetch_key: bool) -> sa.Insert:
        stmt = sa.insert(self.info.table)
        pk = self.info.autoincrement_pk
        if fetch_key and pk is not None and self._keys_by == "returning":
            return stmt.returning(self.info.columns[pk])
        return stmt

    @property
    def _keys_by(self) -> str:
        if self.facts.autoinc_consecutive:
            return "range"
        if self.facts.supports_returning:
            return "returning"
        return "row"

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        rows = shape.rows(data)
        if not rows:
            return [] if fetch_key else None
        if fetch_key and self._keys_by == "row":
            return self._one_by_one(shape, rows)
        keys: list[Any] = []
        step = 1
        if fetch_key and self._keys_by == "range":
            # The session's increment now, not the engine's at its first connection: a SET
            # SESSION (or a Galera node joining) changes it. One statement's keys are its
            # steps from LAST_INSERT_ID() (lock mode 0/1), whatever the offset.
            step = self.facts.session_keys(self.conn).increment
        for start, count, sql in self._statements(shape, rows):
            try:
                self.cursor.execute(sql)
            except Exception as exc:
                blamed = self.failed(exc, shape, rows[start : start + count]).row
                with rows_located(start.__add__):  # a statement's row -> its place in rows
                    raise WriteFailed(exc, blamed) from exc
            if fetch_key:
                if self._keys_by == "range":
                    first = int(self.cursor.lastrowid)
                    keys.extend(range(first, first + count * step, step))
                else:
                    keys.extend(sorted(int(r[0]) for r in self.cursor.fetchall()))
        return keys if fetch_key else None

    def _statements(
        self, shape: InsertShape, rows: list[tuple[Any, ...]]
    ) -> list[tuple[int, int, bytes]]:
        """Statements of whole rows, each within the byte budget (rows measured, not guessed)."""
        head_s, row_fmt, tail_s = shape.values_parts
        raw = driver_of(self.conn.connection.dbapi_connection)
        encoding = getattr(raw, "encoding", "utf8")
        # Sent without parameters (the rows are literals): the head and tail lose SQLAlchemy's
        # doubled '%', as the driver's interpolation would have done.
        head = without_params(head_s, shape.dialect).encode(encoding)
        tail = without_params(tail_s, shape.dialect).encode(encoding)
        budget = statement_bytes(self.facts.max_statement_bytes or 1_000_000)
        # The driver binds each row's parameters (PyMySQL binds on the client: mogrify is the
        # very text its execute() would send); we only measure and join whole rows.
        mogrify = self._mogrify()
        try:
            literals = [mogrify(row_fmt, row) for row in rows]
            values = list(map(str.encode, literals, repeat(encoding)))
        except Exception as exc:  # a value the driver cannot send (NaN, a lone surrogate)
            raise self._unsendable(exc, shape, rows, encoding) from exc
        # ends[i]: bytes of rows 0..i with a comma after each; a statement of rows a..b-1
        # takes len(head) + ends[b-1] - ends[a-1] - 1 + len(tail) bytes.
        ends = list(accumulate(map((1).__add__, map(len, values))))
        room = budget - len(head) - len(tail) + 1
        out: list[tuple[int, int, bytes]] = []
        start, done = 0, 0
        while start < len(values):
            end = max(bisect_right(ends, done + room, start), start + 1)
            out.append((start, end - start, head + b",".join(values[start:end]) + tail))
            start, done = end, ends[end - 1]
        return out

    def _one_by_one(self, shape: InsertShape, rows: list[tuple[Any, ...]]) -> list[Any]:
        keys = []
        cursor = self.cursor
        encoding = getattr(driver_of(self.conn.connection.dbapi_connection), "encoding", "utf8")
        for n, row in enumerate(rows):
            try:
                cursor.execute(shape.sql, row)
            except Exception as exc:
                refused = self._refused_in(shape, row, self._sender(encoding))
                raise WriteFailed(refused or exc, n) from exc
            keys.append(cursor.lastrowid)
        return keys

    def _sender(self, encoding: str) -> Callable[[Any], Any]:
        """A value escaped and encoded as the driver sends it, alone."""
        mogrify = self._mogrify()
        return lambda value: mogrify("%s", (value,)).encode(encoding)

    def _mogrify(self) -> Callable[[str, Any], str]:
        """The driver's ``cursor.mogrify``; for aiomysql behind SQLAlchemy's adapter (no
        mogrify there), the same escaping PyMySQL's does, by the driver connection's
        ``literal()``."""
        mogrify: Callable[[str, Any], str] | None = getattr(self.cursor, "mogrify", None)
        if mogrify is not None:
            return mogrify
        literal = driver_of(self.conn.connection.dbapi_connection).literal
        return lambda query, args: query % tuple(map(literal, args))

    def _unsendable(
        self, exc: Exception, shape: InsertShape, rows: Sequence[Sequence[Any]], encoding: str
    ) -> WriteFailed:
        """The row and column of the value the driver could not escape or encode."""
        send = self._sender(encoding)
        for n, row in enumerate(rows):
            refused = self._refused_in(shape, row, send)
            if refused is not None:
                return WriteFailed(refused, n)
        return WriteFailed(ValueRefused(None, exc), None)
