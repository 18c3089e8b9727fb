"""Query results out as pandas and polars DataFrames, built a chunk at a time.

The chunks come from :func:`~activerecord.query.rows.iter_columns` and are concatenated, so
the Python objects alive at once are bounded by the chunk, not by the result. In DataFrames,
enum members become their values and (in polars) UUIDs become strings.

Frames have the same column types on every backend: a timezone-aware column is in UTC
(PostgreSQL hands back the session's time zone, the others UTC), and an empty result has the
types its fields would give (``int64``, ``datetime64[us, UTC]``, ...), not ``float64``.

Example (the column values a frame gets; ``query.to_pandas()`` builds the frame itself)::

    >>> import enum, uuid
    >>> class Size(enum.Enum):
    ...     S = "s"
    >>> _column([Size.S, None], uuid_as_str=False)
    ['s', None]
    >>> _column([uuid.UUID(int=1)], uuid_as_str=True)
    ['00000000-0000-0000-0000-000000000001']
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..model.schema import unwrap_annotated, unwrap_optional
from ..model.types import UTCDateTime
from ..optional import require
from ..validation import collector_paused
from .rows import CHUNK_SIZE, iter_columns, selected_names

if TYPE_CHECKING:
    from .state import QueryState

__all__ = ["query_pandas", "query_polars"]


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


def _sample(query: QueryState[Any], name: str, column: Any) -> Any:
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


def _aware_names(query: QueryState[Any], stmt: sa.Select[Any]) -> list[str]:
    return [n for n, c in zip(selected_names(query, stmt), stmt.selected_columns) if _is_aware(c)]


def query_pandas(query: QueryState[Any], chunk_size: int = CHUNK_SIZE) -> Any:
    """The result as a pandas DataFrame, built a chunk at a time."""
    with collector_paused(promote=True):  # no GC passes over the rows read meanwhile
        return _pandas(query, chunk_size)


def _pandas(query: QueryState[Any], chunk_size: int) -> Any:
    pd: Any = require("pandas", extra="dataframes", what="to_pandas()")
    frames: list[Any] = []
    stmt = query.select_statement()
    names: list[str] = selected_names(query, stmt)
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
    # pandas 2 warns that its concat will stop skipping such all-NA columns when it picks
    # the dtype (pandas 3 does); ``infer_objects`` gives the same dtype either way, so the
    # warning says nothing to our caller.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*concatenation with empty or all-NA", category=FutureWarning
        )
        return pd.concat(frames, ignore_index=True).infer_objects()


def _polars_series(pl: Any, name: str, values: list[Any]) -> Any:
    try:
        return pl.Series(name, values, strict=False)
    except Exception:  # noqa: BLE001 - values polars cannot type: keep them as Python objects
        return pl.Series(name, values, dtype=pl.Object)


def query_polars(query: QueryState[Any], chunk_size: int = CHUNK_SIZE) -> Any:
    """The result as a polars DataFrame, built a chunk at a time."""
    with collector_paused(promote=True):  # no GC passes over the rows read meanwhile
        return _polars(query, chunk_size)


def _polars(query: QueryState[Any], chunk_size: int) -> Any:
    pl: Any = require("polars", extra="dataframes", what="to_polars()")
    frames: list[Any] = []
    stmt = query.select_statement()
    names: list[str] = selected_names(query, stmt)
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
