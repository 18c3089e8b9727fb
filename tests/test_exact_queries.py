"""Queries and batch writes that must touch exactly the rows meant (issue 15, items 3, 13, 25,
26 and 27), on every backend: condition values checked against their column, assignments
that read each other, IN over more keys than a statement takes parameters, limited writes,
and table or column names that clash with the library's own SQL."""

from __future__ import annotations

from typing import Annotated

import pytest
import sqlalchemy as sa
from pydantic import Field

from activerecord import ActiveRecord, Col


class Percent(ActiveRecord):
    """``%`` in the table and column names: psycopg and PyMySQL read ``%%`` as ``%`` only
    while they interpolate parameters."""

    __table_name__ = "ex_100%"

    id: int | None = None
    rate: Annotated[int, Col(name="rate%")] = 0
    name: Annotated[str, Field(max_length=20), Col(name="na%(me)s", unique=True)] = ""


class V(ActiveRecord):
    """A table called ``v``, the name the batch UPDATE once gave its row source."""

    __table_name__ = "v"

    id: int | None = None
    rate: int = 0
    name: Annotated[str, Field(max_length=20), Col(unique=True)] = ""


def _stored(db, model) -> list[tuple[int, int, str]]:
    table = model.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(*table.c).order_by(table.c.id)).all()
    return [tuple(row) for row in rows]


@pytest.mark.parametrize("model", [Percent, V], ids=["percent", "v"])
def test_odd_names_in_every_batch_write(fresh, db, backend, model):
    fresh(model)
    records = [model(name=f"n{i}") for i in range(3)]
    assert model.batch_insert(records) == 3
    assert [r.id for r in records] == [1, 2, 3]
    model.batch_insert((model(name=f"g{i}") for i in range(2)), validate=False)
    assert model.batch_insert_from_dicts([{"name": "d"}], return_records=False) == 1
    assert model.batch_insert([model(name="n0"), model(name="x")], on_conflict="ignore") == 1
    for n, record in enumerate(records):
        record.rate = 10 + n
    assert model.batch_update(records) == 3
    result = model.batch_upsert(
        [model(name="n0", rate=99), model(name="new", rate=7)], conflict=["name"]
    )
    assert (result.inserted, result.updated) == (1, 1)
    assert _stored(db, model) == [
        (1, 99, "n0"), (2, 11, "n1"), (3, 12, "n2"), (4, 0, "g0"), (5, 0, "g1"),
        (6, 0, "d"), (7, 0, "x"), (8, 7, "new"),
    ]
