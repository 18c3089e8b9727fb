"""Values on their way to the driver: bind processors, the floats and temporal values each
backend refuses, and SQL text sent without parameters.

Example::

    >>> import sqlalchemy as sa
    >>> guard = float_guard(sa.create_engine("sqlite://").dialect)
    >>> guard(1.5)
    1.5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from .base import facts_class

__all__ = [
    "bind_processor", "float_guard", "integer_guard", "unsigned_integer_guard", "without_params",
]

_INF = float("inf")
#: Every special float value; a backend keeping all of them needs no guard.
_ALL_SPECIALS = frozenset({"nan", "inf", "-0.0"})


def bind_processor(
    type_: sa.types.TypeEngine[Any], dialect: sa.Dialect
) -> Callable[[Any], Any] | None:
    """The function SQLAlchemy applies to a bound value of ``type_`` (None: none applies).

    Where SQLAlchemy's own is slow and an exact equivalent is known, that one (the dialect
    class's ``fast_bind``: SQLite DATETIME's text format).

    >>> import datetime as dt
    >>> from sqlalchemy.dialects import sqlite as sqlite_dialect
    >>> bind_processor(sa.DateTime(), sqlite_dialect.dialect())(dt.datetime(2024, 1, 2, 3, 4))
    '2024-01-02 03:04:00.000000'
    """
    impl = type_.dialect_impl(dialect)
    proc = impl.bind_processor(dialect)
    if isinstance(impl, sa.Float) and not isinstance(impl, sa.types.TypeDecorator):
        return float_guard(dialect, proc)  # a reflected float column: refuse the same values
    if proc is None and isinstance(impl, sa.Integer):
        return unsigned_integer_guard if getattr(impl, "unsigned", False) else integer_guard
    family = facts_class(dialect)
    if (
        proc is None
        and family.temporal_as_text
        and isinstance(impl, (sa.Date, sa.DateTime, sa.Time))
    ):
        return _temporal_guard(impl.python_type)
    if proc is None and family.text_refuses_nul and isinstance(impl, sa.String) \
            and not isinstance(impl, sa.Enum):
        return _nul_guard
    if proc is not None:
        return family.fast_bind(impl, proc) or proc
    return proc


def _nul_guard(value: Any) -> Any:
    """Refuse a text holding NUL where the backend's text types cannot (PostgreSQL).

    >>> _nul_guard("a" + chr(0))
    Traceback (most recent call last):
    ...
    ValueError: a text with a NUL character (\\x00) cannot be stored here (PostgreSQL text)
    """
    if type(value) is str and "\x00" in value:
        raise ValueError("a text with a NUL character (\\x00) cannot be stored here "
                         "(PostgreSQL text)")
    return value


# A text without NUL (the usual) or anything else needs nothing; a NUL takes the call.
_nul_guard.inline = (  # type: ignore[attr-defined]
    "{v} if type({v}) is not str or '\\x00' not in {v} else {p}({v})", {},
)
_nul_guard.unchanged = True  # type: ignore[attr-defined]  # values it passes, as given


def float_guard(
    dialect: sa.Dialect, then: Callable[[Any], Any] | None = None
) -> Callable[[Any], Any] | None:
    """A bind processor refusing the floats this backend cannot store (its dialect class's
    ``float_specials``) with a ``ValueError``, then applying ``then``; None where every float
    is stored as given (PostgreSQL, unless ``then``). Given as source too (``inline``), for
    row builders: an ordinary number costs one comparison.

    >>> import sqlalchemy as sa
    >>> guard = float_guard(sa.create_engine("sqlite://").dialect)
    >>> guard(1.5), guard(float("inf"))
    (1.5, inf)
    >>> guard(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: NaN cannot be stored on sqlite (it would read back as NULL)
    """
    family = facts_class(dialect)
    stored = family.float_specials
    if stored >= _ALL_SPECIALS:
        return then
    name = dialect.name
    lost = family.float_lost_as
    after = then

    def guard(value: Any) -> Any:
        if isinstance(value, float):
            if value != value:
                if "nan" not in stored:
                    raise ValueError(f"NaN cannot be stored on {name}{lost}")
            elif value in (_INF, -_INF):
                if "inf" not in stored:
                    raise ValueError(f"{value} cannot be stored on {name}")
            elif value == 0 and math.copysign(1.0, value) < 0 and "-0.0" not in stored:
                raise ValueError(f"-0.0 cannot be stored on {name} (it would read back as 0.0)")
        return value if after is None else after(value)

    # A finite float other than 0 needs nothing (the usual); anything else takes the call.
    guard.inline = (  # type: ignore[attr-defined]
        "{v} if type({v}) is float and {v} != 0 and {v} - {v} == 0 else {p}({v})",
        {},
    )
    return guard


def _integer_guard(low: int, high: int) -> Callable[[Any], Any]:
    """The bind check of an integer column holding ``low``..``high`` (see
    :data:`integer_guard`)."""

    def guard(value: Any) -> Any:
        if value is None:
            return None
        number: int | None = None
        if isinstance(value, int):  # bool and IntEnum are ints: sent as they are
            number = value
        elif isinstance(value, float):
            if value.is_integer():
                number = value = int(value)
        elif isinstance(value, Decimal):
            if value.is_finite() and value == value.to_integral_value():
                number = value = int(value)
        elif isinstance(value, str):
            try:
                number = value = int(value)
            except ValueError:
                pass
        else:
            return value  # another type: the driver sends it or refuses it
        if number is None:
            raise ValueError(f"{value!r} is not a whole number for an integer column")
        if not low <= number <= high:
            raise ValueError(f"{value!r} is out of range for a 64-bit integer column")
        return value

    # An int in range or NULL (the usual) needs nothing; anything else takes the call.
    guard.inline = (  # type: ignore[attr-defined]
        "{v} if type({v}) is int and " + f"{low} <= " + "{v}" + f" <= {high}"
        + " or {v} is None else {p}({v})",
        {},
    )

    def fits(values: list[Any]) -> bool:
        """Whether the guard leaves every one of ``values`` as it is (ints in range and
        NULLs): C loops over a whole column, so a batch of such values takes no call and no
        new row tuple at all."""
        kinds = set(map(type, values))
        if not kinds <= _INT_OR_NONE:
            return False
        if _NONE_TYPE in kinds:
            values = [v for v in values if v is not None]
        return not values or (low <= min(values) and max(values) <= high)

    guard.fits = fits  # type: ignore[attr-defined]
    return guard


_NONE_TYPE = type(None)
_INT_OR_NONE = frozenset({int, _NONE_TYPE})


#: A value for an integer column as the integer it stands for, or a ``ValueError``: without
#: validation a driver sends what it is given, and SQLite keeps ``2.5`` or ``'abc'`` in an
#: INTEGER column as they are (every later read of the table then fails), MySQL rounds
#: ``2.5`` and PostgreSQL's casts round it too. Whole floats, integral decimals and integer
#: text become that integer (as validation would make them). An integer beyond 64 bits
#: (which no backend's integer column holds, and which SQLite's driver refuses with a bare
#: ``OverflowError``) is refused too.
#:
#: >>> integer_guard(7), integer_guard(3.0), integer_guard(" 12 ")
#: (7, 3, 12)
#: >>> integer_guard(2.5)
#: Traceback (most recent call last):
#: ...
#: ValueError: 2.5 is not a whole number for an integer column
integer_guard = _integer_guard(-(2**63), 2**63 - 1)
#: The same for MySQL's ``BIGINT UNSIGNED`` (and narrower unsigned) columns.
unsigned_integer_guard = _integer_guard(0, 2**64 - 1)


def _temporal_guard(kind: type) -> Callable[[Any], Any]:
    """Refuse what is not a date/time object where the driver would send it as text for the
    server to parse (as SQLite's and psycopg's conversions refuse it)."""

    def guard(value: Any) -> Any:
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"expected a {kind.__name__}, got {type(value).__name__}")
        return value

    name = f"_{kind.__name__}_kind"
    guard.inline = (  # type: ignore[attr-defined]
        "{v} if {v} is None or isinstance({v}, " + name + ") else {p}({v})",
        {name: kind},
    )
    guard.unchanged = True  # type: ignore[attr-defined]  # values it passes, it passes as given
    return guard


def without_params(sql: str, dialect: sa.Dialect) -> str:
    """Compiled SQL text as the driver must get it when it is sent with no parameters.

    SQLAlchemy doubles every ``%`` in the text it compiles for ``format``/``pyformat``
    drivers (psycopg, PyMySQL), identifiers included; those drivers read ``%%`` back as ``%``
    only while they interpolate parameters. A statement sent alone (a ``COPY``, a multi-row
    ``INSERT`` whose rows are already literals, a table name passed as a value) needs them
    undone, or ``"rate%"`` reaches the server as ``"rate%%"``.

    >>> from sqlalchemy.dialects import postgresql
    >>> without_params('COPY "q_100%%" (id) FROM STDIN', postgresql.psycopg.dialect())
    'COPY "q_100%" (id) FROM STDIN'
    """
    if dialect.paramstyle in ("format", "pyformat"):
        return sql % ()  # exactly the driver's reading (a stray placeholder raises)
    return sql
