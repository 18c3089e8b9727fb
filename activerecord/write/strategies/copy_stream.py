"""PostgreSQL's ``COPY`` kept open across a batch's chunks: the pending statement.

A batch of records on PostgreSQL sends chunk after chunk into one ``COPY`` (the client
formats the next chunk while the server writes the rows already sent). :class:`CopyStream`
is that statement's state machine, owned by the strategy:

* closed: nothing open; :meth:`CopyStream.send` opens one (:meth:`CopyStream.begin`), plain
  (rows as the shape gives them) or numbered (the first row takes ``first = nextval()`` by a
  COPY of its own, the rest leave their key to the server, all in one savepoint);
* open: more rows are sent into it (a shape or mode change, or ``copy_stream_rows`` rows
  sent, ends it and begins the next);
* settled (:meth:`CopyStream.settle`): the COPY ends, the server's verdict on every row;
  numbered, one ``currval()`` proves every key (else the rows are rolled back to the
  savepoint and written again with reserved keys);
* failed: the rows are gone; every later call fails the same way (code that saw the error
  first, a validator reaching the connection, may have swallowed it).

It is the :class:`~activerecord.backend.transaction.PendingStatement` of the batch: while it
is open nothing else may run on the connection, so the transaction flushes it (``flush``
settles it) before it hands the connection to other library code.

Example::

    >>> CopyStream.flush is not None
    True
"""

from __future__ import annotations

from bisect import bisect_right
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...backend.bridge import copy_context
from ...backend.dialects import PostgreSQLFacts
from ...insert.locate import WriteFailed
from ...insert.shape import InsertShape
from .base import Data, Locate

if TYPE_CHECKING:
    from .postgresql import PostgresCopyStrategy

__all__ = ["CopyStream", "OpenCopy", "forget_keys", "position"]


class CopyStream:
    """The COPY a :class:`~.postgresql.PostgresCopyStrategy` keeps open across calls."""

    def __init__(self, writer: PostgresCopyStrategy) -> None:
        self._writer = writer
        self._open: OpenCopy | None = None
        self._failure: WriteFailed | None = None

    def flush(self) -> None:
        """End the open COPY (see :meth:`settle`): the transaction's call before another
        statement runs on the connection."""
        self.settle()

    def send(
        self, shape: InsertShape, sent: InsertShape, data: Data, locate: Locate, numbered: bool
    ) -> None:
        """Send ``data`` (``sent``'s columns of ``shape``'s rows) into the open COPY, opening
        one first (ending the current one if it differs or is full)."""
        current = self._open
        if current is not None and (
            current.sent_shape is not sent or current.numbered != numbered
            or current.sent >= PostgreSQLFacts.copy_stream_rows
        ):
            self.settle()
        if self._open is None:
            self.begin(shape, sent, data, locate, numbered)
        else:
            opened = self._open
            opened.add(data, locate)
            self._send(opened, data)

    def begin(
        self, shape: InsertShape, sent: InsertShape, data: Data, locate: Locate, numbered: bool
    ) -> None:
        """Begin a stream with ``data``: numbered, its first row takes ``nextval()`` (sent by
        a COPY of its own, with the key) inside a savepoint the stream's rows share."""
        w = self._writer
        first = savepoint = None
        if numbered:
            w.move_sequence()
            first = w.conn.execute(sa.select(sa.func.nextval(w.sequence))).scalar_one()
            savepoint = w.conn.begin_nested()
        opened = OpenCopy(shape, sent, savepoint, first)
        opened.add(data, locate)
        try:
            if first is not None:
                w.copy_rows(shape, data[:1], [first])
                opened.sent = 1
            sql, oids = w.copy_statement(sent)
            opened.copy = opened.context.enter_context(copy_context(w.cursor.copy(sql)))
            opened.oids = oids
            if oids is not None:
                opened.copy.set_types(oids)
        except BaseException as exc:
            self._abandon(opened, exc)
            if isinstance(exc, WriteFailed):
                raise self._failed_stream(opened.located(exc.orig, exc.row)) from exc.orig
            raise
        self._open = opened
        self._send(opened, data[1:] if numbered else data)

    def _send(self, opened: OpenCopy, data: Data) -> None:
        """Write rows into the open COPY; numbered, each dict gets its key as it goes."""
        w = self._writer
        row = opened.sent_shape.row
        d: dict[str, Any] | None = None
        try:
            write_row = opened.copy.write_row
            if opened.first is None:
                for d in data:
                    write_row(row(d))
            else:
                pk = w.info.autoincrement_pk or ""
                start = opened.first + opened.sent
                for d, key in zip(data, range(start, start + len(data))):
                    d[pk] = key
                    write_row(row(d))
        except BaseException as exc:
            self._open = None
            self._abandon(opened, exc)
            if isinstance(exc, Exception) and w.row_at_fault(exc):
                at = position(data, d)
                refused = w.refused(exc, opened.sent_shape, opened.oids, d)
                located = opened.located(refused, None if at is None else opened.sent + at)
                raise self._failed_stream(located) from exc
            if isinstance(exc, Exception):
                raise self._failed_stream(self._stream_failed(opened, exc)) from exc
            raise
        opened.sent += len(data)

    def settle(self) -> None:
        """Finish the open COPY, if any: on return its rows are written and their keys
        exact; raises a located :class:`WriteFailed` (its rows' keys forgotten) if not."""
        w = self._writer
        self.raise_failure()
        opened = self._open
        if opened is None:
            return
        self._open = None
        try:
            opened.context.close()  # COPY ends: the server's verdict on every row sent
        except Exception as exc:
            self._abandon(opened, exc)
            raise self._failed_stream(self._stream_failed(opened, exc)) from exc
        if opened.first is None or opened.savepoint is None:
            return  # rows as given: nothing to prove
        try:
            last = w.conn.execute(sa.select(sa.func.currval(w.sequence))).scalar_one()
            if last == opened.first + opened.sent - 1:
                opened.savepoint.commit()
                return
            data = opened.every()
            forget_keys(data, w.info.autoincrement_pk or "")
            opened.savepoint.rollback()  # not ours alone: write them again with reserved keys
            w.copy_reserved(opened.shape, data)
        except WriteFailed as exc:
            raise self._failed_stream(opened.located(exc.orig, exc.row)) from exc.orig
        except BaseException as exc:
            self._abandon(opened, None)
            if isinstance(exc, Exception):
                self._failure = WriteFailed(exc, None, located=True)
            raise

    def _failed_stream(self, failed: WriteFailed) -> WriteFailed:
        """Remember a stream's failure: its rows are gone, so every later call on this
        strategy fails the same way, even if code that saw the error first (a validator
        reaching the connection) swallowed it."""
        self._failure = failed
        return failed

    def raise_failure(self) -> None:
        """Raise the failure of an earlier stream of this call, if any."""
        if self._failure is not None:
            failed = self._failure
            raise WriteFailed(failed.orig, failed.row, located=True) from failed.orig

    def close(self) -> None:
        """Abandon the open COPY, if any (the caller is failing and rolls back)."""
        if self._open is not None:
            opened, self._open = self._open, None
            self._abandon(opened, RuntimeError("batch abandoned"))

    def _abandon(self, opened: OpenCopy, exc: BaseException | None) -> None:
        """Cancel the stream's COPY if still open, forget its keys, roll back its rows.
        Never raises: the caller is already failing with ``exc``."""
        w = self._writer
        try:
            if exc is not None:
                opened.context.__exit__(type(exc), exc, exc.__traceback__)
        except Exception:  # noqa: BLE001, S110 - the COPY is cancelled either way
            pass
        if opened.first is not None:
            forget_keys(opened.every(), w.info.autoincrement_pk or "")
        try:
            if opened.savepoint is not None and opened.savepoint.is_active:
                opened.savepoint.rollback()
        except Exception:  # noqa: BLE001, S110 - the enclosing transaction rolls back
            pass

    def _stream_failed(self, opened: OpenCopy, exc: Exception) -> WriteFailed:
        """The located error of a failed stream: by the COPY line the server names, else by
        looking at the values."""
        w = self._writer
        failed = w.failed(exc, opened.sent_shape, [])
        if failed.row is not None and opened.first is not None:
            failed.row += 1  # the stream's first row went apart
        row = failed.row
        if row is None and opened.first is not None:
            try:
                rows = opened.shape.rows(opened.every())
                row = w.failed(exc, opened.shape, rows).row
            except Exception:  # noqa: BLE001, S110 - a value that cannot even be built
                pass
        return opened.located(failed.orig, row)


def position(data: Data, item: dict[str, Any] | None) -> int | None:
    """Where ``item`` (the row being sent when an error came) sits in ``data``."""
    return next((n for n, d in enumerate(data) if d is item), None)


def forget_keys(data: Data, pk: str) -> None:
    for d in data:
        d[pk] = None


@dataclass(eq=False)
class OpenCopy:
    """A COPY left open across ``send`` calls, sending ``sent_shape``'s columns.

    Numbered (``first`` set): the stream's first row took ``first = nextval()`` and went by a
    COPY of its own; the rows after it leave their key to the server, all inside one
    savepoint, and their dicts are kept (``datas``) to write them again with reserved keys if
    the numbering is not proven. Plain: the rows as the shape gives them; nothing is kept.
    ``groups``: each call's row count and ``locate``, in stream order.
    """

    shape: InsertShape
    sent_shape: InsertShape
    savepoint: sa.NestedTransaction | None
    first: int | None
    sent: int = 0
    copy: Any = None
    oids: list[int] | None = None  # the binary COPY's column types (None: text)
    context: ExitStack = field(default_factory=ExitStack)
    groups: list[tuple[int, Locate]] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    datas: list[Data] = field(default_factory=list)

    @property
    def numbered(self) -> bool:
        return self.first is not None

    def add(self, data: Data, locate: Locate) -> None:
        self.starts.append(self.starts[-1] + self.groups[-1][0] if self.groups else 0)
        self.groups.append((len(data), locate))
        if self.first is not None:
            self.datas.append(data)

    def every(self) -> list[dict[str, Any]]:
        """Every dict of a numbered stream sent so far, in stream order."""
        return list(chain.from_iterable(self.datas))

    def located(self, orig: BaseException, row: int | None) -> WriteFailed:
        """``orig`` blamed on the stream's ``row`` (0-based over every row sent), located."""
        if row is None or row < 0:
            return WriteFailed(orig, None, located=True)
        n = bisect_right(self.starts, row) - 1
        if n < 0 or row - self.starts[n] >= self.groups[n][0]:
            return WriteFailed(orig, None, located=True)
        return WriteFailed(orig, self.groups[n][1](row - self.starts[n]), located=True)
