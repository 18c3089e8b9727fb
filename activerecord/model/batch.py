"""The model's batch entry points: what ``Model.batch_insert``, ``batch_insert_from_dicts``,
``batch_upsert`` and ``batch_update`` do around the writers in :mod:`activerecord.write`
(retries, ``commit_every`` slices, graphs of related records, DataFrames, batch hooks).

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Tally(ActiveRecord):
    ...     __table_name__ = "doc_tallies"
    ...     id: int | None = None
    ...     n: int
    >>> _ = activerecord.connect("sqlite://")
    >>> Tally.create_table()
    >>> insert(Tally, [Tally(n=1), Tally(n=2)], validate=True, batch_size=None,
    ...        progress=False, on_conflict="error", commit_every=None, include=None)
    2
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, TypeVar

from ..arguments import check_records, check_size, is_collection
from ..associations.graph import graph_from_dicts, insert_graph
from ..backend import bridge
from ..backend.transaction import Transaction, retrying
from ..errors import ArgumentError
from ..io.dataframes import insert_dataframe, is_dataframe
from ..write.insert import batch_insert
from ..write.slices import in_slices
from ..write.update import batch_update, fields_to_write
from ..write.upsert import UpsertResult, batch_upsert
from .batch_hooks import batch_hooks

if TYPE_CHECKING:
    from .base import ActiveRecord

__all__ = ["insert", "insert_dicts", "update", "upsert"]

T = TypeVar("T", bound="ActiveRecord")


def insert(
    model: type[ActiveRecord], records: Iterable[ActiveRecord], *, validate: bool,
    batch_size: int | None, progress: Any, on_conflict: str, commit_every: int | None,
    include: Sequence[str] | None,
) -> int:
    """``Model.batch_insert``: a graph with ``include``, slices with ``commit_every``, else
    one retried call of the insert writer."""
    if include:
        _graph_options(on_conflict, commit_every)
        graph = list(records)  # gone over again if the call is retried
        return retrying(model.database(), lambda: insert_graph(
            model, graph, include, validate=validate, batch_size=batch_size, progress=progress,
        ))

    def write(records: Iterable[Any]) -> tuple[int, list[Any]]:
        return batch_insert(
            model, records, validate=validate, batch_size=batch_size, progress=progress,
            return_records=False, on_conflict=on_conflict,
        )

    if commit_every is not None:
        return in_slices(model, records, commit_every, write)[0]
    count, _ = retrying(
        model.database(), lambda: write(records), replayable=is_collection(records)
    )
    return count


def insert_dicts(
    model: type[T], rows: Iterable[Mapping[str, Any]], *, validate: bool,
    batch_size: int | None, progress: Any, return_records: bool, on_conflict: str,
    commit_every: int | None, include: Sequence[str] | None,
) -> list[T] | int:
    """``Model.batch_insert_from_dicts``: as :func:`insert`, and a DataFrame goes to the
    DataFrame loader (NaN → NULL, numpy scalars → Python values)."""
    if include:
        _graph_options(on_conflict, commit_every)
        built: list[T] = graph_from_dicts(model, rows, include)  # type: ignore[assignment]
        count = retrying(model.database(), lambda: insert_graph(
            model, built, include, validate=False, batch_size=batch_size, progress=progress
        ))
        return built if return_records else count

    if is_dataframe(rows):
        if on_conflict != "error":
            raise ArgumentError(
                "on_conflict is not supported for a DataFrame; use "
                "insert_dataframe(df, upsert=[key]) or batch_upsert(df.to_dict('records'))"
            )
        if commit_every is not None:
            raise ArgumentError("commit_every is not supported for a DataFrame")
        loaded: list[T] | int = insert_dataframe(
            model, rows, validate=validate, batch_size=batch_size, progress=progress,
            return_records=return_records,
        )
        return loaded

    def write(rows: Iterable[Any]) -> tuple[int, list[Any]]:
        return batch_insert(
            model, rows, validate=validate, batch_size=batch_size, progress=progress,
            from_dicts=True, return_records=return_records, on_conflict=on_conflict,
        )

    if commit_every is not None:
        count, records = in_slices(model, rows, commit_every, write)
    else:
        count, records = retrying(
            model.database(), lambda: write(rows), replayable=is_collection(rows)
        )
    return records if return_records else int(count)


def upsert(model: type[ActiveRecord], records: Iterable[Any], **options: Any) -> UpsertResult:
    """``Model.batch_upsert``: the upsert writer, retried when the input can be gone over
    again."""
    return retrying(
        model.database(),
        lambda: batch_upsert(model, records, **options),
        replayable=is_collection(records),
    )


def update(
    model: type[ActiveRecord], records: Iterable[ActiveRecord], fields: Iterable[str] | None,
    *, batch_size: int | None, touch: bool, validate: bool | None,
) -> int:
    """``Model.batch_update``: the batch-update writer, with the model's batch hooks around
    it when it has any."""
    hooks = batch_hooks(model, "update", records)
    if hooks is None:
        return retrying(
            model.database(),
            lambda: batch_update(
                model, records, fields, batch_size=batch_size, touch=touch, validate=validate
            ),
            replayable=is_collection(records) and (fields is None or is_collection(fields)),
        )
    # The hooks get the list chunk by chunk (as batch_insert's do): every chunk's before
    # hook, then one write of the whole list (which batch_update holds anyway, and whose
    # errors name records by their position in it), then every chunk's after hook, all in
    # one transaction, so an error in an after hook undoes the write.
    check_records(records, model.__name__, what=f"{model.__name__} instances")
    items = list(records)
    if not all(map(isinstance, items, repeat(model))):  # refused by batch_update, unhooked
        return batch_update(model, items, fields, batch_size=batch_size, touch=touch)
    names = None if fields is None else [fields] if isinstance(fields, str) else list(fields)
    check_size(batch_size)
    size = batch_size or bridge.chunk_rows(
        model.database().facts.chunk_rows(len(model.__ar_info__.fields))
    )
    parts = [items[start:start + size] for start in range(0, len(items), size)]
    hooked = hooks

    def run() -> int:
        try:
            with Transaction(model.database()):
                for part in parts:
                    hooked.before(part, names)
                written = fields_to_write(model, items, names)
                count = batch_update(
                    model, items, names, batch_size=batch_size, touch=touch, validate=validate
                )
                for part in parts:
                    hooked.after(part, written)
        except BaseException:
            hooked.failed()
            raise
        hooked.succeeded()
        return count

    return retrying(model.database(), run)


def _graph_options(on_conflict: str, commit_every: int | None) -> None:
    if on_conflict != "error" or commit_every is not None:
        raise ArgumentError(
            "include= inserts a graph of new records in one transaction: on_conflict and "
            "commit_every are not supported with it"
        )
