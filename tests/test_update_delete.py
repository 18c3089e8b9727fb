"""Set-based update and delete, and batch_update by primary key, on every backend."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Annotated

import pytest
import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import (
    ActiveRecord,
    BatchValidationError,
    Col,
    Expression,
    OptimisticLockMixin,
    ParameterCountError,
    QueryError,
    StaleRecordError,
    Transaction,
    UniqueViolation,
    UnknownColumnError,
    UnsafeWriteError,
    ValidationError,
    col,
    optimistic_lock,
)

from .models import Book, Enrollment, Everything, Status, User


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Counter(Model):
    """No timestamps: an UPDATE that sets a value to itself changes nothing in the row."""

    __table_name__ = "ud_counters"

    id: int | None = None
    name: Annotated[str, Field(max_length=40), Col(unique=True)]
    n: int = 0
    score: float = 0.0
    label: Annotated[str | None, Field(max_length=20), Col(name="label_text")] = None


class Account(OptimisticLockMixin, Model):
    __table_name__ = "ud_accounts"

    id: int | None = None
    owner: Annotated[str, Field(max_length=40)]
    balance: int = 0


class Page(optimistic_lock("lock_version"), Model):
    __table_name__ = "ud_pages"

    id: int | None = None
    title: Annotated[str, Field(max_length=40)]


class Other(Model):
    __table_name__ = "ud_others"

    id: int | None = None
    user_id: int


def make_users(n: int = 9) -> list[User]:
    users = [
        User(
            username=f"user{i}",
            email=f"user{i}@example.com",
            status=("active", "inactive", "temporary")[i % 3],
            login_count=i,
            last_login=dt.datetime(2024, 1, 1) + dt.timedelta(days=i),
        )
        for i in range(n)
    ]
    User.batch_insert(users)
    return users


def snapshot(model: type[ActiveRecord]) -> list[dict[str, object]]:
    return [r.model_dump() for r in model.query().with_deleted().order_by("id").all()]


# -- the seed's examples ---------------------------------------------------------------------
def test_seed_batch_update_examples(fresh, backend):
    fresh(User)
    users = make_users(9)
    inactive = [u for u in users if u.status == "inactive"]
    assert User.query().where({"status": "inactive"}).update({"status": "archived"}) == len(
        inactive
    )
    assert User.query().where({"status": "archived"}).count() == len(inactive)

    cutoff = dt.datetime(2024, 1, 1) + dt.timedelta(days=4)
    old = [u for u in users if u.last_login < cutoff]
    affected = User.query().where("last_login < ?", cutoff).update({"status": "inactive"})
    assert affected == len(old)

    active_before = {u.id: u.login_count for u in User.query().where({"status": "active"})}
    done = User.query().where({"status": "active"}).update(
        {"login_count": Expression("login_count + 1")}
    )
    assert done == len(active_before)
    for user in User.query().where({"id": list(active_before)}):
        assert user.login_count == active_before[user.id] + 1


def test_seed_batch_delete_examples(fresh, backend):
    fresh(User)
    users = make_users(9)
    temporary = [u for u in users if u.status == "temporary"]
    assert User.query().where({"status": "temporary"}).delete() == len(temporary)
    assert User.query().where({"status": "temporary"}).count() == 0

    User.query().where({"status": "inactive"}).update({"created_at": dt.datetime(2000, 1, 1)})
    old_date = dt.datetime.now() - dt.timedelta(days=365)
    expected = User.query().where({"status": "inactive"}).count()
    affected = (
        User.query().where({"status": "inactive"}).where("created_at < ?", old_date).delete()
    )
    assert affected == expected
    assert User.query().count() == len(users) - len(temporary) - expected


def test_seed_transaction_example(fresh, backend):
    fresh(User)
    make_users(6)
    User.query().where({"status": "temporary"}).update({"status": "trial"})
    with Transaction():
        User.query().where("created_at < ?", dt.datetime(2000, 1, 1)).delete()
        User.query().where({"status": "trial"}).update({"status": "active"})
        User.batch_insert([User(username="new", email="new@example.com")])
    assert User.query().where({"status": "trial"}).count() == 0
    assert User.query().count() == 7


# -- where forms -----------------------------------------------------------------------------
WHERE_FORMS = {
    "dict": lambda q: q.where({"status": "active"}),
    "dict-in": lambda q: q.where({"login_count": [1, 2, 5]}),
    "dict-null": lambda q: q.where({"last_login": None}),
    "fragment": lambda q: q.where("login_count >= ? AND status <> ?", 3, "temporary"),
    "column": lambda q: q.where(User.c.login_count < 4),
    "col": lambda q: q.where(col("login_count") > 5),
    "expression": lambda q: q.where(Expression("login_count % ? = 0", 2)),
    "or-where": lambda q: q.where({"login_count": 1}).or_where({"login_count": 7}),
    "chained": lambda q: q.where({"status": "inactive"}).where("login_count > ?", 2),
    "subquery": lambda q: q.where(User.c.id.in_(sa.select(Other.c.user_id))),
}


@pytest.mark.parametrize("form", sorted(WHERE_FORMS))
def test_every_where_form_updates_and_deletes_what_it_selects(fresh, backend, form):
    fresh(User, Other)
    users = make_users(9)
    User.query().where({"id": [users[0].id, users[3].id]}).update({"last_login": None})
    Other.batch_insert([Other(user_id=users[2].id), Other(user_id=users[4].id)])
    query = WHERE_FORMS[form](User.query())
    selected = sorted(u.id for u in query.all())
    assert selected, "the form must select some rows"
    assert query.update({"username": "renamed"}, touch=False) == len(selected)
    assert sorted(u.id for u in User.query().where({"username": "renamed"})) == selected
    assert query.delete() == len(selected)
    assert User.query().count() == len(users) - len(selected)
    assert not User.query().where({"id": selected}).exists()


# -- update values ---------------------------------------------------------------------------
def test_each_kind_of_update_value(fresh, backend):
    fresh(Counter)
    Counter.batch_insert([Counter(name=f"c{i}", n=i, score=float(i)) for i in range(4)])
    q = Counter.query().where("n >= ?", 1)
    assert q.update({"n": col("n") + 10}) == 3
    assert q.update({"n": Counter.c.n * 2}) == 3
    assert q.update({"score": Expression("score * ?", 1.5)}) == 3
    assert q.update({"score": Expression("score + ? - ?", 2, 1)}) == 3
    assert Counter.query().where({"name": "c0"}).update({"n": "7"}) == 1  # lax int, validated
    rows = {c.name: (c.n, c.score) for c in Counter.query()}
    assert rows == {
        "c0": (7, 0.0),
        "c1": (22, 2.5),
        "c2": (24, 4.0),
        "c3": (26, 5.5),
    }


def test_update_sets_enum_null_and_every_type(fresh, backend):
    fresh(Everything)
    rec = Everything.create(i=1, e=Status.ACTIVE, s="x")
    values = dict(
        s="héllo", b=False, d=decimal.Decimal("1.2500"), ts=dt.datetime(2024, 2, 29, 1, 2, 3),
        day=dt.date(2024, 3, 1), u=uuid.uuid4(), e=Status.INACTIVE, doc={"k": [1]}, items=[1],
        raw=b"\x00\x01",
    )
    assert Everything.query().where({"id": rec.id}).update(values) == 1
    back = Everything.find(rec.id)
    for key, value in values.items():
        assert getattr(back, key) == value, key
    assert Everything.query().where({"id": rec.id}).update({"e": "active", "s": None}) == 1
    back = Everything.find(rec.id)
    assert back.e is Status.ACTIVE and back.s is None


def test_count_includes_rows_whose_values_do_not_change(fresh, backend):
    fresh(Counter, User)
    Counter.batch_insert([Counter(name=f"c{i}", n=i % 2) for i in range(6)])
    # Three rows already hold n=1: they still count as matched (MySQL counts only changed rows
    # unless the connection asks for found rows).
    assert Counter.query().where("id > ?", 0).update({"n": 1}) == 6
    assert Counter.query().where({"n": 1}).update({"n": 1}) == 6
    make_users(3)
    assert User.query().where({"status": "active"}).update({"status": "active"},
                                                          touch=False) == 1


def test_updated_at_is_set_unless_given_or_opted_out(fresh, backend):
    fresh(User)
    users = make_users(3)
    past = dt.datetime(2001, 1, 1)
    User.query().update({"updated_at": past}, all_rows=True)
    assert {u.updated_at for u in User.query()} == {past}
    User.query().where({"id": users[0].id}).update({"status": "x"})
    assert User.find(users[0].id).updated_at > past
    User.query().where({"id": users[1].id}).update({"status": "x"}, touch=False)
    assert User.find(users[1].id).updated_at == past
    given = dt.datetime(2010, 5, 5)
    User.query().where({"id": users[2].id}).update({"status": "x", "updated_at": given})
    assert User.find(users[2].id).updated_at == given


# -- guards ----------------------------------------------------------------------------------
def test_unfiltered_writes_need_all_rows(fresh, backend):
    fresh(Counter)
    Counter.batch_insert([Counter(name=f"c{i}") for i in range(3)])
    for attempt in (
        lambda: Counter.query().update({"n": 1}),
        lambda: Counter.query().delete(),
        lambda: Counter.query().hard_delete(),
    ):
        with pytest.raises(UnsafeWriteError, match="all_rows=True"):
            attempt()
    assert Counter.query().where({"n": 1}).count() == 0 and Counter.query().count() == 3
    assert Counter.query().update({"n": 1}, all_rows=True) == 3
    assert Counter.query().delete(all_rows=True) == 3
    assert Counter.query().count() == 0


def test_unknown_columns_and_bad_values_fail_before_sql(fresh, backend):
    fresh(User)
    make_users(3)
    before = snapshot(User)
    q = User.query().where({"status": "active"})
    with pytest.raises(UnknownColumnError, match="'nope'"):
        q.update({"nope": 1})
    with pytest.raises(UnknownColumnError):
        q.update({"status": "x", "login_count; DROP TABLE users": 1})
    with pytest.raises(UnknownColumnError):
        q.update({"login_count": col("bogus") + 1})
    with pytest.raises(UnknownColumnError):
        User.query().where({"bogus": 1}).delete()
    with pytest.raises(ValidationError, match="login_count") as info:
        q.update({"login_count": "many"})
    assert info.value.errors and isinstance(info.value, ValueError)
    with pytest.raises(ValidationError, match="username"):
        q.update({"username": None})
    with pytest.raises(ValidationError, match="last_login"):
        q.update({"last_login": "not a date"})
    with pytest.raises(ValidationError, match="username"):
        q.update({"username": "x" * 65})  # max_length=64
    with pytest.raises(ParameterCountError):
        q.update({"login_count": Expression("login_count + ? + ?", 1)})
    with pytest.raises(ParameterCountError):
        User.query().where("login_count > ? AND id > ?", 1).delete()
    with pytest.raises(QueryError, match="at least one"):
        q.update({})
    assert snapshot(User) == before


def test_update_keys_may_be_field_or_column_names(fresh, backend):
    fresh(Counter)
    Counter.create(name="a")
    assert Counter.query().where({"label_text": None}).update({"label_text": "by column"}) == 1
    assert Counter.find_one({"name": "a"}).label == "by column"
    assert Counter.query().where({"label": "by column"}).update({"label": "by field"}) == 1
    assert Counter.find_one({"name": "a"}).label == "by field"
    with pytest.raises(QueryError, match="twice"):
        Counter.query().where({"name": "a"}).update({"label": "x", "label_text": "y"})


def test_other_tables_are_refused_but_subqueries_work(fresh, backend):
    fresh(User, Other)
    users = make_users(3)
    Other.create(user_id=users[1].id)
    with pytest.raises(QueryError, match="another table"):
        User.query().where(User.c.id == Other.c.user_id).update({"status": "x"})
    with pytest.raises(QueryError, match="another table"):
        User.query().where({"id": users[0].id}).update({"login_count": Other.c.user_id})
    with pytest.raises(QueryError, match="another table"):
        User.query().where(Other.c.user_id > 0).delete()
    correlated = sa.select(sa.func.count()).where(Other.c.user_id == User.c.id).scalar_subquery()
    assert User.query().where("id > ?", 0).update({"login_count": correlated}) == 3
    assert {u.id: u.login_count for u in User.query()} == {
        u.id: int(u.id == users[1].id) for u in users
    }


# -- atomicity -------------------------------------------------------------------------------
def test_a_failing_update_changes_nothing(fresh, backend):
    fresh(Counter)
    Counter.batch_insert([Counter(name=f"c{i}", n=i) for i in range(5)])
    before = snapshot(Counter)
    # The first row updated is fine, the second collides with it: the statement is undone.
    with pytest.raises(UniqueViolation):
        Counter.query().where("n >= ?", 1).update({"name": "same"})
    assert snapshot(Counter) == before


def test_rollback_when_a_later_statement_fails(fresh, backend):
    fresh(Counter)
    Counter.batch_insert([Counter(name=f"c{i}", n=i) for i in range(5)])
    before = snapshot(Counter)
    with pytest.raises(UniqueViolation), Transaction():
        assert Counter.query().where({"n": [0, 1]}).update({"score": 9.5}) == 2
        assert Counter.query().where({"n": 4}).delete() == 1
        Counter.query().where({"n": 2}).update({"name": "c3"})
    assert snapshot(Counter) == before


# -- batch_update ----------------------------------------------------------------------------
def test_batch_update_distinct_values_and_counts(fresh, backend):
    fresh(Counter)
    counters = [Counter(name=f"c{i}", n=i) for i in range(7)]
    Counter.batch_insert(counters)
    for c in counters:
        c.n = c.n * 100 + 1
        c.score = c.n / 4
    assert Counter.batch_update(counters, batch_size=3) == 7  # chunks of 3, 3, 1
    assert {c.name: (c.n, c.score) for c in Counter.query()} == {
        c.name: (c.n, c.score) for c in counters
    }
    assert all(not c.changed_fields for c in counters)
    # Unchanged values still count as matched rows.
    assert Counter.batch_update(counters, ["n"]) == 7
    # nothing changed and no fields named: no SQL, nothing matched
    assert Counter.batch_update(counters) == 0
    assert Counter.batch_update([]) == 0


def test_batch_update_writes_only_changed_fields_by_default(fresh, backend):
    fresh(Counter)
    counters = [Counter(name=f"c{i}", n=i) for i in range(3)]
    Counter.batch_insert(counters)
    # Someone else changes `score` meanwhile; we change only `n`.
    Counter.query().where("id > ?", 0).update({"score": 5.0})
    counters[0].n = 50
    assert Counter.batch_update(counters) == 3
    assert {c.name: (c.n, c.score) for c in Counter.query()} == {
        "c0": (50, 5.0), "c1": (1, 5.0), "c2": (2, 5.0),
    }
    # With explicit fields, exactly those are written (even unchanged in memory).
    assert Counter.batch_update(counters, ["score"]) == 3
    assert {c.score for c in Counter.query()} == {0.0}


def test_batch_update_sets_updated_at(fresh, backend):
    fresh(User)
    users = make_users(4)
    past = dt.datetime(2001, 1, 1)
    User.query().update({"updated_at": past}, all_rows=True)
    for u in users:
        u.login_count += 1
    assert User.batch_update(users[:2], ["login_count"]) == 2
    assert User.batch_update(users[2:3], ["login_count"], touch=False) == 1
    users[3].updated_at = dt.datetime(2012, 1, 1)
    assert User.batch_update(users[3:], ["login_count", "updated_at"]) == 1
    stored = {u.id: u for u in User.query()}
    for u in users[:2]:
        assert stored[u.id].updated_at > past and stored[u.id].updated_at == u.updated_at
    assert stored[users[2].id].updated_at == past
    assert stored[users[3].id].updated_at == dt.datetime(2012, 1, 1)
    assert [stored[u.id].login_count for u in users] == [u.login_count for u in users]


def test_batch_update_every_type(fresh, backend):
    fresh(Everything)
    records = [Everything(i=i) for i in range(3)]
    Everything.batch_insert(records)
    records[0].s = "héllo ✓"
    records[0].tz = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    records[1].d, records[1].ts = decimal.Decimal("12345678.1234"), dt.datetime(2024, 2, 29, 1)
    records[1].day, records[1].tm = dt.date(2024, 1, 31), dt.time(23, 59, 59, 5)
    records[2].u, records[2].e, records[2].raw = uuid.uuid4(), Status.INACTIVE, b"\x00\xff"
    records[2].doc, records[2].items, records[2].b, records[2].f = {"a": None}, [3], True, 2.5
    assert Everything.batch_update(records) == 3
    for rec in records:
        assert Everything.find(rec.id).model_dump() == rec.model_dump()


def test_batch_update_natural_and_composite_keys(fresh, backend):
    fresh(Book, Enrollment)
    books = [Book(isbn=f"978-{i}", title=f"t{i}") for i in range(3)]
    Book.batch_insert(books)
    for b in books:
        b.title = b.title.upper()
    assert Book.batch_update(books) == 3
    assert sorted(b.title for b in Book.query()) == ["T0", "T1", "T2"]
    marks = [Enrollment(student_id=s, course_id=c) for s in (1, 2) for c in (1, 2)]
    Enrollment.batch_insert(marks)
    for m in marks:
        m.grade = f"{m.student_id}{m.course_id}"
    assert Enrollment.batch_update(marks, ["grade"]) == 4
    assert {(e.student_id, e.course_id): e.grade for e in Enrollment.query()} == {
        (m.student_id, m.course_id): m.grade for m in marks
    }


def test_batch_update_input_errors_write_nothing(fresh, backend):
    fresh(Counter)
    counters = [Counter(name=f"c{i}") for i in range(3)]
    Counter.batch_insert(counters)
    before = snapshot(Counter)
    counters[0].n = 9
    with pytest.raises(UnknownColumnError, match="nope"):
        Counter.batch_update(counters, ["nope"])
    with pytest.raises(QueryError, match="primary key"):
        Counter.batch_update(counters, ["id", "n"])
    with pytest.raises(QueryError, match="primary key"):
        Counter.batch_update([*counters, Counter(name="unsaved", n=1)], ["n"])
    twin = Counter(id=counters[0].id, name="c0", n=3)
    with pytest.raises(QueryError, match="records 0 and 3"):
        Counter.batch_update([*counters, twin], ["n"])
    with pytest.raises(TypeError, match="record 1"):
        Counter.batch_update([counters[0], {"id": 1, "n": 2}], ["n"])  # type: ignore[list-item]
    with pytest.raises(QueryError, match="at least one"):
        Counter.batch_update(counters, [])
    assert snapshot(Counter) == before


class Loose(Model):
    """Assignments not validated: batch_update checks the records itself, as save() does."""

    model_config = {"validate_assignment": False}
    __table_name__ = "ud_loose"

    id: int | None = None
    name: Annotated[str, Field(max_length=10)]
    n: int = 0


def test_batch_update_validates_what_assignment_did_not(fresh, backend):
    fresh(Loose, Counter)
    rows = [Loose(name=f"l{i}") for i in range(4)]
    Loose.batch_insert(rows)
    before = snapshot(Loose)
    rows[1].name = "far too long for ten"
    rows[3].n = "many"  # type: ignore[assignment]
    with pytest.raises(BatchValidationError) as caught:
        Loose.batch_update(rows, batch_size=2)
    assert sorted(caught.value.failures) == [1, 3]
    assert "record 1: name" in str(caught.value) and "record 3: n" in str(caught.value)
    assert snapshot(Loose) == before
    with pytest.raises(ValidationError):
        rows[1].save()  # the same verdict
    rows[1].name, rows[3].n = "short", 3
    assert Loose.batch_update(rows) == 4
    # validate_assignment (the default) checked each assignment: no second pass unless asked
    counters = [Counter(name=f"c{i}") for i in range(2)]
    Counter.batch_insert(counters)
    counters[0].__dict__["n"] = "not a number"  # around pydantic
    with pytest.raises(BatchValidationError, match="record 0: n"):
        Counter.batch_update(counters, ["n"], validate=True)


def test_batch_update_missing_rows_are_not_counted(fresh, backend):
    fresh(Counter)
    counters = [Counter(name=f"c{i}") for i in range(3)]
    Counter.batch_insert(counters)
    Counter.query().where({"id": counters[1].id}).delete()
    for c in counters:
        c.n = 4
    assert Counter.batch_update(counters, ["n"]) == 2


def test_batch_update_rolls_back_when_a_chunk_fails(fresh, backend):
    fresh(Counter)
    counters = [Counter(name=f"c{i}", n=i) for i in range(6)]
    Counter.batch_insert(counters)
    before = snapshot(Counter)
    for c in counters:
        c.n += 100
    counters[4].name = "c0"  # collides in the second chunk, after the first was written
    with pytest.raises(UniqueViolation):
        Counter.batch_update(counters, ["n", "name"], batch_size=3)
    assert snapshot(Counter) == before
    # Inside an ambient transaction only the batch is undone (a savepoint), not earlier work.
    with Transaction():
        Counter.query().where({"n": 5}).update({"score": 1.0})
        with pytest.raises(UniqueViolation):
            Counter.batch_update(counters, ["n", "name"], batch_size=2)
    after = {c.name: (c.n, c.score) for c in Counter.query()}
    assert after == {r["name"]: (r["n"], 1.0 if r["n"] == 5 else 0.0) for r in before}


# -- optimistic lock -------------------------------------------------------------------------
def test_save_checks_and_bumps_the_version(fresh, backend):
    fresh(Account)
    mine = Account.create(owner="ann", balance=10)
    assert mine.version == 0
    theirs = Account.find(mine.id)
    theirs.balance = 20
    assert theirs.save() and theirs.version == 1
    mine.balance = 30
    with pytest.raises(StaleRecordError, match="since it was read at version 0") as info:
        mine.save()
    assert info.value.keys == [mine.id] and info.value.versions == [0]
    assert Account.find(mine.id).balance == 20
    mine.refresh()
    mine.balance = 30
    assert mine.save() and mine.version == 2
    assert Account.find(mine.id).version == 2
    gone = Account.find(mine.id)
    Account.query().where({"id": mine.id}).delete()
    gone.balance = 1
    with pytest.raises(StaleRecordError):
        gone.save()


def test_query_update_bumps_the_version(fresh, backend):
    fresh(Account)
    accounts = [Account(owner=f"o{i}") for i in range(3)]
    Account.batch_insert(accounts)
    assert Account.query().where("id > ?", 0).update({"balance": 5}) == 3
    assert {a.version for a in Account.query()} == {1}
    accounts[0].balance = 7
    with pytest.raises(StaleRecordError):
        accounts[0].save()  # read before the set-based update


def test_batch_update_with_optimistic_lock(fresh, backend):
    fresh(Account)
    accounts = [Account(owner=f"o{i}") for i in range(5)]
    Account.batch_insert(accounts)
    for a in accounts:
        a.balance = 100
    assert Account.batch_update(accounts, batch_size=2) == 5
    assert [a.version for a in accounts] == [1] * 5
    assert {(a.balance, a.version) for a in Account.query()} == {(100, 1)}
    # Another writer changes records 3 and 1 (its own read, its own save).
    for index in (3, 1):
        other = Account.find(accounts[index].id)
        other.owner = "someone else"
        other.save()
    before = snapshot(Account)
    for a in accounts:
        a.balance = 200
    with pytest.raises(StaleRecordError) as info:
        Account.batch_update(accounts, batch_size=2)
    assert info.value.indexes == [1, 3]
    assert info.value.keys == [accounts[1].id, accounts[3].id]
    assert info.value.versions == [1, 1]  # as read; the rows are at 2 now
    assert "record 1" in str(info.value) and "nothing was written" in str(info.value)
    assert snapshot(Account) == before
    assert [a.version for a in accounts] == [1] * 5  # memory untouched too
    with pytest.raises(QueryError, match="version"):
        Account.batch_update(accounts, ["balance", "version"])


def test_custom_version_field(fresh, backend):
    fresh(Page)
    pages = [Page(title=f"p{i}") for i in range(2)]
    Page.batch_insert(pages)
    for p in pages:
        p.title += "!"
    assert Page.batch_update(pages) == 2
    assert [p.lock_version for p in Page.query().order_by("id")] == [1, 1]
    stale = Page.find(pages[0].id)
    pages[0].title = "again"
    pages[0].save()
    stale.title = "late"
    with pytest.raises(StaleRecordError):
        stale.save()
    assert "version" not in Page.__ar_info__.fields


def test_delete_of_a_stale_record_raises_and_keeps_the_row(fresh, backend):
    fresh(Account)
    mine = Account.create(owner="ann", balance=10)
    theirs = Account.find(mine.id)
    theirs.balance = 20
    theirs.save()
    with pytest.raises(StaleRecordError) as info:
        mine.delete()
    assert info.value.model == "Account" and info.value.keys == [mine.id]
    assert str(info.value) == (
        f"Account {mine.id!r} has changed since it was read at version 0: not deleted"
    )
    assert Account.find(mine.id).balance == 20  # their change survives
    assert not mine.is_new_record and mine.version == 0  # the record is as it was
    # A set-based update moves the version too, so a record read before it is stale.
    mine.refresh()
    Account.query().where({"id": mine.id}).update({"owner": "bob"})
    with pytest.raises(StaleRecordError):
        mine.delete()
    assert mine.refresh().version == 2
    assert mine.delete() is True and mine.is_new_record
    assert Account.query().count() == 0


def test_delete_of_a_fresh_or_gone_locked_record(fresh, backend):
    fresh(Account, Page)
    kept, fresh_one, gone = (Account.create(owner=f"o{i}") for i in range(3))
    kept.balance = 5
    kept.save()  # version 1 in memory and in the row
    assert kept.delete() is True and fresh_one.delete() is True
    Account.query().where({"id": gone.id}).delete()
    assert gone.delete() is False  # already gone: nothing to protect, as without a lock
    assert Account(owner="new").delete() is False  # never saved
    assert Account.query().count() == 0
    # A custom version field, inside a transaction: the error leaves the transaction usable.
    page = Page.create(title="p")
    other = Page.find(page.id)
    other.title = "q"
    other.save()
    with Transaction():
        Page.create(title="r")
        with pytest.raises(StaleRecordError, match="at version 0"):
            page.delete()
    assert sorted(p.title for p in Page.query()) == ["q", "r"]
    assert page.refresh().lock_version == 1 and page.delete() is True


# -- compile-only: the SQL for pinned dialects -----------------------------------------------
def _sql(stmt: sa.ClauseElement, dialect: str) -> activerecord.SQL:
    from activerecord.query.sql import compile_sql

    return compile_sql(stmt, Counter, dialect)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_set_based_statements_compile_with_bound_values(dialect):
    q = Counter.query().where({"name": "o'hara"}).where("n > ?", 41)
    update = _sql(q.update_statement({"n": Expression("n + ?", 1), "score": 2.5}), dialect)
    assert update.sql.startswith("UPDATE ud_counters SET ")
    assert "o'hara" not in update.sql and "41" not in update.sql and "2.5" not in update.sql
    assert sorted(map(str, update.params.values())) == ["1", "2.5", "41", "o'hara"]
    delete = _sql(q.delete_statement(), dialect)
    assert delete.sql.startswith("DELETE FROM ud_counters WHERE ")
    assert "o'hara" not in delete.sql and set(delete.params.values()) == {"o'hara", 41}
    arith = _sql(q.update_statement({"n": col("n") * 3}), dialect)
    assert "ud_counters.n * " in arith.sql and 3 in arith.params.values()


def test_update_statement_adds_updated_at_and_version():
    stmt = User.query().where({"id": 1}).update_statement({"status": "x"})
    assert "updated_at" in _sql(stmt, "sqlite").sql
    stmt = User.query().where({"id": 1}).update_statement({"status": "x"}, touch=False)
    assert "updated_at" not in _sql(stmt, "sqlite").sql
    stmt = Account.query().where({"id": 1}).update_statement({"balance": 1})
    assert "version=(ud_accounts.version + ?)" in _sql(stmt, "sqlite").sql



@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_instance_delete_statement_carries_the_version_as_read(dialect):
    account = Account._from_db({"id": 7, "owner": "ann", "balance": 0, "version": 3})
    account.version = 9  # the version as read is checked, not one set since
    stmt, guarded = account._delete_statement()
    compiled = _sql(stmt, dialect)
    assert compiled.sql.startswith("DELETE FROM ud_accounts WHERE ud_accounts.id = ")
    assert " AND ud_accounts.version = " in compiled.sql
    assert guarded and sorted(compiled.params.values()) == [3, 7]
    page = Page._from_db({"id": 1, "title": "t", "lock_version": 4})
    stmt, guarded = page._delete_statement()
    assert guarded and "ud_pages.lock_version = " in _sql(stmt, dialect).sql
    plain = Counter._from_db({"id": 1, "name": "c", "n": 0, "score": 0.0, "label": None})
    stmt, guarded = plain._delete_statement()
    assert not guarded and list(_sql(stmt, dialect).params.values()) == [1]


@pytest.mark.parametrize(
    ("style", "dialect", "shape"),
    [
        ("unnest", "postgresql", "FROM unnest(%(a0)s::BIGINT[], %(a1)s::BIGINT[]) AS v(c0, c1)"),
        ("values", "postgresql", "FROM (VALUES (%(r0_0)s::BIGINT, %(r0_1)s::BIGINT"),
        ("union", "mysql", "UNION ALL SELECT"),
        ("executemany", "sqlite", "WHERE ud_counters.id = ?"),
    ],
)
def test_batch_update_statement_per_style(style, dialect, shape):
    from activerecord.write.update import batch_update_statement

    stmt = batch_update_statement(Counter, ["n"], 2, style=style)
    sql = _sql(stmt, dialect).sql
    assert shape in sql
    locked = _sql(batch_update_statement(Account, ["balance"], 2, style=style), dialect).sql
    assert "ud_accounts.version = v.c2" in locked or "ud_accounts.version = ?" in locked
    assert "version=(v.c2 + " in locked or "version=(? + " in locked


def test_batch_update_runs_without_collector_passes_and_turns_it_back_on(fresh, backend):
    """The row tuples, parameters and snapshots of a big batch_update are small objects with
    no cycles: the cyclic collector stays paused over the write (each of its passes walked
    every record again: as long as the whole SQLite write), and is on again after."""
    import gc

    fresh(Counter)
    counters = [Counter(name=f"c{i}", n=i) for i in range(3000)]
    Counter.batch_insert(counters)
    for c in counters:
        c.n += 1
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    def update(*fields: list[str]) -> int:
        passes.clear()
        gc.collect()
        gc.callbacks.append(count)
        try:
            return Counter.batch_update(counters, *fields)
        finally:
            gc.callbacks.remove(count)
            # At most the one young-generation pass when the collector is back on (before,
            # a pass every 700 new objects: more than ten here).
            assert len(passes) <= 1, passes

    Counter.batch_update(counters[:2], ["n"])  # first use: lazy imports allocate too
    assert update(["n"]) == 3000
    assert update() == 0  # nothing changed
    for c in counters:
        c.score = 1.5
    assert update() == 3000  # the changed fields
    assert gc.isenabled()
    assert sorted(c.n for c in Counter.query()) == list(range(1, 3001))
