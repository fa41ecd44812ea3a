"""End to end in a real browser: sign in with 2FA, take demo funds from the faucet, read the
deposit address, request a withdrawal (held with its fee), and see a bad address refused."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django_otp.oath import TOTP
from playwright.sync_api import expect

from accounts.models import KycProfile, KycStatus
from ledger.models import Withdrawal, WithdrawalStatus
from ledger.selectors import balance_of
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.factories import DEFAULT_PASSWORD, UserFactory, enable_totp

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ERC20_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"


def code_and_step(device) -> tuple[str, int]:
    """The code the device's authenticator shows now, and the 30 s step it belongs to
    (computed from one instant, so the two cannot straddle a step boundary)."""
    now = time.time()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = now
    return f"{totp.token():0{device.digits}d}", int((now - device.t0) // device.step)


def wait_for_step_after(device, step: int) -> None:
    """A code is accepted once per step: wait until a later step has begun."""
    while int((time.time() - device.t0) // device.step) <= step:
        time.sleep(0.2)


def path_is(path: str):
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


def cell(page, asset: str, field: str):
    return page.locator(f"#balances tr[data-asset={asset}] [data-field={field}]")


def assert_fits_viewport(page, width: int) -> None:
    """No horizontal scrolling of the page itself (wide tables scroll inside their box)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_wallet_faucet_deposit_address_and_withdrawal(page, context, browser, live_server_url, screenshot_dir):
    user = UserFactory()
    device = enable_totp(user)
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED, full_name="Ada Lovelace", country="GB")

    # --- Sign in: password, then a code ------------------------------------------------------
    page.set_viewport_size(DESKTOP)
    page.goto("/login/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(path_is("/login/otp/"))
    login_code, login_step = code_and_step(device)
    page.fill("input[name=otp]", login_code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    # --- Wallet page: empty balances, demo faucet ------------------------------------------------
    page.get_by_role("link", name="Wallet").click()
    expect(page).to_have_url(path_is("/wallet/"))
    expect(page.get_by_role("heading", name="Wallet", exact=True)).to_be_visible()
    expect(cell(page, "USDT", "available")).to_have_text("0.00")

    page.locator("[data-faucet=USDT]").click()
    expect(page).to_have_url(path_is("/wallet/"))
    expect(page.locator(".messages")).to_contain_text("Demo faucet: 10,000.00 USDT credited")
    expect(cell(page, "USDT", "available")).to_have_text("10,000.00")
    expect(cell(page, "USDT", "held")).to_have_text("0.00")
    expect(cell(page, "USDT", "total")).to_have_text("10,000.00")
    expect(page.locator("#history tr[data-code=faucet]")).to_contain_text("+10,000.00")

    # --- Deposit address --------------------------------------------------------------------------
    btc_address = page.locator("[data-deposit-address=BTC]")
    expect(btc_address).to_be_visible()
    assert btc_address.inner_text().strip().startswith("bc1")
    assert re.fullmatch(r"0x[0-9a-f]{40}", page.locator("[data-deposit-address=USDT]").inner_text().strip())

    # --- Withdraw 100 USDT with a code from a later step than the login code --------------------
    form = page.locator("#withdraw-form")
    form.locator("select[name=asset]").select_option("USDT")
    form.locator("input[name=amount]").fill("100")
    form.locator("input[name=address]").fill(ERC20_ADDRESS)
    wait_for_step_after(device, login_step)
    withdraw_code, withdraw_step = code_and_step(device)
    assert withdraw_step > login_step
    form.locator("input[name=otp]").fill(withdraw_code)
    form.get_by_role("button", name="Request withdrawal").click()

    expect(page).to_have_url(path_is("/wallet/"))
    expect(page.locator(".messages")).to_contain_text("Withdrawal of 100.00 USDT requested")
    expect(cell(page, "USDT", "available")).to_have_text("9,899.00")
    expect(cell(page, "USDT", "held")).to_have_text("101.00")
    expect(cell(page, "USDT", "total")).to_have_text("10,000.00")

    withdrawal = Withdrawal.objects.get(user=user)
    row = page.locator(f"#withdrawals tr[data-withdrawal='{withdrawal.pk}']")
    expect(row).to_have_attribute("data-status", "pending")
    expect(row).to_contain_text("Pending")
    expect(row.locator("[data-field=amount]")).to_have_text("100.00")
    expect(row.locator("[data-field=fee]")).to_have_text("1.00")
    held = page.locator("#history tr[data-code=withdrawal]")
    expect(held).to_have_count(1)
    expect(held).to_contain_text("Held")
    expect(held.locator("[data-field=label]")).to_have_text("Withdrawal hold")
    expect(held.locator("[data-field=amount]")).to_have_text("−100.00")
    expect(page.locator("#history tr[data-code=withdrawal_fee]")).to_contain_text("Held")

    # --- Screenshots: desktop and phone width -------------------------------------------------------
    page.screenshot(path=str(screenshot_dir / "wallet-desktop.png"), full_page=True)
    assert_fits_viewport(page, DESKTOP["width"])
    phone = phone_context(browser, live_server_url, context.storage_state())
    try:
        mobile = phone.new_page()
        mobile.goto("/wallet/")
        expect(cell(mobile, "USDT", "available")).to_have_text("9,899.00")
        expect(mobile.locator("[data-deposit-address=BTC]")).to_be_visible()
        expect(mobile.locator("[data-faucet=USDT]")).to_be_visible()
        mobile.screenshot(path=str(screenshot_dir / "wallet-phone.png"), full_page=True)
        assert_fits_viewport(mobile, PHONE["width"])
        # Wide tables scroll inside boxes that stay within the screen; the balances fit whole.
        boxes = mobile.locator(".table-scroll").evaluate_all(
            "els => els.map(el => [el.getBoundingClientRect().right, el.scrollWidth, el.clientWidth])"
        )
        assert len(boxes) == 3
        assert all(right <= PHONE["width"] for right, _, _ in boxes), boxes
        balances_box = mobile.locator(".table-scroll:has(#balances)")
        assert balances_box.evaluate("el => el.scrollWidth <= el.clientWidth"), "the balances table is cut off"
    finally:
        phone.close()

    # --- A bad address: error under the field, nothing changes -----------------------------------
    form = page.locator("#withdraw-form")
    form.locator("select[name=asset]").select_option("USDT")
    form.locator("input[name=amount]").fill("100")
    form.locator("input[name=address]").fill("0x1234-not-an-address")
    form.locator("input[name=otp]").fill(code_and_step(device)[0])
    form.get_by_role("button", name="Request withdrawal").click()

    address_errors = page.locator("#withdraw-form .field-invalid:has(input[name=address]) .field-errors")
    expect(address_errors).to_contain_text("Invalid address format")
    expect(page.locator("#withdraw-form .field-invalid")).to_have_count(1)
    expect(page.locator("#withdraw-form input[name=address]")).to_have_value("0x1234-not-an-address")
    expect(cell(page, "USDT", "available")).to_have_text("9,899.00")
    expect(cell(page, "USDT", "held")).to_have_text("101.00")
    expect(page.locator("#withdrawals tbody tr")).to_have_count(1)
    expect(page.locator(".messages")).to_have_count(0)

    # --- The database agrees, and the ledger audits clean ------------------------------------------
    assert Withdrawal.objects.filter(user=user).count() == 1
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.PENDING
    assert (withdrawal.asset, withdrawal.amount, withdrawal.fee, withdrawal.address) == (
        "USDT",
        Decimal("100"),
        Decimal("1"),
        ERC20_ADDRESS,
    )
    usdt = balance_of(user=user, asset="USDT")
    assert (usdt.available, usdt.held, usdt.total) == (Decimal("9899"), Decimal("101"), Decimal("10000"))
    btc = balance_of(user=user, asset="BTC")
    assert (btc.available, btc.held, btc.total) == (0, 0, 0)
    device.refresh_from_db()
    assert device.last_t == withdraw_step
    assert device.throttling_failure_count == 0

    out = StringIO()
    call_command("ledger_audit", stdout=out, stderr=StringIO())
    assert "ledger audit OK" in out.getvalue()
