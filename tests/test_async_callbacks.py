"""Async lifecycle hooks (issue 20): ``async def`` hooks awaited by the a-methods, refused
by the sync API before anything is written, ``after_commit`` awaited after the outermost
async commit; sync hooks keep working under the a-methods."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Annotated, Any, ClassVar, TypeVar

import pytest
import sqlalchemy as sa
from pydantic import Field

from activerecord import (
    ActiveRecord,
    ConfigurationError,
    SoftDeleteMixin,
    Transaction,
    after_commit_hook,
    after_rollback,
    after_save,
    before_save,
)
from activerecord.backend.database import Database

from .conftest import needs, raw_count

T = TypeVar("T")

pytestmark = [needs("greenlet", "async"), needs("aiosqlite", "async"), needs("aiomysql", "async")]


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Boom(Exception):
    pass


class AcUser(Model):
    __table_name__ = "acb_users"

    id: int | None = None
    email: Annotated[str, Field(max_length=60)]
    seen: int = -1

    log: ClassVar[list[tuple[str, Any]]] = []
    fail_at: ClassVar[str | None] = None

    def _hit(self, name: str) -> None:
        type(self).log.append((name, self.id))
        if type(self).fail_at == name:
            raise Boom(name)

    async def before_validate(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)  # the event loop runs: a real await, not a sync call
        self._hit("before_validate")

    @before_save
    async def normalise(self) -> None:
        await asyncio.sleep(0)
        self._hit("before_save")
        self.email = self.email.strip().lower()
        # a hook may query through the library: the same transaction, the rows written so far
        self.seen = await AcUser.query().acount()

    def before_create(self) -> None:  # a sync hook next to the async ones
        self._hit("before_create")

    async def after_create(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        self._hit("after_create")

    @after_save
    def saved(self) -> None:
        self._hit("after_save")

    async def before_delete(self) -> None:  # type: ignore[override]
        self._hit("before_delete")

    async def after_delete(self) -> None:  # type: ignore[override]
        self._hit("after_delete")

    async def before_update(self) -> None:  # type: ignore[override]
        self._hit("before_update")

    @after_commit_hook
    async def committed(self) -> None:
        await asyncio.sleep(0)
        self._hit("after_commit")

    @after_rollback
    async def rolled_back(self) -> None:
        await asyncio.sleep(0)
        self._hit("after_rollback")


class AcNote(SoftDeleteMixin, Model):
    __table_name__ = "acb_notes"

    id: int | None = None
    text: Annotated[str, Field(max_length=40)]

    log: ClassVar[list[str]] = []

    async def before_delete(self) -> None:  # type: ignore[override]
        type(self).log.append(f"before_delete:{self.is_deleted}")

    async def after_update(self) -> None:  # type: ignore[override]
        type(self).log.append(f"after_update:{self.is_deleted}")


class AcBatch(Model):
    __table_name__ = "acb_batches"

    id: int | None = None
    tenant: int = 1
    n: int = 0
    stamp: Annotated[str, Field(max_length=20)] = ""

    calls: ClassVar[list[tuple[str, int]]] = []

    @classmethod
    async def before_batch_insert(cls, records: list[Any]) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        cls.calls.append(("before_insert", len(records)))
        for record in records:
            record.stamp = "insert"

    @classmethod
    async def after_batch_insert(cls, records: list[Any]) -> None:  # type: ignore[override]
        assert all(r.id is not None for r in records)
        cls.calls.append(("after_insert", await cls.query().acount()))

    @classmethod
    async def before_batch_update(  # type: ignore[override]
        cls, records: list[Any], fields: list[str] | None
    ) -> None:
        cls.calls.append(("before_update", len(records)))
        for record in records:
            record.stamp = "update"

    @classmethod
    async def before_batch_upsert(cls, records: list[Any]) -> None:  # type: ignore[override]
        cls.calls.append(("before_upsert", len(records)))
        for record in records:
            record.stamp = "upsert"

    @classmethod
    async def after_batch_upsert(  # type: ignore[override]
        cls, records: list[Any], result: Any
    ) -> None:
        cls.calls.append(("after_upsert", result.inserted + result.updated))

    @classmethod
    async def before_query_update(  # type: ignore[override]
        cls, query: Any, values: dict[str, Any]
    ) -> Any:
        await asyncio.sleep(0)
        values["stamp"] = "query"
        return query.where({"tenant": 1})

    @classmethod
    async def before_query_delete(cls, query: Any) -> Any:  # type: ignore[override]
        return query.where({"tenant": 1})


MODELS = (AcUser, AcNote, AcBatch)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def tables(adb: Database) -> Iterator[Database]:
    tables = [m.__table__ for m in MODELS]
    with adb.engine.begin() as conn:
        Model.__metadata__.drop_all(conn, tables=tables)
        Model.__metadata__.create_all(conn, tables=tables)
    AcUser.log, AcUser.fail_at, AcNote.log, AcBatch.calls = [], None, [], []
    yield adb


def names() -> list[str]:
    return [name for name, _ in AcUser.log]


def test_asave_awaits_async_hooks_in_rails_order(tables: Database) -> None:
    user = AcUser(email=" Ann@X.org ")

    async def main() -> None:
        assert await user.asave()

    run(main())
    assert names() == [
        "before_validate", "before_save", "before_create", "after_create", "after_save",
        "after_commit",
    ]
    assert AcUser.log[-1] == ("after_commit", user.id)
    stored = AcUser.find(user.id)
    assert (stored.email, stored.seen) == ("ann@x.org", 0)  # the async hook's changes
    AcUser.log = []

    async def update_and_delete() -> None:
        user.email = "Bob@X.org"
        await user.asave()
        await user.adelete()

    run(update_and_delete())
    assert names() == [
        "before_validate", "before_save", "before_update", "after_save", "after_commit",
        "before_delete", "after_delete", "after_commit",
    ]
    assert raw_count(tables, "acb_users") == 0


def test_a_raising_async_hook_aborts_and_puts_the_record_back(tables: Database) -> None:
    AcUser.fail_at = "after_create"  # after the INSERT: it is rolled back
    user = AcUser(email=" Cy@X.org ")

    async def main() -> None:
        with pytest.raises(Boom):
            await user.asave()

    run(main())
    assert raw_count(tables, "acb_users") == 0
    assert (user.id, user.email, user.is_new_record) == (None, " Cy@X.org ", True)
    assert "after_commit" not in names()


def test_the_sync_api_refuses_async_hooks_before_writing(tables: Database) -> None:
    user = AcUser(email="d@x.org")
    with pytest.raises(ConfigurationError, match=r"'before_validate'.*save\(\).*asave\(\)"):
        user.save()
    with pytest.raises(ConfigurationError, match=r"'before_validate' is an async "
                       r"before_validate hook.*abatch_insert\(\)"):
        AcUser.batch_insert([AcUser(email="e@x.org")])
    with pytest.raises(ConfigurationError, match=r"abatch_insert\(\)"):
        AcBatch.batch_insert([AcBatch()])
    with pytest.raises(ConfigurationError, match=r"'before_query_update'.*aupdate\(\)"):
        AcBatch.query().where({"n": 0}).update({"n": 1})
    with pytest.raises(ConfigurationError, match=r"'before_query_delete'.*adelete\(\)"):
        AcBatch.query().where({"n": 0}).delete()
    assert AcUser.log == [] and user.id is None and user.is_new_record
    assert raw_count(tables, "acb_users") == raw_count(tables, "acb_batches") == 0
    note = AcNote(text="n")
    note.save()  # no async save hook: the sync API still works
    with pytest.raises(ConfigurationError, match=r"'before_delete'.*adelete\(\)"):
        note.delete()
    assert not note.is_deleted and AcNote.log == []


def test_async_after_commit_waits_for_the_outermost_async_commit(tables: Database) -> None:
    users = [AcUser(email=f"f{i}@x.org") for i in range(3)]

    async def main() -> None:
        async with Transaction():
            async with Transaction():
                await users[0].asave()
                await AcUser.abatch_insert(users[1:])
            assert "after_commit" not in names()
        assert [e for e in AcUser.log if e[0] == "after_commit"] == [
            ("after_commit", u.id) for u in users
        ]

    run(main())


def test_async_after_rollback_runs_and_after_commit_never(tables: Database) -> None:
    kept, dropped = AcUser(email="g@x.org"), AcUser(email="h@x.org")

    async def main() -> None:
        async with Transaction():
            await kept.asave()
            with pytest.raises(Boom):
                async with Transaction():  # a savepoint that rolls back: only its record
                    await dropped.asave()
                    raise Boom
            assert [e for e in AcUser.log if e[0] == "after_rollback"] == [
                ("after_rollback", None)
            ]

    run(main())
    assert [e for e in AcUser.log if e[0] == "after_commit"] == [("after_commit", kept.id)]
    assert dropped.id is None and raw_count(tables, "acb_users") == 1


def test_abatch_insert_runs_async_record_hooks(tables: Database) -> None:
    users = [AcUser(email=f" B{i}@X.org ") for i in range(5)]

    async def main() -> int:
        return await AcUser.abatch_insert(users, batch_size=2)

    assert run(main()) == 5
    assert names().count("before_save") == names().count("after_commit") == 5
    assert [e for e in AcUser.log if e[0] == "after_create"] == [
        ("after_create", u.id) for u in users
    ]
    assert sorted(u.email for u in AcUser.find_all()) == [f"b{i}@x.org" for i in range(5)]
    # each chunk's hooks saw the rows written before it (the same transaction)
    assert sorted({u.seen for u in AcUser.find_all()}) == [0, 2, 4]


def test_async_batch_hooks_per_chunk_for_every_batch_write(tables: Database) -> None:
    items = [AcBatch(n=i) for i in range(5)]

    async def main() -> None:
        assert await AcBatch.abatch_insert(items, batch_size=2) == 5
        for item in items:
            item.n += 10
        assert await AcBatch.abatch_update(items, batch_size=2) == 5
        result = await AcBatch.abatch_upsert(
            [AcBatch(id=items[0].id, n=50), AcBatch(n=60), AcBatch(n=70)], batch_size=2
        )
        assert (result.inserted, result.updated) == (2, 1)

    run(main())
    assert AcBatch.calls == [
        ("before_insert", 2), ("after_insert", 2), ("before_insert", 2), ("after_insert", 4),
        ("before_insert", 1), ("after_insert", 5),
        ("before_update", 2), ("before_update", 2), ("before_update", 1),
        ("before_upsert", 2), ("after_upsert", 2), ("before_upsert", 1), ("after_upsert", 1),
    ]
    stored = sorted((b.n, b.stamp) for b in AcBatch.find_all())
    assert stored == [(11, "update"), (12, "update"), (13, "update"), (14, "update"),
                      (50, "upsert"), (60, "upsert"), (70, "upsert")]


def test_async_query_hooks_under_aupdate_and_adelete(tables: Database) -> None:
    AcBatch.batch_insert_from_dicts(
        [{"tenant": t, "n": 0} for t in (1, 1, 2)], return_records=False
    )  # the raw path runs no hook

    async def main() -> tuple[int, int]:
        updated = await AcBatch.query().where({"n": 0}).aupdate({"n": 5})
        deleted = await AcBatch.query().where("n >= ?", 0).adelete()
        return updated, deleted

    assert run(main()) == (2, 2)
    assert [(b.tenant, b.n, b.stamp) for b in AcBatch.find_all()] == [(2, 0, "")]


def test_soft_delete_and_restore_await_async_hooks(tables: Database) -> None:
    note = AcNote(text="n")
    note.save()

    async def main() -> None:
        await note.adelete()
        await note.arestore()

    run(main())
    assert AcNote.log == ["before_delete:False", "after_update:False"]
    assert not note.is_deleted
