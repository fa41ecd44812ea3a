"""``ledger_audit`` on a live platform: transfers committed while it reads do not show as
counters that do not match (every read is of one snapshot)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from ledger import selectors
from ledger.services import deposit_credit
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_deposit_committed_between_the_audits_reads_is_not_a_mismatch(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the snapshot is PostgreSQL's")
    user = UserFactory()
    deposit_credit(user=user, asset="USDT", amount=Decimal("100"), txid="audit-snapshot-0")
    sums = selectors._sums
    calls = []

    def sums_then_a_deposit(qs, group):
        result = sums(qs, group)
        calls.append(group)
        if len(calls) == 1:  # after the first of the audit's reads, another connection commits
            worker = threading.Thread(
                target=lambda: deposit_credit(user=user, asset="USDT", amount=Decimal("7"), txid="audit-snapshot-1")
            )
            worker.start()
            worker.join()
        return result

    monkeypatch.setattr(selectors, "_sums", sums_then_a_deposit)
    report = selectors.ledger_recompute()
    assert len(calls) == 4
    assert report.ok, report.mismatched
    monkeypatch.setattr(selectors, "_sums", sums)
    assert selectors.ledger_recompute().ok  # and the deposit counted in the next audit
    assert selectors.balance_of(user=user, asset="USDT").total == Decimal("107")
