"""Query results read column by column: the read path under ``all()`` and ``to_dicts()``.

Rows are read through a server-side cursor where the driver has one (psycopg's named cursor,
PyMySQL's SSCursor; SQLite reads as it goes anyway), ``chunk_size`` rows at a time, and each
column goes through its type's result processor in one loop (no ``Row`` per row). Values are
what the columns' types return (no pydantic validation, which is what makes it fast). Where
the dialect reads a server-side cursor's rows faster than its driver does (PyMySQL parses
each row in Python: ``read_streamed``), ``all()`` reads through one too, and the rows come
column by column from the dialect.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Score(ActiveRecord):
    ...     __table_name__ = "doc_scores"
    ...     id: int | None = None
    ...     points: int
    >>> _ = activerecord.connect("sqlite://")
    >>> Score.create_table()
    >>> _ = Score.batch_insert_from_dicts([{"points": 3}, {"points": 5}])
    >>> query_dicts(Score.query().where("points > ?", 4))
    [{'id': 2, 'points': 5}]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..arguments import check_size
from ..backend.errors import driver_errors
from ..backend.fetch import fetch_columns, stream_results
from ..backend.transaction import read_connection
from ..errors import ValidationError
from ..validation import collector_paused
from .display import RecordList

if TYPE_CHECKING:
    from .state import QueryState

__all__ = [
    "CHUNK_SIZE", "iter_chunks", "iter_columns", "query_dicts", "read_columns", "selected_names",
]

#: Rows fetched (and converted) at a time.
CHUNK_SIZE = 10_000


def selected_names(query: QueryState[Any], stmt: sa.Select[Any]) -> list[str]:
    """The field name of each column ``stmt`` selects (its key where it is no field)."""
    info = query.model.__ar_info__
    by_column = {id(column): fname for fname, column in info.columns.items()}
    return [by_column.get(id(c), c.key or c.name) for c in stmt.selected_columns]


def _processors(
    result: sa.CursorResult[Any], stmt: sa.Select[Any], dialect: sa.Dialect
) -> list[Any]:
    """The result processor of each selected column (None: the driver's value is final),
    the very ones SQLAlchemy would run on each ``Row``."""
    description = result.cursor.description or ()
    return [
        column.type._cached_result_processor(dialect, entry[1])
        for column, entry in zip(stmt.selected_columns, description)
    ]


def _converted(
    query: QueryState[Any], names: Sequence[str], processors: Sequence[Any],
    columns: list[Sequence[Any]],
) -> list[Sequence[Any]]:
    """A chunk's columns of driver values, each through its column's result processor (a
    C loop over a column instead of one ``Row`` per row). A value the column type cannot read
    back (a stored string that is no member of the Enum, bad JSON) raises our
    ``ValidationError`` naming the row's key and the field."""
    for i, processor in enumerate(processors):
        if processor is not None:
            try:
                columns[i] = list(map(processor, columns[i]))
            except (ValueError, LookupError, TypeError) as exc:
                raise _unreadable(query, names, processor, columns, i, exc) from exc
    return columns


def _unreadable(
    query: QueryState[Any], names: Sequence[str], processor: Any, columns: list[Sequence[Any]],
    index: int, exc: Exception,
) -> ValidationError:
    model = query.model
    row = next((n for n, v in enumerate(columns[index]) if not _readable(processor, v)), 0)
    pk = [columns[names.index(f)][row] for f in model.__ar_info__.pk_fields if f in names]
    key: Any = pk[0] if len(pk) == 1 else tuple(pk)
    value = columns[index][row]
    return ValidationError(
        f"{model.__name__} row {key!r} read from the database does not validate: "
        f"{names[index]}: cannot read {value!r}: {exc}",
        model=model.__name__,
        errors=[{"type": "value_error", "loc": (names[index],), "msg": str(exc), "input": value}],
    )


def _readable(processor: Any, value: Any) -> bool:
    try:
        processor(value)
    except (ValueError, LookupError, TypeError):
        return False
    return True


def read_columns(
    query: QueryState[Any], stmt: sa.Select[Any]
) -> tuple[list[str], list[Sequence[Any]]]:
    """The whole result of ``stmt`` (a SELECT of ``query``'s model) column by column."""
    names = selected_names(query, stmt)
    model = query.model
    with driver_errors(f"{model.__name__} query"), read_connection(model.database()) as conn:
        if stream_results(conn):
            stmt = stmt.execution_options(stream_results=True)
        result = conn.execute(stmt)
        try:
            processors = _processors(result, stmt, conn.dialect)
            columns, _ended = fetch_columns(result, len(names), None)
        finally:
            result.close()
    return names, _converted(query, names, processors, columns)


def iter_columns(
    query: QueryState[Any], chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[list[str], list[Sequence[Any]]]]:
    """Yield ``(field names, columns of values)`` for each chunk of up to ``chunk_size`` rows,
    read through a server-side cursor where the driver has one.

    A wrong ``chunk_size`` is refused here, at the call, not at the first ``next()``."""
    check_size(chunk_size, "chunk_size", optional=False)
    return _iter_columns(query, chunk_size)


def _iter_columns(
    query: QueryState[Any], chunk_size: int
) -> Iterator[tuple[list[str], list[Sequence[Any]]]]:
    stmt = query.select_statement()
    names = selected_names(query, stmt)
    model = query.model
    with driver_errors(f"{model.__name__} query"), read_connection(model.database()) as conn:
        result = conn.execute(stmt.execution_options(stream_results=True))
        try:
            processors = _processors(result, stmt, conn.dialect)
            while True:
                columns, ended = fetch_columns(result, len(names), chunk_size)
                if columns and columns[0]:
                    yield names, _converted(query, names, processors, columns)
                if ended:
                    break
        finally:
            result.close()


def iter_chunks(
    query: QueryState[Any], chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[list[str], Sequence[Sequence[Any]]]]:
    """Yield ``(field names, rows)`` for each chunk of up to ``chunk_size`` result rows.

    A wrong ``chunk_size`` is refused here, at the call, not at the first ``next()``."""
    chunks = iter_columns(query, chunk_size)  # checks chunk_size now
    return ((names, list(zip(*columns))) for names, columns in chunks)


def query_dicts(query: QueryState[Any], chunk_size: int = CHUNK_SIZE) -> RecordList[dict[str, Any]]:
    """Every matching row as a dict keyed by field name."""
    out: RecordList[dict[str, Any]] = RecordList()
    with collector_paused(promote=True):  # no GC pass over the rows read: they hold no cycles
        for names, columns in iter_columns(query, chunk_size):
            out.extend(map(dict, map(zip, repeat(names), zip(*columns))))
    return out
