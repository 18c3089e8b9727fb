"""A walk through the batch-operations guide (docs/batch-operations.md), printing each step.

Run it with ``python -m activerecord demo`` (an in-memory SQLite database) or give any
database URL: ``python -m activerecord demo --url postgresql+psycopg://localhost/test``.
For each step it prints the guide section it follows, the code it runs (the body of one
function below) and what that code printed, with what the numbers mean.

It touches only tables of its own (``ar_demo_users`` and ``ar_demo_soft_users``): it refuses
to start when either exists, and drops both when it ends (``keep=True``, ``--keep``: leave
them to look at). Your tables are never dropped or written.
"""

from __future__ import annotations

import datetime as dt
import inspect
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col, SoftDeleteMixin, TimestampMixin
from activerecord.backend import get_connection
from activerecord.backend.database import checkout
from activerecord.backend.dialects import facts_class
from activerecord.backend.transaction import Transaction
from activerecord.errors import ConfigurationError
from activerecord.query.expression import Expression

__all__ = ["GUIDE", "SoftUser", "User", "run"]

#: Where the guide lives in a checkout of the repository.
GUIDE = "docs/batch-operations.md"

Out = Callable[[str], Any]


class User(TimestampMixin, ActiveRecord):
    """The guide's users, in the demo's own table."""

    __table_name__ = "ar_demo_users"

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128), Col(unique=True)]
    status: str = "active"
    login_count: int = 0
    last_login: dt.datetime | None = None


class SoftUser(SoftDeleteMixin, TimestampMixin, ActiveRecord):
    """The guide's users with ``SoftDeleteMixin`` (its own table, so the other sections keep
    real deletes). An email is unique among live rows only."""

    __table_name__ = "ar_demo_soft_users"
    __soft_unique__ = ("email",)

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128)]
    status: str = "active"
    login_count: int = 0
    last_login: dt.datetime | None = None


TWO_YEARS_AGO = datetime.now() - timedelta(days=730)


# -- the steps: each body is the guide's code (plus the lines that print), shown as run ------
def creating_multiple_records(out: Out) -> None:
    """Batch Creation > Creating Multiple Records. batch_insert sets every primary key back,
    in input order."""
    users = [
        User(username="user1", email="user1@example.com"),
        User(username="user2", email="user2@example.com"),
        User(username="user3", email="user3@example.com"),
    ]
    User.batch_insert(users)
    for user in users:
        out(f"User {user.username} has ID: {user.id}")


def batch_creation_with_dictionaries(out: Out) -> None:
    """Batch Creation > Batch Creation with Dictionaries. The dict form returns the records
    it built, keys set."""
    user_data = [
        {"username": "user4", "email": "user4@example.com"},
        {"username": "user5", "email": "user5@example.com"},
        {"username": "user6", "email": "user6@example.com"},
    ]
    created = User.batch_insert_from_dicts(user_data)
    assert isinstance(created, list)  # the records (an int with return_records=False)
    out(f"inserted from dicts, ids {[u.id for u in created]}")


def validation_in_batch_creation(out: Out) -> None:
    """Batch Creation > Validation in Batch Creation. With validation (the default) one bad
    record refuses the whole batch: BatchValidationError.failures maps the index of each bad
    record in the input (0 is the first) to its errors, and nothing is written."""
    unchecked = [User(username=f"fast{i}", email=f"fast{i}@example.com") for i in range(3)]
    User.batch_insert(unchecked, validate=False)
    out(f"inserted {len(unchecked)} records without validation, ids {[u.id for u in unchecked]}")
    before = User.query().count()
    try:
        User.batch_insert_from_dicts(
            [{"username": "ok", "email": "ok@example.com"}, {"username": None, "email": 5}]
        )
    except activerecord.BatchValidationError as exc:
        out(f"BatchValidationError, failures at record indexes {sorted(exc.failures)}:")
        for index, errors in sorted(exc.failures.items()):
            out(f"  record {index}: " + "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in errors))
        out(f"nothing was written: {before} users before the call, "
            f"{User.query().count()} after")


def performance_considerations(out: Out) -> None:
    """Batch Creation > Performance Considerations. The guide's manual chunks; batch_insert
    also chunks by itself, by the database's limits, in one transaction."""
    large_dataset = [
        User(username=f"bulk{i}", email=f"bulk{i}@example.com", status="inactive")
        for i in range(2500)
    ]
    chunk_size = 1000
    for i in range(0, len(large_dataset), chunk_size):
        chunk = large_dataset[i:i+chunk_size]
        User.batch_insert(chunk)
    out(f"inserted {len(large_dataset)} users in chunks of {chunk_size}; "
        f"ids {large_dataset[0].id} to {large_dataset[-1].id}")


def updating_with_the_same_values(out: Out) -> None:
    """Batch Updates > Updating Multiple Records with the Same Values. update() returns the
    rows matched, the same number on every backend."""
    affected_rows = User.query()\
        .where({"status": "inactive"})\
        .update({"status": "archived"})
    out(f"Updated {affected_rows} records")


def conditional_batch_updates(out: Out) -> None:
    """Batch Updates > Conditional Batch Updates. user1 last logged in 90 days ago, so it is
    the one user the 30-day cutoff matches."""
    User.query().where({"username": "user1"}).update(
        {"last_login": datetime.now() - timedelta(days=90)}
    )
    inactive_date = datetime.now() - timedelta(days=30)
    affected_rows = User.query()\
        .where("last_login < ?", inactive_date)\
        .update({"status": "inactive"})
    out(f"marked {affected_rows} user(s) inactive (no login for 30 days)")


def updating_with_expressions(out: Out) -> None:
    """Batch Updates > Updating with Expressions. One UPDATE adds 1 in the database to every
    active user's count."""
    affected_rows = User.query()\
        .where({"status": "active"})\
        .update({"login_count": Expression("login_count + 1")})
    user2 = User.query().where({"username": "user2"}).one()
    out(f"added 1 to login_count of {affected_rows} active users; "
        f"user2's is now {user2.login_count}")


def deleting_multiple_records(out: Out) -> None:
    """Batch Deletes > Deleting Multiple Records. delete() returns the rows deleted."""
    User.query().where({"username": ["fast0", "fast1"]}).update({"status": "temporary"})
    affected_rows = User.query()\
        .where({"status": "temporary"})\
        .delete()
    out(f"Deleted {affected_rows} records")


def conditional_batch_deletes(out: Out) -> None:
    """Batch Deletes > Conditional Batch Deletes. Two inactive users created two years ago
    (created_at given, so the timestamp mixin keeps it) are what the conditions match; the
    inactive user1, created today, stays."""
    User.batch_insert([
        User(username=f"old{i}", email=f"old{i}@example.com", status="inactive",
             created_at=TWO_YEARS_AGO)
        for i in range(2)
    ])
    old_date = datetime.now() - timedelta(days=365)
    affected_rows = User.query()\
        .where({"status": "inactive"})\
        .where("created_at < ?", old_date)\
        .delete()
    out(f"deleted {affected_rows} inactive users created more than a year ago; "
        f"{User.query().where({'status': 'inactive'}).count()} inactive user left")


def soft_deletes_in_batch_operations(out: Out) -> None:
    """Batch Deletes > Soft Deletes in Batch Operations. On the soft-deleting users model:
    "visible" counts what queries see, "stored" every row in the table."""
    User = SoftUser  # the guide's code as written, on a model with SoftDeleteMixin
    User.batch_insert_from_dicts([
        {"username": f"soft{i}", "email": f"soft{i}@example.com",
         "status": "inactive" if i < 4 else "active"}
        for i in range(6)
    ])

    # Mark all inactive users as deleted
    marked = User.query()\
        .where({"status": "inactive"})\
        .delete()  # Records are soft-deleted
    out(f"soft-deleted {marked} inactive users: {User.query().count()} visible, "
        f"{User.query().with_deleted().count()} stored")

    restored = User.query().only_deleted().where({"username": "soft0"}).restore()
    out(f"restored {restored} user: {User.query().count()} visible")

    # Force actual deletion even with SoftDeleteMixin
    removed = User.query()\
        .where({"status": "inactive"})\
        .hard_delete()  # Records are permanently removed
    out(f"hard-deleted {removed} inactive users (soft-deleted or not): "
        f"{User.query().with_deleted().count()} stored")

    leaver = User.find_one({"username": "soft4"})
    assert leaver is not None
    leaver.delete()
    again = User.create(username="soft4-again", email=leaver.email)
    out(f"soft-deleted {leaver.email} and created it again as id {again.id} "
        f"(unique among live rows only)")


def using_transactions(out: Out) -> None:
    """Optimizing Batch Operations > Using Transactions for Batch Operations. The three
    operations commit together; in the second block an exception rolls its update back."""
    old_date = datetime.now() - timedelta(days=365)
    User.create(username="old-active", email="old-active@example.com", created_at=TWO_YEARS_AGO)
    User.query().where({"username": "user3"}).update({"status": "trial"})
    new_users = [User(username=f"new{i}", email=f"new{i}@example.com") for i in range(3)]
    with Transaction():
        deleted = User.query().where("created_at < ?", old_date).delete()
        activated = User.query().where({"status": "trial"}).update({"status": "active"})
        User.batch_insert(new_users)
    out(f"transaction committed: deleted {deleted} old user, activated {activated} trial "
        f"user, inserted ids {[u.id for u in new_users]}")
    try:
        with Transaction():
            User.query().where({"status": "active"}).update({"status": "doomed"})
            raise RuntimeError("something went wrong")
    except RuntimeError:
        doomed = User.query().where({"status": "doomed"}).count()
        out(f"a failed transaction rolled back: {doomed} users are 'doomed'")


def disabling_triggers(out: Out) -> None:
    """Optimizing Batch Operations > Disabling Triggers and Constraints. The guide's
    statement is PostgreSQL's; MySQL/MariaDB and SQLite get their nearest equivalent."""
    huge_dataset = [User(username=f"huge{i}", email=f"huge{i}@example.com") for i in range(500)]
    disable, enable = _trigger_statements(User.database().engine.dialect)
    # Inside a Transaction the raw connection is the one the batch insert uses, so session
    # settings (MySQL, SQLite) apply to it too; PostgreSQL's ALTER TABLE is transactional.
    with Transaction():
        conn = get_connection()
        with conn.cursor() as cursor:
            cursor.execute(disable)
            try:
                User.batch_insert(huge_dataset)
            finally:
                cursor.execute(enable)
    out(f"ran {disable!r}, inserted {len(huge_dataset)} users, ran {enable!r}")


STEPS: tuple[Callable[[Out], None], ...] = (
    creating_multiple_records,
    batch_creation_with_dictionaries,
    validation_in_batch_creation,
    performance_considerations,
    updating_with_the_same_values,
    conditional_batch_updates,
    updating_with_expressions,
    deleting_multiple_records,
    conditional_batch_deletes,
    soft_deletes_in_batch_operations,
    using_transactions,
    disabling_triggers,
)


def _trigger_statements(dialect: sa.Dialect) -> tuple[str, str]:
    """The guide's PostgreSQL example, and the nearest equivalent elsewhere."""
    return facts_class(dialect).checks_off_statements(User.__table__.name)


def _code_of(step: Callable[[Out], None]) -> str:
    """The step's body as written: the source without its ``def`` line and docstring."""
    lines = inspect.getsource(step).splitlines()
    body = textwrap.dedent("\n".join(lines[1:]))
    docstring = inspect.getdoc(step) or ""
    if docstring:
        end = body.index('"""', body.index('"""') + 3) + 3
        body = body[end:]
    return body.strip("\n")


def _show(step: Callable[[Out], None], number: int, out: Out, show_code: bool) -> None:
    title, _, meaning = (inspect.getdoc(step) or "").partition(". ")
    out("")
    out(f"== {number}. {title} ==")
    out(f"guide: {GUIDE}, section {title.split(' > ')[-1]!r}")
    if meaning:
        for line in textwrap.wrap("what it shows: " + meaning, 96, subsequent_indent="    "):
            out(line)
    if show_code:
        out("code:")
        for line in _code_of(step).splitlines():
            out("    " + line if line else "")
    out("printed:")
    step(lambda line: out("    " + line))


def run(
    url: str = "sqlite://", out: Out = print, *, keep: bool = False, show_code: bool = True
) -> dict[str, int]:
    """Run every step of the guide against ``url``; return the final counts by status.

    Binds the default database to ``url`` (the guide's ``Transaction()`` uses it). Refuses
    with :class:`ConfigurationError`, before writing anything, when the demo's tables exist
    already; drops them at the end unless ``keep``.

    >>> counts = run("sqlite://", out=lambda line: None)
    >>> counts["archived"]
    2500
    """
    db = activerecord.connect(url)  # the default database: the guide's Transaction() uses it
    tables = [User.__table__, SoftUser.__table__]
    with checkout(db) as conn:  # an unreachable server is a DatabaseConnectionError
        existing = [t.name for t in tables if sa.inspect(conn).has_table(t.name)]
    if existing:
        raise ConfigurationError(
            f"the demo's tables exist already in {db.engine.url.render_as_string()}: "
            f"{', '.join(existing)} (left by a demo run with --keep, or yours); the demo "
            "never drops or writes a table it did not create: drop them or use another database"
        )
    for model in (User, SoftUser):
        model.create_table()
    try:
        return _run_steps(db.engine.url.render_as_string(), out, show_code)
    finally:
        if not keep:
            for model in (SoftUser, User):
                model.drop_table()


def _run_steps(where: str, out: Out, show_code: bool) -> dict[str, int]:
    out(f"connected to {where}; the demo's tables: {User.__table__.name}, "
        f"{SoftUser.__table__.name}")
    out(f"each step follows a section of {GUIDE} and runs the code shown "
        "(the body of a function in activerecord/demo.py)")
    for number, step in enumerate(STEPS, 1):
        _show(step, number, out, show_code)
    counts: dict[str, int] = {}
    for status in ("active", "archived", "inactive"):
        counts[status] = User.query().where({"status": status}).count()
    out("")
    out("== Summary ==")
    out(f"users by status: {counts}; total {User.query().count()}")
    return counts
