"""MySQL and MariaDB (PyMySQL), Galera and TiDB included: facts, session setup, DDL quirks.

Example::

    >>> from sqlalchemy.dialects import mysql
    >>> facts = MySQLFacts.for_dialect(mysql.pymysql.dialect())
    >>> facts.name, facts.batch_update_style, facts.text_compare_binary
    ('mysql', 'union', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import ExecutableDDLElement

from ..aiomysql_packets import fast_packet_reads
from ..bridge import driver_of
from ..errors import is_node_refusal
from ..pymysql_rows import read_unbuffered
from .base import DialectFacts
from .session import SessionKeys, TransactionSetup, host_port

__all__ = ["AddLiveUniqueKeys", "MySQLFacts", "node_unready_reason"]

_SQL_LEVELS = ("READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")
#: Session settings applied to connections of engines this library creates: strict mode, so
#: an out-of-range or over-long value is an error instead of a silent truncation.
_SQL_MODE = (
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
)
#: MySQL's "unknown system variable": a causal-reads setting of a server that is no Galera
#: node, where every read is causal anyway.
_UNKNOWN_VARIABLE = 1193
#: Most key values in one upsert lookup on MariaDB, which turns an ``IN`` list of
#: ``in_predicate_conversion_threshold`` (1000) values or more into a join with a derived
#: table, which its optimizer runs as a scan of the whole table: twice the time of
#: 1000-value lists on 20k rows here, and growing with the table.
_MARIADB_LOOKUP_ROWS = 999


@dataclass(frozen=True)
class MySQLFacts(DialectFacts):
    """MySQL and MariaDB: a packet limit instead of a parameter limit, AUTO_INCREMENT ranges,
    case-blind collations, no partial indexes."""

    # Their executemany runs one round trip per row: one statement of many rows instead.
    batch_update_style: str = "union"
    text_compare_binary: bool = True
    #: The server's ``@@local_infile``: it takes ``LOAD DATA LOCAL INFILE`` (the batch
    #: insert's bulk path, when the connection allows it too; see ``write/strategies``).
    local_infile: bool = False

    dialect_names: ClassVar[tuple[str, ...]] = ("mysql", "mariadb")
    # aiomysql: the async driver behind SQLAlchemy's adapter, driven through the greenlet bridge.
    insert_strategies: ClassVar[dict[str, str]] = {
        "pymysql": "mysql_values", "aiomysql": "mysql_values",
    }
    keys_in_row_order: ClassVar[bool] = True
    #: Drivers whose connections send ``LOAD DATA LOCAL INFILE`` files (PyMySQL reads one by
    #: name, on the calling thread); not aiomysql, whose I/O runs through the async bridge.
    load_data_drivers: ClassVar[frozenset[str]] = frozenset({"pymysql"})
    # "This version of MySQL doesn't yet support 'LIMIT & IN/ALL/ANY/SOME subquery'"; a
    # LIMIT in a derived table runs.
    limit_in_subquery: ClassVar[bool] = False
    # ``SET a = b, b = a`` leaves both equal; standard SQL reads the old row.
    update_reads_assigned: ClassVar[bool] = True
    # DOUBLE takes no special value: NaN and the infinities are errors, -0.0 becomes 0.
    float_specials: ClassVar[frozenset[str]] = frozenset()
    # PyMySQL would store the string "2024-01-01" unvalidated (and a malformed one depends on
    # the SQL mode).
    temporal_as_text: ClassVar[bool] = True
    zero_key_may_generate: ClassVar[bool] = True
    isolation_levels: ClassVar[tuple[str, ...]] = _SQL_LEVELS
    # Galera's wsrep_sync_wait = 1: a read first waits until this node has applied what the
    # cluster committed. On a server that is no Galera node the variable does nothing
    # (MariaDB) or is unknown (MySQL; skipped then).
    causal_reads_statements: ClassVar[tuple[str, ...]] = ("SET SESSION wsrep_sync_wait = 1",)
    supported_scheme: ClassVar[str | None] = "{name}+pymysql"
    several_hosts: ClassVar[bool] = True
    # PyMySQL parses each row in Python: its unbuffered result read column by column is
    # several times faster (backend/pymysql_rows.py); aiomysql's rows come through the bridge.
    streamed_read_drivers: ClassVar[frozenset[str]] = frozenset({"pymysql"})
    # Dict rows upserted through a temporary table loaded by LOAD DATA (write/upsert_staged.py).
    upsert_direct: ClassVar[str | None] = "staged"

    @classmethod
    def read_streamed(
        cls, dbapi_cursor: Any, limit: int | None
    ) -> tuple[list[list[Any]], bool] | None:
        return read_unbuffered(dbapi_cursor, limit)

    @classmethod
    def _fields_of(cls, dialect: sa.Dialect) -> dict[str, Any]:
        mariadb = bool(getattr(dialect, "is_mariadb", False))
        return {"name": "mysql", "lookup_rows": _MARIADB_LOOKUP_ROWS if mariadb else 5000}

    @classmethod
    def _read_server(cls, conn: sa.Connection) -> dict[str, Any]:
        row = conn.exec_driver_sql(
            "SELECT @@max_allowed_packet, @@innodb_autoinc_lock_mode, @@local_infile"
        ).one()
        consecutive = int(row[1]) in (0, 1)
        # SHOW, not @@wsrep_on: MySQL has no such variable.
        wsrep = conn.exec_driver_sql("SHOW VARIABLES LIKE 'wsrep_on'").first()
        # TiDB answers as MySQL, but each TiDB server hands out AUTO_INCREMENT values from
        # its own cache: one statement's keys may jump. Never take a range there.
        if "tidb" in str(conn.exec_driver_sql("SELECT VERSION()").scalar()).lower():
            consecutive = False
        return {
            "max_packet_bytes": int(row[0]),
            "autoinc_consecutive": consecutive,
            "is_galera": wsrep is not None and str(wsrep[1]).upper() == "ON",
            "local_infile": bool(int(row[2] or 0)),
        }

    #: From this many rows a chunk of an update by key (``batch_update``, an upsert's UPDATE
    #: half) is loaded into a temporary table the UPDATE joins (write/load_rows.py). Measured
    #: (same run, two columns), loaded vs UNION ALL: 200 rows 3.1 vs 2.7 ms, 500 rows 5.5 vs
    #: 5.7 ms, 1,000 rows 9.7 vs 11.3 ms, 5,000 rows 43 vs 54 ms.
    load_update_rows: ClassVar[int] = 500

    def loads_data(self) -> bool:
        """Whether rows may go by ``LOAD DATA LOCAL INFILE``: a driver that sends the file
        (PyMySQL), a server with ``local_infile`` on, no Galera node (the connection's own
        flag is checked per load)."""
        return self.driver in self.load_data_drivers and not self.is_galera and self.local_infile

    def update_style(self, nrows: int) -> str:
        """``load`` for chunks of :attr:`load_update_rows` rows or more where rows may go by
        ``LOAD DATA`` (:meth:`loads_data`); else ``union``.

        >>> from sqlalchemy.dialects import mysql
        >>> MySQLFacts.for_dialect(mysql.pymysql.dialect()).update_style(50_000)
        'union'
        """
        if nrows >= self.load_update_rows and self.loads_data():
            return "load"
        return self.batch_update_style

    def direct_upsert(self) -> str | None:
        """``"staged"`` where the rows may go by ``LOAD DATA LOCAL INFILE``: a driver that
        sends the file (PyMySQL), a server with ``local_infile`` on, no Galera node (the
        connection's own flag is checked per write); else None (keys looked up first).

        >>> from sqlalchemy.dialects import mysql
        >>> MySQLFacts.for_dialect(mysql.pymysql.dialect()).direct_upsert() is None
        True
        """
        return self.upsert_direct if self.loads_data() else None

    def session_keys(self, conn: sa.Connection) -> SessionKeys:
        """``auto_increment_increment``, ``auto_increment_offset`` and whether ``0`` asks for
        a key (``sql_mode`` lacks ``NO_AUTO_VALUE_ON_ZERO``); one query, asked for each
        write that relies on it."""
        row = conn.exec_driver_sql(
            "SELECT @@SESSION.auto_increment_increment, @@SESSION.auto_increment_offset, "
            "@@SESSION.sql_mode"
        ).one()
        zero = "NO_AUTO_VALUE_ON_ZERO" not in str(row[2]).upper()
        return SessionKeys(int(row[0]), int(row[1]), zero)

    def _transaction_statements(self, level: str | None, read_only: bool) -> TransactionSetup:
        # SET TRANSACTION (no SESSION) applies to the next transaction only, and must come
        # before it starts; START TRANSACTION then starts it explicitly and consumes it.
        begin: list[str] = []
        if level is not None:
            begin.append(f"SET TRANSACTION ISOLATION LEVEL {level}")
        if read_only:
            begin.append("START TRANSACTION READ ONLY")
        elif level is not None:
            begin.append("START TRANSACTION")
        return TransactionSetup(tuple(begin))

    def _fragment_statements(
        self, rows: int
    ) -> tuple[tuple[sa.TextClause, ...], tuple[str, ...]]:
        begin = (
            sa.text("SET SESSION wsrep_trx_fragment_unit = 'rows'"),
            sa.text("SET SESSION wsrep_trx_fragment_size = :rows").bindparams(rows=rows),
        )
        reset = (
            "SET SESSION wsrep_trx_fragment_size = 0",
            "SET SESSION wsrep_trx_fragment_unit = DEFAULT",
        )
        return begin, reset

    def set_autocommit(self, dbapi_connection: Any, on: bool) -> None:
        dbapi_connection.autocommit(on)

    # -- engine setup -----------------------------------------------------------------------
    @classmethod
    def create_engine(
        cls, url: sa.URL, options: dict[str, Any], hosts: list[str], *, causal_reads: bool
    ) -> sa.Engine:
        """Strict ``sql_mode`` (and causal reads when asked) on every connection; a Galera
        node's refusal drops the connection; several hosts: the first that can serve.
        PyMySQL's ``local_infile`` capability is on unless the URL or ``connect_args`` say
        otherwise: the batch insert's ``LOAD DATA LOCAL INFILE`` path needs it. A server can
        ask a client with it on for any file the process can read, so the driver's answer is
        switched off on every connection (:func:`_answer_no_file_requests`) and on only while
        the library's own ``LOAD DATA`` statement runs; for a server not trusted even then,
        ``connect(url, connect_args={"local_infile": False})``."""
        if url.get_driver_name() in cls.load_data_drivers and "local_infile" not in url.query:
            args = dict(options.get("connect_args") or {})
            args.setdefault("local_infile", True)
            options["connect_args"] = args
        engine = super().create_engine(url, options, hosts, causal_reads=causal_reads)
        if url.get_driver_name() in cls.load_data_drivers:
            event.listen(engine, "connect", _answer_no_file_requests)
        statements = (_SQL_MODE, *(cls.causal_reads_statements if causal_reads else ()))
        event.listen(engine, "connect", _session_setup(statements))
        event.listen(engine, "handle_error", _drop_refusing_node)
        if engine.dialect.is_async:
            event.listen(engine, "connect", _fast_reads)
        if hosts:
            pairs = [host_port(h) for h in hosts]
            event.listen(engine, "do_connect", _failover(pairs, url.port))
        return engine

    # -- types and DDL ----------------------------------------------------------------------
    @classmethod
    def datetime_type(cls, *, aware: bool) -> sa.types.TypeEngine[Any]:
        return mysql.DATETIME(fsp=6)  # microseconds kept

    @classmethod
    def time_type(cls) -> sa.types.TypeEngine[Any]:
        return mysql.TIME(fsp=6)

    @classmethod
    def checks_off_statements(cls, table: str) -> tuple[str, str]:
        return "SET FOREIGN_KEY_CHECKS = 0", "SET FOREIGN_KEY_CHECKS = 1"


class AddLiveUniqueKeys(ExecutableDDLElement):
    """Unique keys among rows not soft-deleted where partial indexes do not exist (MySQL,
    MariaDB): a virtual generated column ``<deleted>_live`` (``IF(deleted IS NULL, 1,
    NULL)``) and a unique index over ``(columns..., live)`` for each key; NULLs never collide
    in a unique index, so deleted rows never conflict.

    >>> t = sa.Table("t", sa.MetaData(), sa.Column("nick", sa.String(9)),
    ...              sa.Column("deleted_at", sa.DateTime))
    >>> ddl = AddLiveUniqueKeys(t, "deleted_at", [("uq_t_nick_live", ["nick"])])
    >>> print(str(ddl.compile(dialect=mysql.pymysql.dialect())).replace(", ADD", ",\\n  ADD"))
    ALTER TABLE t ADD COLUMN deleted_at_live TINYINT AS (IF(deleted_at IS NULL, 1, NULL)) VIRTUAL,
      ADD UNIQUE INDEX uq_t_nick_live (nick, deleted_at_live)
    """

    inherit_cache = False

    def __init__(
        self, table: sa.Table, deleted: str, keys: list[tuple[str, list[str]]]
    ) -> None:
        self.table = table
        self.deleted = deleted
        self.keys = keys

    @property
    def live_column(self) -> str:
        """The generated column's name."""
        return f"{self.deleted}_live"


@compiles(AddLiveUniqueKeys, "mysql")
@compiles(AddLiveUniqueKeys, "mariadb")
def _compile_live_keys(element: AddLiveUniqueKeys, compiler: Any, **kw: Any) -> str:
    prep = compiler.preparer
    live = element.live_column
    parts = [
        f"ADD COLUMN {prep.quote(live)} TINYINT AS "
        f"(IF({prep.quote(element.deleted)} IS NULL, 1, NULL)) VIRTUAL"
    ]
    for name, column_names in element.keys:
        cols = ", ".join(prep.quote(c) for c in [*column_names, live])
        parts.append(f"ADD UNIQUE INDEX {prep.quote(name)} ({cols})")
    return f"ALTER TABLE {prep.format_table(element.table)} " + ", ".join(parts)


def node_unready_reason(dbapi_connection: Any) -> str | None:
    """Why a new MySQL-family connection's server cannot serve (None: it can).

    A Galera node that has left the primary component accepts connections but refuses
    every statement with 1047 until it rejoins; ``wsrep_ready`` says so up front. Servers
    that are not Galera nodes (``wsrep_on`` off or unknown, MySQL) are always ready.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
        row = cursor.fetchone()
        if row is None or str(row[1]).upper() != "ON":
            return None
        cursor.execute("SHOW STATUS LIKE 'wsrep_ready'")
        ready = cursor.fetchone()
        if ready is not None and str(ready[1]).upper() != "ON":
            return "Galera node not ready (not in the primary component)"
        return None
    finally:
        cursor.close()


def _session_setup(statements: tuple[str, ...]) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for statement in statements:
                try:
                    cursor.execute(statement)
                except Exception as exc:
                    args = getattr(exc, "args", ())
                    if statement == _SQL_MODE or not args or args[0] != _UNKNOWN_VARIABLE:
                        raise
        finally:
            cursor.close()

    return on_connect


def _answer_no_file_requests(dbapi_connection: Any, _record: Any) -> None:
    # PyMySQL checks ``_local_infile`` when a server's file request arrives (the LOCAL_FILES
    # capability sent at connect stays): no statement makes the driver send a file; the
    # library's own LOAD DATA answers its request itself (write/strategies/load_data_wire.py).
    if hasattr(dbapi_connection, "_local_infile"):
        dbapi_connection._local_infile = False


def _fast_reads(dbapi_connection: Any, _record: Any) -> None:
    # aiomysql's per-row packet reads, from the stream's buffer (see aiomysql_packets).
    fast_packet_reads(driver_of(dbapi_connection))


def _drop_refusing_node(context: Any) -> None:
    # A Galera node out of the primary component refuses every statement (1047) until it
    # rejoins: treat it as a lost connection, so the pool drops its connections and the next
    # checkout connects again (to another host when several are given).
    if is_node_refusal(context.original_exception):
        context.is_disconnect = True


def _failover(hosts: list[tuple[str, int | None]], default_port: int | None) -> Any:
    """A ``do_connect`` hook: the first host, in the order given, that accepts a connection
    and is ready to serve (a Galera node in the primary component)."""

    def do_connect(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        dbapi = dialect.loaded_dbapi
        refused: list[str] = []
        for host, port in hosts:
            params = dict(cparams, host=host)
            if port or default_port:
                params["port"] = port or default_port
            where = f"{host}:{params.get('port', 3306)}"
            try:
                conn = dbapi.connect(*cargs, **params)
            except dbapi.Error as exc:
                refused.append(f"{where}: {exc}")
                continue
            try:
                reason = node_unready_reason(conn)
            except dbapi.Error as exc:
                reason = str(exc)
            if reason is None:
                return conn
            conn.close()
            refused.append(f"{where}: {reason}")
        raise dbapi.OperationalError(2003, "no host can serve: " + "; ".join(refused))

    return do_connect
