"""UPDATE-by-key forms (activerecord.write.by_key): one row source per style, plans grown from
a few rows' text equal to the compiled statement, and the fast parameter layout equal to the
general one. Compile-only; the forms run against the servers in test_update_delete/test_upsert."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from activerecord import ActiveRecord, OptimisticLockMixin, QueryError
from activerecord.insert.shape import positional
from activerecord.write import by_key


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Meter(OptimisticLockMixin, Model):
    __table_name__ = "bk_meters"
    id: int | None = None
    reading: int = 0
    note: str = ""
    updated_at: dt.datetime | None = None


def test_each_style_name_is_one_row_source():
    assert [by_key.row_source(n) for n in ("executemany", "unnest", "values", "union")] == [
        by_key.EXECUTEMANY, by_key.UNNEST, by_key.VALUES, by_key.UNION,
    ]
    assert by_key.row_source(by_key.UNION) is by_key.UNION
    with pytest.raises(QueryError, match="unknown batch update style 'merge'"):
        by_key.row_source("merge")


def _build(source: by_key.RowSource):
    return lambda n: by_key.update_statement(
        Meter, ["reading", "note"], source, n, scalars=("updated_at",)
    )


@pytest.mark.parametrize(
    ("source", "dialect"),
    [(by_key.UNION, mysql.pymysql.dialect()), (by_key.VALUES, postgresql.psycopg.dialect())],
)
def test_a_grown_update_plan_equals_the_compiled_one(source, dialect):
    width = 4  # id, reading, note, version
    grown = by_key.ByKeyPlan.compile(_build(source), source, 7, width, dialect, what="t")
    whole = by_key.ByKeyPlan.compile_exact(
        _build(source), source, 7, width, positional(dialect), what="t"
    )
    assert grown == whole
    assert grown.names is None and grown.pick is not None


@pytest.mark.parametrize(
    ("source", "dialect", "nrows"),
    [
        (by_key.EXECUTEMANY, sqlite.dialect(), 1),
        (by_key.UNION, mysql.pymysql.dialect(), 3),
        (by_key.VALUES, sqlite.dialect(), 2),
    ],
)
def test_the_fast_layout_equals_the_general_one(source, dialect, nrows):
    plan = by_key.ByKeyPlan.compile_exact(_build(source), source, nrows, 4, dialect, what="t")
    rows = [(i, i * 10, f"n{i}", 3) for i in range(1, 4)]
    stamp = ("2024-01-01 00:00:00",)
    fast = source.params(plan, rows[:nrows] if nrows > 1 else rows, stamp)
    if source is by_key.EXECUTEMANY:
        general = [plan.layout(row, stamp) for row in rows]
    else:
        general = plan.layout([v for row in rows[:nrows] for v in row], stamp)
    assert plan.pick is not None
    assert fast == general


def test_a_plan_that_loses_a_row_value_is_refused():
    def build(n: int):
        stmt, made = by_key.update_statement(Meter, ["reading"], by_key.EXECUTEMANY, n)
        made["r0_1"] = (made["r0_1"][0], (0, 9))  # a slot no row has
        return stmt, made

    with pytest.raises(QueryError, match="internal: the plan of t lost row values"):
        by_key.ByKeyPlan.compile_exact(build, by_key.EXECUTEMANY, 1, 3, sqlite.dialect(),
                                       what="t")


def test_a_column_of_ints_in_range_passes_unrebuilt_and_anything_else_is_processed():
    from activerecord.backend.dialects import integer_guard

    procs = [(0, integer_guard), (1, integer_guard)]
    rows = [(i, i * 7 if i % 5 else None) for i in range(100)]
    assert by_key.process_rows(rows, procs) is rows  # checked by column: nothing rebuilt
    edge = [(-(2**63), 2**63 - 1)] * 40
    assert by_key.process_rows(edge, procs) is edge
    # A whole float, an integral text or a bool in one row: that column is processed.
    mixed = [*rows[:50], (50, 3.0), (51, " 12 "), (52, True), *rows[53:]]
    out = by_key.process_rows(mixed, procs)
    assert out[50] == (50, 3) and type(out[50][1]) is int and out[51] == (51, 12)
    assert out[52] == (52, True) and out[:50] == rows[:50] and out[53:] == rows[53:]
    for bad in (2**63, -(2**63) - 1):
        with pytest.raises(ValueError, match="out of range"):
            by_key.process_rows([*rows, (100, bad)], procs)
    with pytest.raises(ValueError, match="not a whole number"):
        by_key.process_rows([*rows, (100, 2.5)], procs)
