"""How each backend writes a group of rows and hands back exact generated keys.

Every strategy runs inside the SQLAlchemy transaction (or savepoint) the batch opened, on
that Connection's DB-API connection, and returns the autoincrement key of each row in input
order when asked. Each fast path is exact, not a guess:

* ``sqlite_rowid``: one ``executemany`` (the driver's C loop). While we hold the write lock
  a new rowid is always above every rowid before it; so if the first row's id is the table's
  max rowid and the last row's id is first + n - 1, the n rows got exactly that range (no
  triggers on the table, checked; else one row at a time with ``lastrowid``).
* ``pg_copy``: rows written by ``COPY``. Where the key's default is exactly ``nextval`` of
  its sequence and no user trigger could change a key, the first row takes ``nextval()`` and
  the server numbers the rest; ``currval() == first + n - 1`` proves they got
  ``first + 1 ..`` in row order (else the chunk is rolled back to a savepoint and redone).
  Otherwise ids are reserved first with ``nextval`` over ``generate_series`` (each value is
  ours alone, whatever other sessions do) and copied with the rows. For a list of records
  one such COPY stays open across chunks (:meth:`InsertStrategy.stream`): the next chunk is
  prepared while the server works through the rows already sent; library code reaching the
  connection meanwhile (a validator's query) ends it first (``finishing_first``). Rows whose
  keys nobody reads back go the same way, in a plain COPY, from a generator too. Rows that
  give their own keys move the sequence past the largest (``setval``, never backwards)
  before it numbers rows again and when the call ends.
* ``mysql_values``: multi-row ``INSERT ... VALUES`` packed to the packet budget. Keys from
  ``LAST_INSERT_ID()`` + row number times the session's ``auto_increment_increment`` (read
  for each write) when the server allocates one statement's keys consecutively
  (``innodb_autoinc_lock_mode`` 0/1); else
  ``RETURNING`` (MariaDB 10.5+), whose keys are sorted because one statement's keys rise in
  row order; else one row per statement.
* ``core``: SQLAlchemy Core executemany (``RETURNING ... sort_by_parameter_order``), with
  many rows a statement only where the dialect's keys are proven to follow the rows
  (``DialectFacts.keys_follow_rows``); elsewhere (CockroachDB's ``unique_rowid()``) one row
  a statement.

An upsert (:mod:`activerecord.upsert`) inserts only the rows whose key it found absent, with
these same strategies, and updates the others by primary key (:mod:`.merge`).

Example::

    >>> import sqlalchemy as sa
    >>> from activerecord.backend.dialects import DialectFacts
    >>> engine = sa.create_engine("sqlite://")
    >>> DialectFacts.probe(engine).insert_strategy
    'sqlite_rowid'
"""

from __future__ import annotations

import re
import sqlite3
from bisect import bisect_right
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import accumulate, chain, repeat
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.dialects import without_params
from .locate import UniqueKey, ValueRefused, WriteFailed, blamed_row
from .shape import InsertShape

if TYPE_CHECKING:
    from ..backend.dialects import DialectFacts
    from ..model.info import ModelInfo

__all__ = ["CoreStrategy", "InsertStrategy", "strategy_for"]

Data = Sequence[dict[str, Any]]

#: Maps a row's position in a group to the position the caller reports for it.
Locate = Callable[[int], int]

#: Rows one COPY stream takes before it is ended and the next begins: what it keeps (its
#: rows' dicts, to write them again if their keys cannot be proven) stays bounded, and an
#: error the server found early is heard before many more rows are sent.
_STREAM_ROWS = 200_000

#: SQLite's largest rowid; past it SQLite picks rowids at random.
_SQLITE_MAX_ROWID = 2**63 - 1


class InsertStrategy:
    """Base: compile shapes once per call; subclasses write groups of rows."""

    name = "base"
    #: True when the strategy fills the autoincrement key itself (so the shape sends it).
    reserves_keys = False
    #: True when the strategy runs the SQL text with a tuple of values per row.
    positional_params = False
    #: True when ``write`` also puts each returned key into its row's dict.
    fills_keys = False
    #: True when :meth:`stream` may take rows (else it always answers False).
    streams = False

    def __init__(self, conn: sa.Connection, info: ModelInfo, facts: DialectFacts) -> None:
        self.conn = conn
        self.info = info
        self.facts = facts
        self.dialect = conn.dialect
        pk = info.autoincrement_pk
        #: Whether the database numbers the autoincrement key of a row that leaves it out.
        self.generates_key = pk is None or facts.generates_key(info.columns[pk])
        #: Whether rows giving their own autoincrement key go through :meth:`explicit_keys`.
        self.watches_keys = pk is not None and facts.zero_key_may_generate
        self._shapes: dict[tuple[tuple[str, ...], bool], InsertShape] = {}
        self._key_of = {f: c.key for f, c in info.columns.items()}
        self._cursor: Any = None
        #: Set by the caller: rows may stay in an open statement across calls (``stream``).
        self.may_stream = False

    @property
    def cursor(self) -> Any:
        if self._cursor is None:
            self._cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        return self._cursor

    def close(self) -> None:
        """Release the cursor; rows of an unsettled stream are abandoned (the caller is
        failing and rolls back)."""
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None

    def stream(
        self, shape: InsertShape, data: Data, locate: Locate, fetch_key: bool = True
    ) -> bool:
        """Send the rows into a statement left open across calls (with ``fetch_key``, each
        dict gets its key as it goes); False when this strategy cannot (the caller then uses
        :meth:`write`). The rows (and keys) stand once :meth:`settle` returns; until then
        nothing else may run on the connection. ``locate`` maps a row's position in ``data``
        to the one the caller reports; errors come already located."""
        return False

    def settle(self) -> None:
        """Finish the open stream, if any: on return its rows are written and their keys
        exact; raises a located :class:`WriteFailed` (its rows' keys forgotten) if not."""

    def finish(self) -> None:
        """The call's rows are all given: settle, and leave the key's numbering past every
        key the rows gave (see :meth:`explicit_keys`)."""
        self.settle()

    def explicit_keys(self, keys: Sequence[Any]) -> None:
        """Rows about to be written with these autoincrement keys of their own (when
        ``watches_keys``). MySQL/MariaDB read ``0`` as "generate a key" unless the session's
        ``sql_mode`` has ``NO_AUTO_VALUE_ON_ZERO``: the record would keep 0 for a row stored
        under another key, so such a row is refused (a :class:`WriteFailed` at its position)."""
        if 0 in keys and self.facts.session_keys(self.conn).zero_generates:
            pk = self.info.autoincrement_pk or ""
            orig = ValueError(
                "0 in an AUTO_INCREMENT key asks MySQL for a generated key (sql_mode has no "
                "NO_AUTO_VALUE_ON_ZERO): give another key, or None to have one generated"
            )
            raise WriteFailed(ValueRefused(pk, orig, 0), list(keys).index(0))

    def construct(self, fetch_key: bool) -> sa.Insert:
        return sa.insert(self.info.table)

    def shape(self, fields: tuple[str, ...], fetch_key: bool) -> InsertShape:
        """The compiled shape for these fields (compiled on first use in this call)."""
        cached = self._shapes.get((fields, fetch_key))
        if cached is None:
            cached = InsertShape.build(
                self.info.table,
                self._key_of,
                fields,
                self.dialect,
                self.construct(fetch_key),
                positional_params=self.positional_params,
            )
            self._shapes[(fields, fetch_key)] = cached
        return cached

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        """Insert the rows; return their generated keys in order when ``fetch_key``."""
        raise NotImplementedError

    def _refused_in(
        self, shape: InsertShape, values: Sequence[Any], send: Callable[[Any], Any]
    ) -> ValueRefused | None:
        """The refusal of the first value of one built row that ``send`` (the driver's own
        conversion of a value, alone) raises on; None when each passes alone."""
        for column, value in zip(shape.columns, values):
            try:
                send(value)
            except Exception as err:  # noqa: BLE001 - this is the value the driver refused
                return ValueRefused(column.name, err, value)
        return None

    def _unique_flags(self, shape: InsertShape) -> list[tuple[str, bool]]:
        table = shape.table
        single = {
            next(iter(c.columns)).name
            for c in table.constraints
            if isinstance(c, (sa.UniqueConstraint, sa.PrimaryKeyConstraint)) and len(c.columns) == 1
        }
        single |= {
            next(iter(i.columns)).name for i in table.indexes if i.unique and len(i.columns) == 1
        }
        single |= {c.name for c in table.columns if c.unique}
        return [(c.name, c.name in single) for c in shape.columns]

    def _unique_keys(self, shape: InsertShape) -> list[UniqueKey]:
        """The table's unique keys whose columns the shape sends, by the names the database
        may report them under: a constraint's or index's own name; MySQL names an unnamed
        one after its first column, and the primary key ``PRIMARY``."""
        at = {c.name: i for i, c in enumerate(shape.columns)}
        table = shape.table
        found: list[tuple[object, list[str], bool]] = []
        for c in table.constraints:
            if isinstance(c, (sa.UniqueConstraint, sa.PrimaryKeyConstraint)):
                primary = isinstance(c, sa.PrimaryKeyConstraint)
                found.append((c.name, [col.name for col in c.columns], primary))
        found += [(i.name, [col.name for col in i.columns], False) for i in table.indexes
                  if i.unique]
        found += [(None, [c.name], False) for c in table.columns if c.unique]
        keys: list[UniqueKey] = []
        for name, cols, primary in found:
            if not cols or any(col not in at for col in cols):
                continue
            names = {"primary"} if primary else set()
            names.add((name if isinstance(name, str) and name else cols[0]).lower())
            keys.append((frozenset(names), tuple(at[col] for col in cols)))
        return keys

    def _failed(self, err: BaseException, shape: InsertShape, rows: Sequence[Any]) -> WriteFailed:
        row = blamed_row(err, rows, self._unique_flags(shape), self._unique_keys(shape))
        return WriteFailed(self._driver_error(err), row)

    def _driver_error(self, err: BaseException) -> BaseException:
        """A driver error raised on the raw cursor, wrapped as SQLAlchemy would wrap it when it
        means the connection is gone (so it reads as a lost connection, not a failed row)."""
        dbapi = self.dialect.loaded_dbapi
        if not isinstance(err, dbapi.Error) or isinstance(err, sa.exc.DBAPIError):
            return err
        try:  # invalidated: a rollback since (a savepoint's) found the connection gone
            gone = self.conn.invalidated or self.dialect.is_disconnect(
                err, self.conn.connection.dbapi_connection, self._cursor
            )
        except Exception:  # noqa: BLE001 - cannot tell: leave it as it is
            gone = False
        if not gone:
            return err
        return sa.exc.DBAPIError.instance(
            None, None, err, dbapi.Error, connection_invalidated=True, dialect=self.dialect
        )


class CoreStrategy(InsertStrategy):
    """SQLAlchemy Core executemany: correct everywhere, the fallback."""

    name = "core"

    def construct(self, fetch_key: bool) -> sa.Insert:
        stmt = sa.insert(self.info.table)
        pk = self.info.autoincrement_pk
        if fetch_key and pk is not None and self.facts.supports_returning:
            return stmt.returning(self.info.columns[pk], sort_by_parameter_order=True)
        return stmt

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        pairs = list(zip(shape.keys, shape.fields))
        params = [{k: d[f] for k, f in pairs} for d in data]
        shape.rows(data)  # a value the column's processor refuses, named before anything runs
        try:
            if not fetch_key:
                self.conn.execute(shape.construct, params)
                return None
            if self.facts.supports_returning:
                conn = self.conn
                if not self.facts.keys_follow_rows:
                    # Keys sorted back to rows only where one statement numbers them in row
                    # order; elsewhere one row a statement, whose key is its own.
                    conn = conn.execution_options(insertmanyvalues_page_size=1)
                return [row[0] for row in conn.execute(shape.construct, params)]
            keys = []
            for n, one in enumerate(params):
                try:
                    result = self.conn.execute(shape.construct, one)
                except sa.exc.DBAPIError as exc:
                    raise WriteFailed(exc, n) from exc
                keys.append(result.inserted_primary_key[0])  # type: ignore[index]
            return keys
        except sa.exc.DBAPIError as exc:
            raise self._failed(exc.orig or exc, shape, [tuple(p.values()) for p in params]) from exc


class SqliteRowidStrategy(InsertStrategy):
    """Driver executemany plus a proven rowid range (see the module docs)."""

    name = "sqlite_rowid"
    positional_params = True

    def __init__(self, conn: sa.Connection, info: ModelInfo, facts: DialectFacts) -> None:
        super().__init__(conn, info, facts)
        self._range_ok: bool | None = None

    def _range_is_provable(self) -> bool:
        if self._range_ok is None:
            table = self.info.table
            triggers = self.conn.execute(
                sa.text(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
                ),
                {"t": table.name},
            ).scalar_one()
            self._range_ok = triggers == 0
        return self._range_ok

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        rows = shape.rows(data)
        if not rows:
            return [] if fetch_key else None
        cursor = self.cursor
        if not fetch_key:
            self._executemany(shape, rows, 0)
            return None
        # Write first, read after: a read before the first write in a deferred transaction
        # would hold a shared lock that deadlocks against a concurrent writer.
        try:
            cursor.execute(shape.sql, rows[0])
        except Exception as exc:
            raise self._failed_at(exc, 0, shape, rows[0]) from exc
        first = int(cursor.lastrowid)
        n = len(rows)
        pk = self.info.columns[self.info.autoincrement_pk or ""]
        if n == 1:
            return [first]
        top = self.conn.execute(sa.select(sa.func.max(pk))).scalar_one()
        if (
            not self._range_is_provable()
            or top != first
            or first + n - 1 >= _SQLITE_MAX_ROWID
        ):
            return [first, *self._one_by_one(shape, rows[1:], 1)]
        self._executemany(shape, rows[1:], 1)
        last = self.conn.execute(sa.select(sa.func.last_insert_rowid())).scalar_one()
        if last != first + n - 1:  # cannot happen while we hold the write lock
            raise RuntimeError(f"rowids {first}..{last} are not the {n} rows just written")
        return range(first, first + n)

    def _executemany(self, shape: InsertShape, rows: list[tuple[Any, ...]], base: int) -> None:
        raw = self.conn.connection.dbapi_connection
        before = raw.total_changes  # type: ignore[union-attr]
        try:
            self.cursor.executemany(shape.sql, rows)
        except Exception as exc:
            done = raw.total_changes - before  # type: ignore[union-attr]
            at = rows[done] if done < len(rows) else None
            raise self._failed_at(exc, base + done, shape, at) from exc

    def _one_by_one(self, shape: InsertShape, rows: list[tuple[Any, ...]], base: int) -> list[Any]:
        keys = []
        cursor = self.cursor
        for n, row in enumerate(rows):
            try:
                cursor.execute(shape.sql, row)
            except Exception as exc:
                raise self._failed_at(exc, base + n, shape, row) from exc
            keys.append(cursor.lastrowid)
        return keys

    def _failed_at(
        self, exc: Exception, row: int, shape: InsertShape, values: Sequence[Any] | None
    ) -> WriteFailed:
        """The driver could not bind a value (text with a lone surrogate, an int beyond 64
        bits, a type it does not know) when the error is not the server's: name its column,
        found by binding each of the row's values alone."""
        binding = not isinstance(exc, sqlite3.Error) or isinstance(
            exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)
        )
        if values is not None and binding:
            cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                refused = self._refused_in(
                    shape, values, lambda v: cursor.execute("SELECT ?", (v,))
                )
            finally:
                cursor.close()
            if refused is not None:
                return WriteFailed(refused, row)
            if isinstance(exc, sqlite3.Error):
                return WriteFailed(exc, row)  # not a value's fault after all
            return WriteFailed(ValueRefused(None, exc), row)
        return WriteFailed(exc, row)


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
        self._stream: _Stream | None = None
        self._failure: WriteFailed | None = None
        #: The largest key rows gave themselves since the sequence was last moved past them.
        self._top_given: int | None = None
        self.watches_keys = self.watches_keys or sequence is not None

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

    def _move_sequence(self) -> None:
        """``setval`` the sequence to the largest key given, if that is past its last value
        (never backwards; within its bounds). Ends an open COPY first."""
        if self._top_given is None:
            return
        self.settle()
        top, self._top_given = self._top_given, None
        self.conn.execute(
            sa.text(
                "SELECT setval(CAST(:seq AS regclass), CAST(:top AS bigint)) FROM pg_sequence s "
                "WHERE s.seqrelid = CAST(:seq AS regclass) AND s.seqincrement > 0 "
                " AND CAST(:top AS bigint) <= s.seqmax AND CAST(:top AS bigint) > "
                "  coalesce(pg_sequence_last_value(CAST(:seq AS regclass)), s.seqstart - 1)"
            ),
            {"seq": self.sequence, "top": top},
        )

    def finish(self) -> None:
        self.settle()
        self._move_sequence()

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

    def _copy(self, shape: InsertShape) -> tuple[str, list[int] | None]:
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
        self._move_sequence()
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

    def _copy_rows(
        self, shape: InsertShape, data: Data, keys: Sequence[int] | None = None
    ) -> None:
        """COPY ``data`` (dicts), each row built as it is sent: the client's work overlaps
        the server's. With ``keys``, each dict first gets its key (the shape sends it, or the
        server gives that same key, proven by the caller)."""
        sql, oids = self._copy(shape)
        row = shape.row
        d: dict[str, Any] | None = None
        try:
            with self.cursor.copy(sql) as copy:
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
                    if self._sent_row_at_fault(exc):
                        refused = self._refused(exc, shape, oids, d)
                        raise WriteFailed(refused, _position(data, d)) from exc
                    raise
        except WriteFailed:
            raise
        except Exception as exc:
            failed = self._failed(exc, shape, [])
            if failed.row is None:  # not named by the COPY context: look at the values
                try:
                    failed = self._failed(exc, shape, shape.rows(data))
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
        self._move_sequence()
        first = self.conn.execute(sa.select(sa.func.nextval(self.sequence))).scalar_one()
        n = len(data)
        pk = self.info.autoincrement_pk or ""
        keyless = self.shape(tuple(f for f in shape.fields if f != pk), True)
        savepoint = self.conn.begin_nested()
        try:
            self._copy_rows(shape, data[:1], [first])
            if n > 1:
                try:
                    self._copy_rows(keyless, data[1:], range(first + 1, first + n))
                except WriteFailed as exc:
                    exc.row = None if exc.row is None else exc.row + 1
                    raise
                last = self.conn.execute(sa.select(sa.func.currval(self.sequence))).scalar_one()
                if last != first + n - 1:
                    _forget_keys(data, pk)
                    savepoint.rollback()
                    return None
        except BaseException:
            _forget_keys(data, pk)
            if savepoint.is_active:
                savepoint.rollback()
            raise
        savepoint.commit()
        return range(first, first + n)

    def stream(
        self, shape: InsertShape, data: Data, locate: Locate, fetch_key: bool = True
    ) -> bool:
        """A COPY left open across calls: the caller prepares its next rows while the server
        still works through the ones sent. With ``fetch_key``, the server-numbered COPY of
        :meth:`_copy_numbered`, one ``currval()`` at :meth:`settle` proving every key of the
        stream; without, the rows as the shape gives them (no keys wanted back)."""
        self._raise_failure()
        if not data or not self.may_stream or (fetch_key and not self._numbered_by_server(shape)):
            return False
        pk = self.info.autoincrement_pk or ""
        sent = self.shape(tuple(f for f in shape.fields if f != pk), True) if fetch_key else shape
        current = self._stream
        if current is not None and (
            current.sent_shape is not sent or current.numbered != fetch_key
            or current.sent >= _STREAM_ROWS
        ):
            self.settle()
        if self._stream is None:
            self._open(shape, sent, data, locate, fetch_key)
        else:
            opened = self._stream
            opened.add(data, locate)
            self._send(opened, data)
        return True

    def _open(
        self, shape: InsertShape, sent: InsertShape, data: Data, locate: Locate, numbered: bool
    ) -> None:
        """Begin a stream with ``data``: numbered, its first row takes ``nextval()`` (sent by
        a COPY of its own, with the key) inside a savepoint the stream's rows share."""
        first = savepoint = None
        if numbered:
            self._move_sequence()
            first = self.conn.execute(sa.select(sa.func.nextval(self.sequence))).scalar_one()
            savepoint = self.conn.begin_nested()
        opened = _Stream(shape, sent, savepoint, first)
        opened.add(data, locate)
        try:
            if first is not None:
                self._copy_rows(shape, data[:1], [first])
                opened.sent = 1
            sql, oids = self._copy(sent)
            opened.copy = opened.context.enter_context(self.cursor.copy(sql))
            opened.oids = oids
            if oids is not None:
                opened.copy.set_types(oids)
        except BaseException as exc:
            self._abandon(opened, exc)
            if isinstance(exc, WriteFailed):
                raise self._failed_stream(opened.located(exc.orig, exc.row)) from exc.orig
            raise
        self._stream = opened
        self._send(opened, data[1:] if numbered else data)

    def _send(self, opened: _Stream, data: Data) -> None:
        """Write rows into the open COPY; numbered, each dict gets its key as it goes."""
        row = opened.sent_shape.row
        d: dict[str, Any] | None = None
        try:
            write_row = opened.copy.write_row
            if opened.first is None:
                for d in data:
                    write_row(row(d))
            else:
                pk = self.info.autoincrement_pk or ""
                start = opened.first + opened.sent
                for d, key in zip(data, range(start, start + len(data))):
                    d[pk] = key
                    write_row(row(d))
        except BaseException as exc:
            self._stream = None
            self._abandon(opened, exc)
            if isinstance(exc, Exception) and self._sent_row_at_fault(exc):
                at = _position(data, d)
                refused = self._refused(exc, opened.sent_shape, opened.oids, d)
                located = opened.located(refused, None if at is None else opened.sent + at)
                raise self._failed_stream(located) from exc
            if isinstance(exc, Exception):
                raise self._failed_stream(self._stream_failed(opened, exc)) from exc
            raise
        opened.sent += len(data)

    def _refused(
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

    def _sent_row_at_fault(self, exc: Exception) -> bool:
        """An error while rows are written into a COPY comes from the row being sent (a value
        the driver cannot send as the column's type): the server answers only at the end.
        A lost connection is nobody's row."""
        dbapi = self.dialect.loaded_dbapi
        return not isinstance(exc, dbapi.OperationalError)

    def settle(self) -> None:
        self._raise_failure()
        opened = self._stream
        if opened is None:
            return
        self._stream = None
        try:
            opened.context.close()  # COPY ends: the server's verdict on every row sent
        except Exception as exc:
            self._abandon(opened, exc)
            raise self._failed_stream(self._stream_failed(opened, exc)) from exc
        if opened.first is None or opened.savepoint is None:
            return  # rows as given: nothing to prove
        try:
            last = self.conn.execute(sa.select(sa.func.currval(self.sequence))).scalar_one()
            if last == opened.first + opened.sent - 1:
                opened.savepoint.commit()
                return
            data = opened.every()
            _forget_keys(data, self.info.autoincrement_pk or "")
            opened.savepoint.rollback()  # not ours alone: write them again with reserved keys
            self._copy_reserved(opened.shape, data)
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

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failed = self._failure
            raise WriteFailed(failed.orig, failed.row, located=True) from failed.orig

    def close(self) -> None:
        if self._stream is not None:
            opened, self._stream = self._stream, None
            self._abandon(opened, RuntimeError("batch abandoned"))
        super().close()

    def _abandon(self, opened: _Stream, exc: BaseException | None) -> None:
        """Cancel the stream's COPY if still open, forget its keys, roll back its rows.
        Never raises: the caller is already failing with ``exc``."""
        try:
            if exc is not None:
                opened.context.__exit__(type(exc), exc, exc.__traceback__)
        except Exception:  # noqa: BLE001, S110 - the COPY is cancelled either way
            pass
        if opened.first is not None:
            _forget_keys(opened.every(), self.info.autoincrement_pk or "")
        try:
            if opened.savepoint is not None and opened.savepoint.is_active:
                opened.savepoint.rollback()
        except Exception:  # noqa: BLE001, S110 - the enclosing transaction rolls back
            pass

    def _stream_failed(self, opened: _Stream, exc: Exception) -> WriteFailed:
        """The located error of a failed stream: by the COPY line the server names, else by
        looking at the values."""
        failed = self._failed(exc, opened.sent_shape, [])
        if failed.row is not None and opened.first is not None:
            failed.row += 1  # the stream's first row went apart
        row = failed.row
        if row is None and opened.first is not None:
            try:
                rows = opened.shape.rows(opened.every())
                row = self._failed(exc, opened.shape, rows).row
            except Exception:  # noqa: BLE001, S110 - a value that cannot even be built
                pass
        return opened.located(failed.orig, row)

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        self.settle()  # raises a failed stream's error too
        if not data:
            return [] if fetch_key else None
        if not fetch_key:
            self._copy_rows(shape, data)
            return None
        if self._numbered_by_server(shape):
            keys = self._copy_numbered(shape, data)
            if keys is not None:
                return keys
        return self._copy_reserved(shape, data)

    def _copy_reserved(self, shape: InsertShape, data: Data) -> Sequence[int]:
        """COPY the rows with keys reserved first (each dict gets its key as it is sent)."""
        keys = self._reserve(len(data))
        try:
            self._copy_rows(shape, data, keys)
        except BaseException:
            _forget_keys(data, self.info.autoincrement_pk or "")
            raise
        return keys


def _position(data: Data, item: dict[str, Any] | None) -> int | None:
    """Where ``item`` (the row being sent when an error came) sits in ``data``."""
    return next((n for n, d in enumerate(data) if d is item), None)


def _forget_keys(data: Data, pk: str) -> None:
    for d in data:
        d[pk] = None


@dataclass(eq=False)
class _Stream:
    """A COPY left open across ``stream`` calls, sending ``sent_shape``'s columns.

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


class MysqlValuesStrategy(InsertStrategy):
    """Multi-row ``INSERT ... VALUES`` statements cut at the packet budget."""

    name = "mysql_values"
    positional_params = True

    def construct(self, fetch_key: bool) -> sa.Insert:
        stmt = sa.insert(self.info.table)
        pk = self.info.autoincrement_pk
        if fetch_key and pk is not None and self._keys_by == "returning":
            return stmt.returning(self.info.columns[pk])
        return stmt

    @property
    def _keys_by(self) -> str:
        if self.facts.autoinc_consecutive:
            return "range"
        if self.facts.supports_returning:
            return "returning"
        return "row"

    def write(self, shape: InsertShape, data: Data, fetch_key: bool) -> Sequence[Any] | None:
        rows = shape.rows(data)
        if not rows:
            return [] if fetch_key else None
        if fetch_key and self._keys_by == "row":
            return self._one_by_one(shape, rows)
        keys: list[Any] = []
        step = 1
        if fetch_key and self._keys_by == "range":
            # The session's increment now, not the engine's at its first connection: a SET
            # SESSION (or a Galera node joining) changes it. One statement's keys are its
            # steps from LAST_INSERT_ID() (lock mode 0/1), whatever the offset.
            step = self.facts.session_keys(self.conn).increment
        for start, count, sql in self._statements(shape, rows):
            try:
                self.cursor.execute(sql)
            except Exception as exc:
                failed = self._failed(exc, shape, rows[start : start + count])
                raise WriteFailed(exc, None if failed.row is None else start + failed.row) from exc
            if fetch_key:
                if self._keys_by == "range":
                    first = int(self.cursor.lastrowid)
                    keys.extend(range(first, first + count * step, step))
                else:
                    keys.extend(sorted(int(r[0]) for r in self.cursor.fetchall()))
        return keys if fetch_key else None

    def _statements(
        self, shape: InsertShape, rows: list[tuple[Any, ...]]
    ) -> list[tuple[int, int, bytes]]:
        """Statements of whole rows, each within the byte budget (rows measured, not guessed)."""
        head_s, row_fmt, tail_s = shape.values_parts
        raw = self.conn.connection.dbapi_connection
        encoding = getattr(raw, "encoding", "utf8")
        # Sent without parameters (the rows are literals): the head and tail lose SQLAlchemy's
        # doubled '%', as the driver's interpolation would have done.
        head = without_params(head_s, shape.dialect).encode(encoding)
        tail = without_params(tail_s, shape.dialect).encode(encoding)
        budget = self.facts.max_statement_bytes or 1_000_000
        # The driver binds each row's parameters (PyMySQL binds on the client: mogrify is the
        # very text its execute() would send); we only measure and join whole rows.
        mogrify = self.cursor.mogrify
        try:
            literals = [mogrify(row_fmt, row) for row in rows]
            values = list(map(str.encode, literals, repeat(encoding)))
        except Exception as exc:  # a value the driver cannot send (NaN, a lone surrogate)
            raise self._unsendable(exc, shape, rows, encoding) from exc
        # ends[i]: bytes of rows 0..i with a comma after each; a statement of rows a..b-1
        # takes len(head) + ends[b-1] - ends[a-1] - 1 + len(tail) bytes.
        ends = list(accumulate(map((1).__add__, map(len, values))))
        room = budget - len(head) - len(tail) + 1
        out: list[tuple[int, int, bytes]] = []
        start, done = 0, 0
        while start < len(values):
            end = max(bisect_right(ends, done + room, start), start + 1)
            out.append((start, end - start, head + b",".join(values[start:end]) + tail))
            start, done = end, ends[end - 1]
        return out

    def _one_by_one(self, shape: InsertShape, rows: list[tuple[Any, ...]]) -> list[Any]:
        keys = []
        cursor = self.cursor
        encoding = getattr(self.conn.connection.dbapi_connection, "encoding", "utf8")
        for n, row in enumerate(rows):
            try:
                cursor.execute(shape.sql, row)
            except Exception as exc:
                refused = self._refused_in(shape, row, self._sender(encoding))
                raise WriteFailed(refused or exc, n) from exc
            keys.append(cursor.lastrowid)
        return keys

    def _sender(self, encoding: str) -> Callable[[Any], Any]:
        """A value escaped and encoded as the driver sends it, alone."""
        mogrify = self.cursor.mogrify
        return lambda value: mogrify("%s", (value,)).encode(encoding)

    def _unsendable(
        self, exc: Exception, shape: InsertShape, rows: Sequence[Sequence[Any]], encoding: str
    ) -> WriteFailed:
        """The row and column of the value the driver could not escape or encode."""
        send = self._sender(encoding)
        for n, row in enumerate(rows):
            refused = self._refused_in(shape, row, send)
            if refused is not None:
                return WriteFailed(refused, n)
        return WriteFailed(ValueRefused(None, exc), None)


def strategy_for(conn: sa.Connection, info: ModelInfo, facts: DialectFacts) -> InsertStrategy:
    """The strategy the facts name, or Core where the fast path cannot be exact."""
    name = facts.insert_strategy
    if name == "sqlite_rowid":
        return SqliteRowidStrategy(conn, info, facts)
    if name == "pg_copy":
        sequence, numbered = PostgresCopyStrategy.key_sequence(conn, info)
        if info.autoincrement_pk is None or sequence is not None:
            return PostgresCopyStrategy(conn, info, facts, sequence, numbered)
    if name == "mysql_values":
        return MysqlValuesStrategy(conn, info, facts)
    return CoreStrategy(conn, info, facts)
