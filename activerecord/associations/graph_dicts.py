"""Records of a graph built from nested dicts: ``batch_insert_from_dicts(rows,
include=["books"])``, where each row's ``"books"`` holds the related rows' dicts. The whole
graph is validated before anything is written, errors naming the path
(``record 3 -> books[1]: title: ...``); :mod:`~activerecord.associations.graph` inserts it.

Example::

    >>> from activerecord import ActiveRecord, has_many
    >>> class Kit(ActiveRecord):
    ...     __table_name__ = "doc_kits"
    ...     id: int | None = None
    ...     parts = has_many("KitPart")
    >>> class KitPart(ActiveRecord):
    ...     __table_name__ = "doc_kit_parts"
    ...     id: int | None = None
    ...     kit_id: int | None = None
    ...     name: str
    >>> [len(k.parts) for k in graph_from_dicts(Kit, [{"parts": [{"name": "a"}]}], ["parts"])]
    [1]
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic

from ..errors import ArgumentTypeError, BatchValidationError, QueryError, UnknownColumnError
from ..validation import collector_paused, list_adapter
from .loading import _cache
from .preload import Tree, preload_tree
from .relation import relation_of

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["graph_from_dicts", "include_tree"]


def include_tree(model: type[ActiveRecord], include: Iterable[str]) -> Tree:
    """The relation tree ``include=`` names (a dotted path or a list of them), checked."""
    if isinstance(include, str):
        include = [include]
    try:
        return preload_tree(model, include)
    except QueryError as exc:
        raise QueryError(f"include: {exc}") from exc


def graph_from_dicts(
    model: type[ActiveRecord], rows: Iterable[Mapping[str, Any]], include: Iterable[str]
) -> list[ActiveRecord]:
    """Records built from nested dicts: the keys named by ``include`` hold the related
    records' dicts (a list for ``has_many``). Unknown keys are an error naming the path; a
    value that does not validate raises one :class:`BatchValidationError` for the graph."""
    tree = include_tree(model, include)
    rows = list(rows)
    failures: dict[int, list[Any]] = {}
    lines: list[str] = []
    with collector_paused():
        records = _build(model, rows, _Place(None, "", False, []), tree, failures, lines)
    if failures:
        error = BatchValidationError(model.__name__, failures)
        error.args = (
            f"{len(failures)} {model.__name__} record(s) failed validation in the graph; "
            "nothing was written\n" + "\n".join(lines[:20]),
        )
        raise error
    return records


@dataclass
class _Place:
    """Where the rows of one ``_build`` level sit: ``starts[i]`` is the first row of parent
    row i's relation (paths are spelled out only for an error)."""

    parent: _Place | None
    name: str
    many: bool
    starts: list[int]

    def locate(self, row: int) -> tuple[int, int]:
        at = bisect.bisect_right(self.starts, row) - 1
        return at, row - self.starts[at]

    def path(self, row: int) -> str:
        if self.parent is None:
            return f"record {row}"
        at, index = self.locate(row)
        base = self.parent.path(at)
        return f"{base} -> {self.name}[{index}]" if self.many else f"{base} -> {self.name}"

    def top(self, row: int) -> int:
        return row if self.parent is None else self.parent.top(self.locate(row)[0])


def _build(model: type[ActiveRecord], rows: list[Any], place: _Place, tree: Tree,
           failures: dict[int, list[Any]], lines: list[str]) -> list[Any]:
    info = model.__ar_info__
    allowed = set(model.model_fields) | set(tree)
    for position, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ArgumentTypeError(
                f"{place.path(position)}: expected a dict, got {type(row).__name__}"
            )
        if not allowed.issuperset(row):
            key = next(k for k in row if k not in allowed)
            err = UnknownColumnError(str(key), info.model_name, info.fields)
            err.args = (f"{place.path(position)}: {err.args[0]}",)
            raise err
    names = set(tree)
    # pydantic leaves its input alone: rows without relation keys are validated as given.
    plain = [
        {k: v for k, v in row.items() if k not in names} if names.intersection(row) else row
        for row in rows
    ] if names else rows
    try:
        records: list[Any] = list_adapter(model).validate_python(plain)
    except pydantic.ValidationError as exc:
        records = [None] * len(rows)
        for error in exc.errors(include_url=False):
            loc = error.get("loc", ())
            index = int(loc[0]) if loc and isinstance(loc[0], int) else 0
            where = ".".join(str(p) for p in loc[1:]) or "<record>"
            path = place.path(index)
            lines.append(f"  {path}: {where}: {error.get('msg')}")
            failures.setdefault(place.top(index), []).append({**error, "loc": (path, *loc[1:])})
    for name, sub in tree.items():
        relation = relation_of(model, name)
        child_rows: list[Any] = []
        starts: list[int] = []
        for position, row in enumerate(rows):
            starts.append(len(child_rows))
            value = row.get(name)
            if value is None:
                continue
            if not relation.many:
                child_rows.append(value)
            elif isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                raise ArgumentTypeError(
                    f"{place.path(position)} -> {name}: expected a list of dicts"
                )
            else:
                child_rows.extend(value)
        built = _build(relation.target, child_rows, _Place(place, name, relation.many, starts),
                       sub, failures, lines)
        if failures:  # the call raises: nothing to link
            continue
        ends = [*starts[1:], len(child_rows)]
        for record, row, start, end in zip(records, rows, starts, ends):
            if row.get(name) is None:
                continue
            part = built[start:end]
            # Built here, of the target's class: cached as assigned (assign_related's checks
            # hold by construction; the keys are set by the graph insert).
            _cache(record)[name] = (None, part if relation.many else part[0], True)
    return records
