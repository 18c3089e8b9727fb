"""Transactions: the guide's transaction block, a savepoint, after-commit hooks, a retrying
function and raw SQL that joins the transaction.

Runs on SQLite by default; set AR_URL to use another database.
"""

import os
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col, TimestampMixin, TransactionConflictError, col
from activerecord.backend import get_connection
from activerecord.backend.transaction import Transaction, after_commit


class User(TimestampMixin, ActiveRecord):
    __table_name__ = "example_tx_users"

    id: int | None = None
    username: Annotated[str, Field(max_length=64)]
    email: Annotated[str, Field(max_length=128), Col(unique=True)]
    status: str = "active"
    login_count: int = 0


activerecord.connect(os.environ.get("AR_URL", "sqlite://"))
User.drop_table()
User.create_table()

User.batch_insert([User(username=f"trial{i}", email=f"t{i}@example.com", status="trial")
                   for i in range(3)])
old_date = datetime.now() - timedelta(days=365)
new_users = [User(username=f"new{i}", email=f"new{i}@example.com") for i in range(5)]

# The guide's block: three batch operations that commit (or roll back) together.
with Transaction():
    # Delete old records
    User.query().where("created_at < ?", old_date).delete()

    # Update existing records
    User.query().where({"status": "trial"}).update({"status": "active"})

    # Insert new records
    User.batch_insert(new_users)
print("after the transaction:", User.query().where({"status": "active"}).count(), "active users")

# A nested Transaction is a savepoint: its failure undoes only its own work.
with Transaction():
    User(username="kept", email="kept@example.com").save()
    after_commit(lambda: print("after commit: send the welcome e-mail to 'kept'"))
    try:
        with Transaction():
            User(username="dropped", email="dropped@example.com").save()
            after_commit(lambda: print("never printed: its savepoint rolled back"))
            raise ValueError("changed my mind")
    except ValueError:
        pass
print("kept:", User.query().where({"username": "kept"}).exists(),
      "dropped:", User.query().where({"username": "dropped"}).exists())

# Retries need a function to re-run: the decorator form. A conflict (deadlock, serialization
# failure, "database is locked") rolls the attempt back and runs the function again.
attempts = []


@Transaction(retries=3, backoff=0.01)
def bump_logins() -> int:
    attempts.append(1)
    count = User.query().update({"login_count": col("login_count") + 1}, all_rows=True)
    if len(attempts) == 1:
        raise TransactionConflictError("pretend the database chose us as a deadlock victim")
    return count


print("bumped", bump_logins(), "users in", len(attempts), "attempts;",
      "total logins:", User.query().sum("login_count"))

# Raw SQL inside a Transaction runs on the same connection: it commits or rolls back with it.
with Transaction():
    conn = get_connection()
    with conn.cursor() as cursor:
        cursor.execute("UPDATE example_tx_users SET status = 'vip' WHERE username = 'kept'")
    User(username="raw", email="raw@example.com").save()
print("vip users:", User.query().where({"status": "vip"}).count())

User.drop_table()
activerecord.disconnect()
