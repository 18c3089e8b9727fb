"""Conditions in three forms, each turned into one SQLAlchemy clause with names checked.

* a dict ``{"status": "active", "id": [1, 2], "deleted_at": None}``: equality, ``IN`` for
  lists/tuples/sets, ``IS NULL`` for None; keys must be columns of the model;
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

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, ColumnElement

from ..errors import QueryError, UnknownColumnError
from ..meta import ModelInfo
from .expression import Expression, fragment

__all__ = ["check_names", "condition", "rebind", "value_clause"]


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
            elif isinstance(value, (list, tuple, set, frozenset)):
                parts.append(column.in_(list(value)))
            elif isinstance(value, Expression):
                parts.append(column == value.to_clause(group=True))
            elif isinstance(value, sa.ClauseElement):
                check_names(info, value)
                parts.append(column == _resolve_table_less(info, value))
            else:
                parts.append(column == value)
        return parts[0] if len(parts) == 1 else sa.and_(*parts)
    if isinstance(cond, ColumnElement):
        check_names(info, cond)
        return _resolve_table_less(info, cond)  # type: ignore[no-any-return]
    raise QueryError(
        f"cannot use {type(cond).__name__} as a condition: give a dict, a SQL fragment "
        "with '?' parameters, or a SQLAlchemy expression"
    )


def resolve(info: ModelInfo, clause: Any) -> Any:
    """Public form of the table-less column binding, for update values."""
    check_names(info, clause)
    return _resolve_table_less(info, clause)
