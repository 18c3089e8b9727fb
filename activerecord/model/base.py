"""The ``ActiveRecord`` base class: a pydantic model that is also a table.

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
import operator
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import pydantic
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from ..aio.record import AsyncRecordMixin
from ..arguments import check_records, is_collection
from ..associations.dependent import dependents_before
from ..associations.graph import graph_from_dicts, insert_graph
from ..associations.loading import forget_related
from ..associations.relation import note_defined
from ..backend.database import DEFAULT, Database, get_database
from ..backend.dialects import bind_processor
from ..backend.errors import driver_errors, overflow_error, refused_value_error, translate_error
from ..backend.transaction import (
    Transaction,
    on_rollback,
    read_connection,
    retrying,
    tracks_rollback,
    write_connection,
)
from ..errors import (
    ArgumentError,
    DataError,
    NotNullViolation,
    RecordNotFound,
    SchemaError,
    StaleRecordError,
    ValidationError,
    error_context,
)
from ..query.query import Query
from ..validation import collector_paused, list_adapter, record_builder
from . import state
from .batch_hooks import batch_hooks
from .callbacks import (
    CREATE_AFTER,
    CREATE_BEFORE,
    DELETE_AFTER,
    DELETE_BEFORE,
    UPDATE_AFTER,
    UPDATE_BEFORE,
    HookMethods,
    hooks_of,
    run_hooked,
)
from .info import ModelInfo
from .state import Undo, mark_persisted, mark_persisted_batch, set_snapshot, snapshot_of

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from ..write.upsert import UpsertResult

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
        """Records from rows read (``keys``: their field names); see :meth:`_from_db_columns`."""
        return cls._from_db_columns(keys, list(zip(*rows)) if rows else [() for _ in keys])

    @classmethod
    def _from_db_columns(
        cls: type[T], keys: Sequence[str], columns: Sequence[Sequence[Any]]
    ) -> list[T]:
        """Records from columns of values read (``keys``: their field names), marked
        persisted: built as they are where each column's values are what the field's schema
        would return unchanged (``RecordBuilder``), else validated by pydantic a slice at a
        time (the GC resting over each). A row the model refuses raises our
        ``ValidationError`` naming it by primary key."""
        records: list[T] | None = record_builder(cls).build(keys, columns)
        if records is None:
            rows = list(zip(*columns))
            adapter = list_adapter(cls)
            records = []
            for start in range(0, len(rows), _READ_SLICE):
                records.extend(
                    cls._validated_rows(adapter, keys, rows[start : start + _READ_SLICE])
                )
        mark_persisted_batch(records, list(map(_dict_of, records)))
        return records

    @classmethod
    def _validated_rows(
        cls: type[T], adapter: pydantic.TypeAdapter[Any], keys: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> list[T]:
        try:
            with collector_paused():
                dicts = list(map(dict, map(zip, repeat(keys), rows)))
                validated: list[T] = adapter.validate_python(dicts)
                return validated
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_url=False)
            first = errors[0]["loc"][0] if errors and errors[0]["loc"] else 0
            row = dicts[first] if isinstance(first, int) and first < len(dicts) else {}
            key = tuple(row.get(f) for f in cls.__ar_info__.pk_fields)
            where = ".".join(map(str, errors[0]["loc"][1:])) if errors else ""
            raise ValidationError(
                f"{cls.__name__} row {key[0] if len(key) == 1 else key!r} read from the "
                f"database does not validate: {where + ': ' if where else ''}"
                f"{errors[0]['msg'] if errors else exc}",
                model=cls.__name__, errors=errors,
            ) from exc

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
        from ..io.dataframes import insert_dataframe

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
        from ..io.files import load_csv

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
        from ..io.files import load_jsonl

        return load_jsonl(
            cls, source, columns=columns, encoding=encoding, validate=validate,
            batch_size=batch_size, progress=progress, upsert=upsert, commit_every=commit_every,
        )

    # -- instance persistence --------------------------------------------------------------
    def _column_values(self, fields: Iterable[str]) -> dict[str, Any]:
        data = self.__dict__
        return {f: data[f] for f in fields}

    def save(self) -> bool:
        """Insert a new record or update its changed fields. Returns True if SQL ran.

        If it fails, the record keeps no value the library filled in for it (timestamps,
        key). Inside a :class:`~activerecord.backend.transaction.Transaction` that later rolls
        back, the record is put back as it was before the save: a new record is new again,
        without the key; an updated one has its snapshot, version and ``updated_at`` back.
        The model's lifecycle hooks run around the write (see :mod:`activerecord.model.callbacks`).
        """
        with error_context(operation="save", model=type(self).__name__):
            return retrying(self.database(), self._save_once)

    def _save_once(self) -> bool:
        hooks = hooks_of(type(self))
        if not hooks:
            return self._save_now()
        if self._ar_original is None:
            return run_hooked(self, hooks, CREATE_BEFORE, self._save_now, CREATE_AFTER)
        return run_hooked(self, hooks, UPDATE_BEFORE, self._save_now, UPDATE_AFTER)

    def _save_now(self) -> bool:
        info = self.__ar_info__
        db = self.database()
        try:
            if self._ar_original is None:
                self._insert(db, info)
                return True
            changed = self.changed_fields
            if not changed:
                return False
            self._update(db, info, changed)
            return True
        except sa.exc.DBAPIError as exc:
            raise translate_error(exc, context=f"save of {type(self).__name__}") from exc
        except sa.exc.StatementError as exc:
            column = _refused_column(info, self.__dict__, db.engine.dialect)
            context = f"save of {type(self).__name__}"
            error = refused_value_error(exc, context=context, column=column)
            if error is None:
                raise
            raise error from exc
        except OverflowError as exc:
            raise overflow_error(exc, context=f"save of {type(self).__name__}") from exc
        except UnicodeEncodeError as exc:  # the driver's: text no database encoding holds
            column = _refused_column(info, self.__dict__, db.engine.dialect)
            where = f"column {column!r}: " if column else ""
            error = DataError(f"save of {type(self).__name__}: {where}{exc}", orig=exc)
            error.column = column
            raise error from exc

    def _revalidate(self) -> None:
        try:
            type(self).model_validate(self.__dict__)
        except pydantic.ValidationError as exc:
            raise ValidationError(
                f"invalid {type(self).__name__}: {exc}", model=type(self).__name__,
                errors=exc.errors(),
            ) from exc

    def _insert(self, db: Database, info: ModelInfo) -> None:
        data = self.__dict__
        # Every field the library fills was None before: a failed insert sets it back to None,
        # and so does a rollback of the transaction the insert succeeded in.
        undo = Undo.single(ambient=tracks_rollback(db))
        undo.keep([self], [data])
        for fname, value in self._insert_defaults().items():
            if data.get(fname) is None:
                undo.filled([data], fname)
                data[fname] = value
        try:
            self._revalidate()
            fields = [
                f for f in info.fields
                if not (
                    data[f] is None and (f == info.autoincrement_pk or f in info.server_generated)
                )
            ]
            stmt = sa.insert(info.table).values(info.by_column(self._column_values(fields)))
            fetch_fields = [f for f in info.fields if f not in fields]
            for fname in fetch_fields:
                undo.filled([data], fname)
            fetch = [info.columns[f] for f in fetch_fields]
            if fetch and db.facts.supports_returning:
                stmt = stmt.returning(*fetch)
            with write_connection(db) as conn:
                self._check_own_key(db, info, conn)
                result = conn.execute(stmt)
                if fetch and db.facts.supports_returning:
                    for fname, value in zip(fetch_fields, result.one()):
                        data[fname] = value
                elif fetch:
                    pk = result.inserted_primary_key
                    if info.autoincrement_pk is not None and pk is not None:
                        data[info.autoincrement_pk] = pk[0]
                    rest = [f for f in fetch_fields if f != info.autoincrement_pk]
                    if rest:
                        stmt2 = sa.select(*(info.columns[f] for f in rest))
                        for fname, value in zip(rest, conn.execute(
                            stmt2.where(*self._pk_criteria())
                        ).one()):
                            data[fname] = value
        except BaseException:
            undo.failed()
            raise
        undo.written([self], [data])
        _on_rollback(undo, db)

    def _check_own_key(self, db: Database, info: ModelInfo, conn: sa.Connection) -> None:
        """Refuse an insert whose key would not come back as it is: left out where the
        database numbers no key (SQLite's ``BIGINT PRIMARY KEY``), or ``0`` where MySQL reads
        it as "generate one" (as batch inserts refuse them)."""
        pk = info.autoincrement_pk
        if pk is None:
            return
        value = self.__dict__[pk]
        name = type(self).__name__
        if value is None and not db.facts.generates_key(info.columns[pk]):
            raise NotNullViolation(
                f"save of {name}: column {pk!r}: no key given, and the database does not "
                "number this key column (on SQLite only an INTEGER PRIMARY KEY is)"
            )
        if value == 0 and db.facts.zero_key_may_generate and db.facts.session_keys(
            conn
        ).zero_generates:
            raise DataError(
                f"save of {name}: column {pk!r}: 0 in an AUTO_INCREMENT key asks MySQL for a "
                "generated key (sql_mode has no NO_AUTO_VALUE_ON_ZERO): give another key, or "
                "None to have one generated"
            )

    def _update(self, db: Database, info: ModelInfo, changed: set[str]) -> None:
        data = self.__dict__
        # A failure puts back the fields the library set itself (timestamps, version).
        undo = Undo.single(ambient=tracks_rollback(db), copies=True)
        undo.keep([self], [data])
        for fname, value in self._update_defaults().items():
            if fname not in changed:
                data[fname] = value
                changed.add(fname)
        try:
            self._revalidate()
            values = self._column_values(f for f in info.fields if f in changed)
            guard, extra = self._update_guard()
            values.update(extra)
            stmt = sa.update(info.table).where(*self._pk_criteria(), *guard)
            stmt = stmt.values(info.by_column(values))
            with write_connection(db) as conn:
                if conn.execute(stmt).rowcount == 0:
                    name, key = type(self).__name__, self._pk_value()
                    if guard:
                        read = self._read_version()
                        at = "" if read is None else f" at version {read!r}"
                        raise StaleRecordError(
                            f"{name} {key!r} was changed or deleted since it was read{at}",
                            model=name, keys=[key], versions=[read],
                        )
                    raise RecordNotFound(
                        f"{name} {key!r} no longer exists", model=name, key=key
                    )
        except BaseException:
            undo.failed()
            raise
        data.update(extra)
        undo.written([self], [data])
        _on_rollback(undo, db)

    def _pk_value(self) -> Any:
        info = self.__ar_info__
        values = tuple(self.__dict__[f] for f in info.pk_fields)
        return values[0] if len(values) == 1 else values

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
        if self._ar_original is None:
            return False
        hooks = hooks_of(type(self))
        if not hooks:
            return self._delete_row(purge=purge)
        return run_hooked(
            self, hooks, DELETE_BEFORE, lambda: self._delete_row(purge=purge), DELETE_AFTER
        )

    def _delete_row(self, *, purge: bool) -> bool:
        """The instance DELETE, after the statements of ``dependent=`` relations (removed for
        real with ``purge``: a ``hard_delete()``), in one transaction."""
        original = self._ar_original
        if original is None:
            return False
        stmt, guarded = self._delete_statement()
        before = dependents_before(type(self), stmt, purge=purge)
        db = self.database()
        undo = Undo.single(ambient=tracks_rollback(db), rollback_only=True)
        undo.keep([self], [self.__dict__])
        name = type(self).__name__
        with driver_errors(f"delete of {name}", operation="delete", model=name), \
                write_connection(db, statements=1 + len(before)) as conn:
            for dependent in before:
                conn.execute(dependent)
            deleted = conn.execute(stmt).rowcount
            if not deleted and guarded:
                self._raise_if_stale(conn, "deleted", [])
        undo.written([self], [self.__dict__], state.GONE)
        _on_rollback(undo, db)
        return bool(deleted)

    def _delete_statement(self) -> tuple[sa.Delete, bool]:
        """The DELETE of this record's row (by primary key, and by version when locked) and
        whether it is guarded: no row deleted while the row is there means the record is stale."""
        guard, _ = self._update_guard()
        stmt = sa.delete(self.__ar_info__.table).where(*self._pk_criteria(), *guard)
        return stmt, bool(guard)

    def _raise_if_stale(
        self, conn: sa.Connection, undone: str, scope: list[ColumnElement[bool]]
    ) -> None:
        """A guarded write of this record matched no row: raise StaleRecordError if its row is
        still there (matching ``scope``), so it has changed since it was read; return if not
        (the row is gone, or out of scope: already deleted or restored)."""
        info = self.__ar_info__
        probe = sa.select(sa.literal_column("1", sa.Integer)).select_from(info.table)
        if conn.execute(probe.where(*self._pk_criteria(), *scope)).first() is None:
            return
        name, key = type(self).__name__, self._pk_value()
        version = self._read_version()
        read = "" if version is None else f" at version {version!r}"
        raise StaleRecordError(
            f"{name} {key!r} has changed since it was read{read}: not {undone}",
            model=name, keys=[key], versions=[version],
        )

    def _read_version(self) -> Any:
        """The optimistic-lock version this record was read (or last written) at, or None."""
        lock = self._lock_field()
        return None if lock is None else (self._ar_original or self.__dict__).get(lock)

    def refresh(self: T) -> T:
        """Reload every field from the database; :class:`RecordNotFound` if the row is gone."""
        info = self.__ar_info__
        stmt = sa.select(*info.select_columns()).where(*self._pk_criteria())
        stmt = stmt.where(*self._scope_criteria("with_deleted"))
        with read_connection(self.database()) as conn:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            raise RecordNotFound(
                f"{type(self).__name__} {self._pk_value()!r} not found",
                model=type(self).__name__,
                key=self._pk_value(),
            )
        fresh = type(self).model_validate(dict(row))
        self.__dict__.update(fresh.__dict__)
        self._mark_persisted()
        forget_related(self)  # relations read before are read again on next access
        return self

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
        from ..write.insert import batch_insert
        from ..write.slices import in_slices

        if include:
            _graph_options(on_conflict, commit_every)
            graph = list(records)  # gone over again if the call is retried
            return retrying(cls.database(), lambda: insert_graph(
                cls, graph, include, validate=validate, batch_size=batch_size,
                progress=progress,
            ))

        def write(records: Iterable[Any]) -> tuple[int, list[Any]]:
            return batch_insert(
                cls, records, validate=validate, batch_size=batch_size, progress=progress,
                return_records=False, on_conflict=on_conflict,
            )

        if commit_every is not None:
            return in_slices(cls, records, commit_every, write)[0]
        count, _ = retrying(
            cls.database(), lambda: write(records), replayable=is_collection(records)
        )
        return count

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
        from ..io.dataframes import insert_dataframe, is_dataframe
        from ..write.insert import batch_insert
        from ..write.slices import in_slices

        if include:
            _graph_options(on_conflict, commit_every)
            built: list[T] = graph_from_dicts(cls, rows, include)  # type: ignore[assignment]
            count = retrying(cls.database(), lambda: insert_graph(
                cls, built, include, validate=False, batch_size=batch_size, progress=progress
            ))
            return built if return_records else count

        if is_dataframe(rows):  # pandas/polars: NaN → NULL, numpy scalars → Python values
            if on_conflict != "error":
                raise ArgumentError(
                    "on_conflict is not supported for a DataFrame; use "
                    "insert_dataframe(df, upsert=[key]) or batch_upsert(df.to_dict('records'))"
                )
            if commit_every is not None:
                raise ArgumentError("commit_every is not supported for a DataFrame")
            loaded: list[T] | int = insert_dataframe(
                cls, rows, validate=validate, batch_size=batch_size, progress=progress,
                return_records=return_records,
            )
            return loaded

        def write(rows: Iterable[Any]) -> tuple[int, list[Any]]:
            return batch_insert(
                cls, rows, validate=validate, batch_size=batch_size, progress=progress,
                from_dicts=True, return_records=return_records, on_conflict=on_conflict,
            )

        if commit_every is not None:
            count, records = in_slices(cls, rows, commit_every, write)
        else:
            count, records = retrying(
                cls.database(), lambda: write(rows), replayable=is_collection(rows)
            )
        return records if return_records else int(count)

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
        from ..write.upsert import batch_upsert

        return retrying(
            cls.database(),
            lambda: batch_upsert(
                cls, records, conflict=conflict, update=update, validate=validate,
                batch_size=batch_size, progress=progress, revive=revive, touch=touch,
            ),
            replayable=is_collection(records),
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
        from ..write.update import batch_update

        hooks = batch_hooks(cls, "update", records)
        if hooks is None:
            return retrying(
                cls.database(),
                lambda: batch_update(
                    cls, records, fields, batch_size=batch_size, touch=touch, validate=validate
                ),
                replayable=is_collection(records) and (fields is None or is_collection(fields)),
            )
        # The hooks run over the whole list (which batch_update holds anyway), in one
        # transaction with the write, so an error in an after hook undoes it.
        check_records(records, cls.__name__, what=f"{cls.__name__} instances")
        items = list(records)
        if not all(map(isinstance, items, repeat(cls))):  # refused by batch_update, unhooked
            return batch_update(cls, items, fields, batch_size=batch_size, touch=touch)
        names = None if fields is None else [fields] if isinstance(fields, str) else list(fields)
        hooked = hooks

        def run() -> int:
            try:
                with Transaction(cls.database()):
                    hooked.before(items, names)
                    count = batch_update(
                        cls, items, names, batch_size=batch_size, touch=touch, validate=validate
                    )
                    hooked.after(items, names)
            except BaseException:
                hooked.failed()
                raise
            hooked.succeeded()
            return count

        return retrying(cls.database(), run)


def _graph_options(on_conflict: str, commit_every: int | None) -> None:
    if on_conflict != "error" or commit_every is not None:
        raise ArgumentError(
            "include= inserts a graph of new records in one transaction: on_conflict and "
            "commit_every are not supported with it"
        )


#: Rows validated per pydantic call when reading (the GC rests over each slice only).
_READ_SLICE = 50_000

state.bind_slot(ActiveRecord.__dict__[state.SLOT])




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


_dict_of = operator.attrgetter("__dict__")


def _on_rollback(undo: Undo, db: Database) -> None:
    """Mark the records of a successful write, and register what puts them back if the ambient
    transaction rolls back."""
    restore = undo.succeeded()
    if restore is not None:
        on_rollback(restore, db)


def _refused_column(info: ModelInfo, data: Mapping[str, Any], dialect: sa.Dialect) -> str | None:
    """The column whose value its bind processor refuses (to name it in the error)."""
    for fname, column in info.columns.items():
        if fname not in data:
            continue
        value = data[fname]
        proc = bind_processor(column.type, dialect)
        try:
            if proc is not None:
                value = proc(value)
            if isinstance(value, str):
                value.encode("utf-8")  # a lone surrogate: no driver sends it
        except Exception:  # noqa: BLE001 - this is the value refused
            return column.name
    return None
