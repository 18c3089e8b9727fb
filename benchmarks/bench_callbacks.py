"""Batch insert with lifecycle hooks against the same model without them (issue 20 targets).

Run: ``python -m benchmarks.bench_callbacks --rows 100000 --backends sqlite,postgresql,mysql``

Server URLs come from the test variables ``AR_TEST_POSTGRESQL_URL`` and ``AR_TEST_MYSQL_URL``
(defaults: the local servers). Each method inserts ``--rows`` records of a users table in one
transaction with ``batch_insert`` (keys set back), best of ``--repeat`` runs:

* ``no hooks``: the plain model (the baseline);
* ``before_save``: a per-record ``before_save`` that lower-cases the email (run by the default
  batch hook for each record; target: within 1.3x of the baseline);
* ``vectorised``: the same work in an overridden ``before_batch_insert`` over each chunk;
* ``before_save, no validate_assignment``: the per-record hook on a model whose assignments
  pydantic does not validate one by one (the batch still validates every record): what is
  left is the hooks' own cost, as pydantic's assignment check costs about 2.5 us a record.

Records are built before the clock starts. The machine is noisy: compare ratios in one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from typing import Annotated, Any

from pydantic import ConfigDict, Field

import activerecord
from activerecord import ActiveRecord, Transaction, before_save

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


METHODS = {
    "no hooks": PlainUser,
    "before_save": HookedUser,
    "vectorised": VectorUser,
    "before_save, no validate_assignment": UncheckedHookedUser,
}


def backend_url(name: str) -> str:
    if name == "sqlite":
        return "sqlite:///" + os.path.join(tempfile.mkdtemp(), "bench_callbacks.db")
    return os.environ.get(f"AR_TEST_{name.upper()}_URL", DEFAULT_URLS[name])


def run_backend(name: str, rows: int, repeat: int) -> dict[str, float]:
    activerecord.connect(backend_url(name))
    models = list(METHODS.values())
    now = dt.datetime(2024, 1, 1)
    best: dict[str, float] = {}
    try:
        for model in models:
            model.drop_table()
            model.create_table()
        for _ in range(repeat):
            for label, model in METHODS.items():
                records = [
                    model(username=f"u{i}", email=f"User{i}@Example.COM", status="active",
                          created_at=now)
                    for i in range(rows)
                ]
                start = time.perf_counter()
                with Transaction():
                    model.batch_insert(records)
                elapsed = time.perf_counter() - start
                assert records[-1].id is not None
                if model is not PlainUser:
                    assert records[0].email == "user0@example.com"
                best[label] = min(best.get(label, elapsed), elapsed)
                model.query().delete(all_rows=True)
    finally:
        for model in models:
            model.drop_table()
        activerecord.disconnect()
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for name in args.backends.split(","):
        best = run_backend(name, args.rows, args.repeat)
        base = best["no hooks"]
        print(f"\n{name}, {args.rows} rows (best of {args.repeat})")
        print("| method | seconds | rows/s | time vs no hooks |")
        print("|---|---|---|---|")
        for label, seconds in best.items():
            print(f"| {label} | {seconds:.3f} | {args.rows / seconds:,.0f} | "
                  f"{seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
