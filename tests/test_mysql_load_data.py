"""MySQL/MariaDB ``LOAD DATA LOCAL INFILE``: every type and hostile string read back exactly,
keys proven against a SELECT, warnings as typed errors with the batch rolled back, and the
fallback where the connection does not allow it."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import logging
import uuid
from typing import Annotated, Any

import pymysql
import pytest
import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col, UpsertResult
from activerecord.backend.dialects.mysql import MySQLFacts
from activerecord.errors import DataError, UniqueViolation
from activerecord.write.strategies import MysqlLoadDataStrategy, strategy_for
from activerecord.write.strategies.load_data_wire import FILE_NAME, send_load
from tests.conftest import backend_url

pytestmark = pytest.mark.backends("mysql")

HOSTILE = [
    "\\N", "\\", "\\\\", "a\tb", "line\nbreak", "cr\rlf\r\n", "nul\0byte", "'quote'", '"dq"',
    "ünïcödé ß", "emoji 🎉👩‍👩‍👧", "", " ", "trailing\\", "\\t literal", "\x1a ctrl-z", "%s %(x)s",
]
N = max(3 * MysqlLoadDataStrategy.min_rows, len(HOSTILE) + 256)


class Model(ActiveRecord):
    __abstract__ = True
    __metadata__ = sa.MetaData()


class Loaded(Model):
    __table_name__ = "load_data_values"

    id: int | None = None
    s: Annotated[str, Field(max_length=80)] | None = None
    t: str | None = None
    i: int | None = None
    big: int | None = None
    b: bool | None = None
    f: float | None = None
    d: Annotated[decimal.Decimal, Field(max_digits=12, decimal_places=4)] | None = None
    ts: dt.datetime | None = None
    day: dt.date | None = None
    tm: dt.time | None = None
    u: uuid.UUID | None = None
    raw: bytes | None = None
    doc: dict[str, Any] | None = None


class Tiny(Model):
    __table_name__ = "load_data_tiny"

    id: int | None = None
    name: Annotated[str, Field(max_length=8), Col(unique=True)]
    n: int = 0


def _rows() -> list[Loaded]:
    out = []
    for k in range(N):
        text = HOSTILE[k % len(HOSTILE)]
        out.append(
            Loaded(
                s=text if k % 7 else None,
                t=text * 3 + str(k),
                i=k - N // 2,
                big=2**62 + k if k % 2 else -(2**62) - k,
                b=k % 3 == 0 if k % 5 else None,
                f=k / 7 if k % 4 else (-1.5e300 if k % 8 else 5e-324),
                d=decimal.Decimal(k) / 8 - 5,
                ts=dt.datetime(2024, 2, 29, 23, 59, 59, k % 1_000_000) if k % 6 else None,
                day=dt.date(1, 1, 1) + dt.timedelta(days=k * 997),
                tm=dt.time(k % 24, 59, 58, 999_999 if k % 2 else 0),
                u=uuid.UUID(int=k * 2**100 + k),
                raw=bytes([k % 256]) + bytes(range(256)) if k % 3 else (b"" if k % 2 else None),
                doc={"k": k, "text": text, "nested": [None, True, 1.5]} if k % 4 else None,
            )
        )
    return out


def _fields(model: ActiveRecord) -> dict[str, Any]:
    return model.model_dump()


def _stored(model: type[ActiveRecord]) -> dict[int, dict[str, Any]]:
    return {r.id: _fields(r) for r in model.query().order_by("id").all()}  # type: ignore[misc]


@pytest.fixture
def load_data_path(db: Any) -> None:
    """The test is about the LOAD DATA path itself: a Galera node never takes it (lock mode
    2; tests/unit/test_load_data_rules.py covers that decision)."""
    if db.facts.is_galera:
        pytest.skip("a Galera node takes the INSERT path, not LOAD DATA")


def test_every_type_and_hostile_string_round_trips_with_keys(db, fresh, caplog):
    fresh(Loaded)
    records = _rows()
    with caplog.at_level(logging.DEBUG, logger="activerecord"):
        Loaded.batch_insert(records, validate=False)
    if not db.facts.is_galera:  # a Galera node takes the INSERT path, as exact
        assert not [r for r in caplog.records if "instead of LOAD DATA" in r.getMessage()]
    stored = _stored(Loaded)
    assert sorted(stored) == sorted(r.id for r in records)
    for record in records:
        assert stored[record.id] == _fields(record)  # the key is this row's, every value exact


def test_load_data_is_the_path_taken(db, fresh, load_data_path):
    fresh(Tiny)
    with db.engine.begin() as conn:
        strategy = strategy_for(conn, Tiny.__ar_info__, db.facts)
        assert isinstance(strategy, MysqlLoadDataStrategy)
        assert strategy.refusal(fetch_key=True) is None
        strategy.close()
        conn.rollback()


def test_keys_follow_the_session_increment(db, fresh):
    fresh(Tiny)
    Tiny.batch_insert([Tiny(name="first")])
    with activerecord.Transaction():
        cursor = activerecord.get_connection().cursor()
        cursor.execute("SET SESSION auto_increment_increment = 3")
        try:
            made = [Tiny(name=f"n{k}", n=k) for k in range(N)]
            Tiny.batch_insert(made, validate=False)
        finally:
            cursor.execute("SET SESSION auto_increment_increment = 1")
    keys = [m.id for m in made]
    # Steps of 3 within a load; between loads InnoDB may skip the values it reserved unused.
    assert all(b > a and (b - a) % 3 == 0 for a, b in zip(keys, keys[1:]))
    with db.engine.connect() as conn:
        by_name = dict(conn.execute(sa.text("SELECT name, id FROM load_data_tiny")).all())
    assert [by_name[m.name] for m in made] == keys


@pytest.mark.parametrize(
    ("bad", "column", "message"),
    [
        ({"name": "far too long"}, "name", "truncated"),
        ({"n": 2**40}, "n", "out of range"),
    ],
)
def test_a_warning_is_a_data_error_naming_record_and_column_and_nothing_stays(
    db, fresh, load_data_path, bad, column, message
):
    fresh(Tiny)
    with db.engine.begin() as conn:  # n as a 32-bit INT, so a value can be out of range
        conn.exec_driver_sql("ALTER TABLE load_data_tiny MODIFY n INT NOT NULL")
    rows = [{"name": f"r{k}", "n": k} for k in range(N)]
    rows[N - 5] |= bad
    with pytest.raises(DataError) as caught:
        Tiny.batch_insert_from_dicts(rows, validate=False, return_records=False)
    assert caught.value.record_index == N - 5
    assert column in str(caught.value) and message in str(caught.value).lower()
    assert Tiny.query().count() == 0


def test_a_duplicate_key_is_a_unique_violation_and_the_batch_rolls_back(db, fresh):
    fresh(Tiny)
    Tiny.batch_insert([Tiny(name="taken")])
    made = [Tiny(name=f"d{k}") for k in range(N)]
    made[N // 2] = Tiny(name="taken")
    with pytest.raises(UniqueViolation) as caught:
        Tiny.batch_insert(made, validate=False)
    assert caught.value.record_index == N // 2
    assert Tiny.query().count() == 1
    assert all(m.id is None for m in made)


def test_an_engine_without_local_infile_falls_back(db, fresh, load_data_path, caplog):
    fresh(Tiny)
    engine = sa.create_engine(backend_url("mysql"))  # the user's engine: PyMySQL's default
    try:
        with caplog.at_level(logging.DEBUG, logger="activerecord"):
            with engine.begin() as conn, activerecord.using(conn):
                made = [Tiny(name=f"o{k}") for k in range(N)]
                Tiny.batch_insert(made, validate=False)
        assert any(
            "without local_infile" in r.getMessage() for r in caplog.records
        ), "the fallback is said at DEBUG"
    finally:
        engine.dispose()
    by_name = {t.name: t.id for t in Tiny.query().all()}
    assert [by_name[m.name] for m in made] == [m.id for m in made]


def test_lock_mode_two_falls_back_to_insert(db, fresh, load_data_path, caplog):
    fresh(Tiny)
    db._facts = dataclasses.replace(db.facts, autoinc_consecutive=False)
    made = [Tiny(name=f"m{k}") for k in range(N)]
    with caplog.at_level(logging.DEBUG, logger="activerecord"):
        Tiny.batch_insert(made, validate=False)
    assert any("innodb_autoinc_lock_mode 2" in r.getMessage() for r in caplog.records)
    by_name = {t.name: t.id for t in Tiny.query().all()}
    assert [by_name[m.name] for m in made] == [m.id for m in made]


def test_a_value_the_file_cannot_hold_sends_the_rest_by_insert_which_names_it(
    db, fresh, monkeypatch, caplog
):
    fresh(Tiny)
    monkeypatch.setattr(MysqlLoadDataStrategy, "piece_rows", MysqlLoadDataStrategy.min_rows)
    rows = [{"name": f"s{k}", "n": k} for k in range(N)]
    bad = N - 3  # in a later piece: the earlier pieces are loaded by then
    rows[bad]["name"] = "x\udc80"  # a lone surrogate: no UTF-8 for it
    with caplog.at_level(logging.DEBUG, logger="activerecord"), pytest.raises(DataError) as caught:
        Tiny.batch_insert_from_dicts(rows, validate=False, return_records=False)
    assert caught.value.record_index == bad
    assert "name" in str(caught.value)
    assert any("instead of LOAD DATA" in r.getMessage() for r in caplog.records)
    assert Tiny.query().count() == 0
    del rows[bad]
    made = Tiny.batch_insert_from_dicts(rows, validate=False)
    by_name = {t.name: t.id for t in Tiny.query().all()}
    assert [by_name[m.name] for m in made] == [m.id for m in made]  # type: ignore[union-attr]


def test_connect_turns_local_infile_on_unless_told_not_to(db):
    local_files = 128  # PyMySQL's CLIENT.LOCAL_FILES

    def flag(engine: sa.Engine) -> int:
        with engine.connect() as conn:
            return int(conn.connection.dbapi_connection.client_flag) & local_files  # type: ignore[union-attr]

    assert flag(db.engine)
    off = activerecord.connect(
        backend_url("mysql"), name="load-data-off", connect_args={"local_infile": False}
    )
    try:
        assert not flag(off.engine)
    finally:
        activerecord.disconnect("load-data-off")


def test_the_driver_sends_a_file_only_for_the_librarys_own_load(db, fresh, tmp_path):
    """The LOCAL_FILES capability is on, but a file request the server makes for any other
    statement (here: the user's own LOAD DATA LOCAL) is refused by the driver: the file is
    never sent (PyMySQL then drops the connection, whose packets are out of step)."""
    fresh(Tiny)
    secret = tmp_path / "secret.txt"
    secret.write_text("1\tleaked\t0\n")
    with pytest.raises(sa.exc.DBAPIError):
        with db.engine.connect() as conn:
            conn.exec_driver_sql(
                f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE load_data_tiny"
            )
    assert Tiny.query().count() == 0
    made = [Tiny(name=f"f{k}") for k in range(N)]
    Tiny.batch_insert(made, validate=False)  # ours still loads (and switches it off again)
    with db.engine.connect() as conn:
        assert conn.connection.dbapi_connection._local_infile is False  # type: ignore[union-attr]
    assert Tiny.query().count() == N


# -- the exchange itself (load_data_wire.py): the file's bytes from memory, in one write ------


def _wire_table(db: Any) -> Any:
    raw = db.engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("DROP TABLE IF EXISTS load_data_wire")
    cursor.execute("CREATE TABLE load_data_wire (id INT AUTO_INCREMENT PRIMARY KEY, s TEXT)")
    return raw


_WIRE_SQL = f"LOAD DATA LOCAL INFILE '{FILE_NAME}' INTO TABLE load_data_wire (s)"


@pytest.mark.parametrize("rows", [0, 1, 90_000])  # 90,000: over 256 packets, the sequence wraps
def test_the_exchange_sends_every_byte_in_order(db, load_data_path, rows):
    raw = _wire_table(db)
    try:
        lines = [f"{k}:{'x' * (k % 97)}" for k in range(rows)]
        payload = "".join(line + "\n" for line in lines).encode()
        assert len(payload) > 256 * 16 * 1024 or rows < 2
        assert send_load(raw.dbapi_connection, _WIRE_SQL, payload) == (rows, 0)
        cursor = raw.cursor()
        cursor.execute("SELECT s FROM load_data_wire ORDER BY id")
        assert [s for (s,) in cursor.fetchall()] == lines
        raw.rollback()
    finally:
        raw.close()


def test_the_exchange_sends_no_file_the_statement_does_not_name(db, load_data_path):
    raw = _wire_table(db)
    try:
        sql = "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE load_data_wire (s)"
        with pytest.raises(pymysql.err.OperationalError, match="asked for '/etc/passwd'"):
            send_load(raw.dbapi_connection, sql, b"secret\n")
        cursor = raw.cursor()  # the connection goes on; nothing was loaded
        cursor.execute("SELECT COUNT(*) FROM load_data_wire")
        assert cursor.fetchone() == (0,)
    finally:
        raw.close()


def test_a_server_error_is_the_drivers_and_the_connection_goes_on(db, load_data_path):
    raw = _wire_table(db)
    try:
        sql = f"LOAD DATA LOCAL INFILE '{FILE_NAME}' INTO TABLE load_data_missing (s)"
        with pytest.raises(pymysql.err.ProgrammingError, match="load_data_missing"):
            send_load(raw.dbapi_connection, sql, b"a\n")
        assert send_load(raw.dbapi_connection, _WIRE_SQL, b"a\nb\n") == (2, 0)
        raw.rollback()
    finally:
        raw.close()


@pytest.mark.parametrize("earlier_fails", [False, True])
def test_a_refused_value_while_an_earlier_chunk_loads_is_reported_in_order(
    db, fresh, load_data_path, earlier_fails
):
    """A batch streams its chunks: a chunk's rows are built while the chunk before still
    loads. A value the rows refuse there is named by its record; where the earlier load
    failed too, that earlier failure is the one reported. Nothing stays either way."""
    fresh(Tiny)
    Tiny.batch_insert([Tiny(name="taken")])
    made = [Tiny(name=f"c{k}", n=k) for k in range(6000)]
    made[5900].n = 2**70  # beyond 64 bits: the integer guard refuses it as the row is built
    if earlier_fails:
        made[10].name = "taken"
    expected = UniqueViolation if earlier_fails else DataError
    with pytest.raises(expected) as caught:
        Tiny.batch_insert(made, validate=False)
    assert caught.value.record_index == (10 if earlier_fails else 5900)
    assert Tiny.query().count() == 1
    assert all(m.id is None for m in made)


def _updates_seen(db: activerecord.Database) -> tuple[list[str], Any]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    return seen, record


def test_an_upsert_updates_many_stored_rows_through_a_loaded_table(db, fresh, load_data_path):
    fresh(Tiny)
    n = MySQLFacts.load_update_rows + 5
    Tiny.batch_insert_from_dicts([{"name": f"u{k}", "n": k} for k in range(n)],
                                 return_records=False)
    made = [Tiny(name=f"u{k}", n=k * 2) for k in range(n)] + [Tiny(name="new", n=1)]
    seen, listener = _updates_seen(db)
    try:
        result = Tiny.batch_upsert(made, conflict="name", update=["n"], validate=False)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert result == UpsertResult(inserted=1, updated=n - 1, unchanged=1)  # u0: 0 * 2 == 0
    assert any("ar_update_rows" in s for s in seen), "the UPDATE joins the loaded table"
    stored = {t.name: (t.id, t.n) for t in Tiny.query()}
    assert len(stored) == n + 1
    assert all(stored[m.name] == (m.id, m.n) for m in made)


@pytest.mark.parametrize("why", ["no local_infile", "no file form"])
def test_an_update_by_key_the_file_cannot_take_goes_as_union_all(db, fresh, caplog, why):
    """Rows LOAD DATA cannot take (a connection that sends no files; a value the file has no
    form for) are updated as UNION ALL statements, which name a refused value as before."""
    fresh(Tiny)
    n = MySQLFacts.load_update_rows + 5
    Tiny.batch_insert_from_dicts([{"name": f"v{k}", "n": k} for k in range(n)],
                                 return_records=False)
    engine = sa.create_engine(backend_url("mysql"))  # PyMySQL's default: no LOCAL files
    try:
        with caplog.at_level(logging.DEBUG, logger="activerecord"), engine.begin() as conn, \
                activerecord.using(conn) if why == "no local_infile" else contextlib.nullcontext():
            records = Tiny.query().order_by("id").all()
            for r in records:
                r.n += 1
            if why == "no file form":
                records[n - 2].__dict__["name"] = "x\udc80"  # a lone surrogate: no UTF-8
                with pytest.raises(activerecord.ActiveRecordError) as caught:
                    Tiny.batch_update(records, ["n", "name"], validate=False)
                assert caught.value.record_index == n - 2
                assert "name" in str(caught.value)
            else:
                assert Tiny.batch_update(records, ["n"]) == n
    finally:
        engine.dispose()
    if not db.facts.is_galera:  # a Galera node never loads: UNION ALL from the start
        assert any("instead of LOAD DATA" in r.getMessage() for r in caplog.records)
    assert sorted(t.n for t in Tiny.query()) == [k + (why == "no local_infile") for k in range(n)]
