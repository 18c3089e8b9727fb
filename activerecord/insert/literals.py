"""PyMySQL's SQL literals, a column at a time: the multi-row ``VALUES`` text without a Python
call per value.

PyMySQL renders each value with ``Connection.escape`` (a few Python calls per value: most of a
batch insert's client time). For the common column types the same text comes from C-level
``map`` over a whole column: ``str.translate`` with the escape table, ``str`` of ints,
``isoformat`` of naive datetimes. Each converter is checked once per connection against
``Connection.escape`` on tricky samples, so a driver that renders a type otherwise keeps its
own rendering; any other type (and any value a converter cannot take) goes through
``escape`` as before.

Example::

    >>> class Conn:  # PyMySQL's rendering, as a stand-in for a connection
    ...     server_status = 0
    ...     def escape(self, value):
    ...         from pymysql.converters import escape_item, escape_string
    ...         if isinstance(value, str):
    ...             return "'" + escape_string(value) + "'"
    ...         return escape_item(value, "utf8")
    >>> Literals(Conn()).rows("(%s, %s, %s)", [("it's", 1, None), ("a\\\\b", 2, True)])
    ["('it\\\\'s', 1, NULL)", "('a\\\\\\\\b', 2, 1)"]
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter, methodcaller
from typing import Any

__all__ = ["Literals"]

Column = Sequence[Any]
#: A column's values as text, and whether each text still goes between single quotes.
Rendered = tuple[Sequence[str], bool]
Converter = Callable[[Any, Column], "Rendered | None"]

#: ``SERVER_STATUS_NO_BACKSLASH_ESCAPES``: quotes are doubled, backslashes are plain.
_NO_BACKSLASH_ESCAPES = 512
#: MySQL's string escapes (``mysql_real_escape_string``), as PyMySQL applies them; the table
#: is a list over ASCII (``str.translate`` runs several times faster with a list than a dict).
_ESCAPED = {
    "\0": "\\0", "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\032": "\\Z", '"': '\\"', "'": "\\'"
}
_ESCAPES = [_ESCAPED.get(chr(c), chr(c)) for c in range(128)]
_SPECIAL = re.compile("[" + re.escape("".join(_ESCAPED)) + "]")
_quoted = "'{}'".format
_iso_space = methodcaller("isoformat", " ")
_tzinfo = attrgetter("tzinfo")
_BOOL = {True: "1", False: "0"}
_NONE = {None}

_SAMPLES: dict[type, list[Any]] = {
    str: ["", "plain", "it's", 'say "hi"', "back\\slash", "nul\0", "lines\n\r\032", "ünï €"],
    int: [0, -7, 2**70],
    bool: [True, False],
    dt.datetime: [
        dt.datetime(2024, 5, 1, 12, 30, 15, 123456),
        dt.datetime(2024, 5, 1, 12, 30, 15),
        dt.datetime(5, 1, 2, 3, 4, 5, 6),
    ],
    type(None): [None],
}


def _str(lits: Literals, col: Column) -> Rendered:
    # One search over the whole column: most columns hold nothing to escape.
    text = "".join(col)
    if lits.conn.server_status & _NO_BACKSLASH_ESCAPES:
        if "'" in text:
            return list(map(str.replace, col, repeat("'"), repeat("''"))), True
    elif _SPECIAL.search(text) is not None:
        return list(map(str.translate, col, repeat(_ESCAPES))), True
    return col, True


def _int(lits: Literals, col: Column) -> Rendered:
    return list(map(str, col)), False


def _bool(lits: Literals, col: Column) -> Rendered:
    return list(map(_BOOL.__getitem__, col)), False


def _datetime(lits: Literals, col: Column) -> Rendered | None:
    if set(map(_tzinfo, col)) != _NONE:
        return None  # PyMySQL drops the offset of aware values: leave those to it
    return list(map(_iso_space, col)), True


def _none(lits: Literals, col: Column) -> Rendered:
    return ["NULL"] * len(col), False


_CONVERTERS: dict[type, Converter] = {
    str: _str,
    int: _int,
    bool: _bool,
    dt.datetime: _datetime,
    type(None): _none,
}


def _literals(rendered: Rendered) -> Sequence[str]:
    texts, quoted = rendered
    return list(map(_quoted, texts)) if quoted else texts


class Literals:
    """Renders rows of values as PyMySQL would, column by column (see the module docs)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.escape: Callable[[Any], str] = conn.escape
        self.converters = {t: c for t, c in _CONVERTERS.items() if self._agrees(t, c)}

    def _agrees(self, type_: type, converter: Converter) -> bool:
        samples = _SAMPLES[type_]
        try:
            rendered = converter(self, samples)
            return rendered is not None and list(_literals(rendered)) == list(
                map(self.escape, samples)
            )
        except Exception:  # noqa: BLE001 - any surprise: leave the type to the driver
            return False

    def column(self, col: Column) -> Rendered:
        """Every value of one column as text, and whether the texts still need quotes."""
        types = set(map(type, col))
        if len(types) == 1:
            converter = self.converters.get(types.pop())
            found = None if converter is None else converter(self, col)
            if found is not None:
                return found
        elif len(types) == 2 and type(None) in types:
            types.discard(type(None))
            converter = self.converters.get(types.pop())
            present = [v for v in col if v is not None]
            found = None if converter is None else converter(self, present)
            if found is not None:
                values = iter(_literals(found))
                return ["NULL" if v is None else next(values) for v in col], False
        return list(map(self.escape, col)), False

    def rows(self, row_format: str, rows: Sequence[tuple[Any, ...]]) -> list[str]:
        """Each row's ``row_format`` (``"(%s, %s)"``) filled with its values' literals."""
        if not rows:
            return []
        columns = [self.column(col) for col in zip(*rows)]
        parts = row_format.split("%s")
        if len(parts) == len(columns) + 1 and "%" not in "".join(parts):
            # Quotes go into the format rather than around every value.
            holes = ["'%s'" if quoted else "%s" for _texts, quoted in columns]
            fmt = parts[0] + "".join(h + p for h, p in zip(holes, parts[1:]))
            return list(map(fmt.__mod__, zip(*(texts for texts, _quoted in columns))))
        return list(map(row_format.__mod__, zip(*map(_literals, columns))))
