"""Fixtures of the venue adapter tests.

The Redis-backed simulated venue runs on the real Redis at 127.0.0.1:6379, under a key prefix
no other test uses, and every key under it is removed (and checked gone) after the test. The
database number is not 0: the suite's cache (and so every test's ``cache.clear()``, a
FLUSHDB) lives in db 0, and a suite running beside this one must not wipe our keys mid-test.
"""

from __future__ import annotations

import os
import uuid
from decimal import Decimal

import pytest
import redis

from venues.simulated import SimulatedVenue, SimulatedVenueConfig

VENUE_REDIS_URL = os.environ.get("VENUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
REFERENCE = {"BTC-USDT": Decimal("50000.00"), "ETH-USDT": Decimal("3000.00")}


def constant_prices(symbol: str) -> Decimal:
    return REFERENCE[symbol]


@pytest.fixture
def redis_url() -> str:
    return VENUE_REDIS_URL


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.ping()  # the real server must answer: these tests never skip for want of Redis
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client):
    prefix = f"test:venues:{uuid.uuid4().hex}"
    yield prefix
    leftovers = list(redis_client.scan_iter(match=prefix + ":*"))
    if leftovers:
        redis_client.delete(*leftovers)
    assert not leftovers, f"a test left Redis keys behind: {leftovers[:5]}"


@pytest.fixture
def make_venue(key_prefix, redis_url):
    """``make_venue(store="memory"|"redis", price_source=..., **config)`` -> a SimulatedVenue;
    every venue made is reset after the test."""
    made = []

    def make(*, store: str = "memory", price_source=constant_prices, sleep=None, **config) -> SimulatedVenue:
        kwargs = {"sleep": sleep} if sleep is not None else {}
        venue = SimulatedVenue(
            price_source=price_source,
            config=SimulatedVenueConfig.from_mapping(config),
            redis_url=redis_url if store == "redis" else None,
            key_prefix=key_prefix,
            **kwargs,
        )
        made.append(venue)
        return venue

    yield make
    for venue in made:
        venue.reset()
