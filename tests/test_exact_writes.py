"""Issue 15 (items 4, 5, 6, 23, 24, 30) and issue 16's argument errors: a caller's rollback
undoes batch writes, batch_update never moves a record onto another row nor forgets a change,
a COPY never hangs a query, a failed commit never poisons the pool, arguments are checked
first."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import (
    ActiveRecord,
    ActiveRecordError,
    ArgumentError,
    ArgumentTypeError,
    ForeignKeyViolation,
    QueryError,
    Transaction,
    UnknownColumnError,
)

from .conftest import raw_count


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class XwItem(Model):
    __table_name__ = "xw_items"

    id: int | None = None
    code: str = ""
    first: str = ""
    last: str = ""
    n: int = 0


def _seed(fresh: Any, count: int = 3) -> list[XwItem]:
    fresh(XwItem)
    items = [XwItem(code=f"c{i}", first=f"f{i}", last=f"l{i}", n=i) for i in range(count)]
    XwItem.batch_insert(items)
    return items


def _stored(item_id: int) -> tuple[str, str, int]:
    row = XwItem.find(item_id)
    return row.first, row.last, row.n


# -- item 4: using(conn) of the application's own engine: the caller's rollback undoes all --


@pytest.fixture
def app_engine(db: Any) -> Any:
    """An engine the application made itself, on the test database (not the library's)."""
    engine = sa.create_engine(db.engine.url)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("write", ["insert", "insert_dicts", "upsert", "update", "ignore"])
def test_caller_rollback_undoes_batch_writes_on_own_engine(db, fresh, app_engine, write):
    items = _seed(fresh, 2)
    with app_engine.connect() as conn:
        with activerecord.using(conn):
            if write == "insert":
                XwItem.batch_insert([XwItem(code="x"), XwItem(code="y")])
            elif write == "insert_dicts":
                XwItem.batch_insert_from_dicts([{"code": "x"}], return_records=False)
            elif write == "upsert":
                XwItem.batch_upsert([XwItem(id=items[0].id, code="c0", n=50), XwItem(code="z")])
            elif write == "update":
                items[0].n = 99
                XwItem.batch_update(items)
            else:
                XwItem.batch_insert([XwItem(code="q")], on_conflict="ignore")
            assert conn.execute(sa.select(sa.func.count()).select_from(XwItem.__table__)).scalar()
        conn.rollback()
    assert raw_count(db, "xw_items") == 2
    assert [_stored(i.id) for i in items] == [("f0", "l0", 0), ("f1", "l1", 1)]


def test_caller_commit_keeps_batch_writes_on_own_engine(db, fresh, app_engine):
    _seed(fresh, 1)
    with app_engine.connect() as conn:
        with activerecord.using(conn):
            XwItem.batch_insert([XwItem(code="x"), XwItem(code="y")])
        conn.commit()
    assert raw_count(db, "xw_items") == 3


def test_caller_session_rollback_undoes_batch_insert_on_own_engine(db, fresh, app_engine):
    _seed(fresh, 1)
    with sa.orm.Session(app_engine) as session:
        with activerecord.using(session):
            XwItem.batch_insert([XwItem(code="x")])
        session.rollback()
    assert raw_count(db, "xw_items") == 1


# -- item 5: a changed primary key is refused, nothing written, the record keeps its claim --


def test_batch_update_refuses_changed_primary_key(db, fresh):
    items = _seed(fresh, 3)
    a, b, c = items
    a.n, c.n = 10, 30
    old_id = b.id
    b.id = 1000
    b.n = 20
    with pytest.raises(QueryError, match=r"record 1: XwItem\.id was changed from") as caught:
        XwItem.batch_update(items)
    assert isinstance(caught.value, ActiveRecordError)
    assert [_stored(i) for i in (a.id, old_id, c.id)] == [("f0", "l0", 0), ("f1", "l1", 1),
                                                          ("f2", "l2", 2)]
    assert XwItem.query().where({"id": 1000}).count() == 0
    # Nothing marked: every change is still pending, and save() writes the changed key.
    assert b.changed_fields == {"id", "n"} and a.changed_fields == {"n"}
    b.save()
    assert _stored(1000) == ("f1", "l1", 20)
    assert XwItem.query().where({"id": old_id}).count() == 0


def test_batch_update_changed_key_never_claims_another_row(db, fresh):
    items = _seed(fresh, 2)
    a, b = items
    a.id = b.id  # the key of another stored row
    a.first = "mine"
    with pytest.raises(QueryError, match="record 0"):
        XwItem.batch_update([a], ["first"])
    assert _stored(b.id) == ("f1", "l1", 1)


# -- item 6: fields not named stay pending --


def test_batch_update_named_fields_leave_other_changes_pending(db, fresh):
    items = _seed(fresh, 2)
    for item in items:
        item.first = "F" + item.first
        item.last = "L" + item.last
    assert XwItem.batch_update(items, ["first"]) == 2
    assert [_stored(i.id) for i in items] == [("Ff0", "l0", 0), ("Ff1", "l1", 1)]
    assert [i.changed_fields for i in items] == [{"last"}, {"last"}]
    items[0].save()
    XwItem.batch_update(items[1:])
    assert [_stored(i.id) for i in items] == [("Ff0", "Ll0", 0), ("Ff1", "Ll1", 1)]
    assert [i.changed_fields for i in items] == [set(), set()]


def test_batch_update_of_records_never_read_keeps_unwritten_fields_pending(db, fresh):
    stored = _seed(fresh, 1)[0]
    built = XwItem(id=stored.id, code="c0", first="new", last="other", n=5)
    assert built.is_new_record
    XwItem.batch_update([built], ["first"])
    assert _stored(stored.id) == ("new", "l0", 0)
    assert not built.is_new_record
    # What the row holds for the other columns is unknown: they count as changed.
    assert built.changed_fields == {"code", "last", "n"}
    assert pickle.loads(pickle.dumps(built)).changed_fields == {"code", "last", "n"}
    assert built.model_copy(deep=True).changed_fields == {"code", "last", "n"}
    built.save()
    assert _stored(stored.id) == ("new", "other", 5)
    assert built.changed_fields == set()


def test_batch_update_named_fields_rollback_puts_snapshot_back(db, fresh):
    items = _seed(fresh, 1)
    item = items[0]
    item.first, item.last = "a", "b"
    with pytest.raises(RuntimeError), Transaction():
        XwItem.batch_update(items, ["first"])
        assert item.changed_fields == {"last"}
        raise RuntimeError("undo")
    assert item.changed_fields == {"first", "last"}
    assert _stored(item.id) == ("f0", "l0", 0)


# -- item 23: a query through the library while a COPY streams in using() never hangs --


def _run_with_timeout(fn: Any, held: dict[str, Any], seconds: float = 60) -> Any:
    """Run ``fn`` in a thread; fail (not hang the suite) if it does not finish in time.

    A thread stuck on psycopg's connection lock never wakes: closing the connection's socket
    ends its session on the server, so its locks do not block the tests that follow.
    """
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pgconn = getattr(held.get("raw"), "pgconn", None)
        if pgconn is not None:
            pgconn.finish()
        pytest.fail("the call hung")
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.mark.parametrize("reach", ["library", "connection"])
def test_generator_querying_while_copy_streams_in_using_never_hangs(db, fresh, reach):
    fresh(XwItem)
    total = 12_000
    seen: list[int] = []

    held: dict[str, Any] = {}

    def work() -> int:
        with db.engine.connect() as conn:
            held["raw"] = conn.connection.dbapi_connection

            def rows() -> Any:
                for i in range(total):
                    if i % 3_000 == 2_999:  # mid-stream, as a lookup in a generator would
                        if reach == "library":
                            seen.append(XwItem.query().count())
                        else:
                            stmt = sa.select(sa.func.count()).select_from(XwItem.__table__)
                            seen.append(int(conn.execute(stmt).scalar_one()))
                    yield {"code": f"g{i}", "n": i}

            with activerecord.using(conn):
                count = XwItem.batch_insert_from_dicts(
                    rows(), validate=False, return_records=False
                )
            conn.commit()
            return int(count)  # type: ignore[arg-type]

    assert _run_with_timeout(work, held) == total
    assert raw_count(db, "xw_items") == total
    assert len(seen) == 4 and seen == sorted(seen)


def test_list_streamed_in_using_with_library_query_in_default_factory(db, fresh):
    # A default factory is the only user code between chunks of a list: through the library
    # it ends the COPY first.
    from pydantic import Field

    class XwStamped(Model):
        __table_name__ = "xw_stamped"
        id: int | None = None
        n: int = 0
        seen: int = Field(default_factory=lambda: XwItem.query().count())

    fresh(XwItem, XwStamped)

    held: dict[str, Any] = {}

    def work() -> int:
        with db.engine.connect() as conn:
            held["raw"] = conn.connection.dbapi_connection
            with activerecord.using(conn):
                count = XwStamped.batch_insert_from_dicts(
                    [{"n": i} for i in range(5_000)], validate=False, return_records=False
                )
            conn.commit()
            return int(count)  # type: ignore[arg-type]

    assert _run_with_timeout(work, held) == 5_000


# -- item 24: a commit refused by a deferred constraint leaves the connection clean --


@pytest.mark.backends("sqlite", "postgresql")
def test_failed_deferred_commit_rolls_back_and_frees_connection(db, backend):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS xw_children")
        conn.exec_driver_sql("DROP TABLE IF EXISTS xw_parents")
        conn.exec_driver_sql("CREATE TABLE xw_parents (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql(
            "CREATE TABLE xw_children (id INTEGER PRIMARY KEY, parent_id INTEGER "
            "REFERENCES xw_parents (id) DEFERRABLE INITIALLY DEFERRED)"
        )

    class XwChild(Model):
        __table_name__ = "xw_children"
        __metadata__ = sa.MetaData()
        id: int | None = None
        parent_id: int | None = None

    for attempt in range(3):  # the same pooled connection again and again
        child = XwChild(id=attempt + 1, parent_id=99)
        with pytest.raises(ForeignKeyViolation, match="commit failed"), Transaction():
            child.save()
            XwChild.batch_insert([XwChild(id=10 + attempt, parent_id=98)])
        assert child.is_new_record
    # No transaction left open: another writer is not locked out, the next call works.
    other = sa.create_engine(db.engine.url, connect_args={"timeout": 2}
                             if backend == "sqlite" else {})
    try:
        with other.begin() as conn:
            conn.exec_driver_sql("INSERT INTO xw_parents (id) VALUES (1)")
    finally:
        other.dispose()
    XwChild.batch_insert([XwChild(id=1, parent_id=1)])
    with Transaction():
        XwChild.create(id=2, parent_id=1)
    assert XwChild.query().count() == 2
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE xw_children")
        conn.exec_driver_sql("DROP TABLE xw_parents")


# -- item 30 and issue 16: arguments are checked first, as errors of the library --


CALLS = {
    "insert batch_size=0": lambda rows: XwItem.batch_insert(rows, batch_size=0),
    "insert batch_size=-1": lambda rows: XwItem.batch_insert(rows, batch_size=-1),
    "insert on_conflict": lambda rows: XwItem.batch_insert(rows, on_conflict="replace"),
    "ignore batch_size": lambda rows: XwItem.batch_insert(
        rows, on_conflict="ignore", batch_size=0
    ),
    "dicts batch_size": lambda rows: XwItem.batch_insert_from_dicts(rows, batch_size=0),
    "upsert batch_size": lambda rows: XwItem.batch_upsert(rows, batch_size=-1),
    "update batch_size": lambda rows: XwItem.batch_update(rows, batch_size=0),
    "update fields": lambda rows: XwItem.batch_update(rows, ["nonexistent"]),
    "update key field": lambda rows: XwItem.batch_update(rows, ["id"]),
    "update no fields": lambda rows: XwItem.batch_update(rows, []),
    "upsert conflict": lambda rows: XwItem.batch_upsert(rows, conflict="nonexistent"),
    "batches size": lambda rows: XwItem.query().batches(0),
    "each size": lambda rows: XwItem.query().each(-5),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("empty", [True, False])
def test_argument_mistakes_are_refused_before_input_is_read(db, fresh, call, empty):
    fresh(XwItem)
    read: list[int] = []

    def rows() -> Any:
        read.append(1)
        yield XwItem(code="a")

    with pytest.raises(ActiveRecordError) as caught:
        CALLS[call]([] if empty else rows())
    assert isinstance(caught.value, (ValueError, KeyError))
    assert read == []
    assert raw_count(db, "xw_items") == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda bad: XwItem.batch_insert(bad),
        lambda bad: XwItem.batch_insert_from_dicts(bad),
        lambda bad: XwItem.batch_upsert(bad),
        lambda bad: XwItem.batch_update(bad),
        lambda bad: XwItem.batch_insert(bad, on_conflict="ignore"),
    ],
    ids=["insert", "dicts", "upsert", "update", "ignore"],
)
@pytest.mark.parametrize("bad", [None, 5, "abc", {"code": "a"}], ids=repr)
def test_non_iterable_or_single_record_input_is_a_type_error_of_ours(db, fresh, call, bad):
    fresh(XwItem)
    with pytest.raises(ArgumentTypeError, match="must be an iterable") as caught:
        call(bad)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ActiveRecordError)
    assert raw_count(db, "xw_items") == 0


@pytest.mark.parametrize("size", [True, 2.5, "10"], ids=repr)
def test_batch_size_of_another_type_is_refused(db, fresh, size):
    fresh(XwItem)
    with pytest.raises(ArgumentTypeError, match="batch_size"):
        XwItem.batch_insert([XwItem(code="a")], batch_size=size)
    with pytest.raises(ArgumentTypeError, match="size"):
        XwItem.query().batches(size)
    assert raw_count(db, "xw_items") == 0


def test_record_of_wrong_type_is_a_type_error_of_ours(db, fresh):
    items = _seed(fresh, 1)
    for call in (
        lambda: XwItem.batch_insert([XwItem(code="a"), {"code": "b"}]),
        lambda: XwItem.batch_insert_from_dicts([{"code": "a"}, XwItem(code="b")]),
        lambda: XwItem.batch_update([items[0], {"code": "b"}]),
    ):
        with pytest.raises(ArgumentTypeError, match="record 1: expected a"):
            call()
    assert raw_count(db, "xw_items") == 1


def test_argument_errors_keep_builtin_bases():
    assert issubclass(ArgumentError, ValueError) and issubclass(ArgumentError, QueryError)
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ArgumentError)
    assert not issubclass(UnknownColumnError, ArgumentError)
