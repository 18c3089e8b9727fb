"""The async twins of data loading and frames out (issue #18): ``ainsert_dataframe``,
``aload_csv``, ``aload_jsonl``, ``ato_pandas`` and ``ato_polars`` keep the guarantees of the
sync methods tested in tests/test_io.py: values stored and read back exactly, a failed load
writes nothing (also after earlier chunks were written), errors typed and naming the row or
line, the work of an ``async with Transaction()`` joined and rolled back with it.

Each test runs its coroutine with ``asyncio.run`` against the backend's URL (``adb``), which
serves both APIs; results are checked with the sync API or by counting rows directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import io
import json
import pathlib
import uuid
from collections.abc import Coroutine, Iterator
from typing import Annotated, Any, TypeVar

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, Field

from activerecord import (
    ActiveRecord,
    Col,
    FileFormatError,
    LoadValidationError,
    Transaction,
    UniqueViolation,
    UnknownColumnError,
)
from activerecord.backend.database import Database

from .conftest import needs, optional, raw_count
from .models import Status
from .test_io import EXPECTED, U1, CountingFile, pandas_frame, people_csv, polars_frame

T = TypeVar("T")

#: The async extra (CI installs it with dev): without it these tests skip, saying so.
pytestmark = [needs("greenlet", "async"), needs("aiosqlite", "async"), needs("aiomysql", "async")]

pd = optional("pandas", "dataframes")
pl = optional("polars", "dataframes")


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class AioOdd(Model):
    """tests/test_io.py's ``IoOdd`` (the columns its frames fill), on a table of its own."""

    __table_name__ = "aio_odd"

    id: int | None = None
    i: int | None = None
    f: float | None = None
    s: Annotated[str, Field(max_length=20)] | None = None
    ts: dt.datetime | None = None
    tz: AwareDatetime | None = None
    day: dt.date | None = None
    d: Annotated[decimal.Decimal, Field(max_digits=12, decimal_places=4)] | None = None
    b: bool | None = None
    u: uuid.UUID | None = None
    e: Status | None = None
    n: int | None = None
    doc: dict[str, Any] | None = None


class AioPerson(Model):
    """tests/test_io.py's ``IoPerson`` (the columns of ``people_csv``)."""

    __table_name__ = "aio_people"

    id: int | None = None
    name: Annotated[str, Field(max_length=50)]
    email: Annotated[str, Field(max_length=100), Col(unique=True)]
    age: int | None = None
    score: int = 0
    born: dt.date | None = None
    tags: list[str] | None = None


MODELS = (AioOdd, AioPerson)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def tables(adb: Database) -> Iterator[Database]:
    tables = [m.__table__ for m in MODELS]
    with adb.engine.begin() as conn:
        Model.__metadata__.drop_all(conn, tables=tables)
        Model.__metadata__.create_all(conn, tables=tables)
    yield adb


def loaded() -> list[dict[str, Any]]:
    fields = [f for f in AioOdd.__ar_info__.fields if f != "id"]
    return [{f: getattr(r, f) for f in fields} for r in AioOdd.query().order_by("id").all()]


def people(db: Database) -> int:
    return raw_count(db, "aio_people")


# -- DataFrames in ---------------------------------------------------------------------------
@needs("pandas", "dataframes")
def test_ainsert_dataframe_pandas_nulls_and_odd_types_exact(tables: Database) -> None:
    assert run(AioOdd.ainsert_dataframe(pandas_frame())) == 3
    assert loaded() == EXPECTED


@needs("polars", "dataframes")
def test_ainsert_dataframe_polars_nulls_and_odd_types_exact(tables: Database) -> None:
    assert run(AioOdd.ainsert_dataframe(polars_frame())) == 3
    assert loaded() == EXPECTED


@needs("pandas", "dataframes")
def test_ainsert_dataframe_bad_row_is_typed_names_its_label_and_writes_nothing(
    tables: Database,
) -> None:
    # The bad row is in the third chunk: the first two were written, then rolled back.
    labels = [f"r{k}" for k in range(120)]
    df = pd.DataFrame({"i": list(range(120)), "s": ["ok"] * 120}, index=labels)
    df.loc["r110", "s"] = "y" * 30
    written: list[int] = []
    with pytest.raises(LoadValidationError) as caught:
        run(AioOdd.ainsert_dataframe(df, batch_size=50, progress=written.append))
    assert written == [50, 100]
    assert caught.value.locations == {110: "r110"}
    assert "row 'r110'" in str(caught.value)
    assert raw_count(tables, "aio_odd") == 0


@needs("polars", "dataframes")
def test_ainsert_dataframe_unknown_column_is_refused_before_writing(tables: Database) -> None:
    df = pl.DataFrame({"Number": [5], "junk": ["ignored"]})
    with pytest.raises(UnknownColumnError, match="Number"):
        run(AioOdd.ainsert_dataframe(df))
    assert raw_count(tables, "aio_odd") == 0
    assert run(AioOdd.ainsert_dataframe(df, columns={"Number": "i", "junk": None})) == 1
    assert loaded()[0]["i"] == 5


@needs("pandas", "dataframes")
def test_ainsert_dataframe_joins_the_async_transaction(tables: Database) -> None:
    async def main() -> None:
        async with Transaction():
            assert await AioOdd.ainsert_dataframe(pandas_frame()) == 3
            raise KeyError("changed my mind")

    with pytest.raises(KeyError):
        run(main())
    assert raw_count(tables, "aio_odd") == 0


@needs("pandas", "dataframes")
def test_ainsert_dataframe_upsert_keeps_columns_the_frame_does_not_give(tables: Database) -> None:
    async def main() -> int:
        await AioPerson.aload_csv(io.StringIO("name,email,age\nA,a@x,40\n"))
        frame = pd.DataFrame({"email": ["a@x"], "name": ["A3"]})
        return int(await AioPerson.ainsert_dataframe(frame, upsert=["email"]))

    assert run(main()) == 1
    p = AioPerson.query().one()
    assert (p.name, p.age) == ("A3", 40)


# -- files in --------------------------------------------------------------------------------
def test_aload_csv_streams_chunk_by_chunk_with_exact_values(tables: Database) -> None:
    source = CountingFile(people_csv(500))
    taken_at: list[tuple[int, int]] = []

    async def main() -> int:
        return await AioPerson.aload_csv(
            source,
            columns={"E-mail": "email"},
            batch_size=50,
            progress=lambda done: taken_at.append((done, source.taken)),
        )

    assert run(main()) == 500 and people(tables) == 500
    assert [done for done, _ in taken_at] == list(range(50, 501, 50))
    assert taken_at[0][1] <= 53  # read lazily, as the sync loader does
    p = AioPerson.query().where({"email": "p8@example.com"}).one()
    assert (p.name, p.age, p.score, p.born) == ("Person 8", 28, 8, dt.date(2000, 1, 9))
    assert p.tags is None
    assert AioPerson.query().where({"email": "p7@example.com"}).one().age is None
    assert AioPerson.query().where({"email": "p10@example.com"}).one().name == "Person\n10"


def test_aload_csv_bad_value_names_its_line_and_writes_nothing(
    tables: Database, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(people_csv(500, bad={420: "old", 30: "-"}))
    with pytest.raises(LoadValidationError) as caught:
        run(AioPerson.aload_csv(path, columns={"E-mail": "email"}, batch_size=50))
    assert caught.value.locations == {30: 33, 420: 423}
    message = str(caught.value)
    assert "line 33: age" in message and "line 423: age" in message and str(path) in message
    assert people(tables) == 0


def test_aload_csv_malformed_line_after_the_first_chunks_writes_nothing(
    tables: Database, tmp_path: pathlib.Path
) -> None:
    lines = people_csv(300).splitlines(keepends=True)
    lines[250] = "only,three,fields\n"  # line 251 of the file
    path = tmp_path / "people.csv"
    path.write_text("".join(lines))
    with pytest.raises(FileFormatError) as caught:
        run(AioPerson.aload_csv(path, columns={"E-mail": "email"}, batch_size=50))
    assert caught.value.line == 251
    assert "line 251: expected 6 fields" in str(caught.value)
    assert people(tables) == 0


def test_aload_csv_duplicate_key_is_a_unique_violation_and_writes_nothing(
    tables: Database,
) -> None:
    with pytest.raises(UniqueViolation):
        run(AioPerson.aload_csv(io.StringIO("name,email\nA,same@x\nB,same@x\n")))
    assert people(tables) == 0


def test_aload_csv_upsert_inserts_and_updates_on_a_unique_key(tables: Database) -> None:
    async def main() -> int:
        await AioPerson.aload_csv(io.StringIO("name,email,score\nA,a@x,1\nB,b@x,2\n"))
        text = "name,email,score\nA2,a@x,10\nC,c@x,3\nC2,c@x,30\n"  # c@x twice: the last wins
        return await AioPerson.aload_csv(io.StringIO(text), upsert=["email"], batch_size=10)

    assert run(main()) == 3
    got = {p.email: (p.name, p.score) for p in AioPerson.query().all()}
    assert got == {"a@x": ("A2", 10), "b@x": ("B", 2), "c@x": ("C2", 30)}


def test_a_failed_aload_in_a_transaction_leaves_the_earlier_work(tables: Database) -> None:
    async def main() -> None:
        async with Transaction():
            await AioPerson.aload_csv(io.StringIO("name,email\nA,a@x\n"))
            with pytest.raises(UniqueViolation):  # the load's own savepoint rolls back
                await AioPerson.aload_csv(io.StringIO("name,email\nB,b@x\nC,a@x\n"))
            assert await AioPerson.query().acount() == 1

    run(main())
    assert [p.email for p in AioPerson.query().all()] == ["a@x"]


def test_aload_jsonl_loads_exact_values_and_names_bad_lines(
    tables: Database, tmp_path: pathlib.Path
) -> None:
    rows = [{"name": f"J{i}", "email": f"j{i}@x", "age": i, "born": "1999-12-31"} for i in range(5)]
    path = tmp_path / "people.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert run(AioPerson.aload_jsonl(path, batch_size=2)) == 5
    j4 = AioPerson.query().where({"email": "j4@x"}).one()
    assert (j4.name, j4.age, j4.born) == ("J4", 4, dt.date(1999, 12, 31))

    path.write_text('{"name": "A", "email": "a@x"}\n\n{"name": "B", "email": \n')
    with pytest.raises(FileFormatError, match="line 3: invalid JSON"):
        run(AioPerson.aload_jsonl(path))
    path.write_text('{"name": "A", "email": "a@x"}\n\n{"name": "B", "email": "b@x", "age": "x"}\n')
    with pytest.raises(LoadValidationError, match="line 3: age"):
        run(AioPerson.aload_jsonl(path))
    assert people(tables) == 5


def test_aload_jsonl_rolls_back_with_the_async_transaction(
    tables: Database, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "people.jsonl"
    path.write_text('{"name": "A", "email": "a@x"}\n{"name": "B", "email": "b@x"}\n')

    async def main() -> None:
        async with Transaction():
            assert await AioPerson.aload_jsonl(path) == 2
            raise KeyError("changed my mind")

    with pytest.raises(KeyError):
        run(main())
    assert people(tables) == 0


# -- frames out ------------------------------------------------------------------------------
def numbers(n: int) -> None:
    rows = [
        {"i": None if k < 60 else k, "s": f"s{k}", "e": Status.ACTIVE, "u": U1} for k in range(n)
    ]
    AioOdd.batch_insert_from_dicts(rows, return_records=False)


@needs("pandas", "dataframes")
def test_ato_pandas_from_chunks(tables: Database) -> None:
    numbers(120)

    async def main() -> tuple[Any, Any]:
        df = await AioOdd.query().order_by("id").ato_pandas(chunk_size=50)
        return df, await AioOdd.query().where({"id": -1}).ato_pandas()

    df, empty = run(main())
    assert list(df.columns) == list(AioOdd.__ar_info__.fields)
    assert len(df) == 120
    assert df["i"].dtype.kind == "f" and df["i"].isna().sum() == 60 and df["i"].iloc[119] == 119
    assert df["e"].iloc[0] == "active" and df["s"].iloc[119] == "s119"
    assert df["u"].iloc[0] == U1
    assert len(empty) == 0 and list(empty.columns) == list(AioOdd.__ar_info__.fields)


@needs("polars", "dataframes")
def test_ato_polars_from_chunks(tables: Database) -> None:
    numbers(120)

    async def main() -> tuple[Any, Any]:
        query = AioOdd.query().select("id", "i", "s", "e", "u").order_by("id")
        return await query.ato_polars(chunk_size=50), await query.where({"id": -1}).ato_polars()

    df, empty = run(main())
    assert df.columns == ["id", "i", "s", "e", "u"]
    assert df.height == 120 and df["i"].null_count() == 60 and df["i"][119] == 119
    assert df["i"].dtype.is_integer()
    assert df["e"][0] == "active" and df["u"][0] == str(U1)
    assert empty.height == 0


@needs("pandas", "dataframes")
def test_frames_round_trip_through_the_async_api(tables: Database) -> None:
    async def main() -> int:
        await AioOdd.ainsert_dataframe(pandas_frame())
        back = await AioOdd.query().order_by("id").ato_pandas()
        await AioOdd.query().adelete(all_rows=True)
        return int(await AioOdd.ainsert_dataframe(back.drop(columns=["id"])))

    assert run(main()) == 3
    assert loaded() == EXPECTED


@needs("polars", "dataframes")
def test_ato_polars_reads_inside_the_async_transaction(tables: Database) -> None:
    async def main() -> int:
        async with Transaction():
            await AioOdd.ainsert_dataframe(pl.DataFrame({"i": [1, 2, 3]}))
            df = await AioOdd.query().select("i").order_by("id").ato_polars()
            raise KeyError(int(df["i"].sum()))

    with pytest.raises(KeyError) as caught:
        run(main())
    assert caught.value.args == (6,)  # read its own uncommitted rows
    assert raw_count(tables, "aio_odd") == 0
