"""The insert strategy's contract, and what every backend's strategy shares.

Every strategy runs inside the SQLAlchemy transaction (or savepoint) the batch opened, on
that Connection's DB-API connection, and returns the autoincrement key of each row in input
order when asked. The backends' strategies (one module each: ``core.py``, ``sqlite.py``,
``postgresql.py`` with ``copy_stream.py``, ``mysql.py``) are exact, not guesses; see the
package's docstring for how each proves its keys.

Example::

    >>> InsertStrategy.name, InsertStrategy.streams
    ('base', False)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...backend.transaction import PendingStatement
from ...insert.locate import UniqueKey, ValueRefused, WriteFailed, blamed_row, json_column
from ...insert.shape import InsertShape

if TYPE_CHECKING:
    from ...backend.dialects import DialectFacts
    from ...model.info import ModelInfo

__all__ = ["Data", "InsertStrategy", "Locate", "NOTHING_PENDING"]

Data = Sequence[dict[str, Any]]

#: Maps a row's position in a group to the position the caller reports for it.
Locate = Callable[[int], int]


class _NothingPending:
    """The pending statement of a strategy that never leaves one open."""

    def flush(self) -> None:
        pass


NOTHING_PENDING: PendingStatement = _NothingPending()


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

    @property
    def pending(self) -> PendingStatement:
        """The statement :meth:`stream` leaves open, for the transaction to flush before
        other work uses the connection (see ``backend.transaction.holding_open``)."""
        return NOTHING_PENDING

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

    def failed(self, err: BaseException, shape: InsertShape, rows: Sequence[Any]) -> WriteFailed:
        """``err`` of a statement that sent ``rows``, blamed on the row the database names."""
        flags = self._unique_flags(shape)
        row = blamed_row(err, rows, flags, self._unique_keys(shape))
        orig = self._driver_error(err)
        sent = row is not None and 0 <= row < len(rows)  # (a stream passes no rows)
        column = json_column(err, rows[row], flags) if sent else None  # type: ignore[index]
        if column is not None and orig is err:
            orig = ValueRefused(column, err)  # the check named no column: this row's JSON
        return WriteFailed(orig, row)

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

