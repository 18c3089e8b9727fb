"""Faults the way production meets them: connections killed mid-batch, every pooled connection
dropped (what a server restart looks like to the client), lock timeouts.

Server-side kills need a server: these tests run on PostgreSQL and MySQL/MariaDB.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import DatabaseConnectionError, DatabaseError, Transaction
from activerecord.errors import TransactionConflictError

from .models import User

pytestmark = pytest.mark.backends("postgresql", "mysql")


def kill_other_connections(db: Any) -> int:
    """Kill every other session on this database from a fresh, unpooled connection."""
    engine = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    killed = 0
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            killed = len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
        else:
            ids = conn.execute(
                sa.text(
                    "SELECT id FROM information_schema.processlist "
                    "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
                )
            ).scalars().all()
            for pid in ids:
                try:
                    conn.execute(sa.text(f"KILL {int(pid)}"))
                    killed += 1
                except sa.exc.DBAPIError:
                    pass  # the session ended on its own meanwhile
    engine.dispose()
    return killed


def users(n: int, start: int = 0) -> list[User]:
    return [User(username=f"u{i}", email=f"u{i}@example.com") for i in range(start, start + n)]


def test_connection_killed_mid_batch_insert(fresh, db, backend):
    fresh(User)
    calls: list[int] = []

    def after_chunk(done: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            assert kill_other_connections(db) >= 1

    with pytest.raises(DatabaseError) as info:
        User.batch_insert(users(1000), batch_size=100, progress=after_chunk)
    assert isinstance(info.value, DatabaseConnectionError), repr(info.value)
    assert info.value.orig is not None
    if backend == "postgresql":  # the COPY streaming the chunks learns of it when it ends
        assert len(calls) >= 2
    else:
        assert len(calls) == 2  # it stopped at the first statement after the kill
    # nothing of the batch was committed, and the engine recovers on the next call
    assert User.query().count() == 0
    assert User.batch_insert(users(50)) == 50
    assert User.query().count() == 50


def test_connection_killed_inside_transaction(fresh, db, backend):
    fresh(User)
    with pytest.raises(DatabaseConnectionError):
        with Transaction():
            User.batch_insert(users(10))
            User.query().where({"username": "u1"}).update({"status": "x"})
            kill_other_connections(db)
            User.query().where({"username": "u2"}).update({"status": "y"})
    assert User.query().count() == 0
    User.create(username="after", email="after@example.com")
    assert User.query().count() == 1


def test_every_pooled_connection_dropped_between_calls(fresh, db, backend):
    """A server restart leaves the pool full of dead connections: pre-ping replaces them."""
    fresh(User)
    # Fill the pool with several idle connections.
    held = [db.engine.connect() for _ in range(3)]
    for conn in held:
        conn.close()
    assert kill_other_connections(db) >= 1
    assert User.batch_insert(users(5)) == 5
    assert User.query().count() == 5
    assert User.query().where({"username": "u1"}).update({"login_count": 3}) == 1


def _lock_timeout_sql(backend: str) -> str:
    return (
        "SET LOCAL lock_timeout = '200ms'"
        if backend == "postgresql"
        else "SET SESSION innodb_lock_wait_timeout = 1"
    )


def test_lock_timeout_is_typed_and_retry_succeeds(fresh, db, backend):
    fresh(User)
    User.batch_insert(users(2))
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with db.engine.connect() as conn:
            with conn.begin():
                conn.execute(
                    sa.text("UPDATE users SET login_count = 1 WHERE username = 'u0'")
                )
                locked.set()
                release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with pytest.raises(TransactionConflictError) as info:
            with Transaction():
                activerecord.get_connection().cursor().execute(_lock_timeout_sql(backend))
                User.query().where({"username": "u0"}).update({"login_count": 2})
        assert info.value.orig is not None
        attempts: list[int] = []

        @Transaction(retries=5, backoff=0.2)
        def bump() -> int:
            attempts.append(1)
            if len(attempts) == 2:
                release.set()  # the other transaction finishes while we back off
            with activerecord.get_connection().cursor() as cursor:
                cursor.execute(_lock_timeout_sql(backend))
            return User.query().where({"username": "u0"}).update({"login_count": 2})

        assert bump() == 1
        assert len(attempts) >= 2
    finally:
        release.set()
        holder.join(10)
    assert User.find_one({"username": "u0"}).login_count == 2


def test_connection_killed_mid_batch_update(fresh, db, backend):
    """batch_update has no progress callback: an engine event kills the session before its
    second UPDATE statement runs (the event only observes; the kill is a real server one)."""
    fresh(User)
    records = users(30)
    User.batch_insert(records)
    for record in records:
        record.login_count = 7
    updates: list[str] = []

    def before_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)
            if len(updates) == 2:
                assert kill_other_connections(db) >= 1

    sa.event.listen(db.engine, "before_cursor_execute", before_execute)
    try:
        with pytest.raises(DatabaseError) as info:
            User.batch_update(records, ["login_count"], batch_size=10)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before_execute)
    assert isinstance(info.value, DatabaseConnectionError), repr(info.value)
    assert info.value.orig is not None
    assert len(updates) == 2  # the first chunk ran, the second met the dead connection
    # the first chunk was rolled back with the rest, and the engine recovers on the next call
    assert User.query().where({"login_count": 7}).count() == 0
    assert User.query().count() == 30
    assert User.batch_update(records, ["login_count"], batch_size=10) == 30
    assert User.query().where({"login_count": 7}).count() == 30
