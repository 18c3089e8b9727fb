"""SQLAlchemy Core executemany: correct everywhere, the fallback.

``RETURNING ... sort_by_parameter_order``, with many rows a statement only where the
dialect's keys are proven to follow the rows (``DialectFacts.keys_follow_rows``); elsewhere
(CockroachDB's ``unique_rowid()``) one row a statement; without ``RETURNING`` one row at a
time, each with its ``inserted_primary_key``.

Example::

    >>> CoreStrategy.name
    'core'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ...insert.locate import WriteFailed
from ...insert.shape import InsertShape
from .base import Data, InsertStrategy

__all__ = ["CoreStrategy"]


class CoreStrategy(InsertStrategy):
    """SQLAlchemy Core executemany: correct everywhere, the fallback."""

    name = "core"

    def construct(self, fetch_key: bool) -> sa.Insert:
        stmt = sa.insert(self.info.table)
        pk = self.info.autoincrement_pk
        if fetch_key and pk is not None and self.facts.supports_returning:
            return stmt.returning(self.info.columns[pk], sort_by_parameter_order=True)
        return stmt

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        pairs = list(zip(shape.keys, shape.fields))
        params = [{k: d[f] for k, f in pairs} for d in data]
        shape.rows(data)  # a value the column's processor refuses, named before anything runs
        try:
            if not fetch_key:
                self.conn.execute(shape.construct, params)
                return None
            if self.facts.supports_returning:
                conn = self.conn
                if not self.facts.keys_follow_rows:
                    # Keys sorted back to rows only where one statement numbers them in row
                    # order; elsewhere one row a statement, whose key is its own.
                    conn = conn.execution_options(insertmanyvalues_page_size=1)
                return [row[0] for row in conn.execute(shape.construct, params)]
            keys = []
            for n, one in enumerate(params):
                try:
                    result = self.conn.execute(shape.construct, one)
                except sa.exc.DBAPIError as exc:
                    raise WriteFailed(exc, n) from exc
                keys.append(result.inserted_primary_key[0])  # type: ignore[index]
            return keys
        except sa.exc.DBAPIError as exc:
            raise self.failed(exc.orig or exc, shape, [tuple(p.values()) for p in params]) from exc
