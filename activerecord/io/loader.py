"""The shared core of every loader: header mapping, progress, and errors that name the row.

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
    >>> map_names(Pet, ["Name", "id"], {"Name": "name"}, source="pets.csv")
    ['name', 'id']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import (
    BatchValidationError,
    DatabaseError,
    FileFormatError,
    LoadValidationError,
    PartialWriteError,
    QueryError,
    UnknownColumnError,
    ValidationError,
)
from .progress import Progress, progress_callback

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["check_required", "field_of", "load_rows", "map_names"]


def map_names(
    model: type[ActiveRecord],
    names: Sequence[Any],
    columns: Mapping[str, str | None] | None,
    *,
    source: str,
) -> list[str | None]:
    """The field each source column goes to (None: skipped), checked against the table.

    ``columns`` renames source columns (``{"E-mail": "email"}``) or drops them (``None``);
    other names must be a field or column name of the model (UnknownColumnError otherwise).
    """
    out: list[str | None] = []
    seen: dict[str, Any] = {}
    for name in names:
        key = str(name).strip() if isinstance(name, str) else name
        if columns is not None and key in columns:
            target = columns[key]
            if target is None:
                out.append(None)
                continue
        else:
            target = key if isinstance(key, str) else str(key)
        try:
            fname = field_of(model, target, source)
        except UnknownColumnError as error:
            if columns is None or key not in columns:  # say how to load or skip it
                error.args = (
                    f"{error.args[0]}; map it to a field with columns={{{key!r}: 'field'}} "
                    f"or drop it with columns={{{key!r}: None}}",
                )
            raise
        if fname in seen:
            raise FileFormatError(
                f"columns {seen[fname]!r} and {name!r} both load field {fname!r}", path=source
            )
        seen[fname] = name
        out.append(fname)
    return out


def check_required(
    model: type[ActiveRecord], fields: Sequence[str | None], *, source: str
) -> None:
    """Refuse, once for the whole source, a header that lacks a required field.

    Without this every row would fail on its own (``island: Field required ... and 324
    more``): the column is what is missing, so the error names it.
    """
    info = model.__ar_info__
    given = set(fields)
    missing = [
        fname for fname, finfo in info.field_infos.items()
        if finfo.is_required() and fname not in given
    ]
    if not missing:
        return
    names = ", ".join(repr(info.columns[f].name) if f in info.columns else repr(f) for f in missing)
    plural = "s" if len(missing) > 1 else ""
    example = f"columns={{'<column>': {missing[0]!r}}}"
    raise ValidationError(
        f"{info.model_name}: {source} has no column for the required field{plural} {names}; "
        f"nothing was written (add it, or map a column to it with {example})",
        model=info.model_name,
        errors=[
            {"loc": (fname,), "msg": "Field required", "type": "missing", "input": None}
            for fname in missing
        ],
    )


def field_of(model: type[ActiveRecord], name: str, source: str) -> str:
    """The field loading a source column: by the table's column name, else by field name.

    An exact column name wins: on a reflected table with columns ``"first name"`` and
    ``first_name``, the header ``first_name`` is the second column, whatever the fields are
    called.
    """
    info = model.__ar_info__
    for fname, column in info.columns.items():
        if column.name == name:
            return fname
    if name in info.columns:
        return name
    error = UnknownColumnError(name, info.model_name, info.fields)
    error.args = (f"{source}: {error.args[0]}",)
    raise error


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
    ``on_upsert`` receives an upsert's :class:`~activerecord.upsert.UpsertResult` (of each
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
            from .upsert import upsert_rows

            return upsert_rows(
                model, piece, upsert, validate=validate, batch_size=batch_size, progress=step,
                on_result=on_upsert,
            ), []
        from ..backend.transaction import retrying
        from ..batch import batch_insert, is_collection

        # A bulk load, like Rails' insert_all: no hooks, even when the records come back.
        return retrying(model.database(), lambda: batch_insert(
            model, piece, validate=validate, batch_size=batch_size, progress=step or False,
            from_dicts=True, return_records=return_records, hooks=False,
        ), replayable=is_collection(piece))

    try:
        if commit_every is not None:
            from ..batch import in_slices

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
        if exc.record_index is not None and exc.args:
            text, named = str(exc.args[0]), f"record {exc.record_index}"
            where = f"{named} ({unit} {locate(exc.record_index)} of {source})"
            exc.args = (
                text.replace(named + ":", where + ":", 1) if named + ":" in text
                else f"{text} ({where})",
            )
        raise
    finally:
        close()
