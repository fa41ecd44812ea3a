"""Volume: what trades on our book is the volume of the candles (the API, the chart's live
bar) and of the 24 h ticker, written by the engine runner in the batch that matched."""

from decimal import Decimal

import pytest
from django.utils import timezone

from marketdata.candles import Bar, bucket_start
from marketdata.models import Candle, CandleSource
from marketdata.selectors import with_trade_volume

from .conftest import client_for

D = Decimal
pytestmark = pytest.mark.django_db


def order(user, side, price, quantity):
    response = client_for(user).post(
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": side, "type": "limit", "price": price, "quantity": quantity},
        format="json",
    )
    assert response.status_code == 201, response.content[:300]
    return response.json()["id"]


def index_candles(now):
    """The feed's candles of this moment (price only, as the index has no volume)."""
    for interval in Candle.INTERVALS:
        Candle.objects.create(
            symbol="BTC-USDT",
            source=CandleSource.INDEX,
            interval=interval,
            open_time=bucket_start(now, interval),
            open=D("65000"),
            high=D("65100"),
            low=D("64900"),
            close=D("65000.12"),
        )


def test_trades_make_the_volume_of_the_ticker_and_of_every_candle(alice, bob, btc_engine, api):
    now = timezone.now()
    index_candles(now)
    ticker = api.get("/api/v1/markets/BTC-USDT/ticker").json()
    assert D(ticker["volume_24h"]) == 0

    order(alice, "sell", "65000.00", "0.5")
    order(bob, "buy", "65000.00", "0.3")
    btc_engine.run()
    order(bob, "buy", "65010.00", "0.2")  # a second batch adds to the same bars
    btc_engine.run()

    ticker = api.get("/api/v1/markets/BTC-USDT/ticker").json()
    assert D(ticker["volume_24h"]) == D("0.5")
    for interval in Candle.INTERVALS:
        candles = api.get(f"/api/v1/markets/BTC-USDT/candles?interval={interval}").json()
        assert candles, interval
        assert D(candles[-1]["volume"]) == D("0.5"), (interval, candles[-1])
        # the index's prices stay what the feed wrote
        assert D(candles[-1]["high"]) == D("65100")
    trades = Candle.objects.get(
        symbol="BTC-USDT", source=CandleSource.TRADES, interval="1m", open_time=bucket_start(now, "1m")
    )
    assert (trades.open, trades.close, trades.volume) == (D("65000"), D("65000"), D("0.5"))

    csv = api.get("/api/v1/markets/BTC-USDT/candles?interval=1h&format=csv").content.decode()
    assert D(csv.strip().splitlines()[-1].split(",")[-1]) == D("0.5")


def test_the_feeds_live_bars_carry_the_traded_volume(alice, bob, btc_engine):
    now = timezone.now()
    order(alice, "sell", "65000.00", "0.25")
    order(bob, "buy", "65000.00", "0.25")
    btc_engine.run()
    start = bucket_start(now, "5m")
    bars = [
        Bar("BTC-USDT", "5m", start, D("65000"), D("65000"), D("65000"), D("65000")),
        Bar("ETH-USDT", "5m", start, D("3400"), D("3400"), D("3400"), D("3400")),
    ]
    btc, eth = with_trade_volume(bars)
    assert btc.volume == D("0.25") and eth.volume == 0
    assert btc.close == D("65000")
