"""Record state: the one undo object every writer uses, over the persisted snapshot
(:mod:`.snapshot`), what puts records back on a rollback (:mod:`.put_back`) and an
iterator's records held weakly (:mod:`.weak_chunks`); their names are re-exported here.

Every writer (``save``, ``delete``, soft delete and restore, batch insert, upsert and batch
update) captures and puts back record state through one :class:`Undo`: before the write it
hears what the call is about to change on which records, a failed call puts them back as
they were (:meth:`Undo.failed`), and a successful one marks them persisted and hands back the
closure that puts them back if the ambient ``Transaction`` later rolls back
(:meth:`Undo.succeeded`, Rails' ``restore_transaction_record_state``).

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

from collections import deque
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

from . import snapshot as snap
from .put_back import put_back, put_back_all, put_back_filled
from .snapshot import (
    ASSIGNMENT_SWAPS_DICT,
    SLOT,
    UNKNOWN,
    Snapshot,
    bind_slot,
    mark_persisted,
    mark_persisted_batch,
    mark_written,
    set_snapshot,
    snapshot_of,
    snapshots,
)
from .weak_chunks import WeakChunks

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
    (:class:`WeakChunks`): a failure puts back those the caller still holds, and those it
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
        self._earlier = WeakChunks(track_rollback=ambient) if active and not whole_call else None
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
            deque(map(snap.set_slot, instances, repeat(None)), maxlen=0)
        elif fields:
            mark_written(instances, fields, datas)
        elif self.share:
            mark_persisted_batch(instances, datas)
        else:
            deque(map(snap.set_slot, instances, map(dict, datas)), maxlen=0)

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
            records = list(chain.from_iterable(instances for instances, _, _ in self._pending))
            states = list(chain.from_iterable(self._snapshots))
            if self.light:
                restore = put_back_filled(
                    records, [datas for _, datas, _ in self._pending], states, self._filled
                )
                self._filled = []
            else:
                befores = [c for _, copies in self._saved for c in copies]
                restore = put_back_all(records, states, befores)
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
