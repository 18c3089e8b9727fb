"""Data loading for notebooks and scripts: DataFrames and files in, DataFrames and tables out."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import os
import pathlib
import subprocess
import sys
import uuid
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, Field

from activerecord import (
    ActiveRecord,
    Col,
    FileFormatError,
    LoadValidationError,
    QueryError,
    UniqueViolation,
    UnknownColumnError,
)
from activerecord.__main__ import main
from activerecord.io.upsert import check_upsert_key
from activerecord.query.display import MAX_ROWS, RecordList, text_table
from activerecord.query.rows import iter_chunks

from .conftest import backend_url, needs, optional, raw_count
from .models import Status


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

# Optional extras: without them, only the tests that use them are skipped.
np = optional("numpy", "dataframes")
pd = optional("pandas", "dataframes")
pl = optional("polars", "dataframes")

ROOT = pathlib.Path(__file__).parent.parent


class IoOdd(Model):
    __table_name__ = "io_odd"

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


class IoPerson(Model):
    __table_name__ = "io_people"

    id: int | None = None
    name: Annotated[str, Field(max_length=50)]
    email: Annotated[str, Field(max_length=100), Col(unique=True)]
    age: int | None = None
    score: int = 0
    born: dt.date | None = None
    tags: list[str] | None = None


U1, U3 = uuid.UUID(int=1), uuid.UUID(int=3)
UTC = dt.timezone.utc

# What both DataFrames below must load as (row 2 is all NULL).
EXPECTED = [
    {
        "i": 1, "f": 1.5, "s": "a", "ts": dt.datetime(2024, 1, 2, 3, 4, 5),
        "tz": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "day": dt.date(2024, 1, 1),
        "d": decimal.Decimal("1.25"), "b": True, "u": U1, "e": Status.ACTIVE, "n": 7,
        "doc": {"a": 1},
    },
    {k: None for k in ("i", "f", "s", "ts", "tz", "day", "d", "b", "u", "e", "n", "doc")},
    {
        "i": 3, "f": 2.5, "s": "c", "ts": dt.datetime(2024, 3, 1),
        "tz": dt.datetime(2024, 3, 1, 12, tzinfo=UTC), "day": dt.date(2024, 1, 3),
        "d": decimal.Decimal("3.5"), "b": False, "u": U3, "e": Status.INACTIVE, "n": 8,
        "doc": {"a": 2},
    },
]


def _loaded(model: type[ActiveRecord] = IoOdd) -> list[dict[str, Any]]:
    fields = [f for f in model.__ar_info__.fields if f != "id"]
    return [{f: getattr(r, f) for f in fields} for r in model.query().order_by("id").all()]


def pandas_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": pd.array([1, None, 3], dtype="Int64"),
            "f": [1.5, np.nan, np.float32(2.5)],
            "s": ["a", None, "c"],
            "ts": pd.to_datetime([dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(2024, 3, 1)]),
            "tz": pd.to_datetime(
                [dt.datetime(2024, 1, 2, 4, 4, 5), None, dt.datetime(2024, 3, 1, 13)]
            ).tz_localize("Europe/Oslo"),
            "day": [dt.date(2024, 1, 1), pd.NaT, np.datetime64("2024-01-03")],
            "d": [decimal.Decimal("1.25"), None, decimal.Decimal("3.5")],
            "b": pd.array([True, None, False], dtype="boolean"),
            "u": [U1, None, U3],
            "e": pd.Categorical(["active", None, "inactive"]),
            "n": [np.int64(7), pd.NA, np.int32(8)],
            "doc": [{"a": 1}, None, {"a": 2}],
        }
    )


def polars_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "i": [1, None, 3],
            "f": [1.5, float("nan"), 2.5],
            "s": ["a", None, "c"],
            "ts": [dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(2024, 3, 1)],
            "tz": pl.Series(
                [dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(2024, 3, 1, 12)]
            ).dt.replace_time_zone("UTC"),
            "day": [dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)],
            "d": pl.Series([decimal.Decimal("1.25"), None, decimal.Decimal("3.5")]),
            "b": [True, None, False],
            "u": [str(U1), None, str(U3)],
            "e": pl.Series(["active", None, "inactive"], dtype=pl.Categorical),
            "n": pl.Series([7, None, 8], dtype=pl.Int16),
            "doc": [{"a": 1}, None, {"a": 2}],
        }
    )


# -- DataFrames in ---------------------------------------------------------------------------
def test_pandas_frame_with_nulls_and_odd_types(fresh):
    fresh(IoOdd)
    records = IoOdd.batch_insert_from_dicts(pandas_frame())
    # The keys the server gave, in input order (not necessarily 1, 2, 3: a Galera node steps by 3).
    stored = [row.id for row in IoOdd.query().order_by("id").all()]
    assert [r.id for r in records] == stored and len(stored) == 3
    assert _loaded() == EXPECTED


def test_polars_frame_with_nulls_and_odd_types(fresh):
    fresh(IoOdd)
    assert IoOdd.insert_dataframe(polars_frame()) == 3
    assert _loaded() == EXPECTED


def test_frame_rows_bigger_than_one_batch(fresh):
    fresh(IoOdd)
    df = pd.DataFrame({"i": np.arange(120, dtype=np.int64), "f": np.linspace(0, 1, 120)})
    seen: list[int] = []
    assert IoOdd.insert_dataframe(df, batch_size=50, progress=seen.append) == 120
    assert seen == [50, 100, 120]
    assert IoOdd.query().where({"i": 119}).one().f == pytest.approx(1.0)


@needs("tqdm", "progress")
def test_progress_bar_and_quiet_mode(fresh, capsys):
    fresh(IoOdd)
    df = pl.DataFrame({"i": list(range(120))})
    IoOdd.insert_dataframe(df, batch_size=50, progress=True)
    bar = capsys.readouterr().err
    assert "load io_odd" in bar and "120/120" in bar and "rows/s" in bar
    IoOdd.insert_dataframe(df, batch_size=50)
    assert capsys.readouterr().err == ""
    assert IoOdd.query().count() == 240


def test_pandas_validation_error_names_the_row_label(db, fresh):
    fresh(IoOdd)
    df = pd.DataFrame({"i": [1, "x", 3], "s": ["ok", "y" * 30, "ok"]}, index=["a", "b", "c"])
    with pytest.raises(LoadValidationError) as caught:
        IoOdd.insert_dataframe(df)
    assert caught.value.locations == {1: "b"}
    assert caught.value.unit == "row"
    assert "row 'b'" in str(caught.value)
    assert {e["loc"][0] for e in caught.value.failures[1]} == {"i", "s"}
    assert raw_count(db, "io_odd") == 0


def test_polars_validation_error_names_the_row_position(db, fresh):
    fresh(IoOdd)
    df = pl.DataFrame({"s": ["ok", "ok", "z" * 30]})
    with pytest.raises(LoadValidationError, match="row 2: s"):
        IoOdd.insert_dataframe(df)
    assert raw_count(db, "io_odd") == 0


def test_frame_column_names_map_to_fields(db, fresh):
    fresh(IoOdd)
    df = pd.DataFrame({"Number": [5], "junk": ["ignored"]})
    with pytest.raises(UnknownColumnError, match="Number"):
        IoOdd.insert_dataframe(df)
    assert IoOdd.insert_dataframe(df, columns={"Number": "i", "junk": None}) == 1
    assert _loaded()[0]["i"] == 5


# -- files in --------------------------------------------------------------------------------
class CountingFile:
    """A text file that counts the lines the reader has taken from it."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text, newline="")
        self.taken = 0
        self.name = "people.csv"

    def __iter__(self) -> CountingFile:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.taken += 1
        return line


def people_csv(n: int, *, bad: dict[int, str] | None = None) -> str:
    """A CSV of ``n`` people; ``bad`` replaces the age cell of some records (by index)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "E-mail", "age", "score", "born", "tags"])
    for i in range(n):
        age = (bad or {}).get(i, str(20 + i % 50) if i % 7 else "")
        name = f"Person\n{i}" if i == 10 else f"Person {i}"  # record 10 spans two lines
        writer.writerow([name, f"p{i}@example.com", age, i, f"2000-01-{1 + i % 28:02d}", ""])
    return out.getvalue()


def test_csv_streams_chunk_by_chunk(db, fresh):
    fresh(IoPerson)
    source = CountingFile(people_csv(500))
    taken_at: list[tuple[int, int]] = []
    count = IoPerson.load_csv(
        source,
        columns={"E-mail": "email"},
        batch_size=50,
        progress=lambda done: taken_at.append((done, source.taken)),
    )
    assert count == 500 and raw_count(db, "io_people") == 500
    assert [done for done, _ in taken_at] == list(range(50, 501, 50))
    # The reader was consumed lazily: when the first chunk was written, only about one
    # chunk of lines had been read from the file (header + 50 records + the 2-line record).
    assert taken_at[0][1] <= 53
    assert all(taken <= done + 3 for done, taken in taken_at)
    p = IoPerson.query().where({"email": "p8@example.com"}).one()
    assert (p.name, p.age, p.score, p.born) == ("Person 8", 28, 8, dt.date(2000, 1, 9))
    assert p.tags is None
    assert IoPerson.query().where({"email": "p7@example.com"}).one().age is None  # empty cell
    assert IoPerson.query().where({"email": "p10@example.com"}).one().name == "Person\n10"


def test_csv_bad_value_names_its_line_and_writes_nothing(db, fresh, tmp_path):
    fresh(IoPerson)
    path = tmp_path / "people.csv"
    path.write_text(people_csv(500, bad={420: "old", 30: "-"}))
    with pytest.raises(LoadValidationError) as caught:
        IoPerson.load_csv(path, columns={"E-mail": "email"}, batch_size=50)
    # Record i sits on line i + 2 (header first), one more after the two-line record 10.
    assert caught.value.locations == {30: 33, 420: 423}
    message = str(caught.value)
    assert "line 33: age" in message and "line 423: age" in message and str(path) in message
    assert raw_count(db, "io_people") == 0


def test_csv_malformed_line_after_the_first_chunks_writes_nothing(db, fresh, tmp_path):
    fresh(IoPerson)
    lines = people_csv(300).splitlines(keepends=True)
    lines[250] = "only,three,fields\n"  # line 251 of the file
    path = tmp_path / "people.csv"
    path.write_text("".join(lines))
    with pytest.raises(FileFormatError) as caught:
        IoPerson.load_csv(path, columns={"E-mail": "email"}, batch_size=50)
    assert caught.value.line == 251
    assert "line 251: expected 6 fields" in str(caught.value)
    assert raw_count(db, "io_people") == 0


def test_csv_empty_cells(db, fresh):
    fresh(IoPerson)
    text = "name,email,age,score,born\n,e1@x,,,\n"
    assert IoPerson.load_csv(io.StringIO(text), empty="keep") == 1
    p = IoPerson.query().one()
    assert (p.name, p.age, p.score, p.born) == ("", None, 0, None)  # text, NULL, default, NULL


def test_csv_columns_dropped_and_reordered(db, fresh):
    fresh(IoPerson)
    text = "junk,age,E-mail,name\nzzz,41,a@x,Ann\nq,,b@x,Bob\n"
    assert IoPerson.load_csv(io.StringIO(text), columns={"junk": None, "E-mail": "email"}) == 2
    got = {p.email: (p.name, p.age) for p in IoPerson.query()}
    assert got == {"a@x": ("Ann", 41), "b@x": ("Bob", None)}


def test_csv_json_cells_and_gzip(db, fresh, tmp_path):
    import gzip

    fresh(IoPerson)
    path = tmp_path / "people.csv.gz"
    with gzip.open(path, "wt", newline="") as f:
        f.write('name,email,tags\nAnn,ann@x,"[""a"", ""b""]"\n')
    assert IoPerson.load_csv(path) == 1
    assert IoPerson.query().one().tags == ["a", "b"]


def test_jsonl_loads_and_names_bad_lines(db, fresh, tmp_path):
    fresh(IoPerson)
    rows = [{"name": f"J{i}", "email": f"j{i}@x", "age": i, "born": "1999-12-31"} for i in range(5)]
    path = tmp_path / "people.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert IoPerson.load_jsonl(path, batch_size=2) == 5
    assert IoPerson.query().where({"email": "j4@x"}).one().born == dt.date(1999, 12, 31)

    path.write_text('{"name": "A", "email": "a@x"}\n\n{"name": "B", "email": \n')
    with pytest.raises(FileFormatError, match="line 3: invalid JSON"):
        IoPerson.load_jsonl(path)
    path.write_text('{"name": "A", "email": "a@x"}\n\n{"name": "B", "email": "b@x", "age": "x"}\n')
    with pytest.raises(LoadValidationError, match="line 3: age"):
        IoPerson.load_jsonl(path)
    assert raw_count(db, "io_people") == 5


def test_duplicate_key_in_a_file_is_an_integrity_error(db, fresh):
    fresh(IoPerson)
    text = "name,email\nA,same@x\nB,same@x\n"
    with pytest.raises(UniqueViolation):
        IoPerson.load_csv(io.StringIO(text))
    assert raw_count(db, "io_people") == 0


# -- upsert ----------------------------------------------------------------------------------
def test_upsert_inserts_and_updates_on_a_unique_key(db, fresh):
    fresh(IoPerson)
    IoPerson.load_csv(io.StringIO("name,email,score\nA,a@x,1\nB,b@x,2\n"))
    first_id = IoPerson.query().where({"email": "a@x"}).one().id
    text = "name,email,score\nA2,a@x,10\nC,c@x,3\nC2,c@x,30\n"  # c@x twice: the last wins
    assert IoPerson.load_csv(io.StringIO(text), upsert=["email"], batch_size=10) == 3
    got = {p.email: (p.name, p.score) for p in IoPerson.query().all()}
    assert got == {"a@x": ("A2", 10), "b@x": ("B", 2), "c@x": ("C2", 30)}
    assert IoPerson.query().where({"email": "a@x"}).one().id == first_id  # updated in place


def test_upsert_keeps_columns_the_input_does_not_give(db, fresh):
    fresh(IoPerson)
    IoPerson.load_csv(io.StringIO("name,email,age\nA,a@x,40\n"))
    IoPerson.insert_dataframe(pd.DataFrame({"email": ["a@x"], "name": ["A3"]}), upsert=["email"])
    p = IoPerson.query().one()
    assert (p.name, p.age) == ("A3", 40)


def test_upsert_key_must_be_unique(db):
    with pytest.raises(QueryError, match="neither the primary key nor a unique key"):
        check_upsert_key(IoPerson, ["name"])
    with pytest.raises(UnknownColumnError):
        check_upsert_key(IoPerson, ["nope"])
    assert check_upsert_key(IoPerson, ["id"]) == ("id",)


# -- reading out -----------------------------------------------------------------------------
def _numbers(n: int) -> None:
    rows = [
        {"i": None if k < 60 else k, "s": f"s{k}", "e": Status.ACTIVE, "u": U1} for k in range(n)
    ]
    IoOdd.batch_insert_from_dicts(rows, return_records=False)


def test_results_are_read_in_chunks(fresh):
    fresh(IoOdd)
    _numbers(120)
    sizes = [len(rows) for _, rows in iter_chunks(IoOdd.query().order_by("id"), 50)]
    assert sizes == [50, 50, 20]


def test_to_dicts(fresh):
    fresh(IoOdd)
    _numbers(3)
    ids = sorted((row.id for row in IoOdd.query().all()), reverse=True)
    dicts = IoOdd.query().select("id", "s", "e").order_by("-id").to_dicts(chunk_size=2)
    assert dicts == [
        {"id": ids[0], "s": "s2", "e": Status.ACTIVE},
        {"id": ids[1], "s": "s1", "e": Status.ACTIVE},
        {"id": ids[2], "s": "s0", "e": Status.ACTIVE},
    ]


@needs("pandas", "dataframes")
def test_to_pandas_from_chunks(fresh):
    fresh(IoOdd)
    _numbers(120)
    df = IoOdd.query().order_by("id").to_pandas(chunk_size=50)
    assert list(df.columns) == list(IoOdd.__ar_info__.fields)
    assert len(df) == 120
    # i is NULL in the whole first chunk, numbers later: one numeric column in the end.
    assert df["i"].dtype.kind == "f" and df["i"].isna().sum() == 60 and df["i"].iloc[119] == 119
    assert df["e"].iloc[0] == "active" and df["s"].iloc[119] == "s119"
    assert df["u"].iloc[0] == U1
    empty = IoOdd.query().where({"id": -1}).to_pandas()
    assert len(empty) == 0 and list(empty.columns) == list(IoOdd.__ar_info__.fields)


@needs("polars", "dataframes")
def test_to_polars_from_chunks(fresh):
    fresh(IoOdd)
    _numbers(120)
    df = IoOdd.query().select("id", "i", "s", "e", "u").order_by("id").to_polars(chunk_size=50)
    assert df.columns == ["id", "i", "s", "e", "u"]
    assert df.height == 120 and df["i"].null_count() == 60 and df["i"][119] == 119
    assert df["i"].dtype.is_integer()
    assert df["e"][0] == "active" and df["u"][0] == str(U1)
    assert IoOdd.query().where({"id": -1}).to_polars().height == 0


def test_frames_round_trip(fresh):
    fresh(IoOdd)
    IoOdd.insert_dataframe(pandas_frame())
    back = IoOdd.query().order_by("id").to_pandas()
    fresh(IoOdd)
    IoOdd.insert_dataframe(back.drop(columns=["id"]))
    assert _loaded() == EXPECTED


# -- notebook display ------------------------------------------------------------------------
class Printer:
    """What IPython hands to ``_repr_pretty_``: something with ``text``."""

    def __init__(self) -> None:
        self.out = ""

    def text(self, s: str) -> None:
        self.out += s


def test_query_and_results_show_as_tables(fresh):
    fresh(IoOdd)
    _numbers(MAX_ROWS + 5)
    # The rows after the first two, whatever keys the server gave them.
    third = IoOdd.query().order_by("id").offset(2).first()
    assert third is not None
    query = IoOdd.query().where("id >= ?", third.id).order_by("id")
    page = query._repr_html_()
    assert page.count("<tr>") == MAX_ROWS + 1  # header + first rows
    assert "<th>s</th>" in page and "<td>s2</td>" in page and "first 20 rows shown" in page
    assert "io_odd" in page  # the SQL caption
    printer = Printer()
    query.limit(2)._repr_pretty_(printer, False)
    lines = printer.out.splitlines()
    assert lines[-1] == "(2 rows)" and "s2" in lines[-3] and "active" in lines[-3]

    results = query.limit(3).all()
    assert isinstance(results, RecordList) and results == list(results)
    assert "<td>s4</td>" in results._repr_html_()
    printer = Printer()
    results._repr_pretty_(printer, False)
    assert printer.out == text_table(results) and printer.out.endswith("(3 rows)")
    assert repr(results).startswith("[IoOdd(")  # print() and logs stay as before
    assert "(no rows)" in IoOdd.query().where({"id": -1})._repr_html_()


def test_text_table_shape():
    rows = RecordList([{"id": 1, "name": "Ann"}, {"id": 10, "name": "<b>"}])
    assert text_table(rows).splitlines() == [
        "id | name", "---+-----", " 1 | Ann", "10 | <b>", "(2 rows)",
    ]
    assert "&lt;b&gt;" in rows._repr_html_()


# -- command line ----------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "activerecord", "load", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )


def _cli_table(db) -> sa.Table:
    table = sa.Table(
        "io_cli_people",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("e-mail", sa.String(80), nullable=False, unique=True),
        sa.Column("age", sa.Integer),
        sa.Column("joined", sa.Date),
    )
    with db.engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    return table


@needs("tqdm", "progress")  # the command shows a progress bar unless -q
def test_cli_loads_a_csv_into_an_existing_table(db, backend, tmp_path):
    table = _cli_table(db)
    url = backend_url(backend)
    path = tmp_path / "people.csv"
    rows = [
        f"P{i},p{i}@x,{20 + i % 9 if i % 5 else ''},2024-02-{1 + i % 28:02d}" for i in range(120)
    ]
    path.write_text("name,e-mail,age,joined\n" + "\n".join(rows) + "\n")
    done = _cli(str(path), "--url", url, "--table", "io_cli_people", "--batch-size", "50")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("loaded 120 rows into io_cli_people in ")
    assert "rows/s" in done.stdout and "rows" in done.stderr  # the summary and the bar
    with db.engine.connect() as conn:
        got = conn.execute(sa.select(table).where(table.c["e-mail"] == "p6@x")).one()
    assert (got.name, got.age, got.joined) == ("P6", 26, dt.date(2024, 2, 7))
    assert raw_count(db, "io_cli_people") == 120

    path.write_text("name,e-mail,age\nP1b,p1@x,99\nNew,new@x,\n")
    done = _cli(str(path), "--url", url, "--table", "io_cli_people", "--upsert", "e-mail", "-q")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    with db.engine.connect() as conn:
        got = conn.execute(sa.select(table).where(table.c["e-mail"] == "p1@x")).one()
    assert (got.name, got.age, got.joined) == ("P1b", 99, dt.date(2024, 2, 2))
    assert raw_count(db, "io_cli_people") == 121


def test_cli_exit_codes(db, backend, tmp_path, capsys):
    _cli_table(db)
    url = backend_url(backend)
    path = tmp_path / "people.csv"
    path.write_text("name,e-mail,age\nA,a@x,1\nB,b@x,old\nC,c@x,3\n")
    assert main(["load", str(path), "--url", url, "--table", "io_cli_people", "-q"]) == 1
    out = capsys.readouterr()
    assert "line 3: age" in out.err and out.out == ""
    assert raw_count(db, "io_cli_people") == 0

    for args in (
        [str(path), "--url", url, "--table", "io_no_such_table"],
        [str(tmp_path / "missing.csv"), "--url", url, "--table", "io_cli_people"],
        [str(path), "--url", url, "--table", "io_cli_people", "--upsert", "name"],
        [str(path), "--url", url, "--table", "io_cli_people", "--batch-size", "0"],
        [str(path), "--url", "nosuchdb://x", "--table", "io_cli_people"],
    ):
        assert main(["load", *args]) == 2, args
        assert capsys.readouterr().err.startswith("error: "), args
    with pytest.raises(SystemExit) as caught:  # argparse: --url is required
        main(["load", str(path), "--table", "io_cli_people"])
    assert caught.value.code == 2


@pytest.mark.backends("sqlite")
def test_cli_loads_jsonl_into_a_model(db, fresh, backend, tmp_path):
    fresh(IoPerson)
    path = tmp_path / "people.ndjson"
    path.write_text('{"name": "A", "email": "a@x", "tags": ["t"]}\n')
    argv = [
        "load", str(path), "--url", backend_url(backend), "--model", "tests.test_io:IoPerson", "-q",
    ]
    assert main(argv) == 0
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM io_people")).scalar_one() == "A"
