"""aiomysql's packet reads from the stream's buffer (backend/aiomysql_packets.py), MySQL/MariaDB.

The buffered read must hand aiomysql exactly the packets its own read would: the same rows
and values back (small rows, rows larger than one socket read, NULLs, non-ASCII text), and
an error packet still an error, typed as the sync API's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import ActiveRecord, ActiveRecordError
from activerecord.backend.aiomysql_packets import fast_packet_reads
from activerecord.backend.bridge import driver_of
from activerecord.backend.database import Database

from .conftest import needs

pytestmark = [needs("greenlet", "async"), needs("aiomysql", "async")]


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Packet(Model):
    __table_name__ = "aiomysql_packets"

    id: int | None = None
    name: str | None = None
    body: Annotated[str, activerecord.Col(type=sa.Text(length=2**24))] = ""
    at: dt.datetime | None = None


@pytest.fixture
def mysql(backend: str, adb: Database) -> Iterator[Database]:
    if backend != "mysql":
        pytest.skip("aiomysql reads MySQL/MariaDB only")
    with adb.engine.begin() as conn:
        Model.__metadata__.drop_all(conn)
        Model.__metadata__.create_all(conn)
    yield adb
    with adb.engine.begin() as conn:
        Model.__metadata__.drop_all(conn)


def _rows(n: int) -> list[Packet]:
    stamp = dt.datetime(2024, 5, 1, 12, 30, 15, 123456)
    return [
        Packet(
            name=None if i % 7 == 0 else f"name {i} \u00e9\u2603",
            # Every 500th body is longer than one socket read (256 KB): the buffered read
            # waits for it through aiomysql's own.
            body="x" * 300_000 if i % 500 == 1 else f"b{i}" * (i % 40),
            at=None if i % 5 == 0 else stamp + dt.timedelta(seconds=i),
        )
        for i in range(3000)
    ]


def _dumped(records: list[Any]) -> list[dict[str, Any]]:
    return [r.model_dump() for r in records]


def test_aall_reads_what_all_reads(mysql: Database) -> None:
    Packet.batch_insert(_rows(3000))

    async def main() -> tuple[bool, list[Packet]]:
        async with mysql.async_engine.connect() as conn:
            raw = await conn.get_raw_connection()
            installed = "_read_packet" in vars(driver_of(raw.dbapi_connection))
        return installed, await Packet.query().order_by("id").aall()

    installed, records = asyncio.run(main())
    assert installed  # the engine's connections read through the buffer
    assert _dumped(records) == _dumped(Packet.query().order_by("id").all())
    assert len(records) == 3000 and records[1].body == "x" * 300_000


def test_a_query_error_is_the_sync_apis_error(mysql: Database) -> None:
    query = Packet.query().where("no_such_column = 1")
    with pytest.raises(ActiveRecordError) as sync_error:
        query.all()

    async def main() -> None:
        Packet.batch_insert(_rows(10))
        await Packet.query().aall()  # a connection that has read rows through the buffer
        await query.aall()

    with pytest.raises(ActiveRecordError) as async_error:
        asyncio.run(main())
    assert type(async_error.value) is type(sync_error.value)
    assert "no_such_column" in str(async_error.value)


def test_other_connections_are_left_alone() -> None:
    class Elsewhere:
        _reader = None
        _next_seq_id = 0
        _encoding = "utf8"
        _result = None

        async def _read_packet(self, packet_type: Any = None) -> Any:
            return packet_type

    other = Elsewhere()
    assert not fast_packet_reads(other)
    assert "_read_packet" not in vars(other)
