"""The dialect objects: one class per backend, the only place that tells backends apart."""

from __future__ import annotations

import ast
import pathlib

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

import activerecord
from activerecord.backend.dialects import (
    AddLiveUniqueKeys,
    DialectFacts,
    MySQLFacts,
    PostgreSQLFacts,
    SQLiteFacts,
    dialect_for,
    facts_class,
)
from activerecord.backend.transaction import (
    Transaction,
    current_connection,
    holding_open,
    in_transaction,
)

PACKAGE = pathlib.Path(activerecord.__file__).parent
DIALECTS = PACKAGE / "backend" / "dialects"
BACKEND_NAMES = {"sqlite", "postgresql", "mysql", "mariadb"}


def _names_compared(tree: ast.AST) -> list[int]:
    """Lines of comparisons against a backend's name (``x == "mysql"``, ``x in ("mysql",
    "mariadb")``)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        for side in [node.left, *node.comparators]:
            values = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
            if any(isinstance(v, ast.Constant) and v.value in BACKEND_NAMES for v in values):
                found.append(node.lineno)
    return found


def test_no_dialect_name_comparison_outside_the_dialect_objects():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if DIALECTS in path.parents:
            continue
        for line in _names_compared(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(PACKAGE)}:{line}")
    assert offenders == []


def test_the_scan_sees_a_comparison():
    assert _names_compared(ast.parse('ok = name in ("mysql", "mariadb") or d.name == "sqlite"'))


@pytest.mark.parametrize(
    ("dialect", "cls", "name"),
    [
        (sqlite.dialect(), SQLiteFacts, "sqlite"),
        (postgresql.psycopg.dialect(), PostgreSQLFacts, "postgresql"),
        (mysql.pymysql.dialect(), MySQLFacts, "mysql"),
        (sa.create_engine("mariadb+pymysql://u@h/d").dialect, MySQLFacts, "mysql"),
    ],
)
def test_each_backend_has_its_class(dialect, cls, name):
    assert facts_class(dialect) is cls
    facts = dialect_for(dialect)
    assert type(facts) is cls and facts.name == name


def test_an_unknown_dialect_gets_the_base_and_no_fast_path():
    cockroach = sa.create_engine("cockroachdb+psycopg://root@127.0.0.1:26257/app").dialect
    facts = dialect_for(cockroach)
    assert type(facts) is DialectFacts
    assert (facts.insert_strategy, facts.batch_update_style, facts.max_params) == (
        "core", "executemany", None
    )


def test_probed_facts_are_the_backends_class(db):
    assert type(db.facts) is facts_class(db.engine.dialect)


@pytest.mark.parametrize("dialect", [mysql.pymysql.dialect(), sa.create_engine(
    "mariadb+pymysql://u@h/d").dialect])
def test_live_unique_keys_compile_to_one_alter_table(dialect):
    table = sa.Table(
        "acct", sa.MetaData(), sa.Column("nick", sa.String(9)), sa.Column("org", sa.Integer),
        sa.Column("gone_at", sa.DateTime),
    )
    ddl = AddLiveUniqueKeys(table, "gone_at", [("uq_nick", ["nick"]), ("uq_org", ["org", "nick"])])
    assert str(ddl.compile(dialect=dialect)) == (
        "ALTER TABLE acct ADD COLUMN gone_at_live TINYINT AS (IF(gone_at IS NULL, 1, NULL)) "
        "VIRTUAL, ADD UNIQUE INDEX uq_nick (nick, gone_at_live), "
        "ADD UNIQUE INDEX uq_org (org, nick, gone_at_live)"
    )


class _Pending:
    def __init__(self) -> None:
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        # The flush may use the connection itself without flushing again.
        assert current_connection() is not None


def test_the_transaction_flushes_a_pending_statement_before_handing_out_its_connection(db):
    pending = _Pending()
    with Transaction() as tx:
        with holding_open(db, pending) as promised:
            assert promised is True
            assert in_transaction()  # asking is no use of the connection
            assert pending.flushes == 0
            conn = current_connection()
            assert pending.flushes == 1
            assert tx.connection is conn and pending.flushes == 2
            with Transaction():  # a savepoint: a statement on the connection
                assert pending.flushes == 3
        current_connection()
        assert pending.flushes == 3  # no longer held open


def test_nothing_is_held_open_outside_a_transaction(db):
    with holding_open(db, _Pending()) as promised:
        assert promised is False
