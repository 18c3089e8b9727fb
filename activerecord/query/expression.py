"""SQL fragments with ``?`` placeholders, and column arithmetic without raw SQL.

``Expression("login_count + ?", 1)`` is a raw fragment whose ``?`` become bound parameters;
``col("login_count") + 1`` builds the same without any SQL text, and its column names are
checked against the model's table when it is used.

Example::

    >>> from activerecord.query.expression import Expression
    >>> clause = Expression("score * ?", 1.5).to_clause()
    >>> str(clause).startswith("score * :")
    True
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import TextClause

from ..errors import ParameterCountError

__all__ = ["Expression", "col", "fragment"]

_QUOTES = {"'", '"', "`"}


def fragment(sql: str, params: tuple[Any, ...] | list[Any], *, group: bool = False) -> TextClause:
    """Turn a fragment with ``?`` placeholders and its params into a ``TextClause``.

    Placeholders inside quoted literals are left alone; ``:`` in the text is escaped so that
    only our placeholders become parameters. ``group=True`` wraps the fragment in parentheses
    so ``A AND (B OR C)`` keeps its meaning.

    >>> print(fragment("a = ? OR b = '?'", (1,), group=True))  # doctest: +ELLIPSIS
    (a = :p0... OR b = '?')
    """
    pieces: list[str] = []
    count = 0
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
            pieces.append("\\:" if ch == ":" else ch)
        elif ch in _QUOTES:
            quote = ch
            pieces.append(ch)
        elif ch == "?":
            pieces.append(f":p{count}")
            count += 1
        elif ch == ":":
            pieces.append("\\:")
        else:
            pieces.append(ch)
    if count != len(params):
        raise ParameterCountError(
            f"SQL fragment {sql!r} has {count} '?' placeholder(s) but {len(params)} "
            "parameter(s) were given"
        )
    text = "".join(pieces)
    # Undo the escaping of PostgreSQL casts ("::type"), which text() already leaves alone.
    text = text.replace("\\:\\:", "::")
    if group:
        text = f"({text})"
    clause = sa.text(text)
    if count:
        clause = clause.bindparams(
            *(sa.bindparam(f"p{i}", value, unique=True) for i, value in enumerate(params))
        )
    return clause


class Expression:
    """A raw SQL fragment, with ``?`` parameters, used as an update value or a condition.

    >>> Expression("login_count + 1")
    Expression('login_count + 1')
    """

    __slots__ = ("params", "sql")

    def __init__(self, sql: str, *params: Any) -> None:
        if not isinstance(sql, str):
            raise TypeError(f"Expression takes SQL text, not {type(sql).__name__}")
        self.sql = sql
        self.params = params
        fragment(sql, params)  # fail early on a placeholder count mismatch

    def to_clause(self, *, group: bool = False) -> TextClause:
        """The fragment as a SQLAlchemy ``TextClause`` with bound parameters."""
        return fragment(self.sql, self.params, group=group)

    def __repr__(self) -> str:
        args = "".join(f", {p!r}" for p in self.params)
        return f"Expression({self.sql!r}{args})"


def col(name: str) -> sa.ColumnClause[Any]:
    """A column by name for safe arithmetic: ``col("login_count") + 1``.

    The name is checked against the model's table when the expression is used.

    >>> str(col("login_count") + 1)
    'login_count + :login_count_1'
    """
    if not isinstance(name, str):
        raise TypeError("col() takes a column name")
    return sa.column(name)
