"""A walk through the batch-operations guide, printing what happens at each step.

Run it with ``python -m activerecord demo`` (an in-memory SQLite database) or give any
database URL: ``python -m activerecord demo --url postgresql+psycopg://localhost/test``.
Each section follows the guide's code as written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col, TimestampMixin
from activerecord.backend import get_connection
from activerecord.backend.transaction import Transaction
from activerecord.query.expression import Expression

__all__ = ["User", "run"]


class User(TimestampMixin, ActiveRecord):
    """The guide's users table."""

    __table_name__ = "users"

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128), Col(unique=True)]
    status: str = "active"
    login_count: int = 0
    last_login: dt.datetime | None = None


def _section(out: Callable[[str], Any], title: str) -> None:
    out("")
    out(f"== {title} ==")


def run(url: str = "sqlite://", out: Callable[[str], Any] = print) -> dict[str, int]:
    """Run every section of the guide against ``url``; return the final counts by status."""
    activerecord.connect(url)
    User.drop_table()
    User.create_table()
    out(f"connected to {activerecord.get_database().engine.url.render_as_string()}")

    _section(out, "Batch Creation: creating multiple records")
    users = [
        User(username="user1", email="user1@example.com"),
        User(username="user2", email="user2@example.com"),
        User(username="user3", email="user3@example.com"),
    ]
    User.batch_insert(users)
    for user in users:
        out(f"User {user.username} has ID: {user.id}")

    _section(out, "Batch Creation with dictionaries")
    user_data = [
        {"username": "user4", "email": "user4@example.com"},
        {"username": "user5", "email": "user5@example.com"},
        {"username": "user6", "email": "user6@example.com"},
    ]
    created = User.batch_insert_from_dicts(user_data)
    assert isinstance(created, list)
    out(f"inserted from dicts, ids {[u.id for u in created]}")

    _section(out, "Validation in batch creation (validate=False)")
    unchecked = [User(username=f"fast{i}", email=f"fast{i}@example.com") for i in range(3)]
    User.batch_insert(unchecked, validate=False)
    out(f"inserted {len(unchecked)} records without validation, ids {[u.id for u in unchecked]}")
    try:
        User.batch_insert_from_dicts(
            [{"username": "ok", "email": "ok@example.com"}, {"username": None, "email": 5}]
        )
    except activerecord.BatchValidationError as exc:
        out(f"validation caught a bad record before writing anything: {sorted(exc.failures)}")

    _section(out, "Performance: processing a large dataset in chunks")
    large_dataset = [
        User(username=f"bulk{i}", email=f"bulk{i}@example.com", status="inactive")
        for i in range(2500)
    ]
    chunk_size = 1000
    for i in range(0, len(large_dataset), chunk_size):
        chunk = large_dataset[i:i+chunk_size]
        User.batch_insert(chunk)
    out(f"inserted {len(large_dataset)} users in chunks of {chunk_size}; "
        f"last id {large_dataset[-1].id}")

    _section(out, "Batch Updates: same values")
    affected_rows = User.query()\
        .where({"status": "inactive"})\
        .update({"status": "archived"})
    out(f"Updated {affected_rows} records")

    _section(out, "Conditional batch updates")
    User.query().where({"username": "user1"}).update(
        {"last_login": datetime.now() - timedelta(days=90)}
    )
    inactive_date = datetime.now() - timedelta(days=30)
    affected_rows = User.query()\
        .where("last_login < ?", inactive_date)\
        .update({"status": "inactive"})
    out(f"marked {affected_rows} user(s) inactive (no login for 30 days)")

    _section(out, "Updating with expressions")
    User.query()\
        .where({"status": "active"})\
        .update({"login_count": Expression("login_count + 1")})
    user2 = User.query().where({"username": "user2"}).one()
    out(f"login_count of user2 is now {user2.login_count}")

    _section(out, "Batch Deletes")
    User.query().where({"username": ["fast0", "fast1"]}).update({"status": "temporary"})
    affected_rows = User.query()\
        .where({"status": "temporary"})\
        .delete()
    out(f"Deleted {affected_rows} records")

    _section(out, "Conditional batch deletes")
    old_date = datetime.now() - timedelta(days=365)
    affected_rows = User.query()\
        .where({"status": "inactive"})\
        .where("created_at < ?", old_date)\
        .delete()
    out(f"deleted {affected_rows} inactive users created more than a year ago")

    _section(out, "Using transactions for batch operations")
    new_users = [User(username=f"new{i}", email=f"new{i}@example.com") for i in range(3)]
    User.query().where({"username": "user3"}).update({"status": "trial"})
    with Transaction():
        User.query().where("created_at < ?", old_date).delete()
        User.query().where({"status": "trial"}).update({"status": "active"})
        User.batch_insert(new_users)
    out(f"transaction committed; new ids {[u.id for u in new_users]}")
    try:
        with Transaction():
            User.query().where({"status": "active"}).update({"status": "doomed"})
            raise RuntimeError("something went wrong")
    except RuntimeError:
        doomed = User.query().where({"status": "doomed"}).count()
        out(f"a failed transaction rolled back: {doomed} users are 'doomed'")

    _section(out, "Raw connections (disabling triggers or checks)")
    huge_dataset = [User(username=f"huge{i}", email=f"huge{i}@example.com") for i in range(500)]
    disable, enable = _trigger_statements(activerecord.get_database().engine.dialect.name)
    conn = get_connection()
    with conn.cursor() as cursor:
        cursor.execute(disable)
        try:
            User.batch_insert(huge_dataset)
        finally:
            cursor.execute(enable)
    conn.close()
    out(f"ran {disable!r}, inserted {len(huge_dataset)} users, ran {enable!r}")

    counts: dict[str, int] = {}
    for status in ("active", "archived", "inactive"):
        counts[status] = User.query().where({"status": status}).count()
    _section(out, "Summary")
    out(f"users by status: {counts}; total {User.query().count()}")
    return counts


def _trigger_statements(dialect: str) -> tuple[str, str]:
    """The guide's PostgreSQL example, and the nearest equivalent elsewhere."""
    if dialect == "postgresql":
        return "ALTER TABLE users DISABLE TRIGGER ALL", "ALTER TABLE users ENABLE TRIGGER ALL"
    if dialect in ("mysql", "mariadb"):
        return "SET FOREIGN_KEY_CHECKS = 0", "SET FOREIGN_KEY_CHECKS = 1"
    return "PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"
