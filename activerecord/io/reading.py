"""Query results out, streamed: plain dicts, pandas and polars DataFrames.

Rows are read through a server-side cursor where the driver has one (psycopg's named cursor,
PyMySQL's SSCursor; SQLite reads as it goes anyway), ``chunk_size`` rows at a time. A
DataFrame is built a chunk at a time and the chunks are concatenated, so the Python objects
alive at once are bounded by the chunk, not by the result. Values are what the columns' types
return (no pydantic validation, which is what makes it fast); in DataFrames, enum members
become their values and (in polars) UUIDs become strings.

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

import enum
import importlib
import uuid
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.dialects import translate_error
from ..backend.transaction import read_connection
from ..validation import collector_paused
from .display import RecordList

if TYPE_CHECKING:
    from ..query.query import Query

__all__ = ["CHUNK_SIZE", "iter_chunks", "query_dicts", "query_pandas", "query_polars"]

#: Rows fetched (and converted) at a time.
CHUNK_SIZE = 10_000


def _names(query: Query[Any], stmt: sa.Select[Any]) -> list[str]:
    info = query.model.__ar_info__
    by_column = {id(column): fname for fname, column in info.columns.items()}
    return [by_column.get(id(c), c.key or c.name) for c in stmt.selected_columns]


def iter_chunks(
    query: Query[Any], chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[list[str], Sequence[Sequence[Any]]]]:
    """Yield ``(field names, rows)`` for each chunk of up to ``chunk_size`` result rows."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    stmt = query.select_statement()
    names = _names(query, stmt)
    model = query.model
    try:
        with read_connection(model.database()) as conn:
            result = conn.execute(stmt.execution_options(yield_per=chunk_size))
            try:
                for part in result.partitions():
                    yield names, part
            finally:
                result.close()
    except sa.exc.DBAPIError as exc:
        raise translate_error(exc, context=f"{model.__name__} query") from exc


def query_dicts(query: Query[Any], chunk_size: int = CHUNK_SIZE) -> RecordList[dict[str, Any]]:
    """Every matching row as a dict keyed by field name."""
    out: RecordList[dict[str, Any]] = RecordList()
    for names, rows in iter_chunks(query, chunk_size):
        with collector_paused():  # dicts hold no cycles: no GC pass over each chunk's
            out.extend(map(dict, map(zip, repeat(names), rows)))
    return out


def _column(values: Sequence[Any], *, uuid_as_str: bool) -> list[Any]:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, enum.Enum):
        return [None if v is None else v.value for v in values]
    if uuid_as_str and isinstance(sample, uuid.UUID):
        return [None if v is None else str(v) for v in values]
    return list(values)


def query_pandas(query: Query[Any], chunk_size: int = CHUNK_SIZE) -> Any:
    """The result as a pandas DataFrame, built a chunk at a time."""
    pd: Any = importlib.import_module("pandas")
    frames: list[Any] = []
    names: list[str] = _names(query, query.select_statement())
    for names, rows in iter_chunks(query, chunk_size):
        columns = zip(*rows)
        frames.append(
            pd.DataFrame({n: _column(c, uuid_as_str=False) for n, c in zip(names, columns)})
        )
    if not frames:
        return pd.DataFrame({n: [] for n in names})
    if len(frames) == 1:
        return frames[0]
    # A column that was all NULL in one chunk is "object" there; let the concat settle it.
    return pd.concat(frames, ignore_index=True).infer_objects()


def _polars_series(pl: Any, name: str, values: list[Any]) -> Any:
    try:
        return pl.Series(name, values, strict=False)
    except Exception:  # noqa: BLE001 - values polars cannot type: keep them as Python objects
        return pl.Series(name, values, dtype=pl.Object)


def query_polars(query: Query[Any], chunk_size: int = CHUNK_SIZE) -> Any:
    """The result as a polars DataFrame, built a chunk at a time."""
    pl: Any = importlib.import_module("polars")
    frames: list[Any] = []
    names: list[str] = _names(query, query.select_statement())
    for names, rows in iter_chunks(query, chunk_size):
        columns = zip(*rows)
        frames.append(
            pl.DataFrame(
                [
                    _polars_series(pl, n, _column(c, uuid_as_str=True))
                    for n, c in zip(names, columns)
                ]
            )
        )
    if not frames:
        return pl.DataFrame(schema=names)
    return pl.concat(frames, how="vertical_relaxed")
