"""Assignments in a batch's before hooks, validated with the chunk instead of one by one.

A model validates each assignment (pydantic's ``validate_assignment``): about 2 us a field,
as much as the whole batch insert of a record on PostgreSQL. While a batch write runs its
before hook over a chunk (:func:`deferred`), an assignment to a field of a record of the
model is stored as given and logged; after the hook, each field's assigned values are
validated in one call of a cached ``TypeAdapter`` of that field (C, about 0.05 us a value),
and the validated values (coerced as the assignment would have) replace them. A value a
field refuses raises :class:`~activerecord.errors.BatchValidationError` naming the record and
the field, and the records get back what they had, before anything is written. A write the
hook makes meanwhile (``save()``, a batch) first validates what was assigned so far
(:func:`flush`), so no unchecked value reaches the database.

Only where that is the same check: fields without ``@field_validator`` on a model without
model validators (those validate on assignment, as always); records of other models validate
at once. Inside the hook a record reads a value as assigned (not yet coerced: ``"5"`` for an
``int`` field until the hook returns).

Example::

    >>> from activerecord import ActiveRecord
    >>> class Gauge(ActiveRecord):
    ...     __table_name__ = "doc_deferred_gauges"
    ...     id: int | None = None
    ...     level: int = 0
    >>> gauges = [Gauge(), Gauge()]
    >>> def hook() -> None:
    ...     for gauge in gauges:
    ...         gauge.level = "7"
    >>> _ = deferred(Gauge, gauges, 0, hook)
    >>> [g.level for g in gauges]
    [7, 7]
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from itertools import compress, repeat
from operator import itemgetter
from typing import Annotated, Any

import pydantic
from pydantic import ConfigDict, TypeAdapter

from ..errors import BatchValidationError

__all__ = ["Assignments", "deferrable_fields", "deferred", "flush", "put_back", "setattr_handler"]

_MISSING = object()
_FIELDS = "__ar_deferrable__"
_dict_of = operator.attrgetter("__dict__")
_ADAPTERS = "__ar_field_adapters__"

try:  # pydantic >= 2.11 memoizes one setattr handler per field; this is the validating one
    from pydantic.main import _SIMPLE_SETATTR_HANDLERS

    _VALIDATING: Any = _SIMPLE_SETATTR_HANDLERS.get("validate_assignment")
except ImportError:  # pragma: no cover - an older pydantic: every assignment validates
    _VALIDATING = None

class Assignments:
    """Assignments in order: the record, the field and the value before, in three lists.

    Three lists and no tuple per assignment: a batch assigns to 100,000 records, and as many
    new tuples (containers the garbage collector tracks) set off collections that walk every
    record of the batch, which doubled what a hook costs.
    """

    __slots__ = ("befores", "names", "records")

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.names: list[str] = []
        self.befores: list[Any] = []

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[tuple[Any, str, Any]]:
        return zip(self.records, self.names, self.befores)

    def extend(self, other: Assignments) -> None:
        self.records.extend(other.records)
        self.names.extend(other.names)
        self.befores.extend(other.befores)

    def clear(self) -> None:
        self.records.clear()
        self.names.clear()
        self.befores.clear()


class _Log:
    """The assignments deferred while one chunk's before hook runs."""

    __slots__ = ("done", "entries", "model", "offset", "records")

    def __init__(self, model: type[Any], records: list[Any], offset: int) -> None:
        self.model = model
        self.records = records
        self.offset = offset
        self.entries = Assignments()  # not validated yet
        self.done = Assignments()  # validated (flushed), kept to be put back

    def everything(self) -> Assignments:
        """The done and the pending assignments, in order (what a failure puts back)."""
        both = Assignments()
        both.extend(self.done)
        both.extend(self.entries)
        return both


_open: ContextVar[_Log | None] = ContextVar("activerecord_deferred", default=None)


def _assign(model: Any, name: str, value: Any) -> None:
    """The setattr handler of a deferrable field: logged while a chunk of the record's
    model runs its before hook, else validated now (as pydantic's own handler does)."""
    log = _open.get()
    if log is not None and type(model) is log.model:
        data = model.__dict__
        entries = log.entries
        entries.records.append(model)
        entries.names.append(name)
        entries.befores.append(data.get(name, _MISSING))
        data[name] = value
        model.__pydantic_fields_set__.add(name)
    else:
        model.__pydantic_validator__.validate_assignment(model, name, value)


_pydantic_setattr = pydantic.BaseModel.__setattr__


def _batch_setattr(record: Any, name: str, value: Any) -> None:
    """A model's ``__setattr__`` once it has run a batch's before hook (:func:`_install`):
    what pydantic's own does, with :func:`_assign`'s logging inlined where pydantic would call
    it (the field's memoized handler is ours). A hook assigns to every record of the batch:
    one Python frame a record instead of two (pydantic's ``__setattr__``, then ``_assign``)
    measured about 5 ms less per 100,000 records, 2% of a hooked batch insert on PostgreSQL."""
    log = _open.get()
    if (
        log is not None
        and type(record) is log.model
        and record.__pydantic_setattr_handlers__.get(name) is _assign
    ):
        # _assign's lines, inlined on purpose: a shared helper would cost the frame saved.
        data = record.__dict__
        entries = log.entries
        entries.records.append(record)
        entries.names.append(name)
        entries.befores.append(data.get(name, _MISSING))
        data[name] = value
        record.__pydantic_fields_set__.add(name)
        return
    _pydantic_setattr(record, name, value)


def _install(model: type[Any]) -> None:
    """Give ``model`` :func:`_batch_setattr`, where its ``__setattr__`` is pydantic's own (a
    model or base with one of its own keeps it: its assignments take :func:`_assign`)."""
    own: Any = model.__setattr__  # the class's function (unbound), as found on its MRO
    if own is _pydantic_setattr:
        type.__setattr__(model, "__setattr__", _batch_setattr)


def setattr_handler(model: type[Any], name: str, handler: Any) -> Any:
    """The handler a record's ``_setattr_handler`` hands pydantic to memoize for ``name``:
    ours in place of pydantic's validating one where the field is deferrable (the same
    check, or deferred), any other unchanged."""
    if handler is _VALIDATING and handler is not None and name in deferrable_fields(model):
        return _assign
    return handler


def deferrable_fields(model: type[Any]) -> frozenset[str]:
    """The fields of ``model`` whose assignments a batch's before hook may defer (empty when
    the model does not validate assignments, has model validators, or pydantic is older).
    Computed once per class."""
    found: frozenset[str] | None = model.__dict__.get(_FIELDS)
    if found is None:
        found = _deferrable(model)
        type.__setattr__(model, _FIELDS, found)
        type.__setattr__(model, _ADAPTERS, {})
    return found


def _deferrable(model: type[Any]) -> frozenset[str]:
    if _VALIDATING is None or not model.model_config.get("validate_assignment"):
        return frozenset()
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.root_validators or decorators.validators:
        return frozenset()
    checked: set[str] = set()
    for info in decorators.field_validators.values():
        checked.update(info.info.fields)
    if "*" in checked:
        return frozenset()
    return frozenset(name for name in model.model_fields if name not in checked)


def _adapter(model: type[Any], name: str) -> TypeAdapter[list[Any]]:
    """A list of the field's values, validated as the model validates the field (its
    annotation, constraints and the model's config); one per class and field."""
    adapters: dict[str, TypeAdapter[list[Any]]] = model.__dict__[_ADAPTERS]
    adapter = adapters.get(name)
    if adapter is None:
        field = model.model_fields[name]
        config = {k: v for k, v in model.model_config.items()
                  if k not in ("validate_assignment", "title")}
        item: Any = Annotated[field.annotation, field]
        adapter = adapters[name] = TypeAdapter(list[item], config=ConfigDict(**config))  # type: ignore[typeddict-item]
    return adapter


def deferred(
    model: type[Any], records: list[Any], offset: int, call: Callable[[], Any]
) -> Assignments:
    """Run ``call`` (the before hook over ``records``, the chunk at ``offset`` of the input)
    with assignments to records of ``model`` deferred, then validate them; the entries
    logged (what :func:`put_back` undoes). If ``call`` or the validation raises, the records
    get back what they had."""
    if not deferrable_fields(model) or not records:
        call()
        return Assignments()
    flush()  # a batch inside an outer batch's hook: the outer's assignments are checked first
    _install(model)
    log = _Log(model, records, offset)
    token = _open.set(log)
    try:
        call()
        _settle(log)
    except BaseException:
        put_back(log.everything())
        raise
    finally:
        _open.reset(token)
    return log.done


def flush() -> None:
    """Validate the assignments deferred so far (a write inside a before hook calls it
    before it reads any record): the values it writes are checked ones."""
    log = _open.get()
    if log is not None and log.entries:
        _settle(log)


def _settle(log: _Log) -> None:
    """Validate each field's values assigned, set the validated ones; refuse the bad ones."""
    entries, model = log.entries, log.model
    names = set(entries.names)
    failures: dict[int, list[Any]] = {}
    settled: list[tuple[str, list[Any], list[Any]]] = []
    for name in names:
        # A record assigned twice is validated twice, with its last value: cheaper than
        # finding the duplicates, and the same result. C loops (map) over the entries: this
        # runs once per record of the batch.
        assigned = (entries.records if len(names) == 1
                    else list(compress(entries.records, map(name.__eq__, entries.names))))
        datas = list(map(_dict_of, assigned))
        try:
            values = _adapter(model, name).validate_python(list(map(itemgetter(name), datas)))
        except pydantic.ValidationError as exc:
            _refused(log, name, assigned, exc, failures)
            continue
        settled.append((name, datas, values))
    if failures:
        raise BatchValidationError(model.__name__, dict(sorted(failures.items())))
    for name, datas, values in settled:
        deque(map(operator.setitem, datas, repeat(name), values), maxlen=0)
    log.done.extend(entries)
    log.entries = Assignments()


def _refused(
    log: _Log, name: str, assigned: list[Any], exc: pydantic.ValidationError,
    failures: dict[int, list[Any]],
) -> None:
    """Add the refused values to ``failures`` by the record's index in the input; a record
    outside the chunk gets pydantic's own error, as its assignment would have raised."""
    where = {id(r): log.offset + i for i, r in enumerate(log.records)}
    for error in exc.errors(include_url=False):
        loc = error.get("loc", ())
        record = assigned[int(loc[0])]
        index = where.get(id(record))
        if index is None:
            put_back(log.everything())
            log.done, log.entries = Assignments(), Assignments()
            record.__pydantic_validator__.validate_assignment(record, name, error.get("input"))
            continue  # pragma: no cover - the value was refused a moment ago
        failures.setdefault(index, []).append({**error, "loc": (name, *loc[1:])})


def put_back(entries: Assignments) -> None:
    """Give the records the values they had before the deferred assignments, newest first."""
    for record, name, before in reversed(list(entries)):
        if before is _MISSING:
            record.__dict__.pop(name, None)
        else:
            record.__dict__[name] = before
