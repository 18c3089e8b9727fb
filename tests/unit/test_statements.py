"""Statements compiled for each dialect without a server: lookups, writes' pure twins, DDL,
and the name checks that refuse a wrong column before any SQL exists."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Annotated

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, Field
from sqlalchemy.dialects import mysql, postgresql, sqlite

import activerecord
from activerecord import ActiveRecord, Col, SoftDeleteMixin

DIALECTS = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.psycopg.dialect(),
    "mysql": mysql.pymysql.dialect(),
}


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class UnitItem(Model):
    __table_name__ = "unit_items"
    id: int | None = None
    name: Annotated[str, Field(max_length=40), Col(unique=True)]
    price: Annotated[decimal.Decimal, Field(max_digits=12, decimal_places=4)] = decimal.Decimal(0)
    seen: AwareDatetime | None = None
    day: dt.date | None = None


class UnitGone(SoftDeleteMixin, Model):
    __table_name__ = "unit_gone"
    id: int | None = None


def _sql(statement: sa.ClauseElement, dialect: str) -> str:
    return " ".join(str(statement.compile(dialect=DIALECTS[dialect])).split())


# -- lookups: values are bound parameters on every dialect ------------------------------------


@pytest.mark.parametrize(
    ("dialect", "where"),
    [
        ("sqlite", "WHERE unit_items.id IN (?, ?, ?)"),
        ("postgresql", "WHERE unit_items.id = ANY (%(param_1)s)"),  # one array, one parameter
        ("mysql", "WHERE unit_items.id IN (%s, %s, %s)"),
    ],
)
def test_an_in_lookup_binds_its_values(dialect, where):
    query = UnitItem.query().where({"id": [1, 2, 3]}).order_by("-id").limit(2)
    shown = query.to_sql(dialect)
    assert where in " ".join(shown.sql.split())
    assert "ORDER BY unit_items.id DESC" in shown.sql
    assert sorted(map(str, shown.params.values())) == sorted(
        ["2", "[1, 2, 3]"] if dialect == "postgresql" else ["1", "2", "3", "2"]
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_hostile_value_stays_a_parameter(dialect):
    shown = UnitItem.query().where({"name": "x'; DROP TABLE unit_items; --"}).to_sql(dialect)
    assert "DROP" not in shown.sql
    assert list(shown.params.values()) == ["x'; DROP TABLE unit_items; --"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_soft_delete_is_an_update_of_the_visible_rows(dialect):
    statement = UnitGone.query().where({"id": 1}).delete_statement()
    assert isinstance(statement, sa.Update)
    sql = _sql(statement, dialect)
    assert sql.startswith("UPDATE unit_gone SET deleted_at=")
    assert "unit_gone.deleted_at IS NULL" in sql
    assert isinstance(UnitGone.query().where({"id": 1}).hard_delete_statement(), sa.Delete)


# -- name checks: refused before any SQL ------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: UnitItem.query().where({"nope": 1}),
        lambda: UnitItem.query().order_by("nope"),
        lambda: UnitItem.query().order_by("-nope"),
        lambda: UnitItem.query().where({"id": 1}).update_statement({"nope": 1}),
        lambda: UnitItem.query().where(activerecord.col("nope") == 1),
    ],
    ids=["where", "order_by", "order_by desc", "update key", "col()"],
)
def test_an_unknown_column_is_refused_naming_it(build):
    with pytest.raises(activerecord.UnknownColumnError, match="UnitItem has no column 'nope'"):
        build()


def test_placeholders_and_values_must_match():
    with pytest.raises(activerecord.ParameterCountError, match="2 '\\?' placeholder"):
        UnitItem.query().where("id = ? and name = ?", 1)


def test_an_unfiltered_write_is_refused_before_sql():
    with pytest.raises(activerecord.UnsafeWriteError):
        UnitItem.query().update_statement({"name": "x"})
    with pytest.raises(activerecord.UnsafeWriteError):
        UnitItem.query().delete_statement()
    assert isinstance(UnitItem.query().delete_statement(all_rows=True), sa.Delete)


def test_an_update_value_is_validated_as_the_field():
    with pytest.raises(activerecord.ValidationError, match="UnitItem.name"):
        UnitItem.query().where({"id": 1}).update_statement({"name": 1})


# -- DDL --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "key", "aware"),
    [
        ("sqlite", "id INTEGER NOT NULL", "seen DATETIME,"),
        ("postgresql", "id BIGSERIAL NOT NULL", "seen TIMESTAMP WITH TIME ZONE,"),
        ("mysql", "id BIGINT NOT NULL AUTO_INCREMENT", "seen DATETIME(6),"),
    ],
)
def test_create_table_per_dialect(dialect, key, aware):
    ddl = _sql(sa.schema.CreateTable(UnitItem.__table__), dialect)
    assert ddl.startswith(f"CREATE TABLE unit_items ( {key}, ")
    assert "name VARCHAR(40) NOT NULL" in ddl
    assert "price NUMERIC(12, 4) NOT NULL" in ddl
    assert aware in ddl
    assert "day DATE" in ddl
    assert ddl.endswith("PRIMARY KEY (id), UNIQUE (name) )")
