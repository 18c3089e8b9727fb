"""Record state (activerecord.model.state): the pydantic invariant shared snapshots rely on,
marking, and the undo object every writer uses. No server needed."""

from __future__ import annotations

import pydantic
import pytest
import sqlalchemy as sa

from activerecord import ActiveRecord
from activerecord.model import state


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own (tests/models.py says why)."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Slate(Model):
    __table_name__ = "state_slates"
    id: int | None = None
    label: str
    size: int = 0


class LooseSlate(Model):
    __table_name__ = "state_loose_slates"
    model_config = pydantic.ConfigDict(validate_assignment=False)
    id: int | None = None
    label: str


def test_pydantic_swaps_the_dict_on_assignment():
    # The invariant mark_persisted_batch relies on: an assignment gives a record a new
    # __dict__, and a failed one leaves the record as it was.
    assert state.ASSIGNMENT_SWAPS_DICT
    slate = Slate(label="a")
    first = slate.__dict__
    slate.size = 3
    assert slate.__dict__ is not first and first["size"] == 0
    second = slate.__dict__
    with pytest.raises(pydantic.ValidationError):
        slate.size = "many"  # type: ignore[assignment]
    assert slate.__dict__ is second and slate.size == 3


def test_a_shared_snapshot_sees_no_later_assignment():
    slates = [Slate(id=1, label="a"), Slate(id=2, label="b")]
    state.mark_persisted_batch(slates, [s.__dict__ for s in slates])
    assert state.snapshot_of(slates[0]) is slates[0].__dict__  # shared, no copy
    slates[0].label = "changed"
    assert slates[0].changed_fields == {"label"}
    assert state.snapshot_of(slates[0]) == {"id": 1, "label": "a", "size": 0}
    assert not slates[1].changed_fields


def test_without_validate_assignment_snapshots_are_copies():
    loose = [LooseSlate(id=1, label="a")]
    state.mark_persisted_batch(loose, [r.__dict__ for r in loose])
    assert state.snapshot_of(loose[0]) is not loose[0].__dict__
    loose[0].label = "b"  # written in place: the snapshot must not follow
    assert loose[0].changed_fields == {"label"}


def test_mark_written_keeps_other_changes_pending():
    fresh = Slate(id=1, label="a", size=2)
    state.mark_written([fresh], ["id", "label"])
    assert fresh.changed_fields == {"size"}  # its stored value is not known
    assert repr(state.snapshot_of(fresh)["size"]) == "<unknown stored value>"


def test_undo_of_a_failed_insert_puts_filled_fields_back():
    slate = Slate(label="a")
    undo = state.Undo.single(ambient=False)
    undo.keep([slate], [slate.__dict__])
    undo.filled([slate.__dict__], "id")
    slate.__dict__["id"] = 9
    undo.failed()
    assert slate.id is None and slate.is_new_record


def test_undo_after_success_marks_and_a_rollback_puts_back():
    slate = Slate(id=1, label="a")
    state.mark_persisted(slate)
    undo = state.Undo.single(ambient=True, copies=True)
    undo.keep([slate], [slate.__dict__])
    slate.__dict__["size"] = 5  # the library's own stamp
    undo.written([slate], [slate.__dict__])
    restore = undo.succeeded()
    assert restore is not None and not slate.changed_fields
    slate.label = "mine"  # the user's change after the write stays
    restore()
    assert (slate.size, slate.label) == (0, "mine")
    assert state.snapshot_of(slate) == {"id": 1, "label": "a", "size": 0}


def test_undo_of_a_delete_makes_the_record_new_and_back():
    slate = Slate(id=1, label="a")
    state.mark_persisted(slate)
    undo = state.Undo.single(ambient=True, rollback_only=True)
    undo.keep([slate], [slate.__dict__])
    undo.written([slate], [slate.__dict__], state.GONE)
    restore = undo.succeeded()
    assert slate.is_new_record and restore is not None
    restore()
    assert not slate.is_new_record and not slate.changed_fields
