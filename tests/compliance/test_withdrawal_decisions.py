"""Withdrawals decided by the trader's AML score: held for review (aml_review) from the review
score, refused from the block score (nothing held, a case opened), moved to review when the
withdrawal's own evaluation lifts the score; staff decide a held one, the trader cannot cancel
it; a cleared case's alerts no longer count."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import KycProfile, KycStatus
from compliance import services
from compliance.decisions import trader_score
from compliance.models import AmlAlert, AmlCase
from ledger.models import Withdrawal, WithdrawalStatus
from ledger.selectors import balance_of
from ledger.services import deposit_credit, withdrawal_approve
from notifications.models import Notification
from tests.accounts.helpers import assert_error, next_time_step
from tests.factories import enable_totp, totp_code
from trading.models import AuditRecord

pytestmark = pytest.mark.django_db

ETH = "0x52908400098527886E0F7030069857D2E4169EE7"


@pytest.fixture
def trader(user):
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    device = enable_totp(user)
    deposit_credit(user=user, asset="USDT", amount=Decimal("900"), txid=f"decisions-{user.pk}")
    return SimpleNamespace(user=user, device=device)


def alert(user, code: str, weighted: str, *, case=None, days_ago: float = 0):
    at = timezone.now() - timedelta(days=days_ago)
    return AmlAlert.objects.create(
        user=user, rule_code=code, rule_version=1, band="high", score=int(Decimal(weighted)),
        weighted_score=Decimal(weighted), transactions=[], trigger="test", at=at, source="scan",
        fingerprint=f"{user.pk}:{code}:{weighted}:{days_ago}", case=case,
    )  # fmt: skip


BENEFICIARY = {"name": "Grace Hopper", "wallet_type": "hosted", "vasp": "Example Exchange"}


def withdraw(client, trader, amount="100"):
    next_time_step(trader.device)
    body = {"asset": "USDT", "amount": amount, "address": ETH, "otp": totp_code(trader.device)}
    body["beneficiary"] = BENEFICIARY
    return client.post("/api/v1/withdrawals", body, format="json")


def test_the_score_is_the_strongest_alert_per_rule_of_the_window_outside_closed_cases(trader, staff):
    user = trader.user
    alert(user, "STRUCTURING", "40")
    alert(user, "STRUCTURING", "30", days_ago=1)
    alert(user, "VELOCITY", "25")
    alert(user, "DORMANT", "90", days_ago=40)  # out of the window
    assert trader_score(user_id=user.pk) == Decimal("65")
    cleared = AmlCase.objects.create(user=user, status="cleared", score=50)
    alert(user, "LARGE_FIRST_DEPOSIT", "50", case=cleared)
    assert trader_score(user_id=user.pk) == Decimal("65")


def test_below_the_review_score_a_withdrawal_is_pending(trader, auth_api):
    alert(trader.user, "VELOCITY", "59")
    response = withdraw(auth_api, trader)
    assert response.status_code == 201 and response.json()["status"] == "pending"


def test_from_the_review_score_it_is_held_for_staff_and_the_trader_cannot_cancel(trader, auth_api, staff):
    alert(trader.user, "STRUCTURING", "60")
    with CaptureQueriesContext(connection) as queries:
        response = withdraw(auth_api, trader)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "aml_review"
    # the screen (block score) and the review read the trader's score once between them
    scores = [q["sql"] for q in queries if 'MAX("compliance_amlalert"."weighted_score")' in q["sql"]]
    assert len(scores) == 1, scores
    withdrawal = Withdrawal.objects.get(user=trader.user)
    assert withdrawal.review_reason.startswith("AML score 60")
    assert "AML" not in str(response.json())  # the reason is for staff
    assert balance_of(user=trader.user, asset="USDT").held == Decimal("101")  # amount and fee held
    told = Notification.objects.filter(user=trader.user, kind="withdrawal_updated")
    assert sorted(told.values_list("data__status", flat=True)) == ["aml_review", "requested"]
    cancel = auth_api.post(f"/api/v1/withdrawals/{withdrawal.pk}/cancel", {}, format="json")
    assert_error(cancel, 409, "withdrawal_not_pending")
    withdrawal_approve(withdrawal_id=withdrawal.pk, actor=staff, network_txid="0xabc")
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.APPROVED
    assert balance_of(user=trader.user, asset="USDT").total == Decimal("799")


def test_from_the_block_score_it_is_refused_nothing_held_and_a_case_opens(trader, auth_api):
    alert(trader.user, "STRUCTURING", "100")
    alert(trader.user, "RAPID_IN_OUT", "60")
    response = withdraw(auth_api, trader)
    assert_error(response, 403, "compliance_blocked")
    assert not Withdrawal.objects.filter(user=trader.user).exists()
    assert balance_of(user=trader.user, asset="USDT").held == 0
    case = AmlCase.objects.get(user=trader.user)
    assert case.status == "open" and case.alerts.count() == 2
    assert AuditRecord.objects.filter(action="aml.case_opened", target_id=str(case.pk)).exists()
    assert_error(withdraw(auth_api, trader), 403, "compliance_blocked")
    assert AmlCase.objects.filter(user=trader.user).count() == 1  # one case


def test_a_cleared_case_lets_the_trader_withdraw_again(trader, auth_api, staff):
    alert(trader.user, "STRUCTURING", "100")
    alert(trader.user, "RAPID_IN_OUT", "60")
    assert_error(withdraw(auth_api, trader), 403, "compliance_blocked")
    case = AmlCase.objects.get(user=trader.user)
    services.case_clear(case_id=case.pk, actor=staff, note="Source of funds documented.")
    assert withdraw(auth_api, trader).json()["status"] == "pending"


def test_its_own_evaluation_moves_a_pending_withdrawal_to_review(trader, auth_api, settings, eager_tasks):
    """The withdrawal's evaluation runs after its commit: its own alerts lift the score."""
    settings.AML_WITHDRAWAL_REVIEW_SCORE = 40
    from compliance.tasks import aml_evaluate

    for n, amount in enumerate(("9600", "9750", "9800", "9900")):
        deposit_credit(user=trader.user, asset="USDT", amount=Decimal(amount), txid=f"structure-{n}")
    AmlAlert.objects.filter(user=trader.user).delete()  # as if the deposits' own evaluations had not run yet
    response = withdraw(auth_api, trader, amount="38000")
    withdrawal = Withdrawal.objects.get(pk=response.json()["id"])
    assert withdrawal.status == WithdrawalStatus.PENDING
    aml_evaluate(trader.user.pk, f"withdrawal:{withdrawal.pk}")
    withdrawal.refresh_from_db()
    assert AmlAlert.objects.filter(user=trader.user).exists()
    assert withdrawal.status == WithdrawalStatus.AML_REVIEW
    held = AuditRecord.objects.filter(action="ledger.withdrawal_held_for_review", target_id=str(withdrawal.pk))
    assert held.count() == 1
    aml_evaluate(trader.user.pk, f"withdrawal:{withdrawal.pk}")  # again: nothing more
    assert AuditRecord.objects.filter(action="ledger.withdrawal_held_for_review").count() == 1
