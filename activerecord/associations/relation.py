"""Declaring relations: ``belongs_to``, ``has_many``, ``has_one`` (``through=`` a join model).

A relation is a class attribute, not a pydantic field: it is no column, and it is not in
``model_dump()``. Its target may be a class or a class name resolved on first use (forward
references, models in other modules); what it names is checked then, and a wrong name is a
:class:`~activerecord.errors.SchemaError` naming the model and the relation.

Example::

    >>> from activerecord import ActiveRecord, belongs_to, has_many
    >>> class Shelf(ActiveRecord):
    ...     __table_name__ = "doc_shelves"
    ...     id: int | None = None
    ...     volumes = has_many("Volume", order_by="-title")
    >>> class Volume(ActiveRecord):
    ...     __table_name__ = "doc_volumes"
    ...     id: int | None = None
    ...     shelf_id: int | None = None
    ...     title: str
    ...     shelf = belongs_to("Shelf")
    >>> Shelf.volumes.foreign_key, Volume.shelf.foreign_key, Volume.shelf.target is Shelf
    ('shelf_id', 'shelf_id', True)
    >>> "volumes" in Shelf.model_fields
    False
"""

from __future__ import annotations

import importlib
import itertools
import re
import sys
import types
import weakref
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from ..errors import QueryError, SchemaError
from .loading import assign_related, forget_related, read_related

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["Relation", "belongs_to", "has_many", "has_one", "relation_of", "relations_of"]

Kind = Literal["belongs_to", "has_many", "has_one"]
Dependent = Literal["delete", "nullify", "soft_delete"]
DEPENDENTS = ("delete", "nullify", "soft_delete")


_RESOLVED_ATTRIBUTES = frozenset({
    "foreign_key", "primary_key", "target_key", "target_pk", "owner_key", "target_column",
    "target", "through",
})


def snake_case(name: str) -> str:
    """``UserProfile`` → ``user_profile``: the stem of conventional foreign keys.

    >>> snake_case("UserProfile"), snake_case("Author")
    ('user_profile', 'author')
    """
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class Relation(property):
    """One declared relation. Reading it on an instance loads (once) and returns the related
    record(s); assigning sets them. Build it with :func:`belongs_to`, :func:`has_many` or
    :func:`has_one`.

    It subclasses ``property`` because pydantic leaves properties alone (no field is made
    of them) and routes assignment through their ``__set__`` even under
    ``validate_assignment``.
    """

    owner: type[ActiveRecord]
    name: str

    def __init__(
        self,
        kind: Kind,
        target: type[ActiveRecord] | str,
        *,
        foreign_key: str | None = None,
        primary_key: str | None = None,
        through: type[ActiveRecord] | str | None = None,
        target_key: str | None = None,
        order_by: str | tuple[str, ...] | None = None,
        dependent: Dependent | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self._target_spec = target
        self._through_spec = through
        self._foreign_key = foreign_key
        self._primary_key = primary_key
        self._target_key = target_key
        self.order_by: tuple[str, ...] = (
            () if order_by is None else (order_by,) if isinstance(order_by, str) else order_by
        )
        self.dependent = dependent
        self._resolved = False
        self.name = "<unnamed>"
        if dependent is not None and dependent not in DEPENDENTS:
            raise SchemaError(
                f"{kind}(): dependent must be one of {', '.join(DEPENDENTS)}; got {dependent!r}"
            )
        if dependent is not None and (kind == "belongs_to" or through is not None):
            raise SchemaError(
                f"{kind}(): dependent= is for has_many/has_one without through= (the rows "
                "that point at the deleted record)"
            )
        if through is not None and kind == "belongs_to":
            raise SchemaError("belongs_to() takes no through=; use has_many/has_one")

    def __getattr__(self, name: str) -> Any:
        # The keys and models are known once the relation is resolved: resolve on first ask.
        if name in _RESOLVED_ATTRIBUTES and not self.__dict__.get("_resolved", True):
            self.resolve()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __set_name__(self, owner: type[ActiveRecord], name: str) -> None:
        self.owner = owner
        self.name = name

    def __repr__(self) -> str:
        owner = getattr(self, "owner", None)
        where = f"{owner.__name__}.{self.name}" if owner is not None else self.name
        return f"<{self.kind} {where}>"

    # -- descriptor ------------------------------------------------------------------------
    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return read_related(self, instance)

    def __set__(self, instance: Any, value: Any) -> None:
        assign_related(self, instance, value)

    def __delete__(self, instance: Any) -> None:
        forget_related(instance, self.name)

    # -- resolution ------------------------------------------------------------------------
    def _fail(self, message: str) -> SchemaError:
        return SchemaError(f"{self.owner.__name__}.{self.name} ({self.kind}): {message}")

    def resolve(self) -> Relation:
        """Find the target (and join) models and check the keys; idempotent, cached.

        Raises :class:`~activerecord.errors.SchemaError` naming the model and the relation.
        """
        if self._resolved:
            return self
        owner = self.owner
        target = self._model(self._target_spec, "target")
        through = None if self._through_spec is None else self._model(self._through_spec, "through")
        t_info = target.__ar_info__
        if self.kind == "belongs_to":
            # The key lives here, on the owner; it references the target's key.
            fk = self._foreign_key or f"{snake_case(target.__name__)}_id"
            pk = self._primary_key or self._single_pk(target)
            self._check_field(owner, fk, "foreign_key")
            self._check_field(target, pk, "primary_key")
            self.foreign_key, self.primary_key = fk, pk
            self.owner_key, self.target_column = fk, pk
        elif through is None:
            fk = self._foreign_key or f"{snake_case(owner.__name__)}_id"
            pk = self._primary_key or self._single_pk(owner)
            self._check_field(target, fk, "foreign_key")
            self._check_field(owner, pk, "primary_key")
            self.foreign_key, self.primary_key = fk, pk
            self.owner_key, self.target_column = pk, fk
            if self.dependent == "nullify" and not _nullable(t_info.columns[fk]):
                raise self._fail(
                    f"dependent='nullify' needs {target.__name__}.{fk} to be optional "
                    "(NULL allowed)"
                )
            if self.dependent == "soft_delete" and target.__ar_info__.deleted_field is None:
                raise self._fail(
                    f"dependent='soft_delete' needs {target.__name__} to use SoftDeleteMixin"
                )
        else:
            # The join model holds both keys: one to the owner, one to the target.
            fk = self._foreign_key or f"{snake_case(owner.__name__)}_id"
            tk = self._target_key or f"{snake_case(target.__name__)}_id"
            pk = self._primary_key or self._single_pk(owner)
            tpk = self._single_pk(target)
            self._check_field(through, fk, "foreign_key")
            self._check_field(through, tk, "target_key")
            self._check_field(owner, pk, "primary_key")
            self.foreign_key, self.primary_key, self.target_key = fk, pk, tk
            self.target_pk = tpk
            self.owner_key, self.target_column = pk, fk
        for key in self.order_by:
            name = key.strip().lstrip("-").split()[0] if key.strip() else key
            if name not in t_info.fields:
                raise self._fail(f"order_by names {name!r}, which is not a field of "
                                 f"{target.__name__} (fields: {', '.join(t_info.fields)})")
        self.target = target
        self.through = through
        self._resolved = True
        return self

    @property
    def many(self) -> bool:
        """Whether the relation holds a list (``has_many``)."""
        return self.kind == "has_many"

    def _model(self, spec: type[ActiveRecord] | str, role: str) -> type[ActiveRecord]:
        if isinstance(spec, type):
            if _is_model(spec):
                return spec
            raise self._fail(f"{role} {spec!r} is not a concrete ActiveRecord model")
        if not isinstance(spec, str) or not spec:
            raise self._fail(f"{role} must be a model class or its name; got {spec!r}")
        found = _find_model(spec, self.owner)
        if found is None:
            raise self._fail(f"no model named {spec!r} ({role}) is defined")
        return found

    def _single_pk(self, model: type[ActiveRecord]) -> str:
        pk = model.__ar_info__.pk_fields
        if len(pk) != 1:
            raise self._fail(
                f"{model.__name__} has a composite primary key; name the referenced field "
                "with primary_key="
            )
        return pk[0]

    def _check_field(self, model: type[ActiveRecord], fname: str, option: str) -> None:
        fields = model.__ar_info__.fields
        if fname not in fields:
            raise self._fail(
                f"{model.__name__} has no field {fname!r} ({option}; fields: {', '.join(fields)}); "
                f"add it or name another with {option}="
            )


def _nullable(column: sa.Column[Any]) -> bool:
    return bool(column.nullable)


def _find_model(spec: str, owner: type[ActiveRecord]) -> type[ActiveRecord] | None:
    """The model a name means: ``module.Class``, a class of the owner's module, else the
    most recently defined model of that name (classes made in functions live nowhere else)."""
    if "." in spec:
        module_name, _, cls_name = spec.rpartition(".")
        try:
            module: types.ModuleType | None = importlib.import_module(module_name)
        except ImportError:
            module = None
        value = getattr(module, cls_name, None)
        return value if _is_model(value) else None
    home = sys.modules.get(owner.__module__)
    value = getattr(home, spec, None)
    if _is_model(value):
        return value
    same = [(order, cls) for cls, order in list(_ORDER.items()) if cls.__name__ == spec]
    return max(same, key=lambda entry: entry[0])[1] if same else None


#: Every concrete model class (weakly held), numbered in the order they were defined.
_ORDER: weakref.WeakKeyDictionary[type, int] = weakref.WeakKeyDictionary()
_COUNTER = itertools.count(1)


def _is_model(value: Any) -> bool:
    """A concrete model class (``note_defined`` saw it made)."""
    try:
        return isinstance(value, type) and value in _ORDER
    except TypeError:  # an unhashable class
        return False


def note_defined(cls: type) -> None:
    """Remember the order models are defined in (a redefined name means the newest)."""
    _ORDER[cls] = next(_COUNTER)


def relations_of(model: type[ActiveRecord]) -> dict[str, Relation]:
    """Every relation of a model (its own and inherited), by name."""
    cached = model.__dict__.get("__ar_relations__")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    found: dict[str, Relation] = {}
    for klass in reversed(model.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Relation):
                found[name] = value
    type.__setattr__(model, "__ar_relations__", found)
    return found


def relation_of(model: type[ActiveRecord], name: str) -> Relation:
    """The resolved relation ``name`` of ``model``; :class:`QueryError` if it has none."""
    relation = relations_of(model).get(name) if isinstance(name, str) else None
    if relation is None:
        known = ", ".join(relations_of(model)) or "none"
        raise QueryError(f"{model.__name__} has no relation {name!r} (relations: {known})")
    return relation.resolve()


def belongs_to(
    target: type[ActiveRecord] | str,
    *,
    foreign_key: str | None = None,
    primary_key: str | None = None,
) -> Any:
    """This model holds the key of one ``target`` record: ``book.author`` is it, or None.

    ``foreign_key``: the field here (default ``<target snake name>_id``); ``primary_key``:
    the referenced field of the target (default its primary key).

    >>> from activerecord import ActiveRecord, belongs_to
    >>> class Country(ActiveRecord):
    ...     __table_name__ = "doc_countries"
    ...     id: int | None = None
    >>> class City(ActiveRecord):
    ...     __table_name__ = "doc_cities"
    ...     id: int | None = None
    ...     country_id: int | None = None
    ...     country = belongs_to(Country)
    >>> City.country.resolve().foreign_key
    'country_id'
    """
    return Relation("belongs_to", target, foreign_key=foreign_key, primary_key=primary_key)


def has_many(
    target: type[ActiveRecord] | str,
    *,
    foreign_key: str | None = None,
    primary_key: str | None = None,
    through: type[ActiveRecord] | str | None = None,
    target_key: str | None = None,
    order_by: str | tuple[str, ...] | None = None,
    dependent: Dependent | None = None,
) -> Any:
    """Many ``target`` records hold this record's key: ``author.books`` is a list.

    ``foreign_key``: the field of the target (with ``through``: of the join model) that
    holds this record's key, default ``<this model's snake name>_id``; ``primary_key``: the
    field of this model it references (default the primary key); ``through``: a join model
    whose ``target_key`` (default ``<target snake name>_id``) references the target;
    ``order_by``: field names, ``"-title"`` descending; ``dependent``: ``"delete"``,
    ``"nullify"`` or ``"soft_delete"`` the rows when this record is deleted.

    >>> from activerecord import ActiveRecord, has_many
    >>> class Club(ActiveRecord):
    ...     __table_name__ = "doc_clubs"
    ...     id: int | None = None
    ...     members = has_many("ClubMember", dependent="delete")
    >>> class ClubMember(ActiveRecord):
    ...     __table_name__ = "doc_club_members"
    ...     id: int | None = None
    ...     club_id: int
    >>> Club.members.resolve().foreign_key
    'club_id'
    """
    return Relation(
        "has_many", target, foreign_key=foreign_key, primary_key=primary_key, through=through,
        target_key=target_key, order_by=order_by, dependent=dependent,
    )


def has_one(
    target: type[ActiveRecord] | str,
    *,
    foreign_key: str | None = None,
    primary_key: str | None = None,
    through: type[ActiveRecord] | str | None = None,
    target_key: str | None = None,
    order_by: str | tuple[str, ...] | None = None,
    dependent: Dependent | None = None,
) -> Any:
    """One ``target`` record holds this record's key: ``author.profile`` is it, or None.
    Options as for :func:`has_many`; with several rows, the first by ``order_by`` (default
    the target's primary key).

    >>> from activerecord import ActiveRecord, has_one
    >>> class Person(ActiveRecord):
    ...     __table_name__ = "doc_persons"
    ...     id: int | None = None
    ...     passport = has_one("Passport")
    >>> class Passport(ActiveRecord):
    ...     __table_name__ = "doc_passports"
    ...     id: int | None = None
    ...     person_id: int
    >>> Person.passport.resolve().foreign_key
    'person_id'
    """
    return Relation(
        "has_one", target, foreign_key=foreign_key, primary_key=primary_key, through=through,
        target_key=target_key, order_by=order_by, dependent=dependent,
    )
