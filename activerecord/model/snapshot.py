"""The persisted snapshot of a record: its slot, reading and setting it, marking records
persisted (all fields, or only those a write stored).

A record's *snapshot* is the dict of its values as last read or written (None, or the slot
unset: a new record). It lives in the ``_ar_persisted`` slot of ``ActiveRecord``, read and
written here only (:func:`snapshot_of`, :func:`set_snapshot`): ``changed_fields`` compares
the record's ``__dict__`` against it.

The invariant the cheap paths rely on: under ``validate_assignment`` (the default) pydantic
gives a record a new ``__dict__`` on every assignment (it validates a copy and swaps it in, so
a failed assignment changes nothing). A snapshot may then *be* the record's current
``__dict__``, shared until the first assignment, and no record is copied to mark it persisted.
:data:`ASSIGNMENT_SWAPS_DICT` checks that once at import on the installed pydantic; where it
does not hold, snapshots are copies (slower, still right). Code that writes a record's
``__dict__`` in place marks it again after, as every writer in this package does.

A snapshot belongs to one record (a copy or an unpickled record gets its own): it is either
that record's ``__dict__`` or referenced by its slot alone, so :func:`mark_written` sets the
fields a write stored in it in place (into the record's own ``__dict__``, the same values).

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> from activerecord.model.snapshot import snapshot_of
    >>> class Pin(ActiveRecord):
    ...     __table_name__ = "doc_pins"
    ...     id: int | None = None
    ...     label: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Pin.create_table()
    >>> pin = Pin(label="a")
    >>> snapshot_of(pin) is None
    True
    >>> _ = pin.save()
    >>> snapshot_of(pin)
    {'id': 1, 'label': 'a'}
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter, itemgetter, setitem
from typing import TYPE_CHECKING, Any

import pydantic

if TYPE_CHECKING:
    from .base import ActiveRecord

__all__ = [
    "ASSIGNMENT_SWAPS_DICT",
    "SLOT",
    "UNKNOWN",
    "Snapshot",
    "bind_slot",
    "mark_persisted",
    "mark_persisted_batch",
    "mark_written",
    "set_snapshot",
    "snapshot_of",
    "snapshots",
]

#: The slot of ``ActiveRecord`` that holds the snapshot (a slot, not a pydantic
#: ``PrivateAttr``: private attributes make pydantic run Python code for every instance it
#: validates, and setting a slot allocates nothing, which batches of 100k feel).
SLOT = "_ar_persisted"

Snapshot = dict[str, Any] | None

def _unbound(record: Any, *value: Any) -> Any:
    raise RuntimeError("activerecord.model.state: bind_slot() was not called")


# The slot's own accessors (set by ``bind_slot``): no attribute lookup through pydantic.
# Other modules read them as ``snapshot.get_slot`` / ``snapshot.set_slot`` at call time
# (a name imported before ``bind_slot`` ran would stay unbound).
get_slot: Callable[[Any], Snapshot] = _unbound
set_slot: Callable[[Any, Snapshot], None] = _unbound


def bind_slot(descriptor: Any) -> None:
    """Called once by ``model.base`` with the slot's member descriptor."""
    global get_slot, set_slot
    get_slot = descriptor.__get__
    set_slot = descriptor.__set__


def _assignment_swaps_dict() -> bool:
    """Whether pydantic gives an instance a new ``__dict__`` on a validated assignment, and
    leaves it untouched when the assignment fails (see the module docs)."""

    class Probe(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(validate_assignment=True)
        n: int = 0

    probe = Probe()
    first = probe.__dict__
    probe.n = 1
    second = probe.__dict__
    try:
        probe.n = "not a number"  # type: ignore[assignment]
    except pydantic.ValidationError:
        pass
    return first is not second and first == {"n": 0} and probe.__dict__ is second == {"n": 1}


#: The invariant shared snapshots rely on, checked on the installed pydantic.
ASSIGNMENT_SWAPS_DICT = _assignment_swaps_dict()


def snapshot_of(record: ActiveRecord) -> Snapshot:
    """The record's persisted snapshot, None for a new record (the live one: do not change)."""
    try:
        return get_slot(record)
    except AttributeError:  # never saved nor loaded (pydantic builds instances bare)
        return None


def set_snapshot(record: ActiveRecord, snapshot: Snapshot) -> None:
    """Set the record's snapshot (None: the record is new)."""
    set_slot(record, snapshot)


def mark_persisted(record: ActiveRecord) -> None:
    """The record is stored as it is now: its snapshot is a copy of its fields."""
    set_slot(record, dict(record.__dict__))


def mark_persisted_batch(records: Sequence[ActiveRecord], datas: Sequence[dict[str, Any]]) -> None:
    """``mark_persisted`` for many records, ``datas[i]`` being ``records[i].__dict__``: under
    ``validate_assignment`` the current ``__dict__`` itself is the snapshot (module docs)."""
    if not records:
        return
    if ASSIGNMENT_SWAPS_DICT and type(records[0]).model_config.get("validate_assignment"):
        deque(map(set_slot, records, datas), maxlen=0)
    else:
        deque(map(set_slot, records, map(dict, datas)), maxlen=0)


def snapshots(records: Sequence[ActiveRecord]) -> list[Snapshot]:
    """Copies of the records' snapshots (None for new records), to put back later."""
    try:
        # One C-level pass; the constructor sets a new record's slot (to None), so it only
        # fails for records built otherwise (``model_construct``, a copy of a new record).
        states = list(map(get_slot, records))
    except AttributeError:
        return _snapshots_one_by_one(records)
    if states.count(None) == len(states):
        return states
    return [None if snapshot is None else dict(snapshot) for snapshot in states]


def _snapshots_one_by_one(records: Sequence[ActiveRecord]) -> list[Snapshot]:
    # Inlined (not ``snapshot_of``): batches of 100k feel each call.
    states: list[Snapshot] = []
    keep = states.append
    for record in records:
        try:
            snapshot = get_slot(record)
        except AttributeError:  # never saved nor loaded
            keep(None)
            continue
        keep(None if snapshot is None else dict(snapshot))
    return states


class _Unknown:
    """A snapshot's value for a field whose stored value is not known (see ``mark_written``):
    equal to nothing, so the field counts as changed until a write stores it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unknown stored value>"

    def __reduce__(self) -> str:  # pickled and copied as the one instance
        return "UNKNOWN"


UNKNOWN = _Unknown()
_dict_of = attrgetter("__dict__")


def mark_written(
    records: Sequence[ActiveRecord],
    written: Sequence[str],
    datas: Sequence[dict[str, Any]] | None = None,
) -> None:
    """Mark only the ``written`` fields of each record as stored, as a write of those columns
    alone leaves them: every other field keeps its pending change (``changed_fields``). A
    record never read or saved before gets ``UNKNOWN`` for the fields not written.
    ``datas``: the records' ``__dict__``, where the caller has them."""
    names = tuple(written)
    # Every record has a snapshot of its own, the usual (copies and pickles get theirs, a
    # shared one is the record's own ``__dict__``): set the written fields in it, one C-level
    # pass per field, no copy (a batch of 100k feels a dict per record). A record without
    # one stops the pass; the loop below then does every record again, the same for those
    # done (their snapshot already holds the written values).
    try:
        for name in names:
            values = map(itemgetter(name), map(_dict_of, records) if datas is None else datas)
            deque(map(setitem, map(get_slot, records), repeat(name), values), maxlen=0)  # type: ignore[arg-type]
        return
    except (AttributeError, TypeError):  # slot unset, or None: a new record
        pass
    get = itemgetter(*names, names[0])  # >= 2 names: always a tuple back
    for record in records:
        data = record.__dict__
        try:
            snapshot = get_slot(record)
        except AttributeError:
            snapshot = None
        snapshot = dict.fromkeys(data, UNKNOWN) if snapshot is None else snapshot.copy()
        snapshot.update(zip(names, get(data)))
        set_slot(record, snapshot)
