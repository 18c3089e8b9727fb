"""Exact keys in the awkward cases (issue 15, items 7-10, 14, 28, 29).

MySQL/MariaDB increments other than 1, an explicit ``id=0``, explicit and generated keys in
one batch (written in input order, the PostgreSQL sequence left past the explicit ones), an
SQLite ``BIGINT PRIMARY KEY`` that is no rowid alias, a failed or rolled-back batch from an
iterator, the record a MySQL duplicate-key error blames, and a model with only a key.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import (
    ActiveRecord,
    Col,
    DataError,
    NotNullViolation,
    TimestampMixin,
    Transaction,
    UniqueViolation,
)
from activerecord.backend import get_connection
from activerecord.backend.external import using

from .conftest import dialect_name, raw_count


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class KeyItem(TimestampMixin, Model):
    __table_name__ = "keys_items"

    id: int | None = None
    name: Annotated[str, Field(max_length=40)]


class KeyPair(Model):
    __table_name__ = "keys_pairs"

    id: int | None = None
    a: Annotated[str, Field(max_length=20), Col(unique=True)]
    b: Annotated[str, Field(max_length=20), Col(unique=True)]


class KeyOnly(Model):
    __table_name__ = "keys_only"

    id: int | None = None


def _stored(db: Any, model: type[ActiveRecord] = KeyItem) -> dict[int, str]:
    table = model.__table__
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.id, table.c.name)).all())  # type: ignore[arg-type]


def _items(n: int, prefix: str = "n") -> list[KeyItem]:
    return [KeyItem(name=f"{prefix}{i}") for i in range(n)]


@pytest.fixture
def unit_steps(db: Any) -> None:
    """Skip a test that spells out the ids the server picks where it does not number 1, 2, 3:
    a Galera node steps by the cluster size (and overrides session increments). Exactness
    under any step is proven by the session-increment tests here (on a standalone server)
    and by tests/test_galera.py on every node."""
    if dialect_name(db) != "mysql":
        return
    with db.engine.connect() as conn:
        step = int(conn.exec_driver_sql("SELECT @@auto_increment_increment").scalar_one())
        wsrep = conn.exec_driver_sql("SHOW VARIABLES LIKE 'wsrep_on'").first()
    if step != 1 or (wsrep is not None and str(wsrep[1]).upper() == "ON"):
        pytest.skip("this server numbers keys in steps of its own (a Galera node)")


# -- item 7: MySQL/MariaDB increment and offset read for each call ---------------------------


def _set_increment(cursor: Any, increment: int, offset: int) -> None:
    cursor.execute(
        "SET SESSION auto_increment_increment = %s, auto_increment_offset = %s",
        (increment, offset),
    )


@pytest.mark.backends("mysql")
@pytest.mark.parametrize(("increment", "offset"), [(2, 1), (5, 3)])
def test_keys_exact_under_a_session_increment_set_in_a_transaction(
    db, fresh, unit_steps, increment, offset
):
    fresh(KeyItem)
    KeyItem.batch_insert(_items(3, "before"))  # the engine's facts were read with increment 1
    items = _items(40)
    with Transaction():
        raw = get_connection()
        _set_increment(raw.cursor(), increment, offset)
        try:
            KeyItem.batch_insert(items, batch_size=15)
            more = KeyItem.batch_insert_from_dicts([{"name": f"d{i}"} for i in range(7)])
        finally:  # a session setting outlives the transaction: the pooled connection keeps it
            _set_increment(raw.cursor(), 1, 1)
    stored = _stored(db)
    assert len(stored) == 3 + 40 + 7
    for record in items + more:
        assert stored[record.id] == record.name
    ids = [r.id for r in items]
    assert all(b - a == increment for a, b in zip(ids, ids[1:15]))


@pytest.mark.backends("mysql")
def test_keys_exact_after_a_plain_session_level_change(db, fresh, unit_steps):
    fresh(KeyItem)
    items = _items(25)
    ups = [KeyItem(name="u1"), KeyItem(name="u2")]
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SET SESSION auto_increment_increment = 3")
        try:
            with using(conn):
                KeyItem.batch_insert(items)
                KeyItem.batch_upsert(ups)
            conn.commit()
        finally:
            conn.exec_driver_sql("SET SESSION auto_increment_increment = 1")
    stored = _stored(db)
    assert len(stored) == 27
    for record in items + ups:
        assert stored[record.id] == record.name
    ids = [r.id for r in items + ups]
    assert all(b - a == 3 for a, b in zip(ids, ids[1:]))


# -- item 8: id=0 -----------------------------------------------------------------------------


def test_an_explicit_zero_key_is_stored_or_refused(db, fresh):
    fresh(KeyItem)
    a, z = KeyItem(name="a"), KeyItem(id=0, name="z")
    if dialect_name(db) in ("mysql", "mariadb"):
        # MySQL reads 0 as "generate a key" (unless NO_AUTO_VALUE_ON_ZERO): refused.
        with pytest.raises(DataError) as caught:
            KeyItem.batch_insert([a, z])
        assert caught.value.record_index == 1
        assert "'id'" in str(caught.value)
        assert raw_count(db, "keys_items") == 0
        assert a.id is None and a.is_new_record and z.id == 0 and z.is_new_record
        with pytest.raises(DataError):
            KeyItem(id=0, name="s").save()
        assert raw_count(db, "keys_items") == 0
        with pytest.raises(DataError):
            KeyItem.batch_upsert([KeyItem(id=0, name="u")], conflict="id")
        assert raw_count(db, "keys_items") == 0
    else:
        KeyItem.batch_insert([a, z])
        assert z.id == 0 and a.id is not None and a.id != 0
        assert _stored(db) == {0: "z", a.id: "a"}


@pytest.mark.backends("mysql")
def test_zero_key_is_stored_under_no_auto_value_on_zero(db, fresh):
    fresh(KeyItem)
    with db.engine.connect() as conn:
        mode = conn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar_one()
        conn.exec_driver_sql(
            "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"
        )
        try:
            with using(conn):
                a, z = KeyItem(name="a"), KeyItem(id=0, name="z")
                KeyItem.batch_insert([a, z])
            conn.commit()
        finally:
            conn.exec_driver_sql("SET SESSION sql_mode = %s", (mode,))
    assert z.id == 0
    assert _stored(db) == {0: "z", a.id: "a"}


# -- item 9: explicit and generated keys in one batch, in input order --------------------------


@pytest.mark.parametrize("form", ["dicts", "instances", "generator"])
def test_mixed_keys_are_written_in_input_order(db, fresh, unit_steps, form):
    fresh(KeyItem)
    KeyItem.batch_insert(_items(2, "old"))  # ids 1, 2
    rows: list[dict[str, Any]] = [{"name": "g0"}, {"id": 4, "name": "e1"}, {"name": "g2"}]
    if form == "dicts":
        records = KeyItem.batch_insert_from_dicts(rows)
    else:
        records = [KeyItem(**row) for row in rows]
        KeyItem.batch_insert(records if form == "instances" else iter(records))
    assert [r.id for r in records] == [3, 4, 5]
    assert _stored(db) == {1: "old0", 2: "old1", 3: "g0", 4: "e1", 5: "g2"}
    later = KeyItem(name="later")
    later.save()
    assert later.id is not None and later.id > 5  # MySQL may leave gaps, never reuse


def test_sequence_moves_past_explicit_keys(db, fresh, unit_steps):
    fresh(KeyItem)
    KeyItem.batch_insert([KeyItem(id=10, name="a"), KeyItem(id=7, name="b")])
    KeyItem.batch_insert_from_dicts(
        [{"id": 20 + i, "name": f"c{i}"} for i in range(5)], return_records=False
    )
    new = _items(3)
    KeyItem.batch_insert(new)
    assert [r.id for r in new] == [25, 26, 27]
    one = KeyItem(name="one")
    one.save()
    assert one.id == 28
    # Explicit keys below the sequence leave it where it is.
    KeyItem.batch_insert([KeyItem(id=1, name="low")])
    two = KeyItem(name="two")
    two.save()
    assert two.id == 29


def test_mixed_keys_in_many_chunks_and_runs(db, fresh, unit_steps):
    fresh(KeyItem)
    rows: list[dict[str, Any]] = []
    expected: list[int] = []
    top = 0
    for i in range(60):
        if i % 7 == 3:
            top += 3
            rows.append({"id": top, "name": f"e{i}"})
        else:
            top += 1
            rows.append({"name": f"g{i}"})
        expected.append(top)
    records = KeyItem.batch_insert_from_dicts(rows, batch_size=16)
    assert [r.id for r in records] == expected
    assert _stored(db) == {r.id: r.name for r in records}


# -- item 10: SQLite BIGINT PRIMARY KEY is no rowid alias ----------------------------------------


@pytest.mark.backends("sqlite")
def test_sqlite_bigint_primary_key_is_not_generated(db):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS keys_bigint")
        conn.exec_driver_sql("CREATE TABLE keys_bigint (id BIGINT PRIMARY KEY, name TEXT)")
    table = sa.Table("keys_bigint", sa.MetaData(), autoload_with=db.engine)

    class Big(Model):
        __table__ = table
        id: int | None = None
        name: str

    records = [Big(name="a"), Big(name="b")]
    with pytest.raises(NotNullViolation) as caught:
        Big.batch_insert(records)
    assert caught.value.record_index == 0 and "'id'" in str(caught.value)
    assert raw_count(db, "keys_bigint") == 0
    assert [r.id for r in records] == [None, None] and records[0].is_new_record
    with pytest.raises(NotNullViolation):
        Big(name="c").save()
    with pytest.raises(NotNullViolation):
        Big.batch_insert_from_dicts([{"name": "d"}], return_records=False)
    assert raw_count(db, "keys_bigint") == 0
    given = [Big(id=5, name="a"), Big(id=2**40, name="b")]
    Big.batch_insert(given)
    with db.engine.connect() as conn:
        assert dict(conn.execute(sa.select(table.c.id, table.c.name)).all()) == {  # type: ignore[arg-type]
            5: "a", 2**40: "b"
        }


# -- item 14: a failed or rolled-back batch from an iterator puts every record back -------------


def test_failed_batch_from_an_iterator_puts_earlier_chunks_back(db, fresh):
    fresh(KeyPair)
    KeyPair.batch_insert([KeyPair(a="taken", b="taken")])
    records = [KeyPair(a=f"a{i}", b=f"b{i}") for i in range(50)]
    records[43] = KeyPair(a="taken", b="x43")
    with pytest.raises(UniqueViolation) as caught:
        KeyPair.batch_insert(iter(records), batch_size=10)
    assert caught.value.record_index == 43
    assert raw_count(db, "keys_pairs") == 1
    assert all(r.id is None and r.is_new_record for r in records)
    # They can be written again as they are.
    records[43] = KeyPair(a="free", b="x43")
    KeyPair.batch_insert(iter(records), batch_size=10)
    assert raw_count(db, "keys_pairs") == 51


def test_failed_batch_from_a_generator_puts_stamps_back(db, fresh):
    fresh(KeyItem)
    KeyItem.batch_insert([KeyItem(id=30, name="x")])
    records = _items(40)
    records[35] = KeyItem(id=30, name="dup")

    def gen() -> Iterator[KeyItem]:
        yield from records

    with pytest.raises(UniqueViolation):
        KeyItem.batch_insert(gen(), batch_size=8)
    for record in records[:35]:
        assert record.id is None and record.created_at is None and record.is_new_record


def test_rolled_back_transaction_puts_back_an_iterators_records(db, fresh):
    fresh(KeyItem)
    records = _items(30)
    with pytest.raises(KeyError), Transaction():
        KeyItem.batch_insert(iter(records), batch_size=7)
        assert all(r.id is not None and not r.is_new_record for r in records)
        raise KeyError("roll back")
    assert raw_count(db, "keys_items") == 0
    assert all(r.id is None and r.created_at is None and r.is_new_record for r in records)


def test_records_the_caller_dropped_are_not_kept(db, fresh):
    fresh(KeyItem)
    watched: list[weakref.ref[KeyItem]] = []

    def gen() -> Iterator[KeyItem]:
        for i in range(3000):
            record = KeyItem(name=f"n{i}")
            if i % 500 == 0:
                watched.append(weakref.ref(record))
            yield record

    with Transaction():
        assert KeyItem.batch_insert(gen(), batch_size=200) == 3000
        gc.collect()
        assert all(ref() is None for ref in watched)
    assert raw_count(db, "keys_items") == 3000


def test_failed_upsert_from_an_iterator_puts_earlier_chunks_back(db, fresh):
    fresh(KeyPair)
    stored = KeyPair(a="s", b="s")
    stored.save()
    KeyPair.batch_insert([KeyPair(a="taken", b="taken")])
    records = [KeyPair(a=f"a{i}", b=f"b{i}") for i in range(30)]
    records[3] = KeyPair(id=stored.id, a="s2", b="s2")  # an update of the stored row
    records[25] = KeyPair(a="taken", b="x25")
    with pytest.raises(UniqueViolation):
        KeyPair.batch_upsert(iter(records), batch_size=10)
    assert raw_count(db, "keys_pairs") == 2
    assert all(r.id is None and r.is_new_record for i, r in enumerate(records) if i != 3)
    assert records[3].id == stored.id and records[3].a == "s2" and records[3].is_new_record


def test_save_with_its_own_key_moves_the_sequence(db, fresh):
    # One save() with an explicit key: the next generated key follows it on every backend
    # (SQLite and MySQL do so by themselves; PostgreSQL's sequence is moved past it).
    fresh(KeyItem)
    KeyItem(id=50, name="own").save()
    later = KeyItem(name="later")
    later.save()
    assert later.id is not None and later.id > 50
    # A key below the sequence leaves it where it is: no reuse, no collision.
    KeyItem(id=2, name="low").save()
    after = KeyItem(name="after")
    after.save()
    assert after.id is not None and after.id > later.id
    assert len(_stored(db)) == 4


def test_upsert_moves_the_sequence_past_its_keys(db, fresh):
    fresh(KeyItem)
    KeyItem.batch_upsert([KeyItem(id=40, name="a"), KeyItem(name="b")])
    later = KeyItem(name="later")
    later.save()
    assert later.id is not None and later.id > 40
    assert len(_stored(db)) == 3


# -- item 28: the record a duplicate key blames -------------------------------------------------


def test_duplicate_blames_the_record_holding_the_value_in_the_violated_key(db, fresh):
    fresh(KeyPair)
    KeyPair.batch_insert([KeyPair(a="x", b="y")])
    # Record 1 holds "x" in b (free there); record 0 holds it in a, where it is taken.
    with pytest.raises(UniqueViolation) as caught:
        KeyPair.batch_insert([KeyPair(a="x", b="q"), KeyPair(a="p", b="x")])
    assert caught.value.record_index == 0
    with pytest.raises(UniqueViolation) as caught:
        KeyPair.batch_insert([KeyPair(a="y", b="r"), KeyPair(a="s", b="y")])
    assert caught.value.record_index == 1
    assert raw_count(db, "keys_pairs") == 1


_composite = sa.Table(
    "keys_composite",
    Model.__metadata__,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("x", sa.Integer, nullable=False),
    sa.Column("y", sa.Integer, nullable=False),
    sa.Column("z", sa.String(20), nullable=False, unique=True),
    sa.UniqueConstraint("x", "y"),
)


class KeyComposite(Model):
    __table__ = _composite

    id: int | None = None
    x: int
    y: int
    z: str


def test_duplicate_of_a_composite_key_blames_its_holder(db, fresh):
    fresh(KeyComposite)
    KeyComposite.batch_insert([KeyComposite(x=1, y=2, z="a")])
    # MySQL shows the duplicate (1, 2) as '1-2'; record 0 holds that text in z, a free value.
    with pytest.raises(UniqueViolation) as caught:
        KeyComposite.batch_insert([KeyComposite(x=3, y=4, z="1-2"), KeyComposite(x=1, y=2, z="b")])
    assert caught.value.record_index == 1
    assert raw_count(db, "keys_composite") == 1


# -- item 29: a model with only a primary key ---------------------------------------------------


def test_a_model_with_only_a_key(db, fresh, unit_steps):
    fresh(KeyOnly)
    records = [KeyOnly(), KeyOnly(), KeyOnly()]
    assert KeyOnly.batch_insert(records) == 3
    assert [r.id for r in records] == [1, 2, 3]
    assert KeyOnly.batch_insert_from_dicts([{}, {}], return_records=False) == 2
    more = KeyOnly.batch_insert_from_dicts([{}, {"id": 9}, {}])
    assert [r.id for r in more] == [6, 9, 10]
    assert KeyOnly.batch_insert(iter([KeyOnly() for _ in range(5)]), batch_size=2) == 5
    one = KeyOnly()
    one.save()
    assert one.id is not None and one.id > 15
    assert raw_count(db, "keys_only") == 14
    assert activerecord is not None
