"""Upsert, side by side: the raw dialect statement, Django, peewee and ours.

Run (Django and peewee come with the ``bench`` extra)::

    python -m benchmarks.bench_upsert --rows 100000 --backends sqlite,postgresql,mysql

Server URLs come from ``AR_TEST_POSTGRESQL_URL`` / ``AR_TEST_MYSQL_URL`` (the tests'
variables); SQLite uses a file in a temporary folder. The table (id, username, email unique,
status, login_count, created_at) holds half the rows before each run; every method then
upserts all ``--rows`` rows on ``email`` in one transaction: half new, half existing with a
changed ``login_count`` (and ``username``, ``status``, ``login_count`` written on conflict):

* raw: the driver's executemany of ``INSERT ... ON CONFLICT (email) DO UPDATE`` (PostgreSQL,
  SQLite) or ``INSERT ... ON DUPLICATE KEY UPDATE`` (MySQL; PyMySQL sends multi-row
  statements); no keys, no counts; the row tuples built before the clock starts (on SQLite
  the datetimes turned into text inside it, by Python's own adapter, as in bench_insert);
* Django ``bulk_create(update_conflicts=True, ...)`` and peewee ``insert_many(...)
  .on_conflict(...)``, both in batches of 1000 (neither reports counts; Django sets keys on
  PostgreSQL and SQLite only);
* ours: ``batch_upsert`` of dicts with validation, and of instances without: exact
  inserted/updated/unchanged counts and every instance's key.

Prints rows/s and the ratio to the raw statement (higher is faster), then the issue-22
targets as pass/fail: ours (dicts with counts; instances with counts and keys) at least 1.0x the
raw statement on SQLite and MySQL/MariaDB and 1.5x on PostgreSQL. Each target is the median over
``--repeat`` rounds of the ratio within one round (a round runs every method once). Noisy
machine: compare ratios within one run.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col, UpsertResult

from .bench_insert import (
    backend_url,
    bench_args,
    django_model,
    print_table,
    raw_executemany,
    setup_django,
)

TABLE = "bench_upsert_users"
COLUMNS = ("username", "email", "status", "login_count", "created_at")
UPDATED = ("username", "status", "login_count")


class UpsertUser(ActiveRecord):
    __table_name__ = TABLE

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128), Col(unique=True)]
    status: Annotated[str, Field(max_length=16)] = "active"
    login_count: int = 0
    created_at: dt.datetime | None = None


def make_rows(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows present before the run, rows to upsert): the first half of the keys exist."""
    stamp = dt.datetime(2024, 5, 1, 12, 30, 15, 123456)
    base = [
        {
            "username": f"user{i}",
            "email": f"user{i}@example.com",
            "status": "active" if i % 3 else "inactive",
            "login_count": i % 100,
            "created_at": stamp,
        }
        for i in range(n)
    ]
    incoming = [{**r, "login_count": r["login_count"] + 1} for r in base]
    return base[: n // 2], incoming


class Runner:
    """One backend: table reset with the existing half, and one timed function per method."""

    def __init__(self, name: str, url: str, n: int) -> None:
        self.name = name
        self.url = url
        self.existing, self.rows = make_rows(n)
        self.engine = sa.create_engine(url)
        self.table = UpsertUser.__table__

    def reset(self) -> None:
        with self.engine.begin() as conn:
            self.table.drop(conn, checkfirst=True)
            self.table.create(conn)
            conn.execute(sa.insert(self.table), self.existing)
        if self.name == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"VACUUM ANALYZE {TABLE}")

    def check(self) -> None:
        with self.engine.connect() as conn:
            n, total = conn.execute(
                sa.select(sa.func.count(), sa.func.sum(self.table.c.login_count))
            ).one()
        expected = sum(r["login_count"] for r in self.rows)
        if (n, int(total)) != (len(self.rows), expected):
            raise RuntimeError(f"{self.name}: {n} rows, sum {total}, expected {expected}")

    # -- methods ---------------------------------------------------------------------------
    def raw_statement(self) -> Callable[[], object]:
        names = ", ".join(COLUMNS)
        tuples = [tuple(r[c] for c in COLUMNS) for r in self.rows]
        if self.name == "mysql":
            sets = ", ".join(f"{c} = VALUES({c})" for c in UPDATED)
            sql = f"INSERT INTO {TABLE} ({names}) VALUES (%s, %s, %s, %s, %s) " \
                f"ON DUPLICATE KEY UPDATE {sets}"  # noqa: S608
        else:
            mark = "?" if self.name == "sqlite" else "%s"
            sets = ", ".join(f"{c} = excluded.{c}" for c in UPDATED)
            sql = f"INSERT INTO {TABLE} ({names}) VALUES ({', '.join([mark] * 5)}) " \
                f"ON CONFLICT (email) DO UPDATE SET {sets}"  # noqa: S608
        if self.name == "sqlite":
            # The datetimes adapted inside the clock, by Python's own adapter (deprecated as
            # a default since 3.12) made explicit, as bench_insert's raw driver does: a raw
            # caller's rows hold datetimes, and some code turns them into text.
            sqlite3.register_adapter(dt.datetime, lambda v: v.isoformat(" "))
        return raw_executemany(self.engine, sql, tuples)

    def django_upsert(self) -> Callable[[], object]:
        from django.db import transaction

        model = django_model(table=TABLE)
        objects = [model(**r) for r in self.rows]
        # MySQL's ON DUPLICATE KEY takes no target: Django refuses unique_fields there.
        unique = [] if self.name == "mysql" else ["email"]

        def run() -> None:
            with transaction.atomic(using=self.name):
                model.objects.using(self.name).bulk_create(
                    objects, batch_size=1000, update_conflicts=True,
                    unique_fields=unique, update_fields=list(UPDATED),
                )

        return run

    def peewee_upsert(self) -> Callable[[], object]:
        import peewee

        database = peewee_database(self.name, self.url)

        class PwUser(peewee.Model):
            username = peewee.CharField()
            email = peewee.CharField(unique=True)
            status = peewee.CharField()
            login_count = peewee.IntegerField()
            created_at = peewee.DateTimeField()

            class Meta:
                table_name = TABLE

        PwUser._meta.set_database(database)
        target = None if self.name == "mysql" else [PwUser.email]
        preserve = [PwUser.username, PwUser.status, PwUser.login_count]

        def run() -> None:
            with database.atomic():
                for chunk in peewee.chunked(self.rows, 1000):
                    PwUser.insert_many(chunk).on_conflict(
                        conflict_target=target, preserve=preserve
                    ).execute()
            database.close()

        return run

    def ours_dicts(self) -> Callable[[], object]:
        def run() -> UpsertResult:
            result = UpsertUser.batch_upsert(self.rows, conflict="email", update=UPDATED)
            half = len(self.rows) // 2
            assert result == UpsertResult(inserted=len(self.rows) - half, updated=half), result
            return result

        return run

    def ours_instances(self) -> Callable[[], object]:
        users = [UpsertUser(**r) for r in self.rows]

        def run() -> UpsertResult:
            result = UpsertUser.batch_upsert(users, conflict="email", update=UPDATED,
                                             validate=False)
            assert users[0].id is not None and users[-1].id is not None
            return result

        return run


def peewee_database(name: str, url: str) -> Any:
    import peewee

    parts = urlsplit(url.replace("+psycopg", "").replace("+pymysql", ""))
    if name == "sqlite":
        return peewee.SqliteDatabase(sa.make_url(url).database)
    if name == "postgresql":
        return peewee.PostgresqlDatabase(
            parts.path.lstrip("/"), host=parts.hostname, port=parts.port,
            user=parts.username, password=parts.password,
        )
    return peewee.MySQLDatabase(
        parts.path.lstrip("/"), host=parts.hostname, port=parts.port or 3306,
        user=parts.username, password=parts.password or "",
    )


METHODS = [
    ("raw dialect upsert, executemany (no PKs)", "raw_statement"),
    ("Django bulk_create(update_conflicts)", "django_upsert"),
    ("peewee insert_many().on_conflict()", "peewee_upsert"),
    ("ours: batch_upsert dicts, validate=True", "ours_dicts"),
    ("ours: batch_upsert instances, no validate", "ours_instances"),
]


def measure(runner: Runner, method: str) -> float:
    """One timed run of ``method`` (rows/s) on a freshly reset table, checked after."""
    runner.reset()
    fn = getattr(runner, method)()
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    runner.check()
    return len(runner.rows) / elapsed


RAW = METHODS[0][0]
#: Issue 22: (method, goal per backend) against the raw statement, rows/s ratio.
GOALS = {"sqlite": 1.0, "postgresql": 1.5, "mysql": 1.0}
TARGETS = [
    ("ours dicts (exact counts) / raw upsert", METHODS[3][0]),
    ("ours instances (exact counts, keys) / raw upsert", METHODS[4][0]),
]


def targets(rounds: dict[str, list[dict[str, float]]], names: list[str]) -> str:
    """The issue-22 targets: per backend, the median over rounds of the ratio in a round."""
    lines = ["| target | " + " | ".join(f"{n} (goal)" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for title, label in TARGETS:
        cells = []
        for name in names:
            ratios = [r[label] / r[RAW] for r in rounds[name]]
            mid, goal = statistics.median(ratios), GOALS[name]
            spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
            cells.append(f"{mid:.2f}x{spread} >= {goal}x {'PASS' if mid >= goal else 'FAIL'}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args, names, tmp = bench_args(__doc__, argv, 100_000)
    urls = {name: backend_url(name, tmp) for name in names}
    setup_django(urls)
    results: dict[str, dict[str, float]] = {}
    rounds: dict[str, list[dict[str, float]]] = {}
    for name in names:
        activerecord.connect(urls[name])
        runner = Runner(name, urls[name], args.rows)
        results[name] = {}
        rounds[name] = []
        # Rounds over all methods, not one method's repeats back to back: the machine's load
        # drifts, and ratios within one round are what counts.
        for round_ in range(args.repeat):
            rounds[name].append({})
            for label, method in METHODS:
                rate = measure(runner, method)
                rounds[name][-1][label] = rate
                results[name][label] = max(rate, results[name].get(label, 0.0))
                print(f"  {name:<10} {label:<44} {rate:,.0f} rows/s (round {round_ + 1})",
                      flush=True)
        runner.engine.dispose()
        activerecord.disconnect()
    print()
    print_table(
        f"{args.rows:,} rows upserted (half new, half existing), best rows/s (ratio to raw)",
        names, [label for label, _ in METHODS], results, RAW,
    )
    print()
    print(f"Targets (issue 22): median over {args.repeat} round(s) of each round's ratio")
    print(targets(rounds, names))


if __name__ == "__main__":
    main()
