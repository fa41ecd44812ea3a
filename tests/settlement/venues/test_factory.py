"""get_venue(): the per-process venue built from settings, and its index price source."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marketdata.models import IndexPrint
from settlement.venues import clear_venue_cache, get_venue, index_price
from settlement.venues.base import Venue, VenueUnavailable
from settlement.venues.ccxt_venue import CcxtVenue
from settlement.venues.simulated import SimulatedVenue

from .conftest import VENUE_REDIS_URL


@pytest.fixture
def fresh(settings):
    settings.SETTLEMENT_VENUE_KEY_PREFIX = f"test:venues:{uuid.uuid4().hex}"
    clear_venue_cache()
    built = []
    yield settings, built
    for venue in built:
        if isinstance(venue, SimulatedVenue):
            venue.reset()
    clear_venue_cache()


def test_the_default_is_the_simulated_venue_built_once_per_process(fresh):
    settings, built = fresh
    del settings.SETTLEMENT_VENUE
    settings.REDIS_URL = ""
    venue = get_venue()
    built.append(venue)
    assert isinstance(venue, SimulatedVenue) and isinstance(venue, Venue)
    assert venue.name == "simulated"
    assert get_venue() is venue and get_venue("simulated") is venue
    assert venue.store.shared is False  # no Redis: the embedded mode's in-memory store
    clear_venue_cache()
    assert get_venue() is not venue


def test_faults_and_the_redis_store_come_from_settings(fresh):
    settings, built = fresh
    settings.SETTLEMENT_VENUE = "simulated"
    settings.SETTLEMENT_VENUE_FAULTS = "timeout=0.2,ambiguous=0.1,latency_ms=3,fee_bps=7"
    settings.REDIS_URL = VENUE_REDIS_URL
    venue = get_venue()
    built.append(venue)
    assert (venue.config.timeout, venue.config.ambiguous, venue.config.latency_ms, venue.config.fee_bps) == (0.2, 0.1, 3.0, Decimal(7))
    assert venue.store.shared is True and venue.store.prefix == settings.SETTLEMENT_VENUE_KEY_PREFIX


def test_faults_may_be_a_dict(fresh):
    settings, built = fresh
    settings.SETTLEMENT_VENUE = "simulated"
    settings.SETTLEMENT_VENUE_FAULTS = {"rate_limit": 0.5}
    settings.REDIS_URL = ""
    venue = get_venue()
    built.append(venue)
    assert venue.config.rate_limit == 0.5


def test_a_bad_faults_setting_fails_loudly(fresh):
    settings, _ = fresh
    settings.SETTLEMENT_VENUE = "simulated"
    settings.SETTLEMENT_VENUE_FAULTS = "timeout=lots"
    with pytest.raises(ValueError, match="SETTLEMENT_VENUE_FAULTS"):
        get_venue()


def test_a_ccxt_venue_with_keys_from_settings(fresh):
    settings, _ = fresh
    settings.SETTLEMENT_VENUE = "ccxt:binance"
    settings.SETTLEMENT_VENUE_API_KEY = "test-key"
    settings.SETTLEMENT_VENUE_SECRET = "test-secret"
    settings.SETTLEMENT_VENUE_TIMEOUT_MS = 4000
    venue = get_venue()
    assert isinstance(venue, CcxtVenue) and venue.name == "ccxt:binance"
    assert (venue.exchange.apiKey, venue.exchange.secret, venue.exchange.timeout) == ("test-key", "test-secret", 4000)
    assert get_venue() is venue


@pytest.mark.parametrize("name", ["nasdaq", "ccxt:", "ccxt:no-such-exchange"])
def test_unknown_venues_are_refused(fresh, name):
    with pytest.raises(ValueError):
        get_venue(name)


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
    venue = get_venue()
    built.append(venue)

    btc = venue.market_order(client_order_id="stl-f-3", symbol="BTC/USDT", side="buy", quote_amount=Decimal("1000"))
    eth = venue.market_order(client_order_id="stl-g-3", symbol="ETH/USDT", side="sell", amount=Decimal("2"))

    assert btc.average == Decimal("64000.12") and btc.filled == Decimal("0.01562497")
    assert eth.average == Decimal("3100.50") and eth.cost == Decimal("6201.000000")
    assert venue.fetch_order(client_order_id="stl-f-3", symbol="BTC/USDT") == btc


@pytest.mark.django_db
def test_no_index_print_means_the_venue_is_unavailable():
    with pytest.raises(VenueUnavailable, match="no BTC index price"):
        index_price("BTC/USDT")
    IndexPrint.objects.create(underlying="BTC", ts=timezone.now(), price=None, stale=True, sources={})
    with pytest.raises(VenueUnavailable):
        index_price("BTC/USDT")
    with pytest.raises(VenueUnavailable, match="quoted in USDT"):
        index_price("BTC/EUR")
