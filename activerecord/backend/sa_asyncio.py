"""SQLAlchemy's asyncio extension, where this installation can import it.

From SQLAlchemy 2.1 on, greenlet is no longer one of SQLAlchemy's own dependencies, and
importing ``sqlalchemy.ext.asyncio`` without it raises ``ImportError`` (2.0 imported it and
failed at first use). The sync API needs none of it: the modules that name the extension's
classes ask here, and an async engine or URL without it is a ``ConfigurationError`` naming the
``async`` extra.

Example::

    >>> is_async_engine(object())
    False
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeGuard

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["extension", "is_async_engine"]

_module: ModuleType | None
try:
    from sqlalchemy.ext import asyncio as _module
except ImportError as exc:  # SQLAlchemy 2.1+ without greenlet
    _module = None
    _MISSING = str(exc)


def extension() -> ModuleType:
    """``sqlalchemy.ext.asyncio``; ConfigurationError where it cannot be imported."""
    if _module is None:
        raise ConfigurationError(
            "the async API needs SQLAlchemy's asyncio extension, which needs greenlet: "
            f"pip install 'activerecord[async]' ({_MISSING})"
        )
    return _module


def is_async_engine(value: Any) -> TypeGuard[AsyncEngine]:
    """Whether ``value`` is an ``AsyncEngine`` (never, without the extension)."""
    return _module is not None and isinstance(value, _module.AsyncEngine)


def is_instance(value: Any, *names: str) -> bool:
    """Whether ``value`` is one of the extension's classes ``names`` (never, without it)."""
    return _module is not None and isinstance(value, tuple(getattr(_module, n) for n in names))
