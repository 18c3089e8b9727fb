"""Lifecycle callbacks: instance hooks run by ``save()``, ``delete()``, soft delete and restore.

A model defines a hook by overriding its method (call ``super()``) or by decorating any number
of methods with :func:`before_save` and its siblings. The writers ask :func:`hooks_of` once per
call; a model without hooks gets an empty mapping and the writers take their plain path, so it
pays one dictionary lookup.

Order (as Rails documents it): create runs ``before_validate``, ``before_save``,
``before_create``, the INSERT, ``after_create``, ``after_save``; update runs ``before_validate``,
``before_save``, ``before_update``, the UPDATE, ``after_update``, ``after_save``; delete runs
``before_delete``, the DELETE, ``after_delete``. The hooks and the write run in one transaction
(a savepoint inside an open one), so a hook that queries through the library sees the write and
an error in any hook rolls the write back. Once the outermost transaction commits,
``after_commit`` runs (only if SQL wrote the row); if the level the write belongs to rolls back,
``after_rollback`` runs, after the record has been put back.

Batch writes call classmethods once per chunk with the chunk's list
(:class:`~activerecord.model.batch_hooks.BatchHooks`): ``before_batch_insert`` /
``after_batch_insert``, ``before_batch_upsert`` / ``after_batch_upsert`` and
``before_batch_update`` / ``after_batch_update`` (every chunk's before hook, the write, every
chunk's after hook); by default they run each record's instance hooks, and they are only
called for a model that defines a hook. Dict writes (``batch_insert_from_dicts``, an upsert
of dicts) call them with the records built from each chunk's dicts; ``on_conflict="ignore"``
calls the insert hooks, the after ones with the rows inserted. The bulk path calls none
(Rails' ``insert_all``): dicts with ``return_records=False``, and the loaders. Query writes
ask ``before_query_update`` / ``before_query_delete``
(:func:`~activerecord.model.batch_hooks.query_hook`) for the query to run. In a batch's
before hook, assignments to the model's records are validated once per chunk and field
(:mod:`activerecord.model.deferred`).

Any hook may be ``async def``: the a-methods (``asave``, ``abatch_insert``, ...) run this same
code in the greenlet bridge and await it there; the sync ones refuse it before writing
(:mod:`activerecord.model.awaiting`).

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord, before_save
    >>> class Member(ActiveRecord):
    ...     __table_name__ = "doc_cb_members"
    ...     id: int | None = None
    ...     email: str
    ...     @before_save
    ...     def normalise(self) -> None:
    ...         self.email = self.email.strip().lower()
    >>> _ = activerecord.connect("sqlite://")
    >>> Member.create_table()
    >>> Member.find(Member.create(email=" Ann@Example.COM ").id).email
    'ann@example.com'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..backend.transaction import (
    Transaction,
    after_commit,
    commit_tracked,
    on_rollback,
)
from .awaiting import awaiting, is_async, refuse_outside_bridge

if TYPE_CHECKING:
    from .base import ActiveRecord

__all__ = [
    "INSTANCE_HOOKS",
    "HookMethods",
    "after_commit_hook",
    "after_create",
    "after_delete",
    "after_rollback",
    "after_save",
    "after_update",
    "before_create",
    "before_delete",
    "before_save",
    "before_update",
    "before_validate",
    "hooks_of",
    "refuse_async",
    "run_hooked",
]

R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

#: The instance hooks, in no particular order (the writers name the order).
INSTANCE_HOOKS = (
    "before_validate", "before_save", "after_save", "before_create", "after_create",
    "before_update", "after_update", "before_delete", "after_delete", "after_commit",
    "after_rollback",
)

#: The hooks around each instance write, in the order Rails documents.
CREATE_BEFORE = ("before_validate", "before_save", "before_create")
CREATE_AFTER = ("after_create", "after_save")
UPDATE_BEFORE = ("before_validate", "before_save", "before_update")
UPDATE_AFTER = ("after_update", "after_save")
DELETE_BEFORE = ("before_delete",)
DELETE_AFTER = ("after_delete",)
UPSERT_BEFORE = ("before_validate", "before_save")
UPSERT_AFTER = ("after_save",)
RESTORE_BEFORE = ("before_update",)
RESTORE_AFTER = ("after_update",)

#: The hooks that are classmethods: batch writes' and query writes'.
CLASS_HOOKS = (
    "before_batch_insert", "after_batch_insert", "before_batch_update", "after_batch_update",
    "before_batch_upsert", "after_batch_upsert", "before_query_update", "before_query_delete",
)
#: What every instance write may run besides its own hooks.
ENDING = ("after_commit", "after_rollback")

_MARK = "__ar_hook__"
_CACHE = "__ar_hooks__"
_ASYNC = "__ar_async_hooks__"

Hooks = Mapping[str, tuple[Callable[[Any], Any], ...]]


class HookMethods:
    """The hook methods every model has; each does nothing until a model overrides it.

    >>> from activerecord import ActiveRecord
    >>> class Doc(ActiveRecord):
    ...     __table_name__ = "doc_cb_docs"
    ...     id: int | None = None
    ...     def before_save(self) -> None:
    ...         super().before_save()
    >>> sorted(hooks_of(Doc))
    ['before_save']
    """

    __slots__ = ()

    def before_validate(self) -> None:
        """Runs first in ``save()``, before the record is validated and written."""

    def before_save(self) -> None:
        """Runs in ``save()`` of a new or an existing record, before the write."""

    def after_save(self) -> None:
        """Runs in ``save()`` after the write (keys and stamps are set), inside its transaction."""

    def before_create(self) -> None:
        """Runs in ``save()`` of a new record, after ``before_save``."""

    def after_create(self) -> None:
        """Runs in ``save()`` of a new record after the INSERT, before ``after_save``."""

    def before_update(self) -> None:
        """Runs in ``save()`` of an existing record (and ``restore()``), after ``before_save``."""

    def after_update(self) -> None:
        """Runs after the UPDATE of ``save()`` (and ``restore()``), before ``after_save``."""

    def before_delete(self) -> None:
        """Runs in ``delete()`` (soft or hard) before the row is deleted or marked."""

    def after_delete(self) -> None:
        """Runs in ``delete()`` after the row is deleted or marked."""

    def after_commit(self) -> None:
        """Runs once the outermost transaction that wrote this record has committed."""

    def after_rollback(self) -> None:
        """Runs when the transaction (or savepoint) that wrote this record rolls back."""

    @classmethod
    def before_query_update(cls, query: Any, values: dict[str, Any]) -> Any:
        """Runs before ``query().update(values)``: return the query to run
        (``query.where(...)`` to narrow it) or None for unchanged; ``values`` (a copy of the
        caller's) may be changed in place, e.g. to set an audit column."""
        return None

    @classmethod
    def before_query_delete(cls, query: Any) -> Any:
        """Runs before ``query().delete()`` and ``hard_delete()``: return the query to run,
        or None for unchanged."""
        return None

    @classmethod
    def before_batch_insert(cls, records: list[Any]) -> None:
        """Runs once per chunk of ``batch_insert`` before it is validated and written (for
        ``batch_insert_from_dicts``: with the records built and validated from the dicts).

        The default runs each record's ``before_validate``, ``before_save`` and
        ``before_create`` hooks (only called when the model defines a hook). Override it to
        do the same work over the whole list at once.
        """
        run_each(cls, records, CREATE_BEFORE)

    @classmethod
    def after_batch_insert(cls, records: list[Any]) -> None:
        """Runs once per chunk of ``batch_insert`` after it is written (keys are set; with
        ``on_conflict="ignore"`` only the rows inserted); the default runs each record's
        ``after_create`` and ``after_save`` hooks."""
        run_each(cls, records, CREATE_AFTER)

    @classmethod
    def before_batch_upsert(cls, records: list[Any]) -> None:
        """Runs once per chunk of ``batch_upsert`` before it is validated and written (for
        dicts: with the records built from them); whether each record is new is not known yet,
        so the default runs each record's ``before_validate`` and ``before_save`` hooks."""
        run_each(cls, records, UPSERT_BEFORE)

    @classmethod
    def after_batch_upsert(cls, records: list[Any], result: Any) -> None:
        """Runs once per chunk of ``batch_upsert`` after it is written (keys set), with the
        chunk's :class:`~activerecord.UpsertResult`; the default runs each record's
        ``after_save`` hooks."""
        run_each(cls, records, UPSERT_AFTER)

    @classmethod
    def before_batch_update(cls, records: list[Any], fields: list[str] | None) -> None:
        """Runs once per chunk of ``batch_update`` (``batch_size``, else the dialect's
        chunk) before the records are validated and written (``fields``: the names the
        caller gave, or None for the changed ones); the default runs each record's
        ``before_validate``, ``before_save`` and ``before_update`` hooks."""
        run_each(cls, records, UPDATE_BEFORE)

    @classmethod
    def after_batch_update(cls, records: list[Any], fields: list[str]) -> None:
        """Runs once per chunk after ``batch_update`` wrote ``fields`` (the names written) of
        every record, inside its transaction; the default runs each record's
        ``after_update`` and ``after_save`` hooks."""
        run_each(cls, records, UPDATE_AFTER)


def _decorator(name: str) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        setattr(fn, _MARK, name)
        return fn

    mark.__name__ = name
    mark.__qualname__ = name
    mark.__doc__ = (
        f"Register the decorated method as a ``{name}`` hook (several may be registered; "
        "they run in definition order, base classes first, after the overriding method)."
    )
    return mark


before_validate = _decorator("before_validate")
before_save = _decorator("before_save")
after_save = _decorator("after_save")
before_create = _decorator("before_create")
after_create = _decorator("after_create")
before_update = _decorator("before_update")
after_update = _decorator("after_update")
before_delete = _decorator("before_delete")
after_delete = _decorator("after_delete")
#: ``after_commit`` as a decorator (exported as ``activerecord.after_commit_hook``: the name
#: ``after_commit`` is the transaction-level function of :mod:`activerecord.backend.transaction`).
after_commit_hook = _decorator("after_commit")
after_rollback = _decorator("after_rollback")


def hooks_of(model: type[Any]) -> Hooks:
    """The hooks ``model`` defines: for each hook name, the functions to call with the record
    (the overriding method first, then the decorated ones). Empty for a model without hooks.
    Computed once per class."""
    cached: Hooks | None = model.__dict__.get(_CACHE)
    if cached is not None:
        return cached
    found: dict[str, list[Callable[[Any], Any]]] = {}
    for name in INSTANCE_HOOKS:
        method = getattr(model, name, None)
        if method is not None and method is not getattr(HookMethods, name):
            found.setdefault(name, []).append(method)
    attributes: dict[str, Any] = {}
    for klass in reversed(model.__mro__):  # a subclass's attribute replaces its base's
        attributes.update(klass.__dict__)
    for value in attributes.values():
        mark = getattr(value, _MARK, None)
        if isinstance(mark, str) and callable(value) and value not in found.get(mark, ()):
            found.setdefault(mark, []).append(value)
    found_async: dict[str, str] = {}
    for name, fns in found.items():
        for i, fn in enumerate(fns):
            if is_async(fn):  # awaited by the a-methods; the sync ones refuse it up front
                found_async.setdefault(name, getattr(fn, "__name__", repr(fn)))
                fns[i] = awaiting(model.__name__, name, fn)
    for name in CLASS_HOOKS:
        if is_async(getattr(model, name, None)):
            found_async.setdefault(name, name)
    hooks: Hooks = {name: tuple(fns) for name, fns in found.items()}
    type.__setattr__(model, _ASYNC, found_async)
    type.__setattr__(model, _CACHE, hooks)
    return hooks


def refuse_async(model: type[Any], names: tuple[str, ...], verb: str) -> None:
    """Refuse the sync ``verb`` (``"save"``) before it writes anything when one of the hooks
    ``names`` it runs is ``async def``: only its a-method (``asave``) can await it."""
    hooks_of(model)
    refuse_outside_bridge(model.__name__, model.__dict__[_ASYNC], names, verb)


def _run(record: ActiveRecord, fns: tuple[Callable[[Any], Any], ...]) -> None:
    for fn in fns:
        fn(record)


def run_hooked(
    record: ActiveRecord,
    hooks: Hooks,
    befores: tuple[str, ...],
    write: Callable[[], bool],
    afters: tuple[str, ...],
    verb: str,
) -> bool:
    """Run ``befores``, ``write`` and ``afters`` in one transaction (a savepoint if one is
    open); register ``after_commit`` / ``after_rollback`` when ``write`` wrote (returned True).

    If anything raises, the write is rolled back and the record gets back every value it had
    before the call (also those a ``before_*`` hook changed); the error propagates. An async
    hook among them refuses the sync ``verb`` before anything runs (see :func:`refuse_async`).
    """
    refuse_async(type(record), (*befores, *afters, *ENDING), verb)
    db = record.database()
    before = dict(record.__dict__)
    empty: tuple[Callable[[Any], Any], ...] = ()
    try:
        with Transaction(db):
            for name in befores:
                _run(record, hooks.get(name, empty))
            tracked = commit_tracked(db)
            wrote = False
            rolled_back = hooks.get("after_rollback")
            if rolled_back and tracked:
                # Registered before the write, so it runs after the write's own put-back
                # (rollback hooks run newest first): the hook sees the record as it was.
                def rollback() -> None:
                    if wrote:
                        _run(record, rolled_back)

                on_rollback(rollback, db)
            wrote = write()
            for name in afters:
                _run(record, hooks.get(name, empty))
            committed = hooks.get("after_commit")
            if committed and wrote and tracked:
                after_commit(lambda: _run(record, committed), db)
    except BaseException:
        data = record.__dict__
        data.clear()
        data.update(before)
        raise
    return wrote


def run_each(model: type[Any], records: list[Any], names: tuple[str, ...]) -> None:
    """Run the instance hooks ``names`` of each record in turn (the default batch hooks)."""
    hooks = hooks_of(model)
    fns = [fn for name in names for fn in hooks.get(name, ())]
    if not fns:
        return
    if len(fns) == 1:  # the usual: one hook, called over the list in a C loop
        deque(map(fns[0], records), maxlen=0)
        return
    for record in records:
        for fn in fns:
            fn(record)
