"""activerecord: ActiveRecord-style pydantic models on SQLAlchemy Core, built for batch work.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class City(ActiveRecord):
    ...     __table_name__ = "doc_cities"
    ...     id: int | None = None
    ...     name: str
    >>> _ = activerecord.connect("sqlite://")
    >>> activerecord.create_all()
    >>> City.batch_insert_from_dicts([{"name": "Oslo"}, {"name": "Lima"}])[1].id
    2
"""

from __future__ import annotations

from typing import Any as _Any  # private: the namespace holds __all__ and nothing else

from .associations import Relation, belongs_to, has_many, has_one
from .backend import aget_connection, connect, disconnect, get_connection, get_database
from .backend.bridge import spawn as _spawn  # private, as _Any
from .backend.external import using
from .backend.transaction import Transaction
from .errors import (
    ActiveRecordError,
    ArgumentError,
    ArgumentTypeError,
    BatchValidationError,
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    DataError,
    FileFormatError,
    ForeignKeyViolation,
    IntegrityError,
    LoadValidationError,
    NotConnectedError,
    NotNullViolation,
    NotPreloadedError,
    ParameterCountError,
    PartialWriteError,
    PoolTimeoutError,
    QueryError,
    RecordNotFound,
    SchemaError,
    StaleRecordError,
    TransactionConflictError,
    TransactionTooLargeError,
    UniqueViolation,
    UnknownColumnError,
    UnsafeWriteError,
    ValidationError,
)
from .model import ActiveRecord, metadata
from .model.callbacks import (
    after_commit_hook,
    after_create,
    after_delete,
    after_rollback,
    after_save,
    after_update,
    before_create,
    before_delete,
    before_save,
    before_update,
    before_validate,
)
from .model.mixins import OptimisticLockMixin, TimestampMixin, optimistic_lock
from .model.schema import Col
from .model.softdelete import SoftDeleteMixin, soft_unique
from .query import SQL, Expression, Query, col
from .query.expression import excluded, greatest, least
from .write.upsert import UpsertResult

__version__ = "0.1.0"


def create_all(database: str = "default", *, tables: _Any = None) -> None:
    """CREATE every table of :data:`metadata` (or the given tables) on a database.

    >>> import activerecord
    >>> _ = activerecord.connect("sqlite://")
    >>> activerecord.create_all()
    """
    db = get_database(database)
    with Transaction(db) as tx:
        metadata.create_all(tx.connection, tables=tables)


def drop_all(database: str = "default", *, tables: _Any = None) -> None:
    """DROP every table of :data:`metadata` (or the given tables) on a database."""
    db = get_database(database)
    with Transaction(db) as tx:
        metadata.drop_all(tx.connection, tables=tables)


async def acreate_all(database: str = "default", *, tables: _Any = None) -> None:
    """Async :func:`create_all`.

    >>> import asyncio, activerecord
    >>> _ = activerecord.connect("sqlite+aiosqlite://")
    >>> asyncio.run(activerecord.acreate_all())
    """
    await _spawn(create_all, database, tables=tables)


async def adrop_all(database: str = "default", *, tables: _Any = None) -> None:
    """Async :func:`drop_all`."""
    await _spawn(drop_all, database, tables=tables)


__all__ = [
    "ActiveRecord",
    "ActiveRecordError",
    "ArgumentError",
    "ArgumentTypeError",
    "BatchValidationError",
    "Col",
    "ConfigurationError",
    "DataError",
    "DatabaseConnectionError",
    "DatabaseError",
    "Expression",
    "FileFormatError",
    "ForeignKeyViolation",
    "IntegrityError",
    "LoadValidationError",
    "NotConnectedError",
    "NotNullViolation",
    "NotPreloadedError",
    "OptimisticLockMixin",
    "ParameterCountError",
    "PartialWriteError",
    "PoolTimeoutError",
    "Query",
    "QueryError",
    "RecordNotFound",
    "Relation",
    "SQL",
    "SchemaError",
    "SoftDeleteMixin",
    "StaleRecordError",
    "TimestampMixin",
    "Transaction",
    "TransactionConflictError",
    "TransactionTooLargeError",
    "UniqueViolation",
    "UnknownColumnError",
    "UnsafeWriteError",
    "UpsertResult",
    "ValidationError",
    "__version__",
    "acreate_all",
    "adrop_all",
    "after_commit_hook",
    "after_create",
    "after_delete",
    "after_rollback",
    "after_save",
    "after_update",
    "aget_connection",
    "before_create",
    "before_delete",
    "before_save",
    "before_update",
    "before_validate",
    "belongs_to",
    "col",
    "connect",
    "create_all",
    "disconnect",
    "drop_all",
    "excluded",
    "get_connection",
    "get_database",
    "greatest",
    "has_many",
    "has_one",
    "least",
    "metadata",
    "optimistic_lock",
    "soft_unique",
    "using",
]
