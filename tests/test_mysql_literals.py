"""Column-at-a-time MySQL literals render exactly what PyMySQL's own mogrify renders."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activerecord.insert.literals import Literals

pytestmark = pytest.mark.backends("mysql")


class Color(str, enum.Enum):
    RED = "r'ed"


UTC = dt.timezone.utc
_KINDS = [
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(["", "'", "\\", '"', "\0", "\n\r\x1a", "%s", "%%", "ünï €"]),
    st.integers(),
    st.booleans(),
    st.datetimes(min_value=dt.datetime(1, 1, 1)),
    st.datetimes(timezones=st.just(UTC)),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.dates(),
    st.binary(max_size=6),
    st.just(Color.RED),
]


def _column(height: int) -> st.SearchStrategy[list[object]]:
    """One type with or without NULLs (the column-wise paths), or a mix (the fallback)."""
    return st.one_of(
        st.sampled_from(_KINDS).flatmap(
            lambda kind: st.lists(
                st.one_of(kind, st.none()) | kind, min_size=height, max_size=height
            )
        ),
        st.lists(st.one_of(*_KINDS, st.none()), min_size=height, max_size=height),
    )


def _raw(db):
    return db.engine.raw_connection()


def _check(raw, rows: list[tuple[object, ...]]) -> None:
    fmt = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
    cursor = raw.cursor()
    expected = [cursor.mogrify(fmt, row) for row in rows]
    assert Literals(raw.dbapi_connection).rows(fmt, rows) == expected


@pytest.mark.parametrize("mode", ["", "NO_BACKSLASH_ESCAPES"])
def test_every_fast_type_is_checked_against_the_driver(db, backend, mode):
    raw = _raw(db)
    try:
        raw.cursor().execute(f"SET SESSION sql_mode = '{mode}'")
        literals = Literals(raw.dbapi_connection)
        assert set(literals.converters) == {str, int, bool, dt.datetime, type(None)}
        rows = [
            ("it's \\ \"x\"\0\n", 1, True, dt.datetime(2024, 1, 2, 3, 4, 5, 6), None),
            ("plain", -(2**70), False, dt.datetime(2024, 1, 2, 3, 4, 5), None),
        ]
        _check(raw, rows)
        _check(raw, [(None, "%s", dt.datetime(2024, 1, 2, tzinfo=UTC), 1.5, Color.RED)])
    finally:
        raw.invalidate()  # its sql_mode is not the pool's: do not hand it back


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), width=st.integers(1, 4), height=st.integers(1, 6))
def test_random_columns_render_as_mogrify_does(db, backend, data, width, height):
    columns = [data.draw(_column(height)) for _ in range(width)]
    raw = _raw(db)
    try:
        _check(raw, list(zip(*columns)))
    finally:
        raw.close()


def test_values_of_one_type_with_nulls(db, backend):
    raw = _raw(db)
    try:
        stamp = dt.datetime(2020, 2, 3, 4, 5, 6, 7)
        _check(raw, [("a'", None, stamp, 5), (None, True, None, None), ("b", False, stamp, 6)])
        _check(raw, [(decimal.Decimal("1.50"), uuid.UUID(int=1).hex, dt.date(2020, 1, 1))])
    finally:
        raw.close()
