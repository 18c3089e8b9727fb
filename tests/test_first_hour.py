"""What a new user meets first: connect() on their own engine, to_sql(), field names."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Annotated, Any

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import (
    ActiveRecord,
    Col,
    QueryError,
    SchemaError,
    SoftDeleteMixin,
    TimestampMixin,
)
from activerecord.backend import get_connection
from activerecord.backend.transaction import Transaction


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Pet(Model):
    __table_name__ = "fh_pets"
    id: int | None = None
    name: str


def test_connect_keeps_a_users_in_memory_engine():
    """connect(engine) neither disposes of the engine nor loses its in-memory tables."""
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE fh_pets (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(sa.text("INSERT INTO fh_pets (name) VALUES ('rex')"))
    activerecord.connect(engine, name="fh-own")
    try:
        Pet.__database__ = "fh-own"
        assert [p.name for p in Pet.query().all()] == ["rex"]
        with get_connection(Pet) as raw, raw.cursor() as cursor:  # the pooled connection
            cursor.execute("PRAGMA foreign_keys")  # was prepared on checkout, not re-opened
            assert cursor.fetchone() == (1,)
        # The connection opened before connect() was prepared on checkout: savepoints work.
        with Transaction(Pet):
            Pet.create(name="kept")
            try:
                with Transaction(Pet):
                    Pet.create(name="undone")
                    raise RuntimeError
            except RuntimeError:
                pass
        assert sorted(p.name for p in Pet.query().all()) == ["kept", "rex"]
    finally:
        Pet.__database__ = "default"
        activerecord.disconnect("fh-own")
    with engine.connect() as conn:  # disconnect() left the user's engine alone too
        assert conn.execute(sa.text("SELECT COUNT(*) FROM fh_pets")).scalar_one() == 2
    engine.dispose()


@pytest.mark.parametrize(
    ("name", "owner"),
    [("query", "ActiveRecord"), ("database", "ActiveRecord"), ("c", "ActiveRecord"),
     ("save", "ActiveRecord"), ("batch_insert", "ActiveRecord"), ("restore", "SoftDeleteMixin")],
)
def test_field_named_like_the_class_api_is_a_schema_error(name, owner):
    """A field that would hide the model API is refused when the class is made (no warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydantic's "shadows an attribute" would fail here
        with pytest.raises(SchemaError) as info:
            type(
                "Clash",
                (SoftDeleteMixin, ActiveRecord),
                {"__annotations__": {"id": "int | None", name: "int"}, "id": None,
                 "__module__": __name__},
            )
    message = str(info.value)
    assert f"Clash.{name}" in message and f"{owner}.{name}" in message
    assert f"Col(name={name!r})" in message


def test_redeclared_mixin_fields_and_renamed_columns_are_allowed():
    class Renamed(SoftDeleteMixin, TimestampMixin, Model):
        __table_name__ = "fh_renamed"
        id: int | None = None
        search: Annotated[str, Col(name="query")]
        created_at: dt.datetime | None = None  # a field of the mixin, not its API
        deleted_at: dt.datetime | None = None

    assert Renamed.c.search.name == "query" and callable(Renamed.query)


class Doc(Model):
    __table_name__ = "fh_docs"
    id: int | None = None
    name: str
    when: dt.datetime | None = None
    meta: dict[str, Any] | None = None


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_to_sql_renders_only_what_was_asked(dialect):
    sql = Doc.query().where({"name": "a"}).order_by("-id").limit(5).to_sql(dialect)
    assert "LIMIT" in sql.sql and "OFFSET" not in sql.sql
    assert sorted(sql.params.values(), key=str) == [5, "a"]
    paged = Doc.query().limit(5).offset(10).to_sql(dialect)
    assert sorted(paged.params.values()) == [5, 10]  # MySQL writes it LIMIT 10, 5
    assert "LIMIT" not in Doc.query().to_sql(dialect).sql


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_to_sql_can_show_the_values_inline(dialect):
    when = dt.datetime(2024, 5, 6, 7, 8, 9)
    q = Doc.query().where({"name": "it's"}).where("when_ > ?", when).limit(3)
    shown = q.to_sql(dialect, literal_binds=True)
    assert shown.params == {}
    assert "'it''s'" in shown.sql and "'2024-05-06 07:08:09" in shown.sql
    assert shown.sql.rstrip().endswith("LIMIT 3")
    assert "'it''s'" not in q.to_sql(dialect).sql  # the default keeps values as parameters


def test_to_sql_inline_refuses_a_value_it_cannot_write():
    q = Doc.query().where(Doc.c.meta == {"a": 1})
    assert q.to_sql("postgresql").params  # shown as a parameter is fine
    with pytest.raises(QueryError, match="Doc: cannot show every value inline"):
        q.to_sql("postgresql", literal_binds=True)


def test_to_sql_without_offset_still_reads_the_same_rows(db, fresh):
    fresh(Doc)
    Doc.batch_insert([Doc(name=f"n{i}") for i in range(4)])
    query = Doc.query().order_by("id").limit(2)
    assert "OFFSET" not in query.to_sql().sql
    assert [d.name for d in query.all()] == ["n0", "n1"]
    assert [d.name for d in query.offset(1).all()] == ["n1", "n2"]


def test_the_test_run_names_its_backends_first_and_last(tmp_path):
    """The header line names the backends and URLs a run uses, the summary line which ones
    the tests really ran on (issue 16: a run says where it ran)."""
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).parent.parent
    env = dict(os.environ, AR_TEST_BACKENDS="sqlite",
               AR_TEST_SQLITE_URL=f"sqlite:///{tmp_path / 'header.db'}")
    env.pop("CI", None)
    env.pop("AR_REQUIRE_BACKENDS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",  # the header needs no -q
         "tests/test_first_hour.py::test_to_sql_without_offset_still_reads_the_same_rows"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = f"activerecord backends: sqlite (sqlite:///{tmp_path / 'header.db'}); "
    assert any(line == header + "skipped when unreachable" for line in lines), proc.stdout
    assert "activerecord backends: sqlite ran" in lines, proc.stdout
