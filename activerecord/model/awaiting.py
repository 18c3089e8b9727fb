"""Async hooks: an ``async def`` hook, made callable by the sync writers that the async API
runs in the greenlet bridge (:mod:`activerecord.backend.bridge`), and refused by the sync API.

``await record.asave()`` runs the very code of ``save()`` in a greenlet, so a hook there is
called from sync code: :func:`awaiting` wraps an async hook in a sync function that awaits
the coroutine through the bridge (the event loop runs it; other tasks run meanwhile). Outside
the bridge nothing can await it: :func:`refuse_outside_bridge` names the hook and the
a-method to call before the sync call writes anything, and the wrapper refuses rather than
drop the coroutine (an ``after_commit`` hook whose transaction a sync ``with`` ends).

Example::

    >>> import asyncio
    >>> async def ping(record):
    ...     return f"pinged {record}"
    >>> call = awaiting("Member", "after_save", ping)
    >>> call("ann")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    activerecord.errors.ConfigurationError: Member: 'ping' is an async after_save hook: ...
    >>> from activerecord.backend.bridge import spawn
    >>> asyncio.run(spawn(call, "ann"))
    'pinged ann'
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..backend.bridge import await_, bridged
from ..errors import ConfigurationError

__all__ = ["awaiting", "is_async", "refuse_outside_bridge"]


def is_async(fn: Any) -> bool:
    """True for an ``async def`` function or method (a hook whose call gives a coroutine)."""
    return inspect.iscoroutinefunction(fn)


def awaiting(model: str, hook: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (an async ``hook`` of ``model``) as a sync function: inside the bridge it
    awaits the coroutine and returns its result; outside it raises
    :class:`~activerecord.errors.ConfigurationError` without calling ``fn``."""
    name = getattr(fn, "__name__", repr(fn))

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        if not bridged():
            raise ConfigurationError(
                f"{model}: {name!r} is an async {hook} hook: only the async API (the "
                "a-methods, async with Transaction()) can await it"
            )
        return await_(fn(*args))

    return call


def refuse_outside_bridge(
    model: str, found: Mapping[str, str], hooks: Iterable[str], verb: str
) -> None:
    """Raise :class:`~activerecord.errors.ConfigurationError` when the sync ``verb`` (a
    method name, ``"save"``) would run one of ``hooks`` that is async (``found``: hook name
    to function name); nothing when called by the async API (inside the bridge)."""
    if not found or bridged():
        return
    for hook in hooks:
        if hook in found:
            raise ConfigurationError(
                f"{model}: {found[hook]!r} is an async {hook} hook; the sync {verb}() cannot "
                f"await it: call a{verb}() instead"
            )
