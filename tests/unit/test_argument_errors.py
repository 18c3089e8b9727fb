"""A wrong argument to a public call is an ActiveRecordError (also the builtin it stands
for, so ``except TypeError`` / ``except ValueError`` callers keep working), raised before
anything is written. Runs on an in-memory SQLite database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import (
    ActiveRecord,
    ActiveRecordError,
    ArgumentError,
    ArgumentTypeError,
    Transaction,
)


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class ArgThing(Model):
    __table_name__ = "arg_things"
    id: int | None = None
    n: int = 0


@pytest.fixture
def memory():
    activerecord.connect("sqlite://")
    ArgThing.create_table()
    ArgThing.batch_insert_from_dicts([{"n": 1}])
    yield
    activerecord.disconnect()


TYPE_MISTAKES = {
    "update values not a mapping": lambda: ArgThing.query().where({"n": 1}).update([("n", 2)]),
    "update_all values not a mapping": lambda: ArgThing.update_all(5, {"n": 1}),
    "Transaction retries not an int": lambda: Transaction(retries="3"),
    "Transaction backoff not a number": lambda: Transaction(backoff="fast"),
    "Transaction isolation_level not a name": lambda: Transaction(isolation_level=5),
    "batch_size not an int": lambda: ArgThing.batch_insert([ArgThing()], batch_size="x"),
    "records not iterable": lambda: ArgThing.batch_insert(None),
    "col() of a number": lambda: activerecord.col(5),
    "Expression of a number": lambda: activerecord.Expression(5),
}
VALUE_MISTAKES = {
    "batch_size below 1": lambda: ArgThing.batch_insert([ArgThing()], batch_size=0),
    "each size 0": lambda: list(ArgThing.query().each(size=0)),
    "to_dicts chunk_size 0": lambda: ArgThing.query().to_dicts(chunk_size=0),
    "unknown on_conflict": lambda: ArgThing.batch_insert([ArgThing()], on_conflict="zz"),
}


@pytest.mark.parametrize("call", TYPE_MISTAKES.values(), ids=TYPE_MISTAKES)
def test_a_wrong_type_is_an_argument_type_error(memory, call):
    with pytest.raises(ArgumentTypeError) as caught:
        call()
    assert isinstance(caught.value, (ActiveRecordError, TypeError))
    assert [t.n for t in ArgThing.query().all()] == [1]  # nothing was written


@pytest.mark.parametrize("call", VALUE_MISTAKES.values(), ids=VALUE_MISTAKES)
def test_a_wrong_value_is_an_argument_error(memory, call):
    with pytest.raises(ArgumentError) as caught:
        call()
    assert isinstance(caught.value, ValueError)
    assert [t.n for t in ArgThing.query().all()] == [1]
