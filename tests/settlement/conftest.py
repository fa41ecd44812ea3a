"""Fixtures of the back-office tests: a fresh index, a simulated venue with its own Redis
keys, outbox events shaped as the options counter writes them, and (in-process) Celery
running tasks eagerly so that chains run in the test's own process."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from marketdata.models import IndexPrint
from trading.celery import app as celery_app
from trading.outbox import outbox_message, outbox_write
from venues.config import settlement_venue, venue_cache_clear

INDEX = {"BTC": Decimal("65000"), "ETH": Decimal("3000")}


@pytest.fixture(autouse=True)
def _venue_calls_inline(settings):
    """In-process tests run inside one database transaction: the venue's price lookups must
    use the test's own connection, so step 3 calls the venue without its thread pool."""
    settings.SETTLEMENT_VENUE_CONCURRENCY = 1


@pytest.fixture
def eager_celery():
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def index_prints(db):
    now = timezone.now()
    return {u: IndexPrint.objects.create(underlying=u, ts=now, price=p, sources={}) for u, p in INDEX.items()}


@pytest.fixture
def venue_settings(settings):
    """A simulated venue whose Redis keys belong to this test alone."""
    settings.SETTLEMENT_VENUE = "simulated"
    settings.SETTLEMENT_VENUE_KEY_PREFIX = f"test:venue:{uuid.uuid4().hex[:10]}"
    settings.SETTLEMENT_VENUE_FAULTS = "latency_ms=0,slippage_bps=5,fee_bps=10"
    venue_cache_clear()
    yield settings
    settlement_venue().reset()
    venue_cache_clear()


@pytest.fixture
def venue(venue_settings, index_prints):
    return settlement_venue()


def set_faults(settings, faults: str) -> None:
    settings.SETTLEMENT_VENUE_FAULTS = faults
    venue_cache_clear()


_counter = iter(range(1, 10**9))


def emit(
    kind: str = "open",
    usdt: str = "1300",
    underlying: str = "BTC",
    *,
    key: str | None = None,
    topic: str = "options.order",
) -> dict:
    """Write an outbox event as the counter does (in its own transaction); return the
    message the relay would publish for it."""
    n = next(_counter)
    key = key or f"option_order:{900000 + n}"
    index = INDEX[underlying]
    usdt_amount = Decimal(usdt)
    payload = {
        "ref": key,
        "kind": kind,
        "order_id": 900000 + n,
        "user_id": 1,
        "series": f"{underlying}-20261225-65000-C",
        "underlying": underlying,
        "contracts": "1",
        "usdt": f"{usdt_amount:.6f}",
        "underlying_qty": f"{(usdt_amount / index).quantize(Decimal('0.00000001'))}",
        "index_price": f"{index}",
        "created_at": timezone.now().isoformat(),
    }
    with transaction.atomic():
        event = outbox_write(topic=topic, key=key, payload=payload)
    return outbox_message(event)
