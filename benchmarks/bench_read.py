"""Reading many rows back as objects, side by side: raw driver, SQLAlchemy, Django, peewee, ours.

Run (Django and peewee come with the ``bench`` extra)::

    python -m benchmarks.bench_read --rows 100000 --backends sqlite,postgresql,mysql

The users-like table of ``bench_insert`` is filled once per backend; each method then reads
every row, in one query, into its own objects (the raw driver and SQLAlchemy Core into rows:
no objects at all), and pandas' ``read_sql_table`` and ours ``to_pandas()`` into a DataFrame.
Ours makes every row a model instance as the model says (a value whose type the column
already guarantees is not validated again; anything else is) and keeps its persisted
snapshot, as every ``query().all()`` does. Prints rows/s and the ratio to SQLAlchemy Core
(higher is faster), then the issue's read targets as ratios of the same run, pass or fail:
``query().all()`` >= 1.5x Django ``list(objects.all())``, ``to_pandas()`` >= 1.2x
``pd.read_sql_table``, ``to_dicts()`` >= 0.8x SQLAlchemy Core ``.all()``. ``--repeat N``
keeps each method's best.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import sqlalchemy as sa

import activerecord
from benchmarks.bench_insert import (
    BenchUser,
    backend_url,
    bench_args,
    django_model,
    make_rows,
    peewee_model,
    print_table,
    setup_django,
)

Method = Callable[[], list[object]]


class Runner:
    """One backend: the filled table and one timed function per method."""

    def __init__(self, name: str, url: str, rows: int) -> None:
        self.name = name
        self.url = url
        self.rows = rows
        self.engine = sa.create_engine(url)
        self.table = BenchUser.__table__
        with self.engine.begin() as conn:
            self.table.drop(conn, checkfirst=True)
            self.table.create(conn)
        BenchUser.batch_insert_from_dicts(make_rows(rows), return_records=False)

    def raw_driver(self) -> Method:
        def run() -> list[object]:
            conn = self.engine.raw_connection()
            try:
                cursor = conn.cursor()
                cursor.execute(f"SELECT * FROM {self.table.name}")  # noqa: S608
                return list(cursor.fetchall())
            finally:
                conn.close()

        return run

    def core(self) -> Method:
        def run() -> list[object]:
            with self.engine.connect() as conn:
                return list(conn.execute(sa.select(self.table)).all())

        return run

    def orm(self) -> Method:
        from sqlalchemy.orm import Session, registry

        reg = registry()

        class OrmUser:
            pass

        reg.map_imperatively(OrmUser, self.table)

        def run() -> list[object]:
            with Session(self.engine) as session:
                return list(session.scalars(sa.select(OrmUser)).all())

        return run

    def django(self) -> Method:
        model = django_model(self.name)
        return lambda: list(model.objects.using(self.name).all())

    def peewee(self) -> Method:
        database, pw_user = peewee_model(self.name, self.url, self.table.name)

        def run() -> list[object]:
            try:
                return list(pw_user.select())
            finally:
                database.close()

        return run

    def pandas(self) -> Method:
        import pandas as pd

        def run() -> list[object]:
            with self.engine.connect() as conn:
                frame = pd.read_sql_table(self.table.name, conn)
            return [frame] * len(frame)  # measure() checks the row count

        return run

    def ours_pandas(self) -> Method:
        def run() -> list[object]:
            frame = BenchUser.query().to_pandas()
            return [frame] * len(frame)

        return run

    def ours(self) -> Method:
        return lambda: list(BenchUser.query().all())

    def ours_dicts(self) -> Method:
        return lambda: list(BenchUser.query().to_dicts())


METHODS: list[tuple[str, str]] = [
    ("raw driver fetchall (tuples)", "raw_driver"),
    ("SQLAlchemy Core .all() (rows)", "core"),
    ("SQLAlchemy ORM scalars().all()", "orm"),
    ("Django list(objects.all())", "django"),
    ("peewee list(select())", "peewee"),
    ("ours: query().all() (validated records)", "ours"),
    ("ours: query().to_dicts()", "ours_dicts"),
    ("pandas read_sql_table", "pandas"),
    ("ours: query().to_pandas()", "ours_pandas"),
]
BASE = METHODS[1][0]
#: The issue's read targets: (ours, baseline, ratio to reach).
TARGETS: list[tuple[str, str, float]] = [
    ("ours: query().all() (validated records)", "Django list(objects.all())", 1.5),
    ("ours: query().to_pandas()", "pandas read_sql_table", 1.2),
    ("ours: query().to_dicts()", BASE, 0.8),
]


def print_targets(names: list[str], results: dict[str, dict[str, float]]) -> None:
    """Each target as the ratio of this run, per backend, with pass or FAIL."""
    print("Targets (ratios of this run)")
    print("| target | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for ours, base, goal in TARGETS:
        cells = []
        for name in names:
            ratio = results[name][ours] / results[name][base]
            cells.append(f"{ratio:.2f}x {'pass' if ratio >= goal else 'FAIL'}")
        print(f"| {ours} >= {goal}x {base} | " + " | ".join(cells) + " |")


def measure(runner: Runner, method: str, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        fn = getattr(runner, method)()
        gc.collect()
        started = time.perf_counter()
        got = fn()
        elapsed = time.perf_counter() - started
        if len(got) != runner.rows:
            raise RuntimeError(f"{method} on {runner.name} read {len(got)} rows")
        del got
        best = max(best, runner.rows / elapsed)
    return best


def main(argv: list[str] | None = None) -> None:
    args, names, tmp = bench_args(__doc__, argv, 100_000)
    urls = {name: backend_url(name, tmp) for name in names}
    setup_django(urls)
    results: dict[str, dict[str, float]] = {}
    for name in names:
        activerecord.connect(urls[name])
        runner = Runner(name, urls[name], args.rows)
        results[name] = {}
        for label, method in METHODS:
            rate = measure(runner, method, args.repeat)
            results[name][label] = rate
            print(f"  {name:<10} {label:<42} {rate:,.0f} rows/s", flush=True)
        runner.engine.dispose()
        activerecord.disconnect()
    print()
    print_table(
        f"{args.rows:,} rows read in one query, rows/s (ratio to SQLAlchemy Core)",
        names, [label for label, _ in METHODS], results, BASE,
    )
    print()
    print_targets(names, results)


if __name__ == "__main__":
    main()
