"""End to end in a real browser: the market pages a trader lives on.

Real processes: daphne (the conftest's) and ``manage.py run_engine --symbol BTC-USDT``
(test_trading's fixtures), the index kept fresh by a thread of the test.

* the trade page: the 24 h volume and the chart's volume bars follow the trades; the order
  book groups its levels to 0.01 / 0.1 / 1 / 10; the depth chart sums both sides; "Cancel
  all" cancels every open order of the trader and frees the holds; at desktop and 390 px;
* signed out, the order book's middle row shows the last price, as the header does;
* starring a market on /markets/ puts it in the Watchlist panel at once (and unstarring
  takes it out);
* after login the trader lands on the trade page (unless ``next`` says otherwise), and the
  navigation has a "Trade" link;
* at 390 px, /options/, the positions, wallet and markets tables keep their key columns
  (PnL, Close, Total, 24h change) on screen without sideways scrolling.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ledger.selectors import balance_of
from marketdata.candles import bucket_start
from marketdata.models import Candle, CandleSource
from orders.models import SpotOrder, SpotStatus, SpotTrade
from orders.options.services import options_order_place, options_quote
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.orders.conftest import IndexTicker, list_series, pick_series, trader
from tests.orders.spot.conftest import funded_trader

from . import test_trading
from .test_trading import SYMBOL, place, resting, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# test_trading's fixtures: the engine runner process and a second trader quoting around the index
engine = test_trading.engine
maker = test_trading.maker


def number(text: str) -> Decimal:
    return Decimal(text.replace(",", "").replace("−", "-").strip())


def index_candles() -> None:
    """The feed's price candles of this moment and the next (the index has no volume)."""
    now = timezone.now()
    for interval, seconds in Candle.INTERVALS.items():
        for ahead in (0, seconds):
            Candle.objects.get_or_create(
                symbol=SYMBOL,
                source=CandleSource.INDEX,
                interval=interval,
                open_time=bucket_start(now + timedelta(seconds=ahead), interval),
                defaults={"open": 65000, "high": 65200, "low": 64800, "close": Decimal("65000.12")},
            )


def phone(browser, live_server_url):
    context = phone_context(browser, live_server_url)
    return context, context.new_page()


def log_in(page, user, next_path: str | None = None) -> None:
    page.goto(f"/login/?next={next_path}" if next_path else "/login/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()


def assert_fits(page) -> None:
    width = page.viewport_size["width"]
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll} px wide at {width} px"


def on_screen(locator) -> None:
    """Visible and inside the viewport's width, without scrolling sideways (inside its box either)."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    width = locator.page.viewport_size["width"]
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (box, width)


def test_trade_page_volume_grouping_depth_and_cancel_all(page, maker, browser, live_server_url, screenshot_dir):
    index_candles()
    taker = funded_trader()
    place(taker, "buy", "65100", "0.02")  # takes 0.02 of the maker's 65,100 ask
    wait_for(lambda: SpotTrade.objects.filter(symbol=SYMBOL).exists(), "the trade")
    resting(place(maker, "sell", "65100.55", "0.01"), place(maker, "sell", "65104.20", "0.03"))
    me = funded_trader()
    mine = [place(me, "buy", "64000", "0.01"), place(me, "buy", "63000.50", "0.01")]
    resting(*mine)
    assert balance_of(user=me, asset="USDT").held > 0

    page.set_viewport_size(DESKTOP)
    log_in(page, me, f"/markets/{SYMBOL}/")
    expect(page.locator("#spot-ticket")).to_have_attribute("data-ready", "true")

    # volume: the header's 24 h volume and the bars under the candles
    expect(page.locator(".ticker-strip [data-field=volume]")).not_to_have_text("—")
    assert number(page.locator(".ticker-strip [data-field=volume]").inner_text()) == Decimal("0.02")
    page.wait_for_function("() => Number(document.querySelector('#chart').dataset.volumeBars || 0) >= 1")

    # grouping: the choices from the tick, and the ladder merged to 10 USDT steps
    grouping = page.locator("#book-grouping")
    assert grouping.locator("option").all_inner_texts() == ["0.01", "0.1", "1", "10"]
    expect(page.locator("#orderbook tr.ask[data-price='65100.55']")).to_be_visible()
    grouping.select_option("10")
    asks = page.locator("#orderbook tr.ask")
    expect(asks).to_have_count(3)
    prices = {row.get_attribute("data-price"): row.get_attribute("data-quantity") for row in asks.all()}
    assert prices == {"65100": "0.03", "65110": "0.04", "65200": "0.1"}
    # bids go down to the step: 63,000.50 is in the 63,000 level, marked as the trader's
    expect(page.locator("#orderbook tr.bid[data-price='63000']")).to_have_class(re.compile(r"\bmine\b"))
    grouping.select_option("0.01")
    expect(page.locator("#orderbook tr.ask[data-price='65100.55']")).to_be_visible()

    # depth: cumulative sides of the whole book
    depth = page.locator("#depth-chart")
    expect(depth).to_have_attribute("data-bid-total", "0.07")
    expect(depth).to_have_attribute("data-ask-total", "0.17")
    expect(depth.locator("path.depth-bids")).to_have_count(1)
    expect(depth.locator("path.depth-asks")).to_have_count(1)
    page.screenshot(path=str(screenshot_dir / "market-pages-desktop.png"), full_page=True)

    # cancel all: both orders, one click
    expect(page.locator("#open-orders tbody tr[data-order]")).to_have_count(2)
    page.locator("#cancel-all").click()
    expect(page.locator("#open-orders tbody")).to_contain_text("No open orders", timeout=10_000)
    expect(page.locator("#cancel-all")).to_be_disabled()
    wait_for(
        lambda: all(
            s == SpotStatus.CANCELLED for s in SpotOrder.objects.filter(user=me).values_list("status", flat=True)
        ),
        "the orders to be cancelled",
    )
    assert balance_of(user=me, asset="USDT").held == 0
    assert SpotOrder.objects.filter(user=maker, status="open").count() == 4  # other traders' orders stay

    # the phone: everything on screen, nothing wider than it
    resting(place(me, "buy", "64000", "0.01"))
    context, small = phone(browser, live_server_url)
    try:
        log_in(small, me, f"/markets/{SYMBOL}/")
        expect(small.locator("#spot-ticket")).to_have_attribute("data-ready", "true")
        expect(small.locator("#depth-chart")).to_have_attribute("data-ask-total", "0.17")
        # the 24 h volume and the volume bars at phone width too
        assert number(small.locator(".ticker-strip [data-field=volume]").inner_text()) == Decimal("0.02")
        on_screen(small.locator(".ticker-strip [data-field=volume]"))
        small.wait_for_function("() => Number(document.querySelector('#chart').dataset.volumeBars || 0) >= 1")
        assert_fits(small)
        for selector in ("#book-grouping", "#depth-chart", "#cancel-all"):
            small.locator(selector).scroll_into_view_if_needed()
            on_screen(small.locator(selector))
        small.locator("#book-grouping").select_option("1")
        expect(small.locator("#orderbook tr.ask[data-price='65101']")).to_have_attribute("data-quantity", "0.01")
        expect(small.locator("#cancel-all")).to_be_enabled()
        small.locator("#cancel-all").click()
        expect(small.locator("#open-orders tbody")).to_contain_text("No open orders", timeout=10_000)
        assert_fits(small)
        small.screenshot(path=str(screenshot_dir / "market-pages-phone.png"), full_page=True)
    finally:
        context.close()
    wait_for(lambda: balance_of(user=me, asset="USDT").held == 0, "the hold to be released")


def test_signed_out_the_book_shows_the_last_price_in_its_middle_row(page, maker, browser, live_server_url):
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        page.goto(f"/markets/{SYMBOL}/")
        expect(page.locator("#trade-login")).to_be_visible()
        middle = page.locator("#orderbook [data-field=book-last]")
        expect(middle).to_be_visible()
        expect(middle).not_to_have_text("—")
        header = page.locator("#last-price").inner_text()
        assert number(middle.inner_text()) == number(header) == Decimal("65000.12")


@pytest.fixture
def listed(live_server_url):
    list_series()
    with IndexTicker():
        yield


def test_starring_a_market_updates_the_watchlist_at_once(page, listed, browser, live_server_url):
    user = UserFactory()
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        log_in(page, user, "/markets/")
        expect(page).to_have_url(re.compile(r"/markets/$"))
        panel = page.locator("#watchlist")
        expect(panel.locator("#watchlist-empty")).to_be_visible()
        page.locator("[data-watch='ETH-USDT']").click()
        expect(panel.locator("li[data-watched='ETH-USDT'] a")).to_have_attribute("href", "/markets/ETH-USDT/")
        page.locator("[data-watch='BTC-USDT']").click()
        expect(panel.locator("li[data-watched]")).to_have_text(["BTC-USDT", "ETH-USDT"])
        expect(panel.locator("#watchlist-empty")).to_be_hidden()
        # what a reload shows is what the panel showed
        page.reload()
        expect(panel.locator("li[data-watched]")).to_have_text(["BTC-USDT", "ETH-USDT"])
        page.locator("[data-watch='ETH-USDT']").click()
        page.locator("[data-watch='BTC-USDT']").click()
        expect(panel.locator("li[data-watched]")).to_have_count(0)
        expect(panel.locator("#watchlist-empty")).to_be_visible()
        page.context.clear_cookies()


def test_login_lands_on_the_trade_page_and_the_navigation_has_trade(page, listed):
    user = UserFactory()
    log_in(page, user)
    expect(page).to_have_url(re.compile(rf"/markets/{SYMBOL}/$"))
    trade = page.locator("#site-nav").get_by_role("link", name="Trade", exact=True)
    expect(trade).to_have_attribute("aria-current", "page")
    page.goto("/wallet/")
    trade.click()
    expect(page).to_have_url(re.compile(rf"/markets/{SYMBOL}/$"))
    # next= still wins
    page.context.clear_cookies()
    log_in(page, user, "/wallet/")
    expect(page).to_have_url(re.compile(r"/wallet/$"))

    # the phone: the same landing, and "Trade" in the folded navigation
    page.context.clear_cookies()
    page.set_viewport_size(PHONE)
    log_in(page, user)
    expect(page).to_have_url(re.compile(rf"/markets/{SYMBOL}/$"))
    assert_fits(page)
    page.locator("[data-nav-toggle]").click()
    on_screen(trade)
    trade.click()
    expect(page).to_have_url(re.compile(rf"/markets/{SYMBOL}/$"))


def test_phone_width_keeps_the_key_columns_on_screen(page, listed, screenshot_dir):
    user = trader(usdt=Decimal("10000"))
    series = pick_series("BTC", "C")
    quote = options_quote(user=user, series=series.symbol, side="buy", contracts=Decimal("0.1"))
    options_order_place(user=user, quote_id=quote.id)
    page.set_viewport_size(PHONE)
    log_in(page, user, "/options/")
    expect(page).to_have_url(re.compile(r"/options/$"))
    row = page.locator(f"#option-positions tr[data-position='{series.symbol}']")
    expect(row).to_be_visible()
    assert_fits(page)
    headers = page.locator("#option-positions thead th")
    pnl = headers.filter(has_text="PnL")
    row.scroll_into_view_if_needed()
    on_screen(pnl)
    on_screen(row.get_by_role("button", name=re.compile("Close")))
    for field in ("value", "pnl"):  # USDT at two places, signed PnL, as on a desktop
        expect(row.locator(f"[data-field={field}]")).to_have_text(re.compile(r"^[+−]?\d{1,3}(,\d{3})*\.\d{2}$"))
    page.screenshot(path=str(screenshot_dir / "options-phone-positions.png"), full_page=True)

    page.goto("/wallet/")
    assert_fits(page)
    on_screen(page.locator("#balances thead th", has_text="Total"))
    on_screen(page.locator("#balances tbody tr").first.locator("td").last)

    page.goto("/markets/")
    assert_fits(page)
    on_screen(page.locator("#markets thead th", has_text="24h change"))
    on_screen(page.locator("#markets tr[data-market='BTC-USDT'] [data-field=change]"))
    on_screen(page.locator("#markets tr[data-market='BTC-USDT'] [data-field=last]"))
    page.screenshot(path=str(screenshot_dir / "markets-phone.png"), full_page=True)
