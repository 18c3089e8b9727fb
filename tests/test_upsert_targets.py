"""Upsert exactness (issue 15, items 1, 2, 11, 12), on every backend: update expressions on
columns named like internal parameters, ``+`` on strings, unique keys only the database knows,
named and composite keys declared with ``__table_args__``, and ``created_at`` left alone."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from activerecord import (
    ActiveRecord,
    TimestampMixin,
    UpsertResult,
    col,
    excluded,
)


class Hostile(ActiveRecord):
    """Columns named like the merge plan's own parameters (row, scalar, array, constant)."""

    __table_name__ = "upt_hostiles"

    id: int | None = None
    r0: int = 0
    r1: int = 0
    r1_1: int = 0
    s0: int = 0
    a0: int = 0
    k0: int = 0


def test_update_expressions_on_columns_named_like_internal_parameters(db, fresh):
    fresh(Hostile)
    stored = [Hostile(r0=i, r1=10 * i, r1_1=i, s0=i, a0=i, k0=i) for i in range(1, 8)]
    Hostile.batch_insert(stored)
    ids = [h.id for h in stored]
    incoming = [{"id": k, "r0": 0, "r1": 0, "r1_1": 0, "s0": 0, "a0": 100, "k0": 0}
                for k in ids[:6]]  # 6 rows: the multi-row plans grown from 2, 3 and 4 rows
    update = {
        "r1": col("r1") + 1,
        "r0": col("r0") * 2,
        "r1_1": col("r1_1") + col("r1") + 7,
        "s0": 5,
        "a0": col("a0") + excluded("a0"),
        "k0": col("k0") - 1,
    }
    assert Hostile.batch_upsert(incoming, update=update) == UpsertResult(updated=6)
    got = {h.id: (h.r0, h.r1, h.r1_1, h.s0, h.a0, h.k0) for h in Hostile.query()}
    for i, key in enumerate(ids, start=1):
        if i <= 6:
            assert got[key] == (2 * i, 10 * i + 1, i + 10 * i + 7, 5, i + 100, i - 1), key
        else:
            assert got[key] == (i, 10 * i, i, i, i, i)  # not in the call: untouched


def test_one_row_plan_with_internal_names(db, fresh):
    fresh(Hostile)
    (one,) = [Hostile(r1=1, s0=1)]
    Hostile.batch_insert([one])
    result = Hostile.batch_upsert(
        [{"id": one.id, "r1": 50, "s0": 0}], update={"r1": col("r1") + 1, "s0": 9}
    )
    assert result == UpsertResult(updated=1)
    assert [(h.id, h.r1, h.s0) for h in Hostile.query()] == [(one.id, 2, 9)]


class Note(ActiveRecord):
    __table_name__ = "upt_notes"

    id: int | None = None
    s: Annotated[str, Field(max_length=40)] = ""
    t: str = ""


def test_plus_on_strings_concatenates_in_upsert_updates(db, fresh):
    fresh(Note)
    notes = [Note(s="10", t="a"), Note(s="x", t="b")]
    Note.batch_insert(notes)
    rows = [{"id": notes[0].id, "s": "30", "t": "c"}, {"id": notes[1].id, "s": "y", "t": "d"}]
    update = {"s": col("s") + excluded("s"), "t": excluded("t") + "-" + col("t")}
    assert Note.batch_upsert(rows, update=update) == UpsertResult(updated=2)
    assert [(n.s, n.t) for n in Note.query().order_by("id")] == [("1030", "c-a"), ("xy", "d-b")]
    # The same with instances (their stored values are read back into them).
    again = [Note(id=notes[0].id, s="!", t="")]
    Note.batch_upsert(again, update={"s": col("s") + excluded("s")})
    assert again[0].s == "1030!"
    assert Note.query().where({"id": notes[0].id}).one().s == "1030!"


def test_plus_on_strings_concatenates_in_query_update(db, fresh):
    fresh(Note)
    Note.batch_insert([Note(s="10", t="20")])
    Note.query().update({"s": col("s") + col("t"), "t": col("t") + "!"}, all_rows=True)
    assert [(n.s, n.t) for n in Note.query()] == [("1020", "20!")]


class Stamped(TimestampMixin, ActiveRecord):
    __table_name__ = "upt_stamped"

    id: int | None = None
    n: int = 0


def test_default_update_never_overwrites_created_at(db, fresh):
    fresh(Stamped)
    born = dt.datetime(2000, 1, 2, 3, 4, 5)
    Stamped.batch_insert([Stamped(id=1, n=1, created_at=born), Stamped(id=2, n=1, created_at=born)])
    later = dt.datetime(2020, 1, 1)
    rows = [{"id": 1, "n": 2, "created_at": later}, {"id": 3, "n": 3, "created_at": later}]
    assert Stamped.batch_upsert(rows) == UpsertResult(inserted=1, updated=1)
    records = [Stamped(id=2, n=5, created_at=later)]
    assert Stamped.batch_upsert(records) == UpsertResult(updated=1)
    assert records[0].created_at == born  # the stored value, read back
    got = {s.id: (s.n, s.created_at) for s in Stamped.query()}
    assert got == {1: (2, born), 2: (5, born), 3: (3, later)}  # a new row keeps its own
    assert got[1][0] == 2 and Stamped.find(1).updated_at > born
    # Asked for by name, created_at is written.
    assert Stamped.batch_upsert([{"id": 1, "created_at": later}], update=["created_at"]) == (
        UpsertResult(updated=1)
    )
    assert Stamped.find(1).created_at == later
