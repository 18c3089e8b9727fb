"""Reusable model behaviour: timestamps and optimistic locking, kept right in single and batch
writes.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord, TimestampMixin
    >>> class Event(TimestampMixin, ActiveRecord):
    ...     __table_name__ = "doc_events"
    ...     id: int | None = None
    ...     name: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Event.create_table()
    >>> Event.create(name="launch").created_at is not None
    True
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from ..errors import ArgumentError
from .base import ActiveRecord
from .info import now

__all__ = ["OptimisticLockMixin", "TimestampMixin", "now", "optimistic_lock"]


class TimestampMixin(ActiveRecord):
    """Adds ``created_at`` and ``updated_at``, set by inserts (single and batch) and updates
    (instance saves and query updates), unless the caller sets them."""

    __abstract__: ClassVar[bool] = True

    # Read once into the model's ModelInfo (insert_stamps, update_stamps).
    __ar_insert_stamps__: ClassVar[tuple[str, ...]] = ("created_at", "updated_at")
    __ar_update_stamps__: ClassVar[tuple[str, ...]] = ("updated_at",)

    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class _OptimisticLock(ActiveRecord):
    """Checks and bumps the version field named by ``__version_field__`` on every update."""

    __abstract__: ClassVar[bool] = True
    #: Read once into the model's ModelInfo (``lock_field``).
    __version_field__: ClassVar[str] = "version"


class OptimisticLockMixin(_OptimisticLock):
    """Adds ``version: int``; every update checks it and adds one.

    ``save()`` raises :class:`~activerecord.errors.StaleRecordError` when the row's version is
    no longer the one the record was read with; ``batch_update`` does the same for every record
    of the batch and then writes nothing; ``Query.update`` adds one to the version of every row
    it changes. The instance ``delete()`` (and ``hard_delete()``) only removes the row at the
    version it was read with and raises ``StaleRecordError`` otherwise (the row stays; a row
    already gone returns False); with :class:`~activerecord.SoftDeleteMixin` the soft delete and
    ``restore()`` check the version too and add one to it. For another field name use
    :func:`optimistic_lock`.

    >>> import activerecord
    >>> from activerecord import ActiveRecord, OptimisticLockMixin, StaleRecordError
    >>> class Doc(OptimisticLockMixin, ActiveRecord):
    ...     __table_name__ = "doc_docs"
    ...     id: int | None = None
    ...     body: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Doc.create_table()
    >>> mine = Doc.create(body="a")
    >>> theirs = Doc.find(mine.id)
    >>> theirs.body = "b"; theirs.save(); theirs.version
    True
    1
    >>> mine.body = "c"
    >>> mine.save()
    Traceback (most recent call last):
    ...
    activerecord.errors.StaleRecordError: Doc 1 was changed or deleted since ... at version 0
    >>> mine.delete()
    Traceback (most recent call last):
    ...
    activerecord.errors.StaleRecordError: Doc 1 has changed since it was read at version 0: ...
    >>> mine.refresh().delete()
    True
    """

    __abstract__: ClassVar[bool] = True

    version: int = 0


def optimistic_lock(field: str = "version") -> type[ActiveRecord]:
    """A mixin like :class:`OptimisticLockMixin` whose version field is named ``field``.

    >>> from activerecord import ActiveRecord, optimistic_lock
    >>> class Page(optimistic_lock("lock_version"), ActiveRecord):
    ...     __table_name__ = "doc_pages"
    ...     id: int | None = None
    >>> Page.__ar_info__.fields
    ('lock_version', 'id')
    """
    if not field.isidentifier() or field.startswith("_"):
        raise ArgumentError(f"optimistic_lock() needs a public field name, got {field!r}")
    namespace = {
        "__module__": __name__,
        "__qualname__": f"OptimisticLock_{field}",
        "__annotations__": {field: int},
        field: 0,
        "__abstract__": True,
        "__version_field__": field,
    }
    return type(f"OptimisticLock_{field}", (_OptimisticLock,), namespace)
