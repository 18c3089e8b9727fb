"""CSV and JSON Lines files in, streamed: a file larger than memory loads in bounded memory.

The file is read lazily, one record at a time, and the batch insert consumes the records a
chunk at a time; only the current chunk (and the line numbers of records that failed
validation) are held. A file ending in ``.gz`` is decompressed on the fly.

Values are converted by the model's own pydantic validation (``"42"`` → ``42``,
``"2024-05-01"`` → a date, ``"true"`` → ``True``). In a CSV, where every value is text:

* an **empty cell** is a missing value (``empty="null"``, the default, as pandas reads it):
  NULL when the field is optional, else the field's default when it has one, else it is
  reported as invalid. With ``empty="keep"`` an empty cell in a text field (``str``,
  ``bytes``) is the empty string instead; other fields are as with ``"null"``;
* a cell of a JSON field (``dict``/``list``) is parsed as JSON.

(``validate=False`` skips the model's validation, so values reach the database as read.)

Errors name the line: a record with the wrong number of fields, bad JSON or a decoding error
raises :class:`~activerecord.errors.FileFormatError` (``people.csv, line 7: ...``); records
that fail validation raise :class:`~activerecord.errors.LoadValidationError` listing each bad
record's line. Either way nothing is written.

Example::

    >>> import io, activerecord
    >>> from activerecord import ActiveRecord
    >>> class Visit(ActiveRecord):
    ...     __table_name__ = "doc_visits"
    ...     id: int | None = None
    ...     page: str
    ...     ms: int | None = None
    >>> _ = activerecord.connect("sqlite://")
    >>> Visit.create_table()
    >>> load_csv(Visit, io.StringIO("page,ms\\n/home,12\\n/about,\\n"))
    2
    >>> [(v.page, v.ms) for v in Visit.query().order_by("id")]
    [('/home', 12), ('/about', None)]
"""

from __future__ import annotations

import bisect
import csv
import enum
import gzip
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any, Literal, get_origin

from ..errors import FileFormatError, QueryError
from ..model.schema import unwrap_annotated, unwrap_optional
from .loader import load_rows
from .names import check_required, map_names
from .progress import Progress

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = [
    "EMPTY", "Empty", "Source", "load_csv", "load_jsonl", "load_source", "read_csv", "read_jsonl",
]

#: A path, or an open text file (anything iterating over lines).
Source = str | os.PathLike[str] | IO[str]
#: What an empty CSV cell is: a missing value (``"null"``) or, in a text field, ``""``.
Empty = Literal["null", "keep"]
#: The choices of ``empty=``, the first the default (the command line offers the same).
EMPTY: tuple[Empty, ...] = ("null", "keep")

_OMIT = object()


class LineMap:
    """Record index → line number in O(breaks) memory: only where the step changes.

    For a CSV without multi-line records or blank lines, that is one entry for the whole file.

    >>> lines = LineMap()
    >>> for index, line in enumerate([2, 3, 5, 6]):
    ...     lines.add(index, line)
    >>> [lines.line(i) for i in range(4)], len(lines.starts)
    ([2, 3, 5, 6], 2)
    """

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.offsets: list[int] = []

    def add(self, index: int, line: int) -> None:
        if not self.offsets or self.offsets[-1] != line - index:
            self.starts.append(index)
            self.offsets.append(line - index)

    def line(self, index: int) -> int:
        pos = bisect.bisect_right(self.starts, index) - 1
        return index + self.offsets[max(pos, 0)] if self.offsets else index


def _name(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


@contextmanager
def _open(source: Source, encoding: str) -> Iterator[IO[str]]:
    if not isinstance(source, (str, os.PathLike)):
        yield source
        return
    path = os.fspath(source)
    if path.endswith(".gz"):
        with gzip.open(path, "rt", encoding=encoding, newline="") as fz:
            yield fz
    else:
        with open(path, encoding=encoding, newline="") as f:
            yield f


def _blank_value(model: type[ActiveRecord], fname: str, empty: Empty) -> Any:
    """What an empty CSV cell means for a field (see the module docs)."""
    finfo = model.__ar_info__.field_infos[fname]
    base, optional = unwrap_optional(finfo.annotation)
    base = unwrap_annotated(base, [])
    text = isinstance(base, type) and issubclass(base, (str, bytes)) and not issubclass(
        base, enum.Enum
    )
    if text and empty == "keep":
        return ""
    if optional:
        return None
    if not finfo.is_required():
        return _OMIT
    return None if text else ""  # validation reports it, with the line


def _is_json(model: type[ActiveRecord], fname: str) -> bool:
    """Whether a field takes a JSON cell (a dict or list field)."""
    finfo = model.__ar_info__.field_infos[fname]
    base = unwrap_annotated(unwrap_optional(finfo.annotation)[0], [])
    return (get_origin(base) or base) in (dict, list)


def _json_cell(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # validation reports it, with the line


def read_csv(
    model: type[ActiveRecord],
    f: IO[str],
    lines: LineMap,
    *,
    source: str,
    columns: Mapping[str, str | None] | None = None,
    delimiter: str = ",",
    empty: Empty = "null",
    required: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield a CSV's records as dicts keyed by field name, noting each one's line.

    A row is zipped with the field names in one call; only a row with an empty cell, or a
    JSON field, takes a second look (an empty cell means what :func:`_blank_value` says).
    With ``required``, a header lacking a column for a required field is refused at once.
    """
    reader = csv.reader(f, delimiter=delimiter, strict=True)
    try:
        header: list[str] = []
        while not header:
            header = next(reader)
        header[0] = header[0].lstrip("\ufeff")  # a byte order mark read as text
        names = map_names(model, header, columns, source=source)
        if required:
            check_required(model, names, source=source)
        keep = [(pos, fname) for pos, fname in enumerate(names) if fname is not None]
        fnames = [fname for _, fname in keep]
        positions = [pos for pos, _ in keep]
        blanks = {fname: _blank_value(model, fname, empty) for fname in fnames}
        json_fields = [fname for fname in fnames if _is_json(model, fname)]
        pick: Callable[[list[str]], Sequence[str]] | None = None
        if positions != list(range(len(header))):  # some columns dropped or reordered
            pick = (lambda row, p=positions[0]: (row[p],)) if len(positions) == 1 else (
                itemgetter(*positions)
            )
        width = len(header)
        previous = reader.line_num
        index = 0
        step: int | None = None
        for row in reader:
            start, previous = previous + 1, reader.line_num
            if not row:
                continue  # a blank line
            if len(row) != width:
                raise FileFormatError(
                    f"expected {width} fields (as in the header), got {len(row)}",
                    path=source,
                    line=start,
                )
            values = row if pick is None else pick(row)
            record: dict[str, Any] = dict(zip(fnames, values))
            if "" in values:
                for fname, value in zip(fnames, values):
                    if value == "":
                        blank = blanks[fname]
                        if blank is _OMIT:
                            del record[fname]
                        else:
                            record[fname] = blank
            for fname in json_fields:
                cell = record.get(fname)
                if isinstance(cell, str) and cell != "":
                    record[fname] = _json_cell(cell)
            if start - index != step:  # only where the step between lines changes
                step = start - index
                lines.add(index, start)
            index += 1
            yield record
    except StopIteration:
        return  # an empty file
    except csv.Error as exc:
        raise FileFormatError(str(exc), path=source, line=reader.line_num) from exc
    except UnicodeDecodeError as exc:
        line = reader.line_num + 1
        raise FileFormatError(f"not valid text: {exc}", path=source, line=line) from exc


def read_jsonl(
    model: type[ActiveRecord],
    f: IO[str],
    lines: LineMap,
    *,
    source: str,
    columns: Mapping[str, str | None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield a JSON Lines file's objects as dicts keyed by field name, noting each one's line."""
    mapped: dict[str, str | None] = {}
    index = 0
    number = 0
    try:
        for number, text in enumerate(f, start=1):  # noqa: B007 - number is read after
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise FileFormatError(f"invalid JSON: {exc}", path=source, line=number) from exc
            if not isinstance(obj, dict):
                raise FileFormatError(
                    f"expected a JSON object, got {type(obj).__name__}", path=source, line=number
                )
            record: dict[str, Any] = {}
            for key, value in obj.items():
                fname = mapped.get(key, "")
                if fname == "":
                    fname = map_names(model, [key], columns, source=source)[0]
                    mapped[key] = fname
                if fname is not None:
                    record[fname] = value
            lines.add(index, number)
            index += 1
            yield record
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"not valid text: {exc}", path=source, line=number + 1) from exc


def load_source(
    model: type[ActiveRecord],
    source: Source,
    read: Callable[..., Iterator[dict[str, Any]]],
    *,
    encoding: str,
    validate: bool,
    batch_size: int | None,
    progress: Progress,
    upsert: Sequence[str] | None,
    on_upsert: Callable[[Any], Any] | None = None,
    commit_every: int | None = None,
    **options: Any,
) -> int:
    """Load a file with ``read`` (:func:`read_csv` or :func:`read_jsonl`); the shared body of
    :func:`load_csv`, :func:`load_jsonl` and the command line (which takes ``on_upsert``)."""
    name = _name(source)
    lines = LineMap()
    with _open(source, encoding) as f:
        rows = read(model, f, lines, source=name, **options)
        count: int = load_rows(
            model,
            rows,
            locate=lines.line,
            unit="line",
            source=name,
            validate=validate,
            batch_size=batch_size,
            progress=progress,
            upsert=upsert,
            on_upsert=on_upsert,
            commit_every=commit_every,
        )
    return count


def load_csv(
    model: type[ActiveRecord],
    source: Source,
    *,
    columns: Mapping[str, str | None] | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    empty: Empty = "null",
    validate: bool = True,
    batch_size: int | None = None,
    progress: Progress = False,
    upsert: Sequence[str] | None = None,
    commit_every: int | None = None,
) -> int:
    """Stream a CSV file (with a header row) into the model's table; return the row count.

    ``columns`` renames (``{"E-mail": "email"}``) or drops (``{"notes": None}``) header
    names; ``upsert=("email",)`` updates rows whose key exists instead of failing. An empty
    cell is a missing value (NULL in an optional field); ``empty="keep"`` keeps it as ``""``
    in text fields. ``commit_every=N``: not atomic, every N rows commit on their own; a
    failure raises :class:`~activerecord.errors.PartialWriteError` with the rows committed and
    the line to resume at (``resume_line``).

    >>> import io, activerecord
    >>> from activerecord import ActiveRecord
    >>> class Note(ActiveRecord):
    ...     __table_name__ = "doc_notes"
    ...     id: int | None = None
    ...     text: str | None = None
    >>> _ = activerecord.connect("sqlite://")
    >>> Note.create_table()
    >>> load_csv(Note, io.StringIO("id,text\\n1,\\n")), load_csv(
    ...     Note, io.StringIO("id,text\\n2,\\n"), empty="keep")
    (1, 1)
    >>> [n.text for n in Note.query().order_by("id")]
    [None, '']
    """
    return load_source(
        model, source, read_csv, encoding=encoding, validate=validate, batch_size=batch_size,
        progress=progress, upsert=upsert, commit_every=commit_every, columns=columns,
        delimiter=delimiter, empty=_check_empty(empty), required=validate,
    )


def _check_empty(empty: Any) -> Empty:
    if empty not in EMPTY:
        raise QueryError(f"empty must be one of {', '.join(map(repr, EMPTY))}, not {empty!r}")
    return empty  # type: ignore[no-any-return]


def load_jsonl(
    model: type[ActiveRecord],
    source: Source,
    *,
    columns: Mapping[str, str | None] | None = None,
    encoding: str = "utf-8",
    validate: bool = True,
    batch_size: int | None = None,
    progress: Progress = False,
    upsert: Sequence[str] | None = None,
    commit_every: int | None = None,
) -> int:
    """Stream a JSON Lines file (one object per line) into the model's table; return the count.
    ``commit_every=N`` as for :func:`load_csv`.

    >>> import io, activerecord
    >>> from activerecord import ActiveRecord
    >>> class Hit(ActiveRecord):
    ...     __table_name__ = "doc_hits"
    ...     id: int | None = None
    ...     path: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Hit.create_table()
    >>> load_jsonl(Hit, io.StringIO('{"path": "/"}\\n{"path": "/a"}\\n'))
    2
    """
    return load_source(
        model, source, read_jsonl, encoding=encoding, validate=validate, batch_size=batch_size,
        progress=progress, upsert=upsert, commit_every=commit_every, columns=columns,
    )
