"""End to end in a real browser: a compliance officer signs in to the admin with a TOTP code,
finds a case in the AML inbox, takes it, comments, escalates, freezes the account and clears
it; each step is in the audit chain and the trader's trading state is halted."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from compliance.models import AmlCase, CaseStatus
from compliance.services import aml_rules_install_defaults
from ledger.services import deposit_credit
from risk.models import TradingState
from tests.browser.staff import staff_sign_in
from tests.factories import UserFactory
from trading.models import AuditRecord

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_case_worked_from_the_inbox(page, live_server_url, screenshot_dir, eager_tasks):
    aml_rules_install_defaults()
    trader = UserFactory()
    deposit_credit(user=trader, asset="USDT", amount=Decimal("60000"), txid="browser-aml-1")
    case = AmlCase.objects.get(user=trader)
    staff = staff_sign_in(page, "/admin/compliance/amlcase/")

    row = page.locator("#result_list tbody tr").filter(has_text=trader.email)
    expect(row).to_contain_text("LARGE_FIRST_DEPOSIT")
    expect(row).to_contain_text("Open")
    page.screenshot(path=str(screenshot_dir / "admin-aml-inbox.png"), full_page=True)
    row.locator("a").first.click()
    expect(page).to_have_url(re.compile(rf"/admin/compliance/amlcase/{case.pk}/change/$"))
    expect(page.locator("body")).to_contain_text("transfer:deposit:USDT:browser-aml-1")

    page.check("input[name=assign_to_me]")
    page.fill("textarea[name=comment]", "Asked the trader where the funds come from.")
    page.select_option("select[name=decision]", "escalate")
    page.fill("textarea[name=note]", "Large first deposit, new account.")
    page.locator("input[name=_continue]").click()
    expect(page.locator(".messagelist")).to_be_visible()
    expect(page.locator(".field-status")).to_contain_text("Escalated")
    expect(page.locator(".field-assignee")).to_contain_text(staff.email)
    expect(page.locator("body")).to_contain_text("Asked the trader where the funds come from.")

    page.select_option("select[name=decision]", "freeze")
    page.locator("input[name=_continue]").click()
    expect(page.locator(".errornote, .errorlist").first).to_be_visible()  # a decision needs a note
    page.fill("textarea[name=note]", "Until the documents arrive.")
    page.locator("input[name=_continue]").click()
    expect(page.locator(".field-account_frozen img[alt=True]")).to_be_visible()

    page.select_option("select[name=decision]", "clear")
    page.fill("textarea[name=note]", "Payslips and bank statement check out.")
    page.locator("input[name=_continue]").click()
    expect(page.locator(".field-status")).to_contain_text("Cleared")
    page.screenshot(path=str(screenshot_dir / "admin-aml-case.png"), full_page=True)

    case.refresh_from_db()
    assert case.status == CaseStatus.CLEARED and case.assignee == staff and case.account_frozen
    assert TradingState.objects.get(scope="user", target=str(trader.pk)).state == "halted"
    actions = list(
        AuditRecord.objects.filter(target_type="compliance.amlcase", target_id=str(case.pk), action__startswith="aml.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "aml.case_opened",
        "aml.case_assigned",
        "aml.case_commented",
        "aml.case_escalated",
        "aml.case_account_frozen",
        "aml.case_cleared",
    ]
