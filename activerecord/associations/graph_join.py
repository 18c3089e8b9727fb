"""The join rows a graph insert writes for a ``through`` relation
(:mod:`activerecord.associations.graph`): one per (owner, target) pair, those already stored
between two saved records read first (one query per chunk of owner keys) and left out.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord, has_many
    >>> class Deck(ActiveRecord):
    ...     __table_name__ = "doc_decks"
    ...     id: int | None = None
    ...     cards = has_many("DeckCard", through="DeckSlot")
    >>> class DeckSlot(ActiveRecord):
    ...     __table_name__ = "doc_deck_slots"
    ...     id: int | None = None
    ...     deck_id: int
    ...     deck_card_id: int
    >>> class DeckCard(ActiveRecord):
    ...     __table_name__ = "doc_deck_cards"
    ...     id: int | None = None
    >>> _ = activerecord.connect("sqlite://")
    >>> activerecord.create_all()
    >>> deck, card = Deck.create(), DeckCard.create()
    >>> from activerecord.associations.relation import relation_of
    >>> cards = relation_of(Deck, "cards")
    >>> insert_join_rows(cards, [deck], [False], [[card]], {id(card): False}, None)
    >>> insert_join_rows(cards, [deck], [False], [[card]], {id(card): False}, None)
    >>> [(s.deck_id, s.deck_card_id) for s in DeckSlot.query().all()]
    [(1, 1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..backend.errors import translate_error
from ..backend.transaction import read_connection
from .loading import key_chunk
from .relation import Relation

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["insert_join_rows"]


def insert_join_rows(
    relation: Relation, owners: Sequence[ActiveRecord], owners_new: Sequence[bool],
    related: Sequence[Sequence[ActiveRecord]], target_new: dict[int, bool],
    batch_size: int | None,
) -> None:
    """The join rows of ``relation`` (a ``through`` one) for ``owners`` and the records set
    on each (``related[i]``): one per (owner, target) pair, except those already stored
    between two saved records. ``owners_new[i]``: owner i was inserted by the graph;
    ``target_new``: the same for each target, by ``id()``."""
    join = relation.through
    assert join is not None
    fk, tk = relation.foreign_key, relation.target_key
    owner_keys = [record.__dict__.get(relation.primary_key) for record in owners]
    pairs: list[tuple[Any, Any]] = []
    saved_owners: list[Any] = []
    for key, is_new, items in zip(owner_keys, owners_new, related):
        for item in items:
            pairs.append((key, item.__dict__.get(relation.target_pk)))
            if not is_new and not target_new[id(item)]:
                saved_owners.append(key)
    if saved_owners:
        stored = _stored_links(relation, saved_owners)
        pairs = [pair for pair in pairs if pair not in stored]
    pairs = list(dict.fromkeys(pairs))  # a pair set twice is one row
    if pairs:
        join.batch_insert_from_dicts(
            [{fk: key, tk: target_key} for key, target_key in pairs],
            batch_size=batch_size, return_records=False,
        )


def _stored_links(relation: Relation, owner_keys: list[Any]) -> set[tuple[Any, Any]]:
    """The (owner key, target key) pairs the join model already holds for these owners
    (its default scope applies: a soft-deleted join row links nothing)."""
    join = relation.through
    assert join is not None
    info = join.__ar_info__
    owner_col, target_col = info.columns[relation.foreign_key], info.columns[relation.target_key]
    keys = list(dict.fromkeys(owner_keys))
    chunk = key_chunk(join)
    stored: set[tuple[Any, Any]] = set()
    try:
        with read_connection(join.database()) as conn:
            for start in range(0, len(keys), chunk):
                stmt = sa.select(owner_col, target_col).where(
                    owner_col.in_(keys[start : start + chunk]), *info.scope_criteria("default")
                )
                stored.update((row[0], row[1]) for row in conn.execute(stmt))
    except sa.exc.DBAPIError as exc:
        raise translate_error(
            exc, context=f"reading the links of {relation.owner.__name__}.{relation.name}"
        ) from exc
    return stored
