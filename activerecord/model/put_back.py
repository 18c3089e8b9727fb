"""What puts records back as they were before a write, on a later rollback of the ambient
transaction: one record (:func:`put_back`), all the records of one call (:func:`put_back_all`),
or the records an insert filled fields on (:func:`put_back_filled`). A field the user has set
since the write keeps its value; the snapshot from before the call comes back.

Example::

    >>> from activerecord import ActiveRecord
    >>> class Bolt(ActiveRecord):
    ...     __table_name__ = "doc_bolts"
    ...     id: int | None = None
    >>> bolt = Bolt(id=None)
    >>> bolt.__dict__["id"] = 5  # as an insert fills the key
    >>> put_back(bolt, None, {"id": (None, 5)})()
    >>> bolt.id, bolt.is_new_record
    (None, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

from . import snapshot as snap
from .snapshot import Snapshot

if TYPE_CHECKING:
    from .base import ActiveRecord

__all__ = ["put_back", "put_back_all", "put_back_filled"]

_dict_of = attrgetter("__dict__")


def put_back(
    record: ActiveRecord, snapshot: Snapshot, moved: Mapping[str, tuple[Any, Any]]
) -> Callable[[], None]:
    """A closure that puts ``record`` back as it was before a write.

    ``snapshot``: the snapshot before the write (None: a new record; a copy, never the
    record's live one). ``moved``: for each field the library itself set (generated key,
    timestamps, lock version, server-generated values, ``deleted_at``), the value before and
    the value written; a field the user has set to something else since is left alone.
    """

    def restore() -> None:
        data = record.__dict__
        for fname, (before, written) in moved.items():
            current = data.get(fname)
            if current is written or current == written:
                data[fname] = before
        snap.set_slot(record, snapshot)

    return restore


def put_back_all(
    records: Sequence[ActiveRecord],
    states: Sequence[Snapshot],
    befores: Sequence[Mapping[str, Any]],
) -> Callable[[], None]:
    """The ``put_back`` of many records written by one call: ``states[i]`` is record i's
    snapshot before the call and ``befores[i]`` a copy of its fields before the call; every
    field the call changed (as it is now, after the write) is put back unless the user set it
    since. Called right after the write: it copies the fields as written (at C speed), and
    leaves the comparing to a rollback, which is rare."""
    afters = list(map(dict.copy, map(_dict_of, records)))

    def restore() -> None:
        for record, snapshot, before, after in reversed(
            list(zip(records, states, befores, afters))
        ):
            moved = {
                f: (old, after[f]) for f, old in before.items()
                if f in after and after[f] is not old and after[f] != old
            }
            put_back(record, snapshot, moved)()

    return restore


def put_back_filled(
    records: list[ActiveRecord],
    datas: list[list[dict[str, Any]]],
    states: list[Snapshot],
    filled: list[tuple[Sequence[dict[str, Any]], str]],
) -> Callable[[], None]:
    """What puts back, on a rollback of the ambient transaction, the records an insert wrote:
    ``datas`` are their fields (``__dict__``) as the call wrote them, chunk by chunk, and
    ``filled`` the fields it filled on them, each None before. The values written are kept
    per field, at C speed (no copy of each record's fields, which made a batch insert in a
    ``Transaction`` far slower than outside one); the matching back to records is left to a
    rollback, which is rare. As ``put_back_all``: a field the user set since keeps its value,
    and each record gets its snapshot from before the call back."""
    written = [(dicts, fname, list(map(itemgetter(fname), dicts))) for dicts, fname in filled]

    def restore() -> None:
        # The dicts are kept alive here, so their ids name their records; a record's
        # ``__dict__`` may have been replaced since (``validate_assignment``): read it now.
        owner = {id(d): r for ds, rs in zip(datas, _cut(records, datas)) for d, r in zip(ds, rs)}
        for dicts, fname, values in reversed(written):
            for old, value in zip(dicts, values):
                data = owner[id(old)].__dict__
                current = data.get(fname)
                if current is value or current == value:
                    data[fname] = None
        for record, snapshot in zip(reversed(records), reversed(states)):
            snap.set_slot(record, snapshot)

    return restore


def _cut(records: list[ActiveRecord], datas: list[list[dict[str, Any]]]) -> Iterator[list[Any]]:
    """``records`` cut as ``datas`` is (one list per chunk)."""
    start = 0
    for ds in datas:
        yield records[start:start + len(ds)]
        start += len(ds)
