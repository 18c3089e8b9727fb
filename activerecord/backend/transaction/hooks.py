"""What runs when a transaction ends: ``after_commit`` hooks and the ``on_rollback`` restores.

Each hook is kept as ``[depth, hook]`` on the frame of the transaction it was registered in:
released savepoints hand their hooks to the enclosing level (:func:`lift_hooks`), rolled back
ones drop theirs (:func:`drop_hooks`) and run their restores.

Example::

    >>> import activerecord
    >>> from activerecord import Transaction
    >>> _ = activerecord.connect("sqlite://")
    >>> with Transaction():
    ...     after_commit(lambda: print("committed"))
    committed
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import ConfigurationError
from ...log import logger
from ..database import Database
from .frames import Frame, frame_of, resolve_database

__all__ = [
    "after_commit",
    "commit_tracked",
    "drop_hooks",
    "hold_marks",
    "lift_hooks",
    "marks_held",
    "on_rollback",
    "run_hooks",
    "run_rollback_hooks",
    "tracks_rollback",
]


def after_commit(fn: Callable[[], Any], target: Any = None) -> None:
    """Run ``fn`` once the outermost transaction has committed; drop it on rollback.

    A hook registered inside a savepoint is dropped if that savepoint rolls back. Hooks run
    in registration order, outside the transaction (the connection is back in the pool). If
    one raises, the others still run and the first exception is raised afterwards; the data
    stays committed. Outside a transaction ``fn`` runs at once.

    >>> import activerecord
    >>> from activerecord import Transaction
    >>> _ = activerecord.connect("sqlite://")
    >>> with Transaction():
    ...     after_commit(lambda: print("committed"))
    ...     print("inside")
    inside
    committed
    """
    frame = frame_of(resolve_database(target), io=False)
    if frame is None:
        fn()
    elif frame.external:
        raise ConfigurationError(
            "after_commit is not available inside using(): the caller's connection or "
            "session decides when to commit; register the hook with it instead"
        )
    else:
        frame.hooks.append([frame.depth, fn])


def commit_tracked(db: Database) -> bool:
    """True when the library will see this work commit or roll back (internal): outside any
    transaction, or inside one of ours; False inside ``using()``, whose caller commits."""
    frame = frame_of(db)
    return frame is None or not frame.external


def tracks_rollback(db: Database) -> bool:
    """True when :func:`on_rollback` would keep a hook for ``db`` now (internal).

    Writers ask first, so they capture what a restore needs only when it can be used.
    """
    frame = frame_of(db)
    return frame is not None and not (frame.external and frame.depth == 0)


def hold_marks(db: Database) -> bool:
    """In the outermost transaction on ``db``, opened by the library for one call of its own
    in which no user code runs (a graph insert, ``activerecord.associations.graph``): let
    the batch inserts in it mark their records persisted only once it commits, and have its
    rollback put them back as a failed insert does (internal). No snapshot of the records is
    kept for that: nothing marks them before the end, and nothing else sees them meanwhile.
    Returns False, changing nothing, inside a savepoint or ``using()``, where the records
    must be marked at once (the caller's code may look at them before the end).

    >>> import activerecord
    >>> from activerecord import Transaction
    >>> db = activerecord.connect("sqlite://")
    >>> with Transaction():
    ...     with Transaction():
    ...         nested = hold_marks(db)
    ...     print(nested, hold_marks(db), marks_held(db))
    False True True
    """
    frame = frame_of(db)
    if frame is None or frame.external or frame.depth != 0:
        return False
    frame.marks_held = True
    return True


def marks_held(db: Database) -> bool:
    """True inside a transaction that :func:`hold_marks` set (internal)."""
    frame = frame_of(db)
    return frame is not None and frame.marks_held


def on_rollback(fn: Callable[[], Any], db: Database) -> None:
    """Run ``fn`` if the work done so far at the current level is rolled back (internal).

    The library's writers register here the closures that put records back (Rails'
    ``rolledback!``). Only inside a ``Transaction`` of this thread or task; elsewhere (no
    transaction, or the caller's own unit of work at ``using()``'s level, whose rollback
    the library never sees) nothing is kept. A hook registered in a savepoint runs if that
    savepoint rolls back; once the savepoint is released it belongs to the enclosing level.
    The outermost rollback (or a failed commit) runs every hook left; a commit drops them.
    Hooks run newest first, after the database has rolled back; one that raises does not
    stop the others, nor hide the exception that caused the rollback (it is logged).

    >>> import activerecord
    >>> from activerecord import Transaction
    >>> db = activerecord.connect("sqlite://")
    >>> try:
    ...     with Transaction():
    ...         on_rollback(lambda: print("put back"), db)
    ...         raise KeyError("boom")
    ... except KeyError:
    ...     pass
    put back
    """
    frame = frame_of(db)
    if frame is not None and not (frame.external and frame.depth == 0):
        frame.rollback_hooks.append([frame.depth, fn])


def lift_hooks(hooks: list[list[Any]], frame: Frame, depth: int) -> None:
    """A savepoint at ``depth`` was released: its hooks now belong to the enclosing level
    (dropped at ``using()``'s own level, where no rollback is ever seen)."""
    if frame.external and depth == 1:
        hooks[:] = [hook for hook in hooks if hook[0] < depth]
        return
    for hook in hooks:
        if hook[0] >= depth:
            hook[0] = depth - 1


def drop_hooks(frame: Frame, depth: int) -> None:
    """The work at ``depth`` and deeper is gone: its ``after_commit`` hooks never run."""
    frame.hooks[:] = [hook for hook in frame.hooks if hook[0] < depth]


def run_rollback_hooks(hooks: list[Callable[[], Any]]) -> None:
    """Run ``on_rollback`` hooks newest first; log (never raise) their errors, so the
    exception that caused the rollback is the one that propagates."""
    for hook in reversed(hooks):
        try:
            hook()
        except Exception:
            logger.exception("an on_rollback hook failed: %r", hook)


def run_hooks(hooks: list[Callable[[], Any]]) -> None:
    """Run ``after_commit`` hooks in order: every one runs, the first error is raised."""
    first: Exception | None = None
    for hook in hooks:
        try:
            hook()
        except Exception as err:  # noqa: BLE001 - run every hook, raise the first error
            if first is None:
                first = err
    if first is not None:
        raise first
