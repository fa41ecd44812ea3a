"""The reconciliation under a backlog, with real processes: a private Redis as broker, the
relay, and the reconciliation pass run by a process of its own every half second (as beat
and a worker run it every few seconds). Events waiting in the broker are not sent again; a
broker that lost its messages gets each missing event again once per mark period, not once
per pass; and when workers come back everything settles exactly once."""

from __future__ import annotations

import sys
import time

import pytest
import redis

from settlement.models import Counter, Settlement, State
from trading.models import SingletonCheckpoint
from venues.config import settlement_venue, venue_cache_clear

from .conftest import emit
from .stack import BackOffice

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EVENTS = 60
MARK_SECONDS = 10.0

# What beat and a worker do every SETTLEMENT_RECONCILE_EVERY seconds, every half second.
PASSES = """
import sys, time
import django
django.setup()
from settlement.tasks import outbox_reconcile
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        print("pass republished", outbox_reconcile(), flush=True)
    except Exception as exc:  # the broker restarting: the next pass goes on
        print("pass failed", type(exc).__name__, exc, flush=True)
    time.sleep(0.5)
"""


@pytest.fixture
def back_office(tmp_path, index_prints, settings):
    office = BackOffice(
        tmp_path,
        SETTLEMENT_RECONCILE_AFTER_SECONDS=1,
        SETTLEMENT_RECONCILE_QUEUED_SECONDS=MARK_SECONDS,
        SETTLEMENT_VENUE_FAULTS="latency_ms=2,slippage_bps=5,fee_bps=10",
        RELAY_POLL_SECONDS=0.1,
        # every batch through the broker: the backlog is the broker's (the relay's resident
        # intake would settle these small batches itself, workers or not)
        RELAY_TAKE_IN=0,
    ).start_redis()
    settings.REDIS_URL = office.env["REDIS_URL"]
    settings.SETTLEMENT_VENUE_KEY_PREFIX = office.venue_prefix
    venue_cache_clear()
    try:
        yield office
    finally:
        office.shutdown()
        venue_cache_clear()


def reconcile_for(office: BackOffice, seconds: float, name: str) -> list[str]:
    child = office.spawn(name, [sys.executable, "-c", PASSES, str(seconds)])
    child.proc.wait(seconds + 60)
    passes = [line for line in child.lines if line.startswith("pass ")]
    assert passes, "".join(child.lines[-40:])
    return passes


def relay_published() -> int:
    mark = SingletonCheckpoint.objects.filter(name="relay").values_list("value", flat=True).first() or {}
    return int(mark.get("published", 0))


def republished() -> int:
    return Counter.objects.filter(name="outbox_republished").values_list("value", flat=True).first() or 0


def test_a_backlog_in_the_broker_is_not_sent_again_and_a_lost_one_once_per_period(back_office):
    broker = redis.Redis(port=back_office.redis_port)
    back_office.relay().wait_for("LEADER", timeout=30)
    keys = [emit()["key"] for _ in range(EVENTS)]
    # The relay publishes them; no worker takes them: a backlog waits in the broker.
    deadline = time.monotonic() + 30
    while relay_published() < EVENTS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert relay_published() == EVENTS
    assert broker.llen(back_office.queue) > 0
    time.sleep(1.2)  # older than SETTLEMENT_RECONCILE_AFTER_SECONDS: missing, as far as age goes

    passes = reconcile_for(back_office, 3.0, "reconcile-backlog")
    assert len(passes) >= 4
    assert republished() == 0, passes  # queued, not lost: nothing is sent again

    # The broker restarts empty: the messages and their marks are gone together.
    back_office.redis.kill9()
    back_office.start_redis()
    broker = redis.Redis(port=back_office.redis_port)
    started = time.monotonic()
    passes = reconcile_for(back_office, 1.3 * MARK_SECONDS, "reconcile-lost")
    elapsed = time.monotonic() - started
    sent = republished()
    # Each missing event again at once, then at most once per mark period, however many
    # passes ran (every pass sending every missing event would be len(passes) * EVENTS).
    assert EVENTS <= sent <= EVENTS * (1 + int(elapsed // MARK_SECONDS)), (sent, len(passes))
    assert len(passes) >= 10

    # Workers return: every event settles, once.
    for worker in (back_office.worker("w1"), back_office.venue_worker("v1")):
        worker.wait_for("ready.", timeout=60)
    deadline = time.monotonic() + 60
    while Settlement.objects.filter(state=State.SETTLED).count() < EVENTS and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(Settlement.objects.filter(state=State.SETTLED).values_list("ref", flat=True)) == set(keys)
    venue = settlement_venue()
    assert venue.duplicate_client_order_ids() == []
    assert venue.total_placed() == EVENTS
    print(f"\n{len(passes)} passes over {elapsed:.1f}s after the broker lost {EVENTS} events: {sent} re-published")
