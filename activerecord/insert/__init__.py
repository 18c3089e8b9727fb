"""Batch-insert machinery: statement shapes compiled once, and per-backend write strategies.

:mod:`activerecord.batch` plans chunks, validates and reports; this package turns a chunk of
rows into as few round trips as the database allows and hands the generated keys back:

* :mod:`.shape`: which columns a group of rows sends, compiled once per call from a Core
  ``insert()`` construct (any construct: an upsert is a different construct, same shape).
* :mod:`.strategies`: SQLite executemany with a proven rowid range, PostgreSQL ``COPY`` with
  keys numbered by the sequence and proven (or reserved first), MySQL/MariaDB multi-row
  ``VALUES`` packed to the packet size with ids from ``LAST_INSERT_ID()`` or ``RETURNING``,
  and SQLAlchemy Core as the fallback.
* :mod:`.locate`: which record a database error points at, where the database says.
* :mod:`.conflict` and :mod:`.merge`: an upsert's unique-key target and key lookup, and its
  UPDATE of existing rows where a value changes (see :mod:`activerecord.upsert`).

Example::

    >>> import sqlalchemy as sa
    >>> from activerecord.insert.shape import split_values
    >>> split_values("INSERT INTO t (a) VALUES (?)", "INSERT INTO t (a) VALUES (?), (?)")
    ('INSERT INTO t (a) VALUES ', '(?)', '')
"""

from __future__ import annotations

from .shape import InsertShape, split_values
from .strategies import InsertStrategy, strategy_for

__all__ = ["InsertShape", "InsertStrategy", "split_values", "strategy_for"]
