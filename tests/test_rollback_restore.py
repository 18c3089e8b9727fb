"""A rolled-back Transaction puts back the records written in it (Rails' ``rolledback!``).

Saves, deletes, soft deletes and restores, batch inserts, upserts and batch updates register
a restore with the ambient transaction; a rollback (of the transaction or of the savepoint the
write ran in) puts each record back to what it was before the write: key, persisted state,
snapshot, and the values the library filled (timestamps, lock version, server defaults,
``deleted_at``). Values the user set stay.
"""

from __future__ import annotations

import logging
from typing import Annotated

import pytest
from pydantic import Field

from activerecord import (
    ActiveRecord,
    Col,
    OptimisticLockMixin,
    SoftDeleteMixin,
    TimestampMixin,
)
from activerecord.backend.transaction import Transaction, on_rollback


class RbNote(TimestampMixin, ActiveRecord):
    __table_name__ = "rb_notes"

    id: int | None = None
    body: Annotated[str, Field(max_length=40), Col(unique=True)]
    rank: Annotated[int | None, Col(server_default="7")] = None


class RbDoc(TimestampMixin, OptimisticLockMixin, ActiveRecord):
    __table_name__ = "rb_docs"

    id: int | None = None
    body: Annotated[str, Field(max_length=40)]


class RbMemo(TimestampMixin, SoftDeleteMixin, OptimisticLockMixin, ActiveRecord):
    __table_name__ = "rb_memos"

    id: int | None = None
    text: Annotated[str, Field(max_length=40)]


class Boom(Exception):
    pass


def bodies() -> list[str]:
    return sorted(n.body for n in RbNote.find_all())


# -- the hooks themselves ---------------------------------------------------------------------
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

