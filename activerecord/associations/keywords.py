"""Relations given when a record is built: ``Author(name="x", books=[Book(title="a")])``, or
``Author.model_validate({"name": "x", "books": [{"title": "a"}]})``, or the same as JSON to
``model_validate_json`` (its fields, and nested records', validated in JSON mode).

The fields are validated as pydantic validates them; then each relation is set as
``author.books = [...]`` after construction would set it (the foreign keys that follow from it
included). A relation's value may hold records of its target or dicts, which become records of
the target validated the same way (their own relations too); a key of such a dict that is
neither a field nor a relation of the target is refused, as ``batch_insert_from_dicts``
refuses it (unless the target's ``model_config`` has ``extra="allow"``). Every error (a
field's, a nested record's, a value of the wrong kind) is reported in one pydantic
``ValidationError`` whose ``loc`` is the path (``("books", 0, "title")``), and no record is
built.

Example::

    >>> from activerecord import ActiveRecord, has_many
    >>> class Deck(ActiveRecord):
    ...     __table_name__ = "doc_decks"
    ...     id: int | None = None
    ...     cards = has_many("DeckCard")
    >>> class DeckCard(ActiveRecord):
    ...     __table_name__ = "doc_deck_cards"
    ...     id: int | None = None
    ...     deck_id: int | None = None
    ...     face: str
    >>> deck = Deck(id=3, cards=[DeckCard(face="ace"), {"face": "king"}])
    >>> [(card.deck_id, card.face) for card in deck.cards]
    [(3, 'ace'), (3, 'king')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic_core import InitErrorDetails, PydanticCustomError, from_json, to_json

from .loading import assign_related
from .relation import Relation, relation_of

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["parsed_with_relations", "validate_with_relations"]

Loc = tuple[int | str, ...]


def validate_with_relations(
    model: type[ActiveRecord], data: Mapping[Any, Any], names: frozenset[str],
    instance: ActiveRecord | None = None, *, json: bool = False, **options: Any,
) -> ActiveRecord:
    """Validate ``data``, whose keys in ``names`` are relations of ``model``, into
    ``instance`` (the constructor) or a new record (``model_validate``; ``options`` are its
    keyword arguments; ``json``: ``data`` was parsed from JSON, validate it in JSON mode).
    Raises one ``pydantic.ValidationError`` for everything wrong."""
    fields = {key: value for key, value in data.items() if key not in names}
    errors: list[InitErrorDetails] = []
    related: list[tuple[Relation, Any]] = []
    options["json"] = json
    for name in (key for key in data if key in names):
        relation = relation_of(model, name)  # a broken declaration: SchemaError, as on use
        related.append((relation, _value(relation, data[name], (name,), errors, options)))
    del options["json"]
    record = instance
    try:
        validator = model.__pydantic_validator__
        if json:
            record = validator.validate_json(to_json(fields), **options)
        elif instance is None:
            record = validator.validate_python(fields, **options)
        else:
            validator.validate_python(fields, self_instance=instance)
    except pydantic.ValidationError as exc:
        errors[:0] = _details(exc, ())
    if errors:
        raise pydantic.ValidationError.from_exception_data(model.__name__, errors)
    assert record is not None
    for relation, value in related:
        assign_related(relation, record, value)
    return record


def parsed_with_relations(json_data: str | bytes | bytearray,
                          names: frozenset[str]) -> dict[str, Any] | None:
    """``json_data`` parsed, when it is an object naming one of the relations ``names``;
    else None (pydantic then validates the text itself, reporting invalid JSON its way)."""
    text = json_data if isinstance(json_data, str) else bytes(json_data).decode("utf-8", "replace")
    if not any(f'"{name}"' in text for name in names):
        return None
    try:
        data = from_json(json_data)
    except ValueError:
        return None
    return data if isinstance(data, dict) and not names.isdisjoint(data) else None


def _value(relation: Relation, value: Any, loc: Loc, errors: list[InitErrorDetails],
           options: dict[str, Any]) -> Any:
    if not relation.many:
        return None if value is None else _record(relation.target, value, loc, errors, options)
    if value is None or isinstance(value, (str, bytes, Mapping)) or not isinstance(
        value, Iterable
    ):
        errors.append({"type": "list_type", "loc": loc, "input": value})
        return None
    return [
        _record(relation.target, item, (*loc, index), errors, options)
        for index, item in enumerate(value)
    ]


def _record(target: type[ActiveRecord], item: Any, loc: Loc, errors: list[InitErrorDetails],
            options: dict[str, Any]) -> Any:
    if isinstance(item, target):
        return item
    if not isinstance(item, Mapping):
        errors.append({
            "type": "model_type", "loc": loc, "input": item,
            "ctx": {"class_name": target.__name__},
        })
        return None
    if target.model_config.get("extra") != "allow":
        known = _known_keys(target)
        unknown = [key for key in item if key not in known]
        if unknown:
            errors.extend(
                {"type": "extra_forbidden", "loc": (*loc, str(key)), "input": item[key]}
                for key in unknown
            )
            return None
    options = dict(options)
    try:
        if options.pop("json"):  # back to JSON text: the target validates it in JSON mode
            return target.model_validate_json(to_json(item), **options)
        return target.model_validate(item, **options)
    except pydantic.ValidationError as exc:
        errors.extend(_details(exc, loc))
        return None


def _known_keys(model: type[ActiveRecord]) -> set[str]:
    """The keys a dict for ``model`` may hold: field names, their aliases, relation names."""
    known = set(model.model_fields) | set(getattr(model, "__ar_relation_names__", ()))
    for finfo in model.model_fields.values():
        for alias in (finfo.alias, finfo.validation_alias):
            if isinstance(alias, str):
                known.add(alias)
    return known


def _details(exc: pydantic.ValidationError, prefix: Loc) -> list[InitErrorDetails]:
    """``exc``'s errors, their ``loc`` under ``prefix``, as details a new error is made of."""
    details: list[InitErrorDetails] = []
    for error in exc.errors(include_url=False):
        detail: InitErrorDetails = {
            "type": error["type"], "loc": (*prefix, *error["loc"]), "input": error["input"],
        }
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        try:  # a pydantic error type keeps its type; a custom one (a validator's) its message
            pydantic.ValidationError.from_exception_data("check", [detail])
        except (KeyError, TypeError, ValueError):
            detail = {  # no context: the message is taken as it is, never formatted
                "type": PydanticCustomError(error["type"], error["msg"]),
                "loc": detail["loc"], "input": error["input"],
            }
        details.append(detail)
    return details
