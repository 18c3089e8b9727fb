"""Who holds each key: the rows an upsert finds by its conflict key, locked.

:func:`find_existing` reads ``SELECT key, pk, extra ... FOR UPDATE`` for many key values:
on PostgreSQL one array parameter (``key = ANY(:keys)``, sent in psycopg's binary format
where the values allow: see :meth:`~activerecord.backend.dialects.DialectFacts.
binary_arrays`), elsewhere ``IN`` lists compiled once per size.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> from activerecord.backend.transaction import write_connection
    >>> from activerecord.insert.conflict import resolve_target
    >>> class Seat(ActiveRecord):
    ...     __table_name__ = "doc_lookup_seats"
    ...     id: int | None = None
    ...     row: int = 0
    >>> db = activerecord.connect("sqlite://")
    >>> Seat.create_table()
    >>> _ = Seat.batch_insert_from_dicts([{"id": 4, "row": 2}])
    >>> key = resolve_target(Seat.__ar_info__, ["id"])
    >>> with write_connection(db) as conn:
    ...     find_existing(conn, Seat, key, [4, 5], piece=10, extra=("row",))
    {4: (4, 2)}
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.dialects import bind_processor
from ..backend.fetch import fetch_columns, stream_results
from ..errors import QueryError
from .read_back import Unreadable, processed

if TYPE_CHECKING:
    from ..model import ActiveRecord
    from .conflict import ConflictKey

__all__ = ["find_existing"]


def find_existing(
    conn: sa.Connection,
    model: type[ActiveRecord],
    key: ConflictKey,
    values: Sequence[Any],
    *,
    piece: int,
    any_array: bool = False,
    extra: Sequence[str] = (),
) -> dict[Any, tuple[Any, ...]]:
    """The rows holding these key values: key value -> (primary key..., ``extra`` fields...).

    Rows are locked (``FOR UPDATE``; SQLite has one writer and ignores it) so that they
    cannot change or go before the write. ``piece`` bounds the values per ``IN`` list;
    ``any_array`` sends a one-column key as one array (``= ANY(:values)``, PostgreSQL; binary
    where the dialect's ``binary_arrays`` allows).
    Elsewhere the ``IN`` list is compiled once per size (a power of two, the list padded by
    repeating its last value, which matches nothing more) and run as that SQL.
    """
    nkey = len(key.fields)
    try:
        return _found(conn, model, key, values, piece, any_array, extra)
    except Unreadable as exc:
        names = (*key.fields, *model.__ar_info__.pk_fields, *extra)
        raise exc.named(model, names, nkey) from exc.__cause__


def _found(
    conn: sa.Connection, model: type[ActiveRecord], key: ConflictKey, values: Sequence[Any],
    piece: int, any_array: bool, extra: Sequence[str],
) -> dict[Any, tuple[Any, ...]]:
    nkey = len(key.fields)
    found: dict[Any, tuple[Any, ...]] = {}
    if any_array and nkey == 1:
        plan = _lookup_plan(model, key, tuple(extra), 0, conn.dialect)
        facts = model.database().facts
        for values_row in plan.run(conn, list(values), facts.binary_arrays):
            found[values_row[0]] = values_row[1:]
        return found
    dialect = conn.dialect
    step = max(piece, 1)
    for start in range(0, len(values), step):
        part = list(values[start : start + step])
        size = min(step, 1 << (len(part) - 1).bit_length())
        part.extend(itertools.repeat(part[-1], size - len(part)))
        plan = _lookup_plan(model, key, tuple(extra), size, dialect)
        for values_row in plan.run(conn, part):
            key_value = values_row[0] if nkey == 1 else values_row[:nkey]
            found[key_value] = values_row[nkey:]
    return found


def _lookup_select(model: type[ActiveRecord], key: ConflictKey, extra: tuple[str, ...]) -> Any:
    """``SELECT key, pk, extra FROM table [WHERE live] FOR UPDATE`` (the key criterion added
    by the caller)."""
    info = model.__ar_info__
    names = (*key.fields, *info.pk_fields, *extra)
    stmt = sa.select(*(info.columns[f] for f in names))
    if key.live_only:
        stmt = stmt.where(*model._scope_criteria("default"))
    return stmt.with_for_update()


@dataclass(frozen=True)
class _LookupPlan:
    """A compiled key lookup for a fixed number of key values, and how to run it."""

    sql: str
    #: Per placeholder: (True, j) key value j (flattened, processed), (False, constant).
    slots: tuple[tuple[bool, Any], ...]
    #: Named paramstyles: the names, in ``slots`` order; None for positional ones.
    names: tuple[str, ...] | None
    #: Bind processors of the key's columns (None where none applies).
    key_procs: tuple[Callable[[Any], Any] | None, ...]
    #: Result processors of the selected columns (None where none applies).
    row_procs: tuple[Callable[[Any], Any] | None, ...]

    #: The key values go as one array parameter (``= ANY(:keys)``), its column's type here.
    array_of: Any = None

    def run(
        self, conn: sa.Connection, values: list[Any],
        binary: Callable[[str, dict[str, Any]], str] | None = None,
    ) -> list[tuple[Any, ...]]:
        """The rows holding ``values`` (as many as the plan was compiled for, or any number
        for an array plan; ``binary``: the dialect's ``binary_arrays``)."""
        if len(self.key_procs) == 1:
            proc = self.key_procs[0]
            flat = values if proc is None else [proc(v) for v in values]
        else:
            flat = [
                v if proc is None else proc(v)
                for value in values for v, proc in zip(value, self.key_procs)
            ]
        sql = self.sql
        if self.array_of is not None:
            laid = [flat if mine else v for mine, v in self.slots]
            arrays = {n: (self.array_of, flat) for n, (mine, _) in zip(self.names or (),
                                                                       self.slots) if mine}
            sql = sql if binary is None else binary(sql, arrays)
        else:
            laid = [flat[v] if mine else v for mine, v in self.slots]
        params: Any = tuple(laid) if self.names is None else dict(zip(self.names, laid))
        # A compiled Core construct (see _lookup_plan); only its parameters change.
        rows: Sequence[Sequence[Any]]
        if stream_results(conn):  # PyMySQL: its rows read column by column, several times
            result = conn.exec_driver_sql(  # faster than its own parsing of each row
                sql, params, execution_options={"stream_results": True}
            )
            try:
                columns, _ = fetch_columns(result, len(self.row_procs), None)
            finally:
                result.close()
            rows = list(zip(*columns))
        else:
            rows = conn.exec_driver_sql(sql, params).fetchall()
        procs = self.row_procs
        if not any(procs):
            return [tuple(row) for row in rows]
        return processed(rows, procs)


@functools.lru_cache(maxsize=128)
def _lookup_plan(
    model: type[ActiveRecord],
    key: ConflictKey,
    extra: tuple[str, ...],
    size: int,
    dialect: sa.Dialect,
) -> _LookupPlan:
    """The lookup of ``size`` key values (0: any number, as one array). Compiling an ``IN``
    list of thousands of parameters costs SQLAlchemy a quarter of a second, so with
    positional placeholders the plans for 2, 3 and 4 values are compiled and the list grown
    by repeating one value's text (checked first: growing 2 to 4 must give the compiled 4)."""
    if size > 4 and dialect.positional:
        two, three, four = (_compile_lookup(model, key, extra, n, dialect) for n in (2, 3, 4))
        if _grow(two, three, 4) == four:
            grown = _grow(two, three, size)
            if grown is not None:
                return grown
    return _compile_lookup(model, key, extra, size, dialect)


def _grow(two: _LookupPlan, three: _LookupPlan, size: int) -> _LookupPlan | None:
    """The two-value plan grown to ``size`` values by the text that ``three`` adds."""
    extra = len(three.sql) - len(two.sql)
    width = len(two.key_procs)
    mine = [i for i, (is_key, _) in enumerate(two.slots) if is_key]
    if extra <= 0 or len(three.slots) - len(two.slots) != width or not mine:
        return None
    prefix = 0
    while prefix < len(two.sql) and two.sql[prefix] == three.sql[prefix]:
        prefix += 1
    cut = next((i for i in range(prefix, -1, -1) if three.sql[i + extra:] == two.sql[i:]), None)
    if cut is None:
        return None
    segment = three.sql[cut:cut + extra]
    sql = two.sql[:cut] + segment * (size - 2) + two.sql[cut:]
    first, last = mine[0], mine[-1] + 1
    slots = (*two.slots[:first], *((True, v) for v in range(size * width)), *two.slots[last:])
    return _LookupPlan(sql, slots, None, two.key_procs, two.row_procs)


def _compile_lookup(
    model: type[ActiveRecord],
    key: ConflictKey,
    extra: tuple[str, ...],
    size: int,
    dialect: sa.Dialect,
) -> _LookupPlan:
    info = model.__ar_info__
    key_cols = [info.columns[f] for f in key.fields]
    binds = [
        [sa.bindparam(f"k{i}_{j}", type_=c.type) for j, c in enumerate(key_cols)]
        for i in range(size)
    ]
    array = size == 0 and len(key_cols) == 1
    if array:
        keys = sa.bindparam("keys", type_=sa.ARRAY(key_cols[0].type))
        binds, criterion = [[keys]], key_cols[0] == sa.any_(keys)
        size = 1
    elif len(key_cols) == 1:
        criterion = key_cols[0].in_([row[0] for row in binds])
    else:
        criterion = sa.tuple_(*key_cols).in_([sa.tuple_(*row) for row in binds])
    stmt = _lookup_select(model, key, extra).where(criterion)
    compiled = stmt.compile(dialect=dialect)
    width = len(key_cols)
    ours = {b.key: i * width + j for i, row in enumerate(binds) for j, b in enumerate(row)}
    procs = compiled._bind_processors

    def slot(name: str) -> tuple[bool, Any]:
        bind = compiled.binds[name]
        if bind.key in ours:
            return True, ours[bind.key]
        value = bind.effective_value  # a constant of the scope criteria
        proc: Any = procs.get(name)
        return False, proc(value) if proc is not None else value

    positions = compiled.positiontup
    names = (
        list(positions) if positions is not None
        else list(dict.fromkeys(compiled.bind_names.values()))
    )
    slots = tuple(slot(n) for n in names)
    if sorted(v for mine, v in slots if mine) != list(range(width * size)):
        raise QueryError(f"internal: the key lookup of {model.__name__} lost key values")
    selected = [info.columns[f] for f in (*key.fields, *info.pk_fields, *extra)]
    return _LookupPlan(
        str(compiled),
        slots,
        None if positions is not None else tuple(names),
        tuple(bind_processor(c.type, dialect) for c in key_cols),
        tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in selected),
        key_cols[0].type if array else None,
    )
