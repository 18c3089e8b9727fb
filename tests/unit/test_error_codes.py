"""The driver-error table: each driver's exception (built here, no server) becomes the error
of our tree its code or message stands for, keeping the driver's exception as ``.orig``."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from activerecord import (
    DatabaseConnectionError,
    DataError,
    ForeignKeyViolation,
    NotNullViolation,
    TransactionConflictError,
    UniqueViolation,
)
from activerecord.backend.errors import is_conflict, translate_error


def _pymysql(kind: str, code: int, message: str) -> BaseException:
    err = pytest.importorskip("pymysql", reason="needs pymysql: pip install 'activerecord[mysql]'")
    error: BaseException = getattr(err.err, kind)(code, message)
    return error


def _psycopg(kind: str) -> BaseException:
    psycopg = pytest.importorskip(
        "psycopg", reason="needs psycopg: pip install 'activerecord[postgresql]'"
    )
    error: BaseException = getattr(psycopg.errors, kind)("from the server")
    return error


CASES: list[tuple[str, Any, type[Exception]]] = [
    ("sqlite unique", lambda: sqlite3.IntegrityError("UNIQUE constraint failed: t.x"),
     UniqueViolation),
    ("sqlite foreign key", lambda: sqlite3.IntegrityError("FOREIGN KEY constraint failed"),
     ForeignKeyViolation),
    ("sqlite not null", lambda: sqlite3.IntegrityError("NOT NULL constraint failed: t.a"),
     NotNullViolation),
    ("sqlite locked", lambda: sqlite3.OperationalError("database is locked"),
     TransactionConflictError),
    ("mysql 1062", lambda: _pymysql("IntegrityError", 1062, "Duplicate entry 'a' for key 'x'"),
     UniqueViolation),
    ("mysql 1452", lambda: _pymysql("IntegrityError", 1452, "Cannot add or update a child row"),
     ForeignKeyViolation),
    ("mysql 1048", lambda: _pymysql("IntegrityError", 1048, "Column 'a' cannot be null"),
     NotNullViolation),
    ("mysql 1213", lambda: _pymysql("OperationalError", 1213, "Deadlock found"),
     TransactionConflictError),
    ("mysql 1205", lambda: _pymysql("OperationalError", 1205, "Lock wait timeout exceeded"),
     TransactionConflictError),
    ("mysql 1406", lambda: _pymysql("DataError", 1406, "Data too long for column 'a'"),
     DataError),
    ("mysql 2013", lambda: _pymysql("OperationalError", 2013, "Lost connection"),
     DatabaseConnectionError),
    ("postgresql 23505", lambda: _psycopg("UniqueViolation"), UniqueViolation),
    ("postgresql 23503", lambda: _psycopg("ForeignKeyViolation"), ForeignKeyViolation),
    ("postgresql 23502", lambda: _psycopg("NotNullViolation"), NotNullViolation),
    ("postgresql 40001", lambda: _psycopg("SerializationFailure"), TransactionConflictError),
    ("postgresql 40P01", lambda: _psycopg("DeadlockDetected"), TransactionConflictError),
    ("postgresql 55P03", lambda: _psycopg("LockNotAvailable"), TransactionConflictError),
    ("postgresql 22003", lambda: _psycopg("NumericValueOutOfRange"), DataError),
    ("postgresql 22001", lambda: _psycopg("StringDataRightTruncation"), DataError),
]


@pytest.mark.parametrize(("make", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_driver_error_becomes_ours(make, expected):
    orig = make()
    error = translate_error(orig, record_index=2)
    assert type(error) is expected
    assert error.orig is orig
    assert error.record_index == 2
    # Retried exactly when it is a conflict (Transaction(retries=N), connect(retries=N)).
    assert is_conflict(orig) is (expected is TransactionConflictError)
