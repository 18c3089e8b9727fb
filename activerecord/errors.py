"""Every error the library raises, under one root.

::

    ActiveRecordError
    ├── ConfigurationError
    │   └── NotConnectedError
    ├── SchemaError                      (TypeError)
    ├── RecordNotFound                   (LookupError)
    ├── ValidationError                  (ValueError)
    │   └── BatchValidationError
    │       └── LoadValidationError      (.locations: DataFrame row / file line of each record)
    ├── FileFormatError                  (ValueError; .path, .line)
    ├── UnknownColumnError               (KeyError)
    ├── QueryError                       (ValueError)
    │   ├── ArgumentError                (a call's argument is wrong: batch_size=0, ...)
    │   │   └── ArgumentTypeError        (TypeError: a non-iterable input, a wrong record)
    │   ├── ParameterCountError
    │   ├── UnsafeWriteError
    │   └── NotPreloadedError            (a relation read in async code without preload)
    ├── StaleRecordError
    ├── PartialWriteError                (commit_every: .committed rows are stored, .resume_at)
    └── DatabaseError                    (.orig is the driver's exception)
        ├── IntegrityError
        │   ├── UniqueViolation
        │   ├── ForeignKeyViolation
        │   └── NotNullViolation
        ├── DataError                    (value out of range, too long, invalid for the column)
        ├── DatabaseConnectionError      (ConnectionError)
        │   └── PoolTimeoutError         (no pooled connection free within pool_timeout)
        ├── TransactionConflictError     (deadlock, serialization failure, lock wait)
        └── TransactionTooLargeError     (a cluster's write-set limit; .limit names it)

Longer than 400 lines because the tree is one idea: each class, the attributes it carries
and how ``str()`` renders them (:func:`render`, set by :func:`error_context`) read next to
their parents; split, every subclass would import its context back.

Example::

    >>> from activerecord.errors import RecordNotFound, ActiveRecordError
    >>> issubclass(RecordNotFound, (ActiveRecordError, LookupError))
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = [
    "ActiveRecordError",
    "ArgumentError",
    "ArgumentTypeError",
    "BatchValidationError",
    "ConfigurationError",
    "DataError",
    "DatabaseConnectionError",
    "DatabaseError",
    "FileFormatError",
    "ForeignKeyViolation",
    "IntegrityError",
    "LoadValidationError",
    "NotConnectedError",
    "NotNullViolation",
    "ParameterCountError",
    "PartialWriteError",
    "PoolTimeoutError",
    "QueryError",
    "RecordNotFound",
    "SchemaError",
    "StaleRecordError",
    "TransactionConflictError",
    "TransactionTooLargeError",
    "UniqueViolation",
    "UnknownColumnError",
    "UnsafeWriteError",
    "ValidationError",
    "add_context",
    "error_context",
]


class ActiveRecordError(Exception):
    """Root of every error raised by activerecord.

    Where an error happened is kept as attributes, set once by :func:`error_context` at the
    place that knows each piece, and rendered by ``str()`` in front of the message:

    * ``operation``: the call, as a name (``"batch_insert"``, ``"batch_upsert"``,
      ``"batch_update"``, ``"save"``, ``"query.update"``, ...);
    * ``context``: the same in words, shown first (``"batch insert of User"``);
    * ``model``: the model's class name;
    * ``record``: the failing record's index in the caller's input;
    * ``row`` and ``unit``: where that record came from in a DataFrame or file (``unit`` is
      ``"row"`` or ``"line"``), with ``source`` naming the file or frame;
    * ``column``: the column whose value was refused.

    ``args[0]`` stays the bare message (the driver's, for a :class:`DatabaseError`).

    >>> err = ActiveRecordError("value too long for type character varying(5)")
    >>> err.context, err.record, err.column = "batch insert of User", 3, "name"
    >>> str(err)
    "batch insert of User: record 3: column 'name': value too long for type character varying(5)"
    >>> err.row, err.unit, err.source = 5, "line", "people.csv"
    >>> str(err).split(": column")[0]
    'batch insert of User: record 3 (line 5 of people.csv)'
    """

    # Class-level defaults: an error raised without context renders as its bare message.
    operation: str | None = None
    context: str | None = None
    model: str | None = None
    record: int | None = None
    row: Any = None
    unit: str | None = None
    source: str | None = None
    column: str | None = None

    def __str__(self) -> str:
        # One string argument is the message as written (KeyError would repr() it).
        detail = self.args[0] if len(self.args) == 1 else Exception.__str__(self)
        return render(self, str(detail))


def render(error: ActiveRecordError, detail: str) -> str:
    """``detail`` with the error's context in front: ``context: record N (line L of f):
    column 'c': detail``, each piece once, only those that are set. The column is left out
    where the message names it already (MySQL's "... for column 'n' at row 2").

    >>> err = ActiveRecordError("x")
    >>> err.column = "n"
    >>> render(err, "value too long"), render(err, "Out of range for column 'n' at row 1")
    ("column 'n': value too long", "Out of range for column 'n' at row 1")
    """
    parts = [error.context] if error.context else []
    if error.record is not None:
        origin = f" of {error.source}" if error.source else ""
        where = "" if error.row is None else (
            f" ({error.unit or 'row'} {_shown(error.row, error.unit)}{origin})"
        )
        parts.append(f"record {error.record}{where}")
    if error.column and not any(
        f"{q}{error.column}{q}" in detail for q in ("'", '"', "`")
    ):
        parts.append(f"column {error.column!r}")
    return ": ".join([*parts, detail])


def _shown(where: Any, unit: str | None) -> str:
    # A DataFrame's row label may be a str: repr() keeps 7 and "7" apart, as
    # LoadValidationError does; a file's line is a number.
    return str(where) if unit == "line" or isinstance(where, int) else repr(where)


#: The context pieces :func:`error_context` sets.
_PIECES = frozenset(("operation", "context", "model", "record", "row", "unit", "source", "column"))


@contextmanager
def error_context(**pieces: Any) -> Iterator[None]:
    """Give an :class:`ActiveRecordError` raised inside the block the context pieces it lacks
    (``operation=``, ``context=``, ``model=``, ``record=``, ``row=``, ``unit=``, ``source=``,
    ``column=``): a piece an inner block set (it knew better) is kept. Other exceptions pass
    through untouched.

    >>> try:
    ...     with error_context(operation="save", context="save of User", model="User"):
    ...         raise ActiveRecordError("database is locked")
    ... except ActiveRecordError as err:
    ...     print(err.operation, "|", err)
    save | save of User: database is locked
    """
    unknown = set(pieces) - _PIECES
    if unknown:  # a typo here would silently drop context: refuse it at the call site
        raise TypeError(f"error_context() got unknown pieces: {sorted(unknown)}")
    try:
        yield
    except ActiveRecordError as err:
        add_context(err, **pieces)
        raise


def add_context(error: ActiveRecordError, **pieces: Any) -> ActiveRecordError:
    """Set each given context piece ``error`` lacks; return ``error``."""
    for name, value in pieces.items():
        if value is not None and getattr(error, name) is None:
            setattr(error, name, value)
    return error


class ConfigurationError(ActiveRecordError):
    """The library is set up wrongly (bad URL, unknown database name, ...)."""


class NotConnectedError(ConfigurationError):
    """A model was used before :func:`activerecord.connect` bound its database."""


class SchemaError(ActiveRecordError, TypeError):
    """A model cannot be mapped to a table (unmapped type, missing primary key, ...)."""


class RecordNotFound(ActiveRecordError, LookupError):
    """``find`` found no row for the key, or ``one()`` found none."""

    def __init__(self, message: str, *, model: str | None = None, key: Any = None) -> None:
        super().__init__(message)
        self.model = model
        self.key = key


class ValidationError(ActiveRecordError, ValueError):
    """A value did not pass the model's field validation.

    ``errors`` holds pydantic's error dicts (``loc``, ``msg``, ``type``, ...).
    """

    def __init__(
        self, message: str, *, model: str | None = None, errors: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        super().__init__(message)
        self.model = model
        self.errors = list(errors)


class BatchValidationError(ValidationError):
    """One or more records of a batch failed validation; nothing was written.

    ``failures`` maps the record's index in the input to its list of pydantic errors.
    """

    def __init__(self, model: str, failures: Mapping[int, Sequence[Mapping[str, Any]]]) -> None:
        self.failures = {index: list(errs) for index, errs in failures.items()}
        lines = []
        for index, errs in list(self.failures.items())[:20]:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ())) or '<record>'}: {e.get('msg')}"
                for e in errs
            )
            lines.append(f"  record {index}: {detail}")
        more = len(self.failures) - len(lines)
        if more > 0:
            lines.append(f"  ... and {more} more")
        message = f"{len(self.failures)} {model} record(s) failed validation; nothing was written\n"
        super().__init__(
            message + "\n".join(lines),
            model=model,
            errors=[e for errs in self.failures.values() for e in errs],
        )


class LoadValidationError(BatchValidationError):
    """Records loaded from a DataFrame or a file failed validation; nothing was written.

    ``failures`` is keyed by the record's index in the input, as for
    :class:`BatchValidationError`; ``locations`` maps the same index to where the record came
    from (the DataFrame row label, or the file's line number) and ``unit`` names it (``"row"``
    or ``"line"``). The message names the locations.
    """

    def __init__(
        self,
        model: str,
        failures: Mapping[int, Sequence[Mapping[str, Any]]],
        locations: Mapping[int, Any],
        *,
        unit: str = "row",
        source: str | None = None,
    ) -> None:
        super().__init__(model, failures)
        self.locations = {index: locations.get(index, index) for index in self.failures}
        self.unit = unit
        self.source = source
        lines = []
        for index, errs in list(self.failures.items())[:20]:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ())) or '<record>'}: {e.get('msg')}"
                for e in errs
            )
            where = self.locations[index]
            shown = repr(where) if unit == "row" else str(where)  # a label may be a str
            lines.append(f"  {unit} {shown}: {detail}")
        more = len(self.failures) - len(lines)
        if more > 0:
            lines.append(f"  ... and {more} more")
        origin = f" from {source}" if source else ""
        self.args = (
            f"{len(self.failures)} {model} record(s){origin} failed validation; nothing was "
            "written\n" + "\n".join(lines),
        )


class FileFormatError(ActiveRecordError, ValueError):
    """A file being loaded is malformed at ``line`` (wrong field count, bad JSON, ...)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = ", ".join(p for p in (path, None if line is None else f"line {line}") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line


class UnknownColumnError(ActiveRecordError, KeyError):
    """A column name given by the caller is not a column of the model's table."""

    def __init__(self, column: str, model: str, known: Sequence[str] = ()) -> None:
        self.column = column
        self.model = model
        hint = f" (columns: {', '.join(known)})" if known else ""
        super().__init__(f"{model} has no column {column!r}{hint}")


class QueryError(ActiveRecordError, ValueError):
    """A query cannot be built or run as asked."""


class ArgumentError(QueryError):
    """An argument of a call is wrong (``batch_size=0``, an unknown option); raised before
    any input is read or anything is written. Also a ``ValueError``."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument has the wrong type: an input that is not an iterable of records, a record
    of another model, a size that is not an int. Also a ``TypeError``."""


class ParameterCountError(QueryError):
    """A SQL fragment's ``?`` placeholders do not match the number of parameters."""


class UnsafeWriteError(QueryError):
    """An update or delete would touch every row (or cannot honour limit/order)."""


class NotPreloadedError(QueryError):
    """A relation that was not loaded is read in async code: loading it there would be
    blocking I/O hidden in an attribute read. Load it with ``query().preload(name)``."""


class StaleRecordError(ActiveRecordError):
    """An optimistic-lock check failed: the row changed (or vanished) since the record was read.

    ``keys`` are the primary keys of the stale records; ``indexes`` their positions in the input
    of a batch (empty for a single ``save()``); ``versions`` the lock version each was read at.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        keys: Sequence[Any] = (),
        indexes: Sequence[int] = (),
        versions: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.model = model
        self.keys = list(keys)
        self.indexes = list(indexes)
        self.versions = list(versions)


class DatabaseError(ActiveRecordError):
    """The database refused a statement. ``orig`` is the driver's exception (also
    ``__cause__``).

    ``record_index`` (the same as ``record``): the failing record's position in a batch's
    input, where known; ``column``: the column whose value was refused, where known.
    """

    def __init__(self, message: str, *, orig: BaseException | None = None) -> None:
        super().__init__(message)
        self.orig = orig

    @property
    def record_index(self) -> int | None:
        """The failing record's index in the input (``record``), where known."""
        return self.record

    @record_index.setter
    def record_index(self, value: int | None) -> None:
        self.record = value


class IntegrityError(DatabaseError):
    """A constraint was violated."""


class UniqueViolation(IntegrityError):
    """A unique or primary key constraint was violated."""


class ForeignKeyViolation(IntegrityError):
    """A foreign key constraint was violated."""


class NotNullViolation(IntegrityError):
    """A NOT NULL column received NULL."""


class DataError(DatabaseError):
    """The database (or its driver) rejected a value: out of range, too long, invalid."""


class DatabaseConnectionError(DatabaseError, ConnectionError):
    """The connection to the database failed or was lost."""


class PoolTimeoutError(DatabaseConnectionError):
    """Every pooled connection stayed in use for the engine's ``pool_timeout``.

    More threads work at once than ``pool_size + max_overflow`` allows, or connections are
    held too long (a long ``Transaction``, a raw connection never closed). ``orig`` is
    SQLAlchemy's ``TimeoutError``.
    """


class TransactionConflictError(DatabaseError):
    """A deadlock, serialization failure or lock timeout: the transaction may be retried."""


class TransactionTooLargeError(DatabaseError):
    """One transaction wrote more than the server lets a transaction hold: a Galera cluster's
    ``wsrep_max_ws_rows`` / ``wsrep_max_ws_size``, TiDB's ``txn-total-size-limit``.

    ``limit`` names the setting. Nothing was committed. Write in smaller transactions
    (``batch_insert(..., commit_every=N)``, ``load_csv(..., commit_every=N)``) or, on Galera,
    stream the transaction in fragments (``Transaction(fragment_rows=N)``).
    """

    def __init__(
        self, message: str, *, orig: BaseException | None = None, limit: str | None = None
    ) -> None:
        super().__init__(message, orig=orig)
        self.limit = limit


class PartialWriteError(ActiveRecordError):
    """A non-atomic batch write (``commit_every=N``) failed after committing some rows.

    ``committed`` rows (the input's first ones) are stored for good; nothing of the failing
    slice is. ``resume_at`` is the index of the first input record not stored (where to
    resume: ``records[resume_at:]``); for a file load, ``resume_line`` is its line.
    ``__cause__`` is the error that stopped the write; its record numbers count from
    ``resume_at``.
    """

    def __init__(
        self, message: str, *, committed: int, resume_at: int, resume_line: int | None = None
    ) -> None:
        super().__init__(message)
        self.committed = committed
        self.resume_at = resume_at
        self.resume_line = resume_line
