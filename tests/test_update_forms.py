"""batch_update's UPDATE-by-key forms for many rows, on every backend: PostgreSQL's COPY into
a temporary table (chunks of ``copy_update_rows`` rows or more), SQLite's ``VALUES`` list
(one executemany of same-size chunks), MySQL/MariaDB's ``UNION ALL`` table. Each form stores
every value exactly or refuses it before anything stays written, counts matched rows, and
leaves the records' snapshots right (the fields not written keep their pending changes)."""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import uuid
from typing import Annotated

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import (
    ActiveRecord,
    Col,
    DataError,
    NotNullViolation,
    OptimisticLockMixin,
    QueryError,
    StaleRecordError,
    Transaction,
)
from activerecord.backend.dialects import PostgreSQLFacts

from .models import Everything, Status

#: Enough rows for every backend's bulk form (PostgreSQL's COPY starts here).
MANY = PostgreSQLFacts.copy_update_rows + 7


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Tally(Model):
    __table_name__ = "uf_tallies"

    id: int | None = None
    name: str
    n: int = 0
    note: str | None = None


class Short(Model):
    """A column narrower than the field says (an existing table's, say): the database is the
    one to refuse a longer text."""

    __table_name__ = "uf_shorts"

    id: int | None = None
    code: Annotated[str, Col(type=sa.String(5))] = ""


class Ledger(OptimisticLockMixin, Model):
    __table_name__ = "uf_ledgers"

    id: int | None = None
    amount: int = 0


def _statements(db: activerecord.Database) -> tuple[list[str], object]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    return seen, record


def _form(statements: list[str]) -> str:
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    text = " ".join(updates)
    if "pg_temp.ar_update_rows" in text:
        return "copy"
    if "ar_update_rows" in text:  # MySQL's temporary table, filled by LOAD DATA
        return "load"
    if "FROM (VALUES" in text:
        return "values_select"
    if "UNION ALL" in text:
        return "union"
    return "other"


def _tallies(n: int) -> list[Tally]:
    Tally.batch_insert([Tally(name=f"t{i}", n=i) for i in range(n)])
    return Tally.query().order_by("id").all()


def test_each_backend_writes_many_rows_in_its_bulk_form(db, fresh):
    fresh(Tally)
    tallies = _tallies(MANY)
    for t in tallies:
        t.n = t.n * 3 + 1
        t.note = None if t.n % 2 else f"note\t{t.n}\n\\ é ✓ '"
    seen, listener = _statements(db)
    try:
        assert Tally.batch_update(tallies, ["n", "note"]) == MANY
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert _form(seen) == db.facts.update_style(MANY)
    stored = {t.id: (t.n, t.note) for t in Tally.query()}
    assert stored == {t.id: (t.n, t.note) for t in tallies}
    assert not any(t.changed_fields for t in tallies)


def test_every_type_and_null_round_trips_in_the_bulk_form(fresh, backend):
    fresh(Everything)
    Everything.batch_insert([Everything(i=i) for i in range(MANY)])
    records = Everything.query().order_by("id").all()
    for n, rec in enumerate(records):
        if n % 3 == 0:  # NULLs, over values that were not NULL
            rec.i = None
            continue
        rec.s, rec.t = f"héllo ✓ {n}", "tab\there\nnew line \\ back 'quote' \"dq\""
        rec.b, rec.f = bool(n % 2), n + 0.25
        rec.d = decimal.Decimal("12345678.1234")
        rec.ts, rec.day = dt.datetime(2024, 2, 29, 1, 2, 3, 456), dt.date(2024, 1, 31)
        rec.tz = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
        rec.tm, rec.u, rec.e = dt.time(23, 59, 59, 5), uuid.uuid4(), Status.INACTIVE
        rec.raw, rec.doc, rec.items = b"\x00\xff\\\t\n", {"a": None, "b": [1, "x"]}, [3, n]
    assert Everything.batch_update(records) == MANY
    stored = {r.id: r.model_dump() for r in Everything.query()}
    assert stored == {r.id: r.model_dump() for r in records}


def test_rows_gone_are_not_counted_and_the_rest_are_written(fresh, backend):
    fresh(Tally)
    tallies = _tallies(MANY)
    gone = {tallies[5].id, tallies[-1].id}
    Tally.query().where(Tally.c.id.in_(gone)).delete()
    for t in tallies:
        t.n = -t.n
    assert Tally.batch_update(tallies, ["n"]) == MANY - 2
    assert Tally.query().count() == MANY - 2
    assert all(t.n <= 0 for t in Tally.query())


def test_one_key_twice_is_refused_before_any_sql(db, fresh):
    fresh(Tally)
    tallies = _tallies(MANY)
    twin = Tally(id=tallies[10].id, name="twin", n=1)
    seen, listener = _statements(db)
    try:
        with pytest.raises(QueryError, match=f"records 10 and {MANY}"):
            Tally.batch_update([*tallies, twin], ["n"])
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert seen == []


@pytest.mark.backends("postgresql", "mysql")  # SQLite stores any text length
def test_a_text_too_long_for_its_column_is_refused_in_every_form(fresh, backend):
    fresh(Short)
    for n in (3, MANY):  # the small form (unnest, union) and the bulk one
        Short.query().delete(all_rows=True)
        Short.batch_insert([Short(code="a") for _ in range(n)])
        shorts = Short.query().order_by("id").all()
        shorts[1].code = "far too long"
        with pytest.raises(DataError) as caught:
            Short.batch_update(shorts, ["code"])
        assert (caught.value.record_index, caught.value.column) == (1, "code")
        assert caught.value.operation == "batch_update"
        assert {s.code for s in Short.query()} == {"a"}  # never cut short, nothing written
        assert shorts[1].changed_fields == {"code"}


@pytest.mark.parametrize("n", [10, MANY])
@pytest.mark.parametrize("write", ["batch_update", "batch_upsert"])
def test_a_text_with_no_utf8_names_its_record_in_every_form(fresh, backend, n, write):
    """A lone surrogate (no UTF-8 form; only ``validate=False`` lets one through) is refused
    by the driver as it encodes the statement (a batch update's, an upsert's UPDATE half):
    the error names its record and column, and nothing is written."""
    fresh(Tally)
    tallies = _tallies(n)
    for t in tallies:
        t.n += 1
    tallies[n - 3].__dict__["note"] = "x\udc80"
    with pytest.raises(DataError) as caught:
        if write == "batch_update":
            Tally.batch_update(tallies, ["n", "note"], validate=False)
        else:
            Tally.batch_upsert(tallies, conflict="id", update=["n", "note"], validate=False)
    assert caught.value.record_index == n - 3
    assert caught.value.column == "note"
    assert sorted(t.n for t in Tally.query()) == list(range(n))


def test_a_null_for_a_not_null_column_names_its_record_in_every_form(fresh, backend):
    """A NULL the field would refuse (set past validation, as ``model_construct`` may) is
    refused by the column's NOT NULL: the error names the record and the column, in the
    small form and the bulk one, on every backend; nothing written."""
    fresh(Short)
    for n in (3, MANY):
        Short.query().delete(all_rows=True)
        Short.batch_insert([Short(code="a") for _ in range(n)])
        shorts = Short.query().order_by("id").all()
        for s in shorts:
            s.code = "b"
        shorts[n - 2].__dict__["code"] = None
        with pytest.raises(NotNullViolation) as caught:
            Short.batch_update(shorts, ["code"])
        assert (caught.value.record_index, caught.value.column) == (n - 2, "code")
        assert f"record {n - 2}" in str(caught.value)
        assert {s.code for s in Short.query()} == {"a"}


def test_a_refused_bulk_call_rolls_back_inside_a_transaction(fresh, backend):
    fresh(Short, Tally)
    Short.batch_insert([Short(code="a") for _ in range(MANY)])
    shorts = Short.query().order_by("id").all()
    tallies = _tallies(MANY)
    for t in tallies:
        t.n += 1000
    with Transaction():
        for s in shorts:
            s.code = "b"
        assert Short.batch_update(shorts, ["code"]) == MANY
        # a second bulk call in the same transaction (the first's table is gone)
        assert Tally.batch_update(tallies, ["n"]) == MANY
        if backend != "sqlite":
            shorts[3].code = "far too long"
            with pytest.raises(DataError):
                Short.batch_update(shorts, ["code"])
            # the failed call's savepoint is undone; the transaction goes on
            shorts[3].code = "c"
            assert Short.batch_update(shorts, ["code"]) == MANY
    assert Short.query().where({"code": "b"}).count() == MANY - (0 if backend == "sqlite" else 1)
    assert Tally.query().where(Tally.c.n >= 1000).count() == MANY


def test_a_stale_version_in_the_bulk_form_names_the_record(fresh, backend):
    fresh(Ledger)
    Ledger.batch_insert([Ledger(amount=i) for i in range(MANY)])
    ledgers = Ledger.query().order_by("id").all()
    Ledger.query().where({"id": ledgers[42].id}).update({"amount": -1})  # bumps its version
    for rec in ledgers:
        rec.amount += 5
    with pytest.raises(StaleRecordError) as caught:
        Ledger.batch_update(ledgers, ["amount"])
    assert caught.value.indexes == [42]
    # nothing written: the amounts as inserted, but the one changed meanwhile
    assert sorted(r.amount for r in Ledger.query()) == sorted(
        [-1, *(i for i in range(MANY) if i != 42)]
    )
    assert all(r.changed_fields == {"amount"} for r in ledgers)


def test_named_fields_keep_other_pending_changes_and_copies_keep_their_own(fresh, backend):
    fresh(Tally)
    tallies = _tallies(MANY)
    twin = copy.copy(tallies[1])
    for t in tallies:
        t.n, t.note = t.n + 1, "pending"
    assert Tally.batch_update(tallies, ["n"]) == MANY
    assert all(t.changed_fields == {"note"} for t in tallies)
    assert twin.changed_fields == set() and twin.n == 1  # its snapshot is its own
    assert Tally.query().where({"note": None}).count() == MANY
    assert Tally.batch_update(tallies) == MANY  # the pending note, and only it
    assert not any(t.changed_fields for t in tallies)
    assert Tally.query().where({"note": "pending"}).count() == MANY
