"""Checks of the arguments batch calls share, run first: before any input is read, before a
connection is taken, and whether or not there is any input, so a wrong call fails the same
way on an empty list as on a million rows.

Example::

    >>> from activerecord.arguments import check_size
    >>> try:
    ...     check_size(0)
    ... except ValueError as err:  # an ArgumentError, which is also a ValueError
    ...     print(err)
    batch_size must be an int of at least 1, got 0
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import Any

from .errors import ArgumentError, ArgumentTypeError

__all__ = ["check_records", "check_size", "is_collection"]


def check_size(value: Any, name: str = "batch_size", *, optional: bool = True) -> None:
    """Refuse a size that is not an int of at least 1 (None allowed when ``optional``).

    ``True`` is refused too: a bool is an int to Python, never a size a caller meant.

    >>> check_size(None), check_size(500)
    (None, None)
    """
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an int of at least 1, got {value!r}")
    if value < 1:
        raise ArgumentError(f"{name} must be an int of at least 1, got {value!r}")


def check_records(records: Any, model: str, *, what: str = "records") -> None:
    """Refuse an input that is not an iterable of records, without reading any of it.

    A string, bytes or a single mapping is iterable but never a batch: each would be taken
    apart into characters or keys, so it is refused by name.

    >>> check_records([], "User")
    >>> try:
    ...     check_records({"name": "a"}, "User", what="dicts")
    ... except TypeError as err:
    ...     print(err)
    User batch input must be an iterable of dicts, got a dict; wrap one record in a list
    """
    frame = _is_frame(records) and what != "dicts"  # batch_insert_from_dicts takes frames
    if frame or isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
        hint = "; wrap one record in a list" if isinstance(records, Mapping) else ""
        if frame:  # iterating a frame gives its column names, never its rows
            hint = f"; load a DataFrame with {model}.insert_dataframe(df) (upsert=[key] to upsert)"
        got = "None" if records is None else _a(type(records).__name__)
        raise ArgumentTypeError(
            f"{model} batch input must be an iterable of {what}, got {got}{hint}"
        )


def _is_frame(value: Any) -> bool:
    """A pandas or polars DataFrame, told by its module so neither is imported here."""
    return type(value).__name__ == "DataFrame" and type(value).__module__.split(".")[0] in (
        "pandas", "polars"
    )


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def is_collection(records: Iterable[Any]) -> bool:
    """A list, tuple or other sized container: unlike an iterator, it can be gone over again
    and keeps its records (so a call can put them all back).

    >>> is_collection([1]), is_collection(iter([1])), is_collection(x for x in ())
    (True, False, False)
    """
    return isinstance(records, Sized) and not isinstance(records, Iterator)
