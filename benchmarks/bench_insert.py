"""Batch insert, side by side: raw driver, SQLAlchemy Core/ORM, Django, peewee and ours.

Run (Django and peewee come with the ``bench`` extra)::

    python -m benchmarks.bench_insert --rows 100000 --backends sqlite,postgresql,mysql

Server URLs come from ``AR_TEST_POSTGRESQL_URL`` / ``AR_TEST_MYSQL_URL`` (the tests' variables;
defaults: the local servers); SQLite uses a file in a temporary folder. Each method inserts the
same rows of a users-like table (id, username, email, status, login_count, created_at) into an
emptied table in one transaction. Objects (ORM, Django, our instances) are built before the
clock starts; ``ours dicts validate=True`` includes pydantic validation and building the
returned instances. Prints rows/s and the ratio to raw driver executemany (higher is faster),
then the issue targets (issue 3: ours against raw executemany, Django and peewee; issue 8: our
PostgreSQL COPY path, keys set back, against psycopg executemany and a bare ``COPY`` of the same
rows through psycopg's ``write_row``, text and binary, the faster counting, on the users table
and again on the same table without its unique email index; our instances inside a
``Transaction``, which keeps what puts them back on a rollback, against the same outside one;
issue 22: on MySQL/MariaDB our ``LOAD DATA LOCAL INFILE`` path, keys set back, against raw
executemany, pass or FAIL, and against a bare ``LOAD DATA`` of the same rows),
and notes on which rows are not like-for-like. ``--repeat N`` runs N rounds over all methods
and keeps each best.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col

TABLE = "bench_users"
COLUMNS = ("username", "email", "status", "login_count", "created_at")
DEFAULT_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
}


class BenchUser(ActiveRecord):
    __table_name__ = TABLE

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128), Col(unique=True)]
    status: Annotated[str, Field(max_length=16)] = "active"
    login_count: int = 0
    created_at: dt.datetime | None = None


class BenchUserPlain(ActiveRecord):
    """The same users table without the unique index on email (design.md's table)."""

    __table_name__ = TABLE + "_plain"

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128)]
    status: Annotated[str, Field(max_length=16)] = "active"
    login_count: int = 0
    created_at: dt.datetime | None = None


def raw_executemany(engine: sa.Engine, sql: str, rows: list[tuple[Any, ...]]) -> Callable[[], None]:
    """A timed function: the driver's own executemany of ``rows`` in one transaction."""

    def run() -> None:
        conn = engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.executemany(sql, rows)
            conn.commit()
        finally:
            conn.close()

    return run


def bench_args(
    doc: str, argv: list[str] | None, rows: int, repeat_help: str = "runs per method; best kept"
) -> tuple[argparse.Namespace, list[str], str]:
    """The options every benchmark takes (``--rows``, ``--backends``, ``--repeat``): the parsed
    arguments, the backend names and a temporary folder (SQLite's file, any data file)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--repeat", type=int, default=1, help=repeat_help)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    return args, names, tempfile.mkdtemp(prefix="activerecord-bench-")


def print_table(
    title: str,
    names: list[str],
    labels: list[str],
    results: Mapping[str, Mapping[str, float | None]],
    base: str,
) -> None:
    """A markdown table of rows/s per method and backend, with each rate's ratio to ``base``'s
    in the same backend (``n/a`` where a method does not apply)."""
    print(title)
    print("| method | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label in labels:
        cells = []
        for name in names:
            rate, ref = results[name].get(label), results[name].get(base)
            cells.append("n/a" if rate is None or ref is None
                         else f"{rate / 1000:.0f}k ({rate / ref:.2f}x)")
        print(f"| {label} | " + " | ".join(cells) + " |")


def backend_url(name: str, tmp: str) -> str:
    if name == "sqlite":
        return "sqlite:///" + os.path.join(tmp, "bench.db")
    return os.environ.get(f"AR_TEST_{name.upper()}_URL", DEFAULT_URLS[name])


def make_rows(n: int) -> list[dict[str, Any]]:
    stamp = dt.datetime(2024, 5, 1, 12, 30, 15, 123456)
    return [
        {
            "username": f"user{i}",
            "email": f"user{i}@example.com",
            "status": "active" if i % 3 else "inactive",
            "login_count": i % 100,
            "created_at": stamp,
        }
        for i in range(n)
    ]


class Runner:
    """One backend: engines, table reset, and one timed function per method."""

    def __init__(
        self,
        name: str,
        url: str,
        rows: list[dict[str, Any]],
        model: type[BenchUser] | type[BenchUserPlain] = BenchUser,
    ) -> None:
        self.name = name
        self.url = url
        self.rows = rows
        self.engine = sa.create_engine(url)
        self.model = model
        self.table = model.__table__
        self.table_name = self.table.name

    def reset(self) -> None:
        with self.engine.begin() as conn:
            self.table.drop(conn, checkfirst=True)
            self.table.create(conn)
        if self.name == "postgresql":
            # Each method starts with no checkpoint pending (one falls on whichever method
            # writes the WAL past the limit otherwise). Needs superuser or pg_checkpoint.
            try:
                with self.engine.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                        "CHECKPOINT"
                    )
            except sa.exc.DBAPIError:
                pass

    def count_and_ids(self) -> tuple[int, bool]:
        with self.engine.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar_one()
        return int(n), True

    # -- methods ---------------------------------------------------------------------------
    def raw_driver(self) -> Callable[[], object]:
        names = ", ".join(COLUMNS)
        tuples = [tuple(r[c] for c in COLUMNS) for r in self.rows]
        if self.name == "sqlite":
            path = sa.make_url(self.url).database or ""
            sql = f"INSERT INTO {self.table_name} ({names}) VALUES (?, ?, ?, ?, ?)"  # noqa: S608
            # Python's own datetime adapter (deprecated as a default since 3.12), made explicit.
            sqlite3.register_adapter(dt.datetime, lambda v: v.isoformat(" "))

            def run_sqlite() -> None:
                conn = sqlite3.connect(path, isolation_level=None)
                conn.execute("BEGIN")
                conn.executemany(sql, tuples)
                conn.execute("COMMIT")
                conn.close()

            return run_sqlite
        sql = f"INSERT INTO {self.table_name} ({names}) VALUES (%s, %s, %s, %s, %s)"  # noqa: S608
        return raw_executemany(self.engine, sql, tuples)

    def bare_copy(self, binary: bool) -> Callable[[], object] | None:
        """PostgreSQL ``COPY`` of the same rows through psycopg (``write_row``): no keys back."""
        if self.name != "postgresql":
            return None
        tuples = [tuple(r[c] for c in COLUMNS) for r in self.rows]
        fmt = " (FORMAT BINARY)" if binary else ""
        sql = f"COPY {self.table_name} ({', '.join(COLUMNS)}) FROM STDIN{fmt}"
        types = ["varchar", "varchar", "varchar", "int8", "timestamp"]

        def run() -> None:
            conn = self.engine.raw_connection()
            try:
                cursor = conn.cursor()
                with cursor.copy(sql) as copy:
                    if binary:
                        copy.set_types(types)
                    write_row = copy.write_row
                    for row in tuples:
                        write_row(row)
                conn.commit()
            finally:
                conn.close()

        return run

    def bare_load_data(self) -> Callable[[], object] | None:
        """MySQL/MariaDB ``LOAD DATA LOCAL INFILE`` of the same rows, the file's text built
        inside the clock (plain ``str`` of each value, no escaping: these rows need none):
        no keys back."""
        if self.name != "mysql":
            return None
        tuples = [tuple(r[c] for c in COLUMNS) for r in self.rows]
        path = os.path.join(tempfile.mkdtemp(prefix="activerecord-bench-"), "load.tsv")
        sql = (
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {self.table_name} "
            f"CHARACTER SET utf8mb4 ({', '.join(COLUMNS)})"
        )
        engine = sa.create_engine(self.url, connect_args={"local_infile": True})

        def run() -> None:
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join("\t".join(map(str, row)) + "\n" for row in tuples))
            conn = engine.raw_connection()
            try:
                conn.cursor().execute(sql)
                conn.commit()
            finally:
                conn.close()
                engine.dispose()

        return run

    def bare_copy_text(self) -> Callable[[], object] | None:
        return self.bare_copy(binary=False)

    def bare_copy_binary(self) -> Callable[[], object] | None:
        return self.bare_copy(binary=True)

    def core_executemany(self) -> Callable[[], object]:
        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(self.table), self.rows)

        return run

    def core_returning(self) -> Callable[[], object] | None:
        if not self.engine.dialect.insert_returning:
            return None
        stmt = sa.insert(self.table).returning(self.table.c.id, sort_by_parameter_order=True)

        def run() -> list[Any]:
            with self.engine.begin() as conn:
                return conn.execute(stmt, self.rows).scalars().all()  # type: ignore[no-any-return]

        return run

    def orm_add_all(self) -> Callable[[], object]:
        from sqlalchemy.orm import Session, registry

        reg = registry()

        class OrmUser:
            pass

        reg.map_imperatively(OrmUser, self.table)
        objects = []
        for r in self.rows:
            obj = OrmUser()
            for key, value in r.items():
                setattr(obj, key, value)
            objects.append(obj)

        def run() -> None:
            with Session(self.engine) as session, session.begin():
                session.add_all(objects)
                session.flush()

        return run

    def django_bulk_create(self) -> Callable[[], object]:
        from django.db import transaction

        model = django_model(self.name)
        objects = [model(**r) for r in self.rows]

        def run() -> None:
            with transaction.atomic(using=self.name):
                model.objects.using(self.name).bulk_create(objects)

        return run

    def peewee_insert_many(self) -> Callable[[], object]:
        import peewee

        database, pw_user = peewee_model(self.name, self.url, self.table_name)

        def run() -> None:
            with database.atomic():
                for chunk in peewee.chunked(self.rows, 1000):
                    pw_user.insert_many(chunk).execute()
            database.close()

        return run

    def ours_instances(self) -> Callable[[], object]:
        model = self.model
        users = [model(**r) for r in self.rows]

        def run() -> list[Any]:
            model.batch_insert(users, validate=False)
            return users

        return run

    def ours_in_transaction(self) -> Callable[[], object]:
        """``ours_instances`` inside a ``Transaction``, which keeps what puts the records back
        on a rollback (its cost is the ratio to ``ours_instances`` in the targets)."""
        model = self.model
        users = [model(**r) for r in self.rows]

        def run() -> list[Any]:
            with activerecord.Transaction(model):
                model.batch_insert(users, validate=False)
            return users

        return run

    def ours_insert_path(self) -> Callable[[], object] | None:
        """``ours_instances`` on MySQL/MariaDB through a connection without ``local_infile``
        (the user's own engine): the multi-row ``INSERT`` path, LOAD DATA's fallback."""
        if self.name != "mysql":
            return None
        model = self.model
        users = [model(**r) for r in self.rows]

        def run() -> list[Any]:
            with self.engine.begin() as conn, activerecord.using(conn):
                model.batch_insert(users, validate=False)
            return users

        return run

    def ours_dicts(self) -> Callable[[], object]:
        def run() -> object:
            return self.model.batch_insert_from_dicts(self.rows, validate=True)

        return run

    def check_keys(self, records: object) -> None:
        """Our records came back with their rows' keys (outside the clock)."""
        if not isinstance(records, list) or len(records) != len(self.rows):
            raise RuntimeError(f"ours on {self.name} returned {type(records).__name__}")
        table = self.table
        with self.engine.connect() as conn:
            stored = dict(conn.execute(sa.select(table.c.email, table.c.id)).all())  # type: ignore[arg-type]
        if any(stored[r.email] != r.id for r in records):
            raise RuntimeError(f"ours on {self.name}: keys set back do not match the rows")


_django_models: dict[str, Any] = {}


def setup_django(urls: dict[str, str]) -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    databases: dict[str, dict[str, Any]] = {}
    for name, url in urls.items():
        parsed = sa.make_url(url)
        if name == "sqlite":
            databases[name] = {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.database}
            continue
        if name == "mysql":
            import pymysql

            pymysql.version_info = (2, 2, 1, "final", 0)  # Django checks mysqlclient's version
            pymysql.install_as_MySQLdb()
        databases[name] = {
            "ENGINE": f"django.db.backends.{name}",
            "NAME": parsed.database,
            "USER": parsed.username or "",
            "PASSWORD": parsed.password or "",
            "HOST": parsed.host or "",
            "PORT": str(parsed.port or ""),
        }
    databases["default"] = databases[next(iter(databases))]
    settings.configure(DATABASES=databases, INSTALLED_APPS=[], USE_TZ=False)
    django.setup()


def peewee_model(name: str, url: str, table: str) -> tuple[Any, Any]:
    """A peewee database for ``url`` and the model of a users-like benchmark table on it."""
    import peewee

    parts = urlsplit(url.replace("+psycopg", "").replace("+pymysql", ""))
    database: peewee.Database
    if name == "sqlite":
        database = peewee.SqliteDatabase(sa.make_url(url).database)
    elif name == "postgresql":
        database = peewee.PostgresqlDatabase(
            parts.path.lstrip("/"), host=parts.hostname, port=parts.port,
            user=parts.username, password=parts.password,
        )
    else:
        database = peewee.MySQLDatabase(
            parts.path.lstrip("/"), host=parts.hostname, port=parts.port or 3306,
            user=parts.username, password=parts.password or "",
        )

    class PwUser(peewee.Model):
        username = peewee.CharField()
        email = peewee.CharField()
        status = peewee.CharField()
        login_count = peewee.IntegerField()
        created_at = peewee.DateTimeField()

        class Meta:
            table_name = table

    PwUser._meta.set_database(database)
    return database, PwUser


def django_model(alias: str = "", table: str = TABLE) -> Any:
    """The Django model of a users-like benchmark table (one class per table)."""
    model = _django_models.get(table)
    if model is None:
        from django.db import models

        meta = type("Meta", (), {"app_label": "bench", "db_table": table, "managed": False})
        model = _django_models[table] = type(
            "Dj_" + table,
            (models.Model,),
            {
                "__module__": __name__,
                "username": models.CharField(max_length=64),
                "email": models.CharField(max_length=128, unique=True),
                "status": models.CharField(max_length=16),
                "login_count": models.BigIntegerField(),
                "created_at": models.DateTimeField(),
                "Meta": meta,
            },
        )
    return model


RAW = "raw driver executemany (no PKs)"
COPY_TEXT = "bare COPY, text (no PKs)"
COPY_BINARY = "bare COPY, binary (no PKs)"
BARE_LOAD = "bare LOAD DATA LOCAL INFILE (no PKs)"
OURS_INSERT_PATH = "ours: instances, INSERT path (no local_infile)"
DJANGO = "Django bulk_create"
PEEWEE = "peewee insert_many (chunks of 1000)"
OURS_INSTANCES = "ours: instances, validate=False"
OURS_DICTS = "ours: dicts, validate=True"
OURS_IN_TX = "ours: instances, in a Transaction"
#: A second PostgreSQL column: the same rows into the table without the unique email index.
PLAIN = "postgresql, no unique email"
PLAIN_METHODS = {RAW, COPY_TEXT, COPY_BINARY, OURS_INSTANCES}
METHODS = [
    (RAW, "raw_driver"),
    (COPY_TEXT, "bare_copy_text"),
    (COPY_BINARY, "bare_copy_binary"),
    (BARE_LOAD, "bare_load_data"),
    ("SQLAlchemy Core executemany (no PKs)", "core_executemany"),
    ("SQLAlchemy Core RETURNING, ordered", "core_returning"),
    ("SQLAlchemy ORM add_all + flush", "orm_add_all"),
    (DJANGO, "django_bulk_create"),
    (PEEWEE, "peewee_insert_many"),
    (OURS_INSTANCES, "ours_instances"),
    (OURS_INSERT_PATH, "ours_insert_path"),
    (OURS_DICTS, "ours_dicts"),
    (OURS_IN_TX, "ours_in_transaction"),
]
NOTES = [
    "raw driver executemany and bare COPY set no primary keys; ours set every record's key "
    "(and mark it persisted): ours do more work than those rows.",
    "raw driver: sqlite3 / psycopg / PyMySQL executemany of prepared tuples (on PostgreSQL this "
    "is the issue-8 'psycopg executemany' baseline).",
    "SQLite raw executemany converts datetimes with a Python sqlite3 adapter (isoformat).",
    "Objects (instances, ORM/Django objects, tuples) are built before the clock and a "
    "gc.collect() runs before each timed call.",
    "Django bulk_create sets keys back where the database has RETURNING; peewee insert_many "
    "sets none.",
    "ours on PostgreSQL: binary COPY; the first row takes nextval(), the server numbers the "
    "rest, currval() proves the keys (ids reserved first when it cannot); a list goes in one "
    "COPY across chunks, each chunk prepared while the server works through the last.",
    "ours on MySQL/MariaDB: LOAD DATA LOCAL INFILE from an in-memory file where the server and "
    "connection allow it (keys from LAST_INSERT_ID(), lock mode 0/1); "
    f"'{OURS_INSERT_PATH}' is the multi-row INSERT it falls back to.",
    f"'{PLAIN}': the same PostgreSQL server and rows, into the users table without the "
    "unique index on email (design.md's columns, no index but the key): there a COPY is not "
    "bound by the server's upkeep of that index.",
]


def measure(runner: Runner, method: str, repeat: int) -> float | None:
    """Best rate of ``repeat`` runs of one method (None: the method does not apply)."""
    best: float | None = None
    for _ in range(repeat):
        runner.reset()
        fn = getattr(runner, method)()
        if fn is None:
            return None
        gc.collect()  # objects built for this run (and garbage of the last) start settled
        started = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - started
        count, _ = runner.count_and_ids()
        if count != len(runner.rows):
            raise RuntimeError(f"{method} on {runner.name} wrote {count} rows")
        if method.startswith("ours"):
            runner.check_keys(result)
        del fn, result
        rate = len(runner.rows) / elapsed
        best = rate if best is None else max(best, rate)
    return best


def main(argv: list[str] | None = None) -> None:
    args, names, tmp = bench_args(
        __doc__, argv, 100_000, "rounds over all methods; each one's best is kept"
    )
    urls = {name: backend_url(name, tmp) for name in names}
    setup_django(urls)
    rows = make_rows(args.rows)
    results: dict[str, dict[str, float | None]] = {}
    rounds: dict[str, list[dict[str, float | None]]] = {}
    strategies: dict[str, str] = {}
    columns = [*names, PLAIN] if "postgresql" in names else names
    for column in columns:
        name = "postgresql" if column == PLAIN else column
        database = activerecord.connect(urls[name])
        strategies[name] = database.facts.insert_strategy
        runner = Runner(name, urls[name], rows, BenchUserPlain if column == PLAIN else BenchUser)
        methods = [m for m in METHODS if column != PLAIN or m[0] in PLAIN_METHODS]
        results[column] = {label: None for label, _ in METHODS}
        rounds[column] = []
        # Rounds over all methods rather than one method's repeats back to back: the machine's
        # load drifts, and ratios within one round are what counts.
        for round_ in range(args.repeat):
            rounds[column].append({})
            for label, method in methods:
                rate = measure(runner, method, 1)
                rounds[column][-1][label] = rate
                best = results[column].get(label)
                results[column][label] = rate if best is None or rate is None else max(rate, best)
                print(f"  {column:<10} {label:<40} {_fmt(rate)} (round {round_ + 1})", flush=True)
        runner.engine.dispose()
        activerecord.disconnect()
    print()
    print(f"{args.rows:,} rows, rows/s (ratio to raw driver executemany)")
    header = "| method | " + " | ".join(columns) + " |"
    print(header)
    print("|---|" + "---|" * len(columns))
    for label, _method in METHODS:
        cells = []
        for name in columns:
            rate = results[name][label]
            raw = results[name][METHODS[0][0]]
            if rate is None or raw is None:
                cells.append("n/a")
            else:
                cells.append(f"{rate / 1000:.0f}k ({rate / raw:.2f}x)")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print("ours' insert path: " + ", ".join(f"{n} {strategies[n]}" for n in names))
    print()
    print(f"Targets: median over {args.repeat} round(s) of each round's ratio")
    print(targets(rounds, columns))
    print()
    print("Notes:")
    for note in NOTES:
        print(f"- {note}")


def _ratio(results: dict[str, float | None], top: str, bottom: str) -> float | None:
    a, b = results.get(top), results.get(bottom)
    return None if a is None or b is None else a / b


def targets(rounds: dict[str, list[dict[str, float | None]]], names: list[str]) -> str:
    """The issue targets: per backend, the median over rounds of the ratio within a round."""
    checks = [
        ("issue 3: instances / raw executemany", OURS_INSTANCES, RAW, 0.77),
        ("issue 3: dicts+validate / raw executemany", OURS_DICTS, RAW, 0.5),
        ("issue 3: instances / Django bulk_create", OURS_INSTANCES, DJANGO, 2.0),
        ("issue 3: dicts+validate / Django bulk_create", OURS_DICTS, DJANGO, 2.0),
        ("issue 3: instances / peewee insert_many", OURS_INSTANCES, PEEWEE, 2.0),
        ("issue 3: dicts+validate / peewee insert_many", OURS_DICTS, PEEWEE, 2.0),
        ("issue 8: instances (COPY, keys back) / psycopg executemany", OURS_INSTANCES, RAW, 3.0),
        ("issue 8: instances (COPY, keys back) / bare COPY", OURS_INSTANCES, "bare COPY", 0.77),
        ("instances in a Transaction / outside one", OURS_IN_TX, OURS_INSTANCES, 0.9),
        ("issue 22: instances (LOAD DATA, keys back) / raw executemany", OURS_INSTANCES, RAW, 1.8),
        ("issue 22: instances (LOAD DATA) / bare LOAD DATA", OURS_INSTANCES, BARE_LOAD, 0.0),
    ]
    lines = ["| target | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    faster = {"text": 0, "binary": 0}
    for title, top, bottom, goal in checks:
        if title.startswith("issue 8") and "postgresql" not in names:
            continue
        if title.startswith("issue 22") and "mysql" not in names:
            continue
        cells = []
        for name in names:
            if (
                (title.startswith("issue 8") and not name.startswith("postgresql"))
                or (title.startswith("issue 3") and name == PLAIN)
                or (title.startswith("issue 22") and name != "mysql")
            ):
                cells.append("-")
                continue
            ratios = []
            for res in rounds[name]:
                res = dict(res)
                text, binary = res.get(COPY_TEXT), res.get(COPY_BINARY)
                if text is not None and binary is not None:
                    res["bare COPY"] = max(text, binary)
                    if title.startswith("issue 8") and bottom == RAW:
                        faster["binary" if binary >= text else "text"] += 1
                ratio = _ratio(res, top, bottom)
                if ratio is not None:
                    ratios.append(ratio)
            if not ratios:
                cells.append("n/a")
                continue
            mid = statistics.median(ratios)
            spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
            if not goal:  # no target: how close to the bare statement
                verdict = ""
            elif title.startswith("issue 22"):
                verdict = " pass" if mid >= goal else " FAIL"
            else:
                verdict = " met" if mid >= goal else " NOT met"
            cells.append(f"{mid:.2f}x{spread}{verdict}")
        goal_text = f" (goal >= {goal}x)" if goal else ""
        lines.append(f"| {title}{goal_text} | " + " | ".join(cells) + " |")
    if faster["text"] or faster["binary"]:
        lines.append("")
        lines.append(
            "bare COPY: the faster of text and binary in each round "
            f"(binary in {faster['binary']}, text in {faster['text']})."
        )
    return "\n".join(lines)


def _fmt(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f} rows/s"


if __name__ == "__main__":
    main()
