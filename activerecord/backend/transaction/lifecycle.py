"""Opening and ending: BEGIN with the session settings, savepoints, COMMIT or ROLLBACK, hooks
run at the end, and the connection back to the pool as it was lent.

A failure anywhere leaves no half-open transaction behind: a connection that cannot be
reset or rolled back is invalidated rather than pooled, and a transaction whose savepoint
could not be rolled back (the server ended it) refuses to commit.

Example::

    >>> import activerecord
    >>> db = activerecord.connect("sqlite://")
    >>> frame = begin(db, isolation_level=None, read_only=False, fragment_rows=None)
    >>> frame.depth, frame.conn.in_transaction()
    (0, True)
    >>> end_transaction(frame, None, failed=False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ...errors import ConfigurationError, DatabaseError, TransactionConflictError
from ..database import Database, checkout
from ..errors import translate_error
from .frames import Entry, Frame, frames_var
from .hooks import drop_hooks, lift_hooks, run_hooks, run_rollback_hooks
from .retry import is_retryable

__all__ = ["begin", "end_savepoint", "end_transaction", "open_savepoint", "release"]


def begin(
    db: Database, *, isolation_level: str | None, read_only: bool, fragment_rows: int | None
) -> Frame:
    """Check out a connection, begin the outermost transaction with its settings and make it
    this task's frame on ``db``."""
    setup = db.facts.transaction_setup(isolation_level, read_only)
    streaming: tuple[sa.TextClause, ...] = ()
    reset = setup.reset
    if fragment_rows is not None:
        streaming, undo = db.facts.fragment_setup(fragment_rows)
        reset = reset + undo
    conn = checkout(db)
    try:
        conn.begin()
        for clause in streaming:  # session settings: before the transaction writes
            conn.execute(clause)
        for statement in setup.begin:
            conn.exec_driver_sql(statement)
    except BaseException as exc:
        release(conn, reset, failed=True)
        if isinstance(exc, sa_exc.DBAPIError):
            raise translate_error(exc, context="cannot begin a transaction") from exc
        raise
    frame = Frame(db, conn, isolation_level, read_only, reset, fragment_rows=fragment_rows)
    open_frames = dict(frames_var.get() or {})
    open_frames[db.name] = frame
    frames_var.set(open_frames)
    return frame


def open_savepoint(
    frame: Frame, *, isolation_level: str | None, read_only: bool, fragment_rows: int | None
) -> sa.NestedTransaction:
    """A savepoint on ``frame``'s connection, one level deeper; the settings of a nested
    ``Transaction`` may only repeat the outermost one's."""
    if fragment_rows not in (None, frame.fragment_rows):
        raise ConfigurationError(
            "fragment_rows applies to the outermost Transaction; a nested one cannot "
            f"change it (outer: {frame.fragment_rows})"
        )
    if isolation_level not in (None, frame.isolation_level) or (
        read_only and not frame.read_only
    ):
        raise ConfigurationError(
            "isolation_level and read_only apply to the outermost Transaction; a nested "
            f"one cannot change them (outer: {frame.isolation_level}, "
            f"read_only={frame.read_only})"
        )
    try:
        savepoint = frame.connection().begin_nested()
    except sa_exc.DBAPIError as exc:
        raise translate_error(exc, context="cannot open a savepoint") from exc
    frame.depth += 1
    return savepoint


def end_savepoint(entry: Entry, exc: BaseException | None) -> None:
    """Release the entry's savepoint (``exc`` is None) or roll it back, moving its hooks."""
    frame, savepoint, depth = entry.frame, entry.savepoint, entry.depth
    assert savepoint is not None
    frame.depth = depth - 1
    if exc is None:
        try:
            savepoint.commit()
        except sa_exc.DBAPIError as err:
            # SQLAlchemy leaves a savepoint whose RELEASE failed attached to the connection:
            # detach it (no SQL is sent for an inactive one), or the enclosing savepoint's
            # rollback warns "nested transaction already deassociated from connection".
            try:
                savepoint.rollback()
            except Exception:  # noqa: BLE001, S110 - the release error is the one to raise
                pass
            # A conflict there (a Galera certification failure lands on any statement) rolled
            # the whole transaction back: the enclosing levels must not commit what is left.
            frame.broken = err
            drop_hooks(frame, depth)
            # Whether the work is still there is unknown: restore if the enclosing level
            # rolls back (the usual outcome of this error).
            lift_hooks(frame.rollback_hooks, frame, depth)
            raise translate_error(err, context="cannot release a savepoint") from err
        lift_hooks(frame.hooks, frame, depth)  # released work belongs to the enclosing level
        lift_hooks(frame.rollback_hooks, frame, depth)
        return
    drop_hooks(frame, depth)
    undo = [hook for hook in frame.rollback_hooks if hook[0] >= depth]
    frame.rollback_hooks[:] = [hook for hook in frame.rollback_hooks if hook[0] < depth]
    try:
        if savepoint.is_active:
            savepoint.rollback()
    except Exception as err:  # noqa: BLE001 - the original exception must propagate
        # E.g. MySQL rolls the whole transaction back on a deadlock and forgets its
        # savepoints: the outer transaction must not commit what is left.
        frame.broken = err if not is_retryable(exc) else exc
    run_rollback_hooks([hook for _depth, hook in undo])


def end_transaction(frame: Frame, exc: BaseException | None, *, failed: bool) -> None:
    """Commit the outermost transaction (or roll it back when ``failed`` or broken), give
    the connection back, then run the hooks of the outcome."""
    open_frames = dict(frames_var.get() or {})
    if open_frames.get(frame.db.name) is frame:
        del open_frames[frame.db.name]
        frames_var.set(open_frames)
    conn = frame.conn
    hooks: list[Callable[[], Any]] = []
    committed = False
    try:
        if not failed and frame.broken is None:
            try:
                conn.commit()
            except sa_exc.DBAPIError as err:
                failed = True
                _rollback_after_failed_commit(conn)
                raise translate_error(err, context="commit failed") from err
            committed = True
            hooks = [hook for _depth, hook in frame.hooks]
        else:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - the original exception matters more
                _invalidate(conn)
            if not failed and frame.broken is not None:
                failed = True
                kind = TransactionConflictError if is_retryable(frame.broken) else DatabaseError
                raise kind(
                    "cannot commit: a savepoint could not be rolled back, so the database "
                    f"rolled the transaction back ({frame.broken})"
                ) from frame.broken
    finally:
        try:
            release(conn, frame.reset, failed=failed)
        finally:
            if not committed:  # rolled back, or a commit that failed
                run_rollback_hooks([hook for _depth, hook in frame.rollback_hooks])
            frame.rollback_hooks.clear()
    run_hooks(hooks)


def _rollback_after_failed_commit(conn: sa.Connection) -> None:
    """End the transaction a refused COMMIT left open, so the pool gets a clean connection.

    SQLite keeps the transaction (and its write lock) open when COMMIT fails on a deferred
    constraint, while SQLAlchemy counts the transaction as ended and tells the pool there is
    nothing to roll back. A connection that cannot even roll back is thrown away.
    """
    if conn.invalidated:
        return
    try:
        conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - the commit's error is the one to report
        _invalidate(conn)


def _invalidate(conn: sa.Connection) -> None:
    try:
        conn.invalidate()
    except Exception:  # noqa: BLE001, S110 - best effort on a connection already broken
        pass


def release(conn: sa.Connection, reset: tuple[str, ...], *, failed: bool) -> None:
    """Undo connection-wide settings, then give the connection back to the pool."""
    try:
        if reset and not conn.invalidated:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                for statement in reset:
                    cursor.execute(statement)
            finally:
                cursor.close()
    except Exception:  # noqa: BLE001 - never pool a connection we could not reset
        _invalidate(conn)
    try:
        conn.close()
    except Exception:
        if not failed:
            raise
