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

import gc
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pydantic

if TYPE_CHECKING:
    from .model import ActiveRecord

__all__ = ["collector_paused", "list_adapter", "record_failures"]

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
def collector_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while many records are built (and written).

    Validation builds three containers per record (instance, ``__dict__``, fields set) and no
    cycles; with the collector on, each of its passes scans the growing set of new records
    again, which doubles the time of validating 100k records, and when it comes back on right
    after validating it scans them once more. Over a batch write's chunk too, the records
    nobody gets back (a file load) are freed before it runs again. Reference counting still
    frees everything as usual; a pause lasts one chunk or one result (well under a second for
    the default sizes). The collector is on again as soon as the last pause in progress at
    the moment (several threads may load at once) ends, and left alone when it was off before.
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
                gc.enable()


_pause_lock = threading.Lock()
_pausers = 0  # pauses now in progress
_paused_here = False  # whether they turned the collector off (it was on before the first)
