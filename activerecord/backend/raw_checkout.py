"""The raw driver connection behind ``get_connection()`` and ``aget_connection()``: the
ambient transaction's, or a pooled one switched to autocommit and switched back when let go.

Example::

    >>> import activerecord
    >>> from activerecord.backend.raw_checkout import checkout_raw, release
    >>> db = activerecord.connect("sqlite://", name="raw-checkout-doc")
    >>> dbapi, owner, facts = checkout_raw(db)
    >>> owner is not None  # outside a Transaction: a pooled connection of our own
    True
    >>> release(owner, dbapi, facts)
    >>> activerecord.disconnect("raw-checkout-doc")
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .dialects import DialectFacts
from .transaction import checkout, current_connection, resolve_database

__all__ = ["checkout_raw", "release"]


def checkout_raw(target: Any) -> tuple[Any, sa.Connection | None, DialectFacts]:
    """The DBAPI connection, the pooled connection that owns it (None: the ambient
    transaction's, which its block gives back) and the database's facts."""
    db = resolve_database(target)
    facts = db.facts
    ambient = current_connection(db)
    if ambient is not None:
        return ambient.connection.dbapi_connection, None, facts
    conn = checkout(db)
    try:
        dbapi = conn.connection.dbapi_connection
        facts.set_autocommit(dbapi, True)
    except BaseException:
        conn.close()
        raise
    return dbapi, conn, facts


def release(conn: sa.Connection, dbapi: Any, facts: DialectFacts) -> None:
    """Give a connection of :func:`checkout_raw` back to the pool, out of autocommit."""
    try:
        facts.set_autocommit(dbapi, False)
    except Exception:  # noqa: BLE001 - a connection we cannot switch back is not pooled again
        conn.invalidate()
    finally:
        conn.close()
