"""Races against real concurrent PostgreSQL transactions: one connection per thread.

Every thread waits at a barrier so the calls start together. The server allows about 100
connections in total (shared with whatever else runs), so at most ``MAX_CONNECTIONS`` threads
hold one at a time: a thread takes a slot after the barrier and gives it back after closing
its connection. That still races dozens of transactions on the same rows.
"""

import threading
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import KycProfile, KycStatus
from ledger.models import LedgerAccount, SystemRole, Transfer, TransferKind, Withdrawal
from ledger.selectors import balance_of, ledger_recompute
from ledger.services import (
    LedgerRejected,
    TransferRequest,
    deposit_credit,
    system_account,
    transfers_commit,
    user_account,
    withdrawal_create,
)
from tests.factories import UserFactory
from trading.models import AuditRecord

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MAX_CONNECTIONS = 20
ETH_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"


@dataclass
class Outcome:
    index: int
    result: object = None
    error: BaseException | None = None


def run_concurrently(calls, *, max_connections=MAX_CONNECTIONS, timeout=120):
    """Run every callable in its own thread, all released at once by a barrier; returns one
    Outcome per call, in order. Each thread closes its database connection at the end."""
    barrier = threading.Barrier(len(calls))
    slots = threading.BoundedSemaphore(max_connections)
    outcomes = [Outcome(index) for index in range(len(calls))]

    def worker(index, call):
        try:
            barrier.wait(timeout=timeout)
            with slots:
                try:
                    outcomes[index].result = call()
                except BaseException as exc:
                    outcomes[index].error = exc
                finally:
                    connection.close()
        except BaseException as exc:
            outcomes[index].error = exc

    threads = [threading.Thread(target=worker, args=(i, call), daemon=True) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return outcomes


def _audit_ok():
    out = StringIO()
    call_command("ledger_audit", stdout=out, stderr=StringIO())
    assert "ledger audit OK" in out.getvalue()
    assert ledger_recompute().ok


def _unexpected(outcomes, *allowed_codes):
    return [
        repr(o.error)
        for o in outcomes
        if o.error is not None and not (isinstance(o.error, LedgerRejected) and o.error.code in allowed_codes)
    ]


def test_hundred_concurrent_withdrawals_of_the_whole_balance_only_one_succeeds():
    user = UserFactory()
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    deposit_credit(user=user, asset="USDT", amount=Decimal("100"), txid="race-funding")

    outcomes = run_concurrently(
        [
            lambda: withdrawal_create(user=user, asset="USDT", amount=Decimal("99"), address=ETH_ADDRESS)
            for _ in range(100)
        ]
    )

    assert _unexpected(outcomes, "insufficient_funds") == []
    succeeded = [o.result for o in outcomes if o.error is None]
    refused = [o.error for o in outcomes if o.error is not None]
    assert len(succeeded) == 1
    assert len(refused) == 99
    assert all(e.code == "insufficient_funds" and e.status == 409 for e in refused)

    [withdrawal] = Withdrawal.objects.all()
    assert withdrawal.pk == succeeded[0].pk and withdrawal.amount == Decimal("99") and withdrawal.fee == Decimal("1")
    balance = balance_of(user=user, asset="USDT")
    assert (balance.available, balance.held, balance.total) == (Decimal(0), Decimal(100), Decimal(100))
    # the deposit and the two holds of the one withdrawal; nothing from the refused ones
    assert Transfer.objects.count() == 3
    assert AuditRecord.objects.filter(action="ledger.withdrawal_requested").count() == 1
    _audit_ok()


def test_holds_raced_by_posts_and_voids_are_resolved_exactly_once():
    user = UserFactory()
    deposit_credit(user=user, asset="USDT", amount=Decimal("1000"), txid="holds-funding")
    account = user_account(user_id=user.pk, asset="USDT")
    holds = {}
    for i in range(20):
        hold_id = f"race-hold-{i}"
        amount = Decimal(i + 1) + Decimal("0.5")
        transfers_commit(
            [
                TransferRequest(
                    id=hold_id,
                    kind=TransferKind.PENDING,
                    code="test_hold",
                    asset="USDT",
                    amount=amount,
                    debit=account,
                    credit=system_account(role=SystemRole.EXTERNAL, asset="USDT", key=hold_id),
                )
            ]
        )
        holds[hold_id] = amount
    assert balance_of(user=user, asset="USDT").held == sum(holds.values())

    calls, labels = [], []
    for hold_id in holds:
        for verb, kind in (("post", TransferKind.POST_PENDING), ("void", TransferKind.VOID_PENDING)):
            request = TransferRequest(id=f"{hold_id}:{verb}", kind=kind, code="test_hold", pending_id=hold_id)
            calls.append(lambda request=request: transfers_commit([request]))
            labels.append((hold_id, verb))

    outcomes = run_concurrently(calls)

    assert _unexpected(outcomes, "pending_already_resolved") == []
    winners = {}
    for (hold_id, verb), outcome in zip(labels, outcomes):
        if outcome.error is None:
            assert hold_id not in winners, f"{hold_id} resolved twice"
            winners[hold_id] = verb
        else:
            assert outcome.error.code == "pending_already_resolved"
    assert set(winners) == set(holds), "every hold is resolved by exactly one of post/void"
    for hold_id, verb in winners.items():
        resolutions = Transfer.objects.filter(pending_id=hold_id)
        assert [t.id for t in resolutions] == [f"{hold_id}:{verb}"]
    assert sum(Counter(winners.values()).values()) == len(holds)

    posted = sum(holds[h] for h, verb in winners.items() if verb == "post")
    account.refresh_from_db()
    assert account.debits_pending == 0
    assert account.debits_posted == posted
    assert account.credits_posted == Decimal("1000")
    external = LedgerAccount.objects.filter(role=SystemRole.EXTERNAL, asset="USDT")
    assert sum(a.credits_pending for a in external) == 0
    assert sum(a.credits_posted for a in external) == posted
    balance = balance_of(user=user, asset="USDT")
    assert (balance.available, balance.held, balance.total) == (Decimal(1000) - posted, 0, Decimal(1000) - posted)

    # a replay of any resolution (winner or loser) returns its original outcome
    for (hold_id, verb), outcome in zip(labels, outcomes):
        kind = TransferKind.POST_PENDING if verb == "post" else TransferKind.VOID_PENDING
        request = TransferRequest(id=f"{hold_id}:{verb}", kind=kind, code="test_hold", pending_id=hold_id)
        if outcome.error is None:
            assert [t.id for t in transfers_commit([request])] == [request.id]
        else:
            with pytest.raises(LedgerRejected) as caught:
                transfers_commit([request])
            assert caught.value.code == "pending_already_resolved"
    _audit_ok()


def test_fifty_concurrent_deposits_with_the_same_txid_credit_once():
    user = UserFactory()

    outcomes = run_concurrently(
        [lambda: deposit_credit(user=user, asset="USDT", amount="250.5", txid="0xsame-txid") for _ in range(50)]
    )

    assert [repr(o.error) for o in outcomes if o.error is not None] == []
    assert {o.result.id for o in outcomes} == {"deposit:USDT:0xsame-txid"}
    assert Transfer.objects.count() == 1
    assert LedgerAccount.objects.filter(user=user).count() == 1
    balance = balance_of(user=user, asset="USDT")
    assert (balance.available, balance.held, balance.total) == (Decimal("250.5"), 0, Decimal("250.5"))
    # one deposit, one audit record (the losers replayed it, they did not credit it)
    assert AuditRecord.objects.filter(action="ledger.deposit").count() == 1
    _audit_ok()
