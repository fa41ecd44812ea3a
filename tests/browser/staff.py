"""Signing in to the staff console in a browser, as staff do: password and TOTP code."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD, UserFactory, enable_totp, totp_code


def staff_sign_in(page, next_path: str = "/admin/"):
    """A new superuser with 2FA signs in and lands on ``next_path``; answers the user."""
    staff = UserFactory(is_staff=True, is_superuser=True)
    device = enable_totp(staff)
    page.goto(f"/admin/login/?next={next_path}")
    page.fill("input[name=username]", staff.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.fill("input[name=otp_token]", totp_code(device))
    page.locator("input[type=submit], button[type=submit]").first.click()
    expect(page).to_have_url(re.compile(re.escape(next_path) + "$"))
    return staff
