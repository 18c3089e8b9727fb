"""The UPDATE half of an upsert: write existing rows by primary key, only where they change.

One statement per chunk in the backend's :attr:`~activerecord.backend.dialects.DialectFacts.
batch_update_style` (``UPDATE ... FROM unnest(arrays)`` on PostgreSQL, a multi-table UPDATE
joined to a ``UNION ALL`` derived table on MySQL/MariaDB, executemany on SQLite). Each SET
value is the incoming value (``excluded(name)``), an expression over the stored row
(``col(name)``) and the incoming one, or a constant. The WHERE clause keeps only rows whose
new values differ from the stored ones (NULL-safe: ``IS DISTINCT FROM``, ``<=>``, ``IS NOT``),
so the database's row count is the number of rows really changed on every backend and
``updated_at`` moves only on those.

The statement is a Core construct compiled once per call and row count; chunks then run the
compiled text with bound parameters (constants of user expressions included).

Example::

    >>> from activerecord import ActiveRecord
    >>> from activerecord.query.expression import excluded
    >>> from sqlalchemy.dialects import sqlite
    >>> class Tally(ActiveRecord):
    ...     __table_name__ = "doc_tallies"
    ...     id: int | None = None
    ...     n: int = 0
    >>> spec = MergeSpec.build(Tally, {"n": None}, scalars=())
    >>> stmt = merge_statement(Tally, spec, "executemany", 1)
    >>> print(stmt.compile(dialect=sqlite.dialect()))
    UPDATE doc_tallies SET n=? WHERE doc_tallies.id = ? AND doc_tallies.n IS NOT ?
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors

from ..backend.dialects import bind_processor
from ..errors import QueryError
from ..query.conditions import rebind
from ..query.expression import Excluded
from .shape import positional, source_alias

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["MergePlan", "MergeSpec", "merge_statement", "run_merge"]


@dataclass(frozen=True)
class MergeSpec:
    """What the UPDATE writes: per field, None (the incoming value) or a clause."""

    values: tuple[tuple[str, Any], ...]
    #: Fields whose incoming values each row sends (after the primary key).
    incoming: tuple[str, ...]
    #: Fields set to one value for every changed row (``updated_at``; ``deleted_at`` on revive).
    scalars: tuple[str, ...]
    #: Extra conditions under which a row counts as changed (a soft-deleted row being revived).
    revive: bool = False
    #: Leave soft-deleted rows alone (they count as unchanged).
    skip_deleted: bool = False

    @classmethod
    def build(
        cls,
        model: type[ActiveRecord],
        values: Mapping[str, Any],
        *,
        scalars: Sequence[str],
        revive: bool = False,
        skip_deleted: bool = False,
    ) -> MergeSpec:
        """``values`` maps checked field names to None (incoming) or a checked clause."""
        info = model.__ar_info__
        incoming: list[str] = []
        for fname, value in values.items():
            if value is None:
                names = [fname]
            else:
                names = [
                    info.field_for(e.name)
                    for e in visitors.iterate(value)
                    if isinstance(e, Excluded)
                ]
            incoming += [n for n in names if n not in incoming]
        return cls(tuple(values.items()), tuple(incoming), tuple(scalars), revive, skip_deleted)


def _refs(
    style: str, columns: Sequence[sa.Column[Any]], nrows: int, alias: str = "v"
) -> tuple[list[Any], list[tuple[sa.BindParameter[Any], tuple[int, Any]]]]:
    """Row-value references (bound parameters or the columns of a derived row source named
    ``alias``, see :func:`~activerecord.insert.shape.source_alias`), and each parameter made
    with its slot: ``(0, i)``, row value ``i`` (the rows laid end to end)."""
    width = len(columns)
    if style == "executemany":
        binds = [sa.bindparam(f"r0_{j}", type_=c.type) for j, c in enumerate(columns)]
        return list(binds), [(b, (0, j)) for j, b in enumerate(binds)]
    if style == "unnest":
        arrays = [sa.bindparam(f"a{j}", type_=sa.ARRAY(c.type)) for j, c in enumerate(columns)]
        names = [f"c{j}" for j in range(width)]
        # Typed, so an expression over them means what it does over the columns ("+" on text).
        typed = [sa.column(n, c.type) for n, c in zip(names, columns)]
        source = sa.func.unnest(*arrays).table_valued(*typed).render_derived(name=alias)
        return [source.c[n] for n in names], [(b, (0, j)) for j, b in enumerate(arrays)]
    rows = [
        [sa.bindparam(f"r{i}_{j}", type_=c.type) for j, c in enumerate(columns)]
        for i in range(nrows)
    ]
    made = [(b, (0, i * width + j)) for i, row in enumerate(rows) for j, b in enumerate(row)]
    if style == "values":
        values = sa.values(
            *[sa.column(f"c{j}", c.type) for j, c in enumerate(columns)], name=alias
        ).data([tuple(row) for row in rows])
        return [values.c[f"c{j}"] for j in range(width)], made
    if style == "union":
        selects = [
            # Every row labelled alike, so one row's text repeats (see MergePlan.compile).
            sa.select(*[b.label(f"c{j}") for j, b in enumerate(row)]) for row in rows
        ]
        derived = (selects[0] if nrows == 1 else sa.union_all(*selects)).subquery(alias)
        return [derived.c[f"c{j}"] for j in range(width)], made
    raise QueryError(f"unknown batch update style {style!r}")


def _comparable(expr: Any, type_: Any, binary_text: bool) -> Any:
    # PostgreSQL's json has no equality operator; text compares everywhere (a difference in
    # spelling only costs a needless update).
    if isinstance(type_, sa.JSON):
        expr = sa.cast(expr, sa.Text)
    elif binary_text and isinstance(type_, sa.String):
        return sa.cast(expr, sa.LargeBinary)
    return expr


def merge_statement(
    model: type[ActiveRecord], spec: MergeSpec, style: str, nrows: int, *,
    binary_text: bool = False,
) -> sa.Update:
    """The UPDATE writing ``nrows`` existing rows, found by primary key.

    Row parameters: primary key fields, then ``spec.incoming``; scalars are ``s0``, ``s1``...
    ``binary_text`` compares strings byte for byte (see :attr:`~activerecord.backend.dialects.
    DialectFacts.text_compare_binary`).
    """
    return _merge_statement(model, spec, style, nrows, binary_text=binary_text)[0]


def _merge_statement(
    model: type[ActiveRecord], spec: MergeSpec, style: str, nrows: int, *,
    binary_text: bool = False,
) -> tuple[sa.Update, dict[str, tuple[sa.BindParameter[Any], tuple[int, Any]]]]:
    """The statement, and for each parameter it holds that we made: the object and its slot.

    The slots come from the objects made here, never from reading parameter names: a user's
    constant may be named after its column (``r1_1`` for ``col("r1") + 1``). User constants
    are given names of ours too (``k0``...), so no name of theirs meets ours.
    """
    info = model.__ar_info__
    columns = [info.columns[f] for f in (*info.pk_fields, *spec.incoming)]
    refs, made = _refs(style, columns, nrows, source_alias(info.table))
    ours = {bind.key: (bind, where) for bind, where in made}
    nkeys = len(info.pk_fields)
    ref_of = dict(zip(spec.incoming, refs[nkeys:]))

    def bind_names(element: Any) -> Any:
        if isinstance(element, Excluded):
            return ref_of[info.field_for(element.name)]
        if isinstance(element, sa.ColumnClause) and element.table is None:
            if not getattr(element, "is_literal", False):
                return info.column(element.name)
        if isinstance(element, sa.TextClause):
            return element  # its parameters are named in its text; they stay constants
        if isinstance(element, sa.BindParameter):
            if element.callable is not None or (element.required and element.value is None):
                raise QueryError(
                    f"batch_upsert of {info.model_name}: parameter {element.key!r} has no value"
                )
            key = f"k{len(ours)}"
            constant = sa.bindparam(key, element.effective_value, type_=element.type)
            ours[key] = (constant, (2, None))
            return constant
        return None

    values: dict[str, Any] = {}
    changed: list[Any] = []
    for fname, value in spec.values:
        column = info.columns[fname]
        new = ref_of[fname] if value is None else rebind(value, bind_names)
        values[fname] = new
        changed.append(_comparable(column, column.type, binary_text).is_distinct_from(
            _comparable(new, column.type, binary_text)
        ))
    criteria = [info.columns[f] == refs[j] for j, f in enumerate(info.pk_fields)]
    if spec.skip_deleted:
        criteria += model._scope_criteria("default")
    if spec.revive:
        changed += model._scope_criteria("only_deleted")
    criteria.append(sa.or_(*changed) if len(changed) > 1 else changed[0])
    for j, fname in enumerate(spec.scalars):
        scalar = sa.bindparam(f"s{j}", type_=info.columns[fname].type)
        ours[scalar.key] = (scalar, (1, j))
        values[fname] = scalar
    lock = model._lock_field()
    if lock is not None and lock not in values:
        values[lock] = info.columns[lock] + sa.literal_column("1", sa.Integer)
    stmt = sa.update(info.table).where(*criteria).values(info.by_column(values))
    return stmt, ours


@dataclass(frozen=True)
class MergePlan:
    """A compiled statement and where each placeholder's value comes from."""

    sql: str
    #: Per placeholder (or per name): (0, j) row value j, (1, j) scalar j, (2, value) constant.
    slots: tuple[tuple[int, Any], ...]
    #: Named paramstyles: the names, in ``slots`` order; None for positional ones.
    names: tuple[str, ...] | None
    style: str
    width: int

    @classmethod
    def compile(
        cls, model: type[ActiveRecord], spec: MergeSpec, style: str, nrows: int,
        dialect: sa.Dialect, *, binary_text: bool = False,
    ) -> MergePlan:
        """The plan for ``nrows`` rows. Multi-row forms are compiled for 2, 3 and 4 rows and
        grown by repeating one row's text (checked: growing 2 to 4 must give the compiled 4),
        since compiling thousands of rows costs SQLAlchemy about a second."""
        if style in ("union", "values") and nrows > 4:
            dialect = positional(dialect)  # one row's text repeats only without row names
            two, three, four = (
                cls._compile(model, spec, style, n, dialect, binary_text) for n in (2, 3, 4)
            )
            grown = two._grow(three, 4)
            if grown is not None and grown == four:
                return two._grow(three, nrows) or four
        return cls._compile(model, spec, style, nrows, dialect, binary_text)

    def _grow(self, three: MergePlan, nrows: int) -> MergePlan | None:
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
        return MergePlan(sql, tuple(slots), None, self.style, w)

    @classmethod
    def _compile(
        cls, model: type[ActiveRecord], spec: MergeSpec, style: str, nrows: int,
        dialect: sa.Dialect, binary_text: bool,
    ) -> MergePlan:
        stmt, ours = _merge_statement(model, spec, style, nrows, binary_text=binary_text)
        compiled = stmt.compile(dialect=dialect)
        width = len(model.__ar_info__.pk_fields) + len(spec.incoming)
        procs = compiled._bind_processors

        def slot(name: str) -> tuple[int, Any]:
            bind = compiled.binds[name]
            mine = ours.get(bind.key)
            if mine is not None and mine[0] is not bind:
                mine = None  # (SQLAlchemy's conflict check makes this unreachable)
            if mine is not None and mine[1][0] != 2:
                return mine[1]
            value = bind.effective_value
            proc: Any = procs.get(name)
            return (2, proc(value) if proc is not None else value)

        positions = compiled.positiontup
        names = (
            list(positions) if positions is not None
            else list(dict.fromkeys(compiled.bind_names.values()))
        )
        slots = tuple(slot(n) for n in names)
        rows = 1 if style == "unnest" else nrows
        found = sorted({v for kind, v in slots if kind == 0})
        if found != list(range(width * rows)):  # every row value placed, and only those
            raise QueryError(f"internal: the merge plan of {model.__name__} lost row values")
        return cls(str(compiled), slots, None if positions is not None else tuple(names),
                   style, width)


def processors(
    model: type[ActiveRecord], fields: Sequence[str], dialect: sa.Dialect
) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, bind processor) of the fields that need one."""
    info = model.__ar_info__
    found = []
    for j, fname in enumerate(fields):
        proc = bind_processor(info.columns[fname].type, dialect)
        if proc is not None:
            found.append((j, proc))
    return found


def run_merge(
    conn: sa.Connection, plan: MergePlan, rows: list[tuple[Any, ...]], scalars: tuple[Any, ...]
) -> int:
    """Run the plan over processed row tuples; return the number of rows changed."""

    def layout(values: Sequence[Any]) -> Any:
        out = [
            values[v] if kind == 0 else scalars[v] if kind == 1 else v
            for kind, v in plan.slots
        ]
        return tuple(out) if plan.names is None else dict(zip(plan.names, out))

    params: Any
    if plan.style == "unnest":
        params = layout([list(column) for column in zip(*rows)])
    elif plan.style == "executemany":
        if plan.names is None and all(kind == 0 for kind, _ in plan.slots):
            pick = operator.itemgetter(*(v for _, v in plan.slots))
            params = [pick(row) for row in rows] if len(plan.slots) > 1 else [
                (row[plan.slots[0][1]],) for row in rows
            ]
        else:
            params = [layout(row) for row in rows]
    else:
        params = layout([value for row in rows for value in row])
    result = conn.exec_driver_sql(plan.sql, params)
    return int(result.rowcount)
