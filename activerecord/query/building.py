"""Building a query: the generative methods, each returning a new
:class:`~activerecord.query.query.Query` (``where``, ``order_by``, ``limit``, ``select``,
``preload``, ``where_exists``, ``where_in``, scopes).

Example::

    >>> from activerecord import ActiveRecord
    >>> class Kite(ActiveRecord):
    ...     __table_name__ = "doc_kites"
    ...     id: int | None = None
    ...     color: str
    >>> base = Kite.query()
    >>> red = base.where({"color": "red"})
    >>> red is base, len(base.criteria()), len(red.criteria())
    (False, 0, 1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..associations.exists import exists_clause
from ..associations.preload import preload_tree
from ..errors import QueryError
from .conditions import condition, resolve
from .state import QueryState, T

if TYPE_CHECKING:
    from .query import Query

__all__ = ["QueryBuilding"]


class QueryBuilding(QueryState[T]):
    """The builders of :class:`~activerecord.query.query.Query`."""

    __slots__ = ()

    # -- builders --------------------------------------------------------------------------
    def where(self, cond: Any, *params: Any) -> Query[T]:
        """AND a condition: a dict, a ``?`` fragment with params, or a column expression.

        >>> from activerecord import ActiveRecord
        >>> class Post(ActiveRecord):
        ...     __table_name__ = "doc_posts"
        ...     id: int | None = None
        ...     views: int = 0
        >>> q = Post.query().where("views > ?", 10).where({"id": [1, 2]})
        >>> print(q.to_sql("sqlite").sql)  # doctest: +NORMALIZE_WHITESPACE
        SELECT doc_posts.id, doc_posts.views FROM doc_posts
        WHERE (views > ?) AND doc_posts.id IN (?, ?)
        """
        clause = condition(self._model.__ar_info__, cond, params)
        return self._copy(where=(*self._where, clause))

    def or_where(self, cond: Any, *params: Any) -> Query[T]:
        """OR a condition with everything given so far: ``(previous) OR (cond)``."""
        clause = condition(self._model.__ar_info__, cond, params)
        if not self._where:
            return self._copy(where=(clause,))
        return self._copy(where=(sa.or_(sa.and_(*self._where), clause),))

    def order_by(self, *keys: Any) -> Query[T]:
        """Order by field names (``"-name"`` or ``"name desc"`` for descending) or expressions."""
        info = self._model.__ar_info__
        order: list[Any] = []
        for key in keys:
            if isinstance(key, str):
                name, descending = key.strip(), False
                if name.startswith("-"):
                    name, descending = name[1:], True
                else:
                    parts = name.split()
                    if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
                        name, descending = parts[0], parts[1].lower() == "desc"
                column = info.column(name)
                order.append(column.desc() if descending else column.asc())
            elif isinstance(key, sa.ClauseElement):
                order.append(resolve(info, key))
            else:
                raise QueryError(f"cannot order by {key!r}")
        return self._copy(order=(*self._order, *order))

    def limit(self, n: int | None) -> Query[T]:
        """At most ``n`` rows."""
        if n is not None and (not isinstance(n, int) or n < 0):
            raise QueryError(f"limit must be a non-negative int, got {n!r}")
        return self._copy(limit=n)

    def offset(self, n: int | None) -> Query[T]:
        """Skip ``n`` rows."""
        if n is not None and (not isinstance(n, int) or n < 0):
            raise QueryError(f"offset must be a non-negative int, got {n!r}")
        return self._copy(offset=n)

    def select(self, *names: str) -> Query[T]:
        """Read only these columns; terminals then return dicts instead of records."""
        info = self._model.__ar_info__
        if self._preload and names:
            raise QueryError("select() reads dicts, which hold no relations: drop preload()")
        return self._copy(columns=tuple(info.column(n) for n in names) or None)

    def preload(self, *paths: str) -> Query[T]:
        """Load these relations of the records read, one query per relation per level
        (``IN`` over the collected keys, chunked below the backend's parameter limit), never
        one per record. Nested relations are dotted: ``"books.tags"``. A name that is not a
        relation raises :class:`QueryError` before any SQL.

        >>> import activerecord
        >>> from activerecord import ActiveRecord, has_many
        >>> class Deck(ActiveRecord):
        ...     __table_name__ = "doc_decks"
        ...     id: int | None = None
        ...     cards = has_many("DeckCard")
        >>> class DeckCard(ActiveRecord):
        ...     __table_name__ = "doc_deck_cards"
        ...     id: int | None = None
        ...     deck_id: int
        >>> _ = activerecord.connect("sqlite://")
        >>> activerecord.create_all()
        >>> deck = Deck.create()
        >>> _ = DeckCard.batch_insert([DeckCard(deck_id=deck.id), DeckCard(deck_id=deck.id)])
        >>> [len(d.cards) for d in Deck.query().preload("cards").all()]
        [2]
        """
        if self._columns is not None:
            raise QueryError("preload() needs whole records: drop select()")
        return self._copy(preload=preload_tree(self._model, paths, self._preload))

    def where_exists(self, name: str, cond: Any = None, *params: Any) -> Query[T]:
        """AND ``EXISTS`` (a correlated subquery) a row of relation ``name`` matching ``cond``
        (any :meth:`where` form, on the related model; none: any related row). The related
        model's default scope applies. Being a subquery, it works in :meth:`update` and
        :meth:`delete` too.

        >>> from activerecord import ActiveRecord, belongs_to
        >>> class Owner(ActiveRecord):
        ...     __table_name__ = "doc_owners"
        ...     id: int | None = None
        ...     status: str
        >>> class Car(ActiveRecord):
        ...     __table_name__ = "doc_cars"
        ...     id: int | None = None
        ...     owner_id: int
        ...     owner = belongs_to(Owner)
        >>> q = Car.query().where_exists("owner", {"status": "banned"})
        >>> print(q.to_sql("sqlite").sql)  # doctest: +NORMALIZE_WHITESPACE
        SELECT doc_cars.id, doc_cars.owner_id FROM doc_cars WHERE EXISTS (SELECT 1
        FROM doc_owners WHERE doc_owners.id = doc_cars.owner_id AND doc_owners.status = ?)
        """
        clause = exists_clause(self._model, name, cond, params)
        return self._copy(where=(*self._where, clause))

    def where_not_exists(self, name: str, cond: Any = None, *params: Any) -> Query[T]:
        """AND ``NOT EXISTS`` a row of relation ``name`` matching ``cond``; see
        :meth:`where_exists`."""
        clause = sa.not_(exists_clause(self._model, name, cond, params))
        return self._copy(where=(*self._where, clause))

    def with_deleted(self) -> Query[T]:
        """Include rows the model's default scope hides (soft-deleted rows)."""
        return self._copy(scope="with_deleted")

    def only_deleted(self) -> Query[T]:
        """Only the rows the model's default scope hides."""
        return self._copy(scope="only_deleted")


    def subquery_of(self, name: str) -> sa.Select[Any]:
        """``SELECT <name> FROM ... WHERE <this query's criteria, scope included>``, for use
        inside other statements (``column.in_(...)``), so hidden rows never leak through.

        >>> from activerecord import ActiveRecord, SoftDeleteMixin
        >>> class Org(SoftDeleteMixin, ActiveRecord):
        ...     __table_name__ = "doc_orgs"
        ...     id: int | None = None
        >>> from activerecord.query.sql import compile_sql
        >>> sql = compile_sql(Org.query().subquery_of("id"), Org, "sqlite").sql
        >>> print(sql)  # doctest: +NORMALIZE_WHITESPACE
        SELECT doc_orgs.id FROM doc_orgs WHERE doc_orgs.deleted_at IS NULL
        """
        return self.select(name).select_statement()

    def where_in(self, name: str, other: Query[Any]) -> Query[T]:
        """AND ``name IN (SELECT ... FROM other)``; the subquery carries ``other``'s criteria and
        its model's scope (a soft-deleted row of ``other`` never matches).

        ``other`` selects one column with ``select("col")``, or its single-column primary key.

        >>> from activerecord import ActiveRecord, SoftDeleteMixin
        >>> class Team(SoftDeleteMixin, ActiveRecord):
        ...     __table_name__ = "doc_teams"
        ...     id: int | None = None
        >>> class Player(ActiveRecord):
        ...     __table_name__ = "doc_players"
        ...     id: int | None = None
        ...     team_id: int
        >>> q = Player.query().where_in("team_id", Team.query())
        >>> print(q.to_sql("sqlite").sql)  # doctest: +NORMALIZE_WHITESPACE
        SELECT doc_players.id, doc_players.team_id FROM doc_players
        WHERE doc_players.team_id IN (SELECT doc_teams.id FROM doc_teams
        WHERE doc_teams.deleted_at IS NULL)
        """
        if not isinstance(other, QueryState):
            raise QueryError(f"where_in() takes a Query, got {type(other).__name__}")
        column = self._model.__ar_info__.column(name)
        if other._columns is None:
            pk = other._model.__ar_info__.pk_fields
            if len(pk) != 1:
                raise QueryError(
                    f"where_in(): select one column of {other._model.__name__} with select()"
                )
            other = other.select(pk[0])
        elif len(other._columns) != 1:
            raise QueryError(
                f"where_in(): the {other._model.__name__} query must select exactly one column"
            )
        return self._copy(where=(*self._where, column.in_(other.select_statement())))

