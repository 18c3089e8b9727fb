"""Living beside SQLAlchemy: declarative tables, Alembic autogenerate, logging."""

from __future__ import annotations

import logging
import pathlib
from typing import Annotated

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

import activerecord
from activerecord import ActiveRecord, SchemaError
from activerecord.log import log_parameters

from .conftest import needs
from .models import User


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()


class MigratedUser(ActiveRecord):
    """On the default ``activerecord.metadata`` on purpose: the documented Alembic set-up hands
    that MetaData to ``target_metadata``."""

    __table_name__ = "interop_migrated_users"
    id: int | None = None
    username: str
    email: str


class Base(orm.DeclarativeBase):
    pass


class OrmAccount(Base):
    __tablename__ = "orm_accounts"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    owner: orm.Mapped[str] = orm.mapped_column(sa.String(50))
    balance: orm.Mapped[int] = orm.mapped_column(default=0)


class Account(Model):
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
    with orm.Session(db.engine) as session:
        assert len({a.id for a in accounts} - {None}) == 3
        for account in accounts:  # the keys the server gave (a Galera node steps by 3)
            assert session.get(OrmAccount, account.id).owner == account.owner
    assert Account.query().where({"owner": "o2"}).update({"balance": 10}) == 1
    with db.engine.begin() as conn:
        Base.metadata.drop_all(conn)


def test_declarative_type_mismatch_is_a_schema_error():
    with pytest.raises(SchemaError, match="owner"):

        class BadAccount(Model):
            __table__ = OrmAccount.__table__
            id: int | None = None
            owner: int


def test_unknown_field_on_existing_table_is_a_schema_error():
    with pytest.raises(SchemaError, match="nickname"):

        class BadAccount(Model):
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


@needs("alembic", "dev")
def test_alembic_autogenerate_sees_our_tables(db, backend, tmp_path: pathlib.Path):
    from alembic import command
    from alembic import config as alembic_config

    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        activerecord.metadata.drop_all(conn, tables=[MigratedUser.__table__])
    script_dir = tmp_path / "migrations"
    cfg = alembic_config.Config(str(tmp_path / "alembic.ini"))
    cfg.set_main_option("script_location", str(script_dir))
    command.init(cfg, str(script_dir))
    env_py = script_dir / "env.py"
    # The documented env.py change: hand activerecord's MetaData to Alembic.
    env_py.write_text(
        ALEMBIC_ENV.format(url=db.engine.url.render_as_string(hide_password=False)),
    )
    command.revision(cfg, message="migrated users", autogenerate=True)
    versions = list((script_dir / "versions").glob("*.py"))
    assert len(versions) == 1
    migration = versions[0].read_text()
    assert (
        "op.create_table('interop_migrated_users'" in migration
        or 'op.create_table("interop_migrated_users"' in migration
    )
    assert "email" in migration


ALEMBIC_ENV = '''
from alembic import context
import sqlalchemy as sa

import activerecord
from tests import test_sqlalchemy_interop  # noqa: F401  - importing the models registers them

target_metadata = activerecord.metadata


def run_migrations_online():
    engine = sa.create_engine("{url}")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_name=lambda name, type_, parent: (
                type_ != "table" or name == "interop_migrated_users"
            ),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
'''


def test_aliases_behave_like_the_originals(fresh, backend):
    from .test_softdelete import Author as SoftUser  # a soft-deleting model

    fresh(User, SoftUser)
    users = [User(username=f"a{i}", email=f"a{i}@example.com") for i in range(4)]
    assert User.bulk_create(users) == 4
    assert users[3].id == User.find_one_or_fail({"username": "a3"}).id
    assert User.update_all({"status": "x"}, {"username": ["a0", "a1"]}) == 2
    with pytest.raises(activerecord.UnsafeWriteError):  # the guard of query().update()
        User.update_all({"login_count": 7})
    assert User.update_all({"login_count": 7}, all_rows=True) == 4
    assert User.find_one_or_fail({"username": "a0"}).status == "x"
    with pytest.raises(activerecord.RecordNotFound):
        User.find_one_or_fail("username = ?", "zz")
    assert User.delete_all({"status": "x"}) == 2
    with pytest.raises(activerecord.UnsafeWriteError):  # the guard of query().delete()
        User.delete_all()
    assert User.query().count() == 2
    assert User.delete_all(all_rows=True) == 2
    SoftUser.batch_insert_from_dicts([{"name": "s1"}, {"name": "s2"}])
    assert SoftUser.delete_all({"name": "s1"}) == 1
    assert SoftUser.query().count() == 1
    assert SoftUser.query_with_deleted().count() == 2
    assert [s.name for s in SoftUser.query_only_deleted().all()] == ["s1"]


def test_or_grouping_under_soft_delete_scope(fresh, backend):
    from .test_softdelete import Author as SoftUser

    fresh(SoftUser)
    SoftUser.batch_insert_from_dicts([{"name": n} for n in ("a", "b", "c")])
    SoftUser.query().where({"name": "b"}).delete()
    # (name = a OR name = b) AND deleted_at IS NULL: the deleted b must not leak
    q = SoftUser.query().where("name = ? OR name = ?", "a", "b")
    assert [s.name for s in q.all()] == ["a"]
    assert SoftUser.query().where({"name": "a"}).or_where({"name": "b"}).count() == 1
    assert SoftUser.query().where({"name": "c"}).where("name = ? OR 1 = 1", "a").count() == 1


legacy_table = sa.Table(
    "legacy_people",
    sa.MetaData(),
    sa.Column("PersonID", sa.Integer, primary_key=True),
    sa.Column("FullName", sa.String(80), nullable=False),
    sa.Column("Visits", sa.Integer, nullable=False, server_default="0"),
)


class Person(Model):
    """A model whose field names differ from an existing table's column names."""

    __table__ = legacy_table
    id: Annotated[int | None, activerecord.Col(name="PersonID")] = None
    name: Annotated[str, activerecord.Col(name="FullName")]
    visits: Annotated[int, activerecord.Col(name="Visits")] = 0


def test_existing_table_with_other_column_names(db, backend):
    with db.engine.begin() as conn:
        legacy_table.drop(conn, checkfirst=True)
        legacy_table.create(conn)
    ann = Person.create(name="Ann")
    Person.batch_insert([Person(name="Bob"), Person(name="Cy")])
    assert Person.find(ann.id).name == "Ann"
    ann.visits = 3
    ann.save()
    assert Person.query().where({"name": "Ann"}).one().visits == 3
    bump = {"visits": activerecord.col("visits") + 2}
    assert Person.query().where({"visits": 0}).update(bump) == 2
    assert sorted(p.visits for p in Person.query().all()) == [2, 2, 3]
    people = Person.query().order_by("id").all()
    for p in people:
        p.visits += 10
    assert Person.batch_update(people) == 3
    assert sorted(p.visits for p in Person.query().all()) == [12, 12, 13]
    assert Person.query().where({"FullName": "Bob"}).count() == 1  # column names work too
    with db.engine.begin() as conn:
        legacy_table.drop(conn)


def _reset_accounts(db):
    with db.engine.begin() as conn:
        Base.metadata.drop_all(conn)
        Base.metadata.create_all(conn)


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_orm_session_and_batch_writes_share_one_transaction(db, backend, outcome):
    _reset_accounts(db)
    with orm.Session(db.engine) as session:
        session.add(OrmAccount(owner="orm", balance=1))
        with activerecord.using(session):
            Account.batch_insert([Account(owner="ours1"), Account(owner="ours2")])
            assert Account.query().count() == 3  # the ORM row was flushed into the same tx
            Account.query().where({"owner": "orm"}).update({"balance": 5})
            with activerecord.Transaction():  # a savepoint inside the caller's transaction
                Account.create(owner="inner")
        assert session.scalars(sa.select(OrmAccount.owner).order_by(OrmAccount.id)).all() == [
            "orm", "ours1", "ours2", "inner"
        ]
        session.commit() if outcome == "commit" else session.rollback()
    expected = 4 if outcome == "commit" else 0
    assert Account.query().count() == expected


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_outside_connection_is_joined(db, backend, outcome):
    _reset_accounts(db)
    with db.engine.connect() as conn:
        conn.execute(sa.insert(OrmAccount.__table__).values(owner="core", balance=0))
        with activerecord.using(conn):
            Account.batch_insert_from_dicts([{"owner": "a"}, {"owner": "b"}])
            with pytest.raises(activerecord.ConfigurationError):
                activerecord.backend.transaction.after_commit(lambda: None)
            try:
                with activerecord.Transaction():
                    Account.create(owner="doomed")
                    raise RuntimeError("undo the savepoint only")
            except RuntimeError:
                pass
        assert conn.execute(sa.select(sa.func.count()).select_from(OrmAccount)).scalar() == 3
        conn.commit() if outcome == "commit" else conn.rollback()
    assert Account.query().count() == (3 if outcome == "commit" else 0)
    assert Account.query().where({"owner": "doomed"}).count() == 0
