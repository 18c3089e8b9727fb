"""Graph insert: ``batch_insert(records, include=["books", "books.tags"])``.

One batch per model per level, each through the plain ``batch_insert`` fast path (COPY on
PostgreSQL): new ``belongs_to`` parents first (each shared parent once) and their keys set on
the records, then the records (keys back), then for each ``has_many`` / ``has_one`` the
children with their foreign key set, and for a ``through`` relation the targets and the join
rows. Records already saved are linked, not inserted again: a saved record whose key the
graph changes gets that key written (one ``batch_update`` of the key alone per relation), a
join row already linking two saved records is not inserted twice, and a saved record's own
unsaved changes are not written (``changed_fields`` still holds them; as in Rails'
activerecord-import, a graph insert inserts, it does not save). All of it runs in one
transaction, and a failure anywhere rolls it all back and puts every record back. Where that
transaction is the graph's own and no model of it has hooks, nothing but the graph sees the
records before it ends: each level's records are marked persisted once it commits, and its
rollback puts them back as a failed insert does, with no snapshots taken (those were about 5%
of a graph's time on SQLite); each level reuses the ``__dict__`` list read here.

Validation covers the whole graph, errors naming the path (``record 3 -> books[1]: title:
...``) of every invalid record. Where a model of the graph has insert or update hooks, the
graph is validated before anything is written (no hook runs for a graph that is refused).
Without hooks each level is validated chunk by chunk as it is written, as a plain
``batch_insert`` validates its chunks: the client validates the next chunk while the server
writes the last (validating first left the server idle meanwhile: on PostgreSQL the graph
took 1.3-1.5x two plain inserts). An invalid record then stops the writes; the transaction
rolls back what was written, the records are put back, and the whole graph is validated as
it was given to name every invalid record. Nothing of a refused graph remains either way
(a PostgreSQL sequence or a MySQL counter may have moved, as in any rolled-back insert).

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
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any

import pydantic

from ..backend.transaction import (
    Transaction,
    hold_marks,
    on_rollback,
    tracks_rollback,
)
from ..errors import ArgumentTypeError, BatchValidationError
from ..validation import collector_paused, validate_rows
from ..write.insert import batch_insert
from .graph_dicts import graph_from_dicts, include_tree
from .graph_join import insert_join_rows
from .graph_keys import Moved, is_identity, key_checker, link, set_new_keys, values_of
from .loading import related_caches
from .preload import Tree
from .relation import Relation, relation_of

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["graph_from_dicts", "insert_graph"]

@dataclass
class _Node:
    """The records of one model at one place of the include tree (each record once).
    ``related[name][i]``: the records of relation ``name`` set on record i; ``new[i]``:
    whether record i is to be inserted; ``dicts[i]``: its ``__dict__`` when collected (an
    assignment swaps it: good until the first write). A record's path
    (``record 3 -> books[1]``) is only spelled out for an error."""

    model: type[ActiveRecord]
    records: list[ActiveRecord]
    parent: _Node | None = None
    relation: Relation | None = None
    children: list[tuple[Relation, _Node]] = field(default_factory=list)
    related: dict[str, list[Sequence[ActiveRecord]]] = field(default_factory=dict)
    new: list[bool] = field(default_factory=list)
    dicts: list[dict[str, Any]] = field(default_factory=list)

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


def _related_lists(model: type[ActiveRecord], relation: Relation,
                   records: list[Any]) -> list[Sequence[Any]]:
    """For each record, the records set on it for ``relation`` (assigned or loaded, never
    loading), as a sequence: a has_many list as it is, a single record in a tuple."""
    name = relation.name
    entries = [None if cache is None else cache.get(name)
               for cache in related_caches(model, records)]
    if relation.many:
        return [() if entry is None or entry[1] is None else entry[1] for entry in entries]
    return [() if entry is None or entry[1] is None else (entry[1],) for entry in entries]


def _new_flags(model: type[ActiveRecord], records: Sequence[ActiveRecord],
               dicts: list[dict[str, Any]]) -> list[bool]:
    # A saved record always has its key: only records with one need the snapshot check.
    keys = values_of(dicts, model.__ar_info__.pk_fields[0])
    if keys.count(None) == len(keys):
        return [True] * len(keys)
    return [key is None or record.is_new_record for key, record in zip(keys, records)]


def _collect(
    model: type[ActiveRecord], records: list[Any], tree: Tree, parent: _Node | None = None,
    relation: Relation | None = None,
) -> _Node:
    node = _Node(model, records, parent, relation)
    if set(map(type, records)) - {model}:
        for position, record in enumerate(records):
            if not isinstance(record, model):
                raise ArgumentTypeError(
                    f"{node.path(position)}: expected a {model.__name__}, "
                    f"got {type(record).__name__}"
                )
    node.dicts = [record.__dict__ for record in records]
    node.new = _new_flags(model, records, node.dicts)
    for name, sub in tree.items():
        rel = relation_of(model, name)
        lists = node.related[name] = _related_lists(model, rel, records)
        flat = list(itertools.chain.from_iterable(lists))
        if _repeats(flat):  # a record set twice is written once
            flat = list({id(item): item for item in flat}.values())
        node.children.append((rel, _collect(rel.target, flat, sub, node, rel)))
    return node


def _repeats(records: list[Any]) -> bool:
    """Whether a record is listed twice. The ids sorted and neighbours compared, in C: a set
    of the ids took twice as long (addresses are multiples of 16, and a set of ints
    spreads them by their low bits: long probe chains)."""
    ids = sorted(map(id, records))
    return any(map(operator.eq, ids, itertools.islice(ids, 1, None)))


#: Records validated per call: what pydantic builds for them (thrown away) stays small and
#: in the CPU cache (measured here when it built records: 100,000 records in calls of 2,000
#: took 0.8x the time of calls of 10,000, and 0.6x the time of one call).
_VALIDATE_CHUNK = 2_000


def _validate(node: _Node, failures: dict[int, list[Any]], lines: list[str]) -> None:
    records, new = node.records, node.new
    positions = None if all(new) else list(compress(range(len(records)), new))
    # Nothing is written yet: the dicts read by _collect are still the records'.
    datas = node.dicts if positions is None else [node.dicts[i] for i in positions]
    for start in range(0, len(datas), _VALIDATE_CHUNK):
        try:
            validate_rows(node.model, datas[start : start + _VALIDATE_CHUNK])
        except pydantic.ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = error.get("loc", ())
                index = start + (int(loc[0]) if loc and isinstance(loc[0], int) else 0)
                position = index if positions is None else positions[index]
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
    quiet = _quiet(root)
    if validate and not quiet:  # hooks: nothing runs for a graph that is refused
        _refuse_invalid(model, root)
    how = _Write(batch_size, quiet, validate=validate and quiet)
    db = model.database()
    moved = Moved()
    try:
        with Transaction(db):
            if quiet and not callable(progress):
                # The graph's own transaction, no user code in it: the levels' records are
                # marked persisted once it commits, and put back by its rollback, with no
                # snapshots taken (see the module docs).
                hold_marks(db)
            if tracks_rollback(db):
                on_rollback(moved.put_back, db)
            try:
                return _write(root, moved, how, progress=progress)
            except BaseException:
                moved.put_back()  # the transaction's rollback puts the rest back
                raise
    except BatchValidationError:
        if not how.validate:
            raise
        # A level refused a chunk: rolled back and put back, the graph is as it was given;
        # validated whole, the error names every invalid record by its path.
        _refresh_dicts(root)
        _refuse_invalid(model, root)
        raise  # pragma: no cover - a level refused what the graph's validation accepts


def _refuse_invalid(model: type[ActiveRecord], root: _Node) -> None:
    """Validate the whole graph; raise one error naming every invalid record's path."""
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


def _refresh_dicts(node: _Node) -> None:
    """Read each record's ``__dict__`` again (a put-back may have given it another)."""
    node.dicts = [record.__dict__ for record in node.records]
    for _, child in node.children:
        _refresh_dicts(child)


def _keys(records: Sequence[ActiveRecord], pk: str, check: Any) -> list[Any]:
    keys = [record.__dict__.get(pk) for record in records]
    return keys if is_identity(check) else list(map(check, keys))


@dataclass(frozen=True)
class _Write:
    """How the levels are written: ``quiet``, no model of the graph has insert or update
    hooks (nothing but the graph touches a record while the graph is written); ``validate``,
    each level validates its chunks as it writes them."""

    batch_size: int | None
    quiet: bool
    validate: bool = False


def _quiet(node: _Node) -> bool:
    model = node.model
    if any(model._batch_hooks(kind, ()) is not None for kind in ("insert", "update")):
        return False
    return all(_quiet(child) for _, child in node.children)


def _write(node: _Node, moved: Moved, how: _Write, progress: Any = False) -> int:
    model = node.model
    for relation, child in node.children:
        if relation.kind == "belongs_to":
            _write(child, moved, how)
            _link_parents(node, relation, moved)
    records, dicts = node.records, node.dicts
    if not all(node.new):
        records, dicts = list(compress(records, node.new)), list(compress(dicts, node.new))
    # Quiet, the dicts _collect read (and type-checked) are still the records' own: no hook
    # can swap one before the level is written.
    inserted = batch_insert(
        model, records, validate=how.validate, batch_size=how.batch_size, progress=progress,
        return_records=False, dicts=dicts if how.quiet else None,
    )[0] if records else 0
    for relation, child in node.children:
        if relation.kind == "belongs_to":
            continue
        if relation.through is None:
            _link_children(node, relation, child, moved, how.quiet)
            _write(child, moved, how)
        else:
            _write(child, moved, how)
            insert_join_rows(relation, node.records, node.new, node.related[relation.name],
                             dict(zip(map(id, child.records), child.new)), how.batch_size)
    return inserted


def _link_parents(node: _Node, relation: Relation, moved: Moved) -> None:
    """Each record's ``belongs_to`` key set to its (now saved) parent's key."""
    model, fk, pk = node.model, relation.foreign_key, relation.primary_key
    check = key_checker(model, fk, relation.target, pk, f"{model.__name__}.{relation.name}")
    have = [bool(items) for items in node.related[relation.name]]
    records = list(compress(node.records, have))
    parents = [items[0] for items in compress(node.related[relation.name], have)]
    changed = link(moved, records, list(compress(node.new, have)), fk,
                   _keys(parents, pk, check))
    if changed:  # saved records now pointing at another parent: one update by key
        model.batch_update(changed, [fk])


def _link_children(node: _Node, relation: Relation, child: _Node, moved: Moved,
                   quiet: bool) -> None:
    """Each child's key set to its owner's (now saved) key. ``quiet``: the children's dicts
    read by _collect are still theirs (only a hook could have swapped a new record's)."""
    fk, pk, target = relation.foreign_key, relation.primary_key, child.model
    check = key_checker(target, fk, node.model, pk, f"{node.model.__name__}.{relation.name}")
    lists = node.related[relation.name]
    owner_keys = _keys(node.records, pk, check)
    keys = list(itertools.chain.from_iterable(map(repeat, owner_keys, map(len, lists))))
    if len(keys) == len(child.records) and all(child.new):
        # Every child new and listed once (child.records is then the lists' concatenation).
        set_new_keys(moved, child.records, fk, keys, child.dicts if quiet else None)
        return
    items = list(itertools.chain.from_iterable(lists))
    new_of = dict(zip(map(id, child.records), child.new))
    changed = link(moved, items, [new_of[id(item)] for item in items], fk, keys)
    if changed:  # saved children now pointing here: one update by key
        target.batch_update(changed, [fk])
