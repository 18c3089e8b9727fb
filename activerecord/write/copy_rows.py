"""The rows of an UPDATE-by-key ``COPY``-ed into a temporary table the UPDATE joins
(PostgreSQL with psycopg): the ``copy`` :class:`~.row_sources.RowSource`.

Per chunk, four statements in the call's transaction::

    CREATE TEMPORARY TABLE pg_temp.ar_update_rows ON COMMIT DROP AS
        SELECT t.id AS c0, t.score AS c1 FROM t WITH NO DATA
    COPY pg_temp.ar_update_rows FROM STDIN          -- the rows, text format
    UPDATE t SET score=v.c1 FROM pg_temp.ar_update_rows AS v WHERE t.id = v.c0
    DROP TABLE pg_temp.ar_update_rows

The temporary table's columns are the target columns' own types (``CREATE TABLE AS``), so
each value is read by its column type's input function, as an INSERT would read it: a text
too long for a ``varchar(n)`` or a number out of its type's range is refused (the ``unnest``
arrays' casts would cut the text short), and the error names the record and the column.
psycopg formats the rows in C, and the server parses no array literal: at 20,000 rows of
two integers this took 68-83 ms where ``unnest`` took 96-162 ms and the driver's
executemany 283-426 ms (same run each; the CREATE and DROP cost about 3 ms, so
:meth:`~activerecord.backend.dialects.DialectFacts.update_style` takes this form only for
chunks of ``copy_update_rows`` rows or more). A failed call rolls back to before the
CREATE; ``ON COMMIT DROP`` is there should a caller commit around a failure it caught.

Example::

    >>> import sqlalchemy as sa
    >>> from sqlalchemy.dialects import postgresql
    >>> table = sa.table("t", sa.column("id"), sa.column("score"))
    >>> print(setup_statement([table.c.id, table.c.score], postgresql.psycopg.dialect()))
    ... # doctest: +NORMALIZE_WHITESPACE
    CREATE TEMPORARY TABLE pg_temp.ar_update_rows ON COMMIT DROP AS
    SELECT id AS c0, score AS c1 FROM t WITH NO DATA
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.bridge import copy_context, copy_cursor
from ..errors import QueryError
from ..insert.locate import ValueRefused, WriteFailed
from .row_sources import RowSource, Slot

if TYPE_CHECKING:
    from .by_key import ByKeyPlan

__all__ = ["COPY", "copy_column", "setup_statement"]

#: The temporary table (one per chunk, dropped after its UPDATE).
TABLE = "ar_update_rows"
SCHEMA = "pg_temp"
_COPY_SQL = f"COPY {SCHEMA}.{TABLE} FROM STDIN"
_DROP_SQL = f"DROP TABLE {SCHEMA}.{TABLE}"
#: The server's context of a value it refused: ``COPY ar_update_rows, line 3, column c1: ...``.
_COPY_COLUMN = re.compile(r"\bCOPY [^,]+, line (\d+), column c(\d+)\b")


def setup_statement(columns: Sequence[sa.ColumnClause[Any]], dialect: sa.Dialect) -> str:
    """The ``CREATE TEMPORARY TABLE`` whose columns ``c0, c1, ...`` have the types of
    ``columns`` (of one table), compiled for ``dialect``."""
    prep = dialect.identifier_preparer
    table = columns[0].table
    picked = ", ".join(f"{prep.quote(c.name)} AS c{j}" for j, c in enumerate(columns))
    # Identifiers only, each quoted by the dialect; no value is part of this text.
    source = prep.format_table(table)  # type: ignore[arg-type]
    head = f"CREATE TEMPORARY TABLE {SCHEMA}.{TABLE} ON COMMIT DROP AS"
    return f"{head} SELECT {picked} FROM {source} WITH NO DATA"  # noqa: S608


def copy_column(err: BaseException) -> tuple[int, int] | None:
    """(row, value position) of the value a failed COPY names in its context, 0-based.

    >>> class Err(Exception):
    ...     pass
    >>> copy_column(Err('value too long\\nCONTEXT:  COPY ar_update_rows, line 2, column c1: "x"'))
    (1, 1)
    """
    diag = getattr(err, "diag", None)
    for text in (getattr(diag, "context", None), str(err)):
        found = _COPY_COLUMN.search(text or "")
        if found:
            return int(found.group(1)) - 1, int(found.group(2))
    return None


class _Copy(RowSource):
    name = "copy"
    binds_rows = False

    def refs(
        self, columns: Sequence[sa.Column[Any]], nrows: int, alias: str
    ) -> tuple[list[Any], list[tuple[sa.BindParameter[Any], Slot]]]:
        names = [f"c{j}" for j in range(len(columns))]
        typed = [sa.column(n, c.type) for n, c in zip(names, columns)]
        rows = sa.table(TABLE, *typed, schema=SCHEMA).alias(alias)
        return [rows.c[n] for n in names], []

    def params(self, plan: ByKeyPlan, rows: list[tuple[Any, ...]], scalars: tuple[Any, ...]) -> Any:
        return plan.layout((), scalars)

    def setup(self, columns: Sequence[sa.Column[Any]], dialect: sa.Dialect) -> str | None:
        return setup_statement(columns, dialect)

    def execute(
        self, conn: sa.Connection, plan: ByKeyPlan, rows: list[tuple[Any, ...]],
        scalars: tuple[Any, ...],
    ) -> int:
        """CREATE, COPY, UPDATE, DROP (see the module docs); a value the driver or the server
        refuses raises :class:`WriteFailed` at its row (its ``orig`` names the column)."""
        if plan.setup is None:
            raise QueryError("internal: a COPY update plan without its temporary table")
        conn.exec_driver_sql(plan.setup)
        _copy(conn, rows, plan.row_columns)
        count = int(conn.exec_driver_sql(plan.sql, self.params(plan, rows, scalars)).rowcount)
        conn.exec_driver_sql(_DROP_SQL)
        return count


def _copy(conn: sa.Connection, rows: list[tuple[Any, ...]], names: Sequence[str]) -> None:
    cursor = copy_cursor(conn.connection.dbapi_connection)
    row: tuple[Any, ...] | None = None
    try:
        with copy_context(cursor.copy(_COPY_SQL)) as copy:
            write_row = copy.write_row
            try:
                for row in rows:
                    write_row(row)
            except Exception as exc:  # the driver could not format a value of this row
                at = next(i for i, r in enumerate(rows) if r is row)
                raise WriteFailed(_refused(cursor, row, names, exc), at) from exc
    except WriteFailed:
        raise
    except Exception as exc:  # the server's verdict on the rows, at the end of the COPY
        found = copy_column(exc)
        if found is None or found[1] >= len(names):
            raise WriteFailed(_driver_error(conn, exc), None) from exc
        row_at, j = found
        sqlstate = getattr(exc, "sqlstate", None)
        refused = ValueRefused(names[j], exc, sqlstate=sqlstate or None)
        raise WriteFailed(refused, row_at) from exc
    finally:
        cursor.close()


def _refused(
    cursor: Any, row: tuple[Any, ...] | None, names: Sequence[str], exc: Exception
) -> BaseException:
    """The refusal naming the column of the value the driver cannot send (each value of
    the row formatted again alone)."""
    if row is None:
        return exc
    from psycopg.adapt import PyFormat, Transformer  # this row source runs on psycopg

    transformer = Transformer(cursor)
    for j, value in enumerate(row):
        if value is None:
            continue
        try:
            transformer.dump_sequence([value], [PyFormat.TEXT])
        except Exception as err:  # noqa: BLE001 - this is the value it refused
            return ValueRefused(names[j] if j < len(names) else None, err, value)
    return exc


def _driver_error(conn: sa.Connection, err: BaseException) -> BaseException:
    """A driver error raised on the raw cursor, wrapped as SQLAlchemy would wrap it when it
    means the connection is gone (so it reads as a lost connection, not a refused value)."""
    dialect = conn.dialect
    dbapi = dialect.loaded_dbapi
    if not isinstance(err, dbapi.Error):
        return err
    try:
        gone = dialect.is_disconnect(err, conn.connection.dbapi_connection, None)
    except Exception:  # noqa: BLE001 - cannot tell: leave it as it is
        gone = False
    if not gone:
        return err
    return sa.exc.DBAPIError.instance(
        None, None, err, dbapi.Error, connection_invalidated=True, dialect=dialect
    )


COPY: RowSource = _Copy()
