"""Preloading: ``query().preload("books.tags")`` checks the paths against the models'
relations when the query is built, and loads each relation for all the records read, one
query (per key chunk) per relation per level, whatever the number of records.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord, has_many
    >>> class Shelf(ActiveRecord):
    ...     __table_name__ = "doc_pre_shelves"
    ...     id: int | None = None
    ...     slots = has_many("ShelfSlot")
    >>> class ShelfSlot(ActiveRecord):
    ...     __table_name__ = "doc_pre_slots"
    ...     id: int | None = None
    ...     shelf_id: int
    >>> preload_tree(Shelf, ["slots"])
    {'slots': {}}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import QueryError
from .loading import _cache, load_into
from .relation import relation_of

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["Tree", "preload_records", "preload_tree"]

Tree = dict[str, "Tree"]


def preload_tree(model: type[ActiveRecord], paths: Iterable[str], tree: Tree | None = None) -> Tree:
    """Check preload paths (``"books"``, ``"books.tags"``) against the models' relations and
    merge them into a tree; :class:`QueryError` for a name that is no relation."""
    merged: Tree = {} if tree is None else _copy_tree(tree)
    for path in paths:
        if not isinstance(path, str) or not path.strip():
            raise QueryError(f"preload() takes relation names such as 'books.tags'; got {path!r}")
        current, node = model, merged
        for name in path.strip().split("."):
            relation = relation_of(current, name)
            node = node.setdefault(name, {})
            current = relation.target
    return merged


def _copy_tree(tree: Tree) -> Tree:
    return {name: _copy_tree(sub) for name, sub in tree.items()}


def preload_records(model: type[ActiveRecord], records: Sequence[Any], tree: Tree) -> None:
    """Load every relation of ``tree`` for ``records``: one query (per key chunk) per
    relation per level, whatever the number of records."""
    if not records:
        return
    for name, sub in tree.items():
        relation = relation_of(model, name)
        load_into(relation, records)
        if not sub:
            continue
        seen: dict[int, ActiveRecord] = {}
        for record in records:
            value = _cache(record)[name][1]
            for child in value if relation.many else () if value is None else (value,):
                seen.setdefault(id(child), child)
        preload_records(relation.target, list(seen.values()), sub)
