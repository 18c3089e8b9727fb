"""Batch insert on every backend and every insert path: keys back in order, atomicity, limits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import threading
import uuid
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.dialects import registry

from activerecord import (
    ActiveRecord,
    BatchValidationError,
    Col,
    TimestampMixin,
    Transaction,
    UniqueViolation,
    UnknownColumnError,
)
from activerecord.insert.shape import InsertShape, split_values
from activerecord.write.strategies import MysqlValuesStrategy, strategy_for
from tests.conftest import raw_count
from tests.models import Everything, Status


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Member(TimestampMixin, Model):
    __table_name__ = "bi_members"

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128), Col(unique=True)]
    status: str = "active"
    login_count: int = 0
    tags: list[str] = Field(default_factory=list)


class Gadget(Model):
    __table_name__ = "bi_gadgets"

    id: int | None = None
    name: Annotated[str, Field(max_length=40)]
    rank: Annotated[int | None, Col(server_default="7")] = None


Wide = type(
    "Wide",
    (ActiveRecord,),
    {
        "__table_name__": "bi_wide",
        "__annotations__": {"id": "int | None", **{f"c{i}": "int" for i in range(120)}},
        "id": None,
    },
)

#: Insert paths beyond each backend's default, forced through DialectFacts.
PATHS = {
    "sqlite": ["fast", "core"],
    "postgresql": ["fast", "core"],
    "mysql": ["fast", "returning", "row", "core"],
}


@pytest.fixture
def path(insert_path: str, db: Any, backend: str) -> str:
    """Force one insert path on the test's database (conftest pairs each backend with the
    paths it has, from PATHS)."""
    name = insert_path
    facts = db.facts
    if name == "core":
        facts = dataclasses.replace(facts, insert_strategy="core")
    elif name == "returning":
        facts = dataclasses.replace(facts, autoinc_consecutive=False)
    elif name == "row":
        facts = dataclasses.replace(facts, autoinc_consecutive=False, supports_returning=False)
    db._facts = facts
    return name


def _members(n: int, start: int = 0) -> list[Member]:
    return [Member(username=f"user{i}", email=f"user{i}@example.com") for i in range(start, n)]


def _emails_by_id(db: Any) -> dict[int, str]:
    table = Member.__table__
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.id, table.c.email)).all())  # type: ignore[arg-type]


# -- keys back, in order ---------------------------------------------------------------------


def test_instances_get_their_keys_in_order(fresh, db, path):
    fresh(Member)
    first = _members(3)
    Member.batch_insert(first)
    members = _members(250, 3)
    assert Member.batch_insert(members, batch_size=60) == 247
    ids = [m.id for m in members]
    assert len(set(ids)) == 247 and all(isinstance(i, int) for i in ids)
    stored = _emails_by_id(db)
    assert all(stored[m.id] == m.email for m in first + members)
    assert not members[0].is_new_record and members[0].changed_fields == set()


def test_dicts_return_instances_with_keys(fresh, db, path):
    fresh(Member)
    rows = [{"username": f"d{i}", "email": f"d{i}@example.com"} for i in range(120)]
    created = Member.batch_insert_from_dicts(rows, batch_size=50)
    assert isinstance(created, list) and len(created) == 120
    stored = _emails_by_id(db)
    assert [stored[m.id] for m in created] == [r["email"] for r in rows]  # type: ignore[index]
    count = Member.batch_insert_from_dicts(
        [{"username": "x", "email": "x@example.com"}], return_records=False
    )
    assert count == 1 and raw_count(db, "bi_members") == 121


def test_generator_is_consumed_chunk_by_chunk(fresh, db, backend):
    fresh(Member)
    pulled: list[int] = []
    seen: list[tuple[int, int]] = []

    def rows():
        for i in range(35):
            pulled.append(i)
            yield {"username": f"g{i}", "email": f"g{i}@example.com"}

    created = Member.batch_insert_from_dicts(
        rows(), batch_size=10, progress=lambda done: seen.append((done, len(pulled)))
    )
    assert [done for done, _ in seen] == [10, 20, 30, 35]
    assert seen[0][1] == 10  # only the first chunk had been read when it was written
    stored = _emails_by_id(db)
    assert [stored[m.id] for m in created] == [f"g{i}@example.com" for i in range(35)]


def test_mixed_key_sets_take_defaults_and_keep_alignment(fresh, db, path):
    fresh(Member)
    rows: list[dict[str, Any]] = [
        {"username": "a", "email": "a@example.com"},
        {"username": "b", "email": "b@example.com", "status": "banned", "login_count": 5},
        {"id": 5000, "email": "c@example.com", "username": "c"},
        {"login_count": 2, "username": "d", "email": "d@example.com", "tags": ["x"]},
    ]
    for validate in (True, False):
        fresh(Member)
        created = Member.batch_insert_from_dicts(rows, validate=validate)
        assert created[2].id == 5000  # type: ignore[index]
        got = {m.username: m for m in Member.find_all()}
        assert [got[u].status for u in "abcd"] == ["active", "banned", "active", "active"]
        assert [got[u].login_count for u in "abcd"] == [0, 5, 0, 2]
        assert got["d"].tags == ["x"] and got["a"].tags == []
        assert {m.id for m in created} == set(_emails_by_id(db))  # type: ignore[union-attr]


def test_server_defaults_are_read_back(fresh, db, path):
    fresh(Gadget)
    gadgets = [Gadget(name="a"), Gadget(name="b", rank=1), Gadget(name="c")]
    Gadget.batch_insert(gadgets)
    assert [g.rank for g in gadgets] == [7, 1, 7]
    assert [Gadget.find(g.id).name for g in gadgets] == ["a", "b", "c"]


def test_every_column_type_round_trips(fresh, db, path):
    fresh(Everything)
    full = Everything(
        i=-5, s="é'\\\"x", t="long text", b=True, f=1.5, d=decimal.Decimal("12.3456"),
        ts=dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        tz=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        day=dt.date(2024, 2, 29), tm=dt.time(1, 2, 3, 4), u=uuid.uuid4(), e=Status.INACTIVE,
        raw=b"\x00\x01\\N\n", doc={"a": [1, "b"], "c": None}, items=[1, 2],
    )
    records = [full, Everything()]
    Everything.batch_insert(records)
    for record in records:
        assert Everything.find(record.id).model_dump() == record.model_dump()


def test_timestamps_as_for_single_saves(fresh, db, backend):
    fresh(Member)
    before = dt.datetime.now() - dt.timedelta(seconds=1)
    stamp = dt.datetime(2020, 1, 2, 3, 4, 5)
    members = [Member(username="t", email="t@example.com", created_at=stamp), *_members(2)]
    Member.batch_insert(members)
    dicts = Member.batch_insert_from_dicts([{"username": "u", "email": "u@example.com"}])
    assert members[0].created_at == stamp and members[0].updated_at is not None
    for m in [*members[1:], *dicts]:  # type: ignore[misc]
        assert m.created_at is not None and m.created_at >= before
        assert m.updated_at == m.created_at
        assert Member.find(m.id).created_at == m.created_at


# -- validation ------------------------------------------------------------------------------


def test_validation_reports_every_bad_record_and_writes_nothing(fresh, db, backend):
    fresh(Member)

    def rows():
        for i in range(40):
            bad = {"username": "x" * 100} if i in (3, 25) else {}
            if i == 31:
                bad = {"login_count": "many"}
            yield {"username": f"v{i}", "email": f"v{i}@example.com", **bad}

    with pytest.raises(BatchValidationError) as caught:
        Member.batch_insert_from_dicts(rows(), batch_size=10)
    failures = caught.value.failures
    assert sorted(failures) == [3, 25, 31]
    assert failures[31][0]["loc"] == ("login_count",)
    assert "record 25" in str(caught.value)
    assert raw_count(db, "bi_members") == 0


def test_validation_of_instances(fresh, db, backend):
    fresh(Member)
    members = _members(5)
    members[4].__dict__["login_count"] = "lots"  # bypasses validate_assignment
    with pytest.raises(BatchValidationError) as caught:
        Member.batch_insert(members)
    assert list(caught.value.failures) == [4]
    assert raw_count(db, "bi_members") == 0


def test_unknown_keys_fail_without_validation(fresh, db, backend):
    fresh(Member)
    rows = [{"username": "a", "email": "a@example.com"}, {"username": "b", "nope; --": 1}]
    for validate in (False, True):
        with pytest.raises(UnknownColumnError, match=r"record 1: Member has no column 'nope; --'"):
            Member.batch_insert_from_dicts(rows, validate=validate)
    assert raw_count(db, "bi_members") == 0


# -- atomicity -------------------------------------------------------------------------------


@pytest.mark.parametrize("validate", [True, False])
def test_late_database_error_rolls_back_every_chunk(fresh, db, backend, path, validate):
    fresh(Member)
    members = _members(100)
    members[75].email = members[3].email
    with pytest.raises(UniqueViolation) as caught:
        Member.batch_insert(members, batch_size=10, validate=validate)
    err = caught.value
    assert err.orig is not None
    if path != "core" or backend == "mysql":  # SQLAlchemy's executemany does not say which row
        assert err.record_index == 75 and "record 75" in str(err)
    assert raw_count(db, "bi_members") == 0


@pytest.mark.parametrize("validate", [True, False])
def test_failed_batch_puts_the_records_back(fresh, db, path, validate):
    """Nothing in memory says a row exists that the rollback removed: every record of the
    list is new again, without the key, stamps and defaults the call gave it."""
    fresh(Member, Gadget)
    kept = Member.create(username="kept", email="kept@example.com")
    members = _members(60)
    members[45].email = "kept@example.com"
    members[7].id = None
    given = dt.datetime(2020, 1, 2, 3, 4, 5)
    members[8].created_at = given
    with pytest.raises(UniqueViolation):
        Member.batch_insert(members, batch_size=10, validate=validate)
    assert [m.id for m in members] == [None] * 60
    assert all(m.is_new_record for m in members)
    assert members[8].created_at == given and members[9].created_at is None
    assert raw_count(db, "bi_members") == 1 and not kept.is_new_record
    # the same records go in once the bad one is fixed, keys in order
    members[45].email = "user45@example.com"
    assert Member.batch_insert(members, batch_size=10, validate=validate) == 60
    assert _emails_by_id(db) == {kept.id: "kept@example.com", **{m.id: m.email for m in members}}
    # server-generated values read back are put back too; a key the record had stays
    Gadget.create(id=100, name="taken")
    gadgets = [Gadget(name=f"g{i}") for i in range(5)]
    gadgets[4].id = 100
    with pytest.raises(UniqueViolation):
        Gadget.batch_insert(gadgets, batch_size=2, validate=validate)
    assert [(g.id, g.rank) for g in gadgets] == [(None, None)] * 4 + [(100, None)]
    assert raw_count(db, "bi_gadgets") == 1


def test_failed_batch_from_a_generator_puts_back_the_chunk_in_progress(fresh, db, backend):
    fresh(Member)
    members = _members(30)
    members[25].email = members[2].email
    with pytest.raises(UniqueViolation):
        Member.batch_insert((m for m in members), batch_size=10)
    # earlier chunks were marked as they went (the call keeps no reference to them)
    assert all(m.id is None and m.is_new_record for m in members[20:])
    assert raw_count(db, "bi_members") == 0


def test_failed_batch_inside_a_transaction_rolls_back_only_the_batch(fresh, db, backend, path):
    fresh(Member)
    with Transaction():
        Member.create(username="kept", email="kept@example.com")
        rows = [{"username": f"r{i}", "email": f"r{i}@example.com"} for i in range(30)]
        rows[22]["email"] = "kept@example.com"
        with pytest.raises(UniqueViolation) as caught:
            Member.batch_insert_from_dicts(rows, batch_size=7, validate=False)
        if path != "core" or backend == "mysql":
            assert caught.value.record_index == 22
        Member.batch_insert_from_dicts([{"username": "after", "email": "after@example.com"}])
    assert sorted(m.username for m in Member.find_all()) == ["after", "kept"]


# -- limits ----------------------------------------------------------------------------------


def test_wide_table_past_the_parameter_limit(fresh, db, path):
    fresh(Wide)
    n = 600  # 600 rows x 121 columns: past PostgreSQL's 65,535 and SQLite's 32,766 parameters
    rows = [{f"c{i}": r * 1000 + i for i in range(120)} for r in range(n)]
    created = Wide.batch_insert_from_dicts(rows, batch_size=n)
    assert len(created) == n  # type: ignore[arg-type]
    table = Wide.__table__
    with db.engine.connect() as conn:
        got = dict(conn.execute(sa.select(table.c.id, table.c.c119)).all())  # type: ignore[arg-type]
    assert [got[w.id] for w in created] == [r * 1000 + 119 for r in range(n)]  # type: ignore[union-attr]


@pytest.mark.backends("mysql")
def test_mysql_statements_stay_within_the_packet(fresh, db, backend):
    fresh(Member)
    db._facts = dataclasses.replace(db.facts, max_packet_bytes=70 * 1024)
    budget = db.facts.max_statement_bytes
    members = [
        Member(username=f"p{i}", email=f"p{i}@example.com", tags=["x" * 900]) for i in range(60)
    ]
    with db.engine.begin() as conn:
        strategy = strategy_for(conn, Member.__ar_info__, db.facts)
        assert isinstance(strategy, MysqlValuesStrategy)
        shape = strategy.shape(tuple(f for f in Member.__ar_info__.fields if f != "id"), True)
        statements = strategy._statements(shape, shape.rows([m.__dict__ for m in members]))
        strategy.close()
        conn.rollback()
    assert len(statements) > 2
    assert all(len(sql) <= budget for _s, _c, sql in statements)
    assert sum(count for _s, count, _sql in statements) == 60
    Member.batch_insert(members)
    stored = _emails_by_id(db)
    assert [stored[m.id] for m in members] == [m.email for m in members]
    # A duplicate sent by a later statement is blamed on its record, not on its place in
    # that statement.
    again = [
        Member(username=f"q{i}", email=f"q{i}@example.com", tags=["x" * 900]) for i in range(60)
    ]
    again[55].email = members[3].email
    with pytest.raises(UniqueViolation) as caught:
        Member.batch_insert(again)
    assert caught.value.record_index == 55
    assert raw_count(db, "bi_members") == 60


# -- concurrency -----------------------------------------------------------------------------


def test_concurrent_batches_get_the_right_keys(fresh, db, path):
    fresh(Member)
    threads_n, per_thread = 4, 300
    batches = [_members((t + 1) * per_thread, t * per_thread) for t in range(threads_n)]
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def work(members: list[Member]) -> None:
        try:
            start.wait()
            Member.batch_insert(members, batch_size=40)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = _emails_by_id(db)
    assert len(stored) == threads_n * per_thread
    assert all(stored[m.id] == m.email for b in batches for m in b)


# -- statements compiled for pinned dialects -------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "row", "head"),
    [
        ("sqlite", "(?, ?, ?)", "INSERT INTO bi_gadgets (id, name, rank) VALUES "),
        ("mysql.pymysql", "(%s, %s, %s)", "INSERT INTO bi_gadgets (id, name, `rank`) VALUES "),
        ("postgresql.psycopg", None, None),
    ],
)
def test_shape_is_compiled_once_in_bind_order(dialect, row, head):
    shape = InsertShape.build(
        Gadget.__table__,
        {"id": "id", "name": "name", "rank": "rank"},
        ("rank", "name", "id"),
        registry.load(dialect)(),
        positional_params=row is not None,
    )
    if row is None:  # named parameters keep the order given
        assert shape.fields == ("rank", "name", "id")
        assert "%(rank)s" in shape.sql
        return
    assert shape.fields == ("id", "name", "rank")  # positional: the statement's order
    assert shape.values_parts == (head, row, "")
    assert shape.rows([{"id": None, "name": "n", "rank": 3}]) == [(None, "n", 3)]


def test_split_values_keeps_what_follows_the_rows():
    single = "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO NOTHING RETURNING t.id"
    double = "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING RETURNING t.id"
    assert split_values(single, double) == (
        "INSERT INTO t (a, b) VALUES ",
        "(?, ?)",
        " ON CONFLICT (a) DO NOTHING RETURNING t.id",
    )
    with pytest.raises(ValueError):
        split_values(single, single)


# -- the collector pause during validation -----------------------------------------------------


def test_overlapping_validations_keep_the_collector_paused_until_the_last_ends():
    """Two loads validating at once (two threads): the collector comes back on only when the
    second is done, and stays off if it was off before either."""
    import gc

    from activerecord.validation import collector_paused as _collector_paused

    assert gc.isenabled()
    first, second = _collector_paused(), _collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first load's chunk is done, the second's is not
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()
    try:
        with _collector_paused():
            pass
        assert not gc.isenabled()  # off before: left off
    finally:
        gc.enable()
