"""Batch insert: chunking, validation with a per-record report, primary keys set back.

A call streams its input chunk by chunk (a generator is never materialised): each chunk is
validated as a whole by a cached ``TypeAdapter(list[Model])``, then written by the backend's
insert strategy (:mod:`activerecord.insert`), which returns the exact generated keys.

The whole call is atomic: every chunk runs in one transaction (a savepoint inside an ambient
``Transaction``), so a failure anywhere leaves the database as it was, and the records as
they were (see :class:`Undo`). With ``validate=True``
every record is checked; if any fails, the rest are still checked (nothing more is written),
the transaction rolls back and one :class:`BatchValidationError` lists them all.

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
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sized
from contextlib import ExitStack, nullcontext
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

import pydantic
import sqlalchemy as sa
from pydantic_core import PydanticUndefined

from .arguments import check_records, check_size, is_collection
from .backend import bridge
from .backend.errors import refused_value_error, translate_error
from .backend.transaction import (
    holding_open,
    in_transaction,
    on_rollback,
    retrying,
    tracks_rollback,
    write_connection,
)
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    BatchValidationError,
    ConfigurationError,
    DatabaseError,
    PartialWriteError,
    UnknownColumnError,
)
from .insert.locate import ValueRefused, WriteFailed
from .model.batch_hooks import BatchHooks, batch_hooks
from .model.state import Undo
from .optional import require
from .validation import collector_paused, list_adapter, record_failures
from .write.by_key import key_rows, select_by_keys
from .write.strategies import InsertStrategy, strategy_for

if TYPE_CHECKING:
    from .backend.dialects import DialectFacts
    from .model import ActiveRecord
    from .model.info import ModelInfo

__all__ = ["ProgressCallback", "batch_insert", "in_slices"]

#: ``progress=`` may be a callable taking the number of rows done so far.
ProgressCallback = Callable[[int], Any]

_DICT = {dict}
_dict_of = attrgetter("__dict__")



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
    for piece in _chunks(records, commit_every):
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
    if isinstance(exc, DatabaseError) and exc.record_index is not None:
        old, exc.record_index = exc.record_index, exc.record_index + offset
        if exc.args and isinstance(exc.args[0], str):
            exc.args = (exc.args[0].replace(f"record {old}:", f"record {exc.record_index}:", 1),)
    return exc


def _chunks(items: Iterable[Any], size: int, *, ramp: bool = False) -> Iterator[list[Any]]:
    """Lists of ``size`` items; with ``ramp``, the first ones smaller (1/64, 1/16, 1/4 of it)
    so that the database starts on the first rows while the next chunk is prepared."""
    iterator = iter(items)
    sizes = [max(1, size // 64), max(1, size // 16), max(1, size // 4)] if ramp else []
    while True:
        chunk = list(itertools.islice(iterator, sizes.pop(0) if sizes else size))
        if not chunk:
            return
        yield chunk


class _Progress:
    """A tqdm bar (``progress=True``; notebooks detected by ``tqdm.auto``) or a callback."""

    def __init__(self, progress: bool | ProgressCallback, total: int | None, name: str) -> None:
        self.callback: ProgressCallback | None = None
        self.bar: Any = None
        self.done = 0
        if callable(progress):
            self.callback = progress
        elif progress:
            tqdm = require("tqdm.auto", extra="progress", what="progress=True").tqdm
            self.bar = tqdm(total=total, unit="rows", desc=f"insert {name}")

    def advance(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(self.done)
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Preparer:
    """Turns one chunk of input into row dicts (and instances), filling defaults."""

    def __init__(
        self,
        model: type[ActiveRecord],
        info: ModelInfo,
        *,
        validate: bool,
        from_dicts: bool,
        return_records: bool,
        build: bool = False,
    ) -> None:
        self.model = model
        self.info = info
        self.validate = validate
        self.from_dicts = from_dicts
        # ``build``: dicts become records even when none is handed back (the hooks get them).
        self.need_instances = return_records or not from_dicts or build
        self.known = frozenset(model.model_fields)
        self.adapter = list_adapter(model) if validate else None
        # Field defaults for dicts written without validation or instances.
        self.constants: dict[str, Any] = {}
        self.factories: dict[str, Callable[[], Any]] = {}
        for fname in info.fields:
            finfo = model.model_fields[fname]
            if finfo.default_factory is not None:
                self.factories[fname] = finfo.default_factory  # type: ignore[assignment]
            else:
                default = finfo.default
                self.constants[fname] = None if default is PydanticUndefined else default

    def __call__(
        self, chunk: list[Any], offset: int, failures: dict[int, list[Any]], undo: Undo
    ) -> tuple[list[dict[str, Any]], list[ActiveRecord] | None]:
        defaults = self.model._insert_defaults()
        if self.from_dicts:
            datas = self._dicts(chunk, offset, defaults)
        else:
            datas = self._instances(chunk, offset, defaults, undo)
        instances: list[ActiveRecord] | None = chunk if not self.from_dicts else None
        if self.adapter is not None:
            try:
                validated = self.adapter.validate_python(datas)  # the caller pauses the GC
            except pydantic.ValidationError as exc:
                record_failures(exc, failures, offset)
                return [], None
            if self.from_dicts:
                instances = validated
                datas = list(map(_dict_of, validated))
        elif self.from_dicts and self.need_instances:
            construct = self.model.model_construct
            instances = [construct(**data) for data in datas]
            datas = [record.__dict__ for record in instances]
        if self.from_dicts and instances is not None and undo.ambient:
            # What a later rollback puts them back to: as built, without the defaults the
            # call filled in (stamps), as for instances the caller built.
            befores = list(map(dict.copy, datas))
            for fname in defaults:
                for before, row in zip(befores, chunk):
                    if row.get(fname) is None:
                        before[fname] = None
            undo.keep(instances, datas, befores)
        return datas, instances

    def _check_keys(self, index: int, row: Any) -> None:
        if not isinstance(row, Mapping):
            raise ArgumentTypeError(
                f"record {index}: expected a dict, got {type(row).__name__}"
            )
        for key in row:
            if key not in self.known:
                err = UnknownColumnError(str(key), self.info.model_name, self.info.fields)
                err.args = (f"record {index}: {err.args[0]}",)
                raise err

    def _dicts(
        self, chunk: list[Any], offset: int, defaults: dict[str, Any]
    ) -> list[dict[str, Any]]:
        known = self.known
        if (
            self.validate
            and not defaults
            and set(map(type, chunk)) == _DICT
            and known.issuperset(itertools.chain.from_iterable(chunk))
        ):
            return chunk  # pydantic copies each into its instance: no need to copy twice
        fill = not self.validate and not self.need_instances
        datas = []
        for i, item in enumerate(chunk):
            if not (isinstance(item, dict) and item.keys() <= known):
                self._check_keys(offset + i, item)
            if fill:  # rows go straight to the database: give every column its default
                data = dict(self.constants)
                data.update(item)
                for fname, factory in self.factories.items():
                    if fname not in item:
                        data[fname] = factory()
            elif not defaults and self.validate:
                data = item  # pydantic copies it into the instance; no need to copy twice
            else:
                data = dict(item)
            for fname, value in defaults.items():
                if data.get(fname) is None:
                    data[fname] = value
            datas.append(data)
        return datas

    def _instances(
        self, chunk: list[Any], offset: int, defaults: dict[str, Any], undo: Undo
    ) -> list[dict[str, Any]]:
        model = self.model
        if set(map(type, chunk)) != {model}:
            for i, item in enumerate(chunk):
                if not isinstance(item, model):
                    raise ArgumentTypeError(
                        f"record {offset + i}: expected a {model.__name__}, "
                        f"got {type(item).__name__}"
                    )
        datas = list(map(_dict_of, chunk))
        undo.keep(chunk, datas)
        for fname, value in defaults.items():
            unset = [data for data in datas if data.get(fname) is None]
            undo.filled(unset, fname)
            for data in unset:
                data[fname] = value
        return datas


#: Writes one prepared chunk: ``(connection, strategy, chunk as given, row dicts, offset of
#: the chunk's first record)``; returns the positions (in the chunk) of the records the call
#: hands back, or None for all of them. ``undo`` hears of each field it fills on the dicts.
ChunkWriter = Callable[
    [sa.Connection, InsertStrategy, list[Any], list[dict[str, Any]], int, Undo],
    Collection[int] | None,
]


def run_batch(
    model: type[ActiveRecord],
    records: Iterable[Any],
    write: ChunkWriter,
    *,
    validate: bool,
    batch_size: int | None,
    progress: bool | ProgressCallback,
    from_dicts: bool,
    return_records: bool,
    context: str,
    copies: bool = False,
    stream: bool = False,
    hooks: BatchHooks | None = None,
) -> tuple[int, list[Any]]:
    """The chunk loop of every batch write (insert, upsert, insert-or-ignore).

    Each chunk is prepared (validated or key-checked, defaults filled), written by ``write``,
    its records marked persisted and counted in the progress; all in one transaction (a
    savepoint inside an ambient one). Validation failures are collected over every chunk and
    raised as one :class:`BatchValidationError` (after the first, nothing more is written);
    a database error is raised typed, with the failing record's index where the database
    names it. A failed call puts the given records back as they were (see :class:`Undo`;
    ``copies``: whole copies of their fields, for writers that change more than the fields
    they fill). ``stream``: ``write`` may leave a chunk's rows in a statement still open
    while the next chunk is prepared (:meth:`InsertStrategy.stream`), where nothing else can
    use the connection meanwhile without ending it first; the first chunks are then smaller
    (unless ``batch_size`` is given), so the database starts sooner. Returns the records
    counted and, with ``return_records``, the records handed back, in input order.
    ``hooks``: the model's batch hooks, run around each chunk (see
    :mod:`activerecord.model.callbacks`).
    """
    info = model.__ar_info__
    db = model.database()
    check_size(batch_size)
    size = batch_size or bridge.chunk_rows(db.facts.chunk_rows(len(info.fields)))
    total = len(records) if isinstance(records, Sized) else None
    bar = _Progress(progress, total, model.__name__)
    prepare = _Preparer(
        model, info, validate=validate, from_dicts=from_dicts, return_records=return_records,
        build=hooks is not None,
    )
    # Dicts have no records before they are prepared: their hooks get the records built
    # (and validated) from them, then the rows are read off the records again.
    dict_hooks = hooks if from_dicts else None
    instance_hooks = None if from_dicts else hooks
    undo = Undo(
        active=not from_dicts,
        whole_call=is_collection(records),
        copies=copies,
        ambient=tracks_rollback(db),
        rollback_only=from_dicts and return_records,
    )
    out: list[Any] = []
    failures: dict[int, list[Any]] = {}
    try:
        try:
            with write_connection(db, statements=2) as conn, ExitStack() as guard:
                strategy = strategy_for(conn, info, db.facts)
                if stream and strategy.streams:
                    # No user code between chunks (a generator input is user code, which in
                    # using() may reach the caller's connection directly), or any that reaches
                    # the connection through the library (a validator's query, a progress
                    # callback's) ends it first.
                    quiet = (
                        not validate and not callable(progress) and is_collection(records)
                        and hooks is None
                    )
                    strategy.may_stream = (
                        guard.enter_context(holding_open(db, strategy.pending)) or quiet
                    )
                    undo.defer_marks = strategy.may_stream
                try:
                    offset = 0
                    ramp = strategy.may_stream and batch_size is None  # else as asked
                    for chunk in _chunks(records, size, ramp=ramp):
                        # The collector rests while a chunk is validated and written: the
                        # records validation builds are no cycles, and those nobody gets
                        # back are freed before it runs again.
                        # So it does while an iterator's records are written and remembered
                        # weakly (one weak reference each).
                        weakly = undo.remembers_weakly
                        with collector_paused() if validate or weakly else nullcontext():
                            undo.start_chunk()
                            if instance_hooks is not None:
                                instance_hooks.before(chunk)
                            datas, instances = prepare(chunk, offset, failures, undo)
                            if dict_hooks is not None and instances is not None and not failures:
                                dict_hooks.before(instances)
                                # A hook's assignment may give a record a new __dict__.
                                datas = list(map(_dict_of, instances))
                                given = dict_hooks.given(chunk, instances)
                            else:
                                given = chunk
                            if not failures:
                                kept = write(conn, strategy, given, datas, offset, undo)
                                if hooks is not None:
                                    hooks.after(
                                        chunk if instances is None else instances,
                                        kept=kept,
                                    )
                                if instances is not None and (return_records or not from_dicts):
                                    undo.written(instances, datas)
                                    if return_records:
                                        out.extend(
                                            instances if kept is None
                                            else (instances[p] for p in sorted(kept))
                                        )
                            del datas, instances
                        if not failures:
                            bar.advance(len(chunk))
                        offset += len(chunk)
                    if failures:
                        raise BatchValidationError(model.__name__, failures)
                    strategy.finish()
                finally:
                    strategy.close()
        except BaseException:
            undo.failed()
            if hooks is not None:
                hooks.failed()
            raise
        if hooks is not None:
            hooks.succeeded()
        restore = undo.succeeded()
        if restore is not None:
            on_rollback(restore, db)
    except WriteFailed as exc:
        raise translate_error(exc.orig, context=context, record_index=exc.row) from exc.orig
    except sa.exc.DBAPIError as exc:
        raise translate_error(exc, context=context) from exc
    except sa.exc.StatementError as exc:  # a value a column's processor refused
        error = refused_value_error(exc, context=context)
        if error is None:
            raise
        raise error from exc
    finally:
        bar.close()
    return bar.done, out


def batch_insert(
    model: type[ActiveRecord],
    records: Iterable[Any],
    *,
    validate: bool = True,
    batch_size: int | None = None,
    progress: bool | ProgressCallback = False,
    from_dicts: bool = False,
    return_records: bool = True,
    on_conflict: str = "error",
    hooks: bool = True,
) -> tuple[int, list[Any]]:
    """Insert ``records`` (instances, or dicts with ``from_dicts``); see the module docs.

    Returns the row count and, when ``return_records``, the inserted instances in input order.
    ``on_conflict="ignore"`` skips rows whose unique key exists (see :mod:`activerecord.upsert`).
    ``hooks=False``: the loaders' bulk path, which runs no batch hooks (Rails' insert_all).
    """
    # Arguments first: a wrong call fails before any input is read, empty or not.
    check_size(batch_size)
    what = "dicts" if from_dicts else f"{model.__name__} instances"
    check_records(records, model.__name__, what=what)
    if on_conflict not in ("error", "ignore"):
        raise ArgumentError(f"on_conflict must be 'error' or 'ignore', got {on_conflict!r}")
    if on_conflict != "error":
        from .upsert import insert_ignoring

        return insert_ignoring(
            model, records, validate=validate, batch_size=batch_size, progress=progress,
            from_dicts=from_dicts, return_records=return_records, hooks=hooks,
        )
    info = model.__ar_info__
    # Rows handed back by nobody (dicts in, only the count out) need no keys read back.
    need_keys = not from_dicts or return_records
    # A chunk's rows may stay in an open statement while the next chunk is prepared when the
    # input is a collection: its records are marked persisted only at the end, and a failure
    # puts them all back (a generator's are marked chunk by chunk and forgotten); or when no
    # record comes back at all.
    stream = not need_keys or is_collection(records)

    def write(
        conn: sa.Connection,
        strategy: InsertStrategy,
        chunk: list[Any],
        datas: list[dict[str, Any]],
        offset: int,
        undo: Undo,
    ) -> None:
        _write_chunk(conn, strategy, info, datas, offset, undo, need_keys=need_keys)

    return run_batch(
        model, records, write, validate=validate, batch_size=batch_size, progress=progress,
        from_dicts=from_dicts, return_records=return_records,
        context=f"batch insert of {model.__name__}", stream=stream,
        # Dicts with return_records=False are the raw path (Rails insert_all): no records are
        # built, no hook runs.
        hooks=batch_hooks(model, "insert", records) if need_keys and hooks else None,
    )


def _write_chunk(
    conn: sa.Connection,
    strategy: InsertStrategy,
    info: ModelInfo,
    datas: list[dict[str, Any]],
    offset: int,
    undo: Undo | None = None,
    *,
    need_keys: bool = True,
) -> None:
    """Write one chunk: runs of consecutive rows that leave the same generated columns to
    the database, in input order (so rows with their own keys and rows that get one are
    numbered as if inserted one by one).

    ``undo`` hears of the fields filled: the key and server-generated values of the rows
    that left them to the database (not read back without ``need_keys``: the rows are not
    handed back). Rows whose generated values are not read back may go into a statement the
    strategy keeps open for the next chunk when the caller allows it
    (``strategy.may_stream``; see :meth:`InsertStrategy.stream`). A key the database would
    not number (SQLite's ``BIGINT PRIMARY KEY``) must be given: a row without one is refused
    before anything of the chunk is written."""
    pk = info.autoincrement_pk
    if pk is not None and not strategy.generates_key:
        _refuse_missing_keys(datas, pk, offset)
        pk = None
    generated = ([pk] if pk is not None else []) + list(info.server_generated)
    runs: list[tuple[tuple[bool, ...], list[int]]] = []
    flags = [tuple(data[f] is None for f in generated) for data in datas[:1]]
    if not generated or _all_alike(datas, generated, flags[0]):
        runs.append((flags[0] if flags else (), list(range(len(datas)))))
    else:
        for n, data in enumerate(datas):
            these = tuple(data[f] is None for f in generated)
            if runs and runs[-1][0] == these:
                runs[-1][1].append(n)
            else:
                runs.append((these, [n]))
    for missing_flags, positions in runs:
        missing = {f for f, gone in zip(generated, missing_flags) if gone}
        fetch_key = need_keys and pk is not None and pk in missing
        group = datas if len(positions) == len(datas) else [datas[n] for n in positions]
        sent = [f for f in info.fields if f not in missing]
        if not sent and pk in missing and strategy.reserves_keys:
            fetch_key = True  # a COPY sends at least one column: the keys it reserves
        if fetch_key and strategy.reserves_keys:
            sent.insert(0, pk)  # type: ignore[arg-type]
        if pk is not None and pk not in missing and strategy.watches_keys:
            try:
                strategy.explicit_keys(list(map(itemgetter(pk), group)))
            except WriteFailed as exc:
                exc.row = None if exc.row is None else offset + positions[exc.row]
                raise
        shape = strategy.shape(tuple(sent), fetch_key)
        if undo is not None:
            for fname in missing:
                undo.filled(group, fname)
        rest = [f for f in missing if f != pk] if need_keys else []
        if not rest and strategy.stream(shape, group, _locator(offset, positions), fetch_key):
            continue
        strategy.settle()
        try:
            keys = strategy.write(shape, group, fetch_key)
        except WriteFailed as exc:
            if not exc.located:
                exc.row = None if exc.row is None else offset + positions[exc.row]
            raise
        if fetch_key and keys is not None and not strategy.fills_keys:
            for data, key in zip(group, keys):
                data[pk] = key  # type: ignore[index]
        if rest:
            _fetch_generated(conn, info, strategy.facts, group, rest)


def _refuse_missing_keys(datas: list[dict[str, Any]], pk: str, offset: int) -> None:
    """A row leaving out a key the database does not number is refused (not stored with a
    NULL key, nor handed a rowid that is not its key)."""
    keys = list(map(itemgetter(pk), datas))
    if None in keys:
        orig = ValueRefused(
            pk,
            ValueError("no key given, and the database does not number this key column "
                       "(on SQLite only an INTEGER PRIMARY KEY is)"),
            sqlstate="23502",
        )
        raise WriteFailed(orig, offset + keys.index(None), located=True)


def _locator(offset: int, positions: list[int]) -> Callable[[int], int]:
    """Where a group's row sits in the whole call: its chunk's offset plus its place there."""
    return lambda n: offset + positions[n]


def _all_alike(datas: list[dict[str, Any]], generated: list[str], first: tuple[bool, ...]) -> bool:
    """True when every row leaves the same generated columns to the database (the usual)."""
    for fname, missing in zip(generated, first):
        values = list(map(itemgetter(fname), datas))
        if missing:
            if values.count(None) != len(values):
                return False
        elif None in values:
            return False
    return True


def _fetch_generated(
    conn: sa.Connection, info: ModelInfo, facts: DialectFacts, group: list[dict[str, Any]],
    fields: list[str],
) -> None:
    """Read server-generated values of rows whose keys are known, by key."""
    keys = list(map(itemgetter(*info.pk_fields), group))
    rows = key_rows(facts, len(info.pk_fields))
    found = dict(select_by_keys(conn, info, keys, fields, rows=rows))
    for data, key in zip(group, keys):
        data.update(zip(fields, found[key]))
