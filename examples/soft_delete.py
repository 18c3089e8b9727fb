"""Soft deletes: hide rows instead of removing them, restore them, purge them for real.

Runs on SQLite by default; set AR_URL to use another database.
"""

import os
from typing import Annotated

from pydantic import Field

import activerecord
from activerecord import ActiveRecord, SoftDeleteMixin, TimestampMixin, UniqueViolation


class Shop(SoftDeleteMixin, ActiveRecord):
    __table_name__ = "example_sd_shops"

    id: int | None = None
    name: Annotated[str, Field(max_length=100)]


class Product(SoftDeleteMixin, TimestampMixin, ActiveRecord):
    __table_name__ = "example_sd_products"
    # unique among live rows: a soft-deleted product does not block its SKU
    # (partial unique index on PostgreSQL/SQLite, generated column on MySQL/MariaDB)
    __soft_unique__ = ("sku",)

    id: int | None = None
    shop_id: int
    sku: Annotated[str, Field(max_length=40)]
    stock: int = 0


activerecord.connect(os.environ.get("AR_URL", "sqlite://"))
for model in (Product, Shop):
    model.drop_table()
    model.create_table()

north, south = Shop.create(name="north"), Shop.create(name="south")
Product.batch_insert_from_dicts(
    [{"shop_id": north.id, "sku": f"N-{i}", "stock": i} for i in range(5)]
    + [{"shop_id": south.id, "sku": f"S-{i}", "stock": i} for i in range(5)]
)

# One UPDATE marks the rows; every read, count, aggregate and update then leaves them out.
marked = Product.query().where({"stock": 0}).delete()
print("soft-deleted:", marked, "visible:", Product.query().count(),
      "stored:", Product.query().with_deleted().count(), "in stock:", Product.query().sum("stock"))
assert (marked, Product.query().count()) == (2, 8)

# The scope also holds inside subqueries the library builds: closing a shop hides its products
# from a query that selects products of open shops.
south.delete()
of_open_shops = Product.query().where_in("shop_id", Shop.query())
print("products of open shops:", of_open_shops.count())
assert of_open_shops.count() == 4

# Bring rows back in one statement, or one record at a time.
restored = Product.query().only_deleted().where({"sku": "N-0"}).restore()
assert restored == 1 and south.restore() and not south.is_deleted
print("restored N-0 and the south shop; products of open shops:", of_open_shops.count())

# A soft-deleted SKU can be created again; two live rows with one SKU cannot exist.
Product.create(shop_id=south.id, sku="S-0")
try:
    Product.create(shop_id=south.id, sku="S-0")
except UniqueViolation:
    print("a second live S-0 is refused")
else:
    raise SystemExit("expected a UniqueViolation")

# hard_delete() removes rows for real, whether soft-deleted or not.
purged = Product.query().only_deleted().hard_delete(all_rows=True)
print("purged", purged, "soft-deleted product(s); stored:", Product.query().with_deleted().count())
assert purged == 1 and Product.query().with_deleted().count() == 10
