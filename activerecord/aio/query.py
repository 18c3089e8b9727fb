"""The async twins of the query terminals (``await Model.query().where(...).aall()``).

The ``Query`` stays the same immutable object: build it as always, then await a terminal.
``abatches`` / ``aeach`` page by primary key as ``batches`` / ``each`` do, one awaited query
per batch.

Example::

    >>> import asyncio, activerecord
    >>> from activerecord import ActiveRecord
    >>> class Fish(ActiveRecord):
    ...     __table_name__ = "doc_async_fish"
    ...     id: int | None = None
    ...     n: int = 0
    >>> _ = activerecord.connect("sqlite+aiosqlite://")
    >>> async def main():
    ...     await Fish.acreate_table()
    ...     await Fish.abatch_insert([Fish(n=n) for n in range(5)])
    ...     query = Fish.query().where("n >= ?", 1)
    ...     sizes = [len(batch) async for batch in query.abatches(3)]
    ...     return await query.acount(), await query.asum("n"), sizes
    >>> asyncio.run(main())
    (4, 10, [3, 1])
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from ..backend.bridge import spawn

if TYPE_CHECKING:
    from ..model import ActiveRecord
    from ..query.query import Query

__all__ = ["AsyncQueryMixin"]

T = TypeVar("T", bound="ActiveRecord")

_DONE = object()


class AsyncQueryMixin(Generic[T]):
    """The ``a`` terminals of :class:`~activerecord.Query` (see each sync twin's contract)."""

    __slots__ = ()

    def _sync(self) -> Query[T]:
        return cast("Query[T]", self)

    async def aall(self) -> list[T]:
        """Async :meth:`~activerecord.Query.all`."""
        return await spawn(self._sync().all)

    async def afirst(self) -> T | None:
        """Async :meth:`~activerecord.Query.first`."""
        return await spawn(self._sync().first)

    async def afind(self, key: Any) -> T:
        """Async :meth:`~activerecord.Query.find`."""
        return await spawn(self._sync().find, key)

    async def aone(self) -> T:
        """Async :meth:`~activerecord.Query.one`."""
        return await spawn(self._sync().one)

    async def acount(self) -> int:
        """Async :meth:`~activerecord.Query.count`."""
        return await spawn(self._sync().count)

    async def aexists(self) -> bool:
        """Async :meth:`~activerecord.Query.exists`."""
        return await spawn(self._sync().exists)

    async def asum(self, name: str) -> Any:
        """Async :meth:`~activerecord.Query.sum`."""
        return await spawn(self._sync().sum, name)

    async def aavg(self, name: str) -> Any:
        """Async :meth:`~activerecord.Query.avg`."""
        return await spawn(self._sync().avg, name)

    async def amin(self, name: str) -> Any:
        """Async :meth:`~activerecord.Query.min`."""
        return await spawn(self._sync().min, name)

    async def amax(self, name: str) -> Any:
        """Async :meth:`~activerecord.Query.max`."""
        return await spawn(self._sync().max, name)

    async def aupdate(
        self, values: Mapping[str, Any], *, all_rows: bool = False, touch: bool = True
    ) -> int:
        """Async :meth:`~activerecord.Query.update`."""
        return await spawn(self._sync().update, values, all_rows=all_rows, touch=touch)

    async def adelete(self, *, all_rows: bool = False) -> int:
        """Async :meth:`~activerecord.Query.delete`."""
        return await spawn(self._sync().delete, all_rows=all_rows)

    async def ahard_delete(self, *, all_rows: bool = False) -> int:
        """Async :meth:`~activerecord.Query.hard_delete`."""
        return await spawn(self._sync().hard_delete, all_rows=all_rows)

    async def arestore(self, *, all_rows: bool = False) -> int:
        """Async :meth:`~activerecord.Query.restore`."""
        return await spawn(self._sync().restore, all_rows=all_rows)

    async def ato_dicts(self, *, chunk_size: int = 10_000) -> list[dict[str, Any]]:
        """Async :meth:`~activerecord.Query.to_dicts`."""
        return await spawn(self._sync().to_dicts, chunk_size=chunk_size)

    async def ato_pandas(self, *, chunk_size: int = 10_000) -> Any:
        """Async :meth:`~activerecord.Query.to_pandas`."""
        return await spawn(self._sync().to_pandas, chunk_size=chunk_size)

    async def ato_polars(self, *, chunk_size: int = 10_000) -> Any:
        """Async :meth:`~activerecord.Query.to_polars`."""
        return await spawn(self._sync().to_polars, chunk_size=chunk_size)

    async def abatches(self, size: int = 1000) -> AsyncIterator[list[T]]:
        """Async :meth:`~activerecord.Query.batches`: ``async for batch in q.abatches(n)``."""
        batches = self._sync().batches(size)
        while True:
            batch = await spawn(next, batches, _DONE)
            if batch is _DONE:
                return
            yield cast("list[T]", batch)

    async def aeach(self, size: int = 1000) -> AsyncIterator[T]:
        """Async :meth:`~activerecord.Query.each`: ``async for record in q.aeach(n)``."""
        async for batch in self.abatches(size):
            for record in batch:
                yield record
