"""The direct upsert: one statement per chunk, and the server counts.

Where nobody gets records back (dict rows, no hooks) the lookup the upsert writer runs
first (:mod:`.upsert_chunk`) only serves the counts. Where the dialect has a style for it
(:attr:`~activerecord.backend.dialects.DialectFacts.upsert_direct`) the server finds the
keys itself: ``INSERT ... VALUES (...), (...) ON CONFLICT (key) DO UPDATE SET ... WHERE <a
value changes>`` (the SET and the condition are the merge's,
:func:`~activerecord.insert.merge.merge_clauses`), so each row is inserted, updated (a value
changed) or left alone, and the counts are exact:

* ``"rowid"`` (SQLite): the statements' row count is inserted + updated; the inserted are
  the rows above the table's max rowid read before them (while the transaction holds the
  database, a generated rowid is always above every rowid before it; no triggers, no
  ``WITHOUT ROWID``, the rows leave any rowid key to the database: checked, else the lookup
  path writes the chunk);
* ``"staged"`` (MySQL/MariaDB on PyMySQL, where ``LOAD DATA LOCAL INFILE`` may run): the
  rows loaded into a temporary table, then ``UPDATE ... JOIN`` it where a value changes and
  ``INSERT ... SELECT`` the rows whose key is not stored, each counted by its row count
  (:mod:`.upsert_staged`; rows giving the autoincrement key take the lookup path).

PostgreSQL has no style: there ``ON CONFLICT`` over ``unnest`` measured slower than the
lookup, ``COPY`` and ``UPDATE ... FROM unnest`` it replaces (10,000 rows, half existing:
0.18-0.22 s vs 0.12-0.18 s, counted by ``RETURNING xmax = 0``), and ``COPY`` into a
temporary table (the staged form) was not faster either: its UPDATE is the server's time.

Any error (a conflict on another unique key, a value a processor refuses) rolls the chunk's
savepoint back and the caller runs it again on the lookup path, which locates and reports it
as it always has.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Tag(ActiveRecord):
    ...     __table__ = sa.Table("doc_direct_tags", sa.MetaData(),
    ...         sa.Column("id", sa.Integer, primary_key=True),
    ...         sa.Column("name", sa.String(20), unique=True), sa.Column("uses", sa.Integer))
    ...     id: int | None = None
    ...     name: str
    ...     uses: int = 0
    >>> _ = activerecord.connect("sqlite://")
    >>> Tag.create_table()
    >>> Tag.batch_upsert([{"name": "a", "uses": 1}, {"name": "b", "uses": 1}], conflict="name")
    UpsertResult(inserted=2, updated=0, unchanged=0)
    >>> Tag.batch_upsert([{"name": "a", "uses": 2}, {"name": "b", "uses": 1},
    ...                   {"name": "c", "uses": 1}], conflict="name")
    UpsertResult(inserted=1, updated=1, unchanged=1)
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from ..insert.conflict import ConflictKey
from ..insert.merge import MergeSpec, merge_clauses
from ..insert.shape import InsertShape
from .by_key import VALUES, ByKeyPlan, Made, processors
from .upsert_spec import NotDirect, Updates, UpsertResult, direct_counts
from .upsert_staged import StagedUpsert

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["DirectUpsert", "NotDirect"]

#: Rows per SQLite statement: 20,000 rows upserted (half new) measured 1.28-1.30x the raw
#: executemany at 250-500 rows, 1.09x at 2,000, 0.85x at 6,000 (parsing grows).
_SQLITE_ROWS = 500
#: SQLite's rowid aliases: a column of one of these names hides the rowid.
_ROWID_NAMES = frozenset({"rowid", "_rowid_", "oid"})


class DirectUpsert:
    """One call's direct path (see the module docs); :meth:`make` says whether it applies."""

    def __init__(
        self, model: type[ActiveRecord], key: ConflictKey, updates: Updates, style: str,
    ) -> None:
        self.model = model
        self.info = info = model.__ar_info__
        self.key = key
        self.updates = updates
        self.style = style
        db = model.database()
        self.facts = db.facts
        self.dialect = db.engine.dialect
        self._key_of = {f: c.key for f, c in info.columns.items()}
        self._shapes: dict[tuple[str, ...], InsertShape] = {}
        self._plans: dict[tuple[Any, ...], ByKeyPlan] = {}
        self._provable: bool | None = None
        pk = info.pk_fields
        # A rowid key the rows give may lie below the max rowid; an autoincrement key given
        # moves the table's counter: such rows take the lookup.
        self._given_key = (
            info.autoincrement_pk if style == "staged"
            else pk[0] if len(pk) == 1 and isinstance(info.columns[pk[0]].type, sa.Integer)
            else None
        )
        self._staged = (
            StagedUpsert(model, key, updates, self.facts, self.dialect)
            if style == "staged" else None
        )
        self._generated = [
            *([info.autoincrement_pk] if info.autoincrement_pk else []), *info.server_generated
        ]

    @classmethod
    def make(
        cls, model: type[ActiveRecord], keys: list[ConflictKey], updates: Updates | None,
    ) -> DirectUpsert | None:
        """The direct path of an upsert on ``keys``, or None where the call needs the lookup:
        insert-or-ignore (several keys), a soft-delete model (its rows are left alone or
        revived by rules the lookup applies), a soft-unique key (a partial index)."""
        style = model.database().facts.direct_upsert()
        if style is None or updates is None or len(keys) != 1 or updates.soft:
            return None
        if keys[0].live_only or style not in ("rowid", "staged"):
            return None
        return cls(model, keys[0], updates, style)

    def write(
        self,
        conn: sa.Connection,
        datas: list[dict[str, Any]],
        given: list[tuple[str, ...]] | None,
        positions: list[int],
    ) -> UpsertResult:
        """Upsert one generation (no key twice); its counts. Raises :class:`NotDirect` before
        writing where the generation needs the lookup path."""
        group = datas if len(positions) == len(datas) else [datas[p] for p in positions]
        fields = self._fields(group)
        spec = self.updates.spec(self._given(given, positions))
        shape = self._shape(fields)
        rows = shape.rows(group)
        if self._staged is not None:
            return self._staged.write(conn, shape, spec, rows)
        scalars = self._scalars(spec)
        return self._rowid(conn, shape, spec, rows, scalars)

    # -- what the rows send ------------------------------------------------------------------
    def _given(self, given: list[tuple[str, ...]] | None, positions: list[int]) -> Any:
        if given is None or self.updates.fixed is not None:
            return None
        first = given[positions[0]]
        if any(given[p] != first for p in positions):
            raise NotDirect("rows give different fields")
        return first

    def _fields(self, group: list[dict[str, Any]]) -> tuple[str, ...]:
        """The fields the rows send: all but the generated ones every row leaves out."""
        missing = set()
        for fname in self._generated:
            nones = list(map(itemgetter(fname), group)).count(None)
            if nones == len(group):
                missing.add(fname)
            elif nones:
                raise NotDirect(f"some rows leave {fname} to the database, some do not")
        if self._given_key is not None and self._given_key not in missing:
            raise NotDirect(f"the rows give the generated key {self._given_key}")
        return tuple(f for f in self.info.fields if f not in missing)

    def _shape(self, fields: tuple[str, ...]) -> InsertShape:
        shape = self._shapes.get(fields)
        if shape is None:
            shape = self._shapes[fields] = InsertShape.build(
                self.info.table, self._key_of, fields, self.dialect, positional_params=True
            )
        return shape

    def _scalars(self, spec: MergeSpec | None) -> tuple[Any, ...]:
        if spec is None:
            return ()
        values = [self.updates.scalar_values[f] for f in spec.scalars]
        for j, proc in processors(self.info, spec.scalars, self.dialect):
            values[j] = proc(values[j])
        return tuple(values)

    # -- the statement -----------------------------------------------------------------------
    def _plan(self, shape: InsertShape, spec: MergeSpec | None, nrows: int) -> ByKeyPlan:
        cache_key = (shape.fields, spec, nrows)
        plan = self._plans.get(cache_key)
        if plan is None:
            plan = self._plans[cache_key] = ByKeyPlan.compile(
                lambda n: self._statement(shape, spec, n), VALUES, nrows, len(shape.fields),
                self.dialect, what=f"the upsert of {self.model.__name__}",
            )
        return plan

    def _statement(
        self, shape: InsertShape, spec: MergeSpec | None, nrows: int
    ) -> tuple[Any, Made]:
        info = self.info
        columns = shape.columns
        width = len(columns)
        binds = [
            {c.key: sa.bindparam(f"r{i}_{j}", type_=c.type) for j, c in enumerate(columns)}
            for i in range(nrows)
        ]
        ours: Made = {
            b.key: (b, (0, i * width + j))
            for i, row in enumerate(binds) for j, b in enumerate(row.values())
        }
        stmt = sqlite.insert(info.table).values(binds)
        target = [info.columns[f] for f in self.key.fields]
        if spec is None:
            return stmt.on_conflict_do_nothing(index_elements=target), ours
        excluded = stmt.excluded
        ref_of = {f: excluded[info.columns[f].key] for f in spec.incoming}
        values, changed = merge_clauses(
            self.model, spec, ref_of, ours, binary_text=self.facts.text_compare_binary
        )
        return stmt.on_conflict_do_update(
            index_elements=target, set_=info.by_column(values), where=changed
        ), ours

    # -- running and counting ----------------------------------------------------------------
    def _rowid(
        self, conn: sa.Connection, shape: InsertShape, spec: MergeSpec | None,
        rows: list[tuple[Any, ...]], scalars: tuple[Any, ...],
    ) -> UpsertResult:
        if not self._rowid_provable(conn):
            raise NotDirect("the table's rowids cannot be proven")
        name = self.dialect.identifier_preparer.format_table(self.info.table)
        top = conn.exec_driver_sql(f"SELECT max(rowid) FROM {name}").scalar()  # noqa: S608
        if top is not None and top >= self.facts.max_rowid:  # type: ignore[attr-defined]
            raise NotDirect("the max rowid is taken: SQLite picks new rowids at random")
        limit = self.facts.max_params or 999
        # Room for the statement's own parameters (scalars, constants of expressions).
        per = max(1, min(_SQLITE_ROWS, self.facts.rows_per_statement(len(shape.fields)),
                         (limit - 64) // max(len(shape.fields), 1)))
        written = 0
        for start in range(0, len(rows), per):
            part = rows[start:start + per]
            plan = self._plan(shape, spec, len(part))
            if len(plan.slots) > limit:
                raise NotDirect("the statement's own parameters leave no room for rows")
            written += plan.run(conn, part, scalars)
        above = -(2**63) if top is None else top
        inserted = int(conn.exec_driver_sql(
            f"SELECT count(*) FROM {name} WHERE rowid > ?", (above,)  # noqa: S608
        ).scalar_one())
        return direct_counts(len(rows), inserted, written)

    def _rowid_provable(self, conn: sa.Connection) -> bool:
        """No trigger writes the table behind the statement's back, the table has rowids, and
        no column hides them (checked once per call)."""
        if self._provable is None:
            table = self.info.table
            if table.schema is not None or any(
                c.name.lower() in _ROWID_NAMES for c in table.columns
            ):
                self._provable = False
                return False
            found = conn.execute(
                sa.text(
                    "SELECT total(type = 'trigger'), "
                    "total(type = 'table' AND upper(sql) LIKE '%WITHOUT ROWID%') "
                    "FROM sqlite_master WHERE tbl_name = :t"
                ),
                {"t": table.name},
            ).one()
            self._provable = found[0] == 0 and not found[1]
        return self._provable

