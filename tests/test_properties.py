"""Property tests: random rows of every supported type round-trip unchanged on every backend."""

from __future__ import annotations

import datetime as dt
import decimal
import math

import pytest

import activerecord

from .conftest import optional
from .models import Everything, Status

# hypothesis is a dev dependency, not an extra of the library: without it each test that
# draws examples is skipped with the reason, and the module's other tests still run.
hypothesis = optional("hypothesis", "dev")
st = optional("hypothesis.strategies", "dev")


# Characters every backend stores: no surrogates (not encodable); NUL only where allowed.
def _text(backend: str, max_size: int) -> st.SearchStrategy[str]:
    blacklist = ("Cs",)
    chars = st.characters(
        blacklist_categories=blacklist,
        blacklist_characters="\x00" if backend == "postgresql" else "",
    )
    return st.text(chars, max_size=max_size)


# Floats every backend stores: -0.0 only on PostgreSQL (SQLite and MySQL refuse it, as they
# would read it back as 0.0; see tests/test_values.py).
def _floats(backend: str) -> st.SearchStrategy[float]:
    finite = st.floats(allow_nan=False, allow_infinity=False)
    if backend == "postgresql":
        return finite
    return finite.filter(lambda x: x != 0 or math.copysign(1.0, x) > 0)


def _json(backend: str) -> st.SearchStrategy[object]:
    key = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                  max_size=8)
    leaf = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**53), 2**53), key,
    )
    return st.dictionaries(key, st.one_of(leaf, st.lists(leaf, max_size=3)), max_size=4)


def rows(backend: str) -> st.SearchStrategy[dict[str, object]]:
    years = dict(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30))
    offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
    return st.fixed_dictionaries(
        {},
        optional={
            "i": st.integers(-(2**63), 2**63 - 1),
            "s": _text(backend, 50),
            "t": _text(backend, 300),
            "b": st.booleans(),
            "f": _floats(backend),
            "d": st.decimals(
                min_value=decimal.Decimal("-99999999.9999"),
                max_value=decimal.Decimal("99999999.9999"),
                places=4,
                allow_nan=False,
                allow_infinity=False,
            ),
            "ts": st.datetimes(**years),
            "tz": st.datetimes(**years, timezones=offsets),
            "day": st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)),
            "tm": st.times(),
            "u": st.uuids(),
            "e": st.sampled_from(Status),
            "raw": st.binary(max_size=200),
            "doc": _json(backend),
            "items": st.lists(st.integers(-(2**31), 2**31), max_size=5),
        },
    )


def _same(field: str, want: object, got: object) -> bool:
    if isinstance(want, decimal.Decimal) and isinstance(got, decimal.Decimal):
        return want == got
    if isinstance(want, float) and isinstance(got, float):  # -0.0 == 0.0: the sign too
        return want == got and math.copysign(1.0, want) == math.copysign(1.0, got)
    return want == got


@pytest.mark.parametrize("path", ["instances", "dicts"])
def test_random_rows_round_trip(fresh, backend, path):
    fresh(Everything)

    @hypothesis.settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[
            hypothesis.HealthCheck.function_scoped_fixture,
            hypothesis.HealthCheck.too_slow,
        ],
    )
    @hypothesis.given(st.lists(rows(backend), min_size=1, max_size=8))
    def check(batch: list[dict[str, object]]) -> None:
        Everything.query().hard_delete(all_rows=True)
        if path == "instances":
            records = [Everything(**row) for row in batch]
            Everything.batch_insert(records)
        else:
            created = Everything.batch_insert_from_dicts(batch)
            assert isinstance(created, list)
            records = created
        stored = {r.id: r for r in Everything.query().all()}
        assert len(stored) == len(batch)
        for row, record in zip(batch, records, strict=True):
            back = stored[record.id]
            for field in Everything.__ar_info__.fields:
                if field == "id":
                    continue
                want = row.get(field)
                got = getattr(back, field)
                assert _same(field, want, got), (field, want, got)

    check()


@pytest.mark.parametrize(
    ("field", "value"),
    [("i", 2**63), ("i", -(2**63) - 1), ("s", "x" * 51), ("d", decimal.Decimal("1e9"))],
)
def test_out_of_range_values_fail_clearly(fresh, backend, field, value):
    fresh(Everything)
    with pytest.raises(activerecord.ActiveRecordError) as info:
        Everything.create(**{field: value})
    assert field in str(info.value) or "range" in str(info.value).lower()
    assert Everything.query().count() == 0


def test_out_of_range_in_a_batch_names_the_record(fresh, backend):
    fresh(Everything)
    rows = [{"i": 1}, {"i": 2}, {"i": 2**63}]
    with pytest.raises(activerecord.DataError) as info:
        Everything.batch_insert_from_dicts(rows, validate=False)
    assert Everything.query().count() == 0
    if backend == "sqlite":  # the driver refuses the value itself: the record is known
        assert info.value.record_index == 2
