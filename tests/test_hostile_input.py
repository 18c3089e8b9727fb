"""Hostile input: every place a user can put a string, with classic injection payloads.

A value must round-trip unchanged as data; a name that is not a column must be rejected before
any SQL runs; no payload may ever execute (the canary table survives, row counts are exact).
"""

from __future__ import annotations

import io
import json
from typing import Annotated

import pytest
import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col, Expression, QueryError, UnknownColumnError, col

from .conftest import optional


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

pd = optional("pandas", "dataframes")  # only the DataFrame test needs it

PAYLOADS = [
    "'",
    "''",
    '"',
    "`",
    "\\",
    "\\'",
    "\\\\'; DROP TABLE hostile_canary; --",
    "x'; DROP TABLE hostile_canary; --",
    'x"; DROP TABLE hostile_canary; --',
    "1; DELETE FROM hostile_items",
    "1 OR 1=1",
    "' OR '1'='1",
    "admin'--",
    "/* comment */ SELECT 1",
    "-- comment",
    "?",
    "? OR 1=1",
    ":name",
    "%s",
    "%(x)s",
    "$1",
    "); DROP TABLE hostile_canary; --",
    "ＡＤＭＩＮ＇ ＯＲ １＝１",  # fullwidth confusables
    "ʼ OR ʼ1ʼ=ʼ1",  # modifier-letter apostrophes
    "\u202e' OR 1=1 --",
    "x" * 5000,
    "emoji 😀 and 中文",
]


class Item(Model):
    __table_name__ = "hostile_items"

    id: int | None = None
    name: str
    code: Annotated[str, Field(max_length=40), Col(index=True)] = "c"
    qty: int = 0


class Canary(Model):
    __table_name__ = "hostile_canary"

    id: int | None = None
    alive: bool = True


class Keyed(Model):
    """A unique key to upsert on."""

    __table_name__ = "hostile_keyed"

    id: int | None = None
    code: Annotated[str, Field(max_length=100), Col(unique=True)]
    note: str = ""


def _setup(fresh):
    fresh(Item, Canary)
    Canary.create()


def _canary_alive(db) -> bool:
    return sa.inspect(db.engine).has_table("hostile_canary") and Canary.query().count() == 1


def _allowed(payload: str, backend: str) -> bool:
    return not (backend == "postgresql" and "\x00" in payload)


def test_values_round_trip_in_every_write_path(fresh, db, backend):
    _setup(fresh)
    payloads = [p for p in PAYLOADS if _allowed(p, backend)]
    for p in payloads:
        Item.create(name=p)
    Item.batch_insert([Item(name=p) for p in payloads])
    Item.batch_insert_from_dicts([{"name": p} for p in payloads])
    assert Item.query().count() == 3 * len(payloads)
    for p in payloads:
        assert Item.query().where({"name": p}).count() == 3, p
        assert Item.query().where("name = ?", p).count() == 3, p
        assert Item.query().where(Item.c.name == p).count() == 3, p
    # update values and ? parameters inside expressions
    first = Item.query().order_by("id").first()
    assert first is not None
    for p in payloads:
        assert Item.query().where({"id": first.id}).update({"name": p}) == 1
        assert Item.find(first.id).name == p
        expr = Expression("? || ''", p) if backend != "mysql" else Expression("CONCAT(?, '')", p)
        assert Item.query().where({"id": first.id}).update({"name": expr}) == 1
        assert Item.find(first.id).name == p
    assert _canary_alive(db)


def test_nul_bytes(fresh, db, backend):
    _setup(fresh)
    payload = "a\x00b'; DROP TABLE hostile_canary; --"
    if backend == "postgresql":
        # PostgreSQL text cannot hold NUL: a clear database error, nothing executed.
        with pytest.raises(activerecord.ActiveRecordError):
            Item.create(name=payload)
    else:
        rec = Item.create(name=payload)
        assert Item.find(rec.id).name == payload
    assert _canary_alive(db)


def test_a_nul_condition_value_on_postgresql_names_its_column(fresh, db, backend):
    """PostgreSQL text cannot hold NUL: a where() value holding one is refused by the driver
    before it is sent; the error says which column the value was compared with (none where
    an expression stands there), and nothing is written."""
    if backend != "postgresql":
        pytest.skip("only PostgreSQL text refuses NUL")
    _setup(fresh)
    Item.create(name="keep")
    nul = "a\x00b"
    for run in (
        lambda: Item.query().where({"name": nul}).all(),
        lambda: Item.query().where({"name": ["keep", nul]}).count(),
        lambda: Item.query().where({"name": nul}).update({"name": "x"}),
        lambda: Item.query().where(Item.c.name == nul).delete(),
        lambda: Item.query().where("name = ?", nul).all(),
    ):
        with pytest.raises(activerecord.DataError) as caught:
            run()
        assert caught.value.column == "name"
        assert "column 'name'" in str(caught.value)
    with pytest.raises(activerecord.DataError) as caught:
        Item.query().where("lower(name) = ?", nul).all()
    assert caught.value.column is None
    assert [r.name for r in Item.query().all()] == ["keep"]
    assert _canary_alive(db)


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if len(p) < 100])
def test_names_are_rejected_before_sql(fresh, db, backend, payload):
    _setup(fresh)
    Item.create(name="keep")
    with pytest.raises(UnknownColumnError):
        Item.query().where({payload: 1})
    with pytest.raises((UnknownColumnError, QueryError)):
        Item.query().order_by(payload)
    with pytest.raises(UnknownColumnError):
        Item.query().select(payload)
    with pytest.raises(UnknownColumnError):
        Item.query().where({"name": "keep"}).update({payload: "x"})
    with pytest.raises(UnknownColumnError):
        Item.query().where(col(payload) == 1)
    with pytest.raises(UnknownColumnError):
        Item.batch_insert_from_dicts([{"name": "n", payload: "x"}], validate=False)
    with pytest.raises(UnknownColumnError):
        Item.batch_insert_from_dicts([{"name": "n", payload: "x"}])
    with pytest.raises(UnknownColumnError):
        Item.query().sum(payload)
    record = Item.find_one({"name": "keep"})
    assert record is not None
    record.qty = 5
    with pytest.raises(UnknownColumnError):
        Item.batch_update([record], [payload])
    with pytest.raises(UnknownColumnError):
        Item.load_jsonl(io.StringIO('{"name": "n"}\n'), upsert=[payload])
    with pytest.raises(UnknownColumnError):
        Item.insert_dataframe(pd.DataFrame({"name": ["n"]}), upsert=[payload])
    with pytest.raises(UnknownColumnError):
        Item.load_jsonl(io.StringIO(json.dumps({"name": "n", payload: "x"}) + "\n"))
    assert Item.query().count() == 1
    assert Item.find(record.id).qty == 0
    assert _canary_alive(db)


def test_placeholder_count_mismatch_never_runs(fresh, db, backend):
    _setup(fresh)
    with pytest.raises(activerecord.ParameterCountError):
        Item.query().where("name = ? OR 1=1", "x", "; DROP TABLE hostile_canary")
    with pytest.raises(activerecord.ParameterCountError):
        Item.query().where("name = ?")
    assert _canary_alive(db)


def test_quoted_identifiers_for_odd_table_and_column_names(db, backend):
    weird = sa.Table(
        "odd table; --",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("select", sa.String(40)),
    )

    class Odd(Model):
        __table__ = weird
        id: int | None = None
        value: Annotated[str | None, Col(name="select")] = None

    with db.engine.begin() as conn:
        weird.drop(conn, checkfirst=True)
        weird.create(conn)
    try:
        rows = Odd.batch_insert_from_dicts([{"value": p} for p in PAYLOADS[:10]])
        assert isinstance(rows, list)
        assert [Odd.find(r.id).value for r in rows] == PAYLOADS[:10]
        assert Odd.query().where({"select": "'"}).count() == 1
    finally:
        with db.engine.begin() as conn:
            weird.drop(conn)


def test_upsert_keys_and_values_round_trip(fresh, db, backend):
    """Payloads as the values of a conflict target and as the values an upsert writes."""
    fresh(Keyed, Canary)
    Canary.create()
    keys = [p for p in PAYLOADS if _allowed(p, backend) and len(p) <= 100]
    lines = "".join(json.dumps({"code": p, "note": "old"}) + "\n" for p in keys)
    assert Keyed.load_jsonl(io.StringIO(lines), upsert=["code"]) == len(keys)
    # the second load hits every key: each row gets the next payload as its note
    notes = {p: PAYLOADS[(i + 1) % len(PAYLOADS)] for i, p in enumerate(keys)}
    notes = {p: n for p, n in notes.items() if _allowed(n, backend)}
    frame = pd.DataFrame({"code": list(notes), "note": list(notes.values())})
    assert Keyed.insert_dataframe(frame, upsert=["code"]) == len(notes)
    assert Keyed.query().count() == len(keys)
    stored = {k.code: k.note for k in Keyed.query().all()}
    assert stored == {p: notes.get(p, "old") for p in keys}
    assert _canary_alive(db)
