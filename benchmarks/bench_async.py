"""The async API, side by side: the async drivers' own paths, SQLAlchemy's AsyncSession, ours.

Run (asyncpg comes with the ``bench`` extra, the async drivers with ``async``)::

    python -m benchmarks.bench_async --rows 100000 --backends sqlite,postgresql,mysql

The rows and table are ``bench_insert``'s (a users table, one transaction per method, the
table emptied before each). Inserts: psycopg ``AsyncCursor.executemany``, asyncpg
``executemany`` and ``copy_records_to_table`` (no keys back), aiomysql and aiosqlite
``executemany`` (no keys back), SQLAlchemy ``AsyncSession.add_all`` + flush (keys back), ours
sync ``batch_insert`` and ``abatch_insert`` (keys back, the same instances built before the
clock starts). Reads: ours ``all()`` and ``aall()`` of every row. Prints rows/s with the ratio
to our sync ``batch_insert`` (reads: to ``all()``), then the issue's targets as ratios of the
same run, pass or fail: ``abatch_insert`` within 1.25x of ``batch_insert``'s time on each
backend and, on PostgreSQL, at least 3x psycopg's async ``executemany``; ``aall()`` within
1.25x of ``all()``. One run per method unless ``--repeat N`` (best kept); timings on a shared
machine are noisy: compare ratios within one run.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import activerecord
from benchmarks.bench_insert import (
    COLUMNS,
    BenchUser,
    backend_url,
    bench_args,
    make_rows,
    print_table,
)

Timed = Callable[[], Awaitable[None]]

#: The async URL of each backend's sync one.
_ASYNC_DRIVER = {"sqlite": "aiosqlite", "postgresql": "psycopg_async", "mysql": "aiomysql"}

INSERTS = [
    "psycopg AsyncCursor.executemany (no keys)",
    "asyncpg executemany (no keys)",
    "asyncpg copy_records_to_table (no keys)",
    "aiomysql executemany (no keys)",
    "aiosqlite executemany (no keys)",
    "SQLAlchemy AsyncSession.add_all + flush",
    "ours batch_insert (sync)",
    "ours abatch_insert (keys back)",
]
READS = ["ours all() (sync)", "ours aall()"]


class Runner:
    """One backend: the table, its URLs, one timed coroutine per method."""

    def __init__(self, name: str, url: str, rows: int) -> None:
        self.name = name
        self.url = sa.make_url(url)
        self.async_url = self.url.set(
            drivername=f"{self.url.get_backend_name()}+{_ASYNC_DRIVER[name]}"
        )
        self.rows = make_rows(rows)
        self.tuples = [tuple(r[c] for c in COLUMNS) for r in self.rows]
        self.table = BenchUser.__table__
        self.engine = sa.create_engine(self.url)

    def reset(self) -> None:
        with self.engine.begin() as conn:
            self.table.drop(conn, checkfirst=True)
            self.table.create(conn)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self.table))
                       .scalar_one())

    def _sql(self, style: str) -> str:
        names = ", ".join(COLUMNS)
        marks = ", ".join({"qmark": "?", "format": "%s", "numeric": "$%d"}[style]
                          .replace("%d", str(n + 1)) for n in range(len(COLUMNS)))
        return f"INSERT INTO {self.table.name} ({names}) VALUES ({marks})"  # noqa: S608

    # -- the drivers' own ------------------------------------------------------------------
    def psycopg_executemany(self) -> tuple[Timed, Timed] | None:
        if self.name != "postgresql":
            return None
        import psycopg

        conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)

        async def prepare() -> None:
            self.conn = await psycopg.AsyncConnection.connect(conninfo)

        async def run() -> None:
            async with self.conn.cursor() as cursor:
                await cursor.executemany(self._sql("format"), self.tuples)
            await self.conn.commit()
            await self.conn.close()

        return prepare, run

    def _asyncpg(self) -> Any:
        if self.name != "postgresql" or importlib.util.find_spec("asyncpg") is None:
            return None
        import asyncpg

        return asyncpg

    def asyncpg_executemany(self) -> tuple[Timed, Timed] | None:
        asyncpg = self._asyncpg()
        if asyncpg is None:
            return None
        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)

        async def prepare() -> None:
            self.conn = await asyncpg.connect(dsn)

        async def run() -> None:
            async with self.conn.transaction():
                await self.conn.executemany(self._sql("numeric"), self.tuples)
            await self.conn.close()

        return prepare, run

    def asyncpg_copy(self) -> tuple[Timed, Timed] | None:
        asyncpg = self._asyncpg()
        if asyncpg is None:
            return None
        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)

        async def prepare() -> None:
            self.conn = await asyncpg.connect(dsn)

        async def run() -> None:
            async with self.conn.transaction():
                await self.conn.copy_records_to_table(
                    self.table.name, records=self.tuples, columns=list(COLUMNS)
                )
            await self.conn.close()

        return prepare, run

    def aiomysql_executemany(self) -> tuple[Timed, Timed] | None:
        if self.name != "mysql":
            return None
        import aiomysql

        url = self.url

        async def prepare() -> None:
            self.conn = await aiomysql.connect(
                host=url.host, port=url.port or 3306, user=url.username,
                password=url.password or "", db=url.database,
            )

        async def run() -> None:
            async with self.conn.cursor() as cursor:
                await cursor.executemany(self._sql("format"), self.tuples)
            await self.conn.commit()
            self.conn.close()

        return prepare, run

    def aiosqlite_executemany(self) -> tuple[Timed, Timed] | None:
        if self.name != "sqlite":
            return None
        import aiosqlite

        path = self.url.database or ""
        tuples = [tuple(v.isoformat(" ") if hasattr(v, "isoformat") else v for v in t)
                  for t in self.tuples]

        async def prepare() -> None:
            self.conn = await aiosqlite.connect(path, isolation_level=None)

        async def run() -> None:
            await self.conn.execute("BEGIN")
            await self.conn.executemany(self._sql("qmark"), tuples)
            await self.conn.execute("COMMIT")
            await self.conn.close()

        return prepare, run

    def async_session(self) -> tuple[Timed, Timed]:
        from sqlalchemy.orm import registry

        reg = registry()

        class OrmUser:
            pass

        reg.map_imperatively(OrmUser, self.table)
        engine = create_async_engine(self.async_url)

        async def prepare() -> None:
            self.objs = []
            for row in self.rows:
                obj = OrmUser()
                for key, value in row.items():
                    setattr(obj, key, value)
                self.objs.append(obj)

        async def run() -> None:
            async with AsyncSession(engine) as session:
                session.add_all(self.objs)
                await session.flush()
                await session.commit()
            await engine.dispose()

        return prepare, run

    # -- ours ------------------------------------------------------------------------------
    def ours_sync(self) -> tuple[Timed, Timed]:
        async def prepare() -> None:
            self.records = [BenchUser(**row) for row in self.rows]
            BenchUser.query().count()  # a pooled connection, as the async twin's

        async def run() -> None:  # the sync call, from a coroutine as the others run
            BenchUser.batch_insert(self.records)

        return prepare, run

    def ours_async(self) -> tuple[Timed, Timed]:
        async def prepare() -> None:
            self.records = [BenchUser(**row) for row in self.rows]
            await BenchUser.query().acount()  # the loop's engine and a pooled connection

        async def run() -> None:
            await BenchUser.abatch_insert(self.records)
            assert self.records[-1].id is not None

        return prepare, run


def timed(pair: tuple[Timed, Timed] | None, rows: int) -> float | None:
    """Rows per second of one method: its ``prepare`` untimed, then ``run``, in one loop."""
    if pair is None:
        return None
    prepare, run = pair

    async def both() -> float:
        await prepare()
        gc.collect()
        start = time.perf_counter()
        await run()
        return time.perf_counter() - start

    return rows / asyncio.run(both())


def read_rates(runner: Runner, rows: int, repeat: int) -> dict[str, float | None]:
    runner.reset()
    BenchUser.batch_insert_from_dicts(runner.rows, return_records=False)
    best: dict[str, float | None] = {}
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        assert len(BenchUser.query().all()) == rows
        sync = rows / (time.perf_counter() - start)

        async def read() -> float:
            await BenchUser.query().acount()
            gc.collect()
            start = time.perf_counter()
            assert len(await BenchUser.query().aall()) == rows
            return rows / (time.perf_counter() - start)

        rates = {READS[0]: sync, READS[1]: asyncio.run(read())}
        for label, rate in rates.items():
            old = best.get(label)
            best[label] = rate if old is None else max(old, rate)
    return best


def main(argv: list[str] | None = None) -> None:
    args, names, tmp = bench_args(__doc__ or "", argv, rows=100_000)
    inserts: dict[str, dict[str, float | None]] = {}
    reads: dict[str, dict[str, float | None]] = {}
    for name in names:
        runner = Runner(name, backend_url(name, tmp), args.rows)
        activerecord.connect(runner.url)
        methods = [
            runner.psycopg_executemany, runner.asyncpg_executemany, runner.asyncpg_copy,
            runner.aiomysql_executemany, runner.aiosqlite_executemany, runner.async_session,
            runner.ours_sync, runner.ours_async,
        ]
        results: dict[str, float | None] = {}
        for _ in range(args.repeat):
            for label, method in zip(INSERTS, methods):
                runner.reset()
                rate = timed(method(), args.rows)
                if rate is not None:
                    assert runner.count() == args.rows, label
                old = results.get(label)
                results[label] = rate if old is None else max(old or 0, rate or 0) or None
        inserts[name] = results
        reads[name] = read_rates(runner, args.rows, args.repeat)
        runner.reset()
        activerecord.disconnect()
        runner.engine.dispose()
    print_table(f"Inserts, {args.rows} rows (rows/s, ratio to ours sync batch_insert)",
                names, INSERTS, inserts, "ours batch_insert (sync)")
    print()
    print_table(f"Reads, {args.rows} rows (rows/s, ratio to ours all())",
                names, READS, reads, READS[0])
    print()
    print(targets(names, inserts, reads))


def targets(
    names: list[str],
    inserts: dict[str, dict[str, float | None]],
    reads: dict[str, dict[str, float | None]],
) -> str:
    lines = ["Targets (ratios of this run):"]

    def check(label: str, value: float | None, goal: float) -> None:
        if value is None:
            lines.append(f"- {label}: n/a")
        else:
            verdict = "pass" if value >= goal else "FAIL"
            lines.append(f"- {label}: {value:.2f}x (>= {goal}x) {verdict}")

    for name in names:
        ours, sync = inserts[name].get(INSERTS[7]), inserts[name].get(INSERTS[6])
        check(f"{name}: abatch_insert vs batch_insert (time within 1.25x)",
              None if not ours or not sync else ours / sync, 0.8)
        if name == "postgresql":
            base = inserts[name].get(INSERTS[0])
            check(f"{name}: abatch_insert vs psycopg async executemany",
                  None if not ours or not base else ours / base, 3.0)
        a, s = reads[name].get(READS[1]), reads[name].get(READS[0])
        check(f"{name}: aall() vs all() (time within 1.25x)",
              None if not a or not s else a / s, 0.8)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
