"""Editing an open order on the trading page, in a real browser against daphne and a real
``run_engine`` process (the fixtures of ``test_trading``): the row's Edit opens an inline
form, Save amends the order through ``PATCH /api/v1/orders/{id}``, the engine applies it and
the row and the hold follow; a refusal is explained in the form. At desktop and phone width.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from ledger.selectors import balance_of
from orders.models import SpotAmend, SpotOrder
from tests.orders.spot.conftest import funded_trader

from .screens import DESKTOP, PHONE, phone_context
from .test_trading import (  # noqa: F401 (engine and maker are fixtures)
    LIVE_MS,
    SYMBOL,
    engine,
    maker,
    place,
    resting,
    sign_in,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("maker")]


def edit_form(page, order: SpotOrder):
    row = page.locator(f"#open-orders tr[data-order='{order.pk}']")
    expect(row).to_be_visible(timeout=LIVE_MS)
    row.get_by_role("button", name="Edit").click()
    form = page.locator(f"#open-orders form[data-amend='{order.pk}']")
    expect(form).to_be_visible()
    return row, form


def test_edit_an_open_order_inline_at_desktop_and_phone_width(page, browser, live_server_url, screenshot_dir):
    trader = funded_trader(usdt="10000", btc="0")
    order = place(trader, "buy", "64000", "0.01")
    resting(order)
    page.set_viewport_size(DESKTOP)
    sign_in(page, trader)

    row, form = edit_form(page, order)
    expect(form.locator("input[name=price]")).to_have_value("64000")
    # a price far from the index: refused, explained in the form, nothing changes
    form.locator("input[name=price]").fill("1")
    form.get_by_role("button", name="Save").click()
    message = form.locator("[data-field=amend-message]")
    expect(message).to_have_class(re.compile(r"\bdown\b"))
    expect(message).not_to_have_text("")
    assert SpotAmend.objects.filter(order=order).count() == 0

    form.locator("input[name=price]").fill("64500")
    form.locator("input[name=quantity]").fill("0.02")
    form.get_by_role("button", name="Save").click()
    expect(row.locator("[data-field=price]")).to_have_text("64,500.00", timeout=LIVE_MS)
    expect(row.locator("[data-field=quantity]")).to_contain_text("0.02")
    expect(page.locator(f"#open-orders form[data-amend='{order.pk}']")).to_have_count(0)
    order.refresh_from_db()
    assert (order.price, order.quantity, order.hold_amount) == (Decimal("64500"), Decimal("0.02"), Decimal("1290"))
    assert balance_of(user=trader, asset="USDT").held == Decimal("1290")
    # the trader is told in the app: a toast from the bell while the page is open
    toast = page.locator(".toast[data-kind=order_amended]")
    expect(toast).to_contain_text(f"Buy BTC-USDT order {order.pk} changed", timeout=LIVE_MS)
    page.screenshot(path=str(screenshot_dir / "trading-amend-desktop.png"), full_page=False)

    phone = phone_context(browser, live_server_url, page.context.storage_state())
    try:
        mobile = phone.new_page()
        mobile.goto(f"/markets/{SYMBOL}/")
        expect(mobile.locator("#spot-ticket")).to_have_attribute("data-ready", "true")
        row, form = edit_form(mobile, order)
        box = form.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        form.locator("input[name=quantity]").fill("0.015")
        form.get_by_role("button", name="Save").click()
        expect(row.locator("[data-field=quantity]")).to_contain_text("0.015", timeout=LIVE_MS)
        wait_for(lambda: SpotOrder.objects.get(pk=order.pk).quantity == Decimal("0.015"), "the smaller amount")
        amend = SpotAmend.objects.filter(order=order).latest("id")
        assert amend.priority_kept is True
        assert balance_of(user=trader, asset="USDT").held == Decimal("967.5")
        mobile.screenshot(path=str(screenshot_dir / "trading-amend-phone.png"), full_page=False)
        # both changes are on the notifications page, newest first, and it fits the phone
        mobile.goto("/notifications/")
        notices = mobile.locator(".notice", has_text=f"order {order.pk} changed")
        expect(notices).to_have_count(2)
        expect(notices.first.locator(".notice-body")).to_have_text(
            "Now quantity 0.015 BTC. It kept its place in the queue."
        )
        expect(notices.last.locator(".notice-body")).to_have_text(
            "Now price 64,500.00 USDT and quantity 0.02 BTC. It moved to the back of the queue at its price."
        )
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        phone.close()
