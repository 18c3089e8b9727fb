"""From pydantic fields to SQLAlchemy columns: one pure, ordered mapping.

The order matters: ``Enum`` before ``str`` (a ``str`` enum is both), ``bool`` before ``int``,
``datetime`` before ``date``. ``Optional[X]`` means nullable. A type with no mapping is a
:class:`SchemaError` naming the field. Any column can be adjusted with :class:`Col` in
``Annotated`` metadata. Float, Decimal, datetime and time columns are type decorators that
refuse (``ValueError``, a ``DataError`` once it reaches the caller) a value their backend
would not read back as given: see :class:`ExactFloat`, :class:`ExactNumeric`,
:class:`NaiveDateTime`, :class:`UTCDateTime`, :class:`NaiveTime`::

    >>> import datetime
    >>> column_type(datetime.date)
    Date()
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pydantic
import sqlalchemy as sa
from pydantic.fields import FieldInfo
from sqlalchemy.dialects import mysql

from ..backend.dialects import bind_processor, decimal_as_real, facts_class, float_guard
from ..errors import SchemaError

__all__ = ["Col", "column_for_field", "column_type", "unwrap_optional"]


@dataclass(frozen=True)
class Col:
    """Column options for a field, given in ``Annotated[...]`` metadata.

    >>> from typing import Annotated
    >>> from activerecord import ActiveRecord
    >>> class Account(ActiveRecord):
    ...     __table_name__ = "doc_accounts"
    ...     id: int | None = None
    ...     email: Annotated[str, Col(unique=True)]
    >>> Account.__table__.c.email.unique
    True
    """

    primary_key: bool = False
    unique: bool = False
    index: bool = False
    nullable: bool | None = None
    server_default: str | sa.TextClause | None = None
    type: Any = None
    name: str | None = None
    autoincrement: bool | Literal["auto"] = "auto"
    foreign_key: str | None = None
    timezone: bool | None = None


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


def _datetime(aware: bool) -> sa.types.TypeEngine[Any]:
    return UTCDateTime() if aware else NaiveDateTime()


def unwrap_annotated(annotation: Any, metadata: list[Any]) -> Any:
    """Strip ``Annotated`` (also inside ``Optional``), moving its metadata into ``metadata``."""
    while get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        for item in extra:
            if isinstance(item, FieldInfo):
                metadata.extend(item.metadata)
            else:
                metadata.append(item)
        annotation = base
    return annotation


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """Split ``X | None`` into ``(X, True)``; anything else into ``(annotation, False)``."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) != len(get_args(annotation))
        if len(args) == 1:
            return args[0], nullable
        return Union[tuple(args)], nullable  # noqa: UP007 - rebuilding a runtime union
    return annotation, False


def _max_length(metadata: list[Any]) -> int | None:
    for item in metadata:
        if isinstance(item, annotated_types.MaxLen):
            return int(item.max_length)
        inner = getattr(item, "max_length", None)
        if isinstance(inner, int):
            return inner
    return None


def _decimal_shape(metadata: list[Any]) -> tuple[int | None, int | None]:
    """``(max_digits, decimal_places)`` given in the field's metadata (None where not)."""
    digits, places = None, None
    for item in metadata:
        digits = getattr(item, "max_digits", None) or digits
        places = getattr(item, "decimal_places", None) if places is None else places
    return digits, places


def _json() -> sa.JSON:
    """JSON whose ``None`` is SQL NULL (so ``where({"doc": None})`` and ``IS NULL`` find it),
    not the JSON text ``null``."""
    return sa.JSON(none_as_null=True)


def _is_json(tp: Any) -> bool:
    origin = get_origin(tp) or tp
    if origin in (dict, list, tuple, set, frozenset):
        return True
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _literal_type(values: tuple[Any, ...]) -> sa.types.TypeEngine[Any] | None:
    if all(isinstance(v, str) for v in values):
        return sa.String(max(len(v) for v in values))
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return None


def _enum_type(tp: type[enum.Enum]) -> sa.Enum:
    labels = [str(member.value) for member in tp]
    return sa.Enum(
        tp,
        native_enum=False,
        values_callable=lambda cls: [str(m.value) for m in cls],
        length=max((len(v) for v in labels), default=1),
        validate_strings=True,
    )


def _decimal_type(metadata: list[Any]) -> ExactNumeric | None:
    digits, places = _decimal_shape(metadata)
    if digits is None:  # NUMERIC(38, 10): 28 digits before the point, 10 after
        digits, places = 38, 10 if places is None else places
    elif places is None or places > digits:
        return None  # column_for_field says why (as Django's check does)
    return ExactNumeric(max(digits, places or 0), places or 0)


def column_type(
    annotation: Any,
    base: Any = None,
    *,
    metadata: list[Any] | None = None,
    keyed: bool = False,
    aware: bool | None = None,
) -> sa.types.TypeEngine[Any] | None:
    """The SQLAlchemy type for a (non-optional) annotation, or None if there is no mapping.

    ``keyed`` marks a column used in a key or index (MySQL cannot index unbounded TEXT).

    >>> column_type(bool)
    Boolean()
    """
    if isinstance(annotation, sa.types.TypeEngine):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, sa.types.TypeEngine):
        return annotation()
    tp = base if base is not None else annotation
    metadata = metadata or []
    if get_origin(tp) is Literal:
        return _literal_type(get_args(tp))
    if not isinstance(tp, type):
        return _json() if _is_json(tp) else None
    if issubclass(tp, enum.Enum):
        return _enum_type(tp)
    if issubclass(tp, bool):
        return sa.Boolean()
    if issubclass(tp, int):
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    if issubclass(tp, float):
        return ExactFloat()
    if issubclass(tp, decimal.Decimal):
        return _decimal_type(metadata)
    if tp is pydantic.AwareDatetime:
        return _datetime(True)
    if tp is pydantic.NaiveDatetime:
        return _datetime(False)
    if issubclass(tp, dt.datetime):
        return _datetime(bool(aware))
    if issubclass(tp, dt.date):
        return sa.Date()
    if issubclass(tp, dt.time):
        return NaiveTime()
    if issubclass(tp, uuid.UUID):
        # MariaDB's native UUID type rejects some valid UUIDs (odd variant bits): use CHAR(32).
        return sa.Uuid().with_variant(sa.Uuid(native_uuid=False), "mysql", "mariadb")
    if issubclass(tp, str):
        length = _max_length(metadata)
        if length is not None:
            return sa.String(length)
        if keyed:
            return sa.String().with_variant(sa.String(255), "mysql", "mariadb")
        # MySQL's TEXT holds 64 KiB: LONGTEXT (4 GiB) holds what the other backends do.
        return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
    if issubclass(tp, bytes):
        return sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
    if _is_json(tp):
        return _json()
    return None


def column_for_field(
    model_name: str, field_name: str, info: FieldInfo, *, primary_key: bool = False,
    keyed: bool = False,
) -> sa.Column[Any]:
    """Build the Column for one pydantic field (``keyed``: a key or index covers it).

    >>> from pydantic.fields import FieldInfo
    >>> column_for_field("User", "age", FieldInfo(annotation=int | None)).nullable
    True
    """
    metadata = list(info.metadata)
    base, optional = unwrap_optional(info.annotation)
    base = unwrap_annotated(base, metadata)
    opts = next((m for m in metadata if isinstance(m, Col)), Col())
    is_pk = primary_key or opts.primary_key
    keyed = keyed or is_pk or opts.unique or opts.index
    if opts.type is not None:
        sa_type = column_type(opts.type)
    else:
        sa_type = column_type(base, metadata=metadata, keyed=keyed, aware=opts.timezone)
    digits, places = _decimal_shape(metadata)
    if sa_type is None and digits is not None and (places is None or places > digits):
        raise SchemaError(
            f"{model_name}.{field_name}: a Decimal with max_digits={digits} needs "
            "decimal_places (at most max_digits) to make its NUMERIC column"
        )
    if sa_type is None:
        raise SchemaError(
            f"{model_name}.{field_name}: no column type for {info.annotation!r}; "
            "give one with Annotated[..., Col(type=sqlalchemy.SomeType())]"
        )
    nullable = optional if opts.nullable is None else opts.nullable
    args: list[Any] = []
    if opts.foreign_key:
        args.append(sa.ForeignKey(opts.foreign_key))
    # A str is a literal value (quoted, as SQLAlchemy does); sa.text("now()") is SQL.
    server_default: Any = opts.server_default
    return sa.Column(
        opts.name or field_name,
        sa_type,
        *args,
        key=field_name,
        primary_key=is_pk,
        nullable=False if is_pk else nullable,
        unique=opts.unique or None,
        index=opts.index or None,
        server_default=server_default,
        autoincrement=opts.autoincrement,
    )
