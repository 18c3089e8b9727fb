"""Reading relations: one query for any number of owners, cached on each instance.

``author.books`` on first access and ``query().preload("books")`` use the same loader:
``IN`` over the owners' keys, chunked below the backend's parameter limit, so a preload of
100,000 parents is a few queries and never one per parent. The related model's default scope
applies (soft-deleted rows are left out). The cache lives in a slot of the instance, not in
its fields: it is not dumped, compared or copied, and ``refresh()`` drops it.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord, belongs_to, has_many
    >>> class Board(ActiveRecord):
    ...     __table_name__ = "doc_boards"
    ...     id: int | None = None
    ...     pins = has_many("BoardPin", order_by="-n")
    >>> class BoardPin(ActiveRecord):
    ...     __table_name__ = "doc_board_pins"
    ...     id: int | None = None
    ...     board_id: int | None = None
    ...     n: int
    ...     board = belongs_to(Board)
    >>> _ = activerecord.connect("sqlite://")
    >>> activerecord.create_all()
    >>> board = Board.create()
    >>> _ = BoardPin.batch_insert([BoardPin(board_id=board.id, n=n) for n in (1, 2)])
    >>> [p.n for p in board.pins], board.pins[0].board.id == board.id
    ([2, 1], True)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pydantic
import sqlalchemy as sa

from ..backend.bridge import bridged
from ..backend.errors import translate_error
from ..backend.transaction import read_connection
from ..errors import NotPreloadedError, ValidationError

if TYPE_CHECKING:
    from ..model import ActiveRecord
    from .relation import Relation

__all__ = [
    "assign_related", "forget_related", "get_related", "load_into", "read_related",
    "related_caches",
]

#: Keys per IN list when the backend states no lower limit (MySQL counts bytes, not
#: parameters: 30,000 integer keys are well under its smallest max_allowed_packet).
_MAX_KEYS = 30_000
#: Parameters kept free for the rest of the statement (scope criteria).
_SPARE_PARAMS = 100
_OWNER_KEY = "_ar_owner_key"


# -- the per-instance cache: {relation name: (owner key when read, value, assigned)} ------
#: The model's slot holding it (see ActiveRecord.__slots__). Read and set past pydantic's
#: own attribute hooks, which a slot does not need.
_SLOT = "_ar_related"


def get_related(instance: ActiveRecord) -> dict[str, Any] | None:
    """The record's relation cache, or None (never set: pydantic builds instances bare)."""
    try:
        cache: dict[str, Any] | None = object.__getattribute__(instance, _SLOT)
        return cache
    except AttributeError:
        return None


def related_caches(model: type[ActiveRecord], records: Sequence[Any]) -> list[Any]:
    """Each record's relation cache (None where never set): one C-level pass over the slot
    when every record has one (a graph's owners: their relations were assigned)."""
    getter = next(k.__dict__[_SLOT] for k in model.__mro__ if _SLOT in k.__dict__).__get__
    try:
        return list(map(getter, records))
    except AttributeError:  # some record never had one
        return [get_related(record) for record in records]


def _cache(instance: ActiveRecord) -> dict[str, tuple[Any, Any, bool]]:
    cache = get_related(instance)
    if cache is None:
        cache = {}
        object.__setattr__(instance, _SLOT, cache)
    return cache


def forget_related(instance: ActiveRecord, name: str | None = None) -> None:
    """Drop the cached relation ``name`` (all of them when None): the next read loads."""
    if name is None:
        object.__setattr__(instance, _SLOT, None)
        return
    cache = get_related(instance)
    if cache is not None:
        cache.pop(name, None)


def read_related(relation: Relation, instance: ActiveRecord) -> Any:
    """The relation's value for ``instance``: the cached one, else loaded with one query.

    A loaded value is read again when the key it was loaded by has changed since
    (``book.author_id = 7`` makes ``book.author`` read author 7); an assigned one stays.
    """
    relation.resolve()
    cache = _cache(instance)
    key = instance.__dict__.get(relation.owner_key)
    entry = cache.get(relation.name)
    if entry is not None and (entry[2] or entry[0] == key):
        return entry[1]
    _refuse_in_async_code(relation)
    load_into(relation, [instance])
    return cache[relation.name][1]


def _refuse_in_async_code(relation: Relation) -> None:
    # In a coroutine the read would block the event loop on a query nobody awaited (the
    # library's own sync half of an a-method, inside the bridge, may load).
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    if bridged():
        return
    name = relation.name
    raise NotPreloadedError(
        f"{relation.owner.__name__}.{name} was not loaded, and in async code reading it would "
        f"block the event loop: load it with "
        f"await {relation.owner.__name__}.query().preload({name!r}).aall()"
    )


def assign_related(relation: Relation, instance: ActiveRecord, value: Any) -> None:
    """``book.author = author`` / ``author.books = [...]``: check the value, set the keys
    that follow from it (when the side holding the key is known), cache it. Nothing is written
    to the database. A wrong value raises :class:`ValidationError` and changes nothing."""
    relation.resolve()
    target = relation.target
    where = f"{type(instance).__name__}.{relation.name}"
    if relation.many:
        if value is None or isinstance(value, (str, bytes, Mapping)) or not isinstance(
            value, Iterable
        ):
            raise ValidationError(
                f"{where}: expected a list of {target.__name__}, got {type(value).__name__}",
                model=type(instance).__name__,
            )
        items = list(value)
        for index, item in enumerate(items):
            if not isinstance(item, target):
                raise ValidationError(
                    f"{where}[{index}]: expected {target.__name__}, got {type(item).__name__}",
                    model=type(instance).__name__,
                )
    elif value is not None and not isinstance(value, target):
        raise ValidationError(
            f"{where}: expected {target.__name__} or None, got {type(value).__name__}",
            model=type(instance).__name__,
        )
    if relation.kind == "belongs_to":
        key = None if value is None else value.__dict__.get(relation.primary_key)
        if key is not None or value is None:
            _set_key(instance, relation.foreign_key, key, where)
        key = instance.__dict__.get(relation.owner_key)
    else:
        key = instance.__dict__.get(relation.owner_key)
        children = items if relation.many else [] if value is None else [value]
        if key is not None and relation.through is None:
            checked = _checked_key(target, relation.foreign_key, key, where)
            for child in children:
                if child.__dict__.get(relation.foreign_key) != checked:
                    setattr(child, relation.foreign_key, checked)
        value = items if relation.many else value
    _cache(instance)[relation.name] = (key, value, True)


def _checked_key(model: type[ActiveRecord], fname: str, key: Any, where: str) -> Any:
    try:
        return model.__ar_info__.adapter(fname).validate_python(key)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            f"{where}: {model.__name__}.{fname} cannot hold {key!r}: {exc.errors()[0]['msg']}",
            model=model.__name__, errors=exc.errors(),
        ) from exc


def _set_key(instance: ActiveRecord, fname: str, key: Any, where: str) -> None:
    # setattr, not the instance dict: a loaded record may share its dict with its snapshot,
    # and the change must show in changed_fields.
    checked = _checked_key(type(instance), fname, key, where)
    if instance.__dict__.get(fname) != checked or fname not in instance.__dict__:
        setattr(instance, fname, checked)


# -- loading ------------------------------------------------------------------------------
def key_chunk(model: type[ActiveRecord]) -> int:
    """How many keys one IN list takes on the model's database."""
    limit = model.database().facts.max_params
    if limit is None:
        return _MAX_KEYS
    return max(1, min(_MAX_KEYS, limit - _SPARE_PARAMS))


def load_into(relation: Relation, owners: Sequence[ActiveRecord]) -> None:
    """Load ``relation`` for every owner (one query per chunk of keys) and cache it on each."""
    relation.resolve()
    owner_key = relation.owner_key
    keys = list(dict.fromkeys(
        k for k in (o.__dict__.get(owner_key) for o in owners) if k is not None
    ))
    grouped = _fetch(relation, keys) if keys else {}
    name = relation.name
    many = relation.many
    for owner in owners:
        key = owner.__dict__.get(owner_key)
        found = grouped.get(key, ()) if key is not None else ()
        value: Any = list(found) if many else (found[0] if found else None)
        _cache(owner)[name] = (key, value, False)


def _fetch(relation: Relation, keys: list[Any]) -> dict[Any, list[Any]]:
    target = relation.target
    info = target.__ar_info__
    through = relation.through
    order = [_order_clause(target, key) for key in relation.order_by]
    order += [info.columns[f].asc() for f in info.pk_fields]
    grouped: dict[Any, list[Any]] = {}
    chunk = key_chunk(target)
    try:
        with read_connection(target.database()) as conn:
            for start in range(0, len(keys), chunk):
                part = keys[start : start + chunk]
                if through is None:
                    column = info.columns[relation.target_column]
                    stmt = (
                        sa.select(*info.select_columns())
                        .where(column.in_(part), *target.__ar_info__.scope_criteria("default"))
                        .order_by(*order)
                    )
                    result = conn.execute(stmt)
                    records = target._from_db_rows(list(result.keys()), result.all())
                    field = relation.target_column
                    for record in records:
                        grouped.setdefault(record.__dict__[field], []).append(record)
                    continue
                j_info = through.__ar_info__
                owner_col = j_info.columns[relation.foreign_key]
                stmt = (
                    sa.select(*info.select_columns(), owner_col.label(_OWNER_KEY))
                    .select_from(
                        info.table.join(
                            j_info.table,
                            j_info.columns[relation.target_key] == info.columns[relation.target_pk],
                        )
                    )
                    .where(
                        owner_col.in_(part),
                        *target.__ar_info__.scope_criteria("default"),
                        *through.__ar_info__.scope_criteria("default"),
                    )
                    .order_by(*order)
                )
                result = conn.execute(stmt)
                names = list(result.keys())[:-1]
                rows = result.all()
                records = target._from_db_rows(names, [row[:-1] for row in rows])
                for row, record in zip(rows, records):
                    grouped.setdefault(row[-1], []).append(record)
    except sa.exc.DBAPIError as exc:
        raise translate_error(
            exc, context=f"loading {relation.owner.__name__}.{relation.name}"
        ) from exc
    return grouped


def _order_clause(model: type[ActiveRecord], key: str) -> Any:
    name, descending = key.strip(), False
    if name.startswith("-"):
        name, descending = name[1:], True
    else:
        parts = name.split()
        if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
            name, descending = parts[0], parts[1].lower() == "desc"
    column = model.__ar_info__.column(name)
    return column.desc() if descending else column.asc()
