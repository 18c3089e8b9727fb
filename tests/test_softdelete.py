"""SoftDeleteMixin: the default scope on every read and write, restore, hard delete, unique keys."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, Field
from sqlalchemy.dialects import postgresql, sqlite

from activerecord import (
    ActiveRecord,
    Col,
    OptimisticLockMixin,
    QueryError,
    RecordNotFound,
    SchemaError,
    SoftDeleteMixin,
    StaleRecordError,
    TimestampMixin,
    UniqueViolation,
    UnknownColumnError,
    UnsafeWriteError,
    soft_unique,
)
from activerecord.query.sql import compile_sql

from .conftest import raw_count


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Author(SoftDeleteMixin, Model):
    __table_name__ = "sd_authors"

    id: int | None = None
    name: Annotated[str, Field(max_length=40)]
    status: Annotated[str, Field(max_length=20)] = "active"
    score: int = 0


class Article(TimestampMixin, SoftDeleteMixin, Model):
    __table_name__ = "sd_articles"

    id: int | None = None
    author_id: int
    title: Annotated[str, Field(max_length=40)]


class Account(SoftDeleteMixin, Model):
    __table_name__ = "sd_accounts"
    __soft_unique__ = ("email", ("tenant", "handle"))

    id: int | None = None
    email: Annotated[str, Field(max_length=100)]
    tenant: int = 1
    handle: Annotated[str, Field(max_length=40)] = "h"


class Renamed(SoftDeleteMixin, Model):
    """The deleted_at column renamed, and aware (stored as UTC)."""

    __table_name__ = "sd_renamed"

    id: int | None = None
    code: Annotated[str, Field(max_length=20)]
    deleted_at: Annotated[AwareDatetime | None, Col(name="removed_on")] = None


soft_unique(Renamed, "code")


class Ticket(TimestampMixin, SoftDeleteMixin, OptimisticLockMixin, Model):
    """Soft deletes under an optimistic lock."""

    __table_name__ = "sd_tickets"

    id: int | None = None
    title: Annotated[str, Field(max_length=40)]


class Plain(Model):
    __table_name__ = "sd_plain"

    id: int | None = None
    n: int


OLD = dt.datetime(2000, 1, 1, 12, 0, 0)


@pytest.fixture
def authors(fresh):
    """Six authors (scores 1..6); the three with status 'gone' are soft-deleted."""
    fresh(Author)
    rows = [
        {"name": f"a{i}", "status": "gone" if i % 2 == 0 else "active", "score": i}
        for i in range(1, 7)
    ]
    Author.batch_insert_from_dicts(rows)
    assert Author.query().where({"status": "gone"}).delete() == 3
    return Author


# -- writes: delete, hard delete, restore ---------------------------------------------------
def test_query_delete_marks_rows_and_returns_count(db, authors):
    assert raw_count(db, "sd_authors") == 6
    marked = Author.query().with_deleted().where({"status": "gone"}).all()
    assert len(marked) == 3 and all(a.deleted_at is not None and a.is_deleted for a in marked)
    # only rows not already deleted are marked: again, under any scope, counts 0
    assert Author.query().where({"status": "gone"}).delete() == 0
    assert Author.query().with_deleted().where({"status": "gone"}).delete() == 0
    assert Author.query().only_deleted().delete(all_rows=True) == 0
    stamps = {a.id: a.deleted_at for a in Author.query().only_deleted().all()}
    assert stamps == {a.id: a.deleted_at for a in marked}  # first stamp kept
    # with_deleted().delete() marks the live rows too
    assert Author.query().with_deleted().where("score <= ?", 3).delete() == 2
    assert Author.query().count() == 1
    assert raw_count(db, "sd_authors") == 6


def test_query_delete_requires_where(db, authors):
    with pytest.raises(UnsafeWriteError):
        Author.query().delete()
    assert Author.query().delete(all_rows=True) == 3
    assert Author.query().with_deleted().count() == 6


def test_query_hard_delete_removes_rows_deleted_or_not(db, authors):
    # a purge: removes the matching rows whether soft-deleted or not
    assert Author.query().where("score >= ?", 4).hard_delete() == 3
    assert raw_count(db, "sd_authors") == 3
    assert sorted(a.score for a in Author.query().with_deleted().all()) == [1, 2, 3]
    # only_deleted() narrows it to the soft-deleted rows
    assert Author.query().only_deleted().hard_delete(all_rows=True) == 1
    assert sorted(a.score for a in Author.query().with_deleted().all()) == [1, 3]
    with pytest.raises(UnsafeWriteError):
        Author.query().hard_delete()


def test_query_restore(db, authors):
    restored = Author.query().only_deleted().where("score < ?", 5).restore()
    assert restored == 2
    assert sorted(a.score for a in Author.query().all()) == [1, 2, 3, 4, 5]
    assert [a.score for a in Author.query().only_deleted().all()] == [6]
    assert Author.query().only_deleted().where("score < ?", 5).restore() == 0
    # with_deleted() restores the deleted matching rows, leaving live rows alone
    assert Author.query().with_deleted().restore(all_rows=True) == 1
    assert Author.query().count() == 6 and not Author.query().only_deleted().exists()


def test_query_restore_errors(db, authors):
    with pytest.raises(QueryError, match="only_deleted"):
        Author.query().where({"status": "gone"}).restore()
    with pytest.raises(UnsafeWriteError):
        Author.query().only_deleted().restore()
    with pytest.raises(QueryError, match="Plain has no soft deletes"):
        Plain.query().with_deleted().where({"n": 1}).restore()
    assert Author.query().only_deleted().count() == 3


# -- reads and updates under each scope -----------------------------------------------------
def test_reads_leave_deleted_rows_out(db, authors):
    q = Author.query()
    assert sorted(a.score for a in q.all()) == [1, 3, 5]
    assert sorted(a.score for a in Author.find_all()) == [1, 3, 5]
    first = q.first()
    assert first is not None and first.score == 1
    newest = q.order_by("-score").first()
    assert newest is not None and newest.score == 5
    assert q.count() == 3
    assert q.limit(10).count() == 3
    assert q.where({"status": "gone"}).count() == 0
    assert q.exists() and not q.where({"status": "gone"}).exists()
    assert q.sum("score") == 9
    assert q.min("score") == 1 and q.max("score") == 5
    assert float(q.avg("score")) == 3.0
    assert [len(b) for b in q.batches(2)] == [2, 1]
    assert [a.score for a in q.each(1)] == [1, 3, 5]
    assert q.select("score").order_by("score").all() == [{"score": 1}, {"score": 3}, {"score": 5}]
    assert Author.find_one({"score": 2}) is None
    with pytest.raises(RecordNotFound):
        q.where({"score": 2}).one()
    deleted_id = Author.query().only_deleted().order_by("id").all()[0].id
    with pytest.raises(RecordNotFound):
        Author.find(deleted_id)


def test_reads_with_deleted_and_only_deleted(db, authors):
    every = Author.query().with_deleted()
    assert sorted(a.score for a in every.all()) == [1, 2, 3, 4, 5, 6]
    assert every.count() == 6 and every.sum("score") == 21
    assert every.max("score") == 6
    assert [len(b) for b in every.batches(4)] == [4, 2]
    gone = Author.query().only_deleted()
    assert sorted(a.score for a in gone.all()) == [2, 4, 6]
    assert gone.count() == 3 and gone.min("score") == 2
    assert gone.where({"score": 1}).exists() is False
    row = gone.where({"score": 2}).one()
    assert row.is_deleted
    assert gone.first() is not None and gone.first().is_deleted  # type: ignore[union-attr]


def test_update_respects_scope(db, authors):
    assert Author.query().where("score > ?", 0).update({"status": "x"}) == 3
    assert Author.query().with_deleted().where({"status": "x"}).count() == 3
    assert Author.query().only_deleted().update({"score": 0}, all_rows=True) == 3
    assert Author.query().sum("score") == 9
    assert Author.query().with_deleted().update({"name": "n"}, all_rows=True) == 6


def test_plain_model_ignores_scopes(db, fresh):
    fresh(Plain)
    Plain.batch_insert_from_dicts([{"n": 1}, {"n": 2}])
    assert Plain.query().with_deleted().count() == Plain.query().only_deleted().count() == 2
    assert Plain.query().where({"n": 1}).delete() == 1
    assert raw_count(db, "sd_plain") == 1


# -- instances ------------------------------------------------------------------------------
def test_instance_delete_restore_hard_delete(db, fresh):
    fresh(Author)
    ann = Author.create(name="ann")
    bob = Author.create(name="bob")
    ann.name = "unsaved"
    assert ann.delete() is True
    assert ann.is_deleted and ann.deleted_at is not None
    assert ann.name == "unsaved" and ann.changed_fields == {"name"}  # other edits not written
    assert ann.delete() is False  # already deleted
    with pytest.raises(RecordNotFound):
        Author.find(ann.id)
    reloaded = Author.query().with_deleted().where({"id": ann.id}).one()
    assert reloaded.name == "ann" and reloaded.deleted_at == ann.deleted_at
    assert reloaded.refresh().is_deleted  # refresh reads deleted rows on purpose
    assert ann.restore() is True
    assert not ann.is_deleted and Author.find(ann.id).deleted_at is None
    assert ann.restore() is False
    assert bob.delete() is True
    assert bob.hard_delete() is True
    assert raw_count(db, "sd_authors") == 1
    assert bob.hard_delete() is False
    assert Author(name="new").delete() is False  # never saved


def test_delete_of_stale_instance_returns_false(db, fresh):
    fresh(Author)
    ann = Author.create(name="ann")
    Author.query().where({"id": ann.id}).delete()
    assert ann.delete() is False and not ann.is_deleted
    assert ann.refresh().is_deleted
    assert ann.restore() is True


def test_soft_delete_checks_and_bumps_the_version(db, fresh):
    fresh(Ticket)
    mine = Ticket.create(title="a", updated_at=OLD)
    assert mine.delete() is True and mine.is_deleted
    assert mine.version == 1 and mine.updated_at is not None and mine.updated_at > OLD
    assert mine.changed_fields == set()  # memory and snapshot agree with the row
    stored = Ticket.query().with_deleted().where({"id": mine.id}).one()
    assert (stored.version, stored.deleted_at) == (1, mine.deleted_at)
    assert mine.restore() is True and mine.version == 2 and not mine.is_deleted
    assert Ticket.find(mine.id).version == 2
    mine.title = "b"
    assert mine.save() and mine.version == 3  # the bumped version is the one checked next


def test_soft_delete_of_a_stale_record_raises_and_keeps_the_row(db, fresh):
    fresh(Ticket)
    mine = Ticket.create(title="a")
    theirs = Ticket.find(mine.id)
    theirs.title = "b"
    theirs.save()
    with pytest.raises(StaleRecordError) as info:
        mine.delete()
    assert info.value.model == "Ticket" and info.value.keys == [mine.id]
    assert info.value.versions == [0]
    assert str(info.value) == (
        f"Ticket {mine.id!r} has changed since it was read at version 0: not deleted"
    )
    assert not mine.is_deleted and mine.version == 0
    live = Ticket.find(mine.id)
    assert (live.title, live.version, live.deleted_at) == ("b", 1, None)
    # Already soft-deleted (or gone) by someone else: False, as without a lock.
    assert theirs.delete() is True
    assert mine.delete() is False and not mine.is_deleted
    # restore: a deleted row at another version is stale; a live row is False.
    mine.refresh()
    assert mine.is_deleted and mine.version == 2
    theirs.restore()
    theirs.delete()  # version 4, deleted again
    with pytest.raises(StaleRecordError, match="at version 2: not restored"):
        mine.restore()
    assert Ticket.query().only_deleted().one().version == 4
    assert theirs.restore() is True
    assert mine.refresh().restore() is False  # live already
    # hard_delete checks the version too.
    theirs.title = "c"
    theirs.save()
    with pytest.raises(StaleRecordError, match="not deleted"):
        mine.hard_delete()
    assert Ticket.query().count() == 1
    assert mine.refresh().hard_delete() is True
    assert Ticket.query().with_deleted().count() == 0
    assert theirs.delete() is False and theirs.hard_delete() is False  # gone


def test_query_soft_delete_and_restore_bump_the_version(db, fresh):
    fresh(Ticket)
    one, two = Ticket.create(title="one"), Ticket.create(title="two")
    assert Ticket.query().where({"id": one.id}).delete() == 1
    assert Ticket.query().with_deleted().where({"id": one.id}).one().version == 1
    assert Ticket.find(two.id).version == 0  # rows not matched keep theirs
    with pytest.raises(StaleRecordError):
        one.hard_delete()  # read before the set-based soft delete
    assert Ticket.query().only_deleted().where({"id": one.id}).restore() == 1
    assert Ticket.find(one.id).version == 2
    assert Ticket.delete_all({"title": "two"}) == 1
    assert Ticket.query().with_deleted().where({"id": two.id}).one().version == 1
    assert Ticket.query().with_deleted().hard_delete(all_rows=True) == 2


def test_timestamps_touched_by_soft_delete_and_restore(db, fresh):
    fresh(Article)
    one = Article.create(author_id=1, title="one", created_at=OLD, updated_at=OLD)
    two = Article.create(author_id=1, title="two", created_at=OLD, updated_at=OLD)
    assert Article.query().where({"id": one.id}).delete() == 1
    marked = Article.query().with_deleted().where({"id": one.id}).one()
    assert marked.deleted_at is not None and marked.updated_at is not None
    assert marked.updated_at > OLD and marked.created_at == OLD
    Article.query().with_deleted().where({"id": one.id}).update({"updated_at": OLD})
    assert Article.query().only_deleted().where({"id": one.id}).restore() == 1
    back = Article.find(one.id)
    assert back.deleted_at is None and back.updated_at is not None and back.updated_at > OLD
    assert two.delete() is True
    assert two.updated_at is not None and two.updated_at > OLD
    stored = two.refresh()
    assert stored.updated_at == two.updated_at and stored.deleted_at == two.deleted_at
    Article.query().with_deleted().where({"id": two.id}).update({"updated_at": OLD})
    two.refresh()
    assert two.restore() is True and two.updated_at is not None and two.updated_at > OLD
    assert two.refresh().updated_at == two.updated_at


# -- subqueries built by the library --------------------------------------------------------
def test_where_in_subquery_carries_the_inner_scope(db, fresh):
    fresh(Author, Article)
    live = Author.create(name="live")
    gone = Author.create(name="gone")
    Article.batch_insert_from_dicts(
        [{"author_id": live.id, "title": "a"}, {"author_id": gone.id, "title": "b"}]
    )
    gone.delete()
    by_live = Article.query().where_in("author_id", Author.query())
    assert [a.title for a in by_live.all()] == ["a"]
    assert by_live.count() == 1
    every = Article.query().where_in("author_id", Author.query().with_deleted())
    assert sorted(a.title for a in every.all()) == ["a", "b"]
    by_gone = Article.query().where_in("author_id", Author.query().only_deleted().select("id"))
    assert [a.title for a in by_gone.all()] == ["b"]
    # writes through the subquery keep the scope too
    assert Article.query().where_in("author_id", Author.query()).update({"title": "z"}) == 1
    assert Article.query().where_in("author_id", Author.query().only_deleted()).delete() == 1
    assert [a.title for a in Article.query().all()] == ["z"]
    # subquery_of() for hand-built expressions
    sub = Author.query().subquery_of("id")
    assert Article.query().with_deleted().where(Article.c.author_id.in_(sub)).count() == 1
    # and the outer model's scope still applies: the soft-deleted article stays out
    assert Article.query().where_in("author_id", Author.query().with_deleted()).count() == 1


def test_where_in_checks_its_arguments(db):
    with pytest.raises(UnknownColumnError):
        Article.query().where_in("nope", Author.query())
    with pytest.raises(QueryError, match="exactly one column"):
        Article.query().where_in("author_id", Author.query().select("id", "name"))
    with pytest.raises(QueryError, match="takes a Query"):
        Article.query().where_in("author_id", [1, 2])  # type: ignore[arg-type]


# -- SQL shape (compile-only) ---------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_statements_carry_the_scope(dialect):
    q = Author.query().where({"status": "x"})
    sql = compile_sql(q.delete_statement(), Author, dialect).sql
    assert sql.startswith("UPDATE sd_authors SET deleted_at=") and "deleted_at IS NULL" in sql
    sql = compile_sql(q.with_deleted().delete_statement(), Author, dialect).sql
    assert sql.count("deleted_at IS NULL") == 1
    sql = compile_sql(q.hard_delete_statement(), Author, dialect).sql
    assert sql.startswith("DELETE FROM sd_authors") and "deleted_at" not in sql
    sql = compile_sql(q.only_deleted().hard_delete_statement(), Author, dialect).sql
    assert "deleted_at IS NOT NULL" in sql
    sql = compile_sql(q.only_deleted().restore_statement(), Author, dialect).sql
    assert "SET deleted_at=" in sql and "deleted_at IS NOT NULL" in sql
    sql = compile_sql(q.update_statement({"score": 1}), Author, dialect).sql
    assert "deleted_at IS NULL" in sql
    for stmt in (q.count_statement(), q.limit(3).count_statement(), q.select_statement()):
        assert "deleted_at IS NULL" in compile_sql(stmt, Author, dialect).sql


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_instance_soft_delete_and_restore_statements_check_the_version(dialect):
    row = {"id": 5, "title": "t", "version": 2, "deleted_at": None}
    ticket = Ticket._from_db({**row, "created_at": OLD, "updated_at": OLD})
    stmt, written, guarded = ticket._mark_statement(ticket._soft_delete_values(), "default")
    compiled = compile_sql(stmt, Ticket, dialect)
    assert compiled.sql.startswith("UPDATE sd_tickets SET ")
    assert "deleted_at=" in compiled.sql and "version=" in compiled.sql
    where = compiled.sql.split(" WHERE ")[1]
    assert "sd_tickets.deleted_at IS NULL" in where and "sd_tickets.version = " in where
    assert guarded and written["version"] == 3 and written["deleted_at"] is not None
    stmt, written, guarded = ticket._mark_statement(ticket._restore_values(), "only_deleted")
    where = compile_sql(stmt, Ticket, dialect).sql.split(" WHERE ")[1]
    assert "deleted_at IS NOT NULL" in where and "sd_tickets.version = " in where
    assert guarded and written["version"] == 3 and written["deleted_at"] is None
    author = Author._from_db({"id": 1, "name": "a", "status": "x", "score": 0, "deleted_at": None})
    stmt, written, guarded = author._mark_statement(author._soft_delete_values(), "default")
    assert not guarded and set(written) == {"deleted_at"}
    assert "version" not in compile_sql(stmt, Author, dialect).sql


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_query_soft_delete_and_restore_statements_bump_the_version(dialect):
    q = Ticket.query().where({"title": "x"})
    for stmt in (q.delete_statement(), q.only_deleted().restore_statement()):
        assert "version=(sd_tickets.version + " in compile_sql(stmt, Ticket, dialect).sql
    assert "version" not in compile_sql(q.hard_delete_statement(), Ticket, dialect).sql
    assert "version" not in compile_sql(Author.query().delete_statement(all_rows=True), Author,
                                        dialect).sql


def test_partial_index_ddl_per_dialect():
    index = next(i for i in Account.__table__.indexes if i.name == "uq_sd_accounts_email_live")
    pg = str(sa.schema.CreateIndex(index).compile(dialect=compile_sql_dialect("postgresql")))
    assert pg.endswith("UNIQUE INDEX uq_sd_accounts_email_live ON sd_accounts (email) "
                       "WHERE deleted_at IS NULL")
    lite = str(sa.schema.CreateIndex(index).compile(dialect=compile_sql_dialect("sqlite")))
    assert lite.endswith("(email) WHERE deleted_at IS NULL")


def compile_sql_dialect(name: str) -> sa.Dialect:
    """The pinned compile dialects (SQLAlchemy's own, no server)."""
    return {"postgresql": postgresql.psycopg.dialect(), "sqlite": sqlite.dialect()}[name]


# -- unique keys among live rows ------------------------------------------------------------
def test_soft_unique_allows_recreating_a_deleted_record(db, fresh):
    fresh(Account)
    inspector = sa.inspect(db.engine)
    names = {i["name"] for i in inspector.get_indexes("sd_accounts") if i["unique"]}
    assert {"uq_sd_accounts_email_live", "uq_sd_accounts_tenant_handle_live"} <= names
    columns = {c["name"] for c in inspector.get_columns("sd_accounts")}
    assert ("deleted_at_live" in columns) is not db.facts.supports_partial_index
    first = Account.create(email="a@x.org", handle="a")
    with pytest.raises(UniqueViolation):
        Account.create(email="a@x.org", handle="b")
    assert first.delete() is True
    second = Account.create(email="a@x.org", handle="a")  # same email and (tenant, handle)
    third_gone = Account.create(email="b@x.org", handle="c")
    third_gone.delete()
    Account.create(email="b@x.org", handle="c")
    assert Account.query().count() == 2 and Account.query().with_deleted().count() == 4
    # restoring the old one while the new one lives is a violation
    with pytest.raises(UniqueViolation):
        first.restore()
    with pytest.raises(UniqueViolation):
        Account.query().only_deleted().where({"email": "a@x.org"}).restore()
    with pytest.raises(UniqueViolation):
        Account.batch_insert_from_dicts([{"email": "c@x.org"}, {"email": "c@x.org"}])
    with pytest.raises(UniqueViolation):
        Account.create(email="z@x.org", tenant=1, handle="a")  # (tenant, handle) taken
    Account.create(email="y@x.org", tenant=2, handle="a")
    assert second.hard_delete() and first.restore()
    assert Account.query().where({"email": "a@x.org"}).one().id == first.id


def test_renamed_aware_column_and_soft_unique(db, fresh):
    fresh(Renamed)
    assert Renamed.__table__.c.deleted_at.name == "removed_on"
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("sd_renamed")}
    assert columns >= {"removed_on"} and "deleted_at" not in columns
    item = Renamed.create(code="k")
    assert item.delete() is True
    assert item.deleted_at is not None and item.deleted_at.tzinfo is not None
    stored = Renamed.query().only_deleted().one()
    assert stored.deleted_at is not None
    assert abs(stored.deleted_at - item.deleted_at) < dt.timedelta(seconds=1)
    assert list(Renamed.query().with_deleted().select("deleted_at").all()[0]) == ["deleted_at"]
    Renamed.create(code="k")
    with pytest.raises(UniqueViolation):
        Renamed.create(code="k")
    assert Renamed.query().where({"code": "k"}).delete() == 1
    assert Renamed.query().only_deleted().where({"code": "k"}).count() == 2


def test_soft_unique_rejects_bad_input():
    with pytest.raises(SchemaError, match="SoftDeleteMixin"):
        soft_unique(Plain, "n")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="at least one field"):
        soft_unique(Account)
    with pytest.raises(UnknownColumnError):
        soft_unique(Account, "nope")
