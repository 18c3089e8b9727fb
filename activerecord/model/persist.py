"""One record written: ``save()`` (INSERT or UPDATE of its changed fields), ``delete()`` and
``refresh()``, each putting the record back through one :class:`~.state.Undo` when it fails
or when the ambient transaction it ran in rolls back.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Memo(ActiveRecord):
    ...     __table_name__ = "doc_memos"
    ...     id: int | None = None
    ...     text: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Memo.create_table()
    >>> memo = Memo(text="a")
    >>> save(memo), memo.id
    (True, 1)
    >>> delete(memo, purge=False), memo.is_new_record
    (True, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic
import sqlalchemy as sa

from ..associations.dependent import dependents_before
from ..associations.loading import forget_related
from ..backend.database import Database
from ..backend.dialects import bind_processor
from ..backend.errors import driver_errors, overflow_error, refused_value_error, translate_error
from ..backend.transaction import on_rollback, read_connection, tracks_rollback, write_connection
from ..errors import (
    DataError,
    NotNullViolation,
    RecordNotFound,
    StaleRecordError,
    ValidationError,
)
from . import deferred, state
from .callbacks import (
    CREATE_AFTER,
    CREATE_BEFORE,
    DELETE_AFTER,
    DELETE_BEFORE,
    UPDATE_AFTER,
    UPDATE_BEFORE,
    hooks_of,
    run_hooked,
)
from .info import ModelInfo
from .state import Undo, mark_persisted

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from .base import ActiveRecord

__all__ = ["delete", "raise_if_stale", "refresh", "save"]

R = TypeVar("R", bound="ActiveRecord")


# -- save ----------------------------------------------------------------------------------
def save(record: ActiveRecord) -> bool:
    """``record.save()`` once (the caller retries): the hooks around the INSERT or UPDATE."""
    deferred.flush()  # inside a batch's before hook: the values assigned so far are checked
    hooks = hooks_of(type(record))
    if not hooks:
        return _save_now(record)
    if record._ar_original is None:
        return run_hooked(
            record, hooks, CREATE_BEFORE, lambda: _save_now(record), CREATE_AFTER, "save"
        )
    return run_hooked(
        record, hooks, UPDATE_BEFORE, lambda: _save_now(record), UPDATE_AFTER, "save"
    )


def _save_now(record: ActiveRecord) -> bool:
    info = record.__ar_info__
    db = record.database()
    name = type(record).__name__
    try:
        if record._ar_original is None:
            _insert(record, db, info)
            return True
        changed = record.changed_fields
        if not changed:
            return False
        _update(record, db, info, changed)
        return True
    except sa.exc.DBAPIError as exc:
        translated = translate_error(exc, context=f"save of {name}")
        if isinstance(translated, DataError) and translated.column is None:
            # The server's "bigint out of range" names no column: the value's check does.
            translated.column = _refused_column(info, record.__dict__, db.engine.dialect)
        raise translated from exc
    except sa.exc.StatementError as exc:
        column = _refused_column(info, record.__dict__, db.engine.dialect)
        error = refused_value_error(exc, context=f"save of {name}", column=column)
        if error is None:
            raise
        raise error from exc
    except OverflowError as exc:
        column = _refused_column(info, record.__dict__, db.engine.dialect)
        raise overflow_error(exc, context=f"save of {name}", column=column) from exc
    except UnicodeEncodeError as exc:  # the driver's: text no database encoding holds
        column = _refused_column(info, record.__dict__, db.engine.dialect)
        where = f"column {column!r}: " if column else ""
        error = DataError(f"save of {name}: {where}{exc}", orig=exc)
        error.column = column
        raise error from exc


def _revalidate(record: ActiveRecord) -> None:
    try:
        type(record).model_validate(record.__dict__)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            f"invalid {type(record).__name__}: {exc}", model=type(record).__name__,
            errors=exc.errors(),
        ) from exc


def _column_values(record: ActiveRecord, fields: Iterable[str]) -> dict[str, Any]:
    data = record.__dict__
    return {f: data[f] for f in fields}


def _insert(record: ActiveRecord, db: Database, info: ModelInfo) -> None:
    data = record.__dict__
    # Every field the library fills was None before: a failed insert sets it back to None,
    # and so does a rollback of the transaction the insert succeeded in.
    undo = Undo.single(ambient=tracks_rollback(db))
    undo.keep([record], [data])
    for fname, value in record._insert_defaults().items():
        if data.get(fname) is None:
            undo.filled([data], fname)
            data[fname] = value
    try:
        _revalidate(record)
        fields = [
            f for f in info.fields
            if not (data[f] is None and (f == info.autoincrement_pk or f in info.server_generated))
        ]
        stmt = sa.insert(info.table).values(info.by_column(_column_values(record, fields)))
        fetch_fields = [f for f in info.fields if f not in fields]
        for fname in fetch_fields:
            undo.filled([data], fname)
        fetch = [info.columns[f] for f in fetch_fields]
        if fetch and db.facts.supports_returning:
            stmt = stmt.returning(*fetch)
        with write_connection(db) as conn:
            _check_own_key(record, db, info, conn)
            result = conn.execute(stmt)
            auto = info.autoincrement_pk
            if auto is not None and auto in fields and isinstance(data[auto], int):
                db.facts.follow_given_key(conn, info.table, info.columns[auto], data[auto])
            if fetch and db.facts.supports_returning:
                data.update(zip(fetch_fields, result.one()))
            elif fetch:
                _read_generated(record, info, conn, result, fetch_fields)
    except BaseException:
        undo.failed()
        raise
    undo.written([record], [data])
    _on_rollback(undo, db)


def _read_generated(
    record: ActiveRecord, info: ModelInfo, conn: sa.Connection, result: sa.CursorResult[Any],
    fetch_fields: list[str],
) -> None:
    """Without RETURNING: the generated key from the cursor, the other server values read."""
    data = record.__dict__
    pk = result.inserted_primary_key
    if info.autoincrement_pk is not None and pk is not None:
        data[info.autoincrement_pk] = pk[0]
    rest = [f for f in fetch_fields if f != info.autoincrement_pk]
    if rest:
        stmt = sa.select(*(info.columns[f] for f in rest)).where(*record._pk_criteria())
        data.update(zip(rest, conn.execute(stmt).one()))


def _check_own_key(
    record: ActiveRecord, db: Database, info: ModelInfo, conn: sa.Connection
) -> None:
    """Refuse an insert whose key would not come back as it is: left out where the
    database numbers no key (SQLite's ``BIGINT PRIMARY KEY``), or ``0`` where MySQL reads
    it as "generate one" (as batch inserts refuse them)."""
    pk = info.autoincrement_pk
    if pk is None:
        return
    value = record.__dict__[pk]
    name = type(record).__name__
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


def _update(record: ActiveRecord, db: Database, info: ModelInfo, changed: set[str]) -> None:
    data = record.__dict__
    # A failure puts back the fields the library set itself (timestamps, version).
    undo = Undo.single(ambient=tracks_rollback(db), copies=True)
    undo.keep([record], [data])
    for fname, value in record._update_defaults().items():
        if fname not in changed:
            data[fname] = value
            changed.add(fname)
    try:
        _revalidate(record)
        values = _column_values(record, (f for f in info.fields if f in changed))
        guard, extra = record._update_guard()
        values.update(extra)
        stmt = sa.update(info.table).where(*record._pk_criteria(), *guard)
        stmt = stmt.values(info.by_column(values))
        with write_connection(db) as conn:
            if conn.execute(stmt).rowcount == 0:
                name, key = type(record).__name__, pk_value(record)
                if guard:
                    read = _read_version(record)
                    at = "" if read is None else f" at version {read!r}"
                    raise StaleRecordError(
                        f"{name} {key!r} was changed or deleted since it was read{at}",
                        model=name, keys=[key], versions=[read],
                    )
                raise RecordNotFound(f"{name} {key!r} no longer exists", model=name, key=key)
    except BaseException:
        undo.failed()
        raise
    data.update(extra)
    undo.written([record], [data])
    _on_rollback(undo, db)


# -- delete --------------------------------------------------------------------------------
def delete(record: ActiveRecord, *, purge: bool) -> bool:
    """The instance DELETE once (the caller retries), with the model's delete hooks around
    it when it has any; ``purge``: ``dependent=`` relations removed for real too."""
    if record._ar_original is None:
        return False
    deferred.flush()
    hooks = hooks_of(type(record))
    if not hooks:
        return _delete_row(record, purge=purge)
    return run_hooked(
        record, hooks, DELETE_BEFORE, lambda: _delete_row(record, purge=purge), DELETE_AFTER,
        "hard_delete" if purge else "delete",
    )


def _delete_row(record: ActiveRecord, *, purge: bool) -> bool:
    """The instance DELETE, after the statements of ``dependent=`` relations, in one
    transaction."""
    if record._ar_original is None:
        return False
    stmt, guarded = delete_statement(record)
    before = dependents_before(type(record), stmt, purge=purge)
    db = record.database()
    undo = Undo.single(ambient=tracks_rollback(db), rollback_only=True)
    undo.keep([record], [record.__dict__])
    name = type(record).__name__
    with driver_errors(f"delete of {name}", operation="delete", model=name), \
            write_connection(db, statements=1 + len(before)) as conn:
        for dependent in before:
            conn.execute(dependent)
        deleted = conn.execute(stmt).rowcount
        if not deleted and guarded:
            raise_if_stale(record, conn, "deleted", [])
    undo.written([record], [record.__dict__], state.GONE)
    _on_rollback(undo, db)
    return bool(deleted)


def delete_statement(record: ActiveRecord) -> tuple[sa.Delete, bool]:
    """The DELETE of this record's row (by primary key, and by version when locked) and
    whether it is guarded: no row deleted while the row is there means the record is stale."""
    guard, _ = record._update_guard()
    stmt = sa.delete(record.__ar_info__.table).where(*record._pk_criteria(), *guard)
    return stmt, bool(guard)


def raise_if_stale(
    record: ActiveRecord, conn: sa.Connection, undone: str, scope: list[ColumnElement[bool]]
) -> None:
    """A guarded write of this record matched no row: raise StaleRecordError if its row is
    still there (matching ``scope``), so it has changed since it was read; return if not
    (the row is gone, or out of scope: already deleted or restored)."""
    info = record.__ar_info__
    probe = sa.select(sa.literal_column("1", sa.Integer)).select_from(info.table)
    if conn.execute(probe.where(*record._pk_criteria(), *scope)).first() is None:
        return
    name, key = type(record).__name__, pk_value(record)
    version = _read_version(record)
    read = "" if version is None else f" at version {version!r}"
    raise StaleRecordError(
        f"{name} {key!r} has changed since it was read{read}: not {undone}",
        model=name, keys=[key], versions=[version],
    )


# -- refresh -------------------------------------------------------------------------------
def refresh(record: R) -> R:
    """Every field read again from the row; :class:`RecordNotFound` if the row is gone."""
    info = record.__ar_info__
    stmt = sa.select(*info.select_columns()).where(*record._pk_criteria())
    stmt = stmt.where(*record._scope_criteria("with_deleted"))
    with read_connection(record.database()) as conn:
        row = conn.execute(stmt).mappings().first()
    if row is None:
        name = type(record).__name__
        key = pk_value(record)
        raise RecordNotFound(f"{name} {key!r} not found", model=name, key=key)
    fresh = type(record).model_validate(dict(row))
    record.__dict__.update(fresh.__dict__)
    mark_persisted(record)
    forget_related(record)  # relations read before are read again on next access
    return record


# -- shared --------------------------------------------------------------------------------
def pk_value(record: ActiveRecord) -> Any:
    """The record's primary key as it is now (a tuple for composite keys)."""
    values = tuple(record.__dict__[f] for f in record.__ar_info__.pk_fields)
    return values[0] if len(values) == 1 else values


def _read_version(record: ActiveRecord) -> Any:
    """The optimistic-lock version this record was read (or last written) at, or None."""
    lock = record._lock_field()
    return None if lock is None else (record._ar_original or record.__dict__).get(lock)


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
