"""Peak memory of loading many rows: a generator through ``batch_insert``, a CSV file through
``load_csv``.

Run::

    python -m benchmarks.bench_memory --rows 1000000 --backends sqlite,postgresql,mysql

Each method loads ``--rows`` rows (default one million) of the users-like table of
``bench_insert`` into an emptied table, under ``tracemalloc``: ``batch_insert`` takes a
generator of instances (none is kept by the caller, so a streaming insert holds one chunk at
a time), ``load_csv`` a file written once beforehand (outside the measure). Prints the peak
traced memory of each (Python allocations; the driver's C buffers are not traced) against the
issue's target, under 100 MB on every backend, pass or fail, and the time it took (tracing
slows Python down several times: the times are not speeds). ``--repeat`` is accepted for
symmetry with the other benchmarks and ignored: a peak is not noisy.
"""

from __future__ import annotations

import csv
import gc
import time
import tracemalloc
from collections.abc import Callable, Iterator

import sqlalchemy as sa

import activerecord
from benchmarks.bench_insert import COLUMNS, BenchUserPlain, backend_url, bench_args, make_rows

#: The issue's target: peak traced memory of each load, in MB.
TARGET_MB = 100.0


def generate(rows: int) -> Iterator[BenchUserPlain]:
    """The rows one at a time, never all in memory."""
    template = make_rows(1)[0]
    for i in range(rows):
        yield BenchUserPlain(
            **{**template, "username": f"user{i}", "email": f"user{i}@example.com",
               "login_count": i % 100}
        )


def write_csv(path: str, rows: int) -> None:
    template = make_rows(1)[0]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for i in range(rows):
            writer.writerow([
                f"user{i}", f"user{i}@example.com", template["status"], i % 100,
                template["created_at"].isoformat(" "),
            ])


def measure(engine: sa.Engine, rows: int, run: Callable[[], object]) -> tuple[float, float]:
    """Peak traced MB and seconds of ``run`` into an emptied table; checks the row count."""
    table = BenchUserPlain.__table__
    with engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        run()
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    if count != rows:
        raise RuntimeError(f"loaded {count} rows, expected {rows}")
    return peak / 2**20, elapsed


def main(argv: list[str] | None = None) -> None:
    args, names, tmp = bench_args(__doc__, argv, 1_000_000, "ignored (a peak is not noisy)")
    path = f"{tmp}/users.csv"
    write_csv(path, args.rows)
    methods: list[tuple[str, Callable[[], object]]] = [
        ("batch_insert(generator)", lambda: BenchUserPlain.batch_insert(generate(args.rows))),
        ("load_csv(file)", lambda: BenchUserPlain.load_csv(path)),
    ]
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for name in names:
        url = backend_url(name, tmp)
        activerecord.connect(url)
        engine = sa.create_engine(url)
        results[name] = {}
        for label, run in methods:
            peak, elapsed = measure(engine, args.rows, run)
            results[name][label] = (peak, elapsed)
            print(f"  {name:<10} {label:<26} peak {peak:,.1f} MB in {elapsed:,.1f} s", flush=True)
        engine.dispose()
        activerecord.disconnect()
    print()
    print(f"{args.rows:,} rows, peak traced memory (target: under {TARGET_MB:.0f} MB)")
    print("| method | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, _ in methods:
        cells = []
        for name in names:
            peak, _elapsed = results[name][label]
            cells.append(f"{peak:,.1f} MB {'pass' if peak < TARGET_MB else 'FAIL'}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
