"""The write engine's chunk loop: a frozen :class:`Plan` made once per call, then per chunk
prepare → write → mark.

Every batch write (insert, insert-or-ignore, upsert) is a *writer* on this loop: a function
that writes one prepared chunk (:data:`ChunkWriter`). The loop around it is the same for all:

* the plan says, before any input is read, what the call takes (instances or dicts, a sized
  collection or an iterator), what it hands back, how it puts records back (:class:`~
  activerecord.model.state.Undo`), whether rows may stay in a statement still open across
  chunks (a PostgreSQL ``COPY``: ``stream``), and the chunk size (the dialect's);
* three context managers hold what spans the chunks: :func:`located_errors` (driver errors as
  ours, with the failing record's index), :func:`_outcome` (a failure puts the records back,
  a success marks them and registers their put-back with the ambient transaction; in a
  transaction that holds marks, ``hold_marks``, both wait for its end) and
  :func:`_strategy` (the connection's insert strategy, and the open statement's end);
* each chunk is prepared (validated or key-checked, defaults filled: :mod:`.prepare`), written
  by the writer, its records marked persisted and counted in the progress.

The whole call is atomic: every chunk runs in one transaction (a savepoint inside an ambient
``Transaction``). Validation failures are collected over every chunk and raised as one
:class:`~activerecord.errors.BatchValidationError` (after the first, nothing more is written).

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Cup(ActiveRecord):
    ...     __table_name__ = "doc_cups"
    ...     id: int | None = None
    ...     size: int
    >>> _ = activerecord.connect("sqlite://")
    >>> Cup.create_table()
    >>> plan = Plan.make(Cup, [Cup(size=1)], context="batch insert of Cup", batch_size=None)
    >>> plan.whole_call, plan.from_dicts, plan.size
    (True, False, 10000)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Sized
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..arguments import check_size, is_collection
from ..backend import bridge
from ..backend.errors import refused_value_error, translate_error
from ..backend.transaction import (
    after_commit,
    holding_open,
    marks_held,
    on_rollback,
    tracks_rollback,
    write_connection,
)
from ..errors import BatchValidationError, error_context
from ..insert.locate import WriteFailed
from ..model.state import Undo
from ..optional import require
from ..validation import collector_paused
from .prepare import Preparer
from .strategies import InsertStrategy, strategy_for

if TYPE_CHECKING:
    from ..backend.database import Database
    from ..model import ActiveRecord
    from .hooks import ChunkHooks

__all__ = ["ChunkWriter", "Plan", "ProgressCallback", "chunks", "run"]

#: ``progress=`` may be a callable taking the number of rows done so far.
ProgressCallback = Callable[[int], Any]

#: Writes one prepared chunk: ``(connection, strategy, chunk as given, row dicts, offset of
#: the chunk's first record, undo)``; returns the positions (in the chunk) of the records the
#: call hands back, or None for all of them. ``undo`` hears of each field it fills on the dicts.
ChunkWriter = Callable[
    [sa.Connection, InsertStrategy, list[Any], list[dict[str, Any]], int, Undo],
    Collection[int] | None,
]

_dict_of = attrgetter("__dict__")


def chunks(items: Iterable[Any], size: int, *, ramp: bool = False) -> Iterator[list[Any]]:
    """Lists of ``size`` items; with ``ramp``, the first ones smaller (1/64, 1/16, 1/4 of it)
    so that the database starts on the first rows while the next chunk is prepared."""
    iterator = iter(items)
    sizes = [max(1, size // 64), max(1, size // 16), max(1, size // 4)] if ramp else []
    while True:
        chunk = list(itertools.islice(iterator, sizes.pop(0) if sizes else size))
        if not chunk:
            return
        yield chunk


@dataclass(frozen=True)
class Plan:
    """What one batch call does, decided once before any input is read."""

    model: type[ActiveRecord]
    #: The operation, as errors name it (``"batch insert of User"``).
    context: str
    #: Dicts in (records are built from them), else instances.
    from_dicts: bool
    #: A sized input (a list): marked and put back as a whole, else chunk by chunk.
    whole_call: bool
    validate: bool
    #: The records handed back (the inserted ones, in input order).
    return_records: bool
    #: Writers that change more than the fields they fill (an upsert) keep whole copies.
    copies: bool
    #: The writer may leave a chunk's rows in a statement still open across chunks.
    stream: bool
    #: Rows per chunk (the dialect's, unless ``batch_size`` was given).
    size: int
    #: ``batch_size`` was given: chunks are of that size from the first.
    size_given: bool
    hooks: ChunkHooks | None
    progress: bool | ProgressCallback
    #: Records in the input, when known (for the progress bar).
    total: int | None
    #: The records' ``__dict__``, read and type-checked by the caller (a graph insert),
    #: in input order: not read again.
    dicts: list[dict[str, Any]] | None = None

    @classmethod
    def make(
        cls, model: type[ActiveRecord], records: Iterable[Any], *, context: str,
        batch_size: int | None, validate: bool = True, progress: bool | ProgressCallback = False,
        from_dicts: bool = False, return_records: bool = True, copies: bool = False,
        stream: bool = False, hooks: ChunkHooks | None = None,
        dicts: list[dict[str, Any]] | None = None,
    ) -> Plan:
        check_size(batch_size)
        facts = model.database().facts
        # Bridged to asyncio, chunks are capped so the event loop gets its turns.
        size = batch_size or bridge.chunk_rows(facts.chunk_rows(len(model.__ar_info__.fields)))
        return cls(
            model, context, from_dicts, is_collection(records), validate, return_records,
            copies, stream, size, batch_size is not None, hooks, progress,
            len(records) if isinstance(records, Sized) else None, dicts,
        )

    @property
    def quiet(self) -> bool:
        """No user code runs between chunks: no generator input (which in ``using()`` may
        reach the caller's connection directly), validator, progress callback or hook."""
        return (
            not self.validate and not callable(self.progress) and self.whole_call
            and self.hooks is None
        )

    def undo(self, db: Database, *, held: bool = False) -> Undo:
        """How this call puts records back (see :class:`~activerecord.model.state.Undo`);
        ``held``: as the transaction's end says (:meth:`held`), no snapshots kept."""
        return Undo(
            active=not self.from_dicts, whole_call=self.whole_call, copies=self.copies,
            ambient=tracks_rollback(db) and not held,
            rollback_only=self.from_dicts and self.return_records,
        )

    def held(self, db: Database) -> bool:
        """Whether the records are marked persisted only when the ambient transaction
        commits, and put back by its rollback as by a failed call (``hold_marks``: the
        library's own transaction, no user code in it): a list of instances inserted
        without hooks, whose put-back is the fields the call filled (each None before)."""
        return (
            not self.from_dicts and not self.copies and self.whole_call
            and self.hooks is None and not callable(self.progress) and marks_held(db)
        )


class _Progress:
    """A tqdm bar (``progress=True``; notebooks detected by ``tqdm.auto``) or a callback."""

    def __init__(self, progress: bool | ProgressCallback, total: int | None, name: str) -> None:
        self.callback: ProgressCallback | None = None
        self.bar: Any = None
        self.done = 0
        if callable(progress):
            self.callback = progress
        elif progress:
            tqdm = require("tqdm.auto", extra="progress", what="progress=True").tqdm
            self.bar = tqdm(total=total, unit="rows", desc=f"insert {name}")

    def advance(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(self.done)
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def located_errors(context: str, model: str | None = None) -> Iterator[None]:
    """A batch write's driver errors raised as ours, with ``context`` (the operation in words,
    ``"batch insert of User"``) in the message and the failing record's index where a
    strategy located it (``WriteFailed``); every error of ours leaving the block gets the
    operation (``"batch_insert"``) and the model (:func:`error_context`; not the context: a
    validation error's message names the model and records already)."""
    operation = context.split(" of ")[0].replace(" ", "_")
    with error_context(operation=operation, model=model):
        with _translated(context):
            yield


@contextmanager
def _translated(context: str) -> Iterator[None]:
    try:
        yield
    except WriteFailed as exc:
        raise translate_error(exc.orig, context=context, record_index=exc.row) from exc.orig
    except sa.exc.DBAPIError as exc:
        raise translate_error(exc, context=context) from exc
    except sa.exc.StatementError as exc:  # a value a column's processor refused
        error = refused_value_error(exc, context=context)
        if error is None:
            raise
        raise error from exc


@contextmanager
def _outcome(plan: Plan, undo: Undo, db: Database, held: bool) -> Iterator[None]:
    """A failure puts the records back (and tells the hooks); a success marks them persisted
    and registers with the ambient transaction what puts them back on its rollback (``held``:
    its end marks them, or puts them back as this failure would)."""
    try:
        yield
    except BaseException:
        undo.failed()
        if plan.hooks is not None:
            plan.hooks.failed()
        raise
    if held:
        after_commit(undo.succeeded, db)
        on_rollback(undo.failed, db)
        return
    if plan.hooks is not None:
        plan.hooks.succeeded()
    restore = undo.succeeded()
    if restore is not None:
        on_rollback(restore, db)


@contextmanager
def _strategy(
    plan: Plan, conn: sa.Connection, undo: Undo, db: Database
) -> Iterator[InsertStrategy]:
    """The connection's insert strategy for the call; a streaming one may keep a statement
    open across chunks only where nothing else uses the connection meanwhile without ending
    it first (``holding_open``), or nothing can (a ``quiet`` plan)."""
    info = plan.model.__ar_info__
    strategy = strategy_for(conn, info, db.facts)
    with ExitStack() as guard:
        if plan.stream and strategy.streams:
            strategy.may_stream = guard.enter_context(
                holding_open(db, strategy.pending)
            ) or plan.quiet
            undo.defer_marks = strategy.may_stream
        try:
            yield strategy
        finally:
            strategy.close()


def run(plan: Plan, records: Iterable[Any], write: ChunkWriter) -> tuple[int, list[Any]]:
    """Run ``write`` over the chunks of ``records`` as ``plan`` says; returns the records
    counted and, with ``return_records``, the records handed back, in input order."""
    db = plan.model.database()
    bar = _Progress(plan.progress, plan.total, plan.model.__name__)
    held = plan.held(db)
    undo = plan.undo(db, held=held)
    out: list[Any] = []
    failures: dict[int, list[Any]] = {}
    prepare = Preparer(plan.model, validate=plan.validate, from_dicts=plan.from_dicts,
                       return_records=plan.return_records, build=plan.hooks is not None,
                       dicts=plan.dicts)
    try:
        with located_errors(plan.context, plan.model.__name__), _outcome(plan, undo, db, held):
            with write_connection(db, statements=2) as conn, \
                    _strategy(plan, conn, undo, db) as strategy:
                ramp = strategy.may_stream and not plan.size_given  # else as asked
                offset = 0
                for chunk in chunks(records, plan.size, ramp=ramp):
                    # The collector rests while a chunk is validated and written: the records
                    # validation builds are no cycles, and those nobody gets back are freed
                    # before it runs again. So it does while an iterator's records are
                    # written and remembered weakly (one weak reference each).
                    with collector_paused() if plan.validate or undo.remembers_weakly \
                            else nullcontext():
                        out += _chunk(plan, conn, strategy, prepare, undo, write, chunk,
                                      offset, failures)
                    if not failures:
                        bar.advance(len(chunk))
                    offset += len(chunk)
                if failures:
                    raise BatchValidationError(plan.model.__name__, failures)
                strategy.finish()
    finally:
        bar.close()
    return bar.done, out


def _chunk(
    plan: Plan, conn: sa.Connection, strategy: InsertStrategy, prepare: Preparer, undo: Undo,
    write: ChunkWriter, chunk: list[Any], offset: int, failures: dict[int, list[Any]],
) -> list[Any]:
    """Prepare → write → mark one chunk; the records it hands back."""
    hooks = plan.hooks
    undo.start_chunk()
    if hooks is not None and not plan.from_dicts:
        hooks.before(chunk)
    datas, instances = prepare(chunk, offset, failures, undo)
    given = chunk
    if hooks is not None and plan.from_dicts and instances is not None and not failures:
        # Dicts have no records before they are prepared: their hooks get the records built
        # (and validated) from them, then the rows are read off the records again (a hook's
        # assignment may give a record a new __dict__).
        hooks.before(instances)
        datas = list(map(_dict_of, instances))
        given = hooks.given(chunk, instances)
    if failures:
        return []
    kept = write(conn, strategy, given, datas, offset, undo)
    if hooks is not None:
        hooks.after(chunk if instances is None else instances, kept=kept)
    if instances is None or not (plan.return_records or not plan.from_dicts):
        return []
    undo.written(instances, datas)
    if not plan.return_records:
        return []
    return instances if kept is None else [instances[p] for p in sorted(kept)]
