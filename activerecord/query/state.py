"""The state every :class:`~activerecord.query.query.Query` carries, and the statements
that follow from it alone: the WHERE criteria with the model's scope, the SELECT, the COUNT.

The query's methods are grouped by idea, one module each, and put together in
:mod:`activerecord.query.query`: building (``building.py``), reading (``reading.py``),
writing (``writing.py``, over ``write_statements.py``).

Example::

    >>> from activerecord import ActiveRecord
    >>> class Pod(ActiveRecord):
    ...     __table_name__ = "doc_pods"
    ...     id: int | None = None
    >>> print(Pod.query().count_statement())  # doctest: +NORMALIZE_WHITESPACE
    SELECT count(*) AS count_1 FROM doc_pods
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..backend.errors import driver_errors
from ..backend.transaction import read_connection
from ..errors import NotConnectedError
from .sql import SQL, compile_sql

if TYPE_CHECKING:
    from ..model import ActiveRecord
    from .query import Query

__all__ = ["SCOPES", "QueryState", "T"]

T = TypeVar("T", bound="ActiveRecord")

#: Scopes a query can read in: the model's default scope, everything, or only the hidden rows.
SCOPES = ("default", "with_deleted", "only_deleted")


class QueryState(Generic[T]):
    """What a query is: its model, criteria, order, limit, offset, columns, scope, preloads."""

    __slots__ = (
        "_columns", "_limit", "_model", "_offset", "_order", "_preload", "_scope", "_where"
    )

    def __init__(
        self,
        model: type[T],
        *,
        where: tuple[ColumnElement[bool], ...] = (),
        order: tuple[Any, ...] = (),
        limit: int | None = None,
        offset: int | None = None,
        columns: tuple[sa.Column[Any], ...] | None = None,
        scope: str = "default",
        preload: dict[str, Any] | None = None,
    ) -> None:
        self._model = model
        self._where = where
        self._order = order
        self._limit = limit
        self._offset = offset
        self._columns = columns
        self._scope = scope
        self._preload = preload  # relation tree (activerecord.associations.loading)

    def _copy(self, **changes: Any) -> Query[T]:
        state: dict[str, Any] = {
            "where": self._where,
            "order": self._order,
            "limit": self._limit,
            "offset": self._offset,
            "columns": self._columns,
            "scope": self._scope,
            "preload": self._preload,
        }
        state.update(changes)
        # type(self): the composed Query, whichever mixin's method asks.
        return cast("Query[T]", type(self)(self._model, **state))

    def _as_query(self) -> Query[T]:
        # The mixins' methods run on the composed Query; this says so to the type checker.
        return cast("Query[T]", self)

    @property
    def model(self) -> type[T]:
        """The model class this query reads."""
        return self._model

    # -- pure builders ---------------------------------------------------------------------
    def criteria(self) -> list[ColumnElement[bool]]:
        """All WHERE criteria: the caller's plus the model's scope."""
        return [*self._where, *self._model.__ar_info__.scope_criteria(self._scope)]

    def select_statement(self) -> sa.Select[Any]:
        """The SELECT this query runs for ``all()``."""
        info = self._model.__ar_info__
        stmt = sa.select(*info.select_columns(self._columns)).where(*self.criteria())
        if self._order:
            stmt = stmt.order_by(*self._order)
        if self._limit is not None:
            stmt = stmt.limit(self._limit)
        if self._offset is not None:
            stmt = stmt.offset(self._offset)
        return stmt

    def count_statement(self) -> sa.Select[Any]:
        """The SELECT COUNT(*) this query runs for ``count()``."""
        if self._limit is not None or self._offset is not None:
            inner = self.select_statement().subquery()
            return sa.select(sa.func.count()).select_from(inner)
        table = self._model.__ar_info__.table
        return sa.select(sa.func.count()).select_from(table).where(*self.criteria())

    def _dialect(self) -> sa.Dialect | None:
        """The dialect the model's database speaks; None when it has none yet (statements
        are then built in their standard SQL form)."""
        try:
            return self._model.database().engine.dialect
        except NotConnectedError:
            return None

    def to_sql(
        self, dialect: str | sa.Dialect | None = None, *, literal_binds: bool = False
    ) -> SQL:
        """The SELECT's SQL and parameters (for the model's database, or a named dialect).

        Only what the query asks for is shown (no ``OFFSET`` unless ``offset()`` was called).
        ``literal_binds=True`` writes the values into the text, for reading only (``params``
        is then empty): the query itself always sends them as bound parameters.

        >>> import activerecord
        >>> from activerecord import ActiveRecord
        >>> class Item(ActiveRecord):
        ...     __table_name__ = "doc_items"
        ...     id: int | None = None
        ...     name: str
        >>> q = Item.query().where({"name": "it's"}).limit(5)
        >>> print(q.to_sql("sqlite", literal_binds=True))  # doctest: +NORMALIZE_WHITESPACE
        SELECT doc_items.id, doc_items.name FROM doc_items
        WHERE doc_items.name = 'it''s' LIMIT 5
        """
        stmt = self.select_statement()
        return compile_sql(stmt, self._model, dialect, literal_binds=literal_binds)

    def _scalar(self, stmt: sa.Executable) -> Any:
        """The one value ``stmt`` selects, read before the connection goes back (a cursor read
        after that would race the pool; Python 3.10's sqlite3 resets it on the rollback)."""
        db = self._model.database()
        with driver_errors(f"{self._model.__name__} query"), read_connection(db) as conn:
            return conn.execute(stmt).scalar_one()

    def __repr__(self) -> str:
        return f"<Query {self._model.__name__}: {self.to_sql().sql}>"

