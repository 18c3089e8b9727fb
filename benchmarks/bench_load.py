"""Loading a CSV file, side by side: the csv module with the driver, pandas, and ours.

Run (pandas comes with the ``dev`` extra)::

    python -m benchmarks.bench_load --rows 200000 --backends sqlite,postgresql,mysql

A CSV file of a users-like table (username, email, status, login_count, created_at) is
written once; each method loads all of it into an emptied table in one transaction, reading
the file inside the clock:

* ``csv module + driver executemany``: rows as the csv module reads them (strings, no
  checks), the driver's executemany; the baseline of the ratios.
* ``PostgreSQL COPY of the file``: the file's bytes sent to ``COPY ... (FORMAT csv)``:
  the server parses it; nothing checks the values on the client.
* ``pandas read_csv + to_sql``: what a notebook does first (SQLAlchemy executemany,
  ``chunksize=10000``).
* ``ours: load_csv``: streamed in chunks, each value converted and validated by the model's
  fields (a bad line is named), keys not read back.
* ``ours: read_csv + insert_dataframe``: the pandas frame through the model.

Then the issue-22 targets, pass or FAIL: ``load_csv`` and ``insert_dataframe`` at least
twice the rows/s of ``to_sql`` (on MySQL/MariaDB by ``LOAD DATA LOCAL INFILE``).

Server URLs come from ``AR_TEST_POSTGRESQL_URL`` / ``AR_TEST_MYSQL_URL`` (defaults: the local
servers); SQLite uses a file in a temporary folder. ``--repeat N`` keeps each method's best.
"""

from __future__ import annotations

import csv
import gc
import os
import sqlite3
import time
from collections.abc import Callable

import sqlalchemy as sa

import activerecord
from activerecord.io.files import load_csv
from benchmarks.bench_insert import (
    COLUMNS,
    BenchUserPlain,
    backend_url,
    bench_args,
    make_rows,
    print_table,
)

Method = Callable[[], object]


class Runner:
    """One backend: its engine, the table reset before each method, and the methods."""

    def __init__(self, name: str, url: str, path: str, rows: int) -> None:
        self.name = name
        self.url = url
        self.path = path
        self.rows = rows
        self.engine = sa.create_engine(url)
        self.table = BenchUserPlain.__table__

    def reset(self) -> None:
        with self.engine.begin() as conn:
            self.table.drop(conn, checkfirst=True)
            self.table.create(conn)

    def count(self) -> int:
        stmt = sa.select(sa.func.count()).select_from(self.table)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def csv_executemany(self) -> Method:
        names = ", ".join(COLUMNS)
        marks = ", ".join(["?" if self.name == "sqlite" else "%s"] * len(COLUMNS))
        sql = f"INSERT INTO {self.table.name} ({names}) VALUES ({marks})"  # noqa: S608

        def run() -> None:
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                next(reader)
                if self.name == "sqlite":
                    path = sa.make_url(self.url).database or ""
                    conn = sqlite3.connect(path, isolation_level=None)
                    conn.execute("BEGIN")
                    conn.executemany(sql, reader)
                    conn.execute("COMMIT")
                    conn.close()
                    return
                raw = self.engine.raw_connection()
                try:
                    raw.cursor().executemany(sql, list(reader))
                    raw.commit()
                finally:
                    raw.close()

        return run

    def copy_file(self) -> Method | None:
        if self.name != "postgresql":
            return None
        sql = f"COPY {self.table.name} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv, HEADER)"

        def run() -> None:
            raw = self.engine.raw_connection()
            try:
                with raw.cursor().copy(sql) as copy, open(self.path, "rb") as f:  # type: ignore[attr-defined]
                    while block := f.read(1 << 20):
                        copy.write(block)
                raw.commit()
            finally:
                raw.close()

        return run

    def pandas_to_sql(self) -> Method:
        import pandas as pd

        def run() -> None:
            frame = pd.read_csv(self.path, parse_dates=["created_at"])
            frame.to_sql(
                self.table.name, self.engine, if_exists="append", index=False, chunksize=10_000
            )

        return run

    def ours_load_csv(self) -> Method:
        return lambda: load_csv(BenchUserPlain, self.path)

    def ours_dataframe(self) -> Method:
        import pandas as pd

        def run() -> None:
            BenchUserPlain.insert_dataframe(pd.read_csv(self.path, parse_dates=["created_at"]))

        return run


TO_SQL = "pandas read_csv + to_sql"
LOAD_CSV = "ours: load_csv (validated)"
DATAFRAME = "ours: read_csv + insert_dataframe"
METHODS: list[tuple[str, str]] = [
    ("csv module + driver executemany", "csv_executemany"),
    ("PostgreSQL COPY of the file (no checks)", "copy_file"),
    (TO_SQL, "pandas_to_sql"),
    (LOAD_CSV, "ours_load_csv"),
    (DATAFRAME, "ours_dataframe"),
]
#: The issue-22 targets: (title, ours, baseline, goal ratio of rows/s).
TARGETS = [
    ("issue 22: load_csv / to_sql", LOAD_CSV, TO_SQL, 2.0),
    ("issue 22: insert_dataframe / to_sql", DATAFRAME, TO_SQL, 2.0),
]


def measure(runner: Runner, method: str, repeat: int) -> float | None:
    """Best rows/s of ``repeat`` runs (None: the method does not apply to this backend)."""
    best: float | None = None
    for _ in range(repeat):
        runner.reset()
        fn = getattr(runner, method)()
        if fn is None:
            return None
        gc.collect()
        started = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - started
        if runner.count() != runner.rows:
            raise RuntimeError(f"{method} on {runner.name} loaded {runner.count()} rows")
        rate = runner.rows / elapsed
        best = rate if best is None else max(best, rate)
    return best


def write_csv(path: str, rows: int) -> None:
    data = make_rows(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(data)


def main(argv: list[str] | None = None) -> None:
    args, names, tmp = bench_args(__doc__, argv, 200_000)
    path = os.path.join(tmp, "users.csv")
    write_csv(path, args.rows)
    results: dict[str, dict[str, float | None]] = {}
    for name in names:
        url = backend_url(name, tmp)
        activerecord.connect(url)
        runner = Runner(name, url, path, args.rows)
        results[name] = {}
        for label, method in METHODS:
            rate = measure(runner, method, args.repeat)
            results[name][label] = rate
            shown = "n/a" if rate is None else f"{rate:,.0f} rows/s"
            print(f"  {name:<10} {label:<42} {shown}", flush=True)
        runner.engine.dispose()
        activerecord.disconnect()
    print()
    print_table(
        f"{args.rows:,} rows from a CSV file, rows/s (ratio to csv module + executemany)",
        names, [label for label, _ in METHODS], results, METHODS[0][0],
    )
    print()
    print(targets(results, names))


def targets(results: dict[str, dict[str, float | None]], names: list[str]) -> str:
    """The issue-22 target lines, each backend's ratio with pass or FAIL."""
    lines = ["| target | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for title, ours, base, goal in TARGETS:
        cells = []
        for name in names:
            a, b = results[name].get(ours), results[name].get(base)
            if a is None or b is None:
                cells.append("n/a")
            else:
                cells.append(f"{a / b:.2f}x {'pass' if a / b >= goal else 'FAIL'}")
        lines.append(f"| {title} (goal >= {goal}x) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
