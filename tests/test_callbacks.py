"""Lifecycle callbacks (issue 20): instance hooks on save / delete / soft delete / restore,
their order, aborting and changing the record, decorators, after_commit / after_rollback."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import pydantic
import pytest
import sqlalchemy as sa
from pydantic import Field, field_validator

from activerecord import (
    ActiveRecord,
    Col,
    SoftDeleteMixin,
    Transaction,
    UniqueViolation,
    after_commit_hook,
    after_create,
    after_rollback,
    after_save,
    before_save,
)
from activerecord.backend.transaction import after_commit

from .conftest import raw_count


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Boom(Exception):
    pass


class CbUser(Model):
    __table_name__ = "cb_users"

    id: int | None = None
    email: Annotated[str, Field(max_length=60), Col(unique=True)]
    note: str = ""

    log: ClassVar[list[Any]] = []
    fail_at: ClassVar[str | None] = None
    fail_nth: ClassVar[int] = 1  # raise at this call of ``fail_at``

    def _hit(self, name: str) -> None:
        cls = type(self)
        cls.log.append((name, self.id))
        if cls.fail_at == name and names(cls.log).count(name) == cls.fail_nth:
            raise Boom(name)

    def before_validate(self) -> None:
        self._hit("before_validate")

    def before_save(self) -> None:
        super().before_save()
        self._hit("before_save")
        self.email = self.email.strip().lower()

    def after_save(self) -> None:
        self._hit("after_save")

    def before_create(self) -> None:
        self._hit("before_create")

    def after_create(self) -> None:
        self._hit("after_create")

    def before_update(self) -> None:
        self._hit("before_update")

    def after_update(self) -> None:
        self._hit("after_update")

    def before_delete(self) -> None:
        self._hit("before_delete")

    def after_delete(self) -> None:
        self._hit("after_delete")

    def after_commit(self) -> None:
        self._hit("after_commit")

    def after_rollback(self) -> None:
        self._hit("after_rollback")


class CbPost(SoftDeleteMixin, Model):
    __table_name__ = "cb_posts"

    id: int | None = None
    title: Annotated[str, Field(max_length=60)]

    log: ClassVar[list[str]] = []

    @before_save
    def first(self) -> None:
        type(self).log.append("first")
        self.title = self.title.title()

    @before_save
    def second(self) -> None:
        type(self).log.append(f"second:{self.title}")

    @after_create
    def created(self) -> None:
        type(self).log.append(f"created:{self.id is not None}")

    def before_delete(self) -> None:
        type(self).log.append(f"before_delete:{self.is_deleted}")

    def after_delete(self) -> None:
        type(self).log.append(f"after_delete:{self.is_deleted}")

    def before_update(self) -> None:
        type(self).log.append("before_update")

    def after_update(self) -> None:
        type(self).log.append(f"after_update:{self.is_deleted}")

    @after_commit_hook
    def committed(self) -> None:
        type(self).log.append("commit")

    @after_rollback
    def rolled(self) -> None:
        type(self).log.append("rollback")


@pytest.fixture
def users(fresh: Any) -> type[CbUser]:
    fresh(CbUser, CbPost)
    CbUser.log = []
    CbUser.fail_at = None
    CbUser.fail_nth = 1
    CbPost.log = []
    return CbUser


def names(log: list[Any]) -> list[str]:
    return [entry[0] for entry in log]


def test_create_update_delete_run_in_rails_order(users: type[CbUser]) -> None:
    user = CbUser(email=" Ann@X.org ")
    assert user.save()
    assert names(CbUser.log) == [
        "before_validate", "before_save", "before_create", "after_create", "after_save",
        "after_commit",
    ]
    # after_* see the key set; the hook's change reached the database
    assert dict(CbUser.log)["after_create"] == user.id
    assert CbUser.find(user.id).email == "ann@x.org"

    CbUser.log = []
    user.note = "n"
    assert user.save()
    assert names(CbUser.log) == [
        "before_validate", "before_save", "before_update", "after_update", "after_save",
        "after_commit",
    ]
    CbUser.log = []
    assert user.delete()
    assert names(CbUser.log) == ["before_delete", "after_delete", "after_commit"]
    assert CbUser.query().count() == 0


def test_save_without_changes_runs_hooks_but_no_after_commit(users: type[CbUser]) -> None:
    user = CbUser.create(email="a@x.org")
    CbUser.log = []
    assert user.save() is False
    assert "after_commit" not in names(CbUser.log)
    assert "after_save" in names(CbUser.log)


@pytest.mark.parametrize(
    "where", ["before_validate", "before_save", "before_create", "after_create", "after_save"]
)
def test_a_raising_hook_aborts_create(users: type[CbUser], db: Any, where: str) -> None:
    CbUser.fail_at = where
    user = CbUser(email=" Bob@X.org ")
    with pytest.raises(Boom):
        user.save()
    # nothing written, the record as it was (also the hook's own change undone)
    assert raw_count(db, "cb_users") == 0
    assert user.is_new_record and user.id is None and user.email == " Bob@X.org "
    assert "after_commit" not in names(CbUser.log)
    CbUser.fail_at = None
    assert user.save() and CbUser.find(user.id).email == "bob@x.org"


def test_a_raising_hook_aborts_update_and_delete(users: type[CbUser]) -> None:
    user = CbUser.create(email="c@x.org")
    user.note = "changed"
    CbUser.fail_at = "after_update"
    with pytest.raises(Boom):
        user.save()
    assert CbUser.find(user.id).note == ""
    assert user.note == "changed" and user.changed_fields == {"note"}
    CbUser.fail_at = "before_delete"
    with pytest.raises(Boom):
        user.delete()
    CbUser.fail_at = "after_delete"
    with pytest.raises(Boom):
        user.delete()
    assert CbUser.query().count() == 1 and not user.is_new_record


def test_a_write_error_after_before_hooks_leaves_the_record(users: type[CbUser]) -> None:
    CbUser.create(email="d@x.org")
    dup = CbUser(email="D@X.org")
    with pytest.raises(UniqueViolation):
        dup.save()
    assert dup.email == "D@X.org" and dup.is_new_record
    assert "after_commit" not in names(CbUser.log[-3:])


class CbCounting(Model):
    __table_name__ = "cb_countings"

    id: int | None = None
    seen: ClassVar[list[int]] = []

    def after_create(self) -> None:
        type(self).seen.append(CbCounting.query().where({"id": self.id}).count())


def test_hook_query_runs_inside_the_same_transaction(fresh: Any) -> None:
    fresh(CbCounting)
    CbCounting.seen = []
    CbCounting().save()
    with Transaction():
        CbCounting().save()
    assert CbCounting.seen == [1, 1]


def test_decorators_run_in_order_and_soft_delete_restore_hooks(users: type[CbUser]) -> None:
    post = CbPost(title="hello world")
    post.save()
    assert CbPost.log == ["first", "second:Hello World", "created:True", "commit"]
    assert CbPost.find(post.id).title == "Hello World"
    CbPost.log = []
    assert post.delete()
    assert CbPost.log == ["before_delete:False", "after_delete:True", "commit"]
    CbPost.log = []
    assert post.restore()
    assert CbPost.log == ["before_update", "after_update:False", "commit"]
    CbPost.log = []
    assert post.hard_delete()
    assert CbPost.log == ["before_delete:False", "after_delete:False", "commit"]


def test_after_commit_waits_for_the_outermost_commit(users: type[CbUser]) -> None:
    events: list[str] = []
    with Transaction():
        a = CbUser(email="f@x.org")
        a.save()
        with Transaction():
            b = CbUser(email="g@x.org")
            b.save()
        after_commit(lambda: events.append(str(names(CbUser.log).count("after_commit"))))
        assert "after_commit" not in names(CbUser.log)
    commits = [entry for entry in CbUser.log if entry[0] == "after_commit"]
    assert commits == [("after_commit", a.id), ("after_commit", b.id)]  # write order
    assert events == ["2"]  # the records' hooks and the ambient ones run in registration order


def test_rollback_runs_after_rollback_not_after_commit(users: type[CbUser]) -> None:
    with pytest.raises(Boom), Transaction():
        user = CbUser(email="h@x.org")
        user.save()
        raise Boom
    assert "after_commit" not in names(CbUser.log)
    # after_rollback sees the record put back (new again, no key)
    assert CbUser.log[-1] == ("after_rollback", None)
    assert user.is_new_record


def test_savepoint_rolled_back_drops_only_its_records(users: type[CbUser]) -> None:
    with Transaction():
        kept = CbUser(email="i@x.org")
        kept.save()
        with pytest.raises(Boom), Transaction():
            lost = CbUser(email="j@x.org")
            lost.save()
            raise Boom
        assert CbUser.log[-1] == ("after_rollback", None) and lost.is_new_record
    commits = [entry for entry in CbUser.log if entry[0] in ("after_commit", "after_rollback")]
    assert commits == [("after_rollback", None), ("after_commit", kept.id)]
    assert CbUser.query().count() == 1


def test_released_savepoint_then_outer_rollback(users: type[CbUser]) -> None:
    with pytest.raises(Boom), Transaction():
        with Transaction():
            CbUser(email="k@x.org").save()
        raise Boom
    assert names(CbUser.log).count("after_rollback") == 1
    assert "after_commit" not in names(CbUser.log)


def test_model_without_hooks_defines_none() -> None:
    from activerecord.model.callbacks import hooks_of

    class Plain(Model):
        __table_name__ = "cb_plain"
        id: int | None = None

    assert hooks_of(Plain) == {}
    assert set(hooks_of(CbPost)) == {
        "before_save", "after_create", "before_delete", "after_delete", "before_update",
        "after_update", "after_commit", "after_rollback",
    }


def test_async_hook_is_refused_by_the_sync_api(db: Any) -> None:
    from activerecord import ConfigurationError

    class Later(Model):
        __table_name__ = "cb_later"
        id: int | None = None

        @after_save
        async def ping(self) -> None:  # pragma: no cover - never awaited
            pass

    with pytest.raises(ConfigurationError, match=r"async after_save.*call asave\(\)"):
        Later().save()  # tests/test_async_callbacks.py: the a-methods await it


def test_before_save_decorator_is_exported() -> None:
    assert before_save.__name__ == "before_save"


# -- batch hooks -----------------------------------------------------------------------------
class CbEvent(Model):
    __table_name__ = "cb_events"

    id: int | None = None
    name: Annotated[str, Field(max_length=60)]
    stamp: str = ""

    chunks: ClassVar[list[tuple[int, int]]] = []
    fail_chunk: ClassVar[int | None] = None

    @classmethod
    def before_batch_insert(cls, records: list[Any]) -> None:
        # vectorised: one call per chunk; no per-record hooks defined
        if len(cls.chunks) == cls.fail_chunk:
            raise Boom("chunk")
        for record in records:
            record.stamp = "batch"

    @classmethod
    def after_batch_insert(cls, records: list[Any]) -> None:
        # keys are set, and a query through the library works (a COPY stream is ended first)
        assert all(r.id is not None for r in records)
        cls.chunks.append((len(records), CbEvent.query().count()))


def test_batch_insert_runs_per_record_hooks_in_order(users: type[CbUser], db: Any) -> None:
    batch = [CbUser(email=f" U{i}@X.org ") for i in range(5)]
    with Transaction():
        assert CbUser.batch_insert(batch, batch_size=2) == 5
        assert "after_commit" not in names(CbUser.log)
    per_record = [n for n in names(CbUser.log) if n != "after_commit"]
    assert per_record[:3] == ["before_validate", "before_save", "before_create"]
    assert per_record.count("after_save") == 5
    commits = [entry for entry in CbUser.log if entry[0] == "after_commit"]
    assert commits == [("after_commit", u.id) for u in batch]  # write order, keys set
    stored = {u.email for u in CbUser.query().all()}
    assert stored == {f"u{i}@x.org" for i in range(5)}
    assert [e for e in CbUser.log if e[0] == "after_create"] == [
        ("after_create", u.id) for u in batch
    ]


def test_batch_insert_hook_error_writes_nothing_and_restores(users: type[CbUser], db: Any) -> None:
    batch = [CbUser(email=f" V{i}@X.org ") for i in range(5)]
    CbUser.fail_at, CbUser.fail_nth = "before_create", 3  # in the second chunk
    with pytest.raises(Boom):
        CbUser.batch_insert(batch, batch_size=2)
    assert raw_count(db, "cb_users") == 0
    assert [u.email for u in batch] == [f" V{i}@X.org " for i in range(5)]
    assert all(u.id is None and u.is_new_record for u in batch)
    assert "after_commit" not in names(CbUser.log)


def test_batch_insert_rollback_runs_after_rollback(users: type[CbUser]) -> None:
    batch = [CbUser(email=f"w{i}@x.org") for i in range(3)]
    with pytest.raises(Boom), Transaction():
        CbUser.batch_insert(batch)
        raise Boom
    assert [e for e in CbUser.log if e[0] == "after_rollback"] == [("after_rollback", None)] * 3
    assert "after_commit" not in names(CbUser.log)


def test_overridden_batch_hook_runs_once_per_chunk(fresh: Any) -> None:
    fresh(CbEvent)
    CbEvent.chunks = []
    CbEvent.fail_chunk = None
    events = [CbEvent(name=f"e{i}") for i in range(5)]
    assert CbEvent.batch_insert(events, batch_size=2) == 5
    assert [size for size, _ in CbEvent.chunks] == [2, 2, 1]
    assert [seen for _, seen in CbEvent.chunks] == [2, 4, 5]
    assert {e.stamp for e in CbEvent.query().all()} == {"batch"}
    # a vectorised hook that raises in the second chunk: nothing written, records as given
    CbEvent.chunks = []
    CbEvent.fail_chunk = 1
    again = [CbEvent(name=f"f{i}") for i in range(5)]
    with pytest.raises(Boom):
        CbEvent.batch_insert(again, batch_size=2)
    assert CbEvent.query().count() == 5
    assert all(e.stamp == "" and e.id is None for e in again)


def test_model_without_hooks_has_no_batch_hooks() -> None:
    from activerecord.model.batch_hooks import batch_hooks

    class Bare(Model):
        __table_name__ = "cb_bare"
        id: int | None = None

    assert batch_hooks(Bare, "insert", []) is None
    assert batch_hooks(CbEvent, "insert", []) is not None
    assert batch_hooks(CbUser, "insert", []) is not None


# -- query writes ----------------------------------------------------------------------------
class CbTenantRow(Model):
    __table_name__ = "cb_tenant_rows"

    id: int | None = None
    tenant: int
    n: int = 0
    audit: str = ""

    @classmethod
    def before_query_update(cls, query: Any, values: dict[str, Any]) -> Any:
        values["audit"] = "bulk"
        return query.where({"tenant": 1})

    @classmethod
    def before_query_delete(cls, query: Any) -> Any:
        return query.where({"tenant": 1})


def test_query_update_and_delete_hooks_narrow_and_add_values(fresh: Any) -> None:
    from activerecord import UnsafeWriteError

    fresh(CbTenantRow)
    CbTenantRow.batch_insert([CbTenantRow(tenant=t) for t in (1, 1, 2)])
    given = {"n": 5}
    assert CbTenantRow.query().where("n = ?", 0).update(given) == 2
    assert given == {"n": 5}  # the caller's dict is not changed
    rows = sorted((r.tenant, r.n, r.audit) for r in CbTenantRow.query().all())
    assert rows == [(1, 5, "bulk"), (1, 5, "bulk"), (2, 0, "")]
    assert CbTenantRow.update_all({"n": 7}, all_rows=True) == 2
    with pytest.raises(UnsafeWriteError):  # a condition the hook adds is no opt-in
        CbTenantRow.query().update({"n": 1})
    with pytest.raises(UnsafeWriteError):
        CbTenantRow.query().delete()
    assert CbTenantRow.query().where("n >= ?", 0).delete() == 2
    assert [r.tenant for r in CbTenantRow.query().all()] == [2]


def test_batch_update_runs_update_hooks(users: type[CbUser], db: Any) -> None:
    batch = [CbUser(email=f"x{i}@x.org") for i in range(3)]
    CbUser.batch_insert(batch)
    CbUser.log = []
    for user in batch:
        user.email = f" NEW{user.id}@X.org "
    with Transaction():
        assert CbUser.batch_update(batch) == 3
        assert "after_commit" not in names(CbUser.log)
    per_record = [n for n in names(CbUser.log) if n != "after_commit"]
    assert per_record == [
        "before_validate", "before_save", "before_update",
    ] * 3 + ["after_update", "after_save"] * 3
    assert [e for e in CbUser.log if e[0] == "after_commit"] == [
        ("after_commit", u.id) for u in batch
    ]
    assert sorted(u.email for u in CbUser.query().all()) == sorted(
        f"new{u.id}@x.org" for u in batch
    )
    assert all(not u.changed_fields for u in batch)
    # an after hook that raises undoes the write and gives the records back their values
    for user in batch:
        user.email = f"again{user.id}@x.org"
    CbUser.fail_at, CbUser.fail_nth = "after_update", names(CbUser.log).count("after_update") + 2
    with pytest.raises(Boom):
        CbUser.batch_update(batch, ["email"])
    assert sorted(u.email for u in CbUser.query().all()) == sorted(
        f"new{u.id}@x.org" for u in batch
    )
    assert [u.email for u in batch] == [f"again{u.id}@x.org" for u in batch]
    assert all(u.changed_fields == {"email"} for u in batch)
    CbUser.fail_at = None
    with pytest.raises(Boom), Transaction():
        CbUser.batch_update(batch, ["email"])
        raise Boom
    rolled = [e for e in CbUser.log if e[0] == "after_rollback"]
    assert rolled == [("after_rollback", u.id) for u in batch]
    assert all(u.changed_fields == {"email"} for u in batch)  # put back before the hook ran


def test_batch_upsert_runs_save_hooks_per_chunk_with_results(users: type[CbUser]) -> None:
    CbUser.batch_insert([CbUser(email="y0@x.org", note="old")])
    CbUser.log = []
    batch = [CbUser(email=" Y0@X.org ", note="new"), CbUser(email="Y1@x.org")]
    with Transaction():
        result = CbUser.batch_upsert(batch, conflict="email", update=["note"], batch_size=1)
        assert "after_commit" not in names(CbUser.log)
    assert (result.inserted, result.updated) == (1, 1)
    per_record = [n for n in names(CbUser.log) if n != "after_commit"]
    assert per_record == ["before_validate", "before_save", "after_save"] * 2
    assert [e for e in CbUser.log if e[0] == "after_commit"] == [
        ("after_commit", u.id) for u in batch
    ]
    assert all(u.id is not None for u in batch)
    stored = sorted((u.email, u.note) for u in CbUser.query().all())
    assert stored == [("y0@x.org", "new"), ("y1@x.org", "")]  # before_save normalised the key


class CbStock(Model):
    __table_name__ = "cb_stocks"

    id: int | None = None
    qty: int = 0

    results: ClassVar[list[tuple[int, int, int]]] = []

    @classmethod
    def after_batch_upsert(cls, records: list[Any], result: Any) -> None:
        cls.results.append((len(records), result.inserted, result.updated))


def test_after_batch_upsert_gets_the_chunk_result(fresh: Any) -> None:
    fresh(CbStock)
    CbStock.results = []
    CbStock.batch_insert([CbStock(id=1), CbStock(id=2)])
    items = [CbStock(id=1, qty=5), CbStock(id=3), CbStock(id=2, qty=1), CbStock(id=4)]
    CbStock.batch_upsert(items, batch_size=2)
    assert CbStock.results == [(2, 1, 1), (2, 1, 1)]


def test_a_decorated_override_runs_once() -> None:
    from activerecord.model.callbacks import hooks_of

    class Twice(Model):
        __table_name__ = "cb_twice"
        id: int | None = None

        @before_save
        def before_save(self) -> None:
            pass

    assert len(hooks_of(Twice)["before_save"]) == 1


# -- hooks for dicts and insert-or-ignore -----------------------------------------------------
@pytest.mark.parametrize("validate", [True, False])
def test_batch_insert_from_dicts_runs_hooks_on_built_records(
    users: type[CbUser], db: Any, validate: bool
) -> None:
    rows = [{"email": f" D{i}@X.org "} for i in range(5)]
    with Transaction():
        built = CbUser.batch_insert_from_dicts(rows, batch_size=2, validate=validate)
        assert "after_commit" not in names(CbUser.log)
    per_record = [n for n in names(CbUser.log) if n != "after_commit"]
    assert per_record[:3] == ["before_validate", "before_save", "before_create"]
    assert per_record.count("after_create") == per_record.count("after_save") == 5
    assert [e for e in CbUser.log if e[0] == "after_create"] == [
        ("after_create", u.id) for u in built
    ]
    assert [e for e in CbUser.log if e[0] == "after_commit"] == [
        ("after_commit", u.id) for u in built
    ]
    assert [u.email for u in built] == [f"d{i}@x.org" for i in range(5)]
    stored = sorted(u.email for u in CbUser.query().all())
    assert stored == [f"d{i}@x.org" for i in range(5)]  # the hook's change reached the rows
    assert rows[0] == {"email": " D0@X.org "}  # the caller's dicts are left alone


def test_batch_insert_from_dicts_hook_error_writes_nothing(users: type[CbUser], db: Any) -> None:
    CbUser.fail_at, CbUser.fail_nth = "before_create", 3  # in the second chunk
    rows = [{"email": f"e{i}@x.org"} for i in range(5)]
    with pytest.raises(Boom):
        CbUser.batch_insert_from_dicts(rows, batch_size=2)
    assert raw_count(db, "cb_users") == 0
    assert "after_commit" not in names(CbUser.log)


def test_batch_insert_from_dicts_without_records_skips_hooks(users: type[CbUser], db: Any) -> None:
    # Like Rails insert_all: a call that hands back no records builds none and runs no hook.
    rows = [{"email": " Raw@X.org "}]
    assert CbUser.batch_insert_from_dicts(rows, return_records=False) == 1
    assert CbUser.log == []
    assert [u.email for u in CbUser.query().all()] == [" Raw@X.org "]


def test_batch_insert_from_dicts_vectorised_hook_per_chunk(fresh: Any) -> None:
    fresh(CbEvent)
    CbEvent.chunks = []
    CbEvent.fail_chunk = None
    got = CbEvent.batch_insert_from_dicts(
        ({"name": f"g{i}"} for i in range(5)), batch_size=2
    )
    assert [size for size, _ in CbEvent.chunks] == [2, 2, 1]
    assert {e.stamp for e in got} == {"batch"}
    assert {e.stamp for e in CbEvent.query().all()} == {"batch"}


def test_batch_upsert_of_dicts_runs_save_hooks(users: type[CbUser]) -> None:
    CbUser.batch_insert([CbUser(email="z0@x.org", note="old")])
    CbUser.log = []
    rows = [{"email": " Z0@X.org ", "note": "new"}, {"email": "Z1@x.org"}]
    with Transaction():
        result = CbUser.batch_upsert(rows, conflict="email", batch_size=1)
        assert "after_commit" not in names(CbUser.log)
    assert (result.inserted, result.updated) == (1, 1)
    per_record = [n for n in names(CbUser.log) if n != "after_commit"]
    assert per_record == ["before_validate", "before_save", "after_save"] * 2
    assert names(CbUser.log).count("after_commit") == 2
    stored = sorted((u.email, u.note) for u in CbUser.query().all())
    assert stored == [("z0@x.org", "new"), ("z1@x.org", "")]  # before_save normalised the key


def test_after_batch_upsert_of_dicts_gets_records_and_result(fresh: Any) -> None:
    fresh(CbStock)
    CbStock.results = []
    CbStock.batch_insert([CbStock(id=1), CbStock(id=2)])
    rows = [{"id": 1, "qty": 5}, {"id": 3}, {"id": 2, "qty": 1}, {"id": 4}]
    CbStock.batch_upsert(rows, batch_size=2)
    assert CbStock.results == [(2, 1, 1), (2, 1, 1)]


@pytest.mark.parametrize("dicts", [False, True])
def test_insert_ignoring_runs_create_hooks_on_inserted_rows(
    users: type[CbUser], dicts: bool
) -> None:
    CbUser.batch_insert([CbUser(email="i1@x.org")])
    CbUser.log = []
    given = [{"email": f" I{i}@X.org "} for i in range(3)]
    if dicts:
        out = CbUser.batch_insert_from_dicts(given, on_conflict="ignore")
    else:
        batch = [CbUser(**row) for row in given]
        CbUser.batch_insert(batch, on_conflict="ignore")
        out = [batch[0], batch[2]]
    assert names(CbUser.log).count("before_create") == 3  # unknown yet which rows conflict
    assert [e for e in CbUser.log if e[0] == "after_create"] == [
        ("after_create", u.id) for u in out
    ]
    assert [e for e in CbUser.log if e[0] == "after_commit"] == [
        ("after_commit", u.id) for u in out
    ]
    assert all(u.id is not None for u in out)
    assert sorted(u.email for u in CbUser.query().all()) == [f"i{i}@x.org" for i in range(3)]


class CbTagged(Model):
    __table_name__ = "cb_tagged"

    id: int | None = None
    code: Annotated[str, Field(max_length=20), Col(unique=True)]
    qty: int = 0
    by: str = ""

    def before_save(self) -> None:
        super().before_save()
        self.by = "hook"  # an audit field the caller's dicts never give


def test_batch_upsert_of_dicts_updates_the_fields_a_hook_set(fresh: Any) -> None:
    fresh(CbTagged)
    CbTagged.batch_insert_from_dicts([{"code": "a", "qty": 1}], return_records=False)
    assert [t.by for t in CbTagged.query().all()] == [""]  # the raw path ran no hook
    result = CbTagged.batch_upsert([{"code": "a", "qty": 2}, {"code": "b"}], conflict="code")
    assert (result.inserted, result.updated) == (1, 1)
    stored = sorted((t.code, t.qty, t.by) for t in CbTagged.query().all())
    assert stored == [("a", 2, "hook"), ("b", 0, "hook")]


def test_loaders_run_no_hooks(users: type[CbUser], tmp_path: Any) -> None:
    # Loaders are the bulk path (Rails' insert_all / upsert_all): rows go in as read, even
    # when the records come back; batch_insert_from_dicts of a list runs the hooks.
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"email": [" Csv@X.org "], "note": ["a"]})
    loaded = CbUser.insert_dataframe(df, return_records=True)
    assert [u.email for u in loaded] == [" Csv@X.org "]
    path = tmp_path / "users.csv"
    path.write_text("email,note\n Csv@X.org ,b\n Two@X.org ,c\n")
    assert CbUser.load_csv(path, upsert=["email"]) == 2
    assert CbUser.log == []
    stored = sorted((u.email, u.note) for u in CbUser.query().all())
    assert stored == [(" Csv@X.org ", "b"), (" Two@X.org ", "c")]


# -- batch hooks per chunk --------------------------------------------------------------------
class CbLedger(Model):
    __table_name__ = "cb_ledgers"

    id: int | None = None
    qty: int = 0
    by: str = ""

    calls: ClassVar[list[tuple[str, int, Any]]] = []

    @classmethod
    def before_batch_update(cls, records: list[Any], fields: list[str] | None) -> None:
        cls.calls.append(("before_update", len(records), fields))
        for record in records:
            record.by = "batch"

    @classmethod
    def after_batch_update(cls, records: list[Any], fields: list[str]) -> None:
        assert not any("qty" in r.changed_fields for r in records)  # written
        cls.calls.append(("after_update", len(records), sorted(fields)))

    @classmethod
    def before_batch_upsert(cls, records: list[Any]) -> None:
        cls.calls.append(("before_upsert", len(records), None))

    @classmethod
    def before_batch_insert(cls, records: list[Any]) -> None:
        cls.calls.append(("before_insert", len(records), None))


@pytest.mark.parametrize("fields", [None, ["qty"]])
def test_batch_update_hooks_get_each_chunk(fresh: Any, fields: list[str] | None) -> None:
    fresh(CbLedger)
    CbLedger.calls = []
    items = [CbLedger(qty=i) for i in range(5)]
    CbLedger.batch_insert(items, batch_size=2)
    assert CbLedger.calls == [("before_insert", 2, None), ("before_insert", 2, None),
                              ("before_insert", 1, None)]
    CbLedger.calls = []
    for item in items:
        item.qty += 10
    assert CbLedger.batch_update(items, fields, batch_size=2) == 5
    written = ["by", "qty"] if fields is None else ["qty"]  # the hook's change is written too
    assert CbLedger.calls == [
        ("before_update", 2, fields), ("before_update", 2, fields), ("before_update", 1, fields),
        ("after_update", 2, written), ("after_update", 2, written), ("after_update", 1, written),
    ]
    stored = sorted((r.qty, r.by) for r in CbLedger.query().all())
    assert stored == [(10 + i, "batch" if fields is None else "") for i in range(5)]
    CbLedger.calls = []
    CbLedger.batch_upsert([CbLedger(id=item.id, qty=0) for item in items], batch_size=3)
    assert CbLedger.calls == [("before_upsert", 3, None), ("before_upsert", 2, None)]


# -- assignments in a batch's before hooks (model/deferred.py) ---------------------------------
class CbScore(Model):
    __table_name__ = "cb_scores"

    id: int | None = None
    name: Annotated[str, Field(max_length=10)]
    points: int = 0
    checked: int = 0

    seen: ClassVar[list[Any]] = []
    give: ClassVar[dict[str, Any]] = {}  # by name: the value the hook assigns, else "7"

    @field_validator("checked")
    @classmethod
    def even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("must be even")
        return value

    def before_save(self) -> None:
        super().before_save()
        self.points = type(self).give.get(self.name, "7")
        type(self).seen.append(self.points)


def test_batch_hook_assignments_are_validated_with_the_chunk(fresh: Any) -> None:
    from activerecord import BatchValidationError

    fresh(CbScore)
    CbScore.seen, CbScore.give = [], {}
    scores = [CbScore(name=f"s{i}") for i in range(5)]
    assert CbScore.batch_insert(scores, batch_size=2) == 5
    # validated (and coerced) once the chunk's hook returned, not at each assignment
    assert CbScore.seen == ["7"] * 5
    assert [s.points for s in scores] == [7] * 5
    assert {s.points for s in CbScore.query().all()} == {7}
    # a value the field refuses: a typed error naming the record and field, nothing written
    CbScore.give = {"t2": "many", "t3": "lots"}
    again = [CbScore(name=f"t{i}", points=i) for i in range(5)]
    with pytest.raises(BatchValidationError, match=r"record 2: points: Input should be a valid "
                       r"integer") as info:
        CbScore.batch_insert(again, batch_size=2)
    assert sorted(info.value.failures) == [2, 3]  # the second chunk's, numbered in the input
    assert [s.points for s in again] == list(range(5))  # put back
    assert all(s.id is None for s in again) and CbScore.query().count() == 5
    # save() still validates each assignment
    CbScore.give = {"u": "many"}
    with pytest.raises(pydantic.ValidationError):
        CbScore(name="u").save()


def test_after_a_hooked_batch_assignments_outside_one_validate_as_pydantic_does(
    fresh: Any,
) -> None:
    """A model that ran a batch's before hook defers its assignments there through a
    ``__setattr__`` of the library's (model/deferred.py); everywhere else an assignment is
    pydantic's: validated at once, a frozen field refused, a non-field refused, and a model
    with a ``__setattr__`` of its own keeps it."""
    from activerecord.model import deferred

    fresh(CbScore)
    CbScore.seen, CbScore.give = [], {}

    class Guarded(CbScore):
        __table_name__ = "cb_guarded"
        stamp: Annotated[int, Field(frozen=True)] = 0

        def before_save(self) -> None:
            super().before_save()
            if self.name == "frozen":
                self.stamp = 1

    class Own(CbScore):
        __table_name__ = "cb_scores"
        calls: ClassVar[int] = 0

        def __setattr__(self, name: str, value: Any) -> None:
            type(self).calls += 1
            super().__setattr__(name, value)

    fresh(Guarded)
    assert Guarded.batch_insert([Guarded(name="a"), Guarded(name="b")]) == 2
    assert Guarded.__setattr__ is deferred._batch_setattr  # installed by the hooked batch
    record = Guarded(name="c")
    with pytest.raises(pydantic.ValidationError):
        record.points = "many"  # outside a batch: checked at once
    record.points = "8"
    assert record.points == 8 and "points" in record.model_fields_set
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        record.stamp = 2
    with pytest.raises(ValueError, match="no attribute"):
        record.nothing = 1
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        Guarded.batch_insert([Guarded(name="frozen")])  # a frozen field in a hook: refused
    assert [s.points for s in Guarded.query().order_by("id")] == [7, 7]
    assert Own.batch_insert([Own(name="o")]) == 1
    assert Own.__dict__["__setattr__"] is not deferred._batch_setattr and Own.calls >= 1
    assert [s.points for s in CbScore.query().order_by("id")] == [7]


def test_a_field_validator_still_runs_on_each_assignment(fresh: Any) -> None:
    fresh(CbScore)
    CbScore.seen, CbScore.give = [], {}

    class Checked(CbScore):
        __table_name__ = "cb_scores"

        def before_save(self) -> None:
            self.checked = 3  # odd: the field validator refuses it at once

    with pytest.raises(pydantic.ValidationError, match="must be even"):
        Checked.batch_insert([Checked(name="v")])
    assert CbScore.query().count() == 0


def test_a_save_inside_a_batch_hook_writes_checked_values(fresh: Any) -> None:
    fresh(CbScore)
    CbScore.seen = []

    class Sibling(CbScore):
        __table_name__ = "cb_scores"
        other: ClassVar[Any] = None

        @classmethod
        def before_batch_insert(cls, records: list[Any]) -> None:
            for record in records:
                record.points = "12"  # deferred
            other = cls.other
            other.points = "x"  # deferred too: the save below refuses it before writing
            other.save()

    Sibling.other = Sibling(name="o")
    batch = [Sibling(name="w")]
    with pytest.raises(pydantic.ValidationError, match="points"):  # as its assignment would
        Sibling.batch_insert(batch)
    assert CbScore.query().count() == 0
    assert batch[0].points == 0 and Sibling.other.points == 0  # both put back
