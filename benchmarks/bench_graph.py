"""A graph insert (authors with their books, keys set back) against two plain batch inserts.

Run: ``python -m benchmarks.bench_graph --rows 10000 --backends sqlite,postgresql,mysql``

``--rows`` authors with 10 books each, fresh tables per run, every method in one call:

* ``two batch_insert``: ``Author.batch_insert(authors)``, the books' ``author_id`` set by
  hand, then ``Book.batch_insert(books)`` (the baseline);
* ``two in a Transaction``: the same inside one ``Transaction`` (atomic like the graph, and
  keeping what puts the records back on a rollback, as the graph does);
* ``graph (include)``: ``Author.batch_insert(authors, include=["books"])`` with the books set
  on each author (``author.books = [...]``);
* ``graph from dicts``: ``Author.batch_insert_from_dicts(nested, include=["books"])``.

Each round runs every method once (fresh tables each; every other round in reverse order),
so a round's ratios share the machine's load. Prints rows/s (authors + books, the best round)
and the ratio to the baseline (higher is faster), then the issue's target: ``graph
(include)`` within 1.2x of the baseline's time, i.e. a ratio of 0.83 or more, as the median
over the rounds of each round's ratio (with their range), pass or FAIL; and the same ratio of
this process's CPU time (what the graph adds is client work; on a loaded machine it varies
far less than the elapsed time).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

import activerecord
from activerecord import ActiveRecord, has_many
from benchmarks.bench_insert import backend_url, bench_args, print_table

BOOKS = 10
BASE = "two batch_insert"
#: The issue's target: (method, lowest ratio of its rows/s to the baseline's).
TARGET = ("graph (include)", 1 / 1.2)


class BenchAuthor(ActiveRecord):
    __table_name__ = "bench_graph_authors"

    id: int | None = None
    name: Annotated[str, Field(max_length=64)]
    books = has_many("BenchBook", foreign_key="author_id")


class BenchBook(ActiveRecord):
    __table_name__ = "bench_graph_books"

    id: int | None = None
    author_id: int | None = None
    title: Annotated[str, Field(max_length=64)]


def two_inserts(n: int) -> Callable[[], None]:
    authors = [BenchAuthor(name=f"a{i}") for i in range(n)]
    books = [[BenchBook(title=f"b{i}.{j}") for j in range(BOOKS)] for i in range(n)]

    def run() -> None:
        BenchAuthor.batch_insert(authors)
        for author, mine in zip(authors, books):
            for book in mine:
                book.__dict__["author_id"] = author.id
        BenchBook.batch_insert([b for mine in books for b in mine])

    return run


def two_in_transaction(n: int) -> Callable[[], None]:
    run_two = two_inserts(n)

    def run() -> None:
        with activerecord.Transaction():
            run_two()

    return run


def graph(n: int) -> Callable[[], None]:
    authors = [BenchAuthor(name=f"a{i}") for i in range(n)]
    for i, author in enumerate(authors):
        author.books = [BenchBook(title=f"b{i}.{j}") for j in range(BOOKS)]

    def run() -> None:
        BenchAuthor.batch_insert(authors, include=["books"])

    return run


def graph_dicts(n: int) -> Callable[[], None]:
    rows = [
        {"name": f"a{i}", "books": [{"title": f"b{i}.{j}"} for j in range(BOOKS)]}
        for i in range(n)
    ]

    def run() -> None:
        BenchAuthor.batch_insert_from_dicts(rows, include=["books"], return_records=False)

    return run


METHODS = [
    (BASE, two_inserts),
    ("two in a Transaction", two_in_transaction),
    ("graph (include)", graph),
    ("graph from dicts", graph_dicts),
]


def main(argv: list[str] | None = None) -> None:
    args, names, tmp = bench_args(__doc__, argv, 10_000)
    results: dict[str, dict[str, float | None]] = {}
    ratios: dict[str, list[float]] = {}
    cpu_ratios: dict[str, list[float]] = {}
    for name in names:
        db = activerecord.connect(backend_url(name, tmp))
        best = {label: 0.0 for label, _ in METHODS}
        ratios[name], cpu_ratios[name] = [], []
        for round_ in range(args.repeat):
            speed: dict[str, float] = {}
            cpu: dict[str, float] = {}
            for label, make in METHODS if round_ % 2 == 0 else METHODS[::-1]:
                speed[label], cpu[label] = _measure(db, make, args.rows)
                best[label] = max(best[label], speed[label])
            ratios[name].append(speed[TARGET[0]] / speed[BASE])
            cpu_ratios[name].append(cpu[BASE] / cpu[TARGET[0]])
            print(f"  {name:<10} " + "  ".join(
                f"{label}: {speed[label]:,.0f}" for label, _ in METHODS) + " rows/s",
                flush=True)
        results[name] = dict(best)
        with db.engine.begin() as conn:
            activerecord.metadata.drop_all(conn, tables=_TABLES)
        activerecord.disconnect()
    print()
    print_table(
        f"{args.rows:,} authors with {BOOKS} books each, rows/s (ratio to two batch_insert)",
        names, [label for label, _ in METHODS], results, BASE,
    )
    print()
    print(target_line(names, ratios, cpu_ratios))


_TABLES = [BenchAuthor.__table__, BenchBook.__table__]


def _measure(db: Any, make: Callable[[int], Callable[[], None]], rows: int) -> tuple[float, float]:
    """One method on fresh tables: (rows/s, CPU seconds of this process)."""
    with db.engine.begin() as conn:
        activerecord.metadata.drop_all(conn, tables=_TABLES)
        activerecord.metadata.create_all(conn, tables=_TABLES)
    run = make(rows)
    gc.collect()  # the records just built: not collected inside the timing
    start, cpu = time.perf_counter(), time.process_time()
    run()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert BenchBook.query().count() == rows * BOOKS
    return rows * (BOOKS + 1) / elapsed, cpu


def target_line(names: list[str], ratios: dict[str, list[float]],
                cpu_ratios: dict[str, list[float]]) -> str:
    """The target per backend: the median of the rounds' ratios, their range, pass or FAIL;
    then the CPU-time ratio alike (no verdict: the target is elapsed time)."""
    label, goal = TARGET

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"

    cells = [f"{cell(ratios[name])} {'pass' if statistics.median(ratios[name]) >= goal else 'FAIL'}"
             for name in names]
    return "\n".join([
        "| target | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        f"| {label} >= {goal:.2f}x {BASE} | " + " | ".join(cells) + " |",
        "| the same, CPU time of this process | "
        + " | ".join(cell(cpu_ratios[name]) for name in names) + " |",
    ])


if __name__ == "__main__":
    main()
