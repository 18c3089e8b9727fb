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

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.dialects import database_unique_keys
from ..backend.errors import translate_error
from ..backend.transaction import read_connection
from ..errors import QueryError, UnknownColumnError
from .lookup import find_existing

if TYPE_CHECKING:
    from ..backend.database import Database
    from ..model import ActiveRecord
    from ..model.info import ModelInfo

__all__ = [
    "ConflictKey",
    "all_unique_keys",
    "database_keys",
    "find_existing",
    "generations",
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


def generations(datas: list[dict[str, Any]], keys: list[ConflictKey]) -> list[list[int]]:
    """Positions split so no key repeats within one part (an upsert's generations); parts
    apply in order.

    >>> key = ConflictKey(("email",), None)
    >>> generations([{"email": "a"}, {"email": "b"}, {"email": "a"}], [key])
    [[0, 1], [2]]
    """
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
