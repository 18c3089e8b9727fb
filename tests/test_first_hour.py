"""What a new user meets first: connect() on their own engine, to_sql(), field names."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Annotated

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import ActiveRecord, Col, SchemaError, SoftDeleteMixin, TimestampMixin
from activerecord.backend.transaction import Transaction


class Pet(ActiveRecord):
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
    class Renamed(SoftDeleteMixin, TimestampMixin, ActiveRecord):
        __table_name__ = "fh_renamed"
        id: int | None = None
        search: Annotated[str, Col(name="query")]
        created_at: dt.datetime | None = None  # a field of the mixin, not its API
        deleted_at: dt.datetime | None = None

    assert Renamed.c.search.name == "query" and callable(Renamed.query)
