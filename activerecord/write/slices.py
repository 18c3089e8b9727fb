"""The non-atomic mode of batch writes (``commit_every=N``): one transaction per slice.

Each slice of N records is written in its own transaction, committed before the next slice
is read; a failure says how many rows are committed and where to resume.

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> class Log(ActiveRecord):
    ...     __table_name__ = "doc_logs"
    ...     id: int | None = None
    ...     line: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Log.create_table()
    >>> Log.batch_insert([Log(line=str(n)) for n in range(5)], commit_every=2)
    5
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..arguments import check_size
from ..backend.transaction import in_transaction, retrying
from ..errors import BatchValidationError, ConfigurationError, DatabaseError, PartialWriteError
from .plan import chunks

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["in_slices"]


def in_slices(
    model: type[ActiveRecord],
    records: Iterable[Any],
    commit_every: int,
    write: Callable[[list[Any]], tuple[int, list[Any]]],
) -> tuple[int, list[Any]]:
    """The non-atomic mode of batch writes (``commit_every=N``): ``write`` each slice of N
    records in its own transaction, committed before the next slice is read.

    On a failure, :class:`PartialWriteError` says how many rows are committed and the index
    of the first record not stored (``resume_at``); its cause is the slice's error, with
    record numbers counted from the start of the input. Refused inside a ``Transaction``,
    whose commit would decide for every slice.
    """
    check_size(commit_every, "commit_every", optional=False)
    db = model.database()
    if in_transaction(db):
        raise ConfigurationError(
            "commit_every commits as it goes and cannot run inside a Transaction; "
            "call it outside one, or drop commit_every for one atomic write"
        )
    committed = 0
    offset = 0
    out: list[Any] = []
    for piece in chunks(records, commit_every):
        try:
            count, got = retrying(db, lambda piece=piece: write(piece))  # type: ignore[misc]
        except Exception as exc:
            cause = _shifted(model, exc, offset)
            raise PartialWriteError(
                f"{model.__name__}: {committed} row(s) committed before a failure; the records "
                f"from index {offset} on are not stored (resume with records[{offset}:]): "
                f"{cause}",
                committed=committed, resume_at=offset,
            ) from cause
        committed += count
        offset += len(piece)
        out.extend(got)
    return committed, out


def _shifted(model: type[ActiveRecord], exc: Exception, offset: int) -> Exception:
    """A slice's error with its record numbers counted from the start of the whole input."""
    if not offset:
        return exc
    if isinstance(exc, BatchValidationError) and type(exc) is BatchValidationError:
        shifted = BatchValidationError(
            model.__name__, {index + offset: errs for index, errs in exc.failures.items()}
        )
        shifted.__cause__ = exc.__cause__
        return shifted
    if isinstance(exc, DatabaseError) and exc.record is not None:
        exc.record += offset  # str() renders it: the message needs no rewrite
    return exc
