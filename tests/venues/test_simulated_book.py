"""The simulated venue's own book for smart routing: a deterministic book around the index, IOC
fills at its level prices, and orders kept by client order id so that a resend never trades
twice."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from venues.base import CANCELLED, FILLED, VenueRejected, VenueTimeout
from venues.simulated import SimulatedVenue, SimulatedVenueConfig

from .conftest import VENUE_REDIS_URL

D = Decimal
CONFIG = {
    "offset_bps": "0",
    "spread_bps": "10",
    "step_bps": "5",
    "levels": 3,
    "level_quantity": "0.4",
    "growth": "0.5",
    "fee": "0.001",
}


@pytest.fixture
def make(key_prefix):
    """``make(store="redis"|"memory", **overrides)`` -> a venue on the book above at 65000;
    ``name`` gives another instance on the same store (another process, as far as it knows)."""
    made = []

    def build(store="redis", sleep=None, **overrides) -> SimulatedVenue:
        kwargs = {"sleep": sleep} if sleep is not None else {}
        venue = SimulatedVenue(
            price_source=lambda symbol: D("65000"),
            config=SimulatedVenueConfig.from_mapping({**CONFIG, **overrides}),
            redis_url=VENUE_REDIS_URL if store == "redis" else None,
            key_prefix=key_prefix,
            name=f"t{uuid.uuid4().hex[:8]}",
            **kwargs,
        )
        made.append(venue)
        return venue

    yield build
    for venue in made:
        venue.reset()


def ioc(venue, side, amount, limit, cid, symbol="BTC-USDT"):
    return venue.ioc_order(client_order_id=cid, symbol=symbol, side=side, amount=D(amount), limit_price=D(limit))


def test_the_book_is_derived_from_the_index_offset_spread_and_depth(make):
    book = make().order_book("BTC-USDT", 10)
    # 10 bps spread: 5 bps either side of 65000, then 5 bps a level; 0.4, 0.6, 0.8 BTC
    assert book.asks == [(D("65032.50"), D("0.4")), (D("65065.00"), D("0.6")), (D("65097.50"), D("0.8"))]
    assert book.bids == [(D("64967.50"), D("0.4")), (D("64935.00"), D("0.6")), (D("64902.50"), D("0.8"))]
    shifted = make(offset_bps="-10").order_book("BTC-USDT", 1)
    assert shifted.asks[0][0] == D("64967.47")  # 65000 x 0.999 x 1.0005, rounded up to the tick


def test_an_ioc_fills_level_by_level_within_its_limit_and_pays_the_fee_in_what_it_receives(make):
    venue = make()
    buy = ioc(venue, "buy", "0.5", "65070", "c-1")
    assert buy.status == FILLED and buy.filled == D("0.5") and buy.amount == D("0.5")
    assert buy.cost == D("0.4") * D("65032.50") + D("0.1") * D("65065.00")
    assert buy.fee == D("0.0005") and buy.fee_asset == "BTC"
    partial = ioc(venue, "sell", "1.5", "64935", "c-2")
    # the 64902.50 level is past the limit: the rest expired, the order is over
    assert partial.status == CANCELLED and partial.is_final and partial.filled == D("1.0")
    assert partial.fee_asset == "USDT" and partial.fee == (partial.cost * D("0.001")).quantize(D("0.000001"))
    nothing = ioc(venue, "buy", "0.1", "65000", "c-3")
    assert nothing.status == CANCELLED and nothing.filled == 0 and nothing.cost == 0 and nothing.average is None


def test_a_resend_of_the_same_client_order_id_returns_the_first_order_without_trading_again(make):
    venue = make()
    first = ioc(venue, "buy", "0.3", "65100", "same-id")
    again = ioc(venue, "buy", "0.3", "65100", "same-id")
    assert again == first and again.venue_order_id == first.venue_order_id
    assert venue.placements("same-id") == 1
    # another process (a new instance on the same Redis) sees the same order
    other = SimulatedVenue(price_source=lambda s: D("65000"), redis_url=VENUE_REDIS_URL, key_prefix=venue.store.prefix)
    assert other.fetch_order(client_order_id="same-id", symbol="BTC-USDT") == first
    assert venue.fetch_order(client_order_id="never-sent", symbol="BTC-USDT") is None


def test_an_ambiguous_timeout_executed_and_the_lookup_finds_it(make):
    venue = make(ambiguous=1.0)
    with pytest.raises(VenueTimeout):
        ioc(venue, "buy", "0.2", "65100", "lost-reply")
    found = venue.fetch_order(client_order_id="lost-reply", symbol="BTC-USDT")
    assert found is not None and found.filled == D("0.2") and venue.placements("lost-reply") == 1


def test_a_lost_request_and_a_refusal_execute_nothing(make):
    lost = make(timeout=1.0)
    with pytest.raises(VenueTimeout):
        ioc(lost, "buy", "0.2", "65100", "lost-request")
    assert (
        lost.fetch_order(client_order_id="lost-request", symbol="BTC-USDT") is None
        and lost.placements("lost-request") == 0
    )
    refused = make(reject=1.0, store="memory")
    with pytest.raises(VenueRejected):
        ioc(refused, "buy", "0.2", "65100", "refused")
    assert refused.fetch_order(client_order_id="refused", symbol="BTC-USDT") is None


def test_latency_is_spent_around_execution(make):
    slept = []
    venue = make(latency_ms=40, sleep=slept.append)
    ioc(venue, "buy", "0.1", "65100", f"lat-{uuid.uuid4().hex[:6]}")
    assert slept == [0.02, 0.02]


def test_a_reply_slower_than_the_timeout_is_a_timeout_after_execution(make):
    venue = make(latency_ms=100, timeout_ms=50, sleep=lambda seconds: None)
    with pytest.raises(VenueTimeout):
        ioc(venue, "buy", "0.1", "65100", "slow-1")
    assert venue.fetch_order(client_order_id="slow-1", symbol="BTC-USDT").filled == D("0.1")


def test_the_same_venue_serves_market_orders_at_the_index(make):
    """One simulated venue for routing and settlement: the book for IOC orders, the index
    (with its slippage) for market orders."""
    venue = make(store="memory")
    order = venue.market_order(client_order_id="m-1", symbol="BTC-USDT", side="buy", amount=D("0.1"))
    assert order.average == D("65000.00") and order.filled == D("0.1") and order.fee == D("0.0001")
    assert venue.order_book("BTC/USDT", 1).asks == [(D("65032.50"), D("0.4"))]  # ccxt's form of the symbol too
