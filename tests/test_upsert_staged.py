"""The staged direct upsert (activerecord/write/upsert_staged.py): on MySQL/MariaDB, dict rows
nobody gets back are loaded into a temporary table, then one UPDATE and one INSERT ...
SELECT, counted by the server. On every backend the outcome (counts, stored rows, errors)
is the lookup path's, which instances always take: counts of mixed chunks, every type and
hostile text, keys equal only under the server's collation, conflicts on another unique
key, refused values, an outer transaction, explicit autoincrement keys."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from pydantic import Field

from activerecord import (
    ActiveRecord,
    ActiveRecordError,
    Col,
    Transaction,
    UniqueViolation,
    UpsertResult,
    col,
    excluded,
)
from activerecord.write.upsert_staged import StagedUpsert

from .conftest import raw_count
from .test_mysql_load_data import HOSTILE


class Model(ActiveRecord):
    __abstract__ = True
    __metadata__ = sa.MetaData()


class Member(Model):
    __table_name__ = "us_members"

    id: int | None = None
    email: Annotated[str | None, Field(max_length=60), Col(unique=True)] = None
    nick: Annotated[str | None, Field(max_length=20), Col(unique=True)] = None
    visits: int = 0
    note: Annotated[str | None, Field(max_length=40)] = None


class Valued(Model):
    __table_name__ = "us_valued"

    id: int | None = None
    code: Annotated[str, Field(max_length=20), Col(unique=True)]
    s: Annotated[str, Field(max_length=80)] | None = None
    t: str | None = None
    big: int | None = None
    b: bool | None = None
    f: float | None = None
    d: Annotated[decimal.Decimal, Field(max_digits=12, decimal_places=4)] | None = None
    ts: dt.datetime | None = None
    day: dt.date | None = None
    tm: dt.time | None = None
    u: uuid.UUID | None = None
    raw: bytes | None = None
    doc: dict[str, Any] | None = None


@pytest.fixture(autouse=True)
def staged_small_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The staged path (MySQL/MariaDB) for these tests' few rows too."""
    monkeypatch.setattr(StagedUpsert, "min_rows", 1)


@contextmanager
def statements(db: Any) -> Iterator[list[str]]:
    """The SQL statements sent through SQLAlchemy inside the block."""
    seen: list[str] = []

    def hear(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", hear)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", hear)


def _staged(db: Any) -> bool:
    return db.facts.direct_upsert() == "staged"


def _lookups(seen: list[str]) -> bool:
    """Whether the lookup path ran (its ``FOR UPDATE``; the staged path locks with one over
    its temporary table)."""
    return any("FOR UPDATE" in s.upper() and "ar_upsert_staged" not in s for s in seen)


def _ran_staged(db: Any, seen: list[str]) -> bool:
    """The staged path wrote the call (its temporary table, and no key lookup)."""
    return any("ar_upsert_staged" in s for s in seen) and not _lookups(seen)


def _stored(model: type[ActiveRecord]) -> dict[Any, dict[str, Any]]:
    key = "code" if model is Valued else "nick"
    return {
        getattr(r, key): r.model_dump(exclude={"id"}) for r in model.query().all()
    }


def _outcome(
    fresh: Callable[..., None], model: type[ActiveRecord], seed: list[dict[str, Any]],
    rows: list[dict[str, Any]], *, records: bool, **kwargs: Any,
) -> tuple[Any, dict[Any, dict[str, Any]]]:
    """(the result or the error's type and record, the stored rows) of one upsert on a table
    holding ``seed``: of dicts (the direct path) or of instances (the lookup path)."""
    fresh(model)
    if seed:
        model.batch_insert_from_dicts(seed)
    given: list[Any] = [model(**r) for r in rows] if records else rows
    try:
        got: Any = model.batch_upsert(given, **kwargs)
    except ActiveRecordError as exc:
        got = (type(exc), exc.record_index)
    return got, _stored(model)


def test_counts_of_a_mixed_chunk_are_exact(db, fresh):
    fresh(Member)
    Member.batch_insert_from_dicts(
        [{"email": f"m{i}@x", "nick": f"n{i}", "visits": 1} for i in range(400)]
    )
    rows = [
        {"email": f"m{i}@x", "nick": f"n{i}", "visits": 1 if i < 200 else 2} for i in range(600)
    ]
    rows += [{"email": None, "nick": f"null{i}", "visits": 5} for i in range(3)]  # never a key
    with statements(db) as seen:
        result = Member.batch_upsert(rows, conflict="email", update=["visits"])
    assert result == UpsertResult(inserted=203, updated=200, unchanged=200)
    if _staged(db):
        assert _ran_staged(db, seen)
    stored = _stored(Member)
    assert len(stored) == 603
    assert [stored[f"n{i}"]["visits"] for i in (0, 199, 200, 399, 400, 599)] == [1, 1, 2, 2, 2, 2]
    assert stored["null2"]["visits"] == 5
    rows[600:] = [{"email": None, "visits": 5} for _ in range(3)]
    again = Member.batch_upsert(
        rows, conflict="email", update={"visits": col("visits") + excluded("visits")}
    )
    assert again == UpsertResult(inserted=3, updated=600)
    assert _stored(Member)["n0"]["visits"] == 2 and raw_count(db, "us_members") == 606


def _valued(i: int, k: int) -> dict[str, Any]:
    text = HOSTILE[(i + k) % len(HOSTILE)]
    return {
        "code": f"c{i}", "s": text if (i + k) % 7 else None, "t": text * 3 + str(k),
        "big": 2**62 + i + k if i % 2 else -(2**62) - i, "b": (i + k) % 3 == 0 if i % 5 else None,
        "f": (i + k) / 7 if i % 4 else -1.5e300, "d": decimal.Decimal(i + k) / 8 - 5,
        "ts": dt.datetime(2024, 2, 29, 23, 59, 59, (i + k) % 1_000_000) if i % 6 else None,
        "day": dt.date(1, 1, 1) + dt.timedelta(days=(i + k) * 997),
        "tm": dt.time((i + k) % 24, 59, 58, 999_999 if i % 2 else 0),
        "u": uuid.UUID(int=(i + k) * 2**100 + i),
        "raw": bytes([(i + k) % 256]) + bytes(range(256)) if i % 3 else (b"" if i % 2 else None),
        "doc": {"k": k, "text": text, "nested": [None, True, 1.5]} if i % 4 else None,
    }


@pytest.mark.backends("mysql")  # (PostgreSQL text holds no NUL; SQLite's no length)
def test_every_type_and_hostile_text_round_trips(db, fresh):
    """Tabs, newlines, backslashes, ``\\N``, NUL, non-ASCII, NULLs, binary, JSON, dates and
    times, inserted and then updated by the staged path."""
    fresh(Valued)
    n = len(HOSTILE) * 4
    first = [_valued(i, 0) for i in range(0, n, 2)]
    with statements(db) as seen:
        assert Valued.batch_upsert(first, conflict="code") == UpsertResult(inserted=n // 2)
    changed = [_valued(i, 1) for i in range(n)]
    with statements(db) as again:
        result = Valued.batch_upsert(changed, conflict="code")
    assert result == UpsertResult(inserted=n // 2, updated=n // 2)
    if _staged(db):
        assert _ran_staged(db, seen) and _ran_staged(db, again)
    expected = {r["code"]: Valued(**r).model_dump(exclude={"id"}) for r in changed}
    assert _stored(Valued) == expected
    assert Valued.batch_upsert(changed, conflict="code") == UpsertResult(unchanged=n)


@pytest.mark.parametrize(
    ("seed", "pair"),
    [
        ([], ["A@x", "a@x"]),  # two keys to Python, one to a case-insensitive collation
        ([], ["pad", "pad "]),  # PAD SPACE
        (["a@x"], ["A@x"]),  # a stored key equal to the row's only by collation
        (["a@x"], ["a@x", "A@x"]),
    ],
    ids=["case-pair", "pad-pair", "case-stored", "case-stored-pair"],
)
def test_keys_equal_by_collation_give_what_the_lookup_gives(db, fresh, seed, pair):
    seeded = [{"email": e, "nick": f"s{i}", "visits": 1} for i, e in enumerate(seed)]
    rows = [{"email": e, "nick": f"r{i}", "visits": 2} for i, e in enumerate(pair)]
    with statements(db) as seen:
        direct = _outcome(fresh, Member, seeded, rows, records=False, conflict="email",
                          update=["visits"])
    lookup = _outcome(fresh, Member, seeded, rows, records=True, conflict="email",
                      update=["visits"])
    assert direct == lookup
    if _staged(db):  # tried, then the lookup path wrote it (and raised)
        assert any("ar_upsert_staged" in s for s in seen)
        assert _lookups(seen)
        assert direct[0][0] is UniqueViolation and direct[1] == _stored_of(seeded)


def _stored_of(seeded: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {r["nick"]: Member(**r).model_dump(exclude={"id"}) for r in seeded}


def test_a_conflict_on_another_unique_key_names_the_record_and_writes_nothing(db, fresh):
    seed = [{"email": f"m{i}@x", "nick": f"n{i}", "visits": 1} for i in range(200)]
    rows = [{"email": f"m{i}@x", "nick": f"n{i}", "visits": 2} for i in range(300)]
    rows[250]["nick"] = "n3"  # held by another row
    with statements(db) as seen:
        direct = _outcome(fresh, Member, seed, rows, records=False, conflict="email",
                          update=["visits"])
    assert direct == ((UniqueViolation, 250), _stored_of(seed))
    assert direct == _outcome(fresh, Member, seed, rows, records=True, conflict="email",
                              update=["visits"])
    if _staged(db):
        assert any("ar_upsert_staged" in s for s in seen)


@pytest.mark.backends("mysql")
@pytest.mark.parametrize("at", [50, 150], ids=["existing-row", "new-row"])
def test_a_refused_value_names_record_and_column_and_writes_nothing(db, fresh, at):
    fresh(Member)
    seed = [{"email": f"m{i}@x", "nick": f"n{i}"} for i in range(100)]
    Member.batch_insert_from_dicts(seed)
    rows = [{"email": f"m{i}@x", "nick": f"n{i}", "visits": 3} for i in range(200)]
    rows[at]["note"] = "x" * 41  # over VARCHAR(40): the load cuts it with a warning
    with pytest.raises(ActiveRecordError) as caught:
        Member.batch_upsert(rows, conflict="email", update=["visits", "note"], validate=False)
    assert caught.value.record_index == at
    assert caught.value.column == "note"
    assert _stored(Member) == _stored_of(seed)


def test_inside_an_outer_transaction(db, fresh):
    """Writes before a failed call stay, the failed one leaves nothing, the next one runs
    the staged path again (the temporary table the failure left is dropped first); the
    outer rollback takes them all back."""
    fresh(Member)
    Member.batch_insert_from_dicts([{"email": "a@x", "nick": "taken"}])
    with Transaction():
        assert Member.batch_upsert(
            [{"email": "a@x", "visits": 1}, {"email": "b@x", "nick": "b"}], conflict="email",
            update=["visits"],
        ) == UpsertResult(inserted=1, updated=1)
        with pytest.raises(UniqueViolation) as caught:
            Member.batch_upsert(
                [{"email": "c@x", "nick": "c"}, {"email": "d@x", "nick": "taken"}],
                conflict="email", update=["visits"],
            )
        assert caught.value.record_index == 1
        with statements(db) as seen:
            assert Member.batch_upsert(
                [{"email": "b@x", "nick": "b", "visits": 4}, {"email": "e@x", "nick": "e"}],
                conflict="email", update=["visits"],
            ) == UpsertResult(inserted=1, updated=1)
        if _staged(db):
            assert _ran_staged(db, seen)
        assert {k: v["visits"] for k, v in _stored(Member).items()} == {
            "taken": 1, "b": 4, "e": 0
        }
    assert raw_count(db, "us_members") == 3

    class Undo(Exception):
        pass

    with pytest.raises(Undo), Transaction():
        Member.batch_upsert([{"email": "f@x", "nick": "f"}], conflict="email")
        raise Undo
    assert raw_count(db, "us_members") == 3


def test_rows_giving_the_autoincrement_key_take_the_lookup(db, fresh):
    fresh(Member)
    Member.batch_insert_from_dicts([{"email": "a@x", "nick": "a"}])
    rows = [{"id": 900, "email": "n@x", "nick": "n"}, {"id": 901, "email": "o@x", "nick": "o"}]
    with statements(db) as seen:
        assert Member.batch_upsert(rows, conflict="email") == UpsertResult(inserted=2)
    if _staged(db):
        assert _lookups(seen)
    mixed = [{"id": 5, "email": "a@x", "nick": "a", "visits": 2}, {"email": "g@x", "nick": "g"}]
    assert Member.batch_upsert(mixed, conflict="email", update=["visits"]) == UpsertResult(1, 1)
    stored = {r.nick: (r.id, r.visits) for r in Member.query()}
    assert stored["n"] == (900, 0) and stored["o"] == (901, 0) and stored["a"][1] == 2
    assert stored["g"][0] not in (900, 901, stored["a"][0])


def test_a_generation_of_few_rows_takes_the_lookup(db, fresh, monkeypatch):
    monkeypatch.setattr(StagedUpsert, "min_rows", 16)
    fresh(Member)
    few = [{"email": f"m{i}@x", "nick": f"n{i}"} for i in range(15)]
    with statements(db) as seen:
        assert Member.batch_upsert(few, conflict="email") == UpsertResult(inserted=15)
    assert not any("ar_upsert_staged" in s for s in seen)
    more = [{"email": f"m{i}@x", "nick": f"n{i}"} for i in range(16)]
    with statements(db) as seen:
        assert Member.batch_upsert(more, conflict="email") == UpsertResult(1, 0, 15)
    assert _ran_staged(db, seen) == _staged(db)


@pytest.mark.backends("mysql")
def test_an_insert_trigger_alters_only_the_rows_inserted(db, fresh):
    fresh(Member)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER us_members_note BEFORE INSERT ON us_members "
            "FOR EACH ROW SET NEW.note = 'trig'"
        )
    Member.batch_insert_from_dicts([{"email": f"m{i}@x", "nick": f"n{i}"} for i in range(10)])
    rows = [{"email": f"m{i}@x", "nick": f"n{i}", "note": "row"} for i in range(20)]
    with statements(db) as seen:
        result = Member.batch_upsert(rows, conflict="email", update=["note"])
    assert result == UpsertResult(inserted=10, updated=10)
    if _staged(db):
        assert _ran_staged(db, seen)
    assert {k: v["note"] for k, v in _stored(Member).items()} == {
        f"n{i}": "row" if i < 10 else "trig" for i in range(20)
    }


def test_an_update_by_expression_is_exact(db, fresh):
    fresh(Member)
    Member.batch_insert_from_dicts([{"email": f"m{i}@x", "visits": i} for i in range(10)])
    rows = [{"email": f"m{i}@x", "visits": i % 2} for i in range(20)]
    with statements(db) as seen:
        result = Member.batch_upsert(
            rows, conflict="email", update={"visits": col("visits") + excluded("visits")}
        )
    if _staged(db):
        assert _ran_staged(db, seen)
    assert result == UpsertResult(inserted=10, updated=5, unchanged=5)
    stored = {r.email: r.visits for r in Member.query()}
    assert stored == {f"m{i}@x": (i + i % 2 if i < 10 else i % 2) for i in range(20)}


@pytest.mark.backends("mysql")
def test_a_key_committed_by_another_transaction_meanwhile_is_updated(db, fresh):
    """At READ COMMITTED the staged lock holds no gaps: a key another transaction commits
    after it is skipped by the INSERT. The rows met and inserted then fall one short of the
    rows sent, and the lookup path writes the generation (finding that row)."""
    if not _staged(db):
        pytest.skip("the staged path does not run on this server (a Galera node)")
    fresh(Member)
    Member.batch_insert_from_dicts([{"email": f"m{i}@x", "nick": f"n{i}"} for i in range(10)])
    rows = [{"email": f"m{i}@x", "nick": f"n{i}", "visits": 1} for i in range(20)]
    done: list[str] = []

    def meanwhile(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO us_members") and "ar_upsert_staged" in statement:
            if not done:
                done.append(statement)
                with db.engine.connect() as other:  # another transaction, committed now
                    other.exec_driver_sql(
                        "INSERT INTO us_members (email, nick, visits) VALUES ('m15@x', 'n15', 7)"
                    )
                    other.commit()

    sa.event.listen(db.engine, "before_cursor_execute", meanwhile)
    try:
        with statements(db) as seen, Transaction(isolation_level="READ COMMITTED"):
            result = Member.batch_upsert(rows, conflict="email", update=["visits"])
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", meanwhile)
    assert done and _lookups(seen)  # tried staged, then the lookup
    assert result == UpsertResult(inserted=9, updated=11)
    stored = {r.nick: r.visits for r in Member.query()}
    assert stored == {f"n{i}": 1 for i in range(20)}
