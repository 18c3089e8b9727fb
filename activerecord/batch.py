"""Batch insert: chunking, validation with a per-record report, primary keys set back.

The whole call is atomic: every chunk runs in one transaction (a savepoint inside an ambient
``Transaction``), so a failure anywhere leaves the database as it was.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Tag(ActiveRecord):
    ...     __table_name__ = "doc_tags"
    ...     id: int | None = None
    ...     name: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Tag.create_table()
    >>> tags = [Tag(name="a"), Tag(name="b")]
    >>> Tag.batch_insert(tags)
    2
    >>> [t.id for t in tags]
    [1, 2]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pydantic
import sqlalchemy as sa

from .backend.dialects import translate_error
from .backend.transaction import write_connection
from .errors import BatchValidationError, UnknownColumnError

if TYPE_CHECKING:
    from .meta import ModelInfo
    from .model import ActiveRecord

__all__ = ["ProgressCallback", "batch_insert"]

#: ``progress=`` may be a callable taking the number of rows done so far.
ProgressCallback = Callable[[int], Any]


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


def _progress(progress: bool | ProgressCallback, total: int | None, name: str) -> Any:
    if callable(progress):
        return progress
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("progress=True needs tqdm: pip install 'activerecord[progress]'") from exc
    return tqdm(total=total, unit="rows", desc=f"insert {name}")


def _check_keys(info: ModelInfo, index: int, row: Mapping[str, Any]) -> None:
    for key in row:
        if key not in info.columns:
            err = UnknownColumnError(str(key), info.model_name, info.fields)
            err.args = (f"record {index}: {err.args[0]}",)
            raise err


def batch_insert(
    model: type[ActiveRecord],
    records: Iterable[Any],
    *,
    validate: bool = True,
    batch_size: int | None = None,
    progress: bool | ProgressCallback = False,
    from_dicts: bool = False,
    return_records: bool = True,
) -> tuple[int, list[Any]]:
    """Insert ``records`` (instances, or dicts with ``from_dicts``); see the module docs.

    Returns the row count and, when ``return_records``, the inserted instances in input order.
    """
    info = model.__ar_info__
    db = model.database()
    facts = db.facts
    size = batch_size or max(facts.rows_per_statement(len(info.fields)), 1)
    total = len(records) if hasattr(records, "__len__") else None  # type: ignore[arg-type]
    bar = _progress(progress, total, model.__name__)
    done = 0
    out: list[Any] = []
    failures: dict[int, list[Any]] = {}
    offset = 0
    try:
        with write_connection(db, statements=2) as conn:
            for chunk in _chunks(records, size):
                instances = _prepare(model, info, chunk, offset, validate, from_dicts, failures)
                offset += len(chunk)
                if failures:
                    continue  # keep validating to report every bad record; write nothing
                _insert_chunk(conn, model, info, instances, facts.supports_returning)
                done += len(instances)
                if return_records:
                    out.extend(instances)
                if bar is not None:
                    if callable(bar) and not hasattr(bar, "update"):
                        bar(done)
                    else:
                        bar.update(len(instances))
            if failures:
                raise BatchValidationError(model.__name__, failures)
    except sa.exc.DBAPIError as exc:
        raise translate_error(exc, context=f"batch insert of {model.__name__}") from exc
    finally:
        if bar is not None and hasattr(bar, "close"):
            bar.close()
    return done, out


def _prepare(
    model: type[ActiveRecord],
    info: ModelInfo,
    chunk: list[Any],
    offset: int,
    validate: bool,
    from_dicts: bool,
    failures: dict[int, list[Any]],
) -> list[ActiveRecord]:
    defaults = model._insert_defaults()
    instances: list[ActiveRecord] = []
    for i, item in enumerate(chunk):
        index = offset + i
        if from_dicts:
            if not isinstance(item, Mapping):
                raise TypeError(f"record {index}: expected a dict, got {type(item).__name__}")
            _check_keys(info, index, item)
            data = dict(item)
        else:
            if not isinstance(item, model):
                raise TypeError(
                    f"record {index}: expected a {model.__name__}, got {type(item).__name__}"
                )
            data = item.__dict__
        for fname, value in defaults.items():
            if data.get(fname) is None:
                data[fname] = value
        if validate:
            try:
                validated = model.model_validate(data)
            except pydantic.ValidationError as exc:
                failures[index] = exc.errors()
                continue
            if from_dicts:
                instances.append(validated)
            else:
                instances.append(item)
        elif from_dicts:
            instances.append(model.model_construct(**data))
        else:
            instances.append(item)
    return instances


def _insert_chunk(
    conn: sa.Connection,
    model: type[ActiveRecord],
    info: ModelInfo,
    instances: list[ActiveRecord],
    returning: bool,
) -> None:
    autoinc = info.autoincrement_pk
    groups: dict[tuple[str, ...], list[ActiveRecord]] = {}
    for record in instances:
        data = record.__dict__
        fields = tuple(
            f for f in info.fields
            if not (data.get(f) is None and (f == autoinc or f in info.server_generated))
        )
        groups.setdefault(fields, []).append(record)
    for fields, group in groups.items():
        fetch = [info.columns[f] for f in info.fields if f not in fields]
        rows = [{f: r.__dict__[f] for f in fields} for r in group]
        stmt = sa.insert(info.table)
        if fetch and returning:
            stmt = stmt.returning(*fetch, sort_by_parameter_order=True)
            result = conn.execute(stmt, rows)
            for record, row in zip(group, result.all()):
                data = record.__dict__
                for column, value in zip(fetch, row):
                    data[column.key] = value
        elif fetch:
            for record, values in zip(group, rows):
                result = conn.execute(stmt, values)
                pk = result.inserted_primary_key
                if autoinc is not None and pk is not None:
                    record.__dict__[autoinc] = pk[0]
        else:
            conn.execute(stmt, rows)
        for record in group:
            record._mark_persisted()
