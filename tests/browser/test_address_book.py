"""End to end in a real browser, at desktop and phone width: save a withdrawal address, turn
whitelist-only withdrawals on, see a withdrawal to another address refused and one to the
saved address (once usable) accepted, then cancel pending withdrawals and see the holds released."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import KycProfile, KycStatus, User
from ledger.models import Withdrawal, WithdrawalAddress, WithdrawalStatus
from ledger.selectors import balance_of
from ledger.services import deposit_credit, withdrawal_create
from notifications.models import Notification
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.factories import DEFAULT_PASSWORD, UserFactory, enable_totp, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SAVED = "0x52908400098527886E0F7030069857D2E4169EE7"
OTHER = "0x" + "ab" * 20


def path_is(path: str):
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


def cell(page, asset: str, field: str):
    return page.locator(f"#balances tr[data-asset={asset}] [data-field={field}]")


def test_address_book_whitelist_and_cancel(page, context, browser, live_server_url, screenshot_dir):
    user = UserFactory()
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED, full_name="Ada Lovelace", country="GB")
    deposit_credit(user=user, asset="USDT", amount=Decimal("1000"), txid=f"browser-book-{user.pk}")

    page.set_viewport_size(DESKTOP)
    page.goto("/login/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    device = enable_totp(user)  # withdrawals need 2FA; the session signed in before it

    # --- Save an address, turn whitelist-only on ------------------------------------------------
    page.goto("/wallet/")
    book = page.locator("#address-book")
    expect(book.locator("[data-field=whitelist-mode]")).to_have_text("Whitelist-only off")
    form = page.locator("#address-form")
    form.locator("select[name=asset]").select_option("USDT")
    form.locator("input[name=label]").fill("Cold wallet")
    form.locator("input[name=address]").fill("not-an-address")
    form.get_by_role("button", name="Save address").click()
    expect(page.locator("#address-form .field-errors")).to_contain_text("Invalid address format")
    page.locator("#address-form input[name=address]").fill(SAVED)
    page.locator("#address-form").get_by_role("button", name="Save address").click()
    expect(page).to_have_url(path_is("/wallet/"))
    expect(page.locator(".messages")).to_contain_text("Address “Cold wallet” saved: usable from")
    row = page.locator("#withdrawal-addresses tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Cold wallet")
    expect(row.locator("[data-field=usable]")).to_contain_text("From")

    page.locator("#whitelist-form").get_by_role("button", name="Turn whitelist-only on").click()
    expect(page.locator("#address-book [data-field=whitelist-mode]")).to_have_text("Whitelist-only on")
    assert User.objects.get(pk=user.pk).withdrawal_whitelist_only is True

    # --- Withdrawals: another address refused; the saved one once usable accepted ---------------
    withdraw = page.locator("#withdraw-form")
    withdraw.locator("select[name=asset]").select_option("USDT")
    withdraw.locator("input[name=amount]").fill("100")
    withdraw.locator("input[name=address]").fill(OTHER)
    withdraw.locator("input[name=otp]").fill(totp_code(device))
    withdraw.get_by_role("button", name="Request withdrawal").click()
    expect(page.locator("#withdraw-form .field-errors")).to_contain_text("Not in your address book")
    assert not Withdrawal.objects.filter(user=user).exists()

    WithdrawalAddress.objects.filter(user=user).update(usable_at=timezone.now() - timedelta(minutes=1))
    page.goto("/wallet/")
    expect(page.locator("#withdrawal-addresses [data-field=usable]")).to_have_text("Usable")
    withdraw = page.locator("#withdraw-form")
    withdraw.locator("select[name=asset]").select_option("USDT")
    withdraw.locator("input[name=amount]").fill("100")
    withdraw.locator("input[name=address]").fill(SAVED)
    withdraw.locator("input[name=otp]").fill(totp_code(device))  # the refusal above did not spend it
    withdraw.get_by_role("button", name="Request withdrawal").click()
    expect(page.locator(".messages")).to_contain_text(re.compile(r"Withdrawal of 100(\.00)? USDT requested"))
    expect(cell(page, "USDT", "held")).to_have_text(re.compile(r"^101(\.0+)?$"))

    # --- Cancel it: the hold is released --------------------------------------------------------
    withdrawal = Withdrawal.objects.get(user=user)
    row = page.locator(f"#withdrawals tr[data-withdrawal='{withdrawal.pk}']")
    expect(row).to_have_attribute("data-status", "pending")
    page.screenshot(path=str(screenshot_dir / "address-book-desktop.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    row.get_by_role("button", name="Cancel").click()
    expect(page.locator(".messages")).to_contain_text(re.compile(r"Withdrawal of 100(\.00)? USDT cancelled"))
    row = page.locator(f"#withdrawals tr[data-withdrawal='{withdrawal.pk}']")
    expect(row).to_have_attribute("data-status", "cancelled")
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(cell(page, "USDT", "held")).to_have_text(re.compile(r"^0(\.0+)?$"))
    expect(cell(page, "USDT", "available")).to_have_text(re.compile(r"^1,?000(\.0+)?$"))
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.CANCELLED
    assert Notification.objects.filter(user=user, kind="withdrawal_updated", data__status="cancelled").count() == 1

    # --- Phone width: the address book fits, and a second withdrawal is cancelled there --------
    second = withdrawal_create(user=user, asset="USDT", amount=Decimal("50"), address=SAVED)
    phone = phone_context(browser, live_server_url, context.storage_state())
    try:
        mobile = phone.new_page()
        mobile.goto("/wallet/")
        expect(mobile.locator("#withdrawal-addresses")).to_contain_text("Cold wallet")
        expect(mobile.locator("#whitelist-form input[name=otp]")).to_be_visible()
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        boxes = mobile.locator(".table-scroll").evaluate_all("els => els.map(el => el.getBoundingClientRect().right)")
        assert all(right <= PHONE["width"] for right in boxes), boxes
        # the address book's Delete is on screen, not behind a sideways scroll
        delete = mobile.locator("#withdrawal-addresses tbody button").evaluate_all(
            "els => els.map(el => [el.getBoundingClientRect().right,"
            " el.closest('.table-scroll').getBoundingClientRect().right])"
        )
        assert len(delete) == 1 and all(right <= box for right, box in delete), delete
        mobile.screenshot(path=str(screenshot_dir / "address-book-phone.png"), full_page=True)
        cancel = mobile.locator(f"#withdrawals tr[data-withdrawal='{second.pk}']").get_by_role("button", name="Cancel")
        cancel.scroll_into_view_if_needed()
        cancel.click()
        expect(mobile.locator(".messages")).to_contain_text(re.compile(r"Withdrawal of 50(\.00)? USDT cancelled"))
        expect(mobile.locator(f"#withdrawals tr[data-withdrawal='{second.pk}']")).to_have_attribute(
            "data-status", "cancelled"
        )
    finally:
        phone.close()

    usdt = balance_of(user=user, asset="USDT")
    assert (usdt.available, usdt.held) == (Decimal("1000"), Decimal("0"))
