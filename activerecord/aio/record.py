"""The async twins of the model class and record methods (``await Model.afind(1)``).

Each takes the arguments of its sync twin, returns what it returns and raises what it
raises; it runs that very method in the greenlet bridge, so the event loop keeps running
while the database works.

Example::

    >>> import asyncio, activerecord
    >>> from activerecord import ActiveRecord
    >>> class Bird(ActiveRecord):
    ...     __table_name__ = "doc_async_birds"
    ...     id: int | None = None
    ...     name: str
    >>> _ = activerecord.connect("sqlite+aiosqlite://")
    >>> async def main():
    ...     await Bird.acreate_table()
    ...     robin = await Bird.acreate(name="robin")
    ...     await Bird.abatch_insert([Bird(name="wren"), Bird(name="tit")])
    ...     return robin.id, [b.name for b in await Bird.afind_all()]
    >>> asyncio.run(main())
    (1, ['robin', 'wren', 'tit'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..backend.bridge import spawn

if TYPE_CHECKING:
    from ..model import ActiveRecord
    from ..model.softdelete import SoftDeleteMixin
    from ..write.upsert import UpsertResult

__all__ = ["AsyncRecordMixin", "AsyncSoftDeleteMixin"]

R = TypeVar("R", bound="AsyncRecordMixin")


def _model(cls: type[Any]) -> type[ActiveRecord]:
    return cast("type[ActiveRecord]", cls)


def _record(self: Any) -> ActiveRecord:
    return cast("ActiveRecord", self)


class AsyncRecordMixin:
    """The ``a`` methods of every model (see the sync twin of each for its contract)."""

    __slots__ = ()

    # -- tables ----------------------------------------------------------------------------
    @classmethod
    async def acreate_table(cls, *, checkfirst: bool = True) -> None:
        """Async :meth:`~activerecord.ActiveRecord.create_table`."""
        await spawn(_model(cls).create_table, checkfirst=checkfirst)

    @classmethod
    async def adrop_table(cls, *, checkfirst: bool = True) -> None:
        """Async :meth:`~activerecord.ActiveRecord.drop_table`."""
        await spawn(_model(cls).drop_table, checkfirst=checkfirst)

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    async def acreate(cls: type[R], **values: Any) -> R:
        """Async :meth:`~activerecord.ActiveRecord.create`."""
        return cast(R, await spawn(_model(cls).create, **values))

    @classmethod
    async def afind(cls: type[R], pk: Any) -> R:
        """Async :meth:`~activerecord.ActiveRecord.find`."""
        return cast(R, await spawn(_model(cls).find, pk))

    @classmethod
    async def afind_one(cls: type[R], conditions: Any, *params: Any) -> R | None:
        """Async :meth:`~activerecord.ActiveRecord.find_one`."""
        return cast("R | None", await spawn(_model(cls).find_one, conditions, *params))

    @classmethod
    async def afind_one_or_fail(cls: type[R], conditions: Any, *params: Any) -> R:
        """Async :meth:`~activerecord.ActiveRecord.find_one_or_fail`."""
        return cast(R, await spawn(_model(cls).find_one_or_fail, conditions, *params))

    @classmethod
    async def afind_all(cls: type[R], conditions: Any = None, *params: Any) -> list[R]:
        """Async :meth:`~activerecord.ActiveRecord.find_all`."""
        return cast("list[R]", await spawn(_model(cls).find_all, conditions, *params))

    # -- batches ---------------------------------------------------------------------------
    @classmethod
    async def abatch_insert(cls, records: Any, **options: Any) -> int:
        """Async :meth:`~activerecord.ActiveRecord.batch_insert` (same options)."""
        return await spawn(_model(cls).batch_insert, records, **options)

    @classmethod
    async def abatch_insert_from_dicts(cls: type[R], rows: Any, **options: Any) -> list[R] | int:
        """Async :meth:`~activerecord.ActiveRecord.batch_insert_from_dicts` (same options)."""
        return cast("list[R] | int", await spawn(
            _model(cls).batch_insert_from_dicts, rows, **options
        ))

    @classmethod
    async def abatch_upsert(cls, records: Any, **options: Any) -> UpsertResult:
        """Async :meth:`~activerecord.ActiveRecord.batch_upsert` (same options)."""
        return await spawn(_model(cls).batch_upsert, records, **options)

    @classmethod
    async def abatch_update(cls, records: Any, fields: Any = None, **options: Any) -> int:
        """Async :meth:`~activerecord.ActiveRecord.batch_update` (same options)."""
        return await spawn(_model(cls).batch_update, records, fields, **options)

    @classmethod
    async def aupdate_all(
        cls, values: Any, conditions: Any = None, *params: Any
    ) -> int:
        """Async :meth:`~activerecord.ActiveRecord.update_all`."""
        return await spawn(_model(cls).update_all, values, conditions, *params)

    @classmethod
    async def adelete_all(cls, conditions: Any = None, *params: Any) -> int:
        """Async :meth:`~activerecord.ActiveRecord.delete_all`."""
        return await spawn(_model(cls).delete_all, conditions, *params)

    # -- data loading (files are read in the bridge: the loop waits on the disk) ----------
    @classmethod
    async def ainsert_dataframe(cls, df: Any, **options: Any) -> Any:
        """Async :meth:`~activerecord.ActiveRecord.insert_dataframe` (same options)."""
        return await spawn(_model(cls).insert_dataframe, df, **options)

    @classmethod
    async def aload_csv(cls, source: Any, **options: Any) -> int:
        """Async :meth:`~activerecord.ActiveRecord.load_csv` (same options)."""
        return await spawn(_model(cls).load_csv, source, **options)

    @classmethod
    async def aload_jsonl(cls, source: Any, **options: Any) -> int:
        """Async :meth:`~activerecord.ActiveRecord.load_jsonl` (same options)."""
        return await spawn(_model(cls).load_jsonl, source, **options)

    # -- one record ------------------------------------------------------------------------
    async def asave(self) -> bool:
        """Async :meth:`~activerecord.ActiveRecord.save`."""
        return await spawn(_record(self).save)

    async def adelete(self) -> bool:
        """Async :meth:`~activerecord.ActiveRecord.delete` (a soft delete where the model
        has one)."""
        return await spawn(_record(self).delete)

    async def arefresh(self: R) -> R:
        """Async :meth:`~activerecord.ActiveRecord.refresh`."""
        return cast(R, await spawn(_record(self).refresh))


class AsyncSoftDeleteMixin:
    """The ``a`` methods soft-delete models add (see :class:`~activerecord.SoftDeleteMixin`)."""

    __slots__ = ()

    async def ahard_delete(self) -> bool:
        """Async :meth:`~activerecord.SoftDeleteMixin.hard_delete`."""
        return await spawn(cast("SoftDeleteMixin", self).hard_delete)

    async def arestore(self) -> bool:
        """Async :meth:`~activerecord.SoftDeleteMixin.restore`."""
        return await spawn(cast("SoftDeleteMixin", self).restore)
