"""aiomysql's packet reads without two coroutines per packet: the read path under ``aall()``.

aiomysql reads every MySQL packet (one per result row) with two awaited
``StreamReader.readexactly`` calls, header then body, through two more coroutines; PyMySQL
reads the same packets from a buffered file. On a 100,000-row read that is about a fifth of
the time, and what made ``aall()`` slower than ``all()`` on MySQL/MariaDB. Once the stream's
buffer already holds a whole packet (nearly always: the socket delivers up to 256 KB per
read), :func:`fast_packet_reads` takes it from the buffer as ``readexactly`` would; otherwise
(a packet not all there yet, one of 16 MB or more, a closed or failed stream) it awaits
aiomysql's own ``_read_packet``, which waits for the data. The packet, its sequence check and
its error handling are aiomysql's; only where the bytes come from differs.

Installed on the connections of the async engines this library makes for aiomysql (the
``connect`` event); a connection of another driver, or an aiomysql or asyncio whose
internals differ, is left as it is.

Example::

    >>> class NotAiomysql:
    ...     pass
    >>> fast_packet_reads(NotAiomysql())
    False
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["fast_packet_reads"]

#: PyMySQL's ``MAX_PACKET_LEN``: a packet this long continues in the next one (aiomysql's
#: own loop joins them).
_MAX_PACKET_LEN = 2**24 - 1

#: The ``StreamReader`` internals the buffered read uses (those of Python 3.10 to 3.13).
_READER_FIELDS = ("_buffer", "_exception", "_maybe_resume_transport")


def fast_packet_reads(connection: Any) -> bool:
    """Give an aiomysql ``Connection`` the buffered packet read; whether it was given."""
    read = getattr(type(connection), "_read_packet", None)
    reader = getattr(connection, "_reader", None)
    if (
        not type(connection).__module__.startswith("aiomysql")
        or not inspect.iscoroutinefunction(read)
        or not isinstance(reader, asyncio.StreamReader)
        or not all(hasattr(reader, name) for name in _READER_FIELDS)
        or not all(hasattr(connection, name) for name in ("_next_seq_id", "_encoding", "_result"))
    ):
        return False
    slow: Callable[..., Awaitable[Any]] = read.__get__(connection)
    connection._read_packet = _reader_of(connection, slow, read.__defaults__)
    return True


def _reader_of(
    connection: Any, slow: Callable[..., Awaitable[Any]], defaults: tuple[Any, ...] | None
) -> Callable[..., Awaitable[Any]]:
    if not defaults:  # aiomysql's signature is (self, packet_type=MysqlPacket)
        return slow
    default_type = defaults[0]

    async def read_packet(packet_type: Any = default_type) -> Any:
        # The stream is looked up each time: a TLS upgrade replaces it.
        reader = connection._reader
        buffer = getattr(reader, "_buffer", None)
        if (
            type(buffer) is not bytearray
            or len(buffer) < 4
            or getattr(reader, "_exception", True) is not None
        ):
            return await slow(packet_type)
        size = buffer[0] | buffer[1] << 8 | buffer[2] << 16
        end = 4 + size
        if size >= _MAX_PACKET_LEN or len(buffer) < end or buffer[3] != connection._next_seq_id:
            return await slow(packet_type)  # aiomysql's: wait, join, or refuse the sequence
        # As ``readexactly`` takes bytes from the buffer (and lets a paused transport read on).
        data = bytes(memoryview(buffer)[4:end])
        del buffer[:end]
        reader._maybe_resume_transport()
        connection._next_seq_id = (connection._next_seq_id + 1) % 256
        packet = packet_type(data, connection._encoding)
        if packet.is_error_packet():
            result = connection._result
            if result is not None and result.unbuffered_active is True:
                result.unbuffered_active = False
            packet.raise_for_error()
        return packet

    return read_packet
