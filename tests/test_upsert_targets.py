"""Upsert exactness (issue 15, items 1, 2, 11, 12), on every backend: update expressions on
columns named like internal parameters, ``+`` on strings, unique keys only the database knows,
named and composite keys declared with ``__table_args__``, and ``created_at`` left alone."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pytest
import sqlalchemy as sa
from pydantic import Field

from activerecord import (
    ActiveRecord,
    ActiveRecordError,
    QueryError,
    SchemaError,
    TimestampMixin,
    UniqueViolation,
    UpsertResult,
    col,
    excluded,
)

from .conftest import raw_count


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Hostile(Model):
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


class Note(Model):
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
    # Two incoming values.
    rows = [{"id": notes[1].id, "s": "p", "t": "q"}]
    assert Note.batch_upsert(rows, update={"s": excluded("s") + excluded("t")}) == (
        UpsertResult(updated=1)
    )
    assert Note.query().where({"id": notes[1].id}).one().s == "pq"


def test_plus_on_strings_concatenates_in_query_update(db, fresh):
    fresh(Note)
    Note.batch_insert([Note(s="10", t="20")])
    Note.query().update({"s": col("s") + col("t"), "t": col("t") + "!"}, all_rows=True)
    assert [(n.s, n.t) for n in Note.query()] == [("1020", "20!")]


class Stamped(TimestampMixin, Model):
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


# -- declared keys: __table_args__ ----------------------------------------------------------
class Seat(Model):
    __table_name__ = "upt_seats"
    __table_args__ = (
        sa.UniqueConstraint("code", name="uq_upt_seats_code"),
        sa.UniqueConstraint("hall", "number"),  # unbounded text in a key: fine on MySQL too
        sa.Index("ix_upt_seats_price", "price"),
    )

    id: int | None = None
    code: Annotated[str, Field(max_length=20)]
    hall: str
    number: int
    price: int = 0


def test_table_args_declare_named_and_composite_keys_and_indexes(db, fresh):
    fresh(Seat)
    with db.engine.connect() as conn:
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("upt_seats")}
    assert "ix_upt_seats_price" in indexes
    Seat.batch_insert([Seat(code="A1", hall="main", number=1, price=10)])
    rows = [{"code": "A1", "hall": "main", "number": 1, "price": 12},
            {"code": "B1", "hall": "side", "number": 1, "price": 8}]
    assert Seat.batch_upsert(rows, conflict="uq_upt_seats_code") == UpsertResult(1, 1)
    records = [Seat(code="X", hall="side", number=1, price=9)]  # same hall and number as B1
    assert Seat.batch_upsert(records, conflict=("number", "hall"), update=["price"]) == (
        UpsertResult(updated=1)
    )
    assert records[0].code == "B1"  # the stored row's value, read back
    assert Seat.batch_insert(
        [Seat(code="Z", hall="main", number=1), Seat(code="C1", hall="main", number=2)],
        on_conflict="ignore",
    ) == 1
    got = sorted((s.code, s.hall, s.number, s.price) for s in Seat.query())
    assert got == [("A1", "main", 1, 12), ("B1", "side", 1, 9), ("C1", "main", 2, 0)]
    with pytest.raises(UniqueViolation):
        Seat.batch_insert([Seat(code="D1", hall="main", number=2)])


def test_table_args_are_checked():
    with pytest.raises(SchemaError, match="existing table"):
        class OnTable(Model):
            __table__ = sa.Table("upt_on_table", sa.MetaData(), sa.Column("id", sa.Integer,
                                 primary_key=True))
            __table_args__ = (sa.Index("ix_x", "id"),)
            id: int | None = None
    with pytest.raises(SchemaError, match="not a constraint or index"):
        class BadArgs(Model):
            __table_name__ = "upt_bad_args"
            __table_args__ = ("code",)
            id: int | None = None
    with pytest.raises(SchemaError, match="must be a tuple"):
        class BadArgs2(Model):
            __table_name__ = "upt_bad_args"
            __table_args__ = sa.Index("ix_y", "id")
            id: int | None = None

    class WithOptions(Model):
        __table_name__ = "upt_with_options"
        __table_args__ = ({"comment": "seats"},)
        id: int | None = None

    assert WithOptions.__table__.comment == "seats"

    class Options(WithOptions):  # Table options are inherited
        __table_name__ = "upt_with_options2"

    assert Options.__table__.comment == "seats"
    with pytest.raises(SchemaError, match="on the class itself"):
        class Balcony(Seat):  # a constraint belongs to one table
            __table_name__ = "upt_balconies"


# -- keys only the database knows -----------------------------------------------------------
class Coupon(Model):
    """Declares no unique key: a migration adds one."""

    __table_name__ = "upt_coupons"

    id: int | None = None
    code: Annotated[str, Field(max_length=20)]
    uses: int = 0


def _migrate_unique_code(db) -> None:
    with db.engine.begin() as conn:
        table = sa.Table("upt_coupons", sa.MetaData(), autoload_with=conn)
        sa.Index("uq_upt_coupons_code", table.c.code, unique=True).create(conn)


def test_a_unique_index_the_model_does_not_declare_is_a_target(db, fresh):
    fresh(Coupon)
    Coupon.batch_insert([Coupon(code="A", uses=1)])
    _migrate_unique_code(db)
    rows = [{"code": "A", "uses": 5}, {"code": "B", "uses": 1}]
    assert Coupon.batch_upsert(rows, conflict="code") == UpsertResult(inserted=1, updated=1)
    rows = [{"code": "B", "uses": 2}]
    assert Coupon.batch_upsert(rows, conflict="uq_upt_coupons_code") == UpsertResult(updated=1)
    assert Coupon.batch_insert([Coupon(code="A"), Coupon(code="C")], on_conflict="ignore") == 1
    assert sorted((c.code, c.uses) for c in Coupon.query()) == [("A", 5), ("B", 2), ("C", 0)]
    with pytest.raises(QueryError, match="neither the primary key nor a unique key"):
        Coupon.batch_upsert(rows, conflict="uses")


def test_a_key_added_after_the_first_lookup_is_found(db, fresh):
    fresh(Coupon)
    assert Coupon.batch_insert([Coupon(code="A")], on_conflict="ignore") == 1  # looked up: none
    _migrate_unique_code(db)
    assert Coupon.batch_upsert([{"code": "A", "uses": 3}], conflict="code") == (
        UpsertResult(updated=1)
    )
    assert [(c.code, c.uses) for c in Coupon.query()] == [("A", 3)]


def test_reflected_inline_unique_column_is_a_target(db):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS upt_inline")
        conn.exec_driver_sql(
            "CREATE TABLE upt_inline (id INTEGER PRIMARY KEY, code VARCHAR(20) UNIQUE, v INTEGER)"
        )
        table = sa.Table("upt_inline", sa.MetaData(), autoload_with=conn)

    class Inline(Model):
        __table__ = table

        id: int
        code: str
        v: int | None = None

    Inline.batch_insert([Inline(id=1, code="a", v=1)])
    assert Inline.batch_upsert([{"id": 2, "code": "a", "v": 2}], conflict="code", update=["v"]) == (
        UpsertResult(updated=1)
    )
    assert Inline.batch_insert([Inline(id=3, code="a"), Inline(id=4, code="b")],
                               on_conflict="ignore") == 1
    assert sorted((i.id, i.code, i.v) for i in Inline.query()) == [(1, "a", 2), (4, "b", None)]
    assert raw_count(db, "upt_inline") == 2


def test_ignore_on_a_missing_table_is_our_error(db, fresh):
    fresh(Coupon)
    Coupon.drop_table()
    with pytest.raises(ActiveRecordError) as raised:
        Coupon.batch_insert([Coupon(code="A")], on_conflict="ignore")
    assert not isinstance(raised.value, sa.exc.SQLAlchemyError)
    with pytest.raises(QueryError):
        Coupon.batch_upsert([{"code": "A"}], conflict="code")


@pytest.mark.backends("mysql")
def test_a_prefix_unique_index_is_not_a_target(db, fresh):
    fresh(Coupon)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE UNIQUE INDEX uq_upt_coupons_prefix ON upt_coupons (code(3))")
    with pytest.raises(QueryError, match="neither the primary key nor a unique key"):
        Coupon.batch_upsert([{"code": "abcd"}], conflict="code")
    assert raw_count(db, "upt_coupons") == 0


def test_load_csv_upserts_on_a_key_only_the_database_has(db, fresh):
    import io

    fresh(Coupon)
    Coupon.batch_insert([Coupon(code="A", uses=1)])
    _migrate_unique_code(db)
    assert Coupon.load_csv(io.StringIO("code,uses\nA,4\nB,2\n"), upsert=("code",)) == 2
    assert Coupon.load_csv(io.StringIO("code,uses\nB,3\n"), upsert="uq_upt_coupons_code") == 1
    assert sorted((c.code, c.uses) for c in Coupon.query()) == [("A", 4), ("B", 3)]
