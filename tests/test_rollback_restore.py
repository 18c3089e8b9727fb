"""A rolled-back Transaction puts back the records written in it (Rails' ``rolledback!``).

Saves, deletes, soft deletes and restores, batch inserts, upserts and batch updates register
a restore with the ambient transaction; a rollback (of the transaction or of the savepoint the
write ran in) puts each record back to what it was before the write: key, persisted state,
snapshot, and the values the library filled (timestamps, lock version, server defaults,
``deleted_at``). Values the user set stay.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import tracemalloc
from collections.abc import Callable
from contextlib import nullcontext
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from pydantic import Field

from activerecord import (
    ActiveRecord,
    Col,
    OptimisticLockMixin,
    SoftDeleteMixin,
    TimestampMixin,
    UniqueViolation,
)
from activerecord.backend.external import using
from activerecord.backend.transaction import Transaction, on_rollback, tracks_rollback
from activerecord.errors import TransactionConflictError

from .conftest import raw_count


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class RbNote(TimestampMixin, Model):
    __table_name__ = "rb_notes"

    id: int | None = None
    body: Annotated[str, Field(max_length=40), Col(unique=True)]
    rank: Annotated[int | None, Col(server_default="7")] = None


class RbDoc(TimestampMixin, OptimisticLockMixin, Model):
    __table_name__ = "rb_docs"

    id: int | None = None
    body: Annotated[str, Field(max_length=40)]


class RbMemo(TimestampMixin, SoftDeleteMixin, OptimisticLockMixin, Model):
    __table_name__ = "rb_memos"

    id: int | None = None
    text: Annotated[str, Field(max_length=40)]


class Boom(Exception):
    pass


def bodies() -> list[str]:
    return sorted(n.body for n in RbNote.find_all())


# -- single records ---------------------------------------------------------------------------
def test_insert_rolled_back_makes_the_record_new_again(db, fresh):
    fresh(RbNote)
    note = RbNote(body="a")
    with pytest.raises(Boom), Transaction():
        note.save()
        assert note.id is not None and note.rank == 7 and note.created_at is not None
        assert not note.is_new_record
        raise Boom
    assert note.is_new_record
    assert note.id is None and note.rank is None
    assert note.created_at is None and note.updated_at is None
    assert note.changed_fields == set(RbNote.__ar_info__.fields)
    assert note.body == "a"
    assert note.save() is True  # an INSERT again, not an UPDATE of a row that is not there
    assert note.id is not None and note.rank == 7 and note.created_at is not None
    assert bodies() == ["a"]


def test_values_the_user_set_stay(db, fresh):
    fresh(RbNote)
    stamp = dt.datetime(2020, 1, 2, 3, 4, 5)
    note = RbNote(id=41, body="a", created_at=stamp)
    other = RbNote(body="b")
    with pytest.raises(Boom), Transaction():
        note.save()
        other.save()
        other.body = "b2"  # changed after the save: stays as the user set it
        other.updated_at = stamp
        raise Boom
    assert note.is_new_record and note.id == 41 and note.created_at == stamp
    assert note.updated_at is None  # filled by the library: put back
    assert other.is_new_record and other.id is None
    assert other.body == "b2" and other.updated_at == stamp and other.created_at is None
    note.save()
    other.save()
    assert RbNote.find(41).created_at == stamp


def test_update_rolled_back_restores_snapshot_version_and_stamp(db, fresh):
    fresh(RbDoc)
    doc = RbDoc.create(body="a")
    stamp, version = doc.updated_at, doc.version
    with pytest.raises(Boom), Transaction():
        doc.body = "b"
        doc.save()
        assert doc.version == version + 1 and doc.changed_fields == set()
        raise Boom
    assert doc.body == "b"  # the user's change stays, unsaved
    assert doc.changed_fields == {"body"}
    assert doc.version == version and doc.updated_at == stamp
    assert not doc.is_new_record
    assert doc.save() is True  # the version matches the row's: no StaleRecordError
    assert RbDoc.find(doc.id).body == "b" and RbDoc.find(doc.id).version == version + 1


def test_two_saves_then_rollback_go_back_to_before_the_first(db, fresh):
    fresh(RbDoc)
    doc = RbDoc.create(body="a")
    with pytest.raises(Boom), Transaction():
        doc.body = "b"
        doc.save()
        doc.body = "c"
        doc.save()
        raise Boom
    assert doc.version == 0 and doc.changed_fields == {"body"} and doc.body == "c"
    doc.save()
    assert RbDoc.find(doc.id).body == "c"


def test_create_then_update_rolled_back_is_new_again(db, fresh):
    fresh(RbDoc)
    with pytest.raises(Boom), Transaction():
        doc = RbDoc.create(body="a")
        doc.body = "b"
        doc.save()
        raise Boom
    assert doc.is_new_record and doc.id is None and doc.version == 0
    assert doc.created_at is None and doc.updated_at is None
    doc.save()
    assert RbDoc.find(doc.id).body == "b"


def test_delete_rolled_back_makes_the_record_persisted_again(db, fresh):
    fresh(RbDoc)
    doc = RbDoc.create(body="a")
    with pytest.raises(Boom), Transaction():
        assert doc.delete() is True
        assert doc.is_new_record
        raise Boom
    assert not doc.is_new_record and doc.changed_fields == set()
    doc.body = "b"
    assert doc.save() is True  # an UPDATE of the row that is back
    assert RbDoc.query().count() == 1 and RbDoc.find(doc.id).body == "b"
    assert doc.delete() is True


def test_commit_keeps_the_new_state(db, fresh):
    fresh(RbDoc)
    doc = RbDoc.create(body="a")
    with Transaction():
        doc.body = "b"
        doc.save()
        new = RbDoc.create(body="n")
    assert doc.version == 1 and doc.changed_fields == set()
    assert new.id is not None and not new.is_new_record


def test_failed_save_leaves_no_library_defaults(db, fresh):
    fresh(RbNote)
    RbNote.create(body="taken")
    note = RbNote(body="taken")
    with pytest.raises(UniqueViolation):
        note.save()
    assert note.is_new_record and note.id is None
    assert note.created_at is None and note.updated_at is None and note.rank is None
    note.body = "free"
    note.save()
    stamp = note.updated_at
    other = RbNote.create(body="other")
    note.body = "other"  # a unique clash on update: updated_at goes back too
    with pytest.raises(UniqueViolation):
        note.save()
    assert note.updated_at == stamp and note.changed_fields == {"body"}
    assert other.id is not None


def test_failed_save_inside_a_transaction_leaves_no_defaults(db, fresh):
    fresh(RbNote)
    RbNote.create(body="taken")
    note = RbNote(body="taken")
    with pytest.raises(UniqueViolation), Transaction():
        note.save()
    assert note.is_new_record and note.id is None and note.created_at is None


# -- savepoints -------------------------------------------------------------------------------
def test_savepoint_rollback_restores_only_its_records(db, fresh):
    fresh(RbNote)
    with Transaction():
        outer = RbNote.create(body="outer")
        with pytest.raises(Boom), Transaction():
            inner = RbNote.create(body="inner")
            outer.body = "outer2"
            outer.save()
            raise Boom
        assert inner.is_new_record and inner.id is None
        assert not outer.is_new_record and outer.id is not None
        assert outer.changed_fields == {"body"}  # its update went back, its insert did not
    assert bodies() == ["outer"]
    assert outer.save() is True
    assert bodies() == ["outer2"]


def test_released_savepoint_then_outer_rollback_restores_all(db, fresh):
    fresh(RbNote)
    with pytest.raises(Boom), Transaction():
        outer = RbNote.create(body="outer")
        with Transaction():
            inner = RbNote.create(body="inner")
            with Transaction():
                deepest = RbNote.create(body="deepest")
        raise Boom
    for note in (outer, inner, deepest):
        assert note.is_new_record and note.id is None and note.created_at is None
    RbNote.batch_insert([outer, inner, deepest])
    assert bodies() == ["deepest", "inner", "outer"]


# -- batches ----------------------------------------------------------------------------------
def test_batch_insert_of_a_list_rolled_back(db, fresh):
    fresh(RbNote)
    notes = [RbNote(body=f"n{i}") for i in range(5)]
    with pytest.raises(Boom), Transaction():
        assert RbNote.batch_insert(notes, batch_size=2) == 5
        assert all(n.id is not None and not n.is_new_record for n in notes)
        stamp = dt.datetime(2021, 1, 1)
        notes[0].created_at = stamp  # set by the user after the write: stays
        raise Boom
    assert notes[0].created_at == stamp
    notes[0].created_at = None
    for note in notes:
        assert note.is_new_record and note.id is None
        assert note.created_at is None and note.rank is None and note.updated_at is None
    assert RbNote.batch_insert(notes) == 5
    assert len({n.id for n in notes}) == 5 and bodies() == [f"n{i}" for i in range(5)]


def test_batch_insert_of_a_list_puts_back_a_reinserted_record_and_a_new_dict(db, fresh):
    fresh(RbNote)
    old = RbNote.create(body="old")
    loaded = RbNote.find(old.id)
    RbNote.query().delete(all_rows=True)
    fresh_note = RbNote(body="fresh")
    with pytest.raises(Boom), Transaction():
        RbNote.batch_insert([loaded, fresh_note])
        fresh_note.body = "renamed"  # a new __dict__ (validate_assignment): still put back
        raise Boom
    # The loaded record kept its own key and gets its snapshot back: unchanged, persisted.
    assert loaded.id == old.id and not loaded.is_new_record and not loaded.changed_fields
    assert fresh_note.is_new_record and fresh_note.id is None and fresh_note.rank is None
    assert fresh_note.body == "renamed" and fresh_note.created_at is None


def test_batch_insert_in_a_transaction_keeps_no_copy_of_each_record(db, fresh):
    # What the Transaction keeps to put the records back costs about what the call adds
    # outside one: no copies of every record's fields (each made a batch insert in a
    # Transaction far slower than outside one).
    fresh(RbNote)
    RbNote.batch_insert([RbNote(body="warm")])
    n = 2000

    def retained(make: Callable[[], Any], prefix: str) -> int:
        notes = [RbNote(body=f"{prefix}{i}") for i in range(n)]
        gc.collect()
        tracemalloc.start()
        try:
            with make():
                RbNote.batch_insert(notes)
                gc.collect()
                held = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        return held

    outside = retained(nullcontext, "o")
    inside = retained(Transaction, "i")
    assert inside - outside < 160 * n, (inside - outside) / n


def test_batch_insert_in_a_rolled_back_savepoint(db, fresh):
    fresh(RbNote)
    kept, lost = [RbNote(body="kept")], [RbNote(body="lost1"), RbNote(body="lost2")]
    with Transaction():
        RbNote.batch_insert(kept)
        with pytest.raises(Boom), Transaction():
            RbNote.batch_insert(lost)
            raise Boom
    assert not kept[0].is_new_record and kept[0].id is not None
    assert all(n.is_new_record and n.id is None for n in lost)
    assert bodies() == ["kept"]


@pytest.mark.parametrize("validate", [True, False])
def test_records_built_from_dicts_rolled_back(db, fresh, validate):
    fresh(RbNote)
    rows = [{"body": f"d{i}"} for i in range(5)]
    with pytest.raises(Boom), Transaction():
        built = RbNote.batch_insert_from_dicts(rows, batch_size=2, validate=validate)
        assert isinstance(built, list) and all(n.id is not None for n in built)
        ignored = RbNote.batch_insert_from_dicts(
            [{"body": "d0"}, {"body": "u"}], on_conflict="ignore", validate=validate
        )
        assert isinstance(ignored, list) and [n.body for n in ignored] == ["u"]
        raise Boom
    for note in [*built, *ignored]:
        assert note.is_new_record and note.id is None
        assert note.created_at is None and note.rank is None
    assert [n.body for n in built] == [f"d{i}" for i in range(5)]
    assert raw_count(db, "rb_notes") == 0


def test_batch_insert_of_a_generator_is_put_back(db, fresh):
    fresh(RbNote)
    notes = [RbNote(body=f"n{i}") for i in range(3)]
    with pytest.raises(Boom), Transaction():
        RbNote.batch_insert(n for n in notes)
        assert all(not n.is_new_record for n in notes)
        raise Boom
    # An iterator's records are kept by weak references: those still held are put back.
    assert all(n.is_new_record and n.id is None and n.created_at is None for n in notes)
    assert raw_count(db, "rb_notes") == 0


def test_batch_upsert_rolled_back(db, fresh):
    fresh(RbNote)
    old = RbNote.create(body="old")
    incoming = [RbNote(body="old"), RbNote(body="new")]
    with pytest.raises(Boom), Transaction():
        RbNote.batch_upsert(incoming, conflict=["body"])
        assert incoming[0].id == old.id and incoming[1].id is not None
        raise Boom
    for note in incoming:
        assert note.is_new_record and note.id is None and note.created_at is None
    assert bodies() == ["old"]


def test_insert_ignoring_conflicts_rolled_back(db, fresh):
    fresh(RbNote)
    RbNote.create(body="old")
    incoming = [RbNote(body="old"), RbNote(body="new")]
    with pytest.raises(Boom), Transaction():
        assert RbNote.batch_insert(incoming, on_conflict="ignore") == 1
        assert all(n.id is not None for n in incoming)
        raise Boom
    assert all(n.is_new_record and n.id is None and n.rank is None for n in incoming)
    assert bodies() == ["old"]


def test_batch_update_rolled_back(db, fresh):
    fresh(RbDoc)
    docs = [RbDoc(body=f"d{i}") for i in range(3)]
    RbDoc.batch_insert(docs)
    stamps = [d.updated_at for d in docs]
    for doc in docs:
        doc.body += "!"
    with pytest.raises(Boom), Transaction():
        assert RbDoc.batch_update(docs) == 3
        assert all(d.version == 1 and not d.changed_fields for d in docs)
        raise Boom
    assert [d.version for d in docs] == [0, 0, 0]
    assert [d.updated_at for d in docs] == stamps
    assert all(d.changed_fields == {"body"} for d in docs)
    assert RbDoc.batch_update(docs) == 3  # versions match the rows again
    assert sorted(d.body for d in RbDoc.find_all()) == ["d0!", "d1!", "d2!"]


def test_batch_update_of_new_records_rolled_back_is_new_again(db, fresh):
    fresh(RbDoc)
    RbDoc.batch_insert_from_dicts([{"body": "x"}])
    doc = RbDoc(id=RbDoc.find_all()[0].id, body="y")
    with pytest.raises(Boom), Transaction():
        RbDoc.batch_update([doc], ["body"])
        assert not doc.is_new_record
        raise Boom
    assert doc.is_new_record and doc.version == 0 and doc.updated_at is None


# -- soft delete ------------------------------------------------------------------------------
def test_soft_delete_and_restore_rolled_back(db, fresh):
    fresh(RbMemo)
    memo = RbMemo.create(text="a")
    stamp = memo.updated_at
    with pytest.raises(Boom), Transaction():
        assert memo.delete() is True
        assert memo.is_deleted and memo.version == 1
        raise Boom
    assert not memo.is_deleted and memo.deleted_at is None
    assert memo.version == 0 and memo.updated_at == stamp and memo.changed_fields == set()
    assert memo.delete() is True  # the version matches: no StaleRecordError
    with pytest.raises(Boom), Transaction():
        assert memo.restore() is True
        assert not memo.is_deleted
        raise Boom
    assert memo.is_deleted and memo.version == 1 and memo.changed_fields == set()
    assert memo.restore() is True
    assert RbMemo.query().count() == 1


def test_hard_delete_rolled_back(db, fresh):
    fresh(RbMemo)
    memo = RbMemo.create(text="a")
    with pytest.raises(Boom), Transaction():
        assert memo.hard_delete() is True
        raise Boom
    assert not memo.is_new_record
    assert memo.hard_delete() is True
    assert RbMemo.query().with_deleted().count() == 0


# -- the hooks themselves -------------------------------------------------------------------------
def test_rollback_hooks_order_levels_and_errors(db, fresh, caplog):
    fresh(RbNote)
    ran: list[str] = []

    def note(name: str):
        return lambda: ran.append(name)

    def fail() -> None:
        ran.append("fail")
        raise RuntimeError("hook error")

    boom = Boom("the cause")
    on_rollback(note("outside: never kept"), db)
    with caplog.at_level(logging.ERROR, logger="activerecord"):
        with pytest.raises(Boom) as info, Transaction():
            on_rollback(note("outer"), db)
            with Transaction():
                on_rollback(note("released"), db)
            with pytest.raises(Boom), Transaction():
                on_rollback(note("savepoint 1"), db)
                on_rollback(note("savepoint 2"), db)
                raise Boom
            assert ran == ["savepoint 2", "savepoint 1"]
            on_rollback(fail, db)
            on_rollback(note("last"), db)
            raise boom
    assert info.value is boom  # a failing hook hides nothing
    assert ran == ["savepoint 2", "savepoint 1", "last", "fail", "released", "outer"]
    assert "on_rollback hook failed" in caplog.text
    ran.clear()
    with Transaction():
        on_rollback(note("committed: dropped"), db)
        with Transaction():
            on_rollback(note("released: dropped"), db)
    assert ran == []


@pytest.mark.parametrize("driver_error", [True, False])
def test_a_failed_commit_runs_the_hooks(db, fresh, monkeypatch, driver_error):
    fresh(RbNote)
    note = RbNote(body="a")
    with pytest.raises(Exception, match="commit failed"), Transaction() as tx:
        note.save()
        conn = tx.connection

        def failing_commit() -> None:
            conn.rollback()
            if driver_error:  # translated by the library
                raise sa.exc.OperationalError("COMMIT", {}, Exception("commit failed"))
            raise RuntimeError("commit failed")  # anything else

        monkeypatch.setattr(conn, "commit", failing_commit)
    assert note.is_new_record and note.id is None


def test_using_restores_on_savepoints_only(db, fresh):
    fresh(RbNote)
    with db.engine.connect() as conn:
        with using(conn):
            assert not tracks_rollback(db)
            mine = RbNote.create(body="own level")
            with Transaction():
                released = RbNote.create(body="released")
            with pytest.raises(Boom), Transaction():
                assert tracks_rollback(db)
                inner = RbNote.create(body="inner")
                raise Boom
        conn.rollback()  # the caller's rollback: the library never sees it
    assert inner.is_new_record and inner.id is None
    assert not mine.is_new_record and not released.is_new_record
    assert raw_count(db, "rb_notes") == 0


def test_nothing_is_kept_outside_a_transaction(db, fresh):
    fresh(RbNote)
    assert not tracks_rollback(db)
    note = RbNote.create(body="a")
    note.body = "b"
    note.save()
    assert not note.is_new_record and note.changed_fields == set()


def test_a_retried_transaction_inserts_again(db, fresh):
    fresh(RbNote)
    note = RbNote(body="a")
    keys: list[int | None] = []

    def work() -> None:
        note.save()  # the retry finds the record new again: an INSERT, not a silent no-op
        keys.append(note.id)
        if len(keys) == 1:
            raise TransactionConflictError("deadlock (simulated)")

    Transaction(retries=2, backoff=0).run(work)
    assert len(keys) == 2 and keys[1] is not None
    assert bodies() == ["a"] and not note.is_new_record
