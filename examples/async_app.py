"""The async API in a small service: handlers that share one database, run concurrently.

A FastAPI/Starlette-style shape without the web framework: each "request" is a coroutine,
the AsyncSession comes from a session factory (a dependency in FastAPI), ``using()`` runs the
library's calls in that session's transaction, and ``asyncio.gather`` serves many requests
at once, each in its own transaction.

Runs on a SQLite file by default; set AR_URL to use another database (a sync URL serves the
async API too: the matching async driver is used).
"""

import asyncio
import os
import tempfile
from typing import Annotated

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import activerecord
from activerecord import ActiveRecord, Col, TimestampMixin, Transaction, UniqueViolation


class Account(TimestampMixin, ActiveRecord):
    __table_name__ = "example_async_accounts"

    id: int | None = None
    email: Annotated[str, Field(max_length=128), Col(unique=True)]
    balance: int = 0


class Transfer(ActiveRecord):
    __table_name__ = "example_async_transfers"

    id: int | None = None
    source: int
    target: int
    amount: int


default = "sqlite+aiosqlite:///" + os.path.join(tempfile.mkdtemp(), "async_app.db")
db = activerecord.connect(os.environ.get("AR_URL", default))


async def sign_up(session: AsyncSession, emails: list[str]) -> list[int | None]:
    """POST /accounts: the session's transaction, committed by the handler."""
    async with activerecord.using(session):
        accounts = [Account(email=email, balance=100) for email in emails]
        await Account.abatch_insert(accounts)
    await session.commit()
    return [account.id for account in accounts]


@Transaction(retries=5)  # re-run whole on a deadlock or serialization failure
async def transfer(source: int, target: int, amount: int) -> None:
    """POST /transfers: its own transaction; a failure leaves both accounts as they were.
    It writes first (a conditional UPDATE), so no two transfers read then both write."""
    balance = activerecord.col("balance")
    paid = await Account.query().where({"id": source}).where(balance >= amount).aupdate(
        {"balance": balance - amount}
    )
    if not paid:
        raise ValueError(f"account {source} cannot pay {amount}")
    await Account.query().where({"id": target}).aupdate({"balance": balance + amount})
    await Transfer.acreate(source=source, target=target, amount=amount)


async def main() -> None:
    await Transfer.adrop_table()
    await Account.adrop_table()
    await activerecord.acreate_all(tables=[Account.__table__, Transfer.__table__])
    sessions = async_sessionmaker(db.async_engine, expire_on_commit=False)

    async with sessions() as session:
        ids = await sign_up(session, [f"user{n}@example.com" for n in range(10)])
    print(f"signed up {len(ids)} accounts: ids {ids[0]}..{ids[-1]}")

    async with sessions() as session:  # a duplicate: the session rolls back, nothing stays
        try:
            await sign_up(session, ["new@example.com", "user0@example.com"])
        except UniqueViolation:
            await session.rollback()
    print("accounts after a refused sign-up:", await Account.query().acount())

    # Twenty requests at once, each in its own transaction; the overdrafts fail alone.
    requests = [transfer(ids[n % 10], ids[(n + 1) % 10], 30 + 40 * (n % 3)) for n in range(20)]
    results = await asyncio.gather(*requests, return_exceptions=True)
    done = sum(r is None for r in results)
    refused = sum(isinstance(r, ValueError) for r in results)
    total = await Account.query().asum("balance")
    print(f"{done} transfers done, {refused} refused; money kept: {total}")
    assert done + refused == len(results), results  # no other failure
    assert int(total) == 1000 and await Transfer.query().acount() == done

    # Raw SQL on the driver's own async connection, inside a transaction of ours.
    async with Transaction():
        conn = await activerecord.aget_connection()
        print("raw connection:", type(conn.driver_connection).__name__)

    richest = await Account.query().order_by("-balance").afirst()
    assert richest is not None
    print(f"richest: {richest.email} with {richest.balance}")
    async for batch in Account.query().abatches(4):
        print("batch of", len(batch))


asyncio.run(main())
