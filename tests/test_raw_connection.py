"""get_connection(): raw DB-API cursors that join the ambient Transaction or autocommit alone."""

from __future__ import annotations

import gc
from typing import Annotated

import pytest
import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col, ConfigurationError, DatabaseError
from activerecord.backend import RawConnection, get_connection
from activerecord.backend.transaction import Transaction
from activerecord.errors import ForeignKeyViolation

from .conftest import backend_url, raw_count
from .models import User


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

#: Raw SQL uses the driver's placeholder style.
INSERT_PARENT = {
    "sqlite": "INSERT INTO raw_parents (id, name) VALUES (?, ?)",
    "postgresql": "INSERT INTO raw_parents (id, name) VALUES (%s, %s)",
    "mysql": "INSERT INTO raw_parents (id, name) VALUES (%s, %s)",
}


class RawParent(Model):
    __table_name__ = "raw_parents"

    id: Annotated[int, Col(primary_key=True, autoincrement=False)]
    name: Annotated[str, Field(max_length=50)]


class RawChild(Model):
    __table_name__ = "raw_children"

    id: int | None = None
    parent_id: Annotated[int, Col(foreign_key="raw_parents.id")]


def insert_parent(conn: RawConnection, backend: str, pk: int) -> None:
    with conn.cursor() as cursor:
        cursor.execute(INSERT_PARENT[backend], (pk, "raw"))


def test_cursor_is_a_context_manager_everywhere(db):
    with get_connection() as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert tuple(cursor.fetchone()) == (1,)
        with pytest.raises(db.engine.dialect.loaded_dbapi.Error):  # closed on leaving
            cursor.execute("SELECT 1")


def test_outside_a_transaction_it_goes_back_to_the_pool(db):
    pool = db.engine.pool
    before = pool.checkedout()

    conn = get_connection()
    assert pool.checkedout() == before + 1 and not conn.in_transaction
    conn.close()
    assert pool.checkedout() == before and conn.closed
    conn.close()  # twice is fine
    with pytest.raises(ConfigurationError, match="closed"):
        conn.cursor()

    with get_connection() as conn:
        assert pool.checkedout() == before + 1
    assert pool.checkedout() == before

    conn = get_connection()
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")
    del conn, cursor
    gc.collect()
    assert pool.checkedout() == before


def test_a_cursor_keeps_its_connection_out_of_the_pool(db):
    before = db.engine.pool.checkedout()
    cursor = get_connection().cursor()  # the connection object itself is dropped at once
    assert db.engine.pool.checkedout() == before + 1
    cursor.execute("SELECT 1")
    cursor.close()
    del cursor
    gc.collect()
    assert db.engine.pool.checkedout() == before


def test_outside_a_transaction_each_statement_commits(backend, db, fresh):
    fresh(RawParent, RawChild)
    with get_connection() as conn:
        insert_parent(conn, backend, 1)
        assert raw_count(db, "raw_parents") == 1  # visible to another connection at once


def test_a_returned_connection_is_transactional_again(backend, db, fresh):
    fresh(RawParent, RawChild)
    activerecord.connect(backend_url(backend), pool_size=1, max_overflow=0)
    with get_connection() as conn:
        raw = conn.dbapi_connection
    with pytest.raises(RuntimeError), Transaction() as tx:
        assert tx.connection.connection.dbapi_connection is raw  # the very same connection
        RawParent(id=1, name="rolled back").save()
        raise RuntimeError
    assert RawParent.query().count() == 0


def test_inside_a_transaction_raw_sql_joins_it(backend, db, fresh):
    fresh(RawParent, RawChild)
    with pytest.raises(RuntimeError):
        with Transaction() as tx:
            conn = get_connection()
            assert conn.in_transaction
            assert conn.dbapi_connection is tx.connection.connection.dbapi_connection
            insert_parent(conn, backend, 1)
            RawParent(id=2, name="model").save()
            conn.commit()  # the Transaction decides: this does nothing
            conn.close()  # nor does this
            with pytest.raises(ConfigurationError, match="raise an exception"):
                conn.rollback()
            assert raw_count(db, "raw_parents") == 0
            raise RuntimeError
    assert RawParent.query().count() == 0

    with Transaction():
        insert_parent(get_connection(), backend, 1)
        RawParent(id=2, name="model").save()
    assert sorted(p.id for p in RawParent.find_all()) == [1, 2]


def test_raw_sql_rolls_back_with_its_savepoint(backend, db, fresh):
    fresh(RawParent, RawChild)
    with Transaction():
        insert_parent(get_connection(), backend, 1)
        with pytest.raises(RuntimeError), Transaction():
            insert_parent(get_connection(), backend, 2)
            raise RuntimeError
    assert [p.id for p in RawParent.find_all()] == [1]


@pytest.mark.backends("postgresql")
def test_seed_trigger_example_as_written(db, fresh):
    fresh(User)
    with db.engine.begin() as setup:
        setup.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION raw_refuse_insert() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'trigger fired'; END $$ LANGUAGE plpgsql"
        )
        setup.exec_driver_sql(
            "CREATE TRIGGER raw_refuse BEFORE INSERT ON users "
            "FOR EACH ROW EXECUTE FUNCTION raw_refuse_insert()"
        )
    try:
        with pytest.raises(DatabaseError, match="trigger fired"):
            User(username="blocked", email="blocked@example.com").save()
        huge_dataset = [User(username=f"u{i}", email=f"u{i}@example.com") for i in range(50)]

        # --- the seed's example, as written ---
        conn = get_connection()
        with conn.cursor() as cursor:
            # Disable triggers (PostgreSQL example)
            cursor.execute("ALTER TABLE users DISABLE TRIGGER ALL")

            try:
                # Perform batch operation
                User.batch_insert(huge_dataset)
            finally:
                # Re-enable triggers
                cursor.execute("ALTER TABLE users ENABLE TRIGGER ALL")
        # ---
        del conn

        assert User.query().count() == 50
        assert all(u.id is not None for u in huge_dataset)
        with pytest.raises(DatabaseError, match="trigger fired"):  # triggers are back on
            User(username="blocked", email="blocked@example.com").save()
    finally:
        with db.engine.begin() as cleanup:
            cleanup.exec_driver_sql("DROP TABLE IF EXISTS users")
            cleanup.exec_driver_sql("DROP FUNCTION IF EXISTS raw_refuse_insert()")


#: Turning a table's checks off and on for one big load: PostgreSQL disables the table's
#: triggers (foreign keys are triggers there); MySQL turns foreign key checks off for the
#: session; SQLite cannot turn them off inside a transaction, but can defer them to COMMIT.
RELAX_CHECKS = {
    "postgresql": ("ALTER TABLE raw_children DISABLE TRIGGER ALL",
                   "ALTER TABLE raw_children ENABLE TRIGGER ALL"),
    "mysql": ("SET FOREIGN_KEY_CHECKS = 0", "SET FOREIGN_KEY_CHECKS = 1"),
    "sqlite": ("PRAGMA defer_foreign_keys = ON", "PRAGMA defer_foreign_keys = OFF"),
}


def test_relaxing_checks_for_a_batch_inside_a_transaction(backend, db, fresh):
    fresh(RawParent, RawChild)
    children = [RawChild(parent_id=i % 10 + 1) for i in range(100)]
    with pytest.raises(ForeignKeyViolation):  # children before parents: refused normally
        RawChild.batch_insert(children)

    disable, enable = RELAX_CHECKS[backend]
    with Transaction():
        conn = get_connection()  # the transaction's connection: same session, same fate
        with conn.cursor() as cursor:
            cursor.execute(disable)
            try:
                RawChild.batch_insert(children)
            finally:
                cursor.execute(enable)
        RawParent.batch_insert([RawParent(id=i, name=f"p{i}") for i in range(1, 11)])
    assert RawChild.query().count() == 100
    with pytest.raises(ForeignKeyViolation):  # checks are on again
        RawChild(parent_id=999).save()


def test_get_connection_by_name(backend, db):
    with get_connection("default") as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 2")
            assert tuple(cursor.fetchone()) == (2,)
    with pytest.raises(activerecord.NotConnectedError):
        get_connection("no-such-database")
