"""End to end in a real browser: sign up, turn on 2FA, sign in with a code, submit KYC."""

from __future__ import annotations

import base64
import datetime as dt
import re
import struct
import time
import uuid
import zlib

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from accounts.models import KycProfile, KycStatus
from tests.browser.screens import phone_context
from tests.factories import DEFAULT_PASSWORD, UserFactory, enable_totp, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STRONG_PASSWORD = "Violet-Harbor-Lantern-47"
TOTP_STEP = 30


def tiny_png() -> bytes:
    """A real, valid 1x1 RGB PNG (signature, IHDR, IDAT, IEND with correct CRCs)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit, truecolour
    idat = zlib.compress(b"\x00\x30\x60\xc0")  # filter byte + one RGB pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def code_for(secret: str, *, at: float | None = None) -> tuple[str, int]:
    """The code an authenticator shows for ``secret`` (unpadded base32), and its time step."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    now = time.time() if at is None else at
    totp = TOTP(key, step=TOTP_STEP, digits=6)
    totp.time = now
    return f"{totp.token():06d}", int(now // TOTP_STEP)


def wait_for_step_after(step: int) -> None:
    """A code is accepted once per 30 s step: wait until a later step has begun."""
    while int(time.time() // TOTP_STEP) <= step:
        time.sleep(0.25)


def path_is(path: str):
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


def test_signup_2fa_login_and_kyc(page, context, browser, live_server_url, screenshot_dir):
    email = f"trader-{uuid.uuid4().hex[:10]}@example.com"

    # --- Sign up --------------------------------------------------------------------
    page.goto("/signup/")
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", STRONG_PASSWORD)
    page.fill("input[name=password_confirm]", STRONG_PASSWORD)
    page.get_by_role("button", name="Create account").click()

    # --- Lands on 2FA setup -------------------------------------------------------------
    expect(page).to_have_url(path_is("/account/2fa/"))
    expect(page.locator(".messages")).to_contain_text("Your account is ready")
    expect(page.locator(".qr-box svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), f"unexpected secret format: {secret!r}"
    expect(page.locator("#otpauth-url")).to_contain_text("otpauth://totp/")

    confirm_code, confirm_step = code_for(secret)
    page.fill("input[name=otp]", confirm_code)
    page.get_by_role("button", name="Enable 2FA").click()

    # --- Account page shows 2FA on ----------------------------------------------------
    expect(page).to_have_url(path_is("/account/"))
    expect(page.locator(".messages")).to_contain_text("Two-factor authentication is on")
    expect(page.locator("#two-factor-status")).to_contain_text("On")
    expect(page.locator("#account-email")).to_have_text(email)
    expect(page.locator("#kyc-status")).to_contain_text("Not submitted")

    # --- Log out ----------------------------------------------------------------------------
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(path_is("/login/"))
    expect(page.locator(".messages")).to_contain_text("You are signed out")
    expect(page.get_by_role("link", name="Sign up")).to_be_visible()

    # --- Log in: password, then a code from a later time step -----------------------------
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(path_is("/login/otp/"))
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    # Not signed in yet: the nav still offers "Log in".
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)

    wait_for_step_after(confirm_step)
    login_code, login_step = code_for(secret)
    assert login_step > confirm_step
    page.fill("input[name=otp]", login_code)
    page.get_by_role("button", name="Verify").click()

    # signed in, the trader lands on the trade page (the markets list while none is listed)
    expect(page).to_have_url(re.compile(r"/markets/(BTC-USDT/)?$"))
    page.goto("/account/")
    expect(page.locator("#account-email")).to_have_text(email)
    expect(page.locator("#two-factor-status")).to_contain_text("On")

    # --- KYC --------------------------------------------------------------------------------------
    page.goto("/account/kyc/")
    expect(page.locator("#kyc-status")).to_have_attribute("data-status", "none")
    page.fill("input[name=full_name]", "Ada Marie Lovelace")
    page.fill("input[name=country]", "DE")
    adult_birthday = dt.date.today().replace(year=dt.date.today().year - 30, day=1)
    page.fill("input[name=date_of_birth]", adult_birthday.isoformat())
    page.set_input_files(
        "input[name=document]", files=[{"name": "passport.png", "mimeType": "image/png", "buffer": tiny_png()}]
    )
    page.get_by_role("button", name="Submit for review").click()

    expect(page).to_have_url(path_is("/account/kyc/"))
    expect(page.locator(".messages")).to_contain_text("under review")
    expect(page.locator("#kyc-status")).to_have_attribute("data-status", "pending")
    expect(page.locator("#kyc-status-label")).to_have_text("Pending review")
    expect(page.get_by_role("button", name="Submit for review")).to_have_count(0)

    profile = KycProfile.objects.get(user__email=email)
    assert profile.status == KycStatus.PENDING
    assert profile.full_name == "Ada Marie Lovelace"
    assert profile.country == "DE"
    assert profile.date_of_birth == adult_birthday
    assert profile.document_content_type == "image/png"
    assert profile.submitted_at is not None

    # --- Account page reflects it; screenshots at desktop and phone width -----------------
    page.goto("/account/")
    expect(page.locator("#kyc-status")).to_contain_text("Pending review")
    expect(page.locator("#kyc-tier")).to_have_text("Tier 0")
    # 2FA on => a notification was created; the nav badge shows it.
    expect(page.locator(".nav-badge")).to_have_text("1")
    page.screenshot(path=str(screenshot_dir / "account-desktop.png"), full_page=True)

    phone = phone_context(browser, live_server_url, context.storage_state())
    try:
        mobile = phone.new_page()
        mobile.goto("/account/")
        expect(mobile.locator("#account-email")).to_have_text(email)
        # The nav collapses behind the toggle at phone width.
        nav_link = mobile.get_by_role("link", name="Verification")
        expect(nav_link).to_be_hidden()
        # No horizontal scrolling at phone width.
        assert mobile.evaluate("document.documentElement.scrollWidth") <= 390
        mobile.screenshot(path=str(screenshot_dir / "account-phone.png"), full_page=True)
        mobile.locator("[data-nav-toggle]").click()
        expect(nav_link).to_be_visible()
        mobile.screenshot(path=str(screenshot_dir / "account-phone-nav-open.png"))
    finally:
        phone.close()


def test_wrong_otp_at_login_shows_error_and_does_not_sign_in(page, live_server_url):
    user = UserFactory()
    device = enable_totp(user)
    wrong_code = totp_code(device, offset_steps=10)  # well-formed, far outside the tolerance window

    page.goto("/login/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(path_is("/login/otp/"))

    page.fill("input[name=otp]", wrong_code)
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(path_is("/login/otp/"))
    expect(page.locator(".field-errors")).to_contain_text("Invalid or already used code")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)

    # The session is not signed in: the account page sends us to the login form.
    page.goto("/account/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/account/$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    device.refresh_from_db()
    assert device.throttling_failure_count == 1
