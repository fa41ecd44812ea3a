"""The ccxt adapter on recorded exchange responses (see recordings/README.md).

ccxt's own parsing code runs on the recorded payloads: only ``exchange.fetch`` — the one
HTTP call every ccxt method goes through — is replaced, as ccxt's static response tests do.
Nothing here touches the network; the timeout test talks to a socket on 127.0.0.1.
"""

import copy
import json
import socket
import threading
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest

from marketdata.feed import CcxtTickerSource, Quote, collect_quotes, compute_index

RECORDINGS = Path(__file__).parent / "recordings"
NOW = 1_700_000_000.0


def recording(exchange_id):
    return json.loads((RECORDINGS / f"ccxt_{exchange_id}_btcusdt.json").read_text())


def recorded_case(exchange_id, method):
    (case,) = recording(exchange_id)["methods"][method]
    return case


def replaying(exchange_id, response):
    """A ccxt exchange with the recorded markets whose HTTP layer answers ``response``."""
    exchange = getattr(ccxt, exchange_id)({"markets": recording(exchange_id)["markets"], "enableRateLimit": False})
    exchange.requests = []

    def fetch(url, method="GET", headers=None, body=None):
        exchange.requests.append((method, url))
        return copy.deepcopy(response)

    exchange.fetch = fetch
    return exchange


def failing(exchange_id, error):
    exchange = getattr(ccxt, exchange_id)({"markets": recording(exchange_id)["markets"], "enableRateLimit": False})

    def fetch(url, method="GET", headers=None, body=None):
        raise error

    exchange.fetch = fetch
    return exchange


def test_binance_ticker_from_a_recorded_response():
    case = recorded_case("binance", "fetchTicker")
    exchange = replaying("binance", case["httpResponse"])
    source = CcxtTickerSource("binance", {"BTC": "BTC/USDT"}, timeout_ms=2500, exchange=exchange)

    quote = source.fetch("BTC", NOW)

    assert exchange.requests == [("GET", "https://api.binance.com/api/v3/ticker/24hr?symbol=BTCUSDT")]
    expected = case["parsedResponse"]
    assert (float(quote.bid), float(quote.ask)) == (expected["bid"], expected["ask"])
    # the mid of 73369.83 / 73369.84, half-even to the cent
    assert quote == Quote("ccxt-binance", "BTC", Decimal("73369.84"), Decimal("73369.83"), Decimal("73369.84"), NOW)
    assert exchange.timeout == 2500
    assert source.last_error is None and source.last_success_at == NOW


def test_binance_top_of_book_from_a_recorded_response():
    case = recorded_case("binance", "fetchOrderBook")
    exchange = replaying("binance", case["httpResponse"])
    source = CcxtTickerSource(
        "binance", {"BTC": "BTC/USDT"}, use_order_book=True, order_book_depth=2, exchange=exchange
    )

    quote = source.fetch("BTC", NOW)

    assert exchange.requests == [("GET", "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=2")]
    assert [float(quote.bid), float(quote.ask)] == [
        case["parsedResponse"]["bids"][0][0],
        case["parsedResponse"]["asks"][0][0],
    ]
    assert (quote.price, quote.bid, quote.ask) == (Decimal("42574.30"), Decimal("42574.30"), Decimal("42574.31"))


def test_kraken_ticker_from_a_recorded_response():
    case = recorded_case("kraken", "fetchTicker")
    exchange = replaying("kraken", case["httpResponse"])
    source = CcxtTickerSource("kraken", {"BTC": "BTC/USDT"}, exchange=exchange)

    quote = source.fetch("BTC", NOW)

    assert exchange.requests == [("GET", "https://api.kraken.com/0/public/Ticker?pair=XBTUSDT")]
    expected = case["parsedResponse"]
    assert expected["timestamp"] is None  # kraken sends no time: the quote is dated by the fetch
    assert (float(quote.bid), float(quote.ask)) == (expected["bid"], expected["ask"])
    assert quote == Quote("ccxt-kraken", "BTC", Decimal("73380.65"), Decimal("73380.6"), Decimal("73380.7"), NOW)


def test_recorded_exchanges_feed_the_index():
    sources = [
        CcxtTickerSource(
            "binance", exchange=replaying("binance", recorded_case("binance", "fetchTicker")["httpResponse"])
        ),
        CcxtTickerSource(
            "kraken", exchange=replaying("kraken", recorded_case("kraken", "fetchTicker")["httpResponse"])
        ),
    ]
    result = compute_index(collect_quotes(sources, "BTC", NOW), NOW)
    assert result.used == ["ccxt-binance", "ccxt-kraken"]
    assert result.price == Decimal("73375.24")  # (73369.84 + 73380.65) / 2, half-even
    # ETH/USDT is not among the recorded markets: ccxt refuses the symbol before any request
    eth = collect_quotes(sources, "ETH", NOW)
    assert eth == {"ccxt-binance": None, "ccxt-kraken": None}
    assert [source.last_error.kind for source in sources] == ["bad_symbol", "bad_symbol"]
    assert compute_index(eth, NOW, underlying="ETH").stale


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            ccxt.RequestTimeout("binance GET https://api.binance.com/api/v3/ticker/24hr request timed out (3000 ms)"),
            "timeout",
        ),
        (ccxt.NetworkError("binance GET https://api.binance.com/api/v3/ticker/24hr Connection refused"), "network"),
        (ccxt.ExchangeNotAvailable("binance 503 Service Unavailable"), "network"),
        (ccxt.RateLimitExceeded('binance 429 {"code":-1003,"msg":"Too many requests."}'), "rate_limit"),
        (ccxt.DDoSProtection("binance 418 I'm a teapot"), "rate_limit"),
        (ccxt.ExchangeError('binance {"code":-1121,"msg":"Invalid symbol."}'), "exchange"),
    ],
)
def test_a_failing_exchange_gives_no_quote_and_records_why(error, kind):
    source = CcxtTickerSource("binance", exchange=failing("binance", error))
    assert source.fetch("BTC", NOW) is None
    assert source.last_error.kind == kind
    assert source.last_error.at == NOW
    assert type(error).__name__ in source.last_error.message
    assert source.consecutive_errors == 1
    assert source.fetch("BTC", NOW + 1) is None
    assert source.consecutive_errors == 2


def test_a_source_recovers_after_errors():
    source = CcxtTickerSource("binance", exchange=failing("binance", ccxt.RequestTimeout("timed out")))
    assert source.fetch("BTC", NOW) is None
    source.exchange = replaying("binance", recorded_case("binance", "fetchTicker")["httpResponse"])
    assert source.fetch("BTC", NOW + 5) is not None
    assert source.consecutive_errors == 0 and source.last_success_at == NOW + 5
    assert source.last_error.kind == "timeout"  # kept for operators until the next error


def test_a_network_error_while_loading_markets_is_just_a_missing_quote():
    source = CcxtTickerSource("okx", {"BTC": "BTC/USDT"})  # no markets yet: the first fetch loads them
    source.exchange.fetch = lambda url, method="GET", headers=None, body=None: (_ for _ in ()).throw(
        ccxt.NetworkError("okx GET https://www.okx.com/api/v5/public/instruments Connection reset")
    )
    assert source.fetch("BTC", NOW) is None
    assert source.last_error.kind == "network"


def test_unknown_symbols_and_unmapped_underlyings_are_missing():
    exchange = replaying("binance", recorded_case("binance", "fetchTicker")["httpResponse"])
    source = CcxtTickerSource("binance", {"BTC": "BTC/USDT", "DOGE": "DOGE/USDT"}, exchange=exchange)
    assert source.fetch("DOGE", NOW) is None
    assert source.last_error.kind == "bad_symbol"
    assert source.fetch("ETH", NOW) is None
    assert source.last_error.kind == "config"
    assert exchange.requests == []


def test_an_answer_without_a_price_is_missing():
    source = CcxtTickerSource("binance", exchange=replaying("binance", {"symbol": "BTCUSDT"}))
    assert source.fetch("BTC", NOW) is None
    assert source.last_error.kind == "bad_data"


def test_a_crossed_book_falls_back_to_the_last_trade():
    response = dict(recorded_case("binance", "fetchTicker")["httpResponse"], bidPrice="73400.00000000")
    quote = CcxtTickerSource("binance", exchange=replaying("binance", response)).fetch("BTC", NOW)
    assert quote.price == Decimal("73369.84")


def test_the_default_construction():
    source = CcxtTickerSource("binance")
    assert source.name == "ccxt-binance"
    assert source.symbol_map == {"BTC": "BTC/USDT", "ETH": "ETH/USDT"}
    assert source.exchange.timeout == 3000
    assert source.exchange.enableRateLimit is True
    with pytest.raises(ValueError):
        CcxtTickerSource("no-such-exchange")
    with pytest.raises(ValueError):
        CcxtTickerSource("binance", timeout_ms=0)


def test_a_silent_server_times_out_through_ccxts_real_http_layer():
    """ccxt's own requests-based fetch against a socket that never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # read nothing, answer nothing
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        exchange = ccxt.binance({"markets": recording("binance")["markets"], "enableRateLimit": False})
        exchange.urls["api"]["public"] = f"http://127.0.0.1:{port}/api/v3"
        source = CcxtTickerSource("binance", timeout_ms=300, exchange=exchange)
        assert source.fetch("BTC", NOW) is None
        assert source.last_error.kind == "timeout"
        assert held  # the request did reach the socket
    finally:
        stop.set()
        thread.join(2)
        for connection in held:
            connection.close()
        server.close()
