"""One insert shape: the columns a group of rows sends, compiled once for one dialect.

The statement is a Core construct (``sa.insert(table)`` today; an ``on_conflict_do_update``
or ``on_duplicate_key_update`` construct fits the same slot) compiled by the engine's dialect
once per batch call. Strategies then run its text on the DB-API cursor, so no statement is
compiled per row or per chunk. Values go through the columns' bind processors (the same
conversions SQLAlchemy applies), column by column.

Example::

    >>> import sqlalchemy as sa

    >>> from sqlalchemy.dialects import sqlite
    >>> t = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
    ...              sa.Column("a", sa.Integer), sa.Column("b", sa.String))
    >>> shape = InsertShape.build(t, {"a": "a", "b": "b"}, ("b", "a"), sqlite.dialect())
    >>> shape.sql, shape.fields
    ('INSERT INTO t (a, b) VALUES (?, ?)', ('a', 'b'))
    >>> shape.rows([{"a": 1, "b": "x"}])
    [(1, 'x')]
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from ..backend.dialects import bind_processor
from ..errors import SchemaError
from .locate import ValueRefused, WriteFailed

__all__ = ["InsertShape", "compile_row", "positional", "source_alias", "split_values"]

Processor = Callable[[Any], Any]

_positional: weakref.WeakKeyDictionary[sa.Dialect, sa.Dialect] = weakref.WeakKeyDictionary()


def positional(dialect: sa.Dialect) -> sa.Dialect:
    """The dialect compiling with ``format`` (``%s``) placeholders when it names them.

    Same as ``create_engine(..., paramstyle="format")``: drivers with ``pyformat`` (PyMySQL,
    psycopg) accept both. Positional text lets strategies repeat one row's ``VALUES`` text.

    >>> from sqlalchemy.dialects import mysql
    >>> positional(mysql.pymysql.dialect()).paramstyle
    'format'
    """
    if dialect.positional:
        return dialect
    clone = _positional.get(dialect)
    if clone is None:
        clone = copy.copy(dialect)
        clone.paramstyle = "format"
        clone.positional = True
        _positional[dialect] = clone
    return clone


def source_alias(table: sa.Table) -> str:
    """The name of the row source (``unnest``, ``VALUES``, ``UNION ALL``) that a batch
    UPDATE joins to ``table``: ``v``, or ``v1``, ``v2``... where the table or its schema is
    called so (``UPDATE v ... FROM unnest(...) AS v`` names one table twice).

    >>> md = sa.MetaData()
    >>> source_alias(sa.Table("users", md)), source_alias(sa.Table("V", md))
    ('v', 'v1')
    """
    taken = {table.name.lower(), (table.schema or "").lower()}
    name, n = "v", 0
    while name in taken:
        n += 1
        name = f"v{n}"
    return name


def split_values(single: str, double: str) -> tuple[str, str, str]:
    """Split a one-row INSERT into (head, row, tail), given the same statement with two rows.

    Two-row = head + row + ", " + row + tail, whatever the dialect puts around the VALUES
    (RETURNING, ON CONFLICT, ON DUPLICATE KEY UPDATE): comparing the two finds the row text.

    >>> split_values("INSERT INTO t (a) VALUES (%s) RETURNING t.id",
    ...              "INSERT INTO t (a) VALUES (%s), (%s) RETURNING t.id")
    ('INSERT INTO t (a) VALUES ', '(%s)', ' RETURNING t.id')
    """
    width = len(double) - len(single) - 2
    if width > 0:
        for end in range(len(single), width - 1, -1):
            row = single[end - width : end]
            if double == single[:end] + ", " + row + single[end:]:
                return single[: end - width], row, single[end:]
    # An invariant, not a user mistake: SQLAlchemy's multi-row INSERT repeats the single row's
    # VALUES group; another compiler output would be a bug here.
    raise ValueError(f"cannot find the VALUES row of {single!r}")


@dataclass
class InsertShape:
    """The columns one group of rows sends, in the order the compiled statement binds them."""

    table: sa.Table
    fields: tuple[str, ...]
    keys: tuple[str, ...]
    dialect: sa.Dialect
    construct: sa.Insert
    sql: str
    processors: tuple[Processor | None, ...] = field(repr=False)

    @classmethod
    def build(
        cls,
        table: sa.Table,
        key_of: Mapping[str, str],
        fields: Sequence[str],
        dialect: sa.Dialect,
        construct: sa.Insert | None = None,
        *,
        positional_params: bool = False,
    ) -> InsertShape:
        """Compile ``construct`` (default ``sa.insert(table)``) for the given fields once.

        ``key_of`` maps a model field name to its column key; ``positional_params`` asks for
        ``%s`` placeholders from a dialect that would name them.
        """
        if positional_params:
            dialect = positional(dialect)
        construct = sa.insert(table) if construct is None else construct
        keys = [key_of[f] for f in fields]
        compiled = construct.compile(dialect=dialect, column_keys=keys)
        order = getattr(compiled, "positiontup", None)
        if compiled.positional and order is not None:
            if sorted(order) != sorted(keys):
                # The table has client-side defaults SQLAlchemy would compute: not our shape.
                raise SchemaError(
                    f"table {table.name!r}: the INSERT binds {order}, the rows give {keys} "
                    "(a column with a client-side default the model does not fill)"
                )
            field_of = {key_of[f]: f for f in fields}
            fields = [field_of[k] for k in order]
            keys = list(order)
        columns = [table.c[k] for k in keys]
        processors = tuple(bind_processor(c.type, dialect) for c in columns)
        return cls(
            table=table,
            fields=tuple(fields),
            keys=tuple(keys),
            dialect=dialect,
            construct=construct,
            sql=compiled.string,
            processors=processors,
        )

    @cached_property
    def columns(self) -> list[sa.Column[Any]]:
        return [self.table.c[k] for k in self.keys]

    @cached_property
    def values_parts(self) -> tuple[str, str, str]:
        """(head, row, tail) of the multi-row form, for strategies that build one."""
        blank = {k: None for k in self.keys}
        double = self.construct.values([blank, blank]).compile(dialect=self.dialect)
        return split_values(self.sql, double.string)

    @cached_property
    def row(self) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
        """One function per shape building a row tuple: fields read and processed in one
        call per row (the fastest pure-Python form; field names enter only as literals).
        A processor that gives its own source (``proc.inline``) is inlined: no call per value."""
        if not any(self.processors):
            if not self.fields:  # every column left to the database (a model of only a key)
                return lambda data: ()
            if len(self.fields) == 1:
                only = self.fields[0]
                return lambda data: (data[only],)
            return itemgetter(*self.fields)
        reads = [f"d[{name!r}]" for name in self.fields]
        return compile_row(f"<insert row {self.table.name}>", "d", reads, self.processors)

    def rows(self, dicts: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Parameter tuples, in statement order, with bind processors applied. A value a
        processor refuses raises :class:`WriteFailed` naming its row and column."""
        try:
            return list(map(self.row, dicts))
        except Exception as exc:
            raise self.refusal(dicts, exc) from exc

    def refusal(self, dicts: Iterable[Mapping[str, Any]], exc: BaseException) -> WriteFailed:
        """The row (position in ``dicts``) and column of the first value the bind processors
        refuse, as a :class:`WriteFailed`; row None when each value passes alone."""
        for n, data in enumerate(dicts):
            found = self.refused_value(data)
            if found is not None:
                return WriteFailed(found, n)
        return WriteFailed(ValueRefused(None, exc), None)

    def refused_value(self, data: Mapping[str, Any]) -> ValueRefused | None:
        """The refusal of the first of one row's values its column's processor raises on."""
        for fname, column, proc in zip(self.fields, self.columns, self.processors):
            if proc is None or fname not in data:
                continue
            try:
                proc(data[fname])
            except Exception as err:  # noqa: BLE001 - this is the value refused
                return ValueRefused(column.name, err, data[fname])
        return None


def compile_row(
    filename: str, arg: str, reads: Sequence[str],
    processors: Sequence[Callable[[Any], Any] | None],
) -> Callable[[Any], tuple[Any, ...]]:
    """A function of one argument ``arg`` returning the tuple of ``reads`` (source reading
    each value from ``arg``), each through its processor; a processor that gives its own
    source (``proc.inline``: a template of ``{v}``, the value, and ``{p}``, the processor,
    and the names it uses) is inlined: no call per value in the usual case.

    >>> compile_row("<doc>", "r", ["r[1]", "r[0]"], [None, str.upper])(("a", "b"))
    ('b', 'A')
    """
    namespace: dict[str, Any] = {}
    lines, items = [], []
    for i, (read, proc) in enumerate(zip(reads, processors)):
        inline = getattr(proc, "inline", None)
        if proc is None:
            items.append(read)
        elif inline is None:
            items.append(f"p{i}({read})")
        else:
            lines.append(f"    v{i} = {read}\n")
            items.append("(" + inline[0].format(v=f"v{i}", p=f"p{i}") + ")")
            namespace.update(inline[1])
        if proc is not None:
            namespace[f"p{i}"] = proc
    source = f"def row({arg}):\n{''.join(lines)}    return ({', '.join(items)},)\n"
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own source
    return namespace["row"]  # type: ignore[no-any-return]
