"""Large linked batches (an engine runner's, a settlement step's) take PostgreSQL's one-
statement path: the same outcome as small ones — all or nothing, overdrafts refused,
holds posted and re-held, counters equal to the transfers."""

from decimal import Decimal

import pytest
from django.db import transaction

from ledger.models import SystemRole, Transfer, TransferKind
from ledger.selectors import balance_of, ledger_recompute
from ledger.services import (
    LedgerRejected,
    TransferRequest,
    system_account,
    transfers_commit,
    transfers_execute,
    user_account,
)
from ledger.services.transfers import _BULK_MIN
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _traders(fund, count, usdt):
    users = [UserFactory() for _ in range(count)]
    for user in users:
        fund(user, "USDT", usdt)
    return users


def _fee(user, n, amount):
    return TransferRequest(
        id=f"big:{user.pk}:{n}",
        code="test",
        asset="USDT",
        amount=amount,
        debit=user_account(user_id=user.pk, asset="USDT"),
        credit=system_account(role=SystemRole.FEES, asset="USDT", key=f"{user.pk}:{n}"),
    )


def test_a_large_batch_moves_every_amount_and_balances(fund):
    users = _traders(fund, 6, "100")
    requests = [_fee(user, n, Decimal("1.5")) for user in users for n in range(4)]
    assert len(requests) >= _BULK_MIN
    transfers_commit(requests)
    assert all(balance_of(user=user, asset="USDT").available == Decimal("94") for user in users)
    assert Transfer.objects.filter(id__startswith="big:").count() == len(requests)
    assert ledger_recompute().ok
    transfers_commit(requests)  # a replay changes nothing
    assert all(balance_of(user=user, asset="USDT").available == Decimal("94") for user in users)


def test_one_overdraft_refuses_the_whole_large_batch(fund):
    users = _traders(fund, 6, "100")
    requests = [_fee(user, n, Decimal("10")) for user in users for n in range(3)]
    requests.append(_fee(users[2], 99, Decimal("70.000001")))  # users[2] would spend 100.000001
    with pytest.raises(LedgerRejected) as refused:
        transfers_commit(requests)
    assert refused.value.code == "insufficient_funds"
    assert not Transfer.objects.filter(id__startswith="big:").exists()
    assert all(balance_of(user=user, asset="USDT").available == Decimal("100") for user in users)


def test_holds_posted_and_re_held_in_a_large_batch(fund):
    users = _traders(fund, 8, "50")
    holds = [
        TransferRequest(
            id=f"hold:{user.pk}",
            kind=TransferKind.PENDING,
            code="test",
            asset="USDT",
            amount=Decimal("40"),
            debit=user_account(user_id=user.pk, asset="USDT"),
            credit=system_account(role=SystemRole.SPOT_CLEARING, asset="USDT", key=str(user.pk)),
        )
        for user in users
    ]
    transfers_commit(holds)
    clearing = system_account(role=SystemRole.SPOT_CLEARING, asset="USDT", key="pay")
    batch = []
    for user in users:
        batch.append(
            TransferRequest(
                id=f"post:{user.pk}",
                kind=TransferKind.POST_PENDING,
                code="test",
                pending_id=f"hold:{user.pk}",
                amount=Decimal("15"),
            )
        )
        batch.append(
            TransferRequest(
                id=f"rehold:{user.pk}",
                kind=TransferKind.PENDING,
                code="test",
                asset="USDT",
                amount=Decimal("25"),
                debit=user_account(user_id=user.pk, asset="USDT"),
                credit=system_account(role=SystemRole.SPOT_CLEARING, asset="USDT", key=str(user.pk)),
            )
        )
        batch.append(
            TransferRequest(
                id=f"back:{user.pk}",
                code="test",
                asset="USDT",
                amount=Decimal("15"),
                debit=clearing,
                credit=user_account(user_id=user.pk, asset="USDT"),
            )
        )
    transfers_commit(batch)
    for user in users:
        balance = balance_of(user=user, asset="USDT")
        assert (balance.available, balance.held) == (Decimal("25"), Decimal("25"))
    assert ledger_recompute().ok


def _holds_of(fund, count):
    users = _traders(fund, count, "50")
    transfers_commit(
        [
            TransferRequest(
                id=f"hold:{user.pk}",
                kind=TransferKind.PENDING,
                code="test",
                asset="USDT",
                amount=Decimal("40"),
                debit=user_account(user_id=user.pk, asset="USDT"),
                credit=system_account(role=SystemRole.SPOT_CLEARING, asset="USDT", key=str(user.pk)),
            )
            for user in users
        ]
    )
    return users


def _posts(users, prefix, amount="15"):
    return [
        TransferRequest(
            id=f"{prefix}:{user.pk}",
            kind=TransferKind.POST_PENDING,
            code="test",
            pending_id=f"hold:{user.pk}",
            amount=amount,
        )
        for user in users
    ]


def test_a_large_batch_stores_each_row_as_asked(fund):
    users = _traders(fund, 6, "100")
    requests = [_fee(user, n, Decimal("1.000001") * (n + 1)) for user in users for n in range(4)]
    with transaction.atomic():
        transfers_execute(requests, known_new=True)
    stored = Transfer.objects.in_bulk([r.id for r in requests])
    for request in requests:
        row = stored[request.id]
        assert (row.kind, row.asset, row.amount, row.code) == (request.kind, "USDT", request.amount, "test")
        assert (row.debit_account_id, row.credit_account_id) == (request.debit.pk, request.credit.pk)
        assert row.linked_to == requests[0].id and row.pending_id is None and row.created_at is not None
        assert len(row.payload_hash) == 64
    assert ledger_recompute().ok


def test_a_large_batch_whose_ids_exist_is_a_replay_even_when_told_they_are_new(fund):
    users = _traders(fund, 6, "100")
    requests = [_fee(user, n, Decimal("2")) for user in users for n in range(3)]
    transfers_commit(requests)
    with transaction.atomic():
        again = transfers_execute(requests, known_new=True)  # the insert fails, settled as a replay
    assert again.replayed and [t.id for t in again] == [r.id for r in requests]
    assert all(balance_of(user=user, asset="USDT").available == Decimal("94") for user in users)
    assert ledger_recompute().ok


def test_a_hold_is_resolved_once_on_the_bulk_path(fund):
    users = _holds_of(fund, _BULK_MIN)
    transfers_commit(_posts(users, "post"))
    with pytest.raises(LedgerRejected) as refused:
        transfers_commit(_posts(users, "post-again", "5"))
    assert refused.value.code == "pending_already_resolved"
    assert not Transfer.objects.filter(id__startswith="post-again:").exists()
    for user in users:
        balance = balance_of(user=user, asset="USDT")
        assert (balance.available, balance.held) == (Decimal("35"), Decimal("0"))
    assert ledger_recompute().ok
