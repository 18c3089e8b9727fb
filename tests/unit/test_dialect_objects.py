"""The dialect objects, from the dialect alone (no server): one class per backend, the only
place that tells backends apart."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from activerecord.backend.dialects import (
    AddLiveUniqueKeys,
    DialectFacts,
    MySQLFacts,
    PostgreSQLFacts,
    SQLiteFacts,
    dialect_for,
    facts_class,
)

ROOT = Path(__file__).resolve().parents[2]


def _checker():  # noqa: ANN202 - a module loaded from its file
    spec = importlib.util.spec_from_file_location(
        "check_architecture", ROOT / "tools" / "check_architecture.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_no_dialect_name_comparison_outside_the_dialect_objects():
    """The issue's rule, enforced: tools/check_architecture.py finds none in the package."""
    problems = _checker().check_dialect_names(ROOT / "activerecord")
    assert [str(p) for p in problems] == []


def test_the_error_functions_live_in_backend_errors_only():
    """Driver errors -> ours is backend/errors.py's idea: the dialects package does not hand
    those functions on, so no module reaches them through it."""
    import activerecord.backend.dialects as dialects

    for name in ("translate_error", "driver_errors", "is_conflict", "is_node_refusal",
                 "overflow_error", "refused_value_error"):
        assert not hasattr(dialects, name), name
        assert name not in dialects.__all__


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
