"""The file a ``LOAD DATA LOCAL INFILE`` reads: each value written so the server reads it back
exactly, and the choice of whether that path may run at all.

The file uses the statement's default format (fields end at a tab, lines at a newline, the
escape character is a backslash, ``\\N`` is NULL), so the statement names no separator (a
``NO_BACKSLASH_ESCAPES`` session would read a quoted ``'\\\\'`` differently). Text escapes
the five characters the server would otherwise read as structure (backslash, tab, newline,
carriage return, NUL); binary values go as hexadecimal into a user variable the statement
``UNHEX``-es, so no byte depends on a character set; numbers and dates are written by the
driver's own literal functions (the text PyMySQL would send in an ``INSERT``). Anything else
is :class:`Unloadable`, and the rows take the ``INSERT`` path.

Example::

    >>> import datetime as dt
    >>> import pymysql
    >>> line = line_builder(("text", "text", "binary", "date"), pymysql.converters.encoders)
    >>> line(("a\\tb\\\\N", None, b"\\x00\\xff", dt.date(2024, 1, 2)))
    'a\\\\tb\\\\\\\\N\\t\\\\N\\t00ff\\t2024-01-02'
    >>> load_data_refusal(galera=False, server_allows=True, client_allows=True,
    ...                   consecutive=False, need_keys=True)
    'innodb_autoinc_lock_mode 2 (interleaved): one statement keys may not be one range'
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.types import TypeDecorator

__all__ = ["Unloadable", "column_kind", "escape_text", "line_builder", "load_data_refusal"]

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
_SPECIAL = re.compile("[\\\\\t\n\r\0]")
#: Types whose driver literal is the field as it is (numbers) or the field in quotes with
#: nothing escaped inside (dates and times: digits and separators only).
_PLAIN = (int, bool, float, Decimal)
_QUOTED = (dt.datetime, dt.date, dt.time, dt.timedelta)
_KINDS = {bytes: "binary", dt.datetime: "datetime", dt.date: "date", dt.time: "time"}


class Unloadable(Exception):
    """A value the file format has no exact form for here: the rows go by ``INSERT``."""


def escape_text(value: str) -> str:
    """A string as a field: the characters the server reads as structure, escaped.

    >>> escape_text("tab\\there"), escape_text("plain")
    ('tab\\\\there', 'plain')
    """
    return value.translate(_ESCAPES) if _SPECIAL.search(value) else value


def load_data_refusal(
    *,
    galera: bool,
    server_allows: bool,
    client_allows: bool,
    consecutive: bool,
    need_keys: bool,
    driver_allows: bool = True,
) -> str | None:
    """Why rows may not go by ``LOAD DATA LOCAL INFILE`` (None: they may).

    ``galera``: a Galera node (lock mode 2, and the load's write set may be split into
    separately committed pieces); ``server_allows``: ``@@local_infile``; ``client_allows``:
    the connection was opened with PyMySQL's ``local_infile``; ``consecutive``:
    ``innodb_autoinc_lock_mode`` 0 or 1, so the statement's keys are one range from
    ``LAST_INSERT_ID()`` (only asked when ``need_keys``); ``driver_allows``: a driver that
    sends such files on the calling thread (PyMySQL; not an async driver).

    >>> load_data_refusal(galera=True, server_allows=True, client_allows=True,
    ...                   consecutive=True, need_keys=False)
    'a Galera node: lock mode 2, and a load may be replicated in pieces'
    """
    if not driver_allows:
        return "the driver sends no LOAD DATA file here (only PyMySQL 1.0 to 1.2 does)"
    if galera:
        return "a Galera node: lock mode 2, and a load may be replicated in pieces"
    if not server_allows:
        return "the server has local_infile off"
    if not client_allows:
        return "the connection was opened without local_infile"
    if need_keys and not consecutive:
        return "innodb_autoinc_lock_mode 2 (interleaved): one statement keys may not be one range"
    return None


def column_kind(type_: Any) -> str:
    """How a column's values are written (see :func:`line_builder`): by its Python type.

    >>> import sqlalchemy as sa
    >>> column_kind(sa.LargeBinary()), column_kind(sa.DateTime()), column_kind(sa.JSON())
    ('binary', 'datetime', 'text')
    """
    while isinstance(type_, TypeDecorator):  # the bound value is the stored type's
        type_ = type_.impl_instance
    try:
        python_type = type_.python_type
    except NotImplementedError:
        return "text"
    return _KINDS.get(python_type, "text")


def line_builder(
    kinds: Sequence[str], encoders: Mapping[type, Callable[..., str]]
) -> Callable[[Sequence[Any]], str]:
    """A function writing one row (a tuple of bound values) as a line without its newline;
    ``kinds[i]`` (:func:`column_kind`): ``"binary"``: column i is written as hexadecimal;
    ``"datetime"``, ``"date"``, ``"time"``: a naive value of that type by ``isoformat``
    (the driver's literal, ten times faster); ``"text"``: anything. ``encoders``: the
    driver's literal functions by type. Built as source once per shape, as the row builders
    of ``insert/shape.py`` are: a value costs one type test in the usual case."""
    namespace: dict[str, Any] = {
        "N": "\\N", "E": escape_text, "L": _literal(encoders), "H": _hex,
        "DT": dt.datetime, "D": dt.date, "T": dt.time,
    }
    fields = []
    for i, kind in enumerate(kinds):
        v = f"v{i}"
        if kind == "binary":
            fields.append(f"{{N if {v} is None else H({v})}}")
        elif kind == "datetime":
            fields.append(
                f"{{N if {v} is None else {v}.isoformat(' ') "
                f"if type({v}) is DT and {v}.tzinfo is None else L({v})}}"
            )
        elif kind in ("date", "time"):
            tested = f"type({v}) is D"
            if kind == "time":
                tested = f"type({v}) is T and {v}.tzinfo is None"
            fields.append(f"{{N if {v} is None else {v}.isoformat() if {tested} else L({v})}}")
        else:
            fields.append(
                f"{{N if {v} is None else E({v}) if type({v}) is str "
                f"else str({v}) if type({v}) is int else L({v})}}"
            )
    names = "".join(f"v{i}, " for i in range(len(kinds)))
    source = f"def line(r):\n    ({names}) = r\n    return f\"" + "\\t".join(fields) + "\"\n"
    exec(compile(source, "<load data line>", "exec"), namespace)
    return namespace["line"]  # type: ignore[no-any-return]


def _literal(encoders: Mapping[type, Callable[..., str]]) -> Callable[[Any], str]:
    def literal(value: Any) -> str:
        kind = type(value)
        if kind in _PLAIN:
            return encoders[kind](value, None)
        if kind in _QUOTED:
            return encoders[kind](value, None)[1:-1]
        raise Unloadable(f"no LOAD DATA form for a {kind.__name__}")

    return literal


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    raise Unloadable(f"no LOAD DATA form for a {type(value).__name__} in a binary column")
