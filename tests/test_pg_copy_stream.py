"""PostgreSQL: one COPY streams every chunk of ``batch_insert(list_of_records)``.

The chunks after the first are prepared (validated) while the server still works through
the rows already sent; one ``currval()`` at the end proves every key. These tests check that
the stream is really one statement, that a record the stream cannot take ends it cleanly,
that user code reaching the connection between chunks ends it first, and that a failure
anywhere in it names the record and leaves nothing written or set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from pydantic import Field, field_validator

from activerecord import ActiveRecord, Col
from activerecord.backend.transaction import Transaction
from activerecord.errors import DataError, NotNullViolation, UniqueViolation
from tests.conftest import raw_count
from tests.models import User


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

pytestmark = pytest.mark.backends("postgresql")


def _users(n: int) -> list[User]:
    return [User(username=f"u{i}", email=f"u{i}@example.com") for i in range(n)]


def _stored(db: Any) -> dict[str, int]:
    table = User.__table__
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.email, table.c.id)).all())  # type: ignore[arg-type]


@pytest.fixture
def statements(db: Any) -> Iterator[list[str]]:
    """The SQL statements run through the engine (COPY data goes around it)."""
    seen: list[str] = []

    def log(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", log)
    yield seen
    sa.event.remove(db.engine, "before_cursor_execute", log)


def _count(statements: list[str], word: str) -> int:
    return sum(word in s for s in statements)


@pytest.mark.parametrize("validate", [False, True])
def test_one_stream_for_every_chunk(fresh, db, backend, statements, validate):
    fresh(User)
    users = _users(700)
    statements.clear()
    assert User.batch_insert(users, batch_size=100, validate=validate) == 700
    assert _stored(db) == {u.email: u.id for u in users}
    assert not any(u.is_new_record for u in users)
    # streamed: one nextval() and one currval() for the call
    proofs = _count(statements, "SELECT currval(")
    assert (proofs, _count(statements, "SELECT nextval(")) == (1, 1)


def test_dicts_in_a_list_stream_too(fresh, db, backend, statements):
    fresh(User)
    rows = [{"username": f"u{i}", "email": f"u{i}@example.com"} for i in range(500)]
    statements.clear()
    users = User.batch_insert_from_dicts(rows, batch_size=100)
    assert isinstance(users, list) and not any(u.is_new_record for u in users)
    assert _stored(db) == {u.email: u.id for u in users}
    assert _count(statements, "SELECT currval(") == 1
    fresh(User)
    rows[420]["email"] = rows[17]["email"]
    with pytest.raises(UniqueViolation) as caught:
        User.batch_insert_from_dicts(rows, batch_size=100, validate=False)
    assert caught.value.record_index == 420 and raw_count(db, "users") == 0


def test_a_long_stream_is_ended_and_begun_again(fresh, db, backend, statements, monkeypatch):
    from activerecord.backend.dialects import PostgreSQLFacts

    monkeypatch.setattr(PostgreSQLFacts, "copy_stream_rows", 150)
    fresh(User)
    users = _users(700)
    statements.clear()
    assert User.batch_insert(users, batch_size=100) == 700
    assert _stored(db) == {u.email: u.id for u in users}
    # a stream ends once it holds 150 rows or more: 0-199, 200-399, 400-599, 600-699
    assert _count(statements, "SELECT currval(") == 4


def test_a_generator_gets_one_copy_per_chunk(fresh, db, backend, statements):
    fresh(User)
    users = _users(700)
    statements.clear()
    assert User.batch_insert(iter(users), batch_size=100) == 700
    assert _stored(db) == {u.email: u.id for u in users}
    assert _count(statements, "SELECT currval(") == 7  # marked chunk by chunk: nothing open


def test_a_record_with_its_own_key_ends_the_stream(fresh, db, backend, statements):
    fresh(User)
    users = _users(300)
    users[150].id = 10_000_000
    statements.clear()
    assert User.batch_insert(users, batch_size=50, validate=False) == 300
    assert users[150].id == 10_000_000
    assert _stored(db) == {u.email: u.id for u in users}
    assert len({u.id for u in users}) == 300
    assert _count(statements, "SELECT currval(") == 2  # settled before that record, then a new one


def test_a_late_failure_names_the_record_and_writes_nothing(fresh, db, backend):
    fresh(User)
    users = _users(400)
    users[333].__dict__["username"] = None  # validate=False: the database says no
    with pytest.raises(NotNullViolation) as caught:
        User.batch_insert(users, batch_size=100, validate=False)
    assert caught.value.record_index == 333 and "record 333" in str(caught.value)
    assert raw_count(db, "users") == 0
    assert all(u.id is None and u.is_new_record for u in users)
    users[333].username = "fixed"
    assert User.batch_insert(users, batch_size=100, validate=False) == 400
    assert _stored(db) == {u.email: u.id for u in users}


def test_the_stream_s_first_row_failing(fresh, db, backend):
    fresh(User)
    User.create(username="kept", email="u0@example.com")
    users = _users(50)
    with pytest.raises(UniqueViolation) as caught:
        User.batch_insert(users, batch_size=10, validate=False)
    assert caught.value.record_index == 0
    assert raw_count(db, "users") == 1
    assert all(u.id is None and u.is_new_record for u in users)


def test_a_wrong_record_in_a_later_chunk_abandons_the_stream(fresh, db, backend):
    fresh(User)
    users: list[Any] = _users(300)
    users[250] = {"username": "a dict", "email": "dict@example.com"}
    with pytest.raises(TypeError, match="record 250: expected a User"):
        User.batch_insert(users, batch_size=100, validate=False)
    assert raw_count(db, "users") == 0
    assert all(u.id is None and u.is_new_record for u in users if isinstance(u, User))
    # the connection is clean again: the next call streams as usual
    good = _users(300)
    assert User.batch_insert(good, batch_size=100, validate=False) == 300
    assert _stored(db) == {u.email: u.id for u in good}


@pytest.mark.parametrize("given", ["list", "generator"])  # streamed, and COPY per chunk
def test_a_value_the_driver_cannot_send(fresh, db, backend, given):
    fresh(User)
    users = _users(300)
    users[210].__dict__["login_count"] = "many"
    records = users if given == "list" else (u for u in users)
    with pytest.raises(DataError) as caught:
        User.batch_insert(records, batch_size=100, validate=False)
    assert caught.value.record_index == 210
    assert "record 210: column 'login_count'" in str(caught.value)
    assert raw_count(db, "users") == 0
    back = users if given == "list" else users[200:]  # a generator's: the chunk in progress
    assert all(u.id is None and u.is_new_record for u in back)


def test_streamed_inside_a_transaction(fresh, db, backend):
    fresh(User)
    kept = _users(200)
    gone = [User(username=f"g{i}", email=f"g{i}@example.com") for i in range(200)]
    with Transaction():
        User.batch_insert(kept, batch_size=50, validate=False)
    with pytest.raises(RuntimeError), Transaction():
        User.batch_insert(gone, batch_size=50, validate=False)
        assert all(u.id is not None for u in gone)
        raise RuntimeError("roll back")
    assert _stored(db) == {u.email: u.id for u in kept}
    assert all(u.id is None and u.is_new_record for u in gone)


# -- user code between chunks reaching the connection ----------------------------------------

seen_by_validator: list[int] = []
swallow = {"on": False}


class Audited(Model):
    """A validator that reads the database (as a uniqueness check would), in the same
    transaction as the batch running it."""

    __table_name__ = "stream_audited"

    id: int | None = None
    email: Annotated[str, Field(max_length=64), Col(unique=True)]

    @field_validator("email")
    @classmethod
    def _look(cls, value: str) -> str:
        if value.endswith("@check"):
            try:
                seen_by_validator.append(cls.query().count())
            except Exception:  # noqa: BLE001 - a careless validator
                if not swallow["on"]:
                    raise
        return value


def _audited(n: int, check_every: int = 0) -> list[Audited]:
    return [
        Audited(email=f"a{i}@check" if check_every and i % check_every == 0 else f"a{i}@x")
        for i in range(n)
    ]


def test_a_validator_reading_the_database_ends_the_stream_first(fresh, db, backend):
    fresh(Audited)
    records = _audited(300)
    for i in (120, 250):
        records[i].email = f"a{i}@check"  # validated again when the batch validates
    seen_by_validator.clear()
    assert Audited.batch_insert(records, batch_size=100) == 300
    # Each saw every row sent before its chunk (the stream was ended for its query).
    assert seen_by_validator == [100, 200]
    with db.engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT email, id FROM stream_audited")).all())
    assert stored == {r.email: r.id for r in records}


def test_a_swallowed_stream_error_still_fails_the_batch(fresh, db, backend):
    fresh(Audited)
    Audited.create(email="a5@x")
    records = _audited(300)
    records[200].email = "a200@check"
    swallow["on"] = True
    try:
        with pytest.raises(UniqueViolation) as caught:
            Audited.batch_insert(records, batch_size=100)
    finally:
        swallow["on"] = False
    assert caught.value.record_index == 5
    assert raw_count(db, "stream_audited") == 1
    assert all(r.id is None and r.is_new_record for r in records)


def test_a_progress_callback_reading_the_database(fresh, db, backend):
    fresh(User)
    counts: list[tuple[int, int]] = []
    users = _users(250)
    User.batch_insert(users, batch_size=100, progress=lambda done: counts.append(
        (done, User.query().count())
    ))
    assert counts == [(d, d) for d, _ in counts] and counts[-1] == (250, 250)
    assert _stored(db) == {u.email: u.id for u in users}


# -- rows nobody gets back: no keys, one plain COPY ---------------------------------------------


def _rows(n: int) -> Iterator[dict[str, Any]]:
    return ({"username": f"u{i}", "email": f"u{i}@example.com"} for i in range(n))


def test_rows_nobody_gets_back_stream_without_keys(fresh, db, backend, statements):
    fresh(User)
    statements.clear()
    assert User.batch_insert_from_dicts(_rows(700), batch_size=100, return_records=False) == 700
    assert raw_count(db, "users") == 700
    assert len(set(_stored(db).values())) == 700
    # no key read back: no nextval(), no savepoint, no currval()
    words = ("SELECT nextval(", "SELECT currval(", "SAVEPOINT")
    assert not any(word in s for word in words for s in statements)


def test_a_plain_stream_failing_late_names_the_row(fresh, db, backend):
    fresh(User)
    rows = list(_rows(500))
    rows[444]["email"] = rows[10]["email"]
    with pytest.raises(UniqueViolation) as caught:
        User.batch_insert_from_dicts(iter(rows), batch_size=100, return_records=False)
    assert caught.value.record_index == 444 and "record 444" in str(caught.value)
    assert raw_count(db, "users") == 0


def test_the_first_chunks_ramp_up_unless_a_size_is_given(fresh, db, backend):
    fresh(User)
    size = db.facts.chunk_rows(len(User.__ar_info__.fields))
    seen: list[int] = []
    n = size // 16 + size // 64 + 10
    User.batch_insert(_users(n), progress=seen.append)
    assert seen == [size // 64, size // 64 + size // 16, n]
    seen.clear()
    fresh(User)
    User.batch_insert_from_dicts(_rows(250), batch_size=100, progress=seen.append)
    assert seen == [100, 200, 250]


def test_a_failure_the_end_of_the_stream_reveals_sets_records_back(fresh, db, backend):
    """Every record is as it was before the call, a loaded one (inserted as a copy) too."""
    fresh(User)
    loaded = User.find(User.create(username="old", email="old@example.com").id)
    before = loaded._ar_original
    loaded.id, loaded.email = None, "copy@example.com"  # to be inserted as a new row
    users = [*_users(300), loaded]
    users[299].email = users[0].email
    with pytest.raises(UniqueViolation):
        User.batch_insert(users)
    assert all(u.id is None and u.is_new_record for u in users[:300])
    assert loaded.id is None and not loaded.is_new_record and loaded._ar_original == before
    assert raw_count(db, "users") == 1


def test_records_with_their_own_keys_stream_in_one_plain_copy(fresh, db, backend, monkeypatch):
    from activerecord.write.strategies.copy_stream import CopyStream

    opened: list[bool] = []
    original = CopyStream.begin

    def counting(self, shape, sent, data, locate, numbered):  # type: ignore[no-untyped-def]
        opened.append(numbered)
        return original(self, shape, sent, data, locate, numbered)

    monkeypatch.setattr(CopyStream, "begin", counting)
    fresh(User)
    users = _users(500)
    for n, user in enumerate(users):
        user.id = 1000 + n
    assert User.batch_insert(users, batch_size=100) == 500
    assert opened == [False]  # five chunks, one COPY, no key to prove
    assert _stored(db) == {u.email: 1000 + n for n, u in enumerate(users)}
    assert not any(u.is_new_record for u in users)


# The failing record is named wherever it sits: first row, chunk edges, last row, before or
# after a record with its own key (which ends one stream and begins another, plain, one).
@pytest.mark.parametrize(
    ("n", "size", "bad", "keyed"),
    [
        (50, None, 0, None),
        (300, 100, 99, None),
        (300, 100, 100, None),
        (300, 100, 299, 150),
        (300, 100, 151, 150),
        (300, 100, 150, 150),
        (300, 100, 149, 150),
        (250, 7, 201, 30),
    ],
)
def test_the_failing_record_is_named_wherever_it_sits(fresh, db, backend, n, size, bad, keyed):
    fresh(User)
    User.create(username="taken", email="taken@example.com")
    users = _users(n)
    if keyed is not None:
        users[keyed].id = 10_000_000
    users[bad].email = "taken@example.com"
    with pytest.raises(UniqueViolation) as caught:
        User.batch_insert(users, batch_size=size, validate=False)
    assert caught.value.record_index == bad
    assert raw_count(db, "users") == 1
    for i, user in enumerate(users):
        assert user.id == (10_000_000 if i == keyed else None) and user.is_new_record
