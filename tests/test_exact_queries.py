"""Queries and batch writes that must touch exactly the rows meant (issue 15, items 3, 13, 25,
26 and 27), on every backend: condition values checked against their column, assignments
that read each other, IN over more keys than a statement takes parameters, limited writes,
and table or column names that clash with the library's own SQL."""

from __future__ import annotations

from typing import Annotated

import pytest
import sqlalchemy as sa
from pydantic import Field

from activerecord import (
    ActiveRecord,
    Col,
    DataError,
    OptimisticLockMixin,
    QueryError,
    SoftDeleteMixin,
    UpsertResult,
    ValidationError,
    col,
    excluded,
)

from .models import Enrollment


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class Percent(Model):
    """``%`` in the table and column names: psycopg and PyMySQL read ``%%`` as ``%`` only
    while they interpolate parameters."""

    __table_name__ = "ex_100%"

    id: int | None = None
    rate: Annotated[int, Col(name="rate%")] = 0
    name: Annotated[str, Field(max_length=20), Col(name="na%(me)s", unique=True)] = ""


class V(Model):
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
    # The keys the server gave (a Galera node steps by 3), in input order.
    assert [r.id for r in records] == [model.find_one({"name": f"n{i}"}).id for i in range(3)]
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
    stored = _stored(db, model)  # in key order, whatever the server's step
    assert [row[1:] for row in stored] == [
        (99, "n0"), (11, "n1"), (12, "n2"), (0, "g0"), (0, "g1"), (0, "d"), (0, "x"), (7, "new"),
    ]
    assert [row[0] for row in stored[:3]] == [r.id for r in records]


@pytest.mark.parametrize("model", [Percent, V], ids=["percent", "v"])
def test_odd_names_in_a_large_batch_update(fresh, db, model):
    # 3,000 rows: the bulk form each backend takes for large chunks (PostgreSQL: COPY into a
    # temporary table, its statements sent without parameters) with '%' in the names.
    fresh(model)
    records = [model(name=f"n{i}") for i in range(3_000)]
    model.batch_insert(records)
    for n, record in enumerate(records):
        record.rate = n + 1
    assert model.batch_update(records) == 3_000
    stored = _stored(db, model)
    assert [row[1] for row in stored] == list(range(1, 3_001))


@pytest.mark.parametrize("model", [Percent, V], ids=["percent", "v"])
def test_odd_names_in_a_dict_upsert(fresh, db, model):
    # The direct path (SQLite's ON CONFLICT; MySQL/MariaDB's temporary table, LOAD DATA,
    # UPDATE ... JOIN and INSERT ... SELECT) with '%' in the names, or a table called v.
    fresh(model)
    model.batch_insert_from_dicts([{"name": f"n{i}"} for i in range(20)])
    rows = [{"name": f"n{i}", "rate": i % 2} for i in range(40)]
    result = model.batch_upsert(rows, conflict=["name"], update=["rate"])
    assert result == UpsertResult(inserted=20, updated=10, unchanged=10)
    stored = _stored(db, model)
    assert sorted(row[1:] for row in stored) == sorted((i % 2, f"n{i}") for i in range(40))


# -- item 3: condition values are checked and converted by the field's type ------------------
class Job(Model):
    __table_name__ = "ex_jobs"

    id: int | None = None
    attempts: int | None = 0
    name: Annotated[str, Field(max_length=8)] = ""
    done: bool = False


def _jobs() -> list[Job]:
    jobs = [Job(attempts=i, name=f"j{i}") for i in range(6)] + [Job(attempts=None, name="null")]
    Job.batch_insert(jobs)
    return jobs


def _attempts() -> list[int | None]:
    return [j.attempts for j in Job.query().order_by("id").all()]


@pytest.mark.parametrize("bad", ["abc", "5abc", "3.5", 3.5, {"a": 1}, [1, "x"], [[3]]])
def test_condition_value_the_field_type_cannot_take_is_refused(fresh, backend, bad):
    fresh(Job)
    _jobs()
    before = _attempts()
    with pytest.raises(ValidationError, match=r"Job\.attempts: invalid condition value"):
        Job.query().where({"attempts": bad}).count()
    with pytest.raises(ValidationError, match="attempts"):
        Job.query().where({"attempts": bad}).update({"done": True})
    with pytest.raises(ValidationError, match="attempts"):
        Job.query().where({"attempts": bad}).delete()
    assert _attempts() == before
    assert Job.query().where({"done": True}).count() == 0


@pytest.mark.parametrize(
    "values",
    [
        lambda: range(3, 5),
        lambda: {3: "a", 4: "b"}.keys(),
        lambda: (n for n in (3, 4)),
        lambda: iter([4, 3]),
        lambda: {3, 4},
        lambda: frozenset({"3", "4"}),
        lambda: (3, 4),
        lambda: ["3", 4.0],
    ],
    ids=["range", "dict_keys", "generator", "iterator", "set", "frozenset_str", "tuple", "coerced"],
)
def test_any_iterable_is_an_in_list(fresh, backend, values):
    fresh(Job)
    _jobs()
    assert Job.query().where({"attempts": values()}).count() == 2
    assert Job.query().where({"attempts": values()}).update({"done": True}) == 2
    assert sorted(j.attempts for j in Job.query().where({"done": True}).all()) == [3, 4]
    assert Job.query().where({"attempts": values()}).delete() == 2
    assert _attempts() == [0, 1, 2, 5, None]


def test_condition_values_are_converted_before_comparing(fresh, backend):
    fresh(Job)
    _jobs()
    assert Job.query().where({"attempts": "3"}).count() == 1
    assert Job.query().where({"done": 0}).count() == 7
    assert Job.query().where({"attempts": [2, None]}).count() == 2  # None in a list is NULL
    assert Job.query().where({"attempts": []}).count() == 0
    assert Job.query().where({"attempts": [None]}).count() == 1
    # Longer than max_length: a string all the same, which simply matches no row.
    assert Job.query().where({"name": "x" * 50}).count() == 0
    assert Job.query().where({"name": ["j1", "y" * 50]}).count() == 1
    assert Job.find_one({"name": "j2"}).attempts == 2
    with pytest.raises(ValidationError, match=r"Job\.name"):
        Job.query().where({"name": 5}).count()


def test_a_query_is_not_a_list_of_values(fresh, backend):
    fresh(Job)
    with pytest.raises(QueryError, match="where_in"):
        Job.query().where({"id": Job.query()})


# -- item 25: IN over more keys than PostgreSQL takes parameters -----------------------------
def test_in_over_70000_keys(fresh, db, backend):
    if backend == "sqlite" and (db.facts.max_params or 0) < 70_001:
        pytest.skip(f"this SQLite takes {db.facts.max_params} parameters a statement")
    fresh(Job)
    _jobs()
    ids = list(range(1, 70_001))
    assert Job.query().where({"id": ids}).count() == 7
    assert len(Job.query().where({"id": ids}).all()) == 7
    assert Job.query().where({"id": ids, "attempts": range(70_000)}).update({"done": True}) == 6
    assert Job.query().where({"done": True}).count() == 6
    assert Job.query().where({"id": [*ids, None]}).delete() == 7
    assert Job.query().count() == 0


def test_postgresql_binds_an_in_list_as_one_array():
    sql = Job.query().where({"id": list(range(70_000))}).to_sql("postgresql")
    assert "= ANY (%(" in sql.sql and len(sql.params) == 1
    assert Job.query().where({"id": [1, 2]}).to_sql("sqlite").sql.count("?") == 2


# -- item 13: assignments that read each other ------------------------------------------------
class Pair(OptimisticLockMixin, Model):
    __table_name__ = "ex_pairs"

    id: int | None = None
    a: int = 0
    b: int = 0
    d: int = 0  # not c: Pair.c is the column collection


def _pairs() -> list[tuple[int, int, int, int]]:
    return [(p.a, p.b, p.d, p.version) for p in Pair.query().order_by("id").all()]


def test_set_reads_the_row_as_it_was(fresh, backend):
    fresh(Pair)
    pairs = [Pair(a=1, b=2, d=3), Pair(a=10, b=20, d=30)]
    Pair.batch_insert(pairs)
    first, second = (p.id for p in pairs)  # as the server numbered them
    assert Pair.query().where({"id": first}).update({"a": col("b"), "b": col("a")}) == 1
    assert _pairs() == [(2, 1, 3, 1), (10, 20, 30, 0)]
    # A rotation, a value reading an assigned column next to one reading itself.
    query = Pair.query().where({"id": [first, second]})
    assert query.update({"d": col("a"), "a": col("b") + col("d"), "b": col("b") * 2}) == 2
    assert _pairs() == [(4, 2, 2, 2), (50, 40, 10, 1)]
    assert query.update({"b": Pair.c.a, "a": Pair.c.a + 1}) == 2
    assert _pairs() == [(5, 4, 2, 3), (51, 50, 10, 2)]


# -- item 26: order_by(...).limit(n) writes -----------------------------------------------
class Counter(Model):
    __table_name__ = "ex_counters"

    id: int | None = None
    name: Annotated[str, Field(max_length=10)]
    n: int = 0
    score: float = 0.0


class Event(SoftDeleteMixin, Model):
    __table_name__ = "ex_events"

    id: int | None = None
    kind: Annotated[str, Field(max_length=10)] = "a"
    n: int = 0


def _ids(query) -> list[int]:
    return [e.id for e in query.order_by("id").all()]


def test_limited_delete_in_chunks(fresh, backend):
    fresh(Counter)
    made = [Counter(name=f"c{i}", n=i % 2) for i in range(10)]
    Counter.batch_insert(made)
    key = {n + 1: c.id for n, c in enumerate(made)}  # 1..10 as the server numbered them
    deleted = []
    while True:
        before = {c.id for c in Counter.query().all()}
        count = Counter.query().where({"n": 0}).order_by("-id").limit(2).delete()
        if not count:
            break
        deleted.append(sorted(before - {c.id for c in Counter.query().all()}))
    assert deleted == [[key[7], key[9]], [key[3], key[5]], [key[1]]]
    assert sorted(c.id for c in Counter.query().all()) == [key[i] for i in (2, 4, 6, 8, 10)]
    assert Counter.query().order_by("id").limit(3).delete() == 3  # a limit needs no where
    assert sorted(c.id for c in Counter.query().all()) == [key[8], key[10]]


def test_limited_update_with_order_and_offset(fresh, backend):
    fresh(Counter)
    Counter.batch_insert([Counter(name=f"c{i}", n=i) for i in range(6)])
    query = Counter.query().where("n >= ?", 1).order_by("-n")
    assert query.limit(2).update({"score": 1.0}) == 2
    assert query.offset(2).limit(2).update({"score": 2.0, "n": col("n") + 100}) == 2
    rows = [(c.n, c.score) for c in Counter.query().order_by("id").all()]
    assert rows == [(0, 0.0), (1, 0.0), (102, 2.0), (103, 2.0), (4, 1.0), (5, 1.0)]
    # Swapping through a limit: MySQL joins the limited keys and reads their old values.
    # (A float into an integer column asks for the rounding with a cast; see
    # test_an_expression_an_integer_column_cannot_hold_exactly_is_refused.)
    assert Counter.query().order_by("id").limit(2).update(
        {"n": sa.cast(col("score"), sa.Integer), "score": col("n")}
    ) == 2
    assert [(c.n, c.score) for c in Counter.query().order_by("id").limit(2).all()] == [
        (0, 0.0), (0, 1.0)
    ]


def test_an_expression_an_integer_column_cannot_hold_exactly_is_refused(fresh, backend):
    """An expression of a non-whole type for an integer column (a float added, a true
    division, a float column) is refused before any SQL, naming the column: the database
    would round it silently. A result beyond 64 bits is refused by every backend (SQLite,
    whose arithmetic turns it into a REAL, included). A cast asks for the rounding."""
    fresh(Counter)
    Counter.batch_insert([Counter(name="a", n=2**62, score=1.5)])
    query = Counter.query().where({"name": "a"})
    for value, why in ((col("n") + 0.5, "the value 0.5"), (col("n") / 2, "a true division"),
                       (col("score"), "a DOUBLE value")):
        with pytest.raises(DataError) as caught:
            query.update({"n": value})
        assert caught.value.column == "n" and why in str(caught.value), str(caught.value)
    with pytest.raises(DataError):
        query.update({"n": col("n") * 4})
    with pytest.raises(DataError):
        Counter.batch_upsert([{"id": query.one().id, "name": "a", "n": 1}], conflict="id",
                             update={"n": col("n") + excluded("score")})
    assert query.one().n == 2**62
    assert query.update({"n": col("n") // 2}) == 1 and query.one().n == 2**61
    assert query.update({"n": sa.cast(col("score"), sa.Integer)}) == 1
    assert query.one().n in (1, 2)  # the database's own rounding (or cut), asked for


def test_limited_soft_delete_restore_and_hard_delete(fresh, backend):
    fresh(Event)
    made = [Event(kind="a" if i < 6 else "b") for i in range(8)]
    Event.batch_insert(made)
    key = {n + 1: e.id for n, e in enumerate(made)}  # 1..8 as the server numbered them

    def keys(*positions: int) -> list[int]:
        return [key[p] for p in positions]

    assert Event.query().where({"kind": "a"}).order_by("-id").limit(2).delete() == 2
    assert _ids(Event.query()) == keys(1, 2, 3, 4, 7, 8)
    assert Event.query().where({"kind": "a"}).order_by("-id").limit(2).delete() == 2
    assert _ids(Event.query().only_deleted()) == keys(3, 4, 5, 6)
    restored = Event.query().only_deleted().order_by("id").limit(1).restore()
    assert restored == 1 and _ids(Event.query().only_deleted()) == keys(4, 5, 6)
    assert Event.query().with_deleted().order_by("-id").limit(3).hard_delete() == 3
    assert _ids(Event.query().with_deleted()) == keys(1, 2, 3, 4, 5)


def test_limited_writes_by_composite_key(fresh, backend):
    fresh(Enrollment)
    Enrollment.batch_insert(
        [Enrollment(student_id=s, course_id=c) for s in (1, 2) for c in (1, 2, 3)]
    )
    query = Enrollment.query().order_by("-student_id", "course_id")
    assert query.limit(2).update({"grade": "A"}) == 2
    graded = Enrollment.query().where({"grade": "A"}).order_by("student_id", "course_id")
    assert [(e.student_id, e.course_id) for e in graded.all()] == [(2, 1), (2, 2)]
    assert query.offset(1).limit(3).delete() == 3
    left = Enrollment.query().order_by("student_id", "course_id").all()
    assert [(e.student_id, e.course_id) for e in left] == [(1, 2), (1, 3), (2, 1)]


def test_limited_write_ordered_by_another_table_is_refused(fresh, backend):
    fresh(Counter)
    with pytest.raises(QueryError, match="another table"):
        Counter.query().order_by(Job.c.id).limit(1).delete()


def test_readme_updating_and_deleting_block_runs(tmp_path):
    """The README's 'Updating and deleting many rows' block, after the tour, on SQLite."""
    import os
    import pathlib
    import re
    import subprocess
    import sys

    root = pathlib.Path(__file__).parent.parent
    readme = (root / "README.md").read_text()
    tour = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    section = readme.split("## Updating and deleting many rows", 1)[1]
    block = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    assert ".limit(1000).delete()" in block
    script = tmp_path / "updating.py"
    script.write_text(
        tour + "\n" + block  # the block defines its cutoff and each record's new value
        + "\nassert [u.login_count for u in User.query().order_by('id').limit(3)] == [10] * 3\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
