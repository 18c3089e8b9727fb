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
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnClause, TextClause
from sqlalchemy.sql.functions import GenericFunction

from ..errors import ArgumentTypeError, ParameterCountError

__all__ = ["Expression", "col", "excluded", "fragment", "greatest", "least"]

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
            raise ArgumentTypeError(f"Expression takes SQL text, not {type(sql).__name__}")
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
        raise ArgumentTypeError("col() takes a column name")
    return sa.column(name)


class Excluded(ColumnClause[Any]):
    """The incoming value of a column in an upsert (see :func:`excluded`)."""

    inherit_cache = True


def excluded(name: str) -> Excluded:
    """In ``batch_upsert(update={...})``: the value the incoming row brings for ``name``.

    ``col(name)`` is the value the existing row holds, so ``col("n") + excluded("n")`` adds
    the incoming value to the stored one. Names are checked against the model's table.

    >>> str(col("login_count") + excluded("login_count"))
    'login_count + login_count'
    """
    if not isinstance(name, str):
        raise ArgumentTypeError("excluded() takes a column name")
    return Excluded(name)


class greatest(GenericFunction[Any]):  # noqa: N801 - reads as SQL
    """The greatest of its arguments: ``GREATEST`` (SQLite: the two-argument ``max``).

    Arguments should not be NULL: databases differ on NULL here.

    >>> from sqlalchemy.dialects import sqlite
    >>> str(greatest(col("score"), excluded("score")).compile(dialect=sqlite.dialect()))
    'max(score, score)'
    """

    name = "greatest"
    _register = False
    inherit_cache = True


class least(GenericFunction[Any]):  # noqa: N801 - reads as SQL
    """The least of its arguments: ``LEAST`` (SQLite: the two-argument ``min``).

    >>> str(least(col("score"), 3))
    'least(score, :least_1)'
    """

    name = "least"
    _register = False
    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(least, "sqlite")
def _least_sqlite(element: least, compiler: Any, **kw: Any) -> str:
    return f"min({compiler.process(element.clauses, **kw)})"
