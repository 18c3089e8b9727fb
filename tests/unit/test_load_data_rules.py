"""LOAD DATA LOCAL INFILE, without a server: when it may run (a Galera node, lock mode 2 with
keys asked, local_infile off on either side: never), and the file text of hostile values."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import itertools

import pytest
from sqlalchemy.dialects import mysql

from activerecord.backend.dialects import MySQLFacts
from activerecord.write.strategies.load_data_text import (
    Unloadable,
    escape_text,
    line_builder,
    load_data_refusal,
)

pymysql = pytest.importorskip("pymysql")
ENCODERS = pymysql.converters.encoders


@pytest.mark.parametrize(
    ("galera", "server", "client", "consecutive", "keys"),
    list(itertools.product([False, True], repeat=5)),
)
def test_load_data_runs_only_where_every_condition_holds(galera, server, client, consecutive, keys):
    reason = load_data_refusal(
        galera=galera, server_allows=server, client_allows=client, consecutive=consecutive,
        need_keys=keys,
    )
    allowed = not galera and server and client and (consecutive or not keys)
    assert (reason is None) == allowed
    if galera:  # Galera requires lock mode 2, and may split a load's write set
        assert reason is not None and "Galera" in reason


def test_no_load_data_through_a_driver_that_cannot_send_its_file():
    reason = load_data_refusal(
        galera=False, server_allows=True, client_allows=True, consecutive=True,
        need_keys=False, driver_allows=False,
    )
    assert reason is not None and "PyMySQL" in reason
    assert MySQLFacts.load_data_drivers == frozenset({"pymysql"})


def test_galera_facts_refuse_load_data():
    """What the lead's Galera run sees: the facts of a node (lock mode 2, wsrep_on) refuse."""
    node = MySQLFacts.for_dialect(mysql.pymysql.dialect())
    assert not node.autoinc_consecutive and not node.local_infile  # nothing assumed unprobed
    reason = load_data_refusal(
        galera=True, server_allows=True, client_allows=True, consecutive=False, need_keys=False
    )
    assert reason is not None


@pytest.mark.parametrize(
    ("driver", "galera", "local_infile"), list(itertools.product(["pymysql", "aiomysql"],
                                                                 [False, True], [False, True])),
)
def test_the_staged_upsert_only_where_load_data_may_run(driver, galera, local_infile):
    """MySQL/MariaDB's direct upsert loads its rows: PyMySQL, local_infile on, no Galera
    node (the connection's own flag is checked per write, write/upsert_staged.py)."""
    dialect = getattr(mysql, driver).dialect()
    facts = dataclasses.replace(
        MySQLFacts.for_dialect(dialect), is_galera=galera, local_infile=local_infile
    )
    expected = "staged" if driver == "pymysql" and local_infile and not galera else None
    assert facts.direct_upsert() == expected


def _unescape(field: str) -> str | None:
    """The server's reading of a field (MySQL manual, LOAD DATA: escape sequences)."""
    if field == "\\N":
        return None
    out, chars = [], iter(field)
    table = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "\\": "\\"}
    for ch in chars:
        out.append(table.get(next(chars), "?") if ch == "\\" else ch)
        if ch == "\\" and out[-1] == "?":
            raise AssertionError(f"an escape the server reads otherwise in {field!r}")
    return "".join(out)


HOSTILE = ["\\N", "\\", "a\tb", "x\ny", "\r", "\0", "'\"", "🎉", "", "\\\\t", "\x1a", "\\Z"]


@pytest.mark.parametrize("value", HOSTILE)
def test_text_reads_back_as_given_and_never_breaks_the_line(value):
    field = escape_text(value)
    assert "\t" not in field and "\n" not in field
    assert _unescape(field) == value


def test_a_line_of_every_kind():
    line = line_builder(["text"] * 8 + ["binary"], ENCODERS)
    text = line(
        (None, 7, True, 0.1, decimal.Decimal("1.2500"), dt.datetime(2024, 1, 2, 3, 4, 5, 6),
         dt.date(2024, 1, 2), dt.time(1, 2, 3), b"\x00\t\n\xff")
    )
    assert text.split("\t") == [
        "\\N", "7", "1", "0.1e0", "1.2500", "2024-01-02 03:04:05.000006", "2024-01-02",
        "01:02:03", "00090aff",
    ]


@pytest.mark.parametrize("value", [{1, 2}, object(), "text in a binary column"])
def test_a_value_without_an_exact_form_is_unloadable(value):
    kind = "binary" if isinstance(value, str) else "text"
    with pytest.raises(Unloadable):
        line_builder([kind], ENCODERS)((value,))


UTC = dt.timezone.utc
TEMPORAL = [
    ("datetime", dt.datetime(1, 1, 1)), ("datetime", dt.datetime(2024, 2, 29, 23, 59, 59, 1)),
    ("datetime", dt.datetime(999, 12, 31, 0, 0, 0, 999_999)),
    ("datetime", dt.datetime(2024, 1, 1, 12, tzinfo=UTC)),  # aware: as the driver sends it
    ("datetime", dt.date(2024, 1, 2)), ("date", dt.date(5, 6, 7)),
    ("date", dt.datetime(2024, 1, 2, 3)), ("time", dt.time(0, 0)),
    ("time", dt.time(23, 59, 59, 10)), ("time", dt.time(1, tzinfo=UTC)),
    ("time", dt.timedelta(hours=-30, seconds=5)),
]


@pytest.mark.parametrize(("kind", "value"), TEMPORAL)
def test_temporal_fast_paths_write_the_driver_literal(kind, value):
    literal = ENCODERS[type(value)](value, None)
    assert line_builder([kind], ENCODERS)((value,)) == literal.strip("'")
    assert line_builder(["text"], ENCODERS)((value,)) == literal.strip("'")
