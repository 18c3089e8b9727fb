"""MySQL/MariaDB: a group of rows as one ``LOAD DATA LOCAL INFILE`` from memory.

About twice the rows per second of multi-row ``INSERT`` here. The rows' text is built in
memory (:mod:`.load_data_text`) and sent as the file when the server asks for it, in one
socket write (:mod:`.load_data_wire`: no file is opened, and a thread of the caller running
Python meanwhile does not slow each 16 KB packet); the statement holds only the file's name
and the table's and columns' identifiers. Exact as the ``INSERT`` path is:

* keys: ``LAST_INSERT_ID()`` is the statement's first key and the others its steps of the
  session's ``auto_increment_increment``, proven where ``innodb_autoinc_lock_mode`` is 0 or
  1 (the statement holds the table's AUTO-INC lock to its end: one consecutive range);
* values: with ``LOCAL`` the server turns a refused value or a duplicate key into a warning
  and goes on (it cannot stop the client's file), so a load with any warning, or fewer rows
  taken than sent, is an error (the first warning, with the row it names) and the batch's
  transaction rolls back;
* overlap: a group goes in loads of :attr:`MysqlLoadDataStrategy.piece_rows`, the next
  piece's text built on a worker thread while the server loads this one; where the batch
  allows a stream (``may_stream``), the whole group's loads run on a second worker thread
  while the caller validates its next chunk and builds its rows and its first load's text,
  settled (keys put in the rows' dicts) before anything else uses the connection. The
  workers touch only the driver's cursor;
* fallback: a Galera node, a server or connection without ``local_infile``, lock mode 2 when
  keys are asked, a PyMySQL without the internals the exchange uses, few rows, or a value
  the file has no exact form for: the rows go by
  :class:`~.mysql.MysqlValuesStrategy`, said once per call at DEBUG.

Longer than 400 lines because the load, its overlap with the next piece and its settling
share one connection state and one error mapping; the file text is already its own module.

Example::

    >>> MysqlLoadDataStrategy.name, MysqlLoadDataStrategy.min_rows
    ('mysql_load_data', 64)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...backend.dialects import without_params
from ...backend.transaction import PendingStatement
from ...insert.locate import WriteFailed, rows_located
from ...insert.shape import InsertShape
from ...log import logger
from .base import Data, Locate
from .load_data_text import Unloadable, column_kind, line_builder, load_data_refusal
from .load_data_wire import FILE_NAME, send_load, wire_ready
from .mysql import MysqlValuesStrategy

if TYPE_CHECKING:
    from ...backend.dialects import DialectFacts

__all__ = ["MysqlLoadDataStrategy", "connection_refusal", "file_text"]

_AT_ROW = re.compile(r"\bat row (\d+)")


@dataclass
class _OpenLoad:
    """A load running on the stream's worker thread, and what :meth:`settle` needs of it."""

    future: Future[tuple[list[Any], int | None]]
    shape: InsertShape
    data: Data
    locate: Locate
    fetch_key: bool


class _Pending:
    """The running load, for the transaction to wait for before the connection is used."""

    def __init__(self, strategy: MysqlLoadDataStrategy) -> None:
        self._strategy = strategy

    def flush(self) -> None:
        self._strategy.settle()


class MysqlLoadDataStrategy(MysqlValuesStrategy):
    """``LOAD DATA LOCAL INFILE`` for groups of :attr:`min_rows` or more, where allowed."""

    name = "mysql_load_data"
    streams = True
    #: Fewer rows go by INSERT: a load's extra round trips (the file, the first key) cost
    #: more than they save.
    min_rows = 64
    #: Rows of one load: a piece is loaded while the next one's text is built. Each load
    #: waits on its socket three or four times, and each wait may end up to 5 ms late (the
    #: interpreter's switch interval) while the caller's thread runs Python: 10,000 rows
    #: (a whole batch chunk) took half the time of 2,000 with a busy second thread here.
    piece_rows = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._told: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._streamer: ThreadPoolExecutor | None = None
        self._open: _OpenLoad | None = None
        self._pending = _Pending(self)
        self._lines: dict[int, tuple[Callable[[Sequence[Any]], str], str]] = {}

    def refusal(self, fetch_key: bool) -> str | None:
        """Why this connection may not load (None: it may); see ``load_data_refusal``."""
        return connection_refusal(self.facts, self.conn, need_keys=fetch_key)

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        self.settle()
        loading = self._loading(shape, data, fetch_key)
        if loading is None:
            return super().write(shape, data, fetch_key)
        line, sql = loading
        step = self._step(fetch_key)
        keys, stopped = self._load_rows(shape, shape.rows(data), line, sql, fetch_key, step)
        if stopped is not None:
            return self._insert_rest(shape, data, stopped, fetch_key, keys)
        return keys if fetch_key else None

    def stream(
        self, shape: InsertShape, data: Data, locate: Locate, fetch_key: bool = True
    ) -> bool:
        """The load runs on a worker thread (the driver waits on its socket there) while the
        caller prepares its next rows; :meth:`settle` waits for it and puts each row's key
        in its dict. Nothing else uses the connection meanwhile (``pending``). These rows,
        and the file text of their first load, are built while the last load still runs
        (they touch no connection): built after it, the server waited for them at every
        chunk (50,000 rows in ramped chunks here: 0.30 s, against 0.25 s in one chunk)."""
        loading = self._loading(shape, data, fetch_key) if self.may_stream else None
        if loading is None:
            self.settle()
            return False
        line, sql = loading
        try:
            with rows_located(locate):  # a refused value: its record in the whole call
                rows = shape.rows(data)
            first = _text_of(line, rows[: self.piece_rows])
        except BaseException:
            self.settle()  # an earlier load's failure is the one to report
            raise
        self.settle()
        step = self._step(fetch_key)
        if self._streamer is None:
            self._streamer = ThreadPoolExecutor(1, thread_name_prefix="activerecord-load-stream")
        future = self._streamer.submit(
            self._load_rows, shape, rows, line, sql, fetch_key, step, first
        )
        self._open = _OpenLoad(future, shape, data, locate, fetch_key)
        return True

    @property
    def pending(self) -> PendingStatement:
        return self._pending

    def settle(self) -> None:
        opened, self._open = self._open, None
        if opened is None:
            return
        try:
            keys, stopped = opened.future.result()
            if stopped is not None:
                keys = self._insert_rest(
                    opened.shape, opened.data, stopped, opened.fetch_key, keys
                ) or []
        except WriteFailed as exc:
            row = None if exc.row is None else opened.locate(exc.row)
            raise WriteFailed(exc.orig, row, located=True) from exc.orig
        if opened.fetch_key:
            pk = self.info.autoincrement_pk or ""
            for data, key in zip(opened.data, keys):
                data[pk] = key

    def _loading(
        self, shape: InsertShape, data: Data, fetch_key: bool
    ) -> tuple[Callable[[Sequence[Any]], str], str] | None:
        """The line builder and statement for these rows, or None (said at DEBUG) where
        they go by INSERT."""
        if len(data) < self.min_rows or not shape.columns:
            return None
        reason = self.refusal(fetch_key)
        if reason is None:
            try:
                return self._line_and_statement(shape)
            except Unloadable as exc:
                reason = str(exc)
        self._say(shape, reason)
        return None

    def _step(self, fetch_key: bool) -> int:
        # The session's increment now (see MysqlValuesStrategy.write), read on the caller's
        # thread: the worker only runs the driver's cursor.
        return self.facts.session_keys(self.conn).increment if fetch_key else 1

    def _load_rows(
        self,
        shape: InsertShape,
        rows: list[tuple[Any, ...]],
        line: Callable[[Sequence[Any]], str],
        sql: str,
        fetch_key: bool,
        step: int,
        first: Future[bytes] | None = None,
    ) -> tuple[list[Any], int | None]:
        """The rows in loads of :attr:`piece_rows`: the next piece's file text is built on a
        worker thread while the server loads this one (the driver waits on its socket without
        the GIL), so the two overlap. Returns the keys and None; or, where a value has no
        exact form in the file (or the driver refuses it), the keys so far and the position
        from which the rows are still to be sent (by INSERT, which names such a value).
        ``first``: the first piece's text, where the caller built it already."""
        size = self.piece_rows
        starts = list(range(0, len(rows), size))
        keys: list[Any] = []
        pending = first
        if pending is None:
            pending = self._workers().submit(file_text, line, rows[:size])
        for n, start in enumerate(starts):
            piece = rows[start : start + size]
            try:
                payload = pending.result()
            except Unloadable as exc:
                self._say(shape, str(exc))
                return keys, start
            if n + 1 < len(starts):
                after = starts[n + 1]
                pending = self._workers().submit(file_text, line, rows[after : after + size])
            try:
                with rows_located(start.__add__):  # a piece's row -> its place in rows
                    got = self._load(shape, piece, payload, sql, fetch_key, step)
            except WriteFailed:
                pending.cancel()
                raise
            if got is not None:
                keys.extend(got)
        return keys, None

    def _insert_rest(
        self, shape: InsertShape, data: Data, start: int, fetch_key: bool, keys: list[Any]
    ) -> list[Any] | None:
        with rows_located(start.__add__):  # data[start:]: a row's place in data
            rest = super().write(shape, data[start:], fetch_key)
        return [*keys, *(rest or ())] if fetch_key else None

    def _say(self, shape: InsertShape, reason: str) -> None:
        if reason not in self._told:
            self._told.add(reason)
            logger.debug("%s: INSERT instead of LOAD DATA: %s", shape.table.name, reason)

    def _workers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="activerecord-load")
        return self._pool

    def close(self) -> None:
        """Wait for a running load (the caller is failing and rolls back), then release."""
        opened, self._open = self._open, None
        if opened is not None:
            opened.future.exception()  # its outcome no longer matters, only that it ended
        if self._streamer is not None:
            self._streamer.shutdown(wait=True)
            self._streamer = None
        super().close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _line_and_statement(
        self, shape: InsertShape
    ) -> tuple[Callable[[Sequence[Any]], str], str]:
        cached = self._lines.get(id(shape))
        if cached is not None:
            return cached
        kinds = [column_kind(c.type) for c in shape.columns]
        binary = [kind == "binary" for kind in kinds]
        prep = self.dialect.identifier_preparer
        targets = [
            f"@v{i}" if is_bin else prep.quote(c.name)
            for i, (c, is_bin) in enumerate(zip(shape.columns, binary))
        ]
        sets = [
            f"{prep.quote(c.name)} = UNHEX(@v{i})"
            for i, (c, is_bin) in enumerate(zip(shape.columns, binary))
            if is_bin
        ]
        sql = (
            f"LOAD DATA LOCAL INFILE '{FILE_NAME}' INTO TABLE {prep.format_table(shape.table)} "
            f"CHARACTER SET utf8mb4 ({', '.join(targets)})"
        )
        if sets:
            sql += " SET " + ", ".join(sets)
        # Sent with no parameters: the identifiers' '%' must not stay doubled.
        sql = without_params(sql, self.dialect)
        built = (line_builder(kinds, self.dialect.loaded_dbapi.converters.encoders), sql)
        self._lines[id(shape)] = built
        return built

    def _load(
        self,
        shape: InsertShape,
        rows: list[tuple[Any, ...]],
        payload: bytes,
        sql: str,
        fetch_key: bool,
        step: int,
    ) -> list[Any] | None:
        cursor = self.cursor
        try:
            taken, warnings = send_load(cursor.connection, sql, payload)
        except Exception as exc:
            raise self.failed(exc, shape, rows) from exc
        # Warnings first: a later statement may clear them.
        if warnings or taken != len(rows):
            raise self._warned(shape, rows, taken)
        if not fetch_key:
            return None
        cursor.execute("SELECT LAST_INSERT_ID()")
        first = int(cursor.fetchone()[0])
        if first <= 0:  # never seen; without a first key none of them is known
            raise WriteFailed(RuntimeError("LOAD DATA reported no first generated key"), None)
        return list(range(first, first + len(rows) * step, step))

    def _warned(self, shape: InsertShape, rows: list[tuple[Any, ...]], taken: int) -> WriteFailed:
        """The load's first warning as the driver error an ``INSERT`` would have raised, at
        the row it names (or the row a duplicate key's value points to)."""
        err = self.dialect.loaded_dbapi.err
        self.cursor.execute("SHOW WARNINGS")
        found = list(self.cursor.fetchall())
        if not found:
            exc: Exception = err.DataError(
                0, f"LOAD DATA took {taken} of {len(rows)} rows without a warning"
            )
            return WriteFailed(exc, None)
        _level, code, message = found[0][:3]
        exc = err.error_map.get(int(code), err.DataError)(int(code), str(message))
        at = _AT_ROW.search(str(message))
        if at is not None and 0 < int(at.group(1)) <= len(rows):
            return WriteFailed(exc, int(at.group(1)) - 1)
        return self.failed(exc, shape, rows)


def connection_refusal(facts: DialectFacts, conn: sa.Connection, *, need_keys: bool) -> str | None:
    """Why ``conn`` may not run our ``LOAD DATA LOCAL INFILE`` exchange (None: it may): the
    facts' server and driver, the connection's own flag and PyMySQL internals (see
    ``load_data_refusal``). Also asked by the staged upsert (``write/upsert_staged.py``)."""
    dialect = conn.dialect
    drivers: frozenset[str] = getattr(type(facts), "load_data_drivers", frozenset())
    if dialect.driver not in drivers:
        return load_data_refusal(
            galera=False, server_allows=False, client_allows=False, consecutive=False,
            need_keys=need_keys, driver_allows=False,
        )
    raw = conn.connection.dbapi_connection
    flag = dialect.loaded_dbapi.constants.CLIENT.LOCAL_FILES
    return load_data_refusal(
        galera=facts.is_galera,
        server_allows=bool(getattr(facts, "local_infile", False)),
        client_allows=bool(getattr(raw, "client_flag", 0) & flag),
        consecutive=facts.autoinc_consecutive,
        need_keys=need_keys,
        driver_allows=wire_ready(raw),
    )


def _text_of(line: Callable[[Sequence[Any]], str], rows: Sequence[Sequence[Any]]) -> Future[bytes]:
    """:func:`file_text` built here, as the future a worker's would be (its result, or the
    :class:`Unloadable` it raised)."""
    done: Future[bytes] = Future()
    try:
        done.set_result(file_text(line, rows))
    except Unloadable as exc:
        done.set_exception(exc)
    return done


def file_text(line: Callable[[Sequence[Any]], str], rows: Sequence[Sequence[Any]]) -> bytes:
    """The file's bytes for ``rows``; :class:`Unloadable` for any value it cannot hold (a
    lone surrogate, a NaN ``Decimal`` the driver refuses, a type without a form)."""
    try:
        return ("\n".join(map(line, rows)) + "\n").encode("utf-8")
    except Unloadable:
        raise
    except Exception as exc:  # noqa: BLE001 - the INSERT path names the value exactly
        raise Unloadable(f"{type(exc).__name__}: {exc}") from exc
