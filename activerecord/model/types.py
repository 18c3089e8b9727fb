"""Column types that store a value exactly or refuse it: each is a ``TypeDecorator`` whose
bind step raises ``ValueError`` (a ``DataError`` once it reaches the caller) for a value its
backend would not read back as given: :class:`ExactFloat`, :class:`ExactNumeric`,
:class:`NaiveDateTime`, :class:`UTCDateTime`, :class:`NaiveTime`; :class:`ExactBoolean` reads
only what a boolean column holds.

Example::

    >>> import datetime as dt
    >>> import sqlalchemy as sa
    >>> bind = UTCDateTime().bind_processor(sa.create_engine("sqlite://").dialect)
    >>> bind(dt.datetime(2024, 1, 1))
    Traceback (most recent call last):
    ...
    ValueError: ...
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ..backend.dialects import bind_processor, decimal_as_real, facts_class, float_guard

__all__ = [
    "ExactBoolean", "ExactFloat", "ExactNumeric", "NaiveDateTime", "NaiveTime", "UTCDateTime",
]


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Timezone-aware datetimes on every backend.

    PostgreSQL stores them natively; on MySQL and SQLite they are stored as UTC and come back
    with ``tzinfo=UTC``. A naive value, or one whose UTC instant falls outside years 1-9999
    (which no backend reads back), is refused with a ``ValueError`` before it is sent.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        return dialect.type_descriptor(facts_class(dialect).datetime_type(aware=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None or not isinstance(value, dt.datetime):
            return value  # the driver (or the column's own processor) judges other values
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} given for a timezone-aware column")
        try:
            utc = value.astimezone(dt.timezone.utc)
        except OverflowError:
            raise ValueError(f"{value!r} is outside years 1-9999 in UTC") from None
        return utc if facts_class(dialect).keeps_utc_offset else utc.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value  # type: ignore[no-any-return]


class NaiveDateTime(sa.TypeDecorator[dt.datetime]):
    """Naive datetimes (wall time, no zone): an aware value is refused with a ``ValueError``
    rather than stored as its wall time (SQLite, MySQL) or shifted into the session's time
    zone (PostgreSQL), both a different instant than the one given. Microseconds kept on
    MySQL (``DATETIME(6)``)."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        return dialect.type_descriptor(facts_class(dialect).datetime_type(aware=False))

    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], Any]:
        inner = bind_processor(self.impl_instance, dialect)

        def check(value: Any) -> Any:
            if isinstance(value, dt.datetime) and value.utcoffset() is not None:
                raise ValueError(
                    f"aware datetime {value!r} given for a naive datetime field; give it "
                    "naive (e.g. in UTC) or declare the field AwareDatetime"
                )
            return value if inner is None else inner(value)

        inline = getattr(inner, "inline", None)
        if inner is None or getattr(inner, "unchanged", False):
            check.inline = (  # type: ignore[attr-defined]
                "{v} if type({v}) is _datetime and {v}.tzinfo is None else {p}({v})",
                {"_datetime": dt.datetime},
            )
        elif inline is not None:  # SQLite's: its fast path takes naive datetimes only
            check.inline = inline  # type: ignore[attr-defined]
        return check


class NaiveTime(sa.TypeDecorator[dt.time]):
    """Times of day. No backend keeps a time's UTC offset (SQLite and MySQL have no such
    type; SQLAlchemy's PostgreSQL ``TIME`` drops it), so a ``time`` with ``tzinfo`` is
    refused with a ``ValueError``. Microseconds kept on MySQL (``TIME(6)``)."""

    impl = sa.Time
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        return dialect.type_descriptor(facts_class(dialect).time_type())

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if isinstance(value, dt.time) and value.tzinfo is not None:
            raise ValueError(
                f"time {value!r} has a tzinfo, which no backend stores; give a naive time"
            )
        return value


class _BooleanReads(dict[Any, "bool | None"]):
    """The stored values a boolean column reads as: 0, 1 and NULL (a C lookup per value);
    any other raises a ``ValueError`` (the read path names the row and field)."""

    def __missing__(self, value: Any) -> bool | None:
        raise ValueError(f"{value!r} is not a boolean (a boolean column holds 0 or 1)")


_BOOLEAN_READS = _BooleanReads({None: None, 0: False, 1: True})


class ExactBoolean(sa.TypeDecorator[bool]):
    """``BOOLEAN``, read exactly: where the column is an integer underneath (SQLite's
    ``BOOLEAN``, MySQL's ``TINYINT(1)``) and another writer stored something else in it
    (``'yes'``, ``2``, ``'0'`` as text), reading it raises a ``ValueError`` rather than
    SQLAlchemy's ``bool(value)``, which reads every one of them as ``True``. PostgreSQL's
    ``boolean`` holds nothing else: its values pass unchanged.

    >>> read = ExactBoolean().result_processor(sa.create_engine("sqlite://").dialect, None)
    >>> read(1), read(0), read(None)
    (True, False, None)
    >>> read("yes")
    Traceback (most recent call last):
    ...
    ValueError: 'yes' is not a boolean (a boolean column holds 0 or 1)
    """

    impl = sa.Boolean
    cache_ok = True

    def result_processor(
        self, dialect: sa.Dialect, coltype: Any
    ) -> Callable[[Any], bool | None] | None:
        if dialect.supports_native_boolean:  # a boolean type of the database's own
            return self.impl_instance.result_processor(dialect, coltype)
        return _BOOLEAN_READS.__getitem__


class ExactFloat(sa.TypeDecorator[float]):
    """A ``DOUBLE`` column refusing, with a ``ValueError``, the floats its backend would
    change or refuse (NaN, the infinities, -0.0: see ``dialects.float_guard``)."""

    impl = sa.Double
    cache_ok = True

    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
        return float_guard(dialect, self.impl_instance.bind_processor(dialect))


_INT64 = 2**63


class ExactNumeric(sa.TypeDecorator[decimal.Decimal]):
    """``NUMERIC(precision, scale)`` refusing, with a ``ValueError``, what the column cannot
    hold exactly: more decimal places than ``scale`` (the database would round), more digits
    before the point than ``precision - scale``, NaN and the infinities.

    SQLite's NUMERIC affinity turns every value (even text) into a 64-bit INTEGER or a REAL
    of 15 significant digits: values are sent as one of those where that is exact, and any
    other (an integer beyond 64 bits of more than 15 digits, a fraction of more than 15
    significant digits) is refused rather than rounded.

    >>> proc = ExactNumeric(5, 2).bind_processor(sa.create_engine("sqlite://").dialect)
    >>> proc(decimal.Decimal("123.45")), proc(decimal.Decimal("7.00"))
    (123.45, 7)
    """

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int = 38, scale: int = 10) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.digits = precision
        self.places = scale

    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], Any]:
        whole, places = self.digits - self.places, self.places
        real = decimal_as_real(dialect)

        def check(value: Any) -> Any:
            if value is None:
                return None
            number = value if isinstance(value, decimal.Decimal) else _to_decimal(value)
            sign, digits, exponent = number.as_tuple()
            if not isinstance(exponent, int):
                raise ValueError(f"{value!r} cannot be stored in a NUMERIC column")
            if exponent < -places or len(digits) + exponent > whole:
                # Exact (enough precision for every digit): only trailing zeros go.
                exact = decimal.Context(prec=len(digits) + 1)
                sign, digits, exponent = number.normalize(exact).as_tuple()
                if not isinstance(exponent, int) or exponent < -places:
                    raise ValueError(
                        f"{value!r} has more than {places} decimal places "
                        f"(NUMERIC({self.digits}, {places}) would round it)"
                    )
                if digits != (0,) and len(digits) + exponent > whole:
                    raise ValueError(
                        f"{value!r} has more than {whole} digits before the decimal point "
                        f"(NUMERIC({self.digits}, {places}))"
                    )
            if not real:
                return value if number is value else number
            if exponent >= 0 or number == number.to_integral_value():
                integer = int(number)
                if -_INT64 <= integer < _INT64:
                    return integer
            as_float = float(number)
            if decimal.Decimal(repr(as_float)) != number:
                raise ValueError(
                    f"{value!r} has more significant digits than SQLite stores exactly "
                    "(15, or a 64-bit integer)"
                )
            return as_float

        return check

    def result_processor(
        self, dialect: sa.Dialect, coltype: Any
    ) -> Callable[[Any], decimal.Decimal | None] | None:
        if not decimal_as_real(dialect):
            return self.impl_instance.result_processor(dialect, coltype)
        quantum = decimal.Decimal(1).scaleb(-self.places)
        context = decimal.Context(prec=self.digits + 20)

        def read(value: Any) -> decimal.Decimal | None:
            if value is None:
                return None
            number = decimal.Decimal(repr(value) if isinstance(value, float) else str(value))
            return number.quantize(quantum, context=context)

        return read


def _to_decimal(value: Any) -> decimal.Decimal:
    """A value given without validation as a Decimal (a float by its shortest repr)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    try:
        return decimal.Decimal(value)
    except (decimal.InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{value!r} is not a decimal number") from None
