"""MySQL/MariaDB reads through backend/pymysql_rows.py: every column type and hostile value
read column by column equals what PyMySQL's own ``fetchall()`` returns (value and type), in
any chunking; ``all()`` and ``to_dicts()`` read back exactly what was stored; an error the
server sends in the middle of a result is our typed error and the connection goes on."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Annotated, Any

import pymysql
import pytest
import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import ActiveRecord
from activerecord.backend.pymysql_rows import read_unbuffered
from activerecord.errors import DatabaseError

pytestmark = pytest.mark.backends("mysql")

TABLE = "pymysql_rows_types"
COLUMNS = (
    "id INT PRIMARY KEY, i INT, big BIGINT, tiny TINYINT, f DOUBLE, g FLOAT, d DECIMAL(30,6),"
    " s VARCHAR(300) CHARACTER SET utf8mb4, t MEDIUMTEXT CHARACTER SET utf8mb4, b BLOB,"
    " vb VARBINARY(300), dt0 DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts TIMESTAMP(6) NULL,"
    " day DATE, tm TIME(6), yr YEAR, bits BIT(12), doc JSON, e ENUM('a','b'), st SET('x','y')"
)
HOSTILE = ["", " ", "\\", "a\tb\nc\rd\0e", "ünïcödé ß", "emoji 🎉👩‍👩‍👧", "'\"", "x" * 300]


def _row(k: int) -> tuple[Any, ...]:
    text = HOSTILE[k % len(HOSTILE)]
    null = k % 11 == 5  # a row of NULLs (but the key) now and then
    values = (
        k - 500, (k - 500) * 2**40, k % 256 - 128, k / 7 - 100, k / 3, decimal.Decimal(k) / 64,
        text, text * (1 + k % 300), bytes([255 - k % 256, 254, 0]) * (k % 120), bytes([254]) * 9,
        # zero dates and fractions of every width
        "0000-00-00 00:00:00" if k % 13 == 0 else dt.datetime(2024, 2, 29, 23, 59, 58),
        dt.datetime(1000, 1, 1, 0, 0, 0, (k % 1000) * 1000),
        dt.datetime(9999, 12, 31, 23, 59, 59, k),
        dt.datetime(2038, 1, 1, 0, 0, 0, 999_999 - k),
        "0000-00-00" if k % 17 == 0 else dt.date(1, 1, 1) + dt.timedelta(days=k * 997),
        dt.timedelta(hours=-838 if k % 2 else 838, microseconds=k), 1901 + k % 255, k % 4096,
        f'{{"k": {k}, "s": "\\u00fc\\n"}}', "ab"[k % 2], "x,y" if k % 3 else "",
    )
    return (k, *([None] * len(values) if null else values))


@pytest.fixture
def typed_table(db: Any) -> Any:
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
        conn.exec_driver_sql(f"CREATE TABLE {TABLE} ({COLUMNS})")
        raw = conn.connection.dbapi_connection
        cursor = raw.cursor()
        cursor.execute("SET SESSION sql_mode = ''")  # this session stores the zero dates
        marks = ", ".join(["%s"] * len(_row(0)))
        insert = f"INSERT INTO {TABLE} VALUES ({marks})"  # noqa: S608 - our own table name
        cursor.executemany(insert, [_row(k) for k in range(600)])
        cursor.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
    yield db
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")


def _driver_rows(db: Any, sql: str) -> list[tuple[Any, ...]]:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        raw.close()


@pytest.mark.parametrize("limit", [None, 1, 7, 250, 599, 600, 601])
def test_columns_equal_pymysql_fetchall_in_value_and_type(typed_table, limit):
    sql = f"SELECT * FROM {TABLE} ORDER BY id"  # noqa: S608 - our own table name
    expected = _driver_rows(typed_table, sql)
    assert len(expected) == 600
    raw = typed_table.engine.raw_connection()
    try:
        ss = raw.dbapi_connection.cursor(pymysql.cursors.SSCursor)
        ss.execute(sql)
        got: list[tuple[Any, ...]] = []
        ended = False
        while not ended:
            read = read_unbuffered(ss, limit)
            assert read is not None
            columns, ended = read
            chunk = list(zip(*columns))
            assert limit is None or len(chunk) <= limit
            if not ended:
                assert len(chunk) == limit
            got.extend(chunk)
        assert read_unbuffered(ss, limit) == ([[] for _ in range(len(_row(0)))], True)
        ss.close()
        # the connection goes on
        after = raw.cursor()
        after.execute("SELECT 42")
        assert after.fetchone() == (42,)
    finally:
        raw.close()
    assert got == expected
    assert [[type(v) for v in row] for row in got] == [[type(v) for v in row] for row in expected]
    texts = {type(v) for row in got for v in row[10:15]}
    assert str in texts and dt.datetime in texts  # the zero dates stay PyMySQL's strings


def test_a_buffered_or_foreign_cursor_is_left_to_the_driver(typed_table):
    raw = typed_table.engine.raw_connection()
    try:
        cursor = raw.dbapi_connection.cursor()  # buffered: the rows are read already
        cursor.execute(f"SELECT id FROM {TABLE}")  # noqa: S608 - our own table name
        assert read_unbuffered(cursor, None) is None
        assert len(cursor.fetchall()) == 600
    finally:
        raw.close()
    assert read_unbuffered(object(), None) is None


class Base(ActiveRecord):
    __abstract__ = True
    __metadata__ = sa.MetaData()


class Reading(Base):
    __table_name__ = "pymysql_rows_reading"

    id: int | None = None
    name: Annotated[str, Field(max_length=310)]
    note: str | None = None
    n: int = 0
    at: dt.datetime | None = None
    day: dt.date | None = None
    amount: Annotated[decimal.Decimal, Field(max_digits=20, decimal_places=4)] | None = None
    blob: bytes | None = None


def _readings(count: int) -> list[Reading]:
    return [
        Reading(
            name=HOSTILE[k % len(HOSTILE)] + str(k),
            note=None if k % 3 == 0 else "n" * (k % 70_000 if k % 50 == 1 else k % 400),
            n=k * 2**33 - 5,
            at=None if k % 4 == 0 else dt.datetime(2024, 1, 1, 12, 0, 0, k % 2 * 123_456),
            day=dt.date(2000, 1, 1) + dt.timedelta(days=k),
            amount=None if k % 5 == 0 else decimal.Decimal(k) / 16,
            blob=bytes(range(k % 256)) * (k % 3),
        )
        for k in range(count)
    ]


def test_all_and_to_dicts_read_back_what_was_stored(db, fresh):
    fresh(Reading)
    made = _readings(3_000)
    Reading.batch_insert(made)
    expected = sorted((r.model_dump() for r in made), key=lambda d: d["id"])
    records = Reading.query().order_by("id").all()
    assert [r.model_dump() for r in records] == expected
    assert not any(r.is_new_record for r in records)
    for size in (1, 7, 2_999, 3_000, 10_000):
        assert Reading.query().order_by("id").to_dicts(chunk_size=size) == expected
    with activerecord.Transaction():  # the ambient connection: read, then used again
        assert [r.model_dump() for r in Reading.query().order_by("id").all()] == expected
        assert Reading.query().count() == 3_000
    assert Reading.query().where("id < 0").all() == []
    frame = Reading.query().order_by("id").to_pandas(chunk_size=999)
    assert frame["name"].tolist() == [d["name"] for d in expected]


def test_a_value_the_model_refuses_still_raises(db, fresh):
    fresh(Reading)
    Reading.batch_insert(_readings(100))
    with db.engine.begin() as conn:  # a name longer than the field allows
        conn.exec_driver_sql(
            f"ALTER TABLE {Reading.__table_name__} MODIFY name VARCHAR(400)"
        )
        conn.exec_driver_sql(
            f"UPDATE {Reading.__table_name__} SET name = REPEAT('z', 311)"  # noqa: S608
            " ORDER BY id LIMIT 1"
        )
    with pytest.raises(activerecord.errors.ValidationError, match="name"):
        Reading.query().all()


@pytest.mark.parametrize("ambient", [False, True])
def test_an_error_in_the_middle_of_a_result_is_typed_and_the_connection_goes_on(
    db, fresh, ambient
):
    fresh(Reading)
    Reading.batch_insert(_readings(3_000))
    middle = sorted(r.id for r in Reading.query().all())[2_000]
    # The subquery has a second row only past ``middle``: the server sends rows, then error
    # 1242 ("Subquery returns more than 1 row").
    failing = Reading.query().where(
        f"(SELECT 1 UNION SELECT 2 FROM DUAL WHERE {Reading.__table_name__}.id > ?) = 1",  # noqa: S608
        middle,
    ).order_by("id")

    def check() -> None:
        with pytest.raises(DatabaseError, match="more than 1 row"):
            failing.all()
        with pytest.raises(DatabaseError, match="more than 1 row"):
            failing.to_dicts(chunk_size=100)
        assert Reading.query().count() == 3_000
        assert len(Reading.query().all()) == 3_000

    if ambient:
        with activerecord.Transaction():
            check()
    else:
        check()
