"""What an upsert writes: the counts it reports (:class:`UpsertResult`) and its UPDATE half
(which fields of existing rows, how: the incoming value, an expression, or ``updated_at``).

Example::

    >>> UpsertResult(inserted=1) + UpsertResult(updated=2)
    UpsertResult(inserted=1, updated=2, unchanged=0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic
import sqlalchemy as sa

from ..errors import QueryError, ValidationError
from ..insert.conflict import ConflictKey
from ..insert.merge import MergeSpec
from ..query.conditions import check_names
from ..query.expression import Excluded, Expression

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["NotDirect", "UpdateArg", "Updates", "UpsertResult", "direct_counts"]


class NotDirect(Exception):
    """Internal: this generation cannot be proven exact by the direct path
    (``upsert_direct.py``); the lookup path writes it."""


def direct_counts(nrows: int, inserted: int, written: int) -> UpsertResult:
    """Counts from the rows sent, those inserted and those written (inserted + updated).

    >>> direct_counts(5, 2, 3)
    UpsertResult(inserted=2, updated=1, unchanged=2)
    """
    if not 0 <= inserted <= written <= nrows:  # cannot happen: then the lookup path decides
        raise NotDirect(f"counts {inserted} inserted, {written} written of {nrows} rows")
    return UpsertResult(inserted, written - inserted, nrows - written)


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did: rows ``inserted``, ``updated`` (a value changed) and ``unchanged``.

    ``int(result)`` and ``result.total`` are the rows processed (every input row counts once).

    >>> result = UpsertResult(inserted=2, updated=1, unchanged=3)
    >>> int(result), result.total
    (6, 6)
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        """All rows processed: inserted + updated + unchanged."""
        return self.inserted + self.updated + self.unchanged

    def __int__(self) -> int:
        return self.total

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


UpdateArg = Sequence[str] | Mapping[str, Any] | None


class Updates:
    """The UPDATE half of one call: which fields, how, and the values set on changed rows."""

    def __init__(
        self,
        model: type[ActiveRecord],
        key: ConflictKey,
        update: UpdateArg,
        *,
        revive: bool,
        touch: bool,
    ) -> None:
        self.model = model
        info = self.info = model.__ar_info__
        self.key = key
        self.lock = model._lock_field()
        update_defaults = model._update_defaults() if touch else {}
        restore = model._restore_values() or {}
        self.soft = bool(model._scope_criteria("only_deleted"))
        self.revive = revive and self.soft
        fixed = {f for f in (*info.pk_fields, *key.fields, *([self.lock] if self.lock else []))}
        automatic = set(model._insert_defaults()) | set(update_defaults) | set(restore)
        # Set by inserts only (TimestampMixin's created_at): a row's own value for one is for
        # the insert, and the default update never moves it (update=["created_at"] does).
        insert_only = set(model._insert_defaults()) - set(model._update_defaults())
        #: Fields a dict row may update when it gives them (update=None).
        self.updatable = tuple(f for f in info.fields if f not in fixed and f not in insert_only)
        self.fixed: dict[str, Any] | None = None
        if update is None:
            self.instance_fields = {f: None for f in self.updatable if f not in automatic}
        else:
            self.fixed = self._check(update, fixed)
        scalars = dict(update_defaults)
        if self.revive:
            scalars.update({f: v for f, v in restore.items() if f not in update_defaults})
        self.scalar_values = scalars
        self._specs: dict[tuple[str, ...] | None, MergeSpec | None] = {}

    def _check(self, update: Sequence[str] | Mapping[str, Any], fixed: set[str]) -> dict[str, Any]:
        info = self.info
        if isinstance(update, str):
            update = (update,)
        items = update.items() if isinstance(update, Mapping) else ((n, None) for n in update)
        out: dict[str, Any] = {}
        for name, value in items:
            if not isinstance(name, str):
                raise QueryError(f"update keys must be column names, got {name!r}")
            fname = info.field_for(name)  # UnknownColumnError before any SQL
            if fname in fixed:
                what = "the optimistic-lock version" if fname == self.lock else "part of a key"
                raise QueryError(
                    f"batch_upsert of {info.model_name} cannot update {fname!r}: it is {what}"
                )
            if fname in out:
                raise QueryError(f"batch_upsert of {info.model_name} sets {fname!r} twice")
            out[fname] = self._value(fname, value)
        return out

    def _value(self, fname: str, value: Any) -> Any:
        info = self.info
        if value is None:
            return None
        if isinstance(value, Excluded) and info.field_for(value.name) == fname:
            return None
        if isinstance(value, Expression):
            return value.to_clause(group=True)
        if isinstance(value, sa.ClauseElement):
            check_names(info, value)
            return value
        try:
            checked = info.adapter(fname).validate_python(value)
        except pydantic.ValidationError as exc:
            raise ValidationError(
                f"{info.model_name}.{fname}: invalid value {value!r}: {exc.errors()[0]['msg']}",
                model=info.model_name,
                errors=exc.errors(),
            ) from exc
        return sa.literal(checked, type_=info.columns[fname].type)

    def values_for(self, given: tuple[str, ...] | None) -> dict[str, Any]:
        if self.fixed is not None:
            return self.fixed
        if given is None:
            return self.instance_fields
        return {f: None for f in given if f in self.updatable}

    def spec(self, given: tuple[str, ...] | None) -> MergeSpec | None:
        """The merge for rows that gave these fields (None: instances); None when nothing to do."""
        cache_key = None if self.fixed is not None else given
        if cache_key in self._specs:
            return self._specs[cache_key]
        values = self.values_for(given)
        spec = None
        if values or self.revive:
            scalars = tuple(f for f in self.scalar_values if f not in values)
            spec = MergeSpec.build(
                self.model, values, scalars=scalars, revive=self.revive,
                skip_deleted=self.soft and not self.revive,
            )
        self._specs[cache_key] = spec
        return spec
