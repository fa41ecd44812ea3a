"""End to end in a real browser, at desktop and phone width: the account page lists the
trader's sessions (this one marked) and recent sign-ins; signing the other sessions out
sends the other browser back to the sign-in page; the anti-phishing code is saved."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.browser.screens import PHONE, phone_context
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def sign_in(page, user) -> None:
    page.goto("/login/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login/"))  # signed in: the landing page


def test_sessions_sign_ins_and_anti_phishing_code(page, browser, live_server_url, screenshot_dir):
    user = UserFactory()
    sign_in(page, user)
    phone = phone_context(browser, live_server_url)
    try:
        mobile = phone.new_page()
        sign_in(mobile, user)

        # --- Desktop: both sessions, this one marked; the sign-ins -------------------------------
        page.goto("/account/")
        rows = page.locator("#sessions tbody tr[data-session-id]")
        expect(rows).to_have_count(2)
        expect(page.locator("#sessions tr[data-current]")).to_contain_text("This session")
        expect(page.locator("#sign-ins tbody tr")).to_have_count(2)
        expect(page.locator("#sign-ins tbody tr").first).to_contain_text("Password")

        # --- The anti-phishing code ------------------------------------------------------------
        form = page.locator("#anti-phishing-form")
        form.locator("input[name=code]").fill("no")
        form.get_by_role("button", name="Save code").click()
        expect(page.locator("#anti-phishing-form .field-errors, #anti-phishing-form .form-errors")).to_contain_text(
            "4 to 20"
        )
        page.locator("#anti-phishing-form input[name=code]").fill("blue-harbor-42")
        page.locator("#anti-phishing-form").get_by_role("button", name="Save code").click()
        expect(page.locator(".messages")).to_contain_text("Anti-phishing code saved")
        assert User.objects.get(pk=user.pk).anti_phishing_code == "blue-harbor-42"

        # --- Phone width: the sections fit; then the desktop signs the phone out ----------------
        mobile.goto("/account/")
        expect(mobile.locator("#sessions tbody tr[data-session-id]")).to_have_count(2)
        expect(mobile.locator("#sessions tr[data-current]")).to_be_visible()
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # each session's sign-out button is on screen, not behind a sideways scroll
        buttons = mobile.locator("#sessions tbody button").evaluate_all(
            "els => els.map(el => [el.getBoundingClientRect().right,"
            " el.closest('.table-scroll').getBoundingClientRect().right])"
        )
        assert len(buttons) == 2 and all(right <= box for right, box in buttons), buttons
        mobile.locator("#sessions-panel").screenshot(path=str(screenshot_dir / "sessions-phone.png"))

        page.goto("/account/")
        page.get_by_role("button", name="Sign out all other sessions").click()
        expect(page.locator(".messages")).to_contain_text("Signed out 1 other session.")
        expect(page.locator("#sessions tbody tr[data-session-id]")).to_have_count(1)
        page.locator("#sessions-panel").screenshot(path=str(screenshot_dir / "sessions-desktop.png"))

        mobile.goto("/account/")
        expect(mobile).to_have_url(re.compile(r"/login/"))
    finally:
        phone.close()
