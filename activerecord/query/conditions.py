"""Conditions in three forms, each turned into one SQLAlchemy clause with names checked.

* a dict ``{"status": "active", "id": [1, 2], "deleted_at": None}``: equality, ``IN`` for
  any other iterable (list, tuple, set, range, generator, ``dict.keys()``...; ``None`` among
  the values also matches NULL), ``IS NULL`` for None; keys must be columns of the model, and
  every value is checked and converted by its field's type first (``"7"`` is 7 for an int,
  ``"abc"`` is refused), so no database compares it by its own rules;
* a SQL fragment with ``?`` placeholders and its params: ``("last_login < ?", date)``;
* a SQLAlchemy column expression (or an :class:`Expression`).

Example::

    >>> from activerecord import ActiveRecord
    >>> class Person(ActiveRecord):
    ...     __table_name__ = "doc_people"
    ...     id: int | None = None
    ...     status: str
    >>> str(condition(Person.__ar_info__, {"status": ["a", "b"]}, ()))
    'doc_people.status IN (__[POSTCOMPILE_status_1])'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pydantic
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from ..backend.dialects import in_list_as_array
from ..errors import QueryError, UnknownColumnError, ValidationError
from ..model.info import ModelInfo
from .expression import Expression, fragment
from .state import QueryState

__all__ = ["InValues", "check_names", "condition", "rebind", "value_clause"]

#: Iterables that are one value, not a list of values.
_SCALARS = (str, bytes, bytearray, memoryview, Mapping, pydantic.BaseModel)


class _Items(sa.types.TypeDecorator[Any]):
    """A list bound as one array parameter, each item processed as its column binds it.

    No cast is rendered: the server reads the array as an array of the column's type. A cast
    to the column's full type (``::NUMERIC(38, 10)[]``, ``::VARCHAR(20)[]``) would round or
    cut the items first, so a value the column cannot hold would match a row it is not.
    """

    impl = sa.types.NullType
    cache_ok = True

    def __init__(self, item_type: sa.types.TypeEngine[Any]) -> None:
        super().__init__()
        self.item_type = item_type

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        proc = self.item_type.dialect_impl(dialect).bind_processor(dialect)
        return list(value) if proc is None else [proc(v) for v in value]


class InValues(ColumnElement[bool]):
    """``column IN (values)``; on PostgreSQL ``column = ANY(:values)``, one array parameter,
    so no key count reaches its 65,535-parameter limit (and one statement text serves every
    list length).

    >>> from sqlalchemy.dialects import postgresql, sqlite
    >>> t = sa.table("t", sa.column("id", sa.Integer))
    >>> print(InValues(t.c.id, [1, 2]).compile(dialect=sqlite.dialect()))
    t.id IN (__[POSTCOMPILE_id_1])
    >>> print(InValues(t.c.id, [1, 2]).compile(dialect=postgresql.psycopg.dialect()))
    t.id = ANY (%(param_1)s)
    """

    __visit_name__ = "ar_in_values"
    inherit_cache = True
    _traverse_internals = [
        ("listed", InternalTraversal.dp_clauseelement),
        ("array", InternalTraversal.dp_clauseelement),
    ]
    type = sa.Boolean()

    def __init__(self, column: Any, values: list[Any], *, negate: bool = False) -> None:
        self.column = column
        self.values = values
        self.negate = negate
        param = sa.bindparam(None, values, type_=_Items(column.type))
        if negate:
            self.listed = column.not_in(values)
            self.array = column != sa.all_(param)
        else:
            self.listed = column.in_(values)
            self.array = column == sa.any_(param)

    @property
    def _from_objects(self) -> list[Any]:
        return list(self.listed._from_objects)

    def _negate(self) -> ColumnElement[Any]:
        return InValues(self.column, self.values, negate=not self.negate)

    def self_group(self, against: Any = None) -> ColumnElement[Any]:
        # A comparison already (as IN is): never "(...) = 1" where booleans are not native.
        return self


@compiles(InValues)
def _in_values(element: InValues, compiler: Any, **kw: Any) -> str:
    # An empty list keeps SQLAlchemy's own empty-IN form, true or false as it should be.
    if element.values and in_list_as_array(compiler.dialect):
        return str(compiler.process(element.array, **kw))
    return str(compiler.process(element.listed, **kw))


def check_names(info: ModelInfo, clause: Any) -> None:
    """Reject table-less column references (``col("x")``) that are not columns of the model."""
    for element in visitors.iterate(clause):
        if isinstance(element, sa.ColumnClause) and element.table is None:
            if getattr(element, "is_literal", False):
                continue
            name = element.name
            if name not in info.columns and name not in {c.name for c in info.columns.values()}:
                raise UnknownColumnError(name, info.model_name, info.fields)


def value_clause(info: ModelInfo, value: Any) -> Any:
    """An update value or comparison operand: Expression / column expression / plain value."""
    if isinstance(value, Expression):
        return value.to_clause(group=True)
    if isinstance(value, sa.ClauseElement):
        check_names(info, value)
        return value
    return value


def rebind(clause: Any, replace: Callable[[Any], Any]) -> Any:
    """``clause`` with elements swapped by ``replace`` (None: keep and look inside), and every
    ``+`` built again over the swapped operands.

    SQLAlchemy picks an operator's meaning when the expression is built: ``col("s") +
    col("t")`` is built over typeless columns and so means numeric addition. Built again over
    the model's real columns, ``+`` on strings is concatenation, as in Python.
    """

    def swap(element: Any) -> Any:
        if isinstance(element, BinaryExpression) and element.operator is operators.add:
            left = visitors.replacement_traverse(element.left, {}, swap)  # type: ignore[call-overload]
            right = visitors.replacement_traverse(element.right, {}, swap)  # type: ignore[call-overload]
            return left + right
        return replace(element)

    return visitors.replacement_traverse(clause, {}, swap)  # type: ignore[call-overload]


def _resolve_table_less(info: ModelInfo, clause: Any) -> Any:
    """Bind ``col("x")`` references to the model's real column so they render qualified."""

    def replace(element: Any) -> Any:
        if isinstance(element, sa.ColumnClause) and element.table is None:
            if not getattr(element, "is_literal", False):
                return info.column(element.name)
        return None

    return rebind(clause, replace)


def condition(info: ModelInfo, cond: Any, params: tuple[Any, ...]) -> ColumnElement[bool]:
    """One boolean clause from any of the three condition forms."""
    if isinstance(cond, str):
        return fragment(cond, params, group=True)  # type: ignore[return-value]
    if params:
        raise QueryError("'?' parameters are only accepted with a SQL text condition")
    if isinstance(cond, Expression):
        return cond.to_clause(group=True)  # type: ignore[return-value]
    if isinstance(cond, Mapping):
        if not cond:
            raise QueryError(f"empty condition dict for {info.model_name}")
        parts: list[ColumnElement[bool]] = []
        for key, value in cond.items():
            if not isinstance(key, str):
                raise QueryError(f"condition keys must be column names, got {key!r}")
            column = info.column(key)
            if value is None:
                parts.append(column.is_(None))
            elif isinstance(value, Expression):
                parts.append(column == value.to_clause(group=True))
            elif isinstance(value, sa.ClauseElement):
                check_names(info, value)
                parts.append(column == _resolve_table_less(info, value))
            elif _is_query(value):
                raise QueryError(
                    f"{info.model_name}.{key}: a query is not a list of values; use "
                    f"where_in({key!r}, query) for a subquery"
                )
            elif isinstance(value, Iterable) and not isinstance(value, _SCALARS):
                parts.append(_in_clause(info, key, column, value))
            else:
                parts.append(column == _checked(info, key, value, many=False))
        return parts[0] if len(parts) == 1 else sa.and_(*parts)
    if isinstance(cond, ColumnElement):
        check_names(info, cond)
        return _resolve_table_less(info, cond)  # type: ignore[no-any-return]
    raise QueryError(
        f"cannot use {type(cond).__name__} as a condition: give a dict, a SQL fragment "
        "with '?' parameters, or a SQLAlchemy expression"
    )


def _is_query(value: Any) -> bool:
    return isinstance(value, QueryState)  # every Query is one


def _in_clause(info: ModelInfo, key: str, column: Any, values: Iterable[Any]) -> Any:
    """``IN`` over the checked values; ``None`` among them matches NULL (as in Rails), which
    ``IN`` alone never does."""
    items = list(values)
    present = [v for v in items if v is not None]
    clause: Any = InValues(column, _checked(info, key, present, many=True))
    if len(present) != len(items):
        clause = sa.or_(clause, column.is_(None))
    return clause


def _checked(info: ModelInfo, key: str, value: Any, *, many: bool) -> Any:
    """The value (or list of values) as the field's type reads it; a value the type cannot
    take is refused before any SQL runs, where a database would compare it by its own rules
    (MySQL reads ``'5abc'`` as 5)."""
    fname = info.field_for(key)
    try:
        return info.condition_adapter(fname, many=many).validate_python(value)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        shown = value
        if many and error.get("loc"):
            index = error["loc"][0]
            shown = value[index] if isinstance(index, int) else value
        raise ValidationError(
            f"{info.model_name}.{fname}: invalid condition value {shown!r}: {error['msg']}",
            model=info.model_name,
            errors=exc.errors(),
        ) from None


def resolve(info: ModelInfo, clause: Any) -> Any:
    """Public form of the table-less column binding, for update values."""
    check_names(info, clause)
    return _resolve_table_less(info, clause)
