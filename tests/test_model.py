"""Single-record persistence and queries on every backend."""

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
    Expression,
    QueryError,
    RecordNotFound,
    UniqueViolation,
    UnknownColumnError,
    ValidationError,
    col,
)
from activerecord.errors import ParameterCountError

from .models import Book, Enrollment, Everything, Status, Token, User


def make_users(n: int = 5) -> list[User]:
    users = [
        User(username=f"user{i}", email=f"user{i}@example.com", login_count=i) for i in range(n)
    ]
    User.batch_insert(users)
    return users


def test_create_find_save_delete(fresh, backend):
    fresh(User)
    user = User.create(username="ann", email="ann@example.com")
    assert user.id is not None and not user.is_new_record
    assert user.created_at is not None and user.updated_at == user.created_at
    found = User.find(user.id)
    assert found.username == "ann" and found.email == "ann@example.com"
    found.username = "anne"
    assert found.changed_fields == {"username"}
    assert found.save() is True
    assert found.save() is False  # nothing changed: no SQL
    assert User.find(user.id).username == "anne"
    assert user.refresh().username == "anne"
    assert found.delete() is True
    with pytest.raises(RecordNotFound) as info:
        User.find(user.id)
    assert isinstance(info.value, LookupError)


def test_save_updates_only_changed_fields(fresh, backend):
    fresh(User)
    user = User.create(username="ann", email="ann@example.com")
    other = User.find(user.id)
    other.email = "other@example.com"
    other.save()
    user.username = "bob"
    user.save()  # must not write back the stale email
    row = User.find(user.id)
    assert (row.username, row.email) == ("bob", "other@example.com")


def test_find_one_find_all(fresh, backend):
    fresh(User)
    make_users(4)
    assert User.find_one({"username": "user2"}).login_count == 2
    assert User.find_one({"username": "nobody"}) is None
    assert [u.username for u in User.find_all({"login_count": [1, 3]})] == ["user1", "user3"]
    assert len(User.find_all()) == 4
    assert User.find_one("login_count > ?", 2).username == "user3"


def test_where_forms_and_terminals(fresh, backend):
    fresh(User)
    make_users(6)
    q = User.query()
    assert q.where({"status": "active"}).count() == 6
    assert q.where("login_count >= ?", 3).count() == 3
    assert q.where(User.c.login_count < 2).count() == 2
    assert q.where(col("login_count") < 2).count() == 2
    assert q.where({"last_login": None}).count() == 6
    assert q.where({"id": []}).count() == 0
    assert q.where({"login_count": (0, 5)}).order_by("-login_count").first().login_count == 5
    assert q.order_by("login_count desc").limit(2).offset(1).all()[0].login_count == 4
    assert q.where({"username": "user1"}).one().login_count == 1
    with pytest.raises(RecordNotFound):
        q.where({"username": "zz"}).one()
    with pytest.raises(QueryError):
        q.one()
    assert q.exists() and not q.where({"username": "zz"}).exists()
    assert q.sum("login_count") == 15
    assert q.min("login_count") == 0 and q.max("login_count") == 5
    assert float(q.avg("login_count")) == pytest.approx(2.5)
    assert q.select("username").where({"login_count": 1}).all() == [{"username": "user1"}]
    # or_where groups what came before
    assert q.where({"login_count": 1}).or_where({"login_count": 2}).count() == 2


def test_chained_where_groups_or_fragments(fresh, backend):
    fresh(User)
    make_users(6)
    # A AND (B OR C), never (A AND B) OR C
    q = User.query().where({"login_count": 1}).where("login_count = ? OR login_count = ?", 1, 5)
    assert q.count() == 1
    assert "(login_count = " in q.to_sql().sql


def test_unknown_columns_rejected_before_sql(fresh, backend):
    fresh(User)
    with pytest.raises(UnknownColumnError) as info:
        User.query().where({"nope": 1})
    assert "nope" in str(info.value) and "User" in str(info.value)
    with pytest.raises(UnknownColumnError):
        User.query().order_by("email; DROP TABLE users")
    with pytest.raises(UnknownColumnError):
        User.query().where(col("bogus") > 1)
    with pytest.raises(UnknownColumnError):
        User.query().select("bogus")
    with pytest.raises(ParameterCountError):
        User.query().where("login_count > ? AND id < ?", 1)
    with pytest.raises(ParameterCountError):
        Expression("login_count + ?")


def test_fragment_with_colons_and_quotes(fresh, backend):
    fresh(User)
    User.create(username="a:b ?", email="x@example.com")
    assert User.query().where("username = 'a:b ?'").count() == 1
    assert User.query().where("username = ?", "a:b ?").count() == 1


def test_values_are_bound_never_formatted(fresh, backend):
    fresh(User)
    evil = "x'; DROP TABLE users; --"
    User.create(username=evil, email="e@example.com")
    assert User.find_one({"username": evil}).username == evil
    assert User.query().where("username = ?", evil).count() == 1
    assert User.query().count() == 1


def test_every_type_round_trips(fresh, backend):
    fresh(Everything)
    values = dict(
        i=2**62,
        s="héllo ✓",
        t="long " * 100,
        b=True,
        f=1.5,
        d=decimal.Decimal("12345678.1234"),
        ts=dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
        tz=dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        day=dt.date(2024, 2, 29),
        tm=dt.time(13, 14, 15, 500),
        u=uuid.uuid4(),
        e=Status.INACTIVE,
        raw=b"\x00\xffbytes",
        doc={"a": [1, 2, {"b": None}]},
        items=[3, 2, 1],
    )
    rec = Everything.create(**values)
    back = Everything.find(rec.id)
    for key, value in values.items():
        assert getattr(back, key) == value, key
    empty = Everything.create()
    assert all(getattr(Everything.find(empty.id), k) is None for k in values)


def test_natural_composite_and_uuid_keys(fresh, backend):
    fresh(Book, Enrollment, Token)
    Book.create(isbn="978-3", title="Dune")
    assert Book.find("978-3").title == "Dune"
    Enrollment.create(student_id=1, course_id=2, grade="A")
    e = Enrollment.find((1, 2))
    e.grade = "B"
    e.save()
    assert Enrollment.find((1, 2)).grade == "B"
    with pytest.raises(RecordNotFound):
        Enrollment.find(1)
    t = Token.create(label="x")
    assert Token.find(t.id).label == "x"


def test_integrity_errors_are_typed(fresh, backend):
    fresh(User)
    User.create(username="a", email="same@example.com")
    with pytest.raises(UniqueViolation) as info:
        User.create(username="b", email="same@example.com")
    assert info.value.orig is not None
    assert isinstance(info.value, activerecord.DatabaseError)


def test_validation_errors_are_typed(fresh, backend):
    fresh(User)
    user = User.create(username="a", email="a@example.com")
    with pytest.raises(ValidationError):
        User.query().where({"id": user.id}).update({"login_count": "not a number"})
    assert User.find(user.id).login_count == 0


class Model(activerecord.ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Coded(Model):
    __table_name__ = "coded_rows"

    id: int | None = None
    code: Annotated[str, Field(max_length=20, pattern=r"^[a-z]+$")]


def test_a_row_the_model_refuses_is_a_typed_error_naming_it(fresh, db, backend):
    fresh(Coded)
    Coded.batch_insert([Coded(code="abc"), Coded(code="def")])
    with db.engine.begin() as conn:  # written around the model, as another program might
        conn.execute(sa.text("INSERT INTO coded_rows (id, code) VALUES (7, 'NOT OK')"))
    with pytest.raises(ValidationError, match="Coded row 7 read from the database") as caught:
        Coded.query().all()
    assert caught.value.errors and caught.value.errors[0]["loc"][1:] == ("code",)
    with pytest.raises(ValidationError, match="row 7"):
        Coded.find(7)
    assert [c.code for c in Coded.query().where("id < ?", 7).order_by("id")] == ["abc", "def"]


def test_a_result_is_validated_a_slice_at_a_time(fresh, db, backend, monkeypatch):
    from activerecord.model import build

    monkeypatch.setattr(build, "READ_SLICE", 2)
    fresh(Coded)
    Coded.batch_insert([Coded(code=c) for c in ("a", "b", "c", "d", "e")])
    read = Coded.query().order_by("id").all()
    assert [c.code for c in read] == ["a", "b", "c", "d", "e"]
    assert not any(c.is_new_record or c.changed_fields for c in read)
    bad = max(c.id for c in read) + 1000  # after every key the server gave
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO coded_rows (id, code) VALUES (:id, 'BAD')"), {"id": bad})
    with pytest.raises(ValidationError, match=f"Coded row {bad} "):
        Coded.query().order_by("id").all()  # in the third slice


def test_batches_and_each_use_keyset(fresh, backend):
    fresh(User)
    make_users(25)
    sizes = [len(b) for b in User.query().batches(10)]
    assert sizes == [10, 10, 5]
    names = [u.username for u in User.query().where("login_count >= ?", 5).each(7)]
    assert names == [f"user{i}" for i in range(5, 25)]
    assert sum(len(b) for b in User.query().limit(12).batches(5)) == 12


def test_create_all_drop_all_and_reflected_table(fresh, db, backend):
    fresh(User)
    reflected = sa.Table("users", sa.MetaData(), autoload_with=db.engine)

    class ReflectedUser(activerecord.ActiveRecord):
        __table__ = reflected
        id: int | None = None
        username: str
        email: str
        status: str = "reflected"
        login_count: int = 0

    ReflectedUser.create(username="r", email="r@example.com")
    assert User.find_one({"username": "r"}).status == "reflected"

    class Mismatched(activerecord.ActiveRecord):
        __abstract__ = True
        id: int | None = None
        username: int

    with pytest.raises(activerecord.SchemaError, match="username"):
        type("Broken", (Mismatched,), {"__table__": reflected, "__abstract__": False,
                                       "__annotations__": {}})
    activerecord.drop_all(tables=[User.__table__])
    assert not sa.inspect(db.engine).has_table("users")
    activerecord.create_all(tables=[User.__table__])
    assert User.query().count() == 0
