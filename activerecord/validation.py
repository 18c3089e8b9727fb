"""Validating many records at once: one cached ``TypeAdapter`` per model, the GC at rest.

Both the batch writes and the reads that build records from rows go through here: pydantic's
loop over a list runs in Rust, far faster than one ``model_validate`` call per record.

Example::

    >>> from activerecord import ActiveRecord
    >>> class Point(ActiveRecord):
    ...     __table_name__ = "doc_points"
    ...     id: int | None = None
    ...     x: int
    >>> with collector_paused():
    ...     points = list_adapter(Point).validate_python([{"x": 1}, {"x": "2"}])
    >>> [p.x for p in points]
    [1, 2]
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic_core import SchemaValidator

if TYPE_CHECKING:
    from .model import ActiveRecord

__all__ = [
    "RecordBuilder", "collector_paused", "list_adapter", "record_builder", "record_failures",
    "validate_rows",
]

_adapters: weakref.WeakKeyDictionary[type, pydantic.TypeAdapter[Any]] = (
    weakref.WeakKeyDictionary()
)


def list_adapter(model: type[ActiveRecord]) -> pydantic.TypeAdapter[Any]:
    """The ``TypeAdapter(list[model])`` (built once per model)."""
    adapter = _adapters.get(model)
    if adapter is None:
        adapter = pydantic.TypeAdapter(list[model])  # type: ignore[valid-type]
        _adapters[model] = adapter
    return adapter


def validate_rows(model: type[ActiveRecord], rows: list[Any]) -> list[dict[str, Any]]:
    """Validate ``rows`` (field dicts) as ``list[model]`` would; return the fields each
    record would hold, without building the records where that is the same check.

    A writer that sends the fields and hands no record back needs only the ``__dict__``
    pydantic would give each record. The model's own field schemas (with the model's
    config) do that check, run as a ``typed-dict`` schema: measured here, 50,000 six-field
    rows took 110-140 ms as records, 90-120 ms through the model's ``model-fields`` schema
    alone, 27-32 ms as a typed dict of the same field schemas. Where validating the model
    runs more than its fields' own validation (a model validator, ``model_post_init``, a
    custom ``__init__`` pydantic calls, a root model, definitions), the records are built
    and their ``__dict__`` returned; where a field's validation is handed the record's
    other fields (a validator or default factory taking them), the ``model-fields`` schema
    runs, which hands them as the record does. Errors are the same either way (locations
    start at the row's index).

    >>> from activerecord import ActiveRecord
    >>> class Dot(ActiveRecord):
    ...     __table_name__ = "doc_dots"
    ...     id: int | None = None
    ...     x: int
    >>> validate_rows(Dot, [{"x": "2"}])
    [{'id': None, 'x': 2}]
    """
    validator = _rows_validator(model)
    if validator is None:
        return [record.__dict__ for record in list_adapter(model).validate_python(rows)]
    validated: list[Any] = validator.validate_python(rows)
    if validated and isinstance(validated[0], tuple):  # model-fields: (fields, extra, set)
        return list(map(_first, validated))
    return validated


def _first(item: tuple[Any, ...]) -> Any:
    return item[0]


_row_validators: weakref.WeakKeyDictionary[type, SchemaValidator | None] = (
    weakref.WeakKeyDictionary()
)


def _rows_validator(model: type[ActiveRecord]) -> SchemaValidator | None:
    if model in _row_validators:
        return _row_validators[model]
    validator = None
    if model.__pydantic_complete__:
        found = _fields_schema(model)
        if found is not None:
            schema, inner = found
            items = _as_typed_dict(inner, schema.get("config")) or inner
            validator = SchemaValidator(
                {"type": "list", "items_schema": items},
                schema.get("config"),
            )
        _row_validators[model] = validator
    return validator


_FIELDS_SCHEMA_KEYS = frozenset({"type", "fields", "model_name", "computed_fields"})


def _fields_schema(
    model: type[ActiveRecord],
) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """(the model's core schema, its ``model-fields`` schema) where validating the model is
    validating its fields and nothing more, else None: anything around the model schema (a
    model validator, definitions), a custom ``__init__`` pydantic calls, ``model_post_init``,
    a root model, or a fields schema with settings of its own runs code or rules a check of
    the fields alone would skip."""
    schema: Mapping[str, Any] = model.__pydantic_core_schema__
    inner: Mapping[str, Any] = schema.get("schema", {})
    if (
        schema.get("type") != "model" or schema.get("custom_init") or schema.get("post_init")
        or schema.get("root_model") or model.__pydantic_post_init__ is not None
        or inner.get("type") != "model-fields" or set(inner) - _FIELDS_SCHEMA_KEYS
    ):
        return None
    return schema, inner


#: The keys of a ``model-field`` schema a ``typed-dict-field`` takes as they are (``frozen``
#: only concerns assignment).
_FIELD_KEYS = frozenset({"validation_alias", "serialization_alias", "serialization_exclude"})


def _as_typed_dict(inner: Mapping[str, Any], config: Any) -> dict[str, Any] | None:
    """The ``model-fields`` schema ``inner`` as a ``typed-dict`` of the same field schemas
    (a field with a default is not required, and gets it), or None where a field's
    validation may read the other fields (a ``with-info`` function, a default factory
    taking the data) or refers to definitions elsewhere."""
    fields: dict[str, Any] = {}
    for name, field in inner["fields"].items():
        if set(field) - _FIELD_KEYS - {"type", "schema", "frozen", "metadata"}:
            return None
        if _reads_others(field["schema"]):
            return None
        fields[name] = {
            "type": "typed-dict-field", "schema": field["schema"],
            "required": field["schema"].get("type") != "default",
            **{key: field[key] for key in _FIELD_KEYS if key in field},
        }
    # The config goes on the schema itself: a typed dict's fields take the model's (string
    # stripping, strictness...) from there, not from the validator's.
    return {"type": "typed-dict", "fields": fields, "extra_behavior": "ignore",
            **({"config": config} if config else {})}


def _reads_others(node: Any) -> bool:
    if isinstance(node, Mapping):
        if node.get("type") in ("with-info", "definition-ref") or node.get(
            "default_factory_takes_data"
        ):
            return True
        return any(map(_reads_others, node.values()))
    if isinstance(node, (list, tuple)):
        return any(map(_reads_others, node))
    return False


def record_failures(
    exc: pydantic.ValidationError, failures: dict[int, list[Any]], offset: int = 0
) -> dict[int, list[Any]]:
    """Add a list validation's errors to ``failures`` by record: the index in the list (plus
    ``offset``) keys them, and each error's location starts at the record's field."""
    for error in exc.errors(include_url=False):
        loc = error.get("loc", ())
        index = offset + int(loc[0]) if loc and isinstance(loc[0], int) else offset
        failures.setdefault(index, []).append({**error, "loc": tuple(loc[1:])})
    return failures


@contextmanager
def collector_paused(*, promote: bool = False) -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while many records are built (and written).

    Validation builds three containers per record (instance, ``__dict__``, fields set) and no
    cycles; with the collector on, each of its passes scans the growing set of new records
    again, which doubles the time of validating 100k records, and when it comes back on right
    after validating it scans them once more. Over a batch write's chunk too, the records
    nobody gets back (a file load) are freed before it runs again. Reference counting still
    frees everything as usual; a pause lasts one chunk or one result (well under a second for
    the default sizes). The collector is on again as soon as the last pause in progress at
    the moment (several threads may load at once) ends, and left alone when it was off before.

    ``promote=True`` (reads, whose records are handed back and outlive the call): when the
    collector comes back on, the objects made meanwhile join the oldest generation at once
    (``gc.freeze()`` then ``gc.unfreeze()``, two list splices) instead of being scanned by
    the young collection due the moment it is on, then by the middle one, inside the call:
    that is a third of the time of reading 100k records. They are scanned by the next full
    collection, as any long-lived object is. Skipped while someone has frozen objects
    (``gc.get_freeze_count()``): their freeze is theirs to undo.
    """
    global _pausers, _paused_here
    with _pause_lock:
        if _pausers == 0:
            _paused_here = gc.isenabled()
            if _paused_here:
                gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pausers -= 1
            if _pausers == 0 and _paused_here:
                if promote and gc.get_freeze_count() == 0:
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()


_pause_lock = threading.Lock()
_pausers = 0  # pauses now in progress
_paused_here = False  # whether they turned the collector off (it was on before the first)


# -- records from rows read: skip what the column already guarantees ---------------------------
#
# A value read back whose Python type is exactly what a plain field schema accepts (an ``int``
# for ``int``, a ``str`` within its length bounds for ``str``, a member for an ``Enum``, ...)
# comes out of pydantic unchanged: validating it only costs time. So each column of a chunk is
# checked as a whole (``set(map(type, values))``, at C speed); when every column passes, the
# records are built directly, with the same ``__dict__`` and fields set pydantic would give.
# Anything else (a field with a validator, an alias, a JSON or decimal field, a model
# validator, a value of another type, as SQLite's dynamic typing allows) goes through full
# validation, so a row the model would refuse still raises.

_NONE = type(None)
#: Core schema types whose validation returns a value of exactly this type unchanged, with
#: the schema keys that may appear without changing that.
_PLAIN: dict[str, tuple[type, frozenset[str]]] = {
    "int": (int, frozenset()),
    "float": (float, frozenset()),
    "bool": (bool, frozenset()),
    "str": (str, frozenset({"max_length", "min_length"})),
    "bytes": (bytes, frozenset()),
    "datetime": (dt.datetime, frozenset({"microseconds_precision"})),
    "date": (dt.date, frozenset()),
    "time": (dt.time, frozenset({"microseconds_precision"})),
    "uuid": (uuid.UUID, frozenset()),
}
#: Core config keys that change nothing about a value already of the right type.
_HARMLESS_CONFIG = frozenset({"title", "from_attributes", "revalidate_instances", "loc_by_alias"})
_MODEL_FIELD_KEYS = frozenset({"type", "schema", "metadata"})


@dataclass(frozen=True)
class _Check:
    """What a column's values must satisfy to be taken as they are."""

    kinds: frozenset[type]
    min_length: int | None = None
    max_length: int | None = None
    expected: frozenset[Any] | None = None

    def passes(self, values: Sequence[Any]) -> bool:
        if not set(map(type, values)) <= self.kinds:
            return False
        if self.min_length is None and self.max_length is None and self.expected is None:
            return True
        present = [v for v in values if v is not None] if _NONE in self.kinds else values
        if not present:
            return True
        if self.expected is not None and not set(present) <= self.expected:
            return False
        if self.max_length is not None and max(map(len, present)) > self.max_length:
            return False
        return self.min_length is None or min(map(len, present)) >= self.min_length


def _check_for(schema: Mapping[str, Any]) -> _Check | None:
    nullable = False
    while schema.get("type") in ("default", "nullable"):
        nullable = nullable or schema["type"] == "nullable"
        schema = schema["schema"]
    kind = schema.get("type")
    none = {_NONE} if nullable else set()
    if kind in _PLAIN:
        tp, allowed = _PLAIN[kind]
        if set(schema) - {"type", "metadata"} - allowed:
            return None
        return _Check(
            frozenset({tp, *none}), schema.get("min_length"), schema.get("max_length")
        )
    if kind == "enum" and set(schema) <= {"type", "cls", "members", "sub_type", "metadata", "ref"}:
        return _Check(frozenset({schema["cls"], *none}))
    if kind == "literal" and set(schema) <= {"type", "expected", "metadata"}:
        expected = schema["expected"]
        kinds = {type(v) for v in expected}
        if not kinds <= {str, int} or bool in kinds:
            return None
        return _Check(frozenset({*kinds, *none}), expected=frozenset(expected))
    return None


class RecordBuilder:
    """Builds one model's records from columns of values read, without pydantic when every
    column passes its check (see above); ``build`` returns None when one does not."""

    __slots__ = ("_checks", "_fields", "_model", "_names")

    def __init__(self, model: type[ActiveRecord]) -> None:
        self._model = model
        self._fields = tuple(model.model_fields)
        self._names = frozenset(self._fields)  # set(frozenset) copies its table: no hashing
        self._checks: dict[str, _Check] | None = self._plan(model)

    @staticmethod
    def _plan(model: type[ActiveRecord]) -> dict[str, _Check] | None:
        found = _fields_schema(model)  # else pydantic runs more than the fields: validate
        if found is None:
            return None
        schema, inner = found
        if set(schema.get("config", {})) - _HARMLESS_CONFIG or schema.get("extra_behavior"):
            return None
        if inner.get("computed_fields"):
            return None
        checks: dict[str, _Check] = {}
        for name, field in inner["fields"].items():
            if set(field) - _MODEL_FIELD_KEYS:
                return None
            check = _check_for(field["schema"])
            if check is None:
                return None
            checks[name] = check
        return checks

    def build(self, keys: Sequence[str], columns: Sequence[Sequence[Any]]) -> list[Any] | None:
        """The records of these columns (``keys``: their field names), or None."""
        checks = self._checks
        if checks is None or tuple(keys) != self._fields:
            return None
        for key, values in zip(keys, columns):
            if not checks[key].passes(values):
                return None
        model = self._model
        count = len(columns[0]) if columns else 0
        with collector_paused():
            records = list(map(_new, repeat(model, count)))
            dicts = list(map(dict, map(zip, repeat(keys), zip(*columns))))
            deque(map(_set_dict, records, dicts), maxlen=0)
            deque(map(_set_fields, records, map(set, repeat(self._names, count))), maxlen=0)
            deque(map(_set_extra, records, repeat(None, count)), maxlen=0)
            deque(map(_set_private, records, repeat(None, count)), maxlen=0)
        return records


_new = object.__new__
_set_dict = pydantic.BaseModel.__dict__["__dict__"].__set__
_set_fields = pydantic.BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = pydantic.BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = pydantic.BaseModel.__dict__["__pydantic_private__"].__set__
_builders: weakref.WeakKeyDictionary[type, RecordBuilder] = weakref.WeakKeyDictionary()


def record_builder(model: type[ActiveRecord]) -> RecordBuilder:
    """The model's :class:`RecordBuilder` (built once per model)."""
    builder = _builders.get(model)
    if builder is None:
        builder = _builders[model] = RecordBuilder(model)
    return builder
