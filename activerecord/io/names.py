"""Source columns to fields: the header mapping every loader shares, checked against the
table before any row is read.

Example::

    >>> from activerecord import ActiveRecord
    >>> class Pet(ActiveRecord):
    ...     __table_name__ = "doc_loader_pets"
    ...     id: int | None = None
    ...     name: str
    >>> map_names(Pet, ["Name", "id"], {"Name": "name"}, source="pets.csv")
    ['name', 'id']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import FileFormatError, UnknownColumnError, ValidationError

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["check_required", "field_of", "map_names"]


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
    error.context = source  # str(): "people.csv: Person has no column 'x' ..."
    raise error
