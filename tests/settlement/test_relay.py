"""The relay in-process: against PostgreSQL's snapshot guard (an event committed behind an
older transaction still running is read as soon as that transaction ends, not a polling
interval later), and its resident intake (a small batch for a fast venue settled by the
relay itself, anything else through the broker)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from settlement.models import Settlement, State
from settlement.relay import START, Relay, _take_in_here
from trading.dependencies import BROKER, dependency
from trading.leases import lease_acquire
from trading.models import OutboxEvent
from venues.config import venue_cache_clear

from .conftest import emit


@pytest.fixture
def relay(transactional_db, settings):
    settings.RELAY_LINGER_SECONDS = 0
    settings.RELAY_POLL_SECONDS = 0.25
    published: list[dict] = []
    relay = Relay(publish=published.extend)
    relay.holder = "test-relay"
    epoch = lease_acquire(name="relay", holder=relay.holder, ttl=30)
    relay.on_lead(epoch)
    relay.published_messages = published
    relay.epoch = epoch
    return relay


def older_transaction() -> psycopg.Connection:
    """A transaction that took its id before the event's and is still running."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    older = psycopg.connect(**params)
    older.execute("SELECT pg_current_xact_id()")
    return older


def test_an_event_behind_an_older_running_transaction_is_published_when_it_ends(relay):
    OutboxEvent.objects.all().delete()  # what a run that died before its teardown left
    assert relay.work(relay.epoch) is False  # nothing there: idle until woken or polled
    older = older_transaction()
    try:
        key = emit()["key"]
        assert OutboxEvent.objects.filter(key=key).exists()  # committed...
        started = time.monotonic()
        # ...but hidden by the guard: the relay asks for another round soon instead of
        # going idle for its polling interval (the commit's NOTIFY has come and gone).
        assert relay.work(relay.epoch) is True
        assert relay.published_messages == []
        assert time.monotonic() - started < 0.1
    finally:
        older.commit()
        older.close()
    # Transaction ids are server-wide: on a shared server another database's transaction
    # may still hold the guard back for a moment; the relay keeps looking meanwhile.
    deadline = time.monotonic() + 10
    while not relay.published_messages and time.monotonic() < deadline:
        relay.work(relay.epoch)
    assert [m["key"] for m in relay.published_messages] == [key]
    message = relay.published_messages[0]
    assert message["relay_seen_at"] <= message["relay_sent_at"] <= time.time()


@pytest.fixture
def resident_relay(relay, venue):
    relay.take_in = _take_in_here
    return relay


def relay_until(relay, keys: set[str], timeout: float = 10.0) -> None:
    """Rounds of the relay until every key's settlement is settled (the server-wide snapshot
    guard may hold an event back for a moment)."""
    deadline = time.monotonic() + timeout
    settled = Settlement.objects.filter(ref__in=keys, state=State.SETTLED)
    while settled.count() < len(keys) and time.monotonic() < deadline:
        relay.work(relay.epoch)
        time.sleep(0.01)


def test_the_relay_settles_a_small_batch_for_a_fast_venue_itself(resident_relay):
    OutboxEvent.objects.all().delete()
    keys = {
        emit(usdt="120.5")["key"],
        emit("close", usdt="80")["key"],
        emit("exercise", topic="options.exercise")["key"],
    }
    relay_until(resident_relay, keys)
    settlements = Settlement.objects.filter(ref__in=keys)
    assert sorted(s.state for s in settlements) == [State.SETTLED] * 3
    assert resident_relay.published_messages == []
    assert resident_relay.cursor["id"] == OutboxEvent.objects.order_by("-id").first().id
    for s in settlements:
        assert s.relay_seen_at <= s.relay_sent_at <= s.intake_started_at <= s.accepted_at
    # Read again from an older cursor (a new leader after a crash): nothing twice.
    resident_relay.cursor = dict(START)
    resident_relay.work(resident_relay.epoch)
    assert Settlement.objects.filter(ref__in=keys).count() == 3
    assert sorted(Settlement.objects.filter(ref__in=keys).values_list("state", flat=True)) == [State.SETTLED] * 3


def test_a_batch_larger_than_the_inline_batch_or_for_a_slow_venue_goes_through_the_broker(resident_relay, settings):
    OutboxEvent.objects.all().delete()
    settings.SETTLEMENT_VENUE_INLINE_BATCH = 2
    keys = {emit()["key"] for _ in range(3)}
    deadline = time.monotonic() + 10
    while len(resident_relay.published_messages) < 3 and time.monotonic() < deadline:
        resident_relay.work(resident_relay.epoch)
    assert {m["key"] for m in resident_relay.published_messages} == keys
    assert not Settlement.objects.filter(ref__in=keys).exists()

    settings.SETTLEMENT_VENUE_INLINE_BATCH = 50
    settings.SETTLEMENT_VENUE_FAULTS = "latency_ms=600"
    venue_cache_clear()
    slow = emit()["key"]
    while len(resident_relay.published_messages) < 4 and time.monotonic() < deadline:
        resident_relay.work(resident_relay.epoch)
    assert resident_relay.published_messages[-1]["key"] == slow
    assert not Settlement.objects.filter(ref=slow).exists()


def test_a_failure_before_the_commit_sends_the_batch_through_the_broker(resident_relay, settings):
    OutboxEvent.objects.all().delete()
    key = emit()["key"]
    OutboxEvent.objects.filter(key=key).update(payload={"kind": "open"})  # no amounts: refused
    deadline = time.monotonic() + 10
    while not resident_relay.published_messages and time.monotonic() < deadline:
        resident_relay.work(resident_relay.epoch)
    assert [m["key"] for m in resident_relay.published_messages] == [key]
    assert not Settlement.objects.filter(ref=key).exists()


def test_a_slow_take_in_sends_the_next_batches_through_the_broker(relay, settings):
    """The lease is renewed between rounds: after a take-in that used up its share of the
    TTL, the relay leaves batches to the broker for a while, then takes them in again."""
    settings.RELAY_TAKE_IN_PAUSE_SECONDS = 0.5
    OutboxEvent.objects.all().delete()
    taken: list[str] = []

    def slow_take_in(messages):
        time.sleep(0.06)
        taken.extend(m["key"] for m in messages)
        return True

    relay.take_in, relay.take_in_budget = slow_take_in, 0.05

    def round_for(key):
        deadline = time.monotonic() + 10
        while key not in taken + [m["key"] for m in relay.published_messages] and time.monotonic() < deadline:
            relay.work(relay.epoch)

    first, second = emit()["key"], None
    round_for(first)
    assert taken == [first]
    second = emit()["key"]
    round_for(second)
    assert [m["key"] for m in relay.published_messages] == [second]  # paused: the broker's
    time.sleep(0.5)
    third = emit()["key"]
    round_for(third)
    assert taken == [first, third]


def test_with_the_broker_found_down_the_relay_does_not_take_in(relay):
    """A take-in whose retry the broker refused marks the broker down for the process: the
    relay then holds batches for the broker, as before, until it answers again."""
    OutboxEvent.objects.all().delete()
    taken: list[str] = []
    relay.take_in = lambda messages: taken.extend(m["key"] for m in messages) or True
    broker = dependency(BROKER)
    broker.failed(ConnectionError("refused"))
    try:
        key = emit()["key"]
        deadline = time.monotonic() + 10
        while not relay.published_messages and time.monotonic() < deadline:
            relay.work(relay.epoch)
        assert [m["key"] for m in relay.published_messages] == [key] and taken == []
    finally:
        broker.ok()
    key = emit()["key"]
    deadline = time.monotonic() + 10
    while not taken and time.monotonic() < deadline:
        relay.work(relay.epoch)
    assert taken == [key]
