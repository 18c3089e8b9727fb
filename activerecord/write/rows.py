"""A chunk's rows written by the insert strategy, generated keys and values set back.

Shared by the insert writer (:mod:`.insert`) and the upsert writer, which inserts the rows
whose key it found absent (:mod:`.upsert_chunk`).

Example::

    >>> import activerecord
    >>> from activerecord import ActiveRecord
    >>> from activerecord.backend.transaction import write_connection
    >>> from activerecord.write.strategies import strategy_for
    >>> class Peg(ActiveRecord):
    ...     __table_name__ = "doc_pegs"
    ...     id: int | None = None
    ...     hole: int
    >>> db = activerecord.connect("sqlite://")
    >>> Peg.create_table()
    >>> rows = [{"id": None, "hole": 4}, {"id": None, "hole": 5}]
    >>> with write_connection(db) as conn:
    ...     write_chunk(conn, strategy_for(conn, Peg.__ar_info__, db.facts), Peg.__ar_info__,
    ...                 rows, 0)
    >>> [r["id"] for r in rows]
    [1, 2]
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..insert.locate import ValueRefused, WriteFailed, rows_located
from .by_key import key_rows, select_by_keys
from .strategies import InsertStrategy

if TYPE_CHECKING:
    from ..backend.dialects import DialectFacts
    from ..model.info import ModelInfo
    from ..model.state import Undo

__all__ = ["write_chunk"]


def write_chunk(
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
    for missing_flags, positions in _runs(datas, generated):
        missing = {f for f, gone in zip(generated, missing_flags) if gone}
        group = datas if len(positions) == len(datas) else [datas[n] for n in positions]
        _write_run(conn, strategy, info, pk, group, missing, _locator(offset, positions),
                   undo, need_keys=need_keys)


def _runs(
    datas: list[dict[str, Any]], generated: list[str]
) -> list[tuple[tuple[bool, ...], list[int]]]:
    """The chunk cut into runs of consecutive rows that leave the same ``generated`` fields
    to the database (None), each with those flags and the rows' positions."""
    runs: list[tuple[tuple[bool, ...], list[int]]] = []
    flags = [tuple(data[f] is None for f in generated) for data in datas[:1]]
    if not generated or _all_alike(datas, generated, flags[0]):
        return [(flags[0] if flags else (), list(range(len(datas))))]
    for n, data in enumerate(datas):
        these = tuple(data[f] is None for f in generated)
        if runs and runs[-1][0] == these:
            runs[-1][1].append(n)
        else:
            runs.append((these, [n]))
    return runs


def _write_run(
    conn: sa.Connection,
    strategy: InsertStrategy,
    info: ModelInfo,
    pk: str | None,
    group: list[dict[str, Any]],
    missing: set[str],
    locate: Callable[[int], int],
    undo: Undo | None,
    *,
    need_keys: bool,
) -> None:
    """Write one run of rows leaving ``missing`` to the database (``locate``: a row's place
    in the whole call), and set back what they were given."""
    fetch_key = need_keys and pk is not None and pk in missing
    sent = [f for f in info.fields if f not in missing]
    if not sent and pk in missing and strategy.reserves_keys:
        fetch_key = True  # a COPY sends at least one column: the keys it reserves
    if fetch_key and strategy.reserves_keys:
        sent.insert(0, pk)  # type: ignore[arg-type]
    if pk is not None and pk not in missing and strategy.watches_keys:
        with rows_located(locate, always=True):
            strategy.explicit_keys(list(map(itemgetter(pk), group)))
    shape = strategy.shape(tuple(sent), fetch_key)
    if undo is not None:
        for fname in missing:
            undo.filled(group, fname)
    rest = [f for f in missing if f != pk] if need_keys else []
    if not rest and strategy.stream(shape, group, locate, fetch_key):
        return
    strategy.settle()
    with rows_located(locate):
        keys = strategy.write(shape, group, fetch_key)
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
