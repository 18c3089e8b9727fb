"""Reusable model behaviour: timestamps kept right in single and batch writes.

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
from typing import Any, ClassVar

from .model import ActiveRecord

__all__ = ["TimestampMixin", "now"]


def now() -> dt.datetime:
    """The current time as the library stores it: naive local time, microsecond precision."""
    return dt.datetime.now()


class TimestampMixin(ActiveRecord):
    """Adds ``created_at`` and ``updated_at``, set by inserts (single and batch) and updates
    (instance saves and query updates), unless the caller sets them."""

    __abstract__: ClassVar[bool] = True

    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @classmethod
    def _insert_defaults(cls) -> dict[str, Any]:
        stamp = now()
        return {**super()._insert_defaults(), "created_at": stamp, "updated_at": stamp}

    @classmethod
    def _update_defaults(cls) -> dict[str, Any]:
        return {**super()._update_defaults(), "updated_at": now()}
