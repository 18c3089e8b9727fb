"""Which row of a failed statement the database blames, where it says.

* PostgreSQL ``COPY``: the error context names the line (``COPY users, line 7``).
* MySQL/MariaDB: data errors name the row (``... at row 3``); a duplicate key names the
  value (``Duplicate entry 'x' for key 'email'``): the row holding it in a unique column
  (the second holder when two rows of the statement share it).
* ``Column 'x' cannot be null``: the first row with NULL in that column.
* MariaDB's ``CONSTRAINT `t.x` failed`` (a JSON column's check): the first row whose JSON
  in that column is not strict (``NaN``, ``Infinity``); its ``Syntax error in JSON text``
  (LOAD DATA): the first row holding such JSON.

Example::

    >>> class Err(Exception):
    ...     pass
    >>> blamed_row(Err(1406, "Data too long for column 'name' at row 3"), [], [])
    2
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.errors import translate_error
from ..errors import NotNullViolation

if TYPE_CHECKING:
    from ..model.info import ModelInfo

__all__ = [
    "ValueRefused", "WriteFailed", "blamed_row", "json_column", "not_strict_json",
    "refused_in_rows",
]

_COPY_LINE = re.compile(r"\bCOPY [^,]+, line (\d+)")
_AT_ROW = re.compile(r"\bat row (\d+)\b")
_DUPLICATE = re.compile(r"Duplicate entry '(.*)' for key '([^']*)'", re.S)
_NULL_COLUMN = re.compile(r"Column '([^']*)' cannot be null")
#: MariaDB's check that a JSON column holds valid JSON, named after the table and column.
_JSON_CHECK = re.compile(r"CONSTRAINT `[^`.]+\.([^`]+)` failed")
#: The same check run by LOAD DATA.
_JSON_SYNTAX = "Syntax error in JSON text"


_NONE: Any = object()


class WriteFailed(Exception):
    """Raised by a strategy: the driver's error and the failing row's position in the group
    (``located``: already the position the caller reports, as a stream's errors are)."""

    def __init__(self, orig: BaseException, row: int | None, *, located: bool = False) -> None:
        super().__init__(str(orig))
        self.orig = orig
        self.row = row
        self.located = located


@contextmanager
def rows_located(locate: Callable[[int], int], *, always: bool = False) -> Iterator[None]:
    """A ``WriteFailed`` leaving the block names its row through ``locate`` (a group's row ->
    its place in the caller's rows), once, here; one a streaming strategy located already
    (``located``) keeps its row unless ``always`` (the caller's rows are a subset again).

    >>> try:
    ...     with rows_located(lambda n: 10 + n):
    ...         raise WriteFailed(ValueError("refused"), 2)
    ... except WriteFailed as exc:
    ...     print(exc.row)
    12
    """
    try:
        yield
    except WriteFailed as exc:
        if exc.row is not None and (always or not exc.located):
            exc.row = locate(exc.row)
        raise


class ValueRefused(Exception):
    """The driver could not send a value as its column's type (found before the server saw
    it). Its ``sqlstate`` is SQL's data exception class, so it reads as a ``DataError``."""

    sqlstate = "22000"

    def __init__(
        self,
        column: str | None,
        orig: BaseException,
        value: Any = _NONE,
        *,
        sqlstate: str | None = None,
    ) -> None:
        where = f"column {column!r}: " if column else ""
        shown = "" if value is _NONE else f"cannot store {_shown(value)}: "
        super().__init__(f"{where}{shown}{orig}")
        self.column = column
        self.orig = orig
        if sqlstate is not None:  # another class of refusal (23502: a missing key)
            self.sqlstate = sqlstate


def _shown(value: Any) -> str:
    """A value for a message, cut short: the error names it, a log need not hold it all."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(err: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        return str(args[1])
    return str(err)


#: A unique key of the table: the names the database may give it and the value positions
#: (in a row of the statement) of its columns.
UniqueKey = tuple[frozenset[str], tuple[int, ...]]


def blamed_row(
    err: BaseException,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[tuple[str, bool]],
    keys: Sequence[UniqueKey] = (),
) -> int | None:
    """The 0-based row of ``rows`` the error names, or None when it names none.

    ``columns`` gives, per value position, the column name and whether it is unique on its own.
    ``keys``: the unique keys whose columns the rows send; a duplicate-key error naming one is
    looked up in that key's columns only (another unique column may hold the same value).
    """
    diag = getattr(err, "diag", None)
    context = getattr(diag, "context", None) if diag is not None else None
    for text in (context, _message(err)):
        if text:
            found = _COPY_LINE.search(text)
            if found:
                return int(found.group(1)) - 1
    text = _message(err)
    found = _AT_ROW.search(text)
    if found:
        return int(found.group(1)) - 1
    found = _DUPLICATE.search(text)
    if found:
        value, key_name = found.group(1), found.group(2)
        named = _key_named(key_name, keys)
        if named is not None:
            # MySQL shows a composite key's value as its parts joined by '-'.
            holders = [
                n for n, row in enumerate(rows)
                if "-".join(_render(row[i]) for i in named) == value
            ]
        else:
            unique = [i for i, (_name, is_unique) in enumerate(columns) if is_unique]
            holders = [
                n for n, row in enumerate(rows)
                if any(row[i] is not None and _render(row[i]) == value for i in unique)
            ]
        if holders:
            return holders[1] if len(holders) > 1 else holders[0]
        return None
    found = _NULL_COLUMN.search(text)
    if found:
        name = found.group(1)
        positions = [i for i, (col, _u) in enumerate(columns) if col == name]
        for n, row in enumerate(rows):
            if any(row[i] is None for i in positions):
                return n
    found = _JSON_CHECK.search(text)
    if found:
        name = found.group(1)
        positions = [i for i, (col, _u) in enumerate(columns) if col == name]
        for n, row in enumerate(rows):
            if any(isinstance(row[i], (str, bytes)) and not _strict_json(row[i])
                   for i in positions):
                return n
    if _JSON_SYNTAX in text:  # LOAD DATA: the check names neither row nor column
        for n, row in enumerate(rows):
            if any(isinstance(v, (str, bytes)) and _nan_json(v) for v in row):
                return n
    return None


def json_column(
    err: BaseException, row: Sequence[Any], columns: Sequence[tuple[str, bool]]
) -> str | None:
    """The column of ``row`` holding the JSON that MariaDB's LOAD DATA check refused
    (its error names none), or None for another error.

    >>> class Err(Exception):
    ...     pass
    >>> json_column(Err(4038, "Syntax error in JSON text in argument 1"),
    ...             ["a", '{"x": NaN}'], [("name", False), ("doc", False)])
    'doc'
    """
    if _JSON_SYNTAX not in _message(err):
        return None
    return next((name for value, (name, _u) in zip(row, columns)
                 if isinstance(value, (str, bytes)) and _nan_json(value)), None)


def not_strict_json(value: Any) -> bool:
    """Whether ``value`` (JSON text, or the Python value a JSON column sends) holds NaN or
    Infinity, which no server's JSON takes.

    >>> not_strict_json({"x": float("nan")}), not_strict_json('{"x": 1}'), not_strict_json(None)
    (True, False, False)
    """
    if type(value).__name__ in ("Json", "Jsonb"):  # psycopg's wrapper of the value
        value = getattr(value, "obj", value)
    if isinstance(value, (str, bytes)):
        return _nan_json(value)
    if value is None:
        return False
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return True
    except TypeError:  # a value only the column's own serializer writes: not ours to judge
        return False
    return False


def _nan_json(text: str | bytes) -> bool:
    """Whether ``text`` is JSON only with ``NaN`` or ``Infinity`` (a float the JSON of a
    Python value may hold, which no server takes)."""
    if _strict_json(text):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _strict_json(text: str | bytes) -> bool:
    """Whether ``text`` is JSON as a server checks it (no ``NaN`` or ``Infinity``).

    >>> _strict_json('{"x": 1.5}'), _strict_json('{"x": NaN}')
    (True, False)
    """
    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError:
        return False
    return True


def _key_named(name: str, keys: Sequence[UniqueKey]) -> tuple[int, ...] | None:
    """The value positions of the key the database named (MySQL 8 says ``table.key``)."""
    for candidate in (name, name.rsplit(".", 1)[-1]):
        wanted = candidate.lower()
        for names, positions in keys:
            if wanted in names:
                return positions
    return None


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def refused_in_rows(
    info: ModelInfo, fields: Sequence[str], rows: Iterable[Sequence[Any]],
    exc: sa.exc.StatementError | UnicodeError,
) -> tuple[int, str, Any, str | None] | None:
    """Where a statement over ``rows`` (values of ``fields``) was refused without the server
    naming the row (a multi-row UPDATE): (row, column name, value, SQLSTATE to report) of the
    first NULL of a NOT NULL column for a not-null violation, of the first text longer than
    its column for "too long", of the first JSON holding NaN or Infinity for a JSON refusal,
    of the first text with no UTF-8 (a lone surrogate) the driver could not encode; None
    for another refusal, or where no row explains it."""
    columns = [info.columns[f] for f in fields]
    orig = exc.orig if isinstance(exc, sa.exc.StatementError) else exc
    if isinstance(orig, UnicodeError):
        for n, row in enumerate(rows):
            for j, c in enumerate(columns):
                if isinstance(row[j], str) and not _encodes(row[j]):
                    return n, c.name, row[j], "22021"  # character not in repertoire
        return None
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    if isinstance(translate_error(exc), NotNullViolation):
        wanted = [(j, c.name) for j, c in enumerate(columns) if not c.nullable]
        for n, row in enumerate(rows):
            for j, name in wanted:
                if row[j] is None:
                    return n, name, None, "23502"
        return None
    text = str(exc.orig or exc).lower()
    if "json" in text or "constraint `" in text:  # JSON no server takes (NaN, Infinity)
        documents = [(j, c.name) for j, c in enumerate(columns) if isinstance(c.type, sa.JSON)]
        for n, row in enumerate(rows):
            for j, name in documents:
                if not_strict_json(row[j]):
                    return n, name, row[j], None
        return None
    if "too long" not in text:
        return None
    sized = [(j, c.name, c.type.length) for j, c in enumerate(columns)
             if isinstance(c.type, sa.String) and c.type.length]
    for n, row in enumerate(rows):
        for j, name, length in sized:
            if isinstance(row[j], str) and len(row[j]) > length:
                return n, name, row[j], None
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeError:
        return False
    return True
