"""What a writer calls around each chunk when the model has hooks: the :class:`ChunkHooks`
interface. The writers ask the model for them (``model._batch_hooks(kind, records)``, None
for a model without hooks) and never import the model layer's implementation
(:class:`activerecord.model.batch_hooks.BatchHooks`), so the write engine points only down.

Example::

    >>> from activerecord import ActiveRecord
    >>> class Plain(ActiveRecord):
    ...     __table_name__ = "doc_hooks_plain"
    ...     id: int | None = None
    >>> Plain._batch_hooks("insert", []) is None
    True
    >>> class Hooked(ActiveRecord):
    ...     __table_name__ = "doc_hooks_hooked"
    ...     id: int | None = None
    ...     def before_save(self) -> None:
    ...         pass
    >>> isinstance(Hooked._batch_hooks("insert", []), ChunkHooks)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["ChunkHooks"]


@runtime_checkable
class ChunkHooks(Protocol):
    """The hook calls of one batch write, per chunk, inside the call's transaction."""

    #: The after hook's arguments past the list, asked after each chunk (upsert: its result).
    extra: Callable[[], tuple[Any, ...]] | None
    #: Insert-or-ignore: the after hooks and after_commit see only the rows inserted.
    only_kept: bool

    def before(self, chunk: list[Any], *args: Any) -> None:
        """Remember the chunk's records' values, then run the before hook on the chunk."""

    def given(self, rows: list[Any], records: list[Any]) -> list[Any]:
        """The keys each dict row gives, with the fields the before hook changed added."""

    def after(self, chunk: list[Any], *args: Any, kept: Any = None) -> None:
        """Run the after hook on the chunk's records (``kept``: the positions inserted)."""

    def failed(self) -> None:
        """The call failed: give every record back the values it had before its hook."""

    def succeeded(self) -> None:
        """The call wrote its rows: forget the remembered values."""
