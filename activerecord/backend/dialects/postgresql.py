"""PostgreSQL (psycopg 3): its facts, engine setup and transaction statements.

Example::

    >>> from sqlalchemy.dialects import postgresql
    >>> facts = PostgreSQLFacts.for_dialect(postgresql.psycopg.dialect())
    >>> facts.max_params, facts.batch_update_style, facts.chunk_rows(6)
    (65535, 'unnest', 10000)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import sqlalchemy as sa

from .base import DialectFacts
from .binding import without_params
from .session import TransactionSetup, host_port

__all__ = ["PostgreSQLFacts", "move_sequence_past"]

# ``setval`` a sequence to a key rows gave themselves, only forwards and within its bounds
# (``setval`` itself would move it back, or fail past its maximum). ``{seq}`` is an
# expression of this module's own naming the sequence (never a value); the key is bound.
_MOVE_SEQUENCE = (
    "SELECT setval(s.seqrelid, CAST(:top AS bigint)) FROM pg_sequence s "
    "WHERE s.seqrelid = {seq} AND s.seqincrement > 0 "
    " AND CAST(:top AS bigint) <= s.seqmax AND CAST(:top AS bigint) > "
    "  coalesce(pg_sequence_last_value(s.seqrelid), s.seqstart - 1)"
)
_BY_NAME = sa.text(_MOVE_SEQUENCE.format(seq="CAST(:seq AS regclass)"))
_BY_COLUMN = sa.text(
    _MOVE_SEQUENCE.format(seq="CAST(pg_get_serial_sequence(:table, :column) AS regclass)")
)


def move_sequence_past(conn: sa.Connection, sequence: str, top: int) -> None:
    """Move the sequence named ``sequence`` (a regclass text) past ``top`` if it is behind."""
    conn.execute(_BY_NAME, {"seq": sequence, "top": top})


#: Column types whose values psycopg's binary dumpers send as the array's cast reads their
#: text (the same stored value, never a different one), with the one Python type each value
#: must have. A naive-time column takes only naive datetimes: an aware one is cast from
#: ``timestamptz`` (converted to the session's time zone) in binary, its offset dropped in
#: text.
_BINARY_SAFE: tuple[tuple[type[Any], type[Any]], ...] = (
    (sa.Boolean, bool), (sa.Integer, int), (sa.Float, float), (sa.DateTime, dt.datetime),
    (sa.Date, dt.date), (sa.String, str),
)

_SQL_LEVELS = ("READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")


@dataclass(frozen=True)
class PostgreSQLFacts(DialectFacts):
    """PostgreSQL: server-side binding (65,535 parameters), ``COPY``, arrays as parameters."""

    # One array parameter per column, so psycopg never re-parses a statement with thousands
    # of placeholders (it does not cache long ones) and the row count is free of the
    # 65,535-parameter limit.
    batch_update_style: str = "unnest"
    text_refuses_nul: ClassVar[bool] = True
    lookup_any_array: bool = True
    #: The user may create temporary tables (the ``TEMPORARY`` privilege on the database,
    #: read once): ``batch_update``'s ``COPY`` form needs one.
    temp_tables: bool = False

    dialect_names: ClassVar[tuple[str, ...]] = ("postgresql",)
    # psycopg_async: the same driver's async connection, through the greenlet bridge.
    insert_strategies: ClassVar[dict[str, str]] = {
        "psycopg": "pg_copy", "psycopg_async": "pg_copy",
    }
    keys_in_row_order: ClassVar[bool] = True
    #: PostgreSQL binds parameters server side; one statement takes at most 65,535.
    param_limit: ClassVar[int | None] = 65_535
    partial_indexes: ClassVar[bool] = True
    # A list of keys reaches the parameter limit otherwise (and one statement text then
    # serves every list length).
    in_list_array: ClassVar[bool] = True
    keeps_utc_offset: ClassVar[bool] = True
    isolation_levels: ClassVar[tuple[str, ...]] = _SQL_LEVELS
    supported_scheme: ClassVar[str | None] = "{name}+psycopg"
    several_hosts: ClassVar[bool] = True
    #: Rows one COPY stream takes before it is ended and the next begins: what it keeps (its
    #: rows' dicts, to write them again if their keys cannot be proven) stays bounded, and an
    #: error the server found early is heard before many more rows are sent.
    copy_stream_rows: ClassVar[int] = 200_000
    #: Chunks of the ``COPY`` path are this many times the usual. 1: a list's chunks (and
    #: rows nobody gets back) stream through one ``COPY`` whatever the chunk, and a
    #: generator's 10,000-row chunks measured as fast as 50,000-row ones (200k rows, 2
    #: runs: 122-127k vs 112-118k rows/s, validate=False) at a fifth of the peak memory
    #: (37 MB vs 182 MB traced; the issue's bound is 100 MB for 1M rows).
    copy_chunk_factor: ClassVar[int] = 1
    #: From this many rows a chunk of ``batch_update`` is COPY-ed into a temporary table and
    #: written by one UPDATE joined to it (write/copy_rows.py); smaller chunks go as
    #: ``unnest`` arrays, whose statement needs no CREATE and DROP (about 3 ms). Measured
    #: (same run, two integer columns): 1,000 rows 12 ms unnest vs 16-20 ms COPY; 5,000
    #: rows 52-60 ms vs 43-48 ms.
    copy_update_rows: ClassVar[int] = 3_000

    @classmethod
    def _read_server(cls, conn: sa.Connection) -> dict[str, Any]:
        # YugabyteDB answers as PostgreSQL, but its COPY commits every 20,000 rows unless
        # told otherwise: no COPY path there (Core's RETURNING instead).
        row = conn.exec_driver_sql(
            "SELECT version(), has_database_privilege(current_database(), 'TEMPORARY')"
        ).one()
        version, temp = str(row[0]).lower(), bool(row[1])
        if "-yb-" in version:
            return {"insert_strategy": "core", "temp_tables": False}
        return {"temp_tables": temp}

    def update_style(self, nrows: int) -> str:
        """``COPY`` into a temporary table for chunks of :attr:`copy_update_rows` rows or
        more, where the COPY path runs (psycopg) and temporary tables may be made; else
        ``unnest``."""
        if nrows >= self.copy_update_rows and self.insert_strategy == "pg_copy" \
                and self.temp_tables:
            return "copy"
        return self.batch_update_style

    def follow_given_key(
        self, conn: sa.Connection, table: sa.Table, column: sa.Column[Any], key: int
    ) -> None:
        """The sequence behind a serial or identity key knows nothing of keys rows give
        themselves: move it past ``key`` (never back), as SQLite's and MySQL's numbering
        follows such keys by itself. One statement; nothing for a key with no sequence."""
        preparer = conn.dialect.identifier_preparer
        # pg_get_serial_sequence parses the table as SQL (quoted as the DDL quotes it) and
        # takes the column name as it is.
        name = without_params(preparer.format_table(table, use_schema=True), conn.dialect)
        conn.execute(_BY_COLUMN, {"table": name, "column": column.name, "top": key})

    def binary_arrays(
        self, sql: str, arrays: Mapping[str, tuple[Any, Sequence[Any]]]
    ) -> str:
        """Array parameters of simple types go binary (``%(a0)b``): psycopg's text dumper
        quotes each element through a regular expression, its binary one does not (10,000
        rows of 5 columns: 18 ms vs 70 ms to send, here).

        >>> import sqlalchemy as sa
        >>> from sqlalchemy.dialects import postgresql
        >>> facts = PostgreSQLFacts.for_dialect(postgresql.psycopg.dialect())
        >>> facts.binary_arrays("SELECT %(a0)s, %(a1)s",
        ...     {"a0": (sa.Integer(), [1, None]), "a1": (sa.Integer(), [1, True])})
        'SELECT %(a0)b, %(a1)s'
        """
        for name, (type_, values) in arrays.items():
            if self._binary_safe(type_, values):
                sql = sql.replace(f"%({name})s", f"%({name})b")
        return sql

    @staticmethod
    def _binary_safe(type_: Any, values: Sequence[Any]) -> bool:
        if isinstance(type_, sa.TypeDecorator):  # values given are its processor's output
            type_ = type_.impl_instance
        if isinstance(type_, (sa.Enum, sa.Interval)):
            return False
        wanted = next((py for sa_type, py in _BINARY_SAFE if isinstance(type_, sa_type)), None)
        if wanted is None:
            return False
        found = set(map(type, values))
        found.discard(type(None))
        if not found <= {wanted}:
            return False
        if wanted is dt.datetime and not type_.timezone:
            return all(v.tzinfo is None for v in values if v is not None)
        return True

    def chunk_factor(self) -> int:
        return self.copy_chunk_factor if self.insert_strategy == "pg_copy" else 1

    def _transaction_statements(self, level: str | None, read_only: bool) -> TransactionSetup:
        # Valid as the first statements of the transaction psycopg opened.
        begin: list[str] = []
        if level is not None:
            begin.append(f"SET TRANSACTION ISOLATION LEVEL {level}")
        if read_only:
            begin.append("SET TRANSACTION READ ONLY")
        return TransactionSetup(tuple(begin))

    def set_autocommit(self, dbapi_connection: Any, on: bool) -> None:
        dbapi_connection.autocommit = on

    @classmethod
    def create_engine(
        cls, url: sa.URL, options: dict[str, Any], hosts: list[str], *, causal_reads: bool
    ) -> sa.Engine:
        """Several hosts: libpq fails over by itself, given hosts and ports as comma lists;
        the first that is up and accepts writes wins."""
        if hosts:
            pairs = [host_port(h) for h in hosts]
            connect_args = dict(options.pop("connect_args", {}))
            connect_args["host"] = ",".join(h for h, _ in pairs)
            connect_args["port"] = ",".join(str(p or url.port or 5432) for _, p in pairs)
            connect_args.setdefault("target_session_attrs", "read-write")
            options["connect_args"] = connect_args
        return super().create_engine(url, options, hosts, causal_reads=causal_reads)

    @classmethod
    def checks_off_statements(cls, table: str) -> tuple[str, str]:
        return f"ALTER TABLE {table} DISABLE TRIGGER ALL", f"ALTER TABLE {table} ENABLE TRIGGER ALL"

