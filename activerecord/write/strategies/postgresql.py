"""PostgreSQL (psycopg 3): rows written by ``COPY``, their keys numbered and proven.

Where the key's default is exactly ``nextval`` of its sequence and no user trigger could
change a key, the first row takes ``nextval()`` and the server numbers the rest;
``currval() == first + n - 1`` proves they got ``first + 1 ..`` in row order (else the chunk
is rolled back to a savepoint and redone). Otherwise ids are reserved first with ``nextval``
over ``generate_series`` (each value is ours alone, whatever other sessions do) and copied
with the rows. For a list of records one such COPY stays open across chunks
(:mod:`.copy_stream`: the next chunk is prepared while the server works through the rows
already sent, and the transaction flushes the stream before other library code uses the
connection). Rows whose keys nobody reads back go the same way, in a plain COPY, from a
generator too. Rows that give their own keys move the sequence past the largest (``setval``,
never backwards) before it numbers rows again and when the call ends.

Example::

    >>> PostgresCopyStrategy.name, PostgresCopyStrategy.fills_keys
    ('pg_copy', True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...backend.bridge import copy_context, copy_cursor
from ...backend.dialects import without_params
from ...backend.dialects.postgresql import move_sequence_past
from ...backend.transaction import PendingStatement
from ...insert.locate import ValueRefused, WriteFailed, rows_located
from ...insert.shape import InsertShape
from .base import Data, InsertStrategy, Locate
from .copy_stream import CopyStream, forget_keys, position

if TYPE_CHECKING:
    from ...backend.dialects import DialectFacts
    from ...model.info import ModelInfo

__all__ = ["PostgresCopyStrategy"]


class PostgresCopyStrategy(InsertStrategy):
    """``COPY`` the rows, keys numbered by the server where provable, else reserved first."""

    name = "pg_copy"
    reserves_keys = True
    fills_keys = True

    def __init__(
        self,
        conn: sa.Connection,
        info: ModelInfo,
        facts: DialectFacts,
        sequence: str | None,
        numbered: bool = False,
    ) -> None:
        super().__init__(conn, info, facts)
        self.sequence = sequence
        self.reserves_keys = sequence is not None
        self._copy_sql: dict[tuple[str, ...], tuple[str, list[int] | None]] = {}
        self._server_numbering = numbered and sequence is not None
        self.streams = True  # a plain COPY always; a numbered one where numbering is proven
        self._stream = CopyStream(self)
        #: The largest key rows gave themselves since the sequence was last moved past them.
        self._top_given: int | None = None
        self.watches_keys = self.watches_keys or sequence is not None

    @property
    def cursor(self) -> Any:
        """The driver's cursor, for its ``copy()`` (behind SQLAlchemy's async adapter too)."""
        if self._cursor is None:
            self._cursor = copy_cursor(self.conn.connection.dbapi_connection)
        return self._cursor

    def explicit_keys(self, keys: Sequence[Any]) -> None:
        """PostgreSQL's sequence knows nothing of keys rows give themselves: remember the
        largest, to move the sequence past it before it numbers rows again and when the call
        ends (as the keys of SQLite and MySQL follow explicit ones), so the next generated
        key cannot collide with one of them."""
        super().explicit_keys(keys)
        if self.sequence is not None and keys:
            top = max(keys)
            if self._top_given is None or top > self._top_given:
                self._top_given = top

    def move_sequence(self) -> None:
        """``setval`` the sequence to the largest key given, if that is past its last value
        (never backwards; within its bounds). Ends an open COPY first."""
        if self._top_given is None or self.sequence is None:
            return
        self.settle()
        top, self._top_given = self._top_given, None
        move_sequence_past(self.conn, self.sequence, top)

    def finish(self) -> None:
        self.settle()
        self.move_sequence()

    @staticmethod
    def key_sequence(conn: sa.Connection, info: ModelInfo) -> tuple[str | None, bool]:
        """The sequence behind the autoincrement key (None when there is none, or inserting
        ids is refused) and whether the server may number a COPY's rows itself: the key's
        default is exactly ``nextval`` of that sequence (or an identity) and no user trigger
        could change a row's key. One catalog query."""
        pk = info.autoincrement_pk
        if pk is None:
            return None, False
        name = without_params(conn.dialect.identifier_preparer.format_table(info.table),
                              conn.dialect)  # a value: no doubled '%'
        column = info.columns[pk].name
        row = conn.execute(
            sa.text(
                "SELECT s.seq, a.attidentity, "
                " a.attidentity = 'd' OR pg_get_expr(d.adbin, d.adrelid) = "
                "  'nextval(' || quote_literal(CAST(CAST(s.seq AS regclass) AS text))"
                "  || '::regclass)', "
                " EXISTS (SELECT 1 FROM pg_trigger g "
                "         WHERE g.tgrelid = a.attrelid AND NOT g.tgisinternal) "
                "FROM pg_attribute a "
                "CROSS JOIN (SELECT pg_get_serial_sequence(:t, :c) AS seq) s "
                "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                "WHERE a.attrelid = CAST(:t AS regclass) AND a.attname = :c"
            ),
            {"t": name, "c": column},
        ).one()
        sequence, identity, by_default, triggers = row
        if sequence is None or identity == "a":  # GENERATED ALWAYS refuses explicit ids
            return None, False
        return str(sequence), bool(by_default) and not triggers

    def copy_statement(self, shape: InsertShape) -> tuple[str, list[int] | None]:
        """The COPY statement: binary (5x less client CPU) when psycopg knows every column's
        type, else text."""
        found = self._copy_sql.get(shape.keys)
        if found is None:
            prep = self.dialect.identifier_preparer
            cols = ", ".join(prep.quote(c.name) for c in shape.columns)
            oids = self._binary_oids(shape)
            binary = " (FORMAT BINARY)" if oids is not None else ""
            sql = f"COPY {prep.format_table(shape.table)} ({cols}) FROM STDIN{binary}"
            found = (without_params(sql, self.dialect), oids)  # psycopg sends it as is
            self._copy_sql[shape.keys] = found
        return found

    def _binary_oids(self, shape: InsertShape) -> list[int] | None:
        types = self.conn.connection.dbapi_connection.adapters.types  # type: ignore[union-attr]
        oids = []
        for column in shape.columns:
            name = column.type.dialect_impl(self.dialect).compile(dialect=self.dialect).lower()
            base = "float8" if name == "float" else re.sub(r"\(.*\)", "", name).strip()
            info = types.get(base)
            if info is None:
                return None
            oids.append(int(info.oid))
        return oids

    def _reserve(self, n: int) -> Sequence[int]:
        """n values of the sequence, ours alone: sent as a range when they are one (the usual),
        else as one array (other sessions took values in between, or the increment is not 1)."""
        self.move_sequence()
        taken = (
            sa.select(sa.func.nextval(self.sequence).label("id"))
            .select_from(sa.func.generate_series(1, n))
            .subquery()
        )
        low, high = sa.func.min(taken.c.id), sa.func.max(taken.c.id)
        whole = high - low + 1 == sa.func.count()
        listed = sa.case((whole, sa.null()), else_=sa.func.array_agg(taken.c.id))
        first, last, values = self.conn.execute(sa.select(low, high, listed)).one()
        return range(first, last + 1) if values is None else list(values)

    def _numbered_by_server(self, shape: InsertShape | None = None) -> bool:
        """Whether the server may number a COPY's rows (see :meth:`key_sequence`); those of
        ``shape`` only if they send a column besides the key (a COPY sends at least one)."""
        return self._server_numbering and (shape is None or len(shape.fields) > 1)

    def copy_rows(
        self, shape: InsertShape, data: Data, keys: Sequence[int] | None = None
    ) -> None:
        """COPY ``data`` (dicts), each row built as it is sent: the client's work overlaps
        the server's. With ``keys``, each dict first gets its key (the shape sends it, or the
        server gives that same key, proven by the caller)."""
        sql, oids = self.copy_statement(shape)
        row = shape.row
        d: dict[str, Any] | None = None
        try:
            with copy_context(self.cursor.copy(sql)) as copy:
                if oids is not None:
                    copy.set_types(oids)
                write_row = copy.write_row
                try:
                    if keys is None:
                        for d in data:
                            write_row(row(d))
                    else:
                        pk = self.info.autoincrement_pk or ""
                        for d, key in zip(data, keys):
                            d[pk] = key
                            write_row(row(d))
                except Exception as exc:
                    if self.row_at_fault(exc):
                        refused = self.refused(exc, shape, oids, d)
                        raise WriteFailed(refused, position(data, d)) from exc
                    raise
        except WriteFailed:
            raise
        except Exception as exc:
            failed = self.failed(exc, shape, [])
            if failed.row is None:  # not named by the COPY context: look at the values
                try:
                    failed = self.failed(exc, shape, shape.rows(data))
                except Exception:  # noqa: BLE001 - a value that cannot even be built
                    pass
            raise failed from exc

    def _copy_numbered(self, shape: InsertShape, data: Data) -> Sequence[int] | None:
        """COPY without keys, the server numbering the rows; their keys when provably known.

        The first row is inserted with ``first = nextval()``; the others are copied without
        keys and take this session's next values, each above ``first``, in row order: if then
        ``currval() == first + n - 1`` they are exactly ``first + 1 .. first + n - 1``.
        Otherwise (another session took values in between; an increment other than 1) the
        rows are rolled back to a savepoint and None says: reserve the keys instead. Each
        dict gets its key as it is sent, and loses it again if unproven or failed.
        """
        self.move_sequence()
        first = self.conn.execute(sa.select(sa.func.nextval(self.sequence))).scalar_one()
        n = len(data)
        pk = self.info.autoincrement_pk or ""
        keyless = self.shape(tuple(f for f in shape.fields if f != pk), True)
        savepoint = self.conn.begin_nested()
        try:
            self.copy_rows(shape, data[:1], [first])
            if n > 1:
                with rows_located((1).__add__):  # data[1:]: a row's place in data
                    self.copy_rows(keyless, data[1:], range(first + 1, first + n))
                last = self.conn.execute(sa.select(sa.func.currval(self.sequence))).scalar_one()
                if last != first + n - 1:
                    forget_keys(data, pk)
                    savepoint.rollback()
                    return None
        except BaseException:
            forget_keys(data, pk)
            if savepoint.is_active:
                savepoint.rollback()
            raise
        savepoint.commit()
        return range(first, first + n)

    def refused(
        self, exc: Exception, shape: InsertShape, oids: list[int] | None, d: dict[str, Any] | None
    ) -> BaseException:
        """The error of a row the driver could not send, naming the column whose value it
        refused (each value of the row dumped again alone, as the COPY dumps it)."""
        if d is None:
            return ValueRefused(None, exc)
        refused = shape.refused_value(d)  # a column's own processor refused it
        if refused is not None or oids is None:
            return refused or ValueRefused(None, exc)
        from psycopg.adapt import PyFormat, Transformer  # this strategy runs on psycopg
        from psycopg.pq import Format

        transformer = Transformer(self.cursor)
        for column, oid, value in zip(shape.columns, oids, shape.row(d)):
            try:
                transformer.set_dumper_types([oid], Format.BINARY)
                transformer.dump_sequence([value], [PyFormat.BINARY])
            except Exception:  # noqa: BLE001 - this is the value it refused
                return ValueRefused(column.name, exc, value)
        return ValueRefused(None, exc)

    def row_at_fault(self, exc: Exception) -> bool:
        """An error while rows are written into a COPY comes from the row being sent (a value
        the driver cannot send as the column's type): the server answers only at the end.
        A lost connection is nobody's row."""
        dbapi = self.dialect.loaded_dbapi
        return not isinstance(exc, dbapi.OperationalError)

    # -- the stream (see copy_stream.py) -------------------------------------------------
    @property
    def pending(self) -> PendingStatement:
        return self._stream

    def stream(
        self, shape: InsertShape, data: Data, locate: Locate, fetch_key: bool = True
    ) -> bool:
        """A COPY left open across calls: the caller prepares its next rows while the server
        still works through the ones sent. With ``fetch_key``, the server-numbered COPY of
        :meth:`_copy_numbered`, one ``currval()`` at :meth:`settle` proving every key of the
        stream; without, the rows as the shape gives them (no keys wanted back)."""
        self._stream.raise_failure()
        if not data or not self.may_stream or (fetch_key and not self._numbered_by_server(shape)):
            return False
        pk = self.info.autoincrement_pk or ""
        sent = self.shape(tuple(f for f in shape.fields if f != pk), True) if fetch_key else shape
        self._stream.send(shape, sent, data, locate, fetch_key)
        return True

    def settle(self) -> None:
        self._stream.settle()

    def close(self) -> None:
        self._stream.close()
        super().close()

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        self.settle()  # raises a failed stream's error too
        if not data:
            return [] if fetch_key else None
        if not fetch_key:
            self.copy_rows(shape, data)
            return None
        if self._numbered_by_server(shape):
            keys = self._copy_numbered(shape, data)
            if keys is not None:
                return keys
        return self.copy_reserved(shape, data)

    def copy_reserved(self, shape: InsertShape, data: Data) -> Sequence[int]:
        """COPY the rows with keys reserved first (each dict gets its key as it is sent)."""
        keys = self._reserve(len(data))
        try:
            self.copy_rows(shape, data, keys)
        except BaseException:
            forget_keys(data, self.info.autoincrement_pk or "")
            raise
        return keys

