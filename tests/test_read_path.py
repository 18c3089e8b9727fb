"""Records read back: the fast read path gives exactly what full validation gives, and a row
the model would refuse still raises our ValidationError naming its key."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Annotated, Any, Literal

import pydantic
import pytest
import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col
from activerecord.validation import list_adapter, record_builder

from .conftest import optional
from .models import Everything, Status
from .test_properties import _floats, _text
from .test_properties import rows as everything_rows

hypothesis = optional("hypothesis", "dev")  # without it, the tests drawing examples skip
st = optional("hypothesis.strategies", "dev")


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Size(enum.Enum):
    SMALL = 1
    LARGE = 2


class Plain(Model):
    """A field of each type whose values the read path can take as the column returns them."""

    __table_name__ = "read_plain"

    id: int | None = None
    i: int | None = None
    s: Annotated[str, Field(max_length=20)] | None = None
    t: str | None = None
    b: bool | None = None
    f: float | None = None
    ts: dt.datetime | None = None
    tz: Annotated[dt.datetime, Col(timezone=True)] | None = None
    day: dt.date | None = None
    tm: dt.time | None = None
    u: uuid.UUID | None = None
    e: Status | None = None
    size: Size | None = None
    kind: Literal["a", "bb"] | None = None
    level: Literal[1, 2, 3] | None = None
    raw: bytes | None = None
    count: int = 0
    name: str = "x"


def plain_rows(backend: str) -> st.SearchStrategy[dict[str, object]]:
    years = dict(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30))
    offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
    return st.fixed_dictionaries(
        {},
        optional={
            "i": st.integers(-(2**63), 2**63 - 1),
            "s": _text(backend, 20),
            "t": _text(backend, 100),
            "b": st.booleans(),
            "f": _floats(backend),
            "ts": st.datetimes(**years),
            "tz": st.datetimes(**years, timezones=offsets),
            "day": st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)),
            "tm": st.times(),
            "u": st.uuids(),
            "e": st.sampled_from(Status),
            "size": st.sampled_from(Size),
            "kind": st.sampled_from(["a", "bb"]),
            "level": st.sampled_from([1, 2, 3]),
            "raw": st.binary(max_size=100),
            "count": st.integers(-(2**31), 2**31),
            "name": _text(backend, 30),
        },
    )


def validated(model: type[ActiveRecord], db: Any) -> list[Any]:
    """The reference: SQLAlchemy's own rows, each fully validated by pydantic."""
    query = model.query().order_by("id")
    with db.engine.connect() as conn:
        rows = conn.execute(query.select_statement()).all()
    keys = list(model.__ar_info__.fields)
    return list(list_adapter(model).validate_python([dict(zip(keys, r)) for r in rows]))


def assert_identical(got: list[Any], want: list[Any]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert type(a) is type(b)
        assert list(a.__dict__) == list(b.__dict__)
        for name, value in b.__dict__.items():
            mine = a.__dict__[name]
            assert type(mine) is type(value), (name, mine, value)
            assert mine == value, (name, mine, value)
            if isinstance(value, dt.datetime | dt.time):
                assert mine.utcoffset() == value.utcoffset(), (name, mine, value)
        assert a.model_fields_set == b.model_fields_set
        assert a.__pydantic_extra__ == b.__pydantic_extra__
        assert a.__pydantic_private__ == b.__pydantic_private__
        assert not a.is_new_record
        assert a.changed_fields == set()
        assert a.model_dump() == b.model_dump()


def test_the_plain_model_takes_the_fast_path():
    # Guards the equivalence test below: it must exercise the path that skips validation.
    assert record_builder(Plain)._checks is not None
    assert record_builder(Everything)._checks is None  # decimal, JSON, AwareDatetime


@pytest.mark.parametrize("model", [Plain, Everything])
def test_read_records_are_identical_to_validated_ones(fresh, db, backend, model):
    fresh(model)
    strategy = plain_rows(backend) if model is Plain else everything_rows(backend)

    @hypothesis.settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[
            hypothesis.HealthCheck.function_scoped_fixture,
            hypothesis.HealthCheck.too_slow,
        ],
    )
    @hypothesis.given(st.lists(strategy, min_size=1, max_size=8))
    def check(batch: list[dict[str, object]]) -> None:
        model.query().hard_delete(all_rows=True)
        model.batch_insert_from_dicts(batch, return_records=False)
        want = validated(model, db)
        assert_identical(model.query().order_by("id").all(), want)
        assert_identical(list(model.query().each(size=3)), want)
        first = model.query().order_by("id").first()
        assert_identical([first], want[:1])
        dicts = model.query().order_by("id").to_dicts(chunk_size=3)
        with db.engine.connect() as conn:
            rows = conn.execute(model.query().order_by("id").select_statement()).all()
        assert [list(d.values()) for d in dicts] == [list(r) for r in rows]
        for d, r in zip(dicts, rows):
            assert [type(v) for v in d.values()] == [type(v) for v in r]

    check()


def test_records_read_can_be_changed_and_saved(fresh, backend):
    fresh(Plain)
    Plain.batch_insert_from_dicts([{"i": 1, "s": "a"}, {"i": 2}], return_records=False)
    first, second = Plain.query().order_by("id").all()
    first.i = "5"  # validate_assignment still validates
    assert first.i == 5
    assert first.changed_fields == {"i"}
    assert second.changed_fields == set()
    first.save()
    assert Plain.find(first.id).i == 5
    with pytest.raises(pydantic.ValidationError):
        second.kind = "zzz"


# -- rows the model would refuse ----------------------------------------------------------------


class Guarded(Model):
    """Constraints the column does not enforce: its values must be validated on read."""

    __table_name__ = "read_guarded"

    id: int | None = None
    short: Annotated[str, Field(max_length=3), Col(type=sa.String(40))] = "a"
    kind: Annotated[Literal["a", "b"], Col(type=sa.String(40))] = "a"
    level: Annotated[int, Field(ge=0), Col(type=sa.BigInteger())] = 0
    size: Size = Size.SMALL
    status: Status = Status.ACTIVE


class Checked(Model):
    """A field validator refuses some values the column can hold."""

    __table_name__ = "read_checked"

    id: int | None = None
    word: str = "ok"

    @pydantic.field_validator("word")
    @classmethod
    def _no_bad(cls, value: str) -> str:
        if value == "bad":
            raise ValueError("bad word")
        return value


_FILLERS: dict[str, dict[str, Any]] = {
    "Guarded": {"short": "a", "kind": "a", "level": 0, "size": "1", "status": "active"},
    "Checked": {},
    "Plain": {"count": 0, "name": "x"},
}


def _store(model: type[ActiveRecord], db: Any, **values: Any) -> None:
    """Write a row around the model's checks (as another program would)."""
    values = {**_FILLERS[model.__name__], **values}
    table = sa.table(
        model.__table__.name, *(sa.column(c.name) for c in model.__table__.columns
                                if c.name in values)
    )
    with db.engine.begin() as conn:
        conn.execute(sa.insert(table).values(**values))


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"short": "toolong"}, "short"),
        ({"kind": "c"}, "kind"),
        ({"level": -1}, "level"),
        ({"size": "3"}, "size"),
        ({"status": "gone"}, "status"),
    ],
)
def test_a_row_the_model_refuses_raises_naming_its_key(fresh, db, backend, values, field):
    fresh(Guarded)
    good = Guarded.batch_insert_from_dicts([{}, {}])  # keys as the server gives them
    _store(Guarded, db, id=7, **values)
    for read in (
        lambda: Guarded.query().all(),
        lambda: Guarded.query().where({"id": 7}).first(),
        lambda: list(Guarded.query().each(size=2)),
        lambda: Guarded.find(7),
    ):
        with pytest.raises(activerecord.ValidationError) as info:
            read()
        assert "Guarded row 7" in str(info.value)
        assert field in str(info.value)
    assert len(Guarded.query().where({"id": [r.id for r in good]}).all()) == 2


def test_a_field_validator_still_runs_on_read(fresh, db, backend):
    fresh(Checked)
    Checked.batch_insert_from_dicts([{"word": "fine"}], return_records=False)
    _store(Checked, db, id=5, word="bad")
    with pytest.raises(activerecord.ValidationError, match="Checked row 5"):
        Checked.query().all()


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    ("stored", "field"),
    [({"i": "abc"}, "i"), ({"i": 1.5}, "i"), ({"f": "x"}, "f"), ({"s": "y" * 21}, "s")],
)
def test_sqlite_values_of_another_type_are_validated(fresh, db, backend, stored, field):
    # SQLite keeps a value of any type in any column: the column type guarantees nothing.
    fresh(Plain)
    _store(Plain, db, id=3, **stored)
    with pytest.raises(activerecord.ValidationError) as info:
        Plain.query().all()
    assert "Plain row 3" in str(info.value)
    assert field in str(info.value)


@pytest.mark.backends("sqlite")
def test_sqlite_an_integer_in_a_float_column_reads_as_validation_gives_it(fresh, db, backend):
    fresh(Plain)
    _store(Plain, db, id=1, f=sa.cast(sa.literal("2"), sa.Integer))
    assert_identical(Plain.query().all(), validated(Plain, db))


def test_decimal_fields_read_exactly(fresh, db, backend):
    fresh(Everything)
    Everything.batch_insert_from_dicts(
        [{"d": decimal.Decimal("1.5")}, {"d": None}, {"d": decimal.Decimal("-12345678.9999")}],
        return_records=False,
    )
    assert_identical(Everything.query().order_by("id").all(), validated(Everything, db))


# -- the collector around reads -------------------------------------------------------------------


def _reads() -> list[Any]:
    return [
        Plain.query().all(), Plain.query().to_dicts(chunk_size=2),
        Plain.query().select("i").all(),
    ]


def test_reads_leave_the_collector_on_and_others_frozen_objects_frozen(fresh, backend):
    import gc

    fresh(Plain)
    Plain.batch_insert_from_dicts([{"i": n} for n in range(5)], return_records=False)
    assert gc.isenabled()
    held = [[n] for n in range(100)]  # objects someone froze (as before a fork)
    gc.freeze()
    try:
        assert gc.get_freeze_count() >= 100
        results = _reads()
        assert gc.isenabled()
        # Ours never unfreezes theirs: frozen objects are in no generation get_objects lists.
        held_ids = set(map(id, held))
        assert not any(id(o) in held_ids for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert [len(r) for r in results] == [5, 5, 5]
    del held


def test_records_read_are_still_collected(fresh, backend):
    import gc
    import weakref

    fresh(Plain)
    Plain.batch_insert_from_dicts([{"i": 1}], return_records=False)
    record = Plain.query().all()[0]
    assert gc.get_freeze_count() == 0  # promoted, not left frozen
    record.__dict__["t"] = None
    ref = weakref.ref(record)
    cycle: list[Any] = [record]
    cycle.append(cycle)
    object.__setattr__(record, "__pydantic_private__", {"cycle": cycle})
    del record, cycle
    gc.collect()
    assert ref() is None
