"""On a real 3-node MariaDB Galera cluster (``.ci/galera.sh start``).

The nodes' URLs come from ``AR_TEST_GALERA_URLS`` (comma separated; ``.ci/run`` sets it and
then every test here must run: an unreachable node fails). Without it the default nodes
(127.0.0.1:3311-3313) are tried and, when the cluster is not running, the module is skipped
with the reason.

Each node numbers AUTO_INCREMENT keys with ``auto_increment_increment = 3`` and its own
offset, certifies transactions at COMMIT (a conflict is a deadlock, 1213, there), refuses
statements with 1047 when it is out of the primary component, and limits one transaction's
write set (``wsrep_max_ws_rows`` / ``wsrep_max_ws_size``).
"""

from __future__ import annotations

import io
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pymysql
import pytest
import sqlalchemy as sa

import activerecord
from activerecord import (
    ActiveRecord,
    DatabaseConnectionError,
    PartialWriteError,
    Transaction,
    TransactionConflictError,
    TransactionTooLargeError,
    col,
)
from activerecord.backend.database import Database


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

DEFAULT_URLS = ",".join(f"mysql+pymysql://root@127.0.0.1:{p}/test" for p in (3311, 3312, 3313))
URLS = [u.strip() for u in os.environ.get("AR_TEST_GALERA_URLS", DEFAULT_URLS).split(",")]
REQUIRED = "AR_TEST_GALERA_URLS" in os.environ


def _probe(url: str) -> str | None:
    """None when the node is a Synced member of a 3-node cluster, else why not."""
    parsed = sa.make_url(url)
    try:
        conn = pymysql.connect(
            host=parsed.host, port=parsed.port or 3306, user=parsed.username or "root",
            password=parsed.password or "", connect_timeout=2,
        )
    except pymysql.Error as exc:
        return f"{parsed.host}:{parsed.port} is unreachable ({exc})"
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW STATUS WHERE Variable_name IN "
                           "('wsrep_cluster_size', 'wsrep_local_state_comment')")
            status = dict(cursor.fetchall())
    finally:
        conn.close()
    if status.get("wsrep_cluster_size") != "3" or status.get("wsrep_local_state_comment") != (
        "Synced"
    ):
        return f"{parsed.host}:{parsed.port} is not a Synced node of 3 ({status})"
    return None


@pytest.fixture(scope="module")
def nodes() -> list[str]:
    problems = [p for p in map(_probe, URLS) if p is not None]
    if problems:
        message = "Galera cluster not running: " + "; ".join(problems) + (
            "; start it with: .ci/galera.sh start"
        )
        if REQUIRED:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    assert len(URLS) == 3
    return URLS


class Counter(Model):
    __table_name__ = "galera_counters"
    id: int | None = None
    name: str
    n: int = 0


def _on(name: str) -> type[Counter]:
    """``Counter`` bound to the database ``name`` (same table)."""

    class Bound(Counter):
        __table__ = Counter.__table__
        __database__ = name

    Bound.__name__ = f"Counter_{name}"
    return Bound


@pytest.fixture
def cluster(nodes: list[str]) -> Iterator[Callable[..., Database]]:
    """``cluster(i, **options)``: the database ``node{i}`` connected to node i (1-based);
    the counters table is fresh for every test."""
    opened: list[str] = []

    def bind(i: int, name: str | None = None, **options: object) -> Database:
        name = name or f"node{i}"
        opened.append(name)
        return activerecord.connect(nodes[i - 1], name=name, **options)

    setup = activerecord.connect(nodes[0], name="setup")
    with setup.engine.begin() as conn:
        Counter.__table__.drop(conn, checkfirst=True)
        Counter.__table__.create(conn)
    activerecord.disconnect("setup")
    yield bind
    for name in opened:
        activerecord.disconnect(name)


def _stored(db: Database) -> dict[str, tuple[int, int]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(Counter.__table__.c.name, Counter.__table__.c.id,
                                      Counter.__table__.c.n)).all()
    return {name: (key, n) for name, key, n in rows}


def _raw(url: str) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    """A plain driver connection: SQLAlchemy's first-connect queries would meet 1047 on a
    node out of the primary component."""
    parsed = sa.make_url(url)
    return pymysql.connect(host=parsed.host, port=parsed.port or 3306,
                           user=parsed.username or "root", connect_timeout=2)


def _global(url: str, setting: str, value: object) -> None:
    conn = _raw(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SET GLOBAL {setting} = %s", (value,))
    finally:
        conn.close()


# -- the cluster -------------------------------------------------------------------------------
def test_every_node_numbers_keys_its_own_way(cluster):
    steps = set()
    for i in (1, 2, 3):
        db = cluster(i)
        with db.engine.connect() as conn:
            steps.add(conn.exec_driver_sql(
                "SELECT @@auto_increment_increment, @@auto_increment_offset").one())
    assert steps == {(3, 1), (3, 2), (3, 3)}


def test_keys_exact_on_every_node(cluster):
    """Keys handed back are the stored ones on each node (1, 4, 7, ... / 2, 5, 8, ...).
    Depends on the insert strategies proving their range per call (the keys work)."""
    for i in (1, 2, 3):
        model = _on(cluster(i).name)
        records = [model(name=f"b{i}-{k}") for k in range(250)]
        model.batch_insert(records)
        made = model.batch_insert_from_dicts([{"name": f"d{i}-{k}"} for k in range(40)])
        one = model(name=f"s{i}")
        one.save()
        model.load_csv(io.StringIO("name\n" + "".join(f"c{i}-{k}\n" for k in range(30))))
        stored = _stored(cluster(i))
        for record in [*records, *made, one]:
            assert stored[record.name][0] == record.id
        assert all(key % 3 == i % 3 for key, _ in stored.values() if key % 3 == i % 3)
    assert len(_stored(cluster(1))) == 3 * (250 + 40 + 1 + 30)


# -- conflicts ---------------------------------------------------------------------------------
def _hammer(models: list[type[Counter]], rounds: int) -> list[BaseException]:
    """Each model's thread adds 1 to every counter ``rounds`` times (one statement per
    round, its own transaction); returns the errors raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(models))

    def work(model: type[Counter]) -> None:
        start.wait()
        for _ in range(rounds):
            try:
                model.query().where("n >= ?", 0).update({"n": col("n") + 1})
            except Exception as exc:  # noqa: BLE001 - collected for the test
                errors.append(exc)
                return

    threads = [threading.Thread(target=work, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


def test_conflicts_through_two_nodes_are_retried_with_connect_retries(cluster):
    cluster(1, retries=30)
    cluster(2, retries=30)
    one, two = _on("node1"), _on("node2")
    one.batch_insert([one(name=f"c{k}") for k in range(20)])
    rounds = 60
    assert _hammer([one, two], rounds) == []
    assert {n for _, n in _stored(cluster(3, "check")).values()} == {2 * rounds}


def test_conflicts_through_two_nodes_fail_without_retries(cluster):
    cluster(1)
    cluster(2)
    one, two = _on("node1"), _on("node2")
    one.batch_insert([one(name=f"c{k}") for k in range(20)])
    errors: list[BaseException] = []
    deadline = time.monotonic() + 60
    while not errors and time.monotonic() < deadline:
        errors = _hammer([one, two], 100)
    assert errors and all(isinstance(e, TransactionConflictError) for e in errors), errors


def test_batch_update_and_save_retried_on_conflict(cluster):
    cluster(1, retries=30)
    cluster(2, retries=30)
    one, two = _on("node1"), _on("node2")
    rows = [one(name=f"c{k}") for k in range(10)]
    one.batch_insert(rows)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(model: type[Counter], tag: int) -> None:
        records = model.query().order_by("id").all()
        start.wait()
        try:
            for k in range(40):
                for r in records:
                    r.n = tag * 1000 + k
                model.batch_update(records)
                records[0].n = -k
                records[0].save()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(m, t)) for t, m in ((1, one), (2, two))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    # Every row holds one of the two writers' last values (whole statements, no mixture).
    final = _stored(cluster(3, "check"))
    assert final["c0"][1] == -39
    assert {n for name, (_, n) in final.items() if name != "c0"} <= {1039, 2039}


def test_no_warning_when_a_conflict_lands_on_release_savepoint(cluster):
    db = cluster(2)
    other = sa.create_engine(URLS[0])
    model = _on(db.name)
    row = model(name="x")
    row.save()
    try:
        # Recorded, not raised: raised inside the library's own cleanup it would be caught
        # there and go unseen.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(TransactionConflictError):
                with Transaction(db):
                    with Transaction(db):
                        with Transaction(db):
                            row.n = 1
                            row.save()
                            # Node 1 commits a write of the same row; node 2 applies it and
                            # aborts this transaction: its next statement, RELEASE
                            # SAVEPOINT, fails with a deadlock.
                            with other.begin() as conn:
                                conn.execute(sa.text(
                                    "UPDATE galera_counters SET n = 100 WHERE id = :id"
                                ), {"id": row.id})
                            _wait_for(lambda: _stored(db)["x"][1] == 100)
    finally:
        other.dispose()
    assert [str(w.message) for w in caught] == []
    assert _stored(db)["x"][1] == 100 and row.n == 1 and row.changed_fields == {"n"}


def test_a_caught_release_conflict_does_not_commit_the_rest(cluster):
    db = cluster(2)
    other = sa.create_engine(URLS[0])
    model = _on(db.name)
    row = model(name="x")
    row.save()
    try:
        with pytest.raises(TransactionConflictError, match="cannot commit"):
            with Transaction(db):
                model(name="before").save()
                try:
                    with Transaction(db):
                        row.n = 1
                        row.save()
                        with other.begin() as conn:
                            conn.execute(sa.text(
                                "UPDATE galera_counters SET n = 100 WHERE id = :id"
                            ), {"id": row.id})
                        _wait_for(lambda: _stored(db)["x"][1] == 100)
                except TransactionConflictError:
                    pass  # the application carries on: the transaction must not commit
    finally:
        other.dispose()
    assert set(_stored(db)) == {"x"}


def _wait_for(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- reads and node state ---------------------------------------------------------------------
def test_causal_reads_see_the_other_nodes_commit(cluster):
    cluster(1)
    reader = cluster(2, causal_reads=True)
    one, two = _on("node1"), _on("node2")
    with reader.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT @@wsrep_sync_wait").scalar_one() == 1
    for k in range(50):
        one(name=f"r{k}").save()
        assert two.query().where({"name": f"r{k}"}).count() == 1  # never behind node 1


def test_causal_reads_off_by_default(cluster):
    with cluster(2).engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT @@wsrep_sync_wait").scalar_one() == 0


def _isolate(url: str, on: bool) -> None:
    _global(url, "wsrep_provider_options", f"gmcast.isolate={1 if on else 0}")


def _state(url: str) -> str:
    conn = _raw(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW STATUS LIKE 'wsrep_cluster_status'")
            return str(cursor.fetchone()[1])
    finally:
        conn.close()


def _port(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT @@port").scalar_one())


def test_losing_a_node(cluster, nodes):
    """Node 3 cut off from the others (non-primary): straight to it, a statement is a
    DatabaseConnectionError (1047); through a host list it is skipped, and so is a host
    that is down."""

    def hostport(url: str) -> str:
        parsed = sa.make_url(url)
        return f"{parsed.host}:{parsed.port}"

    down = "127.0.0.1:3319"  # nothing listens there
    direct = _on(cluster(3).name)
    db = cluster(3, "multi", hosts=[down, hostport(nodes[2]), hostport(nodes[0])], retries=3)
    model = _on(db.name)
    model(name="while-3-is-up").save()
    assert direct.query().count() == 1
    # Which node a connection reached is told by its port: Galera hands out
    # auto_increment_offset by membership order, not by node number.
    assert _port(db) == sa.make_url(nodes[2]).port
    _isolate(nodes[2], True)
    try:
        _wait_for(lambda: _state(nodes[2]) == "non-Primary", 30)
        with pytest.raises(DatabaseConnectionError, match="1047"):
            direct.query().count()
        # The pooled connection to node 3 is refused once (1047): retried on a new
        # connection, which skips the closed port and node 3, and lands on node 1.
        model(name="while-3-is-out").save()
        assert model.query().count() == 2
        assert _port(db) == sa.make_url(nodes[0]).port
    finally:
        _isolate(nodes[2], False)
        _wait_for(lambda: _probe(nodes[2]) is None, 60)
    # The same as a comma list in the URL.
    url = nodes[0].replace(hostport(nodes[0]), f"{down},{hostport(nodes[1])}")
    from_url = cluster(2, "listed-in-url")
    activerecord.disconnect(from_url.name)
    from_url = activerecord.connect(url, name="listed-in-url")
    assert _port(from_url) == sa.make_url(nodes[1]).port


# -- write-set limits ---------------------------------------------------------------------------
@pytest.fixture
def ws_limit(nodes: list[str]) -> Iterator[Callable[[str, int], None]]:
    changed: list[tuple[str, object]] = []

    def set_limit(name: str, value: int) -> None:
        with sa.create_engine(nodes[0]).connect() as conn:
            changed.append((name, conn.exec_driver_sql(f"SELECT @@{name}").scalar_one()))
        _global(nodes[0], name, value)

    yield set_limit
    for name, value in reversed(changed):
        _global(nodes[0], name, value)


def test_a_batch_over_the_row_limit_is_a_typed_error_and_commit_every_gets_under_it(
    cluster, ws_limit
):
    db = cluster(1)
    model = _on(db.name)
    ws_limit("wsrep_max_ws_rows", 500)
    records = [model(name=f"w{k}") for k in range(1200)]
    with pytest.raises(TransactionTooLargeError, match="wsrep_max_ws_rows.*commit_every") as info:
        model.batch_insert(records)
    assert info.value.limit == "wsrep_max_ws_rows"
    assert _stored(db) == {} and all(r.id is None for r in records)
    assert model.batch_insert(records, commit_every=400) == 1200
    assert {name: key for name, (key, _) in _stored(db).items()} == {r.name: r.id for r in records}


def test_commit_every_reports_what_is_committed_when_a_slice_is_too_large(cluster, ws_limit):
    db = cluster(1)
    model = _on(db.name)
    ws_limit("wsrep_max_ws_rows", 500)
    text = "name\n" + "".join(f"w{k}\n" for k in range(1500))
    with pytest.raises(PartialWriteError) as info:
        model.load_csv(io.StringIO(text), commit_every=600)  # the first slice is too large
    assert (info.value.committed, info.value.resume_at, info.value.resume_line) == (0, 0, 2)
    assert isinstance(info.value.__cause__, TransactionTooLargeError)
    assert model.load_csv(io.StringIO(text), commit_every=450) == 1500
    assert len(_stored(db)) == 1500


def test_a_transaction_over_the_size_limit_streams_with_fragment_rows(cluster, ws_limit):
    db = cluster(1)
    model = _on(db.name)
    ws_limit("wsrep_max_ws_size", 64 * 1024)
    records = [model(name=f"{k:06d}" + "x" * 90) for k in range(3000)]
    with pytest.raises(TransactionTooLargeError, match="fragment_rows") as info:
        model.batch_insert(records, batch_size=200)
    assert info.value.limit == "wsrep_max_ws_size" and _stored(db) == {}
    # A fragment ends between statements: each statement (a chunk here) must fit on its own.
    with Transaction(db, fragment_rows=200):
        model.batch_insert(records, batch_size=200)
    assert len(_stored(db)) == 3000
    with db.engine.connect() as conn:  # the pooled connection streams no more
        assert conn.exec_driver_sql("SELECT @@wsrep_trx_fragment_size").scalar_one() == 0


def test_fragment_rows_is_refused_off_galera():
    db = activerecord.connect("sqlite://", name="not-galera")
    try:
        with pytest.raises(activerecord.ConfigurationError, match="no Galera node"):
            with Transaction(db, fragment_rows=100):
                pass
    finally:
        activerecord.disconnect("not-galera")
