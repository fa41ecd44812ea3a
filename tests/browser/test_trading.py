"""End to end in a real browser: the spot trading page on /markets/BTC-USDT/.

Real processes: daphne (the conftest's, stack mode on the test database and Redis) and
``manage.py run_engine --symbol BTC-USDT`` started here. The engine matches, commits and
publishes book deltas, trades and the user events through Redis to daphne's hub, which
pushes them to the page over /ws/market/ and /ws/user/. A thread of the test keeps the
index fresh (market orders need it) at a flat price.

* a funded trader places a limit buy far below the market: it rests in the book (marked as
  theirs) and in open orders, and USDT is held; cancelling it removes both and frees the hold;
* bad input is explained next to the field it concerns (the API's error format);
* a market buy takes a resting ask of a second funded trader (placed through
  ``spot_order_place``, as the market maker would): the fill, the order history and the new
  balances appear, and match the ledger;
* without /ws/user/ the page says it is polling and still picks up a fill it did not cause;
* anonymous visitors see the live book with a "sign in to trade" prompt and no ticket.
"""

from __future__ import annotations

import json
import re
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ledger.selectors import balance_of
from marketdata.services import instruments_sync
from orders.models import SpotOrder, SpotTrade
from orders.spot.services import order_request, spot_order_place
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.factories import DEFAULT_PASSWORD
from tests.orders.conftest import INDEX, IndexTicker, print_index
from tests.orders.spot.conftest import funded_trader
from tests.processes import ManagePy
from trading.models import Lease

from .conftest import BASE_DIR, _server_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SYMBOL = "BTC-USDT"
ENGINE_START_TIMEOUT = 60
LIVE_MS = 10_000


class EngineProcess(ManagePy):
    """``manage.py run_engine --symbol BTC-USDT`` on the test database (stack mode)."""

    def __init__(self, log_path: Path):
        env = _server_env(LOG_LEVEL="WARNING", LOG_JSON="0", ENGINE_POLL_SECONDS="0.1")
        super().__init__(["run_engine", "--symbol", SYMBOL, "--ttl", "3"], env=env, log_path=log_path, cwd=BASE_DIR)

    def wait_until_leading(self) -> None:
        deadline = time.monotonic() + ENGINE_START_TIMEOUT
        while (
            not Lease.objects.filter(name=f"engine:{SYMBOL}", expires_at__gt=timezone.now()).exclude(holder="").exists()
        ):
            if self.proc.poll() is not None:
                pytest.fail(f"run_engine exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"run_engine did not take the lease in {ENGINE_START_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.2)


@pytest.fixture
def engine(transactional_db, tmp_path):
    """Listed markets at a fresh index, then the BTC-USDT engine runner as its own process.
    It boots while daphne does (``maker`` waits for it to lead)."""
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)
    with IndexTicker():
        process = EngineProcess(tmp_path / "run_engine.log")
        try:
            yield process
        finally:
            process.stop()
            log = process.log()
            if "Traceback" in log:
                sys.stderr.write(f"\n--- run_engine log ---\n{log}\n")


def wait_for(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def place(user, side: str, price: str, quantity: str) -> SpotOrder:
    order, _ = spot_order_place(
        user=user,
        request=order_request(
            **{"symbol": SYMBOL, "side": side, "type": "limit", "price": price, "quantity": quantity}
        ),
    )
    return order


def resting(*orders: SpotOrder) -> None:
    ids = [order.pk for order in orders]
    wait_for(lambda: SpotOrder.objects.filter(pk__in=ids, status="open").count() == len(ids), f"orders {ids} to rest")


@pytest.fixture
def maker(engine, live_server_url):
    """A second funded trader quoting both sides around the 65,000.12 index."""
    engine.wait_until_leading()
    user = funded_trader(usdt="100000", btc="10")
    resting(
        place(user, "sell", "65100", "0.05"), place(user, "sell", "65200", "0.1"), place(user, "buy", "64900", "0.05")
    )
    return user


def sign_in(page, user, path=f"/markets/{SYMBOL}/"):
    page.goto(f"/login/?next={path}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    expect(page.locator("#spot-ticket")).to_have_attribute("data-ready", "true")


def balance_cells(page, asset: str) -> tuple[str, str]:
    row = page.locator(f"#balances tr[data-asset={asset}]")
    return row.locator("[data-field=available]").inner_text(), row.locator("[data-field=held]").inner_text()


def expect_balance(page, asset: str, available: str, held: str) -> None:
    row = page.locator(f"#balances tr[data-asset={asset}]")
    expect(row.locator("[data-field=available]")).to_have_text(available, timeout=LIVE_MS)
    expect(row.locator("[data-field=held]")).to_have_text(held, timeout=LIVE_MS)


def level(page, side: str, price: str):
    return page.locator(f"#orderbook tr.level.{side}[data-price='{price}']")


def test_place_rest_cancel_then_take_liquidity(page, maker, browser, live_server_url, screenshot_dir):
    trader = funded_trader(usdt="10000", btc="0")
    page.set_viewport_size(DESKTOP)
    sign_in(page, trader)

    # --- the page: live streams, the maker's book, first-paint balances ------------------------------
    expect(page.locator("#conn-market")).to_have_attribute("data-state", "live")
    expect(page.locator("#conn-user")).to_have_attribute("data-state", "live")
    expect(page.locator("#conn-user")).to_have_text("Account: live")
    expect(level(page, "ask", "65100")).to_have_attribute("data-quantity", "0.05")
    expect(level(page, "ask", "65200")).to_have_attribute("data-quantity", "0.1")
    expect(level(page, "bid", "64900")).to_have_attribute("data-quantity", "0.05")
    expect(page.locator("#orderbook [data-field=spread]")).to_have_text("200.00")
    expect(page.locator("#spot-ticket [data-field=available]")).to_have_text("10,000.00 USDT")
    expect(page.locator("#open-orders tbody")).to_contain_text("No open orders")

    # --- the form follows the order type ----------------------------------------------------------------
    ticket = page.locator("#spot-ticket")
    price_input, stop_input, trail_input = (
        page.locator("#order-price"),
        page.locator("#order-stop"),
        page.locator("#order-trail"),
    )
    page.select_option("#order-type", "stop_limit")
    expect(stop_input).to_be_visible()
    expect(price_input).to_be_visible()
    expect(page.locator("#order-post-only")).to_be_hidden()
    page.select_option("#order-type", "trailing_stop")
    expect(trail_input).to_be_visible()
    expect(price_input).to_be_hidden()
    expect(page.locator("#order-tif")).to_be_hidden()
    page.select_option("#order-type", "market")
    expect(page.locator("[data-market-in=quote]")).to_be_visible()
    page.locator("[data-market-in=quote]").click()
    expect(page.locator("#order-quote")).to_be_visible()
    expect(page.locator("#order-quantity")).to_be_hidden()
    page.locator("[data-side-choice=sell]").click()
    expect(page.locator("#order-quantity")).to_be_visible()  # sells are always by quantity
    expect(page.locator("#order-submit")).to_have_text("Sell BTC")
    page.locator("[data-side-choice=buy]").click()
    page.locator("[data-market-in=base]").click()
    page.select_option("#order-type", "limit")
    expect(page.locator("#order-iceberg")).to_be_visible()
    page.check("#order-iceberg")
    expect(page.locator("#order-display")).to_be_visible()
    page.uncheck("#order-iceberg")
    expect(page.locator("#order-submit")).to_have_text("Buy BTC")

    # --- refusals next to their fields ---------------------------------------------------------------------
    page.fill("#order-quantity", "0.01")
    page.locator("#order-submit").click()
    expect(page.locator("[data-errors-for=price]")).to_contain_text("needs a price")
    page.fill("#order-price", "50000")  # more than 10% under the index
    page.locator("#order-submit").click()
    expect(page.locator("[data-errors-for=price]")).to_contain_text("Between")
    expect(page.locator("#order-error")).to_contain_text("below the index")
    # prices at the tick's places with thousands separators, not the columns' raw 8 decimals
    grouped = r"\d{1,3}(,\d{3})*\.\d{2}"
    expect(page.locator("[data-errors-for=price]")).to_have_text(re.compile(rf"^Between {grouped} and {grouped}\.$"))
    expect(page.locator("#order-error")).to_contain_text(
        "A buy price of 50,000.00 is more than 10% below the index 65,000.12"
    )
    page.fill("#order-price", "60000")
    page.fill("#order-quantity", "0.0001")  # 6 USDT: under the 10 USDT minimum
    page.locator("#order-submit").click()
    expect(page.locator("[data-errors-for=quantity]")).to_contain_text("At least 10 USDT")
    expect(page.locator("[data-errors-for=price]")).to_be_empty()
    assert not SpotOrder.objects.filter(user=trader).exists()

    # --- a limit buy far from the market: in the book, in open orders, USDT held -----------------------------
    page.fill("#order-quantity", "0.01")
    expect(ticket.locator("[data-field=estimate]")).to_have_text("≈ 600.00 USDT")
    page.locator("#order-submit").click()
    expect(page.locator("#order-done")).to_contain_text("open")
    order = SpotOrder.objects.get(user=trader)
    assert (order.status, order.price, order.quantity) == ("open", Decimal("60000"), Decimal("0.01"))
    row = page.locator(f"#open-orders tr[data-order='{order.pk}']")
    expect(row).to_be_visible()
    expect(row.locator("[data-field=status]")).to_have_text("Open")
    expect(row.locator("[data-field=price]")).to_have_text("60,000.00")
    expect(page.locator("[data-field=open-count]")).to_have_text("1")
    mine = level(page, "bid", "60000")
    expect(mine).to_have_attribute("data-quantity", "0.01")
    expect(mine).to_have_class(re.compile(r"\bmine\b"))
    page.locator("#tab-balances").click()
    expect_balance(page, "USDT", "9,400.00", "600.00")
    assert balance_of(user=trader, asset="USDT").held == Decimal("600")
    expect(page.locator("#spot-ticket [data-field=available]")).to_have_text("9,400.00 USDT")
    page.locator("#tab-open").click()
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header stays on top in a full-page shot
    page.screenshot(path=str(screenshot_dir / "trading-resting-order.png"), full_page=True)

    # --- cancel: gone from open orders and the book, the hold released -------------------------------------
    row.get_by_role("button", name="Cancel").click()
    expect(row).to_have_count(0)
    expect(page.locator("#open-orders tbody")).to_contain_text("No open orders")
    expect(level(page, "bid", "60000")).to_have_count(0)
    page.locator("#tab-balances").click()
    expect_balance(page, "USDT", "10,000.00", "0.00")
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert balance_of(user=trader, asset="USDT").held == 0
    page.locator("#tab-history").click()
    cancelled = page.locator(f"#order-history tr[data-order='{order.pk}']")
    expect(cancelled.locator("[data-field=status]")).to_have_text("Cancelled")

    # --- a market buy takes the maker's best ask -------------------------------------------------------------
    page.select_option("#order-type", "market")
    page.fill("#order-quantity", "0.02")
    expect(ticket.locator("[data-field=estimate]")).to_have_text("≈ 1,302.00 USDT")  # 0.02 x 65,100 from the book
    page.locator("#order-submit").click()
    expect(page.locator("#order-done")).to_contain_text("filled 0.02000 @ 65,100.00")
    bought = SpotOrder.objects.exclude(pk=order.pk).get(user=trader)
    assert bought.status == "filled"
    trade = SpotTrade.objects.get(taker_order=bought)
    assert (trade.price, trade.quantity, trade.maker_user_id) == (Decimal("65100"), Decimal("0.02"), maker.pk)

    page.locator("#tab-fills").click()
    fill = page.locator(f"#fills tr[data-order='{bought.pk}']")
    expect(fill).to_have_count(1, timeout=LIVE_MS)
    expect(fill.locator("[data-field=price]")).to_have_text("65,100.00")
    expect(fill.locator("[data-field=quantity]")).to_have_text("0.02000")
    expect(fill.locator("[data-field=liquidity]")).to_have_text("Taker")
    expect(fill.locator("[data-field=fee]")).to_have_text("0.00004 BTC")  # 0.2% taker fee, taken from the BTC bought

    page.locator("#tab-balances").click()
    expect_balance(page, "USDT", "8,698.00", "0.00")
    expect_balance(page, "BTC", "0.01996", "0.00")  # at BTC's display places, as on the wallet
    assert balance_of(user=trader, asset="USDT").available == Decimal("8698")
    assert balance_of(user=trader, asset="BTC").available == Decimal("0.01996")

    # the public side moved too: the ask level shrank and the tape printed the trade
    expect(level(page, "ask", "65100")).to_have_attribute("data-quantity", "0.03")
    expect(page.locator("#recent-trades tbody tr").first).to_contain_text("65,100.00")
    page.locator("#tab-history").click()
    filled = page.locator(f"#order-history tr[data-order='{bought.pk}']")
    expect(filled.locator("[data-field=status]")).to_have_text("Filled")
    expect(filled.locator("[data-field=average]")).to_have_text("65,100.00")
    page.locator("#tab-fills").click()
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header stays on top in a full-page shot
    page.screenshot(path=str(screenshot_dir / "trading-desktop.png"), full_page=True)

    # --- phone width: everything stacks and fits -----------------------------------------------------------------
    phone = phone_context(browser, live_server_url, page.context.storage_state())
    try:
        mobile = phone.new_page()
        mobile.goto(f"/markets/{SYMBOL}/")
        expect(mobile.locator("#spot-ticket")).to_have_attribute("data-ready", "true")
        expect(mobile.get_by_role("button", name="Buy BTC")).to_be_visible()
        expect(level(mobile, "ask", "65100")).to_have_attribute("data-quantity", "0.03")
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        mobile.wait_for_timeout(500)  # let the chart paint
        mobile.evaluate("window.scrollTo(0, 0)")  # the sticky header stays on top in a full-page shot
        mobile.screenshot(path=str(screenshot_dir / "trading-phone.png"), full_page=True)
    finally:
        phone.close()


def test_without_the_user_stream_the_page_polls(page, maker, screenshot_dir):
    """/ws/user/ refused: the indicator says so and a fill the trader did not cause (the maker
    lifts their resting bid) still reaches open orders, fills and balances."""
    trader = funded_trader(usdt="0", btc="0.5")
    page.route_web_socket(re.compile(r".*/ws/user/$"), lambda ws: ws.close(code=1011))
    page.set_viewport_size(DESKTOP)
    sign_in(page, trader)
    expect(page.locator("#conn-user")).to_have_attribute("data-state", "polling")
    expect(page.locator("#conn-market")).to_have_attribute("data-state", "live")

    page.select_option("#order-type", "limit")
    page.locator("[data-side-choice=sell]").click()
    page.fill("#order-price", "65050")
    page.fill("#order-quantity", "0.01")
    page.locator("#order-submit").click()
    order = wait_for(lambda: SpotOrder.objects.filter(user=trader, status="open").first(), "the sell to rest")
    expect(page.locator(f"#open-orders tr[data-order='{order.pk}']")).to_be_visible()
    expect(level(page, "ask", "65050")).to_have_class(re.compile(r"\bmine\b"))

    _taker, _ = spot_order_place(
        user=maker,
        request=order_request(
            **{
                "symbol": SYMBOL,
                "side": "buy",
                "type": "limit",
                "price": "65050",
                "quantity": "0.01",
                "time_in_force": "IOC",
            }
        ),
    )
    wait_for(lambda: SpotOrder.objects.get(pk=order.pk).status == "filled", "the maker to lift the offer")
    expect(page.locator(f"#open-orders tr[data-order='{order.pk}']")).to_have_count(0, timeout=LIVE_MS)
    page.locator("#tab-fills").click()
    fill = page.locator(f"#fills tr[data-order='{order.pk}']")
    expect(fill.locator("[data-field=liquidity]")).to_have_text("Maker", timeout=LIVE_MS)
    expect(fill.locator("[data-field=fee]")).to_have_text("0.6505 USDT")  # 0.1% maker fee on 650.50
    page.locator("#tab-balances").click()
    expect_balance(page, "USDT", "649.85", "0.00")
    expect_balance(page, "BTC", "0.49", "0.00")
    assert balance_of(user=trader, asset="USDT").available == Decimal("649.8495")
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header stays on top in a full-page shot
    page.screenshot(path=str(screenshot_dir / "trading-polling.png"), full_page=True)


def test_book_gap_resubscribes(page, maker):
    """A delta that does not follow the page's book (here: a forged one that crosses it) makes
    the page ask for a new snapshot instead of showing a wrong book."""
    sockets = []

    def relay(ws):
        server = ws.connect_to_server()
        ws.on_message(lambda message: server.send(message))
        server.on_message(lambda message: ws.send(message))
        sockets.append(ws)  # the test injects a frame through it below

    page.route_web_socket(re.compile(r".*/ws/market/$"), relay)
    page.goto(f"/markets/{SYMBOL}/")
    expect(level(page, "ask", "65100")).to_have_attribute("data-quantity", "0.05")
    sequence = int(page.locator("[data-page=market]").get_attribute("data-book-sequence"))
    forged = json.dumps(
        {"channel": "book:BTC-USDT", "type": "delta", "sequence": sequence + 1, "bids": [["66000", "1"]], "asks": []},
        separators=(",", ":"),
    )
    assert sockets
    for ws in sockets:  # the chart's socket (market.js) and the book's (trade.js)
        ws.send(forged)
    expect(page.locator("[data-page=market]")).to_have_attribute("data-book-resyncs", "1")
    # the fresh snapshot: the real book, without the forged bid
    expect(level(page, "ask", "65100")).to_have_attribute("data-quantity", "0.05")
    expect(level(page, "bid", "64900")).to_have_attribute("data-quantity", "0.05")
    expect(level(page, "bid", "66000")).to_have_count(0)


def test_anonymous_visitors_see_the_book_and_a_sign_in_prompt(page, maker, screenshot_dir):
    page.set_viewport_size(DESKTOP)
    page.goto(f"/markets/{SYMBOL}/")
    expect(page.locator("#trade-login")).to_contain_text("Sign in")
    expect(page.locator("#trade-login a", has_text="Sign in")).to_have_attribute(
        "href", f"/login/?next=/markets/{SYMBOL}/"
    )
    expect(page.locator("#spot-ticket")).to_have_count(0)
    expect(page.locator("#conn-user")).to_have_count(0)
    expect(page.locator("#conn-market")).to_have_attribute("data-state", "live")
    expect(level(page, "ask", "65100")).to_have_attribute("data-quantity", "0.05")
    # the book is live: another order shows up without a reload
    resting(place(maker, "sell", "65150", "0.02"))
    expect(level(page, "ask", "65150")).to_have_attribute("data-quantity", "0.02")
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header stays on top in a full-page shot
    page.screenshot(path=str(screenshot_dir / "trading-anonymous.png"), full_page=True)
