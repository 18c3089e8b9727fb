"""DataFrames in: pandas and polars rows as dicts of plain Python values.

Neither library is a dependency of activerecord: each is imported only when a DataFrame of
that kind is passed (``pip install 'activerecord[dataframes]'``). Conversion rules:

* DataFrame column names map to fields (or column names); ``columns={"src": "field"}``
  renames, ``{"src": None}`` drops a column; any other name is an UnknownColumnError (which
  says how to map or drop it). A frame without a column for a required field is refused
  once, naming the field (a ValidationError), before any row is converted.
* ``NaN``, ``NaT``, ``pd.NA`` and ``None`` (polars nulls and NaN) become NULL.
* numpy and pandas scalars become Python values: ``np.int64`` → ``int``, ``np.float32`` →
  ``float``, ``pd.Timestamp`` → ``datetime`` (keeping its time zone), ``np.datetime64`` →
  ``datetime`` (to the microsecond), ``pd.Timedelta`` → ``timedelta``.
* The index of a pandas DataFrame is not loaded (``df.reset_index()`` first to load it); it
  is what a :class:`~activerecord.errors.LoadValidationError` names: ``row 'b'`` for the row
  labelled ``'b'``. Polars rows are named by their position.

The frame is converted a slice at a time, so the Python objects alive at once are bounded by
the slice, not by the frame.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Reading(ActiveRecord):
    ...     __table_name__ = "doc_readings"
    ...     id: int | None = None
    ...     value: float | None = None
    >>> _ = activerecord.connect("sqlite://")
    >>> Reading.create_table()
    >>> is_dataframe([{"value": 1.0}])
    False
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..arguments import check_size
from ..errors import ArgumentTypeError
from .loader import load_rows
from .names import check_required, map_names
from .progress import Progress

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["dataframe_rows", "insert_dataframe", "is_dataframe", "to_python"]

#: Rows converted to Python objects at a time (independent of the database batch size).
SLICE_ROWS = 10_000

_PLAIN = (str, int, bool, bytes, dt.datetime, dt.date, dt.time, dt.timedelta)


def _library(obj: Any) -> str:
    return type(obj).__module__.partition(".")[0]


def is_dataframe(obj: Any) -> bool:
    """True for a pandas or polars DataFrame (checked without importing either library)."""
    return type(obj).__name__ == "DataFrame" and _library(obj) in ("pandas", "polars")


def to_python(value: Any) -> Any:
    """One value as a plain Python object; NaN, NaT and NA become None.

    >>> import decimal
    >>> to_python(float("nan")), to_python(decimal.Decimal("1.5")), to_python("x")
    (None, Decimal('1.5'), 'x')
    """
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    library = _library(value)
    name = type(value).__name__
    if library == "numpy":
        if name in ("datetime64", "timedelta64"):
            numpy: Any = importlib.import_module("numpy")
            if numpy.isnat(value):
                return None
            unit = "datetime64[us]" if name == "datetime64" else "timedelta64[us]"
            return value.astype(unit).item()
        return to_python(value.item())
    if library == "pandas":
        if name in ("NaTType", "NAType"):
            return None
        if name == "Timestamp":
            return value.to_pydatetime(warn=False)
        if name == "Timedelta":
            return value.to_pytimedelta()
    return value


_PLAIN_OR_NONE = frozenset((*_PLAIN, type(None)))


def _pandas_column(series: Any) -> list[Any]:
    """One column as Python values: numbers and text as they come, datetimes converted for
    the whole column at once, anything else value by value (:func:`to_python`)."""
    kind = series.dtype.kind
    if kind == "M" and _library(series.dtype) in ("numpy", "pandas"):  # datetime64, with tz
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nanoseconds dropped: datetime has none
            values: list[Any] = series.dt.to_pydatetime().tolist()
    else:
        values = series.tolist()
    missing = series.isna().to_numpy()
    if missing.any():
        values = [None if m else v for v, m in zip(values, missing)]
    if kind in "biuf" and _library(series.dtype) == "numpy":
        return values
    if set(map(type, values)) <= _PLAIN_OR_NONE:
        return values
    return list(map(to_python, values))


def _polars_column(series: Any) -> list[Any]:
    values: list[Any] = series.to_list()
    if series.dtype.is_float():
        return [None if v is None or v != v else v for v in values]  # NaN != NaN
    return values


def _integers(values: list[Any]) -> list[Any]:
    """A float column (pandas makes an int column with NaN one) loaded into an integer field:
    whole numbers become ints, on every backend. Any other number is left as it is, for
    validation or (without it) the integer column's bind check to refuse, naming its record
    and column."""
    return [int(v) if type(v) is float and v.is_integer() else v for v in values]


def dataframe_rows(
    model: type[ActiveRecord],
    df: Any,
    *,
    columns: Mapping[str, str | None] | None = None,
    slice_rows: int = SLICE_ROWS,
    required: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield the frame's rows as dicts keyed by field name (converted a slice at a time).

    With ``required``, a frame lacking a column for a required field is refused as a whole.
    """
    library = _library(df)
    names = map_names(model, list(df.columns), columns, source="DataFrame")
    if required:
        check_required(model, names, source="the DataFrame")
    keep = [(pos, fname) for pos, fname in enumerate(names) if fname is not None]
    fields = [fname for _, fname in keep]
    table_columns = model.__ar_info__.columns
    integer = {
        fname for fname in fields
        if isinstance(table_columns[fname].type, sa.Integer)
        and not isinstance(table_columns[fname].type, sa.Boolean)
    }
    for start in range(0, len(df), slice_rows):
        if library == "pandas":
            part = df.iloc[start : start + slice_rows]
            series = [part.iloc[:, pos] for pos, _ in keep]
            cols = list(map(_pandas_column, series))
            floats = [s.dtype.kind == "f" for s in series]
        else:
            part = df.slice(start, slice_rows)
            series = [part.to_series(pos) for pos, _ in keep]
            cols = list(map(_polars_column, series))
            floats = [s.dtype.is_float() for s in series]
        for n, fname in enumerate(fields):
            if floats[n] and fname in integer:
                cols[n] = _integers(cols[n])
        for values in zip(*cols):
            yield dict(zip(fields, values))
        if not cols:  # a frame with no loaded columns still has rows
            for _ in range(len(part)):
                yield {}


def insert_dataframe(
    model: type[ActiveRecord],
    df: Any,
    *,
    columns: Mapping[str, str | None] | None = None,
    validate: bool = True,
    batch_size: int | None = None,
    progress: Progress = False,
    upsert: Sequence[str] | None = None,
    return_records: bool = False,
) -> Any:
    """Insert a pandas or polars DataFrame's rows; return the count (or the records).

    Atomic, like every batch insert. A row that fails validation is reported by its label
    in a :class:`~activerecord.errors.LoadValidationError`.
    """
    check_size(batch_size)
    if not is_dataframe(df):
        raise ArgumentTypeError(
            f"expected a pandas or polars DataFrame, got {type(df).__name__}"
        )
    index = df.index if _library(df) == "pandas" else None

    def locate(i: int) -> Any:
        return i if index is None else to_python(index[i])

    return load_rows(
        model,
        dataframe_rows(model, df, columns=columns, required=validate),
        locate=locate,
        unit="row",
        source="DataFrame",
        total=len(df),
        validate=validate,
        batch_size=batch_size,
        progress=progress,
        upsert=upsert,
        return_records=return_records,
    )
