"""MySQL/MariaDB: a group of rows as one ``LOAD DATA LOCAL INFILE`` from an in-memory file.

About twice the rows per second of multi-row ``INSERT`` here. The rows are written to a
memory file (``memfd``; a temporary file where there is none) that PyMySQL opens by name when
the server asks for it; the statement holds only the file's name and the table's and
columns' identifiers, the values are in the file (:mod:`.load_data_text`). Exact as the
``INSERT`` path is:

* keys: ``LAST_INSERT_ID()`` is the statement's first key and the others its steps of the
  session's ``auto_increment_increment``, proven where ``innodb_autoinc_lock_mode`` is 0 or
  1 (the statement holds the table's AUTO-INC lock to its end: one consecutive range);
* values: with ``LOCAL`` the server turns a refused value or a duplicate key into a warning
  and goes on (it cannot stop the client's file), so a load with any warning, or fewer rows
  taken than sent, is an error (the first warning, with the row it names) and the batch's
  transaction rolls back;
* fallback: a Galera node, a server or connection without ``local_infile``, lock mode 2 when
  keys are asked, few rows, or a value the file has no exact form for: the rows go by
  :class:`~.mysql.MysqlValuesStrategy`, said once per call at DEBUG.

Example::

    >>> MysqlLoadDataStrategy.name, MysqlLoadDataStrategy.min_rows
    ('mysql_load_data', 64)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from typing import IO, Any

from ...insert.locate import WriteFailed
from ...insert.shape import InsertShape
from ...log import logger
from .base import Data
from .load_data_text import Unloadable, line_builder, load_data_refusal
from .mysql import MysqlValuesStrategy

__all__ = ["MysqlLoadDataStrategy"]

_AT_ROW = re.compile(r"\bat row (\d+)")
#: A file name that needs no escaping inside the statement's string literal.
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./-]+")


class _MemoryFile:
    """A file in memory the driver can open by name, rewritten for each load."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._file: IO[bytes] | None = None
        memfd = getattr(os, "memfd_create", None)
        if memfd is not None and os.path.isdir("/proc/self/fd"):
            self._fd = memfd("activerecord-load", getattr(os, "MFD_CLOEXEC", 0))
            self.path = f"/proc/self/fd/{self._fd}"
        else:  # no memfd (macOS): a temporary file, in RAM where the system has /dev/shm
            where = "/dev/shm" if os.path.isdir("/dev/shm") else None
            self._file = tempfile.NamedTemporaryFile(dir=where, prefix="activerecord-load-")
            self.path = self._file.name

    def write(self, data: bytes) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self._file.write(data)
            self._file.flush()
            return
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._file is not None:
            self._file.close()
            self._file = None


class MysqlLoadDataStrategy(MysqlValuesStrategy):
    """``LOAD DATA LOCAL INFILE`` for groups of :attr:`min_rows` or more, where allowed."""

    name = "mysql_load_data"
    #: Fewer rows go by INSERT: a load's extra round trips (the file, the first key) cost
    #: more than they save.
    min_rows = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._file: _MemoryFile | None = None
        self._told: set[str] = set()
        self._lines: dict[int, tuple[Callable[[Sequence[Any]], str], str]] = {}

    def refusal(self, fetch_key: bool) -> str | None:
        """Why this connection may not load (None: it may); see ``load_data_refusal``."""
        raw = self.conn.connection.dbapi_connection
        flag = self.dialect.loaded_dbapi.constants.CLIENT.LOCAL_FILES
        return load_data_refusal(
            galera=self.facts.is_galera,
            server_allows=bool(getattr(self.facts, "local_infile", False)),
            client_allows=bool(getattr(raw, "client_flag", 0) & flag),
            consecutive=self.facts.autoinc_consecutive,
            need_keys=fetch_key,
        )

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        if len(data) < self.min_rows or not shape.columns:
            return super().write(shape, data, fetch_key)
        reason = self.refusal(fetch_key)
        if reason is None:
            rows = shape.rows(data)
            try:
                line, sql = self._line_and_statement(shape)
                payload = ("\n".join(map(line, rows)) + "\n").encode("utf-8")
            except (Unloadable, ValueError, TypeError, self.dialect.loaded_dbapi.Error) as exc:
                # A value without an exact form here (or one the driver refuses): the
                # INSERT path sends it, or names it exactly.
                reason = str(exc)
            else:
                return self._load(shape, rows, payload, sql, fetch_key)
        if reason not in self._told:
            self._told.add(reason)
            logger.debug("%s: INSERT instead of LOAD DATA: %s", shape.table.name, reason)
        return super().write(shape, data, fetch_key)

    def close(self) -> None:
        super().close()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _line_and_statement(
        self, shape: InsertShape
    ) -> tuple[Callable[[Sequence[Any]], str], str]:
        cached = self._lines.get(id(shape))
        if cached is not None:
            return cached
        if self._file is None:
            self._file = _MemoryFile()
        path = self._file.path
        if not _SAFE_PATH.fullmatch(path):
            raise Unloadable(f"a file name the statement cannot hold: {path!r}")
        binary = [_is_binary(c.type) for c in shape.columns]
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
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {prep.format_table(shape.table)} "
            f"CHARACTER SET utf8mb4 ({', '.join(targets)})"
        )
        if sets:
            sql += " SET " + ", ".join(sets)
        built = (line_builder(binary, self.dialect.loaded_dbapi.converters.encoders), sql)
        self._lines[id(shape)] = built
        return built

    def _load(
        self,
        shape: InsertShape,
        rows: list[tuple[Any, ...]],
        payload: bytes,
        sql: str,
        fetch_key: bool,
    ) -> list[Any] | None:
        # The session's increment now (see MysqlValuesStrategy.write).
        step = self.facts.session_keys(self.conn).increment if fetch_key else 1
        assert self._file is not None
        self._file.write(payload)
        cursor = self.cursor
        try:
            cursor.execute(sql)
        except Exception as exc:
            raise self.failed(exc, shape, rows) from exc
        # Warnings first: a later statement may clear them.
        if cursor.warning_count or cursor.rowcount != len(rows):
            raise self._warned(shape, rows, int(cursor.rowcount))
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


def _is_binary(type_: Any) -> bool:
    try:
        return bool(type_.python_type is bytes)
    except NotImplementedError:
        return False
