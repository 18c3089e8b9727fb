"""Soft deletes: rows are marked with ``deleted_at`` instead of removed, and hidden everywhere.

A model with :class:`SoftDeleteMixin` gets a nullable ``deleted_at`` timestamp. Every statement
the library builds for it (reads, counts, aggregates, batches, updates, and the subqueries of
:meth:`Query.where_in <activerecord.query.query.Query.where_in>`) leaves soft-deleted rows out
unless the query says ``with_deleted()``; ``only_deleted()`` shows just them.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord, SoftDeleteMixin
    >>> class Memo(SoftDeleteMixin, ActiveRecord):
    ...     __table_name__ = "doc_memos"
    ...     id: int | None = None
    ...     text: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Memo.create_table()
    >>> _ = Memo.batch_insert_from_dicts([{"text": "a"}, {"text": "b"}])
    >>> Memo.query().where({"text": "a"}).delete()
    1
    >>> Memo.query().count(), Memo.query().with_deleted().count()
    (1, 2)
    >>> Memo.query().only_deleted().restore(all_rows=True)
    1
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import event

from ..aio.record import AsyncSoftDeleteMixin
from ..associations.dependent import dependents_before
from ..backend.dialects import AddLiveUniqueKeys, partial_index_supported
from ..backend.errors import driver_errors
from ..backend.transaction import on_rollback, retrying, tracks_rollback, write_connection
from ..errors import SchemaError
from .base import ActiveRecord
from .callbacks import (
    DELETE_AFTER,
    DELETE_BEFORE,
    RESTORE_AFTER,
    RESTORE_BEFORE,
    hooks_of,
    run_hooked,
)
from .state import Undo

if TYPE_CHECKING:
    pass

__all__ = ["SoftDeleteMixin", "soft_unique"]

#: The field every soft-deleting model has (its column name can be changed, see the mixin).
DELETED_AT = "deleted_at"


class SoftDeleteMixin(AsyncSoftDeleteMixin, ActiveRecord):
    """Soft deletes for a model: ``delete()`` marks rows, every query hides marked rows.

    The field is ``deleted_at``. Its column name is configurable by redeclaring the field with
    :class:`~activerecord.Col`: ``deleted_at: Annotated[datetime | None, Col(name="removed_on")]
    = None`` (also how a model on an existing table names its column). An aware type
    (``AwareDatetime | None``) stores UTC times.

    ``__soft_unique__ = ("email", ("tenant_id", "slug"))`` declares unique keys that only hold
    among live rows (see :func:`soft_unique`).

    With :class:`~activerecord.TimestampMixin`, soft delete and restore also set ``updated_at``.
    """

    __abstract__: ClassVar[bool] = True
    __soft_unique__: ClassVar[tuple[str | tuple[str, ...], ...]] = ()
    #: Read once into the model's ModelInfo (``deleted_field``, ``scopes``), which every
    #: query and writer asks.
    __ar_deleted_field__: ClassVar[str] = DELETED_AT

    deleted_at: dt.datetime | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("__abstract__", False):
            return
        for spec in cls.__soft_unique__:
            soft_unique(cls, *((spec,) if isinstance(spec, str) else spec))

    # -- instance level --------------------------------------------------------------------
    @property
    def is_deleted(self) -> bool:
        """True when the record is soft-deleted (``deleted_at`` is set)."""
        return self.deleted_at is not None

    def delete(self) -> bool:
        """Soft-delete this record: set ``deleted_at`` (and ``updated_at``) on its row.

        Returns False when the row is already deleted (or gone). Other unsaved changes to the
        record are neither written nor lost. With optimistic locking
        (:class:`~activerecord.OptimisticLockMixin`) a soft delete is a change of the row: it
        only marks the row at the version the record was read with, and adds one to it; a live
        row with another version raises :class:`~activerecord.errors.StaleRecordError`. If the
        ``Transaction`` it ran in rolls back, ``deleted_at``, ``updated_at`` and the version
        are put back.

        >>> import activerecord
        >>> class Pin(SoftDeleteMixin, ActiveRecord):
        ...     __table_name__ = "doc_pins"
        ...     id: int | None = None
        >>> _ = activerecord.connect("sqlite://")
        >>> Pin.create_table()
        >>> pin = Pin.create()
        >>> pin.delete(), pin.is_deleted, Pin.query().count()
        (True, True, 0)
        >>> pin.restore(), pin.is_deleted, Pin.query().count()
        (True, False, 1)
        >>> pin.hard_delete(), Pin.query().with_deleted().count()
        (True, 0)
        """
        values = self.__ar_info__.soft_delete_values()
        assert values is not None  # a SoftDeleteMixin model has its deleted_at field
        return self._mark(values, "default", "delete", DELETE_BEFORE, DELETE_AFTER)

    def restore(self) -> bool:
        """Undo a soft delete: clear ``deleted_at`` (and set ``updated_at``).

        Returns False when the row is not soft-deleted (or gone). With optimistic locking it
        checks and bumps the version as :meth:`delete` does. See :meth:`delete`.
        """
        values = self.__ar_info__.restore_values()
        assert values is not None
        return self._mark(values, "only_deleted", "restore", RESTORE_BEFORE, RESTORE_AFTER)

    def hard_delete(self) -> bool:
        """Remove this record's row for real, deleted or not. Returns True if a row went.

        With optimistic locking the row must still have the version the record was read with
        (else :class:`~activerecord.errors.StaleRecordError`, and the row stays). See
        :meth:`delete` for an example.
        """
        return retrying(self.database(), lambda: self._delete_hooked(purge=True))

    def _mark(
        self, values: dict[str, Any], scope: str, verb: str,
        befores: tuple[str, ...], afters: tuple[str, ...],
    ) -> bool:
        hooks = hooks_of(type(self))
        if not hooks or self._ar_original is None:
            return retrying(self.database(), lambda: self._mark_once(values, scope, verb))
        return retrying(self.database(), lambda: run_hooked(
            self, hooks, befores, lambda: self._mark_once(values, scope, verb), afters, verb
        ))

    def _mark_once(self, values: dict[str, Any], scope: str, verb: str) -> bool:
        original = self._ar_original
        if original is None:
            return False
        stmt, written, guarded = self._mark_statement(values, scope)
        before = dependents_before(type(self), stmt, purge=False) if verb == "delete" else []
        db = self.database()
        name = type(self).__name__
        with driver_errors(f"{verb} of {name}", operation=verb, model=name), \
                write_connection(db, statements=1 + len(before)) as conn:
            for dependent in before:
                conn.execute(dependent)
            changed = conn.execute(stmt).rowcount
            if not changed and guarded:
                scoped = self.__ar_info__.scope_criteria(scope)
                self._raise_if_stale(conn, f"{verb}d", scoped)
        if not changed:
            return False
        # A rollback puts deleted_at, updated_at, version back; fields not written keep their
        # pending changes.
        undo = Undo.single(ambient=tracks_rollback(db), rollback_only=True)
        undo.keep([self], [self.__dict__])
        self.__dict__.update(written)
        undo.written([self], [self.__dict__], tuple(written))
        restore = undo.succeeded()
        if restore is not None:
            on_rollback(restore, db)
        return True

    def _mark_statement(
        self, values: dict[str, Any], scope: str
    ) -> tuple[sa.Update, dict[str, Any], bool]:
        """The UPDATE of this record's soft delete (``scope="default"``) or restore
        (``"only_deleted"``), the values it writes (``values`` and, with optimistic locking,
        the next version) and whether it is guarded (no row changed while the row is there in
        ``scope`` means the record is stale)."""
        info = self.__ar_info__
        guard, extra = info.lock_guard(self._ar_original or self.__dict__)
        written = {**values, **extra}
        stmt = (
            sa.update(info.table)
            .where(*self._pk_criteria(), *info.scope_criteria(scope), *guard)
            .values({info.columns[f]: v for f, v in written.items()})
        )
        return stmt, written, bool(guard)


# -- unique keys among live rows -----------------------------------------------------------
_LIVE_KEYS = "activerecord_soft_unique"


def soft_unique(model: type[SoftDeleteMixin], *fields: str, name: str | None = None) -> sa.Index:
    """A unique key over ``fields`` that only holds among rows not soft-deleted.

    So a soft-deleted row does not block re-creating a record with the same values. Call it
    before the table is created (or declare ``__soft_unique__`` on the model). Per backend:

    * PostgreSQL, SQLite: a partial unique index ``... WHERE deleted_at IS NULL``;
    * MySQL, MariaDB (no partial indexes): a virtual generated column ``<deleted_at>_live``
      (``IF(deleted_at IS NULL, 1, NULL)``) and a unique index over ``(fields..., live)``;
      NULLs never collide in a unique index, so deleted rows never conflict.

    Two live rows with the same values raise :class:`~activerecord.UniqueViolation`.

    >>> import activerecord
    >>> class Handle(SoftDeleteMixin, ActiveRecord):
    ...     __table_name__ = "doc_handles"
    ...     id: int | None = None
    ...     nick: str
    >>> print(soft_unique(Handle, "nick").name)
    uq_doc_handles_nick_live
    >>> _ = activerecord.connect("sqlite://")
    >>> Handle.create_table()
    >>> Handle.create(nick="ada").delete()
    True
    >>> Handle.create(nick="ada").id
    2
    """
    info = getattr(model, "__ar_info__", None)
    if info is None or not issubclass(model, SoftDeleteMixin):
        raise SchemaError(f"soft_unique needs a concrete SoftDeleteMixin model, got {model!r}")
    if not fields:
        raise SchemaError(f"soft_unique({model.__name__}) needs at least one field")
    columns = [info.column(f) for f in fields]
    table = info.table
    deleted = info.columns[DELETED_AT]
    name = name or f"uq_{table.name}_{'_'.join(c.name for c in columns)}_live"
    index = sa.Index(
        name,
        *columns,
        unique=True,
        postgresql_where=deleted.is_(None),
        sqlite_where=deleted.is_(None),
    ).ddl_if(callable_=_partial_ok)
    keys: list[tuple[str, list[str]]] | None = table.info.get(_LIVE_KEYS)
    if keys is None:
        keys = table.info[_LIVE_KEYS] = []
        table.info[_LIVE_KEYS + "_deleted"] = deleted.name
        event.listen(table, "after_create", _add_live_keys)
    keys.append((name, [c.name for c in columns]))
    return index


def _partial_ok(
    ddl: Any,
    target: Any,
    bind: sa.Connection | None,
    tables: list[sa.Table] | None = None,
    state: Any = None,
    *,
    dialect: sa.Dialect,
    **kw: Any,
) -> bool:
    return partial_index_supported(dialect)


def _add_live_keys(table: sa.Table, connection: sa.Connection, **kw: Any) -> None:
    """After CREATE TABLE where partial indexes do not exist: the generated-column recipe."""
    if partial_index_supported(connection.dialect):
        return
    deleted_name = table.info[_LIVE_KEYS + "_deleted"]
    connection.execute(AddLiveUniqueKeys(table, deleted_name, table.info[_LIVE_KEYS]))
