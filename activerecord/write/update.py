"""Update many records, each with its own values, by primary key, in as few statements as the
database allows.

The records are checked here (fields to write, keys as read, versions as read, one pass per
check in C), written by :mod:`.update_chunks` in the dialect's UPDATE-by-key form for their
chunk size (:mod:`activerecord.write.by_key`: ``COPY`` into a temporary table or ``unnest``
arrays on PostgreSQL, a ``UNION ALL`` derived table on MySQL/MariaDB, ``VALUES`` lists on
SQLite), and marked written once every row is. Each form is built as a SQLAlchemy Core
construct and compiled once per chunk shape; the chunks then run as that compiled SQL with
bound parameters.

The whole call is atomic (one transaction, or a savepoint inside an ambient ``Transaction``).
The count is of rows matched, including rows whose values did not change, on every backend.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Player(ActiveRecord):
    ...     __table_name__ = "doc_players"
    ...     id: int | None = None
    ...     score: int = 0
    >>> _ = activerecord.connect("sqlite://")
    >>> Player.create_table()
    >>> players = [Player(), Player(), Player()]
    >>> _ = Player.batch_insert(players)
    >>> for n, player in enumerate(players):
    ...     player.score = n * 10
    >>> Player.batch_update(players)
    3
    >>> [p.score for p in Player.query().order_by("id")]
    [0, 10, 20]
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pydantic
import sqlalchemy as sa

from ..arguments import check_records, check_size
from ..backend.transaction import (
    on_rollback,
    read_connection,
    tracks_rollback,
)
from ..errors import (
    ArgumentTypeError,
    BatchValidationError,
    QueryError,
    StaleRecordError,
)
from ..model.state import ALL, Undo
from ..validation import collector_paused, record_failures, validate_rows
from .by_key import RowSource, key_rows, row_source, select_by_keys, update_statement
from .update_chunks import StaleChunk, send_rows

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["batch_update", "batch_update_statement", "fields_to_write"]


def batch_update_statement(
    model: type[ActiveRecord],
    fields: Sequence[str],
    nrows: int,
    *,
    style: str | RowSource,
    scalars: Sequence[str] = (),
) -> sa.Update:
    """The Core UPDATE that writes ``nrows`` records' ``fields`` by primary key in one statement.

    Row parameters are named ``r{row}_{position}`` (primary key fields, then ``fields``, then
    the lock version), or ``a{position}`` (one array per column) for the ``unnest`` style;
    ``scalars`` (values shared by every row, such as ``updated_at``) are named ``s{position}``.

    >>> from activerecord import ActiveRecord
    >>> from activerecord.query.query import compile_sql
    >>> class Gauge(ActiveRecord):
    ...     __table_name__ = "doc_gauges"
    ...     id: int | None = None
    ...     level: int = 0
    >>> stmt = batch_update_statement(Gauge, ["level"], 2, style="values")
    >>> print(compile_sql(stmt, Gauge, "postgresql").sql)  # doctest: +NORMALIZE_WHITESPACE
    UPDATE doc_gauges SET level=v.c1 FROM (VALUES (%(r0_0)s::BIGINT, %(r0_1)s::BIGINT),
    (%(r1_0)s::BIGINT, %(r1_1)s::BIGINT)) AS v (c0, c1) WHERE doc_gauges.id = v.c0
    """
    return update_statement(model, fields, row_source(style), nrows, scalars=scalars)[0]


def fields_to_write(
    model: type[ActiveRecord], records: list[ActiveRecord], fields: Iterable[str] | None
) -> list[str]:
    """The fields ``batch_update(records, fields)`` writes (before the stamps and the lock
    version): those named, checked, or every field changed on any record.

    >>> from activerecord import ActiveRecord
    >>> class Crate(ActiveRecord):
    ...     __table_name__ = "doc_crates"
    ...     id: int | None = None
    ...     size: int = 0
    >>> fields_to_write(Crate, [], ["size"])
    ['size']
    """
    return _resolve_fields(model, records, fields)


def _resolve_fields(
    model: type[ActiveRecord], records: list[ActiveRecord], fields: Iterable[str] | None
) -> list[str]:
    info = model.__ar_info__
    lock = model._lock_field()
    if fields is None:
        changed: set[str] = set()
        for record in records:
            changed |= record.changed_fields
        return [f for f in info.fields if f in changed and f not in info.pk_fields and f != lock]
    if isinstance(fields, str):
        fields = [fields]
    out: list[str] = []
    for name in fields:
        fname = info.field_for(name)  # UnknownColumnError before any SQL
        if fname in info.pk_fields:
            raise QueryError(
                f"batch_update of {info.model_name} finds rows by their primary key: it cannot "
                f"also set {fname!r}"
            )
        if fname == lock:
            raise QueryError(
                f"{info.model_name}.{fname} is the optimistic-lock version: batch_update "
                "checks and bumps it itself"
            )
        if fname not in out:
            out.append(fname)
    if not out:
        raise QueryError(f"batch_update of {info.model_name} needs at least one field")
    return out


def _original(record: ActiveRecord) -> dict[str, Any] | None:
    """The values the record was read with (None for a record never loaded or saved)."""
    return record._ar_original


def _rows(
    model: type[ActiveRecord],
    records: list[ActiveRecord],
    row_fields: Sequence[str],
    lock: str | None,
) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], bool]:
    """One tuple per record (primary key as read, the fields to write, the version as read),
    the records' ``__dict__``, and whether every record was read or saved (its key then is
    the key as read).

    Checks missing, changed and repeated keys. This runs once per record, so it stays lean:
    ``itemgetter``/``attrgetter`` mapped over the records (C loops), and a per-record loop
    only where a record was never read or saved or its key changed.
    """
    info = model.__ar_info__
    pk_fields = info.pk_fields
    nkeys = len(pk_fields)
    get_key = operator.itemgetter(*pk_fields)
    datas = list(map(_dict_of, records))
    rows = list(map(operator.itemgetter(*row_fields), datas))  # >= 2 fields: a key and a value
    keys = list(map(_first, rows)) if nkeys == 1 else [row[:nkeys] for row in rows]
    try:  # the usual: every record was read or saved, its key as read (one C-level pass)
        known = list(map(get_key, map(_persisted_of, records))) == keys
    except (AttributeError, TypeError):  # some record never saved nor loaded (no snapshot)
        known = False
    originals: list[dict[str, Any] | None] = []
    if not known or lock is not None:
        originals = [record._ar_original for record in records]
    if not known:
        for index, (original, data) in enumerate(zip(originals, datas)):
            if original is not None and get_key(original) != get_key(data):
                _refuse_changed_key(model, index, original, data)
    if lock is not None:  # check the version the record was read with
        rows = [(*row[:-1], (original or data)[lock])
                for row, original, data in zip(rows, originals, datas)]
    distinct = set(keys)
    if (None in distinct) if nkeys == 1 else any(None in k for k in keys):
        index = next(i for i, r in enumerate(rows) if None in r[:nkeys])
        raise QueryError(
            f"record {index}: {model.__name__} has no primary key value; batch_update "
            "writes existing rows (use batch_insert for new ones)"
        )
    if len(distinct) != len(keys):
        seen: dict[Any, int] = {}
        for index, key in enumerate(keys):
            first = seen.setdefault(key, index)
            if first != index:
                raise QueryError(
                    f"records {first} and {index}: {model.__name__} {key!r} appears twice in "
                    "one batch_update"
                )
    return rows, datas, known


_dict_of = operator.attrgetter("__dict__")
_first = operator.itemgetter(0)
_persisted_of = operator.attrgetter("_ar_persisted")


def _refuse_changed_key(
    model: type[ActiveRecord], index: int, original: dict[str, Any], data: dict[str, Any]
) -> None:
    """A record whose primary key was changed since it was read: writing its row by the old
    key would leave that row under the old key while the record claims the new one."""
    info = model.__ar_info__
    fname = next(f for f in info.pk_fields if original[f] != data[f])
    raise QueryError(
        f"record {index}: {model.__name__}.{fname} was changed from {original[fname]!r} to "
        f"{data[fname]!r}; batch_update finds rows by the key they were read with and does "
        "not move them (save() writes a changed key)"
    )


def batch_update(
    model: type[ActiveRecord],
    records: Iterable[ActiveRecord],
    fields: Iterable[str] | None = None,
    *,
    batch_size: int | None = None,
    touch: bool = True,
    validate: bool | None = None,
) -> int:
    """Write ``fields`` of every record by primary key; see the module docs and
    :meth:`ActiveRecord.batch_update <activerecord.model.base.ActiveRecord.batch_update>`."""
    # Arguments first: a wrong call fails before any input is read, empty or not.
    check_size(batch_size)
    check_records(records, model.__name__, what=f"{model.__name__} instances")
    if fields is not None:
        fields = _resolve_fields(model, [], fields)  # unknown or unwritable names
    items = list(records)
    if not items:
        return 0
    # One set of the types first (C, a third of what an isinstance call per record costs);
    # subclasses, or anything else, take the per-record check.
    if set(map(type, items)) != {model} and not all(
        map(isinstance, items, itertools.repeat(model))
    ):
        index, record = next((i, r) for i, r in enumerate(items) if not isinstance(r, model))
        raise ArgumentTypeError(
            f"record {index}: expected a {model.__name__}, got {type(record).__name__}"
        )
    if validate is None:  # assignments validated already: nothing a save() would not accept
        validate = not model.model_config.get("validate_assignment")
    # Changed-field sets, row tuples, parameters and new snapshots are a few small objects per
    # record and no cycles: with the collector on, each of its passes walks every record again,
    # which cost as much as the whole SQLite write (reference counting still frees them).
    with collector_paused():
        if validate:
            _validate(model, items)
        names = _resolve_fields(model, items, fields)
        if not names:
            return 0  # fields=None and nothing changed: no SQL, like save()
        return _write(model, items, fields, names, batch_size=batch_size, touch=touch)


def _write(
    model: type[ActiveRecord],
    items: list[ActiveRecord],
    fields: Iterable[str] | None,
    names: list[str],
    *,
    batch_size: int | None,
    touch: bool,
) -> int:
    """Write the checked records' ``names`` and mark them written; return the rows matched."""
    info = model.__ar_info__
    lock = model._lock_field()
    defaults = model._update_defaults() if touch else {}
    scalars = tuple(f for f in defaults if f not in names and f != lock)
    row_fields = [*info.pk_fields, *names, *([lock] if lock else [])]
    written = (*info.pk_fields, *names, *scalars, *([lock] if lock else []))
    rows, datas, known = _rows(model, items, row_fields, lock)
    db = model.database()
    # Records change only once every row is written; inside an ambient transaction, a
    # rollback of it puts them back.
    undo = Undo(active=False, whole_call=True, copies=False, ambient=tracks_rollback(db),
                rollback_only=True)
    stamps = {f: defaults[f] for f in scalars}
    try:
        count = send_rows(model, db, rows, names, scalars, [stamps[f] for f in scalars],
                          batch_size=batch_size)
    except StaleChunk as stale:
        raise _stale_error(model, items, stale.start) from None
    undo.keep(items, datas)
    if stamps or lock:
        for data, row in zip(datas, rows):
            if stamps:
                data.update(stamps)
            if lock:
                data[lock] = row[-1] + 1
    # The fields a named list left out keep their pending changes (save() writes them later).
    partly = fields is not None and len(written) < len(info.fields)
    if partly and known:  # each snapshot holds the key already (checked): mark the rest
        written = written[len(info.pk_fields):]
    undo.written(items, datas, written if partly else ALL)
    restore = undo.succeeded()
    if restore is not None:
        on_rollback(restore, db)
    return count


def _validate(model: type[ActiveRecord], items: list[ActiveRecord]) -> None:
    """Validate every record's fields as ``save()`` does; one error naming each bad record."""
    try:
        with collector_paused():
            validate_rows(model, [r.__dict__ for r in items])
    except pydantic.ValidationError as exc:
        raise BatchValidationError(model.__name__, record_failures(exc, {})) from None


def _stale_error(
    model: type[ActiveRecord], records: list[ActiveRecord], start: int
) -> StaleRecordError:
    """Name every record from ``start`` on whose row is gone or has another version.

    Records before ``start`` matched in earlier chunks; the rest are read again (after the
    rollback) so the error names all stale records, not only those of the failing chunk.
    """
    info = model.__ar_info__
    lock = model._lock_field()
    assert lock is not None
    get_keys = operator.itemgetter(*info.pk_fields)
    db = model.database()
    wanted = {
        get_keys(_original(r) or r.__dict__): i
        for i, r in enumerate(records[start:], start)
    }
    with read_connection(db) as conn:
        rows = key_rows(db.facts, len(info.pk_fields))
        current = {
            key: values[0]
            for key, values in select_by_keys(conn, info, list(wanted), [lock], rows=rows)
        }
    stale: list[tuple[int, Any]] = []
    for key, index in wanted.items():
        record = records[index]
        if current.get(key) != (_original(record) or record.__dict__)[lock]:
            stale.append((index, key))
    if not stale:  # changed back meanwhile: name the failing chunk's first record
        first = records[start]
        stale = [(start, get_keys(_original(first) or first.__dict__))]
    stale.sort()
    shown = ", ".join(f"record {i} ({k!r})" for i, k in stale[:20])
    more = f" and {len(stale) - 20} more" if len(stale) > 20 else ""
    return StaleRecordError(
        f"{len(stale)} {model.__name__} record(s) were changed or deleted since they were read: "
        f"{shown}{more}; nothing was written",
        model=model.__name__,
        keys=[k for _, k in stale],
        indexes=[i for i, _ in stale],
        versions=[(_original(records[i]) or records[i].__dict__)[lock] for i, _ in stale],
    )
