"""The dialect object a probe reads, and the transaction flushing a pending statement."""

from __future__ import annotations

from activerecord.backend.dialects import facts_class
from activerecord.backend.transaction import (
    Transaction,
    current_connection,
    holding_open,
    in_transaction,
)


def test_probed_facts_are_the_backends_class(db):
    assert type(db.facts) is facts_class(db.engine.dialect)


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
