"""The simulated spot venue: a deterministic book around the index, IOC fills at its level
prices, and orders kept in Redis by client order id so that a resend never trades twice."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal

import pytest

from orders.venues.base import CANCELLED, FILLED, PARTIALLY_FILLED, VenueRejected, VenueTimeout
from orders.venues.simulated import SimulatedSpotVenue

D = Decimal
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/7"
CONFIG = {"offset_bps": "0", "spread_bps": "10", "step_bps": "5", "levels": 3, "level_quantity": "0.4", "growth": "0.5",
          "fee": "0.001"}


def make(name=None, store="redis", **overrides) -> SimulatedSpotVenue:
    return SimulatedSpotVenue(name or f"t{uuid.uuid4().hex[:8]}", {**CONFIG, **overrides},
                              price_source=lambda symbol: D("65000"), redis_url=REDIS_URL if store == "redis" else None)


def test_the_book_is_derived_from_the_index_offset_spread_and_depth():
    book = make().order_book("BTC-USDT", 10)
    # 10 bps spread: 5 bps either side of 65000, then 5 bps a level; 0.4, 0.6, 0.8 BTC
    assert book.asks == [(D("65032.50"), D("0.4")), (D("65065.00"), D("0.6")), (D("65097.50"), D("0.8"))]
    assert book.bids == [(D("64967.50"), D("0.4")), (D("64935.00"), D("0.6")), (D("64902.50"), D("0.8"))]
    shifted = make(offset_bps="-10").order_book("BTC-USDT", 1)
    assert shifted.asks[0][0] == D("64967.47")  # 65000 x 0.999 x 1.0005, rounded up to the tick


def test_an_ioc_fills_level_by_level_within_its_limit_and_pays_the_fee_in_what_it_receives():
    venue = make()
    buy = venue.place_ioc("BTC-USDT", "buy", D("0.5"), D("65070"), "c-1")
    assert buy.status == FILLED and buy.filled == D("0.5")
    assert buy.cost == D("0.4") * D("65032.50") + D("0.1") * D("65065.00")
    assert buy.fee == D("0.0005") and buy.fee_asset == "BTC"
    partial = venue.place_ioc("BTC-USDT", "sell", D("1.5"), D("64935"), "c-2")
    assert partial.status == PARTIALLY_FILLED and partial.filled == D("1.0")  # the 64902.50 level is past the limit
    assert partial.fee_asset == "USDT" and partial.fee == (partial.cost * D("0.001")).quantize(D("0.000001"))
    nothing = venue.place_ioc("BTC-USDT", "buy", D("0.1"), D("65000"), "c-3")
    assert nothing.status == CANCELLED and nothing.filled == 0 and nothing.cost == 0


def test_a_resend_of_the_same_client_order_id_returns_the_first_order_without_trading_again():
    venue = make()
    first = venue.place_ioc("BTC-USDT", "buy", D("0.3"), D("65100"), "same-id")
    again = venue.place_ioc("BTC-USDT", "buy", D("0.3"), D("65100"), "same-id")
    assert again == first and again.venue_order_id == first.venue_order_id
    assert venue.executions("same-id") == 1
    # another process (a new instance on the same Redis) sees the same order
    assert make(name=venue.name).fetch_order("same-id") == first
    assert venue.fetch_order("never-sent") is None


def test_an_ambiguous_timeout_executed_and_the_lookup_finds_it():
    venue = make(ambiguous=1.0)
    with pytest.raises(VenueTimeout):
        venue.place_ioc("BTC-USDT", "buy", D("0.2"), D("65100"), "lost-reply")
    found = venue.fetch_order("lost-reply")
    assert found is not None and found.filled == D("0.2") and venue.executions("lost-reply") == 1


def test_a_lost_request_and_a_refusal_execute_nothing():
    lost = make(timeout=1.0)
    with pytest.raises(VenueTimeout):
        lost.place_ioc("BTC-USDT", "buy", D("0.2"), D("65100"), "lost-request")
    assert lost.fetch_order("lost-request") is None and lost.executions("lost-request") == 0
    refused = make(reject=1.0, store="memory")
    with pytest.raises(VenueRejected):
        refused.place_ioc("BTC-USDT", "buy", D("0.2"), D("65100"), "refused")
    assert refused.fetch_order("refused") is None


def test_latency_is_spent_around_execution():
    slept = []
    venue = SimulatedSpotVenue("lat", {**CONFIG, "latency_ms": 40}, price_source=lambda s: D("65000"), sleep=slept.append)
    venue.place_ioc("BTC-USDT", "buy", D("0.1"), D("65100"), f"lat-{uuid.uuid4().hex[:6]}")
    assert slept == [0.02, 0.02]


def test_a_reply_slower_than_the_timeout_is_a_timeout_after_execution():
    venue = SimulatedSpotVenue(f"slow{uuid.uuid4().hex[:6]}", {**CONFIG, "latency_ms": 100, "timeout_ms": 50},
                               price_source=lambda s: D("65000"), sleep=lambda seconds: None)
    with pytest.raises(VenueTimeout):
        venue.place_ioc("BTC-USDT", "buy", D("0.1"), D("65100"), "slow-1")
    assert venue.fetch_order("slow-1").filled == D("0.1")
