"""The market data API (API.md "Market data"): instruments, ticker, book, trades, candles
and the watchlist, in the API.md conventions (decimal strings, the error format)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone as dj_timezone

from marketdata.models import Candle, CandleSource, IndexPrint, Instrument, InstrumentKind, WatchlistItem
from marketdata.series import expiries, parse_series_symbol
from marketdata.services import instruments_sync
from tests.accounts.helpers import assert_error
from tests.factories import UserFactory

UTC = UTC
PRICES = {"BTC": Decimal("65000"), "ETH": Decimal("3400")}

pytestmark = pytest.mark.django_db


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def spot():
    instruments_sync(index_prices={})
    return Instrument.objects.filter(kind=InstrumentKind.SPOT)


@pytest.fixture
def listed():
    instruments_sync(index_prices=PRICES)


# --- instruments --------------------------------------------------------------------------


def test_instruments_are_public_and_list_the_spot_pairs(api, spot):
    response = api.get("/api/v1/instruments")
    assert response.status_code == 200, response.content
    rows = {row["symbol"]: row for row in response.json()}
    assert set(rows) == {"BTC-USDT", "ETH-USDT"}
    btc = rows["BTC-USDT"]
    assert btc["kind"] == "spot" and btc["base"] == "BTC" and btc["quote"] == "USDT"
    assert (btc["tick_size"], btc["lot_size"], btc["min_notional"]) == ("0.01", "0.00001", "10")
    assert rows["ETH-USDT"]["lot_size"] == "0.0001"
    for row in rows.values():
        for key in ("tick_size", "lot_size", "min_notional"):
            assert isinstance(row[key], str) and Decimal(row[key]) >= 0
        assert row["strike"] is None and row["expiry"] is None and row["option_type"] is None
        assert row["underlying"] is None


def test_instruments_list_option_series_after_sync(api, listed):
    response = api.get("/api/v1/instruments")
    assert response.status_code == 200
    rows = response.json()
    options = [row for row in rows if row["kind"] == "option"]
    assert {row["symbol"] for row in rows if row["kind"] == "spot"} == {"BTC-USDT", "ETH-USDT"}
    assert {row["underlying"] for row in options} == {"BTC", "ETH"}
    listed_expiries = {iso(e) for e in expiries(dj_timezone.now())}
    for row in options:
        spec = parse_series_symbol(row["symbol"])
        assert spec is not None, row
        assert row["underlying"] == row["base"] == spec.underlying
        assert row["expiry"] == iso(spec.expiry) and row["expiry"].endswith("T08:00:00Z")
        assert isinstance(row["strike"], str) and Decimal(row["strike"]) == spec.strike
        assert row["option_type"] == {"C": "call", "P": "put"}[spec.option_type]
        assert row["tick_size"] == "0.01" and row["lot_size"] == "0.01" and row["min_notional"] == "0"
    # The expiry calendar of now (unless a boundary passed between the sync and this line).
    assert {row["expiry"] for row in options} <= listed_expiries | {
        iso(e) for e in expiries(dj_timezone.now() - timedelta(seconds=5))
    }
    calls = {(r["underlying"], r["expiry"], r["strike"]) for r in options if r["option_type"] == "call"}
    puts = {(r["underlying"], r["expiry"], r["strike"]) for r in options if r["option_type"] == "put"}
    assert calls == puts


def test_instruments_filter_by_kind_and_underlying(api, listed):
    options = api.get("/api/v1/instruments", {"kind": "option", "underlying": "BTC"}).json()
    assert options and all(row["kind"] == "option" and row["underlying"] == "BTC" for row in options)
    assert len(options) == Instrument.objects.filter(kind="option", base="BTC", active=True).count()
    # the underlying filter is case-insensitive
    assert api.get("/api/v1/instruments", {"kind": "option", "underlying": "btc"}).json() == options
    spot = api.get("/api/v1/instruments", {"kind": "spot"}).json()
    assert [row["symbol"] for row in spot] == ["BTC-USDT", "ETH-USDT"]
    eth = api.get("/api/v1/instruments", {"underlying": "ETH"}).json()
    assert {row["base"] for row in eth} == {"ETH"} and "ETH-USDT" in {row["symbol"] for row in eth}
    assert_error(api.get("/api/v1/instruments", {"underlying": "DOGE"}), 400, "validation_error", field="underlying")


def test_instruments_refuse_an_unknown_kind(api, listed):
    assert_error(api.get("/api/v1/instruments", {"kind": "bogus"}), 400, "validation_error", field="kind")


def test_instruments_sync_is_idempotent_and_retires_expired_series(api):
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    first = instruments_sync(now=now, index_prices=PRICES)
    count = Instrument.objects.count()
    assert first["created"] == count > 2 and first["retired"] == 0
    assert instruments_sync(now=now, index_prices=PRICES) == {"created": 0, "retired": 0}
    assert Instrument.objects.count() == count

    # A day later the 21 November daily has expired (and the 20 November one never listed).
    later = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    second = instruments_sync(now=later, index_prices=PRICES)
    expired = Instrument.objects.filter(kind="option", expiry__lte=later)
    assert expired.exists()
    assert second["retired"] == expired.count()
    assert not expired.filter(active=True).exists()
    assert set(expired.values_list("expiry", flat=True)) == {datetime(2026, 11, 21, 8, 0, tzinfo=UTC)}
    assert not Instrument.objects.filter(kind="option", expiry__gt=later, active=False).exists()
    # The calendar moved on: the new daily (24 November) is listed.
    assert Instrument.objects.filter(
        kind="option", expiry=datetime(2026, 11, 24, 8, 0, tzinfo=UTC), base="BTC"
    ).exists()
    assert instruments_sync(now=later, index_prices=PRICES) == {"created": 0, "retired": 0}
    assert Instrument.objects.filter(kind="spot", active=True).count() == 2

    # The API lists active series only.
    symbols = {row["symbol"] for row in api.get("/api/v1/instruments", {"kind": "option"}).json()}
    assert symbols == set(Instrument.objects.filter(kind="option", active=True).values_list("symbol", flat=True))
    assert not symbols & set(expired.values_list("symbol", flat=True))


def test_instruments_sync_without_a_price_lists_no_series_for_that_underlying():
    instruments_sync(index_prices={"ETH": Decimal("3400")})
    assert not Instrument.objects.filter(kind="option", base="BTC").exists()
    assert Instrument.objects.filter(kind="option", base="ETH").exists()


# --- ticker -------------------------------------------------------------------------------


def test_ticker_follows_the_index(api, spot):
    now = dj_timezone.now()
    IndexPrint.objects.create(underlying="BTC", ts=now - timedelta(seconds=2), price=Decimal("64990.10"), sources={})
    IndexPrint.objects.create(underlying="BTC", ts=now, price=Decimal("65012.34"), sources={"used": ["a", "b"]})
    IndexPrint.objects.create(underlying="ETH", ts=now, price=Decimal("3400.50"), sources={})
    response = api.get("/api/v1/markets/BTC-USDT/ticker")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["symbol"] == "BTC-USDT"
    assert body["last"] == body["index_price"] == "65012.34"
    assert body["index_stale"] is False
    assert body["bid"] is None and body["ask"] is None
    assert body["time"] == iso(now)
    assert api.get("/api/v1/markets/eth-usdt/ticker").json()["last"] == "3400.5"


def test_ticker_24h_prices_come_from_the_hourly_candles_and_volume_from_trades(api, spot):
    now = dj_timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    for k, (o, h, low, c, v) in enumerate(
        [("60000", "61000", "59000", "60500", "2"), ("60500", "66000", "60400", "65000", "3")]
    ):
        Candle.objects.create(
            symbol="BTC-USDT",
            source=CandleSource.INDEX,
            interval="1h",
            open_time=hour - timedelta(hours=1 - k),
            open=Decimal(o),
            high=Decimal(h),
            low=Decimal(low),
            close=Decimal(c),
            volume=Decimal(v),
        )
    # Trade candles are another series: their prices do not mix into the index-based figures,
    # but they are the volume (the index has none): the 1m ones of the last 24 h.
    for interval, ago, volume in (("1h", timedelta(hours=2), "7"), ("1m", timedelta(minutes=3), "1.5")):
        Candle.objects.create(
            symbol="BTC-USDT",
            source=CandleSource.TRADES,
            interval=interval,
            open_time=hour - ago,
            open=Decimal("1"),
            high=Decimal("99999"),
            low=Decimal("1"),
            close=Decimal("1"),
            volume=Decimal(volume),
        )
    for ago, volume in ((timedelta(hours=20), "3.5"), (timedelta(hours=25), "100")):
        Candle.objects.create(
            symbol="BTC-USDT",
            source=CandleSource.TRADES,
            interval="1m",
            open_time=hour - ago,
            open=Decimal("1"),
            high=Decimal("1"),
            low=Decimal("1"),
            close=Decimal("1"),
            volume=Decimal(volume),
        )
    IndexPrint.objects.create(underlying="BTC", ts=now, price=Decimal("66000"))
    body = api.get("/api/v1/markets/BTC-USDT/ticker").json()
    assert (body["high_24h"], body["low_24h"], body["volume_24h"]) == ("66000", "59000", "5")
    assert body["change_24h_percent"] == "10"  # 60000 -> 66000


def test_ticker_with_a_stale_index_has_no_last(api, spot):
    IndexPrint.objects.create(
        underlying="BTC", ts=dj_timezone.now(), price=None, stale=True, sources={"excluded": {"a": "stale"}}
    )
    body = api.get("/api/v1/markets/BTC-USDT/ticker").json()
    assert body["index_stale"] is True
    assert body["last"] is None and body["index_price"] is None
    # A fresh print before the stale one does not count: the latest says stale.
    IndexPrint.objects.create(underlying="ETH", ts=dj_timezone.now() - timedelta(seconds=1), price=Decimal("3400"))
    IndexPrint.objects.create(underlying="ETH", ts=dj_timezone.now(), price=None, stale=True)
    body = api.get("/api/v1/markets/ETH-USDT/ticker").json()
    assert body["index_stale"] is True and body["last"] is None


def test_ticker_without_any_print_is_stale(api, spot):
    body = api.get("/api/v1/markets/BTC-USDT/ticker").json()
    assert body["index_stale"] is True and body["last"] is None


def test_unknown_symbols_answer_404(api, spot):
    for path in (
        "/api/v1/markets/DOGE-USDT/ticker",
        "/api/v1/markets/DOGE-USDT/orderbook",
        "/api/v1/markets/DOGE-USDT/trades",
        "/api/v1/markets/DOGE-USDT/candles",
        "/api/v1/markets/BTC-20991225-100000-C/ticker",
    ):
        assert_error(api.get(path), 404, "unknown_symbol")


# --- order book and trades ----------------------------------------------------------------


def test_orderbook_is_empty_but_well_formed(api, spot):
    response = api.get("/api/v1/markets/BTC-USDT/orderbook", {"depth": 5})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["bids"] == [] and body["asks"] == [] and body["sequence"] == 0
    assert api.get("/api/v1/markets/BTC-USDT/orderbook").status_code == 200


@pytest.mark.parametrize("depth", ["0", "-1", "abc", "1.5", "501"])
def test_orderbook_refuses_a_bad_depth(api, spot, depth):
    assert_error(
        api.get("/api/v1/markets/BTC-USDT/orderbook", {"depth": depth}), 400, "validation_error", field="depth"
    )


def test_trades_are_an_empty_list(api, spot):
    response = api.get("/api/v1/markets/BTC-USDT/trades")
    assert response.status_code == 200 and response.json() == []
    assert_error(api.get("/api/v1/markets/BTC-USDT/trades", {"limit": "x"}), 400, "validation_error", field="limit")


# --- candles ------------------------------------------------------------------------------

BASE = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def make_candles(symbol: str, interval: str, count: int, *, start: datetime = BASE) -> None:
    seconds = Candle.INTERVALS[interval]
    Candle.objects.bulk_create(
        Candle(
            symbol=symbol,
            source=CandleSource.INDEX,
            interval=interval,
            open_time=start + timedelta(seconds=seconds * k),
            open=Decimal(100 + k),
            high=Decimal(102 + k),
            low=Decimal(99 + k),
            close=Decimal("101.5") + k,
            volume=Decimal("0.25"),
        )
        for k in range(count)
    )


def test_candles_per_interval(api, spot):
    make_candles("BTC-USDT", "1m", 10)
    make_candles("BTC-USDT", "5m", 4)
    make_candles("BTC-USDT", "1h", 3)
    make_candles("BTC-USDT", "1d", 2)
    make_candles("ETH-USDT", "1m", 7)
    # trade candles are not the index history: they give its bars their volume
    for minutes, volume in ((-1, 1), (0, Decimal("0.75"))):
        Candle.objects.create(
            symbol="BTC-USDT",
            source=CandleSource.TRADES,
            interval="1m",
            open_time=BASE + timedelta(minutes=minutes),
            open=1,
            high=1,
            low=1,
            close=1,
            volume=volume,
        )
    response = api.get("/api/v1/markets/BTC-USDT/candles")  # 1m by default
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 10
    assert rows[0] == {
        "time": "2026-11-20T00:00:00Z",
        "open": "100",
        "high": "102",
        "low": "99",
        "close": "101.5",
        "volume": "0.75",
    }
    assert all(row["volume"] == "0" for row in rows[1:])
    assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)
    for interval, count, step in (("5m", 4, 300), ("1h", 3, 3600), ("1d", 2, 86400)):
        rows = api.get("/api/v1/markets/BTC-USDT/candles", {"interval": interval}).json()
        assert len(rows) == count
        times = [datetime.fromisoformat(row["time"].replace("Z", "+00:00")) for row in rows]
        assert all((b - a).total_seconds() == step for a, b in itertools.pairwise(times))
    assert len(api.get("/api/v1/markets/ETH-USDT/candles", {"interval": "1m"}).json()) == 7


def test_candles_start_end_filter(api, spot):
    make_candles("BTC-USDT", "1m", 60)
    rows = api.get(
        "/api/v1/markets/BTC-USDT/candles",
        {"interval": "1m", "start": "2026-11-20T00:10:00Z", "end": "2026-11-20T00:19:00+00:00"},
    ).json()
    assert [row["time"] for row in rows] == [f"2026-11-20T00:{m:02d}:00Z" for m in range(10, 20)]
    after = api.get("/api/v1/markets/BTC-USDT/candles", {"start": "2026-11-20T00:55:00Z"}).json()
    assert [row["time"][14:16] for row in after] == ["55", "56", "57", "58", "59"]
    before = api.get("/api/v1/markets/BTC-USDT/candles", {"end": "2026-11-20T00:02:30Z"}).json()
    assert [row["time"][14:16] for row in before] == ["00", "01", "02"]
    # Another offset means the same instant.
    shifted = api.get(
        "/api/v1/markets/BTC-USDT/candles", {"start": "2026-11-20T02:10:00+02:00", "end": "2026-11-20T02:11:00+02:00"}
    ).json()
    assert [row["time"] for row in shifted] == ["2026-11-20T00:10:00Z", "2026-11-20T00:11:00Z"]
    assert api.get("/api/v1/markets/BTC-USDT/candles", {"start": "2026-11-21T00:00:00Z"}).json() == []


def test_candles_limit(api, spot):
    make_candles("BTC-USDT", "1m", 1200)
    rows = api.get("/api/v1/markets/BTC-USDT/candles").json()
    assert len(rows) == 500  # the default: the latest 500, oldest first
    assert rows[-1]["time"] == "2026-11-20T19:59:00Z"
    rows = api.get("/api/v1/markets/BTC-USDT/candles", {"limit": 1000}).json()
    assert (
        len(rows) == 1000 and rows[0]["time"] == "2026-11-20T03:20:00Z" and rows[-1]["time"] == "2026-11-20T19:59:00Z"
    )
    rows = api.get("/api/v1/markets/BTC-USDT/candles", {"limit": 3, "start": "2026-11-20T00:00:00Z"}).json()
    assert [row["time"] for row in rows] == ["2026-11-20T00:00:00Z", "2026-11-20T00:01:00Z", "2026-11-20T00:02:00Z"]
    rows = api.get("/api/v1/markets/BTC-USDT/candles", {"limit": 2, "end": "2026-11-20T00:10:00Z"}).json()
    assert [row["time"] for row in rows] == ["2026-11-20T00:09:00Z", "2026-11-20T00:10:00Z"]
    for bad in ("1001", "0", "x"):
        assert_error(
            api.get("/api/v1/markets/BTC-USDT/candles", {"limit": bad}), 400, "validation_error", field="limit"
        )


@pytest.mark.parametrize(
    "params, field",
    [
        ({"interval": "2m"}, "interval"),
        ({"interval": "1M"}, "interval"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-13-01T00:00:00Z"}, "start"),
        ({"end": "2026-11-20T25:00:00Z"}, "end"),
        ({"start": "2026-11-20T01:00:00Z", "end": "2026-11-20T00:00:00Z"}, "start"),
    ],
)
def test_candles_refuse_bad_parameters(api, spot, params, field):
    assert_error(api.get("/api/v1/markets/BTC-USDT/candles", params), 400, "validation_error", field=field)


# --- watchlist ----------------------------------------------------------------------------


def test_watchlist_add_list_remove(auth_api, spot, listed):
    series = Instrument.objects.filter(kind="option", base="ETH").first().symbol
    assert auth_api.get("/api/v1/watchlist").json() == []
    response = auth_api.post("/api/v1/watchlist", {"symbol": "BTC-USDT"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"symbol": "BTC-USDT"}
    # again: still one entry; lower case is the same symbol
    assert auth_api.post("/api/v1/watchlist", {"symbol": "btc-usdt"}, format="json").status_code == 201
    assert auth_api.post("/api/v1/watchlist", {"symbol": series}, format="json").status_code == 201
    assert auth_api.get("/api/v1/watchlist").json() == ["BTC-USDT", series]

    response = auth_api.delete("/api/v1/watchlist/BTC-USDT")
    assert response.status_code == 204
    assert auth_api.get("/api/v1/watchlist").json() == [series]
    assert_error(auth_api.delete("/api/v1/watchlist/BTC-USDT"), 404, "not_found")
    assert auth_api.delete(f"/api/v1/watchlist/{series.lower()}").status_code == 204
    assert auth_api.get("/api/v1/watchlist").json() == []


def test_watchlist_refuses_unknown_symbols_and_bad_input(auth_api, spot):
    assert_error(auth_api.post("/api/v1/watchlist", {"symbol": "DOGE-USDT"}, format="json"), 404, "unknown_symbol")
    assert_error(auth_api.post("/api/v1/watchlist", {}, format="json"), 400, "validation_error", field="symbol")
    assert_error(auth_api.delete("/api/v1/watchlist/DOGE-USDT"), 404, "not_found")
    assert not WatchlistItem.objects.exists()


def test_watchlist_is_per_user(auth_api, spot):
    other = UserFactory()
    WatchlistItem.objects.create(user=other, symbol="ETH-USDT")
    assert auth_api.get("/api/v1/watchlist").json() == []
    assert_error(auth_api.delete("/api/v1/watchlist/ETH-USDT"), 404, "not_found")
    assert WatchlistItem.objects.filter(user=other).count() == 1


def test_watchlist_needs_authentication(api, spot):
    assert_error(api.get("/api/v1/watchlist"), 401, "not_authenticated")
    assert_error(api.post("/api/v1/watchlist", {"symbol": "BTC-USDT"}, format="json"), 401, "not_authenticated")
    assert_error(api.delete("/api/v1/watchlist/BTC-USDT"), 401, "not_authenticated")
    assert not WatchlistItem.objects.exists()


# --- hostile input never answers 500 ----------------------------------------------------------


def test_hostile_input_is_refused_cleanly(api, auth_api, spot):
    # PostgreSQL refuses NUL characters in a query: they must not reach it.
    assert_error(api.get("/api/v1/markets/BTC%00-USDT/ticker"), 400, "validation_error", field="path")
    assert_error(api.get("/api/v1/markets/%00/candles"), 400, "validation_error", field="path")
    assert_error(api.get("/api/v1/instruments", {"underlying": "BTC\x00"}), 400, "validation_error", field="underlying")
    assert_error(api.get("/api/v1/instruments", {"kind": "spot\x00"}), 400, "validation_error", field="kind")
    assert_error(auth_api.delete("/api/v1/watchlist/BTC%00"), 400, "validation_error", field="path")
    assert_error(
        auth_api.post("/api/v1/watchlist", {"symbol": "BTC\x00"}, format="json"),
        400,
        "validation_error",
        field="symbol",
    )
    # Unix seconds are accepted for start/end; beyond what a datetime holds is bad input.
    assert api.get("/api/v1/markets/BTC-USDT/candles", {"start": "1700000000"}).status_code == 200
    assert_error(
        api.get("/api/v1/markets/BTC-USDT/candles", {"start": "9" * 20}), 400, "validation_error", field="start"
    )
    assert_error(api.get("/api/v1/markets/BTC-USDT/candles", {"end": "9" * 400}), 400, "validation_error", field="end")
    assert_error(
        api.get("/api/v1/markets/BTC-USDT/candles", {"start": "2026-11-20T00:00:00+25:00"}), 400, "validation_error"
    )
    assert_error(
        api.get("/api/v1/markets/BTC-USDT/orderbook", {"depth": "9" * 30}), 400, "validation_error", field="depth"
    )
    assert_error(
        api.get("/api/v1/markets/BTC-USDT/candles", {"limit": "9" * 30}), 400, "validation_error", field="limit"
    )
