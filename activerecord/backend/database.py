"""Named databases: one SQLAlchemy Engine each, plus the facts read from it.

Example::

    >>> from activerecord.backend.database import connect, get_database
    >>> db = connect("sqlite://")
    >>> get_database().engine.dialect.name
    'sqlite'
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import StaticPool

from ..errors import (
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    NotConnectedError,
    PoolTimeoutError,
)
from ..log import before_cursor_execute
from .dialects import DialectFacts, driver_hint, translate_error

__all__ = ["DEFAULT", "Database", "connect", "disconnect", "get_database"]

DEFAULT = "default"

#: Session settings applied to MySQL/MariaDB connections of engines this library creates:
#: strict mode, so an out-of-range or over-long value is an error instead of a silent truncation.
_MYSQL_SQL_MODE = (
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
)


class Database:
    """A named binding of an :class:`sqlalchemy.Engine`.

    ``owns_engine`` is true when the library created the engine (and may dispose of it).
    """

    def __init__(self, name: str, engine: sa.Engine, *, owns_engine: bool) -> None:
        self.name = name
        self.engine = engine
        self.owns_engine = owns_engine
        self._facts: DialectFacts | None = None
        self._lock = threading.Lock()

    @property
    def facts(self) -> DialectFacts:
        """The dialect facts, probed from the server on first use."""
        facts = self._facts
        if facts is None:
            with self._lock:
                if self._facts is None:
                    with _connect_errors(self):
                        self._facts = DialectFacts.probe(self.engine)
                facts = self._facts
        return facts

    def __repr__(self) -> str:
        return f"<Database {self.name!r} {self.engine.url.render_as_string(hide_password=True)}>"


@contextmanager
def _connect_errors(db: Database) -> Iterator[None]:
    """Turn a failure to get a connection into the library's errors."""
    try:
        yield
    except sa_exc.TimeoutError as exc:  # not a DBAPIError: the pool gave up, not the driver
        raise PoolTimeoutError(
            f"no free connection in the pool of database {db.name!r}: {exc}", orig=exc
        ) from exc
    except sa_exc.DBAPIError as exc:
        error = translate_error(exc, context="cannot connect")
        if type(error) is DatabaseError:  # a refused login, an unknown database: no code of
            # its own, but the connection is what failed
            error = DatabaseConnectionError(str(error), orig=error.orig)
        raise error from exc


def checkout(db: Database) -> sa.Connection:
    """A connection from ``db``'s pool, with failures as library errors.

    :class:`~activerecord.errors.PoolTimeoutError` when no pooled connection became free
    within the engine's ``pool_timeout``; :class:`~activerecord.errors.DatabaseConnectionError`
    (or another translated error) when connecting failed.
    """
    with _connect_errors(db):
        return db.engine.connect()
    raise AssertionError("unreachable")  # pragma: no cover - for type checkers


_registry: dict[str, Database] = {}
_registry_lock = threading.Lock()


def _make_engine(url: str | sa.URL, options: dict[str, Any]) -> sa.Engine:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        connect_args = dict(options.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
        if database in ("", ":memory:") and "poolclass" not in options:
            # One shared connection, so an in-memory database lives across calls and threads.
            options["poolclass"] = StaticPool
        engine = sa.create_engine(parsed, connect_args=connect_args, **options)
    else:
        options.setdefault("pool_pre_ping", True)
        engine = sa.create_engine(parsed, **options)
        if backend in ("mysql", "mariadb"):
            event.listen(engine, "connect", _mysql_on_connect)
    return engine


def _mysql_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_MYSQL_SQL_MODE)
    finally:
        cursor.close()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # The stdlib driver opens transactions on its own and breaks SAVEPOINT; take that job
    # over (SQLAlchemy's documented recipe) and turn on foreign keys.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def _sqlite_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # A connection reloads its copy of the schema only when a statement reads the database:
    # until then PRAGMAs (which SQLAlchemy's reflection runs) answer from the copy it had,
    # missing tables and indexes another connection of the pool created since. One read of
    # the schema table in autocommit mode (a lock taken and released at once) refreshes it.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    finally:
        cursor.close()


def _prepare_sqlite(engine: sa.Engine) -> None:
    if engine.dialect.name != "sqlite" or event.contains(engine, "begin", _sqlite_on_begin):
        return
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    event.listen(engine, "checkout", _sqlite_on_checkout)
    # Connections the pool already holds were opened before the listener existed.
    engine.dispose()


def connect(
    url_or_engine: str | sa.URL | sa.Engine, *, name: str = DEFAULT, **engine_options: Any
) -> Database:
    """Bind the database ``name`` (``"default"`` unless given) to a URL or an existing Engine.

    An existing :class:`sqlalchemy.Engine` is used as it is: its pool, dialect and logging.
    Engine options (``echo=True``, ``pool_size=...``) apply only when a URL is given.

    >>> import activerecord
    >>> activerecord.connect("sqlite://").engine.dialect.name
    'sqlite'
    """
    if isinstance(url_or_engine, sa.Engine):
        if engine_options:
            raise ConfigurationError(
                "engine options apply only when connect() creates the engine from a URL"
            )
        engine, owns = url_or_engine, False
    else:
        try:
            engine, owns = _make_engine(url_or_engine, dict(engine_options)), True
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise ConfigurationError(
                f"cannot create an engine for {url_or_engine!r}: {exc}"
            ) from exc
        except ImportError as exc:  # the URL names (or defaults to) a driver not installed
            shown = sa.make_url(url_or_engine).render_as_string(hide_password=True)
            hint = driver_hint(url_or_engine)
            raise ConfigurationError(
                f"cannot create an engine for {shown!r}: {exc}" + (f"; {hint}" if hint else "")
            ) from exc
    _prepare_sqlite(engine)
    if not event.contains(engine, "before_cursor_execute", before_cursor_execute):
        event.listen(engine, "before_cursor_execute", before_cursor_execute)
    db = Database(name, engine, owns_engine=owns)
    with _registry_lock:
        old = _registry.get(name)
        _registry[name] = db
    if old is not None and old.owns_engine and old.engine is not engine:
        old.engine.dispose()
    return db


def disconnect(name: str | None = None) -> None:
    """Forget one named database (or all), disposing of engines the library created.

    >>> import activerecord
    >>> _ = activerecord.connect("sqlite://", name="scratch")
    >>> activerecord.disconnect("scratch")
    """
    with _registry_lock:
        names = list(_registry) if name is None else [name]
        dbs = [_registry.pop(n) for n in names if n in _registry]
    for db in dbs:
        if db.owns_engine:
            db.engine.dispose()


def get_database(name: str = DEFAULT) -> Database:
    """The :class:`Database` bound to ``name``; :class:`NotConnectedError` if there is none."""
    try:
        return _registry[name]
    except KeyError:
        raise NotConnectedError(
            f"no database named {name!r}: call activerecord.connect(url, name={name!r}) first"
        ) from None
