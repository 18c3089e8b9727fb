"""PostgreSQL COPY path: keys reserved from the sequence, as a range or as a list."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.models import User

pytestmark = pytest.mark.backends("postgresql")


def _stored(db):
    table = User.__table__
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.email, table.c.id)).all())


@pytest.mark.parametrize("increment", [1, 3, -1])
def test_reserved_keys_match_the_rows(fresh, db, backend, increment):
    fresh(User)
    if increment != 1:  # not one range: the values come back as a list
        with db.engine.begin() as conn:
            start = "MAXVALUE 1000000 START 1000000 RESTART" if increment < 0 else ""
            conn.execute(sa.text(f"ALTER SEQUENCE users_id_seq INCREMENT BY {increment} {start}"))
    users = [User(username=f"u{i}", email=f"u{i}@example.com") for i in range(250)]
    assert db.facts.insert_strategy == "pg_copy"
    assert User.batch_insert(users, batch_size=100) == 250
    ids = [u.id for u in users]
    assert len(set(ids)) == 250
    assert _stored(db) == {u.email: u.id for u in users}
    steps = {b - a for a, b in zip(sorted(ids), sorted(ids)[1:])}
    assert steps == {abs(increment)}
