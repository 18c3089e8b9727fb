"""Change tracking after batch inserts: the persisted snapshot (shared or copied), copies."""

from __future__ import annotations

import copy
import gc
import pickle
from typing import Annotated

import pytest
import sqlalchemy as sa
from pydantic import ConfigDict, Field, PrivateAttr

from activerecord import ActiveRecord, BatchValidationError, Col


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Pen(Model):
    __table_name__ = "ct_pens"

    id: int | None = None
    name: Annotated[str, Field(max_length=40)]
    color: Annotated[str, Field(max_length=20)] = "blue"


class LoosePen(Model):
    """Assignment writes ``__dict__`` in place here (no validate_assignment)."""

    __table_name__ = "ct_loose_pens"
    model_config = ConfigDict(validate_assignment=False)

    id: int | None = None
    name: Annotated[str, Field(max_length=40)]
    color: str = "blue"


class PrivatePen(Model):
    """A model with its own pydantic private attribute."""

    __table_name__ = "ct_private_pens"

    id: int | None = None
    name: Annotated[str, Col(unique=True), Field(max_length=40)]
    color: str = "blue"
    _note: str = PrivateAttr(default="n")


def _stored(db, model, record):
    table = model.__table__
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == record.id)).mappings().one()
    return dict(row)


def _batch(model, how):
    rows = [{"name": f"p{i}"} for i in range(5)]
    if how == "instances":
        records = [model(**r) for r in rows]
        model.batch_insert(records, validate=False)
        return records
    return model.batch_insert_from_dicts(rows, validate=how == "dicts validated")


@pytest.mark.parametrize("how", ["instances", "dicts validated", "dicts unvalidated"])
@pytest.mark.parametrize("model", [Pen, LoosePen, PrivatePen])
def test_batch_inserted_records_track_later_changes(fresh, db, backend, model, how):
    fresh(model)
    records = _batch(model, how)
    assert all(not r.is_new_record and r.changed_fields == set() for r in records)
    assert [r.save() for r in records] == [False] * 5  # nothing to write
    first, second = records[0], records[1]
    first.name = "renamed"
    assert first.changed_fields == {"name"} and second.changed_fields == set()
    # Someone else changes another column meanwhile: save() writes only what changed here.
    with db.engine.begin() as conn:
        table = model.__table__
        conn.execute(sa.update(table).where(table.c.id == first.id).values(color="red"))
    assert first.save() is True
    assert _stored(db, model, first)["name"] == "renamed"
    assert _stored(db, model, first)["color"] == "red"
    assert first.changed_fields == set()
    first.name = "renamed"  # the value it already has
    assert first.changed_fields == set()


def test_refresh_after_a_batch_keeps_tracking(fresh, db, backend):
    fresh(Pen)
    records = _batch(Pen, "instances")
    with db.engine.begin() as conn:
        conn.execute(sa.update(Pen.__table__).values(color="green"))
    pen = records[2].refresh()
    assert pen.color == "green" and pen.changed_fields == set()
    pen.color = "black"
    assert pen.changed_fields == {"color"}


def test_copies_and_pickles_keep_their_own_snapshot(fresh, db, backend):
    fresh(Pen)
    pen = _batch(Pen, "dicts validated")[0]
    shallow = pen.model_copy(update={"name": "shallow"})
    deep = pen.model_copy(update={"name": "deep"}, deep=True)
    plain = copy.copy(pen)
    assert shallow.changed_fields == {"name"} and deep.changed_fields == {"name"}
    assert not plain.is_new_record and plain.changed_fields == set()
    assert pen.changed_fields == set() and pen.name == "p0"
    revived = pickle.loads(pickle.dumps(pen))  # noqa: S301 - our own bytes
    assert revived == pen and not revived.is_new_record and revived.changed_fields == set()
    revived.color = "red"
    assert revived.changed_fields == {"color"} and pen.changed_fields == set()
    assert pickle.loads(pickle.dumps(Pen(name="new"))).is_new_record  # noqa: S301


def test_new_and_deleted_records_have_no_snapshot(fresh, db, backend):
    fresh(Pen)
    pen = Pen(name="x")
    assert pen.is_new_record and pen.changed_fields == {"id", "name", "color"}
    pen.save()
    assert not pen.is_new_record
    pen.delete()
    assert pen.is_new_record


def test_models_declare_no_private_attributes():
    # A pydantic private attribute makes validation call Python for every instance: the
    # snapshot lives in a slot instead (users may still declare their own, see PrivatePen).
    assert ActiveRecord.__private_attributes__ == {} and Pen.__private_attributes__ == {}
    assert PrivatePen(name="a")._note == "n"


@pytest.mark.backends("sqlite")
def test_garbage_collector_is_left_as_it_was(fresh, db, backend):
    fresh(Pen)
    seen = []
    Pen.batch_insert_from_dicts([{"name": "a"}], progress=lambda n: seen.append(gc.isenabled()))
    assert gc.isenabled() and seen == [True]  # paused only while pydantic validates
    with pytest.raises(BatchValidationError):
        Pen.batch_insert_from_dicts([{"name": "x" * 99}])
    assert gc.isenabled()
    gc.disable()
    try:
        Pen.batch_insert_from_dicts([{"name": "b"}])
        assert not gc.isenabled()
    finally:
        gc.enable()
