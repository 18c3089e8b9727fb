"""How each backend writes a group of rows and hands back exact generated keys.

The dialect object names the strategy (``DialectFacts.insert_strategy``); :func:`strategy_for`
builds it for one call. Every fast path is exact, not a guess:

* ``sqlite_rowid`` (:mod:`.sqlite`): one ``executemany`` and a proven rowid range.
* ``pg_copy`` (:mod:`.postgresql`, :mod:`.copy_stream`): ``COPY``, keys numbered by the
  sequence and proven by ``currval()``, or reserved first; a batch of records streams
  through one ``COPY`` across its chunks.
* ``mysql_values`` (:mod:`.mysql`): multi-row ``INSERT ... VALUES`` packed to the packet
  budget, keys from a proven ``LAST_INSERT_ID()`` range, ``RETURNING`` or row by row.
  Where the server and connection allow ``LOAD DATA LOCAL INFILE`` (:mod:`.mysql_load`),
  groups of rows go by it instead: about twice as fast, keys and values as exact.
* ``core`` (:mod:`.core`): SQLAlchemy Core executemany, the fallback everywhere else.

An upsert (:mod:`activerecord.write.upsert`) inserts only the rows whose key it found absent, with
these same strategies, and updates the others by primary key.

Example::

    >>> import sqlalchemy as sa
    >>> from activerecord.backend.dialects import DialectFacts
    >>> engine = sa.create_engine("sqlite://")
    >>> DialectFacts.probe(engine).insert_strategy
    'sqlite_rowid'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from .base import InsertStrategy
from .core import CoreStrategy
from .mysql import MysqlValuesStrategy
from .mysql_load import MysqlLoadDataStrategy
from .postgresql import PostgresCopyStrategy
from .sqlite import SqliteRowidStrategy

if TYPE_CHECKING:
    from ...backend.dialects import DialectFacts
    from ...model.info import ModelInfo

__all__ = [
    "CoreStrategy",
    "InsertStrategy",
    "MysqlLoadDataStrategy",
    "MysqlValuesStrategy",
    "PostgresCopyStrategy",
    "SqliteRowidStrategy",
    "strategy_for",
]


def strategy_for(conn: sa.Connection, info: ModelInfo, facts: DialectFacts) -> InsertStrategy:
    """The strategy the facts name, or Core where the fast path cannot be exact."""
    name = facts.insert_strategy
    if name == SqliteRowidStrategy.name:
        return SqliteRowidStrategy(conn, info, facts)
    if name == PostgresCopyStrategy.name:
        sequence, numbered = PostgresCopyStrategy.key_sequence(conn, info)
        if info.autoincrement_pk is None or sequence is not None:
            return PostgresCopyStrategy(conn, info, facts, sequence, numbered)
    if name == MysqlValuesStrategy.name:
        return MysqlLoadDataStrategy(conn, info, facts)
    return CoreStrategy(conn, info, facts)
