"""The ``ActiveRecord`` base class: a pydantic model that is also a table.

A thin facade: each method forwards to the module that does the work (records built from
rows in :mod:`.build`; ``save``/``delete``/``refresh`` in :mod:`.persist`; the batch entry
points in :mod:`.batch` over :mod:`activerecord.write`; the loaders in :mod:`activerecord.io`;
the model's behaviour as data in :mod:`.info`).

Longer than 400 lines because it is the public model API in one class: some forty methods,
each with its signature and a docstring (most with a runnable example), whose bodies only
forward; split across mixin modules, the API would lose its one place to read and the
self-typed returns (``Query[T]``, ``list[T]``) their typing.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Note(ActiveRecord):
    ...     __table_name__ = "doc_notes"
    ...     id: int | None = None
    ...     body: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Note.create_table()
    >>> note = Note.create(body="hello")
    >>> Note.find(note.id).body
    'hello'
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import pydantic
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from ..aio.record import AsyncRecordMixin
from ..associations.keywords import parsed_with_relations, validate_with_relations
from ..associations.loading import assign_related
from ..associations.relation import note_defined, relation_of, relations_of
from ..backend.database import DEFAULT, Database, get_database
from ..backend.transaction import retrying, write_connection
from ..errors import RecordNotFound, SchemaError, ValidationError, error_context
from ..io.dataframes import insert_dataframe
from ..io.files import load_csv, load_jsonl
from ..query.query import Query
from ..write.hooks import ChunkHooks
from ..write.upsert import UpsertResult
from . import batch, deferred, persist, state
from .batch_hooks import batch_hooks
from .build import records_from_columns, records_from_rows
from .callbacks import HookMethods
from .info import ModelInfo
from .state import mark_persisted, set_snapshot, snapshot_of

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

__all__ = ["ActiveRecord", "metadata"]

T = TypeVar("T", bound="ActiveRecord")

#: The MetaData every model's table lives in unless the model names another
#: (``__metadata__ = my_metadata``). Hand it to Alembic's ``target_metadata``.
metadata = sa.MetaData()


class ActiveRecord(HookMethods, AsyncRecordMixin, BaseModel):
    """Base class of models. Subclass it, declare fields, name the table.

    Class attributes: ``__table_name__`` (default: plural snake case of the class name),
    ``__table_args__`` (constraints and indexes of the declared table, optionally ending with
    a dict of ``Table`` options, as in SQLAlchemy's declarative: named and composite unique
    keys are conflict targets of :meth:`batch_upsert`), ``__table__`` (an existing
    ``sqlalchemy.Table`` to sit on instead), ``__database__`` (the name given to
    :func:`activerecord.connect`), ``__metadata__``, ``__abstract__``.

    >>> import sqlalchemy as sa
    >>> class Seat(ActiveRecord):
    ...     __table_name__ = "doc_seats"
    ...     __table_args__ = (sa.UniqueConstraint("row", "number", name="uq_seat"),
    ...                       sa.Index("ix_seat_row", "row"))
    ...     id: int | None = None
    ...     row: str
    ...     number: int
    >>> sorted(c.name for c in Seat.__table__.constraints if isinstance(c, sa.UniqueConstraint))
    ['uq_seat']
    """

    model_config = ConfigDict(validate_assignment=True, from_attributes=True)

    __abstract__: ClassVar[bool] = True
    __table_name__: ClassVar[str | None] = None
    __table_args__: ClassVar[tuple[Any, ...] | dict[str, Any] | None] = None
    __database__: ClassVar[str] = DEFAULT
    __metadata__: ClassVar[sa.MetaData] = metadata
    __table__: ClassVar[sa.Table]
    __ar_info__: ClassVar[ModelInfo]
    #: The model's relation names: keywords the constructor and ``model_validate`` take.
    __ar_relation_names__: ClassVar[frozenset[str]] = frozenset()
    c: ClassVar[sa.ColumnCollection[str, sa.Column[Any]]]

    # The values as last read or written: the snapshot (see activerecord.model.state).
    # ``_ar_related``: the relations read or assigned (activerecord.associations), likewise a
    # slot, not a pydantic ``PrivateAttr`` (which makes pydantic run Python code per instance).
    __slots__ = (state.SLOT, "_ar_related")

    @property
    def _ar_original(self) -> dict[str, Any] | None:
        return snapshot_of(self)

    @_ar_original.setter
    def _ar_original(self, values: dict[str, Any] | None) -> None:
        set_snapshot(self, values)

    def _setattr_handler(self, name: str, value: Any) -> Any:
        # pydantic memoizes one handler per field: a validated field's validates as pydantic's
        # does, except in a batch's before hook, which validates the chunk's at once.
        handler = super()._setattr_handler(name, value)  # type: ignore[misc]
        return deferred.setattr_handler(type(self), name, handler)

    # pydantic copies and pickles its own slots only: carry the snapshot along.
    def __copy__(self: T) -> T:
        copied = super().__copy__()
        original = self._ar_original
        if original is not None:  # its own dict: model_copy(update=...) writes in place
            set_snapshot(copied, dict(original))
        return copied

    def __deepcopy__(self: T, memo: dict[int, Any] | None = None) -> T:
        copied = super().__deepcopy__(memo)
        original = self._ar_original
        if original is not None:
            set_snapshot(copied, dict(copy.deepcopy(original, memo)))
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["_ar_persisted"] = self._ar_original
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        state = dict(state)
        original = state.pop("_ar_persisted", None)
        super().__setstate__(state)
        set_snapshot(self, original)

    def __init__(self, /, **data: Any) -> None:
        """Validate the fields; relations given as keywords (``books=[...]``, records or
        dicts) are set as assigning them after construction would
        (:mod:`activerecord.associations.keywords`).

        >>> from activerecord import ActiveRecord, belongs_to
        >>> class Shop(ActiveRecord):
        ...     __table_name__ = "doc_init_shops"
        ...     id: int | None = None
        >>> class Clerk(ActiveRecord):
        ...     __table_name__ = "doc_init_clerks"
        ...     id: int | None = None
        ...     shop_id: int | None = None
        ...     shop = belongs_to(Shop)
        >>> Clerk(shop=Shop(id=4)).shop_id
        4
        """
        __tracebackhide__ = True
        names = self.__ar_relation_names__
        if names and not names.isdisjoint(data):
            validate_with_relations(type(self), data, names, self)
        elif self.__pydantic_validator__.validate_python(data, self_instance=self) is not self:
            warnings.warn(  # as pydantic's own __init__ warns
                "A custom validator is returning a value other than `self`; returning anything "
                "other than `self` from a top level model validator isn't supported when "
                "validating via `__init__`.",
                stacklevel=2,
            )
        # A new record: its snapshot slot set (to None), so reading it never raises (batches
        # inside a Transaction read every record's).
        _set_snapshot_slot(self, None)

    # pydantic's core validator builds instances itself unless a model has its own
    # ``__init__``; this one only adds to the constructor, so it keeps that fast path.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls: type[T], obj: Any, **options: Any) -> T:
        """pydantic's ``model_validate``; a dict may also hold relations, as the constructor
        takes them.

        >>> from activerecord import ActiveRecord, has_many
        >>> class Bin(ActiveRecord):
        ...     __table_name__ = "doc_validate_bins"
        ...     id: int | None = None
        ...     items = has_many("BinItem")
        >>> class BinItem(ActiveRecord):
        ...     __table_name__ = "doc_validate_bin_items"
        ...     id: int | None = None
        ...     bin_id: int | None = None
        >>> [item.bin_id for item in Bin.model_validate({"id": 2, "items": [{}]}).items]
        [2]
        """
        __tracebackhide__ = True
        names = cls.__ar_relation_names__
        if names and isinstance(obj, Mapping) and not names.isdisjoint(obj):
            return validate_with_relations(cls, obj, names, **options)  # type: ignore[return-value]
        return super().model_validate(obj, **options)

    @classmethod
    def model_validate_json(cls: type[T], json_data: str | bytes | bytearray,
                            **options: Any) -> T:
        """pydantic's ``model_validate_json``; the object may also hold relations, as the
        constructor takes them (validated in JSON mode).

        >>> from activerecord import ActiveRecord, has_many
        >>> class Tray(ActiveRecord):
        ...     __table_name__ = "doc_json_trays"
        ...     id: int | None = None
        ...     cups = has_many("TrayCup")
        >>> class TrayCup(ActiveRecord):
        ...     __table_name__ = "doc_json_tray_cups"
        ...     id: int | None = None
        ...     tray_id: int | None = None
        >>> [cup.tray_id for cup in Tray.model_validate_json('{"id": 5, "cups": [{}]}').cups]
        [5]
        """
        __tracebackhide__ = True
        names = cls.__ar_relation_names__
        data = parsed_with_relations(json_data, names) if names else None
        if data is not None:
            return validate_with_relations(  # type: ignore[return-value]
                cls, data, names, json=True, **options
            )
        return super().model_validate_json(json_data, **options)

    # pydantic's mypy plugin declares a model_construct of the fields' own signature.
    @classmethod  # type: ignore[no-redef]
    def model_construct(  # type: ignore[override]
        cls: type[T], _fields_set: set[str] | None = None, **values: Any
    ) -> T:
        """pydantic's ``model_construct`` (nothing validated); relations given as keywords
        are set as assigning them would (records of the relation's target; the foreign keys
        that follow from them set), not dropped.

        >>> from activerecord import ActiveRecord, has_many
        >>> class Crate(ActiveRecord):
        ...     __table_name__ = "doc_construct_crates"
        ...     id: int | None = None
        ...     jars = has_many("CrateJar")
        >>> class CrateJar(ActiveRecord):
        ...     __table_name__ = "doc_construct_crate_jars"
        ...     id: int | None = None
        ...     crate_id: int | None = None
        >>> [jar.crate_id for jar in Crate.model_construct(id=6, jars=[CrateJar()]).jars]
        [6]
        """
        names = cls.__ar_relation_names__
        if not names or names.isdisjoint(values):
            return super().model_construct(_fields_set, **values)
        related = [(name, values.pop(name)) for name in [k for k in values if k in names]]
        record = super().model_construct(_fields_set, **values)
        for name, value in related:
            assign_related(relation_of(cls, name), record, value)
        return record

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Runs before pydantic collects the fields, so a colliding name is refused here
        # instead of becoming pydantic's "shadows an attribute" warning.
        _refuse_reserved_names(cls)
        super().__init_subclass__(**kwargs)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("__abstract__", False):
            return
        info = ModelInfo.build(cls)
        type.__setattr__(cls, "__ar_relation_names__", frozenset(relations_of(cls)))
        note_defined(cls)  # a relation naming a model means the newest of that name
        type.__setattr__(cls, "__ar_info__", info)
        type.__setattr__(cls, "__table__", info.table)
        type.__setattr__(cls, "c", info.table.c)

    # -- binding ---------------------------------------------------------------------------
    @classmethod
    def database(cls) -> Database:
        """The :class:`~activerecord.backend.database.Database` this model uses."""
        return get_database(cls.__database__)

    @classmethod
    def create_table(cls, *, checkfirst: bool = True) -> None:
        """CREATE TABLE (and its indexes) if it does not exist."""
        db = cls.database()
        with write_connection(db) as conn:
            cls.__ar_info__.table.create(conn, checkfirst=checkfirst)

    @classmethod
    def drop_table(cls, *, checkfirst: bool = True) -> None:
        """DROP TABLE if it exists."""
        db = cls.database()
        with write_connection(db) as conn:
            cls.__ar_info__.table.drop(conn, checkfirst=checkfirst)

    # -- what the mixins add, as ModelInfo holds it (the writers ask by these names) -------
    @classmethod
    def _insert_defaults(cls) -> dict[str, Any]:
        """Values filled into inserted rows that lack them (TimestampMixin: created_at...)."""
        return cls.__ar_info__.insert_defaults()

    @classmethod
    def _update_defaults(cls) -> dict[str, Any]:
        """Values set by every update unless the caller sets them (TimestampMixin: updated_at)."""
        return cls.__ar_info__.update_defaults()

    @classmethod
    def _scope_criteria(cls, scope: str) -> list[ColumnElement[bool]]:
        """The default scope's WHERE criteria for ``scope`` (SoftDeleteMixin hides rows)."""
        return cls.__ar_info__.scope_criteria(scope)

    @classmethod
    def _soft_delete_values(cls) -> dict[str, Any] | None:
        """Values that mark a row deleted, or None when deletes are real."""
        return cls.__ar_info__.soft_delete_values()

    @classmethod
    def _restore_values(cls) -> dict[str, Any] | None:
        """Values that bring a soft-deleted row back, or None when the model has no soft deletes."""
        return cls.__ar_info__.restore_values()

    @classmethod
    def _lock_field(cls) -> str | None:
        """The optimistic-lock version field, or None (OptimisticLockMixin names one)."""
        return cls.__ar_info__.lock_field

    @classmethod
    def _batch_hooks(cls, kind: str, records: Any) -> ChunkHooks | None:
        """The hook calls a batch write of ``kind`` makes per chunk, or None without hooks."""
        return batch_hooks(cls, kind, records)

    def _update_guard(self) -> tuple[list[ColumnElement[bool]], dict[str, Any]]:
        """Extra WHERE criteria and SET values of this record's ``save()`` update.

        When the criteria are not empty and no row matches, ``save()`` raises
        :class:`~activerecord.errors.StaleRecordError` (OptimisticLockMixin checks the version).
        The instance ``delete()`` (and a soft delete's or restore's UPDATE) carries the same
        criteria; it raises when no row matches though the row is still there.
        """
        return self.__ar_info__.lock_guard(self._ar_original or self.__dict__)

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def _from_db(cls: type[T], row: Mapping[Any, Any]) -> T:
        return cls._from_db_rows(list(row.keys()), [tuple(row.values())])[0]

    @classmethod
    def _from_db_rows(cls: type[T], keys: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[T]:
        """Records from rows read (``keys``: their field names), marked persisted."""
        return records_from_rows(cls, keys, rows)

    @classmethod
    def _from_db_columns(
        cls: type[T], keys: Sequence[str], columns: Sequence[Sequence[Any]]
    ) -> list[T]:
        """Records from columns of values read; see :mod:`activerecord.model.build`."""
        return records_from_columns(cls, keys, columns)

    def _mark_persisted(self) -> None:
        mark_persisted(self)

    @property
    def is_new_record(self) -> bool:
        """True until the record has been saved or was loaded from the database."""
        return self._ar_original is None

    @property
    def changed_fields(self) -> set[str]:
        """Fields changed since the record was loaded or last saved."""
        original = self._ar_original
        fields = self.__ar_info__.fields
        if original is None:
            return set(fields)
        current = self.__dict__
        return {f for f in fields if current.get(f) != original.get(f)}

    def _pk_criteria(self) -> list[ColumnElement[bool]]:
        info = self.__ar_info__
        source = self._ar_original or self.__dict__
        return [info.columns[f] == source[f] for f in info.pk_fields]

    # -- class-level entry points ----------------------------------------------------------
    @classmethod
    def query(cls: type[T]) -> Query[T]:
        """A new :class:`~activerecord.query.query.Query` over this model."""
        return Query(cls)

    @classmethod
    def create(cls: type[T], **values: Any) -> T:
        """Validate, insert and return a new record.

        Invalid values raise :class:`~activerecord.errors.ValidationError` (constructing the
        instance yourself raises pydantic's own ``ValidationError``, as any pydantic model does).
        """
        try:
            record = cls(**values)
        except pydantic.ValidationError as exc:
            raise ValidationError(
                f"invalid {cls.__name__}: {exc}", model=cls.__name__, errors=exc.errors()
            ) from exc
        record.save()
        return record

    @classmethod
    def find(cls: type[T], pk: Any) -> T:
        """The record with this primary key (a tuple for composite keys).

        Raises :class:`~activerecord.errors.RecordNotFound` when there is none. The same as
        ``query().find(pk)``.
        """
        return cls.query().find(pk)

    @classmethod
    def find_one(cls: type[T], conditions: Any, *params: Any) -> T | None:
        """The first record matching the conditions, or None."""
        return cls.query().where(conditions, *params).first()

    @classmethod
    def find_all(cls: type[T], conditions: Any = None, *params: Any) -> list[T]:
        """Every record matching the conditions (all records when none are given)."""
        query = cls.query()
        if conditions is not None:
            query = query.where(conditions, *params)
        return query.all()

    # -- aliases for names other ActiveRecord libraries use (see docs/migrating.md) --------
    @classmethod
    def find_one_or_fail(cls: type[T], conditions: Any, *params: Any) -> T:
        """Like :meth:`find_one`, but raises :class:`RecordNotFound` instead of returning None.

        >>> import activerecord
        >>> class Pet(ActiveRecord):
        ...     __table_name__ = "doc_pets"
        ...     id: int | None = None
        >>> _ = activerecord.connect("sqlite://")
        >>> Pet.create_table()
        >>> Pet.find_one_or_fail({"id": 1})
        Traceback (most recent call last):
        ...
        activerecord.errors.RecordNotFound: no Pet matches {'id': 1}
        """
        found = cls.find_one(conditions, *params)
        if found is None:
            shown = conditions if not params else (conditions, *params)
            raise RecordNotFound(
                f"no {cls.__name__} matches {shown!r}", model=cls.__name__, key=conditions
            )
        return found

    @classmethod
    def bulk_create(cls, records: Iterable[ActiveRecord], **options: Any) -> int:
        """Alias of :meth:`batch_insert` (same options, same result)."""
        return cls.batch_insert(records, **options)

    @classmethod
    def update_all(
        cls,
        values: Mapping[str, Any],
        conditions: Any = None,
        *params: Any,
        all_rows: bool = False,
    ) -> int:
        """Alias: ``query().where(conditions).update(values, all_rows=all_rows)``, with the
        same guard: no conditions raise :class:`~activerecord.errors.UnsafeWriteError` unless
        ``all_rows=True``."""
        query = cls.query() if conditions is None else cls.query().where(conditions, *params)
        return query.update(values, all_rows=all_rows)

    @classmethod
    def delete_all(cls, conditions: Any = None, *params: Any, all_rows: bool = False) -> int:
        """Alias: ``query().where(conditions).delete(all_rows=all_rows)``, with the same guard.
        Soft-deleting models mark rows, as ``delete()`` does."""
        query = cls.query() if conditions is None else cls.query().where(conditions, *params)
        return query.delete(all_rows=all_rows)

    @classmethod
    def query_with_deleted(cls: type[T]) -> Query[T]:
        """Alias: ``query().with_deleted()``."""
        return cls.query().with_deleted()

    @classmethod
    def query_only_deleted(cls: type[T]) -> Query[T]:
        """Alias: ``query().only_deleted()``."""
        return cls.query().only_deleted()

    # -- data loading (activerecord.io) ----------------------------------------------------
    @classmethod
    def insert_dataframe(
        cls,
        df: Any,
        *,
        columns: Mapping[str, str | None] | None = None,
        validate: bool = True,
        batch_size: int | None = None,
        progress: Any = False,
        upsert: Sequence[str] | None = None,
        return_records: bool = False,
    ) -> Any:
        """Insert a pandas or polars DataFrame's rows; return the count (or, with
        ``return_records=True``, the inserted records with their keys).

        Columns map to fields; NaN/NaT/NA/None become NULL; numpy and pandas scalars become
        Python values. A bad row raises :class:`~activerecord.errors.LoadValidationError`
        naming its row label. See :mod:`activerecord.io.dataframes`.
        """
        return insert_dataframe(
            cls, df, columns=columns, validate=validate, batch_size=batch_size,
            progress=progress, upsert=upsert, return_records=return_records,
        )

    @classmethod
    def load_csv(
        cls,
        source: Any,
        *,
        columns: Mapping[str, str | None] | None = None,
        delimiter: str = ",",
        encoding: str = "utf-8-sig",
        empty: Literal["null", "keep"] = "null",
        validate: bool = True,
        batch_size: int | None = None,
        progress: Any = False,
        upsert: Sequence[str] | None = None,
        commit_every: int | None = None,
    ) -> int:
        """Stream a CSV file (path or text file, with a header row) into the table; return the
        count. Errors name the line. An empty cell is a missing value (NULL in an optional
        field); ``empty="keep"`` keeps it as ``""`` in text fields. See
        :mod:`activerecord.io.files` for the conversion rules.
        ``commit_every=N``: commit every N rows, not atomic (see :meth:`batch_insert`); a
        failure's :class:`~activerecord.errors.PartialWriteError` names the line to resume at.

        >>> import io, activerecord
        >>> class Town(ActiveRecord):
        ...     __table_name__ = "doc_towns"
        ...     id: int | None = None
        ...     name: str
        >>> _ = activerecord.connect("sqlite://")
        >>> Town.create_table()
        >>> Town.load_csv(io.StringIO("name\\nOslo\\n"))
        1
        """
        return load_csv(
            cls, source, columns=columns, delimiter=delimiter, encoding=encoding, empty=empty,
            validate=validate, batch_size=batch_size, progress=progress, upsert=upsert,
            commit_every=commit_every,
        )

    @classmethod
    def load_jsonl(
        cls,
        source: Any,
        *,
        columns: Mapping[str, str | None] | None = None,
        encoding: str = "utf-8",
        validate: bool = True,
        batch_size: int | None = None,
        progress: Any = False,
        upsert: Sequence[str] | None = None,
        commit_every: int | None = None,
    ) -> int:
        """Stream a JSON Lines file (one object per line) into the table; return the count."""
        return load_jsonl(
            cls, source, columns=columns, encoding=encoding, validate=validate,
            batch_size=batch_size, progress=progress, upsert=upsert, commit_every=commit_every,
        )

    # -- instance persistence --------------------------------------------------------------
    def save(self) -> bool:
        """Insert a new record or update its changed fields. Returns True if SQL ran.

        If it fails, the record keeps no value the library filled in for it (timestamps,
        key). Inside a :class:`~activerecord.backend.transaction.Transaction` that later rolls
        back, the record is put back as it was before the save: a new record is new again,
        without the key; an updated one has its snapshot, version and ``updated_at`` back.
        The model's lifecycle hooks run around the write (see :mod:`activerecord.model.callbacks`).
        """
        with error_context(operation="save", model=type(self).__name__):
            return retrying(self.database(), lambda: persist.save(self))

    def delete(self) -> bool:
        """Delete this record's row. Returns True if a row was deleted, False if it was gone.

        With optimistic locking (:class:`~activerecord.OptimisticLockMixin`) the row is only
        deleted at the version the record was read with: when it has another one,
        :class:`~activerecord.errors.StaleRecordError` is raised and the row stays. If the
        ``Transaction`` it ran in rolls back, the record is persisted again.

        >>> import activerecord
        >>> from activerecord import OptimisticLockMixin
        >>> class Draft(OptimisticLockMixin, ActiveRecord):
        ...     __table_name__ = "doc_drafts"
        ...     id: int | None = None
        ...     text: str
        >>> _ = activerecord.connect("sqlite://")
        >>> Draft.create_table()
        >>> mine = Draft.create(text="a")
        >>> theirs = Draft.find(mine.id)
        >>> theirs.text = "b"; theirs.save()
        True
        >>> try:
        ...     mine.delete()
        ... except activerecord.StaleRecordError as err:
        ...     print(err)
        Draft 1 has changed since it was read at version 0: not deleted
        >>> mine.refresh().delete(), Draft.query().count()
        (True, 0)
        """
        return retrying(self.database(), lambda: self._delete_hooked(purge=False))

    def _delete_hooked(self, *, purge: bool) -> bool:
        """The instance DELETE with the model's delete hooks around it (when it has any)."""
        return persist.delete(self, purge=purge)

    def _delete_statement(self) -> tuple[sa.Delete, bool]:
        """The DELETE of this record's row and whether it is guarded by the version."""
        return persist.delete_statement(self)

    def _raise_if_stale(
        self, conn: sa.Connection, undone: str, scope: list[ColumnElement[bool]]
    ) -> None:
        """A guarded write matched no row: StaleRecordError if the row is still there."""
        persist.raise_if_stale(self, conn, undone, scope)

    def refresh(self: T) -> T:
        """Reload every field from the database; :class:`RecordNotFound` if the row is gone."""
        return persist.refresh(self)

    # -- batch entry points ----------------------------------------------------------------
    @classmethod
    def batch_insert(
        cls,
        records: Iterable[ActiveRecord],
        *,
        validate: bool = True,
        batch_size: int | None = None,
        progress: Any = False,
        on_conflict: str = "error",
        commit_every: int | None = None,
        include: Sequence[str] | None = None,
    ) -> int:
        """Insert many instances in as few statements as the backend allows.

        Primary keys (and declared server defaults) are set on the instances, in input order.
        Atomic: on any failure nothing is written. Returns the number of rows inserted.
        ``commit_every=N`` gives that up for very large loads (a cluster's transaction size
        limit, a long lock): every N records are committed on their own, and a failure raises
        :class:`~activerecord.errors.PartialWriteError` with the rows ``committed`` and the
        index to resume at (``resume_at``); the failing slice leaves nothing behind.
        Given as a list, the records are put back (new again, without keys) if the
        ``Transaction`` the call ran in rolls back later; records from a generator are not.
        ``on_conflict="ignore"`` skips records whose primary or unique key already exists
        (their instances get the existing row's key and values; see :meth:`batch_upsert`).

        >>> import activerecord
        >>> class Row(ActiveRecord):
        ...     __table_name__ = "doc_rows"
        ...     id: int | None = None
        ...     n: int
        >>> _ = activerecord.connect("sqlite://")
        >>> Row.create_table()
        >>> Row.batch_insert([Row(n=1), Row(n=2)])
        2

        ``include=["books", "books.tags"]`` inserts the related records set on them too (a
        graph, one batch per model per level, in one transaction; returns the count of this
        model's rows); see :mod:`activerecord.associations.graph`.
        """
        return batch.insert(
            cls, records, validate=validate, batch_size=batch_size, progress=progress,
            on_conflict=on_conflict, commit_every=commit_every, include=include,
        )

    @classmethod
    def batch_insert_from_dicts(
        cls: type[T],
        rows: Iterable[Mapping[str, Any]],
        *,
        validate: bool = True,
        batch_size: int | None = None,
        progress: Any = False,
        return_records: bool = True,
        on_conflict: str = "error",
        commit_every: int | None = None,
        include: Sequence[str] | None = None,
    ) -> list[T] | int:
        """Insert many rows given as dicts; return the created instances (or only the count
        with ``return_records=False``). Unknown keys are an error, with or without validation.
        ``on_conflict="ignore"`` skips rows whose primary or unique key already exists (only
        the inserted rows are returned or counted). Given a list, the returned instances are
        put back as built (new, no key or stamps) if the ``Transaction`` the call ran in
        rolls back later. ``commit_every=N``: commit every N rows (see :meth:`batch_insert`).

        >>> import activerecord
        >>> class Item(ActiveRecord):
        ...     __table_name__ = "doc_items"
        ...     id: int | None = None
        ...     n: int
        >>> _ = activerecord.connect("sqlite://")
        >>> Item.create_table()
        >>> [i.id for i in Item.batch_insert_from_dicts([{"n": 1}, {"n": 2}])]
        [1, 2]

        ``include=["books"]``: the rows' ``"books"`` keys hold the related rows' dicts, inserted
        as a graph (see :meth:`batch_insert`).
        """
        return batch.insert_dicts(
            cls, rows, validate=validate, batch_size=batch_size, progress=progress,
            return_records=return_records, on_conflict=on_conflict, commit_every=commit_every,
            include=include,
        )

    @classmethod
    def batch_upsert(
        cls,
        records: Iterable[Any],
        *,
        conflict: str | Sequence[str] | None = None,
        update: Sequence[str] | Mapping[str, Any] | None = None,
        validate: bool = True,
        batch_size: int | None = None,
        progress: Any = False,
        revive: bool = False,
        touch: bool = True,
    ) -> UpsertResult:
        """Insert the records (instances or dicts) whose key is new, update those whose key
        exists; return an :class:`~activerecord.UpsertResult` with exact ``inserted``,
        ``updated`` and ``unchanged`` counts on every backend.

        ``conflict``: the unique key rows are matched on: column names, or a constraint or index
        name (default: the primary key), declared (``Col(unique=True)``, ``__table_args__``)
        or only in the database (looked up once, cached); anything that is not a unique key
        is an error before any write. ``update``: what existing rows get: field names (take
        the incoming values), or a dict whose values are ``excluded("f")`` (incoming),
        expressions over the stored row (``col("n") + excluded("n")``; ``+`` on text
        concatenates; ``greatest(col("s"), excluded("s"))``, ``Expression``) or constants.
        Default: every non-key field (for dicts, the fields each row gives),
        without ``created_at``. ``()`` updates nothing. Only rows whose values change are
        written and get ``updated_at`` (``touch=False``: never). A key repeated in one call:
        the rows apply in order, the last one wins. A soft-deleted row holding the key is left
        alone (``unchanged``) unless ``revive=True``. Primary keys are set on the instances,
        new and existing; existing rows' other stored values (timestamps, columns computed by
        expressions) are read back into them. Atomic. See :mod:`activerecord.write.upsert`.

        >>> import activerecord
        >>> class Sku(ActiveRecord):
        ...     __table_name__ = "doc_skus"
        ...     id: int | None = None
        ...     qty: int = 0
        >>> _ = activerecord.connect("sqlite://")
        >>> Sku.create_table()
        >>> _ = Sku.batch_insert([Sku(id=1, qty=1)])
        >>> items = [Sku(id=1, qty=5), Sku(id=2, qty=2), Sku(id=2, qty=2)]
        >>> Sku.batch_upsert(items)
        UpsertResult(inserted=1, updated=1, unchanged=1)
        """
        return batch.upsert(
            cls, records, conflict=conflict, update=update, validate=validate,
            batch_size=batch_size, progress=progress, revive=revive, touch=touch,
        )

    @classmethod
    def batch_update(
        cls,
        records: Iterable[ActiveRecord],
        fields: Iterable[str] | None = None,
        *,
        batch_size: int | None = None,
        touch: bool = True,
        validate: bool | None = None,
    ) -> int:
        """Write many records, each with its own values, by primary key; return rows matched.

        ``fields`` names what to write (default: every field changed on any record; all
        fields for records not loaded from the database); fields left out keep their pending
        changes for a later ``save()``. A record whose primary key was changed since it was
        read is refused with :class:`~activerecord.errors.QueryError` (``save()`` writes a
        changed key). One statement per chunk (see
        :mod:`activerecord.write.update`), atomic: on any failure nothing is written.
        ``updated_at`` is set unless listed in ``fields`` or ``touch=False``; with
        ``OptimisticLockMixin`` every record's version is checked and bumped, and a stale
        record raises :class:`~activerecord.errors.StaleRecordError` naming it. If the
        ``Transaction`` the call ran in rolls back later, the records get their snapshots,
        versions and ``updated_at`` back. ``validate``: check every record's fields before
        any SQL, as ``save()`` does, raising one
        :class:`~activerecord.errors.BatchValidationError` that names each bad record (default:
        only for models without ``validate_assignment``, whose assignments went unchecked).

        >>> import activerecord
        >>> class Stock(ActiveRecord):
        ...     __table_name__ = "doc_stocks"
        ...     id: int | None = None
        ...     qty: int
        >>> _ = activerecord.connect("sqlite://")
        >>> Stock.create_table()
        >>> items = [Stock(qty=1), Stock(qty=2)]
        >>> _ = Stock.batch_insert(items)
        >>> items[0].qty, items[1].qty = 10, 20
        >>> Stock.batch_update(items, ["qty"])
        2
        """
        return batch.update(
            cls, records, fields, batch_size=batch_size, touch=touch, validate=validate
        )


state.bind_slot(ActiveRecord.__dict__[state.SLOT])
#: The snapshot slot's setter, as the constructor calls it (no function in between).
_set_snapshot_slot = ActiveRecord.__dict__[state.SLOT].__set__

#: Class attributes every model gets when it is made (not visible on the base class).
_MADE_ATTRIBUTES = frozenset({"c"})


def _refuse_reserved_names(cls: type[ActiveRecord]) -> None:
    """A field named like the class API (``query``, ``database``, ``c``, ``save``, ...) would
    hide it: a :class:`SchemaError` naming the field, and the way to keep the column name."""
    annotations = cls.__dict__.get("__annotations__", {})
    for name, annotation in annotations.items():
        if name.startswith("_") or "ClassVar" in str(annotation):
            continue
        owner = None
        if name in _MADE_ATTRIBUTES:
            owner = ActiveRecord
        else:
            for base in cls.__mro__[1:]:
                if not (isinstance(base, type) and issubclass(base, ActiveRecord)):
                    continue
                if name in base.__dict__ and name not in getattr(base, "__pydantic_fields__", {}):
                    owner = base
                    break
        if owner is not None:
            raise SchemaError(
                f"{cls.__name__}.{name}: the field name {name!r} is taken by "
                f"{owner.__name__}.{name} of the model API; name the field otherwise and "
                f"keep the column name with Annotated[..., Col(name={name!r})]"
            )
