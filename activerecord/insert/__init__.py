"""Batch-insert machinery: statement shapes compiled once, error location, upsert targets.

:mod:`activerecord.write.plan` plans chunks, validates and reports; the per-backend write
strategies (:mod:`activerecord.write.strategies`) turn a chunk of rows into as few round
trips as the database allows and hand the generated keys back, with:

* :mod:`.shape`: which columns a group of rows sends, compiled once per call from a Core
  ``insert()`` construct (any construct: an upsert is a different construct, same shape).
* :mod:`.locate`: which record a database error points at, where the database says.
* :mod:`.conflict` and :mod:`.merge`: an upsert's unique-key target and key lookup, and its
  UPDATE of existing rows where a value changes (see :mod:`activerecord.write.upsert`).

Example::

    >>> import sqlalchemy as sa
    >>> from activerecord.insert.shape import split_values
    >>> split_values("INSERT INTO t (a) VALUES (?)", "INSERT INTO t (a) VALUES (?), (?)")
    ('INSERT INTO t (a) VALUES ', '(?)', '')
"""

from __future__ import annotations

from .shape import InsertShape, split_values

__all__ = ["InsertShape", "split_values"]
