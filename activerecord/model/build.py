"""Records built from rows read: marked persisted, validated only where they must be.

Where each column's values already are what the field's schema would return unchanged, the
records are built as they are (``RecordBuilder``); otherwise pydantic validates them a slice
at a time, with the GC resting over each slice. A row the model refuses raises our
``ValidationError`` naming it by primary key.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Leaf(ActiveRecord):
    ...     __table_name__ = "doc_leaves"
    ...     id: int | None = None
    ...     name: str
    >>> [leaf.name for leaf in records_from_columns(Leaf, ["id", "name"], [(1, 2), ("a", "b")])]
    ['a', 'b']
    >>> records_from_columns(Leaf, ["id", "name"], [(1,), ("a",)])[0].is_new_record
    False
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from ..errors import ValidationError
from ..validation import collector_paused, list_adapter, record_builder
from .state import mark_persisted_batch

if TYPE_CHECKING:
    from .base import ActiveRecord

__all__ = ["READ_SLICE", "records_from_columns", "records_from_rows"]

T = TypeVar("T", bound="ActiveRecord")

#: Rows validated per pydantic call when reading (the GC rests over each slice only).
READ_SLICE = 50_000

_dict_of = operator.attrgetter("__dict__")


def records_from_rows(
    model: type[T], keys: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[T]:
    """Records from rows read (``keys``: their field names); see :func:`records_from_columns`."""
    return records_from_columns(model, keys, list(zip(*rows)) if rows else [() for _ in keys])


def records_from_columns(
    model: type[T], keys: Sequence[str], columns: Sequence[Sequence[Any]]
) -> list[T]:
    """Records from columns of values read (``keys``: their field names), marked persisted."""
    records: list[T] | None = record_builder(model).build(keys, columns)
    if records is None:
        rows = list(zip(*columns))
        adapter = list_adapter(model)
        records = []
        for start in range(0, len(rows), READ_SLICE):
            records.extend(validated_rows(model, adapter, keys, rows[start : start + READ_SLICE]))
    mark_persisted_batch(records, list(map(_dict_of, records)))
    return records


def validated_rows(
    model: type[T], adapter: pydantic.TypeAdapter[Any], keys: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> list[T]:
    """One slice of rows validated by pydantic, the GC paused; a refused row is named."""
    try:
        with collector_paused():
            dicts = list(map(dict, map(zip, repeat(keys), rows)))
            validated: list[T] = adapter.validate_python(dicts)
            return validated
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]["loc"][0] if errors and errors[0]["loc"] else 0
        row = dicts[first] if isinstance(first, int) and first < len(dicts) else {}
        key = tuple(row.get(f) for f in model.__ar_info__.pk_fields)
        where = ".".join(map(str, errors[0]["loc"][1:])) if errors else ""
        raise ValidationError(
            f"{model.__name__} row {key[0] if len(key) == 1 else key!r} read from the "
            f"database does not validate: {where + ': ' if where else ''}"
            f"{errors[0]['msg'] if errors else exc}",
            model=model.__name__, errors=errors,
        ) from exc
