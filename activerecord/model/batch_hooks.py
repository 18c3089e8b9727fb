"""Batch hooks: the calls a batch write makes around each chunk (:class:`BatchHooks`), made
only for a model that defines a hook, and the query writers' hooks (:func:`query_hook`).

The hook methods themselves and their order are in :mod:`activerecord.model.callbacks`.

Example::

    >>> from activerecord import ActiveRecord
    >>> class Tally(ActiveRecord):
    ...     __table_name__ = "doc_bh_tallies"
    ...     id: int | None = None
    >>> batch_hooks(Tally, "insert", []) is None, query_hook(Tally, "before_query_update")
    (True, None)
    >>> class Audited(ActiveRecord):
    ...     __table_name__ = "doc_bh_audited"
    ...     id: int | None = None
    ...     def before_save(self) -> None:
    ...         pass
    >>> type(batch_hooks(Audited, "insert", [])).__name__
    'BatchHooks'
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from itertools import repeat
from typing import Any

from ..arguments import is_collection
from ..backend.transaction import after_commit, commit_tracked, on_rollback
from . import callbacks as cb
from .awaiting import awaiting, is_async
from .callbacks import HookMethods, hooks_of, refuse_async
from .deferred import Assignments, deferred, put_back

__all__ = ["BATCH_HOOKS", "BatchHooks", "batch_hooks", "query_hook", "run_all"]

#: The batch hooks (classmethods), by write: (before, after).
BATCH_HOOKS = {
    "insert": ("before_batch_insert", "after_batch_insert"),
    "update": ("before_batch_update", "after_batch_update"),
    "upsert": ("before_batch_upsert", "after_batch_upsert"),
}

#: The instance hooks the default batch hooks of each write run.
_INSTANCE = {
    "insert": (*cb.CREATE_BEFORE, *cb.CREATE_AFTER, *cb.ENDING),
    "update": (*cb.UPDATE_BEFORE, *cb.UPDATE_AFTER, *cb.ENDING),
    "upsert": (*cb.UPSERT_BEFORE, *cb.UPSERT_AFTER, *cb.ENDING),
}

_dict_of = operator.attrgetter("__dict__")
_BATCH_CACHE = "__ar_batch_hooks__"


def _has_batch_hooks(model: type[Any], kind: str) -> bool:
    """True when ``model`` defines an instance hook or overrides a batch hook of ``kind``."""
    cached: dict[str, bool] | None = model.__dict__.get(_BATCH_CACHE)
    if cached is None:
        cached = {}
        type.__setattr__(model, _BATCH_CACHE, cached)
    found = cached.get(kind)
    if found is None:
        base = {name: HookMethods.__dict__[name].__func__ for name in BATCH_HOOKS[kind]}
        found = bool(hooks_of(model)) or any(
            getattr(model, name).__func__ is not fn for name, fn in base.items()
        )
        cached[kind] = found
    return found


class BatchHooks:
    """The hook calls of one batch write, per chunk (built only for a model with hooks).

    ``before(chunk)`` remembers the records' values, so a failed call gives every record back
    what it had (also the values a hook changed), registers the records' ``after_rollback``
    (it fires only once ``succeeded()`` was called: a failed call rolls back its own work) and
    runs the before hook on the chunk's list; ``after(chunk)`` runs the after hook and
    registers the records' ``after_commit``. Both run inside the call's transaction.
    """

    def __init__(self, model: type[Any], kind: str, *, whole_call: bool) -> None:
        self.model = model
        self.before_hook, self.after_hook = (
            _callable(model, name) for name in BATCH_HOOKS[kind]
        )
        hooks = hooks_of(model)
        self.committed = hooks.get("after_commit", ())
        self.rolled_back = hooks.get("after_rollback", ())
        self.whole_call = whole_call
        # Under validate_assignment pydantic gives a record a new __dict__ on each assignment,
        # so the dict before the hook is kept as is (no copy per record): a hook's changes
        # never reach it, and the fields the library fills in place the undo puts back.
        self.copies = not model.model_config.get("validate_assignment")
        self.records: list[Any] = []
        self.dicts: list[dict[str, Any]] = []
        #: The assignments the before hooks made in place (model/deferred.py), to put back.
        self.assigned = Assignments()
        #: Records of the call seen so far: where the chunk starts in the input.
        self.seen = 0
        self.wrote = False
        #: The after hook's arguments past the list, asked after each chunk (upsert: its result).
        self.extra: Callable[[], tuple[Any, ...]] | None = None
        #: Insert-or-ignore: the after hooks and after_commit see only the rows inserted.
        self.only_kept = False

    def before(self, chunk: list[Any], *args: Any) -> None:
        if not self.whole_call:  # an iterator's earlier chunks are not kept (bounded memory)
            self.records.clear()
            self.dicts.clear()
            self.assigned.clear()
        if all(map(hasattr, chunk, repeat("__dict__"))):  # else the writer refuses the chunk
            self.records.extend(chunk)
            dicts = map(_dict_of, chunk)
            self.dicts.extend(map(dict, dicts) if self.copies else dicts)
        db = self.model.database()
        if self.rolled_back and commit_tracked(db):
            records, rolled_back = list(chunk), self.rolled_back

            def rollback() -> None:
                if self.wrote:
                    run_all(records, rolled_back)

            # Registered before the write's put-back, so it runs after it (newest first).
            on_rollback(rollback, db)
        offset, self.seen = self.seen, self.seen + len(chunk)
        self.assigned.extend(
            deferred(self.model, chunk, offset, lambda: self.before_hook(chunk, *args))
        )

    def given(self, rows: list[Any], records: list[Any]) -> list[Any]:
        """The keys each dict row gives, with the fields the before hook changed on its
        record added (an upsert of dicts updates only the fields given): ``rows`` where no
        hook changed anything."""
        befores = self.dicts[len(self.dicts) - len(records):]
        if len(befores) != len(records):  # nothing remembered: the rows as given
            return rows
        # Assignments made in place (deferred, model/deferred.py): the value before each.
        assigned: dict[int, dict[str, Any]] = {}
        for record, name, value in self.assigned:
            assigned.setdefault(id(record), {}).setdefault(name, value)
        out = []
        for row, record, before in zip(rows, records, befores):
            data = record.__dict__
            own = assigned.get(id(record))
            if own:
                before = {**before, **own}
            changed = [k for k, v in data.items() if k not in row and before.get(k, v) != v]
            out.append(dict.fromkeys([*row, *changed]) if changed else row)
        return out

    def after(self, chunk: list[Any], *args: Any, kept: Any = None) -> None:
        """Run the after hook on the chunk's records; ``kept`` (the positions the write
        inserted, or None for all) narrows them when ``only_kept`` (insert-or-ignore)."""
        if self.extra is not None:
            args = self.extra()
        if self.only_kept and kept is not None:
            chunk = [chunk[p] for p in sorted(kept)]
        self.after_hook(chunk, *args)
        db = self.model.database()
        if self.committed and commit_tracked(db):
            records, committed = list(chunk), self.committed
            after_commit(lambda: run_all(records, committed), db)

    def failed(self) -> None:
        for record, values in zip(self.records, self.dicts):
            data = record.__dict__
            if data is values:
                continue
            if self.copies:
                data.clear()
                data.update(values)
            else:
                object.__setattr__(record, "__dict__", values)
        put_back(self.assigned)  # into the dicts just given back
        self.succeeded()
        self.wrote = False

    def succeeded(self) -> None:
        self.wrote = True
        self.seen = 0
        self.records.clear()
        self.dicts.clear()
        self.assigned.clear()


def run_all(records: list[Any], fns: tuple[Callable[[Any], Any], ...]) -> None:
    """Each function on each record, in write order."""
    for record in records:
        for fn in fns:
            fn(record)


def batch_hooks(model: type[Any], kind: str, records: Any) -> BatchHooks | None:
    """The :class:`BatchHooks` of a batch write of ``kind``, or None for a model without
    hooks (the writers then make no call at all)."""
    if not _has_batch_hooks(model, kind):
        return None
    refuse_async(model, (*_INSTANCE[kind], *BATCH_HOOKS[kind]), f"batch_{kind}")
    return BatchHooks(model, kind, whole_call=is_collection(records))


def query_hook(model: type[Any], name: str) -> Callable[..., Any] | None:
    """``model``'s ``before_query_update`` / ``before_query_delete`` when it overrides it,
    else None (the query writers then call nothing). An ``async def`` one is awaited by
    ``aupdate()`` / ``adelete()`` and refused by the sync writers."""
    cached: dict[str, bool] | None = model.__dict__.get(_BATCH_CACHE)
    if cached is None:
        cached = {}
        type.__setattr__(model, _BATCH_CACHE, cached)
    found = cached.get(name)
    if found is None:
        found = getattr(model, name).__func__ is not HookMethods.__dict__[name].__func__
        cached[name] = found
    if not found:
        return None
    refuse_async(model, (name,), "update" if name == "before_query_update" else "delete")
    return _callable(model, name)


def _callable(model: type[Any], name: str) -> Callable[..., Any]:
    """The classmethod hook ``name`` of ``model``, an async one awaited (in the bridge)."""
    method: Callable[..., Any] = getattr(model, name)
    return awaiting(model.__name__, name, method) if is_async(method) else method
