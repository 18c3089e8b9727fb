"""Models shared by the tests."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Annotated, Any

from pydantic import AwareDatetime, Field

from activerecord import ActiveRecord, Col, TimestampMixin


class Status(str, enum.Enum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class User(TimestampMixin, ActiveRecord):
    __table_name__ = "users"

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128), Col(unique=True)]
    status: str = "active"
    login_count: int = 0
    last_login: dt.datetime | None = None


class Everything(ActiveRecord):
    __table_name__ = "everything"

    id: int | None = None
    i: int | None = None
    s: Annotated[str, Field(max_length=50)] | None = None
    t: str | None = None
    b: bool | None = None
    f: float | None = None
    d: Annotated[decimal.Decimal, Field(max_digits=12, decimal_places=4)] | None = None
    ts: dt.datetime | None = None
    tz: AwareDatetime | None = None
    day: dt.date | None = None
    tm: dt.time | None = None
    u: uuid.UUID | None = None
    e: Status | None = None
    raw: bytes | None = None
    doc: dict[str, Any] | None = None
    items: list[int] | None = None


class Book(ActiveRecord):
    __table_name__ = "books"

    isbn: Annotated[str, Field(max_length=20), Col(primary_key=True)]
    title: str


class Enrollment(ActiveRecord):
    __table_name__ = "enrollments"

    student_id: Annotated[int, Col(primary_key=True, autoincrement=False)]
    course_id: Annotated[int, Col(primary_key=True, autoincrement=False)]
    grade: str | None = None


class Token(ActiveRecord):
    __table_name__ = "tokens"

    id: Annotated[uuid.UUID, Col(primary_key=True)] = Field(default_factory=uuid.uuid4)
    label: str
