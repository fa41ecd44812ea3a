"""End to end in a real browser: a staff member signs in to the admin and the analytics
dashboard draws the last hour's orders and trades, the volume, settlement lag and alerts from
GET /api/v1/ops/analytics and the counter's exposure from its own endpoint, at desktop and
phone width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.screens import DESKTOP, PHONE
from tests.browser.staff import staff_sign_in
from tests.ops.test_analytics import history, markets  # noqa: F401  (the fixtures: real trades)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_analytics_dashboard(page, live_server_url, screenshot_dir, history):  # noqa: F811
    page.set_viewport_size(DESKTOP)
    staff_sign_in(page, "/admin/ops/dailyaggregate/dashboard/")

    expect(page.locator("#analytics-status")).to_have_text(re.compile(r"^As of "))
    # 61 minutes, two bars each; today's three trades and six orders are in the title texts
    expect(page.locator("#per-minute svg rect")).to_have_count(122)
    titles = " ".join(page.locator("#per-minute svg rect.trades title").all_text_contents())
    assert sum(int(n) for n in re.findall(r"(\d+) trades", titles)) == 3
    assert sum(int(n) for n in re.findall(r"(\d+) orders", titles)) == 6
    expect(page.locator('[data-figure="trades:ETH-USDT"]')).to_have_text("1")
    expect(page.locator('[data-figure="volume:ETH-USDT"]')).to_have_text("1.5 / 5100 USDT")
    expect(page.locator('[data-figure="waiting"]')).to_have_text("0")
    expect(page.locator('[data-figure="alerts_total"]')).to_have_text("0")
    # the exposure panel comes from the second endpoint, after the first poll
    expect(page.locator("#exposure-body dt", has_text="BTC net delta")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "admin-analytics-desktop.png"), full_page=True)

    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator("#analytics-status")).to_have_text(re.compile(r"^As of "))
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.screenshot(path=str(screenshot_dir / "admin-analytics-phone.png"), full_page=True)
