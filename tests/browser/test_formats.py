"""One number and date format on every page (issue 18, defects 3-7), in a real browser at
desktop and phone width: the wallet's balances and history (labels, signed amounts, a limit
order's hold and its release, a link to the order), the options page's chain, header and
subtitle, and the trader's settings (time zone, light theme) applied to the pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from orders.spot.services import order_request, spot_order_cancel, spot_order_place
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.factories import DEFAULT_PASSWORD
from tests.orders.conftest import IndexTicker, list_series
from tests.orders.spot.conftest import Engine, funded_trader, markets  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MONEY = r"\d{1,3}(,\d{3})*\.\d{2}"  # USDT at its two places, grouped
WHEN = r"\d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d UTC([+-]\d{1,2}(:\d\d)?)?"


def sign_in(page, user, path: str) -> None:
    page.goto(f"/login/?next={path}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + r"(\?.*)?$"))


def phone_page(browser, context, live_server_url):
    return phone_context(browser, live_server_url, context.storage_state())


def check_wallet(page, order_id: int, zone_suffix: str) -> None:
    balances = page.locator("#balances")
    expect(balances.locator("tr[data-asset=USDT] [data-field=available]")).to_have_text("24,609.16")
    expect(balances.locator("tr[data-asset=BTC] [data-field=total]")).to_have_text("8.00")
    expect(balances.locator("tr[data-asset=ETH] [data-field=total]")).to_have_text("0.00")

    history = page.locator("#history")
    hold = history.locator("tr[data-code=spot_hold][data-kind=pending]")
    expect(hold.locator("[data-field=label]")).to_have_text("Order hold")
    expect(hold.locator("[data-field=amount]")).to_have_text("−600.00")
    expect(hold).to_contain_text("Released")
    release = history.locator("tr[data-kind=void_pending]")
    expect(release.locator("[data-field=label]")).to_have_text("Order hold released")
    expect(release.locator("[data-field=amount]")).to_have_text("+600.00")
    link = release.locator("[data-field=reference] a")
    expect(link).to_have_text(f"Spot order #{order_id}")
    expect(link).to_have_attribute("href", f"/markets/BTC-USDT/?order={order_id}")
    deposit = history.locator("tr[data-code=deposit]").first
    expect(deposit.locator("[data-field=label]")).to_have_text("Deposit")
    expect(deposit.locator("[data-field=amount]")).to_have_text(re.compile(r"^\+"))
    assert "Spot_" not in history.inner_text() and "spot_order:" not in history.inner_text()
    times = history.locator("time").all_inner_texts()
    assert times and all(re.fullmatch(WHEN, t) and t.endswith(zone_suffix) for t in times), times


def test_wallet_history_and_settings_at_desktop_and_phone(
    page,
    context,
    browser,
    live_server_url,
    markets,  # noqa: F811
    screenshot_dir,
):
    trader = funded_trader(usdt="24609.156647", btc="8")
    engine = Engine("BTC-USDT")
    order, _ = spot_order_place(
        user=trader,
        request=order_request(symbol="BTC-USDT", side="buy", type="limit", price="60000.00", quantity="0.01"),
    )
    engine.run()
    spot_order_cancel(user=trader, order_id=order.pk, wait=0)
    engine.run()

    page.set_viewport_size(DESKTOP)
    sign_in(page, trader, "/wallet/")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    check_wallet(page, order.pk, " UTC")

    # the settings: a zone and the light theme, applied to every page
    page.goto("/account/")
    expect(page.locator("#display-settings")).to_contain_text("UTC · Dark theme")
    page.locator("#display-settings").get_by_role("link", name="Settings").click()
    page.locator("select[name=timezone]").select_option("Asia/Tokyo")
    page.get_by_label("Light").check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Settings saved")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 247, 251)"

    page.goto("/wallet/")
    check_wallet(page, order.pk, " UTC+9")
    page.goto("/markets/BTC-USDT/")  # the trade tape's times of day name the zone
    expect(page.locator("#recent-trades thead th").first).to_have_text("Time (UTC+9)")
    page.goto("/wallet/")
    page.screenshot(path=str(screenshot_dir / "wallet-history-light-desktop.png"), full_page=True)

    phone = phone_page(browser, context, live_server_url)
    try:
        mobile = phone.new_page()
        mobile.goto("/wallet/")
        check_wallet(mobile, order.pk, " UTC+9")
        expect(mobile.locator("#history tr[data-kind=void_pending] [data-field=reference] a")).to_be_attached()
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        mobile.screenshot(path=str(screenshot_dir / "wallet-history-phone.png"), full_page=True)
    finally:
        phone.close()


@pytest.fixture
def option_market(live_server_url):
    list_series()
    with IndexTicker():
        yield


def check_options(page) -> None:
    expect(page.locator(".page-header p").first).to_contain_text("priced and paid in USDT")
    assert "priced in the underlying" not in page.locator(".page-header").inner_text()
    page.wait_for_function("() => document.querySelectorAll('#chain tbody tr[data-strike]').length > 5", timeout=10_000)
    expect(page.locator(".ticker-strip [data-field=atm-vol]")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(page.locator(".ticker-strip [data-field=index]")).to_have_text(re.compile(rf"^{MONEY}$"))
    ivs = page.locator("#chain tbody td[data-field=iv]").all_inner_texts()
    assert ivs and all(re.fullmatch(r"\d+\.\d%", iv) for iv in ivs), ivs  # not 0.8741
    prices = [
        text
        for field in ("bid_usdt", "mark_usdt", "ask_usdt")
        for text in page.locator(f"#chain tbody td[data-field={field}]").all_inner_texts()
    ]
    assert prices and all(re.fullmatch(MONEY, p) or p == "—" for p in prices), prices[:12]


def test_options_page_formats_at_desktop_and_phone(page, context, browser, live_server_url, option_market):
    user = funded_trader(usdt="1000", btc="0")
    page.set_viewport_size(DESKTOP)
    sign_in(page, user, "/options/")
    check_options(page)
    expect(page.locator("#ticket [data-field=usdt-available]")).to_have_text("1,000.00")

    phone = phone_page(browser, context, live_server_url)
    try:
        mobile = phone.new_page()
        mobile.goto("/options/")
        check_options(mobile)
    finally:
        phone.close()
