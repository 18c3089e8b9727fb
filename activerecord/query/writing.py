"""Writing with a query: one UPDATE or DELETE over the matching rows (``update``,
``delete``, ``hard_delete``, ``restore``), after the model's query hooks, with the
statements of ``dependent=`` relations first; the statements themselves come from
:mod:`~activerecord.query.write_statements`.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Lever(ActiveRecord):
    ...     __table_name__ = "doc_levers"
    ...     id: int | None = None
    ...     up: bool = False
    >>> _ = activerecord.connect("sqlite://")
    >>> Lever.create_table()
    >>> _ = Lever.batch_insert([Lever(), Lever()])
    >>> Lever.query().where({"id": 1}).update({"up": True})
    1
    >>> Lever.query().where({"up": True}).count()
    1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..associations.dependent import dependents_before
from ..backend.errors import driver_errors
from ..backend.transaction import retrying, write_connection
from ..model.batch_hooks import query_hook
from .state import T
from .write_statements import WriteStatements

if TYPE_CHECKING:
    from .query import Query

__all__ = ["QueryWriting"]


class QueryWriting(WriteStatements[T]):
    """The writing terminals of :class:`~activerecord.query.query.Query`."""

    __slots__ = ()

    def update(
        self, values: Mapping[str, Any], *, all_rows: bool = False, touch: bool = True
    ) -> int:
        """Run one UPDATE over the matching rows; return how many rows matched.

        The count includes rows whose values did not change, on every backend. Values may be
        plain (checked against the field type), ``Expression("x + ?", 1)`` (a raw fragment)
        or column arithmetic such as ``col("login_count") + 1`` or ``User.c.login_count + 1``.
        ``updated_at`` of a ``TimestampMixin`` model is set too, unless given or ``touch=False``.
        Every value reads the row as it was (``{"a": col("b"), "b": col("a")}`` swaps, MySQL
        included). ``order_by(...).limit(n)`` (and ``offset``) narrows the update to those
        rows. A query with neither ``where()`` nor ``limit()`` raises
        :class:`~activerecord.errors.UnsafeWriteError` unless ``all_rows=True``.

        >>> import activerecord
        >>> from activerecord import ActiveRecord, col
        >>> class Visit(ActiveRecord):
        ...     __table_name__ = "doc_visits"
        ...     id: int | None = None
        ...     page: str
        ...     hits: int = 0
        >>> _ = activerecord.connect("sqlite://")
        >>> Visit.create_table()
        >>> _ = Visit.batch_insert([Visit(page="a"), Visit(page="a"), Visit(page="b")])
        >>> Visit.query().where({"page": "a"}).update({"hits": col("hits") + 1})
        2
        >>> Visit.query().update({"hits": 0}, all_rows=True)
        3
        >>> Visit.query().order_by("-id").limit(2).update({"hits": 5})
        2
        >>> [v.hits for v in Visit.query().order_by("id")]
        [0, 5, 5]
        """
        query = self
        hook = query_hook(self._model, "before_query_update")
        if hook is not None:  # it may narrow the query and add to (a copy of) the values
            self.update_statement(values, all_rows=all_rows, touch=touch)  # the caller's checks
            values = dict(values)
            query = hook(self, values) or self
        stmt = query.update_statement(values, all_rows=all_rows, touch=touch)
        return query._write(stmt, "update")

    def delete(self, *, all_rows: bool = False) -> int:
        """Delete the matching rows (soft-delete for soft-deleting models); return the count.

        ``order_by(...).limit(n)`` (and ``offset``) deletes only those rows, on every
        backend: a loop of ``limit(1000).delete()`` deletes in chunks. A query with neither
        ``where()`` nor ``limit()`` raises :class:`~activerecord.errors.UnsafeWriteError`
        unless ``all_rows=True``. A soft delete is a change
        of the rows: with ``OptimisticLockMixin`` it adds one to their version, as
        :meth:`update` and :meth:`restore` do.

        >>> import activerecord
        >>> from activerecord import ActiveRecord
        >>> class Job(ActiveRecord):
        ...     __table_name__ = "doc_jobs"
        ...     id: int | None = None
        ...     state: str
        >>> _ = activerecord.connect("sqlite://")
        >>> Job.create_table()
        >>> _ = Job.batch_insert([Job(state="done"), Job(state="done"), Job(state="new")])
        >>> Job.query().where({"state": "done"}).delete()
        2
        >>> _ = Job.batch_insert([Job(state="old") for _ in range(5)])
        >>> Job.query().where({"state": "old"}).order_by("id").limit(2).delete()
        2
        >>> Job.query().where({"state": "old"}).count()
        3
        """
        query = self._before_delete(all_rows)
        return query._write(query.delete_statement(all_rows=all_rows), "delete", purge=False)

    def hard_delete(self, *, all_rows: bool = False) -> int:
        """Delete the matching rows for real, even on a soft-deleting model, including rows
        already soft-deleted (``only_deleted()`` limits it to those); return the count."""
        query = self._before_delete(all_rows)
        return query._write(query.hard_delete_statement(all_rows=all_rows), "delete", purge=True)

    def _before_delete(self, all_rows: bool) -> Query[T]:
        """The query the model's ``before_query_delete`` hook returns (self when none); the
        caller's own query is checked first (a condition the hook adds is no opt-in)."""
        hook = query_hook(self._model, "before_query_delete")
        if hook is None:
            return self._as_query()
        self.hard_delete_statement(all_rows=all_rows)
        found: Query[T] = hook(self) or self._as_query()
        return found

    def restore(self, *, all_rows: bool = False) -> int:
        """Bring soft-deleted rows back in one UPDATE; return how many were restored.

        >>> import activerecord
        >>> from activerecord import ActiveRecord, SoftDeleteMixin
        >>> class Doc(SoftDeleteMixin, ActiveRecord):
        ...     __table_name__ = "doc_docs"
        ...     id: int | None = None
        ...     kind: str
        >>> _ = activerecord.connect("sqlite://")
        >>> Doc.create_table()
        >>> _ = Doc.batch_insert_from_dicts([{"kind": "a"}, {"kind": "a"}, {"kind": "b"}])
        >>> Doc.query().where({"kind": "a"}).delete()
        2
        >>> Doc.query().only_deleted().where({"kind": "a"}).restore()
        2
        """
        return self._write(self.restore_statement(all_rows=all_rows), "restore")

    def _write(self, stmt: sa.Update | sa.Delete, verb: str, *, purge: bool | None = None) -> int:
        return retrying(self._model.database(), lambda: self._write_once(stmt, verb, purge))

    def _write_once(self, stmt: sa.Update | sa.Delete, verb: str, purge: bool | None) -> int:
        """Run ``stmt``; a delete (``purge``: removing rows for real) runs the statements of
        the model's ``dependent=`` relations first, in the same transaction."""
        before = [] if purge is None else dependents_before(self._model, stmt, purge=purge)
        db = self._model.database()
        context = f"{verb} of {self._model.__name__}"
        operation, model = f"query.{verb}", self._model.__name__
        with driver_errors(context, operation=operation, model=model), \
                write_connection(db, statements=1 + len(before)) as conn:
            for dependent in before:
                conn.execute(dependent)
            return int(conn.execute(stmt).rowcount)
