"""PyMySQL's result rows read column by column: the read path under ``all()`` and
``to_dicts()`` on MySQL/MariaDB.

PyMySQL reads each row of a result as its own packet object, then each field through three
method calls, then decodes and converts it: about 7 µs of a 100,000-row read's 10 µs a row
here, more than SQLAlchemy and the record building together. :func:`read_unbuffered` reads
the rows of an unbuffered result (``SSCursor``) straight from the connection's buffered
socket file: it parses every whole row packet the buffer holds in one loop, a field a slice,
and then decodes and converts each column in one pass with the very ``(encoding,
converter)`` pair PyMySQL chose for it (:func:`convert_column`), so the values are the ones
``fetchall()`` returns. A packet that is not there whole, a row of 16 MB or more, the
result's end and an error packet are read by PyMySQL's own ``_read_packet`` (its sequence
check, its error handling, its end-of-result bookkeeping), only their fields parsed here.

A cursor of another driver, a buffered result, or a PyMySQL whose internals differ is left
to the driver (:func:`read_unbuffered` returns None).

Example::

    >>> from pymysql import converters
    >>> convert_column([b"2024-01-02 03:04:05", None], "ascii", converters.convert_datetime)
    [datetime.datetime(2024, 1, 2, 3, 4, 5), None]
    >>> convert_column([b"0000-00-00"], "ascii", converters.convert_date)
    ['0000-00-00']
    >>> read_unbuffered(object(), 10) is None
    True
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from itertools import repeat
from typing import Any

__all__ = ["convert_column", "read_unbuffered"]

#: A packet of this length continues in the next one (PyMySQL's ``MAX_PACKET_LEN``).
_MAX_PACKET_LEN = 0xFFFFFF
#: The internals of a PyMySQL connection and result the read uses (those of 1.0 to 1.2).
_CONNECTION_FIELDS = ("_rfile", "_next_seq_id", "_read_packet", "_result")
_RESULT_FIELDS = ("converters", "unbuffered_active", "_check_packet_is_eof", "connection")


def read_unbuffered(cursor: Any, limit: int | None) -> tuple[list[list[Any]], bool] | None:
    """Up to ``limit`` (None: all) more rows of the PyMySQL unbuffered ``cursor``'s result,
    as one list of values per column, and whether the result has ended; None where the
    cursor is no PyMySQL ``SSCursor`` (a buffered one has read its rows already) or its
    result is not the connection's current one (read it as usual)."""
    conn: Any = getattr(cursor, "connection", None)
    result: Any = getattr(cursor, "_result", None)
    if (
        _cursors is None
        or type(cursor) is not _cursors.SSCursor  # a subclass may make other rows
        or not all(hasattr(conn, name) for name in _CONNECTION_FIELDS)
        or not all(hasattr(result, name) for name in _RESULT_FIELDS)
        or conn._result is not result
        or not hasattr(conn._rfile, "peek")
    ):
        return None
    pairs: list[tuple[str | None, Callable[[Any], Any] | None]] = list(result.converters)
    if not result.unbuffered_active:
        return [[] for _ in pairs], True
    raw, ended = _raw_fields(conn, result, len(pairs), limit)
    return [convert_column(*column) for column in zip(raw, *zip(*pairs))], ended


def _raw_fields(
    conn: Any, result: Any, ncols: int, limit: int | None
) -> tuple[list[list[bytes | None]], bool]:
    """The fields of up to ``limit`` rows as bytes (None for NULL), column by column."""
    columns: list[list[bytes | None]] = [[] for _ in range(ncols)]
    appends = [column.append for column in columns]
    left = -1 if limit is None else limit  # rows still to read; -1: no limit
    rfile = conn._rfile
    sock, timeout = getattr(conn, "_sock", None), getattr(conn, "_read_timeout", None)
    if sock is not None and getattr(conn, "_current_timeout", timeout) != timeout:
        sock.settimeout(timeout)  # as PyMySQL's _read_packet does before it reads
        conn._current_timeout = timeout
    while left:
        try:
            buf = rfile.peek()  # what the buffer holds (one socket read when it is empty)
        except OSError:
            buf = b""  # PyMySQL's read below meets the error again and reports it
        pos, seq, left = _whole_packets(conn, buf, conn._next_seq_id, appends, left)
        if pos:
            rfile.read(pos)  # from the buffer: no socket read
            conn._next_seq_id = seq
            continue
        if not left:
            break
        # A packet not whole in the buffer, a long one, an error or the end: PyMySQL's read.
        packet = conn._read_packet()
        if result._check_packet_is_eof(packet):
            # What PyMySQL's unbuffered read does at the end.
            result.unbuffered_active = False
            result.connection = None
            result.rows = None
            return columns, True
        data = packet.get_all_data()
        if _fields(data, 0, appends) != len(data):
            raise _protocol_error(conn, f"a row's fields do not end at its {len(data)}")
        left -= 1
    return columns, False


def _whole_packets(
    conn: Any, buf: bytes, seq: int, appends: list[Callable[[Any], None]], left: int
) -> tuple[int, int, int]:
    """Every whole row packet at the start of ``buf``, in order, up to ``left`` of them (-1:
    no limit), their fields appended; returns the bytes they take, the next sequence
    number and the rows still to read. Stops at the first packet that is not whole, out of
    sequence, 16 MB or longer, an error or the end of the result."""
    end, pos = len(buf), 0
    while left and pos + 4 < end:
        length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
        stop = pos + 4 + length
        first = buf[pos + 4]
        if (
            stop > end
            or buf[pos + 3] != seq
            or length >= _MAX_PACKET_LEN
            or first == 0xFF  # an error
            or (first == 0xFE and length < 9)  # the end of the result
        ):
            break
        p = pos + 4
        for append in appends:  # _fields, inline: this loop is the read's time
            size = buf[p]
            if size < 251:
                p += 1
                append(buf[p : p + size])
                p += size
            elif size == 251:
                append(None)
                p += 1
            else:
                p = _long_field(buf, p, append)
        if p != stop:
            raise _protocol_error(conn, f"a row's fields do not end at its {length}")
        pos = stop
        seq = (seq + 1) & 0xFF
        left -= 1
    return pos, seq, left


def _fields(data: bytes, p: int, appends: list[Callable[[Any], None]]) -> int:
    """One row's fields from ``data`` at ``p``, appended; returns where they end."""
    for append in appends:
        size = data[p]
        if size < 251:
            append(data[p + 1 : p + 1 + size])
            p += 1 + size
        elif size == 251:
            append(None)
            p += 1
        else:
            p = _long_field(data, p, append)
    return p


def _protocol_error(conn: Any, what: str) -> Exception:
    """A row packet PyMySQL would misread too: the connection is closed (the rest of the
    result cannot be found any more), as PyMySQL does on a packet out of sequence."""
    force_close = getattr(conn, "_force_close", None)
    if force_close is not None:
        force_close()
    error: Exception = _err.InternalError(f"malformed row packet: {what} bytes")
    return error


def _long_field(buf: bytes, p: int, append: Callable[[bytes], None]) -> int:
    """A field of 251 bytes or more at ``p`` (its length in 2, 3 or 8 bytes): appended;
    returns where the next field starts."""
    kind = buf[p]
    if kind == 252:
        size, p = buf[p + 1] | buf[p + 2] << 8, p + 3
    elif kind == 253:
        size, p = buf[p + 1] | buf[p + 2] << 8 | buf[p + 3] << 16, p + 4
    elif kind == 254:
        size, p = int.from_bytes(buf[p + 1 : p + 9], "little"), p + 9
    else:
        raise _err.InternalError(f"no field length starts with byte {kind:#x}")
    append(buf[p : p + size])
    return p + size


def convert_column(
    values: list[bytes | None], encoding: str | None, converter: Callable[[Any], Any] | None
) -> list[Any]:
    """One column's fields as PyMySQL's ``_read_row_from_packet`` makes them: NULL stays
    None, the others decoded with ``encoding`` (None: bytes stay bytes) and passed to
    ``converter`` (None: as they are), in one pass over the column. Where PyMySQL's
    converter parses a text a faster function parses the same way (an integer, a float, a
    canonical date or date and time), that one runs; a value it refuses (a zero date) sends
    the column through PyMySQL's converter."""
    has_null = None in values
    if converter is int or converter is float:
        # int(b"12") is int("12"): ASCII digits need no decoding first.
        present = [v for v in values if v is not None] if has_null else values
        done: list[Any] = list(map(converter, present))  # type: ignore[arg-type]
        return _with_nulls(values, done) if has_null else done
    if encoding is None and converter is None:
        return values
    present = [v for v in values if v is not None] if has_null else values
    texts: list[Any] = present if encoding is None else list(
        map(bytes.decode, present, repeat(encoding))  # type: ignore[arg-type]
    )
    if converter is not None:
        texts = _converted(texts, converter)
    return _with_nulls(values, texts) if has_null else texts


def _converted(texts: list[Any], converter: Callable[[Any], Any]) -> list[Any]:
    fast = _FAST.get(converter)
    if fast is not None:
        parse, lengths = fast
        if texts and set(map(len, texts)) <= lengths:
            try:
                return list(map(parse, texts))
            except ValueError:
                pass  # a zero or otherwise impossible date: PyMySQL's converter decides
    return list(map(converter, texts))


def _with_nulls(values: list[bytes | None], present: list[Any]) -> list[Any]:
    """``present`` (the non-NULL values, in order) put back among ``values``' NULLs."""
    it = iter(present)
    return [None if v is None else next(it) for v in values]


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - without PyMySQL no cursor of it comes here
        return None


#: PyMySQL's error classes and cursors (None without PyMySQL: then no cursor is one of it).
_err = _module("pymysql.err")
_cursors = _module("pymysql.cursors")


def _fast_parsers() -> dict[Any, tuple[Callable[[str], Any], frozenset[int]]]:
    """PyMySQL's date converters, each with a parser that returns the same value for the
    texts of the lengths given: the server's canonical ``YYYY-MM-DD HH:MM:SS`` (19
    characters) or with six fractional digits (26), and ``YYYY-MM-DD`` (10)."""
    converters = _module("pymysql.converters")
    if converters is None:  # pragma: no cover
        return {}
    return {
        converters.convert_datetime: (dt.datetime.fromisoformat, frozenset({19, 26})),
        converters.convert_date: (dt.date.fromisoformat, frozenset({10})),
    }


_FAST = _fast_parsers()
