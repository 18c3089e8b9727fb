"""batch_upsert and batch_insert(on_conflict="ignore"), on every backend: counts, keys,
expressions, repeated keys, timestamps, soft deletes, chunking and atomicity."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.dialects import mysql, postgresql, sqlite

from activerecord import (
    ActiveRecord,
    BatchValidationError,
    Col,
    DataError,
    Expression,
    NotNullViolation,
    OptimisticLockMixin,
    QueryError,
    SoftDeleteMixin,
    TimestampMixin,
    Transaction,
    UniqueViolation,
    UnknownColumnError,
    UpsertResult,
    col,
    excluded,
    greatest,
)
from activerecord.insert.merge import MergeSpec, merge_statement

from .conftest import raw_count


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Member(TimestampMixin, Model):
    __table_name__ = "up_members"

    id: int | None = None
    email: Annotated[str, Field(max_length=60), Col(unique=True)]
    username: Annotated[str, Field(max_length=40)]
    status: Annotated[str, Field(max_length=10)] = "active"
    logins: int = 0
    score: int = 0
    nick: Annotated[str | None, Field(max_length=20), Col(unique=True)] = None


_pairs = sa.Table(
    "up_pairs",
    Model.__metadata__,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("a", sa.Integer, nullable=False),
    sa.Column("b", sa.String(10), nullable=False),
    sa.Column("v", sa.Integer),
    sa.UniqueConstraint("a", "b", name="uq_up_pairs_ab"),
)


class Pair(Model):
    __table__ = _pairs

    id: int | None = None
    a: int
    b: str
    v: int | None = None


class Ghost(SoftDeleteMixin, Model):
    """A plain unique key: a soft-deleted row still holds it."""

    __table_name__ = "up_ghosts"

    id: int | None = None
    code: Annotated[str, Field(max_length=20), Col(unique=True)]
    v: int = 0


class Phoenix(SoftDeleteMixin, Model):
    """A soft-unique key: only live rows hold it."""

    __table_name__ = "up_phoenixes"
    __soft_unique__ = ("code",)

    id: int | None = None
    code: Annotated[str, Field(max_length=20)]
    v: int = 0


class Ledger(OptimisticLockMixin, Model):
    __table_name__ = "up_ledgers"

    id: int | None = None
    code: Annotated[str, Field(max_length=20), Col(unique=True)]
    amount: int = 0


class Wide(Model):
    """Seven fields: 12,000 rows are beyond one statement's parameter limit everywhere."""

    __table_name__ = "up_wides"

    id: int | None = None
    k: Annotated[str, Field(max_length=20), Col(unique=True)]
    c1: int = 0
    c2: int = 0
    c3: int = 0
    c4: int = 0
    c5: Annotated[str, Field(max_length=20)] = ""


def _seed(*rows: tuple[str, int]) -> list[Member]:
    members = [Member(email=e, username=e.split("@")[0], logins=n) for e, n in rows]
    Member.batch_insert(members)
    return members


def _table(model: type[ActiveRecord]) -> dict[Any, dict[str, Any]]:
    return {r.id: r.model_dump() for r in model.query().with_deleted().order_by("id")} \
        if issubclass(model, SoftDeleteMixin) else {
            r.id: r.model_dump() for r in model.query().order_by("id")
        }


# -- counts, keys, values ----------------------------------------------------------------
def test_upsert_inserts_updates_and_counts_unchanged(db, fresh):
    fresh(Member)
    a, b = _seed(("a@x", 1), ("b@x", 2))
    records = [
        Member(email="a@x", username="a2", logins=1),  # username changes
        Member(email="b@x", username="b", logins=2),   # same values
        Member(email="c@x", username="c", logins=3),   # new
    ]
    result = Member.batch_upsert(records, conflict=["email"])
    assert result == UpsertResult(inserted=1, updated=1, unchanged=1)
    assert (int(result), result.total) == (3, 3)
    assert [r.id for r in records[:2]] == [a.id, b.id]
    assert records[2].id is not None and records[2].id not in (a.id, b.id)
    assert all(not r.is_new_record and not r.changed_fields for r in records)
    got = {m.email: (m.id, m.username, m.logins) for m in Member.query()}
    assert got == {
        "a@x": (a.id, "a2", 1), "b@x": (b.id, "b", 2), "c@x": (records[2].id, "c", 3),
    }


def test_upsert_from_dicts_updates_only_the_fields_each_row_gives(db, fresh):
    fresh(Member)
    _seed(("a@x", 5))
    Member.query().update({"status": "gone"}, all_rows=True)
    result = Member.batch_upsert(
        [{"email": "a@x", "username": "A"}, {"email": "n@x", "username": "N", "status": "x"}],
        conflict="email",
    )
    assert result == UpsertResult(inserted=1, updated=1, unchanged=0)
    got = {m.email: (m.username, m.status, m.logins) for m in Member.query()}
    assert got == {"a@x": ("A", "gone", 5), "n@x": ("N", "x", 0)}


def test_update_lists_the_columns_written(db, fresh):
    fresh(Member)
    _seed(("a@x", 5))
    result = Member.batch_upsert(
        [Member(email="a@x", username="ignored", logins=9)], conflict="email", update=["logins"]
    )
    assert result.updated == 1
    m = Member.query().one()
    assert (m.username, m.logins) == ("a", 9)
    # Nothing to update: existing rows are skipped and counted unchanged.
    result = Member.batch_upsert([{"email": "a@x", "username": "zz"}], conflict="email", update=())
    assert result == UpsertResult(unchanged=1)
    assert Member.query().one().username == "a"


def test_update_expressions_on_the_stored_and_incoming_values(db, fresh):
    fresh(Member)
    _seed(("a@x", 5), ("b@x", 1))
    Member.query().update({"score": 50}, all_rows=True)
    rows = [
        {"email": "a@x", "username": "a", "logins": 2, "score": 10},
        {"email": "b@x", "username": "b", "logins": 3, "score": 70},
        {"email": "c@x", "username": "c", "logins": 4, "score": 7},
    ]
    update = {
        "logins": col("logins") + excluded("logins"),
        "score": greatest(col("score"), excluded("score")),
        "status": Expression("CASE WHEN logins > ? THEN 'busy' ELSE status END", 5),
        "username": "renamed",
    }
    result = Member.batch_upsert(rows, conflict="email", update=update)
    assert result == UpsertResult(inserted=1, updated=2, unchanged=0)
    got = {m.email: (m.username, m.logins, m.score, m.status) for m in Member.query()}
    assert got == {
        "a@x": ("renamed", 7, 50, "active"),  # CASE saw the stored logins (5)
        "b@x": ("renamed", 4, 70, "active"),
        "c@x": ("c", 4, 7, "active"),  # inserted with its own values
    }
    # Adding zero changes nothing: the row is unchanged and updated_at stays.
    before = Member.query().where({"email": "a@x"}).one().updated_at
    again = Member.batch_upsert(
        [{"email": "a@x", "username": "x", "logins": 0}], conflict="email",
        update={"logins": col("logins") + excluded("logins")},
    )
    assert again == UpsertResult(unchanged=1)
    assert Member.query().where({"email": "a@x"}).one().updated_at == before


def test_update_names_are_checked_before_any_sql(db, fresh):
    fresh(Member)
    rows = [{"email": "a@x", "username": "a"}]
    with pytest.raises(UnknownColumnError):
        Member.batch_upsert(rows, conflict="email", update={"logins": col("nope") + 1})
    with pytest.raises(UnknownColumnError):
        Member.batch_upsert(rows, conflict="email", update={"logins": excluded("nope")})
    with pytest.raises(UnknownColumnError):
        Member.batch_upsert(rows, conflict="email", update=["nope"])
    with pytest.raises(QueryError, match="cannot update 'email'"):
        Member.batch_upsert(rows, conflict="email", update=["email"])
    with pytest.raises(QueryError, match="cannot update 'id'"):
        Member.batch_upsert(rows, conflict="email", update=["id"])
    assert raw_count(db, "up_members") == 0


def test_updated_at_moves_only_on_rows_that_changed(db, fresh):
    fresh(Member)
    a, b = _seed(("a@x", 1), ("b@x", 2))
    old = dt.datetime(2020, 1, 1)
    Member.query().update({"updated_at": old, "created_at": old}, all_rows=True)
    records = [
        Member(email="a@x", username="a", logins=10),
        Member(email="b@x", username="b", logins=2),
    ]
    assert Member.batch_upsert(records, conflict="email") == UpsertResult(updated=1, unchanged=1)
    got = {m.email: (m.created_at, m.updated_at) for m in Member.query()}
    assert got["b@x"] == (old, old)
    assert got["a@x"][0] == old and got["a@x"][1] > old
    # The instances hold the stored timestamps, not the ones they were built with.
    assert (records[0].created_at, records[0].updated_at) == got["a@x"]
    assert (records[1].created_at, records[1].updated_at) == (old, old)
    # touch=False: the value changes, updated_at does not.
    records[0].logins = 11
    Member.batch_upsert(records[:1], conflict="email", touch=False)
    assert Member.query().where({"email": "a@x"}).one().updated_at == got["a@x"][1]


def test_optimistic_lock_version_moves_on_changed_rows(db, fresh):
    fresh(Ledger)
    Ledger.batch_insert([Ledger(code="a", amount=1), Ledger(code="b", amount=2)])
    records = [Ledger(code="a", amount=5), Ledger(code="b", amount=2)]
    assert Ledger.batch_upsert(records, conflict="code") == UpsertResult(updated=1, unchanged=1)
    assert [r.version for r in records] == [1, 0]
    assert {r.code: r.version for r in Ledger.query()} == {"a": 1, "b": 0}


# -- repeated keys -------------------------------------------------------------------------
def test_a_key_twice_in_one_call_applies_in_order_and_the_last_wins(db, fresh):
    fresh(Member)
    (a,) = _seed(("a@x", 1))
    records = [
        Member(email="n@x", username="n1"),
        Member(email="a@x", username="a1"),
        Member(email="n@x", username="n2"),
        Member(email="a@x", username="a1"),
        Member(email="n@x", username="n3"),
    ]
    result = Member.batch_upsert(records, conflict="email", batch_size=10)
    assert result == UpsertResult(inserted=1, updated=3, unchanged=1)
    assert len({records[0].id, records[2].id, records[4].id}) == 1
    assert records[1].id == records[3].id == a.id
    got = {m.email: m.username for m in Member.query()}
    assert got == {"a@x": "a1", "n@x": "n3"}
    # The same across chunk boundaries: every chunk size gives the same rows and counts.
    fresh(Member)
    _seed(("a@x", 1))
    rows = [r.model_dump(include={"email", "username"}) for r in records]
    assert Member.batch_upsert(rows, conflict="email", batch_size=1) == result
    assert {m.email: m.username for m in Member.query()} == got


# -- targets -------------------------------------------------------------------------------
def test_conflict_target_by_columns_or_constraint_name(db, fresh):
    fresh(Pair)
    Pair.batch_insert([Pair(a=1, b="x", v=1), Pair(a=1, b="y", v=2)])
    result = Pair.batch_upsert(
        [{"a": 1, "b": "x", "v": 10}, {"a": 2, "b": "x", "v": 3}], conflict="uq_up_pairs_ab"
    )
    assert result == UpsertResult(inserted=1, updated=1)
    result = Pair.batch_upsert([Pair(b="y", a=1, v=20)], conflict=("b", "a"))
    assert result == UpsertResult(updated=1)
    got = sorted((p.a, p.b, p.v) for p in Pair.query())
    assert got == [(1, "x", 10), (1, "y", 20), (2, "x", 3)]


def test_a_target_that_is_not_unique_is_an_error_before_any_sql(db, fresh):
    fresh(Member)
    rows = [{"email": "a@x", "username": "a"}]
    with pytest.raises(QueryError, match="neither the primary key nor a unique key"):
        Member.batch_upsert(rows, conflict="username")
    with pytest.raises(QueryError, match="neither the primary key nor a unique key"):
        Member.batch_upsert(rows, conflict=["email", "username"])
    with pytest.raises(UnknownColumnError):
        Member.batch_upsert(rows, conflict="no_such_constraint")
    assert raw_count(db, "up_members") == 0


def test_default_target_is_the_primary_key(db, fresh):
    fresh(Member)
    (a,) = _seed(("a@x", 1))
    records = [Member(id=a.id, email="a2@x", username="a"), Member(email="b@x", username="b")]
    assert Member.batch_upsert(records) == UpsertResult(inserted=1, updated=1)
    assert {m.id: m.email for m in Member.query()} == {a.id: "a2@x", records[1].id: "b@x"}


# -- insert or ignore ----------------------------------------------------------------------
def test_batch_insert_on_conflict_ignore_skips_existing_keys(db, fresh):
    fresh(Member)
    (a,) = _seed(("a@x", 1))
    Member.query().update({"nick": "ace"}, all_rows=True)
    records = [
        Member(email="a@x", username="dup-email"),
        Member(email="z@x", username="dup-nick", nick="ace"),
        Member(email="b@x", username="b"),
        Member(email="b@x", username="b-again"),
    ]
    assert Member.batch_insert(records, on_conflict="ignore") == 1
    assert [r.id for r in records[:2]] == [a.id, a.id]
    assert records[2].id == records[3].id != a.id
    assert records[0].username == "a"  # skipped records hold the stored row
    assert sorted(m.email for m in Member.query()) == ["a@x", "b@x"]
    made = Member.batch_insert_from_dicts(
        [{"email": "b@x", "username": "b"}, {"email": "c@x", "username": "c"}],
        on_conflict="ignore",
    )
    assert [m.email for m in made] == ["c@x"] and made[0].id is not None
    with pytest.raises(ValueError, match="on_conflict"):
        Member.batch_insert(records, on_conflict="update")


# -- soft deletes --------------------------------------------------------------------------
def test_soft_deleted_row_is_left_alone_unless_revive(db, fresh):
    fresh(Ghost)
    Ghost.batch_insert([Ghost(code="a", v=1), Ghost(code="b", v=1)])
    Ghost.query().where({"code": "a"}).delete()
    records = [Ghost(code="a", v=2), Ghost(code="b", v=2)]
    assert Ghost.batch_upsert(records, conflict="code") == UpsertResult(updated=1, unchanged=1)
    ghost = Ghost.query().with_deleted().where({"code": "a"}).one()
    assert (ghost.v, ghost.is_deleted) == (1, True)
    assert records[0].id == ghost.id and records[0].is_deleted
    result = Ghost.batch_upsert([Ghost(code="a", v=1)], conflict="code", revive=True)
    assert result == UpsertResult(updated=1)  # same values, but it comes back
    ghost = Ghost.query().where({"code": "a"}).one()
    assert (ghost.v, ghost.is_deleted) == (1, False)
    assert Ghost.query().with_deleted().count() == 2


def test_soft_unique_key_is_held_by_live_rows_only(db, fresh):
    fresh(Phoenix)
    Phoenix.batch_insert([Phoenix(code="a", v=1)])
    Phoenix.query().delete(all_rows=True)
    result = Phoenix.batch_upsert([Phoenix(code="a", v=2)], conflict="code")
    assert result == UpsertResult(inserted=1)
    result = Phoenix.batch_upsert([Phoenix(code="a", v=3)], conflict="code")
    assert result == UpsertResult(updated=1)
    assert sorted((p.v, p.is_deleted) for p in Phoenix.query().with_deleted()) == [
        (1, True), (3, False)
    ]


# -- size and atomicity --------------------------------------------------------------------
def test_chunks_beyond_the_parameter_limit(db, fresh):
    fresh(Wide)
    n = 12_000
    Wide.batch_insert_from_dicts(
        [{"k": f"k{i}", "c1": i} for i in range(0, n, 2)], return_records=False
    )
    records = [
        Wide(k=f"k{i}", c1=i if i % 4 else -i, c5="x" if i % 3 == 0 else "") for i in range(n)
    ]
    result = Wide.batch_upsert(records, conflict="k")
    # Existing: even i. Changed: c1 differs (i % 4 == 0, except i == 0) or c5 set (i % 3 == 0).
    changed = sum(1 for i in range(0, n, 2) if (i % 4 == 0 and i) or i % 3 == 0)
    assert result == UpsertResult(inserted=n // 2, updated=changed, unchanged=n // 2 - changed)
    assert len({r.id for r in records}) == n
    assert raw_count(db, "up_wides") == n
    back = {w.k: (w.id, w.c1, w.c5) for w in Wide.query()}
    assert all(back[r.k] == (r.id, r.c1, r.c5) for r in records)


def test_a_failing_chunk_rolls_back_the_whole_call(db, fresh):
    fresh(Member)
    _seed(("a@x", 1))
    rows = [
        {"email": "a@x", "username": "changed"},
        {"email": "b@x", "username": "b"},
        {"email": "c@x", "username": "c", "nick": "n"},
        {"email": "d@x", "username": "d", "nick": "n"},  # second chunk: nick is taken
    ]
    with pytest.raises(UniqueViolation) as caught:
        Member.batch_upsert(rows, conflict="email", batch_size=2)
    assert caught.value.record_index in (3, None)
    assert [(m.email, m.username) for m in Member.query()] == [("a@x", "a")]
    with pytest.raises(NotNullViolation):
        Member.batch_upsert(
            [{"email": "b@x", "username": "b"}, {"email": "c@x", "username": None}],
            conflict="email", batch_size=1, validate=False,
        )
    assert raw_count(db, "up_members") == 1


def test_a_failed_upsert_puts_the_records_back(db, fresh):
    """Records of an upsert that failed are as they were: no key, no stored values read in,
    not persisted; a record that was persisted before still is, with its own values."""
    fresh(Member)
    _seed(("a@x", 1))
    old = Member.find_one_or_fail({"email": "a@x"})
    old.username = "renamed"
    records = [
        Member(email="a@x", username="changed"),
        Member(email="b@x", username="b"),
        Member(email="c@x", username="c", nick="n"),
        Member(email="d@x", username="d", nick="n"),  # second chunk: nick is taken
        old,
    ]
    before = [dict(r.__dict__) for r in records]
    with pytest.raises(UniqueViolation):
        Member.batch_upsert(records, conflict="email", batch_size=2)
    assert [dict(r.__dict__) for r in records] == before
    assert [r.is_new_record for r in records] == [True] * 4 + [False]
    assert old.changed_fields == {"username"}
    assert [(m.email, m.username) for m in Member.query()] == [("a@x", "a")]


def test_invalid_records_are_all_reported_and_nothing_is_written(db, fresh):
    fresh(Member)
    rows = [{"email": "a@x", "username": "a"}, {"email": "b@x"}, {"email": "c@x", "logins": "x"}]
    with pytest.raises(BatchValidationError) as caught:
        Member.batch_upsert(rows, conflict="email", batch_size=1)
    assert sorted(caught.value.failures) == [1, 2]
    assert raw_count(db, "up_members") == 0


def test_inside_a_transaction_the_upsert_rolls_back_with_it(db, fresh):
    fresh(Member)
    with pytest.raises(RuntimeError), Transaction():
        Member.batch_upsert([{"email": "a@x", "username": "a"}], conflict="email")
        assert Member.query().count() == 1
        raise RuntimeError
    assert raw_count(db, "up_members") == 0


def test_progress_and_empty_input(db, fresh):
    fresh(Member)
    seen: list[int] = []
    rows = ({"email": f"{i}@x", "username": "u"} for i in range(5))
    result = Member.batch_upsert(rows, conflict="email", batch_size=2, progress=seen.append)
    assert result == UpsertResult(inserted=5)
    assert seen == [2, 4, 5]
    assert Member.batch_upsert([], conflict="email") == UpsertResult()


# -- compiled statements -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dialect", "style", "expected"),
    [
        (postgresql.psycopg.dialect(), "unnest",
         "WHERE up_members.id = v.c0 AND up_members.username IS DISTINCT FROM v.c1"),
        (mysql.pymysql.dialect(), "union", "AND NOT (up_members.username <=> v.c1)"),
        (sqlite.dialect(), "executemany", "AND up_members.username IS NOT ?"),
    ],
)
def test_merge_statement_compiles_per_dialect(dialect, style, expected):
    spec = MergeSpec.build(Member, {"username": None}, scalars=("updated_at",))
    sql = " ".join(str(merge_statement(Member, spec, style, 2).compile(dialect=dialect)).split())
    assert expected in sql
    assert "updated_at=" in sql.replace(" = ", "=")


def test_multi_row_plan_grown_from_one_row_equals_the_compiled_statement():
    from activerecord.insert.merge import MergePlan

    spec = MergeSpec.build(
        Member, {"username": None, "logins": col("logins") + excluded("logins") + 3},
        scalars=("updated_at",),
    )
    dialect = mysql.pymysql.dialect()
    grown = MergePlan.compile(Member, spec, "union", 9, dialect, binary_text=True)
    assert grown == MergePlan._compile(Member, spec, "union", 9, dialect, True)
    assert grown.sql.count("UNION ALL") == 8 and "CAST(up_members.username AS BINARY)" in grown.sql


@pytest.mark.backends("postgresql")
def test_a_key_inserted_concurrently_after_the_lookup_is_updated_on_a_retry(db, fresh):
    """Another transaction commits one of the chunk's new keys between our lookup and our
    insert: the chunk rolls back to its savepoint and runs again, finding that row."""
    fresh(Member)
    fired: list[str] = []

    def race(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not fired and "FOR UPDATE" in statement and "up_members" in statement:
            fired.append(statement)
            with db.engine.connect() as other:  # a second connection, committed at once
                other.execute(sa.insert(Member.__table__).values(
                    email="b@x", username="theirs", logins=0, score=0, status="active",
                ))
                other.commit()

    sa.event.listen(db.engine, "after_cursor_execute", race)
    try:
        records = [Member(email="a@x", username="a"), Member(email="b@x", username="mine")]
        result = Member.batch_upsert(records, conflict="email")
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", race)
    assert fired
    assert result == UpsertResult(inserted=1, updated=1)
    assert {m.email: m.username for m in Member.query()} == {"a@x": "a", "b@x": "mine"}
    assert records[1].id == Member.query().where({"email": "b@x"}).one().id


def test_upsert_chunks_run_without_collector_passes_and_turn_it_back_on(db, fresh):
    """An upsert's lookups, parameters and merged values are small objects without cycles:
    the cyclic collector stays paused while a chunk is written (its passes over the chunk's
    records cost as much as the SQLite write), and is on again after."""
    import gc

    fresh(Member)
    Member.batch_upsert([{"email": f"m{i}@x", "username": f"m{i}"} for i in range(0, 3000, 2)],
                        conflict="email")
    members = [Member(email=f"m{i}@x", username=f"n{i}") for i in range(3000)]
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        result = Member.batch_upsert(members, conflict="email", validate=False)
    finally:
        gc.callbacks.remove(count)
    assert result == UpsertResult(inserted=1500, updated=1500)
    assert all(m.id is not None for m in members)
    # At most the one young-generation pass when the collector is back on (before, a pass
    # every 700 new objects: nearly twenty here).
    assert len(passes) <= 1, passes
    assert gc.isenabled()


@pytest.mark.parametrize("n", [5, 37, 1500])
def test_key_lookups_of_many_sizes_find_every_existing_row(db, fresh, n):
    """The key lookup's IN list is compiled once per size (padded to a power of two): every
    size finds exactly the rows that exist, on a composite key and on a soft-unique key
    (whose live-rows condition the lookup carries)."""
    fresh(Pair, Phoenix)
    Pair.batch_insert([Pair(a=i, b=f"b{i}", v=i) for i in range(0, n, 3)])
    pairs = [Pair(a=i, b=f"b{i}", v=i + 1) for i in range(n)]
    existing = len(range(0, n, 3))
    assert Pair.batch_upsert(pairs, conflict=["a", "b"]) == UpsertResult(
        inserted=n - existing, updated=existing
    )
    assert sorted((p.a, p.v) for p in Pair.query()) == [(i, i + 1) for i in range(n)]
    assert len({p.id for p in pairs}) == n
    Phoenix.batch_insert([Phoenix(code=f"c{i}", v=i) for i in range(n)])
    Phoenix.query().where(Phoenix.__table__.c.v % 2 == 0).delete()  # soft: keys not held
    result = Phoenix.batch_upsert(
        [Phoenix(code=f"c{i}", v=-i) for i in range(n)], conflict="code"
    )
    odd = n // 2  # the live rows
    assert result == UpsertResult(inserted=n - odd, updated=odd)


def test_mariadb_key_lookups_stay_below_the_in_list_conversion(db, fresh):
    """MariaDB runs an IN list of ``in_predicate_conversion_threshold`` values or more as a
    join with a derived table, scanned over the whole table: each key lookup (and read back)
    of an upsert stays below it."""
    if not db.facts.is_mariadb:
        pytest.skip("a MariaDB optimizer fact")
    with db.engine.connect() as conn:
        threshold = int(conn.exec_driver_sql("SELECT @@in_predicate_conversion_threshold")
                        .scalar_one())
    fresh(Member)
    Member.batch_insert([Member(email=f"m{i}@x", username="a") for i in range(0, 2500, 2)])
    sizes: list[int] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("SELECT") and " IN (" in statement:
            sizes.append(len(parameters))

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        result = Member.batch_upsert(
            [Member(email=f"m{i}@x", username="b") for i in range(2500)], conflict="email"
        )
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert result == UpsertResult(inserted=1250, updated=1250)
    assert sizes and max(sizes) < threshold, sizes


@pytest.mark.parametrize("existing", [100, 4_000])
@pytest.mark.parametrize("field, value, error", [
    ("status", "x" * 11, DataError), ("username", None, NotNullViolation)])
def test_upsert_refusing_an_update_names_its_record_and_column(db, fresh, backend, existing,
                                                               field, value, error):
    """Existing rows are updated in the batch update's form for their number (from 3,000 on
    PostgreSQL: COPY into a temporary table). A value the column refuses (validation off: a
    text too long, a NULL in a NOT NULL column) names its record, counted in the input where
    new rows come between the existing ones, and its column; nothing is written."""
    if backend == "sqlite" and error is DataError:
        pytest.skip("SQLite keeps a text of any length (exactly): nothing to refuse")
    fresh(Member)
    Member.batch_insert_from_dicts(
        [{"email": f"m{i}@x", "username": f"u{i}"} for i in range(0, 2 * existing, 2)]
    )
    rows = [{"email": f"m{i}@x", "username": f"v{i}", "status": "ok"}
            for i in range(2 * existing)]
    bad = 2 * existing - 10  # an existing row, after as many new ones
    rows[bad][field] = value
    with pytest.raises(error) as refused:
        Member.batch_upsert(rows, conflict="email", update=["username", "status"],
                            validate=False)
    assert (refused.value.record_index, refused.value.column) == (bad, field)
    assert f"record {bad}: column '{field}'" in str(refused.value)
    assert Member.query().count() == existing
    assert Member.query().where({"status": "ok"}).count() == 0
    rows[bad] = {"email": f"m{bad}@x", "username": "fine", "status": "x" * 10}
    assert Member.batch_upsert(rows, conflict="email", update=["username", "status"]) == \
        UpsertResult(inserted=existing, updated=existing)
    assert Member.query().where({"username": "fine"}).one().status == "x" * 10
