"""The AML case inbox in the admin: list by status and score, the case page's actions, each
through its service and in the audit chain; rule versions added and made live."""

from __future__ import annotations

import json

import pytest

from compliance import services
from compliance.models import AmlCase, AmlRuleVersion, CaseStatus
from risk.models import TradingState
from trading.models import AuditRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _rules():
    services.aml_rules_install_defaults()


def _form(**fields):
    return {
        "alerts-TOTAL_FORMS": "0",
        "alerts-INITIAL_FORMS": "0",
        "comments-TOTAL_FORMS": "0",
        "comments-INITIAL_FORMS": "0",
        **fields,
    }


def test_inbox_and_case_actions(user, money, admin_client_otp, eager_tasks):
    money.deposit(user, "60000")
    case = AmlCase.objects.get(user=user)
    inbox = admin_client_otp.get("/admin/compliance/amlcase/?status__exact=open")
    assert inbox.status_code == 200 and user.email.encode() in inbox.content
    assert b"LARGE_FIRST_DEPOSIT" in inbox.content
    page = admin_client_otp.get(f"/admin/compliance/amlcase/{case.pk}/change/")
    assert page.status_code == 200 and b"transfer:deposit:USDT:" in page.content

    url = f"/admin/compliance/amlcase/{case.pk}/change/"
    response = admin_client_otp.post(url, _form(assign_to_me="on", comment="Asked for payslips."))
    assert response.status_code == 302, response.content[:3000]
    case.refresh_from_db()
    assert case.assignee == admin_client_otp.user and case.comments.get().body == "Asked for payslips."

    refused = admin_client_otp.post(url, _form(decision="freeze", note=""))
    assert refused.status_code == 200 and b"Say why." in refused.content
    admin_client_otp.post(url, _form(decision="freeze", note="Pending documents."))
    assert TradingState.objects.get(scope="user", target=str(user.pk)).state == "halted"
    admin_client_otp.post(url, _form(decision="sar", note="Funds from a mixer."))
    case.refresh_from_db()
    assert case.status == CaseStatus.SAR_FILED and case.account_frozen and case.decided_by == admin_client_otp.user
    closed = admin_client_otp.post(url, _form(decision="clear", note="x"))
    assert closed.status_code == 200 and b"This case is closed" in closed.content
    actions = list(
        AuditRecord.objects.filter(target_type="compliance.amlcase", target_id=str(case.pk), action__startswith="aml.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "aml.case_opened",
        "aml.case_assigned",
        "aml.case_commented",
        "aml.case_account_frozen",
        "aml.case_sar_filed",
    ]


def test_a_rule_version_is_added_then_made_live(admin_client_otp):
    live = AmlRuleVersion.objects.get(code="STRUCTURING", live=True)
    definition = dict(live.definition, bands=[{"label": "several", "lower": "4", "score": 40}])
    bad = admin_client_otp.post("/admin/compliance/amlruleversion/add/", {"code": "STRUCTURING", "definition": "{}"})
    assert bad.status_code == 200 and b"Not a rule definition" in bad.content
    added = admin_client_otp.post(
        "/admin/compliance/amlruleversion/add/",
        {"code": "structuring", "definition": json.dumps(definition), "note": "four, not three"},
    )
    assert added.status_code == 302
    v2 = AmlRuleVersion.objects.get(code="STRUCTURING", version=2)
    assert not v2.live and v2.definition["bands"][0]["lower"] == "4"
    admin_client_otp.post(
        "/admin/compliance/amlruleversion/",
        {"action": "make_live", "_selected_action": [v2.pk]},
    )
    assert list(AmlRuleVersion.objects.filter(code="STRUCTURING", live=True).values_list("version", flat=True)) == [2]
    assert AuditRecord.objects.filter(action="aml.rule_version_live", target_id=str(v2.pk)).exists()
