"""Named databases: one SQLAlchemy Engine each, plus the facts read from it.

Example::

    >>> from activerecord.backend.database import connect, get_database
    >>> db = connect("sqlite://")
    >>> get_database().engine.dialect.name
    'sqlite'
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from ..errors import (
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    NotConnectedError,
    PoolTimeoutError,
)
from ..log import before_cursor_execute
from .dialects import DialectFacts, driver_hint, facts_class
from .errors import translate_error

__all__ = ["DEFAULT", "Database", "connect", "disconnect", "get_database"]

DEFAULT = "default"

class Database:
    """A named binding of an :class:`sqlalchemy.Engine`.

    ``owns_engine`` is true when the library created the engine (and may dispose of it).
    ``retries``: how many times an operation running in its own transaction is re-run on a
    conflict (see :func:`connect`).
    """

    def __init__(
        self, name: str, engine: sa.Engine, *, owns_engine: bool, retries: int = 0
    ) -> None:
        self.name = name
        self.engine = engine
        self.owns_engine = owns_engine
        self.retries = retries
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


#: ``scheme://[user[:password]@]host[:port],host[:port].../database``: several hosts.
_HOST_LIST = re.compile(r"^(?P<head>[^:/]+://(?:[^@/]*@)?)(?P<hosts>[^/?]*,[^/?]*)(?P<tail>.*)$")


def _split_hosts(url: str | sa.URL, hosts: Sequence[str] | None) -> tuple[str | sa.URL, list[str]]:
    """The URL with one host, and every host given (``hosts=`` or a comma list in the URL)."""
    listed: list[str] = []
    if isinstance(url, str):
        match = _HOST_LIST.match(url)
        if match is not None:
            listed = [h.strip() for h in match["hosts"].split(",") if h.strip()]
            url = match["head"] + listed[0] + match["tail"]
    if hosts is not None:
        if listed:
            raise ConfigurationError("give the hosts either in the URL or as hosts=, not both")
        listed = [str(h).strip() for h in hosts]
        if not listed or not all(listed):
            raise ConfigurationError(f"hosts must name at least one host, got {hosts!r}")
    return url, listed


def _make_engine(
    url: str | sa.URL,
    options: dict[str, Any],
    *,
    hosts: Sequence[str] | None = None,
    causal_reads: bool = False,
) -> sa.Engine:
    url, host_list = _split_hosts(url, hosts)
    parsed = sa.make_url(url)
    family = facts_class(parsed.get_backend_name())
    return family.create_engine(parsed, options, host_list, causal_reads=causal_reads)


def connect(
    url_or_engine: str | sa.URL | sa.Engine,
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
    if isinstance(url_or_engine, sa.Engine):
        if engine_options or causal_reads or hosts is not None:
            raise ConfigurationError(
                "engine options, hosts and causal_reads apply only when connect() creates the "
                "engine from a URL"
            )
        engine, owns = url_or_engine, False
    else:
        try:
            engine = _make_engine(
                url_or_engine, dict(engine_options), hosts=hosts, causal_reads=causal_reads
            )
            owns = True
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
    facts_class(engine.dialect).prepare_engine(engine)
    if not event.contains(engine, "before_cursor_execute", before_cursor_execute):
        event.listen(engine, "before_cursor_execute", before_cursor_execute)
    db = Database(name, engine, owns_engine=owns, retries=retries)
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
