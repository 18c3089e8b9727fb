"""Raw SQL for the async API: ``conn = await aget_connection()``.

Example::

    >>> import asyncio, activerecord
    >>> _ = activerecord.connect("sqlite+aiosqlite://")
    >>> async def main():
    ...     async with await aget_connection() as conn:
    ...         cursor = await conn.driver_connection.execute("SELECT 1")
    ...         return await cursor.fetchone()
    >>> asyncio.run(main())
    (1,)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..errors import ConfigurationError
from . import bridge
from .dialects import DialectFacts
from .raw_checkout import checkout_raw, release

__all__ = ["AsyncRawConnection", "aget_connection"]


class AsyncRawConnection:
    """The async driver's own connection, handed out by :func:`aget_connection`.

    ``driver_connection`` is the driver's object (psycopg ``AsyncConnection``, aiosqlite
    ``Connection``, aiomysql ``Connection``); other attributes are read from it. Inside a
    ``Transaction`` it is that transaction's connection: ``commit()`` and ``close()`` do
    nothing there and ``rollback()`` raises :class:`ConfigurationError`. Outside one it is a
    pooled connection in autocommit mode that goes back to the pool on ``await close()`` or
    on leaving ``async with`` (the same rules as :class:`~activerecord.backend.RawConnection`).
    """

    def __init__(self, dbapi: Any, owner: sa.Connection | None, facts: DialectFacts) -> None:
        self._dbapi = dbapi
        self._owner = owner
        self._facts = facts

    @property
    def driver_connection(self) -> Any:
        """The async driver's own connection object."""
        return bridge.driver_of(self._dbapi)

    @property
    def in_transaction(self) -> bool:
        """True when this is the connection of an ambient ``Transaction``."""
        return self._owner is None

    @property
    def closed(self) -> bool:
        """True once an outside-transaction connection went back to the pool."""
        return self._owner is not None and self._owner.closed

    async def commit(self) -> None:
        """Commit; in autocommit mode and inside a ``Transaction`` there is nothing to do."""
        if self._owner is not None and not self.closed:
            await bridge.spawn(self._dbapi.commit)

    async def rollback(self) -> None:
        """Roll back; inside a ``Transaction`` raise an exception out of the block instead."""
        if self._owner is None:
            raise ConfigurationError(
                "this connection belongs to a Transaction: raise an exception out of the "
                "async with block to roll back"
            )
        if not self.closed:
            await bridge.spawn(self._dbapi.rollback)

    async def close(self) -> None:
        """Return the connection to the pool (does nothing inside a ``Transaction``)."""
        if self._owner is not None and not self._owner.closed:
            await bridge.spawn(release, self._owner, self._dbapi, self._facts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.driver_connection, name)

    async def __aenter__(self) -> AsyncRawConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _get(target: Any) -> AsyncRawConnection:
    return AsyncRawConnection(*checkout_raw(target))


async def aget_connection(target: Any = None) -> AsyncRawConnection:
    """The async twin of :func:`~activerecord.backend.get_connection`: the ambient
    ``Transaction``'s driver connection, or a pooled one in autocommit mode."""
    return await bridge.spawn(_get, target)
