"""venues.config: the per-process venues built from settings (SETTLEMENT_VENUE* for settlement,
SPOT_VENUES for routing), and the index prices the simulated venues fill at."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marketdata.models import IndexPrint
from venues.base import Venue, VenueUnavailable
from venues.ccxt_venue import CcxtVenue
from venues.config import (
    UnknownVenue,
    index_price,
    routing_venues,
    settlement_venue,
    venue_cache_clear,
    venue_get,
)
from venues.simulated import SimulatedVenue

from .conftest import VENUE_REDIS_URL


@pytest.fixture
def fresh(settings):
    settings.SETTLEMENT_VENUE_KEY_PREFIX = f"test:venues:{uuid.uuid4().hex}"
    venue_cache_clear()
    built = []
    yield settings, built
    for venue in built:
        if isinstance(venue, SimulatedVenue):
            venue.reset()
    venue_cache_clear()


def test_the_default_is_the_simulated_venue_built_once_per_process(fresh):
    settings, built = fresh
    assert settings.SETTLEMENT_VENUE == "simulated"  # the declared default
    settings.REDIS_URL = ""
    venue = settlement_venue()
    built.append(venue)
    assert isinstance(venue, SimulatedVenue) and isinstance(venue, Venue)
    assert venue.name == "simulated"
    assert settlement_venue() is venue and venue_get("simulated") is venue
    assert venue.store.shared is False  # no Redis: the embedded mode's in-memory store
    venue_cache_clear()
    assert settlement_venue() is not venue


def test_faults_and_the_redis_store_come_from_settings(fresh):
    settings, built = fresh
    settings.SETTLEMENT_VENUE = "simulated"
    settings.SETTLEMENT_VENUE_FAULTS = "timeout=0.2,ambiguous=0.1,latency_ms=3,fee_bps=7"
    settings.REDIS_URL = VENUE_REDIS_URL
    venue = settlement_venue()
    built.append(venue)
    assert (venue.config.timeout, venue.config.ambiguous, venue.config.latency_ms, venue.config.fee_bps) == (
        0.2,
        0.1,
        3.0,
        Decimal(7),
    )
    assert venue.store.shared is True and venue.store.prefix == settings.SETTLEMENT_VENUE_KEY_PREFIX


def test_faults_may_be_a_dict(fresh):
    settings, built = fresh
    settings.SETTLEMENT_VENUE = "simulated"
    settings.SETTLEMENT_VENUE_FAULTS = {"rate_limit": 0.5}
    settings.REDIS_URL = ""
    venue = settlement_venue()
    built.append(venue)
    assert venue.config.rate_limit == 0.5


def test_a_bad_faults_setting_fails_loudly(fresh):
    settings, _ = fresh
    settings.SETTLEMENT_VENUE = "simulated"
    settings.SETTLEMENT_VENUE_FAULTS = "timeout=lots"
    with pytest.raises(ValueError, match="SETTLEMENT_VENUE_FAULTS"):
        settlement_venue()


def test_a_ccxt_venue_with_keys_from_settings(fresh):
    settings, _ = fresh
    settings.SETTLEMENT_VENUE = "ccxt:binance"
    settings.SETTLEMENT_VENUE_API_KEY = "test-key"
    settings.SETTLEMENT_VENUE_SECRET = "test-secret"
    settings.SETTLEMENT_VENUE_TIMEOUT_MS = 4000
    venue = settlement_venue()
    assert isinstance(venue, CcxtVenue) and venue.name == "ccxt:binance"
    assert (venue.exchange.apiKey, venue.exchange.secret, venue.exchange.timeout) == ("test-key", "test-secret", 4000)
    assert settlement_venue() is venue


@pytest.mark.parametrize("name", ["nasdaq", "ccxt:", "ccxt:no-such-exchange"])
def test_unknown_venues_are_refused(fresh, name):
    with pytest.raises(ValueError):
        venue_get(name)


@pytest.mark.django_db
def test_the_simulated_venue_fills_at_the_latest_index_print(fresh):
    settings, built = fresh
    settings.SETTLEMENT_VENUE = "simulated"
    settings.SETTLEMENT_VENUE_FAULTS = "fee_bps=10"
    settings.REDIS_URL = VENUE_REDIS_URL
    now = timezone.now()
    IndexPrint.objects.create(underlying="BTC", ts=now - timedelta(seconds=5), price=Decimal("63000.00"), sources={})
    IndexPrint.objects.create(underlying="BTC", ts=now, price=Decimal("64000.12"), sources={})
    IndexPrint.objects.create(underlying="ETH", ts=now, price=Decimal("3100.50"), sources={})
    venue = settlement_venue()
    built.append(venue)

    btc = venue.market_order(client_order_id="stl-f-3", symbol="BTC-USDT", side="buy", quote_amount=Decimal(1000))
    eth = venue.market_order(client_order_id="stl-g-3", symbol="ETH-USDT", side="sell", amount=Decimal(2))

    assert btc.average == Decimal("64000.12") and btc.filled == Decimal("0.01562497")
    assert eth.average == Decimal("3100.50") and eth.cost == Decimal("6201.000000")
    assert venue.fetch_order(client_order_id="stl-f-3", symbol="BTC-USDT") == btc
    # an order recorded with ccxt's form of the symbol is found under the platform's
    assert venue.fetch_order(client_order_id="stl-f-3", symbol="BTC/USDT") == btc


@pytest.mark.django_db
def test_no_index_print_means_the_venue_is_unavailable():
    with pytest.raises(VenueUnavailable, match="no BTC index price"):
        index_price("BTC-USDT")
    IndexPrint.objects.create(underlying="BTC", ts=timezone.now(), price=None, stale=True, sources={})
    with pytest.raises(VenueUnavailable):
        index_price("BTC-USDT")
    with pytest.raises(VenueUnavailable, match="quoted in USDT"):
        index_price("BTC-EUR")


# --- SPOT_VENUES: the venues of smart routing and the aggregated book ---------------------------


def test_routing_venues_come_from_spot_venues_and_are_rebuilt_when_they_change(settings):
    settings.REDIS_URL = ""
    settings.SPOT_VENUES = {
        "simb": {"spread_bps": "20", "fee": "0.002", "latency_ms": 0},
        "sima": {"class": "simulated", "levels": 3},
    }
    venues = routing_venues()
    assert [v.name for v in venues] == ["sima", "simb"]
    assert all(isinstance(v, SimulatedVenue) for v in venues)
    assert venues[1].taker_fee == Decimal("0.002") and venues[1].config.spread_bps == Decimal(20)
    # a routing venue gives up sooner than the settlement venue's defaults
    assert (venues[0].timeout_s, venues[0].unknown_outcome_grace_s) == (2.0, 2.0)
    assert venue_get("sima") is venues[0]
    settings.SPOT_VENUES = {"sima": {"levels": 2}}
    assert venue_get("sima") is not venues[0] and venue_get("sima").config.levels == 2
    with pytest.raises(UnknownVenue):
        venue_get("simb")


def test_a_ccxt_routing_venue(settings):
    settings.SPOT_VENUES = {
        "binance": {
            "class": "ccxt",
            "exchange": "binance",
            "api_key": "k",
            "secret": "s",
            "fee": "0.00075",
            "timeout_ms": 1500,
        }
    }
    venue = venue_get("binance")
    assert isinstance(venue, CcxtVenue) and venue.name == "binance" and venue.max_in_flight == 1
    assert (venue.taker_fee, venue.exchange.timeout, venue.exchange.apiKey) == (Decimal("0.00075"), 1500, "k")


def test_a_bad_routing_venue_says_which(settings):
    settings.SPOT_VENUES = {"simz": {"spred_bps": "5"}}
    with pytest.raises(ValueError, match="venue simz: unknown key 'spred_bps'"):
        venue_get("simz")
    settings.SPOT_VENUES = {"simz": {"class": "nasdaq"}}
    with pytest.raises(ValueError, match="class must be"):
        venue_get("simz")


@pytest.mark.django_db
def test_a_routing_venue_has_no_book_while_the_index_is_stale(settings):
    settings.REDIS_URL = ""
    settings.SPOT_VENUES = {"sima": {"levels": 1}}
    IndexPrint.objects.create(
        underlying="BTC", ts=timezone.now() - timedelta(minutes=5), price=Decimal(63000), sources={}
    )
    with pytest.raises(VenueUnavailable, match="no fresh index"):
        venue_get("sima").order_book("BTC-USDT", 1)
    IndexPrint.objects.create(underlying="BTC", ts=timezone.now(), price=Decimal(64000), sources={})
    assert venue_get("sima").order_book("BTC-USDT", 1).asks == [(Decimal("64032.00"), Decimal("0.5"))]
