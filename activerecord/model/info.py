"""What the library knows about one model class: its table, keys and name lookups.

Built once per class when it is defined; every operation reads it instead of re-deriving.

Example::

    >>> from activerecord import ActiveRecord
    >>> class Sample(ActiveRecord):
    ...     __table_name__ = "doc_samples"
    ...     id: int | None = None
    ...     name: str
    >>> Sample.__ar_info__.pk_fields, Sample.__ar_info__.autoincrement_pk
    (('id',), 'id')
"""

from __future__ import annotations

import copy
import decimal
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

import annotated_types
import sqlalchemy as sa
from pydantic import TypeAdapter
from pydantic.fields import FieldInfo
from sqlalchemy.sql.schema import ColumnCollectionConstraint, SchemaItem

from ..errors import SchemaError, UnknownColumnError
from .schema import Col, column_for_field, column_type, unwrap_annotated, unwrap_optional

if TYPE_CHECKING:
    from .base import ActiveRecord

__all__ = ["ModelInfo", "default_table_name"]


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


@dataclass
class ModelInfo:
    """Table and lookups of one model class."""

    model_name: str
    table: sa.Table
    fields: tuple[str, ...]
    columns: dict[str, sa.Column[Any]]
    pk_fields: tuple[str, ...]
    autoincrement_pk: str | None
    server_generated: tuple[str, ...]
    field_infos: dict[str, FieldInfo]
    _adapters: dict[str, TypeAdapter[Any]] = field(default_factory=dict)
    _condition_adapters: dict[tuple[str, bool], TypeAdapter[Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, model: type[ActiveRecord]) -> ModelInfo:
        name = model.__name__
        field_infos = {
            fname: finfo
            for fname, finfo in model.model_fields.items()
            if not finfo.exclude
        }
        existing = model.__dict__.get("__table__")
        table_args = _own_table_args(model)
        if isinstance(existing, sa.Table):
            if table_args is not None:
                raise SchemaError(
                    f"{name}: __table_args__ applies to a table the model declares; add "
                    f"constraints and indexes to the existing table {existing.name!r} instead"
                )
            table = existing
            columns = _match_existing(name, table, field_infos)
        else:
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
        pk_fields = tuple(f for f, c in columns.items() if c.primary_key)
        if not pk_fields:
            raise SchemaError(
                f"{name} has no primary key: add 'id: int | None = None' or mark a field "
                "with Annotated[..., Col(primary_key=True)]"
            )
        autoinc = None
        if len(pk_fields) == 1:
            pk_col = columns[pk_fields[0]]
            # Reflected serial/identity columns carry a server default: still autoincrement.
            if pk_col.autoincrement in (True, "auto") and isinstance(pk_col.type, sa.Integer):
                autoinc = pk_fields[0]
        server_generated = tuple(
            f for f, c in columns.items() if c.server_default is not None and not c.primary_key
        )
        return cls(
            model_name=name,
            table=table,
            fields=tuple(columns),
            columns=columns,
            pk_fields=pk_fields,
            autoincrement_pk=autoinc,
            server_generated=server_generated,
            field_infos=field_infos,
        )

    def column(self, key: str) -> sa.Column[Any]:
        """The column for a field name (or a column name); :class:`UnknownColumnError` if none.

        >>> from activerecord import ActiveRecord
        >>> class Thing(ActiveRecord):
        ...     __table_name__ = "doc_things"
        ...     id: int | None = None
        >>> Thing.__ar_info__.column("nope")
        Traceback (most recent call last):
        ...
        activerecord.errors.UnknownColumnError: Thing has no column 'nope' (columns: id)
        """
        found = self.columns.get(key)
        if found is not None:
            return found
        if isinstance(key, str):
            for column in self.columns.values():
                if column.name == key:
                    return column
        raise UnknownColumnError(str(key), self.model_name, self.fields)

    def labelled(self, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
        """The column labelled with its field name when its SQL name differs (``Col(name=)``),
        so result rows are keyed by field names."""
        for fname, candidate in self.columns.items():
            if candidate is column:
                return column if column.name == fname else column.label(fname)
        return column

    def select_list(self) -> list[sa.ColumnElement[Any]]:
        """Every column, labelled by field name (see :meth:`labelled`)."""
        return [c if c.name == f else c.label(f) for f, c in self.columns.items()]

    def select_columns(self, columns: Iterable[sa.Column[Any]] | None = None) -> list[Any]:
        """Columns to SELECT so that result keys are field names (a renamed column is labelled).

        >>> from typing import Annotated
        >>> from activerecord import ActiveRecord, Col
        >>> class Label(ActiveRecord):
        ...     __table_name__ = "doc_labels"
        ...     id: int | None = None
        ...     text: Annotated[str, Col(name="label_text")]
        >>> [str(c) for c in Label.__ar_info__.select_columns()]
        ['doc_labels.id', 'doc_labels.label_text']
        >>> [c.key for c in Label.__ar_info__.select_columns()]
        ['id', 'text']
        """
        if columns is None:
            return self.select_list()
        return [self.labelled(c) for c in columns]

    def field_for(self, key: str) -> str:
        """The field name for a field or column name."""
        if key in self.columns:
            return key
        column = self.column(key)
        return next(f for f, c in self.columns.items() if c is column)

    def by_column(self, values: Mapping[str, Any]) -> dict[sa.Column[Any], Any]:
        """Field-keyed values re-keyed by Column objects, for insert/update ``values()``
        (a column's key differs from its field name on an existing table with other names)."""
        columns = self.columns
        return {columns[f]: v for f, v in values.items()}

    def adapter(self, fname: str) -> TypeAdapter[Any]:
        """A cached pydantic TypeAdapter validating one field's values."""
        adapter = self._adapters.get(fname)
        if adapter is None:
            finfo = self.field_infos[fname]
            tp: Any = finfo.annotation
            if finfo.metadata:
                tp = Annotated.__class_getitem__((tp, *finfo.metadata))  # type: ignore[attr-defined]
            adapter = TypeAdapter(tp)
            self._adapters[fname] = adapter
        return adapter

    def condition_adapter(self, fname: str, *, many: bool = False) -> TypeAdapter[Any]:
        """A cached TypeAdapter for values a condition compares this field with (a list of
        them with ``many=True``): the field's type, lax, without its constraints.

        A value that the type cannot take (``"5abc"`` for an int) is refused; one that breaks
        only a constraint (longer than ``max_length``, below ``gt``) is still a value of the
        column's type that simply matches no row, as in Django and Rails.

        >>> from typing import Annotated
        >>> import annotated_types
        >>> from activerecord import ActiveRecord
        >>> class Tag(ActiveRecord):
        ...     __table_name__ = "doc_cond_tags"
        ...     id: int | None = None
        ...     name: Annotated[str, annotated_types.MaxLen(3)]
        >>> Tag.__ar_info__.condition_adapter("id", many=True).validate_python(range(2))
        [0, 1]
        >>> Tag.__ar_info__.condition_adapter("name").validate_python("longer")
        'longer'
        """
        key = (fname, many)
        adapter = self._condition_adapters.get(key)
        if adapter is None:
            finfo = self.field_infos[fname]
            tp: Any = _loosen(finfo.annotation)
            kept = [m for m in finfo.metadata if not _is_constraint(m)]
            if kept:
                tp = Annotated.__class_getitem__((tp, *kept))  # type: ignore[attr-defined]
            adapter = TypeAdapter(list[tp] if many else tp)
            self._condition_adapters[key] = adapter
        return adapter


def _is_constraint(meta: Any) -> bool:
    # annotated_types constraints and pydantic's own (max_digits, strict, pattern...) are all
    # BaseMetadata or GroupedMetadata; a nested Field(...) carries them too.
    return isinstance(
        meta, (annotated_types.BaseMetadata, annotated_types.GroupedMetadata, FieldInfo)
    )


def _loosen(tp: Any) -> Any:
    """``tp`` without constraints, also inside ``Optional``/unions and nested ``Annotated``."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        kept = [m for m in meta if not _is_constraint(m)]
        base = _loosen(base)
        return Annotated.__class_getitem__((base, *kept)) if kept else base
    if origin is Union or origin is types.UnionType:
        return Union.__getitem__(tuple(_loosen(a) for a in get_args(tp)))
    return tp


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
