"""From pydantic fields to SQLAlchemy columns: one pure, ordered mapping.

The order matters: ``Enum`` before ``str`` (a ``str`` enum is both), ``bool`` before ``int``,
``datetime`` before ``date``. ``Optional[X]`` means nullable. A type with no mapping is a
:class:`SchemaError` naming the field. Any column can be adjusted with :class:`Col` in
``Annotated`` metadata::

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
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pydantic
import sqlalchemy as sa
from pydantic.fields import FieldInfo
from sqlalchemy.dialects import mysql

from .errors import SchemaError

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
    with ``tzinfo=UTC``.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.DateTime(timezone=True))
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given for a timezone-aware column")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value  # type: ignore[no-any-return]


class SQLiteDecimal(sa.TypeDecorator[decimal.Decimal]):
    """Decimal on SQLite without float rounding: bound as text into a NUMERIC column."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int | None = None, scale: int | None = None) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.scale = scale

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> decimal.Decimal | None:
        if value is None:
            return None
        result = decimal.Decimal(str(value))
        if self.scale is not None:
            result = result.quantize(decimal.Decimal(1).scaleb(-self.scale))
        return result


def _datetime(aware: bool) -> sa.types.TypeEngine[Any]:
    if aware:
        return UTCDateTime()
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


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


def _decimal_shape(metadata: list[Any]) -> tuple[int, int]:
    digits, places = None, None
    for item in metadata:
        digits = getattr(item, "max_digits", None) or digits
        places = getattr(item, "decimal_places", None) if places is None else places
    return (digits or 38), (places if places is not None else 10)


def _is_json(tp: Any) -> bool:
    origin = get_origin(tp) or tp
    if origin in (dict, list, tuple, set, frozenset):
        return True
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


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
        values = get_args(tp)
        if all(isinstance(v, str) for v in values):
            return sa.String(max(len(v) for v in values))
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
        return None
    if not isinstance(tp, type):
        return sa.JSON() if _is_json(tp) else None
    if issubclass(tp, enum.Enum):
        labels = [str(member.value) for member in tp]
        return sa.Enum(
            tp,
            native_enum=False,
            values_callable=lambda cls: [str(m.value) for m in cls],
            length=max((len(v) for v in labels), default=1),
            validate_strings=True,
        )
    if issubclass(tp, bool):
        return sa.Boolean()
    if issubclass(tp, int):
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    if issubclass(tp, float):
        return sa.Double()
    if issubclass(tp, decimal.Decimal):
        digits, places = _decimal_shape(metadata)
        return sa.Numeric(digits, places).with_variant(SQLiteDecimal(digits, places), "sqlite")
    if tp is pydantic.AwareDatetime:
        return _datetime(True)
    if tp is pydantic.NaiveDatetime:
        return _datetime(False)
    if issubclass(tp, dt.datetime):
        return _datetime(bool(aware))
    if issubclass(tp, dt.date):
        return sa.Date()
    if issubclass(tp, dt.time):
        return sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb")
    if issubclass(tp, uuid.UUID):
        # MariaDB's native UUID type rejects some valid UUIDs (odd variant bits): use CHAR(32).
        return sa.Uuid().with_variant(sa.Uuid(native_uuid=False), "mysql", "mariadb")
    if issubclass(tp, str):
        length = _max_length(metadata)
        if length is not None:
            return sa.String(length)
        if keyed:
            return sa.String().with_variant(sa.String(255), "mysql", "mariadb")
        return sa.Text()
    if issubclass(tp, bytes):
        return sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
    if _is_json(tp):
        return sa.JSON()
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
