"""A stored value the column's type cannot read, met while rows are read back for a write
(an upsert's lookup of the rows holding its keys): which row and field, to be named.

The query read path names such a value the same way (``query/rows.py``); this one serves
the write engine, below the query layer.

Example::

    >>> def read(value):
    ...     raise ValueError(f"{value!r} is not a boolean")
    >>> try:
    ...     processed([("a", 7, 2)], [None, None, read])
    ... except Unreadable as found:
    ...     print(found.row, found.index, found.reason)
    ('a', 7, 2) 2 2 is not a boolean
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import pydantic

from ..errors import ValidationError

if TYPE_CHECKING:
    from ..model import ActiveRecord
    from ..model.info import ModelInfo

__all__ = ["Unreadable", "give_stored", "processed"]


def processed(
    rows: Sequence[Sequence[Any]], procs: Sequence[Callable[[Any], Any] | None]
) -> list[tuple[Any, ...]]:
    """Each row's values through their column's result processor (None: as read); a value
    one cannot read raises :class:`Unreadable` naming its row and position. Column by
    column: only the columns with a processor are walked value by value.

    >>> processed([(1, "2"), (3, None)], [None, int])
    [(1, 2), (3, None)]
    """
    if not rows:
        return []
    try:
        columns: list[Sequence[Any]] = list(zip(*rows))
        for j, proc in enumerate(procs[:len(columns)]):
            if proc is not None:
                columns[j] = [v if v is None else proc(v) for v in columns[j]]
        return list(zip(*columns))
    except (ValueError, LookupError, TypeError) as exc:
        raise Unreadable.find(rows, procs) from exc


class Unreadable(Exception):
    """A stored value a selected column's type cannot read (a stored string that is no
    member of the Enum, ``'yes'`` in a boolean column): which row and column, to be named."""

    def __init__(self, row: Sequence[Any], index: int, reason: str) -> None:
        super().__init__(reason)
        self.row, self.index, self.reason = row, index, reason

    @classmethod
    def find(
        cls, rows: Sequence[Sequence[Any]], procs: Sequence[Callable[[Any], Any] | None]
    ) -> Unreadable:
        for row in rows:
            for index, (value, proc) in enumerate(zip(row, procs)):
                if proc is not None and value is not None:
                    try:
                        proc(value)
                    except (ValueError, LookupError, TypeError) as exc:
                        return cls(row, index, str(exc))
        return cls((), 0, "a stored value could not be read")

    def named(
        self, model: type[ActiveRecord], names: Sequence[str], nkey: int
    ) -> ValidationError:
        """Our error naming the stored row (by its primary key) and the field; ``names``
        are the selected fields, the key's ``nkey`` first, then the primary key's."""
        npk = len(model.__ar_info__.pk_fields)
        model_name = model.__name__
        if not self.row:
            return ValidationError(f"{model_name}: {self.reason}", model=model_name)
        pk = self.row[nkey : nkey + npk]
        key: Any = pk[0] if len(pk) == 1 else tuple(pk)
        field, value = names[self.index], self.row[self.index]
        return ValidationError(
            f"{model_name} row {key!r} read from the database does not validate: "
            f"{field}: cannot read {value!r}: {self.reason}",
            model=model_name,
            errors=[{"type": "value_error", "loc": (field,), "msg": self.reason, "input": value}],
        )


def give_stored(
    info: ModelInfo, datas: list[dict[str, Any]], positions: list[int], names: Sequence[str],
    rows: list[Sequence[Any]], unchecked: int,
) -> None:
    """Give ``datas[p]`` (for each of ``positions``) the stored values of ``names`` in the
    row read for it, each validated as its field validates (the first ``unchecked``, the
    primary key, as read): one call per column, not one per value."""
    targets = [datas[p] for p in positions]
    for j, (fname, column) in enumerate(zip(names, zip(*rows))):
        values: Sequence[Any] = column
        if j >= unchecked:
            try:
                values = info.column_adapter(fname).validate_python(list(column))
            except pydantic.ValidationError:  # refused as one value is: its field's error
                values = _one_by_one(info, names, rows, fname, column)
        deque(map(operator.setitem, targets, repeat(fname), values), maxlen=0)


def _one_by_one(
    info: ModelInfo, names: Sequence[str], rows: list[Sequence[Any]], fname: str,
    column: Sequence[Any],
) -> list[Any]:
    """The column's values validated one by one; the first its field refuses raises our
    :class:`ValidationError` naming the stored row (by its primary key) and the field."""
    adapter = info.adapter(fname)
    values = []
    for row, value in zip(rows, column):
        try:
            values.append(adapter.validate_python(value))
        except pydantic.ValidationError as exc:
            npk = len(info.pk_fields)
            named = tuple(names[:npk]) == tuple(info.pk_fields)
            pk = row[0] if npk == 1 else tuple(row[:npk])
            which = f" row {pk!r}" if named else ""
            reason = "; ".join(e["msg"] for e in exc.errors(include_url=False))
            raise ValidationError(
                f"{info.model_name}{which} read from the database does not validate: "
                f"{fname}: {reason}",
                model=info.model_name,
                errors=[{"type": "value_error", "loc": (fname,), "msg": reason,
                         "input": value}],
            ) from None
    return values
