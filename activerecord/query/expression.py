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

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import ColumnClause, TextClause
from sqlalchemy.sql.functions import GenericFunction

from ..errors import ArgumentTypeError, DataError, ParameterCountError

__all__ = [
    "Expression", "col", "excluded", "fragment", "greatest", "is_integer_type", "least",
    "refuse_inexact", "whole",
]

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


class whole(sa.sql.expression.ColumnElement[Any]):  # noqa: N801 - a SQL construct
    """An expression assigned to an integer column, kept whole: as it is, except on SQLite,
    whose arithmetic turns a result beyond 64 bits into a REAL silently (stored, then
    refused on reading): there a result that is no integer (nor a whole REAL within 64
    bits, as ``round()`` gives) raises SQLite's own "integer overflow" (``abs()`` of the
    smallest integer), before the row is written.

    >>> from sqlalchemy.dialects import postgresql, sqlite
    >>> t = sa.table("t", sa.column("n", sa.Integer))
    >>> print(whole(t.c.n * t.c.n).compile(dialect=postgresql.dialect()))
    t.n * t.n
    """

    inherit_cache = True
    _traverse_internals = [("inner", visitors.InternalTraversal.dp_clauseelement)]

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.type = inner.type

    @property
    def _from_objects(self) -> Any:  # the tables it reads: the expression's
        return self.inner._from_objects


@compiles(whole)
def _whole(element: whole, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.inner, **kw))


@compiles(whole, "sqlite")
def _whole_sqlite(element: whole, compiler: Any, **kw: Any) -> str:
    inner = compiler.process(element.inner, **kw)
    # A whole REAL within 64 bits (what a function such as round() returns) is that
    # integer; any other REAL (a fraction, or arithmetic beyond 64 bits) or text raises.
    return (f"(CASE WHEN typeof({inner}) IN ('integer', 'null') THEN {inner} "
            f"WHEN typeof({inner}) = 'real' AND {inner} = CAST({inner} AS INTEGER) "
            f"AND {inner} >= -9223372036854775808.0 AND {inner} < 9223372036854775808.0 "
            f"THEN CAST({inner} AS INTEGER) "
            "ELSE abs(-9223372036854775807 - 1) END)")


def is_integer_type(type_: Any) -> bool:
    """Whether a column of ``type_`` holds integers (a TypeDecorator by what it decorates)."""
    return issubclass(type_._type_affinity or type(type_), sa.Integer)


def refuse_inexact(column: sa.Column[Any], value: Any, context: str) -> None:
    """Refuse, before any SQL, an expression assigned to an integer column that is not
    whole: a float or decimal in it (``col("n") + 0.5``, a float column), or a true
    division (``col("n") / 2``): the database would round it silently (and a float's sum
    loses digits beyond 2**53). What a function returns, or SQL text, is the caller's to
    vouch for; a cast to an integer type asks for the rounding.

    >>> t = sa.table("t", sa.column("n", sa.Integer), sa.column("f", sa.Float))
    >>> refuse_inexact(t.c.n, t.c.n // 2 + 1, "update of T")  # whole: fine
    >>> refuse_inexact(t.c.n, sa.cast(t.c.f, sa.Integer), "update of T")  # rounding asked for
    >>> try:
    ...     refuse_inexact(t.c.n, t.c.n + t.c.f, "update of T")
    ... except DataError as exc:
    ...     print(exc.column, "FLOAT" in str(exc))
    n True
    """
    if not is_integer_type(column.type):
        return
    inexact = _inexact(value)
    if inexact is None:
        return
    error = DataError(
        f"an expression with {inexact} for an integer column would be rounded by the "
        "database; give a whole value (// divides whole numbers, "
        "sqlalchemy.cast(..., sqlalchemy.Integer) asks for the rounding)"
    )
    error.context, error.column = context, column.name
    raise error


def _inexact(element: Any) -> str | None:
    """What makes ``element`` not whole (a FLOAT value, a true division), or None."""
    if isinstance(element, (sa.sql.elements.Cast, sa.sql.elements.TypeCoerce)):
        return None if is_integer_type(element.type) else _inexact(element.clause)
    if isinstance(element, sa.sql.functions.FunctionElement):
        return _numeric(element.type)
    if isinstance(element, sa.sql.elements.BinaryExpression):
        if element.operator is operators.truediv:
            return "a true division (/)"
        if isinstance(element.type, sa.Boolean):
            return None  # a comparison: 0 or 1
        return _inexact(element.left) or _inexact(element.right)
    if isinstance(element, sa.sql.elements.BindParameter):
        value = element.effective_value
        if isinstance(value, (float, Decimal)):
            return f"the value {value!r}"
        return _numeric(element.type)
    if isinstance(element, sa.sql.elements.Case):
        results = [result for _, result in element.whens]
        if element.else_ is not None:
            results.append(element.else_)
        return next((found for found in map(_inexact, results) if found), None)
    if isinstance(element, (sa.sql.elements.Grouping, sa.sql.elements.Label,
                            sa.sql.elements.UnaryExpression)):
        return _inexact(element.element)
    if isinstance(element, sa.ColumnElement):
        return _numeric(element.type)
    return None


#: The numeric types: SQLAlchemy 2.1 made ``Float`` a sibling of ``Numeric`` (both
#: ``NumericCommon``); in 2.0 it is a subclass.
_NUMERIC: tuple[type, ...] = (sa.Numeric, sa.Float)


def _numeric(type_: Any) -> str | None:
    """``"a FLOAT value"`` (its type's name) for a non-integer numeric type, else None."""
    if type_ is None or is_integer_type(type_):
        return None
    affinity = type_._type_affinity or type(type_)
    if not issubclass(affinity, _NUMERIC):
        return None
    name = getattr(type_, "impl_instance", type_).__visit_name__
    return f"a {str(name).upper()} value"
