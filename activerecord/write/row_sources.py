"""How the rows of an UPDATE-by-key reach the statement: one :class:`RowSource` per form.

Each form is named by the dialect (``DialectFacts.batch_update_style``, and
``DialectFacts.update_style`` for ``batch_update``); :mod:`.by_key` builds the UPDATE over
the references a source gives and compiles it to a :class:`~.by_key.ByKeyPlan`. The forms
whose rows are bound parameters live here; ``COPY`` into a temporary table is
:mod:`.copy_rows`.

* ``UNNEST``: ``UPDATE ... FROM unnest(array per column)`` (PostgreSQL: a fixed number of
  parameters, so psycopg never re-parses a statement with thousands of placeholders);
* ``UNION``: a multi-table UPDATE joined to a ``UNION ALL`` derived table (MySQL, MariaDB);
* ``VALUES``: ``UPDATE ... FROM (VALUES ...) AS v (c0, c1)`` (other databases);
* ``VALUES_SELECT``: ``UPDATE ... FROM (SELECT column1 AS c0, ... FROM (VALUES ...)) AS v``
  (SQLite 3.33+, whose ``VALUES`` takes no column names: one statement of up to the
  parameter limit's rows ran in half the time of the driver's executemany);
* ``EXECUTEMANY``: one row's statement run by the driver's executemany.

Example::

    >>> import sqlalchemy as sa
    >>> from sqlalchemy.dialects import sqlite
    >>> cols = [sa.Column("id", sa.Integer), sa.Column("n", sa.Integer)]
    >>> refs, made = VALUES_SELECT.refs(cols, 2, "v")
    >>> print(sa.select(*refs).compile(dialect=sqlite.dialect()))  # doctest: +NORMALIZE_WHITESPACE
    SELECT v.c0, v.c1 FROM (SELECT column1 AS c0, column2 AS c1
    FROM (VALUES (?, ?), (?, ?))) AS v
    >>> [slot for _, slot in made]
    [(0, 0), (0, 1), (0, 2), (0, 3)]
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

if TYPE_CHECKING:
    from .by_key import ByKeyPlan

__all__ = [
    "EXECUTEMANY",
    "UNION",
    "UNNEST",
    "VALUES",
    "VALUES_SELECT",
    "Made",
    "RowSource",
    "Slot",
]

#: Where a placeholder's value comes from: ``(0, i)`` row value ``i`` (rows laid end to end),
#: ``(1, j)`` scalar ``j`` (one value for every row: ``updated_at``), ``(2, value)`` a constant.
Slot = tuple[int, Any]
#: The parameters a statement builder made, by key: the object and its slot.
Made = dict[str, tuple[sa.BindParameter[Any], Slot]]


class RowSource:
    """How the rows of an UPDATE-by-key reach the statement (one instance per form)."""

    name: ClassVar[str]
    #: One statement holds many rows (its text grows with them), else a fixed text.
    multi_row: ClassVar[bool] = False
    #: The row values are the statement's parameters (else they reach it another way, and
    #: only the scalars are parameters: see :mod:`.copy_rows`).
    binds_rows: ClassVar[bool] = True
    #: Chunks of one size go to the driver in one executemany of the chunk's statement
    #: (SQLite's runs them in C, in the process; a chunk's statement keeps its VALUES list
    #: short enough to stay in the CPU's cache).
    executemany_chunks: ClassVar[bool] = False

    def __repr__(self) -> str:
        return f"<row source {self.name}>"

    def refs(
        self, columns: Sequence[sa.Column[Any]], nrows: int, alias: str
    ) -> tuple[list[Any], list[tuple[sa.BindParameter[Any], Slot]]]:
        """References to the row values of ``columns`` for ``nrows`` rows (bound parameters,
        or the columns of a row source named ``alias``), and each parameter made with its
        slot."""
        raise NotImplementedError

    def params(self, plan: ByKeyPlan, rows: list[tuple[Any, ...]], scalars: tuple[Any, ...]) -> Any:
        """The driver parameters of ``plan`` for processed row tuples."""
        raise NotImplementedError

    def setup(self, columns: Sequence[sa.Column[Any]], dialect: sa.Dialect) -> str | None:
        """What this source runs before a chunk's rows reach the statement, for rows of
        ``columns`` (the plan's :attr:`~.by_key.ByKeyPlan.setup`); None: nothing."""
        return None

    def execute(
        self, conn: sa.Connection, plan: ByKeyPlan, rows: list[tuple[Any, ...]],
        scalars: tuple[Any, ...],
    ) -> int:
        """Run ``plan`` over processed row tuples; the database's row count."""
        # The text is a compiled Core construct; only its parameters change.
        return int(conn.exec_driver_sql(plan.sql, self.params(plan, rows, scalars)).rowcount)


def _row_binds(columns: Sequence[sa.Column[Any]], nrows: int) -> list[list[sa.BindParameter[Any]]]:
    return [
        [sa.bindparam(f"r{i}_{j}", type_=c.type) for j, c in enumerate(columns)]
        for i in range(nrows)
    ]


def _made(rows: list[list[sa.BindParameter[Any]]]) -> list[tuple[sa.BindParameter[Any], Slot]]:
    width = len(rows[0]) if rows else 0
    return [(b, (0, i * width + j)) for i, row in enumerate(rows) for j, b in enumerate(row)]


class _Executemany(RowSource):
    name = "executemany"

    def refs(
        self, columns: Sequence[sa.Column[Any]], nrows: int, alias: str
    ) -> tuple[list[Any], list[tuple[sa.BindParameter[Any], Slot]]]:
        binds = _row_binds(columns, 1)
        return list(binds[0]), _made(binds)

    def params(self, plan: ByKeyPlan, rows: list[tuple[Any, ...]], scalars: tuple[Any, ...]) -> Any:
        pick = plan.pick
        if pick is None:
            return [plan.layout(row, scalars) for row in rows]
        if len(pick) == 1:
            k = pick[0]
            return [((row + scalars)[k],) for row in rows]
        get = itemgetter(*pick)
        if scalars:
            return [get(row + scalars) for row in rows]
        return list(map(get, rows))


class _Unnest(RowSource):
    name = "unnest"

    def refs(
        self, columns: Sequence[sa.Column[Any]], nrows: int, alias: str
    ) -> tuple[list[Any], list[tuple[sa.BindParameter[Any], Slot]]]:
        arrays = [sa.bindparam(f"a{j}", type_=sa.ARRAY(_unsized(c.type)))
                  for j, c in enumerate(columns)]
        names = [f"c{j}" for j in range(len(columns))]
        # Typed, so an expression over them means what it does over the columns ("+" on text).
        typed = [sa.column(n, c.type) for n, c in zip(names, columns)]
        source = sa.func.unnest(*arrays).table_valued(*typed).render_derived(name=alias)
        return [source.c[n] for n in names], [(b, (0, j)) for j, b in enumerate(arrays)]

    def params(self, plan: ByKeyPlan, rows: list[tuple[Any, ...]], scalars: tuple[Any, ...]) -> Any:
        return plan.layout([list(column) for column in zip(*rows)], scalars)


def _unsized(type_: Any) -> Any:
    """The array element type of a column: a ``VARCHAR(n)`` without its length, as an
    explicit cast to ``VARCHAR(n)`` cuts a longer text short where the UPDATE's assignment
    to the column refuses it (exact or refused). Other types as they are (``CHAR`` without a
    length is ``CHAR(1)``).

    >>> _unsized(sa.String(5)).length is None, _unsized(sa.CHAR(5)).length
    (True, 5)
    """
    if isinstance(type_, sa.String) and type_.length is not None \
            and not isinstance(type_, (sa.Enum, sa.CHAR, sa.NCHAR)):
        unsized = copy.copy(type_)
        unsized.length = None
        return unsized
    return type_


class _Values(RowSource):
    name = "values"
    multi_row = True

    def refs(
        self, columns: Sequence[sa.Column[Any]], nrows: int, alias: str
    ) -> tuple[list[Any], list[tuple[sa.BindParameter[Any], Slot]]]:
        rows = _row_binds(columns, nrows)
        values = sa.values(
            *[sa.column(f"c{j}", c.type) for j, c in enumerate(columns)], name=alias
        ).data([tuple(row) for row in rows])
        return [values.c[f"c{j}"] for j in range(len(columns))], _made(rows)

    def params(self, plan: ByKeyPlan, rows: list[tuple[Any, ...]], scalars: tuple[Any, ...]) -> Any:
        split = plan.rows_in_order
        if split is not None:  # the rows' values in order, scalars only before or after
            head, tail = split
            if not head and not tail:
                return tuple(chain.from_iterable(rows))  # one C pass
            return (*[scalars[j] for j in head], *chain.from_iterable(rows),
                    *[scalars[j] for j in tail])
        flat = list(chain.from_iterable(rows))
        pick = plan.pick
        if pick is None:
            return plan.layout(flat, scalars)
        flat.extend(scalars)
        return tuple(map(flat.__getitem__, pick))


class _ValuesSelect(_Values):
    name = "values_select"
    executemany_chunks = True

    def refs(
        self, columns: Sequence[sa.Column[Any]], nrows: int, alias: str
    ) -> tuple[list[Any], list[tuple[sa.BindParameter[Any], Slot]]]:
        rows = _row_binds(columns, nrows)
        # SQLite names a VALUES list's columns column1, column2...: a SELECT renames them.
        values = sa.values(
            *[sa.column(f"column{j + 1}", c.type) for j, c in enumerate(columns)]
        ).data([tuple(row) for row in rows])
        named = sa.select(*[values.c[f"column{j + 1}"].label(f"c{j}")
                            for j in range(len(columns))]).subquery(alias)
        return [named.c[f"c{j}"] for j in range(len(columns))], _made(rows)


class _Union(_Values):
    name = "union"

    def refs(
        self, columns: Sequence[sa.Column[Any]], nrows: int, alias: str
    ) -> tuple[list[Any], list[tuple[sa.BindParameter[Any], Slot]]]:
        rows = _row_binds(columns, nrows)
        # Every row labelled alike, so one row's text repeats (see ByKeyPlan.compile).
        selects = [sa.select(*[b.label(f"c{j}") for j, b in enumerate(row)]) for row in rows]
        derived = (selects[0] if nrows == 1 else sa.union_all(*selects)).subquery(alias)
        return [derived.c[f"c{j}"] for j in range(len(columns))], _made(rows)


EXECUTEMANY: RowSource = _Executemany()
UNNEST: RowSource = _Unnest()
VALUES: RowSource = _Values()
VALUES_SELECT: RowSource = _ValuesSelect()
UNION: RowSource = _Union()
