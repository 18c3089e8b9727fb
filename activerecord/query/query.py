"""``Query[T]``: an immutable, chainable query over one model.

Every builder (``where``, ``order_by``, ``limit``, ...) returns a new query. Every terminal
(``all``, ``count``, ``update``, ``delete``) has a pure twin that returns the SQLAlchemy Core
construct (``select_statement``, ``count_statement``, ``update_statement``, ``delete_statement``),
so SQL can be inspected with :meth:`Query.to_sql` without a server.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Member(ActiveRecord):
    ...     __table_name__ = "doc_members"
    ...     id: int | None = None
    ...     status: str
    >>> q = Member.query().where({"status": "active"}).order_by("-id").limit(5)
    >>> print(q.to_sql(dialect="sqlite").sql)  # doctest: +NORMALIZE_WHITESPACE
    SELECT doc_members.id, doc_members.status FROM doc_members
    WHERE doc_members.status = ? ORDER BY doc_members.id DESC LIMIT ?
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..aio.query import AsyncQueryMixin
from .building import QueryBuilding
from .reading import QueryReading
from .sql import SQL, compile_sql
from .state import T
from .writing import QueryWriting

if TYPE_CHECKING:
    from ..model import ActiveRecord  # noqa: F401 - T's bound

__all__ = ["SQL", "Query", "compile_sql"]


class Query(QueryBuilding[T], QueryReading[T], QueryWriting[T], AsyncQueryMixin[T]):
    """An immutable query over ``model``; build with ``Model.query()``.

    Its methods come in three groups, one module each: building (``where``, ``order_by``,
    ...: :mod:`~activerecord.query.building`), reading (``all``, ``count``, ``to_pandas``,
    ...: :mod:`~activerecord.query.reading`) and writing (``update``, ``delete``, ...:
    :mod:`~activerecord.query.writing`), over the state of :mod:`~activerecord.query.state`;
    the async twins of the terminals (``aall``, ``aupdate``, ...) come from
    :mod:`~activerecord.aio.query`.
    """

    __slots__ = ()
