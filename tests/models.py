"""Models shared by the tests.

Each test module declares its models on an abstract ``Model`` base of its own, whose
``__metadata__`` is a ``MetaData`` of that module: a class with the same table name elsewhere
(another test module, the demo, a README block run by the docs tests) replaces a table only in
its own ``MetaData`` (``activerecord.metadata`` for the library's default), never a test's.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AwareDatetime, Field

from activerecord import ActiveRecord, Col, TimestampMixin


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Status(str, enum.Enum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class User(TimestampMixin, Model):
    __table_name__ = "users"

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128), Col(unique=True)]
    status: str = "active"
    login_count: int = 0
    last_login: dt.datetime | None = None


class Everything(Model):
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


class Book(Model):
    __table_name__ = "books"

    isbn: Annotated[str, Field(max_length=20), Col(primary_key=True)]
    title: str


class Enrollment(Model):
    __table_name__ = "enrollments"

    student_id: Annotated[int, Col(primary_key=True, autoincrement=False)]
    course_id: Annotated[int, Col(primary_key=True, autoincrement=False)]
    grade: str | None = None


class Token(Model):
    __table_name__ = "tokens"

    id: Annotated[uuid.UUID, Col(primary_key=True)] = Field(default_factory=uuid.uuid4)
    label: str
