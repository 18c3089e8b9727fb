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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic

from ..backend.transaction import Transaction, on_rollback, tracks_rollback
from ..errors import BatchValidationError, QueryError, UnknownColumnError
from ..validation import collector_paused, list_adapter
from .loading import Tree, _checked_key, assign_related, preload_tree
from .relation import Relation, relation_of

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["graph_from_dicts", "insert_graph"]


@dataclass
class _Node:
    """The records of one model at one place of the include tree, with their paths."""

    model: type[ActiveRecord]
    records: list[ActiveRecord]
    paths: list[str]
    children: list[tuple[Relation, _Node]] = field(default_factory=list)


def _tree(model: type[ActiveRecord], include: Iterable[str]) -> Tree:
    if isinstance(include, str):
        include = [include]
    try:
        return preload_tree(model, include)
    except QueryError as exc:
        raise QueryError(f"include: {exc}") from exc


def _related(record: ActiveRecord, name: str) -> Any:
    """The related value set on the record (assigned or loaded), never loading it."""
    from ..model import get_related

    entry = (get_related(record) or {}).get(name)
    return None if entry is None else entry[1]


def _items(relation: Relation, value: Any) -> Sequence[Any]:
    if value is None:
        return ()
    return value if relation.many else (value,)


def _collect(
    model: type[ActiveRecord], records: Sequence[Any], paths: list[str], tree: Tree
) -> _Node:
    node = _Node(model, list(records), paths)
    for name, sub in tree.items():
        relation = relation_of(model, name)
        seen: dict[int, int] = {}
        items: list[ActiveRecord] = []
        item_paths: list[str] = []
        for record, path in zip(records, paths):
            value = _related(record, name)
            values = _items(relation, value)
            for index, item in enumerate(values):
                if id(item) in seen:
                    continue
                seen[id(item)] = len(items)
                items.append(item)
                item_paths.append(f"{path} -> {name}[{index}]" if relation.many else
                                  f"{path} -> {name}")
        node.children.append((relation, _collect(relation.target, items, item_paths, sub)))
    return node


def _validate(node: _Node, failures: dict[int, list[Any]], top: dict[str, int],
              lines: list[str]) -> None:
    new = [(r, p) for r, p in zip(node.records, node.paths) if r.is_new_record]
    if new:
        for index, (record, _) in enumerate(new):
            if not isinstance(record, node.model):
                raise TypeError(
                    f"{new[index][1]}: expected a {node.model.__name__}, "
                    f"got {type(record).__name__}"
                )
        try:
            with collector_paused():
                list_adapter(node.model).validate_python([r.__dict__ for r, _ in new])
        except pydantic.ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = error.get("loc", ())
                index = int(loc[0]) if loc and isinstance(loc[0], int) else 0
                path = new[index][1]
                where = ".".join(str(p) for p in loc[1:]) or "<record>"
                lines.append(f"  {path}: {where}: {error.get('msg')}")
                failures.setdefault(top[path.split(" -> ")[0]], []).append(
                    {**error, "loc": (path, *loc[1:])}
                )
    for _, child in node.children:
        _validate(child, failures, top, lines)


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
    tree = _tree(model, include)
    records = list(records)
    paths = [f"record {i}" for i in range(len(records))]
    root = _collect(model, records, paths, tree)
    if validate:
        failures: dict[int, list[Any]] = {}
        lines: list[str] = []
        _validate(root, failures, {p: i for i, p in enumerate(paths)}, lines)
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


def _set_fk(record: ActiveRecord, fname: str, value: Any,
            moved: list[tuple[ActiveRecord, str, Any]]) -> bool:
    """Set a foreign key found by the graph; True when a saved record changed."""
    before = record.__dict__.get(fname)
    if before == value and fname in record.__dict__:
        return False
    moved.append((record, fname, before))
    if record.is_new_record:
        record.__dict__[fname] = value  # new records own their dict: no snapshot shares it
        return False
    setattr(record, fname, value)
    return True


def _write(node: _Node, moved: list[tuple[ActiveRecord, str, Any]], *,
           batch_size: int | None, progress: Any = False) -> int:
    model = node.model
    for relation, child in node.children:
        if relation.kind != "belongs_to":
            continue
        _write(child, moved, batch_size=batch_size)
        fk, pk = relation.foreign_key, relation.primary_key
        where = f"{model.__name__}.{relation.name}"
        checked: dict[Any, Any] = {}
        relinked: list[ActiveRecord] = []
        for record in node.records:
            parent = _related(record, relation.name)
            if parent is None:
                continue
            key = parent.__dict__.get(pk)
            if key not in checked:
                checked[key] = _checked_key(model, fk, key, where)
            if _set_fk(record, fk, checked[key], moved):
                relinked.append(record)
        if relinked:  # saved records now pointing at another parent: one update by key
            model.batch_update(relinked, [fk])
    new = [r for r in node.records if r.is_new_record]
    inserted = model.batch_insert(new, validate=False, batch_size=batch_size,
                                  progress=progress) if new else 0
    for relation, child in node.children:
        if relation.kind == "belongs_to":
            continue
        target = relation.target
        where = f"{model.__name__}.{relation.name}"
        if relation.through is None:
            fk = relation.foreign_key
            relink: list[ActiveRecord] = []
            for record in node.records:
                key = _checked_key(target, fk, record.__dict__.get(relation.primary_key), where)
                value = _related(record, relation.name)
                for item in _items(relation, value):
                    if _set_fk(item, fk, key, moved):
                        relink.append(item)
            if relink:
                target.batch_update(relink, [fk])
            _write(child, moved, batch_size=batch_size)
            continue
        _write(child, moved, batch_size=batch_size)
        join = relation.through
        rows = []
        for record in node.records:
            key = record.__dict__.get(relation.primary_key)
            value = _related(record, relation.name)
            for item in _items(relation, value):
                rows.append(join.model_construct(**{
                    relation.foreign_key: key,
                    relation.target_key: item.__dict__.get(relation.target_pk),
                }))
        if rows:
            join.batch_insert(rows, batch_size=batch_size)
    return inserted


def graph_from_dicts(
    model: type[ActiveRecord], rows: Iterable[Mapping[str, Any]], include: Iterable[str]
) -> list[ActiveRecord]:
    """Records built from nested dicts: the keys named by ``include`` hold the related
    records' dicts (a list for ``has_many``). Unknown keys are an error naming the path; a
    value that does not validate raises one :class:`BatchValidationError` for the graph."""
    tree = _tree(model, include)
    rows = list(rows)
    failures: dict[int, list[Any]] = {}
    lines: list[str] = []
    records = _build(model, rows, [f"record {i}" for i in range(len(rows))], tree,
                     failures, lines)
    if failures:
        error = BatchValidationError(model.__name__, failures)
        error.args = (
            f"{len(failures)} {model.__name__} record(s) failed validation in the graph; "
            "nothing was written\n" + "\n".join(lines[:20]),
        )
        raise error
    return records


def _build(model: type[ActiveRecord], rows: list[Any], paths: list[str], tree: Tree,
           failures: dict[int, list[Any]], lines: list[str]) -> list[Any]:
    info = model.__ar_info__
    known = set(model.model_fields)
    plain: list[dict[str, Any]] = []
    for row, path in zip(rows, paths):
        if not isinstance(row, Mapping):
            raise TypeError(f"{path}: expected a dict, got {type(row).__name__}")
        for key in row:
            if key not in known and key not in tree:
                err = UnknownColumnError(str(key), info.model_name, info.fields)
                err.args = (f"{path}: {err.args[0]}",)
                raise err
        plain.append({k: v for k, v in row.items() if k not in tree})
    try:
        with collector_paused():
            records: list[Any] = list_adapter(model).validate_python(plain)
    except pydantic.ValidationError as exc:
        records = [None] * len(rows)
        for error in exc.errors(include_url=False):
            loc = error.get("loc", ())
            index = int(loc[0]) if loc and isinstance(loc[0], int) else 0
            where = ".".join(str(p) for p in loc[1:]) or "<record>"
            lines.append(f"  {paths[index]}: {where}: {error.get('msg')}")
            top = int(paths[index].split(" -> ")[0].split()[1])
            failures.setdefault(top, []).append({**error, "loc": (paths[index], *loc[1:])})
    for name, sub in tree.items():
        relation = relation_of(model, name)
        child_rows: list[Any] = []
        child_paths: list[str] = []
        spans: list[tuple[int, int] | None] = []
        for row, path in zip(rows, paths):
            value = row.get(name)
            if value is None:
                spans.append(None)
                continue
            if relation.many:
                if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                    raise TypeError(f"{path} -> {name}: expected a list of dicts")
                value = list(value)
                spans.append((len(child_rows), len(child_rows) + len(value)))
                child_paths += [f"{path} -> {name}[{i}]" for i in range(len(value))]
                child_rows += value
            else:
                spans.append((len(child_rows), len(child_rows) + 1))
                child_paths.append(f"{path} -> {name}")
                child_rows.append(value)
        built = _build(relation.target, child_rows, child_paths, sub, failures, lines)
        for record, span in zip(records, spans):
            if record is None or span is None:
                continue
            part = built[span[0]:span[1]]
            if any(p is None for p in part):
                continue
            assign_related(relation, record, part if relation.many else part[0])
    return records
