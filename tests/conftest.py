"""Test fixtures: the ``backend`` parameter runs a test on SQLite, PostgreSQL and MySQL/MariaDB.

Connection URLs come from environment variables (defaults: the local servers of DEVELOPERS.md):

* ``AR_TEST_POSTGRESQL_URL`` (``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
* ``AR_TEST_MYSQL_URL`` (``mysql+pymysql://root@127.0.0.1:3306/test``)
* ``AR_TEST_SQLITE_URL`` (a file in a temporary folder)
* ``AR_TEST_BACKENDS``: comma-separated subset to run (default: all three; ``none`` runs
  only the tests that need no database, e.g. ``tests/unit``)

When ``CI`` is true (or ``AR_REQUIRE_BACKENDS=1``) an unreachable server fails the run;
otherwise its tests are skipped with the reason. The run's header line names the backends and
URLs; a line at the end says which ones the tests ran on and which were unreachable.

Test modules import packages of optional extras (pandas, polars, tqdm) through
:func:`optional`: without the package, each test that uses it is skipped with the extra to
install, and the module's other tests still run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import activerecord
from activerecord.backend.database import Database

DEFAULT_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
}
HOW_TO_START = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "mysql": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}
ALL_BACKENDS = ("sqlite", "postgresql", "mysql")


class _OptionalModule:
    """A module of an optional extra, imported on first use; missing, the test is skipped."""

    def __init__(self, module: str, extra: str) -> None:
        self._module = module
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # pytest's collection probes module attributes this way
            raise AttributeError(name)
        return getattr(_import_or_skip(self._module, self._extra), name)


def _import_or_skip(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.skip(f"needs {module} ({exc}): pip install 'activerecord[{extra}]'")


def optional(module: str, extra: str) -> Any:
    """``pd = optional("pandas", "dataframes")``: the module, imported when a test uses it."""
    return _OptionalModule(module, extra)


def needs(module: str, extra: str) -> pytest.MarkDecorator:
    """Skip a test (with the extra to install) when the library would need ``module``."""
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None,
        reason=f"needs {module}: pip install 'activerecord[{extra}]'",
    )


def selected_backends() -> list[str]:
    raw = os.environ.get("AR_TEST_BACKENDS", "")
    if raw.strip() == "none":  # only the tests that need no database (tests/unit and others)
        return []
    names = [n.strip() for n in raw.split(",") if n.strip()] or list(ALL_BACKENDS)
    unknown = set(names) - set(ALL_BACKENDS)
    if unknown:
        raise pytest.UsageError(f"AR_TEST_BACKENDS has unknown names: {sorted(unknown)}")
    return names


def backends_required() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get(
        "AR_REQUIRE_BACKENDS", ""
    ).lower() in ("1", "true", "yes", "all")


def backend_url(name: str) -> str:
    if name == "sqlite":
        default = "sqlite:///" + os.path.join(_tmpdir(), "test.db")
        return os.environ.get("AR_TEST_SQLITE_URL", default)
    return os.environ.get(f"AR_TEST_{name.upper()}_URL", DEFAULT_URLS[name])


_TMP: list[str] = []


def _tmpdir() -> str:
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="activerecord-tests-"))
    return _TMP[0]


_databases: dict[str, Database] = {}
_unreachable: dict[str, str] = {}


def database_for(name: str) -> Database:
    """The session's Database for a backend; skip (or fail in CI) when unreachable."""
    if name in _unreachable:
        _skip_or_fail(name, _unreachable[name])
    if name not in _databases:
        url = backend_url(name)
        try:
            db = activerecord.connect(url, name=f"test-{name}")
            db.facts  # noqa: B018 - probes the server
        except Exception as exc:  # noqa: BLE001 - any failure means unreachable
            _unreachable[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            _skip_or_fail(name, _unreachable[name])
        _databases[name] = db
    return _databases[name]


def _skip_or_fail(name: str, reason: str) -> None:
    message = f"{name} at {backend_url(name)} is unreachable ({reason})"
    if name in HOW_TO_START:
        message += f"; start it with: {HOW_TO_START[name]}"
    if backends_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def pytest_report_header(config: pytest.Config) -> str:
    """One line naming the backends this run uses (and whether they are required)."""
    urls = ", ".join(
        f"{name} ({_hide_password(backend_url(name))})" for name in selected_backends()
    )
    mode = "required" if backends_required() else "skipped when unreachable"
    return f"activerecord backends: {urls or 'none'}; {mode}"


def _hide_password(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        names = selected_backends()
        marker = metafunc.definition.get_closest_marker("backends")
        if marker is not None:
            names = [n for n in names if n in marker.args]
        paths = getattr(metafunc.module, "PATHS", None)
        if "insert_path" in metafunc.fixturenames and paths is not None:
            # Only the (backend, path) pairs that exist: no skip entries for missing paths.
            pairs = [(b, p) for b in names for p in paths[b]]
            metafunc.parametrize(("backend", "insert_path"), pairs)
        else:
            metafunc.parametrize("backend", names)


@pytest.fixture
def db(backend: str) -> Iterator[Database]:
    """Bind the default database to the backend's engine for one test."""
    database = database_for(backend)
    activerecord.connect(database.engine)
    default = activerecord.get_database()
    default._facts = database.facts  # probed once per session
    yield default
    activerecord.disconnect("default")


@pytest.fixture
def adb(backend: str) -> Iterator[Database]:
    """Bind the default database to the backend's URL for one test: it serves the sync API
    and the async one (an async engine per event loop, disposed when ``asyncio.run`` ends)."""
    database = database_for(backend)
    default = activerecord.connect(backend_url(backend))
    default._facts = database.facts  # probed once per session
    yield default
    activerecord.disconnect("default")


@pytest.fixture
def fresh(db: Database) -> Callable[..., None]:
    """``fresh(Model, ...)`` drops and re-creates the models' tables for this test."""

    def make(*models: Any) -> None:
        tables = [m.__table__ for m in models]
        with db.engine.begin() as conn:
            # Each test module's models have a MetaData of their own (tests/models.py).
            for metadata in dict.fromkeys(t.metadata for t in tables):
                mine = [t for t in tables if t.metadata is metadata]
                metadata.drop_all(conn, tables=mine)
                metadata.create_all(conn, tables=mine)

    return make


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """After the run: which backends the tests really ran on, and which were unreachable."""
    parts = []
    for name in selected_backends():
        if name in _databases:
            parts.append(f"{name} ran")
        elif name in _unreachable:
            parts.append(f"{name} unreachable ({_unreachable[name]})")
        else:
            parts.append(f"{name} not used")
    terminalreporter.write_line("activerecord backends: " + ("; ".join(parts) or "none"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for database in _databases.values():
        database.engine.dispose()
    activerecord.disconnect()


def dialect_name(db: Database) -> str:
    return db.engine.dialect.name


def raw_count(db: Database, table: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())  # noqa: S608
