"""What the library knows about one model class: its table, keys, name lookups, and what
its mixins add, as data (timestamp fields, the optimistic-lock field, the soft-delete column
and the scopes it makes).

Built once per class when it is defined; the query and the writers read it instead of
re-deriving it or asking the class (no hook methods called by name).

Example::

    >>> from activerecord import ActiveRecord, SoftDeleteMixin, TimestampMixin
    >>> class Sample(TimestampMixin, ActiveRecord):
    ...     __table_name__ = "doc_samples"
    ...     id: int | None = None
    ...     name: str
    >>> info = Sample.__ar_info__
    >>> info.pk_fields, info.autoincrement_pk, info.insert_stamps, info.update_stamps
    (('id',), 'id', ('created_at', 'updated_at'), ('updated_at',))
    >>> class Gone(SoftDeleteMixin, ActiveRecord):
    ...     __table_name__ = "doc_gone"
    ...     id: int | None = None
    >>> [str(c) for c in Gone.__ar_info__.scope_criteria("default")]
    ['doc_gone.deleted_at IS NULL']
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

import annotated_types
import sqlalchemy as sa
from pydantic import TypeAdapter
from pydantic.fields import FieldInfo
from sqlalchemy.sql.elements import ColumnElement

from ..errors import SchemaError, UnknownColumnError
from .schema import Col  # noqa: F401 - for the annotations of the examples below
from .table import table_for
from .types import UTCDateTime

if TYPE_CHECKING:
    from .base import ActiveRecord

__all__ = ["ModelInfo", "now"]


def now() -> dt.datetime:
    """The current time as the library stores it: naive local time, microsecond precision."""
    return dt.datetime.now()


@dataclass
class ModelInfo:
    """Table, lookups and mixin behaviour of one model class."""

    model_name: str
    table: sa.Table
    fields: tuple[str, ...]
    columns: dict[str, sa.Column[Any]]
    pk_fields: tuple[str, ...]
    autoincrement_pk: str | None
    server_generated: tuple[str, ...]
    field_infos: dict[str, FieldInfo]
    #: Fields an insert fills where the record has None (TimestampMixin: both stamps).
    insert_stamps: tuple[str, ...] = ()
    #: Fields every update sets unless the caller does (TimestampMixin: ``updated_at``).
    update_stamps: tuple[str, ...] = ()
    #: The optimistic-lock version field (OptimisticLockMixin), or None.
    lock_field: str | None = None
    #: The field marking a row deleted (SoftDeleteMixin's ``deleted_at``), or None.
    deleted_field: str | None = None
    #: The WHERE criteria of each scope: ``default`` hides soft-deleted rows,
    #: ``only_deleted`` shows just them, ``with_deleted`` (absent) adds nothing.
    scopes: dict[str, tuple[ColumnElement[bool], ...]] = field(default_factory=dict)
    _adapters: dict[str, TypeAdapter[Any]] = field(default_factory=dict)
    _condition_adapters: dict[tuple[str, bool], TypeAdapter[Any]] = field(default_factory=dict)
    _column_adapters: dict[str, TypeAdapter[list[Any]]] = field(default_factory=dict)

    @classmethod
    def build(cls, model: type[ActiveRecord]) -> ModelInfo:
        """The info of a model class, once its fields are known; the mixins' behaviour is
        read from the class attributes they declare (``__ar_insert_stamps__``,
        ``__ar_update_stamps__``, ``__version_field__``, ``__ar_deleted_field__``)."""
        name = model.__name__
        field_infos = {
            fname: finfo
            for fname, finfo in model.model_fields.items()
            if not finfo.exclude
        }
        table, columns = table_for(model, field_infos)
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
        deleted_field: str | None = getattr(model, "__ar_deleted_field__", None)
        if deleted_field is not None and deleted_field not in columns:
            deleted_field = None  # excluded from the table: no soft deletes
        return cls(
            model_name=name,
            table=table,
            fields=tuple(columns),
            columns=columns,
            pk_fields=pk_fields,
            autoincrement_pk=autoinc,
            server_generated=server_generated,
            field_infos=field_infos,
            insert_stamps=tuple(getattr(model, "__ar_insert_stamps__", ())),
            update_stamps=tuple(getattr(model, "__ar_update_stamps__", ())),
            lock_field=getattr(model, "__version_field__", None),
            deleted_field=deleted_field,
            scopes=_scopes(None if deleted_field is None else columns[deleted_field]),
        )

    # -- behaviour as data -----------------------------------------------------------------
    def insert_defaults(self) -> dict[str, Any]:
        """Values filled into inserted rows that lack them (``created_at``, ``updated_at``)."""
        if not self.insert_stamps:
            return {}
        return dict.fromkeys(self.insert_stamps, now())

    def update_defaults(self) -> dict[str, Any]:
        """Values set by every update unless the caller sets them (``updated_at``)."""
        if not self.update_stamps:
            return {}
        return dict.fromkeys(self.update_stamps, now())

    def scope_criteria(self, scope: str) -> list[ColumnElement[bool]]:
        """The WHERE criteria of ``scope`` (see :attr:`scopes`)."""
        return list(self.scopes.get(scope, ()))

    @property
    def deleted_column(self) -> sa.Column[Any] | None:
        """The column of :attr:`deleted_field`, or None."""
        return None if self.deleted_field is None else self.columns[self.deleted_field]

    def soft_delete_values(self) -> dict[str, Any] | None:
        """Values that mark a row deleted (with ``updated_at``), or None when deletes are
        real. An aware ``deleted_at`` is stamped in UTC."""
        deleted = self.deleted_field
        if deleted is None:
            return None
        aware = isinstance(self.columns[deleted].type, UTCDateTime)
        stamp = dt.datetime.now(dt.timezone.utc) if aware else now()
        return {**self.update_defaults(), deleted: stamp}

    def restore_values(self) -> dict[str, Any] | None:
        """Values that bring a soft-deleted row back, or None without soft deletes."""
        deleted = self.deleted_field
        if deleted is None:
            return None
        return {**self.update_defaults(), deleted: None}

    def lock_guard(
        self, stored: Mapping[str, Any]
    ) -> tuple[list[ColumnElement[bool]], dict[str, Any]]:
        """Extra WHERE criteria and SET values of one record's update, given the values it
        was read with: with a lock field, ``version = read`` and ``version + 1``."""
        lock = self.lock_field
        if lock is None:
            return [], {}
        version = stored[lock]
        return [self.columns[lock] == version], {lock: version + 1}

    # -- lookups ---------------------------------------------------------------------------
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
            adapter = TypeAdapter(self._field_type(fname))
            self._adapters[fname] = adapter
        return adapter

    def column_adapter(self, fname: str) -> TypeAdapter[list[Any]]:
        """A cached TypeAdapter validating a list of one field's values in one call (as
        :meth:`adapter` validates each: a column read back costs one call, not one a row)."""
        adapter = self._column_adapters.get(fname)
        if adapter is None:
            adapter = TypeAdapter(list[self._field_type(fname)])  # type: ignore[arg-type, misc]
            self._column_adapters[fname] = adapter
        return adapter

    def _field_type(self, fname: str) -> Any:
        """The field's annotation with its constraints (``Annotated``)."""
        finfo = self.field_infos[fname]
        tp: Any = finfo.annotation
        if finfo.metadata:
            tp = Annotated.__class_getitem__((tp, *finfo.metadata))  # type: ignore[attr-defined]
        return tp

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


def _scopes(deleted: sa.Column[Any] | None) -> dict[str, tuple[ColumnElement[bool], ...]]:
    if deleted is None:
        return {}
    return {"default": (deleted.is_(None),), "only_deleted": (deleted.is_not(None),)}
