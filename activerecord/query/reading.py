"""Reading with a query: records, first/find/one, counts, aggregates, keyset batches, and
the results out as dicts, DataFrames and notebook tables.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Bead(ActiveRecord):
    ...     __table_name__ = "doc_beads"
    ...     id: int | None = None
    ...     n: int
    >>> _ = activerecord.connect("sqlite://")
    >>> Bead.create_table()
    >>> _ = Bead.batch_insert([Bead(n=1), Bead(n=2)])
    >>> Bead.query().count(), Bead.query().sum("n"), Bead.query().first().n
    (2, 3, 1)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from itertools import repeat
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..arguments import check_size
from ..associations.preload import preload_records
from ..errors import QueryError, RecordNotFound
from ..validation import collector_paused
from .display import RecordList, query_html, query_text
from .frames import query_pandas, query_polars
from .rows import query_dicts, read_columns
from .state import QueryState, T

if TYPE_CHECKING:
    pass

if TYPE_CHECKING:
    pass

__all__ = ["QueryReading"]


class QueryReading(QueryState[T]):
    """The reading terminals of :class:`~activerecord.query.query.Query`."""

    __slots__ = ()

    def _rows(self, stmt: sa.Select[Any]) -> list[Any]:
        # The records outlive the call: promote them past the young collections at once.
        with collector_paused(promote=True):
            names, columns = read_columns(self, stmt)
            if self._columns is not None:
                return list(map(dict, map(zip, repeat(names), zip(*columns))))
            records = self._model._from_db_columns(names, columns)
        if self._preload:
            preload_records(self._model, records, self._preload)
        return records

    def all(self) -> list[T]:
        """Every matching record (dicts when ``select()`` narrowed the columns)."""
        return RecordList(self._rows(self.select_statement()))

    def __iter__(self) -> Iterator[T]:
        return iter(self.all())

    def first(self) -> T | None:
        """The first matching record (by primary key unless ordered), or None."""
        query = self._as_query()
        if not self._order:
            query = query.order_by(*self._model.__ar_info__.pk_fields)
        rows = query.limit(1)._rows(query.limit(1).select_statement())
        return rows[0] if rows else None

    def find(self, key: Any) -> T:
        """The record with this primary key (a tuple for composite keys) among the rows this
        query matches, with its preloads; :class:`RecordNotFound` when there is none.

        >>> import activerecord
        >>> from activerecord import ActiveRecord
        >>> class Lamp(ActiveRecord):
        ...     __table_name__ = "doc_lamps"
        ...     id: int | None = None
        >>> _ = activerecord.connect("sqlite://")
        >>> Lamp.create_table()
        >>> Lamp.query().find(Lamp.create().id).id
        1
        """
        pk = self._model.__ar_info__.pk_fields
        values = key if isinstance(key, tuple) else (key,)
        name = self._model.__name__
        if len(values) != len(pk):
            raise RecordNotFound(
                f"{name} has a {len(pk)}-column primary key; got {key!r}", model=name, key=key
            )
        found = self._as_query().where(dict(zip(pk, values))).first()
        if found is None:
            raise RecordNotFound(f"{name} {key!r} not found", model=name, key=key)
        return found

    def one(self) -> T:
        """Exactly one record: :class:`RecordNotFound` if none, ``QueryError`` if several."""
        rows = self._as_query().limit(2).all()
        if not rows:
            raise RecordNotFound(f"no {self._model.__name__} matches", model=self._model.__name__)
        if len(rows) > 1:
            raise QueryError(f"more than one {self._model.__name__} matches")
        return rows[0]

    def count(self) -> int:
        """How many rows match."""
        return int(self._scalar(self.count_statement()))

    def exists(self) -> bool:
        """Whether any row matches."""
        stmt = sa.select(sa.exists(self.select_statement().limit(1)))
        return bool(self._scalar(stmt))

    def _aggregate(self, fn: Any, name: str) -> Any:
        column = self._model.__ar_info__.column(name)
        stmt = sa.select(fn(column)).select_from(column.table).where(*self.criteria())
        return self._scalar(stmt)

    def sum(self, name: str) -> Any:
        """SUM of a column over the matching rows (None if there are none)."""
        return self._aggregate(sa.func.sum, name)

    def avg(self, name: str) -> Any:
        """AVG of a column over the matching rows."""
        return self._aggregate(sa.func.avg, name)

    def min(self, name: str) -> Any:
        """MIN of a column over the matching rows."""
        return self._aggregate(sa.func.min, name)

    def max(self, name: str) -> Any:
        """MAX of a column over the matching rows."""
        return self._aggregate(sa.func.max, name)

    def batches(self, size: int = 1000) -> Iterator[list[T]]:
        """Yield lists of up to ``size`` records, by keyset pagination on the primary key.

        Each batch is a fresh query (``WHERE pk > last``), so rows are never skipped or read
        twice the way OFFSET paging does while the table changes. The arguments are checked
        at the call, not at the first ``next()``.

        >>> import activerecord
        >>> from activerecord import ActiveRecord
        >>> class Tick(ActiveRecord):
        ...     __table_name__ = "doc_ticks"
        ...     id: int | None = None
        ...     n: int = 0
        >>> _ = activerecord.connect("sqlite://")
        >>> Tick.create_table()
        >>> _ = Tick.batch_insert([Tick(n=n) for n in range(5)])
        >>> [len(batch) for batch in Tick.query().batches(2)]
        [2, 2, 1]
        """
        check_size(size, "size", optional=False)
        if self._order or self._offset is not None:
            raise QueryError("batches() orders by the primary key; drop order_by/offset")
        return self._batches(size)

    def _batches(self, size: int) -> Iterator[list[T]]:
        info = self._model.__ar_info__
        pk_cols = [info.columns[f] for f in info.pk_fields]
        remaining = self._limit
        after: tuple[Any, ...] | None = None
        while remaining is None or remaining > 0:
            take = size if remaining is None else min(size, remaining)
            query = self._copy(limit=take, order=tuple(c.asc() for c in pk_cols))
            if after is not None:
                key = pk_cols[0] if len(pk_cols) == 1 else sa.tuple_(*pk_cols)
                bound = after[0] if len(pk_cols) == 1 else sa.tuple_(*after)
                query = query._copy(where=(*query._where, key > bound))
            rows = query._rows(query.select_statement())
            if not rows:
                return
            yield rows
            if remaining is not None:
                remaining -= len(rows)
            last = rows[-1]
            if isinstance(last, dict):
                after = tuple(last[f] for f in info.pk_fields)
            else:
                after = tuple(getattr(last, f) for f in info.pk_fields)
            if len(rows) < take:
                return

    def each(self, size: int = 1000) -> Iterator[T]:
        """Yield records one by one, reading ``size`` at a time (see :meth:`batches`).

        >>> import activerecord
        >>> from activerecord import ActiveRecord
        >>> class Tock(ActiveRecord):
        ...     __table_name__ = "doc_tocks"
        ...     id: int | None = None
        ...     n: int = 0
        >>> _ = activerecord.connect("sqlite://")
        >>> Tock.create_table()
        >>> _ = Tock.batch_insert([Tock(n=n) for n in range(3)])
        >>> [t.id for t in Tock.query().each(2)]
        [1, 2, 3]
        """
        return itertools.chain.from_iterable(self.batches(size))


    # -- reading out and notebook display (activerecord.io) --------------------------------
    def to_dicts(self, *, chunk_size: int = 10_000) -> list[dict[str, Any]]:
        """Every matching row as a dict keyed by field name, read ``chunk_size`` rows at a
        time through a server-side cursor (no pydantic validation: fast).

        >>> import activerecord
        >>> from activerecord import ActiveRecord
        >>> class Dot(ActiveRecord):
        ...     __table_name__ = "doc_dots"
        ...     id: int | None = None
        ...     x: int
        >>> _ = activerecord.connect("sqlite://")
        >>> Dot.create_table()
        >>> _ = Dot.batch_insert_from_dicts([{"x": 5}])
        >>> Dot.query().to_dicts()
        [{'id': 1, 'x': 5}]
        """
        return query_dicts(self, chunk_size)

    def to_pandas(self, *, chunk_size: int = 10_000) -> Any:
        """The matching rows as a pandas DataFrame, streamed and built ``chunk_size`` rows at a
        time (needs pandas: ``pip install 'activerecord[dataframes]'``)."""
        return query_pandas(self, chunk_size)

    def to_polars(self, *, chunk_size: int = 10_000) -> Any:
        """The matching rows as a polars DataFrame, streamed and built ``chunk_size`` rows at a
        time (needs polars: ``pip install 'activerecord[dataframes]'``)."""
        return query_polars(self, chunk_size)

    def _repr_html_(self) -> str:
        """Jupyter shows a query as its first rows in a table, captioned with its SQL."""
        return query_html(self._as_query())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text display: the SQL and the first rows as a text table."""
        p.text(query_text(self._as_query()))

