"""The engine runner with Redis away: it keeps matching and committing (PostgreSQL is all it
needs), and publishes its book snapshot again as soon as Redis is back -- with the trades it
made meanwhile, which it keeps itself rather than reading back from Redis."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from marketdata.selectors import spot_market
from orders.models import EngineState, SpotOrder, SpotStatus, SpotTrade
from orders.spot.services import order_request, spot_order_place
from trading.dependencies import REDIS, dependency

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1: connection refused
    }
}


def place(user, **data):
    order, _ = spot_order_place(user=user, request=order_request(**{"symbol": "BTC-USDT", **data}))
    return order


def test_the_runner_matches_through_a_redis_outage_and_publishes_its_book_once_redis_is_back(
    alice, bob, btc_engine, settings
):
    live_cache = settings.CACHES
    settings.CACHES = DEAD_REDIS
    sell = place(alice, side="sell", type="limit", price="65000.00", quantity="0.5")
    place(bob, side="buy", type="limit", price="65000.00", quantity="0.2")
    btc_engine.run()

    assert SpotTrade.objects.get().quantity == D("0.2")
    assert SpotOrder.objects.get(pk=sell.pk).status == SpotStatus.PARTIALLY_FILLED
    assert btc_engine.runner.snapshot_due and dependency(REDIS).down

    settings.CACHES = live_cache
    time.sleep(0.25)  # past the first retry's backoff (at most 0.2 s)
    btc_engine.run()  # an idle round: nothing to match, the snapshot goes out

    assert not btc_engine.runner.snapshot_due and not dependency(REDIS).down
    market = spot_market("BTC-USDT")
    assert market["sequence"] == EngineState.objects.get(symbol="BTC-USDT").seq
    assert [(D(p), D(q)) for p, q in market["asks"]] == [(D("65000"), D("0.3"))]
    assert [(D(t["price"]), D(t["quantity"])) for t in market["trades"]] == [(D("65000"), D("0.2"))]
    assert D(market["last"]) == D("65000")


def test_a_new_leader_publishes_the_recent_trades_from_the_database(alice, bob, btc_engine):
    for price in ("65000.00", "65001.00", "65002.00"):
        place(alice, side="sell", type="limit", price=price, quantity="0.1")
        place(bob, side="buy", type="limit", price=price, quantity="0.1")
        btc_engine.run()
    from django.core.cache import cache

    cache.clear()  # a Redis that restarted empty
    btc_engine.restart()
    trades = spot_market("BTC-USDT")["trades"]
    assert [D(t["price"]) for t in trades] == [D("65002"), D("65001"), D("65000")]  # newest first
