"""Notebook display: result lists and queries show a table, not a wall of objects.

Jupyter calls ``_repr_html_``; IPython's plain-text display calls ``_repr_pretty_``. Plain
``repr()`` and ``print()`` are left as Python's, so logs and doctests read as before.

Example::

    >>> rows = RecordList([{"id": 1, "name": "Ann"}, {"id": 2, "name": None}])
    >>> print(text_table(rows))
    id | name
    ---+-----
     1 | Ann
     2 | None
    (2 rows)
    >>> "<table" in rows._repr_html_()
    True
"""

from __future__ import annotations

import enum
import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ActiveRecordError

if TYPE_CHECKING:
    from ..query.query import Query

__all__ = ["MAX_ROWS", "RecordList", "html_table", "query_html", "query_text", "text_table"]

#: Rows shown by a display; the rest are counted, not shown.
MAX_ROWS = 20
#: Characters of one cell shown before it is cut with "…".
MAX_CELL = 40

T = TypeVar("T")


def _columns(items: Sequence[Any]) -> list[str]:
    first = items[0]
    if isinstance(first, dict):
        names: dict[str, None] = {}
        for item in items[:MAX_ROWS]:
            names.update(dict.fromkeys(map(str, item)))
        return list(names)
    info = getattr(type(first), "__ar_info__", None)
    if info is not None:
        return list(info.fields)
    fields = getattr(type(first), "model_fields", None)
    return list(fields) if fields else ["value"]


def _cell(item: Any, name: str, columns: list[str]) -> str:
    if isinstance(item, dict):
        value = item.get(name)
    elif columns == ["value"]:
        value = item
    else:
        value = getattr(item, name, None)
    text = str(value.value if isinstance(value, enum.Enum) else value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _grid(items: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    if not items:
        return [], []
    columns = _columns(items)
    return columns, [[_cell(item, c, columns) for c in columns] for item in items[:MAX_ROWS]]


def _footer(count: int, more: bool) -> str:
    if more:
        return f"(first {MAX_ROWS} rows shown)"
    if count > MAX_ROWS:
        return f"(first {MAX_ROWS} of {count} rows shown)"
    return f"({count} row)" if count == 1 else f"({count} rows)"


def text_table(items: Sequence[Any], *, more: bool = False) -> str:
    """A plain-text table of records or dicts (the first :data:`MAX_ROWS`)."""
    columns, rows = _grid(items)
    if not columns:
        return "(no rows)"
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells: list[str], numeric: list[bool]) -> str:
        return " | ".join(
            cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(cells, widths, numeric)
        ).rstrip()

    numeric = [all(_is_number(r[i]) for r in rows) for i in range(len(columns))]
    out = [line(columns, [False] * len(columns)), "-+-".join("-" * w for w in widths)]
    out += [line(r, numeric) for r in rows]
    out.append(_footer(len(items), more))
    return "\n".join(out)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def html_table(items: Sequence[Any], *, more: bool = False, caption: str | None = None) -> str:
    """An HTML table of records or dicts (the first :data:`MAX_ROWS`)."""
    columns, rows = _grid(items)
    parts = ["<div>"]
    if caption:
        parts.append(f"<small>{html.escape(caption)}</small>")
    if columns:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows
        )
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    parts.append(f"<small>{html.escape(_footer(len(items), more) if columns else '(no rows)')}")
    parts.append("</small></div>")
    return "".join(parts)


class RecordList(list[T]):
    """A list of records (or dicts) that a notebook shows as a table."""

    def _repr_html_(self) -> str:
        return html_table(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text("[...]" if cycle else text_table(self))


def _preview(query: Query[Any]) -> tuple[list[Any], bool]:
    limit = query._limit  # the query's own limit, if smaller than the preview
    take = MAX_ROWS + 1 if limit is None else min(limit, MAX_ROWS + 1)
    rows = query.limit(take).all()
    return rows[:MAX_ROWS], len(rows) > MAX_ROWS


def query_html(query: Query[Any]) -> str:
    """The query's first rows as an HTML table, captioned with its SQL."""
    sql = query.to_sql().sql
    try:
        rows, more = _preview(query)
    except ActiveRecordError as exc:
        return f"<pre>{html.escape(sql)}\n\n{html.escape(f'{type(exc).__name__}: {exc}')}</pre>"
    return html_table(rows, more=more, caption=sql)


def query_text(query: Query[Any]) -> str:
    """The query's SQL and its first rows as a plain-text table."""
    sql = query.to_sql().sql
    try:
        rows, more = _preview(query)
    except ActiveRecordError as exc:
        return f"{sql}\n{type(exc).__name__}: {exc}"
    return f"{sql}\n{text_table(rows, more=more)}"
