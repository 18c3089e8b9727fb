"""Record state: the persisted snapshot, marking records persisted, and the one undo object.

A record's *snapshot* is the dict of its values as last read or written (None, or the slot
unset: a new record). It lives in the ``_ar_persisted`` slot of ``ActiveRecord``, read and
written here only (:func:`snapshot_of`, :func:`set_snapshot`): ``changed_fields`` compares
the record's ``__dict__`` against it.

Every writer (``save``, ``delete``, soft delete and restore, batch insert, upsert and batch
update) captures and puts back record state through one :class:`Undo`: before the write it
hears what the call is about to change on which records, a failed call puts them back as
they were (:meth:`Undo.failed`), and a successful one marks them persisted and hands back the
closure that puts them back if the ambient ``Transaction`` later rolls back
(:meth:`Undo.succeeded`, Rails' ``restore_transaction_record_state``).

The invariant the cheap paths rely on: under ``validate_assignment`` (the default) pydantic
gives a record a new ``__dict__`` on every assignment (it validates a copy and swaps it in, so
a failed assignment changes nothing). A snapshot may then *be* the record's current
``__dict__``, shared until the first assignment, and no record is copied to mark it persisted.
:data:`ASSIGNMENT_SWAPS_DICT` checks that once at import on the installed pydantic; where it
does not hold, snapshots are copies (slower, still right). Code that writes a record's
``__dict__`` in place marks it again after, as every writer in this package does.

Longer than 400 lines because the three ways of remembering records (a list's, an
iterator's by weak reference, a single record's) share the one put-back logic kept here.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> from activerecord.model.state import snapshot_of
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

import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

import pydantic

if TYPE_CHECKING:
    from .base import ActiveRecord

__all__ = [
    "ALL",
    "ASSIGNMENT_SWAPS_DICT",
    "GONE",
    "SLOT",
    "UNKNOWN",
    "Undo",
    "bind_slot",
    "mark_persisted",
    "mark_persisted_batch",
    "mark_written",
    "put_back",
    "set_snapshot",
    "snapshot_of",
    "snapshots",
]

#: The slot of ``ActiveRecord`` that holds the snapshot (a slot, not a pydantic
#: ``PrivateAttr``: private attributes make pydantic run Python code for every instance it
#: validates, and setting a slot allocates nothing, which batches of 100k feel).
SLOT = "_ar_persisted"

Snapshot = dict[str, Any] | None

_dict_of = attrgetter("__dict__")


def _unbound(record: Any, *value: Any) -> Any:
    raise RuntimeError("activerecord.model.state: bind_slot() was not called")


# The slot's own accessors (set by ``bind_slot``): no attribute lookup through pydantic.
_get: Callable[[Any], Snapshot] = _unbound
_set: Callable[[Any, Snapshot], None] = _unbound


def bind_slot(descriptor: Any) -> None:
    """Called once by ``model.base`` with the slot's member descriptor."""
    global _get, _set
    _get = descriptor.__get__
    _set = descriptor.__set__


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
        return _get(record)
    except AttributeError:  # never saved nor loaded (pydantic builds instances bare)
        return None


def set_snapshot(record: ActiveRecord, snapshot: Snapshot) -> None:
    """Set the record's snapshot (None: the record is new)."""
    _set(record, snapshot)


def mark_persisted(record: ActiveRecord) -> None:
    """The record is stored as it is now: its snapshot is a copy of its fields."""
    _set(record, dict(record.__dict__))


def mark_persisted_batch(records: Sequence[ActiveRecord], datas: Sequence[dict[str, Any]]) -> None:
    """``mark_persisted`` for many records, ``datas[i]`` being ``records[i].__dict__``: under
    ``validate_assignment`` the current ``__dict__`` itself is the snapshot (module docs)."""
    if not records:
        return
    if ASSIGNMENT_SWAPS_DICT and type(records[0]).model_config.get("validate_assignment"):
        deque(map(_set, records, datas), maxlen=0)
    else:
        deque(map(_set, records, map(dict, datas)), maxlen=0)


def snapshots(records: Sequence[ActiveRecord]) -> list[Snapshot]:
    """Copies of the records' snapshots (None for new records), to put back later."""
    # Inlined (not ``snapshot_of``): batches of 100k feel each call.
    states: list[Snapshot] = []
    keep = states.append
    for record in records:
        try:
            snapshot = _get(record)
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


def mark_written(records: Sequence[ActiveRecord], written: Sequence[str]) -> None:
    """Mark only the ``written`` fields of each record as stored, as a write of those columns
    alone leaves them: every other field keeps its pending change (``changed_fields``). A
    record never read or saved before gets ``UNKNOWN`` for the fields not written."""
    names = tuple(written)
    get = itemgetter(*names, names[0])  # >= 2 names: always a tuple back
    for record in records:
        data = record.__dict__
        try:
            snapshot = _get(record)
        except AttributeError:
            snapshot = None
        snapshot = dict.fromkeys(data, UNKNOWN) if snapshot is None else snapshot.copy()
        snapshot.update(zip(names, get(data)))
        _set(record, snapshot)


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
        _set(record, snapshot)

    return restore


def _put_back_all(
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


def _put_back_filled(
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
    rollback, which is rare. As ``_put_back_all``: a field the user set since keeps its value,
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
            _set(record, snapshot)

    return restore


def _cut(records: list[ActiveRecord], datas: list[list[dict[str, Any]]]) -> Iterator[list[Any]]:
    """``records`` cut as ``datas`` is (one list per chunk)."""
    start = 0
    for ds in datas:
        yield records[start:start + len(ds)]
        start += len(ds)


#: How :meth:`Undo.written` marks records once the call succeeded: all their fields
#: (``ALL``), only some (a tuple of field names), or as new again (``GONE``: a delete).
ALL: tuple[str, ...] = ()
GONE = None


class Undo:
    """What a call puts back on the records it was given, and how it marks them persisted.

    ``active``: the call may change the records' fields before it knows it succeeded (an
    insert fills keys and defaults, an upsert reads stored values in); a failure puts them
    back. Every field an inserting call fills was None before (``filled``), and is None again
    after a failure; ``copies``: the writer changes more than that, so a copy of each record's
    fields is kept instead (``keep``). ``rollback_only``: the call changes nothing on the
    records until it succeeded (a delete, a batch update, or records the call builds itself
    and hands back only on success), so only a later rollback puts them back.

    Records are marked persisted only once the whole call has succeeded. That holds for every
    record of a sized input (``whole_call``); records from an iterator are marked chunk by
    chunk, and each written chunk's records are remembered by weak reference only
    (:class:`_Earlier`): a failure puts back those the caller still holds, and those it
    dropped need nothing (memory stays bounded by what the caller keeps).

    ``ambient``: the call runs inside a ``Transaction``, which may still roll back after the
    call succeeded. Copies of the records' snapshots are then kept, and :meth:`succeeded`
    returns the closure that puts the records back on that rollback (the writer registers it
    with ``on_rollback``). ``share``: snapshots may share the records' ``__dict__`` (see the
    module docs; a batch's records), else they are copies (a single record's).

    >>> undo = Undo.single(ambient=False)
    >>> data = {"id": None}
    >>> undo.filled([data], "id"); data["id"] = 7
    >>> undo.failed(); data
    {'id': None}
    """

    def __init__(
        self, *, active: bool, whole_call: bool, copies: bool, ambient: bool = False,
        rollback_only: bool = False, share: bool = True,
    ) -> None:
        self.active = active
        self.whole_call = whole_call
        self.share = share
        self.ambient = ambient and (active or rollback_only) and whole_call
        #: A later rollback puts back records given to a writer that only fills fields which
        #: were None (an insert): from what ``filled`` heard, no copies needed.
        self.light = self.ambient and active and not copies
        self.copies = (copies and active) or (self.ambient and not self.light)
        #: Written chunks of an iterator's records, weakly (None: a sized input, or records
        #: the call builds, which a failed call never hands back).
        self._earlier = _Earlier(track_rollback=ambient) if active and not whole_call else None
        #: Mark records only once the call succeeded, even those it built (a chunk's keys
        #: stand only when the statement streaming it has ended).
        self.defer_marks = False
        self._filled: list[tuple[Sequence[dict[str, Any]], str]] = []
        self._saved: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
        self._snapshots: list[list[Snapshot]] = []
        self._pending: list[
            tuple[list[ActiveRecord], list[dict[str, Any]], tuple[str, ...] | None]
        ] = []

    @classmethod
    def single(cls, *, ambient: bool, copies: bool = False, rollback_only: bool = False) -> Undo:
        """The undo of a write of one record (``save``, ``delete``, a soft delete)."""
        return cls(
            active=not rollback_only, whole_call=True, copies=copies, ambient=ambient,
            rollback_only=rollback_only, share=False,
        )

    @property
    def remembers_weakly(self) -> bool:
        """Whether written chunks are remembered by weak references (an iterator's records)."""
        return self._earlier is not None

    def start_chunk(self) -> None:
        """From an iterator, the chunk before is written and remembered weakly (see
        :meth:`written`): forget its strong references."""
        if not self.whole_call:
            self._filled.clear()
            self._saved.clear()

    def filled(self, dicts: Sequence[dict[str, Any]], fname: str) -> None:
        """The call is about to fill ``fname`` (None now) on each of ``dicts``."""
        if self.active and not self.copies:
            self._filled.append((dicts, fname))

    def keep(
        self,
        records: list[ActiveRecord],
        datas: list[dict[str, Any]],
        befores: list[dict[str, Any]] | None = None,
    ) -> None:
        """The records and their fields (their ``__dict__``) before the call touches them
        (``befores``: what to put back instead of copies of ``datas``)."""
        if self.copies:
            self._saved.append((datas, befores or list(map(dict.copy, datas))))
        if self.ambient:
            self._snapshots.append(snapshots(records))

    def written(
        self, instances: list[ActiveRecord], datas: list[dict[str, Any]],
        fields: tuple[str, ...] | None = ALL,
    ) -> None:
        """A chunk is written: its records are persisted once the call succeeds (from an
        iterator: now, and remembered weakly to be put back if the call fails later).
        ``fields``: only these were stored (``mark_written``); ``GONE``: the rows are gone,
        the records are new again."""
        if (self.active or self.ambient or self.defer_marks or fields != ALL) and self.whole_call:
            self._pending.append((instances, datas, fields))
            return
        if self._earlier is not None:
            self._earlier.remember(instances, datas, self._filled, self._saved)
        self._mark(instances, datas, fields)

    def _mark(
        self, instances: list[ActiveRecord], datas: list[dict[str, Any]],
        fields: tuple[str, ...] | None,
    ) -> None:
        if fields is GONE:
            deque(map(_set, instances, repeat(None)), maxlen=0)
        elif fields:
            mark_written(instances, fields)
        elif self.share:
            mark_persisted_batch(instances, datas)
        else:
            deque(map(_set, instances, map(dict, datas)), maxlen=0)

    def succeeded(self) -> Callable[[], None] | None:
        """Mark the records persisted; with ``ambient``, return what puts them back."""
        for instances, datas, fields in self._pending:
            self._mark(instances, datas, fields)
        restore = None
        if self._earlier is not None:
            if self._earlier.track_rollback and self._earlier:
                restore = self._earlier.put_back
            self._earlier = None
        if self.ambient and self._pending:
            records = [r for instances, _, _ in self._pending for r in instances]
            states = [s for kept in self._snapshots for s in kept]
            if self.light:
                restore = _put_back_filled(
                    records, [datas for _, datas, _ in self._pending], states, self._filled
                )
                self._filled = []
            else:
                befores = [c for _, copies in self._saved for c in copies]
                restore = _put_back_all(records, states, befores)
        self._pending.clear()
        self._saved.clear()
        self._snapshots.clear()
        return restore

    def failed(self) -> None:
        """Put the records back as they were before the call."""
        if self._earlier is not None:
            self._earlier.put_back()
            self._earlier = None
        for dicts, fname in reversed(self._filled):
            for data in dicts:
                data[fname] = None
        for datas, copies in self._saved:
            for data, copy in zip(datas, copies):
                data.clear()
                data.update(copy)
        self._filled.clear()
        self._saved.clear()
        self._snapshots.clear()
        self._pending.clear()


@dataclass(eq=False)
class _Kept:
    """One written chunk of an iterator's records, as :class:`_Earlier` keeps it: a weak
    reference to each record and, aligned with them, the fields the call changed on it, their
    values before (None: all None) and as written (None: not compared), and its snapshot."""

    refs: list[weakref.ref[ActiveRecord]]
    fields: list[tuple[str, ...]]
    befores: list[tuple[Any, ...] | None]
    written: list[tuple[Any, ...]] | None
    snapshots: list[Snapshot]

    def alive(self) -> list[int]:
        return [n for n, ref in enumerate(self.refs) if ref() is not None]

    def only(self, keep: list[int]) -> _Kept:
        def pick(values: list[Any]) -> list[Any]:
            return [values[n] for n in keep]

        return _Kept(
            pick(self.refs), pick(self.fields), pick(self.befores),
            None if self.written is None else pick(self.written), pick(self.snapshots),
        )


class _Earlier:
    """The written chunks of an iterator's records, each record held by a weak reference
    with what the call changed on it (:class:`_Kept`). A record that died needs nothing; dead
    references are swept as chunks are added, so memory follows the records the caller
    keeps, not the input's length. ``track_rollback``: the records are put back on a later
    rollback of the ambient transaction too, where a field the user set since is left alone
    (so the values written are kept to compare)."""

    def __init__(self, *, track_rollback: bool) -> None:
        self.track_rollback = track_rollback
        self._chunks: list[_Kept] = []
        self._held = 0
        self._swept_at = 0

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def remember(
        self,
        records: list[ActiveRecord],
        datas: list[dict[str, Any]],
        filled: list[tuple[Sequence[dict[str, Any]], str]],
        saved: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]],
    ) -> None:
        """A chunk's records as written, before they are marked persisted (the caller rests
        the collector: a weak reference is a tracked object)."""
        refs = list(map(weakref.ref, records))
        if saved:  # whole copies of the fields before (an upsert): what changed, per record
            kept = self._changed(refs, records, datas, saved)
        else:
            kept = self._filled(refs, datas, filled)
        self._chunks.append(kept)
        self._held += len(records)
        if self._held > 2 * self._swept_at + 10_000:
            self._sweep()

    @staticmethod
    def _changed(
        refs: list[weakref.ref[ActiveRecord]], records: list[ActiveRecord],
        datas: list[dict[str, Any]],
        saved: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]],
    ) -> _Kept:
        copies = {id(d): b for ds, bs in saved for d, b in zip(ds, bs)}
        fields: list[tuple[str, ...]] = []
        befores: list[tuple[Any, ...] | None] = []
        written: list[tuple[Any, ...]] = []
        for data in datas:
            before = copies.get(id(data), {})
            moved = tuple(
                f for f, v in data.items() if f in before and v is not before[f] and v != before[f]
            )
            fields.append(moved)
            befores.append(tuple(before[f] for f in moved))
            written.append(tuple(data[f] for f in moved))
        return _Kept(refs, fields, befores, written, list(map(snapshot_of, records)))

    def _filled(
        self, refs: list[weakref.ref[ActiveRecord]], datas: list[dict[str, Any]],
        filled: list[tuple[Sequence[dict[str, Any]], str]],
    ) -> _Kept:
        # A batch insert takes new records: each is new again when put back. (Reading every
        # record's snapshot would cost more than the insert: an unset slot raises.)
        n = len(datas)
        common = tuple(dict.fromkeys(f for ds, f in filled if len(ds) == n))
        some: dict[int, list[str]] = {}
        for ds, fname in filled:
            if len(ds) != n:
                for d in ds:
                    some.setdefault(id(d), []).append(fname)
        if some:
            fields = [common + tuple(some.get(id(d), ())) for d in datas]
        else:
            fields = [common] * n
        nothing: list[Any] = [None] * n
        values: list[tuple[Any, ...]] | None = None
        if self.track_rollback:
            if some or len(common) != 1:
                values = [tuple(map(d.__getitem__, f)) for d, f in zip(datas, fields)]
            else:
                values = list(zip(map(itemgetter(common[0]), datas)))
        return _Kept(refs, fields, nothing, values, nothing)

    def _sweep(self) -> None:
        """Forget the records nobody holds any more."""
        chunks = []
        for kept in self._chunks:
            alive = kept.alive()
            if len(alive) == len(kept.refs):
                chunks.append(kept)
            elif alive:
                chunks.append(kept.only(alive))
        self._chunks = chunks
        self._held = self._swept_at = sum(len(k.refs) for k in chunks)

    def put_back(self) -> None:
        """Put every record still alive back as it was before the call."""
        chunks, self._chunks = self._chunks, []
        for kept in reversed(chunks):
            written: Iterable[tuple[Any, ...] | None] = (
                repeat(None) if kept.written is None else kept.written
            )
            rows = zip(kept.refs, kept.fields, kept.befores, written, kept.snapshots)
            for ref, fields, befores, values, snapshot in rows:
                record = ref()
                if record is None:
                    continue
                data = record.__dict__
                olds = repeat(None) if befores is None else befores
                if values is None:  # the call failed: nobody changed them since
                    for fname, old in zip(fields, olds):
                        data[fname] = old
                else:
                    for fname, old, value in zip(fields, olds, values):
                        current = data.get(fname)
                        if current is value or current == value:
                            data[fname] = old
                _set(record, snapshot)
