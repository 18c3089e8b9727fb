"""The statements a query's writes run, built without running them: the pure twins of
``update``, ``delete``, ``hard_delete`` and ``restore``, in a form every backend runs as
standard SQL means it (a limit, an order, and ``SET`` values reading other assigned columns
included).

Example::

    >>> from activerecord import ActiveRecord
    >>> from activerecord.query.sql import compile_sql
    >>> class Vat(ActiveRecord):
    ...     __table_name__ = "doc_vats"
    ...     id: int | None = None
    ...     level: int = 0
    >>> stmt = Vat.query().where({"id": 1}).update_statement({"level": 2})
    >>> print(compile_sql(stmt, Vat, "sqlite"))
    UPDATE doc_vats SET level=? WHERE doc_vats.id = ?
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic
import sqlalchemy as sa
from sqlalchemy.sql import visitors

from ..backend.dialects import (
    bind_processor,
    integer_guard,
    limit_in_subquery,
    unsigned_integer_guard,
    update_reads_assigned,
)
from ..errors import (
    ActiveRecordError,
    ArgumentTypeError,
    DataError,
    QueryError,
    UnsafeWriteError,
    ValidationError,
)
from ..insert.shape import source_alias
from .conditions import resolve
from .expression import Expression, is_integer_type, refuse_inexact, whole
from .state import QueryState, T

__all__ = ["WriteStatements"]


class WriteStatements(QueryState[T]):
    """The write statements of :class:`~activerecord.query.query.Query`."""

    __slots__ = ()

    def _check_writable(self, all_rows: bool, verb: str) -> None:
        # A limit bounds the write as a where() does ("delete the oldest 1000").
        if not self._where and self._limit is None and not all_rows:
            raise UnsafeWriteError(
                f"refusing to {verb} every {self._model.__name__} row: add a where() or "
                f"a limit(), or pass all_rows=True"
            )
        self._check_one_table((*self._where, *self._order), verb)

    def _check_one_table(self, clauses: Any, verb: str) -> None:
        # A column of another table would make the UPDATE/DELETE a multi-table one, joined
        # with no condition; a subquery (``Model.c.id.in_(select(...))``) is the safe form.
        table = self._model.__ar_info__.table
        for clause in clauses:
            for source in getattr(clause, "_from_objects", ()):
                if source is not table:
                    name = getattr(source, "name", None) or type(source).__name__
                    raise QueryError(
                        f"cannot {verb} {self._model.__name__} rows with a condition or value "
                        f"on another table ({name!r}); use a subquery, for example "
                        f"{self._model.__name__}.c.id.in_(select(...))"
                    )

    def update_values(self, values: Mapping[str, Any], *, touch: bool = True) -> dict[str, Any]:
        """Check and convert the values of an update: names, types, expressions.

        Plain values are validated against the field's type (a wrong type raises
        :class:`~activerecord.errors.ValidationError` before any SQL). Unless the caller sets
        them, the model's automatic values are added: ``updated_at`` for ``TimestampMixin``
        (``touch=False`` leaves it alone) and ``version + 1`` for ``OptimisticLockMixin``.

        >>> from activerecord import ActiveRecord, col
        >>> class Counter(ActiveRecord):
        ...     __table_name__ = "doc_counters"
        ...     id: int | None = None
        ...     n: int = 0
        >>> Counter.query().update_values({"n": "7"})
        {'n': 7}
        >>> str(Counter.query().update_values({"n": col("n") + 1})["n"])
        'doc_counters.n + :n_1'
        """
        info = self._model.__ar_info__
        if not isinstance(values, Mapping):
            raise ArgumentTypeError(
                f"update of {info.model_name} takes a mapping of column names to values, "
                f"got {type(values).__name__}"
            )
        if not values:
            raise QueryError(f"update of {info.model_name} needs at least one value")
        out: dict[str, Any] = {}
        for key, value in values.items():
            if not isinstance(key, str):
                raise QueryError(f"update keys must be column names, got {key!r}")
            fname = info.field_for(key)
            if fname in out:
                raise QueryError(f"update of {info.model_name} sets {fname!r} twice")
            if isinstance(value, Expression):
                out[fname] = value.to_clause(group=True)
            elif isinstance(value, sa.ClauseElement):
                out[fname] = _kept_whole(info.columns[fname], resolve(info, value),
                                         f"update of {info.model_name}")
            else:
                try:
                    out[fname] = info.adapter(fname).validate_python(value)
                except pydantic.ValidationError as exc:
                    raise ValidationError(
                        f"{info.model_name}.{fname}: invalid value {value!r}: "
                        f"{exc.errors()[0]['msg']}",
                        model=info.model_name,
                        errors=exc.errors(),
                    ) from exc
                _check_integer(info.model_name, info.columns[fname], out[fname])
                _check_text(self._model, info.columns[fname], out[fname])
        if touch:
            for fname, value in self._model.__ar_info__.update_defaults().items():
                out.setdefault(fname, value)
        lock = self._model.__ar_info__.lock_field
        if lock is not None and lock not in out:
            out[lock] = info.columns[lock] + 1
        return out

    def update_statement(
        self, values: Mapping[str, Any], *, all_rows: bool = False, touch: bool = True
    ) -> sa.Update:
        """The UPDATE that ``update(values)`` runs.

        >>> from activerecord import ActiveRecord, Expression
        >>> class Score(ActiveRecord):
        ...     __table_name__ = "doc_scores"
        ...     id: int | None = None
        ...     points: float = 0
        >>> stmt = Score.query().where({"id": 1}).update_statement(
        ...     {"points": Expression("points * ?", 1.5)})
        >>> from activerecord.query.sql import compile_sql
        >>> print(compile_sql(stmt, Score, "sqlite").sql)
        UPDATE doc_scores SET points=(points * ?) WHERE doc_scores.id = ?
        """
        self._check_writable(all_rows, "update")
        checked = self.update_values(values, touch=touch)
        self._check_one_table(checked.values(), "update")
        stmt = self._write_statement(self.criteria(), checked)
        assert isinstance(stmt, sa.Update)
        return stmt

    def delete_statement(self, *, all_rows: bool = False) -> sa.Delete | sa.Update:
        """The statement ``delete()`` runs: on a soft-deleting model, an UPDATE that marks the
        matching rows not already deleted (even under ``with_deleted()``) and, with
        ``OptimisticLockMixin``, adds one to their version.

        >>> from activerecord import ActiveRecord, SoftDeleteMixin
        >>> class Tag(SoftDeleteMixin, ActiveRecord):
        ...     __table_name__ = "doc_tags"
        ...     id: int | None = None
        >>> stmt = Tag.query().where({"id": 1}).delete_statement()
        >>> from activerecord.query.sql import compile_sql
        >>> print(compile_sql(stmt, Tag, "sqlite").sql)  # doctest: +NORMALIZE_WHITESPACE
        UPDATE doc_tags SET deleted_at=? WHERE doc_tags.id = ? AND doc_tags.deleted_at IS NULL
        """
        self._check_writable(all_rows, "delete")
        model = self._model
        soft = model.__ar_info__.soft_delete_values()
        if soft is None:
            return self._write_statement(self.criteria(), None)
        criteria = self.criteria()
        if self._scope != "default":
            criteria += model.__ar_info__.scope_criteria("default")
        return self._write_statement(criteria, self._bump(soft))

    def hard_delete_statement(self, *, all_rows: bool = False) -> sa.Delete:
        """The DELETE that ``hard_delete()`` runs, whatever the model's soft-delete setting.

        It removes matching rows whether or not they are soft-deleted (a purge);
        ``only_deleted()`` narrows it to the soft-deleted ones.
        """
        self._check_writable(all_rows, "delete")
        scope = "with_deleted" if self._scope == "default" else self._scope
        criteria = [*self._where, *self._model.__ar_info__.scope_criteria(scope)]
        stmt = self._write_statement(criteria, None)
        assert isinstance(stmt, sa.Delete)
        return stmt

    def restore_statement(self, *, all_rows: bool = False) -> sa.Update:
        """The UPDATE that ``restore()`` runs: clear ``deleted_at`` on matching deleted rows
        (and add one to their version with ``OptimisticLockMixin``).

        Needs a soft-deleting model and a query that can see deleted rows (``only_deleted()``
        or ``with_deleted()``); :class:`QueryError` otherwise.
        """
        model = self._model
        values = model.__ar_info__.restore_values()
        if values is None:
            raise QueryError(
                f"{model.__name__} has no soft deletes to restore (add SoftDeleteMixin)"
            )
        if self._scope == "default":
            raise QueryError(
                f"{model.__name__}.query() hides soft-deleted rows, so restore() would match "
                "none: use query().only_deleted()...restore()"
            )
        self._check_writable(all_rows, "restore")
        criteria = [*self._where, *model.__ar_info__.scope_criteria("only_deleted")]
        stmt = self._write_statement(criteria, self._bump(values))
        assert isinstance(stmt, sa.Update)
        return stmt

    def _write_statement(
        self, criteria: list[Any], values: Mapping[str, Any] | None
    ) -> sa.Update | sa.Delete:
        """The UPDATE (``values``: field -> value or clause) or DELETE (None) of the rows the
        criteria match, within this query's order/limit/offset, in a form every backend runs
        as standard SQL means it:

        * with a limit or offset, the rows are those of ``SELECT key ... ORDER BY ... LIMIT``:
          ``WHERE key IN (that select)``, or, where ``IN`` takes no ``LIMIT`` (MySQL,
          MariaDB), a join to it as a derived table;
        * where ``SET`` reads values assigned to its left (MySQL: ``SET a = b, b = a`` leaves
          ``b`` unchanged), values that read another assigned column read it from that
          derived table, which holds the row as it was.

        The criteria stay on the outer statement too, so a row changed meanwhile so that it no
        longer matches is left alone. An order without a limit or offset changes no row's
        fate and is left out.
        """
        info = self._model.__ar_info__
        table = info.table
        dialect = self._dialect()
        limited = self._limit is not None or self._offset is not None
        reads = _cross_reads(table, info, values) if values is not None else []
        joined = dialect is not None and (
            (limited and not limit_in_subquery(dialect))
            or (bool(reads) and update_reads_assigned(dialect))
        )
        outer = list(criteria)
        pk_columns = [info.columns[f] for f in info.pk_fields]
        replace: dict[sa.Column[Any], Any] = {}
        if joined:
            keys = [c.label(f"ar_k{i}") for i, c in enumerate(pk_columns)]
            olds = [c.label(f"ar_c{j}") for j, c in enumerate(reads)]
            source = self._limited(sa.select(*keys, *olds).where(*criteria)).subquery(
                source_alias(table)
            )
            outer += [c == source.c[f"ar_k{i}"] for i, c in enumerate(pk_columns)]
            replace = {c: source.c[f"ar_c{j}"] for j, c in enumerate(reads)}
        elif limited:
            key: Any = pk_columns[0] if len(pk_columns) == 1 else sa.tuple_(*pk_columns)
            outer.insert(0, key.in_(self._limited(sa.select(*pk_columns).where(*criteria))))
        if values is None:
            return sa.delete(table).where(*outer)
        if replace:
            values = {f: _replaced(v, replace) for f, v in values.items()}
        return sa.update(table).where(*outer).values(info.by_column(values))

    def _limited(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        # Its own FROM: never correlated to the UPDATE/DELETE of the same table around it.
        stmt = stmt.correlate(None)
        if self._limit is not None or self._offset is not None:
            if self._order:
                stmt = stmt.order_by(*self._order)
            if self._limit is not None:
                stmt = stmt.limit(self._limit)
            if self._offset is not None:
                stmt = stmt.offset(self._offset)
        return stmt


    def _bump(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` and, for an optimistic-lock model, ``version + 1``: a soft delete or a
        restore changes the row, as an update does."""
        lock = self._model.__ar_info__.lock_field
        if lock is None or lock in values:
            return dict(values)
        return {**values, lock: self._model.__ar_info__.columns[lock] + 1}


def _cross_reads(
    table: sa.Table, info: Any, values: Mapping[str, Any]
) -> list[sa.Column[Any]]:
    """The assigned columns that the values read, when one value reads a column another
    assignment sets (``a = b`` with ``b`` also set: where SET runs left to right it would
    read the new ``b``); empty otherwise. Then every one is read from the row as it was."""
    assigned = {id(info.columns[f]) for f in values}
    reads: dict[str, list[sa.Column[Any]]] = {}
    for fname, value in values.items():
        if isinstance(value, sa.ClauseElement):
            reads[fname] = [
                e for e in visitors.iterate(value)
                if isinstance(e, sa.Column) and e.table is table and id(e) in assigned
            ]
    if all(c is info.columns[f] for f, columns in reads.items() for c in columns):
        return []  # each value reads at most its own column: the same in any order
    found: dict[int, sa.Column[Any]] = {}
    for columns in reads.values():
        for column in columns:
            found.setdefault(id(column), column)
    return list(found.values())


def _replaced(value: Any, replace: Mapping[sa.Column[Any], Any]) -> Any:
    if not isinstance(value, sa.ClauseElement):
        return value

    def swap(element: Any) -> Any:
        return replace.get(element) if isinstance(element, sa.Column) else None

    return visitors.replacement_traverse(value, {}, swap)  # type: ignore[call-overload]


def _kept_whole(column: sa.Column[Any], value: Any, context: str) -> Any:
    """An expression for ``column``: refused if its type is not whole for an integer
    column, else kept whole (:class:`~.expression.whole`)."""
    refuse_inexact(column, value, context)
    if is_integer_type(column.type) and isinstance(value, sa.ColumnElement):
        return whole(value)
    return value


def _check_text(model: Any, column: sa.Column[Any], value: Any) -> None:
    """A text holding NUL where the backend's text types cannot hold it (PostgreSQL) is
    refused before any SQL, naming the column: psycopg's own refusal names none. Asked only
    of such a text, so building a statement needs no database otherwise."""
    if type(value) is not str or "\x00" not in value:
        return
    try:
        dialect = model.database().engine.dialect
    except ActiveRecordError:  # no database connected: the statement is only built
        return
    guard = bind_processor(column.type, dialect)
    if guard is not None:
        _guarded(model.__name__, column, guard, value)


def _check_integer(model: str, column: sa.Column[Any], value: Any) -> None:
    """An int no integer column holds (beyond 64 bits) is refused before any SQL, naming the
    column: the server's "bigint out of range" (SQLite's bare ``OverflowError``) names none."""
    type_ = column.type
    if type(value) is int and isinstance(type_, sa.Integer):
        guard = unsigned_integer_guard if getattr(type_, "unsigned", False) else integer_guard
        _guarded(model, column, guard, value)


def _guarded(model: str, column: sa.Column[Any], guard: Any, value: Any) -> None:
    """``guard(value)``; its ``ValueError`` as a DataError naming the column and the update."""
    try:
        guard(value)
    except ValueError as exc:
        error = DataError(str(exc))
        error.context, error.column = f"update of {model}", column.name
        raise error from None
