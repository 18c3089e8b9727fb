"""Insert-or-update on a unique key, for loaders: ``load_csv(..., upsert=("email",))``.

Built on SQLAlchemy's dialect-specific inserts: ``INSERT ... ON CONFLICT (key) DO UPDATE``
(PostgreSQL, SQLite) and ``INSERT ... ON DUPLICATE KEY UPDATE`` (MySQL/MariaDB). The key must
be the primary key or a unique constraint/index of the table (checked before any SQL runs:
MySQL would otherwise act on any unique key). A row whose key exists gets the columns the
input gave (and the model's update defaults, e.g. ``updated_at``); other columns keep their
values. When a key repeats within the input, the last row wins on every backend.

Like the batch insert it is atomic and validates every record first.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Price(ActiveRecord):
    ...     __table_name__ = "doc_prices"
    ...     id: int | None = None
    ...     cents: int
    >>> _ = activerecord.connect("sqlite://")
    >>> Price.create_table()
    >>> upsert_rows(Price, [{"id": 1, "cents": 1}, {"id": 2, "cents": 2}], ["id"])
    2
    >>> upsert_rows(Price, [{"id": 1, "cents": 5}], ["id"])
    1
    >>> [(p.id, p.cents) for p in Price.query().order_by("id")]
    [(1, 5), (2, 2)]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pydantic
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from ..backend.dialects import translate_error
from ..backend.transaction import write_connection
from ..errors import BatchValidationError, QueryError, UnknownColumnError
from .loader import field_of

if TYPE_CHECKING:
    from ..meta import ModelInfo
    from ..model import ActiveRecord

__all__ = ["check_upsert_key", "upsert_rows"]


def check_upsert_key(model: type[ActiveRecord], key: Sequence[str]) -> tuple[str, ...]:
    """The key's field names, if they are the primary key or a unique key of the table."""
    info = model.__ar_info__
    fields = tuple(field_of(model, k, "upsert key") for k in key)
    if not fields:
        raise QueryError("an upsert needs at least one key column")
    wanted = {info.columns[f].name for f in fields}
    table = info.table
    unique_sets = [{c.name for c in table.primary_key.columns}]
    unique_sets += [{c.name} for c in table.columns if c.unique]
    unique_sets += [
        {c.name for c in constraint.columns}
        for constraint in table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    ]
    unique_sets += [{c.name for c in index.columns} for index in table.indexes if index.unique]
    if wanted not in unique_sets:
        raise QueryError(
            f"cannot upsert {model.__name__} on {', '.join(fields)}: it is neither the primary "
            f"key nor a unique key of table {table.name!r}"
        )
    return fields


def _statement(
    info: ModelInfo, dialect: str, key: tuple[str, ...], update: list[str]
) -> sa.Insert:
    table = info.table
    columns = [info.columns[f] for f in update]
    if dialect in ("postgresql", "sqlite"):
        builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = builder(table)
        target = [info.columns[f] for f in key]
        if not columns:
            return stmt.on_conflict_do_nothing(index_elements=target)
        return stmt.on_conflict_do_update(
            index_elements=target, set_={c: stmt.excluded[c.key] for c in columns}
        )
    if dialect in ("mysql", "mariadb"):
        my = mysql.insert(table)
        # With nothing to update, setting the key to itself makes the duplicate a no-op.
        columns = columns or [info.columns[key[0]]]
        return my.on_duplicate_key_update({c: my.inserted[c.key] for c in columns})
    raise QueryError(f"upsert is not supported on {dialect}")


def upsert_rows(
    model: type[ActiveRecord],
    rows: Iterable[Mapping[str, Any]],
    key: Sequence[str],
    *,
    validate: bool = True,
    batch_size: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> int:
    """Insert the dict rows, updating those whose ``key`` exists; return the rows processed."""
    info = model.__ar_info__
    keys = check_upsert_key(model, key)
    db = model.database()
    dialect = db.engine.dialect.name
    size = batch_size or max(db.facts.rows_per_statement(len(info.fields)), 1)
    failures: dict[int, list[Any]] = {}
    done = 0
    iterator = iter(rows)
    try:
        with write_connection(db, statements=2) as conn:
            while chunk := list(itertools.islice(iterator, size)):
                prepared = _prepare(model, info, keys, chunk, done, validate, failures)
                done += len(chunk)
                if failures:
                    continue  # keep validating to report every bad record; write nothing
                for given, values in prepared:
                    update = [f for f in given if f not in keys]
                    update += [f for f in model._update_defaults() if f not in (*update, *keys)]
                    conn.execute(_statement(info, dialect, keys, update), values)
                if progress is not None:
                    progress(done)
            if failures:
                raise BatchValidationError(model.__name__, failures)
    except sa.exc.DBAPIError as exc:
        raise translate_error(exc, context=f"upsert of {model.__name__}") from exc
    return done


def _prepare(
    model: type[ActiveRecord],
    info: ModelInfo,
    keys: tuple[str, ...],
    chunk: list[Mapping[str, Any]],
    offset: int,
    validate: bool,
    failures: dict[int, list[Any]],
) -> list[tuple[tuple[str, ...], list[dict[str, Any]]]]:
    """Validated rows (by column key) grouped by the fields the input gave; last key wins."""
    defaults = model._insert_defaults()
    rows: dict[Any, tuple[tuple[str, ...], dict[str, Any]]] = {}
    for i, row in enumerate(chunk):
        for name in row:
            if name not in info.columns:
                raise UnknownColumnError(str(name), info.model_name, info.fields)
        data = dict(row)
        for fname, value in defaults.items():
            if data.get(fname) is None:
                data[fname] = value
        if validate:
            try:
                values = dict(model.model_validate(data).__dict__)
            except pydantic.ValidationError as exc:
                failures[offset + i] = exc.errors()
                continue
        else:
            values = data
        given = tuple(f for f in info.fields if f in row)
        generated = (info.autoincrement_pk, *info.server_generated)
        inserted = {
            info.columns[f].key: values[f]
            for f in info.fields
            if f in values and not (values[f] is None and f in generated)
        }
        identity = tuple(values.get(f) for f in keys)
        rows.pop(identity, None)  # a repeated key: the last row wins
        rows[identity] = (given, inserted)
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]] = {}
    for given, inserted in rows.values():
        groups.setdefault((given, tuple(inserted)), []).append(inserted)
    return [(given, values) for (given, _), values in groups.items()]
