"""Price alerts end to end in a real browser.

Real processes: daphne (the conftest's, stack mode on the test database and Redis) and
``manage.py run_alerts`` started here, which hears the engine's trades over the channel layer
and fires. The BTC-USDT engine runner is driven in this process (``Engine.run()``, the code
``run_engine`` runs, holding the symbol's lease); its trades reach run_alerts and daphne
through Redis, and the notifications run_alerts writes reach the page over /ws/user/.

* a trader creates an alert on /alerts/ (a bad price is explained under its field first)
  and one with the bell beside the last price on /markets/BTC-USDT/ (prefilled with it);
* a trade on the book crosses each price while a page is open: the navigation's count goes
  up and the message shows without a reload, and the alerts page marks its alert triggered;
* at a phone's width (390 px) the folded navigation's menu button carries the live count (a
  partial fill told twice in its window counts once), and the alerts page and the market
  page's alert form do not scroll sideways.
"""

from __future__ import annotations

import re
import sys
import time
from decimal import Decimal

import pytest
from django.conf import settings
from playwright.sync_api import expect

from marketdata.services import instruments_sync
from notifications.alert_services import price_alert_create
from notifications.models import Notification, PriceAlert, PriceAlertStatus
from notifications.services import notify
from orders.spot.services import order_request, spot_order_place
from tests.browser.screens import PHONE, phone_context
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.orders.conftest import INDEX, IndexTicker, print_index
from tests.orders.spot.conftest import Engine, funded_trader
from tests.processes import ManagePy

from .conftest import BASE_DIR, _server_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SYMBOL = "BTC-USDT"
LIVE_MS = 20_000
START_TIMEOUT = 60


class AlertsProcess(ManagePy):
    """``manage.py run_alerts`` on the test database and Redis (stack mode's alert watcher)."""

    def __init__(self, log_path):
        env = _server_env(LOG_LEVEL="WARNING", LOG_JSON="0")
        super().__init__(["run_alerts"], env=env, log_path=log_path, cwd=BASE_DIR)

    def wait_until_watching(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while "price alerts: watching" not in self.log():
            if self.proc.poll() is not None:
                pytest.fail(f"run_alerts exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"run_alerts did not start in {START_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.2)


@pytest.fixture
def market(transactional_db, live_server_url, tmp_path):
    """BTC-USDT listed at a fresh index, the alert process watching, and an engine runner
    with a first trade at 65,000.00 (the market's last price)."""
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)
    with IndexTicker():
        alerts = AlertsProcess(tmp_path / "run_alerts.log")
        try:
            alerts.wait_until_watching()
            engine = Engine(SYMBOL)
            trade(engine, "65000.00")
            yield engine
        finally:
            alerts.stop()
            log = alerts.log()
            if "Traceback" in log:
                sys.stderr.write(f"\n--- run_alerts log ---\n{log}\n")


def trade(engine: Engine, price: str) -> None:
    """Two traders cross at ``price``: one trade on the book, a new last price."""
    seller, buyer = funded_trader(), funded_trader()
    for user, side in ((seller, "sell"), (buyer, "buy")):
        spot_order_place(
            user=user,
            request=order_request(symbol=SYMBOL, side=side, type="limit", price=price, quantity="0.01"),
        )
    engine.run()


def sign_in(page, user, path: str) -> None:
    page.goto(f"/login/?next={path}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def bell_live(page) -> None:
    """The navigation's bell is on /ws/user/ and has its count from the API."""
    expect(page.locator("[data-bell]")).to_have_attribute("data-live", "true", timeout=LIVE_MS)


def badge(page):
    return page.locator("[data-bell] .nav-badge")


def test_alerts_set_on_both_pages_fire_while_the_page_is_open(page, market, screenshot_dir):
    trader = UserFactory()
    sign_in(page, trader, "/alerts/")
    expect(page.locator("[data-page=alerts]")).to_have_attribute("data-ready", "true")
    expect(page.locator("#alert-empty")).to_be_visible()
    expect(page.locator("[data-field=active-count]")).to_have_text("0 of 50 active")
    expect(badge(page)).to_be_hidden()
    bell_live(page)

    # a price off the tick is explained under the price, and nothing is created
    page.select_option("#alert-symbol", SYMBOL)
    page.select_option("#alert-condition", "price_above")
    page.fill("#alert-value", "65100.005")
    page.get_by_role("button", name="Create alert").click()
    value_errors = page.locator("[data-errors-for=value]")
    expect(value_errors).to_have_text("A multiple of 0.01.")
    expect(page.locator("#alert-value").locator("xpath=..")).to_have_class(re.compile("field-invalid"))
    assert not PriceAlert.objects.filter(user=trader).exists()

    # a move needs its window: the field shows for change_pct only
    page.select_option("#alert-condition", "change_pct")
    expect(page.locator("#alert-window")).to_be_visible()
    page.select_option("#alert-condition", "price_above")
    expect(page.locator("#alert-window")).to_be_hidden()

    page.fill("#alert-value", "65100.00")
    page.get_by_role("button", name="Create alert").click()
    expect(page.locator("#alert-form-done")).to_have_text("Alert created: BTC-USDT at or above 65,100.00.")
    expect(value_errors).to_be_empty()
    above = PriceAlert.objects.get(user=trader)
    assert (above.symbol, above.condition, above.value, above.frequency, above.status) == (
        SYMBOL,
        "price_above",
        Decimal("65100.00"),
        "once",
        PriceAlertStatus.ACTIVE,
    )
    row = page.locator(f"#alert-list [data-alert='{above.pk}']")
    expect(row).to_contain_text("BTC-USDT at or above 65,100.00")
    expect(row.locator("[data-field=status]")).to_have_text("Active")
    expect(row.locator("[data-field=fired]")).to_have_text("Not fired yet")
    expect(page.locator("[data-field=active-count]")).to_have_text("1 of 50 active")

    # the market page's bell: a form prefilled with the market and its last price
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(f"/markets/{SYMBOL}/")
    bell_live(page)
    # the trading desk's user stream is the bell's too: one socket
    assert sum(url.endswith("/ws/user/") for url in sockets) == 1, sockets
    expect(page.locator("#quick-alert")).to_be_hidden()
    page.get_by_role("button", name=f"Price alert on {SYMBOL}").click()
    expect(page.locator("#quick-alert")).to_be_visible()
    expect(page.locator("#alert-bell")).to_have_attribute("aria-expanded", "true")
    prefilled = page.locator("#quick-alert-value").input_value()
    assert Decimal(prefilled) == Decimal("65000.00"), prefilled
    page.select_option("#quick-alert-condition", "price_below")
    page.fill("#quick-alert-value", "64900.00")
    page.locator("#quick-alert-form").get_by_role("button", name="Create alert").click()
    done = page.locator("#quick-alert-done")
    expect(done).to_contain_text("Alert set: BTC-USDT at or below 64,900.00.")
    below = PriceAlert.objects.get(user=trader, condition="price_below")
    assert below.value == Decimal("64900.00") and below.status == PriceAlertStatus.ACTIVE
    assert done.get_attribute("data-alert") == str(below.pk)
    page.screenshot(path=str(screenshot_dir / "price-alert-market-bell.png"))

    # a trade crosses the first alert's price while the market page is open
    trade(market, "65100.00")
    expect(badge(page)).to_have_text("1", timeout=LIVE_MS)
    expect(badge(page)).to_be_visible()
    toast = page.locator(".toast", has_text="BTC-USDT is at or above 65100")
    expect(toast).to_be_visible(timeout=LIVE_MS)
    expect(toast).to_contain_text("The price is 65100")
    fired = Notification.objects.get(user=trader, kind="price_alert")
    assert fired.dedupe_key == f"price_alert:{above.pk}"

    # on the alerts page, the second fires: the count and its row move without a reload
    page.goto("/alerts/")
    expect(page.locator("[data-page=alerts]")).to_have_attribute("data-ready", "true")
    bell_live(page)
    expect(badge(page)).to_have_text("1")
    expect(page.locator(f"#alert-list [data-alert='{above.pk}'] [data-field=status]")).to_have_text("Triggered")
    page.evaluate("window.__sameDocument = true")
    trade(market, "64900.00")
    expect(badge(page)).to_have_text("2", timeout=LIVE_MS)
    expect(page.locator(".toast", has_text="BTC-USDT is at or below 64900")).to_be_visible(timeout=LIVE_MS)
    row = page.locator(f"#alert-list [data-alert='{below.pk}']")
    expect(row.locator("[data-field=status]")).to_have_text("Triggered", timeout=LIVE_MS)
    expect(row.locator("[data-field=fired]")).to_contain_text("Fired once")
    expect(row.locator("[data-field=fired]")).to_contain_text("at 64,900.00")
    expect(page.locator("[data-field=active-count]")).to_have_text("0 of 50 active")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    page.screenshot(path=str(screenshot_dir / "price-alerts-desktop.png"), full_page=True)

    # deleting one removes it from the page and from the API's list
    row.get_by_role("button", name=re.compile("^Delete")).click()
    expect(row).to_have_count(0)
    assert PriceAlert.objects.get(pk=below.pk).status == PriceAlertStatus.DELETED

    # the bell goes to the notifications page, where both messages are
    page.locator("[data-bell]").click()
    expect(page).to_have_url(re.compile(r"/notifications/$"))
    expect(page.locator(".notice-list .notice")).to_have_count(2)
    bell_live(page)
    notify(user=trader, kind="system", title="Arrived while the list was open", body="", dedupe_key="live:1")
    expect(page.locator(".notice-list .notice")).to_have_count(3, timeout=LIVE_MS)
    expect(page.locator(".notice-list .notice").first).to_contain_text("Arrived while the list was open")
    expect(badge(page)).to_have_text("3")


def test_the_alerts_page_fits_a_phone(browser, live_server_url, market, screenshot_dir):
    trader = UserFactory(email="a.rather-long-address.for-a-phone@subdomain.example.test")
    price_alert_create(user=trader, symbol="BTC-USDT", condition="price_above", value="123456.78", frequency="once")
    price_alert_create(
        user=trader,
        symbol="index:ETH",
        condition="change_pct",
        value="-12.5",
        window="24h",
        frequency="once_per_minute",
    )
    context = phone_context(browser, live_server_url)
    try:
        phone = context.new_page()
        sign_in(phone, trader, "/alerts/")
        expect(phone.locator("[data-page=alerts]")).to_have_attribute("data-ready", "true")
        expect(phone.locator("#alert-list .alert-item")).to_have_count(2)
        expect(phone.locator("#alert-list")).to_contain_text("ETH index falls 12.5% in 24 hours")
        # the form's errors take room too
        phone.fill("#alert-value", "not a price")
        phone.get_by_role("button", name="Create alert").click()
        expect(phone.locator("[data-errors-for=value] li")).not_to_have_count(0)
        phone.select_option("#alert-condition", "change_pct")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"/alerts/ is {width} px wide at {PHONE['width']} px"
        phone.screenshot(path=str(screenshot_dir / "price-alerts-phone.png"), full_page=True)

        # folded navigation: the menu button carries the count, live; a partial fill told
        # again in its coalescing window (same message, newer text) is still one unread
        toggle = phone.locator("[data-nav-toggle]")
        expect(toggle).to_have_attribute("data-unread", "0")
        bell_live(phone)
        phone.evaluate(
            "window.__heard = [];"
            " document.addEventListener('meridian:notification', (e) => window.__heard.push(e.detail.id))"
        )
        window = settings.NOTIFICATIONS_COALESCE_SECONDS
        if time.time() % window > window / 2:  # both in one window
            time.sleep(window - time.time() % window + 0.05)
        for filled in ("0.1", "0.3"):
            notify(
                user=trader,
                kind="order_partially_filled",
                title=f"Buy 1 BTC-USDT: {filled} filled",
                body="",
                dedupe_key="spot:424242:partial",
            )
        phone.wait_for_function("window.__heard.length === 2", timeout=LIVE_MS)
        heard = phone.evaluate("window.__heard")
        assert heard[0] == heard[1], heard
        expect(toggle).to_have_attribute("data-unread", "1")
        expect(badge(phone)).to_have_text("1")
        expect(phone.locator(".toast")).to_have_count(1)
        assert Notification.objects.get(user=trader, kind="order_partially_filled").title.endswith("0.3 filled")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"/alerts/ with a message shown is {width} px wide"

        phone.goto(f"/markets/{SYMBOL}/")
        phone.locator("#alert-bell").click()
        expect(phone.locator("#quick-alert")).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the market page with its alert form is {width} px wide"
        phone.screenshot(path=str(screenshot_dir / "price-alert-market-phone.png"), full_page=True)
    finally:
        context.close()
