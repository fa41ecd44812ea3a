"""Each page keeps one /ws/market/ connection, whatever parts of it show market data.

The market page draws the chart and the ticker, the order book and the recent trades: all
four subscribe their channels on the same socket. A signed-in trader has one more socket,
/ws/user/, for their own orders and balances. The markets overview and the options page
open one market socket too.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from marketdata.models import IndexPrint
from marketdata.services import instruments_sync
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser]

SYMBOL = "BTC-USDT"
INDEX = {"BTC": Decimal("65000.12"), "ETH": Decimal("3400.55")}
SETTLE_MS = 1500  # time for a late second socket (or a reconnect) to show up


@pytest.fixture
def listed(transactional_db):
    for underlying, price in INDEX.items():
        IndexPrint.objects.create(underlying=underlying, ts=timezone.now(), price=price, stale=False, sources={})
    instruments_sync(index_prices=INDEX)


class Sockets:
    """Every websocket the page opens, and the channels it subscribes on each."""

    def __init__(self, page):
        self.opened = []
        self.channels: dict[str, list[str]] = {}
        page.on("websocket", self._opened)

    def _opened(self, ws):
        self.opened.append(ws.url)
        subscribed = self.channels.setdefault(ws.url, [])

        def sent(payload):
            try:
                message = json.loads(payload)
            except (TypeError, ValueError):
                return
            if isinstance(message, dict) and message.get("op") == "subscribe":
                subscribed.extend(message.get("channels", []))

        ws.on("framesent", sent)

    def to(self, path: str) -> list[str]:
        return [url for url in self.opened if url.endswith(path)]


def test_the_market_page_opens_one_market_socket(page, listed):
    sockets = Sockets(page)
    page.goto(f"/markets/{SYMBOL}/")
    expect(page.locator("#conn-market")).to_have_attribute("data-state", "live")
    expect(page.locator("#chart")).to_have_attribute(
        "data-bars", re.compile(r"^\d+$")
    )  # the chart has loaded its history
    page.wait_for_timeout(SETTLE_MS)
    market = sockets.to("/ws/market/")
    assert len(market) == 1, sockets.opened
    # chart, ticker, book and trades all subscribed on that one socket
    assert {f"ticker:{SYMBOL}", f"candles:{SYMBOL}:1m", f"book:{SYMBOL}", f"trades:{SYMBOL}"} <= set(
        sockets.channels[market[0]]
    )
    assert sockets.to("/ws/user/") == []

    # another interval moves the chart to another channel on the same socket
    page.locator("[data-interval-choice='1h']").click()
    page.wait_for_function(
        "() => document.querySelector('[data-interval-choice=\"1h\"]').getAttribute('aria-pressed') === 'true'"
    )
    page.wait_for_timeout(SETTLE_MS)
    assert len(sockets.to("/ws/market/")) == 1, sockets.opened
    assert f"candles:{SYMBOL}:1h" in sockets.channels[market[0]]


def test_a_signed_in_trader_has_one_market_and_one_user_socket(page, listed):
    user = UserFactory()
    sockets = Sockets(page)
    path = f"/markets/{SYMBOL}/"
    page.goto(f"/login/?next={path}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    expect(page.locator("#spot-ticket")).to_have_attribute("data-ready", "true")
    expect(page.locator("#conn-market")).to_have_attribute("data-state", "live")
    expect(page.locator("#conn-user")).to_have_attribute("data-state", "live")
    page.wait_for_timeout(SETTLE_MS)
    assert len(sockets.to("/ws/market/")) == 1, sockets.opened
    assert len(sockets.to("/ws/user/")) == 1, sockets.opened


@pytest.mark.parametrize("path", ["/markets/", "/options/"])
def test_the_other_market_pages_open_one_market_socket(page, listed, path):
    sockets = Sockets(page)
    page.goto(path)
    expect(page.locator("body")).to_have_attribute("data-stream", "live")
    page.wait_for_timeout(SETTLE_MS)
    assert len(sockets.to("/ws/market/")) == 1, sockets.opened
