"""The async API (issue #18): connecting, a-methods, transactions, raw connections, using().

Each test runs its coroutine with ``asyncio.run`` against the backend's URL (``adb``), which
serves both APIs, so a result is checked with the sync API where that reads best.
"""

from __future__ import annotations

import asyncio
import gc
import io
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any, TypeVar

import pytest
import sqlalchemy as sa
from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import activerecord
from activerecord import (
    ActiveRecord,
    BatchValidationError,
    ConfigurationError,
    QueryError,
    RecordNotFound,
    SoftDeleteMixin,
    Transaction,
    UniqueViolation,
    UnsafeWriteError,
    UpsertResult,
    using,
)
from activerecord.backend import AsyncRawConnection, get_connection
from activerecord.backend.database import Database
from activerecord.backend.transaction import after_commit, in_transaction
from activerecord.errors import TransactionConflictError

from .conftest import backend_url, needs, raw_count

T = TypeVar("T")

#: The async extra (CI installs it with dev): without it these tests skip, saying so.
pytestmark = [needs("greenlet", "async"), needs("aiosqlite", "async"), needs("aiomysql", "async")]


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class AsPet(Model):
    __table_name__ = "async_pets"

    id: int | None = None
    name: Annotated[str, Field(max_length=40), activerecord.Col(unique=True)]
    age: int = 0


class AsNote(SoftDeleteMixin, Model):
    __table_name__ = "async_notes"

    id: int | None = None
    text: Annotated[str, Field(max_length=40)]


class AsStrict(Model):
    __table_name__ = "async_strict"

    id: int | None = None
    n: int

    @field_validator("n")
    @classmethod
    def positive(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be >= 0")
        return value


class AsOwner(Model):
    __table_name__ = "async_owners"

    id: int | None = None
    name: str
    toys = activerecord.has_many("AsToy", foreign_key="owner_id")


class AsToy(Model):
    __table_name__ = "async_toys"

    id: int | None = None
    title: str
    owner_id: int | None = None


MODELS = (AsPet, AsNote, AsStrict, AsOwner, AsToy)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def tables(adb: Database) -> Iterator[Database]:
    tables = [m.__table__ for m in MODELS]
    with adb.engine.begin() as conn:
        Model.__metadata__.drop_all(conn, tables=tables)
        Model.__metadata__.create_all(conn, tables=tables)
    yield adb


def keys(db: Database, n: int) -> list[int]:
    """The first n keys a fresh table hands out: 1, 2, 3, ... but a Galera node steps by
    its auto_increment_increment from its offset (1, 4, 7, ... or 2, 5, 8, ...)."""
    if db.engine.dialect.name != "mysql":
        return list(range(1, n + 1))
    with db.engine.connect() as conn:
        step, offset = conn.exec_driver_sql(
            "SELECT @@auto_increment_increment, @@auto_increment_offset"
        ).one()
    return [int(offset) + i * int(step) for i in range(n)]


def names() -> list[str]:
    return sorted(p.name for p in AsPet.find_all())


# -- connecting ----------------------------------------------------------------------------
def test_a_sync_url_serves_both_apis(tables: Database) -> None:
    async def main() -> int:
        await AsPet.acreate(name="rex")
        return await AsPet.query().acount()

    assert run(main()) == 1
    assert AsPet.query().count() == 1
    assert tables.serves_sync and tables.serves_async


@pytest.mark.parametrize("flavour", ["async_url", "async_engine"])
def test_an_async_url_or_engine_connects(backend: str, adb: Database, flavour: str) -> None:
    url = sa.make_url(backend_url(backend))
    twin = {"sqlite": "aiosqlite", "postgresql": "psycopg_async", "mysql": "aiomysql"}[backend]
    async_url = url.set(drivername=f"{url.get_backend_name()}+{twin}")
    engine = create_async_engine(async_url) if flavour == "async_engine" else None
    db = activerecord.connect(engine if engine is not None else async_url, name="async-only")

    class Other(Model):
        __table_name__ = "async_other"
        __database__ = "async-only"
        id: int | None = None
        n: int = 0

    async def main() -> list[int | None]:
        await Other.adrop_table()
        await Other.acreate_table()
        rows = [Other(n=n) for n in range(3)]
        await Other.abatch_insert(rows)
        found = [o.id for o in await Other.query().aall()]
        if engine is not None:  # your engine belongs to this loop: done with it here
            with pytest.raises(ConfigurationError, match="AsyncEngine"):
                Other.find_all()
            await Other.adrop_table()
            await engine.dispose()
        return found

    try:
        assert run(main()) == keys(adb, 3)
        assert db.serves_sync is (engine is None)
        if engine is None:  # an async URL serves the sync API too
            assert Other.query().count() == 3
            Other.drop_table()
    finally:
        activerecord.disconnect("async-only")


@pytest.mark.backends("mysql")
@needs("asyncmy", "async")
def test_an_asyncmy_url_connects_writes_and_reads(backend: str, adb: Database) -> None:
    url = sa.make_url(backend_url(backend))
    db = activerecord.connect(url.set(drivername="mysql+asyncmy"), name="asyncmy")

    class ViaAsyncmy(Model):
        __table_name__ = "async_asyncmy"
        __database__ = "asyncmy"
        id: int | None = None
        s: Annotated[str, Field(max_length=40)]
        n: int = 0

    rows = [ViaAsyncmy(s=f"it's \\ {n} ü", n=n) for n in range(1500)]

    async def main() -> list[tuple[int | None, str, int]]:
        assert db.async_engine.dialect.driver == "asyncmy"
        await ViaAsyncmy.adrop_table()
        await ViaAsyncmy.acreate_table()
        await ViaAsyncmy.abatch_insert(rows, batch_size=500)
        with pytest.raises(UniqueViolation):  # a failed batch writes nothing
            await ViaAsyncmy.abatch_insert_from_dicts([{"s": "new"}, {"id": rows[0].id, "s": "x"}])
        found = await ViaAsyncmy.query().order_by("id").aall()
        return [(r.id, r.s, r.n) for r in found]

    try:
        found = run(main())
        assert found == [(r.id, r.s, r.n) for r in rows]
        assert len({r.id for r in rows}) == 1500 and None not in {r.id for r in rows}
        assert db.serves_sync and ViaAsyncmy.query().count() == 1500  # the twin, PyMySQL
        ViaAsyncmy.drop_table()
    finally:
        activerecord.disconnect("asyncmy")


def test_a_users_sync_engine_refuses_the_async_api(db: Database) -> None:
    with pytest.raises(ConfigurationError, match="sync Engine"):
        run(AsPet.query().acount())


def test_an_in_memory_database_serves_one_api() -> None:
    activerecord.connect("sqlite://", name="memory")
    try:
        class Mem(Model):
            __table_name__ = "async_mem"
            __database__ = "memory"
            id: int | None = None

        with pytest.raises(ConfigurationError, match="in-memory"):
            run(Mem.query().acount())
    finally:
        activerecord.disconnect("memory")


def test_the_async_api_outside_an_event_loop_is_refused(tables: Database) -> None:
    with pytest.raises(ConfigurationError, match="event loop"):
        _ = tables.async_engine


# -- models and records ------------------------------------------------------------------
def test_record_methods(tables: Database) -> None:
    async def main() -> None:
        pet = await AsPet.acreate(name="rex", age=3)
        first = keys(tables, 1)[0]
        assert pet.id == first and not pet.is_new_record
        assert (await AsPet.afind(first)).name == "rex"
        assert (await AsPet.afind_one({"name": "rex"})) == pet
        assert await AsPet.afind_one({"name": "nobody"}) is None
        pet.age = 4
        assert await pet.asave()
        assert (await AsPet.afind(first)).age == 4
        AsPet.query().where({"id": first}).update({"age": 9})
        assert (await pet.arefresh()).age == 9
        assert await pet.adelete()
        with pytest.raises(RecordNotFound):
            await AsPet.afind(first)
        with pytest.raises(RecordNotFound):
            await pet.arefresh()

    run(main())


def test_batch_insert_sets_keys_in_input_order(tables: Database) -> None:
    pets = [AsPet(name=f"p{n}") for n in range(2500)]

    async def main() -> int:
        return await AsPet.abatch_insert(pets, batch_size=1000)

    assert run(main()) == 2500
    assert [p.id for p in pets] == keys(tables, 2500)
    assert all(not p.is_new_record for p in pets)
    stored = {p.id: p.name for p in AsPet.find_all()}
    assert all(stored[p.id] == p.name for p in pets)


def test_batch_insert_is_atomic_and_reports_every_bad_record(tables: Database) -> None:
    rows = [{"n": 1}, {"n": -1}, {"n": 2}, {"n": -5}]

    async def main() -> None:
        await AsStrict.abatch_insert_from_dicts(rows)

    with pytest.raises(BatchValidationError) as caught:
        run(main())
    assert sorted(caught.value.failures) == [1, 3]
    assert raw_count(tables, "async_strict") == 0


def test_batch_insert_failure_puts_the_records_back(tables: Database) -> None:
    AsPet.create(name="taken")
    pets = [AsPet(name="a"), AsPet(name="taken"), AsPet(name="b")]
    with pytest.raises(UniqueViolation):
        run(AsPet.abatch_insert(pets))
    assert [p.id for p in pets] == [None, None, None]
    assert all(p.is_new_record for p in pets)
    assert names() == ["taken"]


def test_batch_update_of_many_records_runs_the_bulk_form_through_the_bridge(
    tables: Database,
) -> None:
    """PostgreSQL's COPY into a temporary table (the async driver's COPY, through the
    bridge), SQLite's executemany of VALUES chunks, MySQL's UNION ALL: as the sync API."""
    from activerecord.backend.dialects import PostgreSQLFacts

    n = PostgreSQLFacts.copy_update_rows + 3

    async def main() -> int:
        pets = [AsPet(name=f"p{i}") for i in range(n)]
        await AsPet.abatch_insert(pets)
        for i, pet in enumerate(pets):
            pet.age = i % 7
        return await AsPet.abatch_update(pets, ["age"])

    assert run(main()) == n
    assert sorted(p.age for p in AsPet.find_all()) == sorted(i % 7 for i in range(n))


def test_batch_insert_from_dicts_upsert_and_update(tables: Database) -> None:
    async def main() -> tuple[list[int | None], UpsertResult, int]:
        made = await AsPet.abatch_insert_from_dicts([{"name": "a"}, {"name": "b"}])
        assert isinstance(made, list)
        result = await AsPet.abatch_upsert(
            [AsPet(name="a", age=5), AsPet(name="c")], conflict="name"
        )
        made[1].age = 7
        count = await AsPet.abatch_update(made[1:], ["age"])
        return [p.id for p in made], result, count

    ids, result, count = run(main())
    assert ids == keys(tables, 2)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 0)
    assert count == 1
    assert {p.name: p.age for p in AsPet.find_all()} == {"a": 5, "b": 7, "c": 0}


def test_tables_and_create_all(adb: Database) -> None:
    async def main() -> bool:
        await activerecord.adrop_all(tables=[AsPet.__table__])
        await activerecord.acreate_all(tables=[AsPet.__table__])
        await AsPet.adrop_table()
        await AsPet.acreate_table()
        return await AsPet.query().aexists()

    assert run(main()) is False


# -- the same guarantees from both APIs -----------------------------------------------------
def both(flavour: str, sync: Callable[[], T], coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one operation through the sync API or its async twin."""
    return sync() if flavour == "sync" else run(coro())


FLAVOURS = pytest.mark.parametrize("flavour", ["sync", "async"])


@FLAVOURS
def test_a_failed_batch_rolls_back_and_puts_records_back(tables: Database, flavour: str) -> None:
    AsPet.create(name="taken")
    pets = [AsPet(name=f"n{n}") for n in range(3000)] + [AsPet(name="taken")]
    with pytest.raises(UniqueViolation) as caught:
        both(flavour, lambda: AsPet.batch_insert(pets), lambda: AsPet.abatch_insert(pets))
    assert caught.value.record_index == 3000
    assert all(p.id is None and p.is_new_record for p in pets)
    assert names() == ["taken"]


@FLAVOURS
def test_a_rollback_later_puts_written_records_back(tables: Database, flavour: str) -> None:
    pets = [AsPet(name="a"), AsPet(name="b")]

    def sync() -> None:
        with Transaction():
            AsPet.batch_insert(pets)
            raise KeyError("later")

    async def coro() -> None:
        async with Transaction():
            await AsPet.abatch_insert(pets)
            raise KeyError("later")

    with pytest.raises(KeyError):
        both(flavour, sync, coro)
    assert [p.id for p in pets] == [None, None] and all(p.is_new_record for p in pets)
    assert names() == []


@FLAVOURS
def test_the_unfiltered_write_guard_and_soft_delete_scope(tables: Database, flavour: str) -> None:
    AsNote.batch_insert([AsNote(text="a"), AsNote(text="b")])
    with pytest.raises(UnsafeWriteError):
        both(flavour, lambda: AsNote.query().delete(), lambda: AsNote.query().adelete())
    soft = both(flavour, lambda: AsNote.query().where({"text": "a"}).delete(),
                lambda: AsNote.query().where({"text": "a"}).adelete())
    assert soft == 1
    seen = both(flavour, lambda: AsNote.query().count(), lambda: AsNote.query().acount())
    assert seen == 1 and AsNote.query_with_deleted().count() == 2


@FLAVOURS
def test_upsert_counts(tables: Database, flavour: str) -> None:
    AsPet.batch_insert([AsPet(name="a", age=1), AsPet(name="b", age=2)])
    rows = [{"name": "a", "age": 1}, {"name": "b", "age": 5}, {"name": "c"}]
    result = both(flavour, lambda: AsPet.batch_upsert(rows, conflict="name"),
                  lambda: AsPet.abatch_upsert(rows, conflict="name"))
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)


# -- queries -------------------------------------------------------------------------------
def test_query_terminals(tables: Database) -> None:
    AsPet.batch_insert([AsPet(name=f"p{n}", age=n) for n in range(10)])
    made = keys(tables, 10)

    async def main() -> None:
        older = AsPet.query().where("age >= ?", 5)
        assert [p.age for p in await older.order_by("age").aall()] == [5, 6, 7, 8, 9]
        assert (await older.order_by("-age").afirst()).age == 9  # type: ignore[union-attr]
        assert (await AsPet.query().where({"age": 3}).aone()).name == "p3"
        with pytest.raises(RecordNotFound):
            await AsPet.query().where({"age": 99}).aone()
        with pytest.raises(QueryError):
            await older.aone()
        assert await older.acount() == 5
        assert await older.aexists()
        assert await older.asum("age") == 35
        assert await older.amin("age") == 5
        assert await older.amax("age") == 9
        assert float(await older.aavg("age")) == 7.0
        assert [d["name"] for d in await older.select("name").order_by("age").ato_dicts()][:2] \
            == ["p5", "p6"]
        assert (await AsPet.query().afind(made[1])).name == "p1"
        assert [len(b) async for b in AsPet.query().abatches(4)] == [4, 4, 2]
        assert [p.id async for p in older.aeach(2)] == made[5:]
        with pytest.raises(UnsafeWriteError):
            await AsPet.query().aupdate({"age": 0})
        assert await older.aupdate({"age": 50}) == 5
        assert await AsPet.query().where({"age": 50}).adelete() == 5
        assert await AsPet.query().acount() == 5

    run(main())


def test_soft_delete_scope(tables: Database) -> None:
    async def main() -> None:
        note = await AsNote.acreate(text="hi")
        assert await note.adelete()
        assert await AsNote.query().acount() == 0
        assert await AsNote.query_with_deleted().acount() == 1
        assert await note.arestore()
        assert await AsNote.query().acount() == 1
        assert await AsNote.query().adelete(all_rows=True) == 1
        assert await AsNote.query().only_deleted().arestore(all_rows=True) == 1
        assert await note.ahard_delete()
        assert await AsNote.query_with_deleted().acount() == 0

    run(main())


# -- transactions --------------------------------------------------------------------------
def test_async_with_transaction_commits_and_rolls_back(tables: Database) -> None:
    async def main() -> AsPet:
        async with Transaction():
            await AsPet.acreate(name="kept")
            assert in_transaction()
        pet = AsPet(name="dropped")
        with pytest.raises(KeyError):
            async with Transaction():
                await pet.asave()
                assert AsPet.query().where({"name": "dropped"}) is not None
                raise KeyError("no")
        return pet

    pet = run(main())
    assert names() == ["kept"]
    assert pet.id is None and pet.is_new_record  # put back on rollback


def test_nested_transactions_are_savepoints(tables: Database) -> None:
    async def main() -> None:
        async with Transaction():
            await AsPet.acreate(name="outer")
            with pytest.raises(KeyError):
                async with Transaction():
                    await AsPet.acreate(name="inner")
                    raise KeyError("savepoint only")
            assert await AsPet.query().acount() == 1

    run(main())
    assert names() == ["outer"]


def test_after_commit_runs_after_the_commit(tables: Database) -> None:
    seen: list[int] = []

    async def main() -> None:
        async with Transaction():
            await AsPet.acreate(name="a")
            after_commit(lambda: seen.append(AsPet.query().count()))
            assert seen == []
        with pytest.raises(KeyError):
            async with Transaction():
                after_commit(lambda: seen.append(-1))
                raise KeyError

    run(main())
    assert seen == [1]


def test_retries_on_an_async_def(tables: Database) -> None:
    attempts: list[int] = []

    @Transaction(retries=3, backoff=0.001)
    async def work() -> int:
        attempts.append(1)
        await AsPet.acreate(name=f"try{len(attempts)}")
        if len(attempts) < 3:
            raise TransactionConflictError("simulated deadlock")
        return len(attempts)

    assert run(work()) == 3
    assert names() == ["try3"]  # the failed attempts rolled back

    async def once() -> bool:
        return in_transaction()

    assert run(Transaction(retries=1).arun(once)) is True


def test_fifty_tasks_own_their_transactions(tables: Database) -> None:
    async def task(n: int) -> None:
        try:
            async with Transaction():
                await AsPet.acreate(name=f"t{n}")
                await asyncio.sleep(0.001)  # the others run meanwhile
                if n % 2:
                    raise KeyError(n)
        except KeyError:
            pass

    async def main() -> None:
        await asyncio.gather(*(task(n) for n in range(50)))

    run(main())
    assert names() == sorted(f"t{n}" for n in range(0, 50, 2))


def test_a_sync_call_inside_async_with_is_refused(tables: Database) -> None:
    async def main() -> None:
        async with Transaction():
            with pytest.raises(ConfigurationError, match="async methods"):
                AsPet.find_all()
            with pytest.raises(ConfigurationError, match="async methods"):
                get_connection()

    run(main())


def test_an_async_call_inside_a_sync_with_is_refused(tables: Database) -> None:
    async def main() -> None:
        with Transaction():
            with pytest.raises(ConfigurationError, match="async with"):
                await AsPet.query().acount()

    run(main())


def test_a_cancelled_batch_leaves_nothing_and_the_next_call_works(tables: Database) -> None:
    rows = [{"name": f"c{n}"} for n in range(50_000)]

    async def main() -> int:
        task = asyncio.create_task(AsPet.abatch_insert_from_dicts(rows, return_records=False))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await AsPet.acreate(name="after")
        return await AsPet.query().acount()

    assert run(main()) == 1
    assert names() == ["after"]


def test_load_csv_and_jsonl_twins(tables: Database) -> None:
    async def main() -> tuple[int, int]:
        loaded = await AsPet.aload_csv(io.StringIO("name,age\nrex,3\nfido,4\n"))
        jsonl = await AsPet.aload_jsonl(io.StringIO('{"name": "tom", "age": 1}\n'))
        return loaded, jsonl

    assert run(main()) == (2, 1)
    assert names() == ["fido", "rex", "tom"]


# -- raw connections and the caller's unit of work -----------------------------------------
def test_aget_connection(tables: Database, backend: str) -> None:
    driver = {"sqlite": "aiosqlite", "postgresql": "psycopg", "mysql": "aiomysql"}[backend]

    async def main() -> None:
        async with await activerecord.aget_connection() as conn:
            assert isinstance(conn, AsyncRawConnection)
            assert type(conn.driver_connection).__module__.startswith(driver)
            assert not conn.in_transaction
        assert conn.closed
        async with Transaction():
            inside = await activerecord.aget_connection()
            assert inside.in_transaction
            with pytest.raises(ConfigurationError):
                await inside.rollback()

    run(main())


@pytest.mark.parametrize("kind", ["session", "connection"])
def test_using_joins_the_callers_transaction(tables: Database, kind: str) -> None:
    async def main(commit: bool) -> None:
        engine = tables.async_engine
        if kind == "session":
            async with AsyncSession(engine) as session:
                async with using(session):
                    await AsPet.acreate(name=f"s{commit}")
                    assert await AsPet.query().acount() >= 1
                if commit:
                    await session.commit()
                else:
                    await session.rollback()
        else:
            async with engine.connect() as conn:
                async with using(conn):
                    await AsPet.acreate(name=f"s{commit}")
                if commit:
                    await conn.commit()
                else:
                    await conn.rollback()

    run(main(False))
    assert names() == []
    run(main(True))
    assert names() == ["sTrue"]


# -- the event loop keeps running ----------------------------------------------------------
@pytest.mark.backends("postgresql", "mysql")
def test_the_loop_keeps_ticking_during_a_large_batch(tables: Database) -> None:
    rows = [{"name": f"n{n}", "age": n} for n in range(200_000)]

    async def main() -> float:
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            loop = asyncio.get_running_loop()
            last = loop.time()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = loop.time()
                gaps.append(now - last)
                last = now

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        try:
            count = await AsPet.abatch_insert_from_dicts(rows, return_records=False)
        finally:
            done.set()
            await ticking
        assert count == 200_000
        return max(gaps)

    longest = run(main())
    assert raw_count(tables, "async_pets") == 200_000
    assert longest < 0.1, f"the event loop stalled for {longest * 1000:.0f} ms"


# -- relations -----------------------------------------------------------------------------
def test_a_relation_not_preloaded_is_refused_in_async_code(tables: Database) -> None:
    """Reading it would block the loop on a hidden query: an error naming preload instead;
    preloaded (or outside a coroutine) it reads as usual."""
    owner = AsOwner.create(name="o")
    AsToy.batch_insert([AsToy(title=t, owner_id=owner.id) for t in ("a", "b")])

    async def main() -> list[str]:
        found = await AsOwner.afind(owner.id)
        with pytest.raises(activerecord.NotPreloadedError, match=r"preload\('toys'\)"):
            _ = found.toys
        (loaded,) = await AsOwner.query().preload("toys").aall()
        return sorted(t.title for t in loaded.toys)

    assert run(main()) == ["a", "b"]
    assert [t.title for t in AsOwner.find(owner.id).toys] == ["a", "b"]


# -- SQLite: a refused statement and the garbage collector -----------------------------------
class GcPet(Model):
    __table_name__ = "async_gc_pets"
    __database__ = "gc_file"

    id: int | None = None
    name: Annotated[str, Field(max_length=40), activerecord.Col(unique=True)]


@pytest.mark.parametrize("whose", ["library", "application"])
def test_a_refused_statement_leaves_the_collector_no_open_sqlite_cursor(
    tmp_path: Any, whose: str
) -> None:
    """SQLAlchemy's aiosqlite adapter leaves the driver cursor of a failed statement open, in
    a reference cycle with the error. Collected later, while its connection runs another
    task's statement that waits for a lock in the connection's thread, its finalizer (a
    statement reset, which takes the connection's mutex) stopped the event loop, GIL held,
    for the whole busy timeout (30 s: examples/async_app.py hung so). The library closes the
    cursor as the statement fails, the application's own statements on its engine included:
    a collection now finishes while the lock is still held."""
    path = tmp_path / "gc.db"
    activerecord.connect(f"sqlite+aiosqlite:///{path}", name="gc_file", pool_size=1,
                         max_overflow=0)
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    released = threading.Event()

    async def refused() -> None:
        if whose == "library":
            await GcPet.acreate(name="a")
            return
        async with AsyncSession(activerecord.get_database("gc_file").async_engine) as session:
            try:
                await session.execute(sa.insert(GcPet.__table__).values(name="a"))
            finally:
                await session.rollback()

    def release() -> None:
        if not released.is_set():
            released.set()
            blocker.execute("ROLLBACK")

    async def main() -> None:
        await GcPet.acreate_table()
        await GcPet.acreate(name="a")
        gc.collect()
        gc.disable()  # the refused statement's garbage waits for the collection below
        try:
            expected = UniqueViolation if whose == "library" else sa.exc.IntegrityError
            with pytest.raises(expected):
                await refused()  # on the pool's only connection
            blocker.execute("BEGIN IMMEDIATE")  # the write lock, held by another connection
            waiting = asyncio.ensure_future(GcPet.acreate(name="b"))  # the same connection,
            await asyncio.sleep(0.2)  # now waiting for the lock in its thread
            timer = threading.Timer(10, release)  # (what ends the wait if the loop is stuck)
            timer.start()
            gc.collect()
            collected_while_locked = not released.is_set()
            timer.cancel()
            release()
            await waiting
        finally:
            gc.enable()
        assert collected_while_locked, "the collection waited for the lock"
        assert sorted(p.name for p in await GcPet.query().aall()) == ["a", "b"]

    try:
        run(main())
    finally:
        blocker.close()
        activerecord.disconnect("gc_file")
