"""The ccxt venue's market orders (settlement step 3), lookups and error mapping on recorded
Binance traffic (see recordings/README.md).

Only ``exchange.fetch`` — the one HTTP call under every ccxt method — is replaced, as ccxt's
static tests do: ccxt builds and signs the real request, and parses the recorded reply (or
maps the documented error body through Binance's own ``handle_errors``). The tests at the end
use ccxt's real HTTP layer against sockets on 127.0.0.1.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import ccxt
import pytest

from venues.base import (
    VenueInsufficientBalance,
    VenueRateLimited,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)
from venues.ccxt_venue import CcxtVenue, map_ccxt_error

RECORDING = json.loads((Path(__file__).parent / "recordings" / "ccxt_binance_orders.json").read_text())
SKIP_KEYS = set(RECORDING["requests"]["skipKeys"])


def case(kind, method, description=None):
    cases = RECORDING[kind][method]
    if description is None:
        (only,) = cases
        return only
    return next(c for c in cases if c["description"] == description)


def error_body(name):
    return next(e for e in RECORDING["errors"] if e["name"] == name)


def binance():
    """A ccxt binance whose markets come from the recorded exchangeInfo entries, parsed by the
    installed ccxt itself (as ``load_markets`` would), with dummy signing keys."""
    exchange = ccxt.binance({"apiKey": "test-key", "secret": "test-secret", "enableRateLimit": False})
    exchange.options["crossMarginPairsData"] = []  # normally fetched from the margin endpoints
    exchange.options["isolatedMarginPairsData"] = []
    exchange.set_markets([exchange.parse_market(info) for info in RECORDING["exchangeInfoSymbols"].values()])
    exchange.requests = []
    return exchange


def replaying(response):
    exchange = binance()

    def fetch(url, method="GET", headers=None, body=None):
        exchange.requests.append((method, url, body))
        return copy.deepcopy(response)

    exchange.fetch = fetch
    return exchange


def raising(error):
    exchange = binance()

    def fetch(url, method="GET", headers=None, body=None):
        exchange.requests.append((method, url, body))
        raise error

    exchange.fetch = fetch
    return exchange


def answering_error(name):
    """What ccxt's own ``fetch`` does with an HTTP error status: Binance's ``handle_errors``
    on the body, then the generic status table, then a bare ExchangeError."""
    recorded = error_body(name)
    exchange = binance()

    def fetch(url, method="GET", headers=None, body=None):
        exchange.requests.append((method, url, body))
        response_headers = recorded.get("headers", {})
        exchange.last_response_headers = response_headers
        text = recorded["body"]
        exchange.handle_errors(
            recorded["status"], "", url, method, response_headers, text, exchange.parse_json(text), headers, body
        )
        exchange.handle_http_status_code(recorded["status"], "", url, method, text)
        raise ccxt.ExchangeError(f"binance {method} {url}")

    exchange.fetch = fetch
    return exchange


def params(text):
    return dict(parse_qsl(text, keep_blank_values=True))


def without(skipped, values):
    return {k: v for k, v in values.items() if k not in skipped}


def venue(exchange, **kwargs):
    return CcxtVenue("binance", exchange=exchange, timeout_ms=kwargs.pop("timeout_ms", 3000), **kwargs)


# --- requests --------------------------------------------------------------------------------


def test_a_quote_buy_sends_the_recorded_quoteorderqty_request_with_our_client_id():
    recorded = case("requests", "createMarketBuyOrderWithCost")
    exchange = raising(ccxt.RequestTimeout("binance POST https://api.binance.com/api/v3/order"))

    with pytest.raises(VenueTimeout):  # a read timeout after sending: outcome unknown
        venue(exchange).market_order(
            client_order_id="stl-1001-3", symbol="BTC-USDT", side="buy", quote_amount=Decimal(15)
        )

    ((method, url, body),) = exchange.requests
    assert method == "POST"
    assert urlsplit(url).path == urlsplit(recorded["url"]).path == "/api/v3/order"
    assert urlsplit(url).netloc == "api.binance.com"  # production, not the recording's testnet
    sent = params(body)
    assert without(SKIP_KEYS, sent) == without(SKIP_KEYS, params(recorded["output"]))
    assert sent["newClientOrderId"] == "stl-1001-3"  # ours, not ccxt's broker-prefixed one
    assert (sent["type"], sent["side"], sent["quoteOrderQty"]) == ("MARKET", "BUY", "15")
    assert "quantity" not in sent and {"timestamp", "signature", "recvWindow"} <= set(sent)


def test_a_lookup_asks_for_our_client_id_on_the_spot_order_endpoint():
    spot = case("requests", "fetchOrder", "Spot fetchOrder")
    by_client_id = case("requests", "fetchOrderWithClientOrderId")
    exchange = replaying(case("responses", "fetchOrder")["httpResponse"])

    venue(exchange).fetch_order(client_order_id="x-R4BD3S825806ed40c861260428a48c", symbol="LTC-USDT")

    ((method, url, body),) = exchange.requests
    assert method == "GET" and body is None
    assert urlsplit(url).path == urlsplit(spot["url"]).path == "/api/v3/order"
    sent = params(urlsplit(url).query)
    # the recorded spot lookup by order id, with the id swapped for the client id exactly as
    # in the recorded lookup by client id
    expected = without(SKIP_KEYS | {"orderId"}, params(urlsplit(spot["url"]).query))
    expected["origClientOrderId"] = "x-R4BD3S825806ed40c861260428a48c"
    assert "origClientOrderId" in params(urlsplit(by_client_id["url"]).query)
    assert without(SKIP_KEYS, sent) == expected
    assert "orderId" not in sent


# --- replies ---------------------------------------------------------------------------------


def test_a_market_sell_maps_the_recorded_filled_order():
    recorded = case("responses", "fetchOrder")
    parsed = recorded["parsedResponse"]
    exchange = replaying(recorded["httpResponse"])

    order = venue(exchange).market_order(
        client_order_id="x-R4BD3S825806ed40c861260428a48c", symbol="LTC-USDT", side="sell", amount=Decimal("0.1")
    )

    ((method, url, body),) = exchange.requests
    sent = params(body)
    assert method == "POST" and urlsplit(url).path == "/api/v3/order"
    assert without(SKIP_KEYS, sent) == {
        "symbol": "LTCUSDT",
        "side": "SELL",
        "newOrderRespType": "FULL",
        "type": "MARKET",
        "quantity": "0.1",
    }
    assert sent["newClientOrderId"] == "x-R4BD3S825806ed40c861260428a48c"
    assert parsed["status"] == "closed" and order.status == "filled"
    assert order.venue_order_id == parsed["id"] == "3397148653"
    assert order.client_order_id == parsed["clientOrderId"]
    assert (order.symbol, order.side) == (parsed["symbol"].replace("/", "-"), parsed["side"])  # the platform's form
    assert order.amount == Decimal(str(parsed["amount"])) == Decimal("0.1")
    assert order.filled == Decimal(str(parsed["filled"])) == Decimal("0.1")
    assert order.cost == Decimal(str(parsed["cost"])) == Decimal("9.08")
    assert order.average == Decimal(str(parsed["average"])) == Decimal("90.8")
    # Binance's order query carries no fills: the fee is unknown, not zero
    assert parsed["fee"] is None and (order.fee, order.fee_asset) == (None, "")
    assert order.raw["info"]["cummulativeQuoteQty"] == "9.08000000"


def test_a_lookup_maps_the_recorded_order_like_ccxt_parsed_it():
    recorded = case("responses", "fetchOrder")
    parsed = recorded["parsedResponse"]
    order = venue(replaying(recorded["httpResponse"])).fetch_order(
        client_order_id="x-R4BD3S825806ed40c861260428a48c", symbol="LTC-USDT"
    )
    assert order is not None
    assert (order.venue_order_id, order.status, order.side) == (parsed["id"], "filled", "sell")
    assert (float(order.filled), float(order.cost), float(order.average)) == (
        parsed["filled"],
        parsed["cost"],
        parsed["average"],
    )
    assert order.is_final


def test_an_accepted_but_unfilled_order_is_open():
    recorded = case("responses", "createOrder")
    parsed = recorded["parsedResponse"]
    exchange = replaying(recorded["httpResponse"])

    order = venue(exchange).market_order(
        client_order_id="x-TKT5PX2Fc0ccf4c20afe486783218b", symbol="ETH-USDT", side="buy", amount=Decimal("0.0086")
    )

    sent = params(exchange.requests[0][2])
    assert (sent["symbol"], sent["side"], sent["type"], sent["quantity"]) == ("ETHUSDT", "BUY", "MARKET", "0.0086")
    assert parsed["status"] == "open"
    assert order.status == "open" and not order.is_final
    assert (order.filled, order.cost, order.average) == (Decimal(0), Decimal(0), None)
    assert order.amount == Decimal(str(parsed["amount"]))
    assert order.venue_order_id == "2672907"


def test_an_unreadable_reply_to_a_placement_is_an_unknown_outcome():
    # the recorded filled order with its order id removed: ccxt parses it, we cannot use it
    broken = dict(case("responses", "fetchOrder")["httpResponse"])
    del broken["orderId"]
    with pytest.raises(VenueTimeout, match="look the order up"):
        venue(replaying(broken)).market_order(
            client_order_id="stl-9-3", symbol="LTC-USDT", side="sell", amount=Decimal("0.1")
        )
    with pytest.raises(VenueUnavailable):
        venue(replaying(broken)).fetch_order(client_order_id="stl-9-3", symbol="LTC-USDT")


# --- error bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ccxt_error", "on_placement", "on_lookup"),
    [
        ("insufficient_balance", ccxt.InsufficientFunds, VenueInsufficientBalance, VenueInsufficientBalance),
        ("market_closed", ccxt.MarketClosed, VenueRejected, VenueRejected),
        ("invalid_symbol", ccxt.BadSymbol, VenueRejected, VenueRejected),
        ("invalid_api_key", ccxt.AuthenticationError, VenueRejected, VenueRejected),
        ("too_many_requests", ccxt.DDoSProtection, VenueRateLimited, VenueRateLimited),
        ("backend_timeout", ccxt.RequestTimeout, VenueTimeout, VenueTimeout),
        ("internal_error", ccxt.OperationFailed, VenueTimeout, VenueUnavailable),
        ("service_unavailable", ccxt.ExchangeNotAvailable, VenueTimeout, VenueUnavailable),
        ("maintenance", ccxt.OnMaintenance, VenueUnavailable, VenueUnavailable),
    ],
)
def test_binance_error_bodies_map_to_venue_errors(name, ccxt_error, on_placement, on_lookup):
    placing = venue(answering_error(name))
    with pytest.raises(on_placement) as placed:
        placing.market_order(client_order_id="stl-5-3", symbol="BTC-USDT", side="buy", quote_amount=Decimal(100))
    assert isinstance(placed.value.__cause__, ccxt_error)  # what Binance's handle_errors made of the body
    assert placed.value.client_order_id == "stl-5-3" and placed.value.venue == "ccxt:binance"

    looking = venue(answering_error(name))
    with pytest.raises(on_lookup) as looked:
        looking.fetch_order(client_order_id="stl-5-3", symbol="BTC-USDT")
    assert isinstance(looked.value.__cause__, ccxt_error)


def test_a_rate_limit_carries_binances_retry_after():
    with pytest.raises(VenueRateLimited) as caught:
        venue(answering_error("too_many_requests")).market_order(
            client_order_id="stl-6-3", symbol="BTC-USDT", side="sell", amount=Decimal("0.01")
        )
    assert caught.value.retry_after == 7.0 and caught.value.transient


def test_an_unknown_client_id_is_none():
    exchange = answering_error("order_not_found")
    assert venue(exchange).fetch_order(client_order_id="stl-never-3", symbol="BTC-USDT") is None
    assert "origClientOrderId=stl-never-3" in exchange.requests[0][1]


# --- the mapping rules on ccxt's exception classes --------------------------------------------


@pytest.mark.parametrize(
    ("error", "write", "expected"),
    [
        (
            ccxt.NetworkError("binance POST https://api.binance.com/api/v3/order Connection aborted."),
            True,
            VenueTimeout,
        ),
        (
            ccxt.NetworkError("binance GET https://api.binance.com/api/v3/order Connection aborted."),
            False,
            VenueUnavailable,
        ),
        (ccxt.RequestTimeout("timed out"), False, VenueTimeout),
        (ccxt.BadResponse("binance unexpected response"), True, VenueTimeout),
        (ccxt.InvalidNonce("Timestamp for this request is outside of the recvWindow."), True, VenueUnavailable),
        (ccxt.RateLimitExceeded("slow down"), True, VenueRateLimited),
        (ccxt.InvalidOrder("binance amount must be greater than minimum amount precision"), True, VenueRejected),
        (ccxt.BadRequest("bad"), True, VenueRejected),
        (ccxt.PermissionDenied("no"), True, VenueRejected),
        (ccxt.NotSupported("no quote buys"), True, VenueRejected),
        (ccxt.ExchangeError("binance something"), True, VenueRejected),
        (RuntimeError("a bug after the request went out"), True, VenueTimeout),
        (RuntimeError("a bug in a lookup"), False, VenueUnavailable),
    ],
)
def test_the_mapping_rules(error, write, expected):
    mapped = map_ccxt_error(error, write=write)
    assert type(mapped) is expected
    assert type(error).__name__ in str(mapped)


def test_construction():
    built = CcxtVenue("binance", api_key="test-key", secret="test-secret", timeout_ms=2500)
    assert built.exchange.timeout == 2500 and built.timeout_s == 2.5
    assert built.exchange.apiKey == "test-key" and built.exchange.enableRateLimit is True
    assert built.name == "ccxt:binance" and built.client_id_param == "newClientOrderId"
    # Binance refuses requests older than recvWindow (10 s in ccxt): after that and our
    # timeout, a lookup that finds nothing is final
    assert built.unknown_outcome_grace_s == pytest.approx(10 + 2.5)
    assert CcxtVenue("okx", timeout_ms=1000).client_id_param == "clientOrderId"
    with pytest.raises(ValueError):
        CcxtVenue("no-such-exchange")
    with pytest.raises(ValueError):
        CcxtVenue("binance", timeout_ms=0)
    with pytest.raises(ValueError):  # the contract is checked before any request
        venue(binance()).market_order(client_order_id="a b", symbol="BTC-USDT", side="buy", amount=Decimal(1))


# --- ccxt's real HTTP layer ------------------------------------------------------------------


def _private_at(port):
    exchange = binance()
    exchange.urls["api"]["private"] = f"http://127.0.0.1:{port}/api/v3"
    return exchange


def test_a_refused_connection_proves_nothing_was_sent():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connect() is refused

    placing = venue(_private_at(port), timeout_ms=1000)
    with pytest.raises(VenueUnavailable) as caught:
        placing.market_order(client_order_id="stl-7-3", symbol="BTC-USDT", side="buy", quote_amount=Decimal(100))
    assert isinstance(caught.value.__cause__, ccxt.NetworkError)


def test_a_silent_server_after_the_request_was_sent_is_an_unknown_outcome():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    held, received, stop = [], [], threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            held.append(connection)
            connection.settimeout(0.2)
            data = b""
            while True:  # read the whole request, answer nothing
                try:
                    chunk = connection.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
            received.append(data)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        silent = venue(_private_at(port), timeout_ms=400)
        with pytest.raises(VenueTimeout) as caught:
            silent.market_order(client_order_id="stl-8-3", symbol="BTC-USDT", side="buy", quote_amount=Decimal(100))
        assert isinstance(caught.value.__cause__, ccxt.RequestTimeout)
        with pytest.raises(VenueTimeout):
            silent.fetch_order(client_order_id="stl-8-3", symbol="BTC-USDT")
        assert received and b"POST /api/v3/order" in received[0]  # the order did go out
        assert b"newClientOrderId=stl-8-3" in b"".join(received)
    finally:
        stop.set()
        thread.join(2)
        for connection in held:
            connection.close()
        server.close()


def test_a_venue_call_leaves_the_threads_decimal_context_as_it_was():
    import decimal

    before = decimal.getcontext().copy()
    exchange = raising(ccxt.RequestTimeout("binance POST https://api.binance.com/api/v3/order"))
    with pytest.raises(VenueTimeout):
        venue(exchange).market_order(
            client_order_id="stl-1002-3", symbol="BTC-USDT", side="buy", quote_amount=Decimal(15)
        )
    after = decimal.getcontext()
    assert (after.rounding, after.prec, after.traps) == (before.rounding, before.prec, before.traps)
