"""Upsert many rows: insert the new, update the existing, and report which was which.

Every backend runs the same plan, chunk by chunk, inside the batch's transaction:

1. lock the rows that hold the chunk's keys (``SELECT pk, key ... FOR UPDATE``);
2. insert the rows whose key is new with the backend's exact batch-insert path
   (:mod:`activerecord.write.strategies`: ``COPY`` on PostgreSQL...), so their keys are known;
3. update the existing rows by primary key in one statement per chunk, only where a value
   changes (:mod:`activerecord.insert.merge`), so the database's count is the rows changed.

So ``inserted``, ``updated`` and ``unchanged`` are exact on every backend (MySQL's "2 rows
affected per update" never enters), primary keys are set on every instance, new or existing,
and ``updated_at`` moves only on rows that changed.

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
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import pydantic
import sqlalchemy as sa

from .arguments import check_records, check_size, is_collection
from .backend.errors import translate_error
from .backend.transaction import Transaction
from .errors import QueryError, UniqueViolation, ValidationError
from .insert.conflict import (
    ConflictKey,
    all_unique_keys,
    find_existing,
    key_getter,
    resolve_target,
)
from .insert.locate import ValueRefused, WriteFailed
from .insert.merge import MergePlan, MergeSpec
from .model.batch_hooks import BatchHooks, batch_hooks
from .model.state import Undo
from .query.conditions import check_names
from .query.expression import Excluded, Expression
from .validation import collector_paused
from .write.by_key import ByKeyPlan, RowSource, key_rows, processors, row_source, select_by_keys
from .write.insert import write_chunk
from .write.plan import Plan, ProgressCallback
from .write.plan import run as run_plan
from .write.strategies import InsertStrategy

if TYPE_CHECKING:
    from .model import ActiveRecord
    from .model.info import ModelInfo

__all__ = ["UpsertResult", "batch_upsert", "insert_ignoring"]

#: Tries of one chunk when a concurrent transaction inserts one of its new keys first.
_TRIES = 3


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did: rows ``inserted``, ``updated`` (a value changed) and ``unchanged``.

    ``int(result)`` and ``result.total`` are the rows processed (every input row counts once).

    >>> result = UpsertResult(inserted=2, updated=1, unchanged=3)
    >>> int(result), result.total
    (6, 6)
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        """All rows processed: inserted + updated + unchanged."""
        return self.inserted + self.updated + self.unchanged

    def __int__(self) -> int:
        return self.total

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


UpdateArg = Sequence[str] | Mapping[str, Any] | None


class _Updates:
    """The UPDATE half of one call: which fields, how, and the values set on changed rows."""

    def __init__(
        self,
        model: type[ActiveRecord],
        key: ConflictKey,
        update: UpdateArg,
        *,
        revive: bool,
        touch: bool,
    ) -> None:
        self.model = model
        info = self.info = model.__ar_info__
        self.key = key
        self.lock = model._lock_field()
        update_defaults = model._update_defaults() if touch else {}
        restore = model._restore_values() or {}
        self.soft = bool(model._scope_criteria("only_deleted"))
        self.revive = revive and self.soft
        fixed = {f for f in (*info.pk_fields, *key.fields, *([self.lock] if self.lock else []))}
        automatic = set(model._insert_defaults()) | set(update_defaults) | set(restore)
        # Set by inserts only (TimestampMixin's created_at): a row's own value for one is for
        # the insert, and the default update never moves it (update=["created_at"] does).
        insert_only = set(model._insert_defaults()) - set(model._update_defaults())
        #: Fields a dict row may update when it gives them (update=None).
        self.updatable = tuple(f for f in info.fields if f not in fixed and f not in insert_only)
        self.fixed: dict[str, Any] | None = None
        if update is None:
            self.instance_fields = {f: None for f in self.updatable if f not in automatic}
        else:
            self.fixed = self._check(update, fixed)
        scalars = dict(update_defaults)
        if self.revive:
            scalars.update({f: v for f, v in restore.items() if f not in update_defaults})
        self.scalar_values = scalars
        self._specs: dict[tuple[str, ...] | None, MergeSpec | None] = {}

    def _check(self, update: Sequence[str] | Mapping[str, Any], fixed: set[str]) -> dict[str, Any]:
        info = self.info
        if isinstance(update, str):
            update = (update,)
        items = update.items() if isinstance(update, Mapping) else ((n, None) for n in update)
        out: dict[str, Any] = {}
        for name, value in items:
            if not isinstance(name, str):
                raise QueryError(f"update keys must be column names, got {name!r}")
            fname = info.field_for(name)  # UnknownColumnError before any SQL
            if fname in fixed:
                what = "the optimistic-lock version" if fname == self.lock else "part of a key"
                raise QueryError(
                    f"batch_upsert of {info.model_name} cannot update {fname!r}: it is {what}"
                )
            if fname in out:
                raise QueryError(f"batch_upsert of {info.model_name} sets {fname!r} twice")
            out[fname] = self._value(fname, value)
        return out

    def _value(self, fname: str, value: Any) -> Any:
        info = self.info
        if value is None:
            return None
        if isinstance(value, Excluded) and info.field_for(value.name) == fname:
            return None
        if isinstance(value, Expression):
            return value.to_clause(group=True)
        if isinstance(value, sa.ClauseElement):
            check_names(info, value)
            return value
        try:
            checked = info.adapter(fname).validate_python(value)
        except pydantic.ValidationError as exc:
            raise ValidationError(
                f"{info.model_name}.{fname}: invalid value {value!r}: {exc.errors()[0]['msg']}",
                model=info.model_name,
                errors=exc.errors(),
            ) from exc
        return sa.literal(checked, type_=info.columns[fname].type)

    def values_for(self, given: tuple[str, ...] | None) -> dict[str, Any]:
        if self.fixed is not None:
            return self.fixed
        if given is None:
            return self.instance_fields
        return {f: None for f in given if f in self.updatable}

    def spec(self, given: tuple[str, ...] | None) -> MergeSpec | None:
        """The merge for rows that gave these fields (None: instances); None when nothing to do."""
        cache_key = None if self.fixed is not None else given
        if cache_key in self._specs:
            return self._specs[cache_key]
        values = self.values_for(given)
        spec = None
        if values or self.revive:
            scalars = tuple(f for f in self.scalar_values if f not in values)
            spec = MergeSpec.build(
                self.model, values, scalars=scalars, revive=self.revive,
                skip_deleted=self.soft and not self.revive,
            )
        self._specs[cache_key] = spec
        return spec


class _Run:
    """One call: chunks, generations of repeated keys, lookup, insert, merge, read back."""

    def __init__(
        self,
        model: type[ActiveRecord],
        keys: list[ConflictKey],
        updates: _Updates | None,
        *,
        refresh: bool,
    ) -> None:
        self.model = model
        self.info: ModelInfo = model.__ar_info__
        self.keys = keys
        self.updates = updates
        self.refresh = refresh
        self.db = model.database()
        self.facts = self.db.facts
        self.dialect = self.db.engine.dialect
        self._plans: dict[tuple[MergeSpec, int], ByKeyPlan] = {}
        self._read_fields: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self.counts = UpsertResult()
        self._reported = UpsertResult()

    def chunk_result(self) -> tuple[UpsertResult]:
        """The counts of the chunks written since the last call (an after hook's argument)."""
        now, before = self.counts, self._reported
        self._reported = now
        return (UpsertResult(
            now.inserted - before.inserted, now.updated - before.updated,
            now.unchanged - before.unchanged,
        ),)

    def chunk(
        self,
        conn: sa.Connection,
        strategy: InsertStrategy,
        datas: list[dict[str, Any]],
        given: list[tuple[str, ...]] | None,
        offset: int,
    ) -> list[int]:
        """Write one validated chunk; return the positions of the rows inserted."""
        inserted: list[int] = []
        for positions in _generations(datas, self.keys):
            for attempt in range(_TRIES):
                try:
                    with Transaction(self.db):
                        done, counts = self._generation(conn, strategy, datas, given, positions,
                                                        offset)
                except _Raced:
                    if attempt == _TRIES - 1:
                        raise
                    continue
                inserted += done
                self.counts += counts
                break
        return inserted

    def _generation(
        self,
        conn: sa.Connection,
        strategy: InsertStrategy,
        datas: list[dict[str, Any]],
        given: list[tuple[str, ...]] | None,
        positions: list[int],
        offset: int,
    ) -> tuple[list[int], UpsertResult]:
        info = self.info
        found: dict[int, tuple[Any, ...]] = {}
        remaining = positions
        stored, changing = self.read_fields()
        for key in self.keys:
            get = key_getter(key)
            wanted: dict[Any, int] = {}
            for p in remaining:
                value = get(datas[p])
                if value is not None:
                    wanted[value] = p
            if not wanted:
                continue
            limit = (self.facts.max_params or 65_535) // len(key.fields)
            piece = min(self.facts.lookup_rows, limit)
            existing = find_existing(
                conn, self.model, key, list(wanted), piece=piece,
                any_array=self.facts.lookup_any_array, extra=stored,
            )
            for value, p in wanted.items():
                hit = existing.get(value)
                if hit is not None:
                    found[p] = hit
            remaining = [p for p in remaining if p not in found]
        new = remaining
        if new:
            pk = info.autoincrement_pk
            blank = [p for p in new if pk is not None and datas[p][pk] is None]
            try:
                write_chunk(conn, strategy, info, [datas[p] for p in new], 0)
            except WriteFailed as exc:
                for p in blank:
                    datas[p][pk] = None  # type: ignore[index]
                exc.row = None if exc.row is None else offset + new[exc.row]
                if isinstance(translate_error(exc.orig), UniqueViolation):
                    raise _Raced from exc
                raise
            except sa.exc.DBAPIError as exc:
                for p in blank:
                    datas[p][pk] = None  # type: ignore[index]
                if isinstance(translate_error(exc), UniqueViolation):
                    raise _Raced from exc
                raise
        names = [*info.pk_fields, *stored]
        adapters = [None] * len(info.pk_fields) + [info.adapter(f) for f in stored]
        for p, hit in found.items():
            datas[p].update(
                (f, v if a is None else a.validate_python(v))
                for f, a, v in zip(names, adapters, hit)
            )
        existing_positions = [p for p in positions if p in found]
        updated = (
            self._merge(conn, datas, given, existing_positions, offset)
            if existing_positions else 0
        )
        if changing and existing_positions:
            self._read_back(conn, datas, changing, existing_positions)
        return new, UpsertResult(len(new), updated, len(existing_positions) - updated)

    def _merge(
        self,
        conn: sa.Connection,
        datas: list[dict[str, Any]],
        given: list[tuple[str, ...]] | None,
        positions: list[int],
        offset: int = 0,
    ) -> int:
        if self.updates is None:
            return 0
        groups: dict[tuple[str, ...] | None, list[int]] = {}
        if given is None or self.updates.fixed is not None:
            groups[None] = positions
        else:
            for p in positions:
                groups.setdefault(given[p], []).append(p)
        changed = 0
        source = row_source(self.facts.batch_update_style)
        for fields, members in groups.items():
            spec = self.updates.spec(fields)
            if spec is None:
                continue
            row_fields = [*self.info.pk_fields, *spec.incoming]
            get = itemgetter(*row_fields)
            rows = [get(datas[p]) for p in members]
            if len(row_fields) == 1:
                rows = [(r,) for r in rows]
            procs = processors(self.info, row_fields, self.dialect)
            if procs:
                try:
                    rows = [_process(r, procs) for r in rows]
                except Exception as exc:
                    raise self._refused(row_fields, procs, rows, members, offset) from exc
            scalars = self._scalars(spec)
            size = self.facts.update_rows_per_statement(len(row_fields) + len(scalars))
            for start in range(0, len(rows), size):
                part = rows[start : start + size]
                changed += self._plan(spec, source, len(part)).run(conn, part, scalars)
        return changed

    def _refused(
        self,
        fields: list[str],
        procs: list[tuple[int, Any]],
        rows: list[tuple[Any, ...]],
        members: list[int],
        offset: int,
    ) -> WriteFailed:
        """The record and column of the value a bind processor refused, located."""
        for row, p in zip(rows, members):
            for j, proc in procs:
                try:
                    proc(row[j])
                except Exception as err:  # noqa: BLE001 - the value refused
                    column = self.info.columns[fields[j]].name
                    return WriteFailed(ValueRefused(column, err, row[j]), offset + p, located=True)
        return WriteFailed(ValueRefused(None, RuntimeError("a value was refused")), None)

    def _scalars(self, spec: MergeSpec) -> tuple[Any, ...]:
        assert self.updates is not None
        values = [self.updates.scalar_values[f] for f in spec.scalars]
        for j, proc in processors(self.info, spec.scalars, self.dialect):
            values[j] = proc(values[j])
        return tuple(values)

    def _plan(self, spec: MergeSpec, source: RowSource, nrows: int) -> ByKeyPlan:
        rows = nrows if source.multi_row else 1
        plan = self._plans.get((spec, rows))
        if plan is None:
            plan = MergePlan.compile(
                self.model, spec, source, rows, self.dialect,
                binary_text=self.facts.text_compare_binary,
            )
            self._plans[(spec, rows)] = plan
        return plan

    def read_fields(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The stored values existing rows give back to instances (none for dicts): read with
        the lookup (columns the upsert leaves alone), and after the update (columns it may
        change: ``updated_at``, the lock version, expressions, ``deleted_at`` on revive)."""
        if not self.refresh:
            return (), ()
        if self._read_fields is None:
            info = self.info
            written = set(info.pk_fields)
            changing: set[str] = set()
            if self.updates is not None:  # (insert-or-ignore reads the whole stored row)
                updates = self.updates
                written |= set(updates.key.fields)
                values = updates.values_for(None)
                written |= {f for f, v in values.items() if v is None}
                changing = {f for f, v in values.items() if v is not None}
                changing |= set(updates.scalar_values)
                if self.model._lock_field():
                    changing.add(self.model._lock_field())  # type: ignore[arg-type]
            self._read_fields = (
                tuple(f for f in info.fields if f not in written and f not in changing),
                tuple(f for f in info.fields if f in changing),
            )
        return self._read_fields

    def _read_back(
        self,
        conn: sa.Connection,
        datas: list[dict[str, Any]],
        fields: Sequence[str],
        positions: list[int],
    ) -> None:
        """Existing rows: give the instances the stored values of ``fields`` after the update."""
        info = self.info
        get_key = itemgetter(*info.pk_fields)
        adapters = [info.adapter(f) for f in fields]
        by_key: dict[Any, list[int]] = {}
        for p in positions:  # insert-or-ignore: two records may have met one row
            by_key.setdefault(get_key(datas[p]), []).append(p)
        rows = key_rows(self.facts, len(info.pk_fields))
        for key, stored in select_by_keys(conn, info, list(by_key), fields, rows=rows):
            values = [a.validate_python(v) for a, v in zip(adapters, stored)]
            for p in by_key[key]:
                datas[p].update(zip(fields, values))


class _Raced(Exception):
    """Internal: a new key was inserted by another transaction meanwhile; run the chunk again."""


def _process(row: tuple[Any, ...], procs: list[tuple[int, Any]]) -> tuple[Any, ...]:
    values = list(row)
    for j, proc in procs:
        values[j] = proc(values[j])
    return tuple(values)


def _generations(datas: list[dict[str, Any]], keys: list[ConflictKey]) -> list[list[int]]:
    """Positions split so no key repeats within one part; parts apply in order."""
    out: list[list[int]] = [[]]
    getters = [key_getter(k) for k in keys]
    if len(keys) == 1:
        get = getters[0]
        values = [get(data) for data in datas]
        if len(set(values)) == len(values):  # the usual: no key repeats
            return [list(range(len(datas)))]
    seen: dict[tuple[int, Any], int] = {}
    for p, data in enumerate(datas):
        found = [(n, v) for n, v in enumerate(g(data) for g in getters) if v is not None]
        gen = max((seen.get(f, 0) for f in found), default=0)
        for f in found:
            seen[f] = gen + 1
        while len(out) <= gen:
            out.append([])
        out[gen].append(p)
    return [part for part in out if part]


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
    run: _Run,
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
    # Insert-or-ignore runs the insert hooks (after ones on the rows inserted); dicts with
    # return_records=False are the raw path (Rails insert_all): no records, no hooks.
    called: BatchHooks | None = None
    if not hooks or (from_dicts and not return_records and run.updates is None):
        pass
    elif run.updates is None:
        called = batch_hooks(model, "insert", records)
        if called is not None:
            called.only_kept = True
    else:
        called = batch_hooks(model, "upsert", records)
        if called is not None:
            called.extra = run.chunk_result
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
    except _Raced as exc:
        cause = exc.__cause__
        if isinstance(cause, WriteFailed):
            error = translate_error(cause.orig, context=context, record_index=cause.row)
            raise error from cause.orig
        assert cause is not None
        raise translate_error(cause, context=context) from cause
    return out


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
    updates = _Updates(model, key, update, revive=revive, touch=touch)
    run = _Run(model, [key], updates, refresh=True)
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
    run = _Run(model, keys, None, refresh=True)
    out = _execute(
        model, records, run, validate=validate, batch_size=batch_size, progress=progress,
        from_dicts=from_dicts, return_records=return_records, verb="batch insert",
        hooks=hooks,
    )
    return run.counts.inserted, out
