"""AML against PostgreSQL: real deposits, withdrawals and sign-ins evaluated after their
commit, alerts and cases stored, case actions in the audit chain, the scan and the backtest."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import KycProfile
from compliance import services
from compliance.models import AmlAlert, AmlCase, AmlRuleVersion, AmlSignIn, CaseStatus
from compliance.rules import DEFAULT_RULES
from risk.models import TradingState
from tests.factories import UserFactory
from trading.errors import Conflict, ValidationFailed
from trading.models import AuditRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _rules():
    """The shipped rule versions, as the migration stores them (a transactional test's flush
    empties every table after each test)."""
    services.aml_rules_install_defaults()


def _audit_actions(case):
    return list(
        AuditRecord.objects.filter(target_type="compliance.amlcase", target_id=str(case.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_the_shipped_rules_are_stored_live_at_version_one():
    live = {r.code: r for r in AmlRuleVersion.objects.filter(live=True)}
    assert set(live) == {rule.code for rule in DEFAULT_RULES}
    assert {r.version for r in live.values()} == {1}


def test_structured_deposits_raise_an_alert_in_real_time_and_open_a_case(user, money, eager_tasks):
    money.deposit(user, "9500")
    money.deposit(user, "9600")
    assert not AmlAlert.objects.filter(user=user, rule_code="STRUCTURING").exists()
    third = money.deposit(user, "9700")
    several = AmlAlert.objects.get(user=user, rule_code="STRUCTURING")
    assert (several.band, several.score, several.rule_version, several.source) == ("several", 40, 1, "realtime")
    assert several.trigger == f"transfer:{third.pk}"
    assert len(several.transactions) == 3
    assert not AmlCase.objects.filter(user=user).exists()  # 40 is under the case threshold (60)
    money.deposit(user, "9800")  # four: same band, suppressed
    assert AmlAlert.objects.filter(user=user, rule_code="STRUCTURING").count() == 1
    money.deposit(user, "9900")  # five: the higher band, 70, opens a case
    many = AmlAlert.objects.get(user=user, rule_code="STRUCTURING", band="many")
    case = AmlCase.objects.get(user=user)
    assert case.status == CaseStatus.OPEN and case.score == Decimal(70)
    assert set(case.alerts.values_list("pk", flat=True)) >= {several.pk, many.pk}
    assert _audit_actions(case) == ["aml.case_opened"]


def test_a_deposit_below_the_band_raises_nothing(user, money, eager_tasks):
    for amount in ("9500", "9500", "8999.99"):  # the third is under the margin
        money.deposit(user, amount)
    assert not AmlAlert.objects.filter(user=user, rule_code="STRUCTURING").exists()


def test_large_first_deposit_and_rapid_withdrawal(user, money, eager_tasks):
    money.deposit(user, "60000")
    first = AmlAlert.objects.get(user=user, rule_code="LARGE_FIRST_DEPOSIT")
    assert (first.band, first.score) == ("very_large", 70)
    case = AmlCase.objects.get(user=user)
    withdrawal = money.withdraw(user, "59000")
    rapid = AmlAlert.objects.get(user=user, rule_code="RAPID_IN_OUT")
    assert rapid.band == "all" and f"withdrawal:{withdrawal.pk}" in rapid.transactions
    case.refresh_from_db()
    assert rapid.case_id == case.pk and case.score == Decimal(70 + 60)
    assert _audit_actions(case) == ["aml.case_opened", "aml.case_alerts_added"]


def test_dormant_account_reactivated(joined_long_ago, money, eager_tasks):
    user = joined_long_ago
    money.deposit(user, "100", ago=timedelta(days=300))
    money.deposit(user, "5000")
    alert = AmlAlert.objects.get(user=user, rule_code="DORMANT_REACTIVATED")
    assert (alert.band, alert.score) == ("large", 40)


def test_dormancy_is_seen_beyond_the_rules_horizon(joined_long_ago, money, eager_tasks):
    # the last activity is older than any rule looks back from the trigger: dormant, not new
    money.deposit(joined_long_ago, "100", ago=timedelta(days=700))
    money.deposit(joined_long_ago, "4999.99")
    assert not AmlAlert.objects.filter(user=joined_long_ago, rule_code="DORMANT_REACTIVATED").exists()
    other = UserFactory(date_joined=timezone.now() - timedelta(days=800))
    money.deposit(other, "100", ago=timedelta(days=700))
    money.deposit(other, "5000")
    assert AmlAlert.objects.get(user=other, rule_code="DORMANT_REACTIVATED").band == "large"


def _sign_in(user, password, **meta):
    """The API sign-in (a JWT pair), from the address and browser in ``meta``."""
    response = APIClient().post("/api/v1/auth/token", {"email": user.email, "password": password}, **meta)
    assert response.status_code == 200, response.content


def test_sign_ins_from_one_ip_across_accounts(user, eager_tasks, password):
    others = [UserFactory() for _ in range(2)]
    _sign_in(others[0], password, REMOTE_ADDR="203.0.113.9")
    _sign_in(others[1], password, REMOTE_ADDR="198.51.100.4", HTTP_USER_AGENT="Mozilla/5.0 shared")
    assert not AmlAlert.objects.filter(rule_code="SHARED_IP_DEVICE").exists()  # nothing shared yet
    _sign_in(user, password, REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Mozilla/5.0 other")
    assert not AmlAlert.objects.filter(rule_code="SHARED_IP_DEVICE").exists()  # one other account: below
    _sign_in(user, password, REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Mozilla/5.0 shared", HTTP_CF_IPCOUNTRY="IR")
    shared = AmlAlert.objects.get(user=user, rule_code="SHARED_IP_DEVICE")
    assert (shared.band, shared.value) == ("few", Decimal(2))  # one by IP, one by device
    risky = AmlAlert.objects.get(user=user, rule_code="HIGH_RISK_JURISDICTION")
    assert risky.band == "seen"
    signin = AmlSignIn.objects.filter(user=user).latest("at")
    assert signin.country == "IR" and len(signin.device) == 32 and signin.ip == "203.0.113.9"


def test_case_workflow_is_in_the_audit_chain(user, money, staff, eager_tasks):
    money.deposit(user, "60000")
    case = AmlCase.objects.get(user=user)
    services.case_assign(case_id=case.pk, actor=staff)
    services.case_comment(case_id=case.pk, actor=staff, body="Source of funds asked.")
    with pytest.raises(ValidationFailed):
        services.case_escalate(case_id=case.pk, actor=staff, note=" ")
    services.case_escalate(case_id=case.pk, actor=staff, note="Large and new.")
    services.case_freeze_account(case_id=case.pk, actor=staff, note="Until the documents arrive.")
    state = TradingState.objects.get(scope="user", target=str(user.pk))
    assert state.state == "halted" and f"AML case {case.pk}" in state.reason
    services.case_clear(case_id=case.pk, actor=staff, note="Salary documents check out.")
    case.refresh_from_db()
    assert case.status == CaseStatus.CLEARED and case.closed_at and case.assignee == staff and case.account_frozen
    with pytest.raises(Conflict):
        services.case_clear(case_id=case.pk, actor=staff, note="again")
    assert _audit_actions(case) == [
        "aml.case_opened",
        "aml.case_assigned",
        "aml.case_commented",
        "aml.case_escalated",
        "aml.case_account_frozen",
        "aml.case_cleared",
    ]
    # a cleared case's alerts no longer count: the next alert starts from zero
    money.withdraw(user, "100")
    assert AmlCase.objects.filter(user=user).count() == 1


@pytest.fixture
def no_worker():
    """The real-time evaluations are queued and nobody runs them (as while the workers are
    down), in either mode (the embedded mode runs tasks in-process by default)."""
    from trading.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = saved


def test_scan_raises_what_real_time_missed_and_nothing_twice(user, money, no_worker):
    for hours in (30, 20, 10):
        money.deposit(user, "9500", ago=timedelta(hours=hours))
    assert not AmlAlert.objects.exists()
    out = _scan("--since", (timezone.now() - timedelta(days=2)).isoformat())
    alert = AmlAlert.objects.get(user=user, rule_code="STRUCTURING")
    assert alert.source == "scan" and "STRUCTURING v1 several" in out
    _scan("--since", (timezone.now() - timedelta(days=2)).isoformat())
    assert AmlAlert.objects.filter(user=user).count() == 1


def test_backtest_compares_a_version_with_the_live_one_and_opens_nothing(user, money, no_worker):
    for hours in (30, 20, 10):
        money.deposit(user, "9500", ago=timedelta(hours=hours))
    live = AmlRuleVersion.objects.get(code="STRUCTURING", live=True)
    stricter = dict(live.definition, version=2, bands=[{"label": "several", "lower": "4", "score": 40}])
    AmlRuleVersion.objects.create(code="STRUCTURING", version=2, title=live.title, definition=stricter)
    out = _backtest("--rule", "structuring", "--version", "2")
    assert "STRUCTURING v2" in out and "live v1" in out
    assert "only the live version: 1" in out and "only v2: 0" in out
    assert not AmlAlert.objects.exists() and not AmlCase.objects.exists()


def _scan(*args):
    from io import StringIO

    out = StringIO()
    call_command("aml_scan", *args, stdout=out)
    return out.getvalue()


def _backtest(*args):
    from io import StringIO

    out = StringIO()
    call_command("aml_backtest", *args, stdout=out)
    return out.getvalue()


def test_ops_cases_api(user, money, staff, eager_tasks, api):
    money.deposit(user, "60000")
    case = AmlCase.objects.get(user=user)
    api.force_authenticate(staff)
    body = api.get("/api/v1/ops/aml/cases?status=open").json()
    [row] = body["results"]
    assert row["id"] == case.pk and row["user"] == user.email and row["rule_codes"] == ["LARGE_FIRST_DEPOSIT"]
    assert row["score"] == "70" and row["status"] == "open" and row["opened_at"].endswith("Z")
    assert api.get("/api/v1/ops/aml/cases?status=cleared").json()["results"] == []
    bad = api.get("/api/v1/ops/aml/cases?status=nope")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
    api.force_authenticate(user)
    assert api.get("/api/v1/ops/aml/cases").status_code == 403


def test_large_spot_trades_are_evaluated_by_the_minute_sweep(user, settings):
    from compliance.tasks import aml_large_trades
    from orders.spot.models import SpotTrade

    KycProfile.objects.filter(user=user).update(country="KP")
    other = UserFactory()

    def trade(seq, quote):
        return SpotTrade.objects.create(
            symbol="BTC-USDT",
            seq=seq,
            price=Decimal("65000"),
            quantity=Decimal(quote) / Decimal("65000"),
            quote_amount=Decimal(quote),
            taker_side="buy",
            maker_order_id=1,
            taker_order_id=2,
            maker_user=other,
            taker_user=user,
            maker_fee=Decimal(0),
            taker_fee=Decimal(0),
            created_at=timezone.now(),
        )

    small = trade(1, "49999.99")
    aml_large_trades()
    assert not AmlAlert.objects.exists()
    large = trade(2, "50000")
    assert aml_large_trades() == 2  # both sides
    alert = AmlAlert.objects.get(user=user, rule_code="HIGH_RISK_JURISDICTION")
    assert alert.trigger == f"trade:{large.pk}" and f"trade:{small.pk}" in alert.transactions
    assert not AmlAlert.objects.filter(user=other).exists()
