"""Transaction: commit, rollback, savepoints, isolation, read-only, threads, retries, hooks."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import ActiveRecord, ConfigurationError, DatabaseError, col
from activerecord.backend import get_connection
from activerecord.backend.transaction import (
    Transaction,
    after_commit,
    current_connection,
    in_transaction,
    is_retryable,
)
from activerecord.errors import TransactionConflictError

from .conftest import backend_url, raw_count


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class TxAccount(Model):
    __table_name__ = "tx_accounts"

    id: int | None = None
    kind: Annotated[str, Field(max_length=20)]
    n: int = 0


class TxEvent(Model):
    __table_name__ = "tx_events"

    id: int | None = None
    name: Annotated[str, Field(max_length=50)]


class Boom(Exception):
    pass


def run_threads(*fns: Callable[[], Any]) -> list[Any]:
    """Run each function in its own thread; re-raise the first failure (bounded wait)."""
    with ThreadPoolExecutor(max_workers=len(fns)) as pool:
        futures = [pool.submit(fn) for fn in fns]
        return [f.result(timeout=60) for f in futures]


def kinds() -> list[str]:
    return sorted(a.kind for a in TxAccount.find_all())


# -- commit and rollback ----------------------------------------------------------------------
def test_commit_joins_every_operation_across_models(db, fresh):
    fresh(TxAccount, TxEvent)
    TxAccount.batch_insert([TxAccount(kind="old"), TxAccount(kind="trial")])
    with Transaction() as tx:
        assert in_transaction() and in_transaction(TxAccount) and in_transaction("default")
        TxAccount(kind="single").save()
        TxAccount.batch_insert([TxAccount(kind="b1"), TxAccount(kind="b2")])
        TxAccount.query().where({"kind": "trial"}).update({"kind": "active"})
        TxAccount.query().where({"kind": "old"}).delete()
        TxEvent(name="audit").save()
        # Nothing is visible to another connection before the commit.
        assert raw_count(db, "tx_events") == 0
        assert current_connection() is tx.connection
    assert not in_transaction()
    assert kinds() == ["active", "b1", "b2", "single"]
    assert raw_count(db, "tx_events") == 1


def test_rollback_reraises_the_same_exception(db, fresh):
    fresh(TxAccount, TxEvent)
    TxAccount(kind="keep").save()
    boom = Boom("original")
    with pytest.raises(Boom) as info:
        with Transaction():
            TxAccount(kind="gone").save()
            TxAccount.batch_insert([TxAccount(kind="gone2")])
            TxAccount.query().where({"kind": "keep"}).update({"n": 5})
            TxEvent(name="gone").save()
            raise boom
    assert info.value is boom
    assert kinds() == ["keep"]
    assert TxAccount.find_one({"kind": "keep"}).n == 0
    assert raw_count(db, "tx_events") == 0


def _kill(db, conn: sa.Connection) -> None:
    """Break the transaction's connection for real, from outside."""
    name = db.engine.dialect.name
    if name == "sqlite":
        conn.connection.dbapi_connection.close()
        return
    if name == "postgresql":
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        kill = "SELECT pg_terminate_backend(%s)"
    else:
        pid = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        kill = "KILL %s"  # PyMySQL interpolates client side
    with db.engine.connect() as other:
        other.exec_driver_sql(kill, (int(pid),))


def test_original_exception_survives_a_failed_rollback(db, fresh):
    fresh(TxAccount)
    before = db.engine.pool.checkedout()
    boom = Boom("the real problem")
    with pytest.raises(Boom) as info:
        with Transaction() as tx:
            TxAccount(kind="x").save()
            _kill(db, tx.connection)
            raise boom
    assert info.value is boom
    assert db.engine.pool.checkedout() == before
    assert TxAccount.query().count() == 0  # the pool hands out a working connection again


def test_transaction_by_model_and_by_name(db, fresh):
    fresh(TxAccount)
    with Transaction(TxAccount):
        assert in_transaction("default")
        TxAccount(kind="model").save()
    with pytest.raises(Boom), Transaction("default"):
        TxAccount(kind="named").save()
        raise Boom
    assert kinds() == ["model"]
    with pytest.raises(activerecord.NotConnectedError):
        with Transaction("no-such-database"):
            pass


def test_decorator_commits_and_rolls_back(db, fresh):
    fresh(TxAccount)

    @Transaction()
    def add(kind: str, fail: bool = False) -> bool:
        TxAccount(kind=kind).save()
        if fail:
            raise Boom(kind)
        return in_transaction()

    assert add("a") is True
    with pytest.raises(Boom):
        add("b", fail=True)
    assert kinds() == ["a"]
    with pytest.raises(ConfigurationError, match="parentheses"):
        Transaction(add)


# -- savepoints -------------------------------------------------------------------------------
def test_nested_savepoint_rolls_back_only_inner_work(db, fresh):
    fresh(TxAccount)
    with Transaction():
        TxAccount(kind="outer1").save()
        with pytest.raises(Boom):
            with Transaction():
                TxAccount(kind="inner-failed").save()
                TxAccount.batch_insert([TxAccount(kind="inner-batch")])
                raise Boom
        with Transaction():
            TxAccount(kind="inner-ok").save()
            with pytest.raises(Boom), Transaction():
                TxAccount.query().where({"kind": "outer1"}).update({"n": 99})
                raise Boom
        TxAccount(kind="outer2").save()
    assert kinds() == ["inner-ok", "outer1", "outer2"]
    assert TxAccount.find_one({"kind": "outer1"}).n == 0


def test_failed_batch_inside_a_transaction_keeps_earlier_work(db, fresh):
    fresh(TxAccount)
    with Transaction():
        TxAccount(kind="kept").save()
        with pytest.raises(activerecord.ValidationError):
            TxAccount.batch_insert_from_dicts([{"kind": "ok"}, {"kind": "x" * 50}])
        TxAccount(kind="after").save()
    assert kinds() == ["after", "kept"]


# -- after-commit hooks -----------------------------------------------------------------------
def test_after_commit_hooks(db, fresh):
    fresh(TxAccount)
    ran: list[str] = []
    with Transaction():
        after_commit(lambda: ran.append("outer"))
        with Transaction():
            after_commit(lambda: ran.append("released"))
        with pytest.raises(Boom), Transaction():
            after_commit(lambda: ran.append("rolled-back savepoint"))
            raise Boom
        with pytest.raises(Boom), Transaction():
            with Transaction():
                after_commit(lambda: ran.append("released into a failed savepoint"))
            raise Boom
        assert ran == []  # nothing runs before the commit
        # A hook sees the committed data from a new connection.
        TxAccount(kind="hooked").save()
        after_commit(lambda: ran.append(f"sees {raw_count(db, 'tx_accounts')}"))
    assert ran == ["outer", "released", "sees 1"]

    ran.clear()
    with pytest.raises(Boom), Transaction():
        after_commit(lambda: ran.append("never"))
        raise Boom
    assert ran == []
    after_commit(lambda: ran.append("at once"))  # outside a transaction
    assert ran == ["at once"]


def test_after_commit_hook_errors_run_all_then_raise_the_first(db, fresh):
    fresh(TxAccount)
    ran: list[str] = []
    first, second = Boom("first"), Boom("second")

    def fail(err: Exception) -> Callable[[], None]:
        def hook() -> None:
            ran.append(str(err))
            raise err

        return hook

    with pytest.raises(Boom) as info:
        with Transaction():
            TxAccount(kind="committed").save()
            after_commit(fail(first))
            after_commit(lambda: ran.append("ok"))
            after_commit(fail(second))
    assert info.value is first
    assert ran == ["first", "ok", "second"]
    assert kinds() == ["committed"]


# -- isolation levels and read-only -----------------------------------------------------------
@pytest.fixture
def single(db):
    """A named database on the same server with ONE pooled connection, so consecutive
    transactions are known to reuse the same connection."""
    one = activerecord.connect(
        backend_url(db.engine.dialect.name), name="tx-single", pool_size=1, max_overflow=0
    )
    yield one
    activerecord.disconnect("tx-single")


@pytest.fixture
def single_default(db):
    """The default database rebound to an engine with ONE pooled connection (the ``db``
    fixture disposes of it afterwards)."""
    return activerecord.connect(
        backend_url(db.engine.dialect.name), pool_size=1, max_overflow=0
    )


def dbapi(tx: Transaction) -> Any:
    return tx.connection.connection.dbapi_connection


#: (statement, level shown by default, level asked for, level shown then). MariaDB has no
#: reliable probe (information_schema.innodb_trx keeps a stale level): see the next test.
ISOLATION_PROBE = {
    "postgresql": ("SHOW transaction_isolation", "read committed", "SERIALIZABLE",
                   "serializable"),
    "sqlite": ("PRAGMA read_uncommitted", 0, "READ UNCOMMITTED", 1),
}


@pytest.mark.backends("postgresql", "sqlite")
def test_isolation_level_is_in_effect_and_reset_after(backend, single):
    probe, default, asked, shown = ISOLATION_PROBE[backend]
    with Transaction("tx-single", isolation_level=asked) as tx:
        assert tx.connection.exec_driver_sql(probe).scalar() == shown
        first = dbapi(tx)
    with Transaction("tx-single") as tx:
        assert dbapi(tx) is first
        assert tx.connection.exec_driver_sql(probe).scalar() == default


#: Whether a transaction at the server's default level sees rows committed meanwhile.
DEFAULT_SEES_NEW_COMMITS = {"postgresql": True, "mysql": False}  # READ COMMITTED / REPEATABLE


@pytest.mark.backends("postgresql", "mysql")
def test_isolation_level_changes_what_a_transaction_sees(backend, db, fresh, single_default):
    fresh(TxAccount)
    used = set()

    def sees_new_commits(level: str | None) -> bool:
        with Transaction(isolation_level=level) as tx:
            used.add(dbapi(tx))
            before = TxAccount.query().count()
            with db.engine.begin() as other:  # another connection commits a row meanwhile
                other.execute(sa.insert(TxAccount.__table__).values(kind="other", n=0))
            return TxAccount.query().count() != before

    assert sees_new_commits("REPEATABLE READ") is False
    assert sees_new_commits("read_committed") is True
    # The level was for one transaction only: the same connection is back to the default.
    assert sees_new_commits(None) is DEFAULT_SEES_NEW_COMMITS[backend]
    assert sees_new_commits("REPEATABLE READ") is False
    assert len(used) == 1


def test_isolation_level_errors(backend, db):
    with pytest.raises(ConfigurationError, match="not available"):
        with Transaction(isolation_level="AUTOCOMMIT"):
            pass
    with pytest.raises(ConfigurationError, match="not available"):
        with Transaction(isolation_level="chaotic"):
            pass
    if backend == "sqlite":
        with pytest.raises(ConfigurationError, match="SERIALIZABLE"):
            with Transaction(isolation_level="READ COMMITTED"):
                pass
    with Transaction(isolation_level="SERIALIZABLE"):
        with Transaction(isolation_level="serializable"):  # repeating it is fine
            pass
        with pytest.raises(ConfigurationError, match="outermost"):
            with Transaction(read_only=True):
                pass
    assert db.engine.pool.checkedout() == 0


def test_read_only_transaction(single_default, fresh):
    fresh(TxAccount)
    TxAccount(kind="existing").save()
    with pytest.raises(DatabaseError) as info:
        with Transaction(read_only=True) as tx:
            assert TxAccount.query().count() == 1  # reads work
            first = dbapi(tx)
            TxAccount(kind="refused").save()
    assert info.value.orig is not None
    # The same pooled connection writes again afterwards (SQLite's query_only was reset).
    with Transaction() as tx:
        assert dbapi(tx) is first
        TxAccount(kind="written").save()
    assert kinds() == ["existing", "written"]


# -- threads and tasks ------------------------------------------------------------------------
#: SQLite has one writer at a time: there the second thread only reads.
CONCURRENT_WRITERS = {"sqlite": False, "postgresql": True, "mysql": True}


def test_threads_never_share_a_transaction(backend, db, fresh):
    fresh(TxAccount)
    written, other_counted, writer_counted = (threading.Event() for _ in range(3))
    connections: dict[str, Any] = {}

    def writer() -> int:
        with Transaction() as tx:
            connections["writer"] = dbapi(tx)
            TxAccount(kind="writer").save()
            written.set()
            assert other_counted.wait(30)
            try:
                return TxAccount.query().count()
            finally:
                writer_counted.set()

    def other() -> int:
        assert written.wait(30)
        try:
            assert not in_transaction()
            with Transaction() as tx:
                connections["other"] = dbapi(tx)
                if CONCURRENT_WRITERS[backend]:
                    TxAccount(kind="other").save()
                count = TxAccount.query().count()
                other_counted.set()
                assert writer_counted.wait(30)  # stay open while the writer counts
                return count
        finally:
            other_counted.set()

    seen_by_writer, seen_by_other = run_threads(writer, other)
    own = 1 if CONCURRENT_WRITERS[backend] else 0
    assert seen_by_writer == 1  # its own row only
    assert seen_by_other == own  # never the writer's uncommitted row
    assert connections["writer"] is not connections["other"]
    assert TxAccount.query().count() == 1 + own


def test_a_copied_context_in_another_thread_does_not_join(db, fresh):
    fresh(TxAccount)
    with Transaction():
        TxAccount(kind="mine").save()
        context = contextvars.copy_context()  # what asyncio.to_thread does

        def elsewhere() -> tuple[bool, int]:
            return in_transaction(), TxAccount.query().count()

        (joined, count), = run_threads(lambda: context.run(elsewhere))
    assert joined is False
    assert count == 0


@pytest.mark.backends("sqlite")
def test_asyncio_tasks_never_share_a_transaction(db, fresh):
    fresh(TxAccount)

    async def child() -> bool:
        return in_transaction()  # created inside the parent's block: it copied the context

    async def parent() -> tuple[bool, bool, bool]:
        with Transaction():
            inside = in_transaction()
            child_joined = await asyncio.create_task(child())
            still = in_transaction()
        return inside, child_joined, still

    assert asyncio.run(parent()) == (True, False, True)


# -- retries ----------------------------------------------------------------------------------
def test_with_block_refuses_retries(db):
    with pytest.raises(ConfigurationError, match="cannot re-run a with block"):
        with Transaction(retries=3):
            pass


def test_run_retries_conflicts_and_rolls_back_each_attempt(db, fresh):
    fresh(TxAccount)
    attempts = []

    def work() -> int:
        attempts.append(1)
        TxAccount(kind=f"attempt{len(attempts)}").save()
        if len(attempts) < 3:
            raise TransactionConflictError("simulated conflict raised by the caller")
        return len(attempts)

    assert Transaction(retries=3, backoff=0.001).run(work) == 3
    assert kinds() == ["attempt3"]

    attempts.clear()
    with pytest.raises(TransactionConflictError):
        Transaction(retries=1, backoff=0.001).run(work)
    assert len(attempts) == 2

    attempts.clear()
    with pytest.raises(Boom):  # not a conflict: no retry
        Transaction(retries=5).run(lambda: attempts.append(1) or (_ for _ in ()).throw(Boom()))
    assert len(attempts) == 1

    attempts.clear()
    with pytest.raises(TransactionConflictError), Transaction():  # nested: no retry
        Transaction(retries=5, backoff=0.001).run(work)
    assert len(attempts) == 1


@pytest.mark.backends("postgresql", "mysql")
def test_retry_resolves_a_real_deadlock(db, fresh):
    fresh(TxAccount)
    TxAccount.batch_insert([TxAccount(kind="r1"), TxAccount(kind="r2")])
    ids = [a.id for a in TxAccount.query().order_by("id").all()]
    barrier = threading.Barrier(2, timeout=20)
    attempts = {"a": 0, "b": 0}

    def locker(name: str, first: int, second: int) -> Callable[[], None]:
        @Transaction(retries=3, backoff=0.01)
        def work() -> None:
            attempts[name] += 1
            TxAccount.query().where({"id": first}).update({"n": col("n") + 1})
            if attempts[name] == 1:
                barrier.wait()  # both hold their first row: now each wants the other's
            TxAccount.query().where({"id": second}).update({"n": col("n") + 1})

        return work

    run_threads(locker("a", ids[0], ids[1]), locker("b", ids[1], ids[0]))
    assert sum(attempts.values()) >= 3  # one of them was the deadlock victim and ran again
    assert [a.n for a in TxAccount.query().order_by("id").all()] == [2, 2]


@pytest.mark.backends("postgresql")
def test_retry_resolves_a_real_serialization_failure(db, fresh):
    fresh(TxAccount)
    barrier = threading.Barrier(2, timeout=20)
    attempts = {"a": 0, "b": 0}

    def worker(mine: str, other: str) -> Callable[[], None]:
        @Transaction(isolation_level="SERIALIZABLE", retries=3, backoff=0.01)
        def work() -> None:
            attempts[mine] += 1
            seen = TxAccount.query().where({"kind": other}).count()
            if attempts[mine] == 1:
                barrier.wait()  # both have read before either writes: write skew
            TxAccount(kind=mine, n=seen).save()

        return work

    run_threads(worker("a", "b"), worker("b", "a"))
    assert sum(attempts.values()) >= 3
    # A serial order: the one that ran second saw the other's row.
    assert sorted(a.n for a in TxAccount.find_all()) == [0, 1]


@pytest.mark.backends("sqlite")
def test_retry_resolves_sqlite_database_is_locked(db, fresh):
    fresh(TxAccount)
    activerecord.connect(backend_url("sqlite"), name="tx-impatient", connect_args={"timeout": 0.2})
    holding = threading.Event()
    release = threading.Event()
    attempts: list[int] = []

    def holder() -> None:
        with Transaction():  # default engine: waits up to 30 s for its own locks
            TxAccount(kind="holder").save()
            holding.set()
            assert release.wait(30)

    @Transaction("tx-impatient", retries=5, backoff=0.01)
    def impatient() -> None:
        attempts.append(1)
        if len(attempts) == 2:
            release.set()  # the holder commits while this attempt waits
        with get_connection("tx-impatient").cursor() as cursor:
            cursor.execute("INSERT INTO tx_accounts (kind, n) VALUES (?, ?)", ("impatient", 0))

    def waiter() -> None:
        assert holding.wait(30)
        impatient()

    try:
        run_threads(holder, waiter)
    finally:
        release.set()
        activerecord.disconnect("tx-impatient")
    assert len(attempts) >= 2
    assert kinds() == ["holder", "impatient"]


def test_is_retryable_reads_driver_errors():
    import sqlite3

    assert is_retryable(sqlite3.OperationalError("database is locked"))
    assert not is_retryable(sqlite3.OperationalError("no such table: x"))
    assert is_retryable(TransactionConflictError("x"))
    try:
        raise ValueError("wrapped") from TransactionConflictError("deadlock")
    except ValueError as err:
        assert is_retryable(err)
    assert not is_retryable(Boom())
