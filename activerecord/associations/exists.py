"""``where_exists`` / ``where_not_exists``: filter on related rows with a correlated EXISTS.

A subquery, not a join: no row is repeated, and the clause references the owner's table only
through correlation, so it works in set-based ``update()`` and ``delete()`` too. The related
model's default scope applies (a soft-deleted related row never matches).

Example::

    >>> from activerecord import ActiveRecord, has_many
    >>> class Forum(ActiveRecord):
    ...     __table_name__ = "doc_forums"
    ...     id: int | None = None
    ...     threads = has_many("ForumThread")
    >>> class ForumThread(ActiveRecord):
    ...     __table_name__ = "doc_forum_threads"
    ...     id: int | None = None
    ...     forum_id: int
    ...     locked: bool = False
    >>> q = Forum.query().where_not_exists("threads", {"locked": True})
    >>> print(q.to_sql("sqlite").sql)  # doctest: +NORMALIZE_WHITESPACE
    SELECT doc_forums.id FROM doc_forums WHERE NOT (EXISTS (SELECT 1 FROM doc_forum_threads
    WHERE doc_forum_threads.forum_id = doc_forums.id AND doc_forum_threads.locked = ?))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.util import ClauseAdapter

from ..query.conditions import condition
from .relation import relation_of

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["exists_clause"]


def exists_clause(
    model: type[ActiveRecord], name: str, cond: Any, params: tuple[Any, ...]
) -> ColumnElement[bool]:
    """``EXISTS (SELECT 1 FROM <related> WHERE <link to model's row> AND cond AND scope)``."""
    relation = relation_of(model, name)
    target = relation.target
    t_info, o_info = target.__ar_info__, model.__ar_info__
    criteria: list[ColumnElement[bool]] = []
    if cond is not None:
        criteria.append(condition(t_info, cond, params))
    criteria += target.__ar_info__.scope_criteria("default")
    table: Any = t_info.table
    adapt = None
    if table is o_info.table:  # a model related to itself: the subquery's copy is aliased
        table = t_info.table.alias(f"{t_info.table.name}_related")
        adapt = ClauseAdapter(table)
        criteria = [adapt.traverse(c) for c in criteria]
    columns = table.c
    owner_col = o_info.columns[relation.owner_key]

    def col(fname: str) -> Any:
        return columns[t_info.columns[fname].key]

    through = relation.through
    if through is None:
        link = col(relation.target_column) == owner_col
        source = table
    else:
        j_info = through.__ar_info__
        source = table.join(
            j_info.table, j_info.columns[relation.target_key] == col(relation.target_pk)
        )
        link = j_info.columns[relation.foreign_key] == owner_col
        criteria += through.__ar_info__.scope_criteria("default")
    subquery = (
        sa.select(sa.literal_column("1", sa.Integer))
        .select_from(source)
        .where(link, *criteria)
        .correlate(o_info.table)
    )
    return sa.exists(subquery)
