"""What the mixins add, as data on ModelInfo (compile-only: no server)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar

import sqlalchemy as sa
from pydantic import AwareDatetime
from sqlalchemy.dialects import sqlite

from activerecord import (
    ActiveRecord,
    Col,
    OptimisticLockMixin,
    SoftDeleteMixin,
    TimestampMixin,
    optimistic_lock,
)

DIALECT = sqlite.pysqlite.dialect()


class Model(ActiveRecord):
    """This module's models live in their own MetaData."""

    __abstract__: ClassVar[bool] = True
    __metadata__: ClassVar[sa.MetaData] = sa.MetaData()


class Plain(Model):
    __table_name__ = "info_plain"
    id: int | None = None


class Stamped(TimestampMixin, Model):
    __table_name__ = "info_stamped"
    id: int | None = None


class Locked(optimistic_lock("rev"), Model):
    __table_name__ = "info_locked"
    id: int | None = None


class Hidden(SoftDeleteMixin, OptimisticLockMixin, TimestampMixin, Model):
    __table_name__ = "info_hidden"
    id: int | None = None
    deleted_at: Annotated[AwareDatetime | None, Col(name="removed_on")] = None


def _sql(clauses: list[sa.ColumnElement[bool]]) -> list[str]:
    return [str(c.compile(dialect=DIALECT)) for c in clauses]


def test_a_plain_model_adds_nothing():
    info = Plain.__ar_info__
    assert (info.insert_stamps, info.update_stamps, info.lock_field, info.deleted_field) == (
        (), (), None, None
    )
    assert info.insert_defaults() == info.update_defaults() == {}
    assert info.scope_criteria("default") == []
    assert info.soft_delete_values() is None and info.restore_values() is None
    assert info.lock_guard({"id": 1}) == ([], {})


def test_timestamps_are_fields_named_once():
    info = Stamped.__ar_info__
    assert info.insert_stamps == ("created_at", "updated_at")
    assert info.update_stamps == ("updated_at",)
    inserted = info.insert_defaults()
    assert set(inserted) == {"created_at", "updated_at"}
    assert inserted["created_at"] is inserted["updated_at"]  # one instant for both
    assert isinstance(inserted["created_at"], dt.datetime) and inserted["created_at"].tzinfo is None
    assert set(info.update_defaults()) == {"updated_at"}


def test_the_lock_field_guards_by_the_version_read():
    info = Locked.__ar_info__
    assert info.lock_field == "rev"
    criteria, values = info.lock_guard({"id": 1, "rev": 3})
    assert _sql(criteria) == ["info_locked.rev = ?"]
    assert criteria[0].compile(dialect=DIALECT).params == {"rev_1": 3}
    assert values == {"rev": 4}


def test_soft_delete_scopes_and_values_name_the_field_not_the_column():
    info = Hidden.__ar_info__
    assert info.deleted_field == "deleted_at"
    assert info.deleted_column is info.columns["deleted_at"]
    assert _sql(info.scope_criteria("default")) == ["info_hidden.removed_on IS NULL"]
    assert _sql(info.scope_criteria("only_deleted")) == ["info_hidden.removed_on IS NOT NULL"]
    assert info.scope_criteria("with_deleted") == []
    marked = info.soft_delete_values()
    assert marked is not None and set(marked) == {"deleted_at", "updated_at"}
    assert marked["deleted_at"].tzinfo is dt.timezone.utc  # an aware field is stamped in UTC
    restored = info.restore_values()
    assert restored is not None and restored["deleted_at"] is None
    assert set(restored) == {"deleted_at", "updated_at"}
    assert info.lock_field == "version"


def test_the_query_reads_the_scopes_from_the_info():
    assert _sql(Hidden.query().criteria()) == ["info_hidden.removed_on IS NULL"]
    assert Hidden.query().with_deleted().criteria() == []
    assert Plain.query().criteria() == []
