"""Scale-out settings on the standalone servers (every backend): ``commit_every``,
``connect(retries=..., hosts=..., causal_reads=...)``, ``Transaction(fragment_rows=...)``,
and the key path each dialect object picks (CockroachDB compiled, not run).

The same features on a real Galera cluster are in tests/test_galera.py.
"""

from __future__ import annotations

import io
import threading
from typing import Annotated

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import (
    ActiveRecord,
    BatchValidationError,
    Col,
    ConfigurationError,
    DatabaseConnectionError,
    PartialWriteError,
    Transaction,
    TransactionConflictError,
    UniqueViolation,
)

from .conftest import backend_url, raw_count


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Item(Model):
    __table_name__ = "scaling_items"
    id: int | None = None
    code: Annotated[str, Col(unique=True)]
    qty: int = 0


# -- commit_every ------------------------------------------------------------------------------
def test_commit_every_commits_each_slice_and_says_where_to_resume(fresh, db):
    fresh(Item)
    items = [Item(code=f"c{k}") for k in range(10)]
    items[7].code = "c2"  # a duplicate in the third slice
    with pytest.raises(PartialWriteError) as info:
        Item.batch_insert(items, commit_every=3)
    err = info.value
    assert (err.committed, err.resume_at) == (6, 6)
    assert "6 row(s) committed" in str(err) and "records[6:]" in str(err)
    assert isinstance(err.__cause__, UniqueViolation)
    assert raw_count(db, "scaling_items") == 6
    # The committed records have their keys; the failing slice's are new again.
    stored = {i.code: i.id for i in Item.query().all()}
    assert [i.id for i in items[:6]] == [stored[i.code] for i in items[:6]]
    assert all(i.id is None and i.is_new_record for i in items[6:])
    items[7].code = "c7"
    assert Item.batch_insert(items[err.resume_at:], commit_every=3) == 4
    assert sorted(Item.query().all(), key=lambda i: i.id) == sorted(items, key=lambda i: i.id)


def test_commit_every_validation_error_counts_from_the_start(fresh, db):
    fresh(Item)
    rows = [{"code": f"c{k}", "qty": k} for k in range(9)]
    rows[5]["qty"] = "many"
    with pytest.raises(PartialWriteError) as info:
        Item.batch_insert_from_dicts(rows, commit_every=4)
    assert (info.value.committed, info.value.resume_at) == (4, 4)
    cause = info.value.__cause__
    assert isinstance(cause, BatchValidationError) and set(cause.failures) == {5}
    assert raw_count(db, "scaling_items") == 4


def test_commit_every_of_a_generator_and_its_result(fresh, db):
    fresh(Item)
    made = Item.batch_insert_from_dicts(({"code": f"g{k}"} for k in range(7)), commit_every=2)
    assert isinstance(made, list) and [m.code for m in made] == [f"g{k}" for k in range(7)]
    assert {m.code: m.id for m in made} == {i.code: i.id for i in Item.query().all()}


def test_load_csv_commit_every_names_the_line_to_resume_at(fresh, db):
    fresh(Item)
    text = "code,qty\n" + "".join(f"c{k},{k}\n" for k in range(8)) + "c1,99\n" + "c9,9\n"
    with pytest.raises(PartialWriteError) as info:
        Item.load_csv(io.StringIO(text), commit_every=4)
    err = info.value
    # Lines 2-9 hold c0..c7 (two slices committed); the third slice starts at line 10.
    assert (err.committed, err.resume_at, err.resume_line) == (8, 8, 10)
    assert "line 10" in str(err)
    assert raw_count(db, "scaling_items") == 8
    jsonl = "".join(f'{{"code": "j{k}"}}\n' for k in range(5))
    assert Item.load_jsonl(io.StringIO(jsonl), commit_every=2) == 5


def test_commit_every_is_refused_inside_a_transaction(fresh, db):
    fresh(Item)
    with pytest.raises(ConfigurationError, match="commit_every"):
        with Transaction():
            Item.batch_insert([Item(code="a")], commit_every=10)
    with pytest.raises(ValueError, match="commit_every"):
        Item.batch_insert([Item(code="a")], commit_every=0)
    assert raw_count(db, "scaling_items") == 0


def test_atomic_default_unchanged(fresh, db):
    fresh(Item)
    items = [Item(code=f"c{k}") for k in range(10)]
    items[7].code = "c2"
    with pytest.raises(UniqueViolation):
        Item.batch_insert(items, batch_size=3)
    assert raw_count(db, "scaling_items") == 0


# -- connect(retries=N) ------------------------------------------------------------------------
#: Session settings making a lock wait give up after about a second (a retryable conflict).
SHORT_LOCK_WAIT = {
    "sqlite": {"connect_args": {"timeout": 0.3}},
    "postgresql": {"connect_args": {"options": "-c lock_timeout=300"}},
    "mysql": {"connect_args": {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"}},
}


@pytest.mark.parametrize("retries", [0, 10])
def test_retries_rerun_a_save_that_waited_too_long(fresh, db, backend, retries):
    """Another transaction holds the row's lock for longer than the lock wait allows: the
    save times out (a conflict); with ``connect(retries=N)`` it is re-run and lands."""
    fresh(Item)
    item = Item(code="a")
    item.save()
    activerecord.connect(backend_url(backend), name="short", retries=retries,
                         **SHORT_LOCK_WAIT[backend])

    class Mine(Item):
        __table__ = Item.__table__
        __database__ = "short"

    locked = threading.Event()

    def holder() -> None:
        with Transaction():
            Item.query().where({"code": "a"}).update({"qty": 1})
            locked.set()
            threading.Event().wait(1.8)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert locked.wait(10)
        mine = Mine.find(item.id)
        mine.qty = 2
        if retries:
            assert mine.save() and not mine.changed_fields
        else:
            with pytest.raises(TransactionConflictError):
                mine.save()
            assert mine.changed_fields == {"qty"}
    finally:
        thread.join(30)
        activerecord.disconnect("short")
    assert Item.find(item.id).qty == (2 if retries else 1)


class _Undo(Exception):
    """Raised by the lock holder to roll its transaction back."""


#: What connect(retries=N) re-runs (each in its own transaction, its input a list) and what
#: it must not (a generator read once; work inside the caller's Transaction).
RETRIED = {
    "batch_insert": lambda m: m.batch_insert([m(code="b", qty=2)]),
    "batch_upsert": lambda m: m.batch_upsert([m(code="a", qty=2)], conflict="code"),
    "query_delete": lambda m: m.query().where({"code": "a"}).delete(),
}
NOT_RETRIED = {
    "generator": lambda m: m.batch_upsert(iter([m(code="a", qty=2)]), conflict="code"),
    "in_transaction": lambda m: _in_transaction(m),
}


def _in_transaction(model: type[Item]) -> object:
    with Transaction(model):
        return model.batch_upsert([model(code="a", qty=2)], conflict="code")


@pytest.mark.parametrize("op", [*RETRIED, *NOT_RETRIED])
def test_retries_rerun_batch_writes_of_lists_and_query_deletes(fresh, db, backend, op):
    """Another transaction holds row 'a' and an uncommitted row 'b' longer than the lock wait
    allows, then rolls back: with ``connect(retries=N)`` a batch insert/upsert of a list and
    a query delete run again and land; a generator's batch (it cannot be read twice) and
    work inside the caller's ``Transaction`` raise the conflict, nothing written."""
    fresh(Item)
    Item(code="a").save()
    activerecord.connect(backend_url(backend), name="short", retries=10,
                         **SHORT_LOCK_WAIT[backend])

    class Mine(Item):
        __table__ = Item.__table__
        __database__ = "short"

    locked = threading.Event()

    def holder() -> None:
        try:
            with Transaction():
                Item.query().where({"code": "a"}).update({"qty": 1})
                Item(code="b", qty=1).save()
                locked.set()
                threading.Event().wait(1.8)
                raise _Undo
        except _Undo:
            pass

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert locked.wait(10)
        if op in RETRIED:
            RETRIED[op](Mine)
        else:
            with pytest.raises(TransactionConflictError):
                NOT_RETRIED[op](Mine)
    finally:
        thread.join(30)
        activerecord.disconnect("short")
    stored = {i.code: i.qty for i in Item.query().all()}
    expected = {
        "batch_insert": {"a": 0, "b": 2}, "batch_upsert": {"a": 2}, "query_delete": {},
    }.get(op, {"a": 0})
    assert stored == expected


def test_retries_must_not_be_negative(db):
    with pytest.raises(ConfigurationError, match="retries"):
        activerecord.connect("sqlite://", name="bad", retries=-1)


# -- connect(hosts=...) ------------------------------------------------------------------------
@pytest.mark.backends("postgresql", "mysql")
def test_hosts_fail_over_to_the_first_host_that_is_up(fresh, db, backend):
    fresh(Item)
    url = sa.make_url(backend_url(backend))
    live = f"{url.host}:{url.port or (5432 if backend == 'postgresql' else 3306)}"
    down = "127.0.0.1:1"  # nothing listens there
    listed = activerecord.connect(url, name="listed", hosts=[down, live])
    in_url = url.render_as_string(hide_password=False).replace(live if url.port else url.host,
                                                               f"{down},{live}", 1)
    comma = activerecord.connect(in_url, name="comma")
    try:
        for name in ("listed", "comma"):

            class There(Item):
                __table__ = Item.__table__
                __database__ = name

            There(code=name).save()
        assert sorted(i.code for i in Item.query().all()) == ["comma", "listed"]
        activerecord.connect(url, name="nowhere", hosts=[down])

        class Nowhere(Item):
            __table__ = Item.__table__
            __database__ = "nowhere"

        with pytest.raises(DatabaseConnectionError):
            Nowhere.query().count()
    finally:
        for name in ("listed", "comma", "nowhere"):
            activerecord.disconnect(name)
    assert listed is not comma


def test_hosts_given_twice_or_on_sqlite_are_refused(db):
    with pytest.raises(ConfigurationError, match="not both"):
        activerecord.connect("mysql+pymysql://u@h1,h2/x", name="bad", hosts=["h3"])
    with pytest.raises(ConfigurationError, match="sqlite"):
        activerecord.connect("sqlite://", name="bad", hosts=["h3"])
    with pytest.raises(ConfigurationError, match="from a URL"):
        activerecord.connect(db.engine, name="bad", causal_reads=True)


# -- causal reads, fragment_rows off Galera -------------------------------------------------------
def test_causal_reads_on_one_server_reads_as_usual(fresh, db, backend):
    fresh(Item)
    activerecord.connect(backend_url(backend), name="causal", causal_reads=True)
    try:

        class Causal(Item):
            __table__ = Item.__table__
            __database__ = "causal"

        Item(code="w").save()
        assert [i.code for i in Causal.query().all()] == ["w"]
    finally:
        activerecord.disconnect("causal")


def test_fragment_rows_is_refused_where_there_is_no_galera(fresh, db):
    fresh(Item)
    if db.facts.is_galera:  # CI runs the MySQL tests on a Galera node too: there it streams
        with Transaction(fragment_rows=100):
            Item(code="x").save()
        assert raw_count(db, "scaling_items") == 1
        return
    with pytest.raises(ConfigurationError, match="no Galera node"):
        with Transaction(fragment_rows=100):
            Item(code="x").save()
    assert raw_count(db, "scaling_items") == 0


# -- the key path of each dialect object ----------------------------------------------------------
def test_dialect_objects_name_the_key_path_they_can_prove():
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    from activerecord.backend.dialects import DialectFacts

    cockroach = sa.create_engine("cockroachdb+psycopg://root@127.0.0.1:26257/app").dialect
    paths = {
        name: DialectFacts.for_dialect(dialect).key_path
        for name, dialect in {
            "sqlite": sqlite.dialect(),
            "postgresql": postgresql.psycopg.dialect(),
            "mysql": mysql.pymysql.dialect(),
            "cockroachdb": cockroach,
        }.items()
    }
    # CockroachDB numbers keys with unique_rowid() (no sequence, not consecutive, no proof
    # that one statement's keys follow its rows): RETURNING, one row a statement.
    assert paths == {
        "sqlite": "rowid range", "postgresql": "copy", "mysql": "values",
        "cockroachdb": "returning per row",
    }
    facts = DialectFacts.for_dialect(cockroach)
    assert (facts.name, facts.insert_strategy, facts.keys_follow_rows) == (
        "cockroachdb", "core", False
    )
    assert not DialectFacts.for_dialect(mysql.pymysql.dialect()).autoinc_consecutive
    # The statement the Core path sends there: the key comes back from the row itself.
    table = Item.__table__
    stmt = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
    sql = str(stmt.compile(dialect=cockroach))
    assert sql.startswith("INSERT INTO scaling_items")
    assert sql.endswith("RETURNING scaling_items.id")


@pytest.mark.backends("postgresql")
def test_unproven_key_order_sends_one_row_a_statement(fresh, db):
    """The Core path on a database whose keys are not proven to follow the rows (as on
    CockroachDB), run here on PostgreSQL: one INSERT per row, each key its own row's."""
    import dataclasses

    from sqlalchemy import event

    fresh(Item)
    db._facts = dataclasses.replace(db.facts, insert_strategy="core", keys_follow_rows=False)
    inserts: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.startswith("INSERT"):
            inserts.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        items = [Item(code=f"k{k}", qty=k) for k in range(7)]
        Item.batch_insert(items)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(inserts) == 7
    assert {i.code: i.id for i in items} == {i.code: i.id for i in Item.query().all()}
