"""Insert-or-update on a unique key, for loaders: ``load_csv(..., upsert=("email",))``.

A thin wrapper over :meth:`ActiveRecord.batch_upsert <activerecord.model.ActiveRecord.
batch_upsert>` (one upsert implementation): the key must be the primary key or a unique key
of the table (declared, or only in the database), by its columns or its constraint/index name
(checked before anything is written). A row whose key exists gets the columns the input
gave (and the model's update defaults, e.g. ``updated_at``, when something changed); other
columns keep their values. When a key repeats within the input, the last row wins on every
backend. Atomic; every record is validated first.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Price(ActiveRecord):
    ...     __table_name__ = "doc_prices"
    ...     id: int | None = None
    ...     cents: int
    >>> _ = activerecord.connect("sqlite://")
    >>> Price.create_table()
    >>> upsert_rows(Price, [{"id": 1, "cents": 1}, {"id": 2, "cents": 2}], ["id"])
    2
    >>> upsert_rows(Price, [{"id": 1, "cents": 5}], ["id"])
    1
    >>> [(p.id, p.cents) for p in Price.query().order_by("id")]
    [(1, 5), (2, 2)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import QueryError
from ..insert.conflict import resolve_target
from ..write.upsert import UpsertResult, batch_upsert
from .names import field_of

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["check_upsert_key", "upsert_rows"]


def check_upsert_key(model: type[ActiveRecord], key: Sequence[str]) -> tuple[str, ...]:
    """The key's field names, if they are the primary key or a unique key of the table (a
    single name may also be a unique constraint's or index's name)."""
    names = [key] if isinstance(key, str) else list(key)
    if not names:
        raise QueryError("an upsert needs at least one key column")
    info = model.__ar_info__
    if len(names) == 1:
        target = resolve_target(info, names[0], model)  # a constraint name, or one column
        return target.fields
    fields = [field_of(model, k, "upsert key") for k in names]
    return resolve_target(info, fields, model).fields


def upsert_rows(
    model: type[ActiveRecord],
    rows: Iterable[Mapping[str, Any]],
    key: Sequence[str],
    *,
    validate: bool = True,
    batch_size: int | None = None,
    progress: Callable[[int], Any] | None = None,
    on_result: Callable[[UpsertResult], Any] | None = None,
) -> int:
    """Insert the dict rows, updating those whose ``key`` exists; return the rows processed.

    ``on_result`` receives the :class:`~activerecord.write.upsert.UpsertResult` (rows inserted,
    updated and unchanged), for the command line's summary.
    """
    fields = check_upsert_key(model, key)
    result = batch_upsert(
        model, rows, conflict=fields, validate=validate, batch_size=batch_size,
        progress=progress or False,
        hooks=False,  # a bulk load, like Rails' upsert_all: no hooks
    )
    if on_result is not None:
        on_result(result)
    return result.total
