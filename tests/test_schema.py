"""Field → column mapping (compile-only, pinned dialects) and binding models to databases."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Annotated, Any, Literal

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, Field
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.schema import CreateTable

import activerecord
from activerecord import ActiveRecord, Col, SchemaError
from activerecord.model.table import default_table_name


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

DIALECTS = {
    "postgresql": postgresql.psycopg.dialect(),
    "mysql": mysql.pymysql.dialect(),
    "sqlite": sqlite.pysqlite.dialect(),
}


class Color(str, enum.Enum):
    RED = "red"
    GREEN = "green"


class Shapes(Model):
    __table_name__ = "schema_shapes"

    id: int | None = None
    flag: bool
    count: int
    ratio: float
    price: Annotated[decimal.Decimal, Field(max_digits=10, decimal_places=2)]
    name: Annotated[str, Field(max_length=30)]
    notes: str | None = None
    at: dt.datetime
    at_tz: AwareDatetime
    day: dt.date
    clock: dt.time
    token: uuid.UUID
    color: Color
    size: Literal["s", "m", "xl"]
    blob: bytes
    meta: dict[str, Any]
    code: Annotated[str, Col(unique=True)]
    slug: Annotated[str, Field(max_length=40), Col(index=True)]
    state: Annotated[str, Field(max_length=10), Col(server_default="new")]
    custom: Annotated[int, Col(type=sa.SmallInteger(), name="custom_col")]


def ddl(dialect: str) -> str:
    return str(CreateTable(Shapes.__table__).compile(dialect=DIALECTS[dialect]))


def test_ordered_mapping_types():
    c = Shapes.__table__.c
    assert isinstance(c.flag.type, sa.TypeDecorator) and isinstance(c.flag.type.impl, sa.Boolean)
    assert type(c.flag.type).__name__ == "ExactBoolean"  # bool before int
    assert isinstance(c.count.type, sa.BigInteger)
    assert isinstance(c.ratio.type, sa.TypeDecorator) and isinstance(c.ratio.type.impl, sa.Double)
    assert (c.price.type.precision, c.price.type.scale) == (10, 2)
    assert c.name.type.length == 30
    assert isinstance(c.notes.type, sa.Text) and c.notes.nullable
    assert not c.name.nullable and not c.count.nullable
    assert isinstance(c.day.type, sa.Date)  # datetime before date, date separately
    assert isinstance(c.color.type, sa.Enum)  # Enum before str
    assert c.color.type.enums == ["red", "green"]
    assert c.size.type.length == 2
    assert isinstance(c.blob.type, sa.LargeBinary)
    assert isinstance(c.meta.type, sa.JSON)
    assert c.code.unique and c.slug.index
    assert c.state.server_default is not None
    assert c.custom.name == "custom_col"  # the collection is keyed by field name
    assert isinstance(c.custom.type, sa.SmallInteger)
    assert c.id.primary_key and c.id.autoincrement in (True, "auto")


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_ddl_per_dialect(dialect):
    text = ddl(dialect)
    assert "schema_shapes" in text
    if dialect == "mysql":
        assert "DATETIME(6)" in text and "TIME(6)" in text  # microseconds kept
        assert "code VARCHAR(255)" in text  # an indexed unbounded str needs a length
        assert "LONGBLOB" in text
    if dialect == "postgresql":
        assert "at_tz TIMESTAMP WITH TIME ZONE" in text
        assert "token UUID" in text
        assert "id BIGSERIAL" in text
    if dialect == "sqlite":
        assert "id INTEGER NOT NULL" in text  # rowid alias: autoincrement on SQLite


def test_unmapped_type_names_the_field():
    class Opaque:
        pass

    with pytest.raises(SchemaError, match=r"Broken\.thing"):

        class Broken(Model):
            __table_name__ = "schema_broken"
            model_config = {"arbitrary_types_allowed": True}
            id: int | None = None
            thing: Opaque


def test_missing_primary_key_is_an_error():
    with pytest.raises(SchemaError, match="primary key"):

        class NoKey(Model):
            __table_name__ = "schema_nokey"
            name: str


def test_default_table_names():
    assert default_table_name("User") == "users"
    assert default_table_name("UserProfile") == "user_profiles"
    assert default_table_name("Category") == "categories"
    assert default_table_name("Box") == "boxes"

    class LineItem(Model):
        id: int | None = None

    assert LineItem.__table__.name == "line_items"


class Remote(Model):
    __table_name__ = "schema_remote"
    __database__ = "second"

    id: int | None = None
    label: str


def test_model_bound_to_a_named_database(db, backend, tmp_path):
    second = activerecord.connect(f"sqlite:///{tmp_path / 'second.db'}", name="second")
    try:
        Remote.create_table()
        Remote.create(label="elsewhere")
        assert Remote.query().count() == 1
        assert not sa.inspect(db.engine).has_table("schema_remote")
        assert Remote.database() is second
    finally:
        activerecord.disconnect("second")
    with pytest.raises(activerecord.NotConnectedError, match="second"):
        Remote.query().count()


def test_server_default_is_read_back(fresh, backend):
    class Ticket(Model):
        __table_name__ = "schema_tickets"
        id: int | None = None
        title: str
        state: Annotated[str | None, Field(max_length=10), Col(server_default="open")] = None

    fresh(Ticket)
    t = Ticket.create(title="a")
    assert t.state == "open"
    batch = [Ticket(title="b"), Ticket(title="c", state="closed")]
    Ticket.batch_insert(batch)
    assert [x.state for x in batch] == ["open", "closed"]


def test_sqlite_pool_sees_tables_and_indexes_other_connections_made(tmp_path):
    """SQLite answers some reflection PRAGMAs (``index_list``) from a connection's copy of the
    schema, which only a read refreshes: a pooled connection must not miss the indexes another
    one created since."""
    db = activerecord.connect(f"sqlite:///{tmp_path / 'pool.db'}", name="pool_schema")
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE a (x INTEGER)")
        first, second = db.engine.raw_connection(), db.engine.raw_connection()
        first.cursor().execute("INSERT INTO a (x) VALUES (1)")  # its copy: table a only
        cursor = second.cursor()
        cursor.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, x INTEGER)")
        cursor.execute("CREATE UNIQUE INDEX ix_b_x ON b (x)")
        second.close()
        first.close()  # back in the pool last: handed out next
        indexes = sa.inspect(db.engine).get_indexes("b")
        assert [(i["name"], i["unique"]) for i in indexes] == [("ix_b_x", 1)]
    finally:
        activerecord.disconnect("pool_schema")
