"""End to end in a real browser, with live data: daphne and a real ``manage.py run_feed``
process on the test database (and Redis between them), a day of history backfilled.

* /markets/ lists BTC-USDT and ETH-USDT and the Last cell moves without a reload;
* /markets/BTC-USDT/ draws the candle chart from history, then a live candle and price;
* /options/ shows the BTC chain, switching to ETH changes the strikes and the index.

Screenshots of each page at desktop and phone width go to var/screenshots/.
"""

from __future__ import annotations

import re
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from marketdata.backfill import backfill
from marketdata.models import Candle, IndexPrint, Instrument, InstrumentKind
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.processes import ManagePy

from .conftest import BASE_DIR, _server_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE_TIMEOUT_MS = 10_000
FEED_START_TIMEOUT = 30
POSITIVE = re.compile(r"^[1-9]\d*$")
MINUTE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00Z$")


class Feed(ManagePy):
    """``manage.py run_feed`` on the test database, ticking twice a second."""

    def __init__(self, log_path: Path):
        env = _server_env(FEED_INTERVAL_SECONDS="0.5", LOG_LEVEL="WARNING", LOG_JSON="0")
        env.pop("FEED_CCXT_EXCHANGES", None)  # simulated exchanges only: no network
        super().__init__(["run_feed", "--ttl", "2"], env=env, log_path=log_path, cwd=BASE_DIR)

    def wait_until_listed(self) -> None:
        """The first tick writes index prints and lists the instruments."""
        deadline = time.monotonic() + FEED_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"run_feed exited with {self.proc.returncode}:\n{self.log()}")
            ready = (
                {"BTC", "ETH"} <= set(IndexPrint.objects.filter(stale=False).values_list("underlying", flat=True))
                and Instrument.objects.filter(kind=InstrumentKind.SPOT).count() == 2
                and Instrument.objects.filter(kind=InstrumentKind.OPTION, base="ETH").exists()
                and Instrument.objects.filter(kind=InstrumentKind.OPTION, base="BTC").exists()
            )
            if ready:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"run_feed listed nothing in {FEED_START_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.2)


@pytest.fixture
def feed(live_server_url, tmp_path):
    """A day of history, then the live feed (which continues the backfilled path)."""
    assert backfill(days=1) > 2 * 1440
    feed = Feed(tmp_path / "run_feed.log")
    try:
        feed.wait_until_listed()
        yield feed
    finally:
        feed.stop()
        log = feed.log()
        if "Traceback" in log:
            sys.stderr.write(f"\n--- run_feed log ---\n{log}\n")


def wait_for_text_change(page, selector: str, previous: str) -> str:
    """Wait (without reloading) until the text of ``selector`` is no longer ``previous``."""
    page.wait_for_function(
        "([selector, previous]) => { const node = document.querySelector(selector);"
        " return node && node.textContent.trim() !== previous; }",
        arg=[selector, previous],
        timeout=LIVE_TIMEOUT_MS,
    )
    return page.locator(selector).inner_text().strip()


def price(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def assert_fits(page, width: int) -> None:
    """No horizontal scrolling of the page itself (wide tables scroll inside their box)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def assert_labels_over_values(page) -> None:
    """Each ticker-strip label sits right above its own value (no pairs torn apart)."""
    pairs = page.locator(".ticker-strip").first.evaluate(
        """strip => [...strip.querySelectorAll('dt')].map(dt => {
            const dd = dt.nextElementSibling, a = dt.getBoundingClientRect(), b = dd.getBoundingClientRect();
            return [dt.textContent.trim(), a.left, a.bottom, b.left, b.top, b.right];
        })"""
    )
    assert pairs
    for label, dt_left, dt_bottom, dd_left, dd_top, dd_right in pairs:
        assert abs(dt_left - dd_left) < 1 and dd_top >= dt_bottom - 1, (label, pairs)
        assert dd_right <= page.viewport_size["width"], (label, pairs)


def phone_page(browser, live_server_url):
    context = phone_context(browser, live_server_url)
    return context, context.new_page()


# --- (a) the markets overview ----------------------------------------------------------------------


def test_markets_list_the_pairs_and_the_last_price_moves_live(page, feed, browser, live_server_url, screenshot_dir):
    page.set_viewport_size(DESKTOP)
    page.goto("/markets/")
    expect(page.get_by_role("heading", name="Markets", exact=True)).to_be_visible()
    rows = page.locator("#markets tbody tr[data-market]")
    expect(rows).to_have_count(2)
    for symbol in ("BTC-USDT", "ETH-USDT"):
        expect(page.locator(f"#markets [data-market={symbol}]")).to_contain_text(symbol)

    last = "[data-market=BTC-USDT] [data-field=last]"
    first = page.locator(last).inner_text().strip()
    assert first not in ("", "—"), "the page rendered no last price"
    # The websocket repaints the cell; then the live feed keeps moving it.
    second = wait_for_text_change(page, last, first)
    third = wait_for_text_change(page, last, second)
    btc = price(third)
    assert Decimal("1000") < btc < Decimal("1000000"), third
    eth = price(page.locator("[data-market=ETH-USDT] [data-field=last]").inner_text())
    assert Decimal("10") < eth < btc
    # 24h high/low come from the backfilled history
    assert page.locator("[data-market=BTC-USDT] [data-field=high]").inner_text().strip() not in ("", "—")
    expect(page.locator("body")).to_have_attribute("data-stream", "live")
    page.screenshot(path=str(screenshot_dir / "markets-desktop.png"), full_page=True)

    context, mobile = phone_page(browser, live_server_url)
    try:
        mobile.goto("/markets/")
        expect(mobile.locator("#markets tbody tr[data-market]")).to_have_count(2)
        expect(mobile.locator("[data-market=ETH-USDT]")).to_be_visible()
        assert_fits(mobile, PHONE["width"])
        mobile.screenshot(path=str(screenshot_dir / "markets-phone.png"), full_page=True)
    finally:
        context.close()


# --- (b) one market with its chart ---------------------------------------------------------------


def test_market_page_draws_the_chart_and_updates_live(page, feed, browser, live_server_url, screenshot_dir):
    assert Candle.objects.filter(symbol="BTC-USDT", interval="1m").count() >= 1440
    page.set_viewport_size(DESKTOP)
    page.goto("/markets/BTC-USDT/")
    expect(page.get_by_role("heading", name="BTC-USDT")).to_be_visible()
    chart = page.locator("#chart")
    expect(chart.locator("canvas").first).to_be_visible()
    expect(chart).to_have_attribute("data-bars", POSITIVE)
    assert int(chart.get_attribute("data-bars")) >= 100  # the backfilled history (up to 500 bars)
    box = chart.bounding_box()
    assert box and box["width"] > 600 and box["height"] > 200, box

    first = page.locator("#last-price").inner_text().strip()
    second = wait_for_text_change(page, "#last-price", first)
    wait_for_text_change(page, "#last-price", second)
    # a live 1m candle arrived over the websocket
    expect(chart).to_have_attribute("data-last-bar", MINUTE_TIME, timeout=LIVE_TIMEOUT_MS)
    assert int(page.locator("[data-page=market]").get_attribute("data-updates") or 0) >= 2
    assert_labels_over_values(page)
    index = page.locator("[data-page=market] [data-field=index]").first.inner_text().strip()
    assert index not in ("", "—")
    page.screenshot(path=str(screenshot_dir / "market-desktop.png"), full_page=True)

    # another interval reloads the history from the API
    page.locator("[data-interval-choice='1h']").click()
    expect(page.locator("[data-interval-choice='1h']")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function("() => Number(document.querySelector('#chart').dataset.bars) <= 26", timeout=LIVE_TIMEOUT_MS)
    assert int(chart.get_attribute("data-bars")) >= 20  # a day of hourly bars

    context, mobile = phone_page(browser, live_server_url)
    try:
        mobile.goto("/markets/BTC-USDT/")
        mobile_chart = mobile.locator("#chart")
        expect(mobile_chart.locator("canvas").first).to_be_visible()
        expect(mobile_chart).to_have_attribute("data-bars", POSITIVE)
        assert_labels_over_values(mobile)
        box = mobile_chart.bounding_box()
        assert box and 300 <= box["width"] <= PHONE["width"] and box["height"] > 150, box
        assert_fits(mobile, PHONE["width"])
        mobile.wait_for_timeout(500)  # let the chart paint before the picture
        mobile.screenshot(path=str(screenshot_dir / "market-phone.png"), full_page=True)
    finally:
        context.close()


# --- (c) the option chain -------------------------------------------------------------------------


def chain_state(page) -> tuple[list[str], str]:
    strikes = page.locator("#chain tbody tr[data-strike]").evaluate_all("rows => rows.map(r => r.dataset.strike)")
    return strikes, page.locator("[data-page=options] [data-field=index]").inner_text().strip()


def test_options_page_shows_the_chain_and_switches_underlying(page, feed, browser, live_server_url, screenshot_dir):
    page.set_viewport_size(DESKTOP)
    page.goto("/options/")
    expect(page.get_by_role("heading", name="USDT-mode options")).to_be_visible()
    rows = page.locator("#chain tbody tr[data-strike]")
    page.wait_for_function(
        "() => document.querySelectorAll('#chain tbody tr[data-strike]').length > 5", timeout=LIVE_TIMEOUT_MS
    )
    assert rows.count() > 5
    options = page.locator("#expiry option")
    assert options.count() > 3
    assert options.first.get_attribute("value").endswith("T08:00:00Z")
    expect(page.locator("[data-underlying-choice=BTC]")).to_have_attribute("aria-pressed", "true")

    btc_strikes, btc_index_text = chain_state(page)
    btc_index = price(btc_index_text)
    assert Decimal("1000") < btc_index
    assert float(min(btc_strikes, key=float)) < float(btc_index) < float(max(btc_strikes, key=float))
    first_row = rows.first
    for cell in first_row.locator("td.mark").all():
        assert price(cell.inner_text()) >= 0  # shown with thousands separators
    assert page.locator("#chain .empty-state").count() == 0
    page.screenshot(path=str(screenshot_dir / "options-desktop.png"), full_page=True)

    # ETH: other strikes and the ETH index
    page.locator("[data-underlying-choice=ETH]").click()
    expect(page.locator("[data-underlying-choice=ETH]")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function(
        "(btc) => { const rows = [...document.querySelectorAll('#chain tbody tr[data-strike]')]"
        ".map(r => r.dataset.strike);"
        " return rows.length > 5 && JSON.stringify(rows) !== JSON.stringify(btc); }",
        arg=btc_strikes,
        timeout=LIVE_TIMEOUT_MS,
    )
    page.wait_for_function(
        "() => { const t = document.querySelector('[data-page=options] [data-field=index]').textContent;"
        " const v = Number(t.replace(/,/g, '')); return v > 0 && v < 20000; }",
        timeout=LIVE_TIMEOUT_MS,
    )
    eth_strikes, eth_index_text = chain_state(page)
    eth_index = price(eth_index_text)
    assert eth_index < btc_index and eth_index != btc_index
    assert float(min(eth_strikes, key=float)) < float(eth_index) < float(max(eth_strikes, key=float))
    assert page.locator("#expiry option").count() > 3
    # the chain keeps refreshing (every 5 s) and stays on ETH
    refreshes = int(page.locator("[data-page=options]").get_attribute("data-refreshes"))
    page.wait_for_function(
        "(n) => Number(document.querySelector('[data-page=options]').dataset.refreshes) > n",
        arg=refreshes,
        timeout=LIVE_TIMEOUT_MS,
    )
    assert chain_state(page)[0] == eth_strikes

    # another expiry: its own strikes (the grid widens with time)
    last_expiry = page.locator("#expiry option").last.get_attribute("value")
    page.locator("#expiry").select_option(last_expiry)
    page.wait_for_function(
        "(eth) => { const rows = [...document.querySelectorAll('#chain tbody tr[data-strike]')]"
        ".map(r => r.dataset.strike);"
        " return rows.length > 5 && JSON.stringify(rows) !== JSON.stringify(eth); }",
        arg=eth_strikes,
        timeout=LIVE_TIMEOUT_MS,
    )
    assert page.locator("#expiry").input_value() == last_expiry

    context, mobile = phone_page(browser, live_server_url)
    try:
        mobile.goto("/options/")
        mobile.wait_for_function(
            "() => document.querySelectorAll('#chain tbody tr[data-strike]').length > 5", timeout=LIVE_TIMEOUT_MS
        )
        assert_fits(mobile, PHONE["width"])
        expect(mobile.locator("#expiry")).to_be_visible()
        assert_labels_over_values(mobile)
        # at phone width the calls' bid/mark/ask and the strike fit without scrolling the table
        # found and measured in one script: the chain redraws its rows every few seconds
        right = mobile.evaluate(
            "() => document.querySelector('#chain tbody tr[data-strike] th.strike').getBoundingClientRect().right"
        )
        assert 0 < right <= PHONE["width"], right
        mobile.screenshot(path=str(screenshot_dir / "options-phone.png"), full_page=True)
    finally:
        context.close()
