"""Batch insert, the insert writer on the chunk loop (:mod:`.plan`): primary keys set back.

A call streams its input chunk by chunk (a generator is never materialised): each chunk is
validated as a whole by a cached ``TypeAdapter(list[Model])`` (:mod:`.prepare`), then written
by the backend's insert strategy (:mod:`activerecord.insert`), which returns the exact
generated keys (:func:`~.rows.write_chunk`).

The whole call is atomic: every chunk runs in one transaction (a savepoint inside an ambient
``Transaction``), so a failure anywhere leaves the database as it was, and the records as
they were (see :class:`~activerecord.model.state.Undo`). With ``validate=True`` every record
is checked; if any fails, the rest are still checked (nothing more is written), the
transaction rolls back and one :class:`~activerecord.errors.BatchValidationError` lists them
all.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Tag(ActiveRecord):
    ...     __table_name__ = "doc_tags"
    ...     id: int | None = None
    ...     name: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Tag.create_table()
    >>> tags = [Tag(name="a"), Tag(name="b")]
    >>> Tag.batch_insert(tags)
    2
    >>> [t.id for t in tags]
    [1, 2]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..arguments import check_records, check_size, is_collection
from ..errors import ArgumentError
from .plan import Plan, ProgressCallback, run
from .rows import write_chunk
from .strategies import InsertStrategy
from .upsert import insert_ignoring

if TYPE_CHECKING:
    from ..model import ActiveRecord
    from ..model.state import Undo

__all__ = ["batch_insert"]


def batch_insert(
    model: type[ActiveRecord],
    records: Iterable[Any],
    *,
    validate: bool = True,
    batch_size: int | None = None,
    progress: bool | ProgressCallback = False,
    from_dicts: bool = False,
    return_records: bool = True,
    on_conflict: str = "error",
    hooks: bool = True,
    dicts: list[dict[str, Any]] | None = None,
) -> tuple[int, list[Any]]:
    """Insert ``records`` (instances, or dicts with ``from_dicts``); see the module docs.

    Returns the row count and, when ``return_records``, the inserted instances in input order.
    ``on_conflict="ignore"`` skips rows whose unique key exists (see :mod:`.upsert`).
    ``hooks=False``: the loaders' bulk path, which runs no batch hooks (Rails' insert_all).
    ``dicts``: the instances' ``__dict__``, read and type-checked by the caller (a graph
    insert, where no hook can swap one before it is written).
    """
    # Arguments first: a wrong call fails before any input is read, empty or not.
    check_size(batch_size)
    what = "dicts" if from_dicts else f"{model.__name__} instances"
    check_records(records, model.__name__, what=what)
    if on_conflict not in ("error", "ignore"):
        raise ArgumentError(f"on_conflict must be 'error' or 'ignore', got {on_conflict!r}")
    if on_conflict != "error":
        return insert_ignoring(
            model, records, validate=validate, batch_size=batch_size, progress=progress,
            from_dicts=from_dicts, return_records=return_records, hooks=hooks,
        )
    info = model.__ar_info__
    # Rows handed back by nobody (dicts in, only the count out) need no keys read back.
    need_keys = not from_dicts or return_records
    # A chunk's rows may stay in an open statement while the next chunk is prepared when the
    # input is a collection: its records are marked persisted only at the end, and a failure
    # puts them all back (a generator's are marked chunk by chunk and forgotten); or when no
    # record comes back at all.
    stream = not need_keys or is_collection(records)

    def write(
        conn: sa.Connection,
        strategy: InsertStrategy,
        chunk: list[Any],
        datas: list[dict[str, Any]],
        offset: int,
        undo: Undo,
    ) -> None:
        write_chunk(conn, strategy, info, datas, offset, undo, need_keys=need_keys)

    plan = Plan.make(
        model, records, context=f"batch insert of {model.__name__}", batch_size=batch_size,
        validate=validate, progress=progress, from_dicts=from_dicts,
        return_records=return_records, stream=stream,
        # Dicts with return_records=False are the raw path (Rails insert_all): no records are
        # built, no hook runs.
        hooks=model._batch_hooks("insert", records) if need_keys and hooks else None,
        dicts=dicts,
    )
    return run(plan, records, write)
