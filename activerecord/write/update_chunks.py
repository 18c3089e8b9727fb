"""The statements of a ``batch_update``: its rows in chunks, in the dialect's UPDATE-by-key
form for their size (:meth:`~activerecord.backend.dialects.DialectFacts.update_style`), each
chunk's values processed as SQLAlchemy would before the first statement runs, and the
errors naming the record and column of a refused value.

Chunks of one size share one compiled plan (cached per model, fields and size); where the
form allows (SQLite), they go to the driver in one executemany.

Example::

    >>> _balanced(20_000, 1_000), _balanced(2_500, 1_000)
    (1000, 834)
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.errors import driver_errors, translate_error
from ..backend.transaction import write_connection
from ..errors import DatabaseError, DataError
from ..insert.locate import WriteFailed, refused_in_rows
from ..log import logger
from .by_key import (
    ByKeyPlan,
    RowSource,
    process_rows,
    processors,
    row_source,
    update_statement,
)
from .load_rows import NotLoaded

if TYPE_CHECKING:
    from ..backend.database import Database
    from ..model import ActiveRecord

__all__ = ["StaleChunk", "send_rows"]


class StaleChunk(Exception):
    """Internal: a chunk matched fewer rows than it had records (optimistic lock failed)."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__(start, end)
        self.start = start
        self.end = end


@functools.lru_cache(maxsize=64)
def _plan(
    model: type[ActiveRecord],
    dialect: sa.Dialect,
    source: RowSource,
    fields: tuple[str, ...],
    scalars: tuple[str, ...],
    nrows: int,
) -> ByKeyPlan:
    info = model.__ar_info__
    lock = model._lock_field()
    row_fields = [*info.pk_fields, *fields, *([lock] if lock else [])]
    plan = ByKeyPlan.compile(
        lambda n: update_statement(model, fields, source, n, scalars=scalars),
        source, nrows, len(row_fields), dialect, what=f"the batch update of {model.__name__}",
    )
    columns = [info.columns[f] for f in row_fields]
    return dataclasses.replace(
        plan, setup=source.setup(columns, dialect), row_columns=tuple(c.name for c in columns)
    )


def send_rows(
    model: type[ActiveRecord],
    db: Database,
    rows: list[tuple[Any, ...]],
    names: list[str],
    scalars: tuple[str, ...],
    stamps: list[Any],
    *,
    batch_size: int | None,
) -> int:
    """Write the rows (primary key, ``names``, lock version as read: one tuple per record) in
    the dialect's form for their chunk size, ``stamps`` the values of ``scalars`` for every
    row; the rows matched. Raises :class:`StaleChunk` where a versioned chunk matched fewer
    rows than it has."""
    info = model.__ar_info__
    lock = model._lock_field()
    row_fields = [*info.pk_fields, *names, *([lock] if lock else [])]
    facts = db.facts
    dialect = db.engine.dialect
    style = facts.update_style(min(len(rows), batch_size or len(rows)))
    source = row_source(style)
    size = batch_size or _balanced(
        len(rows), facts.update_rows_per_statement(len(row_fields) + len(scalars), style)
    )
    procs = processors(info, row_fields, dialect)
    for j, proc in processors(info, scalars, dialect):
        stamps[j] = proc(stamps[j])
    chunks = [rows[start:start + size] for start in range(0, len(rows), size)]
    context = f"batch update of {model.__name__}"
    with driver_errors(context, operation="batch_update", model=model.__name__):
        # Every chunk's values processed before the first statement: a refused one writes
        # nothing.
        if procs:
            chunks = [_processed(model, row_fields, procs, chunk, n * size, dialect)
                      for n, chunk in enumerate(chunks)]
        return _run(model, db, source, chunks, names, scalars, tuple(stamps), context)


@dataclasses.dataclass(frozen=True)
class _Call:
    """What every statement of one ``batch_update`` call shares."""

    model: type[ActiveRecord]
    db: Database
    names: tuple[str, ...]
    scalars: tuple[str, ...]
    stamps: tuple[Any, ...]
    context: str


def _run(
    model: type[ActiveRecord],
    db: Database,
    source: RowSource,
    chunks: list[list[tuple[Any, ...]]],
    names: list[str],
    scalars: tuple[str, ...],
    stamps: tuple[Any, ...],
    context: str,
) -> int:
    """The chunks' statements in one transaction (or savepoint); the rows matched."""
    call = _Call(model, db, tuple(names), scalars, stamps, context)
    lock = model._lock_field()
    count = 0
    with write_connection(db, statements=2) as conn:
        start = 0
        for group in _groups(chunks, source):
            try:
                matched = _run_group(conn, call, source, group, start)
            except NotLoaded as why:  # nothing of the group written: the other form
                matched = _not_loaded(conn, call, group, start, why)
            sent = sum(map(len, group))
            if lock and matched != sent:
                raise StaleChunk(start, start + sent)
            count += matched
            start += sent
    return count


def _run_group(
    conn: sa.Connection, call: _Call, source: RowSource, group: list[list[tuple[Any, ...]]],
    start: int,
) -> int:
    """One group's statements (``start``: its first row's place in the call); rows matched."""
    model, context = call.model, call.context
    lock = model._lock_field()
    row_fields = [*model.__ar_info__.pk_fields, *call.names, *([lock] if lock else [])]
    plan = _plan(model, call.db.engine.dialect, source, call.names, call.scalars,
                 len(group[0]) if source.multi_row else 1)
    try:
        return plan.run_many(conn, group, call.stamps)
    except WriteFailed as failed:  # a value the COPY form's table refused
        raise _located(failed, start, context) from failed.orig
    except sa.exc.DBAPIError as exc:  # the statement refused a value: say whose
        located = _too_long(model, row_fields, group, start, exc, context)
        if located is None:
            raise
        raise located from exc
    except (sa.exc.StatementError, UnicodeError) as exc:  # a text the driver cannot encode
        unsent = _unencodable(model, row_fields, group, start, exc, context)
        if unsent is None:
            raise
        raise unsent from exc


def _not_loaded(
    conn: sa.Connection, call: _Call, group: list[list[tuple[Any, ...]]], start: int,
    why: NotLoaded,
) -> int:
    """A group ``LOAD DATA`` could not take, in the dialect's ``batch_update_style`` (which
    names a refused value's record and column); the rows matched."""
    facts = call.db.facts
    style = facts.batch_update_style
    logger.debug("%s: %s instead of LOAD DATA: %s", call.model.__name__, style, why)
    source = row_source(style)
    rows = [row for chunk in group for row in chunk]
    width = len(rows[0]) + len(call.scalars)
    size = _balanced(len(rows), facts.update_rows_per_statement(width, style))
    matched = 0
    for part in _groups([rows[at:at + size] for at in range(0, len(rows), size)], source):
        matched += _run_group(conn, call, source, part, start)
        start += sum(map(len, part))
    return matched


def _unencodable(
    model: type[ActiveRecord],
    fields: Sequence[str],
    group: list[list[tuple[Any, ...]]],
    start: int,
    exc: sa.exc.StatementError | UnicodeError,
    context: str,
) -> DataError | None:
    """The error of a text the driver could not encode (a lone surrogate has no UTF-8),
    naming its record and column; None for another error."""
    found = refused_in_rows(model.__ar_info__, fields, (r for c in group for r in c), exc)
    if found is None or found[3] != "22021":
        return None
    orig = exc.orig if isinstance(exc, sa.exc.StatementError) else exc
    error = DataError(f"cannot send {found[2]!r}: {getattr(orig, 'reason', orig)}", orig=orig)
    error.context, error.record_index, error.column = context, start + found[0], found[1]
    return error


def _groups(
    chunks: list[list[tuple[Any, ...]]], source: RowSource
) -> Iterator[list[list[tuple[Any, ...]]]]:
    """The chunks one call runs: consecutive chunks of one size together where the source
    sends them in one executemany, else one by one."""
    if not source.executemany_chunks:
        yield from ([chunk] for chunk in chunks)
        return
    for _, group in itertools.groupby(chunks, key=len):
        yield list(group)


def _processed(
    model: type[ActiveRecord],
    fields: Sequence[str],
    procs: list[tuple[int, Callable[[Any], Any]]],
    chunk: list[tuple[Any, ...]],
    start: int,
    dialect: sa.Dialect,
) -> list[tuple[Any, ...]]:
    """The chunk's rows with the columns' bind processors applied; a refused value raises
    the DataError naming its record and column."""
    try:
        return process_rows(chunk, procs)
    except Exception as exc:
        raise _refused(model, fields, procs, chunk, start, dialect) from exc


def _balanced(nrows: int, most: int) -> int:
    """Rows per statement for ``nrows`` rows, at most ``most``: chunks of one size (the
    plan of a multi-row form is compiled once per size, and cached).

    >>> _balanced(20_000, 16_383), _balanced(500, 2_000)
    (10000, 500)
    """
    chunks = -(-nrows // most)
    return max(1, -(-nrows // chunks))


def _located(failed: WriteFailed, start: int, context: str) -> DatabaseError:
    """The error of a value the database refused, naming its record (and column)."""
    row = None if failed.row is None else start + failed.row
    return translate_error(failed.orig, context=context, record_index=row)


def _too_long(
    model: type[ActiveRecord],
    fields: Sequence[str],
    group: list[list[tuple[Any, ...]]],
    start: int,
    exc: sa.exc.DBAPIError,
    context: str,
) -> DatabaseError | None:
    """The error of a value the server refused without naming its row (a text too long for
    its column, a NULL in a NOT NULL column: :func:`refused_in_rows`), naming the
    record and column; None for another error (the caller raises the database's as it is)."""
    rows = (row for chunk in group for row in chunk)
    found = refused_in_rows(model.__ar_info__, fields, rows, exc)
    if found is None:
        return None
    error = translate_error(exc, context=context, record_index=start + found[0])
    error.column = found[1]
    return error


def _refused(
    model: type[ActiveRecord],
    fields: Sequence[str],
    procs: list[tuple[int, Callable[[Any], Any]]],
    chunk: Sequence[tuple[Any, ...]],
    start: int,
    dialect: sa.Dialect,
) -> DataError:
    """The DataError naming the record and column whose value a bind processor refused."""
    info = model.__ar_info__
    for n, row in enumerate(chunk):
        for j, proc in procs:
            try:
                proc(row[j])
            except Exception as err:  # noqa: BLE001 - the value refused
                column = info.columns[fields[j]].name
                error = DataError(str(err), orig=err)  # str() names the rest
                error.context = f"batch update of {model.__name__}"
                error.record, error.column = start + n, column
                return error
    return DataError(f"batch update of {model.__name__}: a value was refused")

