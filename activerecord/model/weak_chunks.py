"""An iterator's written records, held weakly: each chunk's records by weak reference with
what the call changed on them (:class:`Kept`), so a failure later in the call puts back the
records the caller still holds, and memory follows what the caller keeps, not the input's
length (:class:`WeakChunks`, which :class:`~activerecord.model.state.Undo` uses for an
iterator's records).

Example::

    >>> from activerecord import ActiveRecord
    >>> class Nut(ActiveRecord):
    ...     __table_name__ = "doc_nuts"
    ...     id: int | None = None
    >>> nut = Nut()
    >>> chunks = WeakChunks(track_rollback=False)
    >>> nut.__dict__["id"] = 3  # as an insert fills the key
    >>> chunks.remember([nut], [nut.__dict__], [([nut.__dict__], "id")], [])
    >>> chunks.put_back(); nut.id is None
    True
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from . import snapshot as snap
from .snapshot import Snapshot, snapshot_of

if TYPE_CHECKING:
    from .base import ActiveRecord

__all__ = ["Kept", "WeakChunks"]


@dataclass(eq=False)
class Kept:
    """One written chunk of an iterator's records, as :class:`WeakChunks` keeps it: a weak
    reference to each record and, aligned with them, the fields the call changed on it, their
    values before (None: all None) and as written (None: not compared), and its snapshot."""

    refs: list[weakref.ref[ActiveRecord]]
    fields: list[tuple[str, ...]]
    befores: list[tuple[Any, ...] | None]
    written: list[tuple[Any, ...]] | None
    snapshots: list[Snapshot]

    def alive(self) -> list[int]:
        return [n for n, ref in enumerate(self.refs) if ref() is not None]

    def only(self, keep: list[int]) -> Kept:
        def pick(values: list[Any]) -> list[Any]:
            return [values[n] for n in keep]

        return Kept(
            pick(self.refs), pick(self.fields), pick(self.befores),
            None if self.written is None else pick(self.written), pick(self.snapshots),
        )


class WeakChunks:
    """The written chunks of an iterator's records, each record held by a weak reference
    with what the call changed on it (:class:`Kept`). A record that died needs nothing; dead
    references are swept as chunks are added, so memory follows the records the caller
    keeps, not the input's length. ``track_rollback``: the records are put back on a later
    rollback of the ambient transaction too, where a field the user set since is left alone
    (so the values written are kept to compare)."""

    def __init__(self, *, track_rollback: bool) -> None:
        self.track_rollback = track_rollback
        self._chunks: list[Kept] = []
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
    ) -> Kept:
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
        return Kept(refs, fields, befores, written, list(map(snapshot_of, records)))

    def _filled(
        self, refs: list[weakref.ref[ActiveRecord]], datas: list[dict[str, Any]],
        filled: list[tuple[Sequence[dict[str, Any]], str]],
    ) -> Kept:
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
        return Kept(refs, fields, nothing, values, nothing)

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
                snap.set_slot(record, snapshot)
