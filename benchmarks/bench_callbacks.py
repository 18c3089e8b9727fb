"""Batch insert with lifecycle hooks against the same model without them (issue 20 targets).

Run: ``python -m benchmarks.bench_callbacks --rows 100000 --repeat 3``

Server URLs come from the test variables ``AR_TEST_POSTGRESQL_URL`` and ``AR_TEST_MYSQL_URL``
(defaults: the local servers). Each method inserts ``--rows`` records of a users table in one
transaction with ``batch_insert`` (keys set back), best of ``--repeat`` runs:

* ``no hooks``: the plain model (the baseline);
* ``no hooks, no hook lookup``: the same model through the insert writer with its hook lookup
  switched off (``hooks=False``, the loaders' path): what a model without hooks pays for
  having none (target: within 3% of ``no hooks``);
* ``before_save``: a per-record ``before_save`` that lower-cases the email (run by the default
  batch hook for each record; target: within 1.3x of the baseline);
* ``vectorised``: the same work in an overridden ``before_batch_insert`` over each chunk;
* ``before_save, no validate_assignment``: the per-record hook on a model whose assignments
  pydantic does not validate one by one (the batch still validates every record): what is
  left is the hooks' own cost, as pydantic's assignment check costs about 2.5 us a record.

Records are built before the clock starts. The machine is noisy: compare ratios in one run;
the targets table at the end gives, per backend, the median over rounds of each round's ratio
(every method runs once a round, each round starting at another), PASS or FAIL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import ConfigDict, Field

import activerecord
from activerecord import ActiveRecord, Transaction, before_save
from activerecord.write.insert import batch_insert

DEFAULT_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
}


class _Users(ActiveRecord):
    __abstract__ = True

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128)]
    status: Annotated[str, Field(max_length=16)]
    login_count: int = 0
    created_at: dt.datetime


class PlainUser(_Users):
    __table_name__ = "bench_cb_plain"


class HookedUser(_Users):
    __table_name__ = "bench_cb_hooked"

    @before_save
    def normalise(self) -> None:
        self.email = self.email.lower()


class UncheckedHookedUser(_Users):
    __table_name__ = "bench_cb_unchecked"
    model_config = ConfigDict(validate_assignment=False)  # the batch validates every record

    @before_save
    def normalise(self) -> None:
        self.email = self.email.lower()


class VectorUser(_Users):
    __table_name__ = "bench_cb_vector"

    @classmethod
    def before_batch_insert(cls, records: list[Any]) -> None:
        for record in records:
            record.email = record.email.lower()


def _insert(model: type[ActiveRecord]) -> Callable[[list[Any]], Any]:
    return lambda records: model.batch_insert(records)


def _unhooked(records: list[Any]) -> Any:
    return batch_insert(PlainUser, records, validate=True, batch_size=None, progress=False,
                        return_records=False, hooks=False)


METHODS: dict[str, tuple[type[_Users], Callable[[list[Any]], Any]]] = {
    "no hooks": (PlainUser, _insert(PlainUser)),
    "no hooks, no hook lookup": (PlainUser, _unhooked),
    "before_save": (HookedUser, _insert(HookedUser)),
    "vectorised": (VectorUser, _insert(VectorUser)),
    "before_save, no validate_assignment": (UncheckedHookedUser, _insert(UncheckedHookedUser)),
}

#: The issue's targets: (method, baseline, the largest ratio of times, the smallest).
TARGETS = (
    ("before_save", "no hooks", 1.30, 0.0),
    ("no hooks", "no hooks, no hook lookup", 1.03, 0.97),
)


def backend_url(name: str) -> str:
    if name == "sqlite":
        return "sqlite:///" + os.path.join(tempfile.mkdtemp(), "bench_callbacks.db")
    return os.environ.get(f"AR_TEST_{name.upper()}_URL", DEFAULT_URLS[name])


def run_backend(name: str, rows: int, repeat: int) -> list[dict[str, float]]:
    """Each round's seconds per method (every method once a round)."""
    activerecord.connect(backend_url(name))
    models = list(dict.fromkeys(model for model, _ in METHODS.values()))
    now = dt.datetime(2024, 1, 1)
    rounds: list[dict[str, float]] = []
    try:
        for model in models:
            model.drop_table()
            model.create_table()
        methods = list(METHODS.items())
        for turn in range(repeat):
            # Each repeat starts at another method: none is always the one after a given one.
            shift = turn % len(methods)
            times: dict[str, float] = {}
            rounds.append(times)
            for label, (model, insert) in methods[shift:] + methods[:shift]:
                records = [
                    model(username=f"u{i}", email=f"User{i}@Example.COM", status="active",
                          created_at=now)
                    for i in range(rows)
                ]
                model.drop_table()  # a fresh table each run: no dead rows of the last one
                model.create_table()
                gc.collect()
                start = time.perf_counter()
                with Transaction():
                    insert(records)
                elapsed = time.perf_counter() - start
                assert records[-1].id is not None
                if model is not PlainUser:
                    assert records[0].email == "user0@example.com"
                times[label] = elapsed
    finally:
        for model in models:
            model.drop_table()
        activerecord.disconnect()
    return rounds


def targets(results: dict[str, list[dict[str, float]]]) -> str:
    """The issue targets: per backend, the median over rounds of the ratio within a round
    (the range in brackets), against the goal."""
    names = list(results)
    lines = ["| target | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, baseline, most, least in TARGETS:
        cells = []
        for name in names:
            ratios = [times[label] / times[baseline] for times in results[name]]
            mid = statistics.median(ratios)
            spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
            verdict = "PASS" if least <= mid <= most else "FAIL"
            cells.append(f"{mid:.3f}x{spread} {verdict}")
        goal = f"<= {most:.2f}x" if not least else f"{least:.2f}x-{most:.2f}x"
        lines.append(f"| issue 20: {label} / {baseline} (goal {goal}) | " + " | ".join(cells)
                     + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {}
    for name in args.backends.split(","):
        rounds = results[name] = run_backend(name, args.rows, args.repeat)
        best = {label: min(times[label] for times in rounds) for label in METHODS}
        base = best["no hooks"]
        print(f"\n{name}, {args.rows} rows (best of {args.repeat})")
        print("| method | seconds | rows/s | time vs no hooks |")
        print("|---|---|---|---|")
        for label, seconds in best.items():
            print(f"| {label} | {seconds:.3f} | {args.rows / seconds:,.0f} | "
                  f"{seconds / base:.2f}x |")
    print("\nTargets: time ratios, the median over rounds of each round's ratio (range)")
    print(targets(results))


if __name__ == "__main__":
    main()
