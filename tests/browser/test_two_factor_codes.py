"""Authenticator codes on the account and wallet pages, in a real browser at desktop and phone
width (issue 18, defects 14 and 15):

* with 2FA off, the password and email forms ask for no authenticator code; once it is on,
  both do;
* turning 2FA on and withdrawing with the same code in the same 30 s says the code was
  already used and to wait for the next one (it said "Invalid or already used code", with no
  hint); the next code goes through, and using that one twice says the same again.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from accounts.models import KycProfile, KycStatus
from ledger.models import Withdrawal
from ledger.selectors import balance_of
from tests.browser.screens import DESKTOP, phone_context
from tests.factories import DEFAULT_PASSWORD
from tests.orders.spot.conftest import funded_trader

from .test_signup_2fa_kyc import code_for, wait_for_step_after

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ERC20_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"
HINT = "Already used: wait for the next code."


def code_fields(page, heading: str):
    section = page.locator("section", has=page.get_by_role("heading", name=heading, exact=True))
    return section.locator("input[autocomplete=one-time-code]")


def withdraw(page, code: str) -> None:
    form = page.locator("#withdraw-form")
    form.locator("select[name=asset]").select_option("USDT")
    form.locator("input[name=amount]").fill("100")
    form.locator("input[name=address]").fill(ERC20_ADDRESS)
    form.locator("input[name=otp]").fill(code)
    form.get_by_role("button", name="Request withdrawal").click()


def told_to_wait(page) -> None:
    errors = page.locator("#withdraw-form .field-invalid:has(input[name=otp]) .field-errors")
    expect(errors).to_have_text(HINT)
    expect(page.locator("#withdraw-form")).not_to_contain_text("Invalid or already used code")
    box = errors.bounding_box()
    width = page.viewport_size["width"]
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_codes_asked_only_with_2fa_on_and_a_used_code_says_wait_for_the_next(
    page, context, browser, live_server_url, screenshot_dir
):
    trader = funded_trader(usdt="1000", btc="0")
    KycProfile.objects.filter(user=trader).update(status=KycStatus.APPROVED, full_name="Ada Lovelace", country="GB")

    page.set_viewport_size(DESKTOP)
    page.goto("/login/?next=/account/")
    page.fill("input[name=email]", trader.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/account/$"))

    # --- defect 14: no code asked while 2FA is off --------------------------------------------------
    expect(page.locator("#two-factor-status")).to_contain_text("Off")
    for heading in ("Change password", "Change email"):
        expect(code_fields(page, heading)).to_have_count(0)
    phone = phone_context(browser, live_server_url, context.storage_state())
    mobile = phone.new_page()
    mobile.goto("/account/")
    for heading in ("Change password", "Change email"):
        expect(code_fields(mobile, heading)).to_have_count(0)
        expect(mobile.locator("section", has=mobile.get_by_role("heading", name=heading))).to_be_visible()

    # --- turn 2FA on with a code -----------------------------------------------------------------------
    page.goto("/account/2fa/")
    secret = page.locator("#totp-secret").inner_text().strip()
    while time.time() % 30 > 12:  # early in a 30 s step: the withdrawal below falls in the same one
        time.sleep(0.25)
    confirm_code, confirm_step = code_for(secret)
    page.fill("input[name=otp]", confirm_code)
    page.get_by_role("button", name="Enable 2FA").click()
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.locator("#two-factor-status")).to_contain_text("On")
    for heading in ("Change password", "Change email"):
        expect(code_fields(page, heading)).to_have_count(1)

    # --- defect 15: the same code for a withdrawal at once: wait for the next -------------------------
    page.goto("/wallet/")
    withdraw(page, confirm_code)
    told_to_wait(page)
    assert code_for(secret)[1] == confirm_step  # it was the same 30 s
    assert not Withdrawal.objects.filter(user=trader).exists()
    assert balance_of(user=trader, asset="USDT").available == Decimal("1000")
    page.screenshot(path=str(screenshot_dir / "otp-wait-for-next-desktop.png"), full_page=False)

    # --- the phone: both forms ask for the code now; the next code goes through; the same code
    # again says to wait
    try:
        mobile.goto("/account/")
        for heading in ("Change password", "Change email"):
            expect(code_fields(mobile, heading)).to_have_count(1)
        assert mobile.evaluate("document.documentElement.scrollWidth") <= mobile.viewport_size["width"]
        mobile.goto("/wallet/")
        wait_for_step_after(confirm_step)
        code, _ = code_for(secret)
        withdraw(mobile, code)
        expect(mobile.locator(".messages")).to_contain_text("Withdrawal of 100.00 USDT requested")
        assert Withdrawal.objects.filter(user=trader).count() == 1
        withdraw(mobile, code)
        told_to_wait(mobile)
        assert Withdrawal.objects.filter(user=trader).count() == 1
        mobile.screenshot(path=str(screenshot_dir / "otp-wait-for-next-phone.png"), full_page=False)
    finally:
        phone.close()
