"""Values come back as they went in, or are refused with a typed error naming the record and
column before anything is written (issue 15 items 15-21, issue 16's batch-path errors)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import io
import math
import uuid
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, Field

from activerecord import ActiveRecord, Col
from activerecord.__main__ import main
from activerecord.errors import DataError, SchemaError, UniqueViolation, ValidationError
from activerecord.io.reflect import model_for_table
from tests.conftest import backend_url, dialect_name


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

D = decimal.Decimal
UTC = dt.timezone.utc
PLUS2 = dt.timezone(dt.timedelta(hours=2))


class Kind(enum.Enum):
    a = "a"


class Val(Model):
    __table_name__ = "values_val"
    id: int | None = None
    f: float | None = None
    d: decimal.Decimal | None = None
    money: Annotated[decimal.Decimal, Field(max_digits=5, decimal_places=2)] | None = None
    at: dt.datetime | None = None
    at_tz: AwareDatetime | None = None
    tm: dt.time | None = None
    doc: dict[str, Any] | None = None
    text: str | None = None
    u: uuid.UUID | None = None
    kind: Kind | None = None
    day: dt.date | None = None
    n: int | None = None


def _count(db: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(Val.__table__)).scalar())


def _refused(db: Any, column: str, record: int | None, call: Any) -> DataError:
    """``call`` raises a DataError naming ``column`` (and ``record``) and writes nothing."""
    before = _count(db)
    with pytest.raises(DataError) as caught:
        call()
    assert caught.value.column == column, str(caught.value)
    assert caught.value.record_index == record, str(caught.value)
    assert repr(column) in str(caught.value)
    if record is not None:
        assert f"record {record}" in str(caught.value)
    assert _count(db) == before
    return caught.value


def _ways(db: Any, field: str, value: Any) -> None:
    """The value is refused by save() and by every batch path (validated or not), naming the
    column (and, in a batch, the record: the second one)."""
    column = Val.__ar_info__.columns[field].name
    _refused(db, column, None, lambda: Val(**{field: value}).save())
    rows = [{"n": 1}, {field: value}]
    _refused(db, column, 1, lambda: Val.batch_insert_from_dicts(rows))
    _refused(db, column, 1, lambda: Val.batch_insert_from_dicts(rows, validate=False))
    _refused(db, column, 1, lambda: Val.batch_insert([Val(n=1), Val(**{field: value})]))


def _back(field: str, value: Any) -> Any:
    record = Val(**{field: value})
    record.save()
    Val.batch_insert_from_dicts([{field: value}], validate=False)
    stored = [getattr(r, field) for r in Val.query().where({"id": record.id}).all()]
    raw = Val.query().select(field).order_by("id").all()[-2:]
    assert [r[field] for r in raw] == [value, value] or all(
        isinstance(r[field], float) and math.isnan(r[field]) for r in raw
    )
    return stored[0]


# -- item 15 / 16: decimals ----------------------------------------------------------------


def test_decimal_exact_at_any_precision_the_column_holds(db, fresh):
    fresh(Val)
    for value in (D("12345.6789012345"), D("-0.0000000001"), D("1000000000000000000")):
        assert _back("d", value) == value
    # 28 digits before the point and 10 after: PostgreSQL and MySQL hold it; SQLite stores a
    # NUMERIC as a 64-bit integer or a 15-digit REAL and refuses what it would round.
    wide = D("12345678901234567.1234567891")
    if dialect_name(db) == "sqlite":
        _ways(db, "d", wide)
    else:
        assert _back("d", wide) == wide
    assert Val.query().count() == len(Val.query().all())  # every row reads back


def test_decimal_refuses_more_places_or_digits_than_the_column(db, fresh):
    fresh(Val)
    _ways(db, "d", D("1.000000000001"))  # NUMERIC(38, 10) would round it to 1
    _ways(db, "d", D("1" + "0" * 28))  # 29 digits before the point
    assert _back("d", D("1.5000000000000")) == D("1.5")  # trailing zeros are no places


def test_decimal_column_from_field_constraints():
    col = Val.__table__.c.money.type
    assert (col.precision, col.scale) == (5, 2)
    with pytest.raises(SchemaError, match="decimal_places"):

        class NoPlaces(Model):
            __table_name__ = "values_no_places"
            id: int | None = None
            x: decimal.Decimal = Field(max_digits=7)


def test_decimal_field_validated_without_validation_too(db, fresh):
    fresh(Val)
    column = "money"
    _refused(db, column, 0, lambda: Val.batch_insert_from_dicts([{column: D("1.234")}],
                                                                 validate=False))


# -- item 17: NaN, infinities, -0.0 ------------------------------------------------------

#: What each backend stores of the special floats; the rest is refused (README "Types").
STORED = {
    "postgresql": {"nan", "inf", "-inf", "-0.0"},
    "sqlite": {"inf", "-inf"},
    "mysql": set(),
}


@pytest.mark.parametrize("name", ["nan", "inf", "-inf", "-0.0"])
def test_special_floats_stored_or_refused(db, fresh, name):
    fresh(Val)
    value = float(name)
    if name in STORED[dialect_name(db)]:
        got = _back("f", value)
        if name == "nan":
            assert math.isnan(got)
        else:
            assert got == value and math.copysign(1, got) == math.copysign(1, value)
    else:
        _ways(db, "f", value)


# -- item 18: time zones -----------------------------------------------------------------


def test_aware_value_in_naive_datetime_field_refused(db, fresh):
    fresh(Val)
    _ways(db, "at", dt.datetime(2024, 1, 1, 12, tzinfo=PLUS2))
    naive = dt.datetime(2024, 1, 1, 12, 0, 0, 123456)
    assert _back("at", naive) == naive


def test_time_with_tzinfo_refused(db, fresh):
    fresh(Val)
    _ways(db, "tm", dt.time(12, 30, tzinfo=UTC))
    assert _back("tm", dt.time(12, 30, 1, 5)) == dt.time(12, 30, 1, 5)


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-2))),
        dt.datetime(1, 1, 1, 0, 30, tzinfo=PLUS2),
    ],
)
def test_aware_datetime_outside_utc_range_refused(db, fresh, value):
    fresh(Val)
    _ways(db, "at_tz", value)
    assert Val.query().all() == []  # the table still reads


def test_naive_datetime_for_aware_field_refused_without_validation(db, fresh):
    fresh(Val)
    rows = [{"n": 1}, {"at_tz": dt.datetime(2024, 1, 1)}]
    _refused(db, "at_tz", 1, lambda: Val.batch_insert_from_dicts(rows, validate=False))


# -- item 19: JSON None is SQL NULL ------------------------------------------------------


def test_json_none_is_sql_null(db, fresh):
    fresh(Val)
    Val(doc=None, n=1).save()
    Val.batch_insert_from_dicts([{"doc": None, "n": 2}, {"doc": {"a": None}, "n": 3}])
    Val.batch_insert_from_dicts([{"doc": None, "n": 4}], validate=False)
    assert sorted(r.n for r in Val.query().where({"doc": None}).all()) == [1, 2, 4]
    with db.engine.connect() as conn:
        nulls = conn.execute(
            sa.select(sa.func.count()).where(Val.__table__.c.doc.is_(None))
        ).scalar()
    assert nulls == 3
    assert Val.query().where({"n": 3}).one().doc == {"a": None}  # JSON null inside stays


# -- item 20: long text ------------------------------------------------------------------


def test_unbounded_str_holds_long_text(db, fresh):
    fresh(Val)
    for text in ("x" * 70_000, "é" * 70_000, "😀" * 20_000):
        assert _back("text", text) == text


# -- item 21: reflected DOUBLE reads float -----------------------------------------------


def test_reflected_double_reads_float(db, backend, tmp_path, capsys):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS values_dbl")
        conn.exec_driver_sql(
            "CREATE TABLE values_dbl (id INTEGER PRIMARY KEY, x DOUBLE PRECISION)"
        )
    try:
        Dbl = model_for_table("values_dbl")
        Dbl.batch_insert_from_dicts([{"id": 1, "x": 1.25}])
        assert Dbl.model_fields["x"].annotation == float | None
        row = Dbl.query().to_dicts()[0]
        assert type(row["x"]) is float and row["x"] == 1.25

        table = sa.Table("values_dbl", sa.MetaData(), autoload_with=db.engine)

        class Declared(Model):
            __table__ = table
            id: int
            x: float | None = None

        got = Declared.query().to_dicts()[0]["x"]
        assert type(got) is float and got == 1.25

        path = tmp_path / "dbl.jsonl"
        path.write_text('{"id": 2, "x": 0.1}\n{"id": 3, "x": 1e300}\n')
        args = ["load", str(path), "--url", backend_url(backend), "--table", "values_dbl", "-q"]
        assert main(args) == 0, capsys.readouterr().err
        assert [r["x"] for r in Dbl.query().order_by("id").to_dicts()] == [1.25, 0.1, 1e300]
    finally:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE values_dbl")


# -- issue 16: raw exceptions on the batch paths -----------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("u", "not-a-uuid"),
        ("kind", "b"),
        ("day", "2024-01-01"),
        ("doc", {"a": object()}),
        ("text", "lone \ud800 surrogate"),
        ("n", 2**70),
        ("n", 2.5),  # SQLite kept it in the INTEGER column (every read then failed)
        ("n", "5abc"),  # SQLite kept the text; MySQL refused with a raw driver message
        ("n", decimal.Decimal("1.5")),  # MySQL and PostgreSQL's casts rounded it
        ("text", {"not": "text"}),
    ],
)
def test_unvalidated_values_refused_naming_record_and_column(db, fresh, field, value):
    fresh(Val)
    rows = [{"n": 1}, {field: value}]
    column = Val.__ar_info__.columns[field].name
    _refused(db, column, 1, lambda: Val.batch_insert_from_dicts(rows, validate=False))
    records = [Val.model_construct(n=1), Val.model_construct(**{field: value})]
    _refused(db, column, 1, lambda: Val.batch_insert(records, validate=False))


def test_unvalidated_integers_stored_as_the_integer_they_stand_for(db, fresh):
    """Without validation, a whole float, an integral Decimal and integer text are stored as
    that integer on every backend (as validation would make them), on every write path."""
    fresh(Val)
    rows = [{"n": 3.0}, {"n": "7"}, {"n": decimal.Decimal("40")}, {"n": True}]
    Val.batch_insert_from_dicts(rows, validate=False)
    records = Val.query().order_by("id").all()
    assert [(r.n, type(r.n)) for r in records] == [(3, int), (7, int), (40, int), (1, int)]
    for record in records:
        record.__dict__["n"] = 2.5  # as model_construct would hold it (no validation)
    with pytest.raises(DataError) as caught:
        Val.batch_update(records, ["n"], validate=False)
    assert (caught.value.record_index, caught.value.column) == (0, "n")
    upsert = [Val.model_construct(id=records[1].id, n="8"), Val.model_construct(n=1.5)]
    with pytest.raises(DataError) as caught:
        Val.batch_upsert(upsert, validate=False)
    assert (caught.value.record_index, caught.value.column) == (1, "n")
    assert [r.n for r in Val.query().order_by("id").all()] == [3, 7, 40, 1]


def test_an_int_beyond_64_bits_is_refused_naming_the_column_on_every_write(db, fresh):
    """2**70 is a valid int and no integer column holds it: each write path refuses it with
    a DataError naming the column (and, in a batch, the record), never SQLite's bare
    OverflowError nor a server's "bigint out of range" that names nothing; nothing written."""
    fresh(Val)
    Val.batch_insert_from_dicts([{"n": i} for i in range(3)])
    records = Val.query().order_by("id").all()
    keys = [r.id for r in records]
    big = 2**70
    _ways(db, "n", big)  # save() and the batch inserts
    records[2].n = big
    refused = _refused(db, "n", 2, lambda: Val.batch_update(records, ["n"]))
    assert refused.context == "batch update of Val"
    rows = [{"id": keys[0], "n": 5}, {"id": keys[1], "n": big}]  # existing rows
    _refused(db, "n", 1, lambda: Val.batch_upsert(rows))
    records[2].n = big
    _refused(db, "n", None, lambda: records[2].save())
    query = Val.query().where({"id": keys[0]})
    assert "update of Val" in str(_refused(db, "n", None, lambda: query.update({"n": big})))
    assert [r.n for r in Val.query().order_by("id").all()] == [0, 1, 2]


def test_an_int_beyond_64_bits_in_a_large_batch_is_refused_naming_its_record(db, fresh):
    """From 300 rows a by-key write checks its values with one function compiled for the
    rows (the checks inlined); a refused value still names its record and column, and
    nothing is written."""
    fresh(Val)
    Val.batch_insert_from_dicts([{"n": i, "f": 0.5} for i in range(400)])
    records = Val.query().order_by("id").all()
    for record in records:
        record.n = record.n + 1000
        record.f = 1.5
    records[350].n = 2**70
    _refused(db, "n", 350, lambda: Val.batch_update(records, ["n", "f"]))
    rows = [{"id": r.id, "n": 5, "f": 2.5} for r in records]
    rows[351]["n"] = -(2**70)
    _refused(db, "n", 351, lambda: Val.batch_upsert(rows))
    assert [r.n for r in Val.query().order_by("id").all()] == list(range(400))
    records[350].n = 7
    assert Val.batch_update(records, ["n", "f"]) == 400
    stored = Val.query().order_by("id").all()
    assert [r.n for r in stored[349:352]] == [1349, 7, 1351] and {r.f for r in stored} == {1.5}


def test_lone_surrogate_refused_with_validation(db, fresh):
    fresh(Val)
    _ways(db, "text", "a\udc80b")


def test_a_nul_character_is_stored_exactly_or_refused_naming_the_column(db, fresh):
    """SQLite and MySQL keep a text holding NUL exactly; PostgreSQL's text types cannot
    hold one: every write path refuses it there as a DataError naming the column (and, in a
    batch, the record), before anything is written."""
    fresh(Val)
    value = "a" + chr(0) + "b"
    if dialect_name(db) != "postgresql":
        assert _back("text", value) == value
        return
    _ways(db, "text", value)
    Val.batch_insert_from_dicts([{"n": 1, "text": "x"}, {"n": 2, "text": "y"}])
    records = Val.query().order_by("id").all()
    records[1].text = value
    _refused(db, "text", 1, lambda: Val.batch_update(records, ["text"]))
    rows = [{"id": records[0].id, "text": "z"}, {"id": records[1].id, "text": value}]
    _refused(db, "text", 1, lambda: Val.batch_upsert(rows))
    query = Val.query().where({"id": records[0].id})
    refused = _refused(db, "text", None, lambda: query.update({"text": value}))
    assert refused.context == "update of Val" and "update of Val" in str(refused)
    assert [r.text for r in Val.query().order_by("id").all()] == ["x", "y"]


@pytest.mark.parametrize("rows", [3, 4_000])  # 4,000: LOAD DATA, COPY, COPY-d updates
def test_json_with_nan_is_stored_exactly_or_refused_naming_record_and_column(db, fresh, rows):
    """A dict holding NaN or Infinity is no JSON a server takes: PostgreSQL and MySQL refuse
    it in a batch insert, update or upsert, the error naming the record and the column
    (in the small forms and the bulk ones); SQLite keeps the text and reads the floats back
    (NaN as NaN)."""
    fresh(Val)
    data = [{"n": i, "doc": {"i": i}} for i in range(rows)]
    data[rows - 2]["doc"] = {"x": math.nan, "y": math.inf}
    if dialect_name(db) == "sqlite":
        Val.batch_insert_from_dicts(data)
        back = Val.query().where({"n": rows - 2}).one().doc
        assert math.isnan(back["x"]) and back["y"] == math.inf
        return
    for validate in (True, False):
        _refused(db, "doc", rows - 2,
                 lambda v=validate: Val.batch_insert_from_dicts(data, validate=v))
    Val.batch_insert_from_dicts([{"n": i, "doc": {"i": i}} for i in range(rows)])
    records = Val.query().order_by("id").all()
    for record in records:
        record.doc = {"j": 1}
    records[rows - 2].doc = {"x": math.nan}
    _refused(db, "doc", rows - 2, lambda: Val.batch_update(records, ["doc"]))
    upsert = [{"id": r.id, "doc": {"k": 1}} for r in records]
    upsert[rows - 2]["doc"] = {"x": math.inf}
    _refused(db, "doc", rows - 2, lambda: Val.batch_upsert(upsert))
    assert {str(r.doc) for r in Val.query()} == {str({"i": i}) for i in range(rows)}


def test_dataframe_int_column_with_nan_one_behaviour(db, fresh):
    pd = pytest.importorskip("pandas")
    fresh(Val)
    frame = pd.DataFrame({"n": [1, None, 3]})  # float64: NaN makes it so
    for validate in (True, False):
        Val.insert_dataframe(frame, validate=validate)
    assert [r.n for r in Val.query().order_by("id").all()] == [1, None, 3, 1, None, 3]
    assert all(type(r["n"]) in (int, type(None)) for r in Val.query().select("n").all())
    with pytest.raises(DataError) as caught:
        Val.insert_dataframe(pd.DataFrame({"n": [1, 2.5]}), validate=False)
    assert caught.value.record_index == 1 and caught.value.column == "n"
    message = str(caught.value)  # each piece once, the call first
    assert message.startswith("batch insert of Val: record 1 (row 1 of DataFrame): "), message
    assert message.count("record 1") == 1 and message.count("'n'") == 1, message
    assert Val.query().count() == 6


class Mail(Model):
    __table_name__ = "values_mail"
    id: int | None = None
    email: Annotated[str, Col(unique=True)]


def test_duplicate_key_error_names_record_and_line_once(db, fresh):
    fresh(Mail)
    rows = [{"email": f"e{i}"} for i in range(4000)]
    rows[3000]["email"] = "e5"
    for validate in (True, False):
        with pytest.raises(UniqueViolation) as caught:
            Mail.batch_insert_from_dicts(rows, validate=validate)
        message = str(caught.value)
        assert caught.value.record_index == 3000
        assert "record 3000" in message and "line" not in message, message
    csv = "email\n" + "\n".join(r["email"] for r in rows) + "\n"
    with pytest.raises(UniqueViolation) as caught:
        Mail.load_csv(io.StringIO(csv))
    message = str(caught.value)
    assert message.count("record 3000") == 1 and message.count("line") == 1, message
    assert "line 3002" in message
    assert Mail.query().count() == 0


class Keyed(Model):
    __table_name__ = "values_keyed"
    id: int | None = None
    k: Annotated[str, Col(unique=True)]
    f: float | None = None


@pytest.mark.backends("sqlite", "mysql")  # PostgreSQL stores NaN (see STORED)
def test_update_and_upsert_paths_refuse_the_same_floats(db, fresh):
    fresh(Keyed)
    Keyed.batch_insert_from_dicts([{"k": "a", "f": 1.0}, {"k": "b", "f": 2.0}])
    nan = float("nan")
    for rows in ([Keyed(k="c", f=1.0), Keyed(k="d", f=nan)],  # a new row
                 [Keyed(k="a", f=5.0), Keyed(k="b", f=nan)]):  # an existing row
        with pytest.raises(DataError) as caught:
            Keyed.batch_upsert(rows, conflict=["k"])
        assert (caught.value.record_index, caught.value.column) == (1, "f")
    records = Keyed.query().order_by("id").all()
    records[1].f = nan
    with pytest.raises(DataError) as caught:
        Keyed.batch_update(records, ["f"])
    assert (caught.value.record_index, caught.value.column) == (1, "f")
    with pytest.raises(DataError):
        Keyed.query().where({"k": "a"}).update({"f": nan})
    with pytest.raises(DataError):
        Keyed.query().where({"f": nan}).all()
    with pytest.raises(DataError):
        Keyed.query().where({"f": nan}).count()
    assert [(r.k, r.f) for r in Keyed.query().order_by("id").all()] == [("a", 1.0), ("b", 2.0)]


# -- a boolean column holding what is no boolean -------------------------------------------


class Flag(Model):
    __table_name__ = "values_flags"
    id: int | None = None
    k: int = 0
    flag: bool | None = None


#: Values another writer can store in a boolean column: SQLite's BOOLEAN has NUMERIC
#: affinity (it keeps text and fractions), MySQL's is TINYINT(1) (integers only);
#: PostgreSQL's boolean holds nothing else.
@pytest.mark.backends("sqlite", "mysql")
@pytest.mark.parametrize("value", ["yes", "true", 2, -1, 0.5], ids=repr)
def test_boolean_column_holding_another_value_is_refused_on_read(db, fresh, backend, value):
    if backend == "mysql" and not isinstance(value, int):
        pytest.skip("a TINYINT(1) column holds integers only")
    fresh(Flag)
    Flag.batch_insert([Flag(id=1, k=1, flag=True), Flag(id=2, k=2, flag=False),
                       Flag(id=3, k=3, flag=None)])
    assert [f.flag for f in Flag.query().order_by("id").all()] == [True, False, None]
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO values_flags (id, k, flag) VALUES (4, 4, :v)"),
                     {"v": value})
    reads = [
        lambda: Flag.query().all(),
        lambda: Flag.query().to_dicts(),
        lambda: Flag.find(4),
        lambda: Flag.query().select("flag").all(),
        lambda: list(Flag.query().each(2)),
        lambda: Flag.batch_upsert([Flag(id=4, k=40)], update=["k"]),  # reads the row back
    ]
    for read in reads:
        with pytest.raises(ValidationError) as caught:
            read()
        assert "flag: cannot read" in str(caught.value) and "not a boolean" in str(caught.value)
        assert caught.value.errors[0]["loc"] == ("flag",)
    assert "Flag row 4 " in str(caught.value)
    assert Flag.query().where({"id": [1, 2, 3]}).select("k").order_by("id").all() == [
        {"k": 1}, {"k": 2}, {"k": 3}
    ]
    with db.engine.connect() as conn:  # the upsert wrote nothing
        assert conn.exec_driver_sql("SELECT k FROM values_flags WHERE id = 4").scalar() == 4
