"""One ``LOAD DATA LOCAL INFILE`` exchange on a PyMySQL connection, the file's bytes sent from
memory in one write.

PyMySQL answers a server's file request by opening the file by name and sending it in 16 KB
packets, each a read and a write that let go of the GIL and then wait to take it back:
while another thread of the process runs Python (the caller validating its next chunk, as
the batch's stream does), that is up to 5 ms (the interpreter's switch interval) per packet,
and a 100,000-row load took twice as long as with nobody else running. :func:`send_load`
runs the statement's exchange itself with PyMySQL's own packet functions (its command
write, its packet read with its sequence check and error raising): the query; the
server's file request, which must name the statement's file; every packet of ``payload``
and the empty packet that ends it, in one socket write; the server's OK packet, whose
counts it returns. Three waits on the socket a load, whatever its size. No file is opened:
the server can only ever get ``payload``.

:func:`wire_ready` tells whether a connection has the PyMySQL internals this takes (those
of PyMySQL 1.0 to 1.2); where not, the rows take the ``INSERT`` path.

Example::

    >>> packets(b"abc", first_seq=2, size=2)
    (b'\\x02\\x00\\x00\\x02ab\\x01\\x00\\x00\\x03c\\x00\\x00\\x00\\x04', 5)
    >>> wire_ready(object())
    False
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

__all__ = ["FILE_NAME", "LoadOutcome", "packets", "send_load", "wire_ready"]

#: The name the statement gives its file: the server's request must name it back.
FILE_NAME = "activerecord-rows"
#: Bytes of file data per packet: PyMySQL's own choice, which any server takes.
_PACKET_BYTES = 16 * 1024
_COM_QUERY = 3
_CONNECTION_FIELDS = ("_execute_command", "_read_packet", "_write_bytes", "_next_seq_id")


class LoadOutcome(NamedTuple):
    """What the server's OK packet says of one load."""

    rows: int
    warnings: int


def wire_ready(connection: Any) -> bool:
    """Whether ``connection`` is a PyMySQL connection with what :func:`send_load` uses."""
    return type(connection).__module__.startswith("pymysql") and all(
        hasattr(connection, name) for name in _CONNECTION_FIELDS
    )


def packets(payload: bytes, *, first_seq: int, size: int = _PACKET_BYTES) -> tuple[bytes, int]:
    """``payload`` as protocol packets of ``size`` bytes from sequence number ``first_seq``,
    ended by the empty packet that ends a file; and the sequence number after them."""
    out = []
    seq = first_seq
    for start in range(0, len(payload), size):
        part = payload[start : start + size]
        out.append(len(part).to_bytes(3, "little") + bytes((seq,)) + part)
        seq = (seq + 1) & 0xFF
    out.append(b"\x00\x00\x00" + bytes((seq,)))
    return b"".join(out), (seq + 1) & 0xFF


def send_load(connection: Any, sql: str, payload: bytes) -> LoadOutcome:
    """Run the ``LOAD DATA LOCAL INFILE '<FILE_NAME>' ...`` statement ``sql`` with
    ``payload`` as the file; the rows the server took and its warning count. A server error
    is PyMySQL's exception, raised by its packet read; a file request for another name is
    refused (an empty file is sent, then ``OperationalError``)."""
    err: Any = importlib.import_module("pymysql.err")  # the connection is PyMySQL's
    protocol: Any = importlib.import_module("pymysql.protocol")
    connection._execute_command(_COM_QUERY, sql)
    packet = connection._read_packet()  # an error packet raises here
    data = packet.get_all_data()
    if data[:1] == b"\xfb":  # the file request
        asked = data[1:].decode("utf-8", "replace")
        ours = asked == FILE_NAME
        wire, connection._next_seq_id = packets(
            payload if ours else b"", first_seq=connection._next_seq_id
        )
        connection._write_bytes(wire)
        packet = connection._read_packet()
        if not ours:
            raise err.OperationalError(2000, f"LOAD DATA: the server asked for {asked!r}")
    if not packet.is_ok_packet():
        raise err.OperationalError(2014, "Commands out of sync: LOAD DATA got no OK packet")
    ok = protocol.OKPacketWrapper(packet)
    connection.server_status = ok.server_status  # as PyMySQL's result reading keeps it
    return LoadOutcome(int(ok.affected_rows), int(ok.warning_count))
