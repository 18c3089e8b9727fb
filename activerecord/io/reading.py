"""Query results out, streamed: plain dicts, pandas and polars DataFrames.

Rows are read through a server-side cursor where the driver has one (psycopg's named cursor,
PyMySQL's SSCursor; SQLite reads as it goes anyway), ``chunk_size`` rows at a time. A
DataFrame is built a chunk at a time and the chunks are concatenated, so the Python objects
alive at once are bounded by the chunk, not by the result. Values are what the columns' types
return (no pydantic validation, which is what makes it fast); in DataFrames, enum members
become their values and (in polars) UUIDs become strings.

Frames have the same column types on every backend: a timezone-aware column is in UTC
(PostgreSQL hands back the session's time zone, the others UTC), and an empty result has the
types its fields would give (``int64``, ``datetime64[us, UTC]``, ...), not ``float64``.

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

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..arguments import check_size
from ..backend.errors import driver_errors
from ..backend.transaction import read_connection
from ..errors import ValidationError
from ..model.schema import UTCDateTime, unwrap_annotated, unwrap_optional
from ..optional import require
from ..validation import collector_paused
from .display import RecordList

if TYPE_CHECKING:
    from ..query.query import Query

__all__ = [
    "CHUNK_SIZE", "iter_chunks", "iter_columns", "query_dicts", "query_pandas", "query_polars",
    "read_columns",
]

#: Rows fetched (and converted) at a time.
CHUNK_SIZE = 10_000


def _names(query: Query[Any], stmt: sa.Select[Any]) -> list[str]:
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
    query: Query[Any], names: Sequence[str], processors: Sequence[Any],
    rows: Sequence[Sequence[Any]],
) -> list[Sequence[Any]]:
    """The chunk's values column by column, each through its column's result processor (a
    C loop over a column instead of one ``Row`` per row). A value the column type cannot read
    back (a stored string that is no member of the Enum, bad JSON) raises our
    ``ValidationError`` naming the row's key and the field."""
    if not rows:
        return [() for _ in names]
    columns: list[Sequence[Any]] = list(zip(*rows))
    for i, processor in enumerate(processors):
        if processor is not None:
            try:
                columns[i] = list(map(processor, columns[i]))
            except (ValueError, LookupError, TypeError) as exc:
                raise _unreadable(query, names, processor, columns, i, exc) from exc
    return columns


def _unreadable(
    query: Query[Any], names: Sequence[str], processor: Any, columns: list[Sequence[Any]],
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


def read_columns(query: Query[Any], stmt: sa.Select[Any]) -> tuple[list[str], list[Sequence[Any]]]:
    """The whole result of ``stmt`` (a SELECT of ``query``'s model) column by column."""
    names = _names(query, stmt)
    model = query.model
    with driver_errors(f"{model.__name__} query"), read_connection(model.database()) as conn:
        result = conn.execute(stmt)
        try:
            processors = _processors(result, stmt, conn.dialect)
            # The raw rows, through the result's fetch strategy (its buffer, and driver
            # errors wrapped as SQLAlchemy's), without building a Row for each.
            rows = result.cursor_strategy.fetchall(result, result.cursor)
        finally:
            result.close()
    return names, _converted(query, names, processors, rows)


def iter_columns(
    query: Query[Any], chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[list[str], list[Sequence[Any]]]]:
    """Yield ``(field names, columns of values)`` for each chunk of up to ``chunk_size`` rows,
    read through a server-side cursor where the driver has one.

    A wrong ``chunk_size`` is refused here, at the call, not at the first ``next()``."""
    check_size(chunk_size, "chunk_size", optional=False)
    return _iter_columns(query, chunk_size)


def _iter_columns(
    query: Query[Any], chunk_size: int
) -> Iterator[tuple[list[str], list[Sequence[Any]]]]:
    stmt = query.select_statement()
    names = _names(query, stmt)
    model = query.model
    with driver_errors(f"{model.__name__} query"), read_connection(model.database()) as conn:
        result = conn.execute(stmt.execution_options(stream_results=True))
        try:
            processors = _processors(result, stmt, conn.dialect)
            # Raw rows through the fetch strategy, which holds the first row it read
            # ahead on a server-side cursor (and wraps driver errors as SQLAlchemy's).
            strategy, cursor = result.cursor_strategy, result.cursor
            while True:
                rows = strategy.fetchmany(result, cursor, chunk_size)
                if rows:
                    yield names, _converted(query, names, processors, rows)
                if len(rows) < chunk_size:  # the end: the strategy has closed the cursor
                    break
        finally:
            result.close()


def iter_chunks(
    query: Query[Any], chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[list[str], Sequence[Sequence[Any]]]]:
    """Yield ``(field names, rows)`` for each chunk of up to ``chunk_size`` result rows.

    A wrong ``chunk_size`` is refused here, at the call, not at the first ``next()``."""
    chunks = iter_columns(query, chunk_size)  # checks chunk_size now
    return ((names, list(zip(*columns))) for names, columns in chunks)


def query_dicts(query: Query[Any], chunk_size: int = CHUNK_SIZE) -> RecordList[dict[str, Any]]:
    """Every matching row as a dict keyed by field name."""
    out: RecordList[dict[str, Any]] = RecordList()
    with collector_paused(promote=True):  # no GC pass over the rows read: they hold no cycles
        for names, columns in iter_columns(query, chunk_size):
            out.extend(map(dict, map(zip, repeat(names), zip(*columns))))
    return out


def _column(values: Sequence[Any], *, uuid_as_str: bool) -> list[Any]:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, enum.Enum):
        return [None if v is None else v.value for v in values]
    if uuid_as_str and isinstance(sample, uuid.UUID):
        return [None if v is None else str(v) for v in values]
    return list(values)


_UTC = dt.timezone.utc
#: One value of each Python type a column can return: an empty frame's column gets the type
#: a one-row frame of it would have, whatever the DataFrame library's version infers.
_SAMPLES: dict[type, Any] = {
    bool: False, int: 0, float: 0.0, str: "", bytes: b"", decimal.Decimal: decimal.Decimal(0),
    dt.datetime: dt.datetime(2000, 1, 1), dt.date: dt.date(2000, 1, 1), dt.time: dt.time(),
    dt.timedelta: dt.timedelta(), uuid.UUID: uuid.UUID(int=0),
}


def _is_aware(column: Any) -> bool:
    kind = getattr(column, "type", None)
    return isinstance(kind, UTCDateTime) or (
        isinstance(kind, sa.DateTime) and bool(kind.timezone)
    )


def _sample_of(base: Any, column: Any) -> Any:
    if not isinstance(base, type):
        return None
    if issubclass(base, enum.Enum):
        return next(iter(base), None)
    for tp in base.__mro__:
        if tp in _SAMPLES:
            if tp is dt.datetime and _is_aware(column):
                return dt.datetime(2000, 1, 1, tzinfo=_UTC)
            scale = getattr(column.type, "scale", None)
            if tp is decimal.Decimal and isinstance(scale, int):
                return decimal.Decimal(0).scaleb(-scale)
            return _SAMPLES[tp]
    return None


def _sample(query: Query[Any], name: str, column: Any) -> Any:
    """A value of the type a selected column holds (None when it cannot be told): by the
    field's annotation, else (``AwareDatetime``, a reflected column) by the column's type."""
    finfo = query.model.__ar_info__.field_infos.get(name)
    if finfo is not None:
        sample = _sample_of(unwrap_annotated(unwrap_optional(finfo.annotation)[0], []), column)
        if sample is not None:
            return sample
    kind: Any = getattr(column, "type", None)
    try:  # a TypeDecorator (UTCDateTime) has its impl's Python type
        return _sample_of(getattr(kind, "impl_instance", kind).python_type, column)
    except (AttributeError, NotImplementedError):
        return None


def _aware_names(query: Query[Any], stmt: sa.Select[Any]) -> list[str]:
    return [n for n, c in zip(_names(query, stmt), stmt.selected_columns) if _is_aware(c)]


def query_pandas(query: Query[Any], chunk_size: int = CHUNK_SIZE) -> Any:
    """The result as a pandas DataFrame, built a chunk at a time."""
    with collector_paused(promote=True):  # no GC passes over the rows read meanwhile
        return _pandas(query, chunk_size)


def _pandas(query: Query[Any], chunk_size: int) -> Any:
    pd: Any = require("pandas", extra="dataframes", what="to_pandas()")
    frames: list[Any] = []
    stmt = query.select_statement()
    names: list[str] = _names(query, stmt)
    aware = _aware_names(query, stmt)
    for names, columns in iter_columns(query, chunk_size):
        frame = pd.DataFrame({n: _column(c, uuid_as_str=False) for n, c in zip(names, columns)})
        for name in aware:  # the same instants, in UTC on every backend
            frame[name] = pd.to_datetime(frame[name], utc=True).dt.tz_convert("UTC")
        frames.append(frame)
    if not frames:
        samples = [_sample(query, n, c) for n, c in zip(names, stmt.selected_columns)]
        return pd.DataFrame(
            {
                n: pd.Series(_column([v], uuid_as_str=False)).iloc[:0]
                if v is not None
                else pd.Series([], dtype=object)
                for n, v in zip(names, samples)
            }
        )
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
    with collector_paused(promote=True):  # no GC passes over the rows read meanwhile
        return _polars(query, chunk_size)


def _polars(query: Query[Any], chunk_size: int) -> Any:
    pl: Any = require("polars", extra="dataframes", what="to_polars()")
    frames: list[Any] = []
    stmt = query.select_statement()
    names: list[str] = _names(query, stmt)
    aware = _aware_names(query, stmt)
    for names, columns in iter_columns(query, chunk_size):
        frame = pl.DataFrame(
            [_polars_series(pl, n, _column(c, uuid_as_str=True)) for n, c in zip(names, columns)]
        )
        for name in aware:  # the same instants, in UTC on every backend
            if isinstance(frame[name].dtype, pl.Datetime):
                frame = frame.with_columns(pl.col(name).dt.convert_time_zone("UTC"))
        frames.append(frame)
    if not frames:
        samples = [_sample(query, n, c) for n, c in zip(names, stmt.selected_columns)]
        return pl.DataFrame(
            [
                _polars_series(pl, n, _column([v], uuid_as_str=True))[:0]
                if v is not None
                else pl.Series(n, [])
                for n, v in zip(names, samples)
            ]
        )
    return pl.concat(frames, how="vertical_relaxed")
