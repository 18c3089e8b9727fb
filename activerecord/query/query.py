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

import itertools
from collections.abc import Iterator, Mapping
from itertools import repeat
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import pydantic
import sqlalchemy as sa
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement

from ..arguments import check_size
from ..backend.dialects import limit_in_subquery, readable_compiler, update_reads_assigned
from ..backend.errors import driver_errors
from ..backend.transaction import read_connection, retrying, write_connection
from ..errors import (
    ArgumentTypeError,
    NotConnectedError,
    QueryError,
    RecordNotFound,
    UnsafeWriteError,
    ValidationError,
)
from ..insert.shape import source_alias
from ..model.callbacks import query_hook
from ..validation import collector_paused
from .conditions import condition, resolve
from .expression import Expression

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["SQL", "Query"]

T = TypeVar("T", bound="ActiveRecord")

#: Scopes a query can read in: the model's default scope, everything, or only the hidden rows.
SCOPES = ("default", "with_deleted", "only_deleted")


class SQL(NamedTuple):
    """A statement's SQL text and its bound parameters, as a dialect renders them."""

    sql: str
    params: dict[str, Any]

    def __str__(self) -> str:
        return self.sql


class Query(Generic[T]):
    """An immutable query over ``model``; build with ``Model.query()``."""

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
        return Query(self._model, **state)

    @property
    def model(self) -> type[T]:
        """The model class this query reads."""
        return self._model

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
        from ..associations.loading import preload_tree

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
        from ..associations.exists import exists_clause

        clause = exists_clause(self._model, name, cond, params)
        return self._copy(where=(*self._where, clause))

    def where_not_exists(self, name: str, cond: Any = None, *params: Any) -> Query[T]:
        """AND ``NOT EXISTS`` a row of relation ``name`` matching ``cond``; see
        :meth:`where_exists`."""
        from ..associations.exists import exists_clause

        clause = sa.not_(exists_clause(self._model, name, cond, params))
        return self._copy(where=(*self._where, clause))

    def with_deleted(self) -> Query[T]:
        """Include rows the model's default scope hides (soft-deleted rows)."""
        return self._copy(scope="with_deleted")

    def only_deleted(self) -> Query[T]:
        """Only the rows the model's default scope hides."""
        return self._copy(scope="only_deleted")

    # -- pure builders ---------------------------------------------------------------------
    def criteria(self) -> list[ColumnElement[bool]]:
        """All WHERE criteria: the caller's plus the model's scope."""
        return [*self._where, *self._model._scope_criteria(self._scope)]

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
                out[fname] = resolve(info, value)
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
        if touch:
            for fname, value in self._model._update_defaults().items():
                out.setdefault(fname, value)
        lock = self._model._lock_field()
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
        >>> print(compile_sql(stmt, Tag, "sqlite").sql)  # doctest: +NORMALIZE_WHITESPACE
        UPDATE doc_tags SET deleted_at=? WHERE doc_tags.id = ? AND doc_tags.deleted_at IS NULL
        """
        self._check_writable(all_rows, "delete")
        model = self._model
        soft = model._soft_delete_values()
        if soft is None:
            return self._write_statement(self.criteria(), None)
        criteria = self.criteria()
        if self._scope != "default":
            criteria += model._scope_criteria("default")
        return self._write_statement(criteria, self._bump(soft))

    def hard_delete_statement(self, *, all_rows: bool = False) -> sa.Delete:
        """The DELETE that ``hard_delete()`` runs, whatever the model's soft-delete setting.

        It removes matching rows whether or not they are soft-deleted (a purge);
        ``only_deleted()`` narrows it to the soft-deleted ones.
        """
        self._check_writable(all_rows, "delete")
        scope = "with_deleted" if self._scope == "default" else self._scope
        criteria = [*self._where, *self._model._scope_criteria(scope)]
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
        values = model._restore_values()
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
        criteria = [*self._where, *model._scope_criteria("only_deleted")]
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

    def _dialect(self) -> sa.Dialect | None:
        """The dialect the model's database speaks; None when it has none yet (statements
        are then built in their standard SQL form)."""
        try:
            return self._model.database().engine.dialect
        except NotConnectedError:
            return None

    def _bump(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` and, for an optimistic-lock model, ``version + 1``: a soft delete or a
        restore changes the row, as an update does."""
        lock = self._model._lock_field()
        if lock is None or lock in values:
            return dict(values)
        return {**values, lock: self._model.__ar_info__.columns[lock] + 1}

    def _by_column(self, values: Mapping[str, Any]) -> dict[sa.Column[Any], Any]:
        columns = self._model.__ar_info__.columns
        return {columns[f]: v for f, v in values.items()}

    def subquery_of(self, name: str) -> sa.Select[Any]:
        """``SELECT <name> FROM ... WHERE <this query's criteria, scope included>``, for use
        inside other statements (``column.in_(...)``), so hidden rows never leak through.

        >>> from activerecord import ActiveRecord, SoftDeleteMixin
        >>> class Org(SoftDeleteMixin, ActiveRecord):
        ...     __table_name__ = "doc_orgs"
        ...     id: int | None = None
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
        if not isinstance(other, Query):
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

    # -- terminals -------------------------------------------------------------------------
    def _execute(self, stmt: sa.Executable) -> sa.CursorResult[Any]:
        db = self._model.database()
        with driver_errors(f"{self._model.__name__} query"), read_connection(db) as conn:
            return conn.execute(stmt)

    def _rows(self, stmt: sa.Select[Any]) -> list[Any]:
        from ..io.reading import read_columns

        # The records outlive the call: promote them past the young collections at once.
        with collector_paused(promote=True):
            names, columns = read_columns(self, stmt)
            if self._columns is not None:
                return list(map(dict, map(zip, repeat(names), zip(*columns))))
            records = self._model._from_db_columns(names, columns)
        if self._preload:
            from ..associations.loading import preload_records

            preload_records(self._model, records, self._preload)
        return records

    def all(self) -> list[T]:
        """Every matching record (dicts when ``select()`` narrowed the columns)."""
        from ..io.display import RecordList  # a list that notebooks show as a table

        return RecordList(self._rows(self.select_statement()))

    def __iter__(self) -> Iterator[T]:
        return iter(self.all())

    def first(self) -> T | None:
        """The first matching record (by primary key unless ordered), or None."""
        query = self if self._order else self.order_by(*self._model.__ar_info__.pk_fields)
        rows = query.limit(1)._rows(query.limit(1).select_statement())
        return rows[0] if rows else None

    def find(self, key: Any) -> T:
        """The record with this primary key (a tuple for composite keys) among the rows this
        query matches, with its preloads; :class:`RecordNotFound` when there is none.

        >>> import activerecord
        >>> from activerecord import ActiveRecord
        >>> class Lamp(ActiveRecord):
        ...     __table_name__ = "doc_lamps"
        ...     id: int | None = None
        >>> _ = activerecord.connect("sqlite://")
        >>> Lamp.create_table()
        >>> Lamp.query().find(Lamp.create().id).id
        1
        """
        pk = self._model.__ar_info__.pk_fields
        values = key if isinstance(key, tuple) else (key,)
        name = self._model.__name__
        if len(values) != len(pk):
            raise RecordNotFound(
                f"{name} has a {len(pk)}-column primary key; got {key!r}", model=name, key=key
            )
        found = self.where(dict(zip(pk, values))).first()
        if found is None:
            raise RecordNotFound(f"{name} {key!r} not found", model=name, key=key)
        return found

    def one(self) -> T:
        """Exactly one record: :class:`RecordNotFound` if none, ``QueryError`` if several."""
        rows = self.limit(2).all()
        if not rows:
            raise RecordNotFound(f"no {self._model.__name__} matches", model=self._model.__name__)
        if len(rows) > 1:
            raise QueryError(f"more than one {self._model.__name__} matches")
        return rows[0]

    def count(self) -> int:
        """How many rows match."""
        return int(self._execute(self.count_statement()).scalar_one())

    def exists(self) -> bool:
        """Whether any row matches."""
        stmt = sa.select(sa.exists(self.select_statement().limit(1)))
        return bool(self._execute(stmt).scalar_one())

    def _aggregate(self, fn: Any, name: str) -> Any:
        column = self._model.__ar_info__.column(name)
        stmt = sa.select(fn(column)).select_from(column.table).where(*self.criteria())
        return self._execute(stmt).scalar_one()

    def sum(self, name: str) -> Any:
        """SUM of a column over the matching rows (None if there are none)."""
        return self._aggregate(sa.func.sum, name)

    def avg(self, name: str) -> Any:
        """AVG of a column over the matching rows."""
        return self._aggregate(sa.func.avg, name)

    def min(self, name: str) -> Any:
        """MIN of a column over the matching rows."""
        return self._aggregate(sa.func.min, name)

    def max(self, name: str) -> Any:
        """MAX of a column over the matching rows."""
        return self._aggregate(sa.func.max, name)

    def batches(self, size: int = 1000) -> Iterator[list[T]]:
        """Yield lists of up to ``size`` records, by keyset pagination on the primary key.

        Each batch is a fresh query (``WHERE pk > last``), so rows are never skipped or read
        twice the way OFFSET paging does while the table changes. The arguments are checked
        at the call, not at the first ``next()``.

        >>> import activerecord
        >>> from activerecord import ActiveRecord
        >>> class Tick(ActiveRecord):
        ...     __table_name__ = "doc_ticks"
        ...     id: int | None = None
        ...     n: int = 0
        >>> _ = activerecord.connect("sqlite://")
        >>> Tick.create_table()
        >>> _ = Tick.batch_insert([Tick(n=n) for n in range(5)])
        >>> [len(batch) for batch in Tick.query().batches(2)]
        [2, 2, 1]
        """
        check_size(size, "size", optional=False)
        if self._order or self._offset is not None:
            raise QueryError("batches() orders by the primary key; drop order_by/offset")
        return self._batches(size)

    def _batches(self, size: int) -> Iterator[list[T]]:
        info = self._model.__ar_info__
        pk_cols = [info.columns[f] for f in info.pk_fields]
        remaining = self._limit
        after: tuple[Any, ...] | None = None
        while remaining is None or remaining > 0:
            take = size if remaining is None else min(size, remaining)
            query = self._copy(limit=take, order=tuple(c.asc() for c in pk_cols))
            if after is not None:
                key = pk_cols[0] if len(pk_cols) == 1 else sa.tuple_(*pk_cols)
                bound = after[0] if len(pk_cols) == 1 else sa.tuple_(*after)
                query = query._copy(where=(*query._where, key > bound))
            rows = query._rows(query.select_statement())
            if not rows:
                return
            yield rows
            if remaining is not None:
                remaining -= len(rows)
            last = rows[-1]
            if isinstance(last, dict):
                after = tuple(last[f] for f in info.pk_fields)
            else:
                after = tuple(getattr(last, f) for f in info.pk_fields)
            if len(rows) < take:
                return

    def each(self, size: int = 1000) -> Iterator[T]:
        """Yield records one by one, reading ``size`` at a time (see :meth:`batches`).

        >>> import activerecord
        >>> from activerecord import ActiveRecord
        >>> class Tock(ActiveRecord):
        ...     __table_name__ = "doc_tocks"
        ...     id: int | None = None
        ...     n: int = 0
        >>> _ = activerecord.connect("sqlite://")
        >>> Tock.create_table()
        >>> _ = Tock.batch_insert([Tock(n=n) for n in range(3)])
        >>> [t.id for t in Tock.query().each(2)]
        [1, 2, 3]
        """
        return itertools.chain.from_iterable(self.batches(size))

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
            return self
        self.hard_delete_statement(all_rows=all_rows)
        found: Query[T] = hook(self) or self
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
        from ..model.base import dependents_before

        before = [] if purge is None else dependents_before(self._model, stmt, purge=purge)
        db = self._model.database()
        context = f"{verb} of {self._model.__name__}"
        with driver_errors(context), write_connection(db, statements=1 + len(before)) as conn:
            for dependent in before:
                conn.execute(dependent)
            return int(conn.execute(stmt).rowcount)

    # -- reading out and notebook display (activerecord.io) --------------------------------
    def to_dicts(self, *, chunk_size: int = 10_000) -> list[dict[str, Any]]:
        """Every matching row as a dict keyed by field name, read ``chunk_size`` rows at a
        time through a server-side cursor (no pydantic validation: fast).

        >>> import activerecord
        >>> from activerecord import ActiveRecord
        >>> class Dot(ActiveRecord):
        ...     __table_name__ = "doc_dots"
        ...     id: int | None = None
        ...     x: int
        >>> _ = activerecord.connect("sqlite://")
        >>> Dot.create_table()
        >>> _ = Dot.batch_insert_from_dicts([{"x": 5}])
        >>> Dot.query().to_dicts()
        [{'id': 1, 'x': 5}]
        """
        from ..io.reading import query_dicts

        return query_dicts(self, chunk_size)

    def to_pandas(self, *, chunk_size: int = 10_000) -> Any:
        """The matching rows as a pandas DataFrame, streamed and built ``chunk_size`` rows at a
        time (needs pandas: ``pip install 'activerecord[dataframes]'``)."""
        from ..io.reading import query_pandas

        return query_pandas(self, chunk_size)

    def to_polars(self, *, chunk_size: int = 10_000) -> Any:
        """The matching rows as a polars DataFrame, streamed and built ``chunk_size`` rows at a
        time (needs polars: ``pip install 'activerecord[dataframes]'``)."""
        from ..io.reading import query_polars

        return query_polars(self, chunk_size)

    def _repr_html_(self) -> str:
        """Jupyter shows a query as its first rows in a table, captioned with its SQL."""
        from ..io.display import query_html

        return query_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text display: the SQL and the first rows as a text table."""
        from ..io.display import query_text

        p.text(query_text(self))

    def __repr__(self) -> str:
        return f"<Query {self._model.__name__}: {self.to_sql().sql}>"


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


def compile_sql(
    stmt: sa.ClauseElement,
    model: type[ActiveRecord],
    dialect: str | sa.Dialect | None,
    *,
    literal_binds: bool = False,
) -> SQL:
    """Render a statement for a dialect: a name, a Dialect, or the model's database.

    ``literal_binds`` writes the values into the text (for reading); a value of a type
    SQLAlchemy cannot write as a literal (JSON) is a :class:`QueryError`.
    """
    resolved: sa.Dialect
    if isinstance(dialect, sa.Dialect):
        resolved = dialect
    elif isinstance(dialect, str):
        resolved = _dialect_by_name(dialect)
    else:
        try:
            resolved = model.database().engine.dialect
        except Exception:
            resolved = _dialect_by_name("sqlite")
    compile_kwargs = {"render_postcompile": True, "literal_binds": literal_binds}
    try:
        compiled = readable_compiler(resolved)(resolved, stmt, compile_kwargs=compile_kwargs)
    except sa.exc.CompileError as exc:
        if not literal_binds:
            raise
        raise QueryError(
            f"{model.__name__}: cannot show every value inline ({exc}); "
            "call to_sql() without literal_binds to see them as parameters"
        ) from exc
    return SQL(str(compiled), {} if literal_binds else dict(compiled.params))


def _dialect_by_name(name: str) -> sa.Dialect:
    aliases = {
        "postgresql": "postgresql+psycopg",
        "mysql": "mysql+pymysql",
        "mariadb": "mysql+pymysql",
        "sqlite": "sqlite+pysqlite",
    }
    url = sa.make_url(f"{aliases.get(name, name)}://")
    return url.get_dialect()()
