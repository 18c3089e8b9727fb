"""From pydantic fields to SQLAlchemy columns: one pure, ordered mapping.

The order matters: ``Enum`` before ``str`` (a ``str`` enum is both), ``bool`` before ``int``,
``datetime`` before ``date``. ``Optional[X]`` means nullable. A type with no mapping is a
:class:`SchemaError` naming the field. Any column can be adjusted with :class:`Col` in
``Annotated`` metadata. Float, Decimal, datetime and time columns are type decorators that
refuse (``ValueError``, a ``DataError`` once it reaches the caller) a value their backend
would not read back as given: see :mod:`activerecord.model.types`::

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

from ..errors import SchemaError
from .types import ExactBoolean, ExactFloat, ExactNumeric, NaiveDateTime, NaiveTime, UTCDateTime

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
    ExactBoolean()
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
        return ExactBoolean()
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
