"""The transfer engine: idempotency, linked batches, holds, and refusals."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from ledger.models import LedgerAccount, SystemRole, Transfer, TransferKind, TransferRejection
from ledger.selectors import balance_of, ledger_recompute
from ledger.services import (
    IdempotencyConflict,
    LedgerRejected,
    TransferRequest,
    system_account,
    transfers_commit,
    user_account,
)
from trading.errors import DomainError

pytestmark = pytest.mark.django_db


def _fees(asset="USDT", key="k"):
    return system_account(role=SystemRole.FEES, asset=asset, key=key)


def _pay(user, transfer_id, amount, asset="USDT", kind=TransferKind.POSTED):
    return TransferRequest(
        id=transfer_id,
        code="test",
        kind=kind,
        asset=asset,
        amount=amount,
        debit=user_account(user_id=user.pk, asset=asset),
        credit=_fees(asset, transfer_id),
    )


def test_posted_transfer_moves_money_and_keeps_the_books_balanced(user, fund):
    fund(user, "USDT", "100")
    [transfer] = transfers_commit([_pay(user, "t1", Decimal("30.5"))])
    assert transfer.amount == Decimal("30.5")
    assert balance_of(user=user, asset="USDT").available == Decimal("69.5")
    assert ledger_recompute().ok


def test_replaying_an_id_returns_the_original_without_a_second_effect(user, fund):
    fund(user, "USDT", "100")
    first = transfers_commit([_pay(user, "t1", Decimal("10"))])
    again = transfers_commit([_pay(user, "t1", Decimal("10"))])
    assert [t.pk for t in again] == [t.pk for t in first]
    assert balance_of(user=user, asset="USDT").available == Decimal("90")
    assert Transfer.objects.filter(pk="t1").count() == 1


def test_reusing_an_id_with_another_payload_is_a_conflict(user, fund):
    fund(user, "USDT", "100")
    transfers_commit([_pay(user, "t1", Decimal("10"))])
    with pytest.raises(IdempotencyConflict) as caught:
        transfers_commit([_pay(user, "t1", Decimal("11"))])
    assert caught.value.code == "idempotency_conflict"
    assert balance_of(user=user, asset="USDT").available == Decimal("90")


def test_a_refusal_is_replayed_even_after_the_funds_arrive(user, fund):
    fund(user, "USDT", "5")
    with pytest.raises(LedgerRejected) as first:
        transfers_commit([_pay(user, "t-poor", Decimal("10"))])
    assert first.value.code == "insufficient_funds"
    assert TransferRejection.objects.filter(pk="t-poor", error_code="insufficient_funds").exists()
    fund(user, "USDT", "100")
    with pytest.raises(LedgerRejected) as replay:
        transfers_commit([_pay(user, "t-poor", Decimal("10"))])
    assert replay.value.code == "insufficient_funds"
    assert not Transfer.objects.filter(pk="t-poor").exists()
    with pytest.raises(IdempotencyConflict):
        transfers_commit([_pay(user, "t-poor", Decimal("1"))])


@pytest.mark.parametrize(
    ("asset", "amount", "code"),
    [
        ("USDT", "1.0000001", "validation_error"),
        ("BTC", "0.000000001", "validation_error"),
        ("USDT", "0", "validation_error"),
        ("USDT", "-5", "validation_error"),
        ("USDT", "abc", "validation_error"),
        ("USDT", "NaN", "validation_error"),
        ("DOGE", "1", "unknown_asset"),
    ],
)
def test_bad_amounts_and_assets_are_refused_before_anything_is_written(user, fund, asset, amount, code):
    account_asset = "BTC" if asset == "BTC" else "USDT"
    fund(user, account_asset, "100")
    debit = user_account(user_id=user.pk, asset=account_asset)
    request = TransferRequest(
        id="bad", code="test", asset=asset, amount=amount, debit=debit, credit=_fees(account_asset)
    )
    with pytest.raises(DomainError) as caught:
        transfers_commit([request])
    assert caught.value.code == code
    assert not Transfer.objects.filter(pk="bad").exists()


def test_accounts_must_hold_the_transfer_asset(user):
    request = TransferRequest(
        id="mix",
        code="test",
        asset="USDT",
        amount="1",
        debit=user_account(user_id=user.pk, asset="BTC"),
        credit=_fees("USDT"),
    )
    with pytest.raises(DomainError) as caught:
        transfers_commit([request])
    assert caught.value.code == "asset_mismatch"


def test_linked_transfers_commit_all_or_nothing(user, other_user, fund):
    fund(user, "USDT", "100")
    fund(other_user, "BTC", "0.1")
    good = _pay(user, "leg-1", Decimal("50"))
    too_much = _pay(other_user, "leg-2", Decimal("1"), asset="BTC")
    with pytest.raises(LedgerRejected) as caught:
        transfers_commit([good, too_much])
    assert caught.value.code == "insufficient_funds"
    assert not Transfer.objects.filter(pk__in=["leg-1", "leg-2"]).exists()
    assert balance_of(user=user, asset="USDT").available == Decimal("100")
    # Both ids now carry the refusal.
    assert set(TransferRejection.objects.values_list("pk", flat=True)) >= {"leg-1", "leg-2"}
    transfers_commit([_pay(user, "leg-3", Decimal("50")), _pay(other_user, "leg-4", Decimal("0.05"), asset="BTC")])
    assert Transfer.objects.get(pk="leg-4").linked_to == "leg-3"
    assert ledger_recompute().ok


def test_hold_then_full_post(user, fund):
    fund(user, "USDT", "100")
    transfers_commit([_pay(user, "hold", Decimal("40"), kind=TransferKind.PENDING)])
    balance = balance_of(user=user, asset="USDT")
    assert (balance.available, balance.held, balance.total) == (Decimal("60"), Decimal("40"), Decimal("100"))
    transfers_commit([TransferRequest(id="hold:post", code="test", kind=TransferKind.POST_PENDING, pending_id="hold")])
    balance = balance_of(user=user, asset="USDT")
    assert (balance.available, balance.held, balance.total) == (Decimal("60"), Decimal("0"), Decimal("60"))
    assert ledger_recompute().ok


def test_partial_post_releases_the_rest(user, fund):
    fund(user, "USDT", "100")
    transfers_commit([_pay(user, "hold", Decimal("40"), kind=TransferKind.PENDING)])
    transfers_commit(
        [TransferRequest(id="hold:post", code="test", kind=TransferKind.POST_PENDING, pending_id="hold", amount="15")]
    )
    balance = balance_of(user=user, asset="USDT")
    assert (balance.available, balance.held, balance.total) == (Decimal("85"), Decimal("0"), Decimal("85"))
    assert ledger_recompute().ok


def test_void_releases_the_hold(user, fund):
    fund(user, "USDT", "100")
    transfers_commit([_pay(user, "hold", Decimal("40"), kind=TransferKind.PENDING)])
    transfers_commit([TransferRequest(id="hold:void", code="test", kind=TransferKind.VOID_PENDING, pending_id="hold")])
    balance = balance_of(user=user, asset="USDT")
    assert (balance.available, balance.held, balance.total) == (Decimal("100"), Decimal("0"), Decimal("100"))


def test_a_hold_is_resolved_exactly_once(user, fund):
    fund(user, "USDT", "100")
    transfers_commit([_pay(user, "hold", Decimal("40"), kind=TransferKind.PENDING)])
    transfers_commit([TransferRequest(id="hold:void", code="test", kind=TransferKind.VOID_PENDING, pending_id="hold")])
    with pytest.raises(LedgerRejected) as caught:
        transfers_commit(
            [TransferRequest(id="hold:post", code="test", kind=TransferKind.POST_PENDING, pending_id="hold")]
        )
    assert caught.value.code == "pending_already_resolved"
    # Replaying the void itself is fine and changes nothing.
    transfers_commit([TransferRequest(id="hold:void", code="test", kind=TransferKind.VOID_PENDING, pending_id="hold")])
    assert balance_of(user=user, asset="USDT").available == Decimal("100")
    assert ledger_recompute().ok


def test_post_cannot_exceed_the_hold_and_needs_a_real_hold(user, fund):
    fund(user, "USDT", "100")
    transfers_commit([_pay(user, "hold", Decimal("40"), kind=TransferKind.PENDING)])
    with pytest.raises(LedgerRejected) as caught:
        transfers_commit(
            [TransferRequest(id="p1", code="test", kind=TransferKind.POST_PENDING, pending_id="hold", amount="41")]
        )
    assert caught.value.code == "exceeds_hold"
    with pytest.raises(LedgerRejected) as caught:
        transfers_commit([TransferRequest(id="p2", code="test", kind=TransferKind.POST_PENDING, pending_id="nope")])
    assert caught.value.code == "pending_not_found"
    with pytest.raises(LedgerRejected) as caught:
        transfers_commit(
            [
                TransferRequest(
                    id="p3",
                    code="test",
                    kind=TransferKind.VOID_PENDING,
                    pending_id=f"deposit:USDT:test-fund-{user.pk}-1",
                )
            ]
        )
    assert caught.value.code == "not_a_hold"


def test_holds_count_against_what_can_be_spent(user, fund):
    fund(user, "USDT", "100")
    transfers_commit([_pay(user, "hold", Decimal("80"), kind=TransferKind.PENDING)])
    with pytest.raises(LedgerRejected) as caught:
        transfers_commit([_pay(user, "spend", Decimal("30"))])
    assert caught.value.code == "insufficient_funds"


def test_the_database_itself_refuses_a_negative_trader_account(user, fund):
    fund(user, "USDT", "10")
    account = user_account(user_id=user.pk, asset="USDT")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerAccount.objects.filter(pk=account.pk).update(debits_posted=Decimal("11"))


def test_system_accounts_are_spread_over_buckets(user, fund):
    fund(user, "USDT", "1000")
    transfers_commit([_pay(user, f"spread-{i}", Decimal("1")) for i in range(40)])
    buckets = LedgerAccount.objects.filter(role=SystemRole.FEES, asset="USDT")
    assert buckets.count() > 4
    assert sum(b.balance for b in buckets) == Decimal("40")


@pytest.mark.django_db(transaction=True)
def test_transfers_execute_refuses_to_run_outside_a_transaction(user):
    from ledger.services import transfers_execute

    with pytest.raises(RuntimeError):
        transfers_execute([_pay(user, "x", Decimal("1"))])
