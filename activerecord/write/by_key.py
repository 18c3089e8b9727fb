"""Rows found by primary key: the UPDATE-by-key statements, and :func:`select_by_keys`.

An UPDATE-by-key writes many rows, each with its own values, in one statement per chunk. How
the rows reach the statement is one :class:`RowSource` per form (:mod:`.row_sources`, and
:mod:`.copy_rows` for ``COPY``, :mod:`.load_rows` for ``LOAD DATA``), named by the dialect
(:attr:`~activerecord.backend.dialects.DialectFacts.batch_update_style`, and
:meth:`~activerecord.backend.dialects.DialectFacts.update_style` by chunk size):
``unnest`` arrays or ``COPY`` into a temporary table on PostgreSQL, a ``UNION ALL`` derived
table or ``LOAD DATA`` into a temporary table on MySQL/MariaDB, a ``VALUES`` list on
SQLite, the driver's executemany elsewhere.

``batch_update`` writes the given fields (:func:`update_statement`); an upsert's UPDATE half
writes only rows that change (:mod:`activerecord.insert.merge`). Both compile to a
:class:`ByKeyPlan` once per call and row count, and run its text with bound parameters.

Example::

    >>> from activerecord import ActiveRecord
    >>> from sqlalchemy.dialects import sqlite
    >>> class Dial(ActiveRecord):
    ...     __table_name__ = "doc_dials"
    ...     id: int | None = None
    ...     level: int = 0
    >>> stmt, _ = update_statement(Dial, ["level"], EXECUTEMANY, 1)
    >>> print(stmt.compile(dialect=sqlite.dialect()))
    UPDATE doc_dials SET level=? WHERE doc_dials.id = ?
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.dialects import bind_processor
from ..errors import QueryError
from ..insert.shape import compile_row, positional, source_alias
from .copy_rows import COPY
from .load_rows import LOAD
from .row_sources import (
    EXECUTEMANY,
    UNION,
    UNNEST,
    VALUES,
    VALUES_SELECT,
    Made,
    RowSource,
    Slot,
)

if TYPE_CHECKING:
    from ..backend.dialects import DialectFacts
    from ..model import ActiveRecord
    from ..model.info import ModelInfo

__all__ = [
    "COPY",
    "LOAD",
    "EXECUTEMANY",
    "UNION",
    "UNNEST",
    "VALUES",
    "VALUES_SELECT",
    "ByKeyPlan",
    "Made",
    "RowSource",
    "key_rows",
    "process_rows",
    "processors",
    "row_source",
    "select_by_keys",
    "update_statement",
]

_BY_NAME = {
    source.name: source
    for source in (EXECUTEMANY, UNNEST, VALUES, VALUES_SELECT, UNION, COPY, LOAD)
}


def row_source(style: str | RowSource) -> RowSource:
    """The row source a dialect names (``DialectFacts.batch_update_style``).

    >>> row_source("unnest") is UNNEST
    True
    """
    if isinstance(style, RowSource):
        return style
    found = _BY_NAME.get(style)
    if found is None:
        raise QueryError(f"unknown batch update style {style!r}")
    return found


def update_statement(
    model: type[ActiveRecord],
    fields: Sequence[str],
    source: RowSource,
    nrows: int,
    *,
    scalars: Sequence[str] = (),
) -> tuple[sa.Update, Made]:
    """The UPDATE writing ``fields`` of ``nrows`` rows by primary key (and by the version as
    read, bumping it, for a model with optimistic locking), and the parameters it made.

    Row values: primary key fields, then ``fields``, then the lock version; ``scalars``
    (values shared by every row) are parameters ``s0``, ``s1``...
    """
    info = model.__ar_info__
    lock = model._lock_field()
    row_fields = [*info.pk_fields, *fields, *([lock] if lock else [])]
    columns = [info.columns[f] for f in row_fields]
    refs, made = source.refs(columns, nrows, source_alias(info.table))
    ours: Made = {bind.key: (bind, where) for bind, where in made}
    nkeys = len(info.pk_fields)
    criteria = [columns[j] == refs[j] for j in range(nkeys)]
    values: dict[str, Any] = {f: refs[nkeys + j] for j, f in enumerate(fields)}
    for j, fname in enumerate(scalars):
        scalar = sa.bindparam(f"s{j}", type_=info.columns[fname].type)
        ours[scalar.key] = (scalar, (1, j))
        values[fname] = scalar
    if lock:
        criteria.append(info.columns[lock] == refs[-1])
        values[lock] = refs[-1] + sa.literal_column("1", sa.Integer)
    # Keyed by Column: on an existing table a column's key may differ from its field name.
    return sa.update(info.table).where(*criteria).values(info.by_column(values)), ours


@dataclass(frozen=True)
class ByKeyPlan:
    """A compiled UPDATE-by-key and where each placeholder's value comes from."""

    sql: str
    #: Per placeholder (or per name), its :data:`Slot`.
    slots: tuple[Slot, ...]
    #: Named paramstyles: the names, in ``slots`` order; None for positional ones.
    names: tuple[str, ...] | None
    source: RowSource
    #: Row values per row.
    width: int
    #: What the row source runs before the rows reach the statement (the ``COPY`` source's
    #: temporary table, :mod:`.copy_rows`), compiled; None for the others.
    setup: str | None = None
    #: The columns a row's values are written to, by name (for errors naming one).
    row_columns: tuple[str, ...] = ()

    @classmethod
    def compile(
        cls, build: Callable[[int], tuple[Any, Made]], source: RowSource, nrows: int,
        width: int, dialect: sa.Dialect, *, what: str,
    ) -> ByKeyPlan:
        """The plan of ``build(nrows)``. Multi-row forms are compiled for 2, 3 and 4 rows and
        grown by repeating one row's text (checked: growing 2 to 4 must give the compiled 4),
        since compiling thousands of rows costs SQLAlchemy about a second. ``what`` names the
        statement in an internal error."""
        if source.multi_row and nrows > 4:
            dialect = positional(dialect)  # one row's text repeats only without row names
            two, three, four = (
                cls.compile_exact(build, source, n, width, dialect, what=what) for n in (2, 3, 4)
            )
            grown = two._grow(three, 4)
            if grown is not None and grown == four:
                return two._grow(three, nrows) or four
        return cls.compile_exact(build, source, nrows, width, dialect, what=what)

    @classmethod
    def compile_exact(
        cls, build: Callable[[int], tuple[Any, Made]], source: RowSource, nrows: int,
        width: int, dialect: sa.Dialect, *, what: str,
    ) -> ByKeyPlan:
        """The plan of ``build(nrows)`` compiled as it is (no growing)."""
        stmt, ours = build(nrows)
        compiled = stmt.compile(dialect=dialect)
        procs = compiled._bind_processors

        def slot(name: str) -> Slot:
            bind = compiled.binds[name]
            mine = ours.get(bind.key)
            if mine is not None and mine[0] is not bind:
                mine = None  # (SQLAlchemy's conflict check makes this unreachable)
            if mine is not None and mine[1][0] != 2:
                return mine[1]
            value = bind.effective_value  # a constant (of a user's expression)
            proc: Any = procs.get(name)
            return (2, proc(value) if proc is not None else value)

        positions = compiled.positiontup
        names = (
            list(positions) if positions is not None
            else list(dict.fromkeys(compiled.bind_names.values()))
        )
        slots = tuple(slot(n) for n in names)
        rows = nrows if source.multi_row else 1
        found = sorted({v for kind, v in slots if kind == 0})
        # Every row value placed, and only those (none where the rows are no parameters).
        if found != list(range(width * rows if source.binds_rows else 0)):
            raise QueryError(f"internal: the plan of {what} lost row values")
        return cls(str(compiled), slots, None if positions is not None else tuple(names),
                   source, width)

    def _grow(self, three: ByKeyPlan, nrows: int) -> ByKeyPlan | None:
        """This two-row plan grown to ``nrows`` rows, by the row that ``three`` adds."""
        w = self.width
        extra = len(three.sql) - len(self.sql)
        if self.names is not None or len(three.slots) - len(self.slots) != w or extra <= 0:
            return None
        at = next(
            (a for a in range(len(self.slots) + 1)
             if three.slots[:a] == self.slots[:a] and three.slots[a + w:] == self.slots[a:]),
            None,
        )
        prefix = 0
        while prefix < len(self.sql) and self.sql[prefix] == three.sql[prefix]:
            prefix += 1
        cut = next(
            (i for i in range(prefix, -1, -1) if three.sql[i + extra:] == self.sql[i:]), None
        )
        if at is None or cut is None:
            return None
        segment = three.sql[cut:cut + extra]
        row_slots = three.slots[at:at + w]
        slots = list(self.slots[:at])
        for r in range(nrows - 2):
            slots += [(kind, v + r * w) if kind == 0 else (kind, v) for kind, v in row_slots]
        slots += self.slots[at:]
        sql = self.sql[:cut] + segment * (nrows - 2) + self.sql[cut:]
        return ByKeyPlan(sql, tuple(slots), None, self.source, w)

    @cached_property
    def pick(self) -> tuple[int, ...] | None:
        """Positional plans without constants: each placeholder's index into the row values
        followed by the scalars (the fast path: one ``itemgetter`` per row, in C)."""
        if self.names is not None or any(kind == 2 for kind, _ in self.slots):
            return None
        nvalues = 1 + max((v for kind, v in self.slots if kind == 0), default=-1)
        return tuple(v if kind == 0 else nvalues + v for kind, v in self.slots)

    def layout(self, values: Sequence[Any], scalars: tuple[Any, ...]) -> Any:
        """The parameters for ``values`` (row values laid end to end) and ``scalars``."""
        out = [
            values[v] if kind == 0 else scalars[v] if kind == 1 else v
            for kind, v in self.slots
        ]
        return tuple(out) if self.names is None else dict(zip(self.names, out))

    @cached_property
    def rows_in_order(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """For a :attr:`pick` that is every row value in order with scalars only before or
        after them: the scalars before and after (the parameters are then the rows laid
        end to end, no per-value pick)."""
        pick = self.pick
        if pick is None:
            return None
        nvalues = 1 + max((v for kind, v in self.slots if kind == 0), default=-1)
        head = next((i for i, p in enumerate(pick) if p < nvalues), len(pick))
        if tuple(pick[head:head + nvalues]) != tuple(range(nvalues)):
            return None
        before, after = pick[:head], pick[head + nvalues:]
        if any(p < nvalues for p in after):
            return None
        return tuple(p - nvalues for p in before), tuple(p - nvalues for p in after)

    def run(
        self, conn: sa.Connection, rows: list[tuple[Any, ...]], scalars: tuple[Any, ...] = ()
    ) -> int:
        """Run the plan over processed row tuples; the database's row count."""
        return self.source.execute(conn, self, rows, scalars)

    def run_many(
        self, conn: sa.Connection, chunks: list[list[tuple[Any, ...]]],
        scalars: tuple[Any, ...] = (),
    ) -> int:
        """Run the plan over several chunks (of its row count, for a multi-row form): one
        executemany where the source sends chunks so, else one run each; the rows counted."""
        if len(chunks) == 1 or not self.source.executemany_chunks:
            return sum(self.run(conn, chunk, scalars) for chunk in chunks)
        params = [self.source.params(self, chunk, scalars) for chunk in chunks]
        return int(conn.exec_driver_sql(self.sql, params).rowcount)


def processors(
    info: ModelInfo, fields: Sequence[str], dialect: sa.Dialect
) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, bind processor) of the fields whose column type needs one on ``dialect``:
    row values are processed by the caller, as SQLAlchemy would, before a plan runs."""
    found = []
    for j, fname in enumerate(fields):
        proc = bind_processor(info.columns[fname].type, dialect)
        if proc is not None:
            found.append((j, proc))
    return found


#: Rows from which :func:`process_rows` compiles a function for the rows (a compile costs
#: about what 300 rows' calls of the processors cost).
_COMPILE_ROWS = 300


def process_rows(
    rows: list[tuple[Any, ...]], procs: list[tuple[int, Callable[[Any], Any]]]
) -> list[tuple[Any, ...]]:
    """``rows`` (tuples of one width) with ``procs`` (position, bind processor) applied. A
    processor that gives its source (``proc.inline``, as the insert rows of
    :class:`~activerecord.insert.shape.InsertShape` take it) is inlined for a batch of rows:
    an int in range, a plain float or a naive datetime then costs no call.

    >>> process_rows([(1, "a"), (2, "b")], [(1, str.upper)])
    [(1, 'A'), (2, 'B')]
    """
    if not rows or not procs:
        return rows
    if len(rows) >= _CHECK_COLUMNS_ROWS:
        procs = [(j, proc) for j, proc in procs if not _column_fits(proc, rows, j)]
        if not procs:
            return rows
    if len(rows) < _COMPILE_ROWS:
        return [_process(row, procs) for row in rows]
    return list(map(_row_processor(procs, len(rows[0])), rows))


#: Rows from which a processor that can check a whole column at once (``proc.fits``, the
#: integer guard) checks it first: where every value passes, the rows are not rebuilt (a
#: batch_update by key of ints on SQLite spent a quarter of its time rebuilding rows).
_CHECK_COLUMNS_ROWS = 32


def _column_fits(proc: Callable[[Any], Any], rows: list[tuple[Any, ...]], j: int) -> bool:
    fits = getattr(proc, "fits", None)
    return fits is not None and bool(fits(list(map(itemgetter(j), rows))))


def _process(
    row: tuple[Any, ...], procs: list[tuple[int, Callable[[Any], Any]]]
) -> tuple[Any, ...]:
    values = list(row)
    for j, proc in procs:
        values[j] = proc(values[j])
    return tuple(values)


#: Compiled row processors by (width, the processors by position): a call's chunks share
#: one (a compile costs about 150 us: once per 500-row chunk it was 15% of a batch_update).
_ROW_PROCESSORS: dict[tuple[int, tuple[tuple[int, Any], ...]], Any] = {}
_ROW_PROCESSORS_KEPT = 64


def _row_processor(
    procs: list[tuple[int, Callable[[Any], Any]]], width: int
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """One function processing a whole row tuple (positions only enter as literals)."""
    key = (width, tuple(procs))
    found = _ROW_PROCESSORS.get(key)
    if found is None:
        by_position = dict(procs)
        found = compile_row("<processed row>", "r", [f"r[{j}]" for j in range(width)],
                            [by_position.get(j) for j in range(width)])
        if len(_ROW_PROCESSORS) >= _ROW_PROCESSORS_KEPT:
            _ROW_PROCESSORS.clear()  # processors made per call: keep the cache small
        _ROW_PROCESSORS[key] = found
    return found


#: The parameters of one ``IN`` list where the database sets no limit (MySQL): PostgreSQL's,
#: the smallest hard one, so no statement binds more than some server would take.
_PARAMS_WITHOUT_LIMIT = 65_535


def key_rows(facts: DialectFacts, nkeys: int) -> int:
    """Most keys of ``nkeys`` columns in one ``IN`` list: the dialect's lookup size, within
    its parameter limit."""
    params = facts.max_params or _PARAMS_WITHOUT_LIMIT
    return max(1, min(facts.lookup_rows, params // max(nkeys, 1)))


def select_by_keys(
    conn: sa.Connection,
    info: ModelInfo,
    keys: Sequence[Any],
    fields: Sequence[str],
    *,
    rows: int,
) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """``(key, values of fields)`` of each stored row whose primary key is among ``keys``
    (a value, or a tuple for a composite key), ``rows`` keys per SELECT."""
    pk_cols = [info.columns[f] for f in info.pk_fields]
    npk = len(pk_cols)
    key_expr: Any = pk_cols[0] if npk == 1 else sa.tuple_(*pk_cols)
    wanted = [info.columns[f] for f in fields]
    for start in range(0, len(keys), rows):
        stmt = sa.select(*pk_cols, *wanted).where(key_expr.in_(list(keys[start:start + rows])))
        for row in conn.execute(stmt):
            yield (row[0] if npk == 1 else tuple(row[:npk])), tuple(row[npk:])
