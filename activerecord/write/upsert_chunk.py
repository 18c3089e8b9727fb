"""The upsert writer: one chunk's rows applied as if one at a time, in input order.

Per chunk (see :mod:`.upsert` for the rules): the rows are cut into *generations* in which no
key repeats; per generation, inside a savepoint, the rows holding the keys are locked and
read (:func:`~activerecord.insert.conflict.find_existing`), the new rows inserted by the
insert strategy (:func:`~.rows.write_chunk`), the existing ones updated by key where a value
changes (:mod:`activerecord.insert.merge` over a :mod:`.by_key` plan), and their stored values
read back into the records (:func:`~.by_key.select_by_keys`). A key another transaction
inserted meanwhile runs the generation again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.errors import translate_error
from ..backend.transaction import Transaction, is_retryable
from ..errors import UniqueViolation
from ..insert.conflict import ConflictKey, find_existing, generations, key_getter
from ..insert.locate import ValueRefused, WriteFailed, refused_in_rows, rows_located
from ..insert.merge import MergePlan, MergeSpec
from ..insert.read_back import give_stored
from ..log import logger
from .by_key import (
    ByKeyPlan,
    RowSource,
    key_rows,
    process_rows,
    processors,
    row_source,
    select_by_keys,
)
from .load_rows import NotLoaded
from .rows import write_chunk
from .strategies import InsertStrategy
from .upsert_direct import DirectUpsert, NotDirect
from .upsert_spec import Updates, UpsertResult

if TYPE_CHECKING:
    from ..backend.dialects import DialectFacts
    from ..model import ActiveRecord
    from ..model.info import ModelInfo

__all__ = ["Raced", "UpsertWriter"]

#: Tries of one chunk when a concurrent transaction inserts one of its new keys first.
_TRIES = 3


class UpsertWriter:
    """One call: chunks, generations of repeated keys, lookup, insert, merge, read back."""

    def __init__(
        self,
        model: type[ActiveRecord],
        keys: list[ConflictKey],
        updates: Updates | None,
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
        self._plans: dict[tuple[MergeSpec, str, int], ByKeyPlan] = {}
        self._read_fields: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self.counts = UpsertResult()
        self._reported = UpsertResult()
        #: The direct path (:mod:`.upsert_direct`), set where nobody gets records back.
        self.direct: DirectUpsert | None = None

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
        for positions in generations(datas, self.keys):
            if self.direct is not None and self._direct(conn, datas, given, positions):
                continue  # (nobody asks which rows were inserted: no records, no hooks)
            for attempt in range(_TRIES):
                try:
                    with Transaction(self.db):
                        done, counts = self._generation(conn, strategy, datas, given, positions,
                                                        offset)
                except Raced:
                    if attempt == _TRIES - 1:
                        raise
                    continue
                inserted += done
                self.counts += counts
                break
        return inserted

    def _direct(
        self,
        conn: sa.Connection,
        datas: list[dict[str, Any]],
        given: list[tuple[str, ...]] | None,
        positions: list[int],
    ) -> bool:
        """One generation by the direct path, in a savepoint; False (nothing written) where
        it does not apply or fails: the lookup path then writes it, and reports any error
        located as it always has."""
        assert self.direct is not None
        try:
            with Transaction(self.db):
                counts = self.direct.write(conn, datas, given, positions)
        except NotDirect:
            return False
        except Exception as exc:  # noqa: BLE001 - rolled back; the lookup path names the cause
            if is_retryable(exc):
                # A deadlock or lock timeout: MySQL may have rolled the whole transaction
                # back, so the caller's retry decides, not the lookup path.
                raise
            # A statement the server refuses would fail again: the rest of the call takes
            # the lookup path.
            self.direct = None
            return False
        self.counts += counts
        return True

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
            piece = key_rows(self.facts, len(key.fields))
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
                with rows_located(lambda n: offset + new[n], always=True):
                    write_chunk(conn, strategy, info, [datas[p] for p in new], 0)
            except WriteFailed as exc:
                for p in blank:
                    datas[p][pk] = None  # type: ignore[index]
                if isinstance(translate_error(exc.orig), UniqueViolation):
                    raise Raced from exc
                raise
            except sa.exc.DBAPIError as exc:
                for p in blank:
                    datas[p][pk] = None  # type: ignore[index]
                if isinstance(translate_error(exc), UniqueViolation):
                    raise Raced from exc
                raise
        if found:
            give_stored(info, datas, list(found), [*info.pk_fields, *stored],
                         list(found.values()), len(info.pk_fields))
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
                    rows = process_rows(rows, procs)
                except Exception as exc:
                    raise self._refused(row_fields, procs, rows, members, offset) from exc
            # The batch update's form for this many rows (COPY into a temporary table on
            # PostgreSQL, LOAD DATA into one on MySQL, from their dialects' row counts).
            changed += self._merge_rows(conn, spec, self.facts.update_style(len(rows)),
                                        row_fields, rows, [offset + p for p in members])
        return changed

    def _merge_rows(self, conn: sa.Connection, spec: MergeSpec, style: str, row_fields: list[str],
                    rows: list[tuple[Any, ...]], where: list[int]) -> int:
        """The processed rows' UPDATE in ``style`` (``where``: each row's place in the input),
        a part LOAD DATA cannot take in ``batch_update_style``; the rows changed."""
        scalars = self._scalars(spec)
        source = row_source(style)
        size = self.facts.update_rows_per_statement(len(row_fields) + len(scalars), style)
        types = [self.info.columns[f].type for f in row_fields]
        changed = 0
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            plan = self._plan(spec, source, len(part), row_fields)
            records = where[start : start + size]  # a refused value names its record
            try:
                with rows_located(records.__getitem__, always=True):
                    try:
                        changed += _run_merge(conn, plan, self.facts, types, part, scalars)
                    except (sa.exc.StatementError, UnicodeError) as exc:  # say whose value
                        located = self._located(row_fields, part, exc)
                        if located is None:
                            raise
                        raise located from exc
            except NotLoaded as why:  # nothing of the part written: the other form
                other = self.facts.batch_update_style
                logger.debug("%s: %s instead of LOAD DATA: %s", self.model.__name__, other, why)
                changed += self._merge_rows(conn, spec, other, row_fields, part, records)
        return changed

    def _located(self, fields: list[str], part: list[tuple[Any, ...]],
                 exc: sa.exc.StatementError | UnicodeError) -> WriteFailed | None:
        """The row (in ``part``) and column of a value refused without its row named
        (:func:`refused_in_rows`); None where none explains it."""
        found = refused_in_rows(self.info, fields, part, exc)
        if found is None:
            return None
        n, column, value, sqlstate = found
        orig = getattr(exc, "orig", None) or exc
        return WriteFailed(ValueRefused(column, orig, value, sqlstate=sqlstate), n)

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

    def _plan(self, spec: MergeSpec, source: RowSource, nrows: int,
              row_fields: Sequence[str]) -> ByKeyPlan:
        rows = nrows if source.multi_row else 1
        plan = self._plans.get((spec, source.name, rows))
        if plan is None:
            plan = MergePlan.compile(
                self.model, spec, source, rows, self.dialect,
                binary_text=self.facts.text_compare_binary,
            )
            columns = [self.info.columns[f] for f in row_fields]
            setup = source.setup(columns, self.dialect)
            if setup is not None:  # the COPY form's temporary table
                plan = dataclasses.replace(
                    plan, setup=setup, row_columns=tuple(c.name for c in columns)
                )
            self._plans[(spec, source.name, rows)] = plan
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
        read = list(select_by_keys(conn, info, list(by_key), fields, rows=rows))
        if all(len(by_key[key]) == 1 for key, _ in read):
            give_stored(info, datas, [by_key[key][0] for key, _ in read], fields,
                         [stored for _, stored in read], 0)
            return
        for key, stored in read:
            values = [a.validate_python(v) for a, v in zip(adapters, stored)]
            for p in by_key[key]:
                datas[p].update(zip(fields, values))


class Raced(Exception):
    """Internal: a new key was inserted by another transaction meanwhile; run the chunk again."""


def _run_merge(
    conn: sa.Connection, plan: ByKeyPlan, facts: DialectFacts, types: list[Any],
    rows: list[tuple[Any, ...]], scalars: tuple[Any, ...],
) -> int:
    """Run a merge plan over processed rows (``types``: their column types), its arrays sent
    in the driver's binary format where the dialect allows (``unnest``); the rows changed."""
    if plan.setup is not None:  # COPY or LOAD DATA into its temporary table, then the UPDATE
        return plan.run(conn, rows, scalars)
    params = plan.source.params(plan, rows, scalars)
    sql = plan.sql
    if plan.names is not None and not plan.source.multi_row:
        arrays = {  # one array per row value: slot (0, j)
            name: (types[j], params[name])
            for name, (kind, j) in zip(plan.names, plan.slots) if kind == 0
        }
        sql = facts.binary_arrays(sql, arrays)
    return int(conn.exec_driver_sql(sql, params).rowcount)
