"""A slow venue does not slow settlement down: with real worker processes (the intake
worker and the venue queue's thread-pool worker, as the Procfile runs them) and a 600 ms
venue round trip, batches are at the venue side by side, so a burst settles in a few round
trips, not one round trip per small batch per worker process."""

from __future__ import annotations

import time

import pytest

from settlement.models import Settlement, SettlementStep, State, StepStatus
from venues.config import settlement_venue, venue_cache_clear

from .conftest import emit
from .stack import BackOffice

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LATENCY_S = 0.6
ORDERS = 400
# The previous process model could never beat this: two intake processes, each waiting for
# its batch's orders on 8 venue threads, send at most 16 orders per round trip.
PREVIOUS_FLOOR_S = ORDERS / 16 * LATENCY_S  # 15 s


@pytest.fixture
def back_office(tmp_path, index_prints, settings):
    office = BackOffice(
        tmp_path,
        SETTLEMENT_VENUE_FAULTS=f"latency_ms={LATENCY_S * 1000:g},slippage_bps=5,fee_bps=10",
        RELAY_POLL_SECONDS=0.1,
        # batches of 50: the burst is 8 or more batches however the relay happens to read it
        # (at the default 200 a relay that reads the whole burst at once makes only 2)
        SETTLEMENT_BATCH_SIZE=50,
    ).start_redis()
    settings.REDIS_URL = office.env["REDIS_URL"]
    settings.SETTLEMENT_VENUE_KEY_PREFIX = office.venue_prefix
    venue_cache_clear()
    try:
        yield office
    finally:
        office.shutdown()
        venue_cache_clear()


def most_batches_at_once(intervals: list[tuple]) -> int:
    """The most step-3 batches that were at the venue at the same moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    at_once = most = 0
    for _, change in edges:
        at_once += change
        most = max(most, at_once)
    return most


def test_a_burst_settles_in_a_few_venue_round_trips_because_batches_overlap(back_office):
    workers = [back_office.worker("w1"), back_office.venue_worker("v1")]
    back_office.relay().wait_for("LEADER", timeout=30)
    for worker in workers:
        worker.wait_for("ready.", timeout=60)

    first = time.monotonic()
    keys = [emit("open" if n % 3 else "close", usdt=f"{100 + n}.5")["key"] for n in range(ORDERS)]
    written = time.monotonic() - first
    deadline = first + 60
    while Settlement.objects.filter(state=State.SETTLED).count() < ORDERS and time.monotonic() < deadline:
        time.sleep(0.1)
    elapsed = time.monotonic() - first

    settlements = Settlement.objects.all()
    assert set(settlements.values_list("ref", flat=True)) == set(keys)
    assert not settlements.exclude(state=State.SETTLED).exists(), list(
        settlements.values_list("state", "step").distinct()
    )
    venue = settlement_venue()
    assert venue.duplicate_client_order_ids() == []
    assert venue.total_placed() == ORDERS
    batches = set(
        SettlementStep.objects.filter(step=3, status=StepStatus.DONE).values_list("started_at", "finished_at")
    )
    overlap = most_batches_at_once(list(batches))
    print(
        f"\n{ORDERS} orders written in {written:.1f}s, all settled {elapsed:.1f}s after the first commit; "
        f"{len(batches)} step-3 batches, up to {overlap} at the venue at once "
        f"(previous floor {PREVIOUS_FLOOR_S:.0f}s)"
    )
    # More batches at the venue together than the intake worker has processes...
    assert overlap > 2
    # ...and well under what the previous process model needed at best.
    assert elapsed < 0.6 * PREVIOUS_FLOOR_S, f"{elapsed:.1f}s"
