"""Living beside SQLAlchemy: declarative tables, Alembic autogenerate, logging."""

from __future__ import annotations

import logging
import pathlib

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

import activerecord
from activerecord import ActiveRecord, SchemaError
from activerecord.log import log_parameters

from .models import User


class Base(orm.DeclarativeBase):
    pass


class OrmAccount(Base):
    __tablename__ = "orm_accounts"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    owner: orm.Mapped[str] = orm.mapped_column(sa.String(50))
    balance: orm.Mapped[int] = orm.mapped_column(default=0)


class Account(ActiveRecord):
    __table__ = OrmAccount.__table__
    id: int | None = None
    owner: str
    balance: int = 0


def test_model_on_declarative_table(db, backend):
    with db.engine.begin() as conn:
        Base.metadata.drop_all(conn)
        Base.metadata.create_all(conn)
    accounts = [Account(owner=f"o{i}", balance=i) for i in range(3)]
    Account.batch_insert(accounts)
    assert [a.id for a in accounts] == [1, 2, 3]
    with orm.Session(db.engine) as session:
        assert session.get(OrmAccount, 2).owner == "o1"
    assert Account.query().where({"owner": "o2"}).update({"balance": 10}) == 1
    with db.engine.begin() as conn:
        Base.metadata.drop_all(conn)


def test_declarative_type_mismatch_is_a_schema_error():
    with pytest.raises(SchemaError, match="owner"):

        class BadAccount(ActiveRecord):
            __table__ = OrmAccount.__table__
            id: int | None = None
            owner: int


def test_unknown_field_on_existing_table_is_a_schema_error():
    with pytest.raises(SchemaError, match="nickname"):

        class BadAccount(ActiveRecord):
            __table__ = OrmAccount.__table__
            id: int | None = None
            nickname: str


def test_logging_keeps_values_out(fresh, backend, caplog):
    fresh(User)
    secret = "s3cret-value"
    with caplog.at_level(logging.DEBUG, logger="activerecord"):
        User.create(username=secret, email="e@example.com")
        User.query().where({"username": secret}).count()
    text = caplog.text
    assert "INSERT INTO users" in text and "SELECT count(*)" in text
    assert secret not in text
    caplog.clear()
    log_parameters(True)
    try:
        with caplog.at_level(logging.DEBUG, logger="activerecord"):
            User.query().where({"username": secret}).count()
    finally:
        log_parameters(False)
    assert secret in caplog.text


def test_alembic_autogenerate_sees_our_tables(db, backend, tmp_path: pathlib.Path):
    from alembic import command
    from alembic import config as alembic_config

    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        activerecord.metadata.drop_all(conn, tables=[User.__table__])
    script_dir = tmp_path / "migrations"
    cfg = alembic_config.Config(str(tmp_path / "alembic.ini"))
    cfg.set_main_option("script_location", str(script_dir))
    command.init(cfg, str(script_dir))
    env_py = script_dir / "env.py"
    # The documented env.py change: hand activerecord's MetaData to Alembic.
    env_py.write_text(
        ALEMBIC_ENV.format(url=db.engine.url.render_as_string(hide_password=False)),
    )
    command.revision(cfg, message="users", autogenerate=True)
    versions = list((script_dir / "versions").glob("*.py"))
    assert len(versions) == 1
    migration = versions[0].read_text()
    assert "op.create_table('users'" in migration or 'op.create_table("users"' in migration
    assert "email" in migration


ALEMBIC_ENV = '''
from alembic import context
import sqlalchemy as sa

import activerecord
from tests import models  # noqa: F401  - importing the models registers their tables

target_metadata = activerecord.metadata


def run_migrations_online():
    engine = sa.create_engine("{url}")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_name=lambda name, type_, parent: type_ != "table" or name == "users",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
'''
