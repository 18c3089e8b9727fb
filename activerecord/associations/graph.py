"""Graph insert: ``batch_insert(records, include=["books", "books.tags"])``.

One batch per model per level, each through the plain ``batch_insert`` fast path (COPY on
PostgreSQL): new ``belongs_to`` parents first (each shared parent once) and their keys set on
the records, then the records (keys back), then for each ``has_many`` / ``has_one`` the
children with their foreign key set, and for a ``through`` relation the targets and the join
rows. Records already saved are linked, not inserted again (a linked child whose key changes
is updated by key, one ``batch_update`` per relation). The whole graph is validated before
anything is written, errors naming the path (``record 3 -> books[1]: title: ...``); all of it
runs in one transaction, and a failure anywhere rolls it all back and puts every record back.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord, has_many
    >>> class Album(ActiveRecord):
    ...     __table_name__ = "doc_albums"
    ...     id: int | None = None
    ...     title: str
    ...     songs = has_many("AlbumSong")
    >>> class AlbumSong(ActiveRecord):
    ...     __table_name__ = "doc_album_songs"
    ...     id: int | None = None
    ...     album_id: int | None = None
    ...     name: str
    >>> _ = activerecord.connect("sqlite://")
    >>> activerecord.create_all()
    >>> albums = Album.batch_insert_from_dicts(
    ...     [{"title": "A", "songs": [{"name": "a1"}, {"name": "a2"}]}], include=["songs"])
    >>> [(s.album_id, s.name) for s in albums[0].songs]
    [(1, 'a1'), (1, 'a2')]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic

from ..backend.transaction import Transaction, on_rollback, tracks_rollback
from ..errors import (
    ArgumentTypeError,
    BatchValidationError,
)
from ..validation import collector_paused, list_adapter
from .graph_dicts import graph_from_dicts, include_tree
from .loading import _checked_key, get_related
from .preload import Tree
from .relation import Relation, relation_of

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["graph_from_dicts", "insert_graph"]


@dataclass
class _Node:
    """The records of one model at one place of the include tree (each record once).
    ``related[name][i]``: the records of relation ``name`` set on record i. A record's path
    (``record 3 -> books[1]``) is only spelled out for an error."""

    model: type[ActiveRecord]
    records: list[ActiveRecord]
    parent: _Node | None = None
    relation: Relation | None = None
    children: list[tuple[Relation, _Node]] = field(default_factory=list)
    related: dict[str, list[Sequence[ActiveRecord]]] = field(default_factory=dict)
    new: list[bool] = field(default_factory=list)

    def _origin(self) -> list[tuple[int, int]]:
        """For each record: (position in the parent node, index in the relation's list)."""
        assert self.parent is not None and self.relation is not None
        seen: set[int] = set()
        origin: list[tuple[int, int]] = []
        for at, items in enumerate(self.parent.related[self.relation.name]):
            for index, item in enumerate(items):
                if id(item) not in seen:
                    seen.add(id(item))
                    origin.append((at, index))
        return origin

    def path(self, position: int) -> str:
        if self.parent is None or self.relation is None:
            return f"record {position}"
        at, index = self._origin()[position]
        base = self.parent.path(at)
        name = self.relation.name
        return f"{base} -> {name}[{index}]" if self.relation.many else f"{base} -> {name}"

    def top(self, position: int) -> int:
        node, at = self, position
        while node.parent is not None:
            at = node._origin()[at][0]
            node = node.parent
        return at


def _related(record: ActiveRecord, name: str) -> Any:
    """The related value set on the record (assigned or loaded), never loading it."""
    entry = (get_related(record) or {}).get(name)
    return None if entry is None else entry[1]


def _items(relation: Relation, value: Any) -> Sequence[Any]:
    if value is None:
        return ()
    return value if relation.many else (value,)


def _new_flags(model: type[ActiveRecord], records: Sequence[ActiveRecord]) -> list[bool]:
    # A saved record always has its key: only records with one need the (slower) snapshot
    # check, which a new record's unset slot makes costly.
    pk = model.__ar_info__.pk_fields[0]
    return [r.__dict__.get(pk) is None or r.is_new_record for r in records]


def _collect(
    model: type[ActiveRecord], records: list[Any], tree: Tree, parent: _Node | None = None,
    relation: Relation | None = None,
) -> _Node:
    node = _Node(model, records, parent, relation)
    node.new = _new_flags(model, records) if all(isinstance(r, model) for r in records) else []
    for name, sub in tree.items():
        rel = relation_of(model, name)
        lists = [_items(rel, _related(record, name)) for record in records]
        node.related[name] = lists
        flat = list(itertools.chain.from_iterable(lists))
        if len(set(map(id, flat))) != len(flat):  # a record set twice is written once
            flat = list({id(item): item for item in flat}.values())
        node.children.append((rel, _collect(rel.target, flat, sub, node, rel)))
    return node


def _validate(node: _Node, failures: dict[int, list[Any]], lines: list[str]) -> None:
    for position, record in enumerate(node.records):
        if not isinstance(record, node.model):
            raise ArgumentTypeError(
                f"{node.path(position)}: expected a {node.model.__name__}, "
                f"got {type(record).__name__}"
            )
    new = [i for i, flag in enumerate(node.new) if flag]
    if new:
        records = node.records
        try:
            with collector_paused():
                list_adapter(node.model).validate_python([records[i].__dict__ for i in new])
        except pydantic.ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = error.get("loc", ())
                position = new[int(loc[0]) if loc and isinstance(loc[0], int) else 0]
                path = node.path(position)
                where = ".".join(str(p) for p in loc[1:]) or "<record>"
                lines.append(f"  {path}: {where}: {error.get('msg')}")
                failures.setdefault(node.top(position), []).append(
                    {**error, "loc": (path, *loc[1:])}
                )
    for _, child in node.children:
        _validate(child, failures, lines)


def insert_graph(
    model: type[ActiveRecord],
    records: Iterable[Any],
    include: Iterable[str],
    *,
    validate: bool = True,
    batch_size: int | None = None,
    progress: Any = False,
) -> int:
    """Insert ``records`` and the related records named by ``include``; return how many
    ``model`` rows were inserted. See the module docs."""
    tree = include_tree(model, include)
    # The collector rests over the whole graph, as over one batch chunk: the records are
    # walked a few times and many small tuples are made, none of them cyclic garbage.
    with collector_paused():
        return _insert(model, _collect(model, list(records), tree), validate=validate,
                       batch_size=batch_size, progress=progress)


def _insert(model: type[ActiveRecord], root: _Node, *, validate: bool,
            batch_size: int | None, progress: Any) -> int:
    if validate:
        failures: dict[int, list[Any]] = {}
        lines: list[str] = []
        _validate(root, failures, lines)
        if failures:
            error = BatchValidationError(model.__name__, failures)
            shown = lines[:20] + ([f"  ... and {len(lines) - 20} more"] if len(lines) > 20 else [])
            error.args = (
                f"{len(failures)} {model.__name__} record(s) failed validation in the graph; "
                "nothing was written\n" + "\n".join(shown),
            )
            raise error
    db = model.database()
    moved: list[tuple[ActiveRecord, str, Any]] = []
    with Transaction(db):
        if tracks_rollback(db):
            on_rollback(lambda: _put_keys_back(moved), db)
        try:
            return _write(root, moved, batch_size=batch_size, progress=progress)
        except BaseException:
            _put_keys_back(moved)  # the transaction's rollback puts the rest back
            moved.clear()
            raise


def _put_keys_back(moved: list[tuple[ActiveRecord, str, Any]]) -> None:
    for record, fname, before in reversed(moved):
        record.__dict__[fname] = before


def _set_fk(record: ActiveRecord, fname: str, value: Any, new: bool,
            moved: list[tuple[ActiveRecord, str, Any]]) -> bool:
    """Set a foreign key found by the graph; True when a saved record changed."""
    data = record.__dict__
    before = data.get(fname)
    if before == value and fname in data:
        return False
    moved.append((record, fname, before))
    if new:
        record.__dict__[fname] = value  # new records own their dict: no snapshot shares it
        return False
    setattr(record, fname, value)
    return True


def _key_checker(
    model: type[ActiveRecord], fk: str, source: type[ActiveRecord], pk: str, where: str
) -> Any:
    """A function checking that ``model.fk`` can hold keys of ``source.pk`` (once per key);
    the identity when both fields are declared alike (the common case: nothing to check)."""
    mine, theirs = model.__ar_info__.field_infos[fk], source.__ar_info__.field_infos[pk]
    if mine.annotation == theirs.annotation and mine.metadata == theirs.metadata:
        return lambda key: key
    checked: dict[Any, Any] = {}

    def check(key: Any) -> Any:
        if key not in checked:
            checked[key] = _checked_key(model, fk, key, where)
        return checked[key]

    return check


def _write(node: _Node, moved: list[tuple[ActiveRecord, str, Any]], *,
           batch_size: int | None, progress: Any = False) -> int:
    model = node.model
    for relation, child in node.children:
        if relation.kind != "belongs_to":
            continue
        _write(child, moved, batch_size=batch_size)
        fk, pk, name = relation.foreign_key, relation.primary_key, relation.name
        check = _key_checker(model, fk, relation.target, pk, f"{model.__name__}.{name}")
        relinked: list[ActiveRecord] = []
        for record, new in zip(node.records, node.new):
            parent = _related(record, name)
            if parent is not None and _set_fk(
                record, fk, check(parent.__dict__.get(pk)), new, moved
            ):
                relinked.append(record)
        if relinked:  # saved records now pointing at another parent: one update by key
            model.batch_update(relinked, [fk])
    new_records = [r for r, new in zip(node.records, node.new) if new]
    inserted = model.batch_insert(new_records, validate=False, batch_size=batch_size,
                                  progress=progress) if new_records else 0
    for relation, child in node.children:
        if relation.kind == "belongs_to":
            continue
        pk = relation.primary_key
        if relation.through is None:
            fk = relation.foreign_key
            check = _key_checker(child.model, fk, model, pk, f"{model.__name__}.{relation.name}")
            keys = [check(r.__dict__.get(pk)) for r in node.records]
            target_pk = child.model.__ar_info__.pk_fields[0]
            relink: list[ActiveRecord] = []
            for key, items in zip(keys, node.related[relation.name]):
                for item in items:
                    data = item.__dict__
                    before = data.get(fk)
                    if before == key:
                        continue
                    moved.append((item, fk, before))
                    if data.get(target_pk) is None or item.is_new_record:
                        data[fk] = key  # a new record owns its dict: no snapshot shares it
                    else:
                        setattr(item, fk, key)
                        relink.append(item)
            if relink:  # saved children now pointing here: one update by key
                child.model.batch_update(relink, [fk])
            _write(child, moved, batch_size=batch_size)
            continue
        _write(child, moved, batch_size=batch_size)
        join = relation.through
        rows = []
        for record in node.records:
            key = record.__dict__.get(pk)
            for item in _items(relation, _related(record, relation.name)):
                rows.append(join.model_construct(**{
                    relation.foreign_key: key,
                    relation.target_key: item.__dict__.get(relation.target_pk),
                }))
        if rows:
            join.batch_insert(rows, batch_size=batch_size)
    return inserted
