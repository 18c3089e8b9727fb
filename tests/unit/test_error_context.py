"""Structured error context (no server): where an error happened is kept as attributes
(operation, context, model, record, row/unit/source, column), set once by error_context() and
rendered by str() in front of the bare message, each piece once; the driver's exception stays
``.orig`` and ``__cause__``; errors pickle with their context."""

from __future__ import annotations

import pickle
import sqlite3

import pytest

from activerecord import (
    ActiveRecordError,
    DataError,
    UniqueViolation,
    UnknownColumnError,
)
from activerecord.backend.errors import driver_errors, translate_error
from activerecord.errors import add_context, error_context

UNIQUE = "UNIQUE constraint failed: user.email"


def test_a_bare_error_renders_its_message_only() -> None:
    err = ActiveRecordError("database is locked")
    assert str(err) == "database is locked"
    assert (err.operation, err.context, err.model, err.record, err.row, err.column) == (
        None, None, None, None, None, None
    )


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ({"context": "save of User"}, f"save of User: {UNIQUE}"),
        ({"record": 3}, f"record 3: {UNIQUE}"),
        ({"column": "name"}, f"column 'name': {UNIQUE}"),
        ({"context": "batch insert of User", "record": 3},
         f"batch insert of User: record 3: {UNIQUE}"),
        ({"context": "load_csv of User", "record": 3, "row": 5, "unit": "line",
          "source": "people.csv"},
         f"load_csv of User: record 3 (line 5 of people.csv): {UNIQUE}"),
        ({"record": 0, "row": "a", "unit": "row"}, f"record 0 (row 'a'): {UNIQUE}"),
        ({"record": 0, "row": 7}, f"record 0 (row 7): {UNIQUE}"),
        # Not rendered: the operation and the model are for code, the context says them.
        ({"operation": "batch_insert", "model": "User"}, UNIQUE),
        # A row without a record is not a place of its own.
        ({"row": 5, "unit": "line"}, UNIQUE),
    ],
)
def test_each_piece_renders_once_when_set(pieces: dict[str, object], expected: str) -> None:
    err = ActiveRecordError(UNIQUE)
    for name, value in pieces.items():
        setattr(err, name, value)
    assert str(err) == expected
    assert err.args == (UNIQUE,)  # the bare message is kept as it was


def test_a_column_the_message_names_is_not_named_again() -> None:
    message = "Out of range value for column 'n' at row 2"
    err = DataError(message)
    err.column = "n"
    assert str(err) == message
    err.column = "m"
    assert str(err) == f"column 'm': {message}"


def test_error_context_sets_only_what_is_missing() -> None:
    with pytest.raises(UniqueViolation) as caught:
        with error_context(operation="batch_insert", model="User", record=9):
            with error_context(record=3):
                raise translate_error(sqlite3.IntegrityError(UNIQUE), context="x")
    err = caught.value
    assert (err.operation, err.model, err.record, err.record_index) == (
        "batch_insert", "User", 3, 3
    )
    assert str(err) == f"x: record 3: {UNIQUE}"


def test_error_context_leaves_other_exceptions_alone() -> None:
    with pytest.raises(KeyError) as caught:
        with error_context(operation="save"):
            raise KeyError("k")
    assert not hasattr(caught.value, "operation")


def test_error_context_refuses_an_unknown_piece() -> None:
    with pytest.raises(TypeError, match="unknown pieces: \\['recrod'\\]"):
        with error_context(recrod=1):
            pass


def test_add_context_returns_the_error() -> None:
    err = ActiveRecordError("m")
    assert add_context(err, operation="save", record=None) is err
    assert err.operation == "save" and err.record is None


def test_translate_error_keeps_the_bare_message_and_the_driver_error() -> None:
    orig = sqlite3.IntegrityError(UNIQUE)
    err = translate_error(orig, context="batch insert of User", record_index=4)
    assert err.args == (UNIQUE,)
    assert err.context == "batch insert of User" and err.record == 4
    assert str(err) == f"batch insert of User: record 4: {UNIQUE}"
    assert err.orig is orig


def test_driver_errors_names_the_operation_and_keeps_the_cause() -> None:
    sa = pytest.importorskip("sqlalchemy")
    engine = sa.create_engine("sqlite://")
    with pytest.raises(ActiveRecordError) as caught:
        with driver_errors("update of User", operation="query.update", model="User"), \
                engine.connect() as conn:
            conn.exec_driver_sql("UPDATE missing SET x = 1")
    err = caught.value
    assert (err.operation, err.model, err.context) == ("query.update", "User", "update of User")
    assert str(err).startswith("update of User: no such table: missing")
    assert isinstance(err.__cause__, sa.exc.DBAPIError)
    assert isinstance(err.__cause__.orig, sqlite3.OperationalError)


def test_unknown_column_error_renders_its_record_without_repr() -> None:
    err = UnknownColumnError("nmae", "User", ["id", "name"])
    err.record = 2
    assert str(err) == "record 2: User has no column 'nmae' (columns: id, name)"


def test_a_database_error_pickles_with_its_context() -> None:
    err = translate_error(sqlite3.IntegrityError(UNIQUE), context="batch insert of User",
                          record_index=4)
    add_context(err, operation="batch_insert", model="User", row=6, unit="line",
                source="people.csv", column="email")
    back = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
    assert type(back) is UniqueViolation
    assert str(back) == str(err)
    assert (back.operation, back.model, back.record, back.row, back.column) == (
        "batch_insert", "User", 4, 6, "email"
    )
