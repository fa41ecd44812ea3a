"""The relay against PostgreSQL's snapshot guard, in-process: an event committed behind an
older transaction still running is read as soon as that transaction ends, not a polling
interval later."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from settlement.relay import Relay
from trading.leases import lease_acquire
from trading.models import OutboxEvent

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
