"""Preparing one chunk of a batch write: input rows become row dicts (and records), checked
and with their defaults filled, before anything of the chunk is written.

Instances are checked to be of the model and give their ``__dict__`` (written in place, so
keys and defaults land on the records; :class:`~activerecord.model.state.Undo` hears of every
field filled), validated without building records
(:func:`~activerecord.validation.validate_rows`). Dicts are checked against the model's
fields, then validated as a whole (a failure is collected per record, the rest still
checked): into records by a cached ``TypeAdapter(list[Model])`` when records are wanted
back, else into their fields only; or built into records without validation, or sent as
they are (with every field's default) when no record is wanted back.

Example::

    >>> from activerecord import ActiveRecord
    >>> from activerecord.model.state import Undo
    >>> class Jar(ActiveRecord):
    ...     __table_name__ = "doc_jars"
    ...     id: int | None = None
    ...     label: str = "jam"
    >>> prepare = Preparer(Jar, validate=False, from_dicts=True, return_records=False)
    >>> undo = Undo(active=False, whole_call=True, copies=False)
    >>> prepare([{"id": 3}], 0, {}, undo)
    ([{'id': 3, 'label': 'jam'}], None)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic_core import PydanticUndefined

from ..errors import ArgumentTypeError, UnknownColumnError
from ..validation import list_adapter, record_failures, validate_rows

if TYPE_CHECKING:
    from ..model import ActiveRecord
    from ..model.state import Undo

__all__ = ["Preparer"]

_DICT = {dict}
_dict_of = attrgetter("__dict__")


class Preparer:
    """Turns one chunk of input into row dicts (and instances), filling defaults."""

    def __init__(
        self,
        model: type[ActiveRecord],
        *,
        validate: bool,
        from_dicts: bool,
        return_records: bool,
        build: bool = False,
        dicts: list[dict[str, Any]] | None = None,
    ) -> None:
        info = model.__ar_info__
        #: The instances' ``__dict__`` in input order, read and type-checked by the caller.
        self.given = dicts
        self.model = model
        self.info = info
        self.validate = validate
        self.from_dicts = from_dicts
        # ``build``: dicts become records even when none is handed back (the hooks get them).
        self.need_instances = return_records or not from_dicts or build
        self.known = frozenset(model.model_fields)
        self.adapter = list_adapter(model) if validate else None
        # Field defaults for dicts written without validation or instances.
        self.constants: dict[str, Any] = {}
        self.factories: dict[str, Callable[[], Any]] = {}
        for fname in info.fields:
            finfo = model.model_fields[fname]
            if finfo.default_factory is not None:
                self.factories[fname] = finfo.default_factory  # type: ignore[assignment]
            else:
                default = finfo.default
                self.constants[fname] = None if default is PydanticUndefined else default

    def __call__(
        self, chunk: list[Any], offset: int, failures: dict[int, list[Any]], undo: Undo
    ) -> tuple[list[dict[str, Any]], list[ActiveRecord] | None]:
        defaults = self.model._insert_defaults()
        if self.from_dicts:
            datas = self._dicts(chunk, offset, defaults)
        else:
            datas = self._instances(chunk, offset, defaults, undo)
        instances: list[ActiveRecord] | None = chunk if not self.from_dicts else None
        if self.adapter is not None:
            try:  # the caller pauses the GC
                if self.from_dicts and self.need_instances:
                    instances = self.adapter.validate_python(datas)
                    datas = list(map(_dict_of, instances))
                else:
                    # Instances are checked, dicts become rows: no records built.
                    rows = validate_rows(self.model, datas)
                    if self.from_dicts:
                        datas = rows
            except pydantic.ValidationError as exc:
                record_failures(exc, failures, offset)
                return [], None
        elif self.from_dicts and self.need_instances:
            construct = self.model.model_construct
            instances = [construct(**data) for data in datas]
            datas = [record.__dict__ for record in instances]
        if self.from_dicts and instances is not None and undo.ambient:
            # What a later rollback puts them back to: as built, without the defaults the
            # call filled in (stamps), as for instances the caller built.
            befores = list(map(dict.copy, datas))
            for fname in defaults:
                for before, row in zip(befores, chunk):
                    if row.get(fname) is None:
                        before[fname] = None
            undo.keep(instances, datas, befores)
        return datas, instances

    def _check_keys(self, index: int, row: Any) -> None:
        if not isinstance(row, Mapping):
            raise ArgumentTypeError(
                f"record {index}: expected a dict, got {type(row).__name__}"
            )
        for key in row:
            if key not in self.known:
                err = UnknownColumnError(str(key), self.info.model_name, self.info.fields)
                err.record = index  # rendered by str(): "record 3: User has no column ..."
                raise err

    def _dicts(
        self, chunk: list[Any], offset: int, defaults: dict[str, Any]
    ) -> list[dict[str, Any]]:
        known = self.known
        if (
            self.validate
            and not defaults
            and set(map(type, chunk)) == _DICT
            and known.issuperset(itertools.chain.from_iterable(chunk))
        ):
            return chunk  # pydantic copies each into its instance: no need to copy twice
        fill = not self.validate and not self.need_instances
        datas = []
        for i, item in enumerate(chunk):
            if not (isinstance(item, dict) and item.keys() <= known):
                self._check_keys(offset + i, item)
            if fill:  # rows go straight to the database: give every column its default
                data = dict(self.constants)
                data.update(item)
                for fname, factory in self.factories.items():
                    if fname not in item:
                        data[fname] = factory()
            elif not defaults and self.validate:
                data = item  # pydantic copies it into the instance; no need to copy twice
            else:
                data = dict(item)
            for fname, value in defaults.items():
                if data.get(fname) is None:
                    data[fname] = value
            datas.append(data)
        return datas

    def _instances(
        self, chunk: list[Any], offset: int, defaults: dict[str, Any], undo: Undo
    ) -> list[dict[str, Any]]:
        if self.given is not None:  # a pass over 100k records fewer (cache misses, mostly)
            datas = self.given[offset : offset + len(chunk)]
        else:
            datas = self._checked_dicts(chunk, offset)
        undo.keep(chunk, datas)
        for fname, value in defaults.items():
            unset = [data for data in datas if data.get(fname) is None]
            undo.filled(unset, fname)
            for data in unset:
                data[fname] = value
        return datas

    def _checked_dicts(self, chunk: list[Any], offset: int) -> list[dict[str, Any]]:
        model = self.model
        if set(map(type, chunk)) != {model}:
            for i, item in enumerate(chunk):
                if not isinstance(item, model):
                    raise ArgumentTypeError(
                        f"record {offset + i}: expected a {model.__name__}, "
                        f"got {type(item).__name__}"
                    )
        return list(map(_dict_of, chunk))
