"""Foreign keys a graph insert sets on its records, and putting them back.

A graph of 100,000 children sets 100,000 keys: where every child is new and in one list
only (the common case), the keys are set in one pass over the children's ``__dict__`` (a
new record owns its dict: no snapshot shares it), and what each held before is kept per
relation, not per record (a list, not a tuple per record). Comprehensions, not ``map`` over
unbound methods: on CPython 3.11+ their specialised attribute and item access is faster.
Saved records get theirs by ``setattr`` (their dict may be their snapshot's, and the change
must show in ``changed_fields``); the caller writes those with one update by key.
:class:`Moved` puts every key back when the graph fails or its transaction rolls back.

Example::

    >>> from activerecord import ActiveRecord
    >>> class Leaf(ActiveRecord):
    ...     __table_name__ = "doc_leaves"
    ...     id: int | None = None
    ...     tree_id: int | None = None
    >>> leaves = [Leaf(), Leaf()]
    >>> moved = Moved()
    >>> set_new_keys(moved, leaves, "tree_id", [4, 5])
    >>> [leaf.tree_id for leaf in leaves]
    [4, 5]
    >>> moved.put_back(); [leaf.tree_id for leaf in leaves]
    [None, None]
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .loading import _checked_key

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["Moved", "is_identity", "key_checker", "link", "set_new_keys", "values_of"]

class Moved:
    """The keys the graph set, with what they held before: (records, field, befores)."""

    def __init__(self) -> None:
        self._entries: list[tuple[Sequence[ActiveRecord], str, Sequence[Any]]] = []

    def add(self, records: Sequence[ActiveRecord], fname: str, befores: Sequence[Any]) -> None:
        self._entries.append((records, fname, befores))

    def put_back(self) -> None:
        """Every key as it was before the graph set it (latest first); then forget them."""
        for records, fname, befores in reversed(self._entries):
            # A saved record's dict is its own again by now (the assignment swapped it).
            # Backwards within an entry too: a record listed twice gets its first value.
            for record, before in zip(reversed(records), reversed(befores)):
                record.__dict__[fname] = before
        self._entries.clear()


def set_new_keys(moved: Moved, records: Sequence[ActiveRecord], fname: str,
                 keys: Sequence[Any], dicts: list[dict[str, Any]] | None = None) -> None:
    """Set ``fname`` of each new record to its key, in place (``dicts``: the records'
    ``__dict__``, when the caller holds them)."""
    if dicts is None:
        dicts = [record.__dict__ for record in records]
    moved.add(records, fname, values_of(dicts, fname))
    deque(map(operator.setitem, dicts, repeat(fname), keys), maxlen=0)  # a C loop


def link(moved: Moved, records: Sequence[ActiveRecord], new: Sequence[bool], fname: str,
         keys: Sequence[Any]) -> list[ActiveRecord]:
    """Set ``fname`` of each record to its key (a record listed twice: the last key);
    return the saved records whose key changed, which the caller updates by key."""
    changed: list[ActiveRecord] = []
    touched: list[ActiveRecord] = []
    befores: list[Any] = []
    for record, is_new, key in zip(records, new, keys):
        data = record.__dict__
        before = data.get(fname)
        if before == key and fname in data:
            continue
        touched.append(record)
        befores.append(before)
        if is_new:
            data[fname] = key  # a new record owns its dict: no snapshot shares it
        else:
            setattr(record, fname, key)
            changed.append(record)
    moved.add(touched, fname, befores)
    # A saved record set twice is updated once, to its last key.
    return list({id(r): r for r in changed}.values())


def values_of(dicts: list[dict[str, Any]], fname: str) -> list[Any]:
    """``fname`` of each dict (None where it is missing: a ``model_construct`` record)."""
    try:
        return list(map(itemgetter(fname), dicts))  # C-level; the common case
    except KeyError:
        return [data.get(fname) for data in dicts]


def _same(key: Any) -> Any:
    return key


def key_checker(model: type[ActiveRecord], fk: str, source: type[ActiveRecord], pk: str,
                where: str) -> Callable[[Any], Any]:
    """A function checking that ``model.fk`` can hold keys of ``source.pk`` (once per key);
    the identity when both fields are declared alike (the common case: nothing to check)."""
    mine, theirs = model.__ar_info__.field_infos[fk], source.__ar_info__.field_infos[pk]
    if mine.annotation == theirs.annotation and mine.metadata == theirs.metadata:
        return _same
    checked: dict[Any, Any] = {}

    def check(key: Any) -> Any:
        if key not in checked:
            checked[key] = _checked_key(model, fk, key, where)
        return checked[key]

    return check


def is_identity(check: Callable[[Any], Any]) -> bool:
    """Whether ``check`` (from :func:`key_checker`) leaves keys as they are."""
    return check is _same
