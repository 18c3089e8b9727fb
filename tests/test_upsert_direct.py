"""The direct upsert (activerecord/write/upsert_direct.py): dict rows nobody gets back are
written by ``INSERT ... ON CONFLICT DO UPDATE ... WHERE changed`` statements and counted by
the server, where the dialect has a style for it (SQLite); on every backend the counts,
stored values and errors are the lookup path's: repeated keys, unchanged rows, NULL keys,
explicit and generated keys, a conflict on another unique key. Also the values PostgreSQL's
merge sends as binary arrays, and records getting their keys and stored values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import pydantic
import pytest
import sqlalchemy as sa
from pydantic import Field

from activerecord import (
    ActiveRecord,
    ActiveRecordError,
    Col,
    OptimisticLockMixin,
    TimestampMixin,
    UniqueViolation,
    UpsertResult,
    ValidationError,
    col,
    excluded,
)
from activerecord.write.upsert_staged import StagedUpsert

from .conftest import raw_count


class Model(ActiveRecord):
    __abstract__ = True
    __metadata__ = sa.MetaData()


class Account(Model):
    __table_name__ = "ud_accounts"

    id: int | None = None
    email: Annotated[str | None, Field(max_length=60), Col(unique=True)] = None
    nick: Annotated[str | None, Field(max_length=20), Col(unique=True)] = None
    visits: int = 0
    note: Annotated[str | None, Field(max_length=40)] = None


class Stamped(TimestampMixin, OptimisticLockMixin, Model):
    __table_name__ = "ud_stamped"

    id: int | None = None
    code: Annotated[str, Field(max_length=20), Col(unique=True)]
    n: int = 0


class Ranked(Model):
    __table_name__ = "ud_ranked"

    id: int | None = None
    code: Annotated[str, Field(max_length=20), Col(unique=True)]
    rank: Annotated[int | None, Col(server_default="7")] = None
    n: int = 0


class Typed(Model):
    """Values of every simple type, some of which PostgreSQL gets as binary arrays."""

    __table_name__ = "ud_typed"

    id: int | None = None
    code: Annotated[str, Field(max_length=20), Col(unique=True)]
    text: Annotated[str | None, Field(max_length=40)] = None
    big: int | None = None
    ratio: float | None = None
    flag: bool | None = None
    day: dt.date | None = None
    at: dt.datetime | None = None
    aware: pydantic.AwareDatetime | None = None


@pytest.fixture(autouse=True)
def staged_small_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The staged path (MySQL/MariaDB) for these tests' few rows too."""
    monkeypatch.setattr(StagedUpsert, "min_rows", 1)


@contextmanager
def statements(db: Any) -> Iterator[list[str]]:
    """The SQL statements sent to the database inside the block."""
    seen: list[str] = []

    def hear(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", hear)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", hear)


def _lookups(seen: list[str]) -> list[str]:
    """The lookup path's key lookups (``FOR UPDATE``; the staged path locks with one over
    its temporary table)."""
    return [s for s in seen if "FOR UPDATE" in s.upper() and "ar_upsert_staged" not in s]


def _stored(model: type[ActiveRecord], *fields: str) -> dict[Any, tuple[Any, ...]]:
    rows = model.query().to_dicts()
    return {r[fields[0]]: tuple(r[f] for f in fields[1:]) for r in rows}


def test_dicts_are_written_by_on_conflict_statements_without_a_lookup(db, fresh):
    fresh(Account)
    Account.batch_insert_from_dicts([{"email": "a@x", "visits": 1}, {"email": "b@x", "visits": 2}])
    rows = [
        {"email": "a@x", "visits": 5},  # changed
        {"email": "b@x", "visits": 2},  # as stored
        {"email": "c@x", "visits": 3},  # new
    ]
    with statements(db) as seen:
        result = Account.batch_upsert(rows, conflict="email", update=["visits"])
    assert result == UpsertResult(inserted=1, updated=1, unchanged=1)
    assert _stored(Account, "email", "visits") == {"a@x": (5,), "b@x": (2,), "c@x": (3,)}
    upserts = [s for s in seen if "ON CONFLICT" in s.upper()]
    style = db.facts.direct_upsert()
    assert len(upserts) == (style == "rowid")
    assert bool([s for s in seen if "ar_upsert_staged" in s]) == (style == "staged")
    if style is not None:
        assert not _lookups(seen)


def test_a_key_twice_in_one_input_is_inserted_then_updated_then_unchanged(db, fresh):
    fresh(Account)
    rows = [
        {"email": "a@x", "visits": 1}, {"email": "b@x", "visits": 1},
        {"email": "a@x", "visits": 2}, {"email": "a@x", "visits": 2},
    ]
    result = Account.batch_upsert(rows, conflict="email", update=["visits"])
    assert result == UpsertResult(inserted=2, updated=1, unchanged=1)
    assert _stored(Account, "email", "visits") == {"a@x": (2,), "b@x": (1,)}


def test_nulls_in_the_unique_key_never_conflict(db, fresh):
    fresh(Account)
    Account.batch_insert_from_dicts([{"email": None, "nick": "n1"}])
    rows = [{"email": None, "nick": "n2", "visits": 1}, {"email": None, "nick": "n3"}]
    result = Account.batch_upsert(rows, conflict="email", update=["visits"])
    assert result == UpsertResult(inserted=2)
    assert sorted(_stored(Account, "nick", "email")) == ["n1", "n2", "n3"]


def test_explicit_keys_below_the_generated_ones_are_counted_as_inserted(db, fresh):
    """A row giving its own key lower than the keys stored (SQLite's rowid range would not
    see it), rows leaving theirs to the database, in one chunk and in separate ones."""
    fresh(Account)
    Account.batch_insert_from_dicts([{"id": 500, "email": "a@x"}])
    rows = [{"id": 3, "email": "low@x"}, {"email": "a@x", "visits": 9}]
    result = Account.batch_upsert(rows, conflict="email", update=["visits"])
    assert result == UpsertResult(inserted=1, updated=1)
    assert _stored(Account, "email", "id", "visits") == {"a@x": (500, 9), "low@x": (3, 0)}
    result = Account.batch_upsert([{"email": "gen@x"}, {"email": "low@x", "visits": 1}],
                                  conflict="email", update=["visits"])
    assert result == UpsertResult(inserted=1, updated=1)
    generated = Account.query().where({"email": "gen@x"}).one().id
    assert generated is not None and generated not in (3, 500)
    by_key = [{"id": 3, "email": "low@x", "visits": 7}, {"id": 9, "email": "nine@x"}]
    assert Account.batch_upsert(by_key, update=["visits"]) == UpsertResult(1, 1)
    assert _stored(Account, "id", "visits")[3] == (7,)
    assert raw_count(db, "ud_accounts") == 4


def test_a_conflict_on_another_unique_key_is_located_and_nothing_is_written(db, fresh):
    fresh(Account)
    Account.batch_insert_from_dicts([{"email": "a@x", "nick": "taken", "visits": 1}])
    rows = [
        {"email": "a@x", "nick": "taken", "visits": 2},
        {"email": "b@x", "nick": "free"},
        {"email": "c@x", "nick": "taken"},  # nick is held by a@x's row
    ]
    with pytest.raises(UniqueViolation) as caught:
        Account.batch_upsert(rows, conflict="email", update=["visits"])
    assert caught.value.record_index == 2
    assert _stored(Account, "email", "nick", "visits") == {"a@x": ("taken", 1)}


def test_a_value_the_column_refuses_is_located_and_nothing_is_written(db, fresh):
    fresh(Account)
    Account.batch_insert_from_dicts([{"email": "a@x"}])
    rows = [{"email": "a@x", "visits": 3}, {"email": "b@x", "visits": 2**70}]
    with pytest.raises(ActiveRecordError) as caught:
        Account.batch_upsert(rows, conflict="email", update=["visits"], validate=False)
    assert caught.value.record_index == 1
    assert _stored(Account, "email", "visits") == {"a@x": (0,)}


def test_unchanged_rows_keep_their_timestamp_and_version(db, fresh):
    fresh(Stamped)
    Stamped.batch_insert_from_dicts([{"code": "a", "n": 1}, {"code": "b", "n": 1}])
    before = _stored(Stamped, "code", "updated_at", "version")
    result = Stamped.batch_upsert(
        [{"code": "a", "n": 1}, {"code": "b", "n": 2}, {"code": "c", "n": 1}],
        conflict="code", update=["n"],
    )
    assert result == UpsertResult(inserted=1, updated=1, unchanged=1)
    after = _stored(Stamped, "code", "updated_at", "version", "n")
    assert after["a"] == (*before["a"], 1)
    assert after["b"][1] == before["b"][1] + 1 and after["b"][0] >= before["b"][0]
    assert after["b"][2] == 2 and after["c"][2] == 1


def test_update_of_nothing_inserts_the_new_and_leaves_the_stored(db, fresh):
    fresh(Account)
    Account.batch_insert_from_dicts([{"email": "a@x", "visits": 1}])
    result = Account.batch_upsert(
        [{"email": "a@x", "visits": 5}, {"email": "b@x", "visits": 5}],
        conflict="email", update=[],
    )
    assert result == UpsertResult(inserted=1, unchanged=1)
    assert _stored(Account, "email", "visits") == {"a@x": (1,), "b@x": (5,)}


def test_expressions_over_stored_and_incoming_values(db, fresh):
    fresh(Account)
    Account.batch_insert_from_dicts([{"email": "a@x", "visits": 1}, {"email": "b@x", "visits": 4}])
    result = Account.batch_upsert(
        [{"email": "a@x", "visits": 2}, {"email": "b@x", "visits": 0},
         {"email": "c@x", "visits": 3}],
        conflict="email", update={"visits": col("visits") + excluded("visits")},
    )
    assert result == UpsertResult(inserted=1, updated=1, unchanged=1)
    assert _stored(Account, "email", "visits") == {"a@x": (3,), "b@x": (4,), "c@x": (3,)}


def test_a_trigger_writing_the_same_table_leaves_the_counts_exact(db, fresh, backend):
    """SQLite counts the inserted rows above the max rowid: a trigger adding rows to the
    table would be counted too, so such a table takes the lookup path."""
    if backend != "sqlite":
        pytest.skip("a SQLite trigger")
    fresh(Account)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER ud_copy AFTER INSERT ON ud_accounts WHEN NEW.note = 'copy' "
            "BEGIN INSERT INTO ud_accounts (email, visits) VALUES (NEW.email || '.copy', 0); "
            "END"
        )
    result = Account.batch_upsert(
        [{"email": "a@x", "note": "copy"}, {"email": "b@x"}], conflict="email",
        update=["visits"],
    )
    assert result == UpsertResult(inserted=2)
    assert sorted(_stored(Account, "email")) == ["a@x", "a@x.copy", "b@x"]


SPECIAL_TEXT = ["NULL", "", "{a,b}", 'quote"s', "back\\slash", "comma,", "ünï ☃", " pad "]


def test_values_of_every_simple_type_are_stored_exactly(db, fresh):
    """Inserted and updated by the direct path (SQLite) or the lookup path, whose merge
    sends these as binary arrays on PostgreSQL."""
    fresh(Typed)
    zone = dt.timezone(dt.timedelta(hours=5, minutes=30))

    def row(i: int, text: str | None) -> dict[str, Any]:
        return {
            "code": f"c{i}", "text": text, "big": [-(2**63), 2**63 - 1, 0, None][i % 4],
            "ratio": [0.1, 1e308, -2.5e-300, None][i % 4], "flag": [True, False, None][i % 3],
            "day": dt.date(1999, 12, 31) + dt.timedelta(days=i),
            "at": dt.datetime(2024, 2, 29, 23, 59, 59, 999999) - dt.timedelta(minutes=i),
            "aware": dt.datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=zone),
        }

    first = [row(i, t) for i, t in enumerate(SPECIAL_TEXT)]
    Typed.batch_upsert(first[::2], conflict="code", update=None)
    with statements(db) as seen:
        result = Typed.batch_upsert(first, conflict="code", update=None)
    assert result == UpsertResult(inserted=4, unchanged=4)
    if db.facts.direct_upsert() is not None:
        assert not _lookups(seen)
    changed = [{**row(i + 1, t), "code": f"c{i}"} for i, t in enumerate(reversed(SPECIAL_TEXT))]
    assert Typed.batch_upsert(changed, conflict="code", update=None) == UpsertResult(updated=8)
    stored = {r.code: r.model_dump(exclude={"id"}) for r in Typed.query()}
    expected = {r["code"]: Typed(**r).model_dump(exclude={"id"}) for r in changed}
    for values in (*stored.values(), *expected.values()):
        values["aware"] = values["aware"].astimezone(dt.timezone.utc)
    assert stored == expected


def test_records_get_their_keys_and_the_stored_values(db, fresh):
    """Instances: keys on every record, stored timestamps and versions read back."""
    fresh(Stamped)
    seeded = [Stamped(code="a", n=1), Stamped(code="b", n=1)]
    Stamped.batch_insert(seeded)
    records = [Stamped(code="a", n=1), Stamped(code="b", n=2), Stamped(code="c", n=3)]
    result = Stamped.batch_upsert(records, conflict="code", update=["n"])
    assert result == UpsertResult(inserted=1, updated=1, unchanged=1)
    stored = {r.code: r for r in Stamped.query()}
    for record in records:
        row = stored[record.code]
        assert (record.id, record.version, record.created_at, record.updated_at, record.n) == (
            row.id, row.version, row.created_at, row.updated_at, row.n
        )
        assert not record.is_new_record and not record.changed_fields
    assert [r.id for r in records[:2]] == [s.id for s in seeded]
    assert stored["b"].version == stored["a"].version + 1  # only the changed row moved


def test_records_inserted_get_server_defaults_and_existing_ones_their_stored_values(
    db, fresh,
):
    fresh(Ranked)
    Ranked.batch_insert_from_dicts([{"code": "a", "rank": 3}])
    records = [Ranked(code="a", n=1), Ranked(code="b", n=1)]
    result = Ranked.batch_upsert(records, conflict="code", update=["n"])
    assert result == UpsertResult(inserted=1, updated=1)
    assert [(r.code, r.rank, r.n) for r in records] == [("a", 3, 1), ("b", 7, 1)]
    assert _stored(Ranked, "code", "rank", "n") == {"a": (3, 1), "b": (7, 1)}


def test_records_of_a_failed_upsert_are_put_back(db, fresh):
    fresh(Account)
    Account.batch_insert_from_dicts([{"email": "a@x", "nick": "taken"}])
    records = [Account(email="b@x", nick="free"), Account(email="c@x", nick="taken")]
    with pytest.raises(UniqueViolation) as caught:
        Account.batch_upsert(records, conflict="email", update=["visits"])
    assert caught.value.record_index == 1
    assert [(r.id, r.is_new_record) for r in records] == [(None, True), (None, True)]
    assert raw_count(db, "ud_accounts") == 1


def test_keys_of_any_text_are_found(db, fresh):
    """The lookup's key array (binary on PostgreSQL) and the direct path match keys that a
    text array would have to quote: NULL as text, braces, quotes, backslashes, commas."""
    fresh(Account)
    Account.batch_insert_from_dicts([{"email": t, "visits": 1} for t in SPECIAL_TEXT[::2]])
    rows = [{"email": t, "visits": 2} for t in SPECIAL_TEXT]
    assert Account.batch_upsert(rows, conflict="email", update=["visits"]) == UpsertResult(4, 4)
    records = [Account(email=t, visits=2) for t in SPECIAL_TEXT]
    result = Account.batch_upsert(records, conflict="email", update=["visits"])
    assert result == UpsertResult(unchanged=8)
    stored = _stored(Account, "email", "id", "visits")
    assert {r.email: (r.id, r.visits) for r in records} == stored
    assert len(stored) == 8


# -- a stored value the record's field refuses ------------------------------------------------


class Bounded(Model):
    __table_name__ = "ud_bounded"

    id: int | None = None
    code: Annotated[str, Field(max_length=20), Col(unique=True)]
    score: Annotated[int, Field(ge=0)] = 0
    n: int = 0


def test_a_stored_value_the_field_refuses_is_named_and_nothing_is_written(db, fresh):
    fresh(Bounded)
    with db.engine.begin() as conn:  # stored behind the model's back: below its bound
        conn.execute(Bounded.__table__.insert(), [{"code": "a", "score": -1, "n": 1}])
    records = [Bounded(code="b", n=1), Bounded(code="a", n=2)]
    with pytest.raises(ValidationError) as caught:  # ours, not pydantic's
        Bounded.batch_upsert(records, conflict="code", update=["n"])
    message = str(caught.value)
    assert "Bounded row 1" in message and "score" in message and "greater than" in message
    assert [(r.id, r.is_new_record, r.score) for r in records] == [(None, True, 0)] * 2
    assert _stored(Bounded, "code", "score", "n") == {"a": (-1, 1)}
