"""Upsert many rows: insert the new, update the existing, and report which was which.

Every backend runs the same plan, chunk by chunk, inside the batch's transaction:

1. lock the rows that hold the chunk's keys (``SELECT pk, key ... FOR UPDATE``);
2. insert the rows whose key is new with the backend's exact batch-insert path
   (:mod:`activerecord.write.strategies`: ``COPY`` on PostgreSQL...), so their keys are known;
3. update the existing rows by primary key in one statement per chunk, only where a value
   changes (:mod:`activerecord.insert.merge`), so the database's count is the rows changed.

So ``inserted``, ``updated`` and ``unchanged`` are exact on every backend (MySQL's "2 rows
affected per update" never enters), primary keys are set on every instance, new or existing,
and ``updated_at`` moves only on rows that changed. Dict rows nobody gets back (no hooks) go
where the dialect allows through statements the server counts instead (:mod:`.upsert_direct`:
SQLite's ``INSERT ... ON CONFLICT DO UPDATE ... WHERE changed``; MySQL/MariaDB's temporary
table loaded by ``LOAD DATA``, then ``UPDATE ... JOIN`` and ``INSERT ... SELECT``).

Rules, the same on every backend:

* **Input order**: rows apply as if one at a time, in order. A key given twice in one call is
  inserted (or updated) by its first row and updated by the next: the last one wins, and each
  input row is counted once.
* **Concurrency**: ``FOR UPDATE`` cannot lock a key that does not exist yet. When another
  transaction inserts one of the chunk's new keys first, the chunk's savepoint rolls back and
  the chunk runs again (up to three times), now finding that row. Under PostgreSQL's
  REPEATABLE READ the other row stays invisible and the ``UniqueViolation`` is raised.
* **Soft deletes**: a soft-deleted row holding the key is left alone (counted ``unchanged``)
  unless ``revive=True``, which updates it and clears ``deleted_at``. A soft-unique key
  (:func:`~activerecord.soft_unique`) is held by live rows only, so there a new row is inserted.
* Keys are matched by the Python values the database returns: a case-insensitive collation
  (MySQL's default) that sees ``"A@x"`` and ``"a@x"`` as one key raises ``UniqueViolation``.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord, col, excluded
    >>> class Player(ActiveRecord):
    ...     __table_name__ = "doc_upsert_players"
    ...     id: int | None = None
    ...     wins: int = 0
    >>> _ = activerecord.connect("sqlite://")
    >>> Player.create_table()
    >>> Player.batch_upsert([{"id": 7, "wins": 1}])
    UpsertResult(inserted=1, updated=0, unchanged=0)
    >>> rows = [{"id": 7, "wins": 2}, {"id": 8, "wins": 1}]
    >>> Player.batch_upsert(rows, update={"wins": col("wins") + excluded("wins")})
    UpsertResult(inserted=1, updated=1, unchanged=0)
    >>> [(p.id, p.wins) for p in Player.query().order_by("id")]
    [(7, 3), (8, 1)]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..arguments import check_records, check_size, is_collection
from ..backend.errors import translate_error
from ..errors import add_context
from ..insert.conflict import all_unique_keys, resolve_target
from ..insert.locate import WriteFailed
from ..model.state import Undo
from ..validation import collector_paused
from .hooks import ChunkHooks
from .plan import Plan, ProgressCallback
from .plan import run as run_plan
from .strategies import InsertStrategy
from .upsert_chunk import Raced, UpsertWriter
from .upsert_direct import DirectUpsert
from .upsert_spec import UpdateArg, Updates, UpsertResult

if TYPE_CHECKING:
    from ..model import ActiveRecord
    from ..model.info import ModelInfo

__all__ = ["UpsertResult", "batch_upsert", "insert_ignoring"]


def _given_fields(info: ModelInfo, chunk: list[Any]) -> list[tuple[str, ...]]:
    """For dict rows: the fields each row gives, in table order (cached per key order)."""
    cache: dict[tuple[str, ...], tuple[str, ...]] = {}
    out = []
    for item in chunk:
        order = tuple(item)
        fields = cache.get(order)
        if fields is None:
            present = {info.field_for(k) for k in order}
            fields = cache[order] = tuple(f for f in info.fields if f in present)
        out.append(fields)
    return out


def _execute(
    model: type[ActiveRecord],
    records: Iterable[Any],
    run: UpsertWriter,
    *,
    validate: bool,
    batch_size: int | None,
    progress: bool | ProgressCallback,
    from_dicts: bool | None,
    return_records: bool,
    verb: str,
    hooks: bool = True,
) -> list[Any]:
    """Upsert and insert-or-ignore through the shared chunk loop; returns the inserted records.

    ``from_dicts=None``: dicts or instances, as the first record is.
    """
    info = model.__ar_info__
    iterator = iter(records)
    first = next(iterator, _END)
    if first is _END:
        return []
    if from_dicts is None:
        from_dicts = isinstance(first, Mapping)
    run.refresh = run.refresh and not from_dicts
    per_row = from_dicts and run.updates is not None and run.updates.fixed is None
    if is_collection(records):
        rest: Iterable[Any] = records  # iterated again; its length drives the progress bar
    else:
        rest = itertools.chain([first], iterator)

    def write(
        conn: sa.Connection,
        strategy: InsertStrategy,
        chunk: list[Any],
        datas: list[dict[str, Any]],
        offset: int,
        undo: Undo,
    ) -> list[int]:
        # Lookup rows, parameter tuples and merged values are small objects without cycles:
        # the collector's passes over the chunk's records cost as much as the SQLite write.
        with collector_paused():
            given = _given_fields(info, chunk) if per_row else None
            return run.chunk(conn, strategy, datas, given, offset)

    context = f"{verb} of {model.__name__}"
    called = _hooks(model, records, run, hooks and not (
        from_dicts and not return_records and run.updates is None
    ))
    if from_dicts and not return_records and called is None:
        run.direct = DirectUpsert.make(model, run.keys, run.updates)
    # Records already in memory: the collector stays paused over the whole call (preparing,
    # marking and copying them allocates per record too); a stream only over each chunk.
    pause = collector_paused() if is_collection(records) else nullcontext()
    try:
        with pause:
            plan = Plan.make(
                model, rest, context=context, batch_size=batch_size, validate=validate,
                progress=progress, from_dicts=from_dicts, return_records=return_records,
                copies=True,  # existing rows' stored values are read into the records
                hooks=called,
            )
            _count, out = run_plan(plan, rest, write)
    except Raced as exc:
        cause = exc.__cause__
        assert cause is not None  # Raced is always raised from the driver's error
        orig, row = (cause.orig, cause.row) if isinstance(cause, WriteFailed) else (cause, None)
        error = translate_error(orig, context=context, record_index=row)
        raise add_context(
            error, operation=verb.replace(" ", "_"), model=model.__name__
        ) from orig
    return out


def _hooks(
    model: type[ActiveRecord], records: Iterable[Any], run: UpsertWriter, wanted: bool
) -> ChunkHooks | None:
    """The model's batch hooks for the call: insert-or-ignore runs the insert hooks (after
    ones on the rows inserted), an upsert its own (after ones get the chunk's counts). Not
    ``wanted``: the loaders' bulk path, or dicts with ``return_records=False`` (the raw path,
    Rails' insert_all: no records, no hooks)."""
    if not wanted:
        return None
    if run.updates is None:
        called = model._batch_hooks("insert", records)
        if called is not None:
            called.only_kept = True
        return called
    called = model._batch_hooks("upsert", records)
    if called is not None:
        called.extra = run.chunk_result
    return called


_END = object()


def batch_upsert(
    model: type[ActiveRecord],
    records: Iterable[Any],
    *,
    conflict: str | Sequence[str] | None = None,
    update: UpdateArg = None,
    validate: bool = True,
    batch_size: int | None = None,
    progress: bool | ProgressCallback = False,
    revive: bool = False,
    touch: bool = True,
    hooks: bool = True,
) -> UpsertResult:
    """Insert new rows and update existing ones; see the module docs and
    :meth:`ActiveRecord.batch_upsert <activerecord.model.ActiveRecord.batch_upsert>`.
    ``hooks=False``: the loaders' bulk path, which runs no batch hooks (Rails' upsert_all)."""
    # Arguments first: a wrong call fails before any input is read, empty or not.
    check_size(batch_size)
    check_records(records, model.__name__, what=f"{model.__name__} instances or dicts")
    info = model.__ar_info__
    key = resolve_target(info, conflict, model)
    updates = Updates(model, key, update, revive=revive, touch=touch)
    run = UpsertWriter(model, [key], updates, refresh=True)
    _execute(
        model, records, run, validate=validate, batch_size=batch_size, progress=progress,
        from_dicts=None, return_records=False, verb="batch upsert", hooks=hooks,
    )
    return run.counts


def insert_ignoring(
    model: type[ActiveRecord],
    records: Iterable[Any],
    *,
    validate: bool,
    batch_size: int | None,
    progress: bool | ProgressCallback,
    from_dicts: bool,
    return_records: bool,
    hooks: bool = True,
) -> tuple[int, list[Any]]:
    """``batch_insert(on_conflict="ignore")``: skip rows holding any unique key that exists.

    Returns the rows inserted and, with ``return_records``, their instances.
    """
    keys = all_unique_keys(model)
    run = UpsertWriter(model, keys, None, refresh=True)
    out = _execute(
        model, records, run, validate=validate, batch_size=batch_size, progress=progress,
        from_dicts=from_dicts, return_records=return_records, verb="batch insert",
        hooks=hooks,
    )
    return run.counts.inserted, out
