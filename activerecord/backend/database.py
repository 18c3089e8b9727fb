"""Named databases: one SQLAlchemy Engine each, plus the facts read from it.

Example::

    >>> from activerecord.backend.database import connect, get_database
    >>> db = connect("sqlite://")
    >>> get_database().engine.dialect.name
    'sqlite'
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ..errors import (
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    NotConnectedError,
    PoolTimeoutError,
)
from .bridge import bridged
from .dialects import DialectFacts
from .engines import (
    as_async,
    guarded,
    is_async,
    listen,
    make_engine,
    one_api_only,
    split_hosts,
    twin_driver,
)
from .errors import translate_error
from .sa_asyncio import is_async_engine

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["DEFAULT", "Database", "connect", "disconnect", "get_database"]

DEFAULT = "default"

class Database:
    """A named binding of an :class:`sqlalchemy.Engine`, and of an ``AsyncEngine`` for the
    async API.

    ``engine`` serves the sync API. ``serves_sync`` is False for a database connected to an
    ``AsyncEngine`` alone: ``engine`` is then that engine's ``sync_engine`` (its dialect and
    URL; sync calls raise :class:`ConfigurationError`). The async API checks connections out
    of :attr:`async_engine`: the one given, or one made from the URL with the matching async
    driver, one per event loop (an ``AsyncEngine`` belongs to the loop it ran on), disposed
    when ``asyncio.run`` shuts that loop down.

    ``owns_engine`` is true when the library created the engine (and may dispose of it).
    ``retries``: how many times an operation running in its own transaction is re-run on a
    conflict (see :func:`connect`).
    """

    def __init__(
        self,
        name: str,
        engine: sa.Engine,
        *,
        owns_engine: bool,
        retries: int = 0,
        serves_sync: bool = True,
        async_engine: AsyncEngine | None = None,
        async_factory: Callable[[], AsyncEngine] | None = None,
        no_async: str = "",
        no_sync: str = "",
    ) -> None:
        self.name = name
        self.engine = engine
        self.owns_engine = owns_engine
        self.retries = retries
        self.serves_sync = serves_sync
        self._facts: DialectFacts | None = None
        self._lock = threading.Lock()
        self._fixed_async = async_engine
        self._async_factory = async_factory
        self._no_async = no_async
        self._no_sync = no_sync
        self._async_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine]
        self._async_engines = weakref.WeakKeyDictionary()
        self._lifetimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]
        self._lifetimes = weakref.WeakKeyDictionary()

    @property
    def facts(self) -> DialectFacts:
        """The dialect facts, probed from the server on first use."""
        facts = self._facts
        if facts is None and bridged():
            # No thread lock across the awaits of a probe: another task of this loop's
            # thread would block on it. Two tasks may both probe; the facts are the same.
            with _connect_errors(self):
                probed = DialectFacts.probe(self.io_engine())
            facts = self._facts = self._facts or probed
        if facts is None:
            with self._lock:
                if self._facts is None:
                    with _connect_errors(self):
                        self._facts = DialectFacts.probe(self.io_engine())
                facts = self._facts
        return facts

    @property
    def serves_async(self) -> bool:
        """Whether the async API can run here (an AsyncEngine given, or one can be made)."""
        return self._fixed_async is not None or self._async_factory is not None

    @property
    def async_engine(self) -> AsyncEngine:
        """The ``AsyncEngine`` for the running event loop (made on first use for a URL).

        :class:`ConfigurationError` when there is none (a sync Engine of your own, an
        in-memory SQLite database) or no event loop runs.
        """
        fixed = self._fixed_async
        if fixed is not None and not self.owns_engine:
            return fixed  # the user's: they dispose of it
        if fixed is None and self._async_factory is None:
            raise ConfigurationError(self._no_async)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError(
                "the async API needs a running event loop (call it from async code)"
            ) from None
        engine = self._async_engines.get(loop)
        if engine is not None:
            return engine
        with self._lock:  # no await inside: another thread's loop may be making its own
            return self._engine_for(loop, fixed)

    def _engine_for(
        self, loop: asyncio.AbstractEventLoop, fixed: AsyncEngine | None
    ) -> AsyncEngine:
        engine = self._async_engines.get(loop)
        if engine is None:
            # One engine per loop; the library's one engine of an in-memory database (its
            # database lives as long as the loop that used it) is disposed of likewise.
            engine = fixed if fixed is not None else self._make_async()
            self._async_engines[loop] = engine
            lifetime = _lifetime(self, loop, engine)
            self._lifetimes[loop] = lifetime
            # Run it to its first ``yield`` now: the loop's async-generator hooks track it,
            # and ``asyncio.run`` closes it (disposing of the engine) before the loop ends.
            step: Any = lifetime.__anext__()
            try:
                step.send(None)
            except StopIteration:
                pass
        return engine

    def _make_async(self) -> AsyncEngine:
        assert self._async_factory is not None
        return self._async_factory()

    def io_engine(self) -> sa.Engine:
        """The engine the current call checks connections out of: the async engine's
        ``sync_engine`` inside the greenlet bridge, else :attr:`engine`."""
        if bridged():
            return self.async_engine.sync_engine
        if not self.serves_sync:
            raise ConfigurationError(self._no_sync)
        return self.engine

    def dispose(self) -> None:
        """Dispose of the engines the library created (never of a user's own engine)."""
        if not self.owns_engine:
            return
        if self.serves_sync:  # an async engine's sync_engine cannot close its connections
            self.engine.dispose()
        for loop, engine in list(self._async_engines.items()):
            self._async_engines.pop(loop, None)
            self._lifetimes.pop(loop, None)
            if loop.is_closed():
                continue  # the lifetime disposed of it when the loop shut down
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(engine.dispose(), loop)
            else:
                loop.run_until_complete(engine.dispose())

    def __repr__(self) -> str:
        return f"<Database {self.name!r} {self.engine.url.render_as_string(hide_password=True)}>"


async def _lifetime(
    db: Database, loop: asyncio.AbstractEventLoop, engine: AsyncEngine
) -> AsyncIterator[None]:
    """Lives as long as the loop of ``engine``: disposes of it at ``shutdown_asyncgens``."""
    try:
        yield
    finally:
        if db._async_engines.get(loop) is engine:
            del db._async_engines[loop]
        await engine.dispose()


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
    engine = db.io_engine()
    with _connect_errors(db):
        return engine.connect()
    raise AssertionError("unreachable")  # pragma: no cover - for type checkers


_registry: dict[str, Database] = {}
_registry_lock = threading.Lock()


def connect(
    url_or_engine: str | sa.URL | sa.Engine | AsyncEngine,
    *,
    name: str = DEFAULT,
    retries: int = 0,
    causal_reads: bool = False,
    hosts: Sequence[str] | None = None,
    **engine_options: Any,
) -> Database:
    """Bind the database ``name`` (``"default"`` unless given) to a URL or an existing Engine.

    An existing :class:`sqlalchemy.Engine` keeps its pool, dialect and logging, and stays
    yours: neither ``connect`` nor :func:`disconnect` disposes of it or closes its connections.
    Engine options (``echo=True``, ``pool_size=...``) apply only when a URL is given. The
    library adds these event listeners to it (once, however often it is connected):

    * every backend: ``before_cursor_execute``, logging statements at DEBUG under the
      ``activerecord`` logger (see :mod:`activerecord.log`);
    * SQLite: SQLAlchemy's documented pysqlite recipe, which SAVEPOINTs need: ``connect``
      and ``checkout`` set the driver's ``isolation_level = None`` and
      ``PRAGMA foreign_keys = ON`` on each connection (on its next checkout for connections
      the pool already holds), ``begin`` emits ``BEGIN`` itself, and ``checkout`` reads
      ``sqlite_master`` once so the connection sees tables other connections created.

    An engine created from a URL gets the same, plus ``pool_pre_ping`` (servers), a shared
    connection for an in-memory SQLite database, and strict ``sql_mode`` on MySQL/MariaDB.

    ``retries=N``: an operation that runs in its own transaction (no ambient
    ``Transaction``) and whose input can be replayed (a single ``save()``/``delete()``, a
    query's ``update()``/``delete()``, a batch insert/upsert/update of a list, not of a
    generator) is re-run whole, up to N more times, on a deadlock, serialization failure or
    lock timeout (a Galera certification failure is a deadlock at COMMIT) and on a Galera
    node's "not primary" refusal. Inside a ``Transaction`` the transaction decides
    (``@Transaction(retries=N)``).

    ``hosts=["db1:3306", "db2:3306"]`` (or ``mysql+pymysql://u@db1:3306,db2:3306/app``):
    several servers of one database (a Galera cluster, a PostgreSQL primary and standbys).
    A new connection goes to the first host, in that order, that accepts it and can serve:
    MySQL family, a Galera node in the primary component; PostgreSQL, one that accepts
    writes (libpq's ``target_session_attrs=read-write``).

    ``causal_reads=True``: a read sees every write committed before it on any node (Galera:
    ``wsrep_sync_wait = 1``, reads wait for the node to catch up). Single servers need
    nothing and get nothing.

    >>> import activerecord
    >>> activerecord.connect("sqlite://").engine.dialect.name
    'sqlite'
    >>> activerecord.connect("sqlite://", retries=3).retries
    3
    """
    if retries < 0:
        raise ConfigurationError(f"retries must be >= 0, got {retries}")
    if isinstance(url_or_engine, sa.Engine) or is_async_engine(url_or_engine):
        if engine_options or causal_reads or hosts is not None:
            raise ConfigurationError(
                "engine options, hosts and causal_reads apply only when connect() creates the "
                "engine from a URL"
            )
        db = _from_engine(name, url_or_engine, retries)
    else:  # anything but a URL is refused there, typed
        db = _from_url(name, url_or_engine, retries, engine_options, hosts, causal_reads)  # type: ignore[arg-type]
    listen(db.engine)
    with _registry_lock:
        old = _registry.get(name)
        _registry[name] = db
    if old is not None and old.owns_engine and old.engine is not db.engine:
        old.dispose()
    return db


def _from_engine(name: str, engine: sa.Engine | AsyncEngine, retries: int) -> Database:
    """A user's own engine serves its own flavour only: the other says what to pass."""
    if is_async_engine(engine):
        return Database(
            name, engine.sync_engine, owns_engine=False, retries=retries, serves_sync=False,
            async_engine=engine,
            no_sync=f"database {name!r} is connected to an AsyncEngine, which serves the async "
            "API only: call the async methods (await Model.afind(...), async with "
            "Transaction()), or connect() the URL, which serves both",
        )
    assert isinstance(engine, sa.Engine)
    return Database(
        name, engine, owns_engine=False, retries=retries,
        no_async=f"database {name!r} is connected to a sync Engine, which serves the sync API "
        "only: for the async methods connect() an AsyncEngine or the URL, which serves both",
    )


def _from_url(
    name: str,
    url: str | sa.URL,
    retries: int,
    options: dict[str, Any],
    hosts: Sequence[str] | None,
    causal_reads: bool,
) -> Database:
    """Both engines of a URL where a twin driver exists: the sync one, made now, and the
    async one's factory (an engine per event loop, on first use)."""

    def make(driver: str | None = None) -> sa.Engine | AsyncEngine:
        engine: sa.Engine | AsyncEngine = guarded(url, driver, lambda: make_engine(
            url, dict(options), hosts=hosts, causal_reads=causal_reads, driver=driver
        ))
        return engine

    parsed: sa.URL = guarded(url, None, lambda: sa.make_url(split_hosts(url, hosts)[0]))
    url_is_async: bool = guarded(url, None, lambda: is_async(parsed))
    twin: str | None = guarded(url, None, lambda: twin_driver(parsed))
    refusal = one_api_only(name, parsed, url_is_async, twin)
    own = None if url_is_async else make()
    sync = own if twin is None or own is not None else _sync_twin(make, twin)
    if isinstance(sync, str):  # the sync driver is not installed
        refusal, sync = sync, None
    if isinstance(sync, sa.Engine):
        make_async = None if twin is None else (
            lambda: as_async(make(twin if own is not None else None))
        )
        return Database(name, sync, owns_engine=True, retries=retries,
                        async_factory=make_async, no_async=refusal)
    made = as_async(make())  # async only: one engine, for every loop
    return Database(name, made.sync_engine, owns_engine=True, retries=retries,
                    serves_sync=False, async_engine=made, no_sync=refusal)


def _sync_twin(make: Callable[[str], sa.Engine | AsyncEngine], twin: str) -> sa.Engine | str:
    """The sync twin of an async URL, or why it cannot be made."""
    try:
        engine = make(twin)
    except ConfigurationError as exc:
        return f"the sync API is not available: {exc}"
    assert isinstance(engine, sa.Engine)
    return engine


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
        db.dispose()


def get_database(name: str = DEFAULT) -> Database:
    """The :class:`Database` bound to ``name``; :class:`NotConnectedError` if there is none."""
    try:
        return _registry[name]
    except KeyError:
        raise NotConnectedError(
            f"no database named {name!r}: call activerecord.connect(url, name={name!r}) first"
        ) from None
