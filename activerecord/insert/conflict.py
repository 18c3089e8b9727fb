"""Conflict targets of an upsert: the unique key rows are matched on, and who holds each key.

A target is the primary key, a unique column, a ``UniqueConstraint``, a unique index, or a
soft-unique key (:func:`~activerecord.soft_unique`, held only by rows not soft-deleted),
given by its columns or by its constraint/index name: one the model declares, or one only
the database holds (:func:`database_keys`, looked up once and cached). Anything else is a
:class:`QueryError` before any write: MySQL's ``ON DUPLICATE KEY`` would act on whichever
unique key fires.

Example::

    >>> import sqlalchemy as sa
    >>> from activerecord import ActiveRecord
    >>> class Member(ActiveRecord):
    ...     __table__ = sa.Table("doc_members", sa.MetaData(),
    ...         sa.Column("id", sa.Integer, primary_key=True),
    ...         sa.Column("email", sa.String(50), unique=True), sa.Column("nick", sa.String(50)))
    ...     id: int | None = None
    ...     email: str
    ...     nick: str
    >>> resolve_target(Member.__ar_info__, ["email"]).fields
    ('email',)
    >>> resolve_target(Member.__ar_info__, ["nick"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    activerecord.errors.QueryError: cannot upsert Member on nick: it is neither the primary ...
"""

from __future__ import annotations

import functools
import itertools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.dialects import bind_processor, database_unique_keys
from ..backend.errors import translate_error
from ..backend.transaction import read_connection
from ..errors import QueryError, UnknownColumnError

if TYPE_CHECKING:
    from ..backend.database import Database
    from ..model import ActiveRecord
    from ..model.info import ModelInfo

__all__ = [
    "ConflictKey",
    "all_unique_keys",
    "database_keys",
    "find_existing",
    "key_getter",
    "resolve_target",
    "unique_keys",
]

#: Where :func:`activerecord.soft_unique` registers its keys on the table.
_LIVE_KEYS = "activerecord_soft_unique"


@dataclass(frozen=True)
class ConflictKey:
    """One unique key: its fields, its name (if named), and whether only live rows hold it."""

    fields: tuple[str, ...]
    name: str | None = None
    live_only: bool = False


def unique_keys(info: ModelInfo) -> list[ConflictKey]:
    """Every unique key of the model's table, the primary key first."""
    table = info.table
    field_of = {id(c): f for f, c in info.columns.items()}
    by_name = {c.name: f for f, c in info.columns.items()}

    def fields(columns: Any) -> tuple[str, ...] | None:
        out = tuple(field_of.get(id(c)) or by_name.get(c.name, "") for c in columns)
        return out if all(out) else None

    keys = [ConflictKey(info.pk_fields, _name(table.primary_key.name))]
    keys += [
        ConflictKey((field_of[id(c)],)) for c in table.columns if c.unique and id(c) in field_of
    ]
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            found = fields(constraint.columns)
            if found:
                keys.append(ConflictKey(found, _name(constraint.name)))
    live = {name: cols for name, cols in table.info.get(_LIVE_KEYS, [])}
    for index in table.indexes:
        if not index.unique or index.name in live:
            continue
        partial = any(  # postgresql_where=, sqlite_where=, any dialect's
            v is not None for k, v in index.dialect_kwargs.items() if k.endswith("_where")
        )
        found = fields(index.columns)
        if found and not partial:  # a partial index's predicate is not ours to repeat
            keys.append(ConflictKey(found, _name(index.name)))
    for name, colnames in live.items():
        found = tuple(by_name.get(c, "") for c in colnames)
        if all(found):
            keys.append(ConflictKey(found, name, live_only=True))
    return keys


def _name(name: Any) -> str | None:
    return None if name is None or type(name).__name__ == "_NoneName" else str(name)


def database_keys(model: type[ActiveRecord], *, refresh: bool = False) -> list[ConflictKey]:
    """The unique keys the database holds for the model's table (a unique index a migration
    added, a reflected SQLite inline ``UNIQUE``...), whether or not the model declares them.

    Read once per database and table, then cached; ``refresh=True`` reads them again. Keys
    over a column the model does not map are left out.
    """
    info = model.__ar_info__
    db = model.database()
    table = info.table
    cache = _DATABASE_KEYS.setdefault(db, {})
    where = (table.schema, table.name)
    keys = None if refresh else cache.get(where)
    if keys is None:
        by_name = {c.name: f for f, c in info.columns.items()}
        try:
            with read_connection(db) as conn:
                found = database_unique_keys(conn, table.name, table.schema)
        except sa.exc.NoSuchTableError:
            return []  # nothing to learn (not cached): the write reports the missing table
        except sa.exc.DBAPIError as exc:
            context = f"looking up the unique keys of table {table.name!r}"
            raise translate_error(exc, context=context) from exc
        keys = [
            ConflictKey(tuple(by_name[c] for c in columns), name)
            for name, columns in found
            if all(c in by_name for c in columns)
        ]
        cache[where] = keys
    return keys


#: Per database, per (schema, table): the unique keys read from it (see database_keys).
_DATABASE_KEYS: weakref.WeakKeyDictionary[Database, dict[tuple[str | None, str], list[ConflictKey]]]
_DATABASE_KEYS = weakref.WeakKeyDictionary()


def all_unique_keys(model: type[ActiveRecord]) -> list[ConflictKey]:
    """The model's unique keys (:func:`unique_keys`), then those only the database knows."""
    keys = unique_keys(model.__ar_info__)
    known = {frozenset(k.fields) for k in keys}
    for key in database_keys(model):
        if frozenset(key.fields) not in known:
            keys.append(key)
            known.add(frozenset(key.fields))
    return keys


def _match(
    info: ModelInfo, keys: list[ConflictKey], target: str | Sequence[str]
) -> ConflictKey | None:
    if isinstance(target, str):
        named = [k for k in keys if k.name == target]
        if named:
            return named[0]
        target = (target,)
    try:
        wanted = {info.field_for(str(n)) for n in target}
    except UnknownColumnError:
        return None
    return next((k for k in keys if set(k.fields) == wanted), None)


def resolve_target(
    info: ModelInfo, target: str | Sequence[str] | None, model: type[ActiveRecord] | None = None
) -> ConflictKey:
    """The unique key named by ``target``: a constraint/index name, or column/field names.

    ``None`` is the primary key. Names are checked against the table first
    (:class:`~activerecord.errors.UnknownColumnError`). With ``model``, a target the model
    does not declare is looked for among the keys the database holds (:func:`database_keys`,
    read again once before refusing).
    """
    keys = unique_keys(info)
    if target is None:
        return keys[0]
    names = [target] if isinstance(target, str) else list(target)
    if not names:
        raise QueryError("an upsert needs at least one conflict column")
    found = _match(info, keys, target)
    if found is None and model is not None:
        found = _match(info, database_keys(model), target)
        if found is None:
            found = _match(info, database_keys(model, refresh=True), target)
    if found is not None:
        return found
    wanted = tuple(info.field_for(str(n)) for n in names)  # UnknownColumnError first
    raise QueryError(
        f"cannot upsert {info.model_name} on {', '.join(wanted)}: it is neither the primary "
        f"key nor a unique key of table {info.table.name!r}"
    )


def key_getter(key: ConflictKey) -> Callable[[dict[str, Any]], Any]:
    """A function giving a row's value of the key (a tuple for several columns), or None
    when part of it is NULL (NULL never conflicts)."""
    if len(key.fields) == 1:
        return itemgetter(key.fields[0])
    get = itemgetter(*key.fields)

    def value(data: dict[str, Any]) -> Any:
        found = get(data)
        return None if None in found else found

    return value


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
    ``any_array`` sends a one-column key as one array (``= ANY(:values)``, PostgreSQL).
    Elsewhere the ``IN`` list is compiled once per size (a power of two, the list padded by
    repeating its last value, which matches nothing more) and run as that SQL.
    """
    info = model.__ar_info__
    nkey = len(key.fields)
    found: dict[Any, tuple[Any, ...]] = {}
    if any_array and nkey == 1:
        column = info.columns[key.fields[0]]
        stmt = _lookup_select(model, key, tuple(extra)).where(
            column == sa.any_(sa.bindparam("keys", list(values), type_=sa.ARRAY(column.type)))
        )
        for row in conn.execute(stmt):
            found[row[0]] = tuple(row[1:])
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

    def run(self, conn: sa.Connection, values: list[Any]) -> list[tuple[Any, ...]]:
        """The rows holding ``values`` (as many as the plan was compiled for)."""
        if len(self.key_procs) == 1:
            proc = self.key_procs[0]
            flat = values if proc is None else [proc(v) for v in values]
        else:
            flat = [
                v if proc is None else proc(v)
                for value in values for v, proc in zip(value, self.key_procs)
            ]
        laid = [flat[v] if mine else v for mine, v in self.slots]
        params: Any = tuple(laid) if self.names is None else dict(zip(self.names, laid))
        # A compiled Core construct (see _lookup_plan); only its parameters change.
        rows = conn.exec_driver_sql(self.sql, params).fetchall()
        procs = self.row_procs
        if not any(procs):
            return [tuple(row) for row in rows]
        return [
            tuple(v if p is None or v is None else p(v) for v, p in zip(row, procs))
            for row in rows
        ]


@functools.lru_cache(maxsize=128)
def _lookup_plan(
    model: type[ActiveRecord],
    key: ConflictKey,
    extra: tuple[str, ...],
    size: int,
    dialect: sa.Dialect,
) -> _LookupPlan:
    """The lookup of ``size`` key values. Compiling an ``IN`` list of thousands of
    parameters costs SQLAlchemy a quarter of a second, so with positional placeholders the
    plans for 2, 3 and 4 values are compiled and the list grown by repeating one value's
    text (checked first: growing 2 to 4 must give the compiled 4)."""
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
    if len(key_cols) == 1:
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
    )
