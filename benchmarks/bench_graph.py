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

Prints rows/s (authors + books) and the ratio to the baseline (higher is faster); the issue's
target is a graph within 1.2x of the baseline's time (ratio 0.83 or more).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from pydantic import Field

import activerecord
from activerecord import ActiveRecord, has_many
from benchmarks.bench_insert import backend_url, bench_args, print_table

BOOKS = 10
BASE = "two batch_insert"


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
    tables = [BenchAuthor.__table__, BenchBook.__table__]
    for name in names:
        db = activerecord.connect(backend_url(name, tmp))
        results[name] = {}
        for label, make in METHODS:
            best = 0.0
            for _ in range(args.repeat):
                with db.engine.begin() as conn:
                    activerecord.metadata.drop_all(conn, tables=tables)
                    activerecord.metadata.create_all(conn, tables=tables)
                run = make(args.rows)
                start = time.perf_counter()
                run()
                elapsed = time.perf_counter() - start
                best = max(best, args.rows * (BOOKS + 1) / elapsed)
            assert BenchBook.query().count() == args.rows * BOOKS
            results[name][label] = best
            print(f"  {name:<10} {label:<20} {best:,.0f} rows/s", flush=True)
        with db.engine.begin() as conn:
            activerecord.metadata.drop_all(conn, tables=tables)
        activerecord.disconnect()
    print()
    print_table(
        f"{args.rows:,} authors with {BOOKS} books each, rows/s (ratio to two batch_insert)",
        names, [label for label, _ in METHODS], results, BASE,
    )


if __name__ == "__main__":
    main()
