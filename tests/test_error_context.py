"""A failed write names where it failed, as attributes and in its message, on every backend:
the operation, the model, the record (its index in the input), the column whose value was
refused and, for a file, the line; nothing is written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, Field

from activerecord import ActiveRecord, Col, DataError, NotNullViolation, UniqueViolation

from .conftest import raw_count

TOO_BIG = 2**70  # valid for pydantic's int, beyond every backend's integer column


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class CtxPerson(Model):
    __table_name__ = "ctx_person"

    id: int | None = None
    email: Annotated[str, Field(max_length=40), Col(unique=True)]
    n: int | None = None
    at: AwareDatetime | None = None


def test_failed_batch_insert_names_operation_record_and_column(db, fresh):
    fresh(CtxPerson)
    rows = [{"email": "a"}, {"email": "b"}, {"email": "c", "n": TOO_BIG}]
    with pytest.raises(DataError) as caught:
        CtxPerson.batch_insert_from_dicts(rows)
    err = caught.value
    assert (err.operation, err.model, err.record, err.column) == (
        "batch_insert", "CtxPerson", 2, "n"
    )
    assert str(err).startswith("batch insert of CtxPerson: record 2: ")
    assert str(err).count("record 2") == 1
    assert "'n'" in str(err)
    assert err.__cause__ is err.orig
    assert raw_count(db, "ctx_person") == 0


@pytest.mark.parametrize("call", ["insert", "upsert"])
def test_a_null_a_not_null_column_refuses_names_the_column(db, fresh, call):
    """The server's NOT NULL refusal (validation off, or a value set past it) names its
    column in the error (``column``, from PostgreSQL's diagnostics or the message) beside
    the record; nothing written."""
    fresh(CtxPerson)
    rows = [{"email": "a"}, {"email": None}]
    with pytest.raises(NotNullViolation) as caught:
        if call == "insert":
            CtxPerson.batch_insert_from_dicts(rows, validate=False)
        else:
            CtxPerson.batch_upsert(rows, conflict="email", validate=False)
    err = caught.value
    assert (err.column, err.record_index) == ("email", 1), str(err)
    assert raw_count(db, "ctx_person") == 0


def test_failed_batch_insert_names_the_duplicate_record(db, fresh):
    fresh(CtxPerson)
    with pytest.raises(UniqueViolation) as caught:
        CtxPerson.batch_insert([CtxPerson(email="a"), CtxPerson(email="b"), CtxPerson(email="a")])
    err = caught.value
    assert (err.operation, err.model, err.record) == ("batch_insert", "CtxPerson", 2)
    assert str(err).startswith("batch insert of CtxPerson: record 2: ")
    assert raw_count(db, "ctx_person") == 0


def test_failed_batch_upsert_names_operation_record_and_column(db, fresh):
    fresh(CtxPerson)
    CtxPerson.batch_insert([CtxPerson(email="a")])
    with pytest.raises(DataError) as caught:
        CtxPerson.batch_upsert([CtxPerson(email="x"), CtxPerson(email="y", n=TOO_BIG)])
    err = caught.value
    assert (err.operation, err.model, err.record, err.column) == (
        "batch_upsert", "CtxPerson", 1, "n"
    )
    assert str(err).startswith("batch upsert of CtxPerson: record 1: ")
    assert raw_count(db, "ctx_person") == 1


def test_failed_batch_update_names_operation_record_and_column(db, fresh):
    fresh(CtxPerson)
    CtxPerson.batch_insert([CtxPerson(email="a"), CtxPerson(email="b")])
    people = CtxPerson.query().order_by("id").all()
    # A naive datetime for an aware field (pydantic refuses it on assignment): the column's
    # bind processor refuses it before anything is sent.
    people[1].__dict__["at"] = dt.datetime(2020, 1, 1)  # noqa: DTZ001 - the point
    with pytest.raises(DataError) as caught:
        CtxPerson.batch_update(people, ["at"])
    err = caught.value
    assert (err.operation, err.model, err.record, err.column) == (
        "batch_update", "CtxPerson", 1, "at"
    )
    assert str(err).startswith("batch update of CtxPerson: record 1: column 'at': ")
    assert CtxPerson.query().where({"at": None}).count() == 2


def test_failed_query_update_and_save_name_their_operation(db, fresh):
    fresh(CtxPerson)
    CtxPerson.batch_insert([CtxPerson(email="a"), CtxPerson(email="b")])
    with pytest.raises(UniqueViolation) as caught:
        CtxPerson.query().where({"email": "b"}).update({"email": "a"})
    assert (caught.value.operation, caught.value.model) == ("query.update", "CtxPerson")
    assert str(caught.value).startswith("update of CtxPerson: ")
    with pytest.raises(DataError) as refused:
        CtxPerson(email="c", n=TOO_BIG).save()
    assert (refused.value.operation, refused.value.model) == ("save", "CtxPerson")
    assert str(refused.value).startswith("save of CtxPerson: ")
    assert raw_count(db, "ctx_person") == 2


def test_failed_load_names_record_line_and_column(db, fresh, tmp_path: Path):
    fresh(CtxPerson)
    path = tmp_path / "people.csv"
    path.write_text(f"email,n\nc,1\nd,{TOO_BIG}\ne,3\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        CtxPerson.load_csv(path)
    err = caught.value
    # The load ran a batch insert: the operation is the write that failed.
    assert (err.operation, err.model, err.record, err.column) == (
        "batch_insert", "CtxPerson", 1, "n"
    )
    assert (err.row, err.unit, err.source) == (3, "line", str(path))
    assert f"record 1 (line 3 of {path}): " in str(err)
    assert str(err).count("line 3") == 1
    assert raw_count(db, "ctx_person") == 0
