"""``dependent=`` on ``has_many`` / ``has_one``: what happens to the rows pointing at deleted
records, in the same transaction, one set-based statement per relation (never one per row).

* ``"delete"``: the related rows are deleted the way ``delete()`` deletes them (a
  soft-deleting model marks them); when the owners are removed with ``hard_delete()``, the
  related rows are removed for real too;
* ``"soft_delete"``: the related rows are marked deleted (the related model must use
  ``SoftDeleteMixin``);
* ``"nullify"``: their foreign key is set to NULL.

Each statement selects the related rows by ``foreign_key IN (SELECT key FROM owners WHERE
<the owners' delete criteria>)`` and runs before the owners' own statement; deleted related
rows carry their own ``dependent=`` relations further.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord, has_many
    >>> class Basket(ActiveRecord):
    ...     __table_name__ = "doc_baskets"
    ...     id: int | None = None
    ...     eggs = has_many("BasketEgg", dependent="delete")
    >>> class BasketEgg(ActiveRecord):
    ...     __table_name__ = "doc_basket_eggs"
    ...     id: int | None = None
    ...     basket_id: int
    >>> _ = activerecord.connect("sqlite://")
    >>> activerecord.create_all()
    >>> basket = Basket.create()
    >>> _ = BasketEgg.batch_insert([BasketEgg(basket_id=basket.id) for _ in range(3)])
    >>> basket.delete(), BasketEgg.query().count()
    (True, 0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import SchemaError
from .relation import Relation, relations_of

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["dependent_statements", "dependents_before", "has_dependents"]


def dependent_statements(
    model: type[ActiveRecord],
    whereclause: Any,
    *,
    purge: bool,
    chain: tuple[Relation, ...] = (),
) -> list[sa.Update | sa.Delete]:
    """The statements that handle ``model``'s dependent relations for the rows matching
    ``whereclause`` (about to be deleted: removed with ``purge``, else as ``delete()`` does),
    in the order they must run: deepest first, all before the owners' statement."""
    out: list[sa.Update | sa.Delete] = []
    for relation in relations_of(model).values():
        if relation.dependent is None:
            continue
        relation.resolve()
        if relation in chain:
            names = " -> ".join(f"{r.owner.__name__}.{r.name}" for r in (*chain, relation))
            raise SchemaError(f"dependent= relations form a cycle: {names}")
        target = relation.target
        keys = sa.select(model.__ar_info__.columns[relation.primary_key])
        if whereclause is not None:
            keys = keys.where(whereclause)
        linked = target.__ar_info__.columns[relation.foreign_key].in_(keys)
        stmt: sa.Update | sa.Delete
        if relation.dependent == "nullify":
            stmt = target.query().with_deleted().where(linked).update_statement(
                {relation.foreign_key: None}
            )
            out.append(stmt)
            continue
        if relation.dependent == "delete" and purge:
            stmt = target.query().with_deleted().where(linked).hard_delete_statement()
            child_purge = True
        else:
            stmt = target.query().where(linked).delete_statement()
            child_purge = False
        out += dependent_statements(
            target, stmt.whereclause, purge=child_purge, chain=(*chain, relation)
        )
        out.append(stmt)
    return out


def has_dependents(model: type[ActiveRecord]) -> bool:
    """Whether deleting ``model`` rows touches other tables (cheap: a cached dict lookup)."""
    return any(r.dependent is not None for r in relations_of(model).values())


def dependents_before(
    model: type[ActiveRecord], stmt: sa.Update | sa.Delete, *, purge: bool
) -> list[sa.Update | sa.Delete]:
    """The statements of ``model``'s ``dependent=`` relations for the rows ``stmt`` deletes;
    none for most models (found out once per class)."""
    if not model.__dict__.get("__ar_has_dependents__", True):
        return []
    if not has_dependents(model):
        type.__setattr__(model, "__ar_has_dependents__", False)
        return []
    return dependent_statements(model, stmt.whereclause, purge=purge)
