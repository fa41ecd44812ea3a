"""The header fits every common screen width for a signed-in trader, whatever the length of
their email and with unread notifications in the navigation: the page never scrolls sideways."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from notifications.services import notification_create
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = (390, 768, 1024, 1180, 1280, 1366, 1440, 1920)


def test_the_header_fits_every_width(page, live_server_url):
    user = UserFactory(email="a.very-long-name.for-a-trader.2026@subdomain.example.test")
    for n in range(12):
        notification_create(user=user, kind="system", title=f"Unread {n}")
    page.goto("/login/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_attached()
    for path in ("/wallet/", "/portfolio/", "/markets/BTC-USDT/", "/options/"):
        page.goto(path)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{path} at {width} px is {scroll} px wide"
