"""The ccxt venue's order book and IOC limit orders (smart routing) on recorded Binance replies:
only ``exchange.fetch`` (the one HTTP call under every ccxt method) is replaced, so ccxt builds
and signs the real request and parses the recorded reply itself (errors go through Binance's
own ``handle_errors``)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import ccxt
import pytest

from venues.base import CANCELLED, FILLED, OPEN, VenueInsufficientBalance, VenueTimeout
from venues.ccxt_venue import CcxtVenue, execution_from_ccxt

RECORDED = json.loads((Path(__file__).parent / "recordings" / "binance_spot.json").read_text())
D = Decimal


def binance(routes: dict):
    """A ccxt binance with its markets parsed from the recorded exchangeInfo entry; ``routes``
    maps (method, path) to a recorded body, or to a recorded error name, or to an exception."""
    exchange = ccxt.binance({"apiKey": "test-key", "secret": "test-secret", "enableRateLimit": False})
    exchange.options["crossMarginPairsData"] = []  # load_markets would fetch these from the margin endpoints
    exchange.options["isolatedMarginPairsData"] = []
    exchange.set_markets([exchange.parse_market(RECORDED["exchangeInfoSymbol"])])
    exchange.requests = []

    def fetch(url, method="GET", headers=None, body=None):
        path = urlsplit(url).path
        exchange.requests.append((method, path, dict(parse_qsl(body or urlsplit(url).query))))
        answer = routes[(method, path)]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, str):  # a recorded HTTP error
            error = RECORDED["errors"][answer]
            exchange.handle_errors(
                error["status"], "", url, method, {}, error["body"], json.loads(error["body"]), headers, body
            )
            raise ccxt.ExchangeError(error["body"])
        return copy.deepcopy(answer)

    exchange.fetch = fetch
    return exchange


def venue(routes) -> CcxtVenue:
    return CcxtVenue("binance", exchange=binance(routes), timeout_ms=3000, taker_fee="0.001", name="binance")


def ioc(v, side, amount, limit, cid):
    return v.ioc_order(client_order_id=cid, symbol="BTC-USDT", side=side, amount=D(amount), limit_price=D(limit))


def test_the_order_book_is_the_recorded_depth_as_decimals():
    v = venue({("GET", "/api/v3/depth"): RECORDED["depth"]})
    book = v.order_book("BTC-USDT", 3)
    assert book.bids[0] == (D("64998.1"), D("0.8124")) and book.asks[0] == (D("64998.11"), D("2.10455"))
    assert [p for p, _ in book.asks] == sorted(p for p, _ in book.asks)
    method, path, query = v.exchange.requests[0]
    assert (method, path, query["symbol"], query["limit"]) == ("GET", "/api/v3/depth", "BTCUSDT", "3")


def test_an_ioc_limit_sends_our_client_id_and_parses_fills_and_fees():
    v = venue({("POST", "/api/v3/order"): RECORDED["createOrderFilled"]})
    execution = ioc(v, "buy", "0.02", "65010.00", "sor-42-binance")
    method, path, sent = v.exchange.requests[0]
    assert (method, path) == ("POST", "/api/v3/order")
    assert sent["newClientOrderId"] == "sor-42-binance" and sent["timeInForce"] == "IOC"
    assert (sent["type"], sent["side"], sent["quantity"], sent["price"]) == ("LIMIT", "BUY", "0.02", "65010")
    assert "signature" in sent
    assert execution.status == FILLED and execution.filled == D("0.02")
    assert execution.cost == D("1299.9622") and execution.fee == D("0.00002") and execution.fee_asset == "BTC"
    assert execution.venue_order_id == "41283377190"


def test_an_expired_ioc_is_a_final_partial_fill():
    v = venue({("POST", "/api/v3/order"): RECORDED["createOrderExpired"]})
    execution = ioc(v, "sell", "1", "64998.10", "sor-43-binance")
    assert execution.status == CANCELLED and execution.is_final and execution.filled == D("0.8124")
    assert execution.fee_asset == "USDT" and execution.fee == D("52.80445644")


def test_lookup_by_client_order_id_and_an_unknown_id_is_none():
    v = venue({("GET", "/api/v3/order"): RECORDED["fetchOrder"]})
    found = v.fetch_order(client_order_id="sor-42-binance", symbol="BTC-USDT")
    assert found.status == FILLED and found.filled == D("0.02") and found.fee is None  # no fills in a query reply
    assert v.exchange.requests[0][2]["origClientOrderId"] == "sor-42-binance"
    missing = venue({("GET", "/api/v3/order"): "orderNotFound"})
    assert missing.fetch_order(client_order_id="sor-99-binance", symbol="BTC-USDT") is None


def test_a_placement_that_times_out_is_unknown_and_a_refusal_is_a_rejection():
    timing_out = venue({("POST", "/api/v3/order"): ccxt.RequestTimeout("binance POST /api/v3/order timed out")})
    with pytest.raises(VenueTimeout):
        ioc(timing_out, "buy", "0.02", "65010.00", "sor-44-binance")
    broke = venue({("POST", "/api/v3/order"): "insufficientBalance"})
    with pytest.raises(VenueInsufficientBalance):  # a rejection: nothing executed
        ioc(broke, "buy", "0.02", "65010.00", "sor-45-binance")


def test_an_ioc_that_filled_nothing_is_cancelled():
    reply = {
        "id": "1",
        "clientOrderId": "x",
        "status": "expired",
        "filled": 0.0,
        "amount": 0.5,
        "cost": 0.0,
        "side": "buy",
    }
    assert execution_from_ccxt(reply, symbol="BTC-USDT", client_order_id="x", side=None).status == CANCELLED


def test_an_ioc_answered_as_still_working_is_looked_up_not_settled():
    working = dict(
        RECORDED["createOrderFilled"],
        status="NEW",
        executedQty="0.00000000",
        cummulativeQuoteQty="0.00000000",
        fills=[],
    )
    v = venue({("POST", "/api/v3/order"): working})
    with pytest.raises(VenueTimeout, match="look the order up"):
        ioc(v, "buy", "0.02", "65010.00", "sor-46-binance")
    reply = {
        "id": "1",
        "clientOrderId": "x",
        "status": "open",
        "filled": 0.0,
        "amount": 0.5,
        "cost": 0.0,
        "side": "buy",
    }
    assert execution_from_ccxt(reply, symbol="BTC-USDT", client_order_id="x", side=None).status == OPEN
