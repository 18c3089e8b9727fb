"""Load: several threads writing the same tables at once, checked against a client-side ledger.

Each thread owns a key space (its ``tag``) where it batch-inserts, batch-updates, soft-deletes
and restores rows, and every thread also hits shared rows: counters bumped with
``col("n") + k`` and a pool of rows soft-deleted and restored by whoever gets there first.
Each thread writes down what succeeded; at the end the database must match the ledgers
exactly (the interleaving varies from run to run, the invariants do not).

The work is bounded by a count of iterations and by a deadline (a thread stops early when
it passes it: its ledger then simply holds less). Conflicts the database reports (SQLite's
single writer, deadlocks) are retried by ``Transaction(retries=N)``, as an application would.

The pool-exhaustion test shows that a thread that cannot get a connection fails with a typed
error instead of hanging.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import pytest
import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import (
    ActiveRecord,
    ActiveRecordError,
    DatabaseConnectionError,
    PoolTimeoutError,
    SoftDeleteMixin,
    TimestampMixin,
    Transaction,
    col,
)
from activerecord.backend.transaction import in_transaction

from .conftest import backend_url


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

R = TypeVar("R")

THREADS = 4
ITERATIONS = 10
ROWS_PER_INSERT = 12
INSERT_BATCH_SIZE = 5  # several statements per batch insert
UPDATE_BATCH_SIZE = 3  # several statements per batch update
POOL_SIZE = 4
#: Seconds after which threads stop starting new iterations (bounds the test's time).
DEADLINE = 25.0
#: Seconds to wait for a thread to finish before calling it hung.
JOIN_TIMEOUT = 60.0


class LoadItem(TimestampMixin, SoftDeleteMixin, Model):
    __table_name__ = "load_items"

    id: int | None = None
    tag: Annotated[str, Field(max_length=16)]
    seq: int
    value: int = 0


class LoadCounter(Model):
    __table_name__ = "load_counters"

    id: int | None = None
    name: Annotated[str, Field(max_length=16)]
    n: int = 0


class TinyItem(Model):
    __table_name__ = "tiny_items"
    __database__ = "tiny"

    id: int | None = None
    n: int = 0


class Aborted(Exception):
    """Raised on purpose inside a transaction: its writes must vanish."""


@dataclass
class Ledger:
    """What one thread did successfully."""

    #: id -> (tag, seq, value, soft-deleted)
    rows: dict[int, tuple[str, int, int, bool]] = field(default_factory=dict)
    hits: int = 0  # the "hits" counter: + 1 each
    weighted: int = 0  # the "weighted" counter: + (thread number + 1) each
    committed: int = 0  # the "committed" counter: + 1 per committed transaction
    pool_deleted: Counter[int] = field(default_factory=Counter)
    pool_restored: Counter[int] = field(default_factory=Counter)
    iterations: int = 0
    aborted: int = 0


def retrying(fn: Callable[[], R]) -> R:
    """Run ``fn`` in a transaction, retrying what the database reports as a conflict."""
    return Transaction(retries=10, backoff=0.01).run(fn)


def bump(counter_id: int, by: int) -> int:
    return LoadCounter.query().where({"id": counter_id}).update({"n": col("n") + by})


def worker(k: int, counters: dict[str, int], pool: list[int], ledger: Ledger,
           deadline: float, start: threading.Barrier) -> None:
    start.wait(30)  # all threads begin together
    rng = random.Random(k)  # the choices are fixed per thread; only the interleaving varies
    tag = f"t{k}"
    seq = 0
    mine: dict[int, LoadItem] = {}  # live rows of this thread, as returned by the inserts
    gone: list[int] = []  # soft-deleted rows of this thread
    for i in range(ITERATIONS):
        if time.monotonic() > deadline:
            break
        # 1. A multi-statement batch insert; the instances are built inside the retried
        #    function so that a retry starts from records without keys.
        def insert(first: int = seq, as_dicts: bool = i % 2 == 1) -> list[LoadItem]:
            items = [
                LoadItem(tag=tag, seq=first + j, value=k * 100_000 + first + j)
                for j in range(ROWS_PER_INSERT)
            ]
            if as_dicts:
                return LoadItem.batch_insert_from_dicts(  # type: ignore[return-value]
                    [item.model_dump(include={"tag", "seq", "value"}) for item in items],
                    batch_size=INSERT_BATCH_SIZE,
                )
            assert LoadItem.batch_insert(items, batch_size=INSERT_BATCH_SIZE) == len(items)
            return items

        inserted = retrying(insert)
        seq += ROWS_PER_INSERT
        for item in inserted:
            assert item.id is not None and item.id not in ledger.rows
            ledger.rows[item.id] = (tag, item.seq, item.value, False)
            mine[item.id] = item

        # 2. A multi-statement batch update of some of this thread's live rows. The new
        #    values are set before the retried call, so a retry writes the same values.
        chosen = [mine[key] for key in rng.sample(sorted(mine), 7)]
        for item in chosen:
            item.value += 1 + i
        assert retrying(
            lambda chosen=chosen: LoadItem.batch_update(
                chosen, ["value"], batch_size=UPDATE_BATCH_SIZE
            )
        ) == len(chosen)
        for item in chosen:
            assert item.id is not None
            ledger.rows[item.id] = (tag, item.seq, item.value, False)

        # 3. Soft-delete two own rows (one by instance, one by query), restore an older one.
        one, two = rng.sample(sorted(mine), 2)
        assert retrying(mine[one].delete) is True
        assert retrying(lambda two=two: LoadItem.query().where({"id": [two]}).delete()) == 1
        for key in (one, two):
            item = mine.pop(key)
            ledger.rows[key] = (tag, item.seq, item.value, True)
            gone.append(key)
        if i % 3 == 2:
            back = gone.pop(rng.randrange(len(gone)))
            assert retrying(
                lambda back=back: LoadItem.query().only_deleted().where({"id": back}).restore()
            ) == 1
            row_tag, row_seq, row_value, _ = ledger.rows[back]
            ledger.rows[back] = (row_tag, row_seq, row_value, False)
            mine[back] = LoadItem.find(back)

        # 4. Shared counters: an increment computed by the database is never lost.
        assert retrying(lambda: bump(counters["hits"], 1)) == 1
        ledger.hits += 1
        assert retrying(lambda: bump(counters["weighted"], k + 1)) == 1
        ledger.weighted += k + 1

        # 5. The shared pool: each delete or restore succeeds only if nobody beat us to it.
        for _ in range(3):
            key = rng.choice(pool)
            if rng.random() < 0.5:
                done = retrying(lambda key=key: LoadItem.query().where({"id": key}).delete())
                ledger.pool_deleted[key] += done
            else:
                done = retrying(
                    lambda key=key: LoadItem.query().only_deleted().where({"id": key}).restore()
                )
                ledger.pool_restored[key] += done
            assert done in (0, 1)

        # 6. A transaction of several writes, aborted every other time: all or nothing.
        abort = i % 2 == 1
        base = seq

        def unit(base: int = base, abort: bool = abort) -> list[LoadItem]:
            assert bump(counters["committed"], 1) == 1
            items = [LoadItem(tag=tag, seq=base + j, value=-1 - j) for j in range(3)]
            LoadItem.batch_insert(items)
            if abort:
                raise Aborted
            return items

        try:
            items = retrying(unit)
        except Aborted:
            ledger.aborted += 1
        else:
            seq += len(items)
            ledger.committed += 1
            for item in items:
                assert item.id is not None and item.id not in ledger.rows
                ledger.rows[item.id] = (tag, item.seq, item.value, False)
                mine[item.id] = item
        ledger.iterations += 1


def run_threads(target: Callable[[int], None], n: int) -> None:
    errors: list[str] = []

    def guarded(k: int) -> None:
        try:
            target(k)
        except BaseException:  # noqa: BLE001 - reported by the main thread
            errors.append(f"thread {k}:\n{traceback.format_exc()}")

    threads = [threading.Thread(target=guarded, args=(k,), name=f"load-{k}") for k in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    hung = [thread.name for thread in threads if thread.is_alive()]
    assert not hung, f"threads did not finish (hang?): {hung}"
    assert not errors, "\n".join(errors)


def test_concurrent_writers_match_their_ledgers(fresh, db, backend):
    fresh(LoadItem, LoadCounter)
    counters = {
        c.name: c.id for c in LoadCounter.batch_insert_from_dicts(  # type: ignore[union-attr]
            [{"name": "hits"}, {"name": "weighted"}, {"name": "committed"}]
        )
    }
    shared = LoadItem.batch_insert_from_dicts(
        [{"tag": "pool", "seq": j, "value": j} for j in range(POOL_SIZE)]
    )
    pool = [item.id for item in shared]  # type: ignore[union-attr]
    ledgers = [Ledger() for _ in range(THREADS)]
    deadline = time.monotonic() + DEADLINE
    start = threading.Barrier(THREADS)

    run_threads(lambda k: worker(k, counters, pool, ledgers[k], deadline, start), THREADS)

    assert all(ledger.iterations >= 1 for ledger in ledgers), [
        ledger.iterations for ledger in ledgers
    ]
    # Every row each thread inserted is there under its own key, with the values the thread
    # wrote last: no lost update, no duplicate, no misassigned key, nothing rolled back left.
    expected: dict[int, tuple[str, int, int, bool]] = {}
    for ledger in ledgers:
        assert not expected.keys() & ledger.rows.keys(), "two threads got the same key"
        expected.update(ledger.rows)
    rows = LoadItem.query_with_deleted().where("tag <> ?", "pool").all()
    actual = {r.id: (r.tag, r.seq, r.value, r.deleted_at is not None) for r in rows}
    assert actual == expected
    for k, ledger in enumerate(ledgers):
        live = sum(1 for *_, deleted in ledger.rows.values() if not deleted)
        assert LoadItem.query().where({"tag": f"t{k}"}).count() == live
        assert LoadItem.query_with_deleted().where({"tag": f"t{k}"}).count() == len(ledger.rows)
    # Shared counters: every increment that reported success is in the total, none other.
    totals = {c.name: c.n for c in LoadCounter.query().all()}
    assert totals == {
        "hits": sum(ledger.hits for ledger in ledgers),
        "weighted": sum(ledger.weighted for ledger in ledgers),
        "committed": sum(ledger.committed for ledger in ledgers),
    }
    # The pool: per row, successful deletes and restores alternate, starting from live.
    states = {
        r.id: r.deleted_at is not None
        for r in LoadItem.query_with_deleted().where({"tag": "pool"}).all()
    }
    assert sorted(states) == sorted(pool)
    for key in pool:
        deleted = sum(ledger.pool_deleted[key] for ledger in ledgers)
        restored = sum(ledger.pool_restored[key] for ledger in ledgers)
        assert deleted - restored in (0, 1), (key, deleted, restored)
        assert states[key] == (deleted - restored == 1), (key, deleted, restored)


@pytest.fixture
def tiny(db, backend):
    """A second database on the same server whose pool holds a single connection."""
    tiny_db = activerecord.connect(
        backend_url(backend), name="tiny", pool_size=1, max_overflow=0, pool_timeout=0.25
    )
    TinyItem.drop_table()
    TinyItem.create_table()
    yield tiny_db
    try:
        TinyItem.drop_table()
    finally:
        activerecord.disconnect("tiny")


def test_pool_exhaustion_is_a_typed_error_not_a_hang(tiny):
    TinyItem.create(n=1)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with Transaction("tiny"):  # the pool's only connection, until released
            assert TinyItem.query().count() == 1
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        attempts: list[Callable[[], Any]] = [
            lambda: TinyItem.query().count(),
            lambda: TinyItem.create(n=2),
            lambda: TinyItem.batch_insert([TinyItem(n=3), TinyItem(n=4)]),
            lambda: TinyItem.query().where({"n": 1}).update({"n": 5}),
            lambda: activerecord.get_connection("tiny"),
            lambda: Transaction("tiny").__enter__(),
        ]
        for attempt in attempts:
            with pytest.raises(ActiveRecordError) as info:
                attempt()
            # raised while the connection was still held: it did not wait for the holder
            assert holder.is_alive() and not release.is_set()
            assert isinstance(info.value, PoolTimeoutError), repr(info.value)
            assert isinstance(info.value, DatabaseConnectionError)
            assert isinstance(info.value.orig, sa.exc.TimeoutError)
            assert "'tiny'" in str(info.value)
            assert not in_transaction("tiny")
    finally:
        release.set()
        holder.join(30)
    assert not holder.is_alive()
    # the connection is back in the pool: the next calls work, and nothing failed was written
    assert TinyItem.query().count() == 1
    assert TinyItem.batch_insert([TinyItem(n=6)]) == 1
    assert sorted(t.n for t in TinyItem.query().all()) == [1, 6]
