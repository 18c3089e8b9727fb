"""Loading from notebooks and the command line: what a first hour with real data runs into.

Issue #16 ('Loading from notebooks', 'The command line') and #15 item 22.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import uuid
from importlib import metadata
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, Field

import activerecord
from activerecord import (
    ActiveRecord,
    DatabaseConnectionError,
    LoadValidationError,
    QueryError,
    UnknownColumnError,
    ValidationError,
)
from activerecord.__main__ import main

from .conftest import backend_url, needs, optional, raw_count
from .models import Status


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

# Optional extras: without them, only the tests that use them are skipped.
pd = optional("pandas", "dataframes")
pl = optional("polars", "dataframes")

UTC = dt.timezone.utc


class Penguin(Model):
    __table_name__ = "ld_penguins"

    id: int | None = None
    species: Annotated[str, Field(max_length=20)]
    island: Annotated[str, Field(max_length=20)]
    sex: Annotated[str, Field(max_length=10)] | None = None
    mass: float | None = None


class Kinds(Model):
    __table_name__ = "ld_kinds"

    id: int | None = None
    i: int | None = None
    f: float | None = None
    s: Annotated[str, Field(max_length=20)] | None = None
    b: bool | None = None
    ts: dt.datetime | None = None
    tz: AwareDatetime | None = None
    day: dt.date | None = None
    d: Annotated[decimal.Decimal, Field(max_digits=12, decimal_places=4)] | None = None
    u: uuid.UUID | None = None
    e: Status | None = None


def _penguins(n: int) -> dict[str, list[Any]]:
    return {"species": ["Adelie"] * n, "sex": ["male", None] * (n // 2), "mass": [3.5] * n}


# -- a missing or extra column -----------------------------------------------------------------
@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_a_frame_without_a_required_column_is_one_error_naming_it(db, fresh, library):
    fresh(Penguin)
    frame = pd.DataFrame(_penguins(324)) if library == "pandas" else pl.DataFrame(_penguins(324))
    with pytest.raises(ValidationError) as caught:
        Penguin.insert_dataframe(frame)
    assert not isinstance(caught.value, LoadValidationError)  # not one failure per row
    message = str(caught.value)
    assert "'island'" in message and "columns={" in message and "more" not in message
    assert [e["loc"] for e in caught.value.errors] == [("island",)]
    assert raw_count(db, "ld_penguins") == 0
    # The fix the message names works.
    data = {**_penguins(324), "place": ["Dream"] * 324}
    frame = pd.DataFrame(data) if library == "pandas" else pl.DataFrame(data)
    assert Penguin.insert_dataframe(frame, columns={"place": "island"}) == 324


def test_a_csv_without_a_required_column_is_one_error_naming_it(db, fresh):
    fresh(Penguin)
    text = "species,sex\n" + "Adelie,male\n" * 50
    with pytest.raises(ValidationError, match="'island'") as caught:
        Penguin.load_csv(io.StringIO(text))
    assert not isinstance(caught.value, LoadValidationError)
    assert raw_count(db, "ld_penguins") == 0
    # Without validation the model's "required" is not asked: the database decides.
    text = "species,island\nAdelie,Biscoe\n"
    assert Penguin.load_csv(io.StringIO(text), validate=False) == 1


def test_an_extra_column_says_how_to_map_or_drop_it(db, fresh):
    fresh(Penguin)
    frame = pd.DataFrame({"species": ["Gentoo"], "island": ["Biscoe"], "bill": [40.1]})
    with pytest.raises(UnknownColumnError) as caught:
        Penguin.insert_dataframe(frame)
    assert "columns={'bill': None}" in str(caught.value)
    assert "columns={'bill': 'field'}" in str(caught.value)
    with pytest.raises(UnknownColumnError, match=r"columns=\{'bill': None\}"):
        Penguin.load_csv(io.StringIO("species,island,bill\nGentoo,Biscoe,40.1\n"))
    assert Penguin.insert_dataframe(frame, columns={"bill": None}) == 1


# -- empty CSV cells ----------------------------------------------------------------------------
def test_an_empty_csv_cell_is_null_as_in_a_dataframe(db, fresh):
    fresh(Penguin)
    text = "species,island,sex,mass\nAdelie,Torgersen,,\n"
    Penguin.load_csv(io.StringIO(text))
    Penguin.insert_dataframe(pd.read_csv(io.StringIO(text)))
    got = [(p.sex, p.mass) for p in Penguin.query().order_by("id")]
    assert got == [(None, None), (None, None)]  # the same, whichever way it came in
    assert Penguin.query().where({"sex": None}).count() == 2


def test_empty_keep_keeps_the_empty_string_in_text_fields(db, fresh):
    fresh(Penguin)
    text = "species,island,sex,mass\nAdelie,,,\n"
    assert Penguin.load_csv(io.StringIO(text), empty="keep") == 1
    p = Penguin.query().one()
    assert (p.island, p.sex, p.mass) == ("", "", None)
    # By default an empty cell of a required text field is missing, reported with its line.
    with pytest.raises(LoadValidationError, match="line 2: island"):
        Penguin.load_csv(io.StringIO(text))
    with pytest.raises(QueryError, match="empty"):
        Penguin.load_csv(io.StringIO(text), empty="blank")  # type: ignore[arg-type]
    assert raw_count(db, "ld_penguins") == 1


# -- frames out ---------------------------------------------------------------------------------
def _kinds_row() -> dict[str, Any]:
    return {
        "i": 1, "f": 1.5, "s": "a", "b": True, "ts": dt.datetime(2024, 1, 2, 3, 4, 5),
        "tz": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "day": dt.date(2024, 1, 1), "d": decimal.Decimal("1.25"), "u": uuid.UUID(int=1),
        "e": Status.ACTIVE,
    }


@needs("pandas", "dataframes")
@needs("polars", "dataframes")
def test_an_empty_result_has_the_column_types_of_a_full_one(db, fresh):
    fresh(Kinds)
    Kinds.batch_insert_from_dicts([_kinds_row()])
    full = Kinds.query().to_pandas()
    empty = Kinds.query().where({"id": -1}).to_pandas()
    assert len(empty) == 0 and list(empty.columns) == list(full.columns)
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()
    # pandas 3 keeps Python datetimes in microseconds, pandas 2 (Python 3.10's) in ns
    assert str(empty["tz"].dtype) in ("datetime64[us, UTC]", "datetime64[ns, UTC]")
    assert empty["i"].dtype == "int64" and empty["f"].dtype == "float64"
    some = Kinds.query().select("id", "i").where({"id": -1}).to_pandas()
    assert some.dtypes.to_dict() == {"id": full["id"].dtype, "i": full["i"].dtype}

    full_pl = Kinds.query().to_polars()
    empty_pl = Kinds.query().where({"id": -1}).to_polars()
    assert empty_pl.height == 0 and empty_pl.schema == full_pl.schema


@needs("pandas", "dataframes")
@needs("polars", "dataframes")
def test_aware_columns_read_back_in_utc_on_every_backend(db, fresh, backend):
    fresh(Kinds)
    Kinds.batch_insert_from_dicts([_kinds_row(), {}])
    # A PostgreSQL session in another time zone hands back its own zone: frames say UTC.
    options: dict[str, Any] = {}
    if backend == "postgresql":
        options["connect_args"] = {"options": "-c timezone=Asia/Kolkata"}
    activerecord.connect(backend_url(backend), **options)
    instant = dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)
    df = Kinds.query().order_by("id").to_pandas(chunk_size=1)
    unit = "us" if int(metadata.version("pandas").split(".")[0]) >= 3 else "ns"  # pandas 2: ns
    assert str(df["tz"].dtype) == f"datetime64[{unit}, UTC]"
    assert df["tz"].iloc[0] == pd.Timestamp(instant) and pd.isna(df["tz"].iloc[1])
    assert str(df["ts"].dtype) == f"datetime64[{unit}]"  # naive stays naive
    frame = Kinds.query().order_by("id").to_polars(chunk_size=1)
    assert frame.schema["tz"] == pl.Datetime("us", "UTC")
    assert frame["tz"][0] == instant


def test_model_insert_dataframe_returns_records(db, fresh):
    fresh(Penguin)
    frame = pd.DataFrame({"species": ["Adelie", "Gentoo"], "island": ["Biscoe", "Dream"]})
    records = Penguin.insert_dataframe(frame, return_records=True)
    stored = [(p.id, p.island) for p in Penguin.query().order_by("id").all()]
    assert [(r.id, r.island) for r in records] == stored == [(stored[0][0], "Biscoe"),
                                                              (stored[1][0], "Dream")]
    assert Penguin.insert_dataframe(frame) == 2


# -- the command line ---------------------------------------------------------------------------
def _cli_table(db, name: str = "ld_cli") -> sa.Table:
    table = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(80), nullable=False, unique=True),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("note", sa.String(40)),
    )
    with db.engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    return table


def _unreachable_urls(backend: str) -> list[str]:
    if backend == "sqlite":
        return ["sqlite:////no/such/directory/ld.db"]
    url = sa.make_url(backend_url(backend))
    return [
        url.set(port=1).render_as_string(hide_password=False),
        url.set(username="ld_no_such_role", password="x").render_as_string(hide_password=False),
        url.set(database="ld_no_such_database").render_as_string(hide_password=False),
    ]


def test_cli_connection_failures_are_one_line_and_exit_2(db, backend, tmp_path, capsys):
    path = tmp_path / "people.csv"
    path.write_text("email,name\na@x,A\n")
    for url in _unreachable_urls(backend):
        for target in (["--table", "ld_cli"], ["--model", "tests.test_loading:Penguin"]):
            assert main(["load", str(path), "--url", url, *target]) == 2, (url, target)
            out = capsys.readouterr()
            assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err
            assert "Traceback" not in out.err and out.out == ""


def test_a_refused_connection_is_a_connection_error(backend):
    for url in _unreachable_urls(backend):
        database = activerecord.connect(url, name="ld_unreachable")
        try:
            with pytest.raises(DatabaseConnectionError, match="cannot connect"):
                database.facts  # noqa: B018 - connects
        finally:
            activerecord.disconnect("ld_unreachable")


def test_cli_a_url_without_a_supported_driver_names_the_one_to_use(tmp_path, capsys):
    path = tmp_path / "people.csv"
    path.write_text("email,name\na@x,A\n")
    assert main(["load", str(path), "--url", "mysql://root@127.0.0.1/x", "--table", "t"]) == 2
    assert "mysql+pymysql://" in capsys.readouterr().err


@needs("tqdm", "progress")  # the default progress bar
def test_cli_messages_name_the_table_and_print_no_empty_progress(db, backend, tmp_path, capsys):
    _cli_table(db)
    url = backend_url(backend)
    path = tmp_path / "people.csv"
    path.write_text("email,name,note\na@x,A,\nb@x," + "n" * 50 + ",\n")
    assert main(["load", str(path), "--url", url, "--table", "ld_cli"]) == 1
    err = capsys.readouterr().err
    assert "ld_cli record(s)" in err and "line 3: name" in err
    assert "activerecord-load" not in err and "rows" not in err.replace("record(s)", "")
    assert err.startswith("error: ") and "\r" not in err  # no progress bar drawn

    path.write_text("email\na@x\n")  # name is NOT NULL: a missing required column
    assert main(["load", str(path), "--url", url, "--table", "ld_cli"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'name'" in err and "rows" not in err

    assert main(["load", str(path), "--url", url, "--table", "ld_none"]) == 2
    err = capsys.readouterr().err
    assert "ld_none" in err and "activerecord-load" not in err

    path.write_text("email,name\na@x,A\n")
    assert main(["load", str(path), "--url", url, "--table", "ld_cli"]) == 0
    out = capsys.readouterr()
    assert "load ld_cli" in out.err and "1 rows" in out.err  # the bar, named by the table
    assert out.out.startswith("loaded 1 rows into ld_cli in ")


@needs("tqdm", "progress")  # the default progress bar
def test_cli_upsert_reports_inserted_updated_unchanged(db, backend, tmp_path, capsys):
    table = _cli_table(db)
    url = backend_url(backend)
    path = tmp_path / "people.csv"
    path.write_text("email,name\na@x,A\nb@x,B\n")
    assert main(["load", str(path), "--url", url, "--table", "ld_cli", "-q"]) == 0
    path.write_text("email,name\na@x,A2\nb@x,B\nc@x,C\n")
    assert main(["load", str(path), "--url", url, "--table", "ld_cli", "--upsert", "email"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("loaded 3 rows into ld_cli")
    assert out.rstrip().endswith(": 1 inserted, 1 updated, 1 unchanged")
    with db.engine.connect() as conn:
        names = dict(conn.execute(sa.select(table.c.email, table.c.name)).all())
    assert names == {"a@x": "A2", "b@x": "B", "c@x": "C"}


def test_cli_empty_cells_default_to_null_like_the_api(db, backend, tmp_path, capsys):
    table = _cli_table(db)
    url = backend_url(backend)
    path = tmp_path / "people.csv"
    path.write_text("email,name,note\na@x,A,\n")
    assert main(["load", str(path), "--url", url, "--table", "ld_cli", "-q"]) == 0
    path.write_text("email,name,note\nb@x,B,\n")
    argv = ["load", str(path), "--url", url, "--table", "ld_cli", "-q", "--empty", "keep"]
    assert main(argv) == 0
    with db.engine.connect() as conn:
        notes = dict(conn.execute(sa.select(table.c.email, table.c.note)).all())
    assert notes == {"a@x": None, "b@x": ""}


def test_cli_an_exact_column_name_wins(db, backend, tmp_path, capsys):
    table = sa.Table(
        "ld_names",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("first name", sa.String(20)),
        sa.Column("first_name", sa.String(20)),
    )
    with db.engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    url = backend_url(backend)
    path = tmp_path / "names.csv"
    path.write_text("first_name\nexact\n")
    assert main(["load", str(path), "--url", url, "--table", "ld_names", "-q"]) == 0
    path.write_text('"first name"\nspaced\n')
    assert main(["load", str(path), "--url", url, "--table", "ld_names", "-q"]) == 0
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.id)).all()
    assert [tuple(r)[1:] for r in rows] == [(None, "exact"), ("spaced", None)]
