"""Quick start: define a model, load rows in batch, query and update them.

Runs on SQLite by default; set AR_URL to use another database.
"""

import os
from typing import Annotated

from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col, TimestampMixin, col


class Customer(TimestampMixin, ActiveRecord):
    __table_name__ = "example_customers"

    id: int | None = None
    name: Annotated[str, Field(max_length=100)]
    email: Annotated[str, Field(max_length=200), Col(unique=True)]
    visits: int = 0


activerecord.connect(os.environ.get("AR_URL", "sqlite://"))
Customer.drop_table()
Customer.create_table()

customers = [Customer(name=f"Customer {i}", email=f"c{i}@example.com") for i in range(100)]
Customer.batch_insert(customers)
print("first ids:", [c.id for c in customers[:5]])

bumped = Customer.query().where("id <= ?", 10).update({"visits": col("visits") + 1})
print("bumped visits of", bumped, "customers")

print("customers with a visit:", Customer.query().where({"visits": 1}).count())
print("SQL:", Customer.query().where({"visits": 1}).to_sql().sql.replace("\n", " "))
Customer.drop_table()
activerecord.disconnect()
