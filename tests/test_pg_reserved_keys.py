"""PostgreSQL COPY path: keys numbered by the server when provable, else reserved first."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from activerecord.write.strategies import strategy_for
from tests.conftest import raw_count
from tests.models import User

pytestmark = pytest.mark.backends("postgresql")


def _stored(db):
    table = User.__table__
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.email, table.c.id)).all())


def _numbered_by_server(db) -> bool:
    with db.engine.begin() as conn:
        return strategy_for(conn, User.__ar_info__, db.facts)._numbered_by_server()  # type: ignore[attr-defined, no-any-return]


def _insert_and_check(db, validate=True):
    users = [User(username=f"u{i}", email=f"u{i}@example.com") for i in range(250)]
    assert db.facts.insert_strategy == "pg_copy"
    assert User.batch_insert(users, batch_size=100, validate=validate) == 250
    assert not any(u.is_new_record for u in users)
    ids = [u.id for u in users]
    assert len(set(ids)) == 250 and raw_count(db, "users") == 250
    assert _stored(db) == {u.email: u.id for u in users}
    ordered = sorted(ids)
    return {b - a for a, b in zip(ordered, ordered[1:])}


# increment 1: the server numbers each chunk after its first row (which takes nextval());
# 3 and -1: the numbering is not first + 1 .. first + n, so the chunk is rolled back (its
# values stay unused) and written again with reserved keys (a list for 3, a range for -1).
# validate=False: one COPY streams every chunk, proven (or redone) once at the end.
@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("increment", [1, 3, -1])
def test_keys_match_the_rows(fresh, db, backend, increment, validate):
    fresh(User)
    if increment != 1:
        with db.engine.begin() as conn:
            start = "MAXVALUE 1000000 START 1000000 RESTART" if increment < 0 else ""
            conn.execute(sa.text(f"ALTER SEQUENCE users_id_seq INCREMENT BY {increment} {start}"))
    assert _numbered_by_server(db)
    steps = _insert_and_check(db, validate)
    if increment == 1:
        assert steps == {1}  # one range: the first row takes nextval(), the rest follow
    else:
        assert abs(increment) in steps and all(step % abs(increment) == 0 for step in steps)


def test_a_user_trigger_means_reserved_keys(fresh, db, backend):
    fresh(User)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE FUNCTION users_noop() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RETURN NEW; END $$"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TRIGGER users_noop BEFORE INSERT ON users "
                "FOR EACH ROW EXECUTE FUNCTION users_noop()"
            )
        )
    try:
        assert not _numbered_by_server(db)  # a trigger might change a row's key: reserve
        assert _insert_and_check(db) == {1}
    finally:
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER users_noop ON users"))
            conn.execute(sa.text("DROP FUNCTION users_noop()"))
