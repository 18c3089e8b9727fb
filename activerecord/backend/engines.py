"""Making engines for ``connect()``: the URL's own and its twin serving the other API.

Each backend's dialect class creates and prepares the engine (session setup, failover,
SQLite's recipe); here a URL is split into its hosts, given the twin driver where the other
API is wanted, and an async driver's engine is handed back as the ``AsyncEngine`` it is.

Example::

    >>> twin_driver(sa.make_url("postgresql+psycopg://db/app"))
    'psycopg_async'
    >>> twin_driver(sa.make_url("sqlite://")) is None  # in memory: one engine's connection
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event

from ..errors import ConfigurationError
from ..log import before_cursor_execute
from . import sa_asyncio
from .dialects import driver_hint, facts_class

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "as_async", "guarded", "in_memory", "is_async", "listen", "make_engine", "one_api_only",
    "split_hosts", "twin_driver",
]

#: The driver serving the other API over the same database, by (backend, driver): sync URLs
#: also serve the async API and async URLs the sync one.
_TWINS = {
    ("postgresql", "psycopg"): "psycopg_async",
    ("postgresql", "psycopg_async"): "psycopg",
    ("sqlite", "pysqlite"): "aiosqlite",
    ("sqlite", "aiosqlite"): "pysqlite",
    ("mysql", "pymysql"): "aiomysql",
    ("mysql", "aiomysql"): "pymysql",
    ("mysql", "asyncmy"): "pymysql",
    ("mariadb", "pymysql"): "aiomysql",
    ("mariadb", "aiomysql"): "pymysql",
    ("mariadb", "asyncmy"): "pymysql",
}

#: Database names (``URL.database``) that are in memory, by backend: such a database lives
#: in one engine's connection, so no twin engine can reach it.
_IN_MEMORY = {"sqlite": ("", ":memory:")}

#: ``scheme://[user[:password]@]host[:port],host[:port].../database``: several hosts.
_HOST_LIST = re.compile(r"^(?P<head>[^:/]+://(?:[^@/]*@)?)(?P<hosts>[^/?]*,[^/?]*)(?P<tail>.*)$")


def split_hosts(url: str | sa.URL, hosts: Sequence[str] | None) -> tuple[str | sa.URL, list[str]]:
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


def make_engine(
    url: str | sa.URL,
    options: dict[str, Any],
    *,
    hosts: Sequence[str] | None = None,
    causal_reads: bool = False,
    driver: str | None = None,
) -> sa.Engine | AsyncEngine:
    """The engine for ``url`` (with ``driver``, that driver instead): an ``AsyncEngine`` for
    an async driver, its ``sync_engine`` set up as any engine of the backend."""
    url, host_list = split_hosts(url, hosts)
    parsed = sa.make_url(url)
    if driver is not None:
        parsed = parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}")
    family = facts_class(parsed.get_backend_name())
    engine = family.create_engine(parsed, options, host_list, causal_reads=causal_reads)
    listen(engine)
    if engine.dialect.is_async:
        async_engine: AsyncEngine = sa_asyncio.extension().AsyncEngine(engine)
        return async_engine
    return engine


def is_async(url: sa.URL) -> bool:
    """Whether ``url`` names an async driver."""
    return bool(getattr(url.get_dialect(), "is_async", False))


def listen(engine: sa.Engine) -> None:
    """The listeners every engine the library uses gets (once)."""
    facts_class(engine.dialect).prepare_engine(engine)
    if not event.contains(engine, "before_cursor_execute", before_cursor_execute):
        event.listen(engine, "before_cursor_execute", before_cursor_execute)


def in_memory(url: sa.URL) -> bool:
    """Whether ``url`` names an in-memory database."""
    return (url.database or "") in _IN_MEMORY.get(url.get_backend_name(), ())


def twin_driver(url: sa.URL) -> str | None:
    """The driver that serves the other API (sync or async) over ``url``'s database, or None."""
    if in_memory(url):
        return None
    return _TWINS.get((url.get_backend_name(), url.get_driver_name()))


def guarded(url: str | sa.URL, driver: str | None, build: Callable[[], Any]) -> Any:
    """``build()``, with a bad URL or a missing driver as :class:`ConfigurationError`."""
    try:
        return build()
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigurationError(f"cannot create an engine for {url!r}: {exc}") from exc
    except ImportError as exc:  # the URL names (or defaults to) a driver not installed
        parsed = sa.make_url(url)
        if driver is not None:
            parsed = parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}")
        shown = parsed.render_as_string(hide_password=True)
        hint = driver_hint(url) if driver is None else (
            "install the async drivers: pip install 'activerecord[async]'"
        )
        raise ConfigurationError(
            f"cannot create an engine for {shown!r}: {exc}" + (f"; {hint}" if hint else "")
        ) from exc


def one_api_only(name: str, url: sa.URL, url_is_async: bool, twin: str | None) -> str:
    """What the other API's calls raise when ``url`` has no twin ("" when it has one)."""
    if twin is not None:
        return ""
    shown = url.render_as_string(hide_password=True)
    if in_memory(url):
        other = "a sync" if url_is_async else "an async"
        return (f"database {name!r} serves one API only: an in-memory SQLite database "
                f"({shown}) lives in one engine's connection; use a file database "
                f"(sqlite+aiosqlite:///app.db serves both) for {other} one")
    return f"database {name!r} serves one API only: {shown} has no twin driver"


def as_async(engine: sa.Engine | AsyncEngine) -> AsyncEngine:
    """``engine``, typed as the AsyncEngine it is."""
    assert sa_asyncio.is_async_engine(engine)
    return engine
