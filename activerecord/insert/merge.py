"""The UPDATE half of an upsert: write existing rows by primary key, only where they change.

One statement per chunk in the backend's UPDATE-by-key form (a row source of
:mod:`activerecord.write.by_key`: ``UPDATE ... FROM unnest(arrays)`` on PostgreSQL, a
multi-table UPDATE joined to a ``UNION ALL`` derived table on MySQL/MariaDB, executemany on
SQLite). Each SET
value is the incoming value (``excluded(name)``), an expression over the stored row
(``col(name)``) and the incoming one, or a constant. The WHERE clause keeps only rows whose
new values differ from the stored ones (NULL-safe: ``IS DISTINCT FROM``, ``<=>``, ``IS NOT``),
so the database's row count is the number of rows really changed on every backend and
``updated_at`` moves only on those.

The statement is a Core construct compiled once per call and row count; chunks then run the
compiled text with bound parameters (constants of user expressions included).

Example::

    >>> from activerecord import ActiveRecord
    >>> from activerecord.query.expression import excluded
    >>> from sqlalchemy.dialects import sqlite
    >>> class Tally(ActiveRecord):
    ...     __table_name__ = "doc_tallies"
    ...     id: int | None = None
    ...     n: int = 0
    >>> spec = MergeSpec.build(Tally, {"n": None}, scalars=())
    >>> stmt = merge_statement(Tally, spec, "executemany", 1)
    >>> print(stmt.compile(dialect=sqlite.dialect()))
    UPDATE doc_tallies SET n=? WHERE doc_tallies.id = ? AND doc_tallies.n IS NOT ?
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors

from ..errors import QueryError
from ..query.conditions import rebind
from ..query.expression import Excluded, is_integer_type, refuse_inexact, whole
from ..write.by_key import ByKeyPlan, Made, RowSource, row_source
from .shape import source_alias

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["MergePlan", "MergeSpec", "merge_clauses", "merge_statement"]


@dataclass(frozen=True)
class MergeSpec:
    """What the UPDATE writes: per field, None (the incoming value) or a clause."""

    values: tuple[tuple[str, Any], ...]
    #: Fields whose incoming values each row sends (after the primary key).
    incoming: tuple[str, ...]
    #: Fields set to one value for every changed row (``updated_at``; ``deleted_at`` on revive).
    scalars: tuple[str, ...]
    #: Extra conditions under which a row counts as changed (a soft-deleted row being revived).
    revive: bool = False
    #: Leave soft-deleted rows alone (they count as unchanged).
    skip_deleted: bool = False

    @classmethod
    def build(
        cls,
        model: type[ActiveRecord],
        values: Mapping[str, Any],
        *,
        scalars: Sequence[str],
        revive: bool = False,
        skip_deleted: bool = False,
    ) -> MergeSpec:
        """``values`` maps checked field names to None (incoming) or a checked clause."""
        info = model.__ar_info__
        incoming: list[str] = []
        for fname, value in values.items():
            if value is None:
                names = [fname]
            else:
                names = [
                    info.field_for(e.name)
                    for e in visitors.iterate(value)
                    if isinstance(e, Excluded)
                ]
            incoming += [n for n in names if n not in incoming]
        return cls(tuple(values.items()), tuple(incoming), tuple(scalars), revive, skip_deleted)


def _comparable(expr: Any, type_: Any, binary_text: bool) -> Any:
    # PostgreSQL's json has no equality operator; text compares everywhere (a difference in
    # spelling only costs a needless update).
    if isinstance(type_, sa.JSON):
        expr = sa.cast(expr, sa.Text)
    elif binary_text and isinstance(type_, sa.String):
        return sa.cast(expr, sa.LargeBinary)
    return expr


def merge_statement(
    model: type[ActiveRecord], spec: MergeSpec, style: str | RowSource, nrows: int, *,
    binary_text: bool = False,
) -> sa.Update:
    """The UPDATE writing ``nrows`` existing rows, found by primary key.

    Row parameters: primary key fields, then ``spec.incoming``; scalars are ``s0``, ``s1``...
    ``binary_text`` compares strings byte for byte (see :attr:`~activerecord.backend.dialects.
    DialectFacts.text_compare_binary`).
    """
    return _merge_statement(model, spec, row_source(style), nrows, binary_text=binary_text)[0]


def _merge_statement(
    model: type[ActiveRecord], spec: MergeSpec, source: RowSource, nrows: int, *,
    binary_text: bool = False,
) -> tuple[sa.Update, Made]:
    """The statement, and for each parameter it holds that we made: the object and its slot.

    The slots come from the objects made here, never from reading parameter names: a user's
    constant may be named after its column (``r1_1`` for ``col("r1") + 1``). User constants
    are given names of ours too (``k0``...), so no name of theirs meets ours.
    """
    info = model.__ar_info__
    columns = [info.columns[f] for f in (*info.pk_fields, *spec.incoming)]
    refs, made = source.refs(columns, nrows, source_alias(info.table))
    ours: Made = {bind.key: (bind, where) for bind, where in made}
    nkeys = len(info.pk_fields)
    values, changed = merge_clauses(
        model, spec, dict(zip(spec.incoming, refs[nkeys:])), ours, binary_text=binary_text
    )
    criteria = [info.columns[f] == refs[j] for j, f in enumerate(info.pk_fields)]
    if spec.skip_deleted:
        criteria += model._scope_criteria("default")
    criteria.append(changed)
    stmt = sa.update(info.table).where(*criteria).values(info.by_column(values))
    return stmt, ours


def merge_clauses(
    model: type[ActiveRecord], spec: MergeSpec, ref_of: Mapping[str, Any], ours: Made, *,
    binary_text: bool = False,
) -> tuple[dict[str, Any], Any]:
    """What a merge sets (by field) and the condition under which a stored row changes, for
    incoming values referred to by ``ref_of`` (field -> the row source's column, or an
    upsert's ``excluded`` column). Parameters made here are added to ``ours``: scalars
    ``s0``, ``s1``... and user constants ``k0``..."""
    info = model.__ar_info__

    def bind_names(element: Any) -> Any:
        if isinstance(element, Excluded):
            return ref_of[info.field_for(element.name)]
        if isinstance(element, sa.ColumnClause) and element.table is None:
            if not getattr(element, "is_literal", False):
                return info.column(element.name)
        if isinstance(element, sa.TextClause):
            return element  # its parameters are named in its text; they stay constants
        if isinstance(element, sa.BindParameter):
            if element.callable is not None or (element.required and element.value is None):
                raise QueryError(
                    f"batch_upsert of {info.model_name}: parameter {element.key!r} has no value"
                )
            key = f"k{len(ours)}"
            constant = sa.bindparam(key, element.effective_value, type_=element.type)
            ours[key] = (constant, (2, None))
            return constant
        return None

    values: dict[str, Any] = {}
    changed: list[Any] = []
    for fname, value in spec.values:
        column = info.columns[fname]
        new = ref_of[fname] if value is None else rebind(value, bind_names)
        if value is not None:
            refuse_inexact(column, new, f"batch upsert of {info.model_name}")
            if is_integer_type(column.type) and isinstance(new, sa.ColumnElement):
                new = whole(new)
        values[fname] = new
        changed.append(_comparable(column, column.type, binary_text).is_distinct_from(
            _comparable(new, column.type, binary_text)
        ))
    if spec.revive:
        changed += model._scope_criteria("only_deleted")
    for j, fname in enumerate(spec.scalars):
        scalar = sa.bindparam(f"s{j}", type_=info.columns[fname].type)
        ours[scalar.key] = (scalar, (1, j))
        values[fname] = scalar
    lock = model._lock_field()
    if lock is not None and lock not in values:
        values[lock] = info.columns[lock] + sa.literal_column("1", sa.Integer)
    return values, sa.or_(*changed) if len(changed) > 1 else changed[0]


class MergePlan:
    """Compiles the merge statement of a spec into a :class:`~activerecord.write.by_key.
    ByKeyPlan` (multi-row forms grown from a few rows' text)."""

    @staticmethod
    def compile(
        model: type[ActiveRecord], spec: MergeSpec, style: str | RowSource, nrows: int,
        dialect: sa.Dialect, *, binary_text: bool = False,
    ) -> ByKeyPlan:
        """The plan for ``nrows`` rows."""
        source = row_source(style)
        return ByKeyPlan.compile(
            lambda n: _merge_statement(model, spec, source, n, binary_text=binary_text),
            source, nrows, _width(model, spec), dialect, what=f"the merge of {model.__name__}",
        )

    @staticmethod
    def _compile(
        model: type[ActiveRecord], spec: MergeSpec, style: str | RowSource, nrows: int,
        dialect: sa.Dialect, binary_text: bool,
    ) -> ByKeyPlan:
        """The plan for ``nrows`` rows, compiled whole (what growing must equal)."""
        source = row_source(style)
        return ByKeyPlan.compile_exact(
            lambda n: _merge_statement(model, spec, source, n, binary_text=binary_text),
            source, nrows, _width(model, spec), dialect, what=f"the merge of {model.__name__}",
        )


def _width(model: type[ActiveRecord], spec: MergeSpec) -> int:
    return len(model.__ar_info__.pk_fields) + len(spec.incoming)
