"""End to end in a real browser: the account page's Limits panel shows each limit with its
usage (amber from 80 %) and the trading state with its reason, at desktop and phone width;
the order ticket shows the largest quantity the limits allow."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from marketdata.services import instruments_sync
from risk import services as risk
from tests.browser.screens import DESKTOP, PHONE
from tests.factories import DEFAULT_PASSWORD
from tests.orders.conftest import INDEX, print_index
from tests.orders.spot.conftest import funded_trader
from tests.risk.helpers import limit_set

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def sign_in(page, user, path):
    page.goto(f"/login/?next={path}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def row(page, name: str, scope: str):
    return page.locator(f"#limits tr[data-limit={name}][data-scope='{scope}']")


def test_limits_panel_and_the_tickets_largest_quantity(page, live_server_url, screenshot_dir):
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)
    user = funded_trader(usdt="100000", btc="45.5")
    limit_set("max_position", "50", target="BTC", user=user)
    risk.trading_state_set(scope="user", target=str(user.pk), state="reduce_only", reason="Margin review", actor=None)

    page.set_viewport_size(DESKTOP)
    sign_in(page, user, "/account/")
    panel = page.locator("#limits-panel")
    expect(panel.locator("[data-field=state]")).to_have_text("Reduce only")
    expect(panel.locator("[data-field=reason]")).to_have_text("Margin review")
    position = row(page, "max_position", "BTC")
    expect(position).to_contain_text("Largest holding")
    expect(position).to_contain_text("50 BTC")
    expect(position).to_contain_text("45.5")
    expect(position.locator(".usage")).to_have_class(re.compile(r"\busage-warn\b"))  # 91 %: past the 80 % mark
    expect(row(page, "buy_band_above", "BTC-USDT")).to_contain_text("10%")
    expect(row(page, "max_open_orders", "Account")).to_contain_text("200")
    expect(row(page, "max_order_quantity", "BTC-USDT")).to_contain_text("per order")
    page.screenshot(path=str(screenshot_dir / "account-limits-desktop.png"), full_page=True)

    page.set_viewport_size(PHONE)
    page.reload()
    expect(row(page, "max_position", "BTC")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(screenshot_dir / "account-limits-phone.png"), full_page=True)

    # the ticket: a buy at 65,000 may add at most the 4.5 BTC left under the holding limit
    page.set_viewport_size(DESKTOP)
    page.goto("/markets/BTC-USDT/")
    page.fill("#order-price", "65000")
    page.fill("#order-quantity", "1")
    expect(page.locator("[data-field=max-quantity]")).to_have_text(re.compile(r"^Max 4\.5(0*) BTC per order$"))
    page.locator("[data-side-choice=sell]").click()
    expect(page.locator("[data-field=max-quantity]")).to_have_text(re.compile(r"^Max 15\.38461 BTC per order$"))
