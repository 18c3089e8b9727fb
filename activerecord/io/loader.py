"""The shared core of every loader: progress, the write, and errors that name the row.

A loader turns its source (a DataFrame, a CSV or JSON Lines file) into dicts keyed by field
name and hands them, lazily, to ``Model.batch_insert_from_dicts`` (or to the upsert in
:mod:`activerecord.io.upsert`). When validation fails, the record indexes of the
:class:`~activerecord.errors.BatchValidationError` are mapped back to DataFrame row labels or
file line numbers in a :class:`~activerecord.errors.LoadValidationError`.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Pet(ActiveRecord):
    ...     __table_name__ = "doc_loader_pets"
    ...     id: int | None = None
    ...     name: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Pet.create_table()
    >>> load_rows(Pet, iter([{"name": "Rex"}]), unit="row", locate=lambda i: i + 1,
    ...           source="pets")
    1
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..arguments import is_collection
from ..backend.transaction import retrying
from ..errors import (
    BatchValidationError,
    DatabaseError,
    LoadValidationError,
    PartialWriteError,
    QueryError,
    add_context,
)
from ..write.insert import batch_insert
from ..write.slices import in_slices
from .progress import Progress, progress_callback
from .upsert import upsert_rows

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["load_rows"]


def load_rows(
    model: type[ActiveRecord],
    rows: Iterable[dict[str, Any]],
    *,
    locate: Callable[[int], Any],
    unit: str,
    source: str,
    total: int | None = None,
    validate: bool = True,
    batch_size: int | None = None,
    progress: Progress = False,
    upsert: Sequence[str] | None = None,
    return_records: bool = False,
    on_upsert: Callable[[Any], Any] | None = None,
    commit_every: int | None = None,
) -> Any:
    """Insert (or upsert on the ``upsert`` key) dict rows; map errors to ``locate(index)``.

    Returns the number of rows, or the inserted records with ``return_records``;
    ``on_upsert`` receives an upsert's :class:`~activerecord.write.upsert.UpsertResult` (of each
    slice, with ``commit_every``). ``commit_every=N``: commit every N rows (a
    :class:`PartialWriteError` names the line or row to resume at).
    """
    if upsert and return_records:
        raise QueryError("return_records is not supported with upsert")
    # The table, not the class: a model built on a reflected table has a made-up name.
    callback, close = progress_callback(
        progress, total=total, desc=f"load {model.__ar_info__.table.name}"
    )

    def write(piece: Iterable[dict[str, Any]], done: int = 0) -> tuple[int, list[Any]]:
        step = callback
        if callback is not None and done:
            step = lambda n: callback(done + n)  # noqa: E731 - rows done over the whole load
        if upsert:
            return upsert_rows(
                model, piece, upsert, validate=validate, batch_size=batch_size, progress=step,
                on_result=on_upsert,
            ), []
        # A bulk load, like Rails' insert_all: no hooks, even when the records come back.
        return retrying(model.database(), lambda: batch_insert(
            model, piece, validate=validate, batch_size=batch_size, progress=step or False,
            from_dicts=True, return_records=return_records, hooks=False,
        ), replayable=is_collection(piece))

    try:
        if commit_every is not None:
            done = [0]

            def write_slice(piece: list[Any]) -> tuple[int, list[Any]]:
                result = write(piece, done[0])
                done[0] += len(piece)
                return result

            try:
                count, records = in_slices(model, rows, commit_every, write_slice)
            except PartialWriteError as exc:
                where = locate(exc.resume_at)
                exc.resume_line = where if unit == "line" else None
                exc.args = (f"{exc.args[0]} (resume at {unit} {where} of {source})",)
                raise
            return records if return_records else count
        count, records = write(rows)
        return records if return_records else count
    except LoadValidationError:
        raise
    except BatchValidationError as exc:
        locations = {index: locate(index) for index in exc.failures}
        raise LoadValidationError(
            model.__name__, exc.failures, locations, unit=unit, source=source
        ) from None
    except DatabaseError as exc:
        if exc.record is not None:  # str() renders "record N (line L of source)"
            add_context(exc, row=locate(exc.record), unit=unit, source=source)
        raise
    finally:
        close()
