"""End to end in a real browser: a staff member signs in to the admin with a TOTP code and
the counter's exposure page fills itself from the API, showing the counter short the delta of
the calls a trader bought, at desktop and phone width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from orders.options.services import options_order_place
from tests.browser.screens import DESKTOP, PHONE
from tests.browser.staff import staff_sign_in
from tests.orders.conftest import list_series, pick_series, trader

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_counter_exposure_page(page, live_server_url, screenshot_dir):
    list_series()
    series = pick_series("BTC", "C")
    buyer = trader()
    options_order_place(user=buyer, series=series.symbol, side="buy", contracts="2", limit_price_usdt="999999")
    page.set_viewport_size(DESKTOP)
    staff_sign_in(page, "/admin/orders/optionposition/exposure/")

    btc = page.locator("#exposure section").filter(has_text=re.compile(r"^BTC"))
    expect(btc).to_be_visible()
    expect(page.locator("#exposure-status")).to_have_text(re.compile(r"^As of "))
    # the counter sold 2 calls: it is short their delta (between 0 and -2 BTC)
    delta = btc.locator("dt", has_text="Net delta").locator("xpath=following-sibling::dd[1]")
    expect(delta).to_have_text(re.compile(r"^-[01]\.\d+ BTC$"))
    contracts = btc.locator("dt", has_text="Contracts open").locator("xpath=following-sibling::dd[1]")
    expect(contracts).to_have_text(re.compile(r"^2(\.0+)?$"))
    page.screenshot(path=str(screenshot_dir / "admin-exposure-desktop.png"), full_page=True)

    page.set_viewport_size(PHONE)
    page.reload()
    expect(btc).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.screenshot(path=str(screenshot_dir / "admin-exposure-phone.png"), full_page=True)
