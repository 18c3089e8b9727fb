"""What a new user meets first: connect() on their own engine, to_sql(), field names."""

from __future__ import annotations

import sqlalchemy as sa

import activerecord
from activerecord import ActiveRecord
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
