"""The table of a model class: declared from its fields and ``__table_args__``, or an
existing ``sqlalchemy.Table`` whose columns the fields are matched with (types checked).

Example::

    >>> from activerecord import ActiveRecord
    >>> class Crate(ActiveRecord):
    ...     __table_name__ = "doc_crates"
    ...     id: int | None = None
    ...     label: str
    >>> [c.name for c in Crate.__table__.columns], default_table_name("Crate")
    (['id', 'label'], 'crates')
"""

from __future__ import annotations

import copy
import decimal
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic.fields import FieldInfo
from sqlalchemy.sql.schema import ColumnCollectionConstraint, SchemaItem

from ..errors import SchemaError
from .schema import Col, column_for_field, column_type, unwrap_annotated, unwrap_optional

if TYPE_CHECKING:
    from .base import ActiveRecord

__all__ = ["default_table_name", "table_for"]


def default_table_name(class_name: str) -> str:
    """``UserProfile`` → ``user_profiles`` (snake case, plural, as Rails does).

    >>> default_table_name("Category"), default_table_name("Address")
    ('categories', 'addresses')
    """
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", class_name).lower()
    if snake.endswith("y") and not snake.endswith(("ay", "ey", "oy", "uy")):
        return snake[:-1] + "ies"
    if snake.endswith(("s", "x", "z", "ch", "sh")):
        return snake + "es"
    return snake + "s"


def table_for(
    model: type[ActiveRecord], field_infos: dict[str, FieldInfo]
) -> tuple[sa.Table, dict[str, sa.Column[Any]]]:
    """The model's table and the column of each field: the existing ``__table__`` the class
    sits on, or a new ``Table`` in the model's MetaData (replacing one of the same name)."""
    name = model.__name__
    existing = model.__dict__.get("__table__")
    table_args = _own_table_args(model)
    if isinstance(existing, sa.Table):
        if table_args is not None:
            raise SchemaError(
                f"{name}: __table_args__ applies to a table the model declares; add "
                f"constraints and indexes to the existing table {existing.name!r} instead"
            )
        return existing, _match_existing(name, existing, field_infos)
    table_name = model.__dict__.get("__table_name__") or default_table_name(name)
    metadata: sa.MetaData = model.__metadata__
    explicit_pk = [
        f for f, i in field_infos.items()
        if any(isinstance(m, Col) and m.primary_key for m in i.metadata)
    ]
    conventional_pk = not explicit_pk and "id" in field_infos
    columns = {
        fname: column_for_field(
            name, fname, finfo, primary_key=conventional_pk and fname == "id"
        )
        for fname, finfo in field_infos.items()
    }
    items, options = _table_args(name, table_args)
    if table_name in metadata.tables:
        metadata.remove(metadata.tables[table_name])  # a redefined class replaces it
    table = sa.Table(table_name, metadata, *columns.values(), *items, **options)
    for fname in _keyed_by(items, columns, field_infos):  # MySQL cannot key a TEXT
        columns[fname].type = column_for_field(
            name, fname, field_infos[fname], primary_key=columns[fname].primary_key,
            keyed=True,
        ).type
    return table, columns


def _own_table_args(model: type[ActiveRecord]) -> Any:
    """The class's own ``__table_args__``; inherited ones only when they are Table options:
    a constraint or index belongs to one table, and its name is one per schema."""
    own = model.__dict__.get("__table_args__")
    inherited = getattr(model, "__table_args__", None)
    if own is not None or inherited is None or isinstance(inherited, Mapping):
        return own if own is not None else inherited
    if isinstance(inherited, (tuple, list)) and all(isinstance(a, Mapping) for a in inherited):
        return inherited
    raise SchemaError(
        f"{model.__name__} inherits __table_args__ with constraints or indexes: declare them "
        "on the class itself (each belongs to one table)"
    )


def _table_args(model_name: str, args: Any) -> tuple[list[SchemaItem], dict[str, Any]]:
    """``__table_args__`` as SQLAlchemy's declarative takes it: a tuple of constraints and
    indexes, optionally ending with a dict of ``Table`` options, or that dict alone."""
    if args is None:
        return [], {}
    if isinstance(args, Mapping):
        return [], dict(args)
    if not isinstance(args, (tuple, list)):
        raise SchemaError(
            f"{model_name}.__table_args__ must be a tuple of constraints and indexes (and "
            f"optionally a dict of Table options last), not {type(args).__name__}"
        )
    items = list(args)
    options: dict[str, Any] = {}
    if items and isinstance(items[-1], Mapping):
        options = dict(items.pop())
    for item in items:
        if not isinstance(item, SchemaItem) or isinstance(item, sa.Column):
            raise SchemaError(
                f"{model_name}.__table_args__: {item!r} is not a constraint or index (declare "
                "columns as fields)"
            )
    return items, options


def _keyed_by(
    items: list[SchemaItem], columns: dict[str, sa.Column[Any]],
    field_infos: dict[str, FieldInfo],
) -> list[str]:
    """Fields mapped to unbounded text by default that a table-args key or index covers."""
    covered: list[str] = []
    for item in items:
        if isinstance(item, (ColumnCollectionConstraint, sa.Index)):
            for column in item.columns:
                fname = column.key
                explicit = any(
                    isinstance(m, Col) and m.type is not None
                    for m in field_infos[fname].metadata
                ) if fname in field_infos else True
                if (columns.get(fname) is column and not explicit
                        and type(column.type) is sa.Text and fname not in covered):
                    covered.append(fname)
    return covered


def _match_existing(
    model_name: str, table: sa.Table, field_infos: dict[str, FieldInfo]
) -> dict[str, sa.Column[Any]]:
    """Pair fields with an existing table's columns, checking that the types agree."""
    columns: dict[str, sa.Column[Any]] = {}
    for fname, finfo in field_infos.items():
        opts = next((m for m in finfo.metadata if isinstance(m, Col)), None)
        colname = opts.name if opts is not None and opts.name else fname
        if colname not in table.c:
            raise SchemaError(
                f"{model_name}.{fname}: table {table.name!r} has no column {colname!r} "
                f"(columns: {', '.join(c.name for c in table.c)})"
            )
        column = table.c[colname]
        _check_type(model_name, fname, finfo, column)
        if isinstance(column.type, sa.Float) and column.type.asdecimal:
            base = unwrap_optional(finfo.annotation)[0]
            if base is float:  # a float field reads floats (a reflected MySQL DOUBLE asks Decimal)
                as_float = copy.copy(column.type)
                as_float.asdecimal = False
                column.type = as_float
        columns[fname] = column
    return columns


def _python_type(sa_type: sa.types.TypeEngine[Any]) -> type | None:
    try:
        return sa_type.python_type
    except NotImplementedError:
        return None


def _check_type(model_name: str, fname: str, finfo: FieldInfo, column: sa.Column[Any]) -> None:
    metadata = list(finfo.metadata)
    base = unwrap_annotated(unwrap_optional(finfo.annotation)[0], metadata)
    expected = column_type(base, metadata=metadata)
    have = _python_type(column.type)
    want = None if expected is None else _python_type(expected)
    if have is None or want is None:
        return
    if issubclass(want, have) or issubclass(have, want):
        return
    numeric = (int, float, decimal.Decimal)
    if want in numeric and have in numeric:
        return
    raise SchemaError(
        f"{model_name}.{fname}: field type {finfo.annotation!r} does not match column "
        f"{column.table.name}.{column.name} of type {column.type!r}"
    )
